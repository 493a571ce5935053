//! A real softphone (baresip, headless: a WAV as microphone, the sndfile
//! module recording what it sends and hears) calls the playback route.

mod common;

use common::*;
use std::time::Duration;

/// Seconds of 20 ms frames whose RMS is above `threshold` in a mono WAV.
fn loud_seconds(path: &std::path::Path, threshold: f64) -> f64 {
    let mut r = hound::WavReader::open(path).expect("open");
    let rate = r.spec().sample_rate as usize;
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    let frame = rate / 50;
    let loud = samples
        .chunks(frame)
        .filter(|c| {
            let e: f64 = c.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / c.len() as f64;
            e.sqrt() > threshold
        })
        .count();
    loud as f64 * 0.02
}

fn read_wav(path: &std::path::Path) -> Vec<i16> {
    hound::WavReader::open(path)
        .expect("open")
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect()
}

/// A PCMU call with baresip (see `baresip_call_with`).
fn baresip_call(server: &Server, service: &str, mic: &[i16]) -> std::path::PathBuf {
    baresip_call_with(server, service, mic, ("g711", "PCMU"))
}

/// The samples and rate of a WAV.
fn read_wav_rate(path: &std::path::Path) -> (Vec<i16>, u32) {
    let mut r = hound::WavReader::open(path).expect("open");
    let rate = r.spec().sample_rate;
    (r.samples::<i16>().map(|s| s.expect("sample")).collect(), rate)
}

#[test]
fn baresip_hears_the_greeting_and_voxline_records_the_caller() {
    let server = Server::start("baresip", "", None);
    // 3 s of a 350 Hz tone, then 3 s of silence (baresip hangs up when its input ends).
    let mic: Vec<i16> = (0..8000 * 6)
        .map(|i| {
            if i < 8000 * 3 {
                ((2.0 * std::f32::consts::PI * 350.0 * i as f32 / 8000.0).sin() * 9000.0) as i16
            } else {
                0
            }
        })
        .collect();
    let snd = baresip_call(&server, "demo", &mic);

    let heard = dump(&snd, "-dec.wav").unwrap_or_else(|| panic!("baresip recorded nothing\n{}", server.log_text()));
    // The greeting is a 2 s tone: baresip hears about 2 s of it, and silence after.
    let loud = loud_seconds(&heard, 1500.0);
    assert!((1.7..=2.4).contains(&loud), "heard {loud} s of greeting");

    // voxline's record and recording: the caller's 3 s tone on the left channel.
    let records = server.ended_records(1);
    let r = records
        .first()
        .unwrap_or_else(|| panic!("no call record\n{}", server.log_text()));
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["hangup_by"], "caller");
    let rec = std::path::PathBuf::from(r["recording_path"].as_str().expect("recording"));
    assert!(
        channel_rms(&rec, 0, 0.5, 2.5) > 2000.0,
        "caller audio missing from the recording"
    );
    assert!(channel_rms(&rec, 0, 4.0, 5.0) < 200.0, "caller silence not silent");
}

/// `bursts` tone bursts of 100 ms at pseudo-random pitches (300–1500 Hz): a
/// signal with one clear correlation peak.
fn tone_bursts(bursts: usize, mut seed: u32) -> Vec<i16> {
    let mut out = Vec::new();
    for _ in 0..bursts {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let freq = 300.0 + (seed >> 16) as f32 % 1200.0;
        out.extend((0..800).map(|i| ((2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin() * 9000.0) as i16));
    }
    out
}

/// Normalised cross-correlation of `heard` against `sent` at each lag up to
/// `max_lag` samples; returns (best correlation, its lag).
fn best_correlation(sent: &[i16], heard: &[i16], max_lag: usize) -> (f64, usize) {
    let n = sent.len().min(heard.len().saturating_sub(max_lag));
    let energy = |x: &[i16]| x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
    let es = energy(&sent[..n]);
    (0..max_lag)
        .map(|lag| {
            let h = &heard[lag..lag + n];
            let dot: f64 = sent[..n]
                .iter()
                .zip(h)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            (dot / (es * energy(h)).max(1.0), lag)
        })
        .fold((0.0, 0), |best, c| if c.0 > best.0 { c } else { best })
}

/// How well `heard` echoes the first 2 s of `sent` (both from the tone's
/// start, at `rate`): the median of eight 250 ms windows' best correlation,
/// that window's round trip in ms, and every window's correlation. Both
/// jitter buffers settle in a call's first few hundred ms (each may add a
/// frame of delay once), which one correlation over 2 s would count as a
/// mismatch.
fn echo_match(sent: &[i16], heard: &[i16], rate: u32) -> (f64, f64, Vec<f64>) {
    let per_ms = rate as usize / 1000;
    let window = 250 * per_ms;
    let mut windows: Vec<(f64, usize)> = (0..8)
        .map(|w| {
            let from = w * window;
            best_correlation(&sent[from..from + window], &heard[from..], 500 * per_ms)
        })
        .collect();
    let shown: Vec<f64> = windows.iter().map(|w| (w.0 * 100.0).round() / 100.0).collect();
    windows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (corr, lag) = windows[windows.len() / 2];
    (corr, lag as f64 / per_ms as f64, shown)
}

/// How well what baresip heard on call `snd` echoes what it sent, from the
/// start of its tone (see [`echo_match`]): the median window correlation,
/// its round trip in ms, every window's correlation, and the dumps' rate.
fn baresip_echo(snd: &std::path::Path) -> (f64, f64, Vec<f64>, u32) {
    let (sent, rate) = read_wav_rate(&dump(snd, "-enc.wav").expect("baresip's sent audio"));
    let (heard, heard_rate) = read_wav_rate(&dump(snd, "-dec.wav").expect("baresip's heard audio"));
    assert_eq!(rate, heard_rate);
    let start = sent
        .iter()
        .position(|&s| s.abs() > 3000)
        .expect("tone in the sent audio");
    let (corr, delay_ms, shown) = echo_match(&sent[start..], &heard[start..], rate);
    (corr, delay_ms, shown, rate)
}

#[test]
fn the_echo_route_sends_back_what_the_caller_says() {
    let server = Server::start("echo", "", None);
    // 3 s of 100 ms tone bursts at varying pitches (a signal with one clear
    // correlation peak), then silence.
    let mut mic = tone_bursts(30, 7);
    mic.extend(std::iter::repeat_n(0, 8000 * 3));
    let snd = baresip_call(&server, "echo", &mic);
    let (corr, delay_ms, shown, _) = baresip_echo(&snd);
    eprintln!("echo: median window correlation {corr:.3} at {delay_ms:.1} ms round trip; windows {shown:?}");
    assert!(
        corr > 0.8,
        "the echo does not match what was sent (correlation {corr:.3})"
    );
    assert!((20.0..400.0).contains(&delay_ms), "echo delay {delay_ms} ms");
}

/// A UDP relay that impairs what crosses it, both ways: drops `loss`%,
/// duplicates `dup`%, delays every packet by 40±20 ms (which reorders them)
/// and holds back a further `reorder`% by 60 ms more. It listens on `relay`
/// and forwards to `target`; the first other source is the far side.
struct ImpairedRelay {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u64, u64)>>,
}

impl ImpairedRelay {
    fn start(
        relay: std::net::SocketAddr,
        target: std::net::SocketAddr,
        loss: u32,
        reorder: u32,
        dup: u32,
    ) -> ImpairedRelay {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::Instant;
        let sock = std::net::UdpSocket::bind(relay).expect("bind relay");
        sock.set_read_timeout(Some(Duration::from_millis(1))).expect("timeout");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64;
            let mut rand = move |n: u64| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng % n
            };
            let mut far: Option<std::net::SocketAddr> = None;
            let mut queue: Vec<(Instant, Vec<u8>, std::net::SocketAddr)> = Vec::new();
            let (mut forwarded, mut dropped) = (0u64, 0u64);
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let to = if from == target {
                        far
                    } else {
                        far = Some(from);
                        Some(target)
                    };
                    if let Some(to) = to {
                        if rand(100) < u64::from(loss) {
                            dropped += 1;
                        } else {
                            let mut delay = 20 + rand(41);
                            if rand(100) < u64::from(reorder) {
                                delay += 60;
                            }
                            let at = Instant::now() + Duration::from_millis(delay);
                            queue.push((at, buf[..n].to_vec(), to));
                            if rand(100) < u64::from(dup) {
                                queue.push((at + Duration::from_millis(5), buf[..n].to_vec(), to));
                            }
                        }
                    }
                }
                let now = Instant::now();
                let mut i = 0;
                while i < queue.len() {
                    if queue[i].0 <= now {
                        let (_, data, to) = queue.swap_remove(i);
                        let _ = sock.send_to(&data, to);
                        forwarded += 1;
                    } else {
                        i += 1;
                    }
                }
            }
            (forwarded, dropped)
        });
        ImpairedRelay {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the relay; returns (forwarded, dropped) packet counts.
    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or((0, 0))
    }
}

impl Drop for ImpairedRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn the_echo_survives_loss_reorder_duplicates_and_jitter_and_the_record_shows_the_loss() {
    // voxline binds its single RTP port on 127.0.0.1 but advertises 127.0.0.5,
    // where the relay listens: baresip's RTP crosses the relay, and voxline
    // latches onto the relay's address for its own RTP. The relay is a media
    // source neither side signalled (a media proxy that leaves SDP alone):
    // the route takes RTP from any source (decision 0064).
    let rtp_port = free_port();
    let server = Server::start_with("impaired", "", None, |t| {
        t.replace(
            "rtp_port_min = 30000\nrtp_port_max = 39999",
            &format!(
                "advertise_ip = \"127.0.0.5\"\nrtp_sources = \"any\"\nrtp_port_min = {rtp_port}\nrtp_port_max = {}",
                rtp_port + 1
            ),
        )
    });
    let relay = ImpairedRelay::start(
        format!("127.0.0.5:{rtp_port}").parse().expect("addr"),
        format!("127.0.0.1:{rtp_port}").parse().expect("addr"),
        10,
        5,
        2,
    );
    let mut mic = tone_bursts(40, 11);
    mic.extend(std::iter::repeat_n(0, 8000 * 2));
    let snd = baresip_call(&server, "echo", &mic);
    let (forwarded, dropped) = relay.finish();
    assert!(
        forwarded > 200 && dropped > 20,
        "the relay carried {forwarded} packets and dropped {dropped}"
    );

    let sent = read_wav(&dump(&snd, "-enc.wav").expect("sent"));
    let heard = read_wav(&dump(&snd, "-dec.wav").expect("heard"));
    let start = sent
        .iter()
        .position(|&s| s.abs() > 3000)
        .expect("tone in the sent audio");
    // The delay moves as both jitter buffers adapt, so correlate 250 ms windows
    // separately and look at the typical (median) window.
    let mut windows: Vec<(f64, usize)> = (0..12)
        .map(|w| {
            let from = start + w * 2000;
            best_correlation(&sent[from..from + 2000], &heard[from..], 4000)
        })
        .collect();
    windows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (corr, lag) = windows[windows.len() / 2];
    let shown: Vec<f64> = windows.iter().map(|w| (w.0 * 100.0).round() / 100.0).collect();
    eprintln!(
        "impaired echo: median window correlation {corr:.3} at {:.1} ms; windows {shown:?}; relay dropped {dropped} of {}",
        lag as f64 / 8.0,
        forwarded + dropped
    );
    assert!(
        corr > 0.6,
        "the echo does not survive the impairment (median correlation {corr:.3})"
    );
    // Control: the same windows against an unrelated stretch of what was heard
    // (1.5 s further on) correlate clearly less.
    let mut control: Vec<f64> = (0..12)
        .map(|w| {
            let from = start + w * 2000;
            best_correlation(&sent[from..from + 2000], &heard[from + 12_000..], 4000).0
        })
        .collect();
    control.sort_by(|a, b| a.total_cmp(b));
    let control = control[control.len() / 2];
    eprintln!("control (unrelated audio): median window correlation {control:.3}");
    assert!(
        corr > control + 0.2,
        "echo {corr:.3} is not clearly above chance {control:.3}"
    );

    let records = server.all_records();
    let r = records.first().expect("record");
    let received = r["packets_received"].as_i64().unwrap_or(0);
    let lost = r["packets_lost"].as_i64().unwrap_or(0);
    let loss = lost as f64 / (received + lost).max(1) as f64;
    eprintln!(
        "voxline saw {received} packets, {lost} lost ({:.1}%), jitter {} ms",
        loss * 100.0,
        r["jitter_ms"]
    );
    assert!((0.04..0.2).contains(&loss), "loss {:.3} should be near 10%: {r}", loss);
    assert!(r["jitter_ms"].as_f64().unwrap_or(0.0) > 3.0, "jitter not seen: {r}");
}

/// An echo call in `codec` with baresip: what it heard matches what it sent
/// (correlation, round-trip delay); returns voxline's call record.
fn echo_in(codec: (&str, &str), seconds_of_tone: usize) -> serde_json::Value {
    let server = Server::start("echo-codec", "", None);
    let mut mic = tone_bursts(seconds_of_tone * 10, 5);
    mic.extend(std::iter::repeat_n(0, 8000 * 3));
    let snd = baresip_call_with(&server, "echo", &mic, codec);
    let (corr, delay_ms, shown, rate) = baresip_echo(&snd);
    eprintln!(
        "{} echo: median window correlation {corr:.3} at {delay_ms:.1} ms round trip ({rate} Hz); windows {shown:?}",
        codec.1
    );
    assert!(
        corr > 0.8,
        "the {} echo does not match what was sent ({corr:.3})",
        codec.1
    );
    assert!((20.0..400.0).contains(&delay_ms), "echo delay {delay_ms} ms");
    let records = server.ended_records(1);
    records.first().cloned().expect("a call record")
}

#[test]
fn an_opus_call_is_negotiated_on_its_dynamic_payload_type_and_echoes_in_wideband() {
    let r = echo_in(("opus", "opus"), 3);
    assert_eq!(r["codec"], "opus", "{r}");
    // The call's audio pipeline (and so its recording) runs at 16 kHz.
    let rec = std::path::PathBuf::from(r["recording_path"].as_str().expect("recording"));
    assert_eq!(
        hound::WavReader::open(&rec).expect("recording").spec().sample_rate,
        16_000
    );
    assert!(
        channel_rms(&rec, 0, 0.5, 2.5) > 1000.0,
        "caller audio missing from the recording"
    );
}

#[test]
fn a_pcma_call_echoes_and_baresips_rtcp_reports_reach_the_record() {
    // Long enough for at least two RTCP intervals of both sides (RFC 3550:
    // 5 s, randomised 2.5-7.5 s).
    let r = echo_in(("g711", "PCMA"), 13);
    assert_eq!(r["codec"], "PCMA", "{r}");
    // baresip's report blocks about our stream were read: its loss count.
    assert_eq!(r["remote_lost"].as_i64(), Some(0), "{r}");
    assert!(r["remote_jitter_ms"].as_f64().is_some(), "{r}");
    // baresip does not always echo our last SR in time for a round trip
    // (the RTT itself is checked against voxline's own UAC in peers.rs).
    if let Some(rtt) = r["rtt_ms"].as_f64() {
        assert!((0.0..50.0).contains(&rtt), "loopback RTT {rtt} ms");
    }
    eprintln!(
        "RTCP from baresip: rtt {} ms, jitter {} ms",
        r["rtt_ms"], r["remote_jitter_ms"]
    );
}

/// The caller's words end up in the call's transcript: baresip speaks the
/// JFK sample over PCMU into the `transcribe` route; voxline's streaming
/// recogniser (Silero VAD + Whisper tiny.en) writes each utterance as a
/// transcript line, readable from the HTTP API.
#[test]
fn the_transcribe_route_writes_what_the_caller_says_into_the_transcript() {
    let Some(files) = voxline_models::fetched_for_test(&[
        "whisper-tiny-en/ggml-model.bin",
        "silero-vad/silero_vad.onnx",
        "onnxruntime/libonnxruntime.so.1.31.1",
        "test-audio/jfk.wav",
    ]) else {
        return;
    };
    let jfk = files[3].clone();
    let routes = format!(
        r#"
[[route]]
name = "listen"
trunk = "local"
number = {{ exact = "transcribe" }}
handler = "transcribe"
params = {{ max_seconds = 40 }}
{DEFAULT_ROUTES}"#
    );
    let server = Server::start("transcribe", "", Some(&routes));
    // JFK at 8 kHz between 1 s and 3 s of silence.
    let speech = voxline_media::read_wav_mono(&jfk).expect("jfk");
    let narrow = voxline_media::rtp_session::resample_clip(&speech.samples, speech.rate, 8000).expect("resample");
    let mut mic = vec![0i16; 8000];
    mic.extend_from_slice(&narrow);
    mic.extend(std::iter::repeat_n(0, 8000 * 3));
    baresip_call(&server, "transcribe", &mic);

    let records = server.ended_records(1);
    let r = records
        .first()
        .unwrap_or_else(|| panic!("no call record\n{}", server.log_text()));
    assert_eq!(r["status"], "completed", "{r}");
    let call_id = r["call_id"].as_str().expect("call id");
    let body = server.http_get(&format!("/api/calls/{call_id}/transcript"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let lines = v[0]["lines"].as_array().cloned().unwrap_or_default();
    let text: Vec<&str> = lines.iter().filter_map(|l| l["text"].as_str()).collect();
    eprintln!("transcript: {text:?}");
    assert!(!lines.is_empty(), "no transcript\n{}", server.log_text());
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i as i64 + 1);
        assert_eq!(l["speaker"], "caller");
        let (start, end) = (l["start_ms"].as_i64().unwrap_or(-1), l["end_ms"].as_i64().unwrap_or(-1));
        assert!(start >= 0 && end > start, "{l}");
    }
    // Speech starts about 1 s in (the leading silence) and lasts about 11 s.
    let first = lines[0]["start_ms"].as_i64().unwrap_or(0);
    assert!((500..=2500).contains(&first), "speech start {first} ms");
    let (errors, words) = voxline_text::heard::word_errors(
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
        &text.join(" "),
    );
    assert!(errors * 5 <= words, "{errors} errors in {words} words: {text:?}");
    assert!(server.log_text().contains("caller utterance recognised"));
    let metrics = server.http_get("/metrics");
    assert!(metrics.contains("voxline_asr_decodes_total"), "{metrics}");
}

/// A server with a TLS listener (a fresh certificate) and `[sip] srtp =
/// policy`: the server, its TLS port and the certificate baresip trusts.
fn tls_server(name: &str, policy: &str) -> (Server, u16, std::path::PathBuf) {
    let (tls_port, extra, cert) = tls_listener(&format!("{name}-cert"));
    let policy = format!("[sip]\nsrtp = \"{policy}\"\n");
    let server = Server::start_with(name, &extra, None, |c| {
        assert_eq!(c.matches("[sip]\n").count(), 1, "{c}");
        c.replace("[sip]\n", &policy)
    });
    (server, tls_port, cert)
}

#[test]
fn a_tls_call_with_srtp_echoes_what_baresip_says_encrypted_both_ways() {
    // baresip with `mediaenc=srtp-mand` offers RTP/SAVP with SDES keys over
    // SIP on TLS, and takes nothing else; voxline requires SRTP. What it
    // hears back can only match what it sent if both directions were
    // encrypted and decrypted with the keys the SDP exchanged.
    let (server, tls_port, ca) = tls_server("tls-srtp", "required");
    let mut mic = tone_bursts(30, 13);
    mic.extend(std::iter::repeat_n(0, 8000 * 3));
    let snd = baresip_call_tls("echo", &mic, tls_port, &ca, Some("srtp-mand"));
    let (corr, delay_ms, shown, _) = baresip_echo(&snd);
    eprintln!("TLS + SRTP echo: median window correlation {corr:.3} at {delay_ms:.1} ms; windows {shown:?}");
    assert!(
        corr > 0.8,
        "the SRTP echo does not match what was sent ({corr:.3})\n{}",
        server.log_text()
    );
    let records = server.all_records();
    let r = records.first().expect("a call record");
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["codec"], "PCMU", "{r}");
    assert_eq!(r["srtp"], "AES_CM_128_HMAC_SHA1_80", "{r}");
    let ended = server.ended_line("");
    // Every media packet baresip sent authenticated; the one it may send in
    // clear before the call is secured (libre's RTCP "PINGPONG" to open a
    // NAT pinhole) is the only one refused.
    assert!(ended_field(&ended, "srtp_rejected") <= 1, "{ended}");
    assert!(ended.contains(" lost=0 ") && !ended.contains(" received=0 "), "{ended}");
    // baresip's reports came in as SRTCP and were read.
    assert_eq!(r["remote_lost"].as_i64(), Some(0), "{r}");
}

#[test]
fn a_plain_rtp_call_where_srtp_is_required_is_refused_with_488() {
    let (server, tls_port, ca) = tls_server("tls-srtp-required", "required");
    let mic = tone_bursts(10, 3);
    baresip_call_tls("echo", &mic, tls_port, &ca, None);
    let records = server.all_records();
    let r = records
        .first()
        .unwrap_or_else(|| panic!("a call record\n{}", server.log_text()));
    assert_eq!(r["sip_status"], 488, "{r}");
    assert_eq!(r["end_reason"], "srtp_not_acceptable", "{r}");
}
