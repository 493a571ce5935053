//! `voxline bench turn`: voice-to-voice latency of an agent route measured
//! on the caller's side. Real SIP calls (`voxline call` processes, PCMU over
//! the network) play scripted questions spoken by the Piper voice and record
//! what they hear; for each question, the latency is the time from the end
//! of the caller's speech (known from the script) to the first agent audio
//! on the caller's recording. Run at 1, 2, 5 and 10 simultaneous calls.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Arguments of `voxline bench turn`.
#[derive(clap::Args, Debug)]
pub struct BenchTurnArgs {
    /// The agent route to call.
    #[arg(long, default_value = "sip:demo@127.0.0.1:5060")]
    target: String,
    /// Caller questions, one per line.
    #[arg(long, default_value = "load-tests/latency/questions.txt")]
    questions: PathBuf,
    /// Simultaneous calls to run, one run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,2,5,10")]
    concurrency: Vec<usize>,
    /// Questions per call.
    #[arg(long, default_value_t = 3)]
    turns: usize,
    /// Silence before the first question (the greeting plays), s.
    #[arg(long, default_value_t = 10.0)]
    lead_s: f32,
    /// Silence after each question (the agent answers), s.
    #[arg(long, default_value_t = 9.0)]
    gap_s: f32,
    /// Where the call audio goes.
    #[arg(long, default_value = "/tmp/voxline-bench-turn")]
    work_dir: PathBuf,
}

/// Frame RMS (20 ms) above which the agent is speaking on the recording.
const VOICE_RMS: f64 = 300.0;

/// One scripted call: its audio and the end of each question (s).
struct Script {
    play: PathBuf,
    record: PathBuf,
    /// (start, end) of each question, s from the answer.
    questions: Vec<(f32, f32)>,
    seconds: f32,
}

fn write_wav(path: &Path, samples: &[i16], rate: u32) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).with_context(|| path.display().to_string())?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()?;
    Ok(())
}

/// The heard (left) channel's RMS per 20 ms frame, and the frame rate.
fn heard_levels(path: &Path) -> anyhow::Result<Vec<f64>> {
    let mut r = hound::WavReader::open(path).with_context(|| path.display().to_string())?;
    let spec = r.spec();
    let ch = usize::from(spec.channels).max(1);
    let left: Vec<i16> = r.samples::<i16>().step_by(ch).collect::<Result<_, _>>()?;
    let frame = (spec.sample_rate / 50) as usize;
    Ok(left
        .chunks(frame)
        .map(|c| (c.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / c.len().max(1) as f64).sqrt())
        .collect())
}

/// Latency of each question: from its end to the first agent audio after
/// the agent was silent (a reply still playing when the caller spoke must
/// have stopped first). None when no reply came.
fn latencies(levels: &[f64], questions: &[(f32, f32)]) -> Vec<Option<f32>> {
    let at = |t: f32| ((t * 50.0) as usize).min(levels.len());
    questions
        .iter()
        .map(|&(start, end)| {
            // The agent must be quiet at some point between the question's start and its end + 2 s.
            let quiet = (at(start)..at(end + 2.0))
                .find(|&i| levels.get(i..i + 5).is_some_and(|w| w.iter().all(|&l| l < VOICE_RMS)))?;
            let from = at(end).max(quiet);
            let onset = (from..levels.len())
                .find(|&i| levels.get(i..i + 2).is_some_and(|w| w.iter().all(|&l| l >= VOICE_RMS)))?;
            let t = onset as f32 / 50.0 - end;
            (t < 8.0).then_some(t)
        })
        .collect()
}

fn percentile(sorted: &[f32], p: f64) -> f32 {
    if sorted.is_empty() {
        return f32::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the benchmark.
pub async fn run(args: BenchTurnArgs) -> anyhow::Result<()> {
    let questions = crate::text_list::read(&args.questions)?;
    anyhow::ensure!(!questions.is_empty(), "no questions in {}", args.questions.display());
    std::fs::create_dir_all(&args.work_dir)?;
    let models = voxline_models::models_dir();
    let tts = voxline_tts::TtsEngine::start(
        &models.join(voxline_models::defaults::ONNX_RUNTIME),
        &models.join(voxline_models::defaults::PIPER_VOICE),
        voxline_tts::TtsConfig::default(),
    )?;
    let mut spoken = Vec::new();
    for q in &questions {
        let s = tts.synthesize(q).await?;
        spoken.push(voxline_media::rtp_session::resample_clip(
            &s,
            tts.sample_rate(),
            16_000,
        )?);
    }
    drop(tts);
    let exe = std::env::current_exe()?;
    println!(
        "target {}, {} questions (Piper voice), {} per call, caller's end of speech -> first agent audio on the caller's recording",
        args.target,
        questions.len(),
        args.turns
    );
    println!();
    println!(
        "{:>6} {:>7} {:>9} {:>9} {:>9} {:>8}",
        "calls", "turns", "p50", "p95", "max", "missed"
    );
    let mut next_q = 0;
    for &calls in &args.concurrency {
        let mut scripts = Vec::new();
        for k in 0..calls {
            let mut audio = vec![0i16; (args.lead_s * 16_000.0) as usize];
            let mut marks = Vec::new();
            for _ in 0..args.turns {
                let q = &spoken[next_q % spoken.len()];
                next_q += 1;
                let start = audio.len() as f32 / 16_000.0;
                audio.extend_from_slice(q);
                marks.push((start, audio.len() as f32 / 16_000.0));
                audio.extend(std::iter::repeat_n(0, (args.gap_s * 16_000.0) as usize));
            }
            let play = args.work_dir.join(format!("c{calls}-{k}.wav"));
            write_wav(&play, &audio, 16_000)?;
            scripts.push(Script {
                record: args.work_dir.join(format!("c{calls}-{k}-heard.wav")),
                play,
                questions: marks,
                seconds: audio.len() as f32 / 16_000.0,
            });
        }
        let mut children = Vec::new();
        for (k, s) in scripts.iter().enumerate() {
            // Calls start 300 ms apart, as callers would.
            tokio::time::sleep(Duration::from_millis(if k == 0 { 0 } else { 300 })).await;
            let child = tokio::process::Command::new(&exe)
                .arg("call")
                .arg(&args.target)
                .arg("--play")
                .arg(&s.play)
                .arg("--record")
                .arg(&s.record)
                .arg("--max-seconds")
                .arg(format!("{}", s.seconds.ceil() as u64 + 1))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting voxline call")?;
            children.push(child);
        }
        for mut c in children {
            c.wait().await?;
        }
        let mut all = Vec::new();
        let mut missed = 0;
        for s in &scripts {
            let levels = heard_levels(&s.record)?;
            for l in latencies(&levels, &s.questions) {
                match l {
                    Some(t) => all.push(t),
                    None => missed += 1,
                }
            }
        }
        all.sort_by(f32::total_cmp);
        println!(
            "{calls:>6} {:>7} {:>7.0}ms {:>7.0}ms {:>7.0}ms {missed:>8}",
            all.len(),
            percentile(&all, 0.5) * 1e3,
            percentile(&all, 0.95) * 1e3,
            all.last().copied().unwrap_or(f32::NAN) * 1e3
        );
    }
    println!();
    println!("missed = no agent audio within 8 s of the question's end (or the agent never went quiet)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_from_the_end_of_speech_to_the_next_agent_audio() {
        // 50 frames/s: agent talks 0-1 s, quiet, talks again from 3.5 s.
        let mut levels = vec![1000.0; 50];
        levels.extend(vec![10.0; 125]);
        levels.extend(vec![1000.0; 50]);
        let l = latencies(&levels, &[(1.5, 2.5)]);
        assert_eq!(l.len(), 1);
        let t = l[0].expect("a reply");
        assert!((t - 1.0).abs() < 0.03, "{t}");
        // No reply at all.
        assert_eq!(latencies(&vec![10.0; 500], &[(1.0, 2.0)]), vec![None]);
    }
}
