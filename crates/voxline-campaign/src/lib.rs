//! Outbound campaigns: who to call and when. Contacts imported from CSV or
//! JSON with their numbers normalised to E.164 and a time zone each
//! ([`contacts`]); calling windows per weekday in the contact's local time,
//! holidays excluded ([`window`]); a campaign's settings ([`settings`]).

#![warn(missing_docs)]

pub mod contacts;
pub mod settings;
pub mod window;

pub use contacts::{Contact, ImportOptions, ImportReport, RejectedRow};
pub use settings::{CampaignSettings, Checked, SettingsError};
pub use window::{CallingWindows, WindowError};
