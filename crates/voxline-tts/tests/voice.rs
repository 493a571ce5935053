//! The default Piper voice on real models: what it says, Whisper hears; a
//! streamed reply comes out phrase by phrase in order, its first phrase
//! before the rest is synthesised; a cancelled reply gives no more audio.

use std::path::PathBuf;
use std::time::Instant;
use voxline_asr::{DecodeOptions, WhisperModel};
use voxline_text::heard::word_errors;
use voxline_tts::{TtsConfig, TtsEngine, TtsError};

const VOICE: &str = "piper-en-us-joe-medium/en_US-joe-medium.onnx";
const RUNTIME: &str = "onnxruntime/libonnxruntime.so.1.31.1";
const WHISPER: &str = "whisper-tiny-en/ggml-model.bin";

/// The model files, or None (skip) when not fetched; a missing file fails
/// the test when VOXLINE_REQUIRE_MODELS is set.
fn fetched() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let [v, r, w]: [PathBuf; 3] = voxline_models::fetched_for_test(&[VOICE, RUNTIME, WHISPER])?
        .try_into()
        .ok()?;
    Some((v, r, w))
}

/// What Whisper hears in voice audio (22.05 kHz).
fn hear(whisper: &WhisperModel, samples: &[i16], rate: u32) -> String {
    let pcm = voxline_media::rtp_session::resample_clip(samples, rate, 16_000).expect("resample");
    let audio: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let mut state = whisper.state().expect("state");
    whisper
        .transcribe(&mut state, &audio, &DecodeOptions::default())
        .expect("transcribe")
        .text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_voice_says_whisper_hears() {
    let Some((voice, runtime, whisper)) = fetched() else {
        return;
    };
    let engine = TtsEngine::start(&runtime, &voice, TtsConfig::default()).expect("voice");
    let whisper = WhisperModel::load(&whisper).expect("whisper");
    let text = "Our branch on High Street opens at 9am, and the fee is $12.50.";
    let audio = engine.synthesize(text).await.expect("synthesize");
    let secs = audio.len() as f64 / f64::from(engine.sample_rate());
    let heard = hear(&whisper, &audio, engine.sample_rate());
    eprintln!("{secs:.2} s: {heard}");
    assert!((2.0..10.0).contains(&secs), "{secs} s of audio");
    let (errors, words) = word_errors(
        "Our branch on High Street opens at nine a m and the fee is twelve dollars and fifty cents",
        &heard
            .replace("$12.50", "twelve dollars and fifty cents")
            .replace("9 a.m.", "nine a m"),
    );
    assert!(errors * 5 <= words, "{errors} errors in {words} words: {heard}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_reply_comes_out_in_order_and_a_cancel_stops_it() {
    let Some((voice, runtime, whisper)) = fetched() else {
        return;
    };
    let engine = TtsEngine::start(&runtime, &voice, TtsConfig::default()).expect("voice");
    let whisper = WhisperModel::load(&whisper).expect("whisper");
    // The reply arrives in LLM-sized pieces.
    let reply = "Sure, I can help with that. Your card ending in four two is now blocked. \
                 A new card will reach you within five working days. Is there anything else?";
    let mut stream = engine.stream();
    let started = Instant::now();
    let mut submitted = Vec::new();
    for piece in reply.split_inclusive(' ') {
        submitted.extend(stream.push_text(piece).expect("push"));
    }
    submitted.extend(stream.finish().expect("finish"));
    assert_eq!(
        submitted.first().map(String::as_str),
        Some("Sure, I can help with that.")
    );
    let mut chunks = Vec::new();
    while let Some(c) = stream.next_chunk().await {
        let c = c.expect("chunk");
        chunks.push((c.text.clone(), started.elapsed(), c.samples.len()));
        if chunks.len() == 1 {
            eprintln!("first audio after {:?}", started.elapsed());
        }
    }
    assert!(stream.done());
    let texts: Vec<&str> = chunks.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        texts,
        submitted.iter().map(String::as_str).collect::<Vec<_>>(),
        "in order"
    );
    // The first phrase was ready before the last one.
    assert!(chunks[0].1 < chunks[chunks.len() - 1].1);

    // Cancelled after its first phrase: nothing more comes out.
    let mut stream = engine.stream();
    stream.push_text(reply).expect("push");
    stream.finish().expect("finish");
    let first = stream.next_chunk().await.expect("first").expect("audio");
    stream.cancel();
    assert!(stream.next_chunk().await.is_none(), "audio after the cancel");
    assert!(stream.push_text(" More text.").expect("push").is_empty());
    let heard = hear(&whisper, &first.samples, engine.sample_rate());
    assert!(heard.to_lowercase().contains("help"), "{heard}");
}

#[test]
fn a_missing_voice_is_named() {
    let Some((_, runtime, _)) = fetched() else {
        return;
    };
    let e = TtsEngine::start(
        &runtime,
        std::path::Path::new("/nonexistent/voice.onnx"),
        TtsConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(e, TtsError::Load { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/voice.onnx"), "{e}");
}
