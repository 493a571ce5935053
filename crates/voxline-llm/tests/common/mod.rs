//! What the local-engine tests share: the default model, the request they
//! ask, and the two ways they read replies.

#![allow(dead_code)]

use std::path::PathBuf;
use voxline_llm::{ChatEvent, ChatMessage, ChatModel, ChatRequest, Role, Usage};

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
