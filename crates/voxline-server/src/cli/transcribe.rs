//! `voxline transcribe WAV`: a WAV file (any rate that is a multiple of
//! 50 Hz, any channels, integer or float samples) through Whisper; prints the text.

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

/// Runs the command.
pub fn run(args: TranscribeArgs) -> anyhow::Result<()> {
    let wav = voxline_media::read_wav_mono(&args.wav)?;
    let pcm = voxline_media::rtp_session::resample_clip(&wav.samples, wav.rate, ASR_RATE)
        .with_context(|| format!("{}: resampling {} Hz to 16 kHz", args.wav.display(), wav.rate))?;
    let samples: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let path = args
        .model
        .unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::WHISPER));
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
