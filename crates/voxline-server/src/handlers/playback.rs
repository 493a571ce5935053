//! The `playback` handler: ring (optionally), answer, play a greeting,
//! record the caller, hang up after `max_seconds`, after the greeting when
//! asked, or when the caller hangs up. `echo` also sends the caller's audio
//! back; `transcribe` also recognises what the caller says, line by line
//! into the call's transcript.

use crate::asr_engine::AsrEngine;
use crate::config::routes::PlaybackParams;
use crate::config::MediaConfig;
use crate::leg::call_media::{answer_with_media, finish_call, local_end, Answered, Outcome};
use crate::leg::RunningMedia;
use crate::records::Records;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxline_media::leg::Direction;
use voxline_media::{DtmfDigit, DtmfSource, MediaClock, MediaEvent, MediaPort, PortInput, Prompt, PORT_RATE};
use voxline_sip::{CallEvent, EndReason, InboundCall, Party, RouteConfig};

/// What a playback-style route does with the caller's audio.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Records it (when recording is on).
    Playback,
    /// Sends it back through the MediaPort.
    Echo,
    /// Recognises it into the transcript.
    Transcribe(Arc<AsrEngine>),
}

/// A prepared playback route.
pub struct Playback {
    params: PlaybackParams,
    /// What happens to the caller's audio.
    mode: Mode,
    /// The media clock shared by all calls.
    clock: MediaClock,
    /// The greeting at 8 kHz (G.711 calls) and 16 kHz (Opus calls), shared by all calls.
    greeting: [Prompt; 2],
    media: MediaConfig,
    shutdown: CancellationToken,
}

impl Playback {
    /// Loads the greeting.
    pub fn new(
        params: PlaybackParams,
        mode: Mode,
        clock: MediaClock,
        media: MediaConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Playback> {
        let greeting = match &params.greeting {
            Some(p) => voxline_media::load_wav_mono(p)?,
            None => Prompt::default(),
        };
        let greeting = [greeting.at_rate(8000)?, greeting.at_rate(16_000)?];
        Ok(Playback {
            params,
            mode,
            clock,
            greeting,
            media,
            shutdown,
        })
    }

    /// Runs one call to its end and completes its record.
    pub async fn run(&self, mut call: InboundCall, route: &RouteConfig, records: &Records) {
        let record_id = records.inbound_started(&call.info, route).await;
        let outcome = self.converse(&mut call, records, &record_id).await;
        // The call's slots (node, trunk, user) are free before its record
        // says it ended.
        drop(call);
        finish_call(records, &record_id, outcome, Direction::Inbound).await;
    }

    async fn converse(&self, call: &mut InboundCall, records: &Records, record_id: &str) -> Outcome {
        let record = self.params.record.unwrap_or(self.media.record);
        let Answered { rtp, recorder } =
            match answer_with_media(call, &self.media, record, self.params.ring_ms, records, record_id).await {
                Ok(a) => a,
                Err(outcome) => return outcome,
            };

        // Echo and transcribe hear (and echo speaks) through the MediaPort, 16 kHz.
        let mut port = if matches!(self.mode, Mode::Playback) {
            None
        } else {
            match MediaPort::open(&rtp) {
                Ok(p) => Some(p),
                Err(e) => {
                    warn!(error = %e, "media port unavailable: the caller is not heard on this call");
                    None
                }
            }
        };
        let mut listener = match (&self.mode, &port) {
            // Building the VAD session reads its model: off the async threads.
            (Mode::Transcribe(asr), Some(_)) => match tokio::task::spawn_blocking({
                let asr = asr.clone();
                move || asr.recognizer(None)
            })
            .await
            .map_err(|e| voxline_asr::AsrError::Decode(e.to_string()))
            .and_then(|r| r)
            {
                Ok(r) => Some(Transcriber::new(r, records.clone(), record_id.to_string())),
                Err(e) => {
                    warn!(error = %e, "speech recognition unavailable on this call");
                    None
                }
            },
            _ => None,
        };
        let media = RunningMedia::start(&rtp, &self.clock, recorder);
        let greeting = &self.greeting[usize::from(rtp.pcm_rate() == 16_000)];
        if let Err(e) = rtp.play_prompt(greeting) {
            warn!(error = %e, "greeting not played");
        }
        rtp.set_media_timeout(Duration::from_secs(self.media.timeout_secs));

        let deadline = tokio::time::sleep(Duration::from_secs(self.params.max_seconds));
        tokio::pin!(deadline);
        let mut greeting_done = greeting.samples.is_empty();
        // With a media port open, events come through the port; else straight from the session.
        let mut events = if port.is_some() { None } else { rtp.take_events() };
        let end = loop {
            tokio::select! {
                ev = call.next_event() => match ev {
                    CallEvent::Ended(e) => break e,
                    CallEvent::MediaChanged(n) => {
                        info!(direction = n.local_direction.as_str(), remote_rtp = %n.remote_rtp, "media changed");
                        rtp.set_target(crate::leg::rtp_target(&n));
                    }
                    CallEvent::Dtmf { digit, duration_ms } => {
                        // SIP INFO digits join the RFC 4733 ones as the same event.
                        rtp.inject_dtmf(DtmfDigit {
                            digit,
                            duration_ms: duration_ms.unwrap_or(0),
                            source: DtmfSource::SipInfo,
                        });
                    }
                },
                Some(e) = async { match events.as_mut() { Some(r) => r.recv().await, None => None } } => {
                    if let Some(end) = self.on_media_event(e, call).await {
                        break end;
                    }
                }
                Some(input) = async { match port.as_mut() { Some(p) => p.recv().await, None => None } } => {
                    match input {
                        PortInput::Frame(frame) => {
                            if let Some(t) = listener.as_mut() {
                                if let Err(e) = t.recognizer.push(&frame) {
                                    warn!(error = %e, "speech recognition stopped on this call");
                                    listener = None;
                                }
                            } else if let Some(p) = port.as_ref() {
                                if let Err(e) = p.play(&frame, PORT_RATE) {
                                    warn!(error = %e, "echo playout failed");
                                }
                            }
                        }
                        PortInput::Event(e) => {
                            if let Some(end) = self.on_media_event(e, call).await {
                                break end;
                            }
                        }
                    }
                }
                Some(ev) = async { match listener.as_mut() { Some(t) => t.recognizer.next_event().await, None => None } } => {
                    if let Some(t) = listener.as_mut() {
                        t.on_event(ev).await;
                    }
                }
                _ = rtp.wait_drained(), if !greeting_done => {
                    greeting_done = true;
                    if self.params.hangup_after_greeting {
                        call.hangup().await.ok();
                        break local_end("greeting_done");
                    }
                }
                _ = &mut deadline => {
                    call.hangup().await.ok();
                    break local_end("max_duration");
                }
                _ = self.shutdown.cancelled() => {
                    call.hangup().await.ok();
                    break local_end("shutdown");
                }
            }
        };
        // The call is over: decodes still running for it are cancelled.
        if let Some(mut t) = listener.take() {
            t.recognizer.close();
        }
        media.stop().await;
        Outcome::answered(end, &rtp, None)
    }
}

impl Playback {
    /// Logs a media event; hangs up (and says why) on a media timeout.
    async fn on_media_event(&self, e: MediaEvent, call: &mut InboundCall) -> Option<EndReason> {
        match e {
            MediaEvent::Dtmf(d) => {
                let digit = if self.params.log_digits { d.digit } else { '*' };
                info!(digit = %digit, duration_ms = d.duration_ms, source = d.source.as_str(), "DTMF")
            }
            MediaEvent::Hold => info!("caller put the call on hold"),
            MediaEvent::Unhold => info!("caller took the call off hold"),
            MediaEvent::HangUp => {}
            MediaEvent::MediaTimeout => {
                warn!(
                    timeout_secs = self.media.timeout_secs,
                    "no RTP from the far end: hanging up"
                );
                call.hangup().await.ok();
                return Some(EndReason {
                    by: Party::Local,
                    reason: "media_timeout".into(),
                    status: None,
                });
            }
        }
        None
    }
}

/// A call's listener: its recogniser, and the transcript it writes.
struct Transcriber {
    recognizer: voxline_asr::StreamingRecognizer,
    records: Records,
    record_id: String,
    /// Lines written so far.
    seq: i64,
    /// Start and end (stream ms) of the utterances not yet final.
    spans: std::collections::HashMap<u64, (u64, u64)>,
}

impl Transcriber {
    fn new(recognizer: voxline_asr::StreamingRecognizer, records: Records, record_id: String) -> Transcriber {
        Transcriber {
            recognizer,
            records,
            record_id,
            seq: 0,
            spans: Default::default(),
        }
    }

    /// Logs speech events; writes each final hypothesis as a transcript line.
    async fn on_event(&mut self, ev: voxline_asr::AsrEvent) {
        use voxline_asr::AsrEvent;
        match ev {
            AsrEvent::SpeechStart { utterance, at_ms } => {
                self.spans.insert(utterance, (at_ms, at_ms));
                tracing::debug!(utterance, at_ms, "caller speaking");
            }
            AsrEvent::Partial { utterance, text, .. } => tracing::debug!(utterance, %text, "partial"),
            AsrEvent::Tentative { .. } | AsrEvent::TurnAudio { .. } => {}
            AsrEvent::SpeechEnd { utterance, at_ms, .. } => {
                if let Some(span) = self.spans.get_mut(&utterance) {
                    span.1 = at_ms;
                }
            }
            AsrEvent::Final {
                utterance,
                text,
                latency,
                cost,
                cut,
                after_speech_ms,
            } => {
                let now = self.recognizer.now_ms();
                let (start, end) = match self.spans.get(&utterance).copied() {
                    Some((s, e)) if cut => (s, e.max(now)),
                    Some(span) => span,
                    None => (now, now),
                };
                if cut {
                    // The rest of a cut utterance continues as the next one.
                    self.spans.insert(utterance + 1, (now, now));
                }
                self.spans.remove(&utterance);
                info!(
                    utterance,
                    words = text.split_whitespace().count(),
                    latency_ms = latency.as_millis() as u64,
                    ready_after_speech_ms = after_speech_ms,
                    queue_ms = cost.queue_wait.as_millis() as u64,
                    decode_ms = cost.decode.as_millis() as u64,
                    "caller utterance recognised"
                );
                if text.is_empty() {
                    return;
                }
                self.seq += 1;
                let line = voxline_store::TranscriptLine {
                    seq: self.seq,
                    speaker: "caller".into(),
                    start_ms: start as i64,
                    end_ms: end as i64,
                    text,
                    asr_latency_ms: Some(latency.as_secs_f64() * 1e3),
                };
                self.records.transcript_line(&self.record_id, &line).await;
            }
            AsrEvent::Failed { utterance, error } => {
                self.spans.remove(&utterance);
                warn!(utterance, %error, "caller utterance not recognised");
            }
        }
    }
}
