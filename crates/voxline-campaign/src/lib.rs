//! Outbound campaigns: who to call and when. Contacts imported from CSV or
//! JSON with their numbers normalised to E.164 and a time zone each
//! ([`contacts`]); calling windows per weekday in the contact's local time,
//! holidays excluded ([`window`]); a campaign's settings ([`settings`]);
//! what an attempt's end means for its contact ([`outcome`]); and the
//! dialer that runs a campaign on a node ([`dialer`]); answering-machine
//! detection on an answered call ([`amd`]); webhook receivers ([`webhook`]).

#![warn(missing_docs)]

pub mod amd;
pub mod contacts;
pub mod dialer;
pub mod outcome;
pub mod settings;
pub mod webhook;
pub mod window;

pub use contacts::{Contact, ImportOptions, ImportReport, RejectedRow};
pub use dialer::{AttemptReport, Dial, Dialer, DialerError, NodeLimits, Placer, RunEnd};
pub use outcome::Placed;
pub use settings::{CampaignSettings, Checked, RetryPolicy, SettingsError};
pub use webhook::WebhookTarget;
pub use window::{CallingWindows, WindowError};
