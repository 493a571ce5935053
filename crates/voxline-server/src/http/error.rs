//! The API's errors: a status and a JSON body `{"error", "message",
//! "field"}` (`field` names the input at fault on a 422), and the extractors
//! that turn a bad body or query into one.

use crate::ops::OpError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// Its HTTP status.
    pub status: StatusCode,
    /// A short code a program can match (`not_found`, `invalid`…).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// The input at fault (422).
    pub field: Option<String>,
    /// The `WWW-Authenticate` header of a 401.
    pub challenge: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// An error of `status` with `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            challenge: None,
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
        }
    }

    /// 500; the cause goes to the log, not to the client.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to answer (see its log)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: self.code,
            message: &self.message,
            field: self.field.as_deref(),
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(c) = self.challenge {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        resp
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        match e {
            OpError::NotFound(m) => ApiError::not_found(m),
            OpError::Invalid { field, message } => ApiError::invalid(field, message),
            OpError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            OpError::Store(e) => ApiError::internal(e),
        }
    }
}

impl From<voxline_store::StoreError> for ApiError {
    fn from(e: voxline_store::StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

/// A JSON body read into `T`; a body that does not fit is a 422 naming
/// the field (`settings.timezone`), one too large a 413.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut de) {
            Ok(v) => Ok(JsonBody(v)),
            Err(e) => {
                let path = e.path().to_string();
                let field = if path == "." { "body".to_string() } else { path };
                Err(ApiError::invalid(field, e.into_inner().to_string()))
            }
        }
    }
}

/// The request's body; too large is a 413.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rej| {
        let status = rej.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "too_large", rej.body_text())
        } else {
            ApiError::new(status, "bad_body", rej.body_text())
        }
    })
}

/// A query string that does not fit: 422 naming the query.
/// A list's `?limit=`: `default` when absent, else within 1..=`max`.
pub fn list_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid("limit", format!("1 to {max}")))
    }
}

pub fn bad_query(rej: QueryRejection) -> ApiError {
    ApiError::invalid("query", rej.body_text())
}
