//! A human agent's call from its recording: a stereo WAV with the agent
//! and the customer on their own channels, or two mono WAVs, as call
//! recorders write them (8 or 16 kHz, PCM, μ-law or A-law). Each side is
//! transcribed on its own at batch speed ([`ChannelTranscriber`]), with
//! word times, into the two-sided transcript the scorer reads.

use crate::scorecard::Speaker;
use crate::transcript::{CallTranscript, Line, TimedWord};
use std::path::{Path, PathBuf};
use voxline_asr::{AsrError, ChannelTranscriber, ASR_RATE};
use voxline_media::{read_recording, MediaError};

/// Where each side of a call is in its recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallSource {
    /// One stereo WAV; `agent_channel` is 0 (left) or 1 (right), the
    /// customer on the other.
    Stereo {
        /// The file.
        file: PathBuf,
        /// The agent's channel.
        agent_channel: usize,
    },
    /// Two mono WAVs.
    MonoPair {
        /// The agent's side.
        agent: PathBuf,
        /// The customer's side.
        customer: PathBuf,
    },
}

impl CallSource {
    /// The file that names the call (the stereo file, or the agent's side).
    pub fn name_file(&self) -> &Path {
        match self {
            CallSource::Stereo { file, .. } => file,
            CallSource::MonoPair { agent, .. } => agent,
        }
    }

    /// The call as one line of text ("a.wav", "a.wav+b.wav").
    pub fn describe(&self) -> String {
        match self {
            CallSource::Stereo { file, .. } => file.display().to_string(),
            CallSource::MonoPair { agent, customer } => format!("{}+{}", agent.display(), customer.display()),
        }
    }
}

/// A recording that cannot be turned into a transcript.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The file cannot be read (names the file and why).
    #[error(transparent)]
    Read(#[from] MediaError),
    /// The file is not laid out as said (mono given as stereo, a pair of
    /// different lengths or rates…).
    #[error("{file}: {why}")]
    Layout {
        /// The file.
        file: String,
        /// Why.
        why: String,
    },
    /// Recognition failed.
    #[error("{file}: transcribing the {side}'s side: {source}")]
    Transcribe {
        /// The file.
        file: String,
        /// "agent" or "customer".
        side: &'static str,
        /// Why.
        #[source]
        source: AsrError,
    },
}

/// Both sides of a call at 16 kHz (-1..1), and its length.
#[derive(Debug, Clone)]
pub struct CallAudio {
    /// The agent's side.
    pub agent: Vec<f32>,
    /// The customer's side.
    pub customer: Vec<f32>,
    /// The call's length, ms.
    pub duration_ms: u64,
}

/// One channel at 16 kHz as floats.
fn to_asr_rate(samples: &[i16], rate: u32, file: &Path) -> Result<Vec<f32>, RecordingError> {
    let at16 =
        voxline_media::rtp_session::resample_clip(samples, rate, ASR_RATE).map_err(|e| RecordingError::Layout {
            file: file.display().to_string(),
            why: format!("{rate} Hz cannot be resampled to 16 kHz ({e})"),
        })?;
    Ok(at16.iter().map(|&s| f32::from(s) / 32768.0).collect())
}

/// Reads both sides of a call.
pub fn read_call(source: &CallSource) -> Result<CallAudio, RecordingError> {
    match source {
        CallSource::Stereo { file, agent_channel } => {
            let rec = read_recording(file)?;
            if rec.channels.len() != 2 {
                return Err(RecordingError::Layout {
                    file: file.display().to_string(),
                    why: format!(
                        "{} channel(s): a call recording must be stereo, the agent and the customer each on a channel (give a mono pair as AGENT.wav+CUSTOMER.wav)",
                        rec.channels.len()
                    ),
                });
            }
            let agent = to_asr_rate(&rec.channels[*agent_channel.min(&1)], rec.rate, file)?;
            let customer = to_asr_rate(&rec.channels[1 - *agent_channel.min(&1)], rec.rate, file)?;
            Ok(CallAudio {
                agent,
                customer,
                duration_ms: rec.duration_ms(),
            })
        }
        CallSource::MonoPair { agent, customer } => {
            let mut sides = Vec::with_capacity(2);
            for file in [agent, customer] {
                let rec = read_recording(file)?;
                if rec.channels.len() != 1 {
                    return Err(RecordingError::Layout {
                        file: file.display().to_string(),
                        why: format!(
                            "{} channels: each file of a pair holds one side, mono",
                            rec.channels.len()
                        ),
                    });
                }
                let ms = rec.duration_ms();
                sides.push((to_asr_rate(&rec.channels[0], rec.rate, file)?, ms));
            }
            let (customer, c_ms) = sides.pop().unwrap_or_default();
            let (agent, a_ms) = sides.pop().unwrap_or_default();
            Ok(CallAudio {
                agent,
                customer,
                duration_ms: a_ms.max(c_ms),
            })
        }
    }
}

/// Transcribes both sides of a call; `done` hears the ms of audio done
/// (both sides counted) after each utterance.
pub fn transcribe_call(
    call: &CallSource,
    audio: &CallAudio,
    transcriber: &mut ChannelTranscriber<'_>,
    done: &mut dyn FnMut(u64),
) -> Result<CallTranscript, RecordingError> {
    let mut lines = Vec::new();
    let agent_ms = audio.agent.len() as u64 * 1000 / u64::from(ASR_RATE);
    for (speaker, side, samples, before) in [
        (Speaker::Agent, "agent", &audio.agent, 0),
        (Speaker::Customer, "customer", &audio.customer, agent_ms),
    ] {
        let heard = transcriber
            .transcribe(samples, &mut |ms| done(before + ms))
            .map_err(|source| RecordingError::Transcribe {
                file: call.describe(),
                side,
                source,
            })?;
        lines.extend(heard.into_iter().map(|u| {
            Line {
                speaker,
                start_ms: u.start_ms,
                end_ms: u.end_ms,
                text: u.text,
                words: u
                    .words
                    .into_iter()
                    .map(|w| TimedWord {
                        text: w.text,
                        start_ms: w.start_ms,
                        end_ms: w.end_ms,
                    })
                    .collect(),
            }
        }));
    }
    Ok(CallTranscript::new(lines, Some(audio.duration_ms)))
}
