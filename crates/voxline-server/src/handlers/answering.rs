//! Who answered an agent's outbound call (a campaign's with answering-machine
//! detection on): the detector of `voxline_campaign::amd` on the leg's audio
//! and the recogniser's words, before the agent speaks. A person gets the
//! agent; a machine gets the campaign's message after its beep, or a hang-up.
//! The decision (who, why, how long after the answer) goes on the call's
//! record.

use crate::records::Records;
use std::time::Duration;
use tracing::info;
use voxline_agent::voice::Recognizer;
use voxline_asr::AsrEvent;
use voxline_campaign::amd::{AmdSettings, AnswerDetection, Detected, Listener, MachineAction, ToneWait};
use voxline_media::leg::{CallLeg, LegInput};
use voxline_media::LegEnd;
use voxline_store::TranscriptLine;
use voxline_tts::TtsEngine;

/// What a campaign call does on a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answering {
    /// Hang up, or leave `message`.
    pub action: MachineAction,
    /// The message left after the beep (variables already filled in).
    pub message: Option<String>,
}

/// How detection ended.
pub enum Who {
    /// A person: the agent talks.
    Person,
    /// A machine: the call is over, with this outcome (`voicemail_left`,
    /// `machine`) and its end.
    Machine(&'static str, LegEnd),
    /// The far end hung up before a decision.
    Ended(LegEnd),
}

/// The recogniser's words for the detector (partials and finals).
struct Words<'a>(&'a mut dyn Recognizer);

#[async_trait::async_trait]
impl Listener for Words<'_> {
    fn push(&mut self, frame: &[i16]) {
        // A recogniser fault leaves the detector to the audio alone.
        self.0.push(frame).ok();
    }

    async fn words(&mut self) -> Option<String> {
        loop {
            match self.0.next_event().await? {
                AsrEvent::Partial { text, .. } | AsrEvent::Final { text, .. } => return Some(text),
                _ => continue,
            }
        }
    }
}

/// After the beep, this much quiet before the message; without a beep, the
/// greeting's end is this much quiet; the beep is waited for this long
/// after the answer at most.
const SETTLE: Duration = Duration::from_millis(300);
const GREETING_OVER: Duration = Duration::from_millis(1500);
const TONE_LIMIT: Duration = Duration::from_secs(30);

/// Decides who answered `leg` and acts on a machine.
pub async fn detect(
    leg: &mut dyn CallLeg,
    recognizer: &mut dyn Recognizer,
    answering: &Answering,
    records: &Records,
    record_id: &str,
    tts: &TtsEngine,
) -> Who {
    let mut detection = AnswerDetection::new(AmdSettings::default());
    let decided = detection.detect(leg, &mut Words(recognizer)).await;
    let d = match decided {
        Detected::Ended(end) => return Who::Ended(end),
        Detected::Decided(d) => d,
    };
    let who = if d.verdict.is_machine() { "machine" } else { "human" };
    info!(
        who,
        why = d.verdict.why(),
        after_ms = d.at_ms,
        "answering-machine detection"
    );
    records
        .amd(record_id, &format!("{who}: {}", d.verdict.why()), d.at_ms)
        .await;
    if !d.verdict.is_machine() {
        return Who::Person;
    }
    let message = match (answering.action, answering.message.as_deref()) {
        (MachineAction::Message, Some(m)) if !m.trim().is_empty() => m,
        _ => {
            leg.hangup().await.ok();
            return Who::Machine("machine", LegEnd::local("machine"));
        }
    };
    match detection.wait_for_tone(leg, SETTLE, GREETING_OVER, TONE_LIMIT).await {
        ToneWait::Ended(end) => return Who::Machine("machine", end),
        ToneWait::TimedOut => {
            info!("no beep and no pause in the machine's greeting: hanging up");
            leg.hangup().await.ok();
            return Who::Machine("machine", LegEnd::local("machine"));
        }
        ToneWait::Beep | ToneWait::Quiet => {}
    }
    let audio = match tts.synthesize(message).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "the voicemail message could not be spoken: hanging up");
            leg.hangup().await.ok();
            return Who::Machine("machine", LegEnd::local("machine"));
        }
    };
    let at = detection.detector().now_ms() as i64;
    let playout = leg.playout();
    if playout.play(&audio, tts.sample_rate()).is_err() {
        leg.hangup().await.ok();
        return Who::Machine("machine", LegEnd::local("machine"));
    }
    let spoken_ms = (audio.len() as u64 * 1000 / u64::from(tts.sample_rate().max(1))) as i64;
    records
        .transcript_line(
            record_id,
            &TranscriptLine {
                seq: 1,
                speaker: "agent".into(),
                start_ms: at,
                end_ms: at + spoken_ms,
                text: message.to_string(),
                asr_latency_ms: None,
            },
        )
        .await;
    // The message plays out unless the machine hangs up first.
    let drained = playout.drained();
    tokio::pin!(drained);
    loop {
        tokio::select! {
            _ = &mut drained => break,
            input = leg.recv() => {
                if let LegInput::Ended(end) = input {
                    // Cut off: not a message left.
                    return Who::Machine("machine", end);
                }
            }
        }
    }
    leg.hangup().await.ok();
    Who::Machine("voicemail_left", LegEnd::local("voicemail_left"))
}
