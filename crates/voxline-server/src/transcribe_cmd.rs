//! `voxline transcribe WAV`: a WAV file (any rate that is a multiple of
//! 50 Hz, mono or stereo, 16-bit or float) through Whisper; prints the text.

use anyhow::Context;
use std::path::PathBuf;
use voxline_asr::{DecodeOptions, WhisperModel, ASR_RATE};

/// Arguments of `voxline transcribe`.
#[derive(clap::Args, Debug)]
pub struct TranscribeArgs {
    /// The WAV file.
    wav: PathBuf,
    /// A ggml Whisper model (default: the converted tiny.en in the models folder).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Language code; "auto" lets a multilingual model detect it.
    #[arg(long, default_value = "en")]
    language: String,
    /// Domain words that steer recognition.
    #[arg(long)]
    prompt: Option<String>,
}

/// Reads a WAV as mono samples (-1..1) at its own rate.
fn read_mono(path: &PathBuf) -> anyhow::Result<(Vec<f32>, u32)> {
    let mut r = hound::WavReader::open(path).with_context(|| format!("reading {}", path.display()))?;
    let spec = r.spec();
    let channels = usize::from(spec.channels.max(1));
    let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => r
            .samples::<i16>()
            .map(|s| s.map(|v| f32::from(v) / 32768.0))
            .collect::<Result<_, _>>()?,
        (hound::SampleFormat::Float, 32) => r.samples::<f32>().collect::<Result<_, _>>()?,
        (f, b) => anyhow::bail!(
            "{}: {b}-bit {f:?} WAV; use 16-bit integer or 32-bit float",
            path.display()
        ),
    };
    let mono = samples
        .chunks(channels)
        .map(|c| c.iter().sum::<f32>() / channels as f32)
        .collect();
    Ok((mono, spec.sample_rate))
}

/// Runs the command.
pub fn run(args: TranscribeArgs) -> anyhow::Result<()> {
    let (samples, rate) = read_mono(&args.wav)?;
    let samples = if rate == ASR_RATE {
        samples
    } else {
        let pcm: Vec<i16> = samples
            .iter()
            .map(|&s| (s * 32767.0).clamp(-32768.0, 32767.0) as i16)
            .collect();
        voxline_media::rtp_session::resample_clip(&pcm, rate, ASR_RATE)
            .with_context(|| format!("{}: resampling {rate} Hz to 16 kHz", args.wav.display()))?
            .iter()
            .map(|&s| f32::from(s) / 32768.0)
            .collect()
    };
    let path = args
        .model
        .unwrap_or_else(|| voxline_models::models_dir().join("whisper-tiny-en/ggml-model.bin"));
    let model = WhisperModel::load(&path)?;
    let mut state = model.state()?;
    let opts = DecodeOptions {
        language: (args.language != "auto").then_some(args.language),
        initial_prompt: args.prompt,
        ..DecodeOptions::default()
    };
    println!("{}", model.transcribe(&mut state, &samples, &opts)?);
    Ok(())
}
