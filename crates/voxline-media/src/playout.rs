//! The queue of audio toward the caller: segments of PCM at the session's
//! rate, taken 20 ms at a time by the media clock. A prompt is queued as a
//! shared segment (no copy per call), so a thousand calls playing the same
//! greeting hold one copy of it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;

/// Talk-spurt starts remembered (a reply's first packet is looked up after it played).
const STARTS_KEPT: usize = 16;

#[derive(Debug, Default)]
struct Segments {
    /// Each segment and how far into it playout has got.
    segs: VecDeque<(Arc<[i16]>, usize)>,
    /// Samples left in all segments.
    len: usize,
    /// The last frame taken held queued audio.
    playing: bool,
    /// When queued audio followed silence (a frame about to be sent), latest last.
    starts: VecDeque<Instant>,
}

/// Audio queued toward the caller.
#[derive(Debug, Default)]
pub(crate) struct PlayoutQueue {
    inner: Mutex<Segments>,
    /// Woken whenever a frame finds the queue empty (or it is cleared).
    pub(crate) drained: Notify,
}

impl PlayoutQueue {
    /// Queues a shared segment.
    pub(crate) fn push_shared(&self, samples: Arc<[i16]>) {
        if samples.is_empty() {
            return;
        }
        if let Ok(mut q) = self.inner.lock() {
            q.len += samples.len();
            q.segs.push_back((samples, 0));
        }
    }

    /// Queues a copy of `samples`.
    pub(crate) fn push(&self, samples: &[i16]) {
        self.push_shared(Arc::from(samples));
    }

    /// Forgets everything queued and wakes waiters.
    pub(crate) fn clear(&self) {
        if let Ok(mut q) = self.inner.lock() {
            q.segs.clear();
            q.len = 0;
            q.playing = false;
        }
        self.drained.notify_waiters();
    }

    /// Samples queued.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().map(|q| q.len).unwrap_or(0)
    }

    /// Fills `frame` from the queue, silence after its end; returns whether
    /// any queued audio was used.
    pub(crate) fn fill(&self, frame: &mut [i16]) -> bool {
        let Ok(mut q) = self.inner.lock() else {
            frame.fill(0);
            return false;
        };
        let mut filled = 0;
        while filled < frame.len() {
            let Some((seg, pos)) = q.segs.front_mut() else {
                break;
            };
            let n = (seg.len() - *pos).min(frame.len() - filled);
            frame[filled..filled + n].copy_from_slice(&seg[*pos..*pos + n]);
            *pos += n;
            filled += n;
            if *pos == seg.len() {
                q.segs.pop_front();
            }
        }
        q.len -= filled;
        frame[filled..].fill(0);
        if filled > 0 && !q.playing {
            if q.starts.len() == STARTS_KEPT {
                q.starts.pop_front();
            }
            q.starts.push_back(Instant::now());
        }
        q.playing = filled > 0;
        filled > 0
    }

    /// The first time since `t` that queued audio started after silence (the
    /// frame it filled was sent right after), if one is remembered.
    pub(crate) fn started_since(&self, t: Instant) -> Option<Instant> {
        let q = self.inner.lock().ok()?;
        q.starts.iter().copied().find(|&s| s >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_segment_boundaries_and_end_in_silence() {
        let q = PlayoutQueue::default();
        let a: Arc<[i16]> = (1..=5).collect::<Vec<i16>>().into();
        q.push_shared(a.clone());
        q.push(&[6, 7]);
        assert_eq!(q.len(), 7);
        let mut f = [0i16; 4];
        assert!(q.fill(&mut f));
        assert_eq!(f, [1, 2, 3, 4]);
        assert!(q.fill(&mut f));
        assert_eq!(f, [5, 6, 7, 0]);
        assert!(!q.fill(&mut f));
        assert_eq!(f, [0; 4]);
        assert_eq!(q.len(), 0);
        // The shared segment was not copied.
        assert_eq!(Arc::strong_count(&a), 1);
    }

    #[test]
    fn talk_spurt_starts_are_remembered() {
        let q = PlayoutQueue::default();
        let before = Instant::now();
        let mut f = [0i16; 4];
        assert!(!q.fill(&mut f));
        assert_eq!(q.started_since(before), None);
        q.push(&[1; 6]);
        assert!(q.fill(&mut f));
        let first = q.started_since(before).expect("a start");
        // Still the same spurt: no new start.
        q.push(&[1; 4]);
        assert!(q.fill(&mut f));
        assert!(q.fill(&mut f));
        assert_eq!(q.started_since(before), Some(first));
        // Silence, then audio again: a new start, found from after the first.
        assert!(!q.fill(&mut f));
        let mid = Instant::now();
        q.push(&[1; 4]);
        assert!(q.fill(&mut f));
        let second = q.started_since(mid).expect("second start");
        assert!(second >= mid && second >= first);
        // A clear ends the spurt.
        q.push(&[1; 40]);
        assert!(q.fill(&mut f));
        q.clear();
        let after_clear = Instant::now();
        q.push(&[1; 4]);
        assert!(q.fill(&mut f));
        assert!(q.started_since(after_clear).is_some());
    }

    #[test]
    fn clear_empties_the_queue_at_once() {
        let q = PlayoutQueue::default();
        q.push(&[1; 1000]);
        q.clear();
        assert_eq!(q.len(), 0);
        let mut f = [9i16; 3];
        assert!(!q.fill(&mut f));
        assert_eq!(f, [0; 3]);
    }
}
