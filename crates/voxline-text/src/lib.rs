//! voxline's English text rules, in one place for every crate that needs
//! them: number words both ways ([`numbers`]), what a recogniser heard
//! normalised for comparison and scoring ([`heard`]), text normalised for
//! speaking on the phone ([`spoken`]), a streamed reply cut into phrases to
//! speak ([`phrases`]), and whole-word phrase matching ([`words`]).

#![warn(missing_docs)]

pub mod heard;
pub mod numbers;
pub mod phrases;
pub mod spoken;
pub mod words;

pub use phrases::{PhraseSplitter, SplitterConfig};
