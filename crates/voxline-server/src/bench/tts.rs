//! `voxline bench tts`: speech synthesis speed, side by side with piper-tts
//! (PyPI, the library behind the `piper` command) on the same voice and
//! texts in one run. For each agent reply: time to the first audio (the
//! first phrase, as a call hears it) and the real-time factor of the whole
//! reply (synthesis time / audio length).

use anyhow::Context;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use voxline_tts::{TtsConfig, TtsEngine};

/// Arguments of `voxline bench tts`.
#[derive(clap::Args, Debug)]
pub struct BenchTtsArgs {
    /// Agent replies, one per line.
    #[arg(long, default_value = "load-tests/tts/phrases.txt")]
    texts: PathBuf,
    /// A Piper voice (default: en_US joe medium).
    #[arg(long)]
    voice: Option<PathBuf>,
    /// Python with piper-tts installed (`make bench-venv` makes it); "none" skips piper.
    #[arg(long, default_value = "~/.cache/voxline/bench-venv/bin/python")]
    piper_python: String,
    /// ONNX Runtime threads for voxline's voice.
    #[arg(long)]
    threads: Option<usize>,
    /// Rounds over the texts (figures over all rounds).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// One reply's timing.
struct Timing {
    first: Duration,
    total: Duration,
    audio: f64,
}

fn summary(name: &str, t: &[Timing]) -> (f64, f64) {
    let mut first: Vec<Duration> = t.iter().map(|x| x.first).collect();
    first.sort();
    let p = |q: f64| first[((first.len() - 1) as f64 * q).round() as usize];
    let synth: f64 = t.iter().map(|x| x.total.as_secs_f64()).sum();
    let audio: f64 = t.iter().map(|x| x.audio).sum();
    let rtf = synth / audio.max(1e-9);
    println!(
        "{name:<34} {:>8.0}ms {:>8.0}ms {:>8.3} {:>9.1}s",
        p(0.5).as_secs_f64() * 1e3,
        p(0.95).as_secs_f64() * 1e3,
        rtf,
        audio
    );
    (p(0.5).as_secs_f64(), rtf)
}

/// Runs the benchmark.
pub async fn run(args: BenchTtsArgs) -> anyhow::Result<()> {
    let models = voxline_models::models_dir();
    let voice = args
        .voice
        .clone()
        .unwrap_or_else(|| models.join(voxline_models::defaults::PIPER_VOICE));
    let runtime = models.join(voxline_models::defaults::ONNX_RUNTIME);
    let text = std::fs::read_to_string(&args.texts).with_context(|| format!("reading {}", args.texts.display()))?;
    let texts: Vec<&str> = crate::cli::text_list::items(&text).collect();
    anyhow::ensure!(!texts.is_empty(), "{}: no texts", args.texts.display());
    let cfg = TtsConfig {
        threads_per_worker: args.threads.unwrap_or(TtsConfig::default().threads_per_worker),
        ..TtsConfig::default()
    };
    println!(
        "{} replies x {} rounds, voice {}, {} cores",
        texts.len(),
        args.rounds,
        voice.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let engine = TtsEngine::start(&runtime, &voice, cfg)?;
    let mut ours = Vec::new();
    for _ in 0..args.rounds {
        for t in &texts {
            let started = Instant::now();
            let mut stream = engine.stream();
            stream.push_text(t)?;
            stream.finish()?;
            let mut first = None;
            let mut samples = 0usize;
            while let Some(chunk) = stream.next_chunk().await {
                let chunk = chunk?;
                first.get_or_insert_with(|| started.elapsed());
                samples += chunk.samples.len();
            }
            ours.push(Timing {
                first: first.unwrap_or_default(),
                total: started.elapsed(),
                audio: samples as f64 / f64::from(engine.sample_rate()),
            });
        }
    }
    drop(engine);

    let mut theirs = Vec::new();
    if args.piper_python != "none" {
        let python = crate::config::resolve_path(std::path::Path::new("."), std::path::Path::new(&args.piper_python));
        let script = std::path::Path::new("load-tests/tts/piper_timing.py");
        let mut child = Command::new(&python)
            .arg(script)
            .arg(&voice)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {} (make bench-venv installs piper-tts)", python.display()))?;
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().context("piper stdin")?;
            for _ in 0..args.rounds {
                for t in &texts {
                    writeln!(stdin, "{t}")?;
                }
            }
        }
        let out = child.wait_with_output()?;
        anyhow::ensure!(out.status.success(), "piper timing script failed");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("piper output {line:?}"))?;
            let secs = |k: &str| v[k].as_f64().unwrap_or(0.0);
            theirs.push(Timing {
                first: Duration::from_secs_f64(secs("first")),
                total: Duration::from_secs_f64(secs("total")),
                audio: secs("audio"),
            });
        }
    }

    println!();
    println!(
        "{:<34} {:>10} {:>10} {:>8} {:>10}",
        "engine (same voice, same texts)", "first p50", "first p95", "RTF", "audio"
    );
    let (our_first, our_rtf) = summary("voxline (ort + espeak-ng FFI)", &ours);
    if !theirs.is_empty() {
        let (their_first, their_rtf) = summary("piper-tts 1.8.0 (Python)", &theirs);
        println!(
            "voxline / piper: first audio {:.2}x, RTF {:.2}x (below 1 = voxline faster)",
            our_first / their_first.max(1e-9),
            our_rtf / their_rtf.max(1e-9)
        );
    }
    println!("first audio: the first phrase of the reply (voxline: first clause of 3+ words; piper: first sentence)");
    Ok(())
}
