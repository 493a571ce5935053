//! The `MediaPort`: what a call handler sees of the media. 20 ms frames of
//! the caller's audio at 16 kHz, a playout queue that takes audio at any
//! supported rate, `clear()` for barge-in, DTMF digits, and counters.

use crate::dtmf::DtmfDigit;
use crate::resample::StreamResampler;
use crate::rtp_session::{MediaStats, RtpSession};
use crate::{MediaError, SAMPLES_PER_FRAME_8K};
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
    /// A DTMF digit from RFC 4733 telephone-events.
    Dtmf(DtmfDigit),
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
    dtmf: Option<mpsc::UnboundedReceiver<DtmfDigit>>,
    playout: Mutex<Option<StreamResampler>>,
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
    /// Takes one 20 ms frame at 8 kHz; sends 16 kHz frames on.
    pub(crate) fn feed(&mut self, frame_8k: &[i16], stats: &MediaStats) {
        self.resampler.push(frame_8k);
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
    /// Opens the port on a session (once per session).
    pub fn open(session: &RtpSession) -> Result<MediaPort, MediaError> {
        let (tx, rx) = mpsc::channel(PORT_BACKLOG);
        session.set_caller_tap(CallerTap {
            resampler: StreamResampler::new(8000, PORT_RATE)?,
            tx,
        })?;
        Ok(MediaPort {
            session: session.clone(),
            frames: rx,
            dtmf: session.take_dtmf(),
            playout: Mutex::new(None),
        })
    }

    /// The next 20 ms of the caller at 16 kHz (PORT_FRAME samples); None once
    /// the media has stopped.
    pub async fn next_frame(&mut self) -> Option<Vec<i16>> {
        self.frames.recv().await
    }

    /// The next media event; None once the media has stopped.
    pub async fn next_event(&mut self) -> Option<MediaEvent> {
        match self.dtmf.as_mut() {
            Some(rx) => rx.recv().await.map(MediaEvent::Dtmf),
            None => std::future::pending().await,
        }
    }

    /// The next frame or event, whichever comes first; None once the media stopped.
    pub async fn recv(&mut self) -> Option<PortInput> {
        let dtmf = async {
            match self.dtmf.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            f = self.frames.recv() => f.map(PortInput::Frame),
            Some(d) = dtmf => Some(PortInput::Event(MediaEvent::Dtmf(d))),
        }
    }

    /// Queues audio for the caller. `rate` is its sample rate (8, 16, 22.05,
    /// 24 or 48 kHz); one resampler state is kept while the rate stays the same.
    pub fn play(&self, samples: &[i16], rate: u32) -> Result<(), MediaError> {
        if rate == 8000 {
            self.session.play(samples);
            return Ok(());
        }
        let mut guard = self
            .playout
            .lock()
            .map_err(|_| MediaError::Resample("playout resampler poisoned".into()))?;
        if guard.as_ref().is_none_or(|r| r.from_rate() != rate) {
            *guard = Some(StreamResampler::new(rate, 8000)?);
        }
        if let Some(r) = guard.as_mut() {
            r.push(samples);
            let out = r.drain_all();
            self.session.play(&out);
        }
        Ok(())
    }

    /// Stops what is playing: the next frame sent is silence.
    pub fn clear(&self) {
        if let Ok(mut g) = self.playout.lock() {
            if let Some(r) = g.as_mut() {
                r.clear();
            }
        }
        self.session.clear();
    }

    /// Audio still queued toward the caller, in 20 ms frames.
    pub fn queued_frames(&self) -> usize {
        self.session.queued_samples().div_ceil(SAMPLES_PER_FRAME_8K)
    }

    /// Counters of the call's media.
    pub fn stats(&self) -> Arc<MediaStats> {
        self.session.stats()
    }
}
