//! The dialer: dials a running campaign's due contacts within their calling
//! windows and the pacing limits, writes each attempt before its INVITE
//! leaves, and gives each contact its next step (a retry or its final
//! disposition) when the call ends. It takes contacts by lease from the
//! store, so several nodes can dial one campaign, and picks up what a
//! stopped node left half-done. Placing the call itself is the server's
//! (a [`Placer`]): the agent talks on the answered leg.

use crate::outcome::{after_attempt, disposition, Placed, NOT_PLACED};
use crate::settings::{CampaignSettings, Checked, SettingsError};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};
use voxline_store::{now_ms, AttemptEnd, CallStore, CampaignRow, ContactRow, NextStep, StoreError};

/// Campaign states as stored.
pub mod state {
    /// Created, not started yet.
    pub const DRAFT: &str = "draft";
    /// Dialled by every node that serves campaigns.
    pub const RUNNING: &str = "running";
    /// No new calls; calls up go on. Resumable.
    pub const PAUSED: &str = "paused";
    /// No new calls, for good.
    pub const STOPPED: &str = "stopped";
    /// Every contact has its final disposition.
    pub const FINISHED: &str = "finished";
}

/// Why the dialer cannot run a campaign.
#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    /// The stored settings do not check.
    #[error("campaign {campaign}: {source}")]
    Settings {
        /// The campaign's name.
        campaign: String,
        /// The setting at fault.
        source: SettingsError,
    },
    /// The stored settings are not readable.
    #[error("campaign {campaign}: its settings are not readable: {why}")]
    Unreadable {
        /// The campaign's name.
        campaign: String,
        /// Why.
        why: String,
    },
    /// The store failed.
    #[error("campaign store: {0}")]
    Store(#[from] StoreError),
}

/// One call for the placer to make.
#[derive(Debug, Clone)]
pub struct Dial {
    /// The Call-ID to use (already in the attempt's record).
    pub call_id: String,
    /// The campaign's name.
    pub campaign: String,
    /// The agent route that talks on the call.
    pub route: String,
    /// E.164 number.
    pub number: String,
    /// The contact's variables (for the pack's lines).
    pub variables: BTreeMap<String, String>,
    /// The trunk the call leaves by.
    pub trunk: Option<String>,
    /// The caller ID it shows.
    pub caller_id: Option<String>,
    /// CANCEL after this long without an answer.
    pub ring_timeout: Duration,
    /// Answering-machine detection, and what to do on a machine.
    pub amd: crate::amd::MachineAction,
    /// The message left on a machine (placeholders not yet filled in).
    pub voicemail: Option<String>,
    /// Wait on it right before the INVITE leaves (the campaign's rate at
    /// the wire).
    pub pacer: Arc<Pacer>,
}

/// Spaces new calls at least `spacing` apart at the moment they leave
/// (the dialer's own spacing happens before the attempt is written and the
/// call set up, which takes varying time).
#[derive(Debug)]
pub struct Pacer {
    spacing: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pacer {
    /// A pacer letting one call through per `spacing`.
    pub fn new(spacing: Duration) -> Pacer {
        Pacer {
            spacing,
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for this call's turn.
    pub async fn wait(&self) {
        let mut next = self.next.lock().await;
        tokio::time::sleep_until(*next).await;
        *next = Instant::now() + self.spacing;
    }
}

/// Places a campaign's calls (the server: SIP out, the agent on the leg).
#[async_trait::async_trait]
pub trait Placer: Send + Sync {
    /// A fresh SIP Call-ID (written with the attempt before the call).
    fn new_call_id(&self) -> String;
    /// Places the call and, once answered, lets the agent talk to its end.
    async fn place(&self, dial: Dial) -> Placed;
    /// An attempt's end, once written with the contact's next step (a
    /// webhook is sent from here).
    async fn attempt_done(&self, _report: AttemptReport) {}
    /// The campaign was made `finished` by this node: every contact has its
    /// final disposition.
    async fn campaign_finished(&self, _campaign_id: &str) {}
}

/// How an attempt ended, as the store now holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptReport {
    /// The campaign's id.
    pub campaign_id: String,
    /// The contact's place in the campaign.
    pub seq: i64,
    /// E.164 number.
    pub number: String,
    /// The contact's variables.
    pub variables: BTreeMap<String, String>,
    /// Attempt number (from 1).
    pub attempt: u32,
    /// Its Call-ID.
    pub call_id: String,
    /// The attempt's result (`answered`, `busy`, `no_answer`, `interrupted`…).
    pub result: String,
    /// The SIP status of a call that did not connect.
    pub sip_status: Option<u16>,
    /// The conversation's outcome.
    pub outcome: Option<String>,
    /// The contact's final disposition, when this attempt was its last.
    pub disposition: Option<String>,
    /// When it is dialled again (ms since the epoch), when it is.
    pub retry_at: Option<i64>,
}

impl AttemptReport {
    fn new(contact: &ContactRow, attempt: u32, call_id: &str, end: &AttemptEnd, next: &NextStep) -> AttemptReport {
        AttemptReport {
            campaign_id: contact.campaign_id.clone(),
            seq: contact.seq,
            number: contact.number.clone(),
            variables: serde_json::from_str(&contact.variables).unwrap_or_default(),
            attempt,
            call_id: call_id.to_string(),
            result: end.result.clone(),
            sip_status: end.sip_status,
            outcome: end.outcome.clone(),
            disposition: match next {
                NextStep::Final { disposition } => Some(disposition.clone()),
                NextStep::Retry { .. } => None,
            },
            retry_at: match next {
                NextStep::Retry { at } => Some(*at),
                NextStep::Final { .. } => None,
            },
        }
    }
}

/// What a node allows a campaign: its own limits (the trunk's
/// `max_calls`/`max_cps`, its agent capacity); the campaign's are applied
/// within them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeLimits {
    /// Calls at once (0: no limit of the node's).
    pub max_calls: u32,
    /// Calls per second (0: none).
    pub max_cps: f64,
    /// The longest call (the lease on a contact lasts the ring timeout,
    /// this, and a minute).
    pub max_call: Duration,
}

/// How a run of the dialer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every contact has its final disposition.
    Finished,
    /// Paused (resumable).
    Paused,
    /// Stopped for good.
    Stopped,
    /// The node shuts down.
    Shutdown,
}

/// The campaign's settings, checked, and the pacing in force.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The settings as stored.
    pub settings: CampaignSettings,
    /// Checked.
    pub checked: Checked,
    /// Calls at once.
    pub max_calls: u32,
    /// Time between two new calls.
    pub spacing: Duration,
    /// How long a lease on a contact lasts.
    pub lease: Duration,
}

impl Plan {
    /// Reads `campaign`'s settings within `node`'s limits.
    pub fn new(campaign: &CampaignRow, node: NodeLimits) -> Result<Plan, DialerError> {
        let settings: CampaignSettings =
            serde_json::from_str(&campaign.settings).map_err(|e| DialerError::Unreadable {
                campaign: campaign.name.clone(),
                why: e.to_string(),
            })?;
        let checked = settings.check().map_err(|source| DialerError::Settings {
            campaign: campaign.name.clone(),
            source,
        })?;
        let max_calls = match node.max_calls {
            0 => settings.max_calls,
            n => settings.max_calls.min(n),
        };
        let cps = if node.max_cps > 0.0 {
            settings.max_cps.min(node.max_cps)
        } else {
            settings.max_cps
        };
        let ring = Duration::from_secs(settings.ring_timeout_s);
        Ok(Plan {
            max_calls,
            // 2% over 1/cps: a trunk counting calls per second never sees one more.
            spacing: Duration::from_secs_f64(1.02 / cps),
            lease: ring + node.max_call + Duration::from_secs(60),
            settings,
            checked,
        })
    }
}

/// How often the campaign's state is read back (a pause from another
/// process or node takes effect within this).
const STATE_POLL: Duration = Duration::from_millis(500);
/// How often leases other nodes left to expire are looked for.
const ORPHAN_POLL: Duration = Duration::from_secs(30);

/// Dials one campaign on this node.
pub struct Dialer {
    store: CallStore,
    campaign: CampaignRow,
    plan: Plan,
    placer: Arc<dyn Placer>,
    pacer: Arc<Pacer>,
}

/// A call under way: its contact and attempt number, and how it went.
type Done = (ContactRow, u32, String, Placed);

impl Dialer {
    /// A dialer for `campaign`, within `node`'s limits.
    pub fn new(
        store: CallStore,
        campaign: CampaignRow,
        placer: Arc<dyn Placer>,
        node: NodeLimits,
    ) -> Result<Dialer, DialerError> {
        let plan = Plan::new(&campaign, node)?;
        Ok(Dialer {
            store,
            campaign,
            pacer: Arc::new(Pacer::new(plan.spacing)),
            plan,
            placer,
        })
    }

    /// The plan in force.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Dials until the campaign is finished, paused or stopped, or
    /// `shutdown` (then the calls up are left to end as the server ends
    /// them, and their contacts are moved on as usual).
    pub async fn run(&self, shutdown: CancellationToken) -> Result<RunEnd, DialerError> {
        let span = tracing::info_span!("campaign", name = %self.campaign.name);
        self.run_inner(shutdown).instrument(span).await
    }

    async fn run_inner(&self, shutdown: CancellationToken) -> Result<RunEnd, DialerError> {
        self.recover(true).await?;
        info!(
            max_calls = self.plan.max_calls,
            spacing_ms = self.plan.spacing.as_millis() as u64,
            "dialling"
        );
        let mut calls: JoinSet<Done> = JoinSet::new();
        let mut at = Pace {
            next_dial: Instant::now(),
            state_read: Instant::now() - STATE_POLL,
            orphans_read: Instant::now(),
            state: state::RUNNING.to_string(),
        };
        loop {
            match self.step(&mut calls, &mut at, &shutdown).await {
                Ok(Some(end)) => return Ok(end),
                Ok(None) => {}
                // The store failed: the calls up go on, dialling resumes
                // once it answers again.
                Err(e) => {
                    warn!(error = %e, "campaign store unavailable: trying again in a second");
                    self.wait(&mut calls, Duration::from_secs(1), &shutdown).await;
                }
            }
        }
    }

    /// One turn of the dialer: the calls that ended moved on, the state
    /// read back, and the next contact dialled when the pacing allows, else
    /// a wait. `Some` when the run is over.
    async fn step(
        &self,
        calls: &mut JoinSet<Done>,
        at: &mut Pace,
        shutdown: &CancellationToken,
    ) -> Result<Option<RunEnd>, DialerError> {
        let id = &self.campaign.id;
        while let Some(done) = calls.try_join_next() {
            self.joined(done).await;
        }
        if at.state_read.elapsed() >= STATE_POLL {
            at.state_read = Instant::now();
            at.state = match self.store.campaign_by_id(id).await? {
                Some(c) => c.state,
                None => state::STOPPED.into(),
            };
        }
        if at.orphans_read.elapsed() >= ORPHAN_POLL {
            at.orphans_read = Instant::now();
            self.recover(false).await?;
        }
        if at.state != state::RUNNING || shutdown.is_cancelled() {
            if calls.is_empty() {
                return Ok(Some(match at.state.as_str() {
                    _ if shutdown.is_cancelled() => RunEnd::Shutdown,
                    state::PAUSED => RunEnd::Paused,
                    state::FINISHED => RunEnd::Finished,
                    _ => RunEnd::Stopped,
                }));
            }
            if let Some(done) = calls.join_next().await {
                self.joined(done).await;
            }
            return Ok(None);
        }
        let now = Instant::now();
        let room = calls.len() < self.plan.max_calls as usize;
        if room && now >= at.next_dial {
            match self.next_contact().await? {
                Next::Dial(contact) => {
                    self.dial(contact, calls).await?;
                    at.next_dial = now + self.plan.spacing;
                }
                Next::Skipped => {}
                Next::NoneDue(due) => {
                    if calls.is_empty() && due.is_none() && self.store.open_contacts(id).await? == 0 {
                        // Another node may have finished it first: its own report then.
                        if self
                            .store
                            .set_campaign_state(id, &[state::RUNNING], state::FINISHED)
                            .await?
                        {
                            info!("every contact has its final disposition: campaign finished");
                            self.placer.campaign_finished(id).await;
                        }
                        return Ok(Some(RunEnd::Finished));
                    }
                    // Until a contact falls due, a call ends, or the state is read again.
                    let wait = due
                        .map(|at| Duration::from_millis(at.saturating_sub(now_ms()).max(0) as u64))
                        .unwrap_or(STATE_POLL)
                        .min(STATE_POLL);
                    self.wait(calls, wait, shutdown).await;
                }
            }
            return Ok(None);
        }
        let wait = if room {
            at.next_dial.saturating_duration_since(now).min(STATE_POLL)
        } else {
            STATE_POLL
        };
        self.wait(calls, wait, shutdown).await;
        Ok(None)
    }

    /// Waits up to `wait` for a call to end (and moves its contact on).
    async fn wait(&self, calls: &mut JoinSet<Done>, wait: Duration, shutdown: &CancellationToken) {
        tokio::select! {
            Some(done) = calls.join_next(), if !calls.is_empty() => self.joined(done).await,
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    /// Leases the next due contact and checks it may be called now.
    async fn next_contact(&self) -> Result<Next, DialerError> {
        let id = &self.campaign.id;
        let lease_until = now_ms() + self.plan.lease.as_millis() as i64;
        let Some(contact) = self.store.lease_contact(id, lease_until).await? else {
            return Ok(Next::NoneDue(self.store.next_due(id).await?));
        };
        let seq = contact.seq;
        match self.check_leased(contact).await {
            Ok(next) => Ok(next),
            Err(e) => {
                // Not left leased for the rest of the run: due again now.
                self.store.release_contact(id, seq, now_ms()).await.ok();
                Err(e)
            }
        }
    }

    /// Whether a leased contact may be dialled now: DNC, window, last day.
    async fn check_leased(&self, contact: ContactRow) -> Result<Next, DialerError> {
        let id = &self.campaign.id;
        // Do-not-call lists are read at dial time, not only at import.
        if self.store.is_dnc(id, &contact.number).await? {
            info!(seq = contact.seq, "on a do-not-call list: not dialled");
            self.store.finish_contact(id, contact.seq, disposition::DNC).await?;
            return Ok(Next::Skipped);
        }
        let tz: Tz = contact.tz.parse().unwrap_or(self.plan.checked.timezone);
        let now = Utc::now();
        if !self.plan.checked.windows.is_open(now, tz) {
            match self.next_window(now, tz) {
                Some(open) => {
                    self.store
                        .release_contact(id, contact.seq, open.timestamp_millis())
                        .await?;
                }
                None => {
                    info!(seq = contact.seq, "no calling window before the campaign's last day");
                    self.store
                        .finish_contact(id, contact.seq, disposition::WINDOW_EXPIRED)
                        .await?;
                }
            }
            return Ok(Next::Skipped);
        }
        if self.past_last_day(now, tz) {
            self.store
                .finish_contact(id, contact.seq, disposition::WINDOW_EXPIRED)
                .await?;
            return Ok(Next::Skipped);
        }
        Ok(Next::Dial(contact))
    }

    /// The next opening of the contact's window on or before the last day.
    fn next_window(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.plan
            .checked
            .windows
            .next_open(now, tz)
            .filter(|open| !self.past_last_day(*open, tz))
    }

    fn past_last_day(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        self.plan
            .checked
            .last_day
            .is_some_and(|last| at.with_timezone(&tz).date_naive() > last)
    }

    /// Writes the attempt, then places the call.
    async fn dial(&self, contact: ContactRow, calls: &mut JoinSet<Done>) -> Result<(), DialerError> {
        let attempt = contact.attempts.max(0) as u32 + 1;
        let call_id = self.placer.new_call_id();
        if let Err(e) = self.store.attempt_started(&contact, attempt as i32, &call_id).await {
            // Nobody was called: due again now.
            self.store
                .release_contact(&contact.campaign_id, contact.seq, now_ms())
                .await
                .ok();
            return Err(e.into());
        }
        let variables: BTreeMap<String, String> = serde_json::from_str(&contact.variables).unwrap_or_default();
        let s = &self.plan.settings;
        let dial = Dial {
            call_id: call_id.clone(),
            campaign: self.campaign.name.clone(),
            route: self.campaign.route.clone(),
            number: contact.number.clone(),
            variables,
            trunk: s.trunk.clone(),
            caller_id: s.caller_id.clone(),
            ring_timeout: Duration::from_secs(s.ring_timeout_s),
            amd: s.amd,
            voicemail: s.voicemail.clone(),
            pacer: self.pacer.clone(),
        };
        info!(seq = contact.seq, attempt, %call_id, "dialling contact");
        let placer = self.placer.clone();
        calls.spawn(async move {
            let placed = placer.place(dial).await;
            (contact, attempt, call_id, placed)
        });
        Ok(())
    }

    /// A call's task ended: a panic leaves its contact leased (picked up at
    /// the next start).
    async fn joined(&self, done: Result<Done, tokio::task::JoinError>) {
        match done {
            Ok(done) => self.ended(done).await,
            Err(e) => warn!(error = %e, "a call's task failed: its contact is picked up at the next start"),
        }
    }

    /// A call ended: its attempt is completed and its contact moved on
    /// (a failed write is retried, never dropped: the attempt would be
    /// found again after a restart).
    async fn ended(&self, (contact, attempt, call_id, placed): Done) {
        if placed.reason == NOT_PLACED {
            info!(seq = contact.seq, attempt, "never placed: the attempt is taken back");
            if let Err(e) = self
                .store
                .attempt_withdrawn(&contact.campaign_id, contact.seq, attempt as i32)
                .await
            {
                warn!(error = %e, seq = contact.seq, "attempt not taken back: picked up at the next start");
            }
            return;
        }
        let (end, next) = after_attempt(&placed, attempt, &self.plan.settings.retry, now_ms());
        info!(seq = contact.seq, attempt, result = %end.result, next = ?next, "attempt ended");
        if self.complete(&contact, attempt, &end, &next).await {
            self.placer
                .attempt_done(AttemptReport::new(&contact, attempt, &call_id, &end, &next))
                .await;
        }
    }

    /// Writes an attempt's end; false when it could not be written.
    async fn complete(&self, contact: &ContactRow, attempt: u32, end: &AttemptEnd, next: &NextStep) -> bool {
        for wait_ms in [0, 200, 1000, 5000] {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            match self
                .store
                .attempt_ended(&contact.campaign_id, contact.seq, attempt as i32, end, next)
                .await
            {
                Ok(()) => return true,
                Err(e) => warn!(error = %e, seq = contact.seq, "attempt's end not written: trying again"),
            }
        }
        warn!(
            seq = contact.seq,
            "attempt's end not written: the contact is picked up at the next start"
        );
        false
    }

    /// Moves on contacts left `dialing`: this node's at its start (`mine`),
    /// else other nodes' whose lease ran out. An attempt never written rang
    /// nobody: the contact is due again at once. An answered call keeps
    /// the outcome it had (else `interrupted`): a person was spoken to and is
    /// not called again. One that may have rung is an attempt like any
    /// other that failed.
    async fn recover(&self, mine: bool) -> Result<(), DialerError> {
        let left = self.store.left_dialing(&self.campaign.id, mine, now_ms()).await?;
        for l in left {
            let c = &l.contact;
            match &l.call_id {
                None => {
                    info!(seq = c.seq, "left before its attempt was written: due again");
                    self.store.release_contact(&c.campaign_id, c.seq, now_ms()).await?;
                }
                Some(call_id) => {
                    let placed = Placed {
                        answered: l.answered,
                        reason: "interrupted".into(),
                        status: None,
                        outcome: l
                            .outcome
                            .clone()
                            .or_else(|| l.answered.then(|| disposition::INTERRUPTED.into())),
                        machine: false,
                    };
                    let attempt = c.attempts.max(1) as u32;
                    let (mut end, next) = after_attempt(&placed, attempt, &self.plan.settings.retry, now_ms());
                    end.result = "interrupted".into();
                    info!(seq = c.seq, %call_id, answered = l.answered, next = ?next, "attempt interrupted by a stop");
                    self.store
                        .attempt_ended(&c.campaign_id, c.seq, attempt as i32, &end, &next)
                        .await?;
                    self.placer
                        .attempt_done(AttemptReport::new(c, attempt, call_id, &end, &next))
                        .await;
                }
            }
        }
        Ok(())
    }
}

/// The dialer's clocks between turns.
struct Pace {
    /// When the next call may be set up.
    next_dial: Instant,
    /// When the campaign's state was last read.
    state_read: Instant,
    /// When expired leases of other nodes were last looked for.
    orphans_read: Instant,
    /// The campaign's state as last read.
    state: String,
}

/// What the next lease gave.
enum Next {
    /// A contact to dial now.
    Dial(ContactRow),
    /// A contact that was moved on without a call (DNC, window).
    Skipped,
    /// None due now; the next falls due then (ms), if any is pending.
    NoneDue(Option<i64>),
}
