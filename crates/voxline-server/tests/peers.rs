//! voxline against real peers that are not callers: a SIPp registrar, SIPp
//! callees for `voxline call`, and hostile input (malformed messages, floods).

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn voxline_call(config: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_voxline"))
        .arg("call")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("VOXLINE_LOG", "warn")
        .output()
        .expect("run voxline call");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn call_id_of(output: &str) -> String {
    output
        .split("call-id=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no call-id in output:\n{output}"))
        .to_string()
}

#[test]
fn voxline_call_to_a_sipp_callee_completes_and_is_recorded() {
    let server = Server::start("call-out", "", None);
    let uas = SippUas::start("builtin:uas", 1);
    let dir = test_dir("call-out-rec");
    write_tone_wav(&dir.join("hello.wav"), 1.0, 500.0);
    let rec = dir.join("heard.wav");
    let target = format!("sip:bob@127.0.0.1:{}", uas.port);
    let (code, out) = voxline_call(
        &server.config,
        &[
            &target,
            "--max-seconds",
            "2",
            "--play",
            dir.join("hello.wav").to_str().unwrap(),
            "--record",
            rec.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("answered: codec=PCMU"), "{out}");
    assert!(uas.finish(), "sipp uas reported a failed call");
    let r = server.record(&call_id_of(&out));
    assert_eq!(r["direction"], "outbound", "{r}");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["end_reason"], "max_duration");
    assert_eq!(r["hangup_by"], "voxline");
    assert!(r["packets_sent"].as_i64().unwrap_or(0) >= 90, "{r}");
    // What voxline sent (right channel) holds the played tone.
    assert!(channel_rms(&rec, 1, 0.1, 0.9) > 2000.0);
}

#[test]
fn voxline_call_cancels_when_nobody_answers() {
    let server = Server::start("call-cancel", "", None);
    let uas = SippUas::start("uas_ring_forever.xml", 1);
    let target = format!("sip:bob@127.0.0.1:{}", uas.port);
    let started = Instant::now();
    let (code, out) = voxline_call(&server.config, &[&target, "--ring-timeout", "1"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(out.contains("progress: 180"), "{out}");
    assert!(out.contains("not answered: no_answer (487)"), "{out}");
    assert!(uas.finish(), "sipp uas did not see CANCEL/487/ACK");
    let r = server.record(&call_id_of(&out));
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["end_reason"], "no_answer");
    assert_eq!(r["sip_status"], 487);
}

#[test]
fn voxline_call_through_a_trunk_and_its_proxy_answers_the_challenge_and_hears_early_media() {
    let uas = SippUas::start("uas_auth_early_media.xml", 1);
    let trunk = format!(
        // The trunk's host has no address: every request must go through the outbound proxy.
        "[[trunk]]\nname = \"pbx\"\nkind = \"ip\"\nallow = [\"192.0.2.1/32\"]\nhost = \"pbx.invalid\"\noutbound_proxy = \"127.0.0.1:{}\"\nusername = \"voxline\"\npassword = \"s3cret-trunk\"\ncaller_id = \"1000\"\n",
        uas.port
    );
    let server = Server::start("call-trunk", &trunk, None);
    let (code, out) = voxline_call(&server.config, &["2000", "--trunk", "pbx", "--max-seconds", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("progress: 183 (early media)"), "{out}");
    assert!(out.contains("(had early media)"), "{out}");
    assert!(uas.finish(), "the PBX did not accept the credentials");
    let r = server.record(&call_id_of(&out));
    assert_eq!(r["trunk"], "pbx", "{r}");
    assert_eq!(r["status"], "completed");
}

fn registration_state(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = server.http_get("/api/trunks");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let reg = v
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == "carrier"))
            .map(|t| t["registration"].as_str().unwrap_or("").to_string())
            .unwrap_or_default();
        if !reg.is_empty() && reg != "Idle" {
            return reg;
        }
        if Instant::now() > deadline {
            return reg;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn register_trunk(port: u16, password: &str) -> String {
    format!(
        "[[trunk]]\nname = \"carrier\"\nkind = \"register\"\nhost = \"127.0.0.1:{port}\"\nusername = \"voxline\"\npassword = \"{password}\"\nexpires = 60\n"
    )
}

#[test]
fn registration_with_the_right_password_succeeds() {
    let registrar = SippUas::start("uas_registrar.xml", 1);
    let server = Server::start("reg-ok", &register_trunk(registrar.port, "s3cret-trunk"), None);
    let state = registration_state(&server);
    assert!(state.starts_with("Registered"), "state {state}\n{}", server.log_text());
    assert!(registrar.finish());
    assert!(server.log_text().contains("trunk registered"));
}

#[test]
fn registration_with_a_wrong_password_fails_and_is_logged() {
    let registrar = SippUas::start("uas_registrar.xml", 1);
    let server = Server::start("reg-bad", &register_trunk(registrar.port, "wrong"), None);
    let state = registration_state(&server);
    assert!(state.starts_with("Failed"), "state {state}\n{}", server.log_text());
    assert!(server.log_text().contains("trunk registration failed"));
}

#[test]
fn malformed_messages_are_dropped_or_refused_and_the_server_keeps_serving() {
    let server = Server::start("malformed", "", None);
    let port = server.sip_port;
    let good_tail = format!(
        "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1:{port}>\r\nCall-ID: bad-1@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
    );
    let huge = "X".repeat(70_000);
    // (case, message, expected status line prefix; None = dropped silently)
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("bad Via", format!("OPTIONS sip:b@127.0.0.1 SIP/2.0\r\nVia: garbage;;;\r\n{good_tail}Content-Length: 0\r\n\r\n").into_bytes(), None),
        ("missing Call-ID", b"OPTIONS sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKm1\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n".to_vec(), Some("SIP/2.0 400")),
        ("negative Content-Length", format!("OPTIONS sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKm2\r\n{good_tail}Content-Length: -5\r\n\r\n").into_bytes(), Some("SIP/2.0 400")),
        ("Content-Length larger than body", format!("INVITE sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKm3\r\n{good_tail}Content-Type: application/sdp\r\nContent-Length: 500\r\n\r\nv=0\r\n").into_bytes(), Some("SIP/2.0 400")),
        ("garbage bytes", vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x13, 0x37, b'\r', b'\n'], None),
        ("oversized header", format!("OPTIONS sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKm4\r\n{good_tail}X-Big: {}\r\nContent-Length: 0\r\n\r\n", &huge[..60_000]).into_bytes(), Some("SIP/2.0 400")),
        ("binary in the request line", b"INV\x00ITE sip:b@127.0.0.1 SIP/2.0\r\n\r\n".to_vec(), None),
        ("unknown method", format!("FROBNICATE sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKm5\r\n{}Content-Length: 0\r\n\r\n", good_tail.replace("1 OPTIONS", "1 FROBNICATE")).into_bytes(), Some("SIP/2.0 501")),
        ("INVITE with broken SDP", format!("INVITE sip:demo@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKm6\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:demo@127.0.0.1:{port}>\r\nCall-ID: bad-sdp@test\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:9>\r\nContent-Type: application/sdp\r\nContent-Length: 12\r\n\r\nv=0\r\nm=xyz\r\n").into_bytes(), Some("SIP/2.0 400")),
    ];
    for (name, msg, expected) in &cases {
        let reply = udp_exchange(&server, "127.0.0.1", msg, Duration::from_millis(400));
        // A 100 Trying may precede the final answer of an INVITE; read on.
        let status = reply.as_deref().map(|r| r.lines().next().unwrap_or("").to_string());
        match expected {
            None => assert!(reply.is_none(), "{name}: expected no reply, got {status:?}"),
            Some(prefix) => {
                let s = status.unwrap_or_else(|| panic!("{name}: expected {prefix}, got no reply"));
                assert!(
                    s.starts_with(prefix) || s.starts_with("SIP/2.0 100"),
                    "{name}: expected {prefix}, got {s}"
                );
            }
        }
    }
    // Still alive and answering.
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let local = s.local_addr().expect("addr");
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    s.send_to(options_request(&server, &local, 1).as_bytes(), ("127.0.0.1", port))
        .expect("send");
    let mut buf = vec![0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).expect("OPTIONS answered after malformed input");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200"));
}

#[test]
fn a_flooding_source_is_banned_after_16_requests_and_others_are_not() {
    let server = Server::start("flood", "", None);
    let s = std::net::UdpSocket::bind("127.0.0.3:0").expect("bind 127.0.0.3");
    let local = s.local_addr().expect("addr");
    s.set_read_timeout(Some(Duration::from_millis(300))).ok();
    let mut answered = 0;
    for n in 1..=24 {
        s.send_to(
            options_request(&server, &local, n).as_bytes(),
            ("127.0.0.1", server.sip_port),
        )
        .expect("send");
        let mut buf = vec![0u8; 4096];
        if let Ok((len, _)) = s.recv_from(&mut buf) {
            if String::from_utf8_lossy(&buf[..len]).starts_with("SIP/2.0 200") {
                answered += 1;
            }
        }
    }
    assert_eq!(answered, 16, "the first 16 requests are answered, the rest dropped");
    let log = server.log_text();
    assert!(log.contains("source banned") && log.contains("127.0.0.3"), "{log}");
    // A trusted trunk source is unaffected.
    let t = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let tl = t.local_addr().expect("addr");
    t.set_read_timeout(Some(Duration::from_secs(2))).ok();
    t.send_to(
        options_request(&server, &tl, 99).as_bytes(),
        ("127.0.0.1", server.sip_port),
    )
    .expect("send");
    let mut buf = vec![0u8; 4096];
    assert!(t.recv_from(&mut buf).is_ok(), "trunk source answered");
}

#[test]
fn a_flood_over_one_tcp_connection_is_cut_off_after_16_requests() {
    use std::io::{BufRead, BufReader, Write};
    let server = Server::start("tcp-flood", "", None);
    // The connection comes from an untrusted address, 127.0.0.3.
    let stream = tcp_connect_from("127.0.0.3".parse().expect("ip"), server.sip_port).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(400))).ok();
    let me = stream.local_addr().expect("addr");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut answered = 0;
    for n in 1..=24 {
        let req = options_request(&server, &me, n).replace("SIP/2.0/UDP", "SIP/2.0/TCP");
        writer.write_all(req.as_bytes()).expect("write");
        let mut status = String::new();
        if reader.read_line(&mut status).is_ok() && status.starts_with("SIP/2.0 200") {
            answered += 1;
            // Skip the rest of this response (up to the blank line).
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok() && line != "\r\n" && !line.is_empty() {
                line.clear();
            }
        }
    }
    // Every request counts; the 17th and later are dropped.
    assert_eq!(answered, 16, "requests answered on the flooding connection");
    let log = server.log_text();
    assert!(log.contains("source banned") && log.contains("127.0.0.3"), "{log}");
}

/// A TCP connection to the server from a chosen local address.
fn tcp_connect_from(from: std::net::IpAddr, port: u16) -> std::io::Result<std::net::TcpStream> {
    use std::net::SocketAddr;
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::new(from, 0).into())?;
    s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    Ok(s.into())
}

#[test]
fn voxline_call_sends_rfc4733_digits_that_the_server_receives() {
    // The route logs the digits themselves (by default only that a key came).
    let server = Server::start_with("dtmf-out", "", None, |t| {
        t.replace(
            "name = \"demo\"\ntrunk = \"local\"\nhandler = \"playback\"\nparams = { greeting = \"greeting.wav\", max_seconds = 20 }",
            "name = \"demo\"\ntrunk = \"local\"\nhandler = \"playback\"\nparams = { greeting = \"greeting.wav\", max_seconds = 20, log_digits = true }",
        )
    });
    let target = format!("sip:demo@127.0.0.1:{}", server.sip_port);
    let (code, out) = voxline_call(&server.config, &[&target, "--dtmf", "12#", "--max-seconds", "2"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("dtmf sent: 12#"), "{out}");
    server.record(&call_id_of(&out));
    let log = server.log_text();
    let digits: Vec<String> = log
        .lines()
        .filter(|l| l.contains(" DTMF ") && l.contains("source=\"rtp\""))
        .filter_map(|l| {
            l.split("digit=")
                .nth(1)
                .and_then(|d| d.chars().next())
                .map(String::from)
        })
        .collect();
    assert_eq!(digits.concat(), "12#", "{log}");
    assert!(log.contains("duration_ms=100"), "{log}");
}

/// Two RTCP implementations of ours face each other: `voxline call` to the
/// echo route for 12 s (several report intervals). Each side echoes the
/// other's last SR (LSR/DLSR), so the server's record has a round-trip time,
/// and both sides' reports say nothing was lost on loopback.
#[test]
fn rtcp_between_voxline_call_and_the_server_measures_the_round_trip() {
    let server = Server::start("rtcp-rtt", "", None);
    let target = format!("sip:echo@127.0.0.1:{}", server.sip_port);
    let (code, out) = voxline_call(&server.config, &[&target, "--max-seconds", "12"]);
    assert_eq!(code, 0, "{out}");
    let r = server.record(&call_id_of(&out));
    let rtt = r["rtt_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("no RTT in the record: {r}"));
    assert!((0.0..20.0).contains(&rtt), "loopback RTT {rtt} ms");
    assert_eq!(r["remote_lost"].as_i64(), Some(0), "{r}");
    eprintln!(
        "RTCP voxline↔voxline: rtt {rtt:.3} ms, jitter {} ms",
        r["remote_jitter_ms"]
    );
}

/// Sends `msg` (with `{local}` replaced by the socket's address and
/// `{port}` by the server's SIP port) from a fresh socket on 127.0.0.1 and
/// returns the first final response, or None after 2 s.
fn final_answer(server: &Server, msg: &str) -> Option<String> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let local = s.local_addr().expect("addr");
    let msg = msg
        .replace("{local}", &local.to_string())
        .replace("{port}", &server.sip_port.to_string());
    s.send_to(msg.as_bytes(), ("127.0.0.1", server.sip_port)).expect("send");
    final_answer_on(&s, Duration::from_secs(2))
}

/// RFC 3261's answers to odd but possible requests, over UDP, in messages
/// written here from the descriptions of RFC 4475's torture tests (none
/// copied). Each case: what it is, the message, the status the RFC gives
/// and a header the answer must carry.
#[test]
fn odd_requests_get_the_answers_rfc_3261_gives() {
    let server = Server::start("rfc3261-odd", "", None);
    let head = |first: &str, method: &str, n: u32| {
        format!("{first}\r\nVia: SIP/2.0/UDP {{local}};branch=z9hG4bKodd{n}\r\nFrom: <sip:tester@127.0.0.1>;tag=o{n}\r\nTo: <sip:b@127.0.0.1:{{port}}>\r\nCall-ID: odd-{n}@test\r\nCSeq: {n} {method}\r\nMax-Forwards: 70\r\n")
    };
    let sdp = "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
    let invite = |extra: &str, n: u32| {
        format!(
            "{}Contact: <sip:tester@{{local}}>\r\n{extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            head("INVITE sip:ring@127.0.0.1:{port} SIP/2.0", "INVITE", n),
            sdp.len()
        )
    };
    let options =
        |first: &str, extra: &str, n: u32| format!("{}{extra}Content-Length: 0\r\n\r\n", head(first, "OPTIONS", n));
    let plain = "OPTIONS sip:b@127.0.0.1:{port} SIP/2.0";
    let cases: Vec<(&str, String, &str, Option<&str>)> = vec![
        (
            "an option-tag nobody knows in Require",
            options(plain, "Require: frobnication-2026, timer\r\n", 1),
            "420",
            Some("Unsupported: frobnication-2026"),
        ),
        (
            "a Request-URI scheme nobody knows",
            options("OPTIONS weirdscheme:opaque-thing-here SIP/2.0", "", 2),
            "416",
            None,
        ),
        (
            "an INVITE that accepts no SDP in the answer",
            invite("Accept: text/x-nothing-we-write\r\n", 3),
            "406",
            Some("Accept: application/sdp"),
        ),
        (
            "a Request-URI in angle brackets",
            options("OPTIONS <sip:b@127.0.0.1:{port}> SIP/2.0", "", 4),
            "400",
            None,
        ),
        (
            "escaped headers in the Request-URI",
            options("OPTIONS sip:b@127.0.0.1:{port}?Route=%3Csip:elsewhere.example%3E SIP/2.0", "", 5),
            "400",
            None,
        ),
        (
            "a display name with an unbalanced quote",
            options(plain, "", 6).replace("To: <sip:b@", "To: \"Mr Unbalanced <sip:b@"),
            "400",
            None,
        ),
        (
            "a display name with a comma, unquoted",
            options(plain, "", 7).replace("From: <sip:tester@", "From: Tester, Chief <sip:tester@"),
            "400",
            None,
        ),
        (
            "a Date not in GMT",
            options(plain, "Date: Sun, 06 Dec 2026 16:00:00 PST\r\n", 8),
            "400",
            None,
        ),
        (
            "SIP version 7.0",
            options(plain, "", 9).replace(" SIP/2.0\r\nVia", " SIP/7.0\r\nVia"),
            "505",
            None,
        ),
        (
            "an RFC 2543 request (a branch without the magic cookie)",
            options(plain, "", 10).replace("branch=z9hG4bKodd10", "branch=2543-style-10"),
            "200",
            Some("branch=2543-style-10"),
        ),
        (
            "legal but unusual whitespace and folded lines",
            "OPTIONS sip:b@127.0.0.1:{port} SIP/2.0\r\nVia  :  SIP / 2.0 / UDP {local} ; branch = z9hG4bKodd11\r\nFrom:\r\n  <sip:tester@127.0.0.1> ;tag=o11\r\nTo   :    <sip:b@127.0.0.1:{port}>\r\nCall-ID   :   odd-11@test\r\nCSeq: 0011\r\n    OPTIONS\r\nMax-Forwards: 0070\r\nContent-Length: 0\r\n\r\n".to_string(),
            "200",
            Some("odd-11@test"),
        ),
        (
            "a Require on an ACK is ignored (and an ACK is never answered)",
            format!("{}Require: frobnication-2026\r\nContent-Length: 0\r\n\r\n", head("ACK sip:b@127.0.0.1:{port} SIP/2.0", "ACK", 12)),
            "none",
            None,
        ),
    ];
    let mut wrong = Vec::new();
    for (what, msg, want, carries) in &cases {
        let answer = final_answer(&server, msg);
        let status = answer.as_deref().and_then(|a| a.get(8..11)).unwrap_or("none");
        let carried = carries.is_none_or(|h| answer.as_deref().is_some_and(|a| a.contains(h)));
        if status != *want || !carried {
            wrong.push(format!("{what}: wanted {want} with {carries:?}, got {answer:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}\n{}", wrong.join("\n"), server.log_text());
}
