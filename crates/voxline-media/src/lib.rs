//! voxline media: the part of the media engine a call needs to carry audio.
//!
//! This crate holds G.711 (PCMU/PCMA) codecs, an RTP session that sends
//! paced 20 ms packets and receives the caller's packets, and a stereo call
//! recorder. The full engine (jitter buffer, Opus, DTMF, resampling, the
//! shared pacing clock) grows here in the media issue.

#![warn(missing_docs)]

pub mod clock;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod latch;
pub mod port;
pub mod recorder;
pub mod resample;
pub mod rtp_session;
pub mod wav_source;

pub use clock::MediaClock;
pub use dtmf::DtmfDigit;
pub use g711::Codec;
pub use port::{MediaEvent, MediaPort, PortInput, PORT_FRAME, PORT_RATE};
pub use recorder::CallRecorder;
pub use rtp_session::{rtp_packet, MediaDirection, MediaStats, RtpSession, RtpTarget};
pub use wav_source::load_wav_8k_mono;

/// Samples in one 20 ms frame at 8 kHz (the G.711 clock rate).
pub const SAMPLES_PER_FRAME_8K: usize = 160;

/// Errors from the media layer.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A WAV file could not be read or written.
    #[error("WAV file {path}: {reason}")]
    Wav {
        /// The file.
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// DTMF could not be sent.
    #[error("DTMF: {0}")]
    Dtmf(String),
    /// A resampler could not be built or run.
    #[error("resampling: {0}")]
    Resample(String),
    /// No free RTP port in the configured range.
    #[error("no free RTP port in {min}..={max}")]
    NoPort {
        /// Lowest port of the range.
        min: u16,
        /// Highest port of the range.
        max: u16,
    },
}
