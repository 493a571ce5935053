//! `voxline bench asr`: speech recognition on telephone audio. Every clip
//! of the test set (the JFK sample and pytest-audioeval's English clips,
//! fetched by `voxline models fetch --group test`, plus the Harvard
//! sentences spoken by espeak-ng and by the Piper voice) is passed through a
//! G.711 μ-law 8 kHz
//! round trip, then recognised twice on the same model in one run:
//! offline (the whole clip in one decode) and streaming (20 ms frames in
//! real time through VAD, partials and the early final, as on a call).
//! Prints word error rate (Whisper's English normalisation rules), real-time
//! factor, and the final hypothesis' latency after the end of speech.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use voxline_asr::stream::{audio_ctx_for, max_tokens_for};
use voxline_asr::{
    AsrEvent, AsrPool, DecodeOptions, PoolConfig, SileroVad, StreamConfig, StreamingRecognizer, WhisperModel,
};
use voxline_media::wav_source::read_wav_mono;
use voxline_text::heard::word_errors;

/// Arguments of `voxline bench asr`.
#[derive(clap::Args, Debug)]
pub struct BenchAsrArgs {
    /// A ggml Whisper model (default: the converted tiny.en).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Sentences spoken by espeak-ng and the Piper voice, one per line (default: Harvard sentences).
    #[arg(long, default_value = "load-tests/asr/harvard-sentences.txt")]
    sentences: PathBuf,
    /// espeak-ng voice for the sentences.
    #[arg(long, default_value = "en-us")]
    espeak_voice: String,
    /// Whisper workers in the pool.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// CPU threads per worker (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Partial every this many ms while the caller speaks (0: none).
    #[arg(long, default_value_t = 500)]
    partial_interval_ms: u32,
    /// Silence after the last speech before the early final starts, ms (`asr.tail_ms`).
    #[arg(long, default_value_t = 200)]
    tail_ms: u32,
    /// Shortest encoder window of a final decode, ms (`asr.min_window_ms`).
    #[arg(long, default_value_t = voxline_asr::stream::MIN_WINDOW_MS)]
    min_window_ms: u32,
    /// Domain words that steer recognition (Whisper's initial prompt, as a
    /// pack's `vocabulary` gives it).
    #[arg(long)]
    prompt: Option<String>,
    /// Print each clip's reference and hypotheses.
    #[arg(long)]
    verbose: bool,
}

/// One clip of the test set, already through the telephone line.
struct Clip {
    name: String,
    /// Where it comes from (a row of the per-source table).
    source: &'static str,
    reference: String,
    /// 16 kHz, -1..1, after the μ-law round trip.
    audio: Vec<f32>,
}

/// Recognition results over the set.
#[derive(Default)]
struct Score {
    errors: usize,
    words: usize,
    decode: Duration,
    audio_secs: f64,
}

impl Score {
    fn add(&mut self, reference: &str, hypothesis: &str) {
        let (e, n) = word_errors(reference, hypothesis);
        self.errors += e;
        self.words += n;
    }

    fn wer(&self) -> f64 {
        100.0 * self.errors as f64 / self.words.max(1) as f64
    }

    fn rtf(&self) -> f64 {
        self.decode.as_secs_f64() / self.audio_secs.max(1e-9)
    }
}

/// A telephone line (see [`super::ulaw_line`]), as Whisper's floats.
fn through_ulaw_line(samples: &[i16], rate: u32) -> anyhow::Result<Vec<f32>> {
    Ok(super::ulaw_line(samples, rate)?
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect())
}

fn wav_clip(path: &Path, name: &str, source: &'static str, reference: String) -> anyhow::Result<Clip> {
    let p = read_wav_mono(path).with_context(|| format!("{} (voxline models fetch --group test)", path.display()))?;
    Ok(Clip {
        name: name.into(),
        source,
        reference,
        audio: through_ulaw_line(&p.samples, p.rate)?,
    })
}

/// Assembles the test set.
async fn test_set(args: &BenchAsrArgs) -> anyhow::Result<Vec<Clip>> {
    let audio = voxline_models::models_dir().join("test-audio");
    let mut set = vec![wav_clip(
        &audio.join("jfk.wav"),
        "jfk",
        "JFK (whisper.cpp sample)",
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
            .into(),
    )?];
    for name in ["counting", "hello_world", "quick_brown_fox"] {
        let dir = audio.join("audioeval-en");
        let reference = std::fs::read_to_string(dir.join(format!("{name}.txt")))
            .with_context(|| format!("{}/{name}.txt (voxline models fetch --group test)", dir.display()))?;
        set.push(wav_clip(
            &dir.join(format!("{name}.wav")),
            name,
            "pytest-audioeval en",
            reference.trim().into(),
        )?);
    }
    let sentences =
        std::fs::read_to_string(&args.sentences).with_context(|| format!("reading {}", args.sentences.display()))?;
    let scratch = std::env::temp_dir().join(format!("voxline-bench-asr-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    for (i, line) in crate::cli::text_list::items(&sentences).enumerate() {
        let wav = scratch.join(format!("espeak-{i}.wav"));
        let status = std::process::Command::new("espeak-ng")
            .args(["-v", &args.espeak_voice, "-w"])
            .arg(&wav)
            .arg(line)
            .status()
            .context("running espeak-ng (Debian package espeak-ng)")?;
        anyhow::ensure!(status.success(), "espeak-ng failed on {line:?}");
        set.push(wav_clip(
            &wav,
            &format!("espeak-{}", i + 1),
            "espeak-ng, --sentences lines",
            line.into(),
        )?);
    }
    std::fs::remove_dir_all(&scratch).ok();
    // The same sentences in the Piper voice the agent speaks with.
    let models = voxline_models::models_dir();
    let voice = models.join(voxline_models::defaults::PIPER_VOICE);
    let runtime = models.join(voxline_models::defaults::ONNX_RUNTIME);
    let tts = voxline_tts::TtsEngine::start(&runtime, &voice, voxline_tts::TtsConfig::default())?;
    for (i, line) in crate::cli::text_list::items(&sentences).enumerate() {
        let audio = tts.synthesize(line).await?;
        set.push(Clip {
            name: format!("piper-{}", i + 1),
            source: "Piper joe, --sentences lines",
            reference: line.into(),
            audio: through_ulaw_line(&audio, tts.sample_rate())?,
        });
    }
    Ok(set)
}

fn ms(d: Duration) -> String {
    format!("{:.0}ms", d.as_secs_f64() * 1e3)
}

/// Per-utterance figures of the streaming run.
#[derive(Default)]
struct StreamFigures {
    /// (final latency after the end of speech was declared, speech length,
    /// text ready after the last speech).
    finals: Vec<(Duration, Duration, Duration)>,
    /// Decode time of the decodes that became finals.
    final_decode: Duration,
    partials: usize,
    recognizer: voxline_asr::stream::RecognizerStats,
}

/// Streams one clip in real time: 500 ms of silence, the clip, 1.5 s of
/// silence, in 20 ms frames. Returns the concatenated finals.
async fn stream_clip(
    pool: &AsrPool,
    vad: SileroVad,
    cfg: &StreamConfig,
    clip: &Clip,
    figures: &mut StreamFigures,
) -> anyhow::Result<String> {
    let mut rec = StreamingRecognizer::new(pool.clone(), vad, cfg.clone());
    let mut pcm: Vec<i16> = vec![0; 8_000];
    pcm.extend(clip.audio.iter().map(|&s| (s * 32767.0) as i16));
    pcm.extend(std::iter::repeat_n(0, 24_000));
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut finals = Vec::new();
    let mut lengths = std::collections::HashMap::new();
    let mut frames = pcm.chunks(320);
    let mut fed_all = false;
    loop {
        tokio::select! {
            _ = tick.tick(), if !fed_all => match frames.next() {
                Some(frame) => rec.push(frame)?,
                None => fed_all = true,
            },
            ev = rec.next_event() => match ev {
                Some(AsrEvent::Partial { .. }) => figures.partials += 1,
                Some(AsrEvent::SpeechEnd { utterance, duration_ms, .. }) => {
                    lengths.insert(utterance, Duration::from_millis(duration_ms));
                }
                Some(AsrEvent::Final { utterance, text, latency, cost, after_speech_ms, .. }) => {
                    figures.final_decode += cost.decode;
                    let length = lengths.get(&utterance).copied().unwrap_or_default();
                    figures.finals.push((latency, length, Duration::from_millis(after_speech_ms)));
                    finals.push(text);
                }
                Some(AsrEvent::Failed { error, .. }) => anyhow::bail!("{}: {error}", clip.name),
                Some(AsrEvent::SpeechStart { .. } | AsrEvent::Tentative { .. } | AsrEvent::TurnAudio { .. }) | None => {}
            },
        }
        if fed_all && rec.pending() == 0 && !rec.segmenter_mut().speaking() {
            let r = rec.stats();
            figures.recognizer.partials += r.partials;
            figures.recognizer.partial_decode += r.partial_decode;
            figures.recognizer.early += r.early;
            figures.recognizer.early_dropped += r.early_dropped;
            figures.recognizer.early_wasted += r.early_wasted;
            while let Some(ev) = rec.try_event() {
                if let AsrEvent::Final { text, .. } = ev {
                    finals.push(text);
                }
            }
            break;
        }
    }
    Ok(finals.join(" "))
}

/// Runs the benchmark.
pub async fn run(args: BenchAsrArgs) -> anyhow::Result<()> {
    let models = voxline_models::models_dir();
    let model_path = args
        .model
        .clone()
        .unwrap_or_else(|| models.join(voxline_models::defaults::WHISPER));
    let runtime = models.join(voxline_models::defaults::ONNX_RUNTIME);
    let vad_model = models.join(voxline_models::defaults::SILERO_VAD);
    let set = test_set(&args).await?;
    let audio_secs: f64 = set.iter().map(|c| c.audio.len() as f64 / 16_000.0).sum();
    let words: usize = set.iter().map(|c| c.reference.split_whitespace().count()).sum();
    println!(
        "test set: {} clips, {words} words, {audio_secs:.1} s of speech, each through G.711 mu-law 8 kHz",
        set.len()
    );
    let model = Arc::new(WhisperModel::load(&model_path)?);
    let pool_cfg = PoolConfig {
        workers: args.workers,
        threads_per_worker: args.threads.unwrap_or(PoolConfig::default().threads_per_worker),
        ..PoolConfig::default()
    };
    let pool = AsrPool::start(model, pool_cfg)?;
    println!(
        "model {}, {} worker(s) x {} thread(s), {} cores",
        model_path.display(),
        pool_cfg.workers,
        pool_cfg.threads_per_worker,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // Offline: each clip in one decode, 30 s encoder window and with the
    // window fitted to the clip.
    let decode = DecodeOptions {
        initial_prompt: args.prompt.clone(),
        ..DecodeOptions::default()
    };
    let full = Arc::new(decode.clone());
    let (mut offline, mut fitted) = (Score::default(), Score::default());
    let mut offline_text = Vec::new();
    // Per source: (offline, streaming).
    let mut by_source: Vec<(&'static str, Score, Score)> = Vec::new();
    let never = Arc::new(AtomicBool::new(false));
    // One warm-up decode so the first clip does not pay for page faults.
    pool.transcribe(set[0].audio.clone().into(), full.clone(), never.clone())
        .await?;
    for clip in &set {
        let audio: Arc<[f32]> = clip.audio.clone().into();
        let t = pool.transcribe(audio.clone(), full.clone(), never.clone()).await?;
        offline.add(&clip.reference, &t.text);
        offline.decode += t.decode;
        offline.audio_secs += t.audio_secs;
        let fit = Arc::new(DecodeOptions {
            audio_ctx: Some(audio_ctx_for(audio.len(), args.min_window_ms)),
            max_tokens: Some(max_tokens_for(audio.len())),
            temperature_fallback: false,
            ..decode.clone()
        });
        let f = pool.transcribe(audio, fit, never.clone()).await?;
        fitted.add(&clip.reference, &f.text);
        fitted.decode += f.decode;
        fitted.audio_secs += f.audio_secs;
        if !by_source.iter().any(|(s, _, _)| *s == clip.source) {
            by_source.push((clip.source, Score::default(), Score::default()));
        }
        if let Some(row) = by_source.iter_mut().find(|(s, _, _)| *s == clip.source) {
            row.1.add(&clip.reference, &t.text);
        }
        offline_text.push((t.text, f.text));
    }

    // Streaming, in real time.
    let defaults = StreamConfig::default();
    let cfg = StreamConfig {
        partial_interval_ms: args.partial_interval_ms,
        tail_ms: args.tail_ms,
        min_window_ms: args.min_window_ms,
        decode: DecodeOptions {
            initial_prompt: args.prompt.clone(),
            ..defaults.decode.clone()
        },
        ..defaults
    };
    let mut streaming = Score::default();
    let mut figures = StreamFigures::default();
    let before_us = pool.stats().decode_us_sum.load(Ordering::Relaxed);
    let started = Instant::now();
    for (clip, (full_text, fit_text)) in set.iter().zip(&offline_text) {
        let vad = SileroVad::load(&runtime, &vad_model)?;
        let text = stream_clip(&pool, vad, &cfg, clip, &mut figures).await?;
        streaming.add(&clip.reference, &text);
        if let Some(row) = by_source.iter_mut().find(|(s, _, _)| *s == clip.source) {
            row.2.add(&clip.reference, &text);
        }
        if args.verbose {
            println!(
                "{}\n  ref:      {}\n  offline:  {full_text}\n  fitted:   {fit_text}\n  stream:   {text}",
                clip.name, clip.reference
            );
        }
    }
    streaming.decode = Duration::from_micros(pool.stats().decode_us_sum.load(Ordering::Relaxed) - before_us);
    streaming.audio_secs = audio_secs;
    let wall = started.elapsed();

    println!();
    println!(
        "{:<28} {:>6} {:>7} {:>7}",
        "recogniser (same model)", "errors", "WER", "RTF"
    );
    for (name, s) in [
        ("offline, 30 s window", &offline),
        ("offline, fitted, no fallback", &fitted),
        ("streaming (partials+final)", &streaming),
    ] {
        println!("{name:<28} {:>6} {:>6.1}% {:>7.3}", s.errors, s.wer(), s.rtf());
    }
    println!();
    println!(
        "{:<30} {:>6} {:>13} {:>15}",
        "source", "words", "offline WER", "streaming WER"
    );
    for (source, off, st) in &by_source {
        println!("{source:<30} {:>6} {:>12.1}% {:>14.1}%", off.words, off.wer(), st.wer());
    }
    let finals_rtf = figures.final_decode.as_secs_f64() / audio_secs;
    println!(
        "streaming WER - offline WER: {:+.1} points; streaming RTF {:.3} = finals {:.3} + partials and cancelled early finals {:.3}",
        streaming.wer() - offline.wer(),
        streaming.rtf(),
        finals_rtf,
        streaming.rtf() - finals_rtf
    );
    let pick = |short_only: bool, f: fn(&(Duration, Duration, Duration)) -> Duration| {
        let mut v: Vec<Duration> = figures
            .finals
            .iter()
            .filter(|x| !short_only || x.1 <= Duration::from_secs(5))
            .map(f)
            .collect();
        v.sort();
        v
    };
    let hangover = cfg.segmenter.hangover_ms;
    println!();
    println!(
        "final hypothesis latency (VAD hang-over {hangover} ms; the final decode starts after {} ms of silence):",
        cfg.tail_ms
    );
    println!(
        "{:<44} {:>6} {:>8} {:>8} {:>8}",
        "utterances, measured from", "count", "p50", "p95", "max"
    );
    for (name, short_only, f) in [
        (
            "<= 5 s, end of speech declared",
            true,
            (|x: &(Duration, Duration, Duration)| x.0) as fn(&_) -> Duration,
        ),
        ("all, end of speech declared", false, |x| x.0),
        ("<= 5 s, last speech (text ready)", true, |x| x.2),
        ("all, last speech (text ready)", false, |x| x.2),
    ] {
        let l = pick(short_only, f);
        println!(
            "{name:<44} {:>6} {:>8} {:>8} {:>8}",
            l.len(),
            ms(super::percentile(&l, 0.5, Duration::ZERO)),
            ms(super::percentile(&l, 0.95, Duration::ZERO)),
            ms(l.last().copied().unwrap_or_default())
        );
    }
    let r = figures.recognizer;
    println!(
        "partial decodes: {} taking {:.1} s (mean {:.0} ms); early finals: {} started, {} dropped on renewed speech, {:.1} s of their decoding wasted",
        r.partials,
        r.partial_decode.as_secs_f64(),
        r.partial_decode.as_secs_f64() * 1e3 / r.partials.max(1) as f64,
        r.early,
        r.early_dropped,
        r.early_wasted.as_secs_f64()
    );
    println!(
        "partials: {} delivered, {} skipped (pool busy); queue wait max {:.0} ms; streamed {:.1} s in {:.1} s",
        figures.partials,
        pool.stats().skipped_full.load(Ordering::Relaxed),
        pool.stats().queue_wait_us_max.load(Ordering::Relaxed) as f64 / 1e3,
        audio_secs,
        wall.as_secs_f64()
    );
    Ok(())
}
