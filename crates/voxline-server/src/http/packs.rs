//! Domain packs: their state, a reload, and an expert's corrections and
//! good marks on a stored call's turn or on a question (`crate::ops::teach`).
//! A correction is written to the pack and the pack reloaded before the
//! answer: the next call gets it.

use super::error::{ApiError, JsonBody};
use super::{json_with, AppState};
use crate::handlers::agent_route::AgentRoute;
use crate::http::auth::Caller;
use crate::ops::teach::{self, Correction, Marked};
use crate::ops::text_turns::{self, TextEvent, Tools};
use crate::ops::OpError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use std::sync::Arc;

/// One change to the packs' files at a time.
static TEACHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `GET /api/packs`: each agent route's pack, `[{"route", "dir", "files",
/// "loaded_at_ms", "reloads", "sentences", "curated", "refused"}]`.
pub async fn list(State(s): State<AppState>) -> Response {
    let mut out: Vec<serde_json::Value> = s
        .ctx
        .outbound
        .agents
        .iter()
        .map(|(name, route)| {
            let mut v = with_route(name, &route.pack_status());
            // Whether its "talk to the agent" page takes calls.
            v["webrtc"] = s.ctx.cfg.routes.iter().any(|r| &r.name == name && r.webrtc).into();
            v
        })
        .collect();
    out.sort_by(|a, b| a["route"].as_str().cmp(&b["route"].as_str()));
    Json(out).into_response()
}

/// A pack file shown at most this long (longer ones are cut, and say so).
const SHOWN_FILE: usize = 256 * 1024;

/// `path`'s text for the console, cut at [`SHOWN_FILE`]; None when absent.
async fn shown_text(path: &std::path::Path) -> Result<Option<serde_json::Value>, ApiError> {
    let bytes = match tokio::fs::read(path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unreadable",
                format!("{}: {e}", path.display()),
            ))
        }
    };
    let cut = bytes.len() > SHOWN_FILE;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN_FILE)]).into_owned();
    Ok(Some(serde_json::json!({ "text": text, "cut": cut })))
}

/// `GET /api/packs/{route}`: the route's pack as it serves: its state (as
/// in the list), the knowledge files' text, the rules file's text, and the
/// curated answers.
pub async fn show(State(s): State<AppState>, Path(route): Path<String>) -> Result<Response, ApiError> {
    let agent = agent_route(&s, &route)?;
    let mut v = with_route(&route, &agent.pack_status());
    let dir = agent.pack_dir();
    let mut knowledge = Vec::new();
    for f in files_in(&dir.join("knowledge")).await {
        if let Some(mut shown) = shown_text(&f).await? {
            shown["file"] = f.file_name().map(|n| n.to_string_lossy().into_owned()).into();
            knowledge.push(shown);
        }
    }
    v["knowledge"] = knowledge.into();
    v["rules"] = shown_text(&dir.join("rules.toml")).await?.into();
    v["curated_answers"] = serde_json::to_value(agent.agent().pack().curated.answers()).unwrap_or_default();
    Ok(Json(v).into_response())
}

/// The files of a pack's folder (none when it is missing), in name order;
/// read without blocking the server's threads.
async fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = entries.next_entry().await {
            let path = e.path();
            if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The test chat's question: `{"said"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    said: String,
}

/// How long the test chat waits for the agent.
const CHAT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `POST /api/packs/{route}/chat`: the route's agent asked `said` in text
/// on a new conversation, as a caller would after its opening: `{"opening":
/// [...], "reply": [...]}`, each `{"kind": "say" | "answer" | "note",
/// "text"}` (a note is something done: a transfer, a flow step, a tool the
/// agent would call: tools do not run from the test chat).
pub async fn chat(
    State(s): State<AppState>,
    Path(route): Path<String>,
    JsonBody(body): JsonBody<ChatBody>,
) -> Result<Response, ApiError> {
    let said = body.said.trim().to_string();
    if said.is_empty() || said.len() > 2000 {
        return Err(ApiError::invalid("said", "1 to 2000 characters"));
    }
    let agent = agent_route(&s, &route)?.agent();
    let talk = async move {
        let mut conv = agent.conversation();
        let opening = conv.opening().await;
        let mut lines = Vec::new();
        let ended = text_turns::act(&mut conv, opening.into(), Tools::Tell, &mut |e| {
            chat_line(&mut lines, e)
        })
        .await?;
        let opening = std::mem::take(&mut lines);
        if !ended {
            let queue = text_turns::caller_turn(&mut conv, &said).await?;
            text_turns::act(&mut conv, queue, Tools::Tell, &mut |e| chat_line(&mut lines, e)).await?;
        }
        anyhow::Ok(serde_json::json!({ "opening": opening, "reply": lines }))
    };
    match tokio::time::timeout(CHAT_WAIT, talk).await {
        Ok(Ok(v)) => Ok(Json(v).into_response()),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "agent_failed",
            format!("the agent could not answer: {e:#}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "agent_timeout",
            format!("the agent did not answer within {} s", CHAT_WAIT.as_secs()),
        )),
    }
}

/// Adds a text event to the chat's lines (a streamed answer's phrases join
/// into one line).
fn chat_line(lines: &mut Vec<serde_json::Value>, e: TextEvent) {
    match e {
        TextEvent::Say(s) => lines.push(serde_json::json!({ "kind": "say", "text": s })),
        TextEvent::AnswerStart => lines.push(serde_json::json!({ "kind": "answer", "text": "" })),
        TextEvent::Phrase(p) => {
            if let Some(last) = lines.last_mut().filter(|l| l["kind"] == "answer") {
                let joined = format!("{} {p}", last["text"].as_str().unwrap_or_default());
                last["text"] = joined.trim().into();
            }
        }
        TextEvent::AnswerEnd { stopped } => {
            if let Some(why) = stopped {
                lines.push(serde_json::json!({ "kind": "note", "text": format!("answer stopped: {why}") }));
            }
        }
        TextEvent::Note(n) => lines.push(serde_json::json!({ "kind": "note", "text": n })),
    }
}

/// `POST /api/packs/{route}/reload`: loads the route's pack again now.
/// 200 with its state; 422 with the error (file, field, why) when it does
/// not load, the old pack serving on.
pub async fn reload(State(s): State<AppState>, Path(route): Path<String>) -> Result<Response, ApiError> {
    let agent = agent_route(&s, &route)?;
    let _one = TEACHING.lock().await;
    match agent.reload(&route).await {
        Ok(status) => Ok(Json(with_route(&route, &status)).into_response()),
        Err(e) => Err(ApiError::invalid("pack", format!("{e:#}"))),
    }
}

/// A correction's body: `{"answer", "also_asked"?, "holds"?, "by"?}`; on a
/// route (not a call) also `"asked"` and `"said"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectionBody {
    #[serde(default)]
    asked: String,
    #[serde(default)]
    said: Option<String>,
    answer: String,
    #[serde(default)]
    also_asked: Vec<String>,
    #[serde(default)]
    holds: Vec<String>,
    #[serde(default)]
    by: Option<String>,
}

/// A good mark's body: `{"by"?}`; on a route also `"asked"` and `"said"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoodBody {
    #[serde(default)]
    asked: String,
    #[serde(default)]
    said: Option<String>,
    #[serde(default)]
    by: Option<String>,
}

/// `POST /api/calls/{call_id}/turns/{turn}/correction`: the answer of that
/// turn was wrong; the body gives the right one. 201 with the curated
/// answer's number and the reloaded pack's state; 404 for a call or route
/// not here, 422 for a turn it does not have or an answer the pack refuses.
pub async fn correct_turn(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((call_id, turn)): Path<(String, i64)>,
    JsonBody(body): JsonBody<CorrectionBody>,
) -> Result<Response, ApiError> {
    let (route, agent) = route_of_call(&s, &call_id).await?;
    let marked = teach::turn_of_call(&s.ctx.store, &call_id, turn).await?;
    correct(&route, &agent, marked, body, &caller).await
}

/// `POST /api/packs/{route}/corrections`: a question (`asked`, with what
/// the agent `said`, from a chat) answered wrong; the right `answer`.
pub async fn correct_question(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(route): Path<String>,
    JsonBody(body): JsonBody<CorrectionBody>,
) -> Result<Response, ApiError> {
    let agent = agent_route(&s, &route)?;
    let marked = Marked {
        asked: body.asked.clone(),
        said: body.said.clone(),
        source: "chat".into(),
    };
    correct(&route, &agent, marked, body, &caller).await
}

/// `POST /api/calls/{call_id}/turns/{turn}/good`: that turn's answer was
/// good; kept for the fine-tuning set. 201.
pub async fn good_turn(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((call_id, turn)): Path<(String, i64)>,
    JsonBody(body): JsonBody<GoodBody>,
) -> Result<Response, ApiError> {
    let (route, agent) = route_of_call(&s, &call_id).await?;
    let marked = teach::turn_of_call(&s.ctx.store, &call_id, turn).await?;
    good(&route, &agent, marked, body.by, &caller).await
}

/// `POST /api/packs/{route}/good`: a question and answer (`asked`, `said`) marked good.
pub async fn good_question(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(route): Path<String>,
    JsonBody(body): JsonBody<GoodBody>,
) -> Result<Response, ApiError> {
    let agent = agent_route(&s, &route)?;
    let marked = Marked {
        asked: body.asked,
        said: body.said,
        source: "chat".into(),
    };
    good(&route, &agent, marked, body.by, &caller).await
}

async fn correct(
    route: &str,
    agent: &Arc<AgentRoute>,
    marked: Marked,
    body: CorrectionBody,
    caller: &Caller,
) -> Result<Response, ApiError> {
    let correction = Correction {
        asked: body.asked,
        answer: body.answer,
        also_asked: body.also_asked,
        holds: body.holds,
        by: body.by.or_else(|| Some(caller.0.clone())),
    };
    let _one = TEACHING.lock().await;
    let dir = agent.pack_dir();
    let source = marked.source.clone();
    let index = tokio::task::spawn_blocking(move || teach::correct(&dir, &marked, &correction))
        .await
        .map_err(ApiError::internal)??;
    tracing::info!(route, %source, answer = index + 1, token = %caller.0, "curated answer taught through the API");
    let status = reloaded(route, agent).await;
    Ok(json_with(
        StatusCode::CREATED,
        serde_json::json!({ "curated": index + 1, "source": source, "pack": status }),
    ))
}

async fn good(
    route: &str,
    agent: &Arc<AgentRoute>,
    marked: Marked,
    by: Option<String>,
    caller: &Caller,
) -> Result<Response, ApiError> {
    let _one = TEACHING.lock().await;
    let dir = agent.pack_dir();
    let by = by.or_else(|| Some(caller.0.clone()));
    let source = marked.source.clone();
    tokio::task::spawn_blocking(move || teach::mark_good(&dir, &marked, by))
        .await
        .map_err(ApiError::internal)??;
    let status = reloaded(route, agent).await;
    Ok(json_with(
        StatusCode::CREATED,
        serde_json::json!({ "good": true, "source": source, "pack": status }),
    ))
}

/// The route's pack reloaded after a change (its state, with the reason
/// when the reload was refused).
async fn reloaded(route: &str, agent: &AgentRoute) -> serde_json::Value {
    // A refusal is logged and kept in the state by `reload`.
    let _ = agent.reload(route).await;
    with_route(route, &agent.pack_status())
}

fn with_route(route: &str, status: &crate::handlers::agent_route::PackStatus) -> serde_json::Value {
    let mut v = serde_json::to_value(status).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("route".into(), route.into());
    }
    v
}

fn agent_route(s: &AppState, route: &str) -> Result<Arc<AgentRoute>, ApiError> {
    s.ctx
        .outbound
        .agents
        .get(route)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no agent route {route:?}")))
}

/// The agent route that took call `call_id` (its pack is the one taught).
async fn route_of_call(s: &AppState, call_id: &str) -> Result<(String, Arc<AgentRoute>), ApiError> {
    let records = s.ctx.store.find_by_call_id(call_id).await?;
    let Some(route) = records.iter().find_map(|r| r.route.clone()) else {
        return Err(OpError::NotFound(format!("no call {call_id} in the call records")).into());
    };
    let agent = agent_route(s, &route).map_err(|_| {
        ApiError::not_found(format!(
            "call {call_id} was on route {route:?}, not an agent route of this node"
        ))
    })?;
    Ok((route, agent))
}
