//! Preemptive generation: a reply started on the early final (while the
//! hang-over still runs), kept only when the final transcript is the same.

use super::speech::SpeechHandle;
use crate::{Action, Conversation, Intent};
use std::collections::VecDeque;

/// A reply started on the early final, not yet heard.
#[derive(Debug)]
pub(crate) struct Preempt {
    pub utterance: u64,
    /// The tentative text's words (`voxline_text::words::words`), compared with the final's.
    pub words: String,
    pub intent: Intent,
    /// Its first line or answer, generating (its audio waits).
    pub first: Option<SpeechHandle>,
    /// What follows it.
    pub rest: VecDeque<Action>,
    /// The conversation as it was before this turn.
    pub before: Box<Conversation>,
}

impl Preempt {
    /// Drops the reply (its generation and synthesis stop) and takes the
    /// conversation back to before it.
    pub fn undo(mut self, conv: &mut Conversation) {
        self.cancel();
        *conv = *self.before;
    }

    /// Drops the reply: its generation and synthesis stop.
    pub fn cancel(&mut self) {
        self.drop_first();
        self.rest.clear();
    }

    /// Drops its first line or answer (what follows stays).
    pub fn drop_first(&mut self) {
        if let Some(mut s) = self.first.take() {
            s.cancel();
        }
    }

    /// Whether the final of `utterance` with `words` confirms it.
    pub fn matches(&self, utterance: u64, words: &str) -> bool {
        self.utterance == utterance && self.words == words
    }
}
