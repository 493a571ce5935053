//! `voxline bench turn-end`: the end of the caller's turn on a labelled set
//! of turns (`load-tests/turn-end/utterances-*.toml`): finished ones, and
//! ones that stop mid-sentence, mid-number or on a filler and go on after a
//! pause. Each is spoken (Piper or espeak-ng voices) through a G.711 line
//! and fed in real time, 20 ms at a time, to the call's streaming
//! recogniser, once without and once with the audio end-of-turn model, with
//! a hang-over longer than any pause: each pause is recorded with its
//! length and when the judges spoke (the early final's words, the audio
//! model's probability). The agent's end-of-turn policy ([`EndOfTurn`]) is
//! then applied to the recording as the recogniser applies it (speech ends
//! at the first window whose silence reaches the hang-over in force), for
//! the words alone and with the audio model, at each `--incomplete-ms`,
//! side by side. Prints the share of cut-offs (the end declared in a pause
//! before the caller was done: the agent would start over them) and how
//! soon the end of finished turns is declared after their last sound.

use super::percentile;
use super::voices::{silence, Speaker};
use crate::config::Config;
use anyhow::Context;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use voxline_agent::voice::end_of_turn::{assess, EndOfTurn, TurnEnd, TurnSilences, AUDIO_COMPLETE};
use voxline_asr::{AsrEvent, StreamingRecognizer};

/// Arguments of `voxline bench turn-end`.
#[derive(clap::Args, Debug)]
pub struct BenchTurnEndArgs {
    /// Labelled turns (TOML; see load-tests/turn-end/utterances-a.toml).
    #[arg(long, default_value = "load-tests/turn-end/utterances-a.toml")]
    set: Vec<PathBuf>,
    /// Configuration whose `[asr]` listens (its turn model, hang-over).
    #[arg(long, default_value = "sip-config/voxline.toml")]
    config: PathBuf,
    /// Silence ending a clearly finished turn, ms (the agent route's
    /// `turn_complete_ms`).
    #[arg(long, default_value_t = 250)]
    complete_ms: u32,
    /// Silence ending a turn whose words stop mid-sentence, ms
    /// (`turn_incomplete_ms`); several (comma-separated) are compared.
    #[arg(long, value_delimiter = ',', default_value = "2000")]
    incomplete_ms: Vec<u32>,
    /// Silence ending a turn only the voice says is unfinished, ms
    /// (`turn_voice_incomplete_ms`); several are compared (each with every
    /// `--incomplete-ms`).
    #[arg(long, value_delimiter = ',', default_value = "1200")]
    voice_incomplete_ms: Vec<u32>,
    /// How long the turn stays open for the early final's words when the
    /// voice already sounds finished, ms; several are compared (with the
    /// audio model).
    #[arg(long, value_delimiter = ',', default_value = "800")]
    words_wait_ms: Vec<u32>,
    /// One line per turn and way of judging.
    #[arg(long)]
    verbose: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TurnSet {
    utterance: Vec<Utterance>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Utterance {
    id: String,
    kind: String,
    voice: String,
    #[serde(default = "one")]
    speed: f32,
    say: String,
    #[serde(default)]
    pause_ms: u64,
    #[serde(default)]
    then: Option<String>,
    #[serde(default)]
    digits: Vec<usize>,
}

fn one() -> f32 {
    1.0
}

/// Silence before the caller speaks, ms.
const LEAD_MS: u64 = 400;
/// Silence after the caller's last words, ms: longer than any hang-over.
const TAIL_MS: u64 = 2_500;

/// A turn as the line carries it.
struct Spoken {
    audio: Vec<i16>,
    /// Stream ms where the first part's sound ends.
    said_end_ms: u64,
    /// Stream ms where the caller goes on (unfinished turns).
    resumes_ms: Option<u64>,
}

fn speak(u: &Utterance, speaker: &mut Speaker) -> anyhow::Result<Spoken> {
    let mut audio = silence(LEAD_MS);
    audio.extend(speaker.say(&u.voice, u.speed, &u.say).with_context(|| u.id.clone())?);
    let said_end_ms = audio.len() as u64 / 16;
    let mut resumes_ms = None;
    if let Some(then) = &u.then {
        audio.extend(silence(u.pause_ms));
        resumes_ms = Some(audio.len() as u64 / 16);
        audio.extend(speaker.say(&u.voice, u.speed, then).with_context(|| u.id.clone())?);
    }
    audio.extend(silence(TAIL_MS));
    Ok(Spoken {
        audio,
        said_end_ms,
        resumes_ms,
    })
}

/// A silence in a turn while speech is in progress, as the recogniser
/// heard it, and what the judges said during it.
#[derive(Debug, Clone)]
struct Pause {
    /// Stream ms where it began (the end of the last speech window).
    start_ms: u64,
    /// How long it lasted (to the tail's end for the last one), ms.
    longest_ms: u64,
    /// The words' verdict and the silence when it came, ms.
    words: Option<(TurnEnd, u64)>,
    /// The audio model's probability and the silence when it came, ms.
    audio: Option<(f32, u64)>,
    /// The early final's text the words were judged on.
    text: Option<String>,
}

/// The hang-over while recording: longer than any pause, so that every
/// pause runs its full length and both judges are heard.
const HOLD_MS: u32 = 5_000;

/// Feeds `spoken` in real time to `rec` and records its pauses.
async fn listen(spoken: &Spoken, rec: &mut StreamingRecognizer, digits: &[usize]) -> Vec<Pause> {
    let mut pauses: Vec<Pause> = Vec::new();
    let mut in_pause = false;
    rec.segmenter_mut().set_hangover_ms(HOLD_MS);
    let mut frames = spoken.audio.chunks(320);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let Some(frame) = frames.next() else { return pauses };
                rec.push(frame).ok();
                match rec.segmenter().silence_ms() {
                    Some(0) | None => in_pause = false,
                    Some(silence) => {
                        if !in_pause {
                            in_pause = true;
                            pauses.push(Pause { start_ms: rec.now_ms() - silence, longest_ms: 0, words: None, audio: None, text: None });
                        }
                        if let Some(p) = pauses.last_mut() {
                            p.longest_ms = silence;
                        }
                    }
                }
            }
            Some(ev) = rec.next_event() => {
                let silence = rec.segmenter().silence_ms().unwrap_or(0);
                let pause = pauses.last_mut().filter(|_| in_pause);
                match (ev, pause) {
                    (AsrEvent::Tentative { text, .. }, Some(p)) => {
                        p.words = Some((assess(&text, digits), silence));
                        p.text = Some(text);
                    }
                    (AsrEvent::TurnAudio { complete, .. }, Some(p)) => p.audio = Some((complete, silence)),
                    _ => {}
                }
            }
        }
    }
}

/// Where a policy's hang-over `hangover` ends the pause `p`: the silence,
/// ms, or `None` when the caller speaks first. The recogniser ends speech
/// at the first window whose silence reaches the hang-over in force; the
/// judges change it when they speak.
fn ends_at(p: &Pause, hangover: impl Fn(Option<TurnEnd>, Option<f32>) -> u32) -> Option<u64> {
    let mut changes: Vec<u64> = [p.words.map(|w| w.1), p.audio.map(|a| a.1)]
        .into_iter()
        .flatten()
        .collect();
    changes.sort_unstable();
    let mut from = 0;
    for until in changes.into_iter().chain([u64::MAX]) {
        let words = p.words.filter(|w| w.1 <= from).map(|w| w.0);
        let audio = p.audio.filter(|a| a.1 <= from).map(|a| a.0);
        let end = u64::from(hangover(words, audio)).max(from);
        if end < until && end <= p.longest_ms {
            return Some(end);
        }
        from = until;
    }
    None
}

/// One turn's pauses, recorded without and with the audio model.
struct Row {
    id: String,
    finished: bool,
    said_end_ms: u64,
    resumes_ms: Option<u64>,
    /// Recorded without the audio model (for the words alone) and with it.
    pauses: [Vec<Pause>; 2],
}

/// How a turn ends under a policy.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ended {
    /// In a pause before the caller was done.
    CutOff,
    /// After the finished turn's last sound, ms.
    After(i64),
    /// Not in the recorded audio (an unfinished turn that waited out its
    /// pause and whose end came after the tail, or a finished one never ended).
    Waited,
}

impl Row {
    /// How the turn ends under `policy`, judged on recording `run`
    /// (`audio`: the policy hears the audio model).
    fn ended(&self, run: usize, policy: &EndOfTurn, audio: bool) -> Ended {
        let hangover = |w, a: Option<f32>| policy.hangover_ms(w, a.filter(|_| audio));
        for p in &self.pauses[run] {
            let Some(s) = ends_at(p, hangover) else { continue };
            let at = p.start_ms + s;
            let cut = match self.resumes_ms {
                Some(resumes) => at < resumes,
                // A pause well before the sentence's last sound.
                None => p.start_ms + 300 < self.said_end_ms,
            };
            return match (cut, self.finished) {
                (true, _) => Ended::CutOff,
                (false, true) => Ended::After(at as i64 - self.said_end_ms as i64),
                (false, false) => Ended::Waited,
            };
        }
        Ended::Waited
    }
}

/// A way of judging: its name, the recording it reads, whether it hears
/// the audio model, and the silence after a turn that clearly goes on.
struct Way {
    name: String,
    run: usize,
    policy: EndOfTurn,
    audio: bool,
}

fn silences(args: &BenchTurnEndArgs, incomplete_ms: u32, voice_incomplete_ms: u32, words_wait_ms: u32) -> TurnSilences {
    TurnSilences {
        complete_ms: args.complete_ms,
        incomplete_ms,
        voice_incomplete_ms,
        words_wait_ms,
    }
}

/// Runs the bench.
pub async fn run(args: BenchTurnEndArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config)?;
    let asr = crate::asr_engine::AsrEngine::start(&cfg.asr)?;
    anyhow::ensure!(
        asr.has_turn_model(),
        "{}: [asr] turn_audio is off; the bench compares the words alone with the audio model",
        args.config.display()
    );
    let configured = cfg.asr.hangover_ms;
    let mut ways = Vec::new();
    for &incomplete in &args.incomplete_ms {
        ways.push(Way {
            name: format!("words, {incomplete} ms mid-sentence"),
            run: 0,
            policy: EndOfTurn::new(configured, silences(&args, incomplete, incomplete, configured), false),
            audio: false,
        });
        for &voice in &args.voice_incomplete_ms {
            for &wait in &args.words_wait_ms {
                ways.push(Way {
                    name: format!(
                        "words+audio, {incomplete} ms mid-sentence, {voice} ms voice unfinished, {wait} ms for the words"
                    ),
                    run: 1,
                    policy: EndOfTurn::new(configured, silences(&args, incomplete, voice, wait), true),
                    audio: true,
                });
            }
        }
    }
    let mut speaker = Speaker::load()?;
    let mut rows = Vec::new();
    for file in &args.set {
        let text = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
        let set: TurnSet = toml::from_str(&text).with_context(|| file.display().to_string())?;
        println!("{}: {} turns", file.display(), set.utterance.len());
        for u in &set.utterance {
            let finished = match u.kind.as_str() {
                "finished" => true,
                "unfinished" => false,
                k => anyhow::bail!("{}: kind {k:?} is not finished or unfinished", u.id),
            };
            anyhow::ensure!(
                finished == u.then.is_none(),
                "{}: an unfinished turn has `then` (and a finished one none)",
                u.id
            );
            let spoken = speak(u, &mut speaker)?;
            let mut pauses: [Vec<Pause>; 2] = Default::default();
            for (run, recorded) in pauses.iter_mut().enumerate() {
                let mut rec = asr.recognizer_hearing(None, run == 1)?;
                *recorded = listen(&spoken, &mut rec, &u.digits).await;
                rec.close();
            }
            let row = Row {
                id: u.id.clone(),
                finished,
                said_end_ms: spoken.said_end_ms,
                resumes_ms: spoken.resumes_ms,
                pauses,
            };
            if args.verbose {
                print_row(&row, &ways);
            }
            rows.push(row);
        }
    }
    report(&rows, &ways);
    Ok(())
}

fn print_row(row: &Row, ways: &[Way]) {
    let judged = |p: &Pause| {
        let words = p
            .words
            .map(|(w, at)| format!("{w:?}@{at}"))
            .unwrap_or_else(|| "-".into());
        let audio = p
            .audio
            .map(|(a, at)| format!("{a:.2}@{at}"))
            .unwrap_or_else(|| "-".into());
        let text = p.text.as_deref().map(|t| format!(" {t:?}")).unwrap_or_default();
        format!("{}ms[{words} {audio}{text}]", p.longest_ms)
    };
    // The pauses long enough for a judge to speak, as the model heard them.
    let heard: Vec<String> = row.pauses[1]
        .iter()
        .filter(|p| p.words.is_some() || p.audio.is_some())
        .map(judged)
        .collect();
    let mut line = format!(
        "  {:<6} {:<10} {}",
        row.id,
        if row.finished { "finished" } else { "unfinished" },
        heard.join(" ")
    );
    for w in ways {
        let what = match row.ended(w.run, &w.policy, w.audio) {
            Ended::CutOff => "CUT OFF".to_string(),
            Ended::After(ms) => format!("+{ms}"),
            Ended::Waited if row.finished => "never".to_string(),
            Ended::Waited => "waited".to_string(),
        };
        line.push_str(&format!(" | {what}"));
    }
    println!("{line}");
}

fn report(rows: &[Row], ways: &[Way]) {
    let unfinished = rows.iter().filter(|r| !r.finished).count();
    let finished = rows.len() - unfinished;
    println!();
    println!(
        "| judged by | unfinished turns cut off (of {unfinished}) | finished turns cut off in a pause (of {finished}) | finished turns: end declared after the last sound, mean / p50 / p95 | never ended |"
    );
    println!("|---|---|---|---|---|");
    for w in ways {
        let ends: Vec<(bool, Ended)> = rows
            .iter()
            .map(|r| (r.finished, r.ended(w.run, &w.policy, w.audio)))
            .collect();
        let cut = |fin: bool| ends.iter().filter(|(f, e)| *f == fin && *e == Ended::CutOff).count();
        let mut after: Vec<i64> = ends
            .iter()
            .filter_map(|(_, e)| match e {
                Ended::After(ms) => Some(*ms),
                _ => None,
            })
            .collect();
        after.sort_unstable();
        let never = ends.iter().filter(|(f, e)| *f && *e == Ended::Waited).count();
        let mean = after.iter().sum::<i64>() as f64 / after.len().max(1) as f64;
        println!(
            "| {} | {} ({:.1}%) | {} | {mean:.0} / {} / {} ms | {never} |",
            w.name,
            cut(false),
            100.0 * cut(false) as f64 / unfinished.max(1) as f64,
            cut(true),
            percentile(&after, 0.5, 0),
            percentile(&after, 0.95, 0),
        );
    }
    // The audio model alone, as a classifier at its own threshold, at the
    // pause after the first words (unfinished) or the end (finished).
    let heard_complete = |finished: bool| {
        rows.iter()
            .filter(|r| r.finished == finished)
            .filter_map(|r| {
                let pause = r.pauses[1].iter().find(|p| {
                    p.audio.is_some()
                        && r.resumes_ms.is_none_or(|res| p.start_ms < res)
                        && (!finished || p.start_ms + 300 >= r.said_end_ms)
                })?;
                pause.audio.map(|a| a.0 >= AUDIO_COMPLETE)
            })
            .filter(|&c| c)
            .count()
    };
    println!();
    println!(
        "the audio model alone heard as complete: {} of {finished} finished turns, {} of {unfinished} unfinished ones (at their pause)",
        heard_complete(true),
        heard_complete(false)
    );
}
