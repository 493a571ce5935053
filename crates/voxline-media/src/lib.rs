//! voxline media: everything a call hears and says passes through here.
//!
//! An RTP session per call (`rtp_session`) whose 20 ms work runs on one
//! shared media clock (`clock`, `frame_task`): non-blocking sockets drained
//! once per frame with kernel arrival times (`socket`), symmetric RTP
//! (`latch`), an adaptive jitter buffer (`jitter`), PCMU/PCMA/Opus
//! (`codec`, `g711`), RFC 4733 DTMF (`dtmf`), RTCP reports (`rtcp_report`),
//! SRTP/SRTCP with the keys the SDP exchanged (`srtp`),
//! resampling (`resample`), a stereo recorder (`recorder`), recordings
//! read and written as call recorders write them (`recording_file`), the
//! `MediaPort` a call handler uses (`port`), and the call-leg contract every
//! kind of call implements for the conversation on it (`leg`, with an
//! in-memory leg for tests).

#![warn(missing_docs)]

pub mod clock;
pub mod codec;
pub mod dtmf;
mod frame_task;
pub mod g711;
pub mod jitter;
pub mod latch;
pub mod leg;
mod playout;
pub mod port;
pub mod recorder;
pub mod recording_file;
pub mod resample;
pub mod rtcp_report;
pub mod rtp_guard;
pub mod rtp_session;
pub mod socket;
pub mod srtp;
pub mod wav_source;

pub use clock::MediaClock;
pub use codec::Codec;
pub use dtmf::{DtmfDigit, DtmfSource};
pub use leg::{CallLeg, LegAudio, LegControl, LegEnd, LegFacts, LegInput, Playout};
pub use port::{MediaEvent, MediaPort, PortInput, PortPlayout, PORT_FRAME, PORT_RATE};
pub use recorder::{recording_stats, CallRecorder, RecordingStats};
pub use recording_file::{read_recording, write_recording, Recording, WavEncoding};
pub use rtp_session::{rtp_packet, MediaDirection, MediaStats, RtpSession, RtpTarget};
pub use srtp::{SrtpKeys, SrtpProfile};
pub use wav_source::{load_wav_mono, read_wav_mono, Prompt};

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
    /// A codec could not be set up or failed on a frame.
    #[error("codec: {0}")]
    Codec(String),
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
