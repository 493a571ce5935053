//! `voxline bench amd`: answering-machine detection on a labelled set of
//! answers (`load-tests/amd/answers-*.toml`). Each answer is spoken (the
//! Piper voice, or espeak-ng voices) at its speed, with its silences and
//! beep, sent through a G.711 mu-law line, and fed in real time, 20 ms at a
//! time, to the detector and to the recogniser of `[asr]` (its words), as
//! on a call. Prints each answer's verdict, a confusion table, and the
//! decision time: for people after the end of their greeting (the agent
//! speaks then), for machines after the answer.

use super::percentile;
use super::voices::{silence, Speaker};
use crate::config::Config;
use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use voxline_agent::voice::Recognizer;
use voxline_asr::AsrEvent;
use voxline_campaign::amd::{AmdSettings, Detector};

/// Arguments of `voxline bench amd`.
#[derive(clap::Args, Debug)]
pub struct BenchAmdArgs {
    /// Labelled answers (TOML; see load-tests/amd/answers-a.toml).
    #[arg(long, default_value = "load-tests/amd/answers-a.toml")]
    set: Vec<PathBuf>,
    /// Configuration whose `[asr]` hears the words.
    #[arg(long, default_value = "sip-config/voxline.toml")]
    config: PathBuf,
    /// One line per answer.
    #[arg(long)]
    verbose: bool,
    /// Only write each answer as the line carries it (DIR/ID.wav, 16 kHz)
    /// and DIR/answers.csv (id, kind, when the greeting and the beep end,
    /// ms) for a callee to play over SIP (load-tests/amd-sip.sh); detects
    /// nothing.
    #[arg(long, value_name = "DIR")]
    render: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerSet {
    answer: Vec<Answer>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    id: String,
    kind: String,
    voice: String,
    #[serde(default = "one")]
    speed: f32,
    #[serde(default)]
    lead_ms: u64,
    say: Vec<String>,
    #[serde(default)]
    gap_ms: u64,
    #[serde(default)]
    beep: Option<Beep>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct Beep {
    hz: f32,
    ms: u64,
}

fn one() -> f32 {
    1.0
}

/// Silence after the answer's last sound (a person waits, a machine records).
const TAIL_MS: u64 = 7000;

/// An answer as the line carries it (16 kHz) and when its greeting ends, ms.
struct Heard {
    audio: Vec<i16>,
    greeting_end_ms: u64,
    /// When the beep ends, ms (machines with a beep).
    beep_end_ms: Option<u64>,
}

/// Builds what the line carries for `a`.
fn speak(a: &Answer, speaker: &mut Speaker) -> anyhow::Result<Heard> {
    let mut audio = silence(a.lead_ms);
    for (i, text) in a.say.iter().enumerate() {
        if i > 0 {
            audio.extend(silence(a.gap_ms));
        }
        audio.extend(speaker.say(&a.voice, a.speed, text).with_context(|| a.id.clone())?);
    }
    let greeting_end_ms = audio.len() as u64 / 16;
    let mut beep_end_ms = None;
    if let Some(b) = a.beep {
        audio.extend(silence(200));
        let n = (b.ms * 16) as usize;
        let tone: Vec<i16> = (0..n)
            .map(|i| (9000.0 * (2.0 * std::f32::consts::PI * b.hz * i as f32 / 16_000.0).sin()) as i16)
            .collect();
        audio.extend(super::ulaw_line(&tone, 16_000)?);
        beep_end_ms = Some(audio.len() as u64 / 16);
    }
    audio.extend(silence(TAIL_MS));
    Ok(Heard {
        audio,
        greeting_end_ms,
        beep_end_ms,
    })
}

/// One answer's result.
struct Outcome {
    id: String,
    person: bool,
    said_machine: Option<bool>,
    why: &'static str,
    at_ms: u64,
    greeting_end_ms: u64,
}

/// Feeds `heard` in real time to a detector and `rec`.
async fn detect(heard: &Heard, rec: &mut dyn Recognizer) -> Option<(bool, &'static str, u64)> {
    let mut det = Detector::new(AmdSettings::default());
    let mut frames = heard.audio.chunks(320);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let frame = frames.next()?;
                rec.push(frame).ok();
                if let Some(d) = det.push(frame) {
                    return Some((d.verdict.is_machine(), d.verdict.why(), d.at_ms));
                }
            }
            Some(ev) = rec.next_event() => {
                if let AsrEvent::Partial { text, .. } | AsrEvent::Final { text, .. } = ev {
                    if let Some(d) = det.heard(&text) {
                        return Some((d.verdict.is_machine(), d.verdict.why(), d.at_ms));
                    }
                }
            }
        }
    }
}

/// Runs the bench.
pub async fn run(args: BenchAmdArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config)?;
    // Rendering needs no recogniser.
    let asr = match args.render {
        Some(_) => None,
        None => Some(crate::asr_engine::AsrEngine::start(&cfg.asr)?),
    };
    let mut speaker = Speaker::load()?;
    if let Some(dir) = &args.render {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    let mut rendered = String::from("id,kind,greeting_end_ms,beep_end_ms\n");
    let mut results = Vec::new();
    for file in &args.set {
        let text = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
        let set: AnswerSet = toml::from_str(&text).with_context(|| file.display().to_string())?;
        println!("{}: {} answers", file.display(), set.answer.len());
        for a in &set.answer {
            anyhow::ensure!(
                a.kind == "person" || a.kind == "machine",
                "{}: kind {:?} is not person or machine",
                a.id,
                a.kind
            );
            let heard = speak(a, &mut speaker)?;
            if let Some(dir) = &args.render {
                write_answer(&dir.join(format!("{}.wav", a.id)), &heard.audio)?;
                rendered.push_str(&format!(
                    "{},{},{},{}\n",
                    a.id,
                    a.kind,
                    heard.greeting_end_ms,
                    heard.beep_end_ms.map(|b| b.to_string()).unwrap_or_default()
                ));
                continue;
            }
            let Some(asr) = &asr else { continue };
            let mut rec = asr.recognizer(None)?;
            let got = detect(&heard, &mut rec).await;
            rec.close();
            let o = Outcome {
                id: a.id.clone(),
                person: a.kind == "person",
                said_machine: got.map(|g| g.0),
                why: got.map_or("no decision", |g| g.1),
                at_ms: got.map_or(0, |g| g.2),
                greeting_end_ms: heard.greeting_end_ms,
            };
            if args.verbose {
                let verdict = match o.said_machine {
                    Some(true) => "machine",
                    Some(false) => "person",
                    None => "-",
                };
                let right = if o.said_machine == Some(!o.person) {
                    "ok   "
                } else {
                    "WRONG"
                };
                println!(
                    "  {right} {:<6} {:<8} -> {verdict:<8} ({}) at {} ms, greeting ends {} ms",
                    o.id, a.kind, o.why, o.at_ms, o.greeting_end_ms
                );
            }
            results.push(o);
        }
    }
    if let Some(dir) = &args.render {
        let list = dir.join("answers.csv");
        std::fs::write(&list, &rendered).with_context(|| list.display().to_string())?;
        println!("wrote {} answers to {}", rendered.lines().count() - 1, dir.display());
        return Ok(());
    }
    report(&results);
    Ok(())
}

/// Writes one answer as a 16 kHz mono WAV.
fn write_answer(path: &Path, audio: &[i16]) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).with_context(|| path.display().to_string())?;
    for &s in audio {
        w.write_sample(s)?;
    }
    w.finalize().with_context(|| path.display().to_string())?;
    Ok(())
}

fn report(results: &[Outcome]) {
    let count = |person: bool, said: Option<bool>| {
        results
            .iter()
            .filter(|o| o.person == person && o.said_machine == said)
            .count()
    };
    let people = results.iter().filter(|o| o.person).count();
    let machines = results.len() - people;
    println!();
    println!("| answered by | n | said person | said machine | no decision | right |");
    println!("|---|---|---|---|---|---|");
    for (name, person, n) in [("person", true, people), ("machine", false, machines)] {
        let right = count(person, Some(!person));
        println!(
            "| {name} | {n} | {} | {} | {} | {:.0}% |",
            count(person, Some(false)),
            count(person, Some(true)),
            count(person, None),
            100.0 * right as f64 / n.max(1) as f64
        );
    }
    let mut after_greeting: Vec<i64> = results
        .iter()
        .filter(|o| o.person && o.said_machine == Some(false))
        .map(|o| o.at_ms as i64 - o.greeting_end_ms as i64)
        .collect();
    after_greeting.sort_unstable();
    let mut machine_at: Vec<i64> = results
        .iter()
        .filter(|o| !o.person && o.said_machine == Some(true))
        .map(|o| o.at_ms as i64)
        .collect();
    machine_at.sort_unstable();
    println!();
    println!(
        "people told as people: decided {} ms (p50) / {} ms (p95) after the end of their greeting (n={})",
        percentile(&after_greeting, 0.5, 0),
        percentile(&after_greeting, 0.95, 0),
        after_greeting.len()
    );
    println!(
        "machines told as machines: decided {} ms (p50) / {} ms (p95) after the answer (n={})",
        percentile(&machine_at, 0.5, 0),
        percentile(&machine_at, 0.95, 0),
        machine_at.len()
    );
    let why = |person: bool| {
        let mut w: Vec<&str> = results.iter().filter(|o| o.person == person).map(|o| o.why).collect();
        w.sort_unstable();
        w.dedup();
        w.join(", ")
    };
    println!("reasons given: people: {}; machines: {}", why(true), why(false));
}
