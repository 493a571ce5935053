//! The TLS listener: a certificate from config, a real TLS client (openssl
//! s_client), an OPTIONS answered over it; a bad certificate path is refused
//! at start-up with the field named.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn make_cert(dir: &std::path::Path) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
}

#[test]
fn options_over_tls_is_answered() {
    let certs = test_dir("tls-cert");
    make_cert(&certs);
    let tls_port = free_port();
    let extra = format!(
        "[[sip.listener]]\ntransport = \"tls\"\nbind = \"127.0.0.1:{tls_port}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        certs.join("cert.pem").display(),
        certs.join("key.pem").display()
    );
    let server = Server::start("tls", &extra, None);
    assert!(
        server.log_text().contains(&format!("TLS 127.0.0.1:{tls_port}")),
        "{}",
        server.log_text()
    );

    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &format!("127.0.0.1:{tls_port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = client.stdin.take().expect("stdin");
    let stdout = client.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let req = format!(
        "OPTIONS sip:ping@127.0.0.1:{tls_port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKtls1\r\nFrom: <sips:probe@127.0.0.1>;tag=1\r\nTo: <sips:ping@127.0.0.1>\r\nCall-ID: tls-1@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    stdin.write_all(req.as_bytes()).expect("write");
    stdin.flush().ok();
    let first = rx.recv_timeout(Duration::from_secs(5));
    let _ = client.kill();
    let _ = client.wait();
    let first = first.unwrap_or_else(|_| panic!("no answer over TLS\n{}", server.log_text()));
    assert!(first.starts_with("SIP/2.0 200"), "got {first}");
}

#[test]
fn a_missing_certificate_names_the_field() {
    let dir = test_dir("tls-bad");
    let cfg = dir.join("voxline.toml");
    std::fs::write(
        &cfg,
        "[sip]\n[[sip.listener]]\ntransport = \"tls\"\nbind = \"127.0.0.1:5061\"\ncert = \"nope.pem\"\nkey = \"nope.key\"\n[media]\nbind_ip = \"127.0.0.1\"\n[store]\nurl = \"sqlite://calls.db\"\n",
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_voxline"))
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .expect("voxline");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sip.listener[0].cert"), "{err}");
    assert!(err.contains(&cfg.display().to_string()), "{err}");
}
