//! The `agent` route: a domain agent on the call. The route loads its
//! pack, warms the model and pins the fixed lines' audio; each call is
//! answered with media, made a SIP leg (`crate::leg`), and handed to the
//! voice session of `voxline_agent::voice`, which holds the conversation
//! (turn-taking, barge-in, the hold line, digits, transfers). Here only the
//! server's side of it: the call record, the transcript and turns into the
//! store (a [`SessionSink`]), the turn figures into `/metrics`.

use crate::asr_engine::AsrEngine;
use crate::config::{resolve_path, MediaConfig};
use crate::handlers::agent_metrics::AgentMetrics;
use crate::leg::bridge::Dialer;
use crate::leg::call_media::{answer_with_media, finish_call, local_end, Answered, Outcome};
use crate::leg::sip_leg::{BridgeServices, SipLeg};
use crate::leg::{end_reason, RunningMedia};
use crate::records::Records;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{warn, Instrument};
use voxline_agent::voice::{ReplyPace, SessionSink, VoiceConfig, VoiceSession};
use voxline_agent::{Agent, DomainPack};
use voxline_media::{MediaClock, MediaPort};
use voxline_sip::routing::ParamValue;
use voxline_sip::{InboundCall, RouteConfig};
use voxline_store::{AgentTurn, FlowStep, TranscriptLine};
use voxline_tts::TtsEngine;

/// Parameters of an agent route (`[route.params]`).
#[derive(Debug, Clone)]
pub struct AgentParams {
    /// The domain pack's folder.
    pub domain: PathBuf,
    /// Hang up after this many seconds (default: the persona's `max_call_s`).
    pub max_seconds: Option<u64>,
    /// Record this route's calls (overrides `media.record`).
    pub record: Option<bool>,
    /// The caller's voice this long (from its first VAD window, before the
    /// VAD reports speech) while the agent talks stops the agent, ms.
    pub barge_in_ms: u64,
    /// How long a transfer may take (REFER answered and the colleague answering), s.
    pub transfer_wait_s: u64,
    /// When the REFER is refused or fails, call the target and join the calls.
    pub transfer_bridge: bool,
    /// Silence that ends the caller's turn when their words are clearly a
    /// finished sentence or question, ms (else `asr.hangover_ms`).
    pub turn_complete_ms: u32,
    /// Silence that ends the caller's turn when their words clearly go on
    /// (a trailing "and", a half-read number), ms.
    pub turn_incomplete_ms: u32,
}

impl AgentParams {
    /// Reads and checks the parameters (the pack is loaded to check it); errors are (field, reason).
    pub fn parse(params: &BTreeMap<String, ParamValue>, base: &Path) -> Result<AgentParams, (String, String)> {
        let mut p = AgentParams {
            domain: PathBuf::new(),
            max_seconds: None,
            record: None,
            barge_in_ms: 100,
            transfer_wait_s: 30,
            transfer_bridge: true,
            turn_complete_ms: 250,
            turn_incomplete_ms: 1200,
        };
        for (k, v) in params {
            let field = format!("params.{k}");
            let bad = |want: &str| (field.clone(), format!("must be {want}"));
            match (k.as_str(), v) {
                ("domain", ParamValue::Str(s)) => p.domain = resolve_path(base, Path::new(s)),
                ("domain", _) => return Err(bad("the path of a domain pack folder")),
                ("max_seconds", ParamValue::Int(n)) if *n > 0 && *n <= 86_400 => p.max_seconds = Some(*n as u64),
                ("max_seconds", _) => return Err(bad("an integer from 1 to 86400")),
                ("record", ParamValue::Bool(b)) => p.record = Some(*b),
                ("record", _) => return Err(bad("true or false")),
                ("barge_in_ms", ParamValue::Int(n)) if (60..=2000).contains(n) => p.barge_in_ms = *n as u64,
                ("barge_in_ms", _) => return Err(bad("an integer from 60 to 2000")),
                ("transfer_wait_s", ParamValue::Int(n)) if (1..=300).contains(n) => p.transfer_wait_s = *n as u64,
                ("transfer_wait_s", _) => return Err(bad("an integer from 1 to 300")),
                ("transfer_bridge", ParamValue::Bool(b)) => p.transfer_bridge = *b,
                ("transfer_bridge", _) => return Err(bad("true or false")),
                ("turn_complete_ms", ParamValue::Int(n)) if (100..=2000).contains(n) => p.turn_complete_ms = *n as u32,
                ("turn_complete_ms", _) => return Err(bad("an integer from 100 to 2000")),
                ("turn_incomplete_ms", ParamValue::Int(n)) if (200..=5000).contains(n) => {
                    p.turn_incomplete_ms = *n as u32
                }
                ("turn_incomplete_ms", _) => return Err(bad("an integer from 200 to 5000")),
                _ => return Err((field, "unknown parameter for the agent handler".into())),
            }
        }
        if p.domain.as_os_str().is_empty() {
            return Err((
                "params.domain".into(),
                "the agent needs a domain pack (e.g. domains/demo-bank)".into(),
            ));
        }
        DomainPack::load(&p.domain).map_err(|e| ("params.domain".to_string(), e.to_string()))?;
        Ok(p)
    }
}

/// A prepared agent route: the pack's engine and the shared speech engines.
pub struct AgentRoute {
    params: AgentParams,
    agent: Arc<Agent>,
    tts: TtsEngine,
    asr: Arc<AsrEngine>,
    clock: MediaClock,
    media: MediaConfig,
    shutdown: CancellationToken,
    metrics: AgentMetrics,
    dialer: Dialer,
    /// How long this route's answers take (an early hold line).
    pace: Arc<ReplyPace>,
}

/// One call counted into the engines' crowd counters (see
/// `AsrPool::crowd`) for as long as it lives.
struct Crowd(Vec<Arc<AtomicUsize>>);

impl Crowd {
    fn join(counters: Vec<Arc<AtomicUsize>>) -> Crowd {
        for c in &counters {
            c.fetch_add(1, Ordering::Relaxed);
        }
        Crowd(counters)
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        for c in &self.0 {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What every agent route shares: the speech engines, the media clock and
/// settings, the shutdown signal and the turn metrics.
#[derive(Clone)]
pub struct AgentShared {
    /// The language model.
    pub llm: Arc<dyn voxline_llm::ChatModel>,
    /// The voice.
    pub tts: TtsEngine,
    /// The recogniser.
    pub asr: Arc<AsrEngine>,
    /// The media clock.
    pub clock: MediaClock,
    /// `[media]`.
    pub media: MediaConfig,
    /// Server shutdown.
    pub shutdown: CancellationToken,
    /// Turn figures for `/metrics`.
    pub metrics: AgentMetrics,
    /// Places the agent's own calls (a transfer when REFER fails).
    pub dialer: Dialer,
}

impl AgentRoute {
    /// Loads the pack and builds its engine.
    pub fn new(params: AgentParams, shared: AgentShared) -> anyhow::Result<AgentRoute> {
        let pack = Arc::new(DomainPack::load(&params.domain)?);
        Ok(AgentRoute {
            agent: Arc::new(Agent::new(pack, shared.llm)),
            params,
            tts: shared.tts,
            asr: shared.asr,
            clock: shared.clock,
            media: shared.media,
            shutdown: shared.shutdown,
            metrics: shared.metrics,
            dialer: shared.dialer,
            pace: Arc::new(ReplyPace::default()),
        })
    }

    /// Warms the model with the pack's prompt and pins the fixed lines' audio
    /// (persona, rules, the tools' prompts and lines, the flow's steps).
    pub async fn prepare(&self) -> anyhow::Result<()> {
        self.agent.warm().await?;
        let pack = self.agent.pack();
        let mut lines = vec![
            pack.persona.greeting.clone(),
            pack.persona.goodbye.clone(),
            pack.persona.timeouts.reprompt.clone(),
            pack.persona.timeouts.hold.clone(),
        ];
        lines.extend(pack.rules.mandatory.after_greeting.iter().cloned());
        lines.push(pack.rules.domain.decline.clone());
        lines.push(pack.rules.domain.unknown.clone());
        lines.push(pack.rules.escalation.say.clone());
        lines.push(pack.rules.escalation.failed.clone());
        // The tools' and the flow's own words, where no value is filled in.
        for tool in &pack.tools {
            lines.extend(tool.say_before.iter().chain(&tool.say_error).cloned());
            lines.extend(tool.args.values().map(|a| a.prompt.clone()));
        }
        for step in pack.flow.iter().flat_map(|f| &f.steps) {
            lines.extend(step.say.iter().chain(&step.reask).cloned());
        }
        for l in lines.iter().filter(|l| !l.contains('{') && !l.trim().is_empty()) {
            self.tts.pin(l).await?;
        }
        Ok(())
    }

    /// Runs one call to its end and completes its record.
    pub async fn run(&self, call: InboundCall, route: &RouteConfig, records: &Records) {
        let record_id = records.inbound_started(&call.info, route).await;
        let span = tracing::info_span!("agent", domain = %self.params.domain.display());
        let outcome = self.converse(call, records, &record_id).instrument(span).await;
        finish_call(records, &record_id, outcome).await;
    }

    async fn converse(&self, mut call: InboundCall, records: &Records, record_id: &str) -> Outcome {
        // While this call lasts, the engines know the CPU is shared.
        let _crowd = Crowd::join(vec![self.asr.pool().crowd(), self.tts.crowd()]);
        let record = self.params.record.unwrap_or(self.media.record);
        let Answered { rtp, recorder } =
            match answer_with_media(&mut call, &self.media, record, 0, records, record_id).await {
                Ok(a) => a,
                Err(outcome) => return outcome,
            };
        let port = match MediaPort::open(&rtp) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "media port unavailable: the agent cannot hear this call");
                call.hangup().await.ok();
                return Outcome::answered(local_end("error"), &rtp, Some(e.to_string()));
            }
        };
        let asr = self.asr.clone();
        let vocabulary = self.agent.pack().persona.asr_prompt();
        let recognizer = tokio::task::spawn_blocking(move || asr.recognizer(vocabulary.as_deref())).await;
        let mut recognizer = match recognizer {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                warn!(error = %e, "speech recognition unavailable: hanging up");
                call.hangup().await.ok();
                return Outcome::answered(local_end("error"), &rtp, Some(e.to_string()));
            }
            Err(e) => {
                call.hangup().await.ok();
                return Outcome::answered(local_end("error"), &rtp, Some(e.to_string()));
            }
        };
        let media = RunningMedia::start(&rtp, &self.clock, recorder);
        rtp.set_media_timeout(Duration::from_secs(self.media.timeout_secs));
        let services = BridgeServices {
            records: records.clone(),
            dialer: self.dialer.clone(),
            media: self.media.clone(),
            clock: self.clock.clone(),
            shutdown: self.shutdown.clone(),
        };
        let mut leg = SipLeg::new(call, rtp.clone(), port, services);
        let persona = &self.agent.pack().persona;
        let session = VoiceSession {
            agent: self.agent.clone(),
            voice: Arc::new(self.tts.clone()),
            pace: self.pace.clone(),
            config: VoiceConfig {
                barge_in_ms: self.params.barge_in_ms,
                turn_complete_ms: self.params.turn_complete_ms,
                turn_incomplete_ms: self.params.turn_incomplete_ms,
                transfer_wait: Duration::from_secs(self.params.transfer_wait_s),
                transfer_bridge: self.params.transfer_bridge,
                max_call: Duration::from_secs(self.params.max_seconds.unwrap_or(persona.timeouts.max_call_s)),
            },
            sink: Arc::new(StoreSink {
                records: records.clone(),
                record_id: record_id.to_string(),
            }),
            observer: Arc::new(self.metrics.clone()),
            shutdown: self.shutdown.clone(),
        };
        let end = session.run(&mut leg, &mut recognizer).await;
        media.stop().await;
        Outcome::answered(end_reason(end.end), &rtp, end.detail)
    }
}

/// The session's records into the call store, under the call's record.
struct StoreSink {
    records: Records,
    record_id: String,
}

#[async_trait::async_trait]
impl SessionSink for StoreSink {
    async fn transcript_line(&self, line: TranscriptLine) {
        self.records.transcript_line(&self.record_id, &line).await;
    }

    async fn flow_step(&self, step: FlowStep) {
        self.records.flow_step(&self.record_id, &step).await;
    }

    async fn agent_turn(&self, turn: AgentTurn) {
        self.records.agent_turn(&self.record_id, &turn).await;
    }
}
