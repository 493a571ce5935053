//! The audio end-of-turn model (smart-turn v3.2) on real speech: the JFK
//! clip heard to its end sounds finished; cut mid-sentence, it does not.
//! A missing model file is an error naming it.

mod common;

use voxline_asr::TurnModel;

const SMART_TURN: &str = "smart-turn/smart-turn-v3.2-cpu.onnx";

/// `secs` of the clip, then the 200 ms of silence after which it is judged.
fn upto(clip: &[f32], secs: f32) -> Vec<f32> {
    let mut a = clip[..((secs * 16_000.0) as usize).min(clip.len())].to_vec();
    a.extend(std::iter::repeat_n(0.0, 3_200));
    a
}

#[test]
fn a_finished_sentence_sounds_finished_and_a_cut_one_does_not() {
    let Some(files) = common::fetched(&[common::ONNX_RUNTIME, SMART_TURN, common::JFK_WAV]) else {
        return;
    };
    let model = TurnModel::load(&files[0], &files[1], 1).expect("load");
    let clip = common::read_16k(&files[2]);
    let whole = model.judge_blocking(&upto(&clip, 11.0)).expect("judge");
    assert!(whole.complete > 0.5, "the whole sentence: {}", whole.complete);
    // "And so my fellow Americans, ask not | what your country can do for you…"
    for cut in [4.0, 7.5] {
        let v = model.judge_blocking(&upto(&clip, cut)).expect("judge");
        assert!(v.complete < 0.2, "cut at {cut} s: {}", v.complete);
    }
    eprintln!("one inference: {:?}", whole.took);
}

#[test]
fn a_missing_model_is_named() {
    let Some(files) = common::fetched(&[common::ONNX_RUNTIME]) else {
        return;
    };
    let err = TurnModel::load(&files[0], std::path::Path::new("/nonexistent/turn.onnx"), 1)
        .expect_err("no file")
        .to_string();
    assert!(err.contains("/nonexistent/turn.onnx"), "{err}");
}
