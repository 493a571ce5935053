//! Bearer tokens: `Authorization: Bearer <token>` is hashed (SHA-256) and
//! compared, in constant time, with every `[[http.token]]` hash. A GET or
//! HEAD needs the `read` scope, anything else `write` (which includes read).
//! No token or an unknown one is a 401, too small a scope a 403.

use super::error::ApiError;
use crate::config::http::{ApiToken, Scope};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The configured tokens, by hash.
#[derive(Debug, Default)]
pub struct Tokens(Vec<(String, [u8; 32], Scope)>);

/// Who made a request: the name of its token (in the logs of what it did).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

pub use crate::config::http::hash_of;

impl Tokens {
    /// The tokens of `[[http.token]]` (validated: every hash is readable).
    pub fn new(tokens: &[ApiToken]) -> Tokens {
        Tokens(
            tokens
                .iter()
                .filter_map(|t| t.digest().map(|d| (t.name.clone(), d, t.scope)))
                .collect(),
        )
    }

    /// Err (401) when no token is configured: nothing is allowed then.
    fn any_configured(&self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Err(unauthorized(
                "no API tokens are configured: add a [[http.token]] (voxline token new prints one)",
                "Bearer realm=\"voxline\"",
            ));
        }
        Ok(())
    }

    /// The caller of a request with `headers` when its token allows `need`.
    pub fn check(&self, headers: &HeaderMap, need: Scope) -> Result<Caller, ApiError> {
        self.any_configured()?;
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(
                "an Authorization: Bearer token is required",
                "Bearer realm=\"voxline\"",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(unauthorized(
                "the Authorization header must be \"Bearer <token>\"",
                "Bearer realm=\"voxline\", error=\"invalid_request\"",
            ));
        };
        self.check_token(token, need)
    }

    /// The caller holding `token` when it allows `need` (a token sent other
    /// than in a header: a browser's WebSocket cannot set one).
    pub fn check_token(&self, token: &str, need: Scope) -> Result<Caller, ApiError> {
        self.any_configured()?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every hash is compared, whichever matches.
        let mut found = None;
        for (name, hash, scope) in &self.0 {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some((name, *scope));
            }
        }
        let Some((name, scope)) = found else {
            return Err(unauthorized(
                "the token is not known",
                "Bearer realm=\"voxline\", error=\"invalid_token\"",
            ));
        };
        if scope < need {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "token {name:?} has the {} scope; this request needs {}",
                    scope.name(),
                    need.name()
                ),
            ));
        }
        Ok(Caller(name.clone()))
    }
}

/// A 401 with its `WWW-Authenticate` challenge.
fn unauthorized(message: &str, challenge: &'static str) -> ApiError {
    ApiError {
        challenge: Some(challenge),
        ..ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

/// The middleware: lets a request through when its token allows it.
pub async fn authorize(State(tokens): State<Arc<Tokens>>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let need = if matches!(*req.method(), Method::GET | Method::HEAD) {
        Scope::Read
    } else {
        Scope::Write
    };
    let caller = tokens.check(req.headers(), need)?;
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn tokens() -> Tokens {
        Tokens::new(&[
            ApiToken {
                name: "ops".into(),
                hash: Some(hash_of("vxl_read")),
                file: None,
                scope: Scope::Read,
            },
            ApiToken {
                name: "crm".into(),
                hash: Some(hash_of("vxl_write")),
                file: None,
                scope: Scope::Write,
            },
        ])
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(t).unwrap());
        h
    }

    #[test]
    fn a_token_is_checked_by_its_hash_and_scope() {
        let t = tokens();
        assert_eq!(t.check(&bearer("Bearer vxl_read"), Scope::Read).unwrap().0, "ops");
        assert_eq!(t.check(&bearer("Bearer vxl_write"), Scope::Read).unwrap().0, "crm");
        assert_eq!(t.check(&bearer("Bearer vxl_write"), Scope::Write).unwrap().0, "crm");
        let e = t.check(&bearer("Bearer vxl_read"), Scope::Write).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.message.contains("\"ops\""), "{}", e.message);
        for bad in ["Bearer vxl_other", "Basic dXNlcjpwYXNz", "Bearer ", "vxl_read"] {
            let e = t.check(&bearer(bad), Scope::Read).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{bad}");
            assert!(e.challenge.is_some());
        }
        let e = t.check(&HeaderMap::new(), Scope::Read).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn without_tokens_nothing_is_let_through() {
        let e = Tokens::default()
            .check(&bearer("Bearer anything"), Scope::Read)
            .unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert!(e.message.contains("[[http.token]]"), "{}", e.message);
    }

    #[test]
    fn a_hash_is_the_config_s_form() {
        let h = hash_of("abc");
        assert_eq!(
            h,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let t = ApiToken {
            name: "x".into(),
            hash: Some(h),
            file: None,
            scope: Scope::Read,
        };
        assert!(t.digest().is_some());
    }
}
