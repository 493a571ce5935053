//! Turn-taking of the voice session on an in-memory call leg, on tokio's
//! paused clock: deterministic and fast, no SIP, no models (the engines are
//! scripted doubles, see `doubles`). The demo bank pack is the real one.
//! The SIP tests of voxline-server run the same session with the real
//! models and peers.

mod doubles;

use doubles::{Behaviour, Counts, KeptRecords, Script, ScriptedModel, ScriptedRecognizer, ToneVoice, MS_PER_WORD};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use voxline_agent::voice::end_of_turn::TurnSilences;
use voxline_agent::voice::{ReplyPace, SessionEnd, VoiceConfig, VoiceSession};
use voxline_agent::{Agent, DomainPack};
use voxline_llm::{ChatMessage, Role};
use voxline_media::leg::memory::{MemoryLeg, MemoryPeer, Verb};
use voxline_media::leg::Direction;
use voxline_media::LegEnd;

/// The demo bank's Downtown branch passage, as the scripted model answers.
const DOWNTOWN: &str = "The Downtown branch is at 12 Harbor Street, next to the central station. \
It has a coin deposit machine and a safe deposit service.";

/// The recogniser double's configured hang-over, ms.
const HANGOVER_MS: u32 = 500;

struct Call {
    peer: MemoryPeer,
    script: Script,
    records: Arc<KeptRecords>,
    counts: Arc<Counts>,
    requests: Arc<Mutex<Vec<Vec<ChatMessage>>>>,
    /// The operator's hang-up of this call.
    hangup: CancellationToken,
    session: tokio::task::JoinHandle<SessionEnd>,
}

/// Starts a session on the demo bank pack; the model answers `DOWNTOWN`
/// after `first_token`.
fn start(first_token: Duration) -> Call {
    start_on("demo-bank", Direction::Inbound, BTreeMap::new(), first_token)
}

/// Starts a session on demo pack `pack`, the call going `direction` with
/// `variables`; the model answers `DOWNTOWN` after `first_token`.
fn start_on(pack: &str, direction: Direction, variables: BTreeMap<String, String>, first_token: Duration) -> Call {
    start_full(pack, direction, variables, first_token, Behaviour::Answers)
}

/// `start_on`, the model behaving as `behaviour` says (a stalling model
/// hangs after its reply's last word).
fn start_full(
    pack: &str,
    direction: Direction,
    variables: BTreeMap<String, String>,
    first_token: Duration,
    behaviour: Behaviour,
) -> Call {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains").join(pack);
    let pack = Arc::new(DomainPack::load(&dir).expect("demo pack"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    // A hung model said both sentences (the word after the last one lets
    // the phrase splitter hand it out) before it stopped.
    let reply = if behaviour == Behaviour::Stalls {
        format!("{DOWNTOWN} Also,")
    } else {
        DOWNTOWN.to_string()
    };
    let model = ScriptedModel {
        reply,
        first_token,
        requests: requests.clone(),
        behaviour,
    };
    let agent = Arc::new(Agent::new(pack, Arc::new(model)));
    let (leg, peer) = MemoryLeg::start(direction, variables);
    let script = Script::default();
    let records = Arc::new(KeptRecords::default());
    let counts = Arc::new(Counts::default());
    let hangup = CancellationToken::new();
    let session = VoiceSession {
        agent,
        voice: Arc::new(ToneVoice),
        pace: Arc::new(ReplyPace::default()),
        config: VoiceConfig {
            barge_in_ms: 100,
            turn_silences: TurnSilences::default(),
            transfer_wait: Duration::from_secs(5),
            transfer_bridge: true,
            max_call: Duration::from_secs(600),
            doubt: voxline_asr::Doubt::default(),
        },
        sink: records.clone(),
        observer: counts.clone(),
        shutdown: CancellationToken::new(),
        hangup: hangup.clone(),
    };
    let mut rec = ScriptedRecognizer::new(script.clone(), HANGOVER_MS);
    let session = tokio::spawn(async move {
        let mut leg = leg;
        session.run(&mut leg, &mut rec).await
    });
    Call {
        peer,
        script,
        records,
        counts,
        requests,
        hangup,
        session,
    }
}

impl Call {
    /// Waits (leg clock, at most `limit_ms`) for `cond` on the records.
    async fn until(&self, limit_ms: u64, what: &str, cond: impl Fn(&KeptRecords) -> bool) -> u64 {
        let records = self.records.clone();
        match self.peer.until(limit_ms, |_| cond(&records)).await {
            Ok(at) => at,
            Err(at) => panic!("{what}: not by {at} ms; transcript {:?}", self.records.said()),
        }
    }

    /// Waits until the greeting and the recording notice have played.
    async fn greeted(&self) {
        self.until(5000, "the greeting and notice", |r| r.agent_said("recorded"))
            .await;
        let peer = self.peer.clone();
        peer.until(3000, |p| p.queued_ms() == 0 && !p.hearing())
            .await
            .expect("the opening played out");
    }

    /// The caller asks `text` (speaking `ms`).
    fn ask(&self, text: &str, ms: u64) {
        self.script.next_says(text);
        self.peer.speak_for(ms);
    }

    /// The messages of the model's last request.
    fn last_request(&self) -> Vec<ChatMessage> {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the model was asked")
    }
}

#[tokio::test(start_paused = true)]
async fn an_answer_plays_in_full_and_the_history_keeps_it() {
    let call = start(Duration::from_millis(200));
    call.greeted().await;
    call.ask("Where is the Downtown branch?", 1200);
    call.until(8000, "the answer", |r| r.agent_said("coin deposit machine"))
        .await;
    let said = call.records.said();
    assert!(said
        .iter()
        .any(|(w, t)| w == "caller" && t == "Where is the Downtown branch?"));
    assert!(!said.iter().any(|(_, t)| t.contains("[cut off")), "{said:?}");
    let turns = call.records.turns.lock().unwrap().clone();
    assert_eq!(turns.len(), 1, "{turns:?}");
    let t = &turns[0];
    assert!(t.first_rtp_ms.is_some() && t.barge_in_onset_ms.is_none(), "{t:?}");
    // The end came 250 ms after the voice (a finished question), the reply after it.
    assert_eq!(t.end_declared_ms.map(|ms| ms.round()), Some(260.0), "{t:?}");
    assert!(t.first_rtp_ms >= t.tts_first_audio_ms, "{t:?}");
    // The next question's prompt holds the whole answer as the agent's turn.
    call.ask("Is there parking?", 800);
    call.peer
        .until(8000, |_| call.requests.lock().unwrap().len() == 2)
        .await
        .expect("the model was asked the second question");
    let history = call.last_request();
    assert!(
        history
            .iter()
            .any(|m| m.role == Role::Assistant && m.content == DOWNTOWN),
        "{history:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_barge_in_stops_playout_and_only_what_was_heard_stays() {
    let call = start(Duration::from_millis(100));
    call.greeted().await;
    call.ask("Where is the Downtown branch?", 1200);
    let peer = call.peer.clone();
    let answering = peer.until(6000, |p| p.hearing()).await.expect("the answer plays");
    // The caller talks over it 700 ms in.
    peer.pause_for(700);
    call.ask("Actually, what about Saturday?", 900);
    // Nothing else was queued: the caller's voice starts 700 ms in.
    let onset = answering + 700;
    call.until(4000, "the cut answer in the transcript", |r| {
        r.agent_said("[cut off by the caller]")
    })
    .await;
    // The playout stopped within the barge-in time (100 ms) and one frame.
    let last_audio = call
        .peer
        .played()
        .iter()
        .filter(|f| f.audio && f.at_ms >= answering && f.at_ms < onset + 1000)
        .map(|f| f.at_ms)
        .max()
        .expect("audio was played");
    assert!(
        last_audio >= onset && last_audio <= onset + 140,
        "audio until {last_audio} ms, onset {onset} ms"
    );
    let stop = call.counts.barge_ins.lock().unwrap().clone();
    assert_eq!(stop.len(), 1, "{stop:?}");
    // 100 ms from the first voiced window, give or take the frame in flight.
    assert!(
        stop[0] >= Duration::from_millis(80) && stop[0] <= Duration::from_millis(140),
        "{stop:?}"
    );
    // The transcript and the history keep the words played before the stop.
    let cut = call
        .records
        .said()
        .into_iter()
        .find(|(_, t)| t.contains("[cut off"))
        .map(|(_, t)| t)
        .expect("cut line");
    let heard = cut.trim_end_matches(" [cut off by the caller]").to_string();
    let words = heard.split_whitespace().count() as u64;
    // ~700 ms at 60 ms a word: 11 words, give or take the phrase boundary.
    assert!((9..=13).contains(&words), "{heard}");
    assert!(DOWNTOWN.starts_with(&heard), "{heard}");
    call.until(6000, "the next question's answer", |r| {
        r.said().iter().any(|(w, t)| w == "caller" && t.contains("Saturday"))
    })
    .await;
    call.peer
        .until(6000, |_| call.requests.lock().unwrap().len() == 2)
        .await
        .expect("asked again");
    let history = call.last_request();
    assert!(
        history.iter().any(|m| m.role == Role::Assistant && m.content == heard),
        "the history keeps only what was heard: {history:?}"
    );
    let turns = call.records.turns.lock().unwrap().clone();
    assert!(
        turns[0].barge_in_onset_ms.is_some() && turns[0].barge_in_stop_ms.is_some(),
        "{turns:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_backchannel_stops_the_agent_and_it_goes_on_from_the_cut_phrase() {
    let call = start(Duration::from_millis(100));
    call.greeted().await;
    call.ask("Where is the Downtown branch?", 1200);
    let peer = call.peer.clone();
    let answering = peer.until(6000, |p| p.hearing()).await.expect("the answer plays");
    peer.pause_for(300);
    call.ask("uh-huh", 300);
    call.until(8000, "the whole answer", |r| r.agent_said("safe deposit service"))
        .await;
    assert_eq!(call.counts.barge_ins.lock().unwrap().len(), 1);
    assert_eq!(*call.counts.false_interruptions.lock().unwrap(), 1);
    let said = call.records.said();
    assert!(!said.iter().any(|(_, t)| t.contains("[cut off")), "{said:?}");
    assert!(
        !said.iter().any(|(w, t)| w == "caller" && t.contains("uh")),
        "not a turn: {said:?}"
    );
    let answer = said
        .iter()
        .find(|(_, t)| t.contains("Harbor Street"))
        .expect("answer")
        .1
        .clone();
    assert_eq!(answer, DOWNTOWN, "heard in full, once");
    // It stopped and went on: more audio than the answer alone was heard,
    // since the cut phrase was played again from its start.
    let answer_ms = DOWNTOWN.split_whitespace().count() as u64 * MS_PER_WORD;
    assert!(call.peer.heard_ms(answering, answering + 10_000) >= answer_ms);
}

#[tokio::test(start_paused = true)]
async fn digits_keyed_ahead_answer_the_prompt_which_is_not_said() {
    let call = start(Duration::from_millis(100));
    call.greeted().await;
    call.ask("I want to check my balance.", 1200);
    // Keyed as soon as the caller stopped talking, before the agent asks.
    let peer = call.peer.clone();
    peer.until(3000, |p| p.unsaid_ms() == 0).await.expect("said");
    for d in "12345678".chars() {
        call.peer.key(d);
    }
    call.until(8000, "the entry", |r| {
        r.said().iter().any(|(_, t)| t == "(keyed 8 digits)")
    })
    .await;
    let tools =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../domains/demo-bank/tools.toml"))
            .expect("tools");
    assert!(
        tools.contains("account number"),
        "the balance tool asks for an account number"
    );
    assert!(
        !call
            .records
            .said()
            .iter()
            .any(|(w, t)| w == "agent" && t.to_lowercase().contains("account number")),
        "{:?}",
        call.records.said()
    );
}

#[tokio::test(start_paused = true)]
async fn silence_gets_a_reprompt_then_goodbye_and_a_hang_up() {
    let call = start(Duration::from_millis(100));
    call.greeted().await;
    let end = tokio::time::timeout(Duration::from_secs(60), call.session)
        .await
        .expect("the session ends")
        .expect("no panic");
    assert_eq!(end.end, LegEnd::local("agent_goodbye"));
    let agent = call.records.agent_lines();
    assert_eq!(agent.len(), 4, "{agent:?}");
    assert!(agent[2].starts_with("Are you still there?"), "{agent:?}");
    assert!(agent[3].ends_with("Goodbye."), "{agent:?}");
    let hung_up = call.peer.verbs().into_iter().find_map(|v| match v {
        Verb::HangUp { at_ms } => Some(at_ms),
        _ => None,
    });
    // Greeted at ~2.3 s; reprompt 7 s after; goodbye 7 s after that.
    let at = hung_up.expect("hung up");
    assert!((16_000..19_000).contains(&at), "hung up at {at} ms");
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_gets_the_hold_line_first() {
    let call = start(Duration::from_millis(2500));
    call.greeted().await;
    call.ask("Where is the Downtown branch?", 1200);
    call.until(10_000, "the answer", |r| r.agent_said("Harbor Street"))
        .await;
    let agent = call.records.agent_lines();
    assert_eq!(agent[2], "One moment, please.", "{agent:?}");
}

/// A long wait is not left silent after the first hold line: 4 s after it
/// ended, the second one ("Thank you for waiting…"), then the answer; the
/// lines come in that order, each once.
#[tokio::test(start_paused = true)]
async fn a_long_wait_hears_a_second_hold_line() {
    let call = start(Duration::from_millis(7000));
    call.greeted().await;
    call.ask("Where is the Downtown branch?", 1200);
    call.until(12_000, "the answer", |r| r.agent_said("Harbor Street"))
        .await;
    let agent = call.records.agent_lines();
    assert_eq!(agent[2], "One moment, please.", "{agent:?}");
    assert_eq!(agent[3], "Thank you for waiting, I'm still on it.", "{agent:?}");
    assert!(agent[4].contains("Harbor Street"), "{agent:?}");
}

#[tokio::test(start_paused = true)]
async fn a_finished_sentence_ends_the_turn_sooner_than_an_unfinished_one() {
    let call = start(Duration::from_millis(100));
    call.greeted().await;
    call.ask("Where is the Downtown branch?", 1000);
    call.until(8000, "the answer", |r| r.agent_said("coin deposit")).await;
    call.peer
        .until(8000, |p| p.queued_ms() == 0 && !p.hearing())
        .await
        .expect("played");
    call.ask("I want to ask about my card and", 1000);
    call.peer
        .until(4000, |_| call.script.hangovers.lock().unwrap().len() == 2)
        .await
        .expect("the second utterance ended");
    assert_eq!(*call.script.hangovers.lock().unwrap(), vec![250, 2000]);
}

#[tokio::test(start_paused = true)]
async fn an_outbound_call_greets_the_contact_by_name_and_stop_calling_me_opts_out() {
    let vars = BTreeMap::from([("first_name".to_string(), "Ana".to_string())]);
    let call = start_on("demo-renewal", Direction::Outbound, vars, Duration::from_millis(100));
    call.until(8000, "the flow's first question", |r| r.agent_said("account holder?"))
        .await;
    let agent = call.records.agent_lines();
    assert!(
        agent[0].starts_with("Hello Ana, this is Ava from Harbor Bank"),
        "{agent:?}"
    );
    let peer = call.peer.clone();
    peer.until(3000, |p| p.queued_ms() == 0 && !p.hearing())
        .await
        .expect("the question played out");
    // Asked a yes/no question, the contact says no, and to stop calling:
    // not the flow's "no" exit (a wrong person) but an opt-out.
    call.ask("No. Stop calling me.", 1000);
    let end = tokio::time::timeout(Duration::from_secs(30), call.session)
        .await
        .expect("the session ends")
        .expect("no panic");
    assert_eq!(end.outcome.as_deref(), Some("opted_out"), "{end:?}");
    assert_eq!(end.end, LegEnd::local("agent_goodbye"));
    assert_eq!(*call.records.outcomes.lock().unwrap(), ["opted_out"]);
    let agent = call.records.agent_lines();
    assert!(
        agent.last().is_some_and(|l| l.contains("We won't call you again")),
        "{agent:?}"
    );
    assert!(!call.records.agent_said("Sorry to have troubled you"), "{agent:?}");
    assert!(call.peer.verbs().iter().any(|v| matches!(v, Verb::HangUp { .. })));
}

#[tokio::test(start_paused = true)]
async fn an_operator_hang_up_ends_the_call_mid_answer() {
    let call = start(Duration::from_millis(100));
    call.greeted().await;
    call.ask("Where is the Downtown branch?", 1200);
    call.until(8000, "the answer starts", |r| r.agent_said("Downtown branch is at"))
        .await;
    call.hangup.cancel();
    let end = tokio::time::timeout(Duration::from_secs(5), call.session)
        .await
        .expect("the session ends at once")
        .expect("no panic");
    assert_eq!(end.end, LegEnd::local(voxline_agent::voice::OPERATOR));
    assert!(call.peer.verbs().iter().any(|v| matches!(v, Verb::HangUp { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_call_without_the_variable_leaves_its_placeholder_out() {
    let call = start_on(
        "demo-renewal",
        Direction::Inbound,
        BTreeMap::new(),
        Duration::from_millis(100),
    );
    call.until(8000, "the greeting", |r| r.agent_said("Harbor Bank")).await;
    let agent = call.records.agent_lines();
    assert!(agent[0].starts_with("Hello, this is Ava from Harbor Bank"), "{agent:?}");
    assert!(!agent[0].contains('{'), "{agent:?}");
}

/// A call on the demo bank pack, the model behaving as `behaviour` says
/// (first text after 300 ms): greeted, the caller asks where the Downtown
/// branch is. Returns the call and when the question was heard (leg clock).
async fn asks_downtown_of(behaviour: Behaviour) -> (Call, u64) {
    let call = start_full(
        "demo-bank",
        Direction::Inbound,
        BTreeMap::new(),
        Duration::from_millis(300),
        behaviour,
    );
    call.greeted().await;
    call.ask("Where is the Downtown branch?", 1200);
    let asked = call
        .until(5_000, "the question heard", |r| {
            r.said().iter().any(|(who, _)| who == "caller")
        })
        .await;
    (call, asked)
}

/// The model refuses the reply at once (its queue is full): the knowledge
/// sentence that answers the question is read as written, without waiting
/// for any deadline; a question the knowledge does not answer gets the
/// fault line and a colleague.
#[tokio::test(start_paused = true)]
async fn a_model_that_refuses_the_reply_reads_the_facts_at_once_or_says_the_fault_line() {
    let (call, asked) = asks_downtown_of(Behaviour::Refuses).await;
    let at = call
        .until(5_000, "the knowledge sentence", |r| r.agent_said("12 Harbor Street"))
        .await;
    assert!(at - asked < 2_000, "the facts {} ms after the question", at - asked);
    let agent = call.records.agent_lines();
    assert!(
        !agent.iter().any(|l| l.contains("I can't answer that right now")),
        "{agent:?}"
    );
    call.ask("How old is the bank?", 1200);
    call.until(8_000, "the fault line", |r| {
        r.agent_said("I can't answer that right now")
    })
    .await;
    call.until(5_000, "the escalation line", |r| {
        r.agent_said("transfer you to a colleague")
    })
    .await;
}

/// The model says the facts and then hangs without ending its reply:
/// nothing is left to read in its place, so at the pack's reply deadline
/// the caller hears the fault line and is passed to a colleague as an
/// escalation would be (the in-memory leg refuses the transfer: the
/// escalation's "failed" line follows).
#[tokio::test(start_paused = true)]
async fn a_model_hung_mid_reply_gets_the_fault_line_and_a_colleague_at_the_deadline() {
    let (call, asked) = asks_downtown_of(Behaviour::Stalls).await;
    let at = call
        .until(15_000, "the fault line", |r| {
            r.agent_said("I can't answer that right now")
        })
        .await;
    call.until(5_000, "the escalation line", |r| {
        r.agent_said("transfer you to a colleague")
    })
    .await;
    let agent = call.records.agent_lines();
    // The facts were said before the model hung.
    assert!(agent.iter().any(|l| l.contains("12 Harbor Street")), "{agent:?}");
    // Said once the 8 s deadline after the last phrase passed, not before.
    let waited = at - asked;
    assert!(
        (8_000..11_000).contains(&waited),
        "fault line {waited} ms after the question: {agent:?}"
    );
}
