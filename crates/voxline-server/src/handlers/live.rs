//! The agent calls up on this node, by Call-ID, each with its hang-up
//! signal and the tail of its transcript: what the API lists and hangs up,
//! and what the console's live page is pushed ([`LiveEvent`]).

use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use voxline_store::{now_ms, TranscriptLine};

/// Transcript lines kept per live call for a console that opens mid-call.
const KEPT_LINES: usize = 200;
/// Events a slow console may fall behind by before it is sent the whole
/// list again.
const EVENTS: usize = 1024;

/// A call up on this node, as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveCall {
    /// Its SIP Call-ID.
    pub call_id: String,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// The route it runs on.
    pub route: String,
    /// The other party: the caller's or the called number, or `webrtc:<token>`.
    pub party: String,
    /// `sip` or `webrtc`.
    pub channel: &'static str,
    /// When it started (ms since the epoch).
    pub since: i64,
}

impl LiveCall {
    /// A call starting now.
    pub fn new(call_id: &str, direction: &'static str, route: &str, party: &str, channel: &'static str) -> LiveCall {
        LiveCall {
            call_id: call_id.to_string(),
            direction,
            route: route.to_string(),
            party: party.to_string(),
            channel,
            since: now_ms(),
        }
    }
}

/// A line said on a live call.
#[derive(Debug, Clone, Serialize)]
pub struct LiveLine {
    /// `caller` or `agent`.
    pub speaker: String,
    /// The words.
    pub text: String,
    /// Start of the speech, ms of call audio from the answer.
    pub start_ms: i64,
}

/// A live call with the transcript so far.
#[derive(Debug, Clone, Serialize)]
pub struct LiveSnapshot {
    /// The call.
    #[serde(flatten)]
    pub call: LiveCall,
    /// Its last lines, oldest first.
    pub lines: Vec<LiveLine>,
}

/// What changed on the list, as the console is pushed it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A call came up.
    Started {
        /// The call.
        call: LiveCall,
    },
    /// A line was said on a call.
    Line {
        /// The call's Call-ID.
        call_id: String,
        /// Its direction (a call to itself is up twice).
        direction: &'static str,
        /// The line.
        line: LiveLine,
    },
    /// A call ended.
    Ended {
        /// The call's Call-ID.
        call_id: String,
        /// Its direction.
        direction: &'static str,
    },
}

struct Entry {
    call: LiveCall,
    hangup: CancellationToken,
    lines: VecDeque<LiveLine>,
}

type Key = (String, &'static str);

struct Inner {
    calls: Mutex<HashMap<Key, Entry>>,
    events: broadcast::Sender<LiveEvent>,
}

/// The calls up on this node (shared by the handlers and the API), by
/// Call-ID and direction (a call the server places to itself is up twice).
#[derive(Clone)]
pub struct LiveCalls(Arc<Inner>);

impl Default for LiveCalls {
    fn default() -> Self {
        LiveCalls(Arc::new(Inner {
            calls: Mutex::new(HashMap::new()),
            events: broadcast::channel(EVENTS).0,
        }))
    }
}

/// A call's place in [`LiveCalls`]: its hang-up signal; dropping it takes
/// the call off the list.
pub struct LiveGuard {
    calls: LiveCalls,
    key: Key,
    /// Cancelled when an operator hangs the call up (a child of the
    /// server's shutdown, so it is cancelled by that too).
    pub hangup: CancellationToken,
}

/// Where a call's transcript lines go to be pushed to consoles.
#[derive(Clone)]
pub struct LiveFeed {
    calls: LiveCalls,
    key: Key,
}

impl LiveCalls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.0.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a call on the list until the guard is dropped; its hang-up
    /// signal is a child of `shutdown`.
    pub fn join(&self, call: LiveCall, shutdown: &CancellationToken) -> LiveGuard {
        let hangup = shutdown.child_token();
        let key = (call.call_id.clone(), call.direction);
        let mut calls = self.lock();
        // Sent under the lock: a console's snapshot and its events agree.
        let _ = self.0.events.send(LiveEvent::Started { call: call.clone() });
        calls.insert(
            key.clone(),
            Entry {
                call,
                hangup: hangup.clone(),
                lines: VecDeque::new(),
            },
        );
        LiveGuard {
            calls: self.clone(),
            key,
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

    /// The calls up now with their transcripts so far, and the events
    /// after that moment.
    pub fn watch(&self) -> (Vec<LiveSnapshot>, broadcast::Receiver<LiveEvent>) {
        let calls = self.lock();
        let events = self.0.events.subscribe();
        let mut list: Vec<LiveSnapshot> = calls
            .values()
            .map(|e| LiveSnapshot {
                call: e.call.clone(),
                lines: e.lines.iter().cloned().collect(),
            })
            .collect();
        list.sort_by(|a, b| {
            a.call
                .since
                .cmp(&b.call.since)
                .then_with(|| a.call.call_id.cmp(&b.call.call_id))
        });
        (list, events)
    }
}

impl LiveGuard {
    /// Whether an operator (not the server's shutdown) ended the call.
    pub fn hung_up(&self, shutdown: &CancellationToken) -> bool {
        self.hangup.is_cancelled() && !shutdown.is_cancelled()
    }

    /// Where this call's transcript lines go.
    pub fn feed(&self) -> LiveFeed {
        LiveFeed {
            calls: self.calls.clone(),
            key: self.key.clone(),
        }
    }
}

impl LiveFeed {
    /// Keeps a line of the call's transcript and pushes it to consoles
    /// (nothing once the call is off the list).
    pub fn line(&self, line: &TranscriptLine) {
        let mut calls = self.calls.lock();
        let Some(entry) = calls.get_mut(&self.key) else {
            return;
        };
        let live = LiveLine {
            speaker: line.speaker.clone(),
            text: line.text.clone(),
            start_ms: line.start_ms,
        };
        if entry.lines.len() == KEPT_LINES {
            entry.lines.pop_front();
        }
        entry.lines.push_back(live.clone());
        let _ = self.calls.0.events.send(LiveEvent::Line {
            call_id: self.key.0.clone(),
            direction: self.key.1,
            line: live,
        });
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut calls = self.calls.lock();
        if calls.remove(&self.key).is_some() {
            let _ = self.calls.0.events.send(LiveEvent::Ended {
                call_id: self.key.0.clone(),
                direction: self.key.1,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_listed_hung_up_and_taken_off() {
        let live = LiveCalls::default();
        let shutdown = CancellationToken::new();
        let guard = live.join(LiveCall::new("a@h", "outbound", "renewal", "+1", "sip"), &shutdown);
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
        let out = live.join(LiveCall::new("c@h", "outbound", "renewal", "+1", "sip"), &shutdown);
        let inb = live.join(LiveCall::new("c@h", "inbound", "bank", "+1", "sip"), &shutdown);
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
        let guard = live.join(LiveCall::new("b@h", "inbound", "bank", "+1", "sip"), &shutdown);
        shutdown.cancel();
        assert!(guard.hangup.is_cancelled());
        assert!(!guard.hung_up(&shutdown));
    }

    fn line(seq: i64, speaker: &str, text: &str) -> TranscriptLine {
        TranscriptLine {
            seq,
            speaker: speaker.into(),
            start_ms: seq * 1000,
            end_ms: seq * 1000 + 500,
            text: text.into(),
            asr_latency_ms: None,
        }
    }

    #[test]
    fn a_console_gets_the_calls_so_far_then_every_change() {
        let live = LiveCalls::default();
        let shutdown = CancellationToken::new();
        let a = live.join(LiveCall::new("a@h", "inbound", "bank", "alice", "sip"), &shutdown);
        a.feed().line(&line(1, "agent", "Hello, Harbor Bank."));
        let (calls, mut events) = live.watch();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].lines.len(), 1, "the line said before the console came");
        assert_eq!(calls[0].lines[0].text, "Hello, Harbor Bank.");
        a.feed().line(&line(2, "caller", "Where is the branch?"));
        let b = live.join(LiveCall::new("b@h", "inbound", "bank", "bob", "webrtc"), &shutdown);
        let feed = a.feed();
        drop(a);
        feed.line(&line(3, "agent", "after the end"));
        drop(b);
        let mut seen = Vec::new();
        while let Ok(e) = events.try_recv() {
            seen.push(serde_json::to_value(&e).expect("json"));
        }
        let kinds: Vec<&str> = seen.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(kinds, ["line", "started", "ended", "ended"], "{seen:?}");
        assert_eq!(seen[0]["line"]["text"], "Where is the branch?");
        assert_eq!(seen[0]["call_id"], "a@h");
        assert_eq!(seen[1]["call"]["party"], "bob");
        assert_eq!(seen[1]["call"]["channel"], "webrtc");
    }

    #[test]
    fn a_live_call_keeps_only_its_last_lines() {
        let live = LiveCalls::default();
        let shutdown = CancellationToken::new();
        let a = live.join(LiveCall::new("a@h", "inbound", "bank", "alice", "sip"), &shutdown);
        for i in 0..(KEPT_LINES as i64 + 5) {
            a.feed().line(&line(i, "caller", &format!("line {i}")));
        }
        let (calls, _) = live.watch();
        assert_eq!(calls[0].lines.len(), KEPT_LINES);
        assert_eq!(calls[0].lines[0].text, "line 5");
    }
}
