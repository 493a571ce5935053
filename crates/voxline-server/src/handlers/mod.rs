//! Route handlers: what answers a routed call. `playback` (a greeting, a
//! recording of the caller, hang-up after N seconds or on BYE), `echo`
//! (the same, sending the caller's audio back through the MediaPort) and
//! `transcribe` (the same, recognising what the caller says into the call's
//! transcript); the agent joins when the dialogue engine exists.

pub mod playback;

use crate::config::Config;
use crate::records::Records;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use voxline_sip::routing::Route;
use voxline_sip::{CallHandler, CallInfo, InboundCall, RouteConfig};

/// Handler names a route may use.
pub const HANDLERS: &[&str] = &["playback", "echo", "transcribe"];

/// Handlers that listen to the caller (they need the `[asr]` models).
pub const LISTENING: &[&str] = &["transcribe"];

/// Checks a route's handler name and parameters; errors are (field, reason).
pub fn validate_route(r: &RouteConfig, base: &Path) -> Result<(), (String, String)> {
    match r.handler.as_str() {
        "playback" | "echo" | "transcribe" => playback::PlaybackParams::parse(&r.params, base).map(|_| ()),
        other => Err((
            "handler".into(),
            format!("unknown handler {other:?} (known: {})", HANDLERS.join(", ")),
        )),
    }
}

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
}

/// Dispatches routed calls to their handler.
pub struct Handlers {
    records: Records,
    playback: HashMap<String, Arc<playback::Playback>>,
    counters: Arc<CallCounters>,
}

impl Handlers {
    /// Prepares every route's handler (loads greetings) from a validated config.
    pub fn new(cfg: &Config, records: Records, shutdown: CancellationToken) -> anyhow::Result<Handlers> {
        let mut playback = HashMap::new();
        // One media clock for every call of this server (a shard per core).
        let clock = voxline_media::MediaClock::per_core();
        // One recogniser (model + workers) for every listening route.
        let asr = if cfg.routes.iter().any(|r| LISTENING.contains(&r.handler.as_str())) {
            Some(Arc::new(crate::asr_engine::AsrEngine::start(&cfg.asr)?))
        } else {
            None
        };
        for r in &cfg.routes {
            let mode = match r.handler.as_str() {
                "playback" => Some(playback::Mode::Playback),
                "echo" => Some(playback::Mode::Echo),
                "transcribe" => asr.clone().map(playback::Mode::Transcribe),
                _ => None,
            };
            if let Some(mode) = mode {
                let params = playback::PlaybackParams::parse(&r.params, &cfg.base_dir)
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
            counters: Arc::new(CallCounters {
                media_clock: clock.stats(),
                asr: asr.as_ref().map(|a| a.pool().stats_handle()),
                ..CallCounters::default()
            }),
        })
    }

    /// The live counters.
    pub fn counters(&self) -> Arc<CallCounters> {
        self.counters.clone()
    }
}

#[async_trait::async_trait]
impl CallHandler for Handlers {
    async fn handle(&self, call: InboundCall, route: Arc<Route>) {
        self.counters.total.fetch_add(1, Ordering::Relaxed);
        self.counters.active.fetch_add(1, Ordering::Relaxed);
        match self.playback.get(&route.config.name) {
            Some(p) => p.run(call, &route.config, &self.records).await,
            None => {
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
