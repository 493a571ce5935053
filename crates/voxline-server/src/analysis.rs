//! Quality inspection after the agent's calls (issue 23). When a call on an
//! agent route whose pack has a scorecard (`qa.toml`) ends, it is queued in
//! the store (one INSERT after the call, never in its media path); an
//! analyser on every node leases queued calls, scores the call's stored
//! transcript against the scorecard (off the runtime's threads), has the
//! `[analysis]` model judge the outcome items and write the summary (each
//! checked against the transcript), stores the score with each item's
//! verdict and evidence and the summary, and sends the `call.analyzed`
//! webhook. A call whose analyser stopped midway is taken
//! again once the lease runs out; a failure is retried, then given up with
//! its error stored.
//!
//! Training calls (issue 24) go through the same worker: a call on a
//! training route is queued as a training session, and its report is the
//! scenario's scorecard with the trainee as the agent side, the customer's
//! objections and the facts stated or missed (`voxline_analysis::training_report`).

use crate::webhooks::Webhooks;
use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};
use voxline_agent::Knowledge;
use voxline_analysis::training::Scenario;
use voxline_analysis::training_report::{SessionCall, TrainingReport};
use voxline_analysis::{CallScore, CallTranscript, Inspector, Line, Scorecard, Speaker};
use voxline_llm::{ChatModel, Embedder};
use voxline_store::{now_ms, AnalysisRow, CallStore, ItemVerdict, TrainingRow};

/// How long a leased call is this node's before another may take it.
const LEASE: Duration = Duration::from_secs(120);
/// Tries of one call before it is given up.
const MAX_ATTEMPTS: i32 = 3;
/// The longest the model may take for a call's outcome items, and again
/// for its summary (with the wait for an idle node, well within [`LEASE`]).
const MODEL_DEADLINE: Duration = Duration::from_secs(20);
/// How often the queue is looked at when nothing woke the analyser (calls
/// queued by other nodes, or by `voxline call`).
const POLL: Duration = Duration::from_secs(5);

/// The scorecard of a pack, when it has one (`DIR/qa.toml`), checked: a
/// broken one is an error naming the file, the item and the field.
pub fn pack_scorecard(pack_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let path = pack_dir.join("qa.toml");
    if !path.exists() {
        return Ok(None);
    }
    Scorecard::load(&path)?;
    Ok(Some(path))
}

/// A call's stored transcript as the scorer reads it: the caller is the
/// customer; the call lasts from its answer to its end.
pub fn call_transcript(lines: &[voxline_store::TranscriptLine], duration_ms: Option<u64>) -> CallTranscript {
    sided_transcript(lines, duration_ms, Speaker::Agent)
}

/// A call's stored transcript with voxline's own lines (stored as the
/// agent's) as `voxline_side`: the customer on a training call, where the
/// human trainee is the agent side.
pub fn sided_transcript(
    lines: &[voxline_store::TranscriptLine],
    duration_ms: Option<u64>,
    voxline_side: Speaker,
) -> CallTranscript {
    // Notes of what happened ("outcome: satisfied", a flow step) are
    // nobody's words.
    let lines = lines
        .iter()
        .filter(|l| l.speaker != "system")
        .map(|l| Line {
            speaker: if l.speaker == "agent" {
                voxline_side
            } else {
                voxline_side.other()
            },
            start_ms: l.start_ms.max(0) as u64,
            end_ms: l.end_ms.max(l.start_ms).max(0) as u64,
            text: l.text.clone(),
            words: Vec::new(),
        })
        .collect();
    CallTranscript::new(lines, duration_ms)
}

/// Each item's verdict in a score (its JSON), in the scorecard's order:
/// (item id, verdict).
pub fn verdicts_in(score: &serde_json::Value) -> Vec<(String, String)> {
    let items = score.get("items").and_then(|i| i.as_array());
    items
        .into_iter()
        .flatten()
        .filter_map(|i| {
            Some((
                i.get("id")?.as_str()?.to_string(),
                i.get("verdict")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

/// [`verdicts_in`] a stored result (none when it is absent or unreadable).
pub fn verdicts_of(result: Option<&str>) -> Vec<(String, String)> {
    result
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .map(|v| verdicts_in(&v))
        .unwrap_or_default()
}

/// The items that failed in a score (its JSON).
pub fn failed_in(score: &serde_json::Value) -> Vec<String> {
    fails(verdicts_in(score))
}

/// The items that failed in a stored result.
pub fn failed_items(result: Option<&str>) -> Vec<String> {
    fails(verdicts_of(result))
}

fn fails(verdicts: Vec<(String, String)>) -> Vec<String> {
    verdicts
        .into_iter()
        .filter(|(_, v)| v == "fail")
        .map(|(id, _)| id)
        .collect()
}

/// The language model of post-call work (outcome items, summaries).
pub struct AnalysisLlm {
    /// The model.
    pub model: Arc<dyn ChatModel>,
    /// When it is the agents' own: the node's live calls, and how long the
    /// model's work waits for none to be up.
    pub shared_with: Option<(crate::handlers::live::LiveCalls, Duration)>,
}

impl AnalysisLlm {
    /// Waits (up to its limit) until no call is up on this node, when the
    /// model is the agents' own: a caller's reply never queues behind a
    /// summary on a busy engine.
    async fn wait_idle(&self) {
        let Some((live, limit)) = &self.shared_with else {
            return;
        };
        let until = tokio::time::Instant::now() + *limit;
        while !live.list().is_empty() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The model `[analysis]` names, loaded: the agents' own (shared, waiting
/// for the node to be idle), none, a GGUF of its own or a server.
pub async fn analysis_llm(
    cfg: &crate::config::Config,
    handlers: &crate::handlers::Handlers,
) -> anyhow::Result<Option<AnalysisLlm>> {
    use crate::config::analysis::AnalysisModel;
    let own = |model: Arc<dyn ChatModel>| AnalysisLlm {
        model,
        shared_with: None,
    };
    let llm = match cfg.analysis.choice()? {
        AnalysisModel::Off => None,
        AnalysisModel::Agent => handlers.llm().map(|model| AnalysisLlm {
            model,
            shared_with: Some((handlers.live(), Duration::from_secs(cfg.analysis.idle_wait_s))),
        }),
        AnalysisModel::File(gguf) => {
            let opts = voxline_llm::LocalOptions {
                threads: cfg.llm.threads,
                ..Default::default()
            };
            let model = voxline_llm::load_local(cfg.llm.engine()?, &gguf, opts)
                .await
                .with_context(|| format!("analysis.model {}", gguf.display()))?;
            Some(own(model))
        }
        AnalysisModel::Server(remote) => Some(own(Arc::new(voxline_llm::RemoteModel::new(remote)?))),
    };
    match &llm {
        Some(l) => info!(model = %l.model.name(), shared = l.shared_with.is_some(), "post-call model"),
        None => info!("no post-call model: outcome items stay unsure, summaries are extractive"),
    }
    Ok(llm)
}

/// Logs a failed try's error that the store did not take (the lease runs
/// out and the work is taken again).
fn log_unstored(stored: Result<(), voxline_store::StoreError>) {
    if let Err(e) = stored {
        warn!(error = %e, "the failure was not stored");
    }
}

/// Scores queued calls.
pub struct Analyzer {
    store: CallStore,
    /// The sentence-embedding model: the agents' own, else loaded at the
    /// first call to score.
    embedder: Mutex<Option<Arc<Embedder>>>,
    embedding_dir: PathBuf,
    /// Scorecards ready to score, by file.
    inspectors: Mutex<HashMap<PathBuf, Arc<Inspector>>>,
    webhooks: Option<Arc<Webhooks>>,
    wake: Arc<Notify>,
    /// The model that judges outcome items and writes summaries (none:
    /// outcome items stay unsure, summaries are extractive).
    llm: Option<AnalysisLlm>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer").finish()
    }
}

impl Analyzer {
    /// An analyser over `store`; `wake` is notified when a call is queued
    /// on this node; `llm` judges outcome items and writes summaries.
    pub fn new(
        store: CallStore,
        embedder: Option<Arc<Embedder>>,
        embedding_dir: PathBuf,
        webhooks: Option<Arc<Webhooks>>,
        wake: Arc<Notify>,
        llm: Option<AnalysisLlm>,
    ) -> Arc<Analyzer> {
        Arc::new(Analyzer {
            store,
            embedder: Mutex::new(embedder),
            embedding_dir,
            inspectors: Mutex::new(HashMap::new()),
            webhooks,
            wake,
            llm,
        })
    }

    /// Scores queued calls until `shutdown`, one at a time.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let leased = self
                .store
                .lease_analysis(now_ms() + LEASE.as_millis() as i64, MAX_ATTEMPTS)
                .await;
            match leased {
                Ok(Some(row)) => {
                    let span = tracing::info_span!("analysis", record_id = %row.record_id);
                    self.analyze(row).instrument(span).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => warn!(error = %e, "analysis queue not read"),
            }
            match self
                .store
                .lease_training(now_ms() + LEASE.as_millis() as i64, MAX_ATTEMPTS)
                .await
            {
                Ok(Some(row)) => {
                    let span = tracing::info_span!("training_report", record_id = %row.record_id);
                    self.train(row).instrument(span).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => warn!(error = %e, "training queue not read"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// The scorecard in `path`, ready (loaded and embedded once).
    async fn inspector(&self, path: &Path) -> anyhow::Result<Arc<Inspector>> {
        let mut inspectors = self.inspectors.lock().await;
        if let Some(i) = inspectors.get(path) {
            return Ok(i.clone());
        }
        let embedder = {
            let mut e = self.embedder.lock().await;
            match &*e {
                Some(e) => e.clone(),
                None => {
                    let dir = self.embedding_dir.clone();
                    let loaded = Arc::new(tokio::task::spawn_blocking(move || Embedder::load(&dir)).await??);
                    *e = Some(loaded.clone());
                    loaded
                }
            }
        };
        let file = path.to_path_buf();
        let inspector = Arc::new(
            tokio::task::spawn_blocking(move || -> anyhow::Result<Inspector> {
                Ok(Inspector::new(Scorecard::load(&file)?, embedder)?)
            })
            .await??,
        );
        inspectors.insert(path.to_path_buf(), inspector.clone());
        Ok(inspector)
    }

    /// Scores one leased call and stores the result (or the failure).
    async fn analyze(&self, row: AnalysisRow) {
        let started = std::time::Instant::now();
        match self.score(&row).await {
            Ok((score, passed)) => {
                info!(
                    score = score.map(|s| format!("{s:.0}")),
                    passed,
                    took_ms = started.elapsed().as_millis() as u64,
                    "call analysed"
                );
                if let Some(w) = &self.webhooks {
                    w.call_analyzed(&row.record_id).await;
                }
            }
            Err(e) => {
                let error = format!("{e:#}");
                let retry = row.attempts < MAX_ATTEMPTS;
                warn!(%error, attempt = row.attempts, retry, "call not analysed");
                let stored = self.store.analysis_failed(&row.record_id, &error, retry).await;
                log_unstored(stored);
            }
        }
    }

    /// Has the post-call model judge `scored`'s outcome items (none: they
    /// stay unsure). A model that hangs never holds the queue: past its
    /// deadline the items stay unsure.
    async fn judge(&self, scored: &mut CallScore, card: &Scorecard, transcript: &CallTranscript) {
        let Some(llm) = &self.llm else {
            return;
        };
        llm.wait_idle().await;
        let model = llm.model.as_ref();
        let judged = tokio::time::timeout(
            MODEL_DEADLINE,
            voxline_analysis::judge_outcomes(scored, card, transcript, model),
        )
        .await;
        if judged.is_err() {
            warn!(model = %model.name(), "outcome items not judged within {MODEL_DEADLINE:?}");
            scored.tally(card.pass_score);
        }
    }

    /// Writes one leased training call's report (or stores the failure).
    async fn train(&self, row: TrainingRow) {
        let started = std::time::Instant::now();
        match self.training_report(&row).await {
            Ok(report) => info!(
                trainee = %report.trainee,
                scenario = %report.scenario,
                score = report.score.map(|s| format!("{s:.0}")),
                passed = report.passed,
                outcome = report.outcome.as_deref().unwrap_or("none"),
                took_ms = started.elapsed().as_millis() as u64,
                "training report written"
            ),
            Err(e) => {
                let error = format!("{e:#}");
                let retry = row.attempts < MAX_ATTEMPTS;
                warn!(%error, attempt = row.attempts, retry, "training report not written");
                let stored = self.store.training_failed(&row.record_id, &error, retry).await;
                log_unstored(stored);
            }
        }
    }

    /// The report on a training call: its transcript with the trainee as
    /// the agent side, scored against the scenario's scorecard, its
    /// objections and facts (grounded in the pack's knowledge), stored.
    async fn training_report(&self, row: &TrainingRow) -> anyhow::Result<TrainingReport> {
        let record = self
            .store
            .record(&row.record_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no call record {}", row.record_id))?;
        let lines = self.store.transcript(&row.record_id).await?;
        let duration = match (record.answer_at, record.end_at) {
            (Some(a), Some(e)) if e >= a => Some((e - a) as u64),
            _ => None,
        };
        let transcript = Arc::new(sided_transcript(&lines, duration, Speaker::Customer));
        let file = PathBuf::from(&row.scenario_file);
        let scenario = {
            let file = file.clone();
            tokio::task::spawn_blocking(move || Scenario::load(&file)).await??
        };
        let inspector = self.inspector(&scenario.scorecard.file).await?;
        let mut scored = {
            let (inspector, transcript) = (inspector.clone(), transcript.clone());
            tokio::task::spawn_blocking(move || inspector.score(&transcript)).await??
        };
        self.judge(&mut scored, inspector.scorecard(), &transcript).await;
        // The pack is the scenario's folder's parent; its knowledge grounds
        // the facts' better wording (a report without it says no source).
        let knowledge_dir = file.parent().and_then(Path::parent).map(|pack| pack.join("knowledge"));
        let knowledge = match knowledge_dir {
            Some(dir) => match tokio::task::spawn_blocking(move || Knowledge::load(&dir)).await? {
                Ok(k) => Some(k),
                Err(e) => {
                    warn!(error = %e, "the pack's knowledge not read: facts are reported without their source");
                    None
                }
            },
            None => None,
        };
        let call = SessionCall {
            trainee: row.trainee.clone(),
            call_id: record.call_id.clone(),
            answered_at: record.answer_at,
            outcome: record.outcome.clone(),
        };
        let report = TrainingReport::build(&scenario, &call, &transcript, &scored, knowledge.as_ref());
        self.store
            .training_done(
                &row.record_id,
                report.score,
                report.passed,
                report.outcome.as_deref(),
                &serde_json::to_string(&report)?,
            )
            .await?;
        Ok(report)
    }

    async fn score(&self, row: &AnalysisRow) -> anyhow::Result<(Option<f64>, bool)> {
        let record = self
            .store
            .record(&row.record_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no call record {}", row.record_id))?;
        let lines = self.store.transcript(&row.record_id).await?;
        let duration = match (record.answer_at, record.end_at) {
            (Some(a), Some(e)) if e >= a => Some((e - a) as u64),
            _ => None,
        };
        let transcript = Arc::new(call_transcript(&lines, duration));
        let inspector = self.inspector(Path::new(&row.scorecard)).await?;
        let mut scored = {
            let (inspector, transcript) = (inspector.clone(), transcript.clone());
            tokio::task::spawn_blocking(move || inspector.score(&transcript)).await??
        };
        let card = inspector.scorecard();
        self.judge(&mut scored, card, &transcript).await;
        let summary = match &self.llm {
            Some(llm) => {
                let model = llm.model.as_ref();
                let summarized = tokio::time::timeout(
                    MODEL_DEADLINE,
                    voxline_analysis::summarize(&transcript, &card.fields, Some(model)),
                )
                .await;
                match summarized {
                    Ok(s) => s,
                    Err(_) => {
                        let mut s = voxline_analysis::summary::extractive(&transcript, &card.fields);
                        s.written_by = voxline_analysis::summary::WrittenBy::Extractive {
                            model_refused: Some(format!("the model took longer than {MODEL_DEADLINE:?}")),
                        };
                        s
                    }
                }
            }
            None => voxline_analysis::summarize(&transcript, &card.fields, None).await,
        };
        let summary = serde_json::to_string(&summary)?;
        let items: Vec<ItemVerdict> = card
            .items
            .iter()
            .zip(&scored.items)
            .map(|(item, got)| ItemVerdict {
                item: item.id.clone(),
                verdict: got.verdict.as_str().to_string(),
                critical: item.critical,
            })
            .collect();
        let result = serde_json::to_string(&scored)?;
        self.store
            .analysis_done(
                &row.record_id,
                scored.score,
                scored.passed,
                &result,
                Some(&summary),
                &items,
            )
            .await?;
        Ok((scored.score, scored.passed))
    }
}
