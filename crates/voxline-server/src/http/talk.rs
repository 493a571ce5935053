//! Browser calls: the "talk to the agent" page (`GET /talk/{route}`) and
//! its signalling socket (`GET /api/talk/{route}` upgraded to a WebSocket).
//!
//! On the socket, JSON messages with a `type`:
//! 1. page → `{"type": "hello", "token": "<API token>"}` (a browser cannot
//!    set an Authorization header on a WebSocket; the token needs `write`);
//! 2. server → `{"type": "ready", "route", "ice_servers": [...]}`;
//! 3. page → `{"type": "offer", "sdp": "..."}` (candidates gathered in it);
//! 4. server → `answer`, `connected`, a `line` per transcript line, and
//!    `ended` (or `error`, which ends the call too);
//! 5. page → `{"type": "hangup"}` at any time; closing the socket is a
//!    hang-up as well.
//!
//! Anything else (not JSON, an unknown type, binary frames, a message over
//! 128 KiB, more than 20 messages in a second, no hello or offer within 10 s)
//! gets an `error` and the socket closed; the call, if any, ends.

use super::page_socket::{accept, close, next_message, page_message, Rate, Refusal};
use super::web_files::html;
use super::AppState;
use crate::config::http::Scope;
use crate::handlers::agent_route::browser::{BrowserCall, PageFeed, ToPage};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use voxline_webrtc::PageSignals;

/// The page and its script (no build step, nothing from a CDN).
const TALK_HTML: &str = include_str!("../../web/talk.html");
const TALK_JS: &str = include_str!("../../web/talk.js");

/// `GET /talk/{route}`: the page (the route is read from its address).
pub async fn page(Path(_route): Path<String>) -> Response {
    html(TALK_HTML)
}

/// `GET /web/talk.js`.
pub async fn script() -> Response {
    super::web_files::script(TALK_JS)
}

/// `GET /api/talk/{route}`: the signalling socket (a request that is not
/// a WebSocket upgrade gets a JSON 400 like every API error).
pub async fn socket(
    State(state): State<AppState>,
    Path(route): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let sockets = state.page_sockets.clone();
    accept(ws, &sockets, move |socket| serve(socket, route, state))
}

/// What the page sends.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum FromPage {
    Hello { token: String },
    Offer { sdp: String },
    // A struct variant: unknown fields are refused (a unit variant would ignore them).
    Hangup {},
}

/// A page's socket: the handshake, then its call.
async fn serve(socket: WebSocket, route: String, state: AppState) {
    let (mut out, mut input) = socket.split();
    let mut rate = Rate::default();
    let call = match handshake(&mut out, &mut input, &mut rate, &route, &state).await {
        Ok(call) => call,
        Err(Refusal(message)) => {
            tracing::info!(route = %route, error = %message, "browser call refused");
            let text = json(&ToPage::Error { message });
            out.send(Message::Text(text)).await.ok();
            close(&mut out, &mut input).await;
            return;
        }
    };
    let Handshake {
        offer,
        caller,
        agent,
        route_cfg,
        permit,
    } = call;
    let (feed, mut to_page) = PageFeed::new();
    let signals = PageSignals::default();
    let browser = BrowserCall {
        offer,
        caller,
        source: None,
        feed,
        signals: signals.clone(),
    };
    let ctx = state.ctx.clone();
    let run = tokio::spawn(async move {
        let settings = ctx.cfg.webrtc.settings(ctx.cfg.media.bind_ip);
        agent
            .browser_call(&route_cfg, browser, &settings, &ctx.outbound.records)
            .await;
        drop(permit);
    });
    loop {
        tokio::select! {
            m = to_page.recv() => {
                let Some(m) = m else { break };
                let last = matches!(m, ToPage::Ended { .. });
                if out.send(Message::Text(json(&m))).await.is_err() || last {
                    break;
                }
            }
            m = input.next() => match page_message::<FromPage>(m, &mut rate) {
                Ok(Some(FromPage::Hangup {})) => signals.page_hung_up.cancel(),
                Ok(Some(_)) => {
                    let text = json(&ToPage::Error { message: "the call is already set up: only hangup is taken now".into() });
                    out.send(Message::Text(text)).await.ok();
                    break;
                }
                Ok(None) => {}
                Err(Some(Refusal(message))) => {
                    out.send(Message::Text(json(&ToPage::Error { message }))).await.ok();
                    break;
                }
                // The page went away.
                Err(None) => break,
            },
        }
    }
    // Whatever ended the loop ends the call (a no-op when it is over).
    signals.page_hung_up.cancel();
    close(&mut out, &mut input).await;
    run.await.ok();
}

/// What the handshake gives.
struct Handshake {
    offer: String,
    caller: String,
    agent: std::sync::Arc<crate::handlers::agent_route::AgentRoute>,
    route_cfg: voxline_sip::RouteConfig,
    permit: tokio::sync::OwnedSemaphorePermit,
}

/// Hello (token), ready, offer: Err is what the page is told.
async fn handshake(
    out: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    input: &mut futures_util::stream::SplitStream<WebSocket>,
    rate: &mut Rate,
    route: &str,
    state: &AppState,
) -> Result<Handshake, Refusal> {
    let token = match next_message::<FromPage>(input, rate).await? {
        FromPage::Hello { token } => token,
        _ => {
            return Err(Refusal(
                "the first message must be {\"type\": \"hello\", \"token\": ...}".into(),
            ))
        }
    };
    let caller = state
        .tokens
        .check_token(token.trim(), Scope::Write)
        .map_err(|e| Refusal(e.message))?;
    let ctx = &state.ctx;
    let route_cfg = ctx
        .cfg
        .routes
        .iter()
        .find(|r| r.name == route && r.webrtc)
        .cloned()
        .ok_or_else(|| {
            Refusal(format!(
                "no route {route:?} takes browser calls (a route needs webrtc = true)"
            ))
        })?;
    let agent = ctx
        .outbound
        .agents
        .get(route)
        .cloned()
        .ok_or_else(|| Refusal(format!("route {route:?} has no agent running on this node")))?;
    let permit = ctx.browser_slots.clone().try_acquire_owned().map_err(|_| {
        Refusal(format!(
            "this node has {} browser calls up, its most (webrtc.max_calls): try again later",
            ctx.cfg.webrtc.max_calls
        ))
    })?;
    let ready = serde_json::json!({
        "type": "ready",
        "route": route,
        "ice_servers": ctx.cfg.webrtc.ice_servers,
    });
    out.send(Message::Text(ready.to_string().into()))
        .await
        .map_err(|_| Refusal("the page went away".into()))?;
    let offer = match next_message::<FromPage>(input, rate).await? {
        FromPage::Offer { sdp } => sdp,
        _ => return Err(Refusal("after hello, the page must send its offer".into())),
    };
    Ok(Handshake {
        offer,
        caller: format!("webrtc:{}", caller.0),
        agent,
        route_cfg,
        permit,
    })
}

fn json(m: &ToPage) -> Utf8Bytes {
    serde_json::to_string(m).unwrap_or_default().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_messages_are_json_of_known_types_only() {
        let mut r = Rate::default();
        let text = |s: &str| Some(Ok(Message::Text(s.to_string().into())));
        assert!(matches!(
            page_message::<FromPage>(text(r#"{"type":"hangup"}"#), &mut r),
            Ok(Some(FromPage::Hangup {}))
        ));
        assert!(matches!(
            page_message::<FromPage>(text(r#"{"type":"hello","token":"t"}"#), &mut r),
            Ok(Some(FromPage::Hello { .. }))
        ));
        for bad in [
            "garbage",
            r#"{"type":"dance"}"#,
            r#"{"type":"offer"}"#,
            r#"{"type":"hangup","x":1}"#,
        ] {
            assert!(
                matches!(page_message::<FromPage>(text(bad), &mut r), Err(Some(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            page_message::<FromPage>(Some(Ok(Message::Binary(vec![1u8, 2].into()))), &mut r),
            Err(Some(_))
        ));
        assert!(matches!(page_message::<FromPage>(None, &mut r), Err(None)));
    }
}
