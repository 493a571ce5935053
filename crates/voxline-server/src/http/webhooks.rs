//! `GET /api/webhooks/deliveries`: the webhook outbox, to see what was
//! sent, what is being retried and what was given up.

use super::error::{bad_query, ApiError};
use super::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

/// `?state=pending|sending|delivered|failed&limit=N`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    state: Option<String>,
    limit: Option<i64>,
}

/// The newest deliveries, newest first.
pub async fn deliveries(
    State(s): State<AppState>,
    q: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "1 to 1000"));
    }
    if let Some(st) = q.state.as_deref() {
        if !["pending", "sending", "delivered", "failed"].contains(&st) {
            return Err(ApiError::invalid("state", "pending, sending, delivered or failed"));
        }
    }
    let rows = s.ctx.store.webhook_deliveries(q.state.as_deref(), limit).await?;
    let out: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id,
                "campaign": (!d.owner.is_empty()).then_some(d.owner),
                "url": d.url,
                "event": d.event,
                "state": d.state,
                "attempts": d.attempts,
                "last_status": d.last_status,
                "last_error": d.last_error,
                "created_at": d.created_at,
                "delivered_at": d.delivered_at,
                "body": serde_json::from_str::<serde_json::Value>(&d.body).unwrap_or(serde_json::Value::String(d.body)),
            })
        })
        .collect();
    Ok(Json(out).into_response())
}
