//! The agent calls up on this node, by Call-ID, each with its hang-up
//! signal: what the API lists and hangs up.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;
use voxline_store::now_ms;

/// A call up on this node, as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveCall {
    /// Its SIP Call-ID.
    pub call_id: String,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// The route it runs on.
    pub route: String,
    /// When it started (ms since the epoch).
    pub since: i64,
}

struct Entry {
    call: LiveCall,
    hangup: CancellationToken,
}

/// The calls up on this node (shared by the handlers and the API), by
/// Call-ID and direction (a call the server places to itself is up twice).
#[derive(Clone, Default)]
pub struct LiveCalls(Arc<Mutex<HashMap<(String, &'static str), Entry>>>);

/// A call's place in [`LiveCalls`]: its hang-up signal; dropping it takes
/// the call off the list.
pub struct LiveGuard {
    calls: LiveCalls,
    key: (String, &'static str),
    /// Cancelled when an operator hangs the call up (a child of the
    /// server's shutdown, so it is cancelled by that too).
    pub hangup: CancellationToken,
}

impl LiveCalls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, &'static str), Entry>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a call on the list until the guard is dropped; its hang-up
    /// signal is a child of `shutdown`.
    pub fn join(&self, call_id: &str, direction: &'static str, route: &str, shutdown: &CancellationToken) -> LiveGuard {
        let hangup = shutdown.child_token();
        self.lock().insert(
            (call_id.to_string(), direction),
            Entry {
                call: LiveCall {
                    call_id: call_id.to_string(),
                    direction,
                    route: route.to_string(),
                    since: now_ms(),
                },
                hangup: hangup.clone(),
            },
        );
        LiveGuard {
            calls: self.clone(),
            key: (call_id.to_string(), direction),
            hangup,
        }
    }

    /// Hangs up the call with this Call-ID (both its legs when the server
    /// called itself); false when it is not up here.
    pub fn hang_up(&self, call_id: &str) -> bool {
        let calls = self.lock();
        let mut found = false;
        for e in calls.iter().filter(|((id, _), _)| id == call_id).map(|(_, e)| e) {
            e.hangup.cancel();
            found = true;
        }
        found
    }

    /// The calls up now, oldest first.
    pub fn list(&self) -> Vec<LiveCall> {
        let mut calls: Vec<LiveCall> = self.lock().values().map(|e| e.call.clone()).collect();
        calls.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.call_id.cmp(&b.call_id)));
        calls
    }
}

impl LiveGuard {
    /// Whether an operator (not the server's shutdown) ended the call.
    pub fn hung_up(&self, shutdown: &CancellationToken) -> bool {
        self.hangup.is_cancelled() && !shutdown.is_cancelled()
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.calls.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_listed_hung_up_and_taken_off() {
        let live = LiveCalls::default();
        let shutdown = CancellationToken::new();
        let guard = live.join("a@h", "outbound", "renewal", &shutdown);
        assert_eq!(live.list().len(), 1);
        assert!(!live.hang_up("other@h"));
        assert!(live.hang_up("a@h"));
        assert!(guard.hangup.is_cancelled());
        assert!(guard.hung_up(&shutdown));
        drop(guard);
        assert!(live.list().is_empty());
        assert!(!live.hang_up("a@h"), "gone once the call ended");
    }

    #[test]
    fn a_call_to_itself_is_up_twice_and_hung_up_both_ways() {
        let live = LiveCalls::default();
        let shutdown = CancellationToken::new();
        let out = live.join("c@h", "outbound", "renewal", &shutdown);
        let inb = live.join("c@h", "inbound", "bank", &shutdown);
        assert_eq!(live.list().len(), 2);
        assert!(live.hang_up("c@h"));
        assert!(out.hangup.is_cancelled() && inb.hangup.is_cancelled());
        drop(inb);
        assert_eq!(live.list().len(), 1, "the other leg stays listed until it ends");
        drop(out);
        assert!(live.list().is_empty());
    }

    #[test]
    fn shutdown_ends_every_call_but_is_no_operator_hang_up() {
        let live = LiveCalls::default();
        let shutdown = CancellationToken::new();
        let guard = live.join("b@h", "inbound", "bank", &shutdown);
        shutdown.cancel();
        assert!(guard.hangup.is_cancelled());
        assert!(!guard.hung_up(&shutdown));
    }
}
