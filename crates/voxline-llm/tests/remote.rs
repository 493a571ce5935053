//! The remote backend against a real OpenAI-compatible server: llama.cpp's
//! (llama-cpp-python's `llama_cpp.server`, from `make bench-venv`) serving
//! the default GGUF on loopback. Skipped when that venv is absent.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use voxline_llm::{ChatEvent, ChatMessage, ChatModel, ChatRequest, LlmError, RemoteConfig, RemoteModel, Role};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("HOME")?).join(".cache/voxline/bench-venv/bin/python");
    let ok = Command::new(&p)
        .args(["-c", "import llama_cpp.server"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(p)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_llama_cpp_server_streams_a_reply_and_a_drop_ends_it() {
    let gguf = voxline_models::models_dir().join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    let (Some(python), true) = (python(), gguf.exists()) else {
        eprintln!("skipped: no llama-cpp-python server (make bench-venv) or no model");
        return;
    };
    let port = free_port();
    let _server = Server(
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
            .arg(&gguf)
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
    let mut long = model
        .chat(ChatRequest::new(
            vec![ChatMessage::new(Role::User, "Tell me a long story about a dragon.")],
            400,
        ))
        .await
        .expect("chat");
    assert!(matches!(long.next().await, Some(Ok(ChatEvent::Delta(_)))));
    drop(long);
    let (again, _) = model.chat(req).await.expect("chat").text().await.expect("text");
    assert!(again.contains("Paris"), "{again}");
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_the_cause() {
    // A port held bound but not listening: nothing else can take it meanwhile
    // (the other test starts a server on a free port), and connecting is refused.
    let held = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let port = held
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .expect("port");
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
