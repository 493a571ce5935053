//! Registration of `register` trunks: REGISTER with digest, refreshed before
//! expiry, retried with backoff; state changes are logged.

use crate::config::{TrunkConfig, TrunkKind};
use crate::endpoint::SipEndpoint;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::{StatusCode, Uri};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// A trunk's registration state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not tried yet.
    Idle,
    /// Registered until the refresh.
    Registered {
        /// Expiry the registrar granted, seconds.
        expires: u32,
    },
    /// The last attempt failed; retrying.
    Failed {
        /// Why.
        reason: String,
        /// Failures in a row.
        attempts: u32,
    },
}

/// Backoff after `failures` failures in a row: 2, 4, 8 ... capped at 300 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs((1u64 << failures.min(8)).clamp(2, 300))
}

/// When to refresh a registration granted for `expires` seconds:
/// at 80% of it, at least 5 s before the end.
pub fn refresh_after(expires: u32) -> Duration {
    let e = u64::from(expires.max(10));
    Duration::from_secs((e * 4 / 5).min(e.saturating_sub(5)).max(5))
}

impl SipEndpoint {
    /// Starts one registration loop per `register` trunk; each reports its
    /// state on the returned channels.
    pub fn start_registrations(&self, trunks: &[TrunkConfig]) -> Vec<(String, watch::Receiver<RegistrationState>)> {
        let mut out = Vec::new();
        for t in trunks.iter().filter(|t| t.kind == TrunkKind::Register) {
            let (tx, rx) = watch::channel(RegistrationState::Idle);
            out.push((t.name.clone(), rx));
            let trunk = Arc::new(t.clone());
            let inner = self.inner();
            let cancel = self.cancel_token();
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = register_loop(inner, trunk, tx) => {}
                }
            });
        }
        out
    }
}

async fn register_loop(
    inner: rsipstack::transaction::endpoint::EndpointInnerRef,
    trunk: Arc<TrunkConfig>,
    state: watch::Sender<RegistrationState>,
) {
    let host = trunk.host.clone().unwrap_or_default();
    let registrar = match Uri::try_from(format!("sip:{host}").as_str()) {
        Ok(u) => u,
        Err(e) => {
            warn!(trunk = %trunk.name, error = %e, "registrar address unusable; not registering");
            return;
        }
    };
    let credential = Credential {
        username: trunk.username.clone().unwrap_or_default(),
        password: trunk.password.clone().unwrap_or_default(),
        realm: None,
        auth_username: trunk.auth_username.clone(),
    };
    let mut registration = Registration::new(inner, Some(credential));
    let mut failures = 0u32;
    loop {
        let result = registration.register(registrar.clone(), Some(trunk.expires)).await;
        let wait = match result {
            Ok(resp) if resp.status_code == StatusCode::OK => {
                let expires = registration.expires();
                if failures > 0 || *state.borrow() == RegistrationState::Idle {
                    info!(trunk = %trunk.name, registrar = %host, expires, "trunk registered");
                }
                failures = 0;
                state.send_replace(RegistrationState::Registered { expires });
                refresh_after(expires)
            }
            Ok(resp) => {
                failures += 1;
                let reason = format!("registrar answered {}", resp.status_code);
                warn!(trunk = %trunk.name, registrar = %host, reason = %reason, attempts = failures, "trunk registration failed");
                state.send_replace(RegistrationState::Failed {
                    reason,
                    attempts: failures,
                });
                backoff(failures)
            }
            Err(e) => {
                failures += 1;
                let reason = e.to_string();
                warn!(trunk = %trunk.name, registrar = %host, reason = %reason, attempts = failures, "trunk registration failed");
                state.send_replace(RegistrationState::Failed {
                    reason,
                    attempts: failures,
                });
                backoff(failures)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_comes_before_expiry() {
        assert_eq!(refresh_after(300), Duration::from_secs(240));
        assert_eq!(refresh_after(30), Duration::from_secs(24));
        assert_eq!(refresh_after(10), Duration::from_secs(5));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(256));
    }
}
