//! Per-call stereo recording: caller on the left, voxline on the right.
//!
//! The files are written by one writer thread for the whole process, never
//! on the media clock's thread: each frame goes to it through one bounded
//! queue. When the disk falls behind and the queue is full, the frame is
//! dropped (counted in [`RecordingStats`]) rather than waited for, and the
//! writer puts silence in its place, so the recording keeps the call's
//! timeline. The header is rewritten every second, so a crash leaves a
//! playable file.

use crate::MediaError;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::oneshot;

/// Frames the writer may be behind by, all calls together (about 10 s of
/// 100 calls).
const QUEUE: usize = 50_000;

/// Frames between two header rewrites (1 s).
const FLUSH_EVERY: u32 = 50;

/// How long a call waits for its file to be completed at its end.
const FINISH_WAIT: Duration = Duration::from_secs(30);

/// Counters of the recording writer, since start.
#[derive(Debug, Default)]
pub struct RecordingStats {
    /// Frames written to files.
    pub frames_written: AtomicU64,
    /// Frames dropped because the writer was behind (silence in their place).
    pub frames_dropped: AtomicU64,
    /// Recordings that failed to write (disk full, file gone); each logged.
    pub failed: AtomicU64,
    /// Frames waiting for the writer now.
    pub queued: AtomicU64,
}

/// What a call sends the writer.
enum Msg {
    /// The call's first frame: its file, a WAV at `rate` from now on.
    Start {
        id: u64,
        file: File,
        path: PathBuf,
        rate: u32,
        samples: Vec<i16>,
    },
    /// A frame (`seq` counts the call's frames: a gap is filled with silence).
    Frame { id: u64, seq: u64, samples: Vec<i16> },
    /// The call ended: complete the file.
    Finish {
        id: u64,
        done: Option<oneshot::Sender<Result<(), MediaError>>>,
    },
    /// A fault while handling a file's message (tests of the writer's
    /// recovery).
    #[cfg(test)]
    Panic { id: u64 },
}

impl Msg {
    /// The recording the message belongs to.
    fn id(&self) -> u64 {
        match self {
            Msg::Start { id, .. } | Msg::Frame { id, .. } | Msg::Finish { id, .. } => *id,
            #[cfg(test)]
            Msg::Panic { id } => *id,
        }
    }
}

struct Writer {
    tx: flume::Sender<Msg>,
    stats: Arc<RecordingStats>,
    next_id: AtomicU64,
}

static WRITER: OnceLock<Result<Writer, String>> = OnceLock::new();

/// The process's recording writer, started on first use.
fn writer() -> Result<&'static Writer, MediaError> {
    WRITER
        .get_or_init(|| {
            let (tx, rx) = flume::bounded(QUEUE);
            let stats = Arc::new(RecordingStats::default());
            let thread_stats = stats.clone();
            std::thread::Builder::new()
                .name("recording-writer".into())
                .spawn(move || write_files(&rx, &thread_stats))
                .map_err(|e| format!("starting the recording writer: {e}"))?;
            Ok(Writer {
                tx,
                stats,
                next_id: AtomicU64::new(1),
            })
        })
        .as_ref()
        .map_err(|e| MediaError::Wav {
            path: String::new(),
            reason: e.clone(),
        })
}

/// The recording writer's counters (none before the first recording).
pub fn recording_stats() -> Option<Arc<RecordingStats>> {
    WRITER.get().and_then(|w| w.as_ref().ok()).map(|w| w.stats.clone())
}

/// One file the writer has open.
struct OpenFile {
    path: PathBuf,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    /// The next frame's number, and one frame's length (for silence).
    next_seq: u64,
    frame_len: usize,
    since_flush: u32,
    failed: Option<String>,
}

impl OpenFile {
    fn start(file: File, path: PathBuf, rate: u32) -> OpenFile {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let (writer, failed) = match hound::WavWriter::new(BufWriter::new(file), spec) {
            Ok(w) => (Some(w), None),
            Err(e) => (None, Some(e.to_string())),
        };
        OpenFile {
            path,
            writer,
            next_seq: 0,
            frame_len: 0,
            since_flush: 0,
            failed,
        }
    }

    /// Writes frame `seq` (interleaved), silence first for any frame
    /// missing before it.
    fn write(&mut self, seq: u64, samples: &[i16], stats: &RecordingStats) {
        if !samples.is_empty() {
            self.frame_len = samples.len();
        }
        let missing = seq.saturating_sub(self.next_seq).min(30_000) as usize;
        self.next_seq = seq.max(self.next_seq) + 1;
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        let silence = std::iter::repeat_n(0i16, missing * self.frame_len);
        let mut result = Ok(());
        for s in silence.chain(samples.iter().copied()) {
            if let Err(e) = w.write_sample(s) {
                result = Err(e);
                break;
            }
        }
        self.since_flush += 1;
        if result.is_ok() && self.since_flush >= FLUSH_EVERY {
            self.since_flush = 0;
            result = w.flush();
        }
        match result {
            Ok(()) => {
                stats.frames_written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.fail(e.to_string(), stats),
        }
    }

    fn fail(&mut self, why: String, stats: &RecordingStats) {
        tracing::warn!(path = %self.path.display(), error = %why, "recording stopped");
        stats.failed.fetch_add(1, Ordering::Relaxed);
        self.writer = None;
        self.failed = Some(why);
    }

    fn finish(self) -> Result<(), MediaError> {
        let err = |reason: String| MediaError::Wav {
            path: self.path.display().to_string(),
            reason,
        };
        if let Some(why) = &self.failed {
            return Err(err(why.clone()));
        }
        match self.writer {
            Some(w) => w.finalize().map_err(|e| err(e.to_string())),
            None => Ok(()),
        }
    }
}

/// The writer thread: until every sender is gone. A panic while handling
/// one file's message stops that recording only (logged, counted failed):
/// the other calls' files go on.
fn write_files(rx: &flume::Receiver<Msg>, stats: &RecordingStats) {
    let mut open: HashMap<u64, OpenFile> = HashMap::new();
    while let Ok(msg) = rx.recv() {
        stats.queued.store(rx.len() as u64, Ordering::Relaxed);
        let id = msg.id();
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(msg, &mut open, stats)));
        if handled.is_err() {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            // Its file is closed as far as it got (the header may lag the
            // last second) and the call's finish hears of the fault;
            // closing it must not take the writer down.
            let Some(f) = open.get_mut(&id) else { continue };
            let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(f.writer.take())));
            f.failed = Some("the recording writer failed on this file".into());
            tracing::error!(
                path = %f.path.display(),
                closed = closed.is_ok(),
                "recording writer fault: this recording stopped, the others go on"
            );
        }
    }
}

/// One message of the writer thread.
fn handle(msg: Msg, open: &mut HashMap<u64, OpenFile>, stats: &RecordingStats) {
    {
        match msg {
            Msg::Start {
                id,
                file,
                path,
                rate,
                samples,
            } => {
                let mut f = OpenFile::start(file, path, rate);
                if let Some(why) = f.failed.clone() {
                    f.fail(why, stats);
                }
                f.write(0, &samples, stats);
                open.insert(id, f);
            }
            Msg::Frame { id, seq, samples } => {
                if let Some(f) = open.get_mut(&id) {
                    f.write(seq, &samples, stats);
                }
            }
            Msg::Finish { id, done } => {
                let result = open.remove(&id).map_or(Ok(()), OpenFile::finish);
                if let Some(done) = done {
                    done.send(result).ok();
                }
            }
            #[cfg(test)]
            Msg::Panic { id } => panic!("a fault in recording {id}"),
        }
    }
}

/// Records one call: a stereo 16-bit WAV at the call's PCM rate, written by
/// the recording writer as the call goes.
pub struct CallRecorder {
    id: u64,
    path: PathBuf,
    /// The file until its first frame reaches the writer.
    file: Option<File>,
    /// Frames handed out so far (the next one's number).
    seq: u64,
    finished: bool,
    writer: &'static Writer,
}

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder").field("path", &self.path).finish()
    }
}

impl CallRecorder {
    /// Creates the file (and its directory), never over another: when
    /// `path` exists (two calls with one Call-ID, which a peer may reuse or
    /// collide on) the next free `NAME-2.wav`, `NAME-3.wav`… is taken;
    /// [`path`](Self::path) says which. The WAV header is written with the
    /// first frame, at the call's PCM rate.
    pub fn create(path: &Path) -> Result<CallRecorder, MediaError> {
        let err = |reason: String| MediaError::Wav {
            path: path.display().to_string(),
            reason,
        };
        let writer = writer()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut chosen = path.to_path_buf();
        let mut n = 1;
        let file = loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&chosen) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                    n += 1;
                    chosen = path.with_file_name(format!("{stem}-{n}.{ext}"));
                }
                Err(e) => return Err(err(e.to_string())),
            }
        };
        Ok(CallRecorder {
            id: writer.next_id.fetch_add(1, Ordering::Relaxed),
            path: chosen,
            file: Some(file),
            seq: 0,
            finished: false,
            writer,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands one frame at `rate` Hz to the writer (`caller` and `agent` have
    /// the same length); never waits: a frame the writer has no room for is
    /// dropped and counted. Err only when the writer has stopped.
    pub fn write_frame(&mut self, caller: &[i16], agent: &[i16], rate: u32) -> Result<(), MediaError> {
        let mut samples = Vec::with_capacity(caller.len() * 2);
        for (&l, &r) in caller.iter().zip(agent) {
            samples.push(l);
            samples.push(r);
        }
        let msg = match self.file.take() {
            Some(file) => Msg::Start {
                id: self.id,
                file,
                path: self.path.clone(),
                rate,
                samples,
            },
            None => Msg::Frame {
                id: self.id,
                seq: self.seq,
                samples,
            },
        };
        match self.writer.tx.try_send(msg) {
            Ok(()) => {
                self.seq += 1;
                Ok(())
            }
            Err(flume::TrySendError::Full(msg)) => {
                // Not started yet: the next frame starts the file.
                if let Msg::Start { file, .. } = msg {
                    self.file = Some(file);
                } else {
                    self.seq += 1;
                }
                self.writer.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(flume::TrySendError::Disconnected(_)) => Err(MediaError::Wav {
                path: self.path.display().to_string(),
                reason: "the recording writer has stopped".into(),
            }),
        }
    }

    /// Completes the file once the writer has written every frame before
    /// this (a call that never got a frame leaves a valid, empty 8 kHz file).
    pub async fn finish(mut self) -> Result<(), MediaError> {
        self.finished = true;
        let err = |reason: &str| MediaError::Wav {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        };
        let tx = &self.writer.tx;
        if let Some(file) = self.file.take() {
            let start = Msg::Start {
                id: self.id,
                file,
                path: self.path.clone(),
                rate: 8000,
                samples: Vec::new(),
            };
            tx.send_async(start)
                .await
                .map_err(|_| err("the recording writer has stopped"))?;
        }
        let (done, result) = oneshot::channel();
        tx.send_async(Msg::Finish {
            id: self.id,
            done: Some(done),
        })
        .await
        .map_err(|_| err("the recording writer has stopped"))?;
        match tokio::time::timeout(FINISH_WAIT, result).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(err("the recording writer has stopped")),
            Err(_) => Err(err("the recording writer did not complete the file in 30 s")),
        }
    }
}

impl Drop for CallRecorder {
    /// A recorder dropped without [`CallRecorder::finish`] (its call's task
    /// failed) still has its file completed by the writer.
    fn drop(&mut self) {
        if !self.finished && self.file.is_none() {
            self.writer
                .tx
                .try_send(Msg::Finish {
                    id: self.id,
                    done: None,
                })
                .ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames the writer never got (dropped while it was behind) become
    /// silence: the file keeps the call's timeline.
    #[test]
    fn a_dropped_frame_is_written_as_silence() {
        let dir = std::env::temp_dir().join(format!("voxline-rec-gap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("gap.wav");
        let file = File::create(&path).expect("file");
        let stats = RecordingStats::default();
        let mut f = OpenFile::start(file, path.clone(), 8000);
        f.write(0, &[7; 320], &stats);
        f.write(3, &[9; 320], &stats);
        f.finish().expect("finish");
        let samples: Vec<i16> = hound::WavReader::open(&path)
            .expect("wav")
            .samples::<i16>()
            .map(|s| s.expect("sample"))
            .collect();
        assert_eq!(samples.len(), 4 * 320, "frames 1 and 2 are there as silence");
        assert!(samples[..320].iter().all(|&s| s == 7));
        assert!(samples[320..960].iter().all(|&s| s == 0));
        assert!(samples[960..].iter().all(|&s| s == 9));
        assert_eq!(stats.frames_written.load(Ordering::Relaxed), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A fault while writing one call's file stops that recording only:
    /// the writer goes on with the others.
    #[test]
    fn a_fault_in_one_recording_leaves_the_others_written() {
        let dir = std::env::temp_dir().join(format!("voxline-rec-fault-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let (tx, rx) = flume::bounded(16);
        let stats = Arc::new(RecordingStats::default());
        let thread_stats = stats.clone();
        let writer = std::thread::spawn(move || write_files(&rx, &thread_stats));
        let start = |id: u64, name: &str| Msg::Start {
            id,
            file: File::create(dir.join(name)).expect("file"),
            path: dir.join(name),
            rate: 8000,
            samples: vec![5; 320],
        };
        tx.send(start(1, "faulty.wav")).expect("send");
        tx.send(start(2, "healthy.wav")).expect("send");
        tx.send(Msg::Panic { id: 1 }).expect("send");
        let (done1, faulty) = oneshot::channel();
        let (done2, healthy) = oneshot::channel();
        for (id, done) in [(1, done1), (2, done2)] {
            tx.send(Msg::Frame {
                id,
                seq: 1,
                samples: vec![6; 320],
            })
            .expect("send");
            tx.send(Msg::Finish { id, done: Some(done) }).expect("send");
        }
        drop(tx);
        writer.join().expect("the writer thread ends normally");
        // The faulty call's finish says its recording failed; the healthy
        // one is whole.
        let fault = faulty.blocking_recv().expect("answered").expect_err("a fault");
        assert!(fault.to_string().contains("faulty.wav"), "{fault}");
        healthy
            .blocking_recv()
            .expect("answered")
            .expect("healthy file completed");
        let n = hound::WavReader::open(dir.join("healthy.wav")).expect("wav").len();
        assert_eq!(n, 2 * 320);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_second_call_with_the_same_call_id_gets_its_own_file() {
        let dir = std::env::temp_dir().join(format!("voxline-rec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("same-id.wav");
        let mut first = CallRecorder::create(&path).expect("first");
        first.write_frame(&[1; 160], &[2; 160], 8000).expect("frame");
        first.finish().await.expect("finish");
        let before = std::fs::read(&path).expect("first file");
        let second = CallRecorder::create(&path).expect("second");
        let third = CallRecorder::create(&path).expect("third");
        assert_eq!(second.path(), dir.join("same-id-2.wav"));
        assert_eq!(third.path(), dir.join("same-id-3.wav"));
        assert_eq!(
            std::fs::read(&path).expect("first file again"),
            before,
            "the first recording is untouched"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
