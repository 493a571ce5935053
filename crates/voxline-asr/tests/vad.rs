//! Silero VAD (from the PyPI package, through the ONNX Runtime library from
//! the PyPI wheel) tells the JFK speech from silence.

mod common;

use voxline_asr::{SileroVad, VAD_WINDOW};
use voxline_media::g711::{linear_to_ulaw, ulaw_to_linear};

#[test]
fn silero_hears_jfk_and_not_silence() {
    let Some(files) = common::fetched(&[common::ONNX_RUNTIME, "silero-vad/silero_vad.onnx", common::JFK_WAV]) else {
        return;
    };
    let mut vad = SileroVad::load(&files[0], &files[1]).expect("load");
    let samples = common::read_16k(&files[2]);
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
    let Some(files) = common::fetched(&[common::ONNX_RUNTIME]) else {
        return;
    };
    let e = SileroVad::load(&files[0], std::path::Path::new("/nonexistent/vad.onnx"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/vad.onnx"), "{e}");
}

/// μ-law companding (what a G.711 line does to every sample) plus a hiss at
/// about -50 dBFS: the pauses stay silence, the phrases stay speech.
#[test]
fn silero_is_not_fooled_by_g711_companding_and_line_hiss() {
    let Some(files) = common::fetched(&[common::ONNX_RUNTIME, "silero-vad/silero_vad.onnx", common::JFK_WAV]) else {
        return;
    };
    let mut seed = 12345u32;
    let mut hiss = || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (f32::from((seed >> 16) as u16) / 65535.0 - 0.5) * 0.006
    };
    // A μ-law round trip of one sample, with the media engine's G.711.
    let ulaw = |x: f32| {
        let s = (x * 32768.0).clamp(-32768.0, 32767.0) as i16;
        f32::from(ulaw_to_linear(linear_to_ulaw(s))) / 32768.0
    };
    let clean = common::read_16k(&files[2]);
    let line: Vec<f32> = clean.iter().map(|&x| ulaw(x + hiss())).collect();
    let mut vad = SileroVad::load(&files[0], &files[1]).expect("load");
    let mut vad_clean = SileroVad::load(&files[0], &files[1]).expect("load");
    let (mut agree, mut total) = (0, 0);
    for (a, b) in clean.chunks_exact(VAD_WINDOW).zip(line.chunks_exact(VAD_WINDOW)) {
        let (pc, pl) = (vad_clean.process(a).expect("vad"), vad.process(b).expect("vad"));
        total += 1;
        if (pc > 0.5) == (pl > 0.5) {
            agree += 1;
        }
    }
    let share = f64::from(agree) / f64::from(total);
    eprintln!("clean vs G.711 + hiss: {:.1}% of {total} windows agree", share * 100.0);
    assert!(share > 0.9, "only {share} of windows agree");
    // Hiss alone, companded, is not speech.
    vad.reset();
    let noise: Vec<f32> = (0..VAD_WINDOW * 60).map(|_| ulaw(hiss())).collect();
    let false_speech = noise
        .chunks_exact(VAD_WINDOW)
        .filter(|w| vad.process(w).expect("vad") > 0.5)
        .count();
    assert_eq!(false_speech, 0, "line hiss scored as speech");
}
