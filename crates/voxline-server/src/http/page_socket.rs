//! What the pages' WebSockets share (the talk page's call signalling and
//! the console's live calls): the upgrade with its size limit, messages
//! read as JSON of the socket's own types under a rate limit and a
//! handshake deadline, refusals to tell the page, and the normal close.

use super::error::ApiError;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The largest message or frame taken from a page (an offer is ~5 KB).
pub const MAX_MESSAGE: usize = 128 * 1024;
/// Messages a page may send in one second.
pub const MAX_RATE: u32 = 20;
/// How long the page has for its hello, and then its offer.
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// Pages' sockets open at once beyond the node's browser calls (consoles,
/// and sockets still in their handshake).
pub const MAX_OTHER_SOCKETS: usize = 128;

/// Takes a page's WebSocket and runs `serve` on it, holding a place among
/// the node's page sockets until `serve` returns; a request that is not an
/// upgrade gets a JSON 400 like every API error, one over the limit a 503
/// `busy`.
pub(super) fn accept<F, Fut>(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    sockets: &Arc<Semaphore>,
    serve: F,
) -> Response
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    match upgrade(ws, sockets) {
        Ok((ws, place)) => ws.on_upgrade(move |socket| async move {
            serve(socket).await;
            drop(place);
        }),
        Err(e) => e.into_response(),
    }
}

/// A WebSocket upgrade taking messages up to [`MAX_MESSAGE`], with its
/// place among the node's page sockets.
fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    sockets: &Arc<Semaphore>,
) -> Result<(WebSocketUpgrade, OwnedSemaphorePermit), ApiError> {
    let ws = ws.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_a_websocket",
            format!("this address takes a WebSocket: {e}"),
        )
    })?;
    let place = sockets.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "this node has as many page sockets open as it takes: try again later",
        )
    })?;
    Ok((ws.max_message_size(MAX_MESSAGE).max_frame_size(MAX_MESSAGE), place))
}

/// Why the socket is being closed on the page.
pub(super) struct Refusal(pub(super) String);

/// The next message of the handshake, within [`HANDSHAKE`].
pub(super) async fn next_message<T: serde::de::DeserializeOwned>(
    input: &mut futures_util::stream::SplitStream<WebSocket>,
    rate: &mut Rate,
) -> Result<T, Refusal> {
    let deadline = tokio::time::Instant::now() + HANDSHAKE;
    loop {
        let m = tokio::time::timeout_at(deadline, input.next())
            .await
            .map_err(|_| Refusal(format!("nothing from the page within {} s", HANDSHAKE.as_secs())))?;
        match page_message(m, rate) {
            Ok(Some(m)) => return Ok(m),
            Ok(None) => {}
            Err(r) => return Err(r.unwrap_or_else(|| Refusal("the page went away".into()))),
        }
    }
}

/// One frame from the page: `Ok(None)` for pings and pongs, `Err(None)`
/// when the page is gone, `Err(Some)` for what it must be told.
pub(super) fn page_message<T: serde::de::DeserializeOwned>(
    m: Option<Result<Message, axum::Error>>,
    rate: &mut Rate,
) -> Result<Option<T>, Option<Refusal>> {
    let m = match m {
        None | Some(Ok(Message::Close(_))) => return Err(None),
        Some(Err(e)) => return Err(Some(Refusal(format!("bad WebSocket frame: {e}")))),
        Some(Ok(m)) => m,
    };
    if !rate.take() {
        return Err(Some(Refusal(format!("more than {MAX_RATE} messages in a second"))));
    }
    match m {
        Message::Text(t) => serde_json::from_str::<T>(t.as_str())
            .map(Some)
            .map_err(|e| Some(Refusal(format!("not a message this socket takes: {e}")))),
        Message::Binary(_) => Err(Some(Refusal("binary frames are not taken: send JSON text".into()))),
        _ => Ok(None),
    }
}

/// Messages counted per one-second window.
#[derive(Debug)]
pub(super) struct Rate {
    window: Instant,
    count: u32,
}

impl Default for Rate {
    fn default() -> Self {
        Rate {
            window: Instant::now(),
            count: 0,
        }
    }
}

impl Rate {
    /// Counts one message; false when the window's allowance is spent.
    pub(super) fn take(&mut self) -> bool {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.count = 0;
        }
        self.count += 1;
        self.count <= MAX_RATE
    }
}

/// How long a closed socket is read on for the page's own close.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Closes a socket normally: sends the close, then reads on (and drops)
/// what the page still sends until its close comes back, at most
/// [`CLOSE_WAIT`]. Dropping the connection with the page's frames unread
/// would make the kernel reset it, and the page could lose the last
/// message sent to it (the error telling it why) — a flooding page did.
pub(super) async fn close(
    out: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    input: &mut futures_util::stream::SplitStream<WebSocket>,
) {
    let sent = out
        .send(Message::Close(Some(CloseFrame {
            code: axum::extract::ws::close_code::NORMAL,
            reason: Utf8Bytes::from_static(""),
        })))
        .await
        .is_ok();
    if sent {
        tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(m)) = input.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await
        .ok();
    }
    out.close().await.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_allows_twenty_messages_a_second() {
        let mut r = Rate::default();
        for _ in 0..MAX_RATE {
            assert!(r.take());
        }
        assert!(!r.take(), "the 21st in the same second is refused");
    }
}
