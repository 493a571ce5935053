//! The remote backend and the inference pool against a real
//! OpenAI-compatible server: llama.cpp's (llama-cpp-python's
//! `llama_cpp.server`, in the venv `make bench-venv` makes, which `make
//! test` runs first) serving the default GGUF on loopback. Without that
//! venv the tests skip, and fail under `make test` (VOXLINE_REQUIRE_MODELS).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use voxline_llm::{
    ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatStream, InferencePool, LlmError, LocalEngine, PoolSettings,
    RemoteConfig, RemoteModel, Role,
};

struct Server(Child);

/// The tests that start a `llama_cpp.server` run one at a time: two
/// servers and the local engine on a 2-core machine starved a streaming
/// reply past the pool's stall limit in CI (the pool rightly gave it up).
static ONE_SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The venv's Python with `llama_cpp.server`, and the default GGUF; None
/// (skip) when either is missing, a failure under VOXLINE_REQUIRE_MODELS.
fn needs() -> Option<(PathBuf, PathBuf)> {
    let gguf = common::gguf()?;
    let p = match std::env::var_os("VOXLINE_BENCH_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/voxline/bench-venv/bin/python"),
    };
    let ok = Command::new(&p)
        .args(["-c", "import llama_cpp.server"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("VOXLINE_REQUIRE_MODELS").is_none(),
            "{} cannot import llama_cpp.server (make bench-venv installs it)",
            p.display()
        );
        eprintln!("skipped: no llama-cpp-python server (make bench-venv)");
        return None;
    }
    Some((p, gguf))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn config(port: u16) -> RemoteConfig {
    RemoteConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        model: "default".into(),
        api_key: None,
        connect_timeout: Duration::from_secs(5),
    }
}

/// `llama_cpp.server` on `gguf`, one thread, on a free loopback port,
/// once it accepts connections.
async fn start_server(python: &Path, gguf: &Path) -> (Server, u16) {
    let port = free_port();
    let server = Server(
        Command::new(python)
            .args([
                "-m",
                "llama_cpp.server",
                "--host",
                "127.0.0.1",
                "--n_threads",
                "1",
                "--port",
            ])
            .arg(port.to_string())
            .arg("--model")
            .arg(gguf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama_cpp.server"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (server, port)
}

/// A loopback port held bound but not listening: connecting is refused.
fn refused_port() -> (socket2::Socket, u16) {
    let held = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let port = held
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .expect("port");
    (held, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_llama_cpp_server_streams_a_reply_and_a_drop_ends_it() {
    let Some((python, gguf)) = needs() else {
        return;
    };
    let _one = ONE_SERVER.lock().await;
    let (_server, port) = start_server(&python, &gguf).await;
    let model = RemoteModel::new(config(port)).expect("client");
    let req = ChatRequest::new(
        vec![
            ChatMessage::new(Role::System, "You are a helpful assistant."),
            ChatMessage::new(Role::User, "What is the capital of France?"),
        ],
        32,
    );
    let mut stream = model.chat(req.clone()).await.expect("chat");
    let (mut deltas, mut text, mut done) = (0, String::new(), None);
    while let Some(ev) = stream.next().await {
        match ev.expect("event") {
            ChatEvent::Delta(d) => {
                deltas += 1;
                text.push_str(&d);
            }
            ChatEvent::Done(u) => done = Some(u),
        }
    }
    eprintln!("{text:?} {done:?}");
    assert!(text.contains("Paris"), "{text}");
    assert!(deltas >= 2);
    let u = done.expect("done");
    assert!(u.completion_tokens >= 2 && u.completion_tokens <= 32, "{u:?}");

    // Dropped after the first piece: the server is free for the next request.
    drop(story_started(&model).await);
    let (again, _) = model.chat(req).await.expect("chat").text().await.expect("text");
    assert!(again.contains("Paris"), "{again}");

    // Cut off by the server: llama-cpp-python ends a streaming reply with
    // `[DONE]` (no finish reason) when another request reaches it. That is
    // an error, never a finished reply.
    let mut cut = story_started(&model).await;
    let other = tokio::spawn(reqwest::get(format!("http://127.0.0.1:{port}/v1/models")));
    let end = loop {
        match cut.next().await {
            Some(Ok(ChatEvent::Delta(_))) => {}
            other => break other,
        }
    };
    match end {
        Some(Err(LlmError::Remote { why, .. })) => assert!(why.contains("without a finish reason"), "{why}"),
        other => panic!("a cut-off reply ended as {other:?}"),
    }
    let other = other.await.expect("join").expect("the other request");
    assert!(other.status().is_success(), "{}", other.status());
}

/// A long story asked of `model`, once its first piece has come.
async fn story_started(model: &RemoteModel) -> ChatStream {
    let mut story = model
        .chat(ChatRequest::new(
            vec![ChatMessage::new(Role::User, "Tell me a long story about a dragon.")],
            400,
        ))
        .await
        .expect("chat");
    assert!(matches!(story.next().await, Some(Ok(ChatEvent::Delta(_)))));
    story
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_the_cause() {
    // A port held bound but not listening: nothing else can take it meanwhile
    // (the other tests start servers on free ports), and connecting is refused.
    let (_held, port) = refused_port();
    let model = RemoteModel::new(config(port)).expect("client");
    let e = model
        .chat(ChatRequest::new(vec![ChatMessage::new(Role::User, "hi")], 4))
        .await
        .unwrap_err();
    assert!(matches!(e, LlmError::Remote { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.to_lowercase().contains("refused"),
        "{msg}"
    );
}

/// Reads a reply to its end: its text, the gap before each delta (the
/// longest after `from`), and the instant of each delta.
/// The reply's text until it holds `n` words.
async fn first_words(stream: &mut ChatStream, n: usize) -> String {
    let mut before = String::new();
    while before.split_whitespace().count() < n {
        match stream.next().await {
            Some(Ok(ChatEvent::Delta(d))) => before.push_str(&d),
            other => panic!("the server's reply: {other:?}"),
        }
    }
    before
}

/// The pool's stall limit in these tests.
const STALL: Duration = Duration::from_millis(1500);

async fn read_all(mut stream: voxline_llm::ChatStream) -> (String, Vec<Instant>) {
    let (mut text, mut at) = (String::new(), Vec::new());
    while let Some(ev) = stream.next().await {
        match ev.expect("no error reaches the caller") {
            ChatEvent::Delta(d) => {
                text.push_str(&d);
                at.push(Instant::now());
            }
            ChatEvent::Done(_) => return (text, at),
        }
    }
    panic!("the reply ended without Done: {text:?}");
}

/// The pool: a server that refuses is down after the first check; replies
/// come from the live server; when it is killed in the middle of a reply
/// the local engine carries the reply on (no error reaches the caller)
/// and answers the next ones; the time from the kill to the local
/// engine's next text is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_serves_from_a_server_and_the_local_engine_takes_over_when_it_dies() {
    let Some((python, gguf)) = needs() else {
        return;
    };
    let _one = ONE_SERVER.lock().await;
    let (mut server, port) = start_server(&python, &gguf).await;
    let (_held, refused) = refused_port();
    let local = voxline_llm::load_local(
        LocalEngine::LlamaCpp,
        &gguf,
        voxline_llm::LocalOptions {
            threads: 1,
            ..Default::default()
        },
    )
    .await
    .expect("local engine");
    // Checks far more often than a reply lasts: a check must never cut a
    // streaming reply off (the server would, see above).
    let settings = PoolSettings {
        first_token_timeout: Duration::from_secs(5),
        stall_timeout: STALL,
        health_interval: Duration::from_millis(5),
    };
    let pool = InferencePool::start(vec![config(refused), config(port)], local, settings)
        .await
        .expect("pool");
    let status = pool.status();
    assert!(!status[0].healthy && status[1].healthy, "{status:?}");

    let (text, _) = read_all(
        pool.chat(common::ask("What is the capital of France?", 32))
            .await
            .expect("chat"),
    )
    .await;
    assert!(text.contains("Paris"), "{text}");
    assert_eq!(
        (pool.status()[1].served, pool.local_replies()),
        (1, 0),
        "{:?}",
        pool.status()
    );

    // A reply lasting many check intervals is served whole by the server.
    let started = Instant::now();
    let (story, _) = read_all(
        pool.chat(common::ask("Tell me a story about a lighthouse keeper.", 96))
            .await
            .expect("chat"),
    )
    .await;
    eprintln!(
        "a reply of {} words in {:?}",
        story.split_whitespace().count(),
        started.elapsed()
    );
    assert_eq!(
        (pool.status()[1].served, pool.status()[1].failed, pool.local_replies()),
        (2, 0, 0),
        "{:?}",
        pool.status()
    );

    // Frozen in the middle of a long reply (SIGSTOP: a hung server keeps
    // its connection open and sends nothing more).
    let mut stream = pool
        .chat(common::ask("Tell me a long story about a dragon and a knight.", 300))
        .await
        .expect("chat");
    let before = first_words(&mut stream, 5).await;
    let pid = server.0.id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    let frozen = Instant::now();
    let (after, at) = read_all(stream).await;
    let first_after = at.first().map(|t| t.duration_since(frozen)).expect("the reply went on");
    eprintln!(
        "server frozen after {before:?}; the local engine's text came {first_after:?} later (stall limit {STALL:?})"
    );
    signal("-CONT");
    assert!(!after.trim().is_empty());
    assert!(first_after >= STALL, "went on before the stall limit: {first_after:?}");
    assert!(first_after < STALL + Duration::from_secs(5), "{first_after:?}");
    assert_eq!(pool.local_replies(), 1, "{:?}", pool.status());
    assert_eq!(pool.status()[1].failed, 1, "{:?}", pool.status());
    // Thawed, it answers its checks again and is taken back.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pool.status()[1].healthy {
        assert!(Instant::now() < deadline, "not taken back: {:?}", pool.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Killed in the middle of a long reply.
    let mut stream = pool
        .chat(common::ask("Tell me a long story about a dragon and a knight.", 300))
        .await
        .expect("chat");
    let before = first_words(&mut stream, 5).await;
    server.0.kill().expect("kill the server");
    let killed = Instant::now();
    let (after, at) = read_all(stream).await;
    let first_after = at.first().map(|t| t.duration_since(killed)).expect("the reply went on");
    eprintln!(
        "server killed after {before:?}; the local engine's text came {first_after:?} later; went on with {:?}",
        after.chars().take(80).collect::<String>()
    );
    assert!(!after.trim().is_empty());
    assert_eq!(pool.local_replies(), 2, "{:?}", pool.status());
    assert_eq!(pool.status()[1].failed, 2, "{:?}", pool.status());
    assert!(!pool.status()[1].healthy);

    // Every server down: the local engine answers at once.
    let started = Instant::now();
    let (text, at) = read_all(
        pool.chat(common::ask("What is the capital of France?", 32))
            .await
            .expect("chat"),
    )
    .await;
    assert!(text.contains("Paris"), "{text}");
    assert_eq!(pool.local_replies(), 3);
    eprintln!(
        "with every server down, the first text in {:?}",
        at[0].duration_since(started)
    );

    // Holding a reply through the pool holds the engine that answers it
    // (a voice reply holds the model while a phrase is synthesised).
    let stats = pool.engine_stats().expect("the local engine's counters");
    let generated = || stats.generated_tokens.load(std::sync::atomic::Ordering::Relaxed);
    let mut long = pool
        .chat(common::ask("Tell me a long story about a dragon.", 200))
        .await
        .expect("chat");
    assert!(matches!(long.next().await, Some(Ok(ChatEvent::Delta(_)))));
    let (while_held, resumed) = common::hold_then_release(&mut long, generated).await;
    eprintln!("through the pool: {while_held} tokens generated while held; after release: {resumed:?}");
    assert_eq!(while_held, 0, "the held reply went on");
    assert_eq!(resumed, Ok(5), "the released reply did not go on");
    // Read to its end: an engine still decoding when the test process
    // exits crashes in llama.cpp's teardown (seen: SIGSEGV after the
    // tests passed).
    let (_, usage) = long.text().await.expect("the reply's end");
    assert!(usage.completion_tokens > 5, "{usage:?}");
}
