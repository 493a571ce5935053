//! The `MediaPort`: what a call handler sees of the media. 20 ms frames of
//! the caller's audio at 16 kHz, a playout queue that takes audio at any
//! supported rate, `clear()` for barge-in, DTMF digits, and counters.

use crate::dtmf::DtmfDigit;
use crate::leg::{Drained, Playout};
use crate::resample::StreamResampler;
use crate::rtp_session::{MediaStats, RtpSession};
use crate::MediaError;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The rate of the frames a `MediaPort` delivers.
pub const PORT_RATE: u32 = 16_000;
/// Samples in one 20 ms frame at `PORT_RATE`.
pub const PORT_FRAME: usize = 320;
/// Frames held for a slow consumer before the oldest are dropped (1 s).
pub const PORT_BACKLOG: usize = 50;

/// Something that happened in the media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// A DTMF digit (RFC 4733 telephone-event, or SIP INFO given to the session).
    Dtmf(DtmfDigit),
    /// The far end put the call on hold.
    Hold,
    /// The far end took the call off hold.
    Unhold,
    /// No RTP arrived for the configured media timeout on a two-way call.
    MediaTimeout,
    /// The media stopped: the call is over.
    HangUp,
}

/// What the caller sent: audio or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortInput {
    /// 20 ms of the caller at 16 kHz.
    Frame(Vec<i16>),
    /// A media event.
    Event(MediaEvent),
}

/// The media side of one call, as its handler uses it.
pub struct MediaPort {
    session: RtpSession,
    frames: mpsc::Receiver<Vec<i16>>,
    events: Option<mpsc::UnboundedReceiver<MediaEvent>>,
    playout: Arc<PortPlayout>,
}

/// A port's playout queue as a shareable handle (the call-leg contract's
/// [`Playout`]): the session's queue with one resampler state kept while
/// the rate of the audio queued stays the same.
pub struct PortPlayout {
    session: RtpSession,
    resampler: Mutex<Option<StreamResampler>>,
}

impl std::fmt::Debug for PortPlayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortPlayout")
            .field("local", &self.session.local_addr())
            .finish()
    }
}

impl std::fmt::Debug for MediaPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPort")
            .field("local", &self.session.local_addr())
            .finish()
    }
}

/// The resampling tap the session's clock feeds with the caller's audio.
#[derive(Debug)]
pub(crate) struct CallerTap {
    pub(crate) resampler: StreamResampler,
    pub(crate) tx: mpsc::Sender<Vec<i16>>,
}

impl CallerTap {
    /// Takes one 20 ms frame at the session's rate; sends 16 kHz frames on.
    pub(crate) fn feed(&mut self, frame: &[i16], stats: &MediaStats) {
        self.resampler.push(frame);
        while self.resampler.available() >= PORT_FRAME {
            let mut f = vec![0i16; PORT_FRAME];
            self.resampler.pop(&mut f);
            if self.tx.try_send(f).is_err() {
                stats.frames_overrun.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

impl MediaPort {
    /// Opens the port on a session (once per session, after its codec is
    /// negotiated: the session's PCM rate is what the port converts from).
    pub fn open(session: &RtpSession) -> Result<MediaPort, MediaError> {
        let (tx, rx) = mpsc::channel(PORT_BACKLOG);
        session.set_caller_tap(CallerTap {
            resampler: StreamResampler::new(session.pcm_rate(), PORT_RATE)?,
            tx,
        })?;
        Ok(MediaPort {
            session: session.clone(),
            frames: rx,
            events: session.take_events(),
            playout: Arc::new(PortPlayout {
                session: session.clone(),
                resampler: Mutex::new(None),
            }),
        })
    }

    /// The next 20 ms of the caller at 16 kHz (PORT_FRAME samples); None once
    /// the media has stopped.
    pub async fn next_frame(&mut self) -> Option<Vec<i16>> {
        self.frames.recv().await
    }

    /// The next media event; pends forever when another reader took the
    /// session's events.
    pub async fn next_event(&mut self) -> Option<MediaEvent> {
        match self.events.as_mut() {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    }

    /// The next frame or event, whichever comes first (events first when
    /// both are ready); None once the media stopped.
    pub async fn recv(&mut self) -> Option<PortInput> {
        let events = async {
            match self.events.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            Some(e) = events => Some(PortInput::Event(e)),
            f = self.frames.recv() => f.map(PortInput::Frame),
        }
    }

    /// Queues audio for the caller. `rate` is its sample rate (8, 16, 22.05,
    /// 24 or 48 kHz); one resampler state is kept while the rate stays the same.
    pub fn play(&self, samples: &[i16], rate: u32) -> Result<(), MediaError> {
        self.playout.play(samples, rate)
    }

    /// Stops what is playing: the next frame sent is silence.
    pub fn clear(&self) {
        self.playout.clear()
    }

    /// Audio still queued toward the caller, in 20 ms frames.
    pub fn queued_frames(&self) -> usize {
        self.playout.queued_frames()
    }

    /// [`MediaPort::play`], with a mark to learn when its first packet is
    /// sent ([`MediaPort::playout_started_at`]); `None` when no audio was queued.
    pub fn play_marked(&self, samples: &[i16], rate: u32) -> Result<Option<u64>, MediaError> {
        self.playout.play_marked(samples, rate)
    }

    /// When the audio queued with `mark` began to be sent, once it has.
    pub fn playout_started_at(&self, mark: u64) -> Option<std::time::Instant> {
        self.playout.started_at(mark)
    }

    /// Waits until everything queued so far has been sent.
    pub async fn wait_drained(&self) {
        self.session.wait_drained().await
    }

    /// Sends DTMF digits toward the caller (RFC 4733), `duration_ms` each.
    pub fn send_dtmf(&self, digits: &str, duration_ms: u32) -> Result<(), MediaError> {
        self.session.send_dtmf(digits, duration_ms)
    }

    /// The playout queue as a handle that outlives borrows of the port.
    pub fn playout(&self) -> Arc<PortPlayout> {
        self.playout.clone()
    }

    /// Counters of the call's media.
    pub fn stats(&self) -> Arc<MediaStats> {
        self.session.stats()
    }
}

impl PortPlayout {
    /// `samples` at `rate` through the playout resampler (one state kept
    /// while the rate stays the same), at the session's rate `to`.
    fn resample(&self, samples: &[i16], rate: u32, to: u32) -> Result<Vec<i16>, MediaError> {
        let mut guard = self
            .resampler
            .lock()
            .map_err(|_| MediaError::Resample("playout resampler poisoned".into()))?;
        if guard.as_ref().is_none_or(|r| r.from_rate() != rate) {
            *guard = Some(StreamResampler::new(rate, to)?);
        }
        Ok(match guard.as_mut() {
            Some(r) => {
                r.push(samples);
                r.drain_all()
            }
            None => Vec::new(),
        })
    }
}

impl Playout for PortPlayout {
    fn play(&self, samples: &[i16], rate: u32) -> Result<(), MediaError> {
        let to = self.session.pcm_rate();
        if rate == to {
            self.session.queue_pcm(samples);
            return Ok(());
        }
        let out = self.resample(samples, rate, to)?;
        self.session.queue_pcm(&out);
        Ok(())
    }

    fn play_marked(&self, samples: &[i16], rate: u32) -> Result<Option<u64>, MediaError> {
        let to = self.session.pcm_rate();
        if rate == to {
            return Ok(self.session.queue_pcm_marked(samples));
        }
        let out = self.resample(samples, rate, to)?;
        Ok(self.session.queue_pcm_marked(&out))
    }

    fn started_at(&self, mark: u64) -> Option<std::time::Instant> {
        self.session.playout_started_at(mark)
    }

    fn clear(&self) {
        if let Ok(mut g) = self.resampler.lock() {
            if let Some(r) = g.as_mut() {
                r.clear();
            }
        }
        self.session.clear();
    }

    fn queued_frames(&self) -> usize {
        self.session
            .queued_samples()
            .div_ceil((self.session.pcm_rate() / 50) as usize)
    }

    fn send_dtmf(&self, digits: &str, duration_ms: u32) -> Result<(), MediaError> {
        self.session.send_dtmf(digits, duration_ms)
    }

    fn drained(&self) -> Drained {
        let session = self.session.clone();
        Box::pin(async move { session.wait_drained().await })
    }
}
