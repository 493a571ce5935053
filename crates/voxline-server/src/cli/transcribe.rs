//! `voxline transcribe WAV…`: WAV files (any rate that is a multiple of
//! 50 Hz, any channels, integer or float samples) through Whisper; prints
//! the text of each, and with `--confidence` how sure Whisper was.

use anyhow::Context;
use std::path::PathBuf;
use voxline_asr::{DecodeOptions, WhisperModel, ASR_RATE};

/// Arguments of `voxline transcribe`.
#[derive(clap::Args, Debug)]
pub struct TranscribeArgs {
    /// The WAV files.
    #[arg(required = true)]
    wavs: Vec<PathBuf>,
    /// A ggml Whisper model (default: the converted tiny.en in the models folder).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Language code; "auto" lets a multilingual model detect it.
    #[arg(long, default_value = "en")]
    language: String,
    /// Domain words that steer recognition.
    #[arg(long)]
    prompt: Option<String>,
    /// One JSON line per file: its name, the text, and Whisper's
    /// confidence (mean token log-probability, the least likely token's
    /// probability, the no-speech probability, text tokens).
    #[arg(long)]
    confidence: bool,
}

/// Runs the command.
pub fn run(args: TranscribeArgs) -> anyhow::Result<()> {
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
    for file in &args.wavs {
        let wav = voxline_media::read_wav_mono(file)?;
        let pcm = voxline_media::rtp_session::resample_clip(&wav.samples, wav.rate, ASR_RATE)
            .with_context(|| format!("{}: resampling {} Hz to 16 kHz", file.display(), wav.rate))?;
        let samples: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
        let heard = model
            .transcribe(&mut state, &samples, &opts)
            .with_context(|| format!("{}: transcribing", file.display()))?;
        if args.confidence {
            let c = heard.confidence;
            let line = serde_json::json!({
                "file": file.display().to_string(),
                "text": heard.text,
                "mean_logprob": c.mean_logprob,
                "min_prob": c.min_prob,
                "no_speech": c.no_speech,
                "tokens": c.tokens,
            });
            println!("{line}");
        } else {
            println!("{}", heard.text);
        }
    }
    Ok(())
}
