//! The real binary: starts with no arguments, serves, and exits 0 after SIGTERM.

mod support;

use support::{listening_address, signal, start};

fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connects");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("reads the response");
    response
}

#[test]
fn the_binary_serves_with_no_arguments_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(
        dir.path(),
        &[
            ("USAGE_HTTP_ADDR", "127.0.0.1:0"),
            ("USAGE_JWT_SECRET", "binary-test-secret"),
        ],
    );
    let address = listening_address(&mut child);

    assert!(http_get(&address, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(
        dir.path().join("data/usage.sqlite3").exists(),
        "the default database was created"
    );

    signal(&child, "-TERM");
    let exit = child.wait().expect("the binary exits");
    assert_eq!(
        exit.code(),
        Some(0),
        "graceful shutdown exits with status 0"
    );
}

#[test]
fn without_a_key_the_binary_refuses_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let child = start(dir.path(), &[("USAGE_HTTP_ADDR", "0.0.0.0:0")]);
    let output = child.wait_with_output().expect("the binary exits");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("USAGE_JWT_SECRET"),
        "the error says what to set: {stderr}"
    );
}

#[test]
fn without_a_key_on_loopback_the_binary_writes_a_development_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(dir.path(), &[("USAGE_HTTP_ADDR", "127.0.0.1:0")]);
    let address = listening_address(&mut child);

    let token = std::fs::read_to_string(dir.path().join("data/dev-token.txt")).unwrap();
    let response = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "GET /api/usage/stats HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
             Connection: close\r\n\r\n",
            token.trim()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "the development token works: {response}"
    );
}
