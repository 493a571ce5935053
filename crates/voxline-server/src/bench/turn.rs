//! `voxline bench turn`: voice-to-voice latency of an agent route measured
//! on the caller's side. Real SIP calls (`voxline call` processes, PCMU over
//! the network) play scripted questions spoken by the Piper voice and record
//! what they hear; for each question, the latency is the time from the end
//! of the caller's speech (known from the script: the voice's last sound,
//! not the silence it pads its audio with) to the first agent audio on the
//! caller's recording. Run at 1, 2, 5 and 10 simultaneous calls, started
//! 300 ms apart (every turn, all callers ask within a few seconds: the
//! worst case) or with `--stagger` spread over one question's cycle (the
//! questions come one after another, as independent callers' do).
//!
//! Each call then asks two more questions and talks over the answers: a
//! real interruption (another question) and a backchannel ("okay",
//! "uh-huh", "yeah"). On the recording: how soon the agent's audio stops
//! after the interruption's onset (barge-in stop time); from the server's
//! turn records (`GET /api/calls/{id}/turns`): how many backchannels took
//! the turn, i.e. cut the agent's reply for nothing (false interruptions).

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use voxline_agent::voice::interruption::is_backchannel;

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
    /// How long after the end of a question the caller talks over the
    /// answer (an interruption, a backchannel), s; 0: no talking over.
    #[arg(long, default_value_t = 2.5)]
    talk_over_s: f32,
    /// Answers talked over per call, each time an interruption and a backchannel.
    #[arg(long, default_value_t = 1)]
    talk_overs: usize,
    /// Start the calls spread over one question's cycle (question + gap)
    /// instead of 300 ms apart: their questions then come one after
    /// another, as independent callers' do, rather than all at once.
    #[arg(long)]
    stagger: bool,
    /// The server's HTTP API (turn records for the backchannels).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// A read token of the API (default: $VOXLINE_API_TOKEN, else the
    /// file `make run` makes, ~/.cache/voxline/api-token).
    #[arg(long)]
    api_token: Option<String>,
}

/// What the caller says over the agent's answer to interrupt it.
const INTERRUPTIONS: &[&str] = &[
    "Sorry, what about on Saturdays?",
    "Wait, is that the same for credit cards?",
    "Sorry, and where is the nearest branch?",
];

/// Backchannels said over the agent's answer (they must not take the turn).
const BACKCHANNELS: &[&str] = &["Okay.", "Uh-huh.", "Yeah."];

/// Frame RMS (20 ms) above which the agent is speaking on the recording.
const VOICE_RMS: f64 = 300.0;

/// One scripted call: its audio and the end of each question (s).
struct Script {
    play: PathBuf,
    record: PathBuf,
    /// (start, end) of each question, s from the answer.
    questions: Vec<(f32, f32)>,
    /// Starts of the interruptions said over answers, s.
    interruptions: Vec<f32>,
    /// Starts of the backchannels said over answers, s.
    backchannels: Vec<f32>,
    seconds: f32,
}

/// The audio being built for one call, at 16 kHz.
struct Track(Vec<i16>);

impl Track {
    fn now(&self) -> f32 {
        self.0.len() as f32 / 16_000.0
    }
    fn silence(&mut self, s: f32) {
        self.0.extend(std::iter::repeat_n(0, (s * 16_000.0) as usize));
    }
    /// Appends `speech`; returns when its voice starts and ends (s): the
    /// voice's silence before and after it is not speech.
    fn say(&mut self, speech: &[i16]) -> (f32, f32) {
        let start = self.now();
        let (from, to) = voiced_span(speech);
        self.0.extend_from_slice(speech);
        (start + from, start + to)
    }
}

/// RMS of a 10 ms frame (16 kHz) above which a clip is sounding: the tail
/// of a word fades far below speaking level, the voice's padding is zeros.
const SOUNDING_RMS: f64 = 30.0;

/// Where the sound of a 16 kHz clip starts and ends (s), without the
/// silence the voice puts around it.
fn voiced_span(clip: &[i16]) -> (f32, f32) {
    let frames: Vec<bool> = clip
        .chunks(160)
        .map(|c| (c.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / c.len() as f64).sqrt() >= SOUNDING_RMS)
        .collect();
    let first = frames.iter().position(|&v| v).unwrap_or(0);
    let last = frames.iter().rposition(|&v| v).map_or(frames.len(), |i| i + 1);
    (
        first as f32 / 100.0,
        (last as f32 / 100.0).min(clip.len() as f32 / 16_000.0),
    )
}

/// What the agent's audio did after the caller started talking over it at
/// `onset` (s): `None` when the agent was not speaking then; else the ms
/// until its audio stopped (a quiet run of 500 ms began), `None` inside when
/// it did not stop within 3 s.
fn stop_after(levels: &[f64], onset: f32) -> Option<Option<f32>> {
    let i = (onset * 50.0) as usize;
    let speaking = levels.get(i.saturating_sub(10)..i)?.iter().any(|&l| l >= VOICE_RMS);
    if !speaking {
        return None;
    }
    Some(
        (i..(i + 150).min(levels.len()))
            .find(|&j| levels.get(j..j + 25).is_some_and(|w| w.iter().all(|&l| l < VOICE_RMS)))
            .map(|j| (j - i) as f32 * 20.0),
    )
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

/// Within each answer (from its first audio at `end + latency`, for up
/// to [`ANSWER_WINDOW_S`], and never past `gap_s` after the question, when
/// the script's caller speaks again): the longest silence with the agent's
/// audio on both sides, ms. A caller hears it as the agent stalling
/// mid-answer (a phrase whose audio came late, or the hold line followed by
/// a wait). None for a question with no answer.
fn longest_gaps(levels: &[f64], questions: &[(f32, f32)], latencies: &[Option<f32>], gap_s: f32) -> Vec<Option<f32>> {
    let at = |t: f32| ((t * 50.0) as usize).min(levels.len());
    questions
        .iter()
        .zip(latencies)
        .map(|(&(_, end), latency)| {
            let onset = end + (*latency)?;
            let until = (onset + ANSWER_WINDOW_S).min(end + gap_s);
            let window = levels.get(at(onset)..at(until))?;
            let last_voiced = window.iter().rposition(|&l| l >= VOICE_RMS)?;
            let (mut longest, mut run) = (0usize, 0usize);
            for &l in &window[..=last_voiced] {
                if l < VOICE_RMS {
                    run += 1;
                    longest = longest.max(run);
                } else {
                    run = 0;
                }
            }
            Some(longest as f32 * 20.0)
        })
        .collect()
}

/// How long after its first audio an answer is looked at for stalls, s.
const ANSWER_WINDOW_S: f32 = 7.0;

/// A silence inside an answer at least this long is a stall, ms (the
/// voice's own pause between sentences is shorter).
const STALL_MS: f32 = 700.0;

/// Runs the benchmark.
pub async fn run(args: BenchTurnArgs) -> anyhow::Result<()> {
    let questions = crate::cli::text_list::read(&args.questions)?;
    anyhow::ensure!(!questions.is_empty(), "no questions in {}", args.questions.display());
    std::fs::create_dir_all(&args.work_dir)?;
    let models = voxline_models::models_dir();
    let tts = voxline_tts::TtsEngine::start(
        &models.join(voxline_models::defaults::ONNX_RUNTIME),
        &models.join(voxline_models::defaults::PIPER_VOICE),
        voxline_tts::TtsConfig::default(),
    )?;
    let say = async |lines: &[&str]| -> anyhow::Result<Vec<std::sync::Arc<[i16]>>> {
        let mut out = Vec::new();
        for q in lines {
            let s = tts.synthesize(q).await?;
            out.push(voxline_media::rtp_session::resample_clip(
                &s,
                tts.sample_rate(),
                16_000,
            )?);
        }
        Ok(out)
    };
    let spoken = say(&questions.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let interrupt = say(INTERRUPTIONS).await?;
    let backchannels = say(BACKCHANNELS).await?;
    drop(tts);
    let http = reqwest::Client::new();
    let mut talk_over = Vec::new();
    let mut stages = Vec::new();
    let mut gaps = Vec::new();
    let exe = std::env::current_exe()?;
    println!(
        "target {}, {} questions (Piper voice), {} per call, caller's end of speech -> first agent audio on the caller's recording",
        args.target,
        questions.len(),
        args.turns
    );
    if args.stagger {
        println!("calls staggered: spread over one question's cycle, so their questions come one after another");
    }
    println!();
    println!(
        "{:>6} {:>7} {:>9} {:>9} {:>9} {:>8}",
        "calls", "turns", "p50", "p95", "max", "missed"
    );
    let mut next_q = 0;
    for &calls in &args.concurrency {
        let mut scripts = Vec::new();
        for k in 0..calls {
            let mut track = Track(Vec::new());
            track.silence(args.lead_s);
            let mut marks = Vec::new();
            for _ in 0..args.turns {
                marks.push(track.say(&spoken[next_q % spoken.len()]));
                next_q += 1;
                track.silence(args.gap_s);
            }
            // Talking over answers: an interruption, then a backchannel.
            let (mut interruptions, mut backchannel_at) = (Vec::new(), Vec::new());
            for n in (0..args.talk_overs).filter(|_| args.talk_over_s > 0.0) {
                for (over, at) in [(&interrupt, &mut interruptions), (&backchannels, &mut backchannel_at)] {
                    track.say(&spoken[next_q % spoken.len()]);
                    next_q += 1;
                    track.silence(args.talk_over_s);
                    at.push(track.say(&over[(k + n) % over.len()]).0);
                    track.silence(args.gap_s);
                }
            }
            let play = args.work_dir.join(format!("c{calls}-{k}.wav"));
            write_wav(&play, &track.0, 16_000)?;
            scripts.push(Script {
                record: args.work_dir.join(format!("c{calls}-{k}-heard.wav")),
                play,
                questions: marks,
                interruptions,
                backchannels: backchannel_at,
                seconds: track.now(),
            });
        }
        // Calls start 300 ms apart (their questions come nearly at once),
        // or spread over one question's cycle.
        let spacing = if args.stagger {
            let question_s = spoken.iter().map(|q| q.len()).sum::<usize>() as f32 / 16_000.0 / spoken.len() as f32;
            Duration::from_secs_f32((question_s + args.gap_s) / calls as f32)
        } else {
            Duration::from_millis(300)
        };
        let run_started = voxline_store::now_ms();
        let mut children = Vec::new();
        for (k, s) in scripts.iter().enumerate() {
            tokio::time::sleep(if k == 0 { Duration::ZERO } else { spacing }).await;
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
        let mut run_gaps = Vec::new();
        for s in &scripts {
            let levels = heard_levels(&s.record)?;
            let heard = latencies(&levels, &s.questions);
            run_gaps.extend(
                longest_gaps(&levels, &s.questions, &heard, args.gap_s)
                    .into_iter()
                    .flatten(),
            );
            for l in heard {
                match l {
                    Some(t) => all.push(t),
                    None => missed += 1,
                }
            }
        }
        run_gaps.sort_by(f32::total_cmp);
        gaps.push((calls, run_gaps));
        all.sort_by(f32::total_cmp);
        println!(
            "{calls:>6} {:>7} {:>7.0}ms {:>7.0}ms {:>7.0}ms {missed:>8}",
            all.len(),
            super::percentile(&all, 0.5, f32::NAN) * 1e3,
            super::percentile(&all, 0.95, f32::NAN) * 1e3,
            all.last().copied().unwrap_or(f32::NAN) * 1e3
        );
        let api = (args.api.as_str(), args.api_token.as_deref());
        let turns = server_turns(&http, api, run_started).await?;
        stages.push((calls, Stages::of(&turns)));
        if args.talk_over_s > 0.0 {
            talk_over.push(talked_over(calls, &scripts, &turns)?);
        }
    }
    println!();
    println!(
        "the answers' own stages, from the server's turn records (questions answered by the model, not talked over;"
    );
    println!(
        "ms after the caller's last voiced audio as the server heard it, p50 / p95; first RTP = the answer's own first"
    );
    println!("packet, never the hold line; read = prompt tokens the model read after the final, the rest was cached):");
    println!();
    println!(
        "{:>6} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>9}",
        "calls", "turns", "declared", "final", "1st token", "1st phrase", "TTS audio", "first RTP", "read"
    );
    for (calls, s) in &stages {
        println!("{calls:>6} {s}");
    }
    println!();
    println!("missed = no agent audio within 8 s of the question's end (or the agent never went quiet)");
    println!();
    println!(
        "inside the answers (their first {ANSWER_WINDOW_S:.0} s, on the caller's recording): the longest silence between the agent's sounds"
    );
    println!();
    println!(
        "{:>6} {:>8} {:>11} {:>11} {:>16}",
        "calls", "answers", "gap p50", "gap p95", "stalls >= 700ms"
    );
    for (calls, g) in &gaps {
        println!(
            "{calls:>6} {:>8} {:>9.0}ms {:>9.0}ms {:>16}",
            g.len(),
            super::percentile(g, 0.5, f32::NAN),
            super::percentile(g, 0.95, f32::NAN),
            g.iter().filter(|&&ms| ms >= STALL_MS).count()
        );
    }
    if !talk_over.is_empty() {
        println!();
        println!(
            "talking over the answer {:.1} s after the question (barge-in stop: interruption onset -> agent audio stops, on the caller's recording)",
            args.talk_over_s
        );
        println!();
        println!(
            "{:>6} {:>12} {:>9} {:>9} {:>9} {:>13} {:>10} {:>10}",
            "calls", "interrupted", "stop p50", "stop p95", "no stop", "backchannels", "took turn", "false int"
        );
        for t in &talk_over {
            println!("{t}");
        }
        println!();
        println!("interrupted/backchannels = said while the agent's audio was playing (of those played);");
        println!(
            "took turn = the backchannel became a caller turn and replaced the agent's answer (server's turn records);"
        );
        println!("false int = took turn / backchannels over the agent");
    }
    Ok(())
}

/// One run's talking-over figures.
struct TalkOver {
    calls: usize,
    played: usize,
    stops: Vec<f32>,
    no_stop: usize,
    backchannels: usize,
    backchannels_played: usize,
    took_turn: usize,
}

impl std::fmt::Display for TalkOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = self.stops.clone();
        s.sort_by(f32::total_cmp);
        write!(
            f,
            "{:>6} {:>12} {:>7.0}ms {:>7.0}ms {:>9} {:>13} {:>10} {:>9.0}%",
            self.calls,
            format!("{}/{}", s.len() + self.no_stop, self.played),
            super::percentile(&s, 0.5, f32::NAN),
            super::percentile(&s, 0.95, f32::NAN),
            self.no_stop,
            format!("{}/{}", self.backchannels, self.backchannels_played),
            self.took_turn,
            100.0 * self.took_turn as f64 / self.backchannels.max(1) as f64
        )
    }
}

/// Measures the run's interruptions on the recordings; the server's
/// `turns` tell which backchannels took the turn.
fn talked_over(calls: usize, scripts: &[Script], turns: &[serde_json::Value]) -> anyhow::Result<TalkOver> {
    let mut t = TalkOver {
        calls,
        played: 0,
        stops: Vec::new(),
        no_stop: 0,
        backchannels: 0,
        backchannels_played: 0,
        took_turn: 0,
    };
    for s in scripts {
        let levels = heard_levels(&s.record)?;
        for &onset in &s.interruptions {
            t.played += 1;
            match stop_after(&levels, onset) {
                Some(Some(ms)) => t.stops.push(ms),
                Some(None) => t.no_stop += 1,
                None => {}
            }
        }
        for &onset in &s.backchannels {
            t.backchannels_played += 1;
            if stop_after(&levels, onset).is_some() {
                t.backchannels += 1;
            }
        }
    }
    // A backchannel that became a caller turn took it.
    t.took_turn = turns
        .iter()
        .filter(|turn| turn["caller_text"].as_str().is_some_and(is_backchannel))
        .count();
    Ok(t)
}

/// The turns the server recorded for the agent calls of this run (those
/// set up since `since_ms`), from its HTTP API.
async fn server_turns(
    http: &reqwest::Client,
    (api, args_token): (&str, Option<&str>),
    since_ms: i64,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let token = crate::cli::token::local_token(args_token)?;
    let token = token.as_str();
    let get = |url: String| async move {
        let r = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| url.clone())?;
        anyhow::ensure!(r.status().is_success(), "{url}: HTTP {}", r.status());
        Ok::<serde_json::Value, anyhow::Error>(r.json().await?)
    };
    let records = get(format!("{api}/api/calls?limit=500")).await?;
    let mut out = Vec::new();
    for r in records.as_array().into_iter().flatten() {
        let fresh = r["invite_at"].as_i64().is_some_and(|at| at >= since_ms);
        if !fresh || r["handler"] != "agent" {
            continue;
        }
        let Some(call_id) = r["call_id"].as_str() else {
            continue;
        };
        // Every record of that Call-ID (the callers' own `voxline call`
        // legs may share the store, with no turns).
        let records = get(format!("{api}/api/calls/{call_id}/turns")).await?;
        for r in records.as_array().into_iter().flatten() {
            out.extend(r["turns"].as_array().into_iter().flatten().cloned());
        }
    }
    Ok(out)
}

/// The answers' stage times of one run (see the table's legend).
struct Stages {
    turns: usize,
    /// Per stage, its sorted times (ms); the last is the tokens read.
    columns: Vec<Vec<f64>>,
}

/// The stage fields of a stored turn, in the table's order.
const STAGE_FIELDS: [&str; 7] = [
    "end_declared_ms",
    "asr_final_ms",
    "llm_first_token_ms",
    "first_phrase_ms",
    "tts_first_audio_ms",
    "first_rtp_ms",
    "llm_prompt_read",
];

impl Stages {
    /// The questions the model answered without being talked over.
    fn of(turns: &[serde_json::Value]) -> Stages {
        let answered: Vec<&serde_json::Value> = turns
            .iter()
            .filter(|t| t["intent"] == "question" && t["barge_in_onset_ms"].is_null())
            .collect();
        let columns = STAGE_FIELDS
            .iter()
            .map(|f| {
                let mut v: Vec<f64> = answered.iter().filter_map(|t| t[*f].as_f64()).collect();
                v.sort_by(f64::total_cmp);
                v
            })
            .collect();
        Stages {
            turns: answered.len(),
            columns,
        }
    }
}

impl std::fmt::Display for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>6}", self.turns)?;
        for (i, c) in self.columns.iter().enumerate() {
            let (p50, p95) = (
                super::percentile(c, 0.5, f64::NAN),
                super::percentile(c, 0.95, f64::NAN),
            );
            let cell = format!("{p50:.0}/{p95:.0}");
            if i + 1 == self.columns.len() {
                write!(f, " {cell:>9}")?;
            } else {
                write!(f, " {cell:>11}")?;
            }
        }
        Ok(())
    }
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

    #[test]
    fn a_gap_inside_an_answer_is_measured_between_its_sounds() {
        // Question ends at 1 s; the agent talks 1.5-2.5 s, is quiet 0.8 s,
        // talks 3.3-4 s, then is quiet until the next question at 9 s.
        let mut levels = vec![10.0; 75];
        levels.extend(vec![1000.0; 50]);
        levels.extend(vec![10.0; 40]);
        levels.extend(vec![1000.0; 35]);
        levels.extend(vec![10.0; 300]);
        // A sound 6.5 s after the first question's end: past the script's
        // 6 s gap (the caller's next words, or another answer), so not part
        // of this answer.
        for l in &mut levels[375..385] {
            *l = 1000.0;
        }
        let questions = [(0.5, 1.0), (9.0, 10.0)];
        let heard = latencies(&levels, &questions);
        let gaps = longest_gaps(&levels, &questions, &heard, 6.0);
        assert_eq!(gaps.len(), 2);
        assert!((gaps[0].expect("an answer") - 800.0).abs() < 1.0, "{gaps:?}");
        // No answer to the second question.
        assert_eq!(gaps[1], None);
    }

    #[test]
    fn the_stop_is_the_start_of_the_agents_silence_after_the_onset() {
        // Agent talks 0-2.3 s, then quiet: caller onset at 2.0 s -> stop 300 ms.
        let mut levels = vec![1000.0; 115];
        levels.extend(vec![10.0; 100]);
        assert_eq!(stop_after(&levels, 2.0), Some(Some(300.0)));
        // Not speaking at the onset: not counted.
        assert_eq!(stop_after(&levels, 3.5), None);
        // Still talking 3 s later: no stop.
        assert_eq!(stop_after(&vec![1000.0; 400], 2.0), Some(None));
        // A clip's sound, without the padding around it.
        let mut clip = vec![0i16; 800];
        clip.extend(vec![2000i16; 1600]);
        clip.extend(vec![0i16; 2400]);
        assert_eq!(voiced_span(&clip), (0.05, 0.15));
        assert!(is_backchannel("Uh-huh.") && is_backchannel(" OK ") && !is_backchannel("Okay, and fees?"));
    }
}
