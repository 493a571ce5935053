//! `voxline qa report`: the agent's own calls, scored after they ended (see
//! `analysis`), over a period: each item's pass rate, the worst calls, CSV.
//!
//! `voxline qa import FILES…`: human agents' calls scored against a pack's
//! scorecard. Each call is a stereo WAV (agent and customer on their own
//! channels), a pair of mono WAVs given as `AGENT.wav+CUSTOMER.wav`, or a
//! transcript JSON; recordings are transcribed side by side with word
//! times, then scored. Each call's result (transcript and score with its
//! evidence) is written to `OUT/NAME.json` as soon as it is done, so an
//! import stopped midway goes on where it stopped when run again.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use voxline_analysis::{read_call, transcribe_call, CallSource, CallTranscript, Inspector, Scorecard};
use voxline_asr::{BatchConfig, ChannelTranscriber, DecodeOptions, SileroVad, WhisperModel};

/// `voxline qa …`
#[derive(clap::Subcommand, Debug)]
pub enum QaCommand {
    /// Score calls from their recordings or transcripts against a scorecard.
    Import(ImportArgs),
    /// The agent's scored calls over a period: each item's pass rate, the
    /// worst calls; every call's verdicts as CSV.
    Report(ReportArgs),
}

/// Arguments of `voxline qa report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Calls scored on or after this day (YYYY-MM-DD, UTC).
    #[arg(long)]
    since: Option<String>,
    /// Calls scored before this day (YYYY-MM-DD, UTC).
    #[arg(long)]
    until: Option<String>,
    /// How many of the lowest-scored calls to list.
    #[arg(long, default_value_t = 10)]
    worst: i64,
    /// Write every scored call of the period as CSV (its score, verdict
    /// and each item's verdict) to this file.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Configuration file (its store).
    #[arg(long, default_value = "sip-config/voxline.toml")]
    config: PathBuf,
}

/// Which channel of a stereo recording is the agent's.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// The first (left) channel.
    Left,
    /// The second (right) channel.
    Right,
}

/// Arguments of `voxline qa import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The calls: CALL.wav (stereo), AGENT.wav+CUSTOMER.wav (two mono
    /// files), or CALL.json (a transcript: {"lines": [{"speaker", "start_ms",
    /// "end_ms", "text"}…]}).
    #[arg(required = true)]
    calls: Vec<String>,
    /// The scorecard (a pack's qa.toml).
    #[arg(long, default_value = "domains/demo-bank/qa.toml")]
    scorecard: PathBuf,
    /// Where each call's result goes (OUT/NAME.json); calls already there
    /// are not done again.
    #[arg(long, default_value = "qa-results")]
    out: PathBuf,
    /// The agent's channel in stereo recordings.
    #[arg(long, value_enum, default_value = "left")]
    agent_channel: Channel,
    /// Do calls again even when their result is already in OUT.
    #[arg(long)]
    again: bool,
    /// A ggml Whisper model (default: the converted tiny.en in the models folder).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Words that steer recognition (Whisper's prompt); default: the
    /// company's name and vocabulary of the pack the scorecard is in.
    #[arg(long)]
    prompt: Option<String>,
    /// The language model that judges outcome items and writes summaries:
    /// `default` (the default model), a GGUF file, or `none` (outcome
    /// items stay unsure, summaries are the call's own sentences).
    #[arg(long, default_value = "default")]
    llm: String,
}

/// One call to import.
#[derive(Debug)]
enum Input {
    Recording(CallSource),
    Transcript(PathBuf),
}

impl Input {
    fn describe(&self) -> String {
        match self {
            Input::Recording(s) => s.describe(),
            Input::Transcript(p) => p.display().to_string(),
        }
    }

    /// The result file's name: the (agent's) file's stem.
    fn name(&self) -> String {
        let file = match self {
            Input::Recording(s) => s.name_file(),
            Input::Transcript(p) => p.as_path(),
        };
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "call".into())
    }
}

/// Reads one call argument.
fn parse_input(arg: &str, agent_channel: Channel) -> anyhow::Result<Input> {
    if let Some((agent, customer)) = arg.split_once('+') {
        anyhow::ensure!(
            !agent.is_empty() && !customer.is_empty() && !customer.contains('+'),
            "{arg}: a pair is AGENT.wav+CUSTOMER.wav"
        );
        return Ok(Input::Recording(CallSource::MonoPair {
            agent: agent.into(),
            customer: customer.into(),
        }));
    }
    let path = PathBuf::from(arg);
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => Ok(Input::Transcript(path)),
        Some("wav") => Ok(Input::Recording(CallSource::Stereo {
            file: path,
            agent_channel: match agent_channel {
                Channel::Left => 0,
                Channel::Right => 1,
            },
        })),
        _ => anyhow::bail!("{arg}: not a .wav recording, an AGENT.wav+CUSTOMER.wav pair or a .json transcript"),
    }
}

/// What a call's import came to, for the summary.
struct Done {
    name: String,
    score: Option<f64>,
    passed: bool,
    failed: Vec<String>,
}

impl Done {
    /// From a result file's JSON.
    fn from_result(name: &str, v: &serde_json::Value) -> Option<Done> {
        let score = v.get("score")?;
        Some(Done {
            name: name.to_string(),
            score: score.get("score").and_then(serde_json::Value::as_f64),
            passed: score.get("passed")?.as_bool()?,
            failed: crate::analysis::failed_in(score),
        })
    }
}

/// A result already written for `source`, when it reads back whole.
fn previous(path: &Path, source: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    (v.get("source")?.as_str()? == source).then_some(v)
}

/// Writes `value` to `path` whole or not at all (a temporary file renamed).
fn write_result(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.part");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// A transcriber for recorded calls on `whisper`: the default VAD from
/// the models folder, `prompt` as Whisper's prompt.
pub fn recording_transcriber(whisper: &WhisperModel, prompt: Option<String>) -> anyhow::Result<ChannelTranscriber<'_>> {
    let models = voxline_models::models_dir();
    let vad = SileroVad::load(
        &models.join(voxline_models::defaults::ONNX_RUNTIME),
        &models.join(voxline_models::defaults::SILERO_VAD),
    )?;
    let decode = DecodeOptions {
        initial_prompt: prompt,
        ..DecodeOptions::default()
    };
    Ok(ChannelTranscriber::new(whisper, vad, decode, BatchConfig::default())?)
}

/// The recogniser's prompt for a scorecard's recordings: the company's
/// name and vocabulary of the pack it is in (when the folder holds a
/// readable `persona.toml`), and the names the scorecard's lines say.
pub fn pack_prompt(scorecard: &Path, card: &Scorecard) -> Option<String> {
    let dir = scorecard.parent()?;
    let pack = if dir.join("persona.toml").exists() {
        match voxline_agent::pack::Persona::load(dir) {
            Ok(p) => p.recording_prompt(),
            Err(e) => {
                tracing::warn!(error = %e, "the pack's words do not steer recognition");
                None
            }
        }
    } else {
        None
    };
    let mut prompt = pack.unwrap_or_default();
    for name in card.names() {
        if !prompt.contains(name.as_str()) {
            let sep = if prompt.is_empty() { "" } else { " " };
            prompt = format!("{prompt}{sep}{name}.");
        }
    }
    (!prompt.is_empty()).then_some(prompt)
}

/// Runs `voxline qa …`.
pub fn run(cmd: QaCommand, runtime: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    match cmd {
        QaCommand::Import(args) => import(args, runtime),
        QaCommand::Report(args) => runtime.block_on(report(args)),
    }
}

/// A day (YYYY-MM-DD, UTC) as ms since the epoch; `what` names the option.
fn day_ms(day: &str, what: &str) -> anyhow::Result<i64> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .with_context(|| format!("{what} {day:?}: write YYYY-MM-DD"))?;
    Ok(date
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or_default())
}

async fn report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = crate::cli::campaign::open(&a.config).await?;
    let since = a
        .since
        .as_deref()
        .map(|d| day_ms(d, "--since"))
        .transpose()?
        .unwrap_or(0);
    let until = a
        .until
        .as_deref()
        .map(|d| day_ms(d, "--until"))
        .transpose()?
        .unwrap_or(i64::MAX);
    anyhow::ensure!(since < until, "--since must be before --until");
    anyhow::ensure!((1..=1000).contains(&a.worst), "--worst: 1 to 1000");
    let period = voxline_store::AnalysisFilter {
        since: Some(since),
        until: Some(until),
        limit: i64::MAX,
        ..Default::default()
    };
    let calls = store.analyses(&period).await?;
    let passed = calls.iter().filter(|c| c.analysis.passed == Some(true)).count();
    println!(
        "{} call(s) scored{}{}; {passed} passed",
        calls.len(),
        a.since.as_deref().map(|d| format!(" from {d}")).unwrap_or_default(),
        a.until.as_deref().map(|d| format!(" until {d}")).unwrap_or_default(),
    );
    if calls.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    println!();
    println!("| item | passed | failed | n/a | unsure | pass rate |");
    println!("|---|---:|---:|---:|---:|---:|");
    for t in store.item_tallies(since, until).await? {
        let judged = t.passed + t.failed;
        println!(
            "| {}{} | {} | {} | {} | {} | {} |",
            t.item,
            if t.critical { " (critical)" } else { "" },
            t.passed,
            t.failed,
            t.not_applicable,
            t.unsure,
            if judged == 0 {
                "–".to_string()
            } else {
                format!("{:.0}%", 100.0 * t.passed as f64 / judged as f64)
            }
        );
    }
    let worst = store
        .analyses(&voxline_store::AnalysisFilter {
            limit: a.worst,
            worst_first: true,
            ..period.clone()
        })
        .await?;
    println!();
    println!("| worst calls | route | score | failed items |");
    println!("|---|---|---:|---|");
    for w in &worst {
        let failed = crate::analysis::failed_items(w.analysis.result.as_deref());
        println!(
            "| {} | {} | {} | {} |",
            w.call_id.as_deref().unwrap_or(w.analysis.record_id.as_str()),
            w.route.as_deref().unwrap_or_default(),
            w.analysis
                .score
                .map(|s| format!("{s:.0}"))
                .unwrap_or_else(|| "–".into()),
            failed.join(", ")
        );
    }
    if let Some(path) = &a.csv {
        let items: std::collections::BTreeSet<String> = calls
            .iter()
            .flat_map(|c| {
                crate::analysis::verdicts_of(c.analysis.result.as_deref())
                    .into_iter()
                    .map(|(id, _)| id)
            })
            .collect();
        let file = std::fs::File::create(path).with_context(|| format!("--csv {}", path.display()))?;
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
        let mut header = vec!["record_id", "call_id", "route", "analyzed_at", "score", "passed"];
        header.extend(items.iter().map(String::as_str));
        w.write_record(&header)?;
        for listed in &calls {
            let c = &listed.analysis;
            let verdicts: BTreeMap<String, String> =
                crate::analysis::verdicts_of(c.result.as_deref()).into_iter().collect();
            let mut row = vec![
                c.record_id.clone(),
                listed.call_id.clone().unwrap_or_default(),
                listed.route.clone().unwrap_or_default(),
                c.analyzed_at.map(|t| t.to_string()).unwrap_or_default(),
                c.score.map(|s| format!("{s:.1}")).unwrap_or_default(),
                c.passed.map(|p| p.to_string()).unwrap_or_default(),
            ];
            row.extend(items.iter().map(|i| verdicts.get(i).cloned().unwrap_or_default()));
            w.write_record(&row)?;
        }
        w.flush().with_context(|| format!("--csv {}", path.display()))?;
        println!();
        println!("{} call(s) written to {}", calls.len(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The post-call model `--llm` names, loaded: `default` (the default
/// model), `none` (no model) or a GGUF file.
pub async fn post_call_llm(arg: &str) -> anyhow::Result<Option<Arc<dyn voxline_llm::ChatModel>>> {
    let path = match arg {
        "none" => return Ok(None),
        "default" => voxline_models::models_dir().join(voxline_models::defaults::LLM),
        p => PathBuf::from(p),
    };
    let llm = voxline_llm::load_local(voxline_llm::LocalEngine::LlamaCpp, &path, Default::default())
        .await
        .with_context(|| format!("--llm {}", path.display()))?;
    Ok(Some(llm))
}

fn import(args: ImportArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let inputs = args
        .calls
        .iter()
        .map(|a| parse_input(a, args.agent_channel))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for i in &inputs {
        if let Some(other) = names.insert(i.name(), i.describe()) {
            anyhow::bail!(
                "{} and {other} would both be written to {}.json (rename one)",
                i.describe(),
                i.name()
            );
        }
    }
    let card = Scorecard::load(&args.scorecard)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let models = voxline_models::models_dir();
    let embedder = Arc::new(voxline_llm::Embedder::load(
        &models.join(voxline_models::defaults::EMBEDDING),
    )?);
    let inspector = Inspector::new(card, embedder)?;
    let llm = runtime.block_on(post_call_llm(&args.llm))?;
    // Whisper, the VAD and one decoding state, when a recording is given.
    let whisper = if inputs.iter().any(|i| matches!(i, Input::Recording(_))) {
        let path = args
            .model
            .clone()
            .unwrap_or_else(|| models.join(voxline_models::defaults::WHISPER));
        Some(WhisperModel::load(&path)?)
    } else {
        None
    };
    let prompt = args
        .prompt
        .clone()
        .or_else(|| pack_prompt(&args.scorecard, inspector.scorecard()));
    let mut transcriber = whisper.as_ref().map(|w| recording_transcriber(w, prompt)).transpose()?;

    let bar = ProgressBar::new(inputs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} calls, {elapsed} ({eta} left) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut done, mut errors, mut skipped) = (Vec::new(), Vec::new(), 0usize);
    let (mut audio_ms, mut work) = (0u64, std::time::Duration::ZERO);
    for input in &inputs {
        let name = input.name();
        let source = input.describe();
        let path = args.out.join(format!("{name}.json"));
        if !args.again {
            if let Some(d) = previous(&path, &source).and_then(|v| Done::from_result(&name, &v)) {
                skipped += 1;
                done.push(d);
                bar.inc(1);
                continue;
            }
        }
        bar.set_message(source.clone());
        let started = Instant::now();
        let outcome: anyhow::Result<(CallTranscript, &str, u64)> = match input {
            Input::Transcript(p) => CallTranscript::read_json(p)
                .map(|t| (t, "transcript", 0))
                .map_err(anyhow::Error::from),
            Input::Recording(call) => (|| {
                let audio = read_call(call)?;
                let transcriber = transcriber.as_mut().context("the recogniser")?;
                let total = (audio.agent.len() + audio.customer.len()) as u64 / 16;
                let t = transcribe_call(call, &audio, transcriber, &mut |ms| {
                    bar.set_message(format!("{source} {}%", ms * 100 / total.max(1)));
                })?;
                let kind = match call {
                    CallSource::Stereo { .. } => "stereo",
                    CallSource::MonoPair { .. } => "mono-pair",
                };
                Ok((t, kind, audio.duration_ms))
            })(),
        };
        let result = outcome.and_then(|(transcript, kind, ms)| {
            let mut score = inspector.score(&transcript)?;
            let card = inspector.scorecard();
            let summary = runtime.block_on(async {
                if let Some(llm) = &llm {
                    voxline_analysis::judge_outcomes(&mut score, card, &transcript, llm.as_ref()).await;
                }
                voxline_analysis::summarize(&transcript, &card.fields, llm.as_deref()).await
            });
            let took = started.elapsed();
            let value = json!({
                "source": source,
                "kind": kind,
                "audio_ms": ms,
                "took_ms": took.as_millis() as u64,
                "scorecard": args.scorecard.display().to_string(),
                "transcript": transcript,
                "score": score,
                "summary": summary,
            });
            write_result(&path, &value)?;
            if ms > 0 {
                audio_ms += ms;
                work += took;
            }
            Done::from_result(&name, &value).context("the result just written")
        });
        match result {
            Ok(d) => {
                bar.println(format!(
                    "{source}: {} ({}) -> {}",
                    if d.passed { "pass" } else { "fail" },
                    d.score.map(|s| format!("{s:.0}")).unwrap_or_else(|| "–".into()),
                    path.display()
                ));
                done.push(d);
            }
            Err(e) => {
                bar.println(format!("{source}: error: {e:#}"));
                errors.push(format!("{source}: {e:#}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    print_summary(&done, inspector.scorecard());
    if skipped > 0 {
        println!("{skipped} call(s) scored before were not done again (--again does them again)");
    }
    if audio_ms > 0 {
        println!(
            "{:.0} s of recordings transcribed and scored in {:.1} s ({:.1}x real time)",
            audio_ms as f64 / 1000.0,
            work.as_secs_f64(),
            audio_ms as f64 / 1000.0 / work.as_secs_f64().max(1e-9)
        );
    }
    if errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} call(s) could not be imported:", errors.len());
        for e in &errors {
            eprintln!("  {e}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// Each call's verdict, then each item's pass rate.
fn print_summary(done: &[Done], card: &Scorecard) {
    if done.is_empty() {
        return;
    }
    println!();
    println!("| call | score | verdict | failed items |");
    println!("|---|---:|---|---|");
    for d in done {
        println!(
            "| {} | {} | {} | {} |",
            d.name,
            d.score.map(|s| format!("{s:.0}")).unwrap_or_else(|| "–".into()),
            if d.passed { "pass" } else { "fail" },
            d.failed.join(", ")
        );
    }
    println!();
    println!("| item | failed in |");
    println!("|---|---:|");
    for item in &card.items {
        let n = done.iter().filter(|d| d.failed.contains(&item.id)).count();
        println!(
            "| {}{} | {n} of {} |",
            item.id,
            if item.critical { " (critical)" } else { "" },
            done.len()
        );
    }
}
