//! A MongoDB stand-in of the test's own, with its data in a file, for tests that kill the
//! database server itself and start it again on the same address.
//!
//! The shared server of `USAGE_TEST_MONGODB_URI` cannot be killed by one test without
//! breaking the others, and may be a real MongoDB the test cannot restart. This one is the
//! `mongoeco` stand-in of `support/mongo/standin.py` on its SQLite engine, whose committed
//! writes survive a SIGKILL as a real server's journal does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `tests/support/mongo/start.sh` puts the stand-in's virtual environment, unless
/// `USAGE_MONGO_VENV` says otherwise.
const DEFAULT_VENV: &str = ".cache/usage-service/mongoeco-venv";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/support/mongo/standin.py");
/// How long a start may take: Python imports mongoeco in about a second.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running stand-in process; killed when dropped.
#[derive(Debug)]
pub struct StandIn {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl StandIn {
    /// Starts a stand-in on a free port, keeping its data and log in `dir`.
    pub fn start(dir: &Path) -> Self {
        let mut standin = Self {
            child: None,
            dir: dir.to_owned(),
            port: 0,
        };
        standin.spawn();
        standin
    }

    /// The URI of `database` on this server.
    pub fn uri(&self, database: &str) -> String {
        format!(
            "mongodb://127.0.0.1:{}/{database}?directConnection=true",
            self.port
        )
    }

    /// Kills the server with SIGKILL, as a crash of its host would, and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data file.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let uri_file = self.dir.join("standin.uri");
        let _ = std::fs::remove_file(&uri_file);
        let log = std::fs::File::create(self.dir.join("standin.log")).expect("a log file");
        let child = Command::new(python())
            .arg(SCRIPT)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--uri-file")
            .arg(&uri_file)
            .arg("--db-file")
            .arg(self.dir.join("standin.sqlite3"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the stand-in's Python starts");
        self.child = Some(child);
        let uri = self.wait_for(&uri_file);
        self.port = port_of(&uri);
    }

    /// The URI the server writes once it listens.
    fn wait_for(&mut self, uri_file: &Path) -> String {
        let started = Instant::now();
        loop {
            if let Ok(uri) = std::fs::read_to_string(uri_file)
                && !uri.trim().is_empty()
            {
                return uri.trim().to_owned();
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || started.elapsed() > START_TIMEOUT {
                let log = std::fs::read_to_string(self.dir.join("standin.log"));
                panic!(
                    "the MongoDB stand-in did not start ({exited:?}); its log:\n{}",
                    log.unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The stand-in's Python; panics with directions when it is not installed.
fn python() -> PathBuf {
    let venv = std::env::var_os("USAGE_MONGO_VENV").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(DEFAULT_VENV)
        },
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing. This test runs a MongoDB stand-in of its own: install it with \
         `bash tests/support/mongo/start.sh --install-only` (scripts/test.sh does), or set \
         USAGE_MONGO_VENV to the virtual environment that has mongoeco",
        python.display()
    );
    python
}

fn port_of(uri: &str) -> u16 {
    uri.split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?']).next())
        .and_then(|host| host.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in the stand-in's URI {uri:?}"))
}
