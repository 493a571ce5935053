//! The converted tiny.en (CTranslate2 package → ggml, by `voxline models
//! fetch`) transcribes the JFK sample shipped with whisper.cpp word for word
//! (compared as Whisper's normaliser compares: case and punctuation aside).

mod common;

use std::time::Instant;
use voxline_asr::{DecodeOptions, Doubt, WhisperModel};
use voxline_text::heard::normalize_english;

const JFK: &str =
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

#[test]
fn converted_tiny_en_transcribes_jfk_word_for_word() {
    let Some(files) = common::fetched(&["whisper-tiny-en/ggml-model.bin", common::JFK_WAV]) else {
        return;
    };
    let (model_path, samples) = (&files[0], common::read_16k(&files[1]));
    let model = WhisperModel::load(model_path).expect("load");
    let mut state = model.state().expect("state");
    let t = Instant::now();
    let heard = model
        .transcribe(&mut state, &samples, &DecodeOptions::default())
        .expect("transcribe");
    let text = heard.text;
    eprintln!(
        "jfk ({:.1} s of audio) in {:?}: {text}",
        samples.len() as f64 / 16_000.0,
        t.elapsed()
    );
    assert_eq!(normalize_english(&text), normalize_english(JFK), "{text}");
    // Clear speech heard right: Whisper is sure of it.
    let c = heard.confidence;
    assert!(c.tokens >= 20, "{c:?}");
    assert!(c.mean_logprob > -0.5, "clear speech decoded with doubt: {c:?}");
    assert!(c.no_speech < 0.2, "speech taken for silence: {c:?}");
    assert!(!Doubt::default().doubts(&c), "{c:?}");

    // The same voice played backwards: speech sounds, no words. Whisper
    // writes something, and the default threshold doubts it (decision 0043).
    let reversed: Vec<f32> = samples.iter().rev().copied().collect();
    let heard = model
        .transcribe(&mut state, &reversed, &DecodeOptions::default())
        .expect("transcribe");
    assert!(
        Doubt::default().doubts(&heard.confidence),
        "reversed speech heard without doubt: {heard:?}"
    );
}

#[test]
fn a_file_that_is_not_a_model_is_refused_with_its_name() {
    let bad = std::env::temp_dir().join(format!("voxline-not-a-model-{}.bin", std::process::id()));
    std::fs::write(&bad, b"not a model").unwrap();
    let e = WhisperModel::load(&bad).unwrap_err().to_string();
    assert!(e.contains(&bad.display().to_string()), "{e}");
    std::fs::remove_file(&bad).ok();
    let e = WhisperModel::load(std::path::Path::new("/nonexistent/model.bin"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nonexistent/model.bin") && e.contains("no such file"),
        "{e}"
    );
}
