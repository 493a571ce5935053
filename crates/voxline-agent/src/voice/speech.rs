//! The speech handle: one interruptible reply of the agent (a fixed line
//! or a generated answer), synthesised phrase by phrase on a task of its
//! own, queued for playout, and what of it the caller actually heard when
//! it was stopped ([`stop_speaking`]), computed from the playout queue.

use super::pace::ReplyPace;
use super::turn_times::{ReplyStages, TurnTimes};
use super::Voice;
use crate::Answer;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxline_llm::LlmError;
use voxline_media::Playout;

/// Audio of the agent on its way to the caller.
#[derive(Debug)]
pub enum Spoken {
    /// A phrase's audio at the voice's rate, with when its stages happened.
    Audio {
        /// The phrase.
        text: String,
        /// Its audio.
        samples: Arc<[i16]>,
        /// When its stages happened.
        stages: ReplyStages,
    },
    /// The reply is over.
    Done,
    /// Synthesis or generation failed.
    Failed(String),
}

/// One phrase of a reply in the playout queue.
#[derive(Debug)]
pub struct Phrase {
    /// Its words.
    pub text: String,
    /// Length in 20 ms frames.
    pub frames: usize,
    /// Its audio, kept to play it again after a false interruption.
    pub audio: Arc<[i16]>,
}

/// One reply being spoken.
#[derive(Debug)]
pub struct SpeechHandle {
    cancel: CancellationToken,
    /// Its audio as it is made.
    pub rx: mpsc::Receiver<Spoken>,
    /// For an answer: the user message it answered (the history keeps it).
    pub answer_of: Option<String>,
    /// Phrases queued for playout.
    pub queued: Vec<Phrase>,
    /// Phrases heard before a false interruption (the rest was queued again).
    pub said_before: String,
    /// The caller turn it answers (for the turn's latency).
    pub turn: Option<TurnTimes>,
    /// Audio may still come (not Done or Failed yet).
    pub generating: bool,
}

/// How far the caller heard one reply when the agent stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    /// The user message it answered, for an answer.
    pub answer_of: Option<String>,
    /// Whole phrases played, and the played share of the one cut.
    pub text: String,
    /// The reply was cut.
    pub cut: bool,
    /// Index of the first phrase not heard in full.
    pub resume_from: usize,
    /// 20 ms frames of it the caller heard.
    pub frames: usize,
}

impl SpeechHandle {
    /// A handle on a reply whose audio comes on `rx`; `cancel` stops its maker.
    pub fn new(
        cancel: CancellationToken,
        rx: mpsc::Receiver<Spoken>,
        answer_of: Option<String>,
        turn: TurnTimes,
    ) -> SpeechHandle {
        SpeechHandle {
            cancel,
            rx,
            answer_of,
            queued: Vec::new(),
            said_before: String::new(),
            generating: true,
            turn: turn.asr_final.map(|_| turn),
        }
    }

    /// Speaks a fixed line.
    pub fn line(voice: Arc<dyn Voice>, text: String, turn: TurnTimes) -> SpeechHandle {
        let (tx, rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let decided = Instant::now();
        tokio::spawn(async move {
            tokio::select! {
                _ = c.cancelled() => {}
                audio = voice.line(&text) => {
                    let msg = match audio {
                        Ok(samples) => Spoken::Audio {
                            text,
                            samples,
                            stages: ReplyStages { llm_first_token: None, llm_prompt_read: None, first_phrase: decided, audio_ready: Instant::now() },
                        },
                        Err(e) => Spoken::Failed(e),
                    };
                    let _ = tx.send(msg).await;
                    let _ = tx.send(Spoken::Done).await;
                }
            }
        });
        SpeechHandle::new(cancel, rx, None, turn)
    }

    /// Speaks a generated answer: each phrase is synthesised as soon as it
    /// is checked, its audio queued while the next one is generated. When
    /// the model gives no phrase within `deadline` (since the answer began,
    /// then since the last phrase) or fails, the knowledge sentence that
    /// answers the question is read in its place where there is one, else
    /// the reply ends as [`Spoken::Failed`].
    pub fn answer(
        voice: Arc<dyn Voice>,
        pace: &Arc<ReplyPace>,
        mut answer: Answer,
        turn: TurnTimes,
        deadline: Option<std::time::Duration>,
    ) -> SpeechHandle {
        let (tx, rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let user = answer.history_message().to_string();
        // Counted among the answers in preparation until its first audio is ready.
        let mut pace = pace.start();
        tokio::spawn(async move {
            let run = async {
                loop {
                    let next = match deadline {
                        Some(d) => tokio::time::timeout(d, answer.next_phrase()).await.unwrap_or_else(|_| {
                            Err(LlmError::Generate(format!(
                                "no phrase from the model for {} ms",
                                d.as_millis()
                            )))
                        }),
                        None => answer.next_phrase().await,
                    };
                    let next = match next {
                        Err(e) => {
                            // The model stalled or failed: the facts read as
                            // written where the answer has them.
                            let why = e.to_string();
                            match answer.give_up(&why) {
                                Some(phrase) => {
                                    warn!(%why, "the model was given up: the answer's knowledge sentence read in its place");
                                    Ok(Some(phrase))
                                }
                                None => Err(why),
                            }
                        }
                        Ok(p) => Ok(p),
                    };
                    match next {
                        Ok(Some(phrase)) => {
                            let phrase_at = Instant::now();
                            // The model waits while the voice works: on two
                            // cores they would slow each other, and the
                            // phrase's audio is wanted first.
                            answer.hold(true);
                            let synthesized = voice.synthesize(&phrase).await;
                            answer.hold(false);
                            let samples = match synthesized {
                                Ok(s) => s,
                                Err(e) => {
                                    let _ = tx.send(Spoken::Failed(e)).await;
                                    return;
                                }
                            };
                            // Only audio that came teaches the pace; a failed
                            // synthesis drops its ticket uncounted.
                            pace.ready();
                            let stages = ReplyStages {
                                llm_first_token: answer.first_token_at().map(Instant::from_std),
                                llm_prompt_read: answer.prompt_read(),
                                first_phrase: phrase_at,
                                audio_ready: Instant::now(),
                            };
                            let audio = Spoken::Audio {
                                text: phrase,
                                samples: samples.into(),
                                stages,
                            };
                            if tx.send(audio).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {
                            if let Some(why) = &answer.stopped {
                                info!(%why, "answer stopped early");
                            }
                            let _ = tx.send(Spoken::Done).await;
                            return;
                        }
                        Err(why) => {
                            let _ = tx.send(Spoken::Failed(why)).await;
                            return;
                        }
                    }
                }
            };
            tokio::select! {
                _ = c.cancelled() => answer.cancel(),
                _ = run => {}
            }
        });
        SpeechHandle::new(cancel, rx, Some(user), turn)
    }

    /// Marks the reply fully generated.
    pub fn generated(mut self) -> SpeechHandle {
        self.generating = false;
        self
    }

    /// Stops making it: generation and synthesis end, no more audio comes.
    pub fn cancel(&mut self) {
        self.cancel.cancel();
        self.rx.close();
    }

    /// What was heard of it before a false interruption, then `text`.
    pub fn heard_with(&self, text: &str) -> String {
        [self.said_before.as_str(), text]
            .iter()
            .filter(|t| !t.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The whole reply as queued, with what was heard before a false
    /// interruption (it played out in full).
    pub fn played_text(&self) -> String {
        let said: Vec<&str> = self.queued.iter().map(|ph| ph.text.as_str()).collect();
        self.heard_with(&said.join(" "))
    }

    /// 20 ms frames queued for playout.
    pub fn queued_frames(&self) -> usize {
        self.queued.iter().map(|p| p.frames).sum()
    }
}

/// Stops the agent's speech now (the replies are not cancelled: see
/// [`super::interruption::Paused`]). For each reply queued (oldest first):
/// how far the caller heard it, computed from the playout queue.
pub fn stop_speaking(replies: &mut [SpeechHandle], playout: &dyn Playout) -> Vec<Heard> {
    let still_queued = playout.queued_frames();
    playout.clear();
    heard_of(replies, still_queued)
}

/// How far each reply was heard when the last `still_queued` frames of
/// their audio had not been played.
fn heard_of(replies: &[SpeechHandle], still_queued: usize) -> Vec<Heard> {
    let total: usize = replies.iter().flat_map(|s| s.queued.iter().map(|p| p.frames)).sum();
    // Audio goes out in order: the last `still_queued` frames were never heard.
    let mut heard_frames = total.saturating_sub(still_queued);
    let mut out = Vec::new();
    for s in replies {
        let before = heard_frames;
        let mut heard = Vec::new();
        let mut cut = false;
        let mut resume_from = s.queued.len();
        for (i, p) in s.queued.iter().enumerate() {
            if heard_frames >= p.frames {
                heard.push(p.text.clone());
                heard_frames -= p.frames;
            } else {
                cut = true;
                resume_from = i;
                let words: Vec<&str> = p.text.split_whitespace().collect();
                let k = words.len() * heard_frames / p.frames.max(1);
                heard_frames = 0;
                if k > 0 {
                    heard.push(words[..k].join(" "));
                }
                break;
            }
        }
        // A reply still being generated was cut too.
        cut |= s.generating;
        out.push(Heard {
            answer_of: s.answer_of.clone(),
            text: s.heard_with(&heard.join(" ")),
            cut,
            resume_from,
            frames: before - heard_frames,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(answer_of: Option<&str>, phrases: &[(&str, usize)], generating: bool) -> SpeechHandle {
        let (_tx, rx) = mpsc::channel(1);
        let mut s = SpeechHandle::new(
            CancellationToken::new(),
            rx,
            answer_of.map(str::to_string),
            TurnTimes::default(),
        );
        s.generating = generating;
        s.queued = phrases
            .iter()
            .map(|(t, frames)| Phrase {
                text: t.to_string(),
                frames: *frames,
                audio: Arc::from(vec![0i16; 1]),
            })
            .collect();
        s
    }

    #[test]
    fn what_was_heard_is_cut_at_the_word_the_playout_reached() {
        // A line of 10 frames, then an answer of two phrases (20 + 40 frames)
        // still generating; 50 frames were never played.
        let replies = [
            reply(None, &[("Hello there.", 10)], false),
            reply(
                Some("Q"),
                &[
                    ("The branch opens at nine.", 20),
                    ("It closes at five on weekdays.", 40),
                ],
                true,
            ),
        ];
        let heard = heard_of(&replies, 50);
        assert_eq!(heard[0].text, "Hello there.");
        assert!(!heard[0].cut);
        // 70 frames queued, 20 heard: the line, then half of the first phrase.
        assert_eq!(heard[1].text, "The branch");
        assert!(heard[1].cut);
        assert_eq!(heard[1].resume_from, 0);
        assert_eq!(heard[1].answer_of.as_deref(), Some("Q"));
    }

    #[test]
    fn a_reply_heard_in_full_but_still_generating_counts_as_cut() {
        let replies = [reply(Some("Q"), &[("Yes.", 5)], true)];
        let heard = heard_of(&replies, 0);
        assert_eq!(heard[0].text, "Yes.");
        assert!(heard[0].cut);
        assert_eq!(heard[0].resume_from, 1);
    }

    #[test]
    fn words_heard_before_a_false_interruption_come_first() {
        let mut r = reply(Some("Q"), &[("and on Saturdays.", 10)], false);
        r.said_before = "We open at nine".into();
        assert_eq!(r.played_text(), "We open at nine and on Saturdays.");
        assert_eq!(heard_of(&[r], 10)[0].text, "We open at nine");
    }
}
