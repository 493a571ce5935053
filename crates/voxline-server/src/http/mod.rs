//! The HTTP API (`[http] bind`, loopback by default): health, call records
//! and live calls, placing and hanging up calls, campaigns and the
//! do-not-call lists, trunks, Prometheus metrics; its OpenAPI document at
//! `/api/openapi.json`. Everything but `/healthz` and the document needs a
//! bearer token (`auth`); errors are JSON (`error`).

mod auth;
mod calls;
mod campaigns;
mod console;
mod error;
mod health;
mod metrics;
mod packs;
mod page_socket;
mod qa;
mod talk;
mod training;
mod web_files;
mod webhooks;

pub use auth::hash_of;

use crate::config::Config;
use crate::handlers::agent_route::AgentRoute;
use crate::handlers::live::LiveCalls;
use crate::handlers::CallCounters;
use crate::records::Records;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use error::ApiError;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::CompressionLayer;
use voxline_sip::registration::RegistrationState;
use voxline_sip::SipEndpoint;
use voxline_store::CallStore;

/// The OpenAPI document of this API.
const OPENAPI: &str = include_str!("openapi.json");

/// Largest contacts upload.
const MAX_UPLOAD: usize = 64 * 1024 * 1024;

/// What places the API's calls: the node's agent routes on its SIP endpoint,
/// within its outbound call slots (shared with the campaigns).
pub struct Outbound {
    /// The agent routes, by route name.
    pub agents: HashMap<String, Arc<AgentRoute>>,
    /// The SIP endpoint.
    pub endpoint: Arc<SipEndpoint>,
    /// The call-record writer.
    pub records: Records,
    /// The node's outbound call slots (`[campaigns] max_calls`).
    pub slots: Arc<Semaphore>,
}

/// What the API serves from.
pub struct ApiContext {
    /// The configuration (routes, trunks, tokens).
    pub cfg: Arc<Config>,
    /// The call store.
    pub store: CallStore,
    /// The live counters.
    pub counters: Arc<CallCounters>,
    /// The SIP router (trunks and their calls).
    pub router: Arc<voxline_sip::routing::Router>,
    /// Each registering trunk's state.
    pub registrations: Vec<(String, watch::Receiver<RegistrationState>)>,
    /// The agent calls up on this node.
    pub live: LiveCalls,
    /// Places calls (`POST /api/calls`).
    pub outbound: Outbound,
    /// Browser calls up at once (`[webrtc] max_calls`).
    pub browser_slots: Arc<Semaphore>,
}

/// The handlers' state.
#[derive(Clone)]
pub struct AppState {
    ctx: Arc<ApiContext>,
    /// The API's tokens (a browser's socket sends its token in a message).
    tokens: Arc<auth::Tokens>,
    /// Places for the pages' sockets (talk and console) open at once.
    page_sockets: Arc<Semaphore>,
}

/// The API's routes on `ctx`.
pub fn app(ctx: ApiContext) -> Router {
    let tokens = Arc::new(auth::Tokens::new(&ctx.cfg.http.tokens));
    let page_sockets = Arc::new(Semaphore::new(
        ctx.cfg.webrtc.max_calls + page_socket::MAX_OTHER_SOCKETS,
    ));
    let state = AppState {
        ctx: Arc::new(ctx),
        tokens: tokens.clone(),
        page_sockets,
    };
    let guarded = Router::new()
        .route("/api/calls", get(calls::list).post(calls::place))
        .route("/api/calls/{call_id}", get(calls::show))
        .route("/api/calls/{call_id}/transcript", get(calls::transcript))
        .route("/api/calls/{call_id}/turns", get(calls::turns))
        .route("/api/calls/{call_id}/flow", get(calls::flow))
        .route("/api/calls/{call_id}/tools", get(calls::tools))
        .route("/api/calls/{call_id}/recording", get(calls::recording))
        .route("/api/calls/{call_id}/qa", get(qa::call))
        .route("/api/calls/{call_id}/summary", get(qa::summary))
        .route("/api/qa", get(qa::list))
        .route("/api/calls/{call_id}/training", get(training::call))
        .route("/api/training", get(training::list))
        .route("/api/calls/{call_id}/hangup", post(calls::hang_up))
        .route(
            "/api/calls/{call_id}/turns/{turn}/correction",
            post(packs::correct_turn),
        )
        .route("/api/calls/{call_id}/turns/{turn}/good", post(packs::good_turn))
        .route("/api/packs", get(packs::list))
        .route("/api/packs/{route}", get(packs::show))
        .route("/api/packs/{route}/chat", post(packs::chat))
        .route("/api/packs/{route}/reload", post(packs::reload))
        .route("/api/packs/{route}/corrections", post(packs::correct_question))
        .route("/api/packs/{route}/good", post(packs::good_question))
        .route("/api/live", get(calls::live))
        .route("/api/load", get(metrics::load))
        .route("/api/trunks", get(calls::trunks))
        .route("/api/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/api/campaigns/{campaign}", get(campaigns::show))
        .route(
            "/api/campaigns/{campaign}/contacts",
            post(campaigns::upload).layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/api/campaigns/{campaign}/start", post(campaigns::start))
        .route("/api/campaigns/{campaign}/pause", post(campaigns::pause))
        .route("/api/campaigns/{campaign}/resume", post(campaigns::resume))
        .route("/api/campaigns/{campaign}/stop", post(campaigns::stop))
        .route("/api/campaigns/{campaign}/progress", get(campaigns::progress))
        .route("/api/campaigns/{campaign}/timeline", get(campaigns::timeline))
        .route("/api/campaigns/{campaign}/results.csv", get(campaigns::results))
        .route(
            "/api/campaigns/{campaign}/dnc",
            get(campaigns::campaign_dnc).post(campaigns::add_campaign_dnc),
        )
        .route(
            "/api/campaigns/{campaign}/dnc/{number}",
            axum::routing::delete(campaigns::remove_campaign_dnc),
        )
        .route("/api/dnc", get(campaigns::global_dnc).post(campaigns::add_global_dnc))
        .route("/api/dnc/{number}", axum::routing::delete(campaigns::remove_global_dnc))
        .route("/api/webhooks/deliveries", get(webhooks::deliveries))
        .route("/metrics", get(metrics::metrics))
        .route_layer(axum::middleware::from_fn_with_state(tokens, auth::authorize));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/api/openapi.json", get(openapi))
        .route("/talk/{route}", get(talk::page))
        .route("/web/talk.js", get(talk::script))
        .route("/web/console.css", get(web_files::style))
        .route("/api/talk/{route}", get(talk::socket))
        .route("/console", get(console::page))
        .route("/console/calls", get(console::page))
        .route("/console/calls/{call_id}", get(console::page))
        .route("/console/load", get(console::page))
        .route("/console/campaigns", get(console::page))
        .route("/console/campaigns/{campaign}", get(console::page))
        .route("/console/packs", get(console::page))
        .route("/console/packs/{route}", get(console::page))
        .route("/web/console.js", get(console::script))
        .route("/api/live/socket", get(console::socket))
        .merge(guarded)
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .with_state(state)
        .layer(compression())
}

/// Gzip for the clients that take it (the pages, their scripts, JSON,
/// metrics), above 32 bytes; not for recordings (audio compresses little
/// and is streamed with its length), images or event streams.
fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .gzip(true)
        .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("audio/")))
}

/// Binds `bind` and serves the API until `shutdown`.
pub async fn start(bind: SocketAddr, ctx: ApiContext, shutdown: CancellationToken) -> anyhow::Result<()> {
    let app = app(ctx);
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(addr = %bind, "HTTP API listening");
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "HTTP API stopped");
        }
    });
    Ok(())
}

async fn openapi() -> Response {
    ([("content-type", "application/json")], OPENAPI).into_response()
}

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such endpoint (see /api/openapi.json)",
    )
}

async fn no_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method (see /api/openapi.json)",
    )
}

/// A JSON answer with `status`.
fn json_with<T: serde::Serialize>(status: StatusCode, v: T) -> Response {
    (status, Json(v)).into_response()
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;

    #[test]
    fn the_openapi_document_is_json_with_paths() {
        let v: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(v["openapi"].as_str().is_some_and(|s| s.starts_with("3.")));
        let paths = v["paths"].as_object().expect("paths");
        assert!(paths.contains_key("/api/calls"));
        assert!(paths.contains_key("/api/campaigns/{campaign}/contacts"));
    }
}
