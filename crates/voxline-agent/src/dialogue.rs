//! One conversation with a domain agent, in text: each caller turn becomes
//! a list of actions (fixed lines, a streamed and guarded answer, a digit
//! collection, a tool call, a transfer, a hang-up). The voice loop and
//! `voxline chat --domain` both drive it.

use crate::answer::{Answer, Fallback};
use crate::contact::fill_line;
use crate::customer::{closeness, CustomerMove, CustomerScript, CustomerState};
use crate::flow::{exit_for, ExitOn, FlowRun, StepEnd, StepReached, Wording};
use crate::grounding::grounding;
use crate::guard::Guard;
use crate::pack::{ArgType, DomainPack, KnowledgeRules, ToolSpec};
use crate::prompt::{step_message, system_prompt, user_message};
use crate::router::{opts_out, Intent, Router};
use crate::tool_args::{digits_for, extract_args, pick_value};
use crate::tools::{fill_template, ToolCall};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use voxline_llm::{ChatMessage, ChatModel, ChatRequest, LlmError, Role};
use voxline_text::words::{has_phrase, words};

/// Exchanges of earlier turns the model sees at most: past this the history
/// is cut back to `HISTORY_KEEP` at once. The history only grows between
/// cuts, so each turn's prompt starts with the previous one and the model
/// engine reuses its cached prefix (a sliding window would change the start
/// of the history every turn and make the engine read all of it again).
const HISTORY_MAX: usize = 6;
/// Exchanges kept when the history is cut.
const HISTORY_KEEP: usize = 3;

/// Times an argument is asked for before the agent gives up on it.
const MAX_ASKS: u8 = 3;

/// Words that accept an offer ("would you like me to transfer you?").
const YES: &[&str] = &["yes", "yeah", "yep", "sure", "please do", "yes please", "ok", "okay"];

/// The engine of one domain pack: shared by every call on it.
pub struct Agent {
    pack: Arc<DomainPack>,
    llm: Arc<dyn ChatModel>,
    router: Router,
    system: String,
    http: reqwest::Client,
    /// A training bot: the customer it plays instead of answering.
    customer: Option<CustomerScript>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("pack", &self.pack.dir).finish()
    }
}

/// What the agent does next.
#[derive(Debug)]
pub enum Action {
    /// Speak this line.
    Say(String),
    /// Speak a generated answer, phrase by phrase.
    Answer(Box<Answer>),
    /// Collect this many DTMF digits (ended by `#`), then call
    /// [`Conversation::digits`]; the prompt was the preceding `Say`.
    CollectDigits {
        /// How many digits.
        length: usize,
        /// The pack lets the keyed value be written in clear (`keep`).
        keep: bool,
    },
    /// Run a tool ([`Conversation::run_tool`]) while the line before it plays.
    CallTool(ToolCall),
    /// Transfer the call to a human.
    Transfer {
        /// The SIP URI.
        to: String,
    },
    /// An advisor should call back.
    ScheduleCallback {
        /// When.
        when: String,
    },
    /// Key these digits on the call (RFC 4733), after the audio queued before them.
    SendDtmf {
        /// 0-9, *, #, A-D.
        digits: String,
    },
    /// The call's outcome so far (a flow step's `disposition`, or
    /// `opted_out`): the last one given is the call's.
    Outcome(String),
    /// End the call.
    HangUp,
}

/// The outcome of a caller who asked not to be called again.
pub const OPTED_OUT: &str = "opted_out";

/// A tool waiting for its arguments.
#[derive(Debug, Clone)]
struct Pending {
    tool: usize,
    args: BTreeMap<String, String>,
    asking: String,
    tries: u8,
}

impl Agent {
    /// The engine for `pack`, answering with `llm`.
    pub fn new(pack: Arc<DomainPack>, llm: Arc<dyn ChatModel>) -> Agent {
        Agent {
            router: Router::new(&pack),
            system: system_prompt(&pack),
            pack,
            llm,
            http: reqwest::Client::new(),
            customer: None,
        }
    }

    /// A training bot on `pack` (its voice, timeouts and rules): it plays
    /// the customer of `script` for a human trainee instead of answering.
    pub fn customer(pack: Arc<DomainPack>, llm: Arc<dyn ChatModel>, script: CustomerScript) -> Agent {
        Agent {
            customer: Some(script),
            ..Agent::new(pack, llm)
        }
    }

    /// The customer this agent plays, when it is a training bot.
    pub fn customer_script(&self) -> Option<&CustomerScript> {
        self.customer.as_ref()
    }

    /// The pack.
    pub fn pack(&self) -> &DomainPack {
        &self.pack
    }

    /// Puts the system prompt in the model's cache.
    pub async fn warm(&self) -> Result<(), LlmError> {
        self.llm.warm(&self.system).await
    }

    /// A new conversation.
    pub fn conversation(self: &Arc<Self>) -> Conversation {
        Conversation {
            agent: Arc::clone(self),
            history: Vec::new(),
            pending: None,
            offered_transfer: false,
            asked_again: 0,
            tool_calls: Vec::new(),
            flow: FlowRun::default(),
            variables: BTreeMap::new(),
            customer: self.customer.as_ref().map(|_| CustomerState::new(Instant::now())),
            opening_due: false,
        }
    }

    /// A guarded answer streamed from the model for `user` (the history
    /// before it), each phrase checked by `guard`; `fallback` is read when
    /// the model's words fail the check.
    async fn generate(
        &self,
        history: &[ChatMessage],
        user: String,
        guard: Guard,
        fallback: Option<Fallback>,
        question: String,
        must_ask: bool,
    ) -> Result<Answer, LlmError> {
        let pack = &self.pack;
        // What the model is told the agent said last: after a barge-in,
        // only what the caller heard of it (tests read this line).
        let last_said = history
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant)
            .map_or("", |m| m.content.as_str());
        tracing::info!(exchanges = history.len() / 2, %last_said, "answer prompted");
        let messages = self.messages(history, user);
        let max_words = pack.persona.max_reply_words;
        let stream = self.llm.chat(ChatRequest::new(messages, max_words * 2 + 8)).await?;
        Ok(Answer {
            stream: Some(stream),
            fallback,
            replacement: pack.rules.forbidden.replacement.clone(),
            words_left: max_words,
            must_ask,
            ..Answer::unstarted(question, guard)
        })
    }

    /// The prompt of a turn: the system prompt, the history, the turn's message.
    fn messages(&self, history: &[ChatMessage], user: String) -> Vec<ChatMessage> {
        let mut messages = vec![ChatMessage::new(Role::System, self.system.clone())];
        messages.extend(history.iter().cloned());
        messages.push(ChatMessage::new(Role::User, user));
        messages
    }

    /// What `utterance` asks for, by its words alone (for the early reply
    /// started on a partial transcript, and for tests).
    pub fn route(&self, utterance: &str) -> Intent {
        self.router.route(&self.pack, utterance, None)
    }

    /// What `utterance` asks for, by its words and, given its embedding
    /// ([`Agent::understand`]), its meaning.
    pub fn route_with(&self, utterance: &str, meaning: Option<&[f32]>) -> Intent {
        self.router.route(&self.pack, utterance, meaning)
    }

    /// The embedding of `utterance` when the pack's knowledge is embedded,
    /// computed on the blocking pool (a model run never holds a runtime
    /// thread). A failure is logged and the turn goes on by words alone.
    pub async fn understand(&self, utterance: &str) -> Option<Vec<f32>> {
        self.pack.knowledge.meaning()?;
        let pack = Arc::clone(&self.pack);
        let text = utterance.to_string();
        let started = std::time::Instant::now();
        let run = tokio::task::spawn_blocking(move || pack.knowledge.meaning().map(|m| m.embed(&text)));
        match run.await {
            Ok(Some(Ok(v))) => {
                tracing::debug!(ms = started.elapsed().as_millis() as u64, "question embedded");
                Some(v)
            }
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "the question could not be embedded: answering by its words alone");
                None
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "the embedding task failed: answering by its words alone");
                None
            }
        }
    }
}

/// One call's conversation. Cloning it keeps a copy of its state (to go
/// back to when a reply started early turns out to be for other words).
#[derive(Debug, Clone)]
pub struct Conversation {
    agent: Arc<Agent>,
    history: Vec<ChatMessage>,
    pending: Option<Pending>,
    offered_transfer: bool,
    /// Turns in a row the caller was asked to say it again.
    asked_again: u8,
    /// Tools called so far: name and arguments.
    pub tool_calls: Vec<(String, BTreeMap<String, String>)>,
    flow: FlowRun,
    /// The call's variables (a campaign contact's columns), filled into the
    /// pack's lines.
    variables: BTreeMap<String, String>,
    /// A training bot's place in its customer's script.
    customer: Option<CustomerState>,
    /// A training bot that called the trainee waits for their greeting
    /// (or a silence) before its opening line: still to be said.
    opening_due: bool,
}

impl Conversation {
    /// The call was placed by this side (the other party answers first):
    /// a training customer then waits for the trainee's greeting before
    /// its opening line, as a customer who called would.
    pub fn set_placed(&mut self, placed: bool) {
        self.opening_due = placed && self.customer.is_some();
    }

    /// Sets the call's variables (`{first_name}` in the pack's lines).
    pub fn set_variables(&mut self, variables: BTreeMap<String, String>) {
        self.variables = variables;
    }

    /// `line` with the call's variables filled in (see [`fill_line`]).
    pub fn fill(&self, line: &str) -> String {
        fill_line(line, &self.variables)
    }

    /// The greeting, the lines that must follow it, and the flow's first
    /// step when the pack has a flow.
    pub async fn opening(&mut self) -> Vec<Action> {
        if let Some(script) = &self.agent.customer {
            self.customer = Some(CustomerState::new(Instant::now()));
            if self.opening_due {
                return Vec::new();
            }
            return vec![Action::Say(script.opening.clone())];
        }
        let pack = Arc::clone(&self.agent.pack);
        let mut out: Vec<Action> = std::iter::once(&pack.persona.greeting)
            .chain(pack.rules.mandatory.after_greeting.iter())
            .map(|line| Action::Say(self.fill(line)))
            .collect();
        if let Some(flow) = &pack.flow {
            out.extend(self.enter_step(flow.start(), "start").await);
        }
        out
    }

    /// Moves the flow to step `i` (reached by `via`) and on through steps
    /// that need no answer; returns what to say and do.
    async fn enter_step(&mut self, mut i: usize, via: &str) -> Vec<Action> {
        let pack = Arc::clone(&self.agent.pack);
        let Some(flow) = &pack.flow else {
            return Vec::new();
        };
        let mut via = via.to_string();
        let mut out = Vec::new();
        loop {
            let step = &flow.steps[i];
            tracing::info!(flow = %flow.flow.name, step = %step.name, %via, "flow step reached");
            self.flow.reached.push(StepReached {
                step: step.name.clone(),
                via: std::mem::replace(&mut via, "next".into()),
            });
            self.flow.at = Some(i);
            self.flow.tries = 0;
            if let Some(d) = &step.disposition {
                out.push(Action::Outcome(d.clone()));
            }
            if step.say.is_some() {
                out.push(self.step_line(i, false).await);
            }
            if let Some(tool) = &step.tool {
                if let Some(t) = pack.tools.iter().position(|spec| &spec.name == tool) {
                    out.extend(self.continue_tool(t, BTreeMap::new()));
                }
                return out;
            }
            match (step.end, step.next.as_deref().and_then(|n| flow.index(n))) {
                (Some(end), _) => {
                    self.flow.at = None;
                    out.push(match end {
                        StepEnd::Hangup => Action::HangUp,
                        StepEnd::Transfer => Action::Transfer {
                            to: step
                                .transfer_to
                                .clone()
                                .unwrap_or_else(|| pack.rules.escalation.transfer_to.clone()),
                        },
                    });
                    return out;
                }
                (None, Some(next)) => i = next,
                (None, None) => return out,
            }
        }
    }

    /// Step `i`'s line: its words, or the model's wording of its goal
    /// (checked; its words when the model fails). `again`: asked again
    /// after the caller went off script.
    async fn step_line(&mut self, i: usize, again: bool) -> Action {
        let pack = Arc::clone(&self.agent.pack);
        let Some(flow) = &pack.flow else {
            return Action::Say(String::new());
        };
        let step = &flow.steps[i];
        let say = self.fill(step.say.as_deref().unwrap_or_default());
        let fixed = match (&step.reask, again) {
            (Some(r), true) => self.fill(r),
            _ => say.clone(),
        };
        if flow.wording(i) == Wording::Fixed {
            return Action::Say(fixed);
        }
        let goal = self.fill(&step.goal);
        let user = step_message(&goal, &say);
        let facts = [goal.as_str(), say.as_str(), pack.persona.company.as_str()];
        let question = format!("Step: {}", goal.trim());
        let must_ask = !step.exit.is_empty() && fixed.trim_end().ends_with('?');
        match self
            .agent
            .generate(
                &self.history,
                user,
                Guard::new(&pack.rules.forbidden.phrases, &[], &facts),
                Some(Fallback::Sentence(fixed.clone())),
                question,
                must_ask,
            )
            .await
        {
            Ok(a) => Action::Answer(Box::new(a)),
            Err(e) => {
                tracing::warn!(error = %e, step = %step.name, "the model could not word the step: saying its line");
                Action::Say(fixed)
            }
        }
    }

    /// The pack's flow's name, when it has one.
    pub fn flow_name(&self) -> Option<&str> {
        self.agent.pack.flow.as_ref().map(|f| f.flow.name.as_str())
    }

    /// Steps reached since the last call (for the call's records).
    pub fn take_reached(&mut self) -> Vec<StepReached> {
        std::mem::take(&mut self.flow.reached)
    }

    /// The step waiting for the caller's words, if the flow is at one.
    fn waiting_step(&self) -> Option<usize> {
        let flow = self.agent.pack.flow.as_ref()?;
        self.flow
            .at
            .filter(|&i| flow.steps[i].tool.is_none() && !flow.steps[i].exit.is_empty())
    }

    /// The flow's step at which `tool` runs, when the flow is at it.
    fn tool_step_of(&self, tool: usize) -> Option<usize> {
        let flow = self.agent.pack.flow.as_ref()?;
        let name = &self.agent.pack.tools[tool].name;
        self.flow.at.filter(|&i| flow.steps[i].tool.as_ref() == Some(name))
    }

    /// After a turn off script: the step asked again (a tool step: its
    /// `reask` line, then the argument still missing, keeping `args`
    /// given so far), or its `otherwise` once the caller went off script
    /// too often (the flow ends when it has none).
    async fn back_on_track(&mut self, i: usize, args: BTreeMap<String, String>) -> Vec<Action> {
        let pack = Arc::clone(&self.agent.pack);
        let Some(flow) = &pack.flow else {
            return Vec::new();
        };
        self.flow.tries += 1;
        if self.flow.tries < flow.max_tries(i) {
            let step = &flow.steps[i];
            let Some(t) = step
                .tool
                .as_ref()
                .and_then(|n| pack.tools.iter().position(|s| &s.name == n))
            else {
                return vec![self.step_line(i, true).await];
            };
            let mut out: Vec<Action> = step.reask.iter().cloned().map(Action::Say).collect();
            out.extend(self.continue_tool(t, args));
            return out;
        }
        match flow.steps[i].otherwise.as_deref().and_then(|n| flow.index(n)) {
            Some(next) => self.enter_step(next, "otherwise").await,
            None => {
                tracing::info!(flow = %flow.flow.name, step = %flow.steps[i].name, "flow left: the caller went off script");
                self.flow.at = None;
                Vec::new()
            }
        }
    }

    /// What the agent asks after a silence: the step again when the flow
    /// waits for an answer (else `None`: the persona's re-prompt).
    pub async fn reprompt(&mut self) -> Option<Action> {
        // A called trainee who said nothing: the customer opens anyway.
        if let Some(script) = self.agent.customer.as_ref().filter(|_| self.opening_due) {
            self.opening_due = false;
            return Some(Action::Say(script.opening.clone()));
        }
        let i = self.waiting_step()?;
        Some(self.step_line(i, true).await)
    }

    /// The agent's reply to a caller's turn, with what the turn asked for.
    pub async fn turn(&mut self, utterance: &str) -> Result<(Intent, Vec<Action>), LlmError> {
        self.turn_heard(utterance, false).await
    }

    /// The agent's reply to a caller's spoken turn; `doubtful` when the
    /// recogniser was not sure of the words (see [`voxline_asr::Doubt`]).
    pub async fn turn_heard(&mut self, utterance: &str, doubtful: bool) -> Result<(Intent, Vec<Action>), LlmError> {
        if let (Some(script), Some(state)) = (&self.agent.customer, self.customer.as_mut()) {
            // The trainee answered the customer's call: the opening now.
            if self.opening_due {
                self.opening_due = false;
                return Ok((Intent::Customer, vec![Action::Say(script.opening.clone())]));
            }
            let said = match script.hear(state, utterance, Instant::now(), &closeness) {
                CustomerMove::Say(line) => vec![Action::Say(line)],
                CustomerMove::End(line, ending) => {
                    tracing::info!(
                        ending = ending.name(),
                        settled = state.settled(),
                        "the training customer hangs up"
                    );
                    vec![Action::Say(line), Action::Outcome(ending.name().into()), Action::HangUp]
                }
            };
            return Ok((Intent::Customer, said));
        }
        let pack = Arc::clone(&self.agent.pack);
        let rules = &pack.rules;
        // "Stop calling me" ends the call whatever else waits (a flow's
        // question, a tool's argument): the number goes on the list.
        if opts_out(utterance, &rules.opt_out.phrases) {
            tracing::info!(said = %utterance, "the caller asked not to be called again");
            self.pending = None;
            self.flow.at = None;
            return Ok((
                Intent::OptOut,
                vec![
                    Action::Outcome(OPTED_OUT.into()),
                    Action::Say(rules.opt_out.say.clone()),
                    Action::HangUp,
                ],
            ));
        }
        // A flow's tool step whose argument the caller did not give (they
        // asked something else): asked again after the answer.
        let mut left_tool_step: Option<(usize, BTreeMap<String, String>)> = None;
        // A tool waiting for a spoken argument.
        if let Some(p) = self.pending.clone() {
            let tool = &pack.tools[p.tool];
            if let Some(arg) = tool.args.get(&p.asking) {
                let value = match arg.kind {
                    ArgType::Digits => arg.length.and_then(|n| digits_for(utterance, n)),
                    ArgType::Enum => pick_value(&arg.values, utterance).or_else(|| arg.default.clone()),
                };
                if let Some(v) = value {
                    self.pending = None;
                    let mut args = p.args.clone();
                    args.insert(p.asking.clone(), v);
                    let intent = Intent::Tool {
                        tool: p.tool,
                        score: 1.0,
                    };
                    return Ok((intent, self.continue_tool(p.tool, args)));
                }
                if !matches!(self.agent.route(utterance), Intent::Unknown) {
                    // The caller moved on: drop the tool and answer the new request.
                    self.pending = None;
                    left_tool_step = self.tool_step_of(p.tool).map(|i| (i, p.args));
                } else {
                    let tool = p.tool;
                    return Ok((Intent::Tool { tool, score: 1.0 }, self.reask_or_fail(p).await));
                }
            }
        }
        if self.offered_transfer {
            self.offered_transfer = false;
            if has_phrase(&words(utterance), YES) && utterance.split_whitespace().count() <= 4 {
                return Ok((
                    Intent::Escalate,
                    vec![
                        Action::Say(rules.escalation.say.clone()),
                        Action::Transfer {
                            to: rules.escalation.transfer_to.clone(),
                        },
                    ],
                ));
            }
        }
        if let Some(i) = self.waiting_step() {
            let flow = pack.flow.as_ref().map(|f| &f.steps[i]);
            if let Some(exit) = flow.and_then(|step| exit_for(step, utterance)) {
                let (on, next) = (exit.on, exit.next.clone());
                let to = pack.flow.as_ref().and_then(|f| f.index(&next)).unwrap_or(i);
                let actions = self.enter_step(to, on.name()).await;
                return Ok((Intent::Step { exit: on }, actions));
            }
        }
        let meaning = self.agent.understand(utterance).await;
        let mut intent = self.agent.route_with(utterance, meaning.as_deref());
        if doubtful && !heard_well_enough(&intent, &pack.rules.knowledge) {
            tracing::info!(intent = intent.name(), said = %utterance, "the recogniser was unsure: asking again");
            intent = Intent::Unclear;
        }
        if intent != Intent::Unclear {
            self.asked_again = 0;
        }
        let mut actions = match &intent {
            Intent::Escalate => vec![
                Action::Say(rules.escalation.say.clone()),
                Action::Transfer {
                    to: rules.escalation.transfer_to.clone(),
                },
            ],
            Intent::Goodbye => vec![Action::Say(pack.persona.goodbye.clone()), Action::HangUp],
            Intent::OffDomain => vec![Action::Say(rules.domain.decline.clone())],
            Intent::Unknown => {
                self.offered_transfer = true;
                vec![Action::Say(rules.domain.unknown.clone())]
            }
            Intent::Unclear => {
                // Asked again at most twice in a row; then a colleague is offered.
                self.asked_again += 1;
                if self.asked_again > 2 {
                    self.asked_again = 0;
                    self.offered_transfer = true;
                    vec![Action::Say(rules.domain.unclear_again.clone())]
                } else {
                    vec![Action::Say(rules.domain.unclear.clone())]
                }
            }
            Intent::Greeting => vec![Action::Say("Hello! How can I help you today?".into())],
            Intent::Thanks => vec![Action::Say(
                "You're welcome. Is there anything else I can help with?".into(),
            )],
            Intent::Tool { tool, .. } => {
                let args = extract_args(&pack.tools[*tool], utterance);
                self.continue_tool(*tool, args)
            }
            Intent::Question {
                hits,
                sentences,
                similarity,
            } => {
                let (guard, fallback) = grounding(&pack, hits, sentences, *similarity, utterance);
                let facts = match &fallback {
                    Some(Fallback::Sentence(s)) => Some(s.clone()),
                    _ => None,
                };
                let answer = self
                    .agent
                    .generate(
                        &self.history,
                        user_message(hits, utterance),
                        guard,
                        fallback,
                        format!("Question: {}", utterance.trim()),
                        false,
                    )
                    .await;
                match (answer, facts) {
                    (Ok(answer), _) => vec![Action::Answer(Box::new(answer))],
                    // The model refused the reply (busy, stopped): the
                    // knowledge sentence is read as written, at once.
                    (Err(e), Some(facts)) => {
                        tracing::warn!(error = %e, "the model could not answer: reading the knowledge sentence");
                        vec![Action::Say(facts)]
                    }
                    (Err(e), None) => return Err(e),
                }
            }
            Intent::Curated { answer, score } => {
                let text = &pack.curated.answers()[*answer].say;
                tracing::info!(answer, score, "answered with a curated answer");
                let guard = Guard::new(&rules.forbidden.phrases, &[text.as_str()], &[]);
                vec![Action::Answer(Box::new(Answer::curated(
                    text,
                    format!("Question: {}", utterance.trim()),
                    guard,
                )))]
            }
            // (A training bot's turns are answered before routing.)
            Intent::Step { .. } | Intent::OptOut | Intent::Customer => Vec::new(),
        };
        // A flow waiting for an answer is asked again (unless the reply
        // asked the caller something itself, or ends the call).
        let ends = matches!(intent, Intent::Goodbye | Intent::Escalate | Intent::Tool { .. });
        if !ends && !self.awaits_other_answer() {
            if let Some(i) = self.waiting_step() {
                actions.extend(self.back_on_track(i, BTreeMap::new()).await);
            } else if let Some((i, args)) = left_tool_step {
                actions.extend(self.back_on_track(i, args).await);
            }
        }
        Ok((intent, actions))
    }

    /// While the caller still speaks: reads into the model's cache the
    /// prompt their words so far (a partial transcript) would get as a
    /// question, so when the final words start the same way (and find the
    /// same facts) only the rest of the question is read then. The facts
    /// are found as the final's will be: by words and, when the knowledge is
    /// embedded, by meaning (the partial is embedded in the returned future,
    /// on the blocking pool). `None` when those words would not go to the
    /// model (a tool waits for an argument, or by their words they are not
    /// a question).
    pub fn prefill(
        &self,
        partial: &str,
    ) -> Option<impl std::future::Future<Output = Result<(), LlmError>> + Send + 'static> {
        if self.pending.is_some()
            || self.customer.is_some()
            || !matches!(self.agent.route(partial), Intent::Question { .. })
        {
            return None;
        }
        let agent = Arc::clone(&self.agent);
        let history = self.history.clone();
        let partial = partial.to_string();
        Some(async move {
            let meaning = agent.understand(&partial).await;
            let Intent::Question { hits, .. } = agent.route_with(&partial, meaning.as_deref()) else {
                return Ok(());
            };
            let messages = agent.messages(&history, user_message(&hits, &partial));
            agent.llm.prefill(messages).await
        })
    }

    /// Records what the caller heard of an answer (all of it, or up to a barge-in).
    pub fn answered(&mut self, answer: &Answer, heard: &str) {
        // An answer that ended in "I don't know" offered a colleague.
        if heard.contains(self.agent.pack.rules.domain.unknown.trim()) {
            self.offered_transfer = true;
        }
        self.answered_text(&answer.question, heard);
    }

    /// Records what the caller heard of the answer to `user_message`
    /// ([`Answer::history_message`]).
    pub fn answered_text(&mut self, user_message: &str, heard: &str) {
        if self.history.len() >= HISTORY_MAX * 2 {
            self.history.drain(..(HISTORY_MAX - HISTORY_KEEP) * 2);
        }
        self.history
            .push(ChatMessage::new(Role::User, user_message.to_string()));
        self.history
            .push(ChatMessage::new(Role::Assistant, heard.trim().to_string()));
    }

    /// A tool call ended: a flow step waiting for it moves on by its
    /// result. Else a failure means the agent has offered a colleague, and
    /// after a success a flow step waiting for the caller is asked again.
    pub async fn tool_finished(&mut self, failed: bool) -> Vec<Action> {
        let pack = Arc::clone(&self.agent.pack);
        if let (Some(flow), Some(i)) = (&pack.flow, self.flow.at) {
            let step = &flow.steps[i];
            if step.tool.is_some() {
                let on = if failed { ExitOn::Failed } else { ExitOn::Done };
                let next = step.exit.iter().find(|e| e.on == on).map(|e| e.next.clone());
                return match next
                    .as_deref()
                    .and_then(|n| flow.index(n))
                    .or_else(|| step.otherwise.as_deref().and_then(|n| flow.index(n)))
                {
                    Some(n) => self.enter_step(n, on.name()).await,
                    None => {
                        self.flow.at = None;
                        self.offered_transfer = failed;
                        Vec::new()
                    }
                };
            }
        }
        self.offered_transfer = failed;
        match self.waiting_step() {
            Some(i) if !failed => vec![self.step_line(i, true).await],
            _ => Vec::new(),
        }
    }

    /// Digits keyed for a pending collection.
    pub async fn digits(&mut self, digits: &str) -> Vec<Action> {
        let Some(p) = self.pending.clone() else {
            return Vec::new();
        };
        let tool = &self.agent.pack.tools[p.tool];
        let want = tool.args.get(&p.asking).and_then(|a| a.length);
        if Some(digits.len()) == want {
            self.pending = None;
            let mut args = p.args;
            args.insert(p.asking, digits.to_string());
            return self.continue_tool(p.tool, args);
        }
        self.reask_or_fail(p).await
    }

    /// Asks again for a missing argument; on the last try of a flow step's
    /// tool, the step moves on by its `failed` exit instead.
    async fn reask_or_fail(&mut self, p: Pending) -> Vec<Action> {
        let step_tool = self
            .agent
            .pack
            .flow
            .as_ref()
            .zip(self.flow.at)
            .and_then(|(f, i)| f.steps[i].tool.clone());
        if p.tries + 1 >= MAX_ASKS && step_tool.as_deref() == Some(self.agent.pack.tools[p.tool].name.as_str()) {
            self.pending = None;
            return self.tool_finished(true).await;
        }
        self.reask(p)
    }

    /// Whether the agent asked the caller something (an offer to transfer,
    /// an argument): a bare "yeah" or "okay" is then an answer.
    pub fn awaits_answer(&self) -> bool {
        self.awaits_other_answer() || self.waiting_step().is_some()
    }

    /// Whether the agent asked the caller something outside the flow.
    fn awaits_other_answer(&self) -> bool {
        self.offered_transfer || self.pending.is_some()
    }

    /// Whether the agent waits for digits or a spoken argument.
    pub fn is_collecting(&self) -> bool {
        self.pending.is_some()
    }

    /// Lengths of the numbers the caller may be reading now: the one asked
    /// for, else those of every digits argument of the pack's tools.
    pub fn digit_lengths(&self) -> Vec<usize> {
        let tools = &self.agent.pack.tools;
        match &self.pending {
            Some(p) => tools[p.tool]
                .args
                .get(&p.asking)
                .and_then(|a| a.length)
                .into_iter()
                .collect(),
            None => tools
                .iter()
                .flat_map(|t| t.args.values().filter_map(|a| a.length))
                .collect(),
        }
    }

    fn reask(&mut self, mut p: Pending) -> Vec<Action> {
        let tool = &self.agent.pack.tools[p.tool];
        p.tries += 1;
        if p.tries >= MAX_ASKS {
            self.pending = None;
            self.offered_transfer = true;
            return vec![Action::Say(self.agent.pack.rules.domain.unknown.clone())];
        }
        let Some(arg) = tool.args.get(&p.asking) else {
            self.pending = None;
            return Vec::new();
        };
        let mut out = vec![Action::Say(format!("Sorry, I didn't get that. {}", arg.prompt))];
        if let (ArgType::Digits, Some(length)) = (arg.kind, arg.length) {
            out.push(Action::CollectDigits { length, keep: arg.keep });
        }
        self.pending = Some(p);
        out
    }

    /// Asks for the next missing argument, or calls the tool.
    fn continue_tool(&mut self, tool: usize, args: BTreeMap<String, String>) -> Vec<Action> {
        let spec = &self.agent.pack.tools[tool];
        // Every argument is asked for; an enum's default covers an answer that names none.
        let missing = spec.args.iter().find(|(name, _)| !args.contains_key(*name));
        if let Some((name, arg)) = missing {
            let mut out = vec![Action::Say(arg.prompt.clone())];
            if let (ArgType::Digits, Some(length)) = (arg.kind, arg.length) {
                out.push(Action::CollectDigits { length, keep: arg.keep });
            }
            self.pending = Some(Pending {
                tool,
                args,
                asking: name.clone(),
                tries: 0,
            });
            return out;
        }
        self.tool_calls.push((spec.name.clone(), args.clone()));
        let mut out = Vec::new();
        if let Some(s) = &spec.say_before {
            out.push(Action::Say(s.clone()));
        }
        out.push(Action::CallTool(ToolCall {
            tool: spec.name.clone(),
            args,
        }));
        out
    }

    /// Runs a tool; returns what to say (and do) with its result.
    pub async fn run_tool(&mut self, call: ToolCall) -> Vec<Action> {
        let ran = self.agent.run_tool(call).await;
        let mut actions = ran.actions;
        actions.extend(self.tool_finished(ran.error.is_some()).await);
        actions
    }
}

/// What a tool's run gives: what to say (and do) with its result, and why
/// it failed.
#[derive(Debug)]
pub struct ToolOutcome {
    /// The lines and actions that follow from the result.
    pub actions: Vec<Action>,
    /// Why it failed (none: it answered).
    pub error: Option<String>,
}

impl Agent {
    /// Runs a tool; returns what to say (and do) with its result, and
    /// why it failed. Needs no conversation, so a call can keep listening
    /// while it runs.
    pub async fn run_tool(&self, call: ToolCall) -> ToolOutcome {
        let pack = &self.pack;
        let Some(spec) = pack.tools.iter().find(|t| t.name == call.tool) else {
            return ToolOutcome {
                actions: vec![Action::Say(pack.rules.domain.unknown.clone())],
                error: Some(format!("the pack has no tool {:?}", call.tool)),
            };
        };
        if spec.builtin {
            return ToolOutcome {
                actions: builtin_actions(spec, &call),
                error: None,
            };
        }
        match crate::tools::invoke(&self.http, spec, &call.args).await {
            Ok(result) => {
                let text = spec
                    .say_result
                    .as_deref()
                    .map(|t| fill_template(t, &result, &call.args))
                    .unwrap_or_else(|| "Done.".into());
                ToolOutcome {
                    actions: vec![Action::Say(text)],
                    error: None,
                }
            }
            Err(e) => {
                tracing::warn!(tool = %spec.name, error = %e, "tool call failed");
                let say = spec
                    .say_error
                    .clone()
                    .unwrap_or_else(|| pack.rules.domain.unknown.clone());
                ToolOutcome {
                    actions: vec![Action::Say(say)],
                    error: Some(e.to_string()),
                }
            }
        }
    }

    /// A tool call's arguments as they may be recorded: digits the pack
    /// keeps out of transcripts (an account or card number) read
    /// "(4 digits)", like the caller's keyed line.
    pub fn recordable_args(&self, call: &ToolCall) -> BTreeMap<String, String> {
        let spec = self.pack.tools.iter().find(|t| t.name == call.tool);
        call.args
            .iter()
            .map(|(name, value)| {
                let arg = spec.and_then(|s| s.args.get(name));
                let secret = arg.is_some_and(|a| matches!(a.kind, ArgType::Digits) && !a.keep);
                let shown = if secret {
                    format!("({} digits)", value.chars().filter(char::is_ascii_digit).count())
                } else {
                    value.clone()
                };
                (name.clone(), shown)
            })
            .collect()
    }
}

/// Whether a turn the recogniser was unsure of may still be acted on:
/// a question whose words or meaning match one knowledge sentence strongly
/// (as strongly as a sentence read as written), a greeting or thanks, a
/// request for a colleague (the safe side), or a tool (its example phrasing
/// matched, and it asks for its arguments before acting: DTMF keyed while
/// the caller speaks is heard as stray words and makes Whisper unsure). A
/// goodbye, a decline or "I don't know" on words the caller may not have
/// said is not.
fn heard_well_enough(intent: &Intent, k: &KnowledgeRules) -> bool {
    match intent {
        Intent::Question {
            sentences, similarity, ..
        } => {
            let coverage = sentences.first().map_or(0.0, |s| s.coverage);
            coverage >= k.read_coverage || similarity.is_some_and(|s| s >= k.read_similarity)
        }
        Intent::Greeting
        | Intent::Thanks
        | Intent::Escalate
        | Intent::OptOut
        | Intent::Tool { .. }
        | Intent::Unclear
        // Matched an expert's wording at least `curated_match` close.
        | Intent::Curated { .. }
        | Intent::Customer
        | Intent::Step { .. } => true,
        Intent::Goodbye | Intent::OffDomain | Intent::Unknown => false,
    }
}

fn builtin_actions(spec: &ToolSpec, call: &ToolCall) -> Vec<Action> {
    let say = spec
        .say_result
        .as_deref()
        .map(|t| fill_template(t, &serde_json::Value::Null, &call.args));
    let mut out = Vec::new();
    match spec.name.as_str() {
        "schedule_callback" => out.push(Action::ScheduleCallback {
            when: call.args.get("when").cloned().unwrap_or_default(),
        }),
        "hangup" => {
            out.extend(say.map(Action::Say));
            out.push(Action::HangUp);
            return out;
        }
        "transfer" => {
            out.extend(say.map(Action::Say));
            out.push(Action::Transfer {
                to: call.args.get("to").cloned().unwrap_or_default(),
            });
            return out;
        }
        "send_dtmf" => {
            out.extend(say.map(Action::Say));
            out.push(Action::SendDtmf {
                digits: call.args.get("digits").cloned().unwrap_or_default(),
            });
            return out;
        }
        _ => {}
    }
    out.extend(say.map(Action::Say));
    out
}
