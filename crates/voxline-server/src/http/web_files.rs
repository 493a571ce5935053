//! The pages' files, compiled into the binary (no build step, nothing
//! from a CDN, decision 0087), served with the headers every page shares.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The stylesheet of the talk page and the console.
const CONSOLE_CSS: &str = include_str!("../../web/console.css");

/// An HTML page of this server: its own scripts, styles and sockets only.
pub(super) fn html(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            // Only this server's own scripts and sockets; the microphone for this page.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; connect-src 'self'; img-src 'self' data:; media-src 'self' blob:",
            ),
        ],
        body,
    )
        .into_response()
}

/// A script of this server's pages.
pub(super) fn script(body: &'static str) -> Response {
    asset("text/javascript; charset=utf-8", body)
}

/// `GET /web/console.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", CONSOLE_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
