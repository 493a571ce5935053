//! `voxline say TEXT --out WAV`: the text, normalised for the phone, spoken
//! by a Piper voice into a WAV file (16-bit mono at the voice's rate).

use anyhow::Context;
use std::path::PathBuf;
use voxline_tts::{TtsConfig, TtsEngine};

/// Arguments of `voxline say`.
#[derive(clap::Args, Debug)]
pub struct SayArgs {
    /// What to say.
    text: String,
    /// The WAV file to write.
    #[arg(long)]
    out: PathBuf,
    /// A Piper voice (`.onnx`, its `.onnx.json` next to it; default: en_US joe medium).
    #[arg(long)]
    voice: Option<PathBuf>,
}

/// Runs the command.
pub async fn run(args: SayArgs) -> anyhow::Result<()> {
    let models = voxline_models::models_dir();
    let voice = args
        .voice
        .unwrap_or_else(|| models.join(voxline_models::defaults::PIPER_VOICE));
    let runtime = models.join(voxline_models::defaults::ONNX_RUNTIME);
    let engine = TtsEngine::start(&runtime, &voice, TtsConfig::default())?;
    let mut stream = engine.stream();
    stream.push_text(&args.text)?;
    stream.finish()?;
    let mut samples = Vec::new();
    while let Some(chunk) = stream.next_chunk().await {
        samples.extend_from_slice(&chunk?.samples);
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: engine.sample_rate(),
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w =
        hound::WavWriter::create(&args.out, spec).with_context(|| format!("creating {}", args.out.display()))?;
    for s in &samples {
        w.write_sample(*s)?;
    }
    w.finalize()?;
    eprintln!(
        "{}: {:.2} s at {} Hz",
        args.out.display(),
        samples.len() as f64 / f64::from(engine.sample_rate()),
        engine.sample_rate()
    );
    Ok(())
}
