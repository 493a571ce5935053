//! The engines the routes of one process share, loaded once: the media
//! clock, the recogniser, the language model and the voice; and an agent
//! route built on them (for `voxline serve` and for `voxline call --agent`).

use crate::asr_engine::AsrEngine;
use crate::config::routes::AgentParams;
use crate::config::Config;
use crate::handlers::agent_metrics::AgentMetrics;
use crate::handlers::agent_route::{AgentRoute, AgentShared};
use crate::handlers::live::LiveCalls;
use crate::handlers::pack_reload::{load_pack, PackSignature};
use crate::leg::bridge::Dialer;
use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use voxline_sip::RouteConfig;

/// A language model's file and chat template.
type ModelKey = (PathBuf, Option<PathBuf>);

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
    /// The `[[llm.server]]` pool in front of the model, when servers are named.
    pub pool: Option<voxline_llm::InferencePool>,
    /// Language models by file and chat template: the server's own, and
    /// those packs name (`persona.toml` `model`), each loaded once.
    models: tokio::sync::Mutex<HashMap<ModelKey, Arc<dyn voxline_llm::ChatModel>>>,
    /// Voices by file: the server's own, and those packs name (`voice`).
    voices: tokio::sync::Mutex<HashMap<PathBuf, voxline_tts::TtsEngine>>,
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
        let (mut models, mut voices) = (HashMap::new(), HashMap::new());
        let mut pool = None;
        let speech = if talk {
            let key = (cfg.llm.model_path(), cfg.llm.chat_template.clone());
            let local = load_model(cfg, &key.0, key.1.clone(), asr.as_deref()).await?;
            pool = with_servers(cfg, local.clone()).await?;
            let llm = pool
                .clone()
                .map_or(local, |p| Arc::new(p) as Arc<dyn voxline_llm::ChatModel>);
            let tts = start_voice(cfg, cfg.tts.voice_path()).await?;
            models.insert(key, llm.clone());
            voices.insert(cfg.tts.voice_path(), tts.clone());
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
            pool,
            models: tokio::sync::Mutex::new(models),
            voices: tokio::sync::Mutex::new(voices),
        })
    }

    /// The voice a pack names (a Piper `.onnx` under the model cache, or a
    /// path): the server's own when it is the same file, else started once.
    async fn pack_voice(&self, cfg: &Config, voice: &str) -> anyhow::Result<voxline_tts::TtsEngine> {
        let path = voxline_models::models_dir().join(voice);
        let mut voices = self.voices.lock().await;
        if let Some(v) = voices.get(&path) {
            return Ok(v.clone());
        }
        let tts = start_voice(cfg, path.clone())
            .await
            .with_context(|| format!("the pack's voice {}", path.display()))?;
        tracing::info!(voice = %path.display(), "a pack's own voice loaded");
        voices.insert(path, tts.clone());
        Ok(tts)
    }

    /// The model a pack names as its own: the server's when it is the same
    /// file and template, else loaded once on the `[llm]` engine settings.
    async fn pack_model(
        &self,
        cfg: &Config,
        model: &Path,
        chat_template: Option<PathBuf>,
    ) -> anyhow::Result<Arc<dyn voxline_llm::ChatModel>> {
        let key = (model.to_path_buf(), chat_template);
        let mut models = self.models.lock().await;
        if let Some(m) = models.get(&key) {
            return Ok(m.clone());
        }
        let llm = load_model(cfg, model, key.1.clone(), self.asr.as_deref())
            .await
            .with_context(|| format!("the pack's own model {}", model.display()))?;
        tracing::info!(model = %model.display(), "a pack's own language model loaded");
        models.insert(key, llm.clone());
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
        live: LiveCalls,
    ) -> anyhow::Result<AgentRoute> {
        let (Some((llm, tts)), Some(asr)) = (&self.speech, &self.asr) else {
            anyhow::bail!("route {}: the speech engines were not loaded", route.name);
        };
        let params = AgentParams::parse(&route.params, &cfg.base_dir)
            .map_err(|(f, why)| anyhow::anyhow!("route {}: {f}: {why}", route.name))?;
        // Reading and embedding the knowledge takes ~1 s: off the runtime.
        let (dir, embedder) = (params.domain.clone(), self.embedder.clone());
        let (signature, pack) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let signature = PackSignature::of(&dir).with_context(|| format!("reading {}", dir.display()))?;
            Ok((signature, load_pack(&dir, embedder)?))
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
            signature,
            AgentShared {
                llm,
                tts,
                asr: asr.clone(),
                clock: self.clock.clone(),
                media: cfg.media.clone(),
                shutdown,
                metrics,
                dialer,
                live,
                embedder: self.embedder.clone(),
            },
        )?;
        agent.prepare().await?;
        Ok(agent)
    }
}

/// The `[[llm.server]]` pool in front of the local engine, when servers
/// are named.
async fn with_servers(
    cfg: &Config,
    local: Arc<dyn voxline_llm::ChatModel>,
) -> anyhow::Result<Option<voxline_llm::InferencePool>> {
    if cfg.llm.servers.is_empty() {
        return Ok(None);
    }
    let pool = voxline_llm::InferencePool::start(cfg.llm.pool_servers()?, local, cfg.llm.pool_settings()).await?;
    for s in pool.status() {
        tracing::info!(server = %s.url, healthy = s.healthy, "language model server in the pool");
    }
    Ok(Some(pool))
}

/// A GGUF on the `[llm]` engine settings; its read-ahead prompts give way
/// to the recogniser's finals.
async fn load_model(
    cfg: &Config,
    model: &Path,
    chat_template: Option<PathBuf>,
    asr: Option<&AsrEngine>,
) -> anyhow::Result<Arc<dyn voxline_llm::ChatModel>> {
    let engine = cfg.llm.engine()?;
    let started = std::time::Instant::now();
    let opts = voxline_llm::LocalOptions {
        chat_template,
        threads: cfg.llm.threads,
        yield_to: asr.map(|a| a.pool().urgent()),
        max_waiting: cfg.llm.max_waiting,
    };
    let llm = voxline_llm::load_local(engine, model, opts).await?;
    tracing::info!(
        %engine,
        model = %model.display(),
        took_ms = started.elapsed().as_millis() as u64,
        "language model loaded"
    );
    Ok(llm)
}

/// A Piper voice started with the `[tts]` settings.
async fn start_voice(cfg: &Config, voice: PathBuf) -> anyhow::Result<voxline_tts::TtsEngine> {
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
    Ok(tokio::task::spawn_blocking(move || voxline_tts::TtsEngine::start(&runtime, &voice, tts_cfg)).await??)
}
