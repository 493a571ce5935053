//! `[http]`: the HTTP API's address and the bearer tokens it accepts
//! (`[[http.token]]`: the SHA-256 hash of each, or a file holding the token
//! itself, readable by the server only; `voxline token new` makes one).

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use voxline_sip::config::FieldError;

/// `[http]`: the HTTP API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the HTTP API (health, call records, campaigns, metrics); absent = off.
    #[serde(default)]
    pub bind: Option<std::net::SocketAddr>,
    /// `[[http.token]]`: who may use the API. Without any, only `/healthz`
    /// and `/api/openapi.json` answer; everything else is 401.
    #[serde(default, rename = "token")]
    pub tokens: Vec<ApiToken>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read call records, transcripts, campaigns, metrics.
    Read,
    /// Read, and place / hang up calls, create and run campaigns, edit the
    /// do-not-call lists.
    Write,
}

impl Scope {
    /// Its name in the config and in errors.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
}

/// `[[http.token]]`: one bearer token, by the hash of its secret or a file
/// holding it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it (in the logs of what it did).
    pub name: String,
    /// `sha256:` and the hex SHA-256 of the token.
    #[serde(default)]
    pub hash: Option<String>,
    /// A file holding the token itself (`make run` makes
    /// `~/.cache/voxline/api-token` for the local tools); read at start.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// `read` (the default) or `write`.
    #[serde(default = "default_scope")]
    pub scope: Scope,
}

fn default_scope() -> Scope {
    Scope::Read
}

/// The prefix of a token's hash in the config.
pub const HASH_PREFIX: &str = "sha256:";

/// Shortest token accepted from a file.
const MIN_TOKEN: usize = 16;

/// The `sha256:…` hash of a token, as `[[http.token]] hash` holds it.
pub fn hash_of(token: &str) -> String {
    format!("{HASH_PREFIX}{}", hex::encode(Sha256::digest(token.as_bytes())))
}

impl ApiToken {
    /// The 32 bytes of the hash (after [`HttpConfig::read_files`]).
    pub fn digest(&self) -> Option<[u8; 32]> {
        let hex_part = self.hash.as_deref()?.strip_prefix(HASH_PREFIX)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).ok()?;
        Some(out)
    }
}

impl HttpConfig {
    /// Reads the tokens given by `file` (relative to `base`) into their
    /// hash; a token needs one of `hash` and `file`.
    pub fn read_files(&mut self, base: &Path) -> Result<(), FieldError> {
        for (i, t) in self.tokens.iter_mut().enumerate() {
            match (&t.hash, &t.file) {
                (Some(_), Some(_)) => {
                    return Err(FieldError::new(
                        format!("http.token[{i}]"),
                        "give hash or file, not both",
                    ))
                }
                (None, None) => {
                    return Err(FieldError::new(
                        format!("http.token[{i}].hash"),
                        "required (or file = a file holding the token)",
                    ))
                }
                (Some(_), None) => {}
                (None, Some(file)) => {
                    let path = super::resolve_path(base, file);
                    let field = format!("http.token[{i}].file");
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| FieldError::new(&field, format!("{}: {e}", path.display())))?;
                    let token = text.trim();
                    if token.len() < MIN_TOKEN || token.chars().any(char::is_whitespace) {
                        return Err(FieldError::new(
                            &field,
                            format!(
                                "{}: must hold one token of at least {MIN_TOKEN} characters",
                                path.display()
                            ),
                        ));
                    }
                    t.hash = Some(hash_of(token));
                }
            }
        }
        Ok(())
    }

    /// Checks the tokens: a name each, unique, and a well-formed hash.
    pub fn validate(&self) -> Result<(), FieldError> {
        for (i, t) in self.tokens.iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(FieldError::new(format!("http.token[{i}].name"), "must not be empty"));
            }
            if self.tokens[..i].iter().any(|o| o.name == t.name) {
                return Err(FieldError::new(
                    format!("http.token[{i}].name"),
                    format!("{:?} is used by an earlier token", t.name),
                ));
            }
            if t.digest().is_none() {
                return Err(FieldError::new(
                    format!("http.token[{i}].hash"),
                    "must be \"sha256:\" and 64 hex digits (voxline token new prints one)",
                ));
            }
        }
        Ok(())
    }
}
