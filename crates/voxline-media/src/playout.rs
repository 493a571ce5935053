//! The queue of audio toward the caller: segments of PCM at the session's
//! rate, taken 20 ms at a time by the media clock. A prompt is queued as a
//! shared segment (no copy per call), so a thousand calls playing the same
//! greeting hold one copy of it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;

/// Start times of marked segments remembered (looked up after they played).
const STARTS_KEPT: usize = 32;

#[derive(Debug, Default)]
struct Segments {
    /// Each segment, how far into it playout has got, and its mark.
    segs: VecDeque<(Arc<[i16]>, usize, Option<u64>)>,
    /// Samples left in all segments.
    len: usize,
    /// The last mark handed out.
    last_mark: u64,
    /// When each marked segment's first sample was taken for a frame (the
    /// frame is sent right after), latest last.
    starts: VecDeque<(u64, Instant)>,
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
        self.push_segment(samples, false);
    }

    /// Queues a segment whose start time is wanted: returns its mark (see
    /// [`PlayoutQueue::started_at`]); `None` for empty audio.
    pub(crate) fn push_marked(&self, samples: &[i16]) -> Option<u64> {
        self.push_segment(Arc::from(samples), true)
    }

    fn push_segment(&self, samples: Arc<[i16]>, marked: bool) -> Option<u64> {
        if samples.is_empty() {
            return None;
        }
        let mut q = self.inner.lock().ok()?;
        let mark = marked.then(|| {
            q.last_mark += 1;
            q.last_mark
        });
        q.len += samples.len();
        q.segs.push_back((samples, 0, mark));
        mark
    }

    /// When the segment with `mark` began to be sent, once it has (and if
    /// it is still remembered).
    pub(crate) fn started_at(&self, mark: u64) -> Option<Instant> {
        let q = self.inner.lock().ok()?;
        q.starts.iter().find(|(m, _)| *m == mark).map(|(_, t)| *t)
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
        let mut started = None;
        while filled < frame.len() {
            let Some((seg, pos, mark)) = q.segs.front_mut() else {
                break;
            };
            if *pos == 0 {
                started = mark.take().or(started);
            }
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
        if let Some(mark) = started {
            if q.starts.len() == STARTS_KEPT {
                q.starts.pop_front();
            }
            q.starts.push_back((mark, Instant::now()));
        }
        filled > 0
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
    fn a_marked_segment_records_when_its_first_sample_is_taken() {
        let q = PlayoutQueue::default();
        q.push(&[1; 6]);
        let mark = q.push_marked(&[2; 6]).expect("a mark");
        assert_eq!(q.push_marked(&[]), None);
        let mut f = [0i16; 4];
        // The first frame holds only unmarked audio.
        let before = Instant::now();
        assert!(q.fill(&mut f));
        assert_eq!(q.started_at(mark), None);
        // The second frame ends the first segment and starts the marked one.
        assert!(q.fill(&mut f));
        assert_eq!(f, [1, 1, 2, 2]);
        let at = q.started_at(mark).expect("started");
        assert!(at >= before);
        // Taking more of it does not move its start.
        assert!(q.fill(&mut f));
        assert_eq!(q.started_at(mark), Some(at));
        // A cleared marked segment never starts.
        let cleared = q.push_marked(&[3; 8]).expect("mark");
        q.clear();
        assert!(!q.fill(&mut f));
        assert_eq!(q.started_at(cleared), None);
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
