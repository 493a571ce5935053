//! `voxline bench qa`: quality inspection on a labelled set of two-sided
//! calls (load-tests/qa/calls-a.toml). Each call's lines are spoken by the
//! set's voices through a telephone line and laid on the call's timeline
//! with its gaps and overlaps; the call as spoken (the script's words at
//! the times they were heard) is scored against the pack's scorecard and
//! compared with the labels: per item and per kind, how many faults were
//! found (recall) and how many of the faults reported were real
//! (precision), and the call verdicts' agreement. With `--from-audio` each
//! call is written as a recording in its `format` (stereo or a mono pair,
//! PCM, μ-law or A-law) and scored from that recording the way `voxline qa
//! import` does it: each side transcribed by Whisper, then scored.

use super::voices::Speaker as Voices;
use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use voxline_analysis::{
    read_call, transcribe_call, CallSource, CallTranscript, Inspector, Line, Scorecard, Speaker, Verdict,
};
use voxline_asr::WhisperModel;

/// `voxline bench qa` arguments.
#[derive(clap::Args, Debug)]
pub struct BenchQaArgs {
    /// Labelled calls (TOML; see load-tests/qa/calls-a.toml).
    #[arg(long, default_value = "load-tests/qa/calls-a.toml")]
    set: PathBuf,
    /// The scorecard the labels are written against.
    #[arg(long, default_value = "domains/demo-bank/qa.toml")]
    scorecard: PathBuf,
    /// One line per call and item that disagrees with its label.
    #[arg(long)]
    verbose: bool,
    /// Score each call from its recording (rendered in the call's
    /// `format`, transcribed side by side) instead of the script's words.
    #[arg(long)]
    from_audio: bool,
    /// Keep the rendered recordings in this folder (with --from-audio).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Transcribe without the pack's words as Whisper's prompt (with
    /// --from-audio; to compare).
    #[arg(long)]
    no_prompt: bool,
    /// A ggml Whisper model for --from-audio (default: the converted
    /// tiny.en in the models folder; e.g. the optional whisper-base).
    #[arg(long)]
    whisper: Option<PathBuf>,
    /// The language model that judges the outcome items: `default`, a
    /// GGUF file, or `none` (they stay unsure; the scorer's figures alone).
    #[arg(long, default_value = "none")]
    llm: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallSet {
    call: Vec<LabelledCall>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelledCall {
    id: String,
    about: String,
    agent_voice: String,
    customer_voice: String,
    #[serde(default = "one")]
    agent_speed: f32,
    #[serde(default = "one")]
    customer_speed: f32,
    #[serde(default)]
    format: Option<String>,
    line: Vec<ScriptLine>,
    expect: BTreeMap<String, String>,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptLine {
    who: Speaker,
    say: String,
    #[serde(default = "default_gap")]
    gap_ms: i64,
}

fn default_gap() -> i64 {
    600
}

/// A labelled call as spoken: its transcript at the times it was heard,
/// and each side's audio (16 kHz, after the telephone line).
struct Spoken {
    transcript: CallTranscript,
    /// Seconds of call audio.
    seconds: f64,
    agent: Vec<i16>,
    customer: Vec<i16>,
}

/// Adds `audio` to `track` from `start` (a side talking over itself mixes).
fn lay(track: &mut Vec<i16>, start: usize, audio: &[i16]) {
    if track.len() < start + audio.len() {
        track.resize(start + audio.len(), 0);
    }
    for (t, &a) in track[start..].iter_mut().zip(audio) {
        *t = t.saturating_add(a);
    }
}

/// Speaks each line and lays it on the call's timeline.
fn speak(call: &LabelledCall, voices: &mut Voices) -> anyhow::Result<Spoken> {
    let mut lines = Vec::with_capacity(call.line.len());
    let (mut agent, mut customer) = (Vec::new(), Vec::new());
    let mut end_ms: i64 = 0;
    for (i, l) in call.line.iter().enumerate() {
        let (voice, speed) = match l.who {
            Speaker::Agent => (&call.agent_voice, call.agent_speed),
            Speaker::Customer => (&call.customer_voice, call.customer_speed),
        };
        let audio = voices
            .say(voice, speed, &l.say)
            .with_context(|| format!("{} line {i}", call.id))?;
        let start = (end_ms + l.gap_ms).max(0);
        let len = audio.len() as i64 / 16;
        let track = match l.who {
            Speaker::Agent => &mut agent,
            Speaker::Customer => &mut customer,
        };
        lay(track, start as usize * 16, &audio);
        lines.push(Line {
            speaker: l.who,
            start_ms: start as u64,
            end_ms: (start + len) as u64,
            text: l.say.clone(),
            words: Vec::new(),
        });
        end_ms = start + len;
    }
    let transcript = CallTranscript::new(lines, None);
    let seconds = transcript.duration_ms as f64 / 1000.0;
    // Both sides as long as the call, and a second of silence after it.
    let frames = agent.len().max(customer.len()) + 16_000;
    agent.resize(frames, 0);
    customer.resize(frames, 0);
    Ok(Spoken {
        transcript,
        seconds,
        agent,
        customer,
    })
}

/// Writes a spoken call as a recorder would, in its `format`; the call as
/// `voxline qa import` takes it.
fn record(call: &LabelledCall, spoken: &Spoken, dir: &std::path::Path) -> anyhow::Result<CallSource> {
    use voxline_media::{write_recording, Recording, WavEncoding};
    let format = call.format.as_deref().unwrap_or("stereo-pcm16-8k");
    let (layout, encoding, rate) = match format {
        "stereo-pcm16-8k" => ("stereo", WavEncoding::Pcm, 8000),
        "stereo-ulaw-8k" => ("stereo", WavEncoding::MuLaw, 8000),
        "stereo-alaw-8k" => ("stereo", WavEncoding::ALaw, 8000),
        "stereo-pcm16-16k" => ("stereo", WavEncoding::Pcm, 16_000),
        "mono-pair-8k" => ("pair", WavEncoding::Pcm, 8000),
        other => anyhow::bail!("{}: format {other:?} is not one of stereo-pcm16-8k, stereo-ulaw-8k, stereo-alaw-8k, stereo-pcm16-16k, mono-pair-8k", call.id),
    };
    let at_rate = |side: &[i16]| -> anyhow::Result<Vec<i16>> {
        Ok(voxline_media::rtp_session::resample_clip(side, 16_000, rate)?.to_vec())
    };
    let (agent, customer) = (at_rate(&spoken.agent)?, at_rate(&spoken.customer)?);
    let write = |name: String, channels: Vec<Vec<i16>>| -> anyhow::Result<PathBuf> {
        let path = dir.join(name);
        let rec = Recording {
            rate,
            channels,
            encoding,
        };
        write_recording(&path, &rec, encoding)?;
        Ok(path)
    };
    Ok(if layout == "stereo" {
        CallSource::Stereo {
            file: write(format!("{}.wav", call.id), vec![agent, customer])?,
            agent_channel: 0,
        }
    } else {
        CallSource::MonoPair {
            agent: write(format!("{}-agent.wav", call.id), vec![agent])?,
            customer: write(format!("{}-customer.wav", call.id), vec![customer])?,
        }
    })
}

/// Counts of one item (or kind): faults labelled and found.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// Labelled fail, scored fail.
    found: u32,
    /// Labelled pass or n/a, scored fail.
    false_alarms: u32,
    /// Labelled fail, scored pass, n/a or unsure.
    missed: u32,
    /// Scored unsure.
    unsure: u32,
    /// Verdict equal to the label (pass / fail / na).
    agree: u32,
    calls: u32,
}

impl Tally {
    fn add(&mut self, label: &str, got: Verdict) {
        self.calls += 1;
        let fault = label == "fail";
        match (fault, got) {
            (true, Verdict::Fail) => self.found += 1,
            (false, Verdict::Fail) => self.false_alarms += 1,
            (true, _) => self.missed += 1,
            _ => {}
        }
        if got == Verdict::Unsure {
            self.unsure += 1;
        }
        if got.as_str() == label {
            self.agree += 1;
        }
    }

    fn row(&self, name: &str, critical: bool) -> String {
        let pct = |n: u32, d: u32| {
            if d == 0 {
                "–".to_string()
            } else {
                format!("{:.0}% ({n}/{d})", 100.0 * f64::from(n) / f64::from(d))
            }
        };
        format!(
            "| {name}{} | {} | {} | {} | {} | {} |",
            if critical { " (critical)" } else { "" },
            self.found + self.missed,
            pct(self.found, self.found + self.missed),
            pct(self.found, self.found + self.false_alarms),
            self.unsure,
            pct(self.agree, self.calls),
        )
    }
}

/// Runs the bench.
pub async fn run(args: BenchQaArgs) -> anyhow::Result<()> {
    let card = Scorecard::load(&args.scorecard)?;
    let text = std::fs::read_to_string(&args.set).with_context(|| args.set.display().to_string())?;
    let de = toml::Deserializer::parse(&text).with_context(|| args.set.display().to_string())?;
    let set: CallSet = serde_path_to_error::deserialize(de).with_context(|| args.set.display().to_string())?;
    for c in &set.call {
        for (id, label) in &c.expect {
            anyhow::ensure!(
                id == "verdict" || card.item(id).is_some(),
                "{}: {}: expect.{id} is not an item of {}",
                args.set.display(),
                c.id,
                args.scorecard.display()
            );
            anyhow::ensure!(
                matches!(label.as_str(), "pass" | "fail" | "na"),
                "{}: {}: expect.{id} = {label:?} (pass, fail or na)",
                args.set.display(),
                c.id
            );
        }
        for item in &card.items {
            anyhow::ensure!(
                c.expect.contains_key(&item.id),
                "{}: {}: no label for item {}",
                args.set.display(),
                c.id,
                item.id
            );
        }
    }
    let dir = voxline_models::models_dir().join(voxline_models::defaults::EMBEDDING);
    let embedder = Arc::new(
        tokio::task::spawn_blocking(move || voxline_llm::Embedder::load(&dir))
            .await
            .context("loading the embedding model")??,
    );
    let inspector = Inspector::new(card, embedder)?;
    let card = inspector.scorecard();
    let llm = crate::cli::qa::post_call_llm(&args.llm).await?;
    let mut judging = std::time::Duration::ZERO;
    let mut voices = Voices::load()?;
    let models = voxline_models::models_dir();
    let whisper = if args.from_audio {
        let path = args
            .whisper
            .clone()
            .unwrap_or_else(|| models.join(voxline_models::defaults::WHISPER));
        println!("recogniser: {}", path.display());
        Some(WhisperModel::load(&path)?)
    } else {
        None
    };
    let prompt = (!args.no_prompt)
        .then(|| crate::cli::qa::pack_prompt(&args.scorecard, card))
        .flatten();
    if args.from_audio {
        println!("recogniser prompt: {prompt:?}");
    }
    let mut transcriber = whisper
        .as_ref()
        .map(|w| crate::cli::qa::recording_transcriber(w, prompt))
        .transpose()?;
    let scratch = std::env::temp_dir().join(format!("voxline-bench-qa-{}", std::process::id()));
    let rec_dir = args.keep.clone().unwrap_or_else(|| scratch.clone());
    if args.from_audio {
        std::fs::create_dir_all(&rec_dir).with_context(|| rec_dir.display().to_string())?;
    }
    println!(
        "{}: {} calls, scored from {}",
        args.set.display(),
        set.call.len(),
        if args.from_audio {
            "their recordings (Whisper, side by side)"
        } else {
            "the script's words at the times they were spoken"
        }
    );
    let mut transcribing = std::time::Duration::ZERO;
    let mut per_item: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut per_kind: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut critical = Tally::default();
    let (mut verdict_agree, mut audio_s, mut scoring) = (0u32, 0.0, std::time::Duration::ZERO);
    for c in &set.call {
        let spoken = speak(c, &mut voices)?;
        audio_s += spoken.seconds;
        let transcript = match transcriber.as_mut() {
            Some(t) => {
                let source = record(c, &spoken, &rec_dir)?;
                let started = Instant::now();
                let audio = read_call(&source)?;
                let heard = transcribe_call(&source, &audio, t, &mut |_| {})?;
                transcribing += started.elapsed();
                if args.verbose {
                    for l in &heard.lines {
                        println!("    {:>6.1} s {:?}: {}", l.start_ms as f64 / 1000.0, l.speaker, l.text);
                    }
                }
                heard
            }
            None => spoken.transcript,
        };
        let started = Instant::now();
        let mut score = inspector.score(&transcript)?;
        scoring += started.elapsed();
        if let Some(llm) = &llm {
            let started = Instant::now();
            voxline_analysis::judge_outcomes(&mut score, card, &transcript, llm.as_ref()).await;
            judging += started.elapsed();
        }
        let verdict = if score.passed { "pass" } else { "fail" };
        let want = c.expect.get("verdict").map(String::as_str).unwrap_or("?");
        verdict_agree += u32::from(verdict == want);
        if args.verbose {
            println!(
                "  {} ({}): score {}, {verdict} (label {want})",
                c.id,
                c.about,
                score.score.map(|s| format!("{s:.0}")).unwrap_or_else(|| "–".into())
            );
        }
        for (item, got) in card.items.iter().zip(&score.items) {
            let label = c.expect[&item.id].as_str();
            per_item.entry(&item.id).or_default().add(label, got.verdict);
            per_kind.entry(item.check.kind()).or_default().add(label, got.verdict);
            if item.critical {
                critical.add(label, got.verdict);
            }
            if args.verbose && got.verdict.as_str() != label {
                let quote = got
                    .evidence
                    .first()
                    .map(|e| format!(" — {:.1} s {:?}", e.at_ms as f64 / 1000.0, e.quote))
                    .unwrap_or_default();
                println!(
                    "    {}: {} (label {label}): {}{quote}",
                    item.id,
                    got.verdict.as_str(),
                    got.why
                );
            }
        }
    }
    println!();
    println!("| item | faults labelled | found (recall) | reports right (precision) | unsure | verdict = label |");
    println!("|---|---:|---:|---:|---:|---:|");
    for item in &card.items {
        println!("{}", per_item[item.id.as_str()].row(&item.id, item.critical));
    }
    println!("{}", critical.row("**all critical items**", false));
    println!();
    println!("| kind | faults labelled | found (recall) | reports right (precision) | unsure | verdict = label |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (kind, t) in &per_kind {
        println!("{}", t.row(kind, false));
    }
    println!();
    println!(
        "call verdicts equal to the label: {verdict_agree} of {}; {:.0} s of calls scored in {:.2} s ({:.0}x real time, scoring only)",
        set.call.len(),
        audio_s,
        scoring.as_secs_f64(),
        audio_s / scoring.as_secs_f64().max(1e-9)
    );
    if let Some(llm) = &llm {
        println!(
            "outcome items put to {}: {:.1} s ({:.2} s per call)",
            llm.name(),
            judging.as_secs_f64(),
            judging.as_secs_f64() / set.call.len().max(1) as f64
        );
    }
    if args.from_audio {
        let all = transcribing + scoring;
        println!(
            "from the recordings: read and transcribed in {:.1} s; with scoring {:.1} s, {:.1}x real time",
            transcribing.as_secs_f64(),
            all.as_secs_f64(),
            audio_s / all.as_secs_f64().max(1e-9)
        );
    }
    if args.keep.is_none() {
        std::fs::remove_dir_all(&scratch).ok();
    }
    Ok(())
}
