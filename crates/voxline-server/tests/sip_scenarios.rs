//! SIP behaviour against a real SIPp over loopback: calls, CANCEL, hang-up by
//! voxline, hold/unhold, late offer, OPTIONS, 488, 403, digest users, TCP.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn basic_call_carries_audio_both_ways_and_is_recorded() {
    let server = Server::start("basic", "", None);
    let run = sipp(&server, "uac_audio.xml", "demo", "127.0.0.1", &[]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    let r = server.record(&run.call_id);
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["direction"], "inbound");
    assert_eq!(r["route"], "demo");
    assert_eq!(r["trunk"], "local");
    assert_eq!(r["codec"], "PCMU");
    assert_eq!(r["end_reason"], "bye");
    assert_eq!(r["hangup_by"], "caller");
    assert!(r["answer_at"].as_i64() >= r["invite_at"].as_i64());
    // 3 s of caller audio at 50 packets/s, and voxline's paced packets over ~3 s.
    let received = r["packets_received"].as_i64().unwrap_or(0);
    let sent = r["packets_sent"].as_i64().unwrap_or(0);
    assert!((140..=160).contains(&received), "received {received}");
    assert!((140..=170).contains(&sent), "sent {sent}");
    assert_eq!(r["packets_lost"], 0, "loopback loses nothing: {r}");
    // The recording: caller (left) has the caller's tone, voxline (right) has the greeting.
    let path = std::path::PathBuf::from(r["recording_path"].as_str().expect("recording path"));
    let caller = channel_rms(&path, 0, 0.5, 2.5);
    let agent = channel_rms(&path, 1, 0.2, 1.8);
    assert!(caller > 2000.0, "caller channel rms {caller}");
    assert!(agent > 2000.0, "voxline channel rms {agent}");
    // After the 2 s greeting voxline sends silence.
    assert!(channel_rms(&path, 1, 2.3, 2.9) < 50.0);
    // The media clock's counters are exported: it ran (10 slots a frame).
    let metrics = server.http_get("/metrics");
    let slots: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("voxline_media_clock_slots_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no clock counter in /metrics:\n{metrics}"));
    assert!(slots >= 1500, "{slots} slots run during a 3 s call");
    assert!(
        metrics.contains("voxline_media_clock_skipped_frames_total 0"),
        "{metrics}"
    );
    // The recording was written by the recording writer, off the clock's
    // thread, frame by frame, none dropped.
    assert!(
        server.metric("voxline_recording_frames_written_total") >= 140.0,
        "{metrics}"
    );
    assert_eq!(
        server.metric("voxline_recording_frames_dropped_total"),
        0.0,
        "{metrics}"
    );
}

#[test]
fn a_call_over_tcp_works() {
    let server = Server::start("tcp", "", None);
    let run = sipp(&server, "uac_audio.xml", "demo", "127.0.0.1", &["-t", "t1"]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    let r = server.record(&run.call_id);
    assert_eq!(r["status"], "completed", "{r}");
    assert!(r["packets_received"].as_i64().unwrap_or(0) > 100, "{r}");
}

#[test]
fn caller_cancel_while_ringing_gets_487_and_a_record() {
    let server = Server::start("cancel", "", None);
    let run = sipp(&server, "uac_cancel.xml", "ring", "127.0.0.1", &[]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    let r = server.record(&run.call_id);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["end_reason"], "cancel");
    assert_eq!(r["hangup_by"], "caller");
    assert_eq!(r["sip_status"], 487);
    assert!(r["answer_at"].is_null());
}

#[test]
fn voxline_hangs_up_after_the_greeting() {
    let server = Server::start("hangup", "", None);
    let run = sipp(&server, "uac_wait_bye.xml", "hangup", "127.0.0.1", &[]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    let r = server.record(&run.call_id);
    assert_eq!(r["hangup_by"], "voxline", "{r}");
    assert_eq!(r["end_reason"], "greeting_done");
    let talk = r["end_at"].as_i64().unwrap_or(0) - r["answer_at"].as_i64().unwrap_or(0);
    assert!((900..2500).contains(&talk), "talk time {talk} ms for a 1 s greeting");
}

#[test]
fn reinvite_hold_unhold_and_inactive_are_answered() {
    let server = Server::start("hold", "", None);
    let run = sipp(&server, "uac_hold.xml", "demo", "127.0.0.1", &[]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    let r = server.record(&run.call_id);
    assert_eq!(r["status"], "completed", "{r}");
    let log = server.log_text();
    for d in ["recvonly", "sendrecv", "inactive"] {
        assert!(
            log.contains(&format!("media changed direction=\"{d}\"")),
            "{d} not seen:\n{log}"
        );
    }
    // ~2.0 s of call, of which ~0.6 s on hold (sendonly, then inactive):
    // voxline sends only while the call is not on hold (~100 packets otherwise).
    let sent = r["packets_sent"].as_i64().unwrap_or(0);
    assert!((40..=78).contains(&sent), "sent {sent} packets; hold not respected");
}

#[test]
fn late_offer_is_answered_in_the_ack() {
    let server = Server::start("late", "", None);
    let run = sipp(&server, "uac_late_offer.xml", "demo", "127.0.0.1", &[]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    let r = server.record(&run.call_id);
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["codec"], "PCMU");
    assert!(r["packets_sent"].as_i64().unwrap_or(0) > 20, "{r}");
}

#[test]
fn options_is_answered_with_capabilities() {
    let server = Server::start("options", "", None);
    let run = sipp(&server, "options.xml", "ping", "127.0.0.1", &[]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
}

#[test]
fn no_common_codec_gets_488_and_a_record() {
    let server = Server::start("488", "", None);
    let run = sipp(&server, "uac_488.xml", "demo", "127.0.0.1", &[]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    let r = server.record(&run.call_id);
    assert_eq!(r["sip_status"], 488, "{r}");
    assert_eq!(r["end_reason"], "no_common_codec");
}

#[test]
fn an_invite_from_an_unknown_source_gets_403_and_no_record() {
    let server = Server::start("403", "", None);
    let run = sipp(&server, "uac_403.xml", "demo", "127.0.0.2", &[]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    assert!(server.all_records().is_empty());
    assert!(server.log_text().contains("untrusted source"));
}

#[test]
fn a_phone_with_the_right_password_gets_through_after_a_challenge() {
    let server = Server::start("auth-ok", USERS, None);
    // The digest's uri must be the Request-URI (SIPp's default leaves the
    // user out, which voxline refuses: decision 0061); SIPp adds the "sip:".
    let auth_uri = format!("demo@127.0.0.1:{}", server.sip_port);
    let run = sipp(
        &server,
        "uac_auth.xml",
        "demo",
        "127.0.0.2",
        &["-au", "frontdesk", "-ap", "correct-horse", "-auth_uri", &auth_uri],
    );
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    let r = server.record(&run.call_id);
    assert_eq!(r["trunk"], "users", "{r}");
    assert_eq!(r["route"], "users");
    assert_eq!(r["status"], "completed");
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_403() {
    let server = Server::start("auth-bad", USERS, None);
    let wrong = sipp(
        &server,
        "uac_auth_rejected.xml",
        "demo",
        "127.0.0.2",
        &["-au", "frontdesk", "-ap", "nope"],
    );
    assert!(wrong.ok, "sipp failed:\n{}\n{}", wrong.output, server.log_text());
    let unknown = sipp(
        &server,
        "uac_auth_rejected.xml",
        "demo",
        "127.0.0.2",
        &["-au", "ghost", "-ap", "correct-horse"],
    );
    assert!(unknown.ok, "sipp failed:\n{}\n{}", unknown.output, server.log_text());
    assert!(server.all_records().is_empty());
}

#[test]
fn a_trunk_at_its_call_limit_answers_503() {
    // The local trunk allows one call at a time.
    let server = Server::start_with("limit", "", None, |t| t.replace("max_calls = 1000", "max_calls = 1"));
    // One call up (3 s of audio) ...
    let port = server.sip_port;
    let first = std::thread::spawn(move || sipp_port(port, "uac_audio.xml", "demo", "127.0.0.1", &[]));
    server.wait_for_log("call answered", 1, Duration::from_secs(10));
    // ... so the second gets 503 with Retry-After, and a record says why.
    let second = sipp(&server, "uac_503.xml", "demo", "127.0.0.1", &[]);
    assert!(second.ok, "sipp failed:\n{}\n{}", second.output, server.log_text());
    let first = first.join().expect("first call");
    assert!(first.ok, "the first call was disturbed:\n{}", first.output);
    let r = server.record(&second.call_id);
    assert_eq!(r["sip_status"], 503, "{r}");
    assert_eq!(r["end_reason"], "trunk_max_calls");
    // The slot is free again once the first call ended.
    let third = sipp(&server, "uac_late_offer.xml", "demo", "127.0.0.1", &[]);
    assert!(third.ok, "{}", third.output);
}

#[test]
fn sigterm_hangs_up_live_calls_and_completes_their_records() {
    let mut server = Server::start("sigterm", "", None);
    let port = server.sip_port;
    // 20 callers that wait for voxline's BYE (the demo route would talk
    // for 20 s), each with a Call-ID of its own.
    let caller = std::thread::spawn(move || {
        sipp_port(
            port,
            "uac_wait_bye.xml",
            "demo",
            "127.0.0.1",
            &["-m", "20", "-l", "20", "-r", "20", "-cid_str", "sigterm-%u-%p@%s"],
        )
    });
    server.wait_for_log("call answered", 20, Duration::from_secs(20));
    server.terminate();
    let caller = caller.join().expect("caller");
    assert!(caller.ok, "a caller did not get a BYE:\n{}", caller.output);
    server.restart();
    let records = server.all_records();
    let calls: Vec<_> = records.iter().filter(|r| r["direction"] == "inbound").collect();
    assert_eq!(calls.len(), 20, "{records:?}");
    for r in calls {
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(r["end_reason"], "shutdown", "{r}");
        assert_eq!(r["hangup_by"], "voxline", "{r}");
    }
}

#[test]
fn packets_missing_on_the_wire_are_counted_as_lost_in_the_record() {
    let server = Server::start("loss", "", None);
    let run = sipp(&server, "uac_pcap_audio.xml", "demo", "127.0.0.1", &[]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    let r = server.record(&run.call_id);
    assert_eq!(r["packets_received"], 146, "{r}");
    assert_eq!(r["packets_lost"], 4, "{r}");
    let path = std::path::PathBuf::from(r["recording_path"].as_str().expect("recording path"));
    // The caller's tone is there, concealment filled the gaps.
    assert!(channel_rms(&path, 0, 0.5, 2.5) > 2000.0);
}

#[test]
fn a_caller_that_sends_no_rtp_is_hung_up_after_the_media_timeout() {
    let server = Server::start_with("media-timeout", "", None, |t| {
        t.replace("record = true", "record = true\ntimeout_secs = 2")
    });
    // SIPp answers voxline's BYE but never sends RTP.
    let run = sipp(&server, "uac_wait_bye.xml", "demo", "127.0.0.1", &[]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    let r = server.record(&run.call_id);
    assert_eq!(r["end_reason"], "media_timeout", "{r}");
    assert_eq!(r["hangup_by"], "voxline");
    let talk = r["end_at"].as_i64().unwrap_or(0) - r["answer_at"].as_i64().unwrap_or(0);
    assert!((1900..4000).contains(&talk), "hung up after {talk} ms");
}

#[test]
fn dtmf_arrives_from_rfc4733_events_and_from_sip_info() {
    // "keys" logs the digits themselves; any other number only that keys came.
    let routes = r#"
[[route]]
name = "keys"
trunk = "local"
number = { exact = "keys" }
handler = "playback"
params = { greeting = "greeting.wav", max_seconds = 20, log_digits = true }

[[route]]
name = "demo"
trunk = "local"
handler = "playback"
params = { greeting = "greeting.wav", max_seconds = 20 }
"#;
    let server = Server::start("dtmf", "", Some(routes));
    let run = sipp(&server, "uac_dtmf.xml", "keys", "127.0.0.1", &[]);
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, server.log_text());
    server.record(&run.call_id);
    let log = server.log_text();
    let digits: Vec<&str> = log.lines().filter(|l| l.contains(" DTMF ")).collect();
    assert_eq!(digits.len(), 3, "one line per digit, whatever the redundancy:\n{log}");
    assert!(
        digits[0].contains("digit=1") && digits[0].contains("duration_ms=280") && digits[0].contains("source=\"rtp\""),
        "{}",
        digits[0]
    );
    assert!(
        digits[1].contains("digit=#") && digits[1].contains("source=\"rtp\""),
        "{}",
        digits[1]
    );
    assert!(
        digits[2].contains("digit=5") && digits[2].contains("source=\"info\""),
        "{}",
        digits[2]
    );
    // By default the log says a key came, never which.
    let masked = sipp(&server, "uac_dtmf.xml", "demo", "127.0.0.1", &[]);
    assert!(masked.ok, "sipp failed:\n{}\n{}", masked.output, server.log_text());
    server.record(&masked.call_id);
    let log = server.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" DTMF ") && l.contains(&masked.call_id))
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(lines.iter().all(|l| l.contains("digit=*")), "{lines:?}");
}

/// Sends an INVITE for `user` from a fresh socket on `from` (with
/// `auth` as its Authorization header) and returns the final response,
/// or None when nothing final came within 3 s (a banned source).
fn invite_final(server: &Server, from: &str, user: &str, auth: Option<&str>, n: u32) -> Option<String> {
    invite_final_with(server, from, user, auth, n, "")
}

/// [`invite_final`] with `offer` as its SDP body (none when empty).
fn invite_final_with(
    server: &Server,
    from: &str,
    user: &str,
    auth: Option<&str>,
    n: u32,
    offer: &str,
) -> Option<String> {
    let s = std::net::UdpSocket::bind((from, 0)).expect("bind");
    let local = s.local_addr().expect("local address");
    let port = server.sip_port;
    let pid = std::process::id();
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let msg = format!(
        "INVITE sip:{user}@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKauth{n}x{pid}\r\nFrom: <sip:frontdesk@{local}>;tag=a{n}\r\nTo: <sip:{user}@127.0.0.1:{port}>\r\nCall-ID: auth-{n}-{pid}@test\r\nCSeq: 1 INVITE\r\nContact: <sip:frontdesk@{local}>\r\nMax-Forwards: 70\r\n{auth}{ctype}Content-Length: {}\r\n\r\n{offer}",
        offer.len(),
        ctype = if offer.is_empty() { "" } else { "Content-Type: application/sdp\r\n" },
    );
    s.send_to(msg.as_bytes(), ("127.0.0.1", port)).expect("send");
    final_answer_on(&s, Duration::from_secs(3))
}

/// The value of parameter `name` in a challenge.
fn challenge_param(reply: &str, name: &str) -> String {
    let line = reply
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
        .unwrap_or_else(|| panic!("no challenge in {reply}"));
    line.split(&format!("{name}=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("parameter")
        .to_string()
}

/// A client's digest Authorization header (MD5, qop=auth).
fn digest(user: &str, password: &str, nonce: &str, uri: &str, nc: u32) -> String {
    use md5::{Digest, Md5};
    let hex = |s: String| {
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let ha1 = hex(format!("{user}:voxline:{password}"));
    let ha2 = hex(format!("INVITE:{uri}"));
    let response = hex(format!("{ha1}:{nonce}:{nc:08x}:c0ffee:auth:{ha2}"));
    format!("Digest username=\"{user}\", realm=\"voxline\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc={nc:08x}, cnonce=\"c0ffee\"")
}

#[test]
fn a_replayed_or_redirected_authorization_is_refused_and_a_guesser_banned() {
    // Phones may dial "desk" only: any other number, once authenticated, gets 404.
    let server = Server::start("auth-attacks", USERS, Some(DESK_ROUTE));
    let status = status_of;
    // Dialling a number with no route: an authenticated INVITE gets 404,
    // so what the credentials earned shows in the status alone.
    let uri = format!("sip:nowhere@127.0.0.1:{}", server.sip_port);
    let first = invite_final(&server, "127.0.0.2", "nowhere", None, 1);
    assert_eq!(status(&first).as_deref(), Some("401"), "{first:?}");
    let nonce = challenge_param(first.as_deref().unwrap_or_default(), "nonce");
    let good = digest("frontdesk", "correct-horse", &nonce, &uri, 1);
    let r = invite_final(&server, "127.0.0.2", "nowhere", Some(&good), 2);
    assert_eq!(status(&r).as_deref(), Some("404"), "{r:?}\n{}", server.log_text());
    // The same header again (sniffed and replayed): challenged, stale.
    let r = invite_final(&server, "127.0.0.2", "nowhere", Some(&good), 3);
    assert_eq!(status(&r).as_deref(), Some("401"), "{r:?}");
    assert!(r.as_deref().unwrap_or_default().contains("stale=true"), "{r:?}");
    // The client's next count on the nonce is taken.
    let next = digest("frontdesk", "correct-horse", &nonce, &uri, 2);
    let r = invite_final(&server, "127.0.0.2", "nowhere", Some(&next), 4);
    assert_eq!(status(&r).as_deref(), Some("404"), "{r:?}");
    // A header computed for one number, sent to dial another: 403.
    let other = digest("frontdesk", "correct-horse", &nonce, &uri, 3);
    let r = invite_final(&server, "127.0.0.2", "demo", Some(&other), 5);
    assert_eq!(status(&r).as_deref(), Some("403"), "{r:?}");

    // A guesser on another address: refused nine times, banned at the
    // tenth failure, then nothing answers it while others still get in.
    let c = invite_final(&server, "127.0.0.3", "nowhere", None, 10);
    let nonce = challenge_param(c.as_deref().unwrap_or_default(), "nonce");
    for i in 0..9 {
        let guess = digest("frontdesk", &format!("guess{i}"), &nonce, &uri, 1);
        let r = invite_final(&server, "127.0.0.3", "nowhere", Some(&guess), 11 + i);
        assert_eq!(status(&r).as_deref(), Some("403"), "guess {i}: {r:?}");
    }
    let tenth = digest("frontdesk", "guess9", &nonce, &uri, 1);
    let r = invite_final(&server, "127.0.0.3", "nowhere", Some(&tenth), 20);
    assert_eq!(status(&r).as_deref(), Some("403"), "{r:?}");
    let right = digest("frontdesk", "correct-horse", &nonce, &uri, 1);
    let r = invite_final(&server, "127.0.0.3", "nowhere", Some(&right), 21);
    assert_eq!(r, None, "a banned source is not answered");
    assert!(server.log_text().contains("too many failures from this source"));
    // The user was locked by the guesses (five and more): the right
    // password from the good address is refused until the lockout ends.
    let c = invite_final(&server, "127.0.0.2", "nowhere", None, 30);
    let nonce = challenge_param(c.as_deref().unwrap_or_default(), "nonce");
    let r = invite_final(
        &server,
        "127.0.0.2",
        "nowhere",
        Some(&digest("frontdesk", "correct-horse", &nonce, &uri, 1)),
        31,
    );
    assert_eq!(status(&r).as_deref(), Some("403"), "{r:?}");
}

/// Sends `method` (ACK or BYE) in the dialog a 2xx `answer` set up, from
/// `from`; a BYE waits for its 200.
fn in_dialog(server: &Server, from: &str, answer: &str, method: &str, cseq: u32) {
    let header = |name: &str| {
        answer
            .lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .unwrap_or_else(|| panic!("no {name} in {answer}"))
            .to_string()
    };
    let s = std::net::UdpSocket::bind((from, 0)).expect("bind");
    let local = s.local_addr().expect("local address");
    let port = server.sip_port;
    let msg = format!(
        "{method} sip:x@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{method}{cseq}x{}\r\n{}\r\n{}\r\n{}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        std::process::id(),
        header("From"),
        header("To"),
        header("Call-ID"),
    );
    s.send_to(msg.as_bytes(), ("127.0.0.1", port)).expect("send");
    if method == "BYE" {
        s.set_read_timeout(Some(Duration::from_secs(3))).ok();
        let mut buf = vec![0u8; 65536];
        let (len, _) = s
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no answer to BYE: {e}\n{}", server.log_text()));
        let reply = String::from_utf8_lossy(&buf[..len]);
        assert!(reply.starts_with("SIP/2.0 200"), "BYE answered {reply}");
    }
}

#[test]
fn the_node_and_a_phone_at_their_call_limits_answer_503_before_ringing() {
    let routes = format!(
        "{DESK_ROUTE}\n[[route]]\nname = \"demo\"\ntrunk = \"local\"\nhandler = \"playback\"\nparams = {{ greeting = \"greeting.wav\", max_seconds = 20 }}\n"
    );
    // Two calls on the node at once, one for the phone.
    let users = USERS.replace(
        "password = \"correct-horse\"",
        "password = \"correct-horse\"\nmax_calls = 1",
    );
    let server = Server::start_with("call-caps", &users, Some(&routes), |t| {
        t.replace("[sip]\n", "[sip]\nmax_calls = 2\n")
    });
    let port = server.sip_port;
    let offer = "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
    let status = status_of;
    let uri = format!("sip:desk@127.0.0.1:{port}");
    let challenge = invite_final(&server, "127.0.0.2", "desk", None, 1);
    assert_eq!(status(&challenge).as_deref(), Some("401"), "{challenge:?}");
    let nonce = challenge_param(challenge.as_deref().unwrap_or_default(), "nonce");
    let phone = |nc: u32, n: u32| {
        let auth = digest("frontdesk", "correct-horse", &nonce, &uri, nc);
        invite_final_with(&server, "127.0.0.2", "desk", Some(&auth), n, offer)
    };
    let call_id = |n: u32| format!("auth-{n}-{}@test", std::process::id());

    // The phone's first call is answered.
    let a = phone(1, 2);
    assert_eq!(status(&a).as_deref(), Some("200"), "{a:?}\n{}", server.log_text());
    let a = a.unwrap_or_default();
    in_dialog(&server, "127.0.0.2", &a, "ACK", 1);
    // Its second, while the first is up: 503 with Retry-After, recorded.
    let b = phone(2, 3);
    assert_eq!(status(&b).as_deref(), Some("503"), "{b:?}");
    assert!(b.as_deref().unwrap_or_default().contains("Retry-After:"), "{b:?}");
    assert_eq!(server.record(&call_id(3))["end_reason"], "user_max_calls");
    // A trunk call takes the node's second slot ...
    let c = invite_final_with(&server, "127.0.0.1", "demo", None, 4, offer);
    assert_eq!(status(&c).as_deref(), Some("200"), "{c:?}");
    let c = c.unwrap_or_default();
    in_dialog(&server, "127.0.0.1", &c, "ACK", 1);
    // ... so a third call is refused by the node, whoever places it.
    let d = invite_final_with(&server, "127.0.0.1", "demo", None, 5, offer);
    assert_eq!(status(&d).as_deref(), Some("503"), "{d:?}");
    let r = server.record(&call_id(5));
    assert_eq!(
        (r["end_reason"].as_str(), r["sip_status"].as_i64()),
        (Some("node_max_calls"), Some(503)),
        "{r}"
    );
    // The phone hangs up; once its record is complete its slot is free again.
    in_dialog(&server, "127.0.0.2", &a, "BYE", 2);
    assert_eq!(server.record(&call_id(2))["status"], "completed");
    let e = phone(3, 6);
    assert_eq!(status(&e).as_deref(), Some("200"), "{e:?}\n{}", server.log_text());
    let e = e.unwrap_or_default();
    in_dialog(&server, "127.0.0.2", &e, "ACK", 1);
    in_dialog(&server, "127.0.0.2", &e, "BYE", 2);
    in_dialog(&server, "127.0.0.1", &c, "BYE", 2);
    assert_eq!(server.record(&call_id(4))["status"], "completed");
}

/// A 12-byte RTP header and `payload`.
fn rtp_bytes(pt: u8, seq: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt & 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[test]
fn an_rtp_spray_during_a_call_hears_nothing_and_keys_nothing() {
    let server = Server::start("rtp-spray", "", None);
    // The caller: SIP and RTP from 127.0.0.1, telephone-event offered.
    let media = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind media");
    let media_port = media.local_addr().expect("media address").port();
    let offer = format!(
        "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {media_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    );
    let answer = invite_final_with(&server, "127.0.0.1", "demo", None, 60, &offer).unwrap_or_default();
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}\n{}", server.log_text());
    in_dialog(&server, "127.0.0.1", &answer, "ACK", 1);
    let rtp_port: u16 = answer
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio port in {answer}"));
    // Media flows: the greeting reaches the caller's SDP address.
    media.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let mut buf = [0u8; 2048];
    let (n, from) = media.recv_from(&mut buf).expect("the caller hears the greeting");
    assert!(n > 12 && from.port() == rtp_port, "{n} bytes from {from}");
    // Someone else sprays the call's RTP and RTCP ports from another
    // address: audio (to be latched onto and hear the greeting), digit 5
    // as RFC 4733 events, and RTCP receiver reports.
    let sprayer = std::net::UdpSocket::bind("127.0.0.9:0").expect("bind 127.0.0.9");
    let rr = [
        0x81u8, 201, 0, 7, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    for i in 0..100u16 {
        let ts = u32::from(i) * 160;
        sprayer
            .send_to(&rtp_bytes(0, i, ts, 0xbad, &[0xff; 160]), ("127.0.0.1", rtp_port))
            .expect("spray audio");
        let end = if i % 10 == 9 { 0x80 } else { 0 };
        let event = [5u8, end | 10, 0, (i % 10 + 1) as u8 * 80];
        sprayer
            .send_to(
                &rtp_bytes(101, 1000 + i, (u32::from(i) / 10) * 1600, 0xbad, &event),
                ("127.0.0.1", rtp_port),
            )
            .expect("spray digit");
        sprayer.send_to(&rr, ("127.0.0.1", rtp_port + 1)).expect("spray rtcp");
        // RTCP on the RTP port as well (as rtcp-mux would send it).
        sprayer.send_to(&rr, ("127.0.0.1", rtp_port)).expect("spray muxed rtcp");
        // Paced like a sender of 20 ms packets (a burst would only test the
        // socket buffer).
        std::thread::sleep(Duration::from_millis(5));
    }
    // The caller's own audio then latches the call as it should.
    for i in 0..10u16 {
        media
            .send_to(
                &rtp_bytes(0, i, u32::from(i) * 160, 0x600d, &[0xff; 160]),
                ("127.0.0.1", rtp_port),
            )
            .expect("caller audio");
    }
    // The greeting still reaches the caller: what queued during the spray,
    // then 400 ms more (the server takes the caller's packets meanwhile) ...
    media.set_nonblocking(true).ok();
    while media.recv_from(&mut buf).is_ok() {}
    media.set_nonblocking(false).ok();
    for _ in 0..20 {
        media.recv_from(&mut buf).expect("the caller still hears the greeting");
    }
    in_dialog(&server, "127.0.0.1", &answer, "BYE", 2);
    let call_id = format!("auth-60-{}@test", std::process::id());
    let record = server.record(&call_id);
    assert!(record["srtp"].is_null(), "a plain call recorded as encrypted: {record}");
    // ... and nothing ever reached the sprayer, no digit was taken, and the
    // spray was counted as foreign.
    sprayer.set_nonblocking(true).ok();
    assert!(sprayer.recv_from(&mut buf).is_err(), "the sprayer heard the call");
    let log = server.log_text();
    assert!(
        !log.lines().any(|l| l.contains(" DTMF ")),
        "a sprayed digit was taken:\n{log}"
    );
    let ended = server.ended_line(&call_id);
    let foreign = ended_field(&ended, "foreign");
    // 100 audio packets, 100 digit events and 100 reports on the RTP port
    // at least (reports on the port above are read once a second); the
    // caller's own 10 packets were taken.
    assert!(foreign >= 300, "spray not counted as foreign: {ended}");
    assert!(
        ended.contains("received=10 "),
        "the caller's audio was not taken: {ended}"
    );
}

#[test]
fn an_srtp_offer_gets_encrypted_media_and_plain_packets_from_the_callers_own_address_are_dropped() {
    use base64::Engine as _;
    use voxline_media::srtp::{SrtpKeys, SrtpProfile, SrtpSession};
    let server = Server::start("srtp-sdes", "", None);
    let media = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind media");
    let media_port = media.local_addr().expect("media address").port();
    let caller_key = [0x5au8; 30];
    // "SRTP with fallback": the same audio again as RTP/AVP on a second
    // line, which the answer must refuse with port 0 (the default policy
    // takes the first acceptable line, here the encrypted one).
    let offer = format!(
        "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {media_port} RTP/SAVP 0 101\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        base64::engine::general_purpose::STANDARD.encode(caller_key),
        media_port.wrapping_add(2)
    );
    let answer = invite_final_with(&server, "127.0.0.1", "demo", None, 70, &offer).unwrap_or_default();
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}\n{}", server.log_text());
    in_dialog(&server, "127.0.0.1", &answer, "ACK", 1);
    // The answer is RTP/SAVP with voxline's own key for the suite offered.
    let rtp_port: u16 = answer
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .filter(|l| l.contains(" RTP/SAVP "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no RTP/SAVP m=audio in {answer}"));
    let server_key: [u8; 30] = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"))
        .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k.trim()).ok())
        .and_then(|k| k.try_into().ok())
        .unwrap_or_else(|| panic!("no usable a=crypto in {answer}"));
    assert_ne!(server_key, caller_key);
    assert!(
        answer.contains("m=audio 0 RTP/AVP 0\r\n"),
        "the plain fallback line was not refused: {answer}"
    );
    let mut caller = SrtpSession::new(SrtpKeys {
        profile: SrtpProfile::Aes128Sha1_80,
        local: caller_key,
        remote: server_key,
    })
    .expect("caller's SRTP");
    // The greeting arrives encrypted: 10 bytes of tag, a payload that is
    // not the clear one, and it opens with voxline's key.
    media.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let mut buf = [0u8; 2048];
    let mut opened = 0;
    for _ in 0..25 {
        let (n, from) = media.recv_from(&mut buf).expect("the caller hears the greeting");
        assert_eq!(from.port(), rtp_port);
        if buf[1] & 0x7f != 0 {
            continue;
        }
        assert_eq!(n, 12 + 160 + 10, "an SRTP PCMU packet");
        let plain = caller.unprotect_rtp(&buf[..n]).expect("voxline's packet authenticates");
        assert_ne!(&plain[12..], &buf[12..n - 10]);
        opened += 1;
    }
    assert!(opened >= 20, "{opened} greeting packets opened");
    // From the caller's own (signalled) address: plain audio and a plain
    // digit 5 (what an injector who can spoof the caller would send), then
    // the real caller's encrypted audio and an encrypted digit 7.
    for i in 0..50u16 {
        media
            .send_to(
                &rtp_bytes(0, i, u32::from(i) * 160, 0xbad, &[0xff; 160]),
                ("127.0.0.1", rtp_port),
            )
            .expect("plain audio");
        let end = if i % 10 == 9 { 0x80 } else { 0 };
        let event = [5u8, end | 10, 0, (i % 10 + 1) as u8 * 80];
        media
            .send_to(
                &rtp_bytes(101, 1000 + i, (u32::from(i) / 10) * 1600, 0xbad, &event),
                ("127.0.0.1", rtp_port),
            )
            .expect("plain digit");
        std::thread::sleep(Duration::from_millis(5));
    }
    for i in 0..10u16 {
        let end = if i >= 7 { 0x80 } else { 0 };
        // 80 ms at the end (640 timestamp units).
        let [hi, lo] = ((i.min(7) + 1) * 80).to_be_bytes();
        let event = [7u8, end | 10, hi, lo];
        let sealed = caller
            .protect_rtp(&rtp_bytes(101, 500 + i, 80_000, 0x600d, &event))
            .expect("sealed digit");
        media.send_to(&sealed, ("127.0.0.1", rtp_port)).expect("sealed digit");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Digits are masked in the log (`*`); the sealed one is the 80 ms one.
    server.wait_for_log(" DTMF", 1, Duration::from_secs(5));
    in_dialog(&server, "127.0.0.1", &answer, "BYE", 2);
    let call_id = format!("auth-70-{}@test", std::process::id());
    let record = server.record(&call_id);
    assert_eq!(record["srtp"], "AES_CM_128_HMAC_SHA1_80", "{record}");
    let log = server.log_text();
    let digits: Vec<&str> = log.lines().filter(|l| l.contains(" DTMF")).collect();
    assert!(
        digits.len() == 1 && digits[0].contains("duration_ms=80 "),
        "a plain digit was taken or the sealed one was not: {digits:?}"
    );
    let ended = server.ended_line(&call_id);
    // 100 plain packets refused; the sealed ones taken.
    assert!(ended_field(&ended, "srtp_rejected") >= 100, "{ended}");
}
