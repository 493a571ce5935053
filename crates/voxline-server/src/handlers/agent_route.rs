//! The `agent` route: a domain agent on the call. The route loads its
//! pack, warms the model and pins the fixed lines' audio; each inbound call
//! is answered with media (an outbound one placed and answered) and made a
//! SIP leg (`crate::leg`), a browser's call a WebRTC leg ([`browser`]); the
//! leg is handed to the voice session of `voxline_agent::voice`, which holds
//! the conversation (turn-taking, barge-in, the hold line, digits,
//! transfers), the same on either. Here only the
//! server's side of it: the call record, the transcript and turns into the
//! store (a [`SessionSink`]), the turn figures into `/metrics`.

pub mod browser;

use crate::asr_engine::AsrEngine;
use crate::config::routes::AgentParams;
use crate::config::MediaConfig;
use crate::handlers::agent_metrics::AgentMetrics;
use crate::handlers::answering::{self, Answering, Who};
use crate::handlers::live::{LiveCall, LiveCalls, LiveFeed, LiveGuard};
use crate::handlers::pack_reload::{load_pack, PackSignature};
use crate::leg::bridge::Dialer;
use crate::leg::call_media::{answer_with_media, finish_call, local_end, place_with_media, Answered, Outcome};
use crate::leg::sip_leg::{BridgeServices, SipLeg};
use crate::leg::{end_reason, RunningMedia};
use crate::records::{new_call_id, new_record_id, OutboundStart, Records};
use anyhow::Context;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{warn, Instrument};
use voxline_agent::voice::{ReplyPace, SessionSink, VoiceConfig, VoiceSession, OPERATOR};
use voxline_agent::{Agent, DomainPack};
use voxline_campaign::amd::MachineAction;
use voxline_media::leg::Direction;
use voxline_media::CallLeg;
use voxline_media::LegEnd;
use voxline_media::{CallRecorder, MediaClock, RtpSession};
use voxline_sip::{InboundCall, PlaceCall, RouteConfig, SipEndpoint};
use voxline_store::{AgentTurn, FlowStep, ToolUse, TranscriptLine};
use voxline_tts::TtsEngine;

/// An outbound call for an agent route to place.
#[derive(Debug, Clone, Default)]
pub struct CallOut {
    /// `sip:user@host[:port]`, or a number with a trunk.
    pub target: String,
    /// From URI (else the trunk's caller-ID).
    pub from: Option<String>,
    /// The trunk it leaves by.
    pub trunk: Option<String>,
    /// CANCEL after this long without an answer (else the endpoint's default).
    pub ring_timeout: Option<Duration>,
    /// The contact's variables (a campaign row's columns), in the leg's facts.
    pub variables: BTreeMap<String, String>,
    /// The SIP Call-ID to use (a campaign writes it with the attempt first).
    pub call_id: Option<String>,
    /// Detect an answering machine first, and what to do on one.
    pub answering: Option<Answering>,
    /// Waited on right before the INVITE leaves (a campaign's rate).
    pub pace: Option<Arc<voxline_campaign::dialer::Pacer>>,
}

/// How an agent's outbound call ended.
#[derive(Debug, Clone)]
pub struct CallOutEnd {
    /// Its SIP Call-ID (its record's `call_id`).
    pub call_id: String,
    /// It was answered.
    pub answered: bool,
    /// Why it ended (`bye`, `busy`, `no_answer`, `max_duration`...).
    pub reason: String,
    /// Who ended it (`callee`, `voxline`).
    pub by: &'static str,
    /// The final SIP status of a call that did not connect.
    pub status: Option<u16>,
    /// The conversation's outcome (a flow step's disposition, `opted_out`).
    pub outcome: Option<String>,
}

/// The pack a route serves now, with what its calls need of it.
struct LoadedPack {
    agent: Arc<Agent>,
    /// The pack's scorecard (`qa.toml`): answered calls are queued for
    /// quality inspection when they end.
    scorecard: Option<std::path::PathBuf>,
    /// Its files when it was read.
    signature: PackSignature,
    /// When it was loaded (ms since the epoch).
    loaded_at_ms: i64,
}

/// A route's pack as `GET /api/packs` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PackStatus {
    /// The pack's folder.
    pub dir: String,
    /// Files in it.
    pub files: usize,
    /// When the serving pack was loaded (ms since the epoch).
    pub loaded_at_ms: i64,
    /// Times it was reloaded since the start.
    pub reloads: u64,
    /// Its knowledge sentences.
    pub sentences: usize,
    /// Its curated answers.
    pub curated: usize,
    /// Why the last reload was refused, while the files stay as they are.
    pub refused: Option<String>,
}

/// Reloads so far, and the files and error of the last refused one.
#[derive(Default)]
struct ReloadState {
    reloads: u64,
    refused: Option<(PackSignature, String)>,
}

/// A prepared agent route: the pack's engine and the shared speech engines.
pub struct AgentRoute {
    params: AgentParams,
    loaded: ArcSwap<LoadedPack>,
    /// The model the pack's agent talks on (the pack's own, or the server's).
    llm: Arc<dyn voxline_llm::ChatModel>,
    /// The sentence-embedding model a reloaded pack is embedded with.
    embedder: Option<Arc<voxline_llm::Embedder>>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    reload_state: std::sync::Mutex<ReloadState>,
    tts: TtsEngine,
    asr: Arc<AsrEngine>,
    clock: MediaClock,
    media: MediaConfig,
    shutdown: CancellationToken,
    metrics: AgentMetrics,
    dialer: Dialer,
    /// How long this route's answers take (an early hold line).
    pace: Arc<ReplyPace>,
    /// The node's calls up, each with its hang-up signal.
    live: LiveCalls,
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
    /// The node's calls up (the API lists and hangs them up).
    pub live: LiveCalls,
    /// The sentence-embedding model, when `[llm] embedding` is on.
    pub embedder: Option<Arc<voxline_llm::Embedder>>,
}

impl AgentRoute {
    /// Builds the engine of `pack` (loaded from `params.domain`).
    /// Its scorecard, when the pack has one, is checked here (a broken
    /// one stops the start with the file, item and field).
    /// `signature`: its files as they were before it was read.
    pub fn new(
        params: AgentParams,
        pack: Arc<DomainPack>,
        signature: PackSignature,
        shared: AgentShared,
    ) -> anyhow::Result<AgentRoute> {
        let scorecard = route_scorecard(&params, &pack)?;
        Ok(AgentRoute {
            loaded: ArcSwap::from_pointee(LoadedPack {
                scorecard,
                agent: agent_for(&params, pack, shared.llm.clone())?,
                signature,
                loaded_at_ms: now_ms(),
            }),
            llm: shared.llm,
            embedder: shared.embedder,
            reloading: tokio::sync::Mutex::new(()),
            reload_state: std::sync::Mutex::new(ReloadState::default()),
            params,
            tts: shared.tts,
            asr: shared.asr,
            clock: shared.clock,
            media: shared.media,
            shutdown: shared.shutdown,
            metrics: shared.metrics,
            dialer: shared.dialer,
            pace: Arc::new(ReplyPace::default()),
            live: shared.live,
        })
    }

    /// Warms the model with the pack's prompt and pins the fixed lines' audio
    /// (persona, rules, the tools' prompts and lines, the flow's steps).
    pub async fn prepare(&self) -> anyhow::Result<()> {
        prepare_agent(&self.agent(), &self.tts).await
    }

    /// The agent of the pack serving now (a call keeps the one it started with).
    pub fn agent(&self) -> Arc<Agent> {
        self.loaded.load().agent.clone()
    }

    /// The pack's folder.
    pub fn pack_dir(&self) -> std::path::PathBuf {
        self.params.domain.clone()
    }

    /// Whether `signature` is the serving pack's files, or those of the
    /// last reload refused (not tried again until they change).
    pub fn is_current_or_refused(&self, signature: &PackSignature) -> bool {
        if self.loaded.load().signature == *signature {
            return true;
        }
        let state = self.reload_state.lock().unwrap_or_else(|p| p.into_inner());
        state.refused.as_ref().is_some_and(|(s, _)| s == signature)
    }

    /// The serving pack's state.
    pub fn pack_status(&self) -> PackStatus {
        let loaded = self.loaded.load();
        let pack = loaded.agent.pack();
        let state = self.reload_state.lock().unwrap_or_else(|p| p.into_inner());
        PackStatus {
            dir: pack.dir.display().to_string(),
            files: loaded.signature.files(),
            loaded_at_ms: loaded.loaded_at_ms,
            reloads: state.reloads,
            sentences: pack.knowledge.sentences().all.len(),
            curated: pack.curated.answers().len(),
            refused: state.refused.as_ref().map(|(_, why)| why.clone()),
        }
    }

    /// Loads the pack again from its folder and, when it loads and checks,
    /// serves it from the next call on (model warmed, fixed lines pinned
    /// first); else the error (the file, field and why) is logged, kept for
    /// [`pack_status`](Self::pack_status) and returned, and the old pack
    /// serves on. A pack's own model, chat template or voice is loaded at
    /// start-up only: a change to them is refused.
    pub async fn reload(&self, route: &str) -> anyhow::Result<PackStatus> {
        let _one = self.reloading.lock().await;
        let started = std::time::Instant::now();
        let dir = self.pack_dir();
        let d = dir.clone();
        let signature = tokio::task::spawn_blocking(move || PackSignature::of(&d))
            .await?
            .with_context(|| format!("reading the pack's folder {}", dir.display()))?;
        match self.load_again(&dir).await {
            Ok((agent, scorecard)) => {
                let (sentences, curated) = (
                    agent.pack().knowledge.sentences().all.len(),
                    agent.pack().curated.answers().len(),
                );
                self.loaded.store(Arc::new(LoadedPack {
                    agent,
                    scorecard,
                    signature,
                    loaded_at_ms: now_ms(),
                }));
                {
                    let mut state = self.reload_state.lock().unwrap_or_else(|p| p.into_inner());
                    state.reloads += 1;
                    state.refused = None;
                }
                self.metrics.pack_reloads.inc();
                tracing::info!(
                    route,
                    pack = %dir.display(),
                    sentences,
                    curated,
                    ms = started.elapsed().as_millis() as u64,
                    "pack reloaded: new calls get it"
                );
                Ok(self.pack_status())
            }
            Err(e) => {
                let why = format!("{e:#}");
                tracing::warn!(route, pack = %dir.display(), error = %why, "pack not reloaded: the loaded one keeps serving");
                self.metrics.pack_reloads_refused.inc();
                self.reload_state.lock().unwrap_or_else(|p| p.into_inner()).refused = Some((signature, why));
                Err(e)
            }
        }
    }

    /// The pack in `dir` loaded, checked and prepared as a new agent.
    async fn load_again(&self, dir: &std::path::Path) -> anyhow::Result<(Arc<Agent>, Option<std::path::PathBuf>)> {
        let (d, embedder) = (dir.to_path_buf(), self.embedder.clone());
        let pack = tokio::task::spawn_blocking(move || load_pack(&d, embedder)).await??;
        let serving = self.agent();
        let (old, new) = (&serving.pack().persona, &pack.persona);
        if old.model != new.model || old.chat_template != new.chat_template || old.voice != new.voice {
            anyhow::bail!(
                "{}: model, chat_template or voice changed: a pack's own engines are loaded at start-up only (restart to use them)",
                dir.join("persona.toml").display()
            );
        }
        let pack = Arc::new(pack);
        let scorecard = route_scorecard(&self.params, &pack)?;
        let agent = agent_for(&self.params, pack, self.llm.clone())?;
        prepare_agent(&agent, &self.tts).await?;
        Ok((agent, scorecard))
    }
}

/// The route's agent on `pack`: the pack's own, or on a training route the
/// bot playing the scenario's customer.
fn agent_for(
    params: &AgentParams,
    pack: Arc<DomainPack>,
    llm: Arc<dyn voxline_llm::ChatModel>,
) -> anyhow::Result<Arc<Agent>> {
    let Some(file) = params.scenario_file() else {
        return Ok(Arc::new(Agent::new(pack, llm)));
    };
    let scenario = voxline_analysis::training::Scenario::load(&file)?;
    tracing::info!(scenario = %scenario.name, "a training route: the bot plays the scenario's customer");
    Ok(Arc::new(Agent::customer(pack, llm, scenario.customer.script())))
}

/// The scorecard answered calls are queued with: the pack's, but not on a
/// training route (its scorecard judges the trainee, not the bot).
fn route_scorecard(params: &AgentParams, pack: &DomainPack) -> anyhow::Result<Option<std::path::PathBuf>> {
    if params.training.is_some() {
        return Ok(None);
    }
    crate::analysis::pack_scorecard(&pack.dir)
}

/// Warms the model with `agent`'s prompt and pins the fixed lines' audio
/// (persona, rules, the tools' prompts and lines, the flow's steps).
async fn prepare_agent(agent: &Agent, tts: &TtsEngine) -> anyhow::Result<()> {
    agent.warm().await?;
    let pack = agent.pack();
    let mut lines = vec![
        pack.persona.greeting.clone(),
        pack.persona.goodbye.clone(),
        pack.persona.timeouts.reprompt.clone(),
        pack.persona.timeouts.hold.clone(),
        pack.persona.timeouts.hold_again.clone(),
        pack.persona.timeouts.fault.clone(),
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
    // A training bot's customer lines.
    if let Some(c) = agent.customer_script() {
        lines.extend([c.opening.clone(), c.satisfied_line.clone(), c.angry_line.clone()]);
        lines.extend(c.objections.iter().map(|(line, _)| line.clone()));
    }
    for l in lines.iter().filter(|l| !l.contains('{') && !l.trim().is_empty()) {
        tts.pin(l).await?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl AgentRoute {
    /// The longest a call on this route lasts.
    pub fn max_call(&self) -> Duration {
        Duration::from_secs(
            self.params
                .max_seconds
                .unwrap_or(self.agent().pack().persona.timeouts.max_call_s),
        )
    }

    /// Runs one inbound call to its end and completes its record.
    pub async fn run(&self, call: InboundCall, route: &RouteConfig, records: &Records) {
        let record_id = records.inbound_started(&call.info, route).await;
        // On a training number, the trainee is the caller.
        let caller = dnc_number(&call.info.from);
        let live = self.live.join(
            LiveCall::new(&call.info.call_id, "inbound", &route.name, &caller, "sip"),
            &self.shutdown,
        );
        let span = tracing::info_span!("agent", domain = %self.params.domain.display());
        let outcome = self.answer(call, records, &record_id, &live).instrument(span).await;
        let answered = outcome.answered;
        finish_call(records, &record_id, outcome, Direction::Inbound).await;
        self.queue_analysis(records, &record_id, answered, &caller).await;
    }

    /// Queues a call the agent talked on (`talked`) for quality
    /// inspection, when the pack has a scorecard; on a training route, for
    /// the report of `trainee` instead.
    async fn queue_analysis(&self, records: &Records, record_id: &str, talked: bool, trainee: &str) {
        if !talked {
            return;
        }
        if let (Some(name), Some(file)) = (&self.params.training, self.params.scenario_file()) {
            let trainee = if trainee.trim().is_empty() {
                "unknown"
            } else {
                trainee.trim()
            };
            records.queue_training(record_id, trainee, name, &file).await;
            return;
        }
        let loaded = self.loaded.load();
        if let Some(card) = loaded.scorecard.as_deref() {
            records.queue_analysis(record_id, card).await;
        }
    }

    /// Places an outbound call for route `route` and, once answered, talks
    /// on it to its end (the agent speaks first); completes its record.
    pub async fn call_out(&self, endpoint: &SipEndpoint, route: &str, out: CallOut, records: &Records) -> CallOutEnd {
        let record_id = new_record_id();
        let call_id = out.call_id.clone().unwrap_or_else(new_call_id);
        // On a training call the bot places, the trainee is the one called
        // (or the name given as the `trainee` variable).
        let trainee = out
            .variables
            .get("trainee")
            .cloned()
            .unwrap_or_else(|| dnc_number(&out.target));
        records
            .outbound_started(&OutboundStart {
                id: &record_id,
                call_id: &call_id,
                from: out.from.as_deref().unwrap_or_default(),
                to: &out.target,
                trunk: out.trunk.as_deref(),
                route: Some(route),
                handler: "agent",
            })
            .await;
        let live = self.live.join(
            LiveCall::new(&call_id, "outbound", route, &dnc_number(&out.target), "sip"),
            &self.shutdown,
        );
        let span = tracing::info_span!("agent", call_id = %call_id, domain = %self.params.domain.display());
        let place = PlaceCall {
            target: out.target.clone(),
            from: out.from.clone(),
            trunk: out.trunk.clone(),
            media: SocketAddr::from(([0, 0, 0, 0], 0)),
            ring_timeout: out.ring_timeout,
            call_id: Some(call_id.clone()),
            abandon: Some(live.hangup.clone()),
        };
        let outcome = async {
            if let Some(pacer) = &out.pace {
                pacer.wait().await;
            }
            let record = self.params.record.unwrap_or(self.media.record);
            let (call, Answered { rtp, recorder }) =
                match place_with_media(endpoint, place, &self.media, record, records, &record_id).await {
                    Ok(a) => a,
                    Err(outcome) => return outcome,
                };
            let services = self.services(records);
            let mut leg = match SipLeg::outbound(call, &out.target, out.variables, rtp.clone(), services) {
                Ok(leg) => leg,
                Err(why) => return no_media_port(&rtp, why),
            };
            let sink = StoreSink::new(records, &record_id, Some(dnc_number(&out.target)), live.feed());
            self.talk(&mut leg, rtp, recorder, sink, out.answering, live.hangup.clone())
                .await
        }
        .instrument(span)
        .await;
        let mut outcome = outcome;
        if !outcome.answered && live.hung_up(&self.shutdown) {
            // CANCELled while ringing by an operator, not by the shutdown.
            outcome.end.reason = OPERATOR.into();
        }
        drop(live);
        let end = CallOutEnd {
            call_id,
            answered: outcome.answered,
            reason: outcome.end.reason.clone(),
            by: outcome.end.by.outbound_name(),
            status: outcome.end.status,
            outcome: outcome.conversation.clone(),
        };
        finish_call(records, &record_id, outcome, Direction::Outbound).await;
        // A machine's answer never reached the conversation: nothing to score.
        let machine = matches!(end.outcome.as_deref(), Some("machine" | "voicemail_left"));
        self.queue_analysis(records, &record_id, end.answered && !machine, &trainee)
            .await;
        end
    }

    /// Answers an inbound call with media and talks on it.
    async fn answer(&self, mut call: InboundCall, records: &Records, record_id: &str, live: &LiveGuard) -> Outcome {
        let record = self.params.record.unwrap_or(self.media.record);
        let Answered { rtp, recorder } =
            match answer_with_media(&mut call, &self.media, record, 0, records, record_id).await {
                Ok(a) => a,
                Err(outcome) => return outcome,
            };
        let caller = dnc_number(&call.info.from);
        let mut leg = match SipLeg::inbound(call, rtp.clone(), self.services(records)) {
            Ok(leg) => leg,
            Err(why) => return no_media_port(&rtp, why),
        };
        self.talk(
            &mut leg,
            rtp,
            recorder,
            StoreSink::new(records, record_id, Some(caller), live.feed()),
            None,
            live.hangup.clone(),
        )
        .await
    }

    /// What a leg needs to bridge a colleague's call.
    fn services(&self, records: &Records) -> BridgeServices {
        BridgeServices {
            records: records.clone(),
            dialer: self.dialer.clone(),
            media: self.media.clone(),
            clock: self.clock.clone(),
            shutdown: self.shutdown.clone(),
            trunk: self.params.transfer_trunk.clone(),
        }
    }

    /// A recogniser for one call, with the pack's vocabulary; `turns`: it
    /// hears the conversation's turns (with the audio end-of-turn model),
    /// not only who answered.
    async fn recognizer(&self, turns: bool) -> Result<voxline_asr::StreamingRecognizer, String> {
        let asr = self.asr.clone();
        let vocabulary = self.agent().pack().persona.asr_prompt();
        match tokio::task::spawn_blocking(move || asr.recognizer_hearing(vocabulary.as_deref(), turns)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The voice session on an answered leg, its media running on `rtp`
    /// (recorded into `recorder`), to the call's end; what it says and hears
    /// goes to the call's record through `sink`. With `answering`, who
    /// answered is found out first: a machine never reaches the session.
    /// `hangup` is an operator's hang-up.
    async fn talk<L: CallLeg>(
        &self,
        leg: &mut L,
        rtp: RtpSession,
        recorder: Option<CallRecorder>,
        sink: StoreSink,
        answering: Option<Answering>,
        hangup: CancellationToken,
    ) -> Outcome {
        // While this call lasts, the engines know the CPU is shared.
        let _crowd = Crowd::join(vec![self.asr.pool().crowd(), self.tts.crowd()]);
        let detecting = answering.as_ref().is_some_and(|a| a.action != MachineAction::Off);
        let mut recognizer = match self.recognizer(!detecting).await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "speech recognition unavailable: hanging up");
                leg.hangup().await.ok();
                return Outcome::answered(local_end("error"), &rtp, Some(e));
            }
        };
        let media = RunningMedia::start(&rtp, &self.clock, recorder);
        rtp.set_media_timeout(Duration::from_secs(self.media.timeout_secs));
        if let Some(a) = answering.filter(|a| a.action != MachineAction::Off) {
            let who = answering::detect(leg, &mut recognizer, &a, &sink.records, &sink.record_id, &self.tts).await;
            let (outcome, end) = match who {
                // The agent starts on a fresh recogniser: the greeting's
                // words are not a turn of the conversation.
                Who::Person => match self.recognizer(true).await {
                    Ok(r) => {
                        recognizer.close();
                        recognizer = r;
                        (None, None)
                    }
                    Err(e) => (None, Some((LegEnd::local("error"), Some(e)))),
                },
                Who::Machine(outcome, end) => (Some(outcome), Some((end, None))),
                Who::Ended(end) => (None, Some((end, None))),
            };
            if let Some((end, detail)) = end {
                if let Some(o) = outcome {
                    sink.records.outcome(&sink.record_id, o).await;
                }
                leg.hangup().await.ok();
                media.stop().await;
                let mut out = Outcome::answered(end_reason(end), &rtp, detail);
                out.conversation = outcome.map(str::to_string);
                return out;
            }
        }
        let agent = self.agent();
        let persona = &agent.pack().persona;
        let session = VoiceSession {
            agent: agent.clone(),
            voice: Arc::new(self.tts.clone()),
            pace: self.pace.clone(),
            config: VoiceConfig {
                barge_in_ms: self.params.barge_in_ms,
                turn_silences: self.params.turn_silences,
                transfer_wait: Duration::from_secs(self.params.transfer_wait_s),
                // The bridge dials only through a named trunk.
                transfer_bridge: self.params.transfer_bridge && self.params.transfer_trunk.is_some(),
                max_call: Duration::from_secs(self.params.max_seconds.unwrap_or(persona.timeouts.max_call_s)),
                doubt: self.asr.doubt(),
            },
            sink: Arc::new(sink),
            observer: Arc::new(self.metrics.clone()),
            shutdown: self.shutdown.clone(),
            hangup,
        };
        let end = session.run(leg, &mut recognizer).await;
        media.stop().await;
        let mut outcome = Outcome::answered(end_reason(end.end), &rtp, end.detail);
        outcome.conversation = end.outcome;
        outcome
    }
}

/// A call whose media port could not be opened (its leg hung it up).
fn no_media_port(rtp: &RtpSession, why: String) -> Outcome {
    warn!(error = %why, "media port unavailable: the agent cannot hear this call");
    Outcome::answered(local_end("error"), rtp, Some(why))
}

/// The number a do-not-call list keeps for a party: the user part of a
/// SIP URI (`sip:+14155552671@carrier` → `+14155552671`), else the text.
fn dnc_number(party: &str) -> String {
    let bare = party.trim().trim_start_matches('<').trim_end_matches('>');
    let bare = bare
        .strip_prefix("sip:")
        .or_else(|| bare.strip_prefix("sips:"))
        .or_else(|| bare.strip_prefix("tel:"))
        .unwrap_or(bare);
    bare.split(['@', ';', '>']).next().unwrap_or(bare).to_string()
}

/// The session's records into the call store, under the call's record;
/// each transcript line to the consoles watching live calls too (and, on a
/// browser call, to its page).
struct StoreSink {
    records: Records,
    record_id: String,
    /// The other party's number, for the do-not-call list when they opt out.
    party: Option<String>,
    /// The live call's transcript, pushed to consoles.
    live: LiveFeed,
    /// The page of a browser call.
    page: Option<browser::PageFeed>,
}

impl StoreSink {
    fn new(records: &Records, record_id: &str, party: Option<String>, live: LiveFeed) -> StoreSink {
        StoreSink {
            records: records.clone(),
            record_id: record_id.to_string(),
            party,
            live,
            page: None,
        }
    }
}

#[async_trait::async_trait]
impl SessionSink for StoreSink {
    async fn transcript_line(&self, line: TranscriptLine) {
        if let Some(page) = &self.page {
            page.line(&line);
        }
        self.live.line(&line);
        self.records.transcript_line(&self.record_id, &line).await;
    }

    async fn flow_step(&self, step: FlowStep) {
        self.records.flow_step(&self.record_id, &step).await;
    }

    async fn tool_call(&self, tool: ToolUse) {
        self.records.tool_call(&self.record_id, &tool).await;
    }

    async fn agent_turn(&self, turn: AgentTurn) {
        self.records.agent_turn(&self.record_id, &turn).await;
    }

    async fn outcome(&self, outcome: &str) {
        self.records.outcome(&self.record_id, outcome).await;
        if outcome == voxline_agent::dialogue::OPTED_OUT {
            if let Some(number) = self.party.as_deref().filter(|n| !n.is_empty()) {
                self.records.do_not_call(number).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dnc_number;

    #[test]
    fn the_number_of_a_party_is_its_uri_s_user() {
        assert_eq!(dnc_number("+14155552671"), "+14155552671");
        assert_eq!(
            dnc_number("sip:+14155552671@carrier.example;user=phone"),
            "+14155552671"
        );
        assert_eq!(dnc_number("<sip:alice@127.0.0.1:5070>"), "alice");
        assert_eq!(dnc_number("tel:+442079460958"), "+442079460958");
    }
}
