//! What an operator can do, shared by the command line and the HTTP API:
//! each operation checks its input against the configuration and the store
//! and says what is wrong in an [`OpError`] (the CLI prints it, the API
//! answers with its status: 404, 409, 422).

pub mod campaigns;
pub mod teach;
pub mod text_turns;

use voxline_campaign::SettingsError;
use voxline_store::StoreError;

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// What it names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An input cannot be used; `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        /// The input at fault (`settings.timezone`, `trunk`, `line 4`…).
        field: String,
        /// Why.
        message: String,
    },
    /// It cannot be done in the state things are in (a campaign already
    /// running, a name taken).
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error("the call store: {0}")]
    Store(#[from] StoreError),
}

impl OpError {
    /// An [`OpError::Invalid`] of `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> OpError {
        OpError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A campaign setting at fault is named under `settings.`.
impl From<SettingsError> for OpError {
    fn from(e: SettingsError) -> OpError {
        OpError::invalid(format!("settings.{}", e.field), e.why)
    }
}
