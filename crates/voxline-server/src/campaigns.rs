//! Outbound campaigns on this node (`voxline serve`): every running
//! campaign of the store whose agent route this node serves is dialled by
//! a [`Dialer`] of `voxline-campaign`; each call is placed by the route's
//! agent (the contact's variables in its lines) and ends with the
//! conversation's outcome. Calls of all campaigns together stay within
//! `[campaigns] max_calls` (the node's agent capacity), each campaign's
//! within its trunk's `max_calls` and `max_cps`.

use crate::config::Config;
use crate::handlers::agent_route::{AgentRoute, CallOut};
use crate::handlers::answering::Answering;
use crate::records::{new_call_id, Records};
use crate::webhooks::Webhooks;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use voxline_agent::contact::fill_line;
use voxline_campaign::dialer::state;
use voxline_campaign::outcome::disposition;
use voxline_campaign::{AttemptReport, Dial, Dialer, NodeLimits, Placed, Placer};
use voxline_sip::config::TrunkConfig;
use voxline_sip::SipEndpoint;
use voxline_store::{CallStore, CampaignRow};

/// How often the store is read for campaigns to dial.
const POLL: Duration = Duration::from_secs(1);

/// Places a campaign's calls with an agent route.
struct AgentPlacer {
    agent: Arc<AgentRoute>,
    endpoint: Arc<SipEndpoint>,
    records: Records,
    /// The node's campaign call slots (all campaigns).
    slots: Arc<Semaphore>,
    /// Where attempts and the campaign's end are reported.
    webhooks: Arc<Webhooks>,
}

#[async_trait::async_trait]
impl Placer for AgentPlacer {
    fn new_call_id(&self) -> String {
        new_call_id()
    }

    async fn place(&self, dial: Dial) -> Placed {
        let _slot = match self.slots.clone().acquire_owned().await {
            Ok(s) => s,
            // The node shuts down before this call could start.
            Err(_) => {
                return Placed {
                    answered: false,
                    reason: voxline_campaign::outcome::NOT_PLACED.into(),
                    status: None,
                    outcome: None,
                    machine: false,
                }
            }
        };
        let mut variables = dial.variables;
        variables.insert("campaign".into(), dial.campaign.clone());
        let answering = Answering {
            action: dial.amd,
            message: dial.voicemail.as_deref().map(|m| fill_line(m, &variables)),
        };
        let out = CallOut {
            target: dial.number,
            from: dial.caller_id,
            trunk: dial.trunk,
            ring_timeout: Some(dial.ring_timeout),
            variables,
            call_id: Some(dial.call_id),
            answering: Some(answering),
            pace: Some(dial.pacer),
        };
        let end = self
            .agent
            .call_out(&self.endpoint, &dial.route, out, &self.records)
            .await;
        let machine = matches!(
            end.outcome.as_deref(),
            Some(disposition::MACHINE | disposition::VOICEMAIL_LEFT)
        );
        Placed {
            answered: end.answered,
            reason: end.reason,
            status: end.status,
            outcome: end.outcome,
            machine,
        }
    }

    async fn attempt_done(&self, report: AttemptReport) {
        let w = self.webhooks.clone();
        tokio::spawn(async move { w.attempt_done(&report).await });
    }

    async fn campaign_finished(&self, campaign_id: &str) {
        let (w, id) = (self.webhooks.clone(), campaign_id.to_string());
        tokio::spawn(async move { w.campaign_finished(&id).await });
    }
}

/// Dials the store's running campaigns on this node until shutdown.
pub struct CampaignRunner {
    store: CallStore,
    records: Records,
    endpoint: Arc<SipEndpoint>,
    agents: HashMap<String, Arc<AgentRoute>>,
    trunks: Vec<TrunkConfig>,
    slots: Arc<Semaphore>,
    max_calls: u32,
    webhooks: Arc<Webhooks>,
}

impl CampaignRunner {
    /// A runner over the node's agent routes (`agents`, by route name),
    /// within the node's outbound call `slots`.
    pub fn new(
        cfg: &Config,
        store: CallStore,
        records: Records,
        endpoint: Arc<SipEndpoint>,
        agents: HashMap<String, Arc<AgentRoute>>,
        slots: Arc<Semaphore>,
        webhooks: Arc<Webhooks>,
    ) -> CampaignRunner {
        CampaignRunner {
            store,
            records,
            endpoint,
            agents,
            trunks: cfg.trunks.clone(),
            slots,
            max_calls: cfg.campaigns.max_calls,
            webhooks,
        }
    }

    /// Runs until `shutdown`, then until the dialers have moved on the
    /// contacts of the calls that were up.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut dialers: JoinSet<String> = JoinSet::new();
        let mut active: HashSet<String> = HashSet::new();
        let mut refused: HashSet<String> = HashSet::new();
        loop {
            while let Some(done) = dialers.try_join_next() {
                if let Ok(id) = done {
                    active.remove(&id);
                }
            }
            if shutdown.is_cancelled() {
                break;
            }
            match self.store.campaigns().await {
                Ok(campaigns) => {
                    for c in campaigns.into_iter().filter(|c| c.state == state::RUNNING) {
                        if active.contains(&c.id) || refused.contains(&c.id) {
                            continue;
                        }
                        match self.dialer(&c) {
                            Ok(dialer) => {
                                active.insert(c.id.clone());
                                let stop = shutdown.clone();
                                dialers.spawn(async move {
                                    match dialer.run(stop).await {
                                        Ok(end) => info!(campaign = %c.name, ?end, "campaign run ended"),
                                        Err(e) => error!(campaign = %c.name, error = %e, "campaign run failed"),
                                    }
                                    c.id
                                });
                            }
                            Err(why) => {
                                warn!(campaign = %c.name, %why, "this node does not dial the campaign");
                                refused.insert(c.id.clone());
                            }
                        }
                    }
                }
                Err(e) => warn!(error = %e, "campaigns not read from the store"),
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        self.slots.close();
        while dialers.join_next().await.is_some() {}
    }

    /// A dialer for `c`, when this node can dial it.
    fn dialer(&self, c: &CampaignRow) -> Result<Dialer, String> {
        let agent = self
            .agents
            .get(&c.route)
            .ok_or_else(|| format!("route {:?} is not an agent route of this node", c.route))?;
        let settings: voxline_campaign::CampaignSettings =
            serde_json::from_str(&c.settings).map_err(|e| format!("settings not readable: {e}"))?;
        let trunk = settings
            .trunk
            .as_deref()
            .ok_or("trunk: the campaign has no trunk to dial out by")?;
        let trunk = self
            .trunks
            .iter()
            .find(|t| t.name == trunk)
            .ok_or_else(|| format!("trunk: no [[trunk]] named {trunk:?} on this node"))?;
        let limit = |trunk: u32, node: u32| if trunk == 0 { node } else { trunk.min(node) };
        let node = NodeLimits {
            max_calls: limit(trunk.max_calls, self.max_calls),
            max_cps: f64::from(trunk.max_cps),
            max_call: agent.max_call(),
        };
        let placer = Arc::new(AgentPlacer {
            agent: agent.clone(),
            endpoint: self.endpoint.clone(),
            records: self.records.clone(),
            slots: self.slots.clone(),
            webhooks: self.webhooks.clone(),
        });
        Dialer::new(self.store.clone(), c.clone(), placer, node).map_err(|e| e.to_string())
    }
}
