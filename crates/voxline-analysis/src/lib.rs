//! After the call: quality inspection. A pack's scorecard ([`scorecard`]:
//! `qa.toml`, the items every call is scored against), the call as the
//! scorer reads it ([`transcript`]: who said what, when), and the scoring
//! ([`score`]): each item's verdict with its evidence, from the clock
//! ([`timing`]: dead air, talking over, talk ratio, speaking rate), from
//! meaning ([`meaning`]: lines said or never said, in any words) and from
//! the customer's mood ([`mood`]); human agents' calls come from their
//! recordings, transcribed side by side ([`recording`]). A language model
//! judges the outcome items ([`outcome`]) and writes summaries
//! ([`summary`]), its quotes and facts checked against the transcript
//! ([`quote`]). Documents become a pack's knowledge through [`learn`];
//! training scenarios for human trainees are read by [`training`], and a
//! trainee's report after a training call is built by [`training_report`].

#![warn(missing_docs)]

pub mod assurance;
pub mod learn;
pub mod meaning;
pub mod mood;
pub mod outcome;
pub mod person_request;
pub mod quote;
pub mod recording;
pub mod score;
pub mod scorecard;
pub mod summary;
pub mod timing;
pub mod training;
pub mod training_report;
pub mod transcript;

pub use outcome::judge_outcomes;
pub use recording::{read_call, transcribe_call, CallAudio, CallSource, RecordingError};
pub use score::{CallScore, Evidence, Inspector, ItemScore, Verdict};
pub use scorecard::{Check, Item, Scorecard, ScorecardError, Speaker, SummaryField};
pub use summary::{summarize, CallSummary};
pub use transcript::{CallTranscript, Line, TimedWord, TranscriptError};
