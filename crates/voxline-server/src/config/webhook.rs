//! `[[webhook]]`: receivers of every campaign's and call's events (a
//! campaign can add its own in its settings).

use serde::Deserialize;
use std::path::{Path, PathBuf};
use voxline_campaign::webhook::{WebhookTarget, EVENTS};
use voxline_sip::config::FieldError;

/// `[[webhook]]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` address the events are POSTed to.
    pub url: String,
    /// The signature's key (or `secret_file`).
    #[serde(default)]
    pub secret: Option<String>,
    /// A file holding the key (read at start).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Events sent (default: all): call.answered, call.ended, campaign.finished.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "********"))
            .field("secret_file", &self.secret_file)
            .field("events", &self.events)
            .finish()
    }
}

impl WebhookConfig {
    /// The receiver, its secret read from `secret_file` when given
    /// (relative to `base`); the error names the field under `[[webhook]]`.
    pub fn target(&self, i: usize, base: &Path) -> Result<WebhookTarget, FieldError> {
        let field = |f: &str| format!("webhook[{i}].{f}");
        let secret = match (&self.secret, &self.secret_file) {
            (Some(_), Some(_)) => return Err(FieldError::new(field("secret"), "give secret or secret_file, not both")),
            (None, None) => return Err(FieldError::new(field("secret"), "required (or secret_file)")),
            (Some(s), None) => s.clone(),
            (None, Some(f)) => {
                let path = super::resolve_path(base, f);
                std::fs::read_to_string(&path)
                    .map_err(|e| FieldError::new(field("secret_file"), format!("{}: {e}", path.display())))?
                    .trim()
                    .to_string()
            }
        };
        let target = WebhookTarget {
            url: self.url.trim().to_string(),
            secret,
            events: self
                .events
                .clone()
                .unwrap_or_else(|| EVENTS.iter().map(|e| e.to_string()).collect()),
        };
        target.check().map_err(|(f, why)| {
            let f = if f == "secret" && self.secret_file.is_some() {
                "secret_file"
            } else {
                f
            };
            FieldError::new(field(f), why)
        })?;
        Ok(target)
    }
}
