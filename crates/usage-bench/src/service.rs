//! The service under test: the real `usage-service` binary, run as a child process.
//!
//! The driver starts it on a loopback port with a throwaway configuration directory, mints
//! tokens with the binary's own `token` command, reads its resident memory and CPU time from
//! `/proc`, and always stops it: gracefully with SIGTERM, and killed if it lingers or if the
//! driver fails half-way (the guard's `Drop`).

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long the service may take to answer `/healthz` after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// The HS256 secret of benchmark runs; the service and its tokens exist only for the run.
const SECRET: &str = "usage-bench secret: used only by throwaway benchmark services";

/// How to start the service: its binary, its store, and a scratch directory.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub binary: PathBuf,
    pub database_url: String,
    pub scratch: PathBuf,
    pub workers: Option<usize>,
}

impl ServiceConfig {
    /// A command for the binary with the benchmark's environment and no config files.
    fn command(&self, addr: SocketAddr) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env("USAGE_CONFIG_DIR", self.scratch.join("no-config"))
            .env("USAGE_HTTP_ADDR", addr.to_string())
            .env("USAGE_DATABASE_URL", &self.database_url)
            .env("USAGE_JWT_SECRET", SECRET)
            .env("USAGE_SHUTDOWN_TIMEOUT_SECONDS", "5")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        if let Some(workers) = self.workers {
            command.env("USAGE_WORKERS", workers.to_string());
        }
        command
    }

    /// Mints a token for `subject` with the binary's `token` command.
    pub fn token(&self, subject: &str) -> anyhow::Result<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let output = self
            .command(addr)
            .args(["token", "--sub", subject, "--ttl", "6h"])
            .output()
            .with_context(|| format!("while running {}", self.binary.display()))?;
        if !output.status.success() {
            bail!(
                "`usage-service token` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8(output.stdout)
            .context("the token is not UTF-8")?
            .trim()
            .to_owned())
    }

    /// Starts the service on a free loopback port and waits until it answers.
    pub async fn start(&self, name: &str) -> anyhow::Result<RunningService> {
        let addr = free_loopback_port()?;
        let log_path = self.scratch.join(format!("{name}.log"));
        let log = File::create(&log_path)
            .with_context(|| format!("while creating {}", log_path.display()))?;
        let child = self
            .command(addr)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("while starting {}", self.binary.display()))?;
        let mut service = RunningService {
            child,
            addr,
            log_path,
        };
        service.wait_until_ready().await?;
        Ok(service)
    }
}

/// A started service; dropping it kills the process if it was not stopped.
#[derive(Debug)]
pub struct RunningService {
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
}

impl RunningService {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/healthz", self.base_url());
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the service exited with {status} at start-up; its log:\n{}",
                    tail(&self.log_path)
                );
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!(
            "the service did not answer within {START_TIMEOUT:?}; its log:\n{}",
            tail(&self.log_path)
        )
    }

    /// Peak resident memory so far (`VmHWM`), in megabytes (10^6 bytes).
    pub fn peak_rss_mb(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .context("while reading the service's /proc status")?;
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<f64>().ok())
            .context("no VmHWM line in /proc status")?;
        Ok(kib * 1_024.0 / 1e6)
    }

    /// CPU time the service used so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_time(&self.pid().to_string())
    }

    /// Sends SIGTERM and waits for the exit; kills the process if it does not stop in time.
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child.kill().context("while killing the service")?;
        bail!("the service did not stop within {STOP_TIMEOUT:?} of SIGTERM and was killed")
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU time (user + system) used so far by process `pid` (or `self`), from `/proc`.
pub fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("while reading /proc/{pid}/stat"))?;
    // Fields after the command name, which is parenthesised and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .context("malformed /proc stat")
    };
    // utime and stime are fields 14 and 15 of stat(5); the rest starts at field 3.
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(
        total * 1_000 / CLOCK_TICKS_PER_SECOND,
    ))
}

/// `USER_HZ`: Linux reports process times in hundredths of a second on every architecture.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// A loopback port that was free a moment ago.
fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("while finding a free port")?;
    Ok(listener.local_addr()?)
}

/// The last lines of a log file, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
