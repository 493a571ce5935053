//! voxline's dialogue engine: domain packs (persona, knowledge, rules,
//! tools, flows) loaded and checked at start-up; each caller turn routed (goodbye,
//! escalation, tool, off-domain, question) before any text is generated;
//! answers grounded in retrieved passages and checked phrase by phrase
//! before they are spoken; business tools called over HTTP; and the voice
//! session (`voice`) that holds such a conversation on any call leg.

#![warn(missing_docs)]

mod answer;
pub mod contact;
pub mod curated;
pub mod customer;
pub mod dialogue;
pub mod eval;
pub mod flow;
pub mod forbidden;
pub mod grounding;
pub mod guard;
pub mod knowledge;
pub mod meaning;
pub mod pack;
pub mod prompt;
pub mod relevance;
pub mod router;
pub mod tool_args;
pub mod tools;
pub mod voice;

pub use answer::{Answer, Fallback};
pub use dialogue::{Action, Agent, Conversation};
pub use knowledge::{Hit, Knowledge, Passage};
pub use pack::{DomainPack, PackError};
pub use router::Intent;
pub use tools::ToolCall;
