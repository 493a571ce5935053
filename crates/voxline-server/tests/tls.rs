//! The TLS listener: a certificate from config, a real TLS client (openssl
//! s_client), an OPTIONS answered over it; a bad certificate path is refused
//! at start-up with the field named; floods of idle TCP and TLS connections
//! are capped per source and closed when they send nothing.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn options_over_tls_is_answered() {
    let (tls_port, extra, _) = tls_listener("tls-cert");
    let server = Server::start("tls", &extra, None);
    assert!(
        server.log_text().contains(&format!("TLS 127.0.0.1:{tls_port}")),
        "{}",
        server.log_text()
    );

    let first = tls_options(tls_port).unwrap_or_else(|| panic!("no answer over TLS\n{}", server.log_text()));
    assert!(first.starts_with("SIP/2.0 200"), "got {first}");
}

static SENT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Sends an OPTIONS over TLS with openssl s_client (from 127.0.0.1); the
/// first line of the answer, if one came within 5 s.
fn tls_options(tls_port: u16) -> Option<String> {
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
    // s_client reads its input once the handshake is done.
    let req = format!(
        "OPTIONS sip:ping@127.0.0.1:{tls_port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKtls1\r\nFrom: <sips:probe@127.0.0.1>;tag=1\r\nTo: <sips:ping@127.0.0.1>\r\nCall-ID: tls-{}-{}@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        std::process::id(),
        SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    stdin.write_all(req.as_bytes()).expect("write");
    stdin.flush().ok();
    let first = rx.recv_timeout(Duration::from_secs(5)).ok();
    let _ = client.kill();
    let _ = client.wait();
    first
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

/// Opens `n` TCP connections from `from` to `to` and keeps them open;
/// returns them with the number the kernel refused or timed out.
fn open_idle(from: &str, to: u16, n: usize) -> (Vec<socket2::Socket>, usize) {
    let local: std::net::SocketAddr = format!("{from}:0").parse().expect("from");
    let remote: std::net::SocketAddr = format!("127.0.0.1:{to}").parse().expect("to");
    let mut held = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
        s.bind(&local.into()).expect("bind the flood's source");
        match s.connect_timeout(&remote.into(), Duration::from_millis(500)) {
            Ok(()) => held.push(s),
            Err(_) => failed += 1,
        }
    }
    (held, failed)
}

/// Descriptors this process may open (the flood needs 10,000 at once),
/// after raising its soft limit to the hard one (`prlimit`, util-linux).
fn open_files_limit() -> u64 {
    let read = |field: usize| -> u64 {
        let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
        limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(field))
            .and_then(|v| v.parse().ok())
            .expect("Max open files")
    };
    let (soft, hard) = (read(3), read(4));
    if soft < hard {
        let pid = std::process::id().to_string();
        let raised = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            raised,
            "prlimit could not raise the open files limit from {soft} to {hard}"
        );
    }
    read(3)
}

/// Waits up to `within` for a metric to satisfy `ok`; its last value.
fn wait_metric(server: &Server, name: &str, within: Duration, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = std::time::Instant::now() + within;
    loop {
        let v = server.metric(name);
        if ok(v) || std::time::Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn idle_connection_floods_are_capped_and_calls_still_come_in() {
    const FLOOD: usize = 10_000;
    assert!(
        open_files_limit() >= FLOOD as u64 + 1000,
        "the flood test holds {FLOOD} sockets at once: raise `ulimit -n`"
    );
    let (tls_port, extra, _) = tls_listener("flood-cert");
    // The carrier also calls in from 127.0.0.2 (over TCP, during the flood).
    let server = Server::start_with("conn-flood", &extra, None, |text| {
        text.replace(
            "allow = [\"127.0.0.1/32\"]",
            "allow = [\"127.0.0.1/32\", \"127.0.0.2/32\"]",
        )
        .replace(
            "ban_seconds = 60\n",
            "ban_seconds = 60\nconnection_setup_ms = 1000\nconnection_idle_secs = 2\n",
        )
    });
    let rss_before = server.rss_kib();

    // 10,000 idle TCP connections from 127.0.0.3, sending nothing.
    let (tcp_flood, tcp_failed) = open_idle("127.0.0.3", server.sip_port, FLOOD);
    let held_tcp = server.metric("voxline_sip_stream_connections");
    // A call from another source over TCP while the flood's sockets are open.
    let run = sipp(&server, "uac_wait_bye.xml", "hangup", "127.0.0.2", &["-t", "t1"]);
    assert!(
        run.ok,
        "a call over TCP from another source failed:\n{}\n{}",
        run.output,
        server.log_text()
    );
    let rss_tcp = server.rss_kib();
    // The 32 let in sent nothing: closed after the 1 s setup time.
    let left_tcp = wait_metric(
        &server,
        "voxline_sip_stream_connections",
        Duration::from_secs(10),
        |v| v == 0.0,
    );
    let tcp_timeouts = server.metric("voxline_sip_stream_setup_timeouts_total");
    drop(tcp_flood);

    // 10,000 TCP connections to the TLS port from 127.0.0.4, no handshake.
    let (tls_flood, tls_failed) = open_idle("127.0.0.4", tls_port, FLOOD);
    let held_tls = server.metric("voxline_sip_stream_connections");
    let answer = tls_options(tls_port).unwrap_or_else(|| panic!("no answer over TLS\n{}", server.log_text()));
    assert!(answer.starts_with("SIP/2.0 200"), "got {answer}");
    let rss_tls = server.rss_kib();
    let left_tls = wait_metric(
        &server,
        "voxline_sip_stream_connections",
        Duration::from_secs(10),
        |v| v == 0.0,
    );
    drop(tls_flood);
    let refused = server.metric("voxline_sip_stream_refused_total");
    let timeouts = server.metric("voxline_sip_stream_setup_timeouts_total");
    eprintln!(
        "flood figures: tcp held {held_tcp} (kernel refused {tcp_failed}), tls held {held_tls} (refused {tls_failed}), \
         refused at accept {refused}, setup timeouts {tcp_timeouts} then {timeouts}, handshake failures {}, rss KiB before {rss_before} after tcp {rss_tcp} after tls {rss_tls}",
        server.metric("voxline_sip_stream_handshake_failures_total")
    );

    // Each source held at most its 32 (plus SIPp's own connection).
    assert!(held_tcp <= 33.0, "held {held_tcp} TCP connections");
    assert!(held_tls <= 33.0, "held {held_tls} connections on the TLS port");
    assert!(refused >= 20.0, "refused only {refused}");
    assert!(
        timeouts >= 64.0,
        "only {timeouts} idle connections closed at the setup time"
    );
    assert_eq!((left_tcp, left_tls), (0.0, 0.0), "idle connections were not closed");
    // Both floods ended in a ban of their source.
    server.wait_for_log("source=127.0.0.3 ban_seconds=60", 1, Duration::from_secs(5));
    server.wait_for_log("source=127.0.0.4 ban_seconds=60", 1, Duration::from_secs(5));
    // The stated bound: 20,000 connection attempts cost under 32 MiB.
    let grown = rss_tcp.max(rss_tls).saturating_sub(rss_before);
    assert!(grown < 32 * 1024, "memory grew {grown} KiB under the floods");
    assert!(
        !server.log_text().contains("Failed to serve listener"),
        "the stack tried to bind a stream listener itself:\n{}",
        server.log_text()
    );
}

#[test]
fn a_slow_client_is_closed_when_it_stops_sending() {
    let server = Server::start_with("slow-client", "", None, |text| {
        text.replace("ban_seconds = 60\n", "ban_seconds = 60\nconnection_idle_secs = 1\n")
    });
    // Half a request line, then nothing: the stack closes it once idle.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.sip_port)).expect("connect");
    s.write_all(b"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.5:5060")
        .expect("write");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut s, &mut buf).expect("the server closes the connection (read returns 0)");
    assert_eq!(n, 0, "got {:?}", String::from_utf8_lossy(&buf[..n]));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}, before the idle time"
    );
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    let left = wait_metric(&server, "voxline_sip_stream_connections", Duration::from_secs(5), |v| {
        v == 0.0
    });
    assert_eq!(left, 0.0, "the closed connection still holds its place");
}
