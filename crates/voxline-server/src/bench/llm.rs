//! `voxline bench llm`: the local language model's time to first token
//! (cold: the ~300-token domain prompt not yet cached; warm: cached, only
//! the question prefilled) and generation speed on each local engine
//! (llama.cpp, mistralrs), side by side with llama.cpp as its own project
//! ships it to Python users (llama-cpp-python from PyPI) on the same GGUF,
//! prompt and questions in one run.

use anyhow::Context;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use voxline_llm::{ChatMessage, ChatModel, ChatRequest, LocalEngine, Role};

/// Arguments of `voxline bench llm`.
#[derive(clap::Args, Debug)]
pub struct BenchLlmArgs {
    /// A GGUF model (default: SmolLM2-135M-Instruct, Q4_1 from PyPI re-quantised to Q8_0).
    #[arg(long)]
    model: Option<PathBuf>,
    /// voxline's engines to measure (comma-separated; the first is compared).
    #[arg(long, value_delimiter = ',', default_value = "llama.cpp,mistralrs")]
    engines: Vec<LocalEngine>,
    /// The domain system prompt.
    #[arg(long, default_value = "load-tests/llm/domain-prompt.txt")]
    system: PathBuf,
    /// Caller questions, one per line (the first is asked cold).
    #[arg(long, default_value = "load-tests/llm/questions.txt")]
    questions: PathBuf,
    /// Tokens per reply.
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Python with llama-cpp-python (`make bench-venv`); "none" skips llama.cpp.
    #[arg(long, default_value = "~/.cache/voxline/bench-venv/bin/python")]
    llama_python: String,
    /// Also ask this many questions at once (as that many calls would) on
    /// the first engine; 0: only one at a time.
    #[arg(long, default_value_t = 0)]
    at_once: usize,
    /// Also measure the inference pool: llama.cpp's OpenAI-compatible
    /// server (`llama_cpp.server` from the same Python) on the same GGUF,
    /// in front of voxline's llama.cpp engine, as `[[llm.server]]` runs it.
    #[arg(long)]
    pool: bool,
}

/// One reply's timing.
#[derive(Debug, Clone, Copy)]
struct Reply {
    first: Duration,
    tokens: usize,
    gen: Duration,
}

fn row(name: &str, r: &[Reply]) -> (f64, f64) {
    let cold = r.first().map_or(0.0, |x| x.first.as_secs_f64());
    let mut warm: Vec<f64> = r.iter().skip(1).map(|x| x.first.as_secs_f64()).collect();
    warm.sort_by(f64::total_cmp);
    let warm_p50 = warm.get(warm.len() / 2).copied().unwrap_or(0.0);
    let tokens: usize = r.iter().map(|x| x.tokens.saturating_sub(1)).sum();
    let gen: f64 = r.iter().map(|x| x.gen.as_secs_f64()).sum();
    let tps = tokens as f64 / gen.max(1e-9);
    println!(
        "{name:<28} {:>10.0}ms {:>10.0}ms {:>10.1} {:>8}",
        cold * 1e3,
        warm_p50 * 1e3,
        tps,
        r.iter().map(|x| x.tokens).sum::<usize>()
    );
    (warm_p50, tps)
}

/// Asks every question (the first cold) after a warm-up with another
/// system prompt; returns the replies' timing and the prompt's length.
async fn measure(
    model: &dyn ChatModel,
    system: &str,
    questions: &[String],
    max_tokens: usize,
) -> anyhow::Result<(Vec<Reply>, usize)> {
    model.warm("You are a test.").await?;
    let mut replies = Vec::new();
    let mut prompt_tokens = 0;
    for q in questions {
        let req = ChatRequest::new(
            vec![ChatMessage::new(Role::System, system), ChatMessage::new(Role::User, q)],
            max_tokens,
        );
        let (_, usage) = model.chat(req).await?.text().await?;
        prompt_tokens = usage.prompt_tokens;
        replies.push(Reply {
            first: usage.first_token,
            tokens: usage.completion_tokens,
            gen: usage.total.saturating_sub(usage.first_token),
        });
    }
    Ok((replies, prompt_tokens))
}

/// Asks `n` questions at once (cycling through `questions`) with the
/// domain prompt cached, and prints their first-token times, the total
/// generation rate and the engine's decode steps.
async fn measure_at_once(
    model: &dyn ChatModel,
    system: &str,
    questions: &[String],
    max_tokens: usize,
    n: usize,
) -> anyhow::Result<()> {
    let stats = model.engine_stats();
    let counters = || {
        stats.as_ref().map_or((0, 0, 0), |s| {
            use std::sync::atomic::Ordering::Relaxed;
            (
                s.steps.load(Relaxed),
                s.decode_us.load(Relaxed),
                s.batched_steps.load(Relaxed),
            )
        })
    };
    let before = counters();
    let started = Instant::now();
    let asks = questions.iter().cycle().take(n).map(|q| async move {
        let req = ChatRequest::new(
            vec![ChatMessage::new(Role::System, system), ChatMessage::new(Role::User, q)],
            max_tokens,
        );
        model.chat(req).await?.text().await
    });
    let replies = futures_util::future::try_join_all(asks).await?;
    let wall = started.elapsed().as_secs_f64();
    let after = counters();
    let mut first: Vec<f64> = replies.iter().map(|(_, u)| u.first_token.as_secs_f64()).collect();
    first.sort_by(f64::total_cmp);
    let tokens: usize = replies.iter().map(|(_, u)| u.completion_tokens).sum();
    let pick = |p: f64| first[((first.len() - 1) as f64 * p).round() as usize] * 1e3;
    println!(
        "{n} at once: first token p50 {:.0} ms, p95 {:.0} ms; {tokens} tokens in {:.2} s ({:.1} tokens/s together)",
        pick(0.5),
        pick(0.95),
        wall,
        tokens as f64 / wall.max(1e-9)
    );
    let steps = after.0 - before.0;
    if steps > 0 {
        println!(
            "{n} at once: {steps} decode steps ({} carrying more than one reply), {:.1} ms each on average",
            after.2 - before.2,
            (after.1 - before.1) as f64 / 1e3 / steps as f64
        );
    }
    Ok(())
}

/// Kills the benchmark's server when dropped.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `llama_cpp.server` on `gguf` (loopback, a free port, requests
/// queued rather than interrupting each other) and measures the questions
/// through an inference pool of that server in front of voxline's
/// llama.cpp engine.
async fn measure_pool(
    python: &std::path::Path,
    gguf: &std::path::Path,
    threads: usize,
    system: &str,
    questions: &[String],
    max_tokens: usize,
) -> anyhow::Result<Vec<Reply>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut server = ServerProcess(
        Command::new(python)
            .args([
                "-m",
                "llama_cpp.server",
                "--host",
                "127.0.0.1",
                "--interrupt_requests",
                "False",
            ])
            .arg("--port")
            .arg(port.to_string())
            .arg("--n_threads")
            .arg(threads.to_string())
            .arg("--model")
            .arg(gguf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} -m llama_cpp.server", python.display()))?,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.0.try_wait()? {
            anyhow::bail!("llama_cpp.server exited ({status}); make bench-venv installs it");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "llama_cpp.server did not listen within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let local = voxline_llm::load_local(LocalEngine::LlamaCpp, gguf, Default::default()).await?;
    let servers = vec![voxline_llm::RemoteConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        model: "default".into(),
        api_key: None,
        connect_timeout: Duration::from_secs(5),
    }];
    let pool = voxline_llm::InferencePool::start(servers, local, voxline_llm::PoolSettings::default()).await?;
    let (replies, _) = measure(&pool, system, questions, max_tokens).await?;
    let status = pool.status();
    anyhow::ensure!(
        pool.local_replies() == 0,
        "the pool's server failed replies, the local engine answered: {status:?}"
    );
    println!(
        "voxline pool: {} replies from llama_cpp.server at 127.0.0.1:{port}",
        status.first().map_or(0, |s| s.served)
    );
    Ok(replies)
}

/// Runs the benchmark.
pub async fn run(args: BenchLlmArgs) -> anyhow::Result<()> {
    let path = args
        .model
        .clone()
        .unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::LLM));
    let system = std::fs::read_to_string(&args.system).with_context(|| format!("reading {}", args.system.display()))?;
    let questions = crate::cli::text_list::read(&args.questions)?;
    anyhow::ensure!(questions.len() >= 2, "need at least two questions");
    anyhow::ensure!(!args.engines.is_empty(), "name at least one engine");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "model {}, {} questions, {} tokens each, greedy, {threads} cores",
        path.display(),
        questions.len(),
        args.max_tokens
    );

    let mut ours = Vec::new();
    for &engine in &args.engines {
        let t = Instant::now();
        let model = crate::cli::chat::load(engine, Some(path.clone()), None).await?;
        let load = t.elapsed();
        let (replies, prompt_tokens) = measure(model.as_ref(), &system, &questions, args.max_tokens).await?;
        println!(
            "voxline on {engine}: model loaded in {:.2} s; prompt {prompt_tokens} tokens",
            load.as_secs_f64()
        );
        if args.at_once > 0 && ours.is_empty() {
            measure_at_once(model.as_ref(), &system, &questions, args.max_tokens, args.at_once).await?;
        }
        ours.push((engine, replies));
    }

    let python = crate::config::resolve_path(std::path::Path::new("."), std::path::Path::new(&args.llama_python));
    let pooled = if args.pool {
        anyhow::ensure!(args.llama_python != "none", "--pool needs --llama-python");
        Some(measure_pool(&python, &path, threads, &system, &questions, args.max_tokens).await?)
    } else {
        None
    };

    let mut theirs = Vec::new();
    if args.llama_python != "none" {
        let out = Command::new(&python)
            .arg("load-tests/llm/llama_timing.py")
            .arg(&path)
            .arg(&args.system)
            .arg(&args.questions)
            .arg(args.max_tokens.to_string())
            .arg(threads.to_string())
            .output()
            .with_context(|| {
                format!(
                    "running {} (make bench-venv installs llama-cpp-python)",
                    python.display()
                )
            })?;
        anyhow::ensure!(
            out.status.success(),
            "llama.cpp timing failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("llama.cpp output {line:?}"))?;
            theirs.push(Reply {
                first: Duration::from_secs_f64(v["first"].as_f64().unwrap_or(0.0)),
                tokens: v["tokens"].as_u64().unwrap_or(0) as usize,
                gen: Duration::from_secs_f64(v["gen"].as_f64().unwrap_or(0.0)),
            });
        }
    }

    println!();
    println!(
        "{:<28} {:>12} {:>12} {:>10} {:>8}",
        "engine (same GGUF, prompt)", "TTFT cold", "TTFT warm", "tokens/s", "tokens"
    );
    let mut first = None;
    for (engine, replies) in &ours {
        let name = match engine {
            LocalEngine::LlamaCpp => "voxline (llama.cpp engine)",
            LocalEngine::Mistralrs => "voxline (mistralrs 0.8.1)",
        };
        let r = row(name, replies);
        first.get_or_insert((*engine, r));
    }
    if let Some(replies) = &pooled {
        let (pool_warm, pool_tps) = row("voxline pool -> llama server", replies);
        if let Some((engine, (our_warm, our_tps))) = first {
            println!(
                "pool / voxline ({engine}): tokens/s {:.2}x, warm TTFT {:.2}x",
                pool_tps / our_tps.max(1e-9),
                pool_warm / our_warm.max(1e-9)
            );
        }
    }
    if let (Some((engine, (our_warm, our_tps))), false) = (first, theirs.is_empty()) {
        let (their_warm, their_tps) = row("llama.cpp (llama-cpp-python)", &theirs);
        println!(
            "voxline ({engine}) / llama-cpp-python: tokens/s {:.2}x, warm TTFT {:.2}x",
            our_tps / their_tps.max(1e-9),
            our_warm / their_warm.max(1e-9)
        );
    }
    println!(
        "cold = first question with the domain prompt not yet cached; warm = p50 of the others (prompt prefix cached)"
    );
    Ok(())
}
