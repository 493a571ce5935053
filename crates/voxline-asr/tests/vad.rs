//! Silero VAD (from the PyPI package, through the ONNX Runtime library from
//! the PyPI wheel) tells the JFK speech from silence.

use voxline_asr::{SileroVad, VAD_WINDOW};

#[test]
fn silero_hears_jfk_and_not_silence() {
    let dir = voxline_models::models_dir();
    let (lib, model, wav) = (
        dir.join("onnxruntime/libonnxruntime.so.1.31.1"),
        dir.join("silero-vad/silero_vad.onnx"),
        dir.join("test-audio/jfk.wav"),
    );
    if !lib.exists() || !model.exists() || !wav.exists() {
        assert!(
            std::env::var_os("VOXLINE_REQUIRE_MODELS").is_none(),
            "models missing under {}",
            dir.display()
        );
        eprintln!("skipped: models not fetched");
        return;
    }
    let mut vad = SileroVad::load(&lib, &model).expect("load");
    let samples: Vec<f32> = hound::WavReader::open(&wav)
        .expect("jfk.wav")
        .samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32768.0)
        .collect();
    let probs: Vec<f32> = samples
        .chunks_exact(VAD_WINDOW)
        .map(|w| vad.process(w).expect("vad"))
        .collect();
    let speech = probs.iter().filter(|&&p| p > 0.5).count() as f64 / probs.len() as f64;
    eprintln!("jfk: {:.0}% of {} windows over 0.5", speech * 100.0, probs.len());
    // JFK speaks for most of the 11 s, with pauses between phrases.
    assert!((0.5..0.95).contains(&speech), "speech share {speech}");
    // Segmented: JFK's phrases come out as speech segments.
    let mut seg = voxline_asr::Segmenter::new(voxline_asr::SegmenterConfig::default());
    let events: Vec<_> = probs.iter().filter_map(|&p| seg.push(p, 32)).collect();
    eprintln!("jfk segments: {events:?}");
    let starts = events
        .iter()
        .filter(|e| matches!(e, voxline_asr::VadEvent::SpeechStart { .. }))
        .count();
    assert!((2..=8).contains(&starts), "{events:?}");
    vad.reset();
    let silence = vec![0.0f32; VAD_WINDOW];
    let quiet: Vec<f32> = (0..30).map(|_| vad.process(&silence).expect("vad")).collect();
    assert!(quiet.iter().all(|&p| p < 0.1), "silence scored {quiet:?}");
    assert!(vad.process(&silence[..100]).is_err(), "a short window is refused");
}

#[test]
fn a_missing_runtime_or_model_is_named() {
    let dir = voxline_models::models_dir();
    let lib = dir.join("onnxruntime/libonnxruntime.so.1.31.1");
    if !lib.exists() {
        return;
    }
    let e = SileroVad::load(&lib, std::path::Path::new("/nonexistent/vad.onnx"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/vad.onnx"), "{e}");
}
