//! Webhook receivers: where events go (a campaign's own, or the server's
//! `[[webhook]]`), which events, and the secret their signature is made with.

use serde::{Deserialize, Serialize};

/// A call was answered.
pub const CALL_ANSWERED: &str = "call.answered";
/// A call ended (a campaign's: with the attempt and the contact's disposition).
pub const CALL_ENDED: &str = "call.ended";
/// Every contact of a campaign has its final disposition.
pub const CAMPAIGN_FINISHED: &str = "campaign.finished";
/// A finished call was scored against its pack's scorecard.
pub const CALL_ANALYZED: &str = "call.analyzed";
/// Every event.
pub const EVENTS: &[&str] = &[CALL_ANSWERED, CALL_ENDED, CAMPAIGN_FINISHED, CALL_ANALYZED];

/// Shortest secret accepted.
pub const MIN_SECRET: usize = 16;

/// One receiver.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// `http://` or `https://` address the events are POSTed to.
    pub url: String,
    /// The HMAC-SHA256 key of the signature (at least 16 characters).
    pub secret: String,
    /// The events it gets (default: all).
    #[serde(default = "all_events")]
    pub events: Vec<String>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret (configurations and settings are logged).
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("secret", &"********")
            .field("events", &self.events)
            .finish()
    }
}

fn all_events() -> Vec<String> {
    EVENTS.iter().map(|e| e.to_string()).collect()
}

impl WebhookTarget {
    /// Checks it: the error is (field under the receiver, why).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let url = self.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || url.len() > 2048
            || url.chars().any(char::is_whitespace)
        {
            return Err(("url", format!("{:?} is not an http:// or https:// address", self.url)));
        }
        if self.secret.chars().count() < MIN_SECRET {
            return Err(("secret", format!("at least {MIN_SECRET} characters")));
        }
        if self.events.is_empty() {
            return Err(("events", "name at least one event".into()));
        }
        if let Some(e) = self.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
            return Err(("events", format!("{e:?} is not one of {}", EVENTS.join(", "))));
        }
        Ok(())
    }

    /// Whether it gets `event`.
    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }

    /// The same with its secret hidden (to show it).
    pub fn redacted(&self) -> WebhookTarget {
        WebhookTarget {
            secret: "********".into(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_is_checked_field_by_field() {
        let ok = WebhookTarget {
            url: "https://crm.example/hooks/voxline".into(),
            secret: "0123456789abcdef".into(),
            events: all_events(),
        };
        assert!(ok.check().is_ok());
        assert!(ok.wants(CALL_ENDED));
        let bad = |f: fn(&mut WebhookTarget)| {
            let mut t = ok.clone();
            f(&mut t);
            t.check().unwrap_err().0
        };
        assert_eq!(bad(|t| t.url = "ftp://x".into()), "url");
        assert_eq!(bad(|t| t.url = "http://a b".into()), "url");
        assert_eq!(bad(|t| t.secret = "short".into()), "secret");
        assert_eq!(bad(|t| t.events = vec![]), "events");
        assert_eq!(bad(|t| t.events = vec!["call.started".into()]), "events");
        assert_eq!(ok.redacted().secret, "********");
        assert!(!format!("{ok:?}").contains("0123456789abcdef"), "no secret in Debug");
    }
}
