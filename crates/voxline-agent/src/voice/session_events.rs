//! What the voice session does on each event: the caller's audio and keys,
//! the recogniser's speech start and end, partial, early and final text,
//! the reply's audio as it comes, the playout drained, a tool finished, and
//! its timers (hold line, barge-in, silence, the call's length, shutdown).

use super::end_of_turn::TurnEnd;
use super::interruption::{is_backchannel, FrameVerdict, Paused};
use super::preempt::Preempt;
use super::session::{Call, Event, OPERATOR};
use super::silence::SilenceStep;
use super::speech::{stop_speaking, Phrase, SpeechHandle, Spoken};
use super::turn_times::TurnTimes;
use crate::dialogue::ToolOutcome;
use crate::Action;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, info, warn, Instrument};
use voxline_asr::{AsrEvent, Confidence};
use voxline_media::{LegEnd, LegInput};
use voxline_text::words::words;

impl Call<'_> {
    /// Handles one event; `Some` when the call ended.
    pub(super) async fn handle(&mut self, event: Event) -> Option<LegEnd> {
        match event {
            Event::Leg(input) => return self.on_leg(input).await,
            Event::Asr(ev) => self.on_asr(ev).await,
            Event::Spoken(spoken) => self.on_spoken(spoken),
            Event::Drained => {
                let played = self.record_played().await;
                self.finish_turns(played).await;
                self.silence.restart();
            }
            Event::ToolDone(done) => {
                if let Some(run) = self.tool_run.take() {
                    let error = match &done {
                        Some(o) => o.error.clone(),
                        None => Some("the tool's task ended without a result".into()),
                    };
                    self.transcript.tool(&run, error, true).await;
                }
                if let Some(ToolOutcome { actions, error }) = done {
                    let next = self.conv.tool_finished(error.is_some()).await;
                    self.transcript.steps(&mut self.conv).await;
                    // The tool's answer goes first: it follows what was said before it.
                    for a in actions.into_iter().chain(next).rev() {
                        self.pending.push_front(a);
                    }
                }
            }
            Event::HoldDue { after, expected } => self.hold_line(after, expected).await,
            Event::BargeDue => self.barge_in(),
            Event::SilenceDue => self.on_silence().await,
            Event::Deadline => {
                self.leg.hangup().await.ok();
                return Some(LegEnd::local("max_duration"));
            }
            Event::Shutdown => {
                self.leg.hangup().await.ok();
                return Some(LegEnd::local("shutdown"));
            }
            Event::HungUp => {
                self.leg.hangup().await.ok();
                return Some(LegEnd::local(OPERATOR));
            }
        }
        None
    }

    async fn on_leg(&mut self, input: LegInput) -> Option<LegEnd> {
        match input {
            LegInput::Frame(frame) => {
                if let Err(e) = self.rec.push(&frame) {
                    warn!(error = %e, "speech recognition stopped: hanging up");
                    self.detail = Some(format!("speech recognition stopped: {e}"));
                    self.leg.hangup().await.ok();
                    return Some(LegEnd::local("error"));
                }
                // Barge-in runs on the caller's voice from its first
                // windows, before the VAD reports speech.
                let voice = self.rec.voice_since();
                let talking = voice.is_some() && self.agent_talking();
                let verdict = self.barge.frame(
                    voice,
                    self.rec.now_ms(),
                    talking,
                    self.paused.is_some(),
                    self.caller_speaking,
                );
                // A voice too short to be speech stopped the agent: noise, it goes on.
                if verdict == FrameVerdict::NoiseGone {
                    if let Some(p) = self.paused.take_if(|p| !p.speech_started) {
                        self.resume(p);
                    }
                }
            }
            LegInput::Dtmf(d) => {
                self.silence.restart();
                match self.digits.key(d.digit) {
                    Some(done) => self.keyed(&done).await,
                    // Which key is not logged (it may be part of a secret).
                    None => info!(collecting = self.digits.is_collecting(), "the caller keyed a digit"),
                }
            }
            LegInput::MediaTimeout => {
                self.leg.hangup().await.ok();
                return Some(LegEnd::local("media_timeout"));
            }
            LegInput::Hold | LegInput::Unhold => {}
            LegInput::Ended(end) => return Some(end),
        }
        None
    }

    async fn on_asr(&mut self, ev: AsrEvent) {
        match ev {
            AsrEvent::SpeechStart { at_ms, utterance } => {
                self.caller_speaking = true;
                self.caller_span = Some((utterance, at_ms, None));
                if let Some(p) = self.paused.as_mut() {
                    p.speech_started = true;
                }
                self.digits.caller_spoke();
                self.end_of_turn.reset(&mut *self.rec);
                // The caller goes on: a reply started early is out of date.
                if let Some(p) = self.preempt.take() {
                    p.undo(&mut self.conv);
                }
                let talking = self.agent_talking();
                self.barge.speech_started(at_ms, talking);
            }
            AsrEvent::SpeechEnd { at_ms, utterance, .. } => {
                self.caller_speaking = false;
                if let Some(span) = self.caller_span.as_mut().filter(|s| s.0 == utterance) {
                    span.2 = Some(at_ms);
                }
                self.end_of_turn.reset(&mut *self.rec);
                self.barge.speech_ended();
                self.turn_times.caller_ended(at_ms, self.rec.now_ms());
                self.silence.restart();
            }
            AsrEvent::Partial { text, .. } => self.read_ahead(&text),
            AsrEvent::Tentative {
                utterance,
                text,
                confidence,
            } => self.on_early_final(utterance, &text, confidence).await,
            AsrEvent::Final {
                utterance,
                text,
                latency,
                cost,
                ..
            } => self.on_final(utterance, text.trim(), latency, cost.confidence).await,
            AsrEvent::TurnAudio { complete, took, .. } => {
                debug!(complete, took_ms = took.as_millis() as u64, "audio end of turn");
                self.end_of_turn.heard(&mut *self.rec, complete);
            }
            AsrEvent::Failed { error, .. } => {
                warn!(%error, "caller turn not recognised");
                if let Some(p) = self.paused.take() {
                    self.resume(p);
                }
            }
        }
    }

    /// The model reads the question's facts while the caller still speaks
    /// (one prefill at a time per call).
    fn read_ahead(&mut self, text: &str) {
        let free = self.prefilling.as_ref().is_none_or(|h| h.is_finished());
        let can_read = self.agent_quiet()
            && free
            && self.preempt.is_none()
            && !self.digits.is_collecting()
            && !self.conv.is_collecting();
        if !can_read {
            return;
        }
        if let Some(read) = self.conv.prefill(text) {
            debug!(%text, "prefilling the prompt from a partial");
            self.prefilling = Some(tokio::spawn(
                async move {
                    if let Err(e) = read.await {
                        debug!(error = %e, "prefill failed");
                    }
                }
                .in_current_span(),
            ));
        }
    }

    /// End of turn from the words; and preemptive generation: the reply
    /// starts now, kept only if the final transcript is the same.
    async fn on_early_final(&mut self, utterance: u64, text: &str, confidence: Confidence) {
        let end = self
            .end_of_turn
            .early_final(&mut *self.rec, text, &self.conv.digit_lengths());
        let can_start = self.agent_quiet()
            && end != TurnEnd::Incomplete
            && self.preempt.is_none()
            && !self.digits.is_collecting()
            && !self.conv.is_collecting()
            && !is_backchannel(text);
        if !can_start {
            return;
        }
        // Words over a stopped agent: the interruption is settled now, so the
        // history the reply is prompted with keeps what the caller heard of
        // the cut reply (the final can only add words to these).
        if self.paused.is_some() {
            if !text.chars().any(char::is_alphanumeric) {
                return;
            }
            if let Some(p) = self.paused.take() {
                self.interrupted(p).await;
            }
        }
        let before = Box::new(self.conv.clone());
        self.stop_read_ahead();
        let Ok((intent, actions)) = self
            .conv
            .turn_heard(text, self.s.config.doubt.doubts(&confidence))
            .await
        else {
            self.conv = *before;
            return;
        };
        let mut actions: VecDeque<Action> = actions.into();
        let times = TurnTimes {
            asr_final: Some(Instant::now()),
            early: true,
            ..TurnTimes::default()
        };
        let first = match actions.pop_front() {
            Some(Action::Say(t)) => Some(self.speak_line(t, times)),
            Some(Action::Answer(a)) => Some(self.speak_answer(*a, times)),
            Some(other) => {
                actions.push_front(other);
                None
            }
            None => None,
        };
        self.preempt = Some(Preempt {
            utterance,
            words: words(text),
            intent,
            first,
            rest: actions,
            before,
        });
    }

    async fn on_final(&mut self, utterance: u64, text: &str, latency: Duration, confidence: Confidence) {
        self.silence.caller_turn();
        let no_words = !text.chars().any(char::is_alphanumeric);
        let backchannel = is_backchannel(text);
        let said = words(text);
        // A reply started on other words is undone before anything else.
        if self.preempt.as_ref().is_some_and(|p| !p.matches(utterance, &said)) {
            if let Some(p) = self.preempt.take() {
                p.undo(&mut self.conv);
            }
        }
        if let Some(p) = self.paused.take() {
            if no_words || backchannel {
                // A false interruption: the agent goes on.
                self.resume(p);
                return;
            }
            self.interrupted(p).await;
        }
        // "Yeah" answers a question the agent asked; otherwise a
        // backchannel does not take the turn.
        if no_words || (backchannel && !self.conv.awaits_answer()) {
            if let Some(p) = self.preempt.take() {
                p.undo(&mut self.conv);
            }
            return;
        }
        self.turn_times.asr_final = Some(Instant::now());
        self.holds_said = 0;
        let span = self
            .caller_span
            .filter(|s| s.0 == utterance)
            .map(|(_, start, end)| (start, end.unwrap_or_else(|| self.rec.now_ms())));
        self.transcript.caller(text, Some(latency), span).await;
        // A new turn replaces anything still queued.
        self.pending.clear();
        if let Some(mut p) = self.preempt.take() {
            if p.matches(utterance, &said) && self.speaking.is_none() {
                info!(intent = ?p.intent, said = %text, "caller turn (reply started on the early final)");
                self.s.observer.preempted();
                // A digit prompt the caller already answered by keying ahead is dropped.
                if matches!(p.rest.front(), Some(Action::CollectDigits { length, .. }) if self.digits.answers_prompt(*length))
                {
                    info!("digits keyed ahead answer the prompt: not said");
                    p.drop_first();
                }
                self.turn_times.text = text.to_string();
                self.turn_times.intent = p.intent.name().to_string();
                self.turn_times.early = true;
                if let Some(mut s) = p.first.take() {
                    s.turn = Some(std::mem::take(&mut self.turn_times));
                    self.speaking = Some(s);
                }
                self.pending.extend(p.rest.drain(..));
                self.transcript.steps(&mut self.conv).await;
                return;
            }
            p.undo(&mut self.conv);
        }
        self.stop_read_ahead();
        match self
            .conv
            .turn_heard(text, self.s.config.doubt.doubts(&confidence))
            .await
        {
            Ok((intent, actions)) => {
                info!(
                    ?intent,
                    said = %text,
                    mean_logprob = confidence.mean_logprob,
                    no_speech = confidence.no_speech,
                    "caller turn"
                );
                self.turn_times.text = text.to_string();
                self.turn_times.intent = intent.name().to_string();
                self.pending.extend(actions);
                self.transcript.steps(&mut self.conv).await;
            }
            Err(e) => {
                // No knowledge sentence to read in its place: the fault line
                // and (by default) a colleague, as for a reply that stalls.
                warn!(error = %e, "the model failed with nothing to read instead");
                self.turn_times.text = text.to_string();
                self.turn_times.intent = "model_failed".into();
                self.answer_failed(&e.to_string());
            }
        }
    }

    /// The reply is slow (a tool, the model under load): say so; the wait
    /// going on, say it again in other words.
    async fn hold_line(&mut self, after: Duration, expected: Option<Duration>) {
        let timeouts = &self.s.agent.pack().persona.timeouts;
        let line = if self.holds_said == 0 {
            timeouts.hold.clone()
        } else {
            timeouts.hold_again.clone()
        };
        self.holds_said += 1;
        match self.s.voice.line(&line).await {
            Ok(audio) => {
                info!(
                    waited_ms = after.as_millis() as u64,
                    expected_ms = expected.map(|e| e.as_millis() as u64),
                    answers_in_preparation = self.s.pace.in_preparation(),
                    "reply slow: hold line"
                );
                // The reply follows it: no long pause in between.
                let audio = voxline_tts::without_trailing_silence(&audio, self.tts_rate);
                if let Err(e) = self.playout.play(audio, self.tts_rate) {
                    warn!(error = %e, "agent playout failed");
                }
                self.transcript.agent(&line).await;
            }
            Err(e) => warn!(error = %e, "hold line unavailable"),
        }
    }

    /// Barge-in: the caller has talked over the agent long enough. The
    /// agent stops now; the caller's words will decide what of it stays.
    fn barge_in(&mut self) {
        let onset = self.barge.fire();
        let mut replies: Vec<SpeechHandle> = self.playing.drain(..).chain(self.speaking.take()).collect();
        let stopped_ms = self.rec.now_ms().saturating_sub(onset);
        let stopped_at = Instant::now();
        let onset_at = stopped_at
            .checked_sub(Duration::from_millis(stopped_ms))
            .unwrap_or(stopped_at);
        let was_speaking = replies.last().is_some_and(|r| r.generating);
        let heard = stop_speaking(&mut replies, self.playout.as_ref());
        self.s.observer.barge_in(Duration::from_millis(stopped_ms));
        info!(
            stopped_after_onset_ms = stopped_ms,
            heard = %heard.iter().map(|h| h.text.as_str()).collect::<Vec<_>>().join(" "),
            "barge-in: the agent stopped"
        );
        self.paused = Some(Paused {
            replies,
            heard,
            was_speaking,
            pending: std::mem::take(&mut self.pending),
            onset_at,
            stopped_at,
            speech_started: self.caller_speaking,
        });
    }

    /// A phrase's audio (or the reply's end) from the reply being made.
    fn on_spoken(&mut self, spoken: Spoken) {
        match spoken {
            Spoken::Audio {
                text,
                mut samples,
                stages,
            } => {
                // A turn's first audio is queued marked: when its first
                // packet leaves is read back for the record.
                let first_of_turn = self
                    .speaking
                    .as_ref()
                    .is_some_and(|s| s.turn.as_ref().is_some_and(|t| t.first_audio.is_none()));
                if first_of_turn {
                    // The reply starts with its first sound, not the voice's lead-in.
                    samples = Arc::from(voxline_tts::without_leading_silence(&samples, self.tts_rate));
                }
                let queued = if first_of_turn {
                    self.playout.play_marked(&samples, self.tts_rate)
                } else {
                    self.playout.play(&samples, self.tts_rate).map(|()| None)
                };
                let mark = queued.unwrap_or_else(|e| {
                    warn!(error = %e, "agent playout failed");
                    None
                });
                let frames = samples.len().div_ceil(self.frame_samples);
                if let Some(s) = self.speaking.as_mut() {
                    if let Some(t) = s.turn.as_mut() {
                        t.first_audio_queued(stages, mark, self.s.observer.as_ref());
                    }
                    s.queued.push(Phrase {
                        frames,
                        text,
                        audio: samples,
                    });
                }
            }
            Spoken::Done => {
                // Heard in full once it has played (a barge-in may still cut it).
                self.playing.extend(self.speaking.take().map(SpeechHandle::generated));
            }
            Spoken::Failed(why) => {
                warn!(%why, "the agent's reply failed");
                let was_answer = self.speaking.as_ref().is_some_and(|s| s.answer_of.is_some());
                // What was queued of it still plays.
                self.playing.extend(self.speaking.take().map(SpeechHandle::generated));
                if was_answer {
                    self.answer_failed(&why);
                }
            }
        }
    }

    /// The model stalled or failed on an answer and nothing could be read
    /// in its place: the pack's fault line, then (by default) the call goes
    /// to a colleague as an escalation does.
    fn answer_failed(&mut self, why: &str) {
        let pack = self.s.agent.pack();
        let timeouts = &pack.persona.timeouts;
        info!(%why, transfer = timeouts.fault_transfer, "answer failed: fault line");
        if timeouts.fault_transfer {
            // What was queued after the answer no longer applies.
            self.pending.clear();
            self.pending.push_back(Action::Say(timeouts.fault.clone()));
            self.pending.push_back(Action::Say(pack.rules.escalation.say.clone()));
            self.pending.push_back(Action::Transfer {
                to: pack.rules.escalation.transfer_to.clone(),
            });
        } else {
            self.pending.push_front(Action::Say(timeouts.fault.clone()));
        }
    }

    /// The caller has been silent too long.
    async fn on_silence(&mut self) {
        let s = self.s;
        let persona = &s.agent.pack().persona;
        match self.silence.expired(self.digits.is_collecting()) {
            SilenceStep::DigitsTimedOut => {
                // No complete entry in time: asked again (the third miss offers a colleague).
                let keyed = self.digits.timed_out().unwrap_or_default();
                info!(keyed = %self.digits.shown(&keyed), "digit entry timed out");
                self.transcript.note("digit entry timed out").await;
                let next = self.conv.digits(&keyed).await;
                self.pending.extend(next);
                self.transcript.steps(&mut self.conv).await;
            }
            SilenceStep::Goodbye => {
                self.pending.push_back(Action::Say(persona.goodbye.clone()));
                self.pending.push_back(Action::HangUp);
            }
            SilenceStep::Reprompt => {
                let reprompt = persona.timeouts.reprompt.clone();
                // A flow waiting for an answer asks its step again.
                let again = self.conv.reprompt().await;
                self.pending.push_back(again.unwrap_or(Action::Say(reprompt)));
            }
        }
    }
}
