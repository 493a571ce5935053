//! A domain agent's turns in text, without audio: what `voxline chat`
//! prints and what the console's test chat shows. Tool calls are run and
//! their results acted on, as on a call.

use std::collections::VecDeque;
use voxline_agent::{Action, Conversation};

/// What the agent said or did, as it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum TextEvent {
    /// A line said as written (greeting, notice, flow step).
    Say(String),
    /// A streamed answer starts.
    AnswerStart,
    /// One phrase of it.
    Phrase(String),
    /// It ended; `stopped` says why when it was cut short.
    AnswerEnd {
        /// Why it stopped early.
        stopped: Option<String>,
    },
    /// Something done rather than said (a tool called, a transfer, a flow
    /// step reached...).
    Note(String),
}

/// Whether the agent's tool calls run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tools {
    /// They run and the agent acts on their results (`voxline chat`, a
    /// developer's own pack and services).
    Run,
    /// They are only told (the console's test chat: a question typed to
    /// try the agent must not block a card or book a callback for real).
    Tell,
}

/// Acts on `queue` (and the actions its tool calls lead to, when `tools`
/// run), telling `out` each event; true when the agent ended the call.
pub async fn act(
    conv: &mut Conversation,
    mut queue: VecDeque<Action>,
    tools: Tools,
    out: &mut (dyn FnMut(TextEvent) + Send),
) -> anyhow::Result<bool> {
    let mut ended = false;
    loop {
        for s in conv.take_reached() {
            out(TextEvent::Note(format!("flow step: {} (by {})", s.step, s.via)));
        }
        let Some(action) = queue.pop_front() else {
            return Ok(ended);
        };
        match action {
            Action::Say(s) => out(TextEvent::Say(s)),
            Action::Answer(mut a) => {
                out(TextEvent::AnswerStart);
                let mut heard = Vec::new();
                while let Some(p) = a.next_phrase().await? {
                    out(TextEvent::Phrase(p.clone()));
                    heard.push(p);
                }
                out(TextEvent::AnswerEnd {
                    stopped: a.stopped.clone(),
                });
                conv.answered(&a, &heard.join(" "));
            }
            Action::CollectDigits { length, .. } => out(TextEvent::Note(format!("waiting for {length} digits"))),
            Action::CallTool(call) => match tools {
                Tools::Run => {
                    out(TextEvent::Note(format!("calling {} with {:?}", call.tool, call.args)));
                    queue.extend(conv.run_tool(call).await);
                }
                Tools::Tell => {
                    out(TextEvent::Note(format!(
                        "would call {} with {:?} (tools do not run here)",
                        call.tool, call.args
                    )));
                    return Ok(ended);
                }
            },
            Action::ScheduleCallback { when } => out(TextEvent::Note(format!("callback scheduled: {when}"))),
            Action::SendDtmf { digits } => out(TextEvent::Note(format!("keyed {digits}"))),
            Action::Transfer { to } => {
                out(TextEvent::Note(format!("transfer to {to}")));
                ended = true;
            }
            Action::Outcome(o) => out(TextEvent::Note(format!("outcome: {o}"))),
            Action::HangUp => {
                out(TextEvent::Note("hang up".into()));
                ended = true;
            }
        }
    }
}

/// A caller's line: keyed digits while the agent collects them (as DTMF
/// would be), else a turn of the conversation.
pub async fn caller_turn(conv: &mut Conversation, said: &str) -> anyhow::Result<VecDeque<Action>> {
    Ok(
        if conv.is_collecting() && said.chars().all(|c| c.is_ascii_digit() || c == '#') {
            conv.digits(said.trim_end_matches('#')).await.into()
        } else {
            conv.turn(said).await?.1.into()
        },
    )
}
