//! SIP behaviour against a real SIPp over loopback: calls, CANCEL, hang-up by
//! voxline, hold/unhold, late offer, OPTIONS, 488, 403, digest users, TCP.

mod common;

use common::*;

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

const USERS: &str = r#"
[[user]]
username = "frontdesk"
password = "correct-horse"
"#;

#[test]
fn a_phone_with_the_right_password_gets_through_after_a_challenge() {
    let server = Server::start("auth-ok", USERS, None);
    let run = sipp(
        &server,
        "uac_auth.xml",
        "demo",
        "127.0.0.2",
        &["-au", "frontdesk", "-ap", "correct-horse"],
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
    std::thread::sleep(std::time::Duration::from_millis(800));
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
    // A caller that waits for voxline's BYE (the demo route would talk for 20 s).
    let caller = std::thread::spawn(move || sipp_port(port, "uac_wait_bye.xml", "demo", "127.0.0.1", &[]));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.terminate();
    let caller = caller.join().expect("caller");
    assert!(caller.ok, "the caller did not get a BYE:\n{}", caller.output);
    server.restart();
    let r = server.record(&caller.call_id);
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["end_reason"], "shutdown");
    assert_eq!(r["hangup_by"], "voxline");
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
    let server = Server::start("dtmf", "", None);
    let run = sipp(&server, "uac_dtmf.xml", "demo", "127.0.0.1", &[]);
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
}
