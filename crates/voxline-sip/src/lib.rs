//! voxline's SIP layer, on the `rsipstack` stack (RFC 3261 transactions and
//! timers, dialogs, digest authentication, registration).
//!
//! This crate adds what a telephony server needs on top: listeners from
//! config, trunks (IP-authenticated and registering), routing of inbound
//! INVITEs to handlers, SDP offer/answer for G.711 audio, a per-source rate
//! limit with bans, digest authentication of phones, and outbound calls.
//! It knows nothing of media or models: a call hands its handler an
//! [`InboundCall`] (or the caller gets an [`OutboundCall`]) whose SDP result
//! says where RTP goes; once answered, either gives up its [`CallDialog`],
//! one type for what follows (re-INVITEs, keys, transfer, hang-up).

#![warn(missing_docs)]

pub mod auth;
pub mod call;
pub mod config;
pub mod dialog;
pub mod endpoint;
pub mod inbound;
pub mod ingress;
pub mod outbound;
pub mod registration;
pub mod routing;
pub mod sdes;
pub mod sdp;
pub mod security;
pub mod stream_guard;
pub mod transfer;
pub mod udp_guard;

pub use call::{CallEvent, CallInfo, EndReason, Party};
pub use config::{FieldError, ListenerConfig, RouteConfig, SecurityConfig, SipConfig, TrunkConfig, UserConfig};
pub use dialog::{CallDialog, Role};
pub use endpoint::{CallHandler, SipEndpoint, SipEndpointOptions};
pub use inbound::InboundCall;
pub use outbound::{OutboundCall, PlaceCall};
pub use sdes::{SrtpKeys, SrtpPolicy, SrtpSuite};
pub use sdp::{AudioCodec, Direction, Negotiated};
pub use transfer::TransferOutcome;

/// Errors from the SIP layer.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// A listener could not be started.
    #[error("cannot listen on {transport} {addr}: {reason}")]
    Listen {
        /// udp/tcp/tls.
        transport: String,
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A TLS certificate or key could not be loaded.
    #[error("TLS file {path}: {reason}")]
    Tls {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The SIP stack reported an error.
    #[error("SIP stack: {0}")]
    Stack(Box<rsipstack::Error>),
    /// The call ended or failed.
    #[error("call failed: {0}")]
    Call(String),
    /// An address or URI could not be used.
    #[error("bad address {0:?}: {1}")]
    Address(String, String),
}

impl From<rsipstack::Error> for SipError {
    fn from(e: rsipstack::Error) -> Self {
        SipError::Stack(Box::new(e))
    }
}
