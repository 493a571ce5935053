//! The engines the routes of one process share, loaded once: the media
//! clock, the recogniser, the language model and the voice; and an agent
//! route built on them (for `voxline serve` and for `voxline call --agent`).

use crate::asr_engine::AsrEngine;
use crate::config::routes::AgentParams;
use crate::config::Config;
use crate::handlers::agent_metrics::AgentMetrics;
use crate::handlers::agent_route::{AgentRoute, AgentShared};
use crate::leg::bridge::Dialer;
use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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
    /// Models that packs name as their own (`persona.toml` `model`), by
    /// file: loaded on the first route that names one, shared after.
    pack_models: tokio::sync::Mutex<HashMap<PathBuf, Arc<dyn voxline_llm::ChatModel>>>,
    /// Voices that packs name (`persona.toml` `voice`), by file, likewise.
    pack_voices: tokio::sync::Mutex<HashMap<PathBuf, voxline_tts::TtsEngine>>,
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
            let tts_cfg = Engines::tts_config(cfg);
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
            pack_models: tokio::sync::Mutex::new(HashMap::new()),
            pack_voices: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The synthesis settings of `[tts]`.
    fn tts_config(cfg: &Config) -> voxline_tts::TtsConfig {
        let defaults = voxline_tts::TtsConfig::default();
        voxline_tts::TtsConfig {
            workers: cfg.tts.workers,
            threads_per_worker: match cfg.tts.threads {
                0 => defaults.threads_per_worker,
                n => n,
            },
            ..defaults
        }
    }

    /// The voice a pack names (a Piper `.onnx` under the model cache, or a
    /// path), started once per file with the `[tts]` settings.
    async fn pack_voice(&self, cfg: &Config, voice: &str) -> anyhow::Result<voxline_tts::TtsEngine> {
        let path = voxline_models::models_dir().join(voice);
        let mut voices = self.pack_voices.lock().await;
        if let Some(v) = voices.get(&path) {
            return Ok(v.clone());
        }
        let (runtime, file, tts_cfg) = (cfg.asr.onnxruntime_path(), path.clone(), Engines::tts_config(cfg));
        let tts = tokio::task::spawn_blocking(move || voxline_tts::TtsEngine::start(&runtime, &file, tts_cfg))
            .await?
            .with_context(|| format!("the pack's voice {}", path.display()))?;
        tracing::info!(voice = %path.display(), "a pack's own voice loaded");
        voices.insert(path, tts.clone());
        Ok(tts)
    }

    /// The model a pack names as its own, loaded once per file on the
    /// server's engine settings (`[llm] engine`, `threads`).
    async fn pack_model(
        &self,
        cfg: &Config,
        model: &Path,
        chat_template: Option<PathBuf>,
    ) -> anyhow::Result<Arc<dyn voxline_llm::ChatModel>> {
        let mut models = self.pack_models.lock().await;
        if let Some(m) = models.get(model) {
            return Ok(m.clone());
        }
        let llm = voxline_llm::load_local(
            cfg.llm.engine()?,
            model,
            chat_template,
            cfg.llm.threads,
            self.asr.as_ref().map(|a| a.pool().urgent()),
        )
        .await
        .with_context(|| format!("the pack's own model {}", model.display()))?;
        tracing::info!(model = %model.display(), "a pack's own language model loaded");
        models.insert(model.to_path_buf(), llm.clone());
        Ok(llm)
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
        let llm = match &pack.persona.model {
            Some(own) => self.pack_model(cfg, own, pack.persona.chat_template.clone()).await?,
            None => llm.clone(),
        };
        let tts = match &pack.persona.voice {
            Some(voice) => self.pack_voice(cfg, voice).await?,
            None => tts.clone(),
        };
        let agent = AgentRoute::new(
            params,
            Arc::new(pack),
            AgentShared {
                llm,
                tts,
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
