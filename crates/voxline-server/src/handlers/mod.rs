//! Route handlers: what answers a routed call. `playback` (a greeting, a
//! recording of the caller, hang-up after N seconds or on BYE), `echo`
//! (the same, sending the caller's audio back through the MediaPort) and
//! `transcribe` (the same, recognising what the caller says into the call's
//! transcript) and `agent` (a domain agent talking with the caller).

pub mod agent_metrics;
pub mod agent_route;
pub mod answering;
pub mod engines;
pub mod live;
pub mod load_history;
pub mod pack_reload;
pub mod playback;

use crate::config::routes::{LISTENING, TALKING};
use crate::config::Config;
use crate::records::Records;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use voxline_sip::routing::Route;
use voxline_sip::{CallHandler, CallInfo, InboundCall};

/// Live counters exported by the HTTP API.
#[derive(Debug, Default)]
pub struct CallCounters {
    /// Calls up now.
    pub active: AtomicU64,
    /// Calls routed to a handler since start.
    pub total: AtomicU64,
    /// Calls refused after routing (404, 488, 503...).
    pub rejected: AtomicU64,
    /// The media clock's counters (late slots, skipped frames, longest slot).
    pub media_clock: Arc<voxline_media::clock::ClockStats>,
    /// The recognition pool's counters, when a route listens.
    pub asr: Option<Arc<voxline_asr::PoolStats>>,
    /// The agent routes' turn figures, when a route talks.
    pub agent: Option<agent_metrics::AgentMetrics>,
    /// The language model engine's counters, when a route talks on a local model.
    pub llm: Option<Arc<voxline_llm::EngineStats>>,
    /// The `[[llm.server]]` pool, when servers are named (its servers' state).
    pub llm_pool: Option<voxline_llm::InferencePool>,
    /// Latency and load over time (the console's chart).
    pub load: load_history::LoadHistory,
}

/// Dispatches routed calls to their handler.
pub struct Handlers {
    records: Records,
    playback: HashMap<String, Arc<playback::Playback>>,
    agents: HashMap<String, Arc<agent_route::AgentRoute>>,
    counters: Arc<CallCounters>,
    dialer: crate::leg::bridge::Dialer,
    live: live::LiveCalls,
    /// The agents' sentence-embedding model (the analyser shares it).
    embedder: Option<Arc<voxline_llm::Embedder>>,
    /// The `[llm]` model the agents use, when a route talks (the analyser
    /// may share it).
    llm: Option<Arc<dyn voxline_llm::ChatModel>>,
}

impl Handlers {
    /// The agents' sentence-embedding model, when one is loaded.
    pub fn embedder(&self) -> Option<Arc<voxline_llm::Embedder>> {
        self.embedder.clone()
    }

    /// The `[llm]` model the agents use, when a route talks.
    pub fn llm(&self) -> Option<Arc<dyn voxline_llm::ChatModel>> {
        self.llm.clone()
    }

    /// Prepares every route's handler (loads greetings, models and domain
    /// packs, warms the agents) from a validated config.
    pub async fn new(cfg: &Config, records: Records, shutdown: CancellationToken) -> anyhow::Result<Handlers> {
        let mut playback = HashMap::new();
        let dialer = crate::leg::bridge::Dialer::default();
        let live = live::LiveCalls::default();
        let listen = cfg.routes.iter().any(|r| LISTENING.contains(&r.handler.as_str()));
        let talking = cfg.routes.iter().any(|r| TALKING.contains(&r.handler.as_str()));
        let engines = engines::Engines::load(cfg, listen, talking).await?;
        let clock = engines.clock.clone();
        let asr = engines.asr.clone();
        let load = load_history::LoadHistory::default();
        let agent_metrics = talking.then(|| agent_metrics::AgentMetrics::feeding(load.clone()));
        let mut agents = HashMap::new();
        for r in cfg.routes.iter().filter(|r| r.handler == "agent") {
            let route = engines
                .agent_route(
                    cfg,
                    r,
                    agent_metrics.clone().unwrap_or_default(),
                    dialer.clone(),
                    shutdown.clone(),
                    live.clone(),
                )
                .await?;
            let route = Arc::new(route);
            // Its pack's files changed: loaded again for the next call.
            tokio::spawn(pack_reload::watch(route.clone(), r.name.clone(), shutdown.clone()));
            agents.insert(r.name.clone(), route);
        }
        for r in &cfg.routes {
            let mode = match r.handler.as_str() {
                "playback" => Some(playback::Mode::Playback),
                "echo" => Some(playback::Mode::Echo),
                "transcribe" => asr.clone().map(playback::Mode::Transcribe),
                _ => None,
            };
            if let Some(mode) = mode {
                let params = crate::config::routes::PlaybackParams::parse(&r.params, &cfg.base_dir)
                    .map_err(|(f, why)| anyhow::anyhow!("route {}: {f}: {why}", r.name))?;
                playback.insert(
                    r.name.clone(),
                    Arc::new(playback::Playback::new(
                        params,
                        mode,
                        clock.clone(),
                        cfg.media.clone(),
                        shutdown.clone(),
                    )?),
                );
            }
        }
        Ok(Handlers {
            records,
            playback,
            agents,
            dialer,
            live,
            embedder: engines.embedder.clone(),
            llm: engines.speech.as_ref().map(|(llm, _)| llm.clone()),
            counters: Arc::new(CallCounters {
                media_clock: clock.stats(),
                asr: asr.as_ref().map(|a| a.pool().stats_handle()),
                agent: agent_metrics,
                llm: engines.speech.as_ref().and_then(|(llm, _)| llm.engine_stats()),
                llm_pool: engines.pool.clone(),
                load,
                ..CallCounters::default()
            }),
        })
    }

    /// The live counters.
    pub fn counters(&self) -> Arc<CallCounters> {
        self.counters.clone()
    }

    /// The agent routes, by route name (campaigns place their calls with them).
    pub fn agents(&self) -> std::collections::HashMap<String, Arc<agent_route::AgentRoute>> {
        self.agents.clone()
    }

    /// The agent calls up on this node.
    pub fn live(&self) -> live::LiveCalls {
        self.live.clone()
    }

    /// The call-record writer.
    pub fn records(&self) -> Records {
        self.records.clone()
    }

    /// Gives the handlers the running SIP endpoint (for the calls they place).
    pub fn set_endpoint(&self, endpoint: Arc<voxline_sip::SipEndpoint>) {
        self.dialer.set(endpoint);
    }
}

#[async_trait::async_trait]
impl CallHandler for Handlers {
    async fn handle(&self, call: InboundCall, route: Arc<Route>) {
        self.counters.total.fetch_add(1, Ordering::Relaxed);
        self.counters.active.fetch_add(1, Ordering::Relaxed);
        match (
            self.playback.get(&route.config.name),
            self.agents.get(&route.config.name),
        ) {
            (Some(p), _) => p.run(call, &route.config, &self.records).await,
            (None, Some(a)) => a.run(call, &route.config, &self.records).await,
            (None, None) => {
                tracing::error!(route = %route.config.name, "route has no prepared handler");
            }
        }
        self.counters.active.fetch_sub(1, Ordering::Relaxed);
    }

    async fn rejected(&self, info: CallInfo, route: Option<Arc<Route>>, status: u16, reason: String) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        self.records
            .rejected(&info, route.as_deref().map(|r| &r.config), status, &reason)
            .await;
    }
}
