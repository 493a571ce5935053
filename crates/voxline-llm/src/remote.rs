//! The remote backend: any OpenAI-compatible `/v1/chat/completions`
//! server with SSE streaming (vLLM, llama.cpp server, mistralrs-server) —
//! a GPU pool shared by many voxline nodes. Dropping the stream closes the
//! HTTP response, which the server takes as a cancel.

use crate::chat::{ChatEvent, ChatModel, ChatRequest, ChatStream, Usage};
use crate::LlmError;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    /// Base URL, e.g. `http://10.0.0.5:8000/v1`.
    pub base_url: String,
    /// Model name sent in the request.
    pub model: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// Time allowed to connect and receive the response head.
    pub connect_timeout: Duration,
}

/// A remote model.
#[derive(Debug, Clone)]
pub struct RemoteModel {
    cfg: RemoteConfig,
    url: String,
    http: reqwest::Client,
}

impl RemoteModel {
    /// A client for `cfg` (no request is made yet).
    pub fn new(cfg: RemoteConfig) -> Result<RemoteModel, LlmError> {
        let url = format!("{}/chat/completions", cfg.base_url.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .build()
            .map_err(|e| LlmError::Remote {
                url: url.clone(),
                why: e.to_string(),
            })?;
        Ok(RemoteModel { cfg, url, http })
    }
}

#[derive(serde::Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<ChunkUsage>,
}

#[derive(serde::Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: ChunkDelta,
    finish_reason: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct ChunkDelta {
    content: Option<String>,
}

#[derive(serde::Deserialize)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: usize,
    #[serde(default)]
    completion_tokens: usize,
}

#[async_trait::async_trait]
impl ChatModel for RemoteModel {
    async fn chat(&self, req: ChatRequest) -> Result<ChatStream, LlmError> {
        let started = Instant::now();
        let fail = |why: String| LlmError::Remote {
            url: self.url.clone(),
            why,
        };
        let mut body = serde_json::json!({
            "model": self.cfg.model,
            "messages": req.messages,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        if let Some(p) = req.top_p {
            body["top_p"] = p.into();
        }
        if !req.stop.is_empty() {
            body["stop"] = req.stop.clone().into();
        }
        let mut http = self.http.post(&self.url).json(&body);
        if let Some(k) = &self.cfg.api_key {
            http = http.bearer_auth(k);
        }
        let resp = tokio::time::timeout(self.cfg.connect_timeout, http.send())
            .await
            .map_err(|_| fail("no response in time".into()))?
            .map_err(|e| fail(error_chain(&e)))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(fail(format!(
                "{status}: {}",
                text.chars().take(300).collect::<String>()
            )));
        }
        let (tx, rx) = mpsc::channel(64);
        let url = self.url.clone();
        tokio::spawn(async move {
            let mut events = resp.bytes_stream().eventsource();
            let mut usage = Usage::default();
            let mut finished = false;
            // Servers that send no usage: one stream chunk is one token.
            let mut chunks = 0usize;
            loop {
                let ev = tokio::select! {
                    // The caller dropped the stream: drop the response (closing
                    // the connection cancels the generation on the server).
                    _ = tx.closed() => return,
                    ev = events.next() => ev,
                };
                let data = match ev {
                    None => break,
                    Some(Err(e)) => {
                        let _ = tx
                            .send(Err(LlmError::Remote {
                                url: url.clone(),
                                why: e.to_string(),
                            }))
                            .await;
                        return;
                    }
                    Some(Ok(e)) => e.data,
                };
                if data.trim() == "[DONE]" {
                    break;
                }
                let chunk: Chunk = match serde_json::from_str(&data) {
                    Ok(c) => c,
                    Err(e) => {
                        let why = format!("bad stream chunk ({e}): {}", data.chars().take(200).collect::<String>());
                        let _ = tx.send(Err(LlmError::Remote { url: url.clone(), why })).await;
                        return;
                    }
                };
                if let Some(u) = chunk.usage {
                    usage.prompt_tokens = u.prompt_tokens;
                    usage.completion_tokens = u.completion_tokens;
                }
                for c in chunk.choices {
                    if let Some(t) = c.delta.content.filter(|t| !t.is_empty()) {
                        chunks += 1;
                        if tx.send(Ok(ChatEvent::Delta(t))).await.is_err() {
                            return;
                        }
                    }
                    finished |= c.finish_reason.is_some();
                }
            }
            if usage.completion_tokens == 0 {
                usage.completion_tokens = chunks;
            }
            // A reply is complete only with a finish reason: a stream that
            // ends without one was cut off (llama-cpp-python, for one, ends
            // a streaming reply with `[DONE]` and no finish reason when
            // another request reaches it).
            let end = if finished {
                Ok(ChatEvent::Done(usage))
            } else {
                Err(LlmError::Remote {
                    url,
                    why: format!("the stream ended after {chunks} pieces without a finish reason (cut off)"),
                })
            };
            let _ = tx.send(end).await;
        });
        Ok(ChatStream::new(rx, started))
    }

    fn name(&self) -> String {
        format!("{} at {}", self.cfg.model, self.cfg.base_url)
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
