//! The operators' console: its pages (`/console` the live calls,
//! `/console/calls` the history, `/console/calls/{call_id}` one call,
//! `/console/campaigns[/{name}]`, `/console/packs[/{route}]` with the test
//! chat, `/console/load` latency and load over time) and the live calls'
//! socket (`GET /api/live/socket`).
//!
//! The pages are plain HTML, CSS and JavaScript compiled into the binary
//! (nothing from a CDN); they read the API with the operator's token.
//!
//! On the socket, JSON messages with a `type`:
//! 1. console → `{"type": "hello", "token": "<API token>"}` (read scope);
//! 2. server → `{"type": "calls", "calls": [...]}`: the calls up now, each
//!    with its transcript so far;
//! 3. server → `started`, `line` and `ended` as they happen (a console too
//!    slow to keep up is sent `calls` again).
//!
//! Anything else from the console (not JSON, another type, binary, over
//! 128 KiB or 20 messages a second, no hello within 10 s) gets an `error`
//! and the socket closed.

use super::page_socket::{accept, close, next_message, page_message, Rate, Refusal};
use super::web_files::html;
use super::AppState;
use crate::config::http::Scope;
use crate::handlers::live::LiveSnapshot;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;

const CONSOLE_HTML: &str = include_str!("../../web/console.html");
const CONSOLE_JS: &str = include_str!("../../web/console.js");

/// `GET /console` and every `/console/...` page: the console's one page
/// (its script shows the view its address names).
pub async fn page() -> Response {
    html(CONSOLE_HTML)
}

/// `GET /web/console.js`.
pub async fn script() -> Response {
    super::web_files::script(CONSOLE_JS)
}

/// What a console sends.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum FromConsole {
    Hello { token: String },
}

/// `GET /api/live/socket`: the live calls, pushed.
pub async fn socket(
    State(state): State<AppState>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let sockets = state.page_sockets.clone();
    accept(ws, &sockets, move |socket| serve(socket, state))
}

type Out = futures_util::stream::SplitSink<WebSocket, Message>;

async fn send(out: &mut Out, v: serde_json::Value) -> bool {
    out.send(Message::Text(v.to_string().into())).await.is_ok()
}

async fn send_calls(out: &mut Out, calls: &[LiveSnapshot]) -> bool {
    send(out, serde_json::json!({ "type": "calls", "calls": calls })).await
}

async fn serve(socket: WebSocket, state: AppState) {
    let (mut out, mut input) = socket.split();
    let mut rate = Rate::default();
    let hello = next_message::<FromConsole>(&mut input, &mut rate)
        .await
        .and_then(|FromConsole::Hello { token }| {
            state
                .tokens
                .check_token(token.trim(), Scope::Read)
                .map_err(|e| Refusal(e.message))
        });
    let who = match hello {
        Ok(who) => who,
        Err(Refusal(message)) => {
            tracing::info!(error = %message, "console socket refused");
            send(&mut out, serde_json::json!({ "type": "error", "message": message })).await;
            close(&mut out, &mut input).await;
            return;
        }
    };
    tracing::debug!(token = %who.0, "console watching the live calls");
    let (calls, mut events) = state.ctx.live.watch();
    if !send_calls(&mut out, &calls).await {
        return;
    }
    loop {
        tokio::select! {
            e = events.recv() => {
                let sent = match e {
                    Ok(e) => send(&mut out, serde_json::to_value(&e).unwrap_or_default()).await,
                    // Fell behind: the whole list again, and on from there.
                    Err(RecvError::Lagged(_)) => {
                        let (calls, again) = state.ctx.live.watch();
                        events = again;
                        send_calls(&mut out, &calls).await
                    }
                    Err(RecvError::Closed) => false,
                };
                if !sent {
                    break;
                }
            }
            m = input.next() => match page_message::<FromConsole>(m, &mut rate) {
                Ok(None) => {}
                Ok(Some(_)) => {
                    send(&mut out, serde_json::json!({ "type": "error", "message": "hello is sent once" })).await;
                    break;
                }
                Err(Some(Refusal(message))) => {
                    send(&mut out, serde_json::json!({ "type": "error", "message": message })).await;
                    break;
                }
                Err(None) => break,
            },
        }
    }
    close(&mut out, &mut input).await;
}
