//! An inference pool beyond one machine: one or more OpenAI-compatible
//! servers (llama.cpp's server, vLLM, any such) in front of the local
//! engine. Each reply goes to the least loaded healthy server; a server
//! that does not send its first text within `first_token_timeout`, refuses,
//! breaks off mid-reply or stalls mid-reply (no text for `stall_timeout`
//! while the caller is not holding the reply) is marked down and the reply goes on elsewhere —
//! the next server, else the local engine, which continues after the text
//! already streamed when it starts the same way (the same GGUF decodes the
//! same words greedily). A background check (`GET {base}/models`) brings
//! servers back. Dropping the reply closes the HTTP stream, which the
//! server takes as a cancel (a caller's barge-in).

use crate::chat::{ChatEvent, ChatModel, ChatRequest, ChatStream};
use crate::remote::{RemoteConfig, RemoteModel};
use crate::LlmError;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// How the pool waits for and checks its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// A server whose first text takes longer is passed over for this reply.
    pub first_token_timeout: Duration,
    /// A server that sends no text for this long in the middle of a reply
    /// (the caller not holding it) is given up like one that broke off.
    pub stall_timeout: Duration,
    /// How often each server's health is checked.
    pub health_interval: Duration,
}

impl Default for PoolSettings {
    fn default() -> PoolSettings {
        PoolSettings {
            first_token_timeout: Duration::from_millis(1500),
            stall_timeout: Duration::from_millis(2000),
            health_interval: Duration::from_secs(5),
        }
    }
}

/// One server of the pool and what the pool knows of it.
struct Endpoint {
    model: RemoteModel,
    cfg: RemoteConfig,
    /// Replies it is streaming now.
    in_flight: AtomicUsize,
    healthy: AtomicBool,
    /// Replies it served to the end, and replies taken from it.
    served: AtomicU64,
    failed: AtomicU64,
    /// Replies read it while they stream; a check takes it whole, and only
    /// when no reply streams. A single-slot server (llama-cpp-python by
    /// default) cuts a streaming reply off when another request reaches
    /// it, so a check must never overlap a reply, not even one that starts
    /// while the check's request is on its way.
    gate: tokio::sync::RwLock<()>,
}

/// A server's state, for `/metrics` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    /// Base URL.
    pub url: String,
    /// Whether it is taking replies.
    pub healthy: bool,
    /// Replies streaming now.
    pub in_flight: usize,
    /// Replies it finished.
    pub served: u64,
    /// Replies it failed (no first text in time, refused, broke off).
    pub failed: u64,
}

struct Inner {
    endpoints: Vec<Endpoint>,
    local: Arc<dyn ChatModel>,
    settings: PoolSettings,
    http: reqwest::Client,
    /// Replies the local engine took because no server could.
    local_replies: AtomicU64,
}

/// The pool: remote servers first, the local engine last.
#[derive(Clone)]
pub struct InferencePool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for InferencePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferencePool")
            .field("servers", &self.inner.endpoints.len())
            .finish()
    }
}

/// Counts a reply on a server while it streams.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn new(n: &'a AtomicUsize) -> Busy<'a> {
        n.fetch_add(1, Ordering::Relaxed);
        Busy(n)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How forwarding one stream ended.
enum Forwarded {
    /// The reply is complete (or the caller let go of it).
    Over,
    /// The backend failed (what it streamed before is in `sent`).
    Broke(LlmError),
}

impl InferencePool {
    /// A pool of `servers` in front of `local`; checks each server once
    /// before returning and then every `health_interval` (until the pool
    /// is dropped).
    pub async fn start(
        servers: Vec<RemoteConfig>,
        local: Arc<dyn ChatModel>,
        settings: PoolSettings,
    ) -> Result<InferencePool, LlmError> {
        let endpoints = servers
            .into_iter()
            .map(|cfg| {
                Ok(Endpoint {
                    model: RemoteModel::new(cfg.clone())?,
                    cfg,
                    in_flight: AtomicUsize::new(0),
                    healthy: AtomicBool::new(false),
                    served: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                    gate: tokio::sync::RwLock::new(()),
                })
            })
            .collect::<Result<Vec<_>, LlmError>>()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| LlmError::Remote {
                url: "(health checks)".into(),
                why: e.to_string(),
            })?;
        let inner = Arc::new(Inner {
            endpoints,
            local,
            settings,
            http,
            local_replies: AtomicU64::new(0),
        });
        inner.check_all().await;
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(settings.health_interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.check_all().await;
            }
        });
        Ok(InferencePool { inner })
    }

    /// Each server's state.
    pub fn status(&self) -> Vec<EndpointStatus> {
        self.inner
            .endpoints
            .iter()
            .map(|e| EndpointStatus {
                url: e.cfg.base_url.clone(),
                healthy: e.healthy.load(Ordering::Relaxed),
                in_flight: e.in_flight.load(Ordering::Relaxed),
                served: e.served.load(Ordering::Relaxed),
                failed: e.failed.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Replies the local engine took.
    pub fn local_replies(&self) -> u64 {
        self.inner.local_replies.load(Ordering::Relaxed)
    }
}

impl Inner {
    /// Checks every server: `GET {base}/models` answering 2xx is healthy.
    /// A server streaming replies is not checked: its replies are the
    /// check, and a single-slot server may cut a streaming reply off when
    /// another request reaches it (llama-cpp-python does by default). A
    /// reply that starts during a check waits for it (see `gate`).
    async fn check_all(&self) {
        let checks = self.endpoints.iter().map(|e| async move {
            let Ok(_checking) = e.gate.try_write() else {
                return;
            };
            let url = format!("{}/models", e.cfg.base_url.trim_end_matches('/'));
            let mut req = self.http.get(&url);
            if let Some(k) = &e.cfg.api_key {
                req = req.bearer_auth(k);
            }
            let ok = req.send().await.is_ok_and(|r| r.status().is_success());
            let was = e.healthy.swap(ok, Ordering::Relaxed);
            if ok != was {
                if ok {
                    info!(server = %e.cfg.base_url, "language model server up");
                } else {
                    warn!(server = %e.cfg.base_url, "language model server down");
                }
            }
        });
        futures_util::future::join_all(checks).await;
    }

    /// The healthy server not tried yet with the fewest replies in flight.
    fn pick(&self, tried: &[usize]) -> Option<usize> {
        (0..self.endpoints.len())
            .filter(|i| !tried.contains(i) && self.endpoints[*i].healthy.load(Ordering::Relaxed))
            .min_by_key(|&i| self.endpoints[i].in_flight.load(Ordering::Relaxed))
    }

    /// Server `i` failed a reply: down until its next good check.
    fn failed(&self, i: usize, why: &LlmError) {
        let e = &self.endpoints[i];
        e.failed.fetch_add(1, Ordering::Relaxed);
        if e.healthy.swap(false, Ordering::Relaxed) {
            warn!(server = %e.cfg.base_url, error = %why, "language model server failed a reply; passed over until it answers a check");
        }
    }

    /// Streams one reply into `tx`, server by server, then locally;
    /// `hold` is the caller's pause (passed on to the backend that can).
    async fn relay(
        self: Arc<Self>,
        req: ChatRequest,
        tx: mpsc::Sender<Result<ChatEvent, LlmError>>,
        hold: Arc<AtomicBool>,
    ) {
        let mut sent = String::new();
        let mut tried = Vec::new();
        while let Some(i) = self.pick(&tried) {
            tried.push(i);
            let e = &self.endpoints[i];
            let _busy = Busy::new(&e.in_flight);
            // A check under way finishes first; its time counts against
            // the first text's.
            let opened = tokio::time::timeout(self.settings.first_token_timeout, async {
                let streaming = e.gate.read().await;
                first_text(&e.model, req.clone()).await.map(|s| (streaming, s))
            });
            let opened = tokio::select! {
                // The caller let go before the first text.
                _ = tx.closed() => return,
                r = opened => r,
            };
            let (_streaming, (stream, first)) = match opened {
                Ok(Ok(s)) => s,
                Ok(Err(why)) => {
                    self.failed(i, &why);
                    continue;
                }
                Err(_) => {
                    let why = LlmError::Remote {
                        url: e.cfg.base_url.clone(),
                        why: format!("no text within {:?}", self.settings.first_token_timeout),
                    };
                    self.failed(i, &why);
                    continue;
                }
            };
            debug!(server = %e.cfg.base_url, "reply from a language model server");
            // After a server that broke off, the next one goes on after
            // what was already said, like the local engine.
            let skip = (!sent.is_empty()).then(|| sent.clone());
            let stall = Some(self.settings.stall_timeout);
            match forward(stream, first, &tx, &mut sent, skip, Some(&e.served), &hold, stall).await {
                Forwarded::Over => return,
                Forwarded::Broke(why) => self.failed(i, &why),
            }
        }
        // No server could: the local engine, after what was already said.
        self.local_replies.fetch_add(1, Ordering::Relaxed);
        let stream = match self.local.chat(req).await {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let skip = (!sent.is_empty()).then(|| sent.clone());
        if let Forwarded::Broke(e) = forward(stream, None, &tx, &mut sent, skip, None, &hold, None).await {
            let _ = tx.send(Err(e)).await;
        }
    }
}

/// Starts a reply on `model` and waits for its first text (or its end).
async fn first_text(model: &RemoteModel, req: ChatRequest) -> Result<(ChatStream, Option<ChatEvent>), LlmError> {
    let mut stream = model.chat(req).await?;
    match stream.next().await {
        Some(Ok(ev)) => Ok((stream, Some(ev))),
        Some(Err(e)) => Err(e),
        None => Err(LlmError::Generate("the server closed the reply".into())),
    }
}

/// While the caller holds a reply, how often the pool looks whether it
/// let go (a held backend sends nothing to wake it).
const HOLD_CHECK: Duration = Duration::from_millis(10);

/// Forwards `stream` (after `first`) into `tx`, adding its text to `sent`.
/// `skip`: text already said, dropped from the start of this stream while
/// it matches; `served` is counted before the end goes out; the caller's
/// `hold` is passed on to the stream; `stall`: the longest wait for the
/// next text while not held (None: no limit). Stops at the end, when the
/// caller lets go, or on a failure.
#[allow(clippy::too_many_arguments)]
async fn forward(
    mut stream: ChatStream,
    first: Option<ChatEvent>,
    tx: &mpsc::Sender<Result<ChatEvent, LlmError>>,
    sent: &mut String,
    mut skip: Option<String>,
    served: Option<&AtomicU64>,
    hold: &AtomicBool,
    stall: Option<Duration>,
) -> Forwarded {
    let mut next = first.map(Ok);
    loop {
        let ev = match next.take() {
            Some(ev) => Some(ev),
            None => {
                let held = hold.load(Ordering::Relaxed);
                stream.hold(held);
                // Counted from now: time spent handing text to a slow caller
                // (or held) is not the server's.
                let stalled_at = stall.map(|s| tokio::time::Instant::now() + s);
                tokio::select! {
                    // The caller let go (barge-in): dropping `stream` cancels it.
                    _ = tx.closed() => return Forwarded::Over,
                    ev = stream.next() => ev,
                    // Held: look again soon whether the caller resumed.
                    _ = tokio::time::sleep(HOLD_CHECK), if held => continue,
                    _ = sleep_until_some(stalled_at), if !held && stalled_at.is_some() => {
                        return Forwarded::Broke(LlmError::Generate(format!(
                            "no text for {:?} in the middle of the reply",
                            stall.unwrap_or_default()
                        )));
                    }
                }
            }
        };
        let ev = match ev {
            Some(Ok(ev)) => ev,
            Some(Err(e)) => return Forwarded::Broke(e),
            None => return Forwarded::Broke(LlmError::Generate("the reply ended without finishing".into())),
        };
        let out = match ev {
            ChatEvent::Delta(text) => {
                let text = match skip.take() {
                    Some(s) => {
                        let (rest, left) = after_said(&s, &text);
                        skip = left;
                        rest
                    }
                    None => text,
                };
                if text.is_empty() {
                    continue;
                }
                sent.push_str(&text);
                ChatEvent::Delta(text)
            }
            done @ ChatEvent::Done(_) => {
                if let Some(n) = served {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                done
            }
        };
        let finished = matches!(out, ChatEvent::Done(_));
        if tx.send(Ok(out)).await.is_err() || finished {
            return Forwarded::Over;
        }
    }
}

/// Sleeps until `at` (for ever when None).
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A fresh delta `text` against text `said` that the caller already has:
/// what of `text` is new, and what of `said` is still to be matched. Where
/// the two part ways the new reply goes on from there.
fn after_said(said: &str, text: &str) -> (String, Option<String>) {
    let common = said.chars().zip(text.chars()).take_while(|(a, b)| a == b).count();
    let said_rest: String = said.chars().skip(common).collect();
    let text_rest: String = text.chars().skip(common).collect();
    if text_rest.is_empty() {
        // All of `text` was said already.
        (String::new(), (!said_rest.is_empty()).then_some(said_rest))
    } else {
        (text_rest, None)
    }
}

#[async_trait::async_trait]
impl ChatModel for InferencePool {
    async fn chat(&self, req: ChatRequest) -> Result<ChatStream, LlmError> {
        let started = Instant::now();
        let (tx, rx) = mpsc::channel(64);
        let hold = Arc::new(AtomicBool::new(false));
        tokio::spawn(self.inner.clone().relay(req, tx, Arc::clone(&hold)));
        Ok(ChatStream::new(rx, started).with_hold(hold))
    }

    fn name(&self) -> String {
        let servers: Vec<&str> = self.inner.endpoints.iter().map(|e| e.cfg.base_url.as_str()).collect();
        format!("pool of {} then {}", servers.join(", "), self.inner.local.name())
    }

    async fn prefill(&self, messages: Vec<crate::ChatMessage>) -> Result<(), LlmError> {
        // Servers cache prompts their own way; the local engine reads ahead
        // only when it is the one that will answer.
        if self.inner.pick(&[]).is_none() {
            self.inner.local.prefill(messages).await
        } else {
            Ok(())
        }
    }

    fn engine_stats(&self) -> Option<Arc<crate::EngineStats>> {
        self.inner.local.engine_stats()
    }
}

#[cfg(test)]
mod tests {
    use super::after_said;

    #[test]
    fn text_already_said_is_dropped_while_it_matches() {
        assert_eq!(after_said("Our fee is", "Our"), (String::new(), Some(" fee is".into())));
        assert_eq!(after_said(" fee is", " fee is five"), (" five".into(), None));
        // The new reply parts ways: it goes on from there.
        assert_eq!(after_said("Our fee", "Our charge"), ("charge".into(), None));
        assert_eq!(after_said("Hi", "Hi"), (String::new(), None));
    }
}
