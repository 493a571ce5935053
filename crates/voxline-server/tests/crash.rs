//! A crash mid-call leaves a call record with the start and a playable
//! recording; the next start closes the record as interrupted.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_crash_mid_call_leaves_a_record_and_a_playable_recording() {
    let mut server = Server::start("crash", "", None);
    // A caller that stays on the line (SIPp's uac with a 20 s pause), in the background.
    let dir = test_dir("crash-uac");
    let sip_port = free_port().to_string();
    let media_port = free_port().to_string();
    let call_id = format!("crash-{}@127.0.0.1", std::process::id());
    let mut uac = Command::new("sipp")
        .args([
            "-sn",
            "uac",
            &format!("127.0.0.1:{}", server.sip_port),
            "-s",
            "demo",
            "-m",
            "1",
            "-d",
            "20000",
        ])
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &sip_port,
            "-mi",
            "127.0.0.1",
            "-mp",
            &media_port,
            "-nostdin",
            "-timeout",
            "25",
        ])
        .args(["-cid_str", &call_id])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp");
    // Wait until the call is answered and has run for 2 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = server.records_until(&call_id, |r| !r["answer_at"].is_null());
        if v.as_array()
            .and_then(|a| a.first())
            .is_some_and(|r| !r["answer_at"].is_null())
        {
            break;
        }
        assert!(Instant::now() < deadline, "call not answered\n{}", server.log_text());
    }
    std::thread::sleep(Duration::from_secs(2));
    server.crash();
    let _ = uac.kill();
    let _ = uac.wait();

    // The record survived with its start and answer; the recording plays.
    server.restart();
    let r = server.record(&call_id);
    assert_eq!(r["status"], "interrupted", "{r}");
    assert_eq!(r["end_reason"], "server_stopped");
    assert!(!r["invite_at"].is_null() && !r["answer_at"].is_null());
    let rec = std::path::PathBuf::from(r["recording_path"].as_str().expect("recording path"));
    let reader = hound::WavReader::open(&rec).expect("the recording opens after a crash");
    let seconds = reader.duration() as f64 / 8000.0;
    assert!(seconds >= 1.0, "only {seconds} s of recording survived");
    assert!(server.log_text().contains("closed call records left open"));
}

#[test]
fn a_second_process_with_a_node_name_in_use_is_refused_and_a_crashed_one_is_taken_over() {
    let mut server = Server::start("node-name", "", None);
    // A second `voxline serve` on the same store with the same [node] name,
    // on ports of its own.
    let twin = server.dir.join("twin.toml");
    let text = std::fs::read_to_string(&server.config)
        .expect("config")
        .replace(
            &format!("127.0.0.1:{}", server.sip_port),
            &format!("127.0.0.1:{}", free_port()),
        )
        .replace(
            &format!("127.0.0.1:{}", server.http_port),
            &format!("127.0.0.1:{}", free_port()),
        );
    std::fs::write(&twin, text).expect("write twin config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxline"))
        .args(["serve", "--config"])
        .arg(&twin)
        .env("VOXLINE_LOG", "info,rsipstack=warn,sqlx=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the twin");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("twin status") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a second process with the node name in use kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).ok();
    assert!(!status.success(), "{err}");
    assert!(err.contains("node.name \"test\" is in use"), "{err}");
    // The holder kept serving.
    let run = sipp(&server, "uac_audio.xml", "demo", "127.0.0.1", &[]);
    assert!(run.ok, "{}\n{}", run.output, server.log_text());
    // Killed, its name is taken over at once by the next start on this host.
    server.restart();
    let run = sipp(&server, "uac_audio.xml", "demo", "127.0.0.1", &[]);
    assert!(run.ok, "{}\n{}", run.output, server.log_text());
}
