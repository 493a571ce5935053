//! `voxline qa import` on recordings as call recorders write them: a
//! two-sided call spoken by the Piper voice (the agent) and espeak-ng (the
//! customer), laid on a timeline and written as a stereo μ-law WAV at
//! 8 kHz and as a pair of mono files; each side transcribed on its own
//! with word times (real Whisper, real VAD), scored against the demo bank's
//! scorecard; resumed without doing a call twice; bad files named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use voxline_media::{write_recording, Recording, WavEncoding};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("voxline-qa-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("test dir");
    d
}

/// The models are there; under `make test` (VOXLINE_REQUIRE_MODELS) their
/// absence fails the test, elsewhere it skips.
fn models_ready() -> bool {
    let models = voxline_models::models_dir();
    let ok = [
        voxline_models::defaults::WHISPER,
        voxline_models::defaults::SILERO_VAD,
        voxline_models::defaults::PIPER_VOICE,
        voxline_models::defaults::EMBEDDING,
    ]
    .iter()
    .all(|f| models.join(f).exists());
    if !ok {
        assert!(
            std::env::var_os("VOXLINE_REQUIRE_MODELS").is_none(),
            "the default models are missing (voxline models fetch)"
        );
        eprintln!("skipped: models missing");
    }
    ok
}

/// `text` spoken at 8 kHz: by the Piper voice (`voxline say`) or espeak-ng.
fn speak(work: &Path, name: &str, text: &str, piper: bool) -> Vec<i16> {
    let wav = work.join(format!("{name}.wav"));
    let ok = if piper {
        Command::new(env!("CARGO_BIN_EXE_voxline"))
            .args(["say", text, "--out"])
            .arg(&wav)
            .status()
    } else {
        Command::new("espeak-ng")
            .args(["-v", "en-us+f3", "-w"])
            .arg(&wav)
            .arg(text)
            .status()
    }
    .expect("run the voice");
    assert!(ok.success(), "speaking {text:?}");
    let clip = voxline_media::read_wav_mono(&wav).expect("the spoken clip");
    voxline_media::rtp_session::resample_clip(&clip.samples, clip.rate, 8000)
        .expect("to 8 kHz")
        .to_vec()
}

/// A call without the recording notice: (who, gap before in ms, text).
const SCRIPT: [(&str, u64, &str); 4] = [
    (
        "agent",
        300,
        "Thank you for calling Harbor Bank, this is Ava. How can I help you today?",
    ),
    ("customer", 700, "Hello. I lost my debit card yesterday."),
    (
        "agent",
        900,
        "I have blocked the card, and a new card is on its way to you.",
    ),
    ("customer", 600, "Thank you, goodbye."),
];

/// Who spoke from when to when (ms).
type Span = (&'static str, u64, u64);

/// The call on two channels at 8 kHz, and each line's span.
fn render(work: &Path) -> (Vec<i16>, Vec<i16>, Vec<Span>) {
    let (mut agent, mut customer) = (Vec::new(), Vec::new());
    let mut spans = Vec::new();
    let mut at = 0usize;
    for (i, (who, gap, text)) in SCRIPT.iter().enumerate() {
        let audio = speak(work, &format!("line{i}"), text, *who == "agent");
        let start = at + *gap as usize * 8;
        let end = start + audio.len();
        for side in [&mut agent, &mut customer] {
            side.resize(end, 0);
        }
        let side = if *who == "agent" { &mut agent } else { &mut customer };
        side[start..end].copy_from_slice(&audio);
        spans.push((*who, start as u64 / 8, end as u64 / 8));
        at = end;
    }
    // A second of silence at the end, as recorders keep.
    for side in [&mut agent, &mut customer] {
        side.resize(at + 8000, 0);
    }
    (agent, customer, spans)
}

fn qa(args: &[&str], calls: &[&Path], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voxline"))
        .args(["qa", "import", "--scorecard"])
        .arg(repo().join("domains/demo-bank/qa.toml"))
        .arg("--out")
        .arg(out)
        .args(args)
        .args(calls)
        .env("NO_COLOR", "1")
        .output()
        .expect("voxline runs")
}

fn result(out: &Path, name: &str) -> serde_json::Value {
    let path = out.join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the result file")).expect("JSON")
}

fn verdict(v: &serde_json::Value, id: &str) -> String {
    v["score"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["id"] == id)
        .and_then(|i| i["verdict"].as_str())
        .unwrap_or("missing")
        .to_string()
}

/// Each line lies within a spoken span of its speaker (the VAD's edges,
/// give or take 400 ms), and its words are in order inside it.
fn check_lines(v: &serde_json::Value, spans: &[Span], agent_is: &str) {
    let lines = v["transcript"]["lines"].as_array().expect("lines");
    assert!(lines.len() >= 4, "{lines:#?}");
    for l in lines {
        let (speaker, start, end) = (
            l["speaker"].as_str().expect("speaker"),
            l["start_ms"].as_u64().expect("start"),
            l["end_ms"].as_u64().expect("end"),
        );
        let side = if speaker == "agent" {
            agent_is
        } else if agent_is == "agent" {
            "customer"
        } else {
            "agent"
        };
        assert!(
            spans
                .iter()
                .any(|&(who, s, e)| who == side && start + 400 >= s && end <= e + 400),
            "{speaker} line {start}-{end} ms is not in a {side} span: {spans:?}"
        );
        let words = l["words"].as_array().expect("word times");
        assert!(!words.is_empty(), "{l}");
        let mut last = start;
        for w in words {
            let (ws, we) = (w["start_ms"].as_u64().expect("ws"), w["end_ms"].as_u64().expect("we"));
            assert!(ws >= last.saturating_sub(10) && ws <= we && we <= end, "{w} in {l}");
            last = ws;
        }
    }
}

#[test]
fn stereo_mulaw_and_mono_pair_recordings_are_transcribed_side_by_side_and_scored() {
    if !models_ready() {
        return;
    }
    let work = dir("import");
    let (agent, customer, spans) = render(&work);
    let stereo = work.join("call-1.wav");
    let rec = Recording {
        rate: 8000,
        channels: vec![agent.clone(), customer.clone()],
        encoding: WavEncoding::Pcm,
    };
    write_recording(&stereo, &rec, WavEncoding::MuLaw).expect("stereo μ-law");
    let out = work.join("out");

    let run = qa(&[], &[&stereo], &out);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v = result(&out, "call-1");
    assert_eq!(v["kind"], "stereo");
    check_lines(&v, &spans, "agent");
    let agent_text = v["transcript"]["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["speaker"] == "agent")
        .map(|l| l["text"].as_str().unwrap_or_default().to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(agent_text.contains("harbor bank"), "{agent_text}");
    // No recording notice: the critical item fails, so does the call.
    assert_eq!(verdict(&v, "recording_notice"), "fail", "{v:#}");
    assert_eq!(verdict(&v, "dead_air"), "pass");
    assert_eq!(v["score"]["passed"], false);
    assert!(stdout.contains("x real time"), "{stdout}");

    // Run again: the call is not done again (its result is left as it was).
    let before = std::fs::read(out.join("call-1.json")).expect("result");
    let run = qa(&[], &[&stereo], &out);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains("1 call(s) scored before"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(out.join("call-1.json")).expect("result"), before);

    // The agent said to be on the right: the sides swap.
    let swapped = work.join("swapped");
    let run = qa(&["--agent-channel", "right"], &[&stereo], &swapped);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    check_lines(&result(&swapped, "call-1"), &spans, "customer");

    // The same call as two mono files (16-bit PCM at 16 kHz): the same lines.
    let (a, c) = (work.join("call-2-agent.wav"), work.join("call-2-customer.wav"));
    for (path, side) in [(&a, &agent), (&c, &customer)] {
        let at16 = voxline_media::rtp_session::resample_clip(side, 8000, 16_000).expect("16 kHz");
        let mono = Recording {
            rate: 16_000,
            channels: vec![at16.to_vec()],
            encoding: WavEncoding::Pcm,
        };
        write_recording(path, &mono, WavEncoding::Pcm).expect("mono");
    }
    let pair = PathBuf::from(format!("{}+{}", a.display(), c.display()));
    let run = qa(&[], &[&pair], &out);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let p = result(&out, "call-2-agent");
    assert_eq!(p["kind"], "mono-pair");
    check_lines(&p, &spans, "agent");
    assert_eq!(verdict(&p, "recording_notice"), "fail");
}

#[test]
fn bad_recordings_and_transcripts_are_named_and_the_good_calls_still_scored() {
    if !models_ready() {
        return;
    }
    let work = dir("bad");
    // A mono recording given as a stereo call.
    let mono = work.join("mono.wav");
    let rec = Recording {
        rate: 8000,
        channels: vec![vec![0; 8000]],
        encoding: WavEncoding::Pcm,
    };
    write_recording(&mono, &rec, WavEncoding::ALaw).expect("mono");
    // A file named .wav that is not one.
    let corrupt = work.join("corrupt.wav");
    std::fs::write(&corrupt, "RIFF....this is not audio").expect("corrupt");
    // A transcript with a line missing its end.
    let bad_json = work.join("bad.json");
    std::fs::write(
        &bad_json,
        r#"{"lines": [{"speaker": "agent", "start_ms": 0, "text": "Hello."}]}"#,
    )
    .expect("bad json");
    // A good transcript: scored while the others fail.
    let good = work.join("good.json");
    std::fs::write(
        &good,
        r#"{"lines": [
            {"speaker": "agent", "start_ms": 0, "end_ms": 4000, "text": "Thank you for calling Harbor Bank, this is Ava. How can I help you today?"},
            {"speaker": "agent", "start_ms": 4200, "end_ms": 7000, "text": "This call may be recorded for quality and training."},
            {"speaker": "customer", "start_ms": 7600, "end_ms": 9500, "text": "What time do you open on Saturday?"},
            {"speaker": "agent", "start_ms": 10000, "end_ms": 12500, "text": "We open at nine on Saturdays."},
            {"speaker": "agent", "start_ms": 12800, "end_ms": 14800, "text": "Is there anything else I can help you with?"},
            {"speaker": "customer", "start_ms": 15200, "end_ms": 16400, "text": "No, thanks. Bye."}
        ]}"#,
    )
    .expect("good json");
    let out = work.join("out");
    let run = qa(&[], &[&mono, &corrupt, &bad_json, &good], &out);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(!run.status.success(), "{stdout}");
    assert!(stderr.contains("3 call(s) could not be imported"), "{stderr}");
    assert!(
        stderr.contains("mono.wav") && stderr.contains("must be stereo"),
        "{stderr}"
    );
    assert!(
        stderr.contains("corrupt.wav") && stderr.contains("not a WAV"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.json") && stderr.contains("lines[0]") && stderr.contains("end_ms"),
        "{stderr}"
    );
    let v = result(&out, "good");
    assert_eq!(v["kind"], "transcript");
    assert_eq!(verdict(&v, "recording_notice"), "pass", "{v:#}");
    assert_eq!(v["score"]["passed"], true, "{v:#}");
    for name in ["mono", "corrupt", "bad"] {
        assert!(!out.join(format!("{name}.json")).exists(), "{name}");
    }
    // Summarised by the default model, or from the call's own sentences
    // with why the model's draft was refused.
    let written = &v["summary"]["written_by"];
    match written["by"].as_str() {
        Some("model") => assert!(v["summary"]["intent"]["text"].is_string(), "{v:#}"),
        Some("extractive") => assert!(written["model_refused"].is_string(), "{v:#}"),
        other => panic!("written by {other:?}: {v:#}"),
    }
    // Without a model: the customer's question and the agent's answer, quoted.
    let plain = work.join("plain");
    let run = qa(&["--llm", "none"], &[&good], &plain);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let v = result(&plain, "good");
    let s = &v["summary"];
    assert_eq!(s["intent"]["text"], "What time do you open on Saturday?", "{s:#}");
    assert_eq!(s["intent"]["evidence"]["line"], 2, "{s:#}");
    assert_eq!(s["outcome"]["text"], "We open at nine on Saturdays.", "{s:#}");
    assert_eq!(s["written_by"], serde_json::json!({"by": "extractive"}), "{s:#}");
    assert_eq!(verdict(&v, "resolved"), "unsure", "no model judged it");

    // A file that is neither: refused before anything is done.
    let run = qa(&[], &[Path::new("call.mp3")], &work.join("none"));
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("call.mp3: not a .wav"));
    assert!(!work.join("none").exists());
}
