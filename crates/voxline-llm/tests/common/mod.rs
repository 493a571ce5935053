//! What the local-engine tests share: the default model, the request they
//! ask, and the two ways they read replies.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;
use voxline_llm::{ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatStream, Role, Usage};

/// The default model file, fetched by `voxline models fetch`.
pub const GGUF: &str = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q8_0.gguf";
/// The system prompt of every test request.
pub const SYSTEM: &str = "You are a helpful assistant. Answer in one short sentence.";

/// The model file, or None (the test skips, or fails under VOXLINE_REQUIRE_MODELS).
pub fn gguf() -> Option<PathBuf> {
    voxline_models::fetched_for_test(&[GGUF]).and_then(|f| f.into_iter().next())
}

/// A greedy request with the test system prompt.
pub fn ask(question: &str, max_tokens: usize) -> ChatRequest {
    ChatRequest::new(
        vec![
            ChatMessage::new(Role::System, SYSTEM),
            ChatMessage::new(Role::User, question),
        ],
        max_tokens,
    )
}

/// Reads a reply event by event: (deltas received, text, usage).
pub async fn streamed(model: &dyn ChatModel, req: ChatRequest) -> (usize, String, Usage) {
    let mut stream = model.chat(req).await.expect("chat");
    let (mut deltas, mut text, mut usage) = (0, String::new(), None);
    while let Some(ev) = stream.next().await {
        match ev.expect("event") {
            ChatEvent::Delta(d) => {
                deltas += 1;
                text.push_str(&d);
            }
            ChatEvent::Done(u) => usage = Some(u),
        }
    }
    (deltas, text, usage.expect("done"))
}

/// Asks "capital of France" and "colour of the sky" at the same time.
pub async fn two_at_once(model: &dyn ChatModel) -> (String, String) {
    let (a, b) = tokio::join!(
        async {
            model
                .chat(ask("What is the capital of France?", 24))
                .await?
                .text()
                .await
        },
        async {
            model
                .chat(ask("What color is the sky on a clear day?", 24))
                .await?
                .text()
                .await
        },
    );
    (a.expect("a").0, b.expect("b").0)
}

/// Holds `stream` (already streaming) and releases it: the tokens the
/// engine generated while it was held (counted by `generated`), and
/// whether 5 more pieces came within 5 s of the release (the count, or
/// what came instead).
pub async fn hold_then_release(stream: &mut ChatStream, generated: impl Fn() -> u64) -> (u64, Result<usize, String>) {
    stream.hold(true);
    // The step already running may finish; after it, nothing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let at_hold = generated();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let while_held = generated() - at_hold;
    stream.hold(false);
    let resumed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut more = 0;
        while more < 5 {
            match stream.next().await {
                Some(Ok(ChatEvent::Delta(_))) => more += 1,
                other => return Err(format!("{other:?}")),
            }
        }
        Ok(more)
    })
    .await
    .unwrap_or_else(|_| Err("nothing within 5 s".into()));
    (while_held, resumed)
}
