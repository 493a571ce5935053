//! The command line's tools besides `serve` and `bench`: place a call
//! (playing a file, or with an agent talking),
//! chat with a pack in text, fetch and check the models, speak and
//! transcribe files, set up outbound campaigns, make API tokens, score
//! recorded calls against a scorecard.

pub mod call;
pub mod call_agent;
pub mod call_turns;
pub mod campaign;
pub mod campaign_run;
pub mod chat;
pub mod chat_domain;
pub mod learn;
pub mod models;
pub mod qa;
pub mod say;
pub mod teach;
pub mod text_list;
pub mod token;
pub mod train;
pub mod transcribe;
