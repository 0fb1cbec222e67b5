//! Running the real `usage-service` binary from a test.

#![allow(dead_code)] // each test binary uses part of this kit

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BINARY: &str = env!("CARGO_BIN_EXE_usage-service");

/// The binary, started in `dir` with only `PATH`, `RUST_LOG` and `envs` in its environment.
pub fn start(dir: &Path, envs: &[(&str, &str)]) -> Child {
    Command::new(BINARY)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Reads the log until it says where the server listens; keeps draining the log after.
/// If the binary exits first, the panic shows the end of its log.
pub fn listening_address(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("piped stderr");
    let (sender, receiver) = std::sync::mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening") {
                let address = line.split("address=").nth(1).unwrap_or_default();
                let address = address.split_whitespace().next().unwrap_or_default();
                let _ = sender.send(address.to_owned());
            }
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            kept.push(line);
            if kept.len() > 40 {
                kept.remove(0);
            }
        }
    });
    receiver
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            let log = log.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
            panic!("the binary did not say where it listens; its log ends with:\n{log}")
        })
}

/// Sends `signal` (such as `-TERM` or `-KILL`) to the process.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    assert!(status.expect("kill runs").success(), "kill {signal} failed");
}
