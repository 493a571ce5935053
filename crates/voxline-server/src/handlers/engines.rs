//! The engines the routes of one process share, loaded once: the media
//! clock, the recogniser, the language model and the voice; and an agent
//! route built on them (for `voxline serve` and for `voxline call --agent`).

use crate::asr_engine::AsrEngine;
use crate::config::routes::AgentParams;
use crate::config::Config;
use crate::handlers::agent_metrics::AgentMetrics;
use crate::handlers::agent_route::{AgentRoute, AgentShared};
use crate::leg::bridge::Dialer;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use voxline_agent::DomainPack;
use voxline_sip::RouteConfig;

/// The shared engines: what is not needed is not loaded.
pub struct Engines {
    /// One media clock for every call of this process (a shard per core).
    pub clock: voxline_media::MediaClock,
    /// The recogniser, when a route listens.
    pub asr: Option<Arc<AsrEngine>>,
    /// The language model and the voice, when a route talks.
    pub speech: Option<(Arc<dyn voxline_llm::ChatModel>, voxline_tts::TtsEngine)>,
    /// The sentence-embedding model, when a route talks and `[llm] embedding` is on.
    pub embedder: Option<Arc<voxline_llm::Embedder>>,
}

impl Engines {
    /// Loads the recogniser when `listen`, the model and voice when `talk`.
    pub async fn load(cfg: &Config, listen: bool, talk: bool) -> anyhow::Result<Engines> {
        let clock = voxline_media::MediaClock::per_core();
        let asr = if listen || talk {
            Some(Arc::new(AsrEngine::start(&cfg.asr)?))
        } else {
            None
        };
        let speech = if talk {
            let llm = voxline_llm::load_local(
                cfg.llm.engine()?,
                &cfg.llm.model_path(),
                cfg.llm.chat_template.clone(),
                cfg.llm.threads,
                // Read-ahead prompts give way to the recogniser's finals.
                asr.as_ref().map(|a| a.pool().urgent()),
            )
            .await?;
            let defaults = voxline_tts::TtsConfig::default();
            let tts_cfg = voxline_tts::TtsConfig {
                workers: cfg.tts.workers,
                threads_per_worker: match cfg.tts.threads {
                    0 => defaults.threads_per_worker,
                    n => n,
                },
                ..defaults
            };
            let runtime = cfg.asr.onnxruntime_path();
            let voice = cfg.tts.voice_path();
            let tts =
                tokio::task::spawn_blocking(move || voxline_tts::TtsEngine::start(&runtime, &voice, tts_cfg)).await??;
            Some((llm, tts))
        } else {
            None
        };
        let embedder = match cfg.llm.embedding_path().filter(|_| talk) {
            Some(dir) => Some(Arc::new(
                tokio::task::spawn_blocking(move || voxline_llm::Embedder::load(&dir)).await??,
            )),
            None => None,
        };
        Ok(Engines {
            clock,
            asr,
            speech,
            embedder,
        })
    }

    /// The agent route `route` on these engines, prepared (model warm, fixed
    /// lines' audio pinned). Fails when the engines were loaded without talking.
    pub async fn agent_route(
        &self,
        cfg: &Config,
        route: &RouteConfig,
        metrics: AgentMetrics,
        dialer: Dialer,
        shutdown: CancellationToken,
    ) -> anyhow::Result<AgentRoute> {
        let (Some((llm, tts)), Some(asr)) = (&self.speech, &self.asr) else {
            anyhow::bail!("route {}: the speech engines were not loaded", route.name);
        };
        let params = AgentParams::parse(&route.params, &cfg.base_dir)
            .map_err(|(f, why)| anyhow::anyhow!("route {}: {f}: {why}", route.name))?;
        // Reading and embedding the knowledge takes ~1 s: off the runtime.
        let (dir, embedder) = (params.domain.clone(), self.embedder.clone());
        let pack = tokio::task::spawn_blocking(move || {
            let pack = DomainPack::load(&dir)?;
            match embedder {
                Some(e) => pack.understand(e),
                None => Ok(pack),
            }
        })
        .await??;
        let agent = AgentRoute::new(
            params,
            Arc::new(pack),
            AgentShared {
                llm: llm.clone(),
                tts: tts.clone(),
                asr: asr.clone(),
                clock: self.clock.clone(),
                media: cfg.media.clone(),
                shutdown,
                metrics,
                dialer,
            },
        )?;
        agent.prepare().await?;
        Ok(agent)
    }
}
