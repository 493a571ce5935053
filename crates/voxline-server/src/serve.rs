//! `voxline serve`: wires config, store, SIP endpoint, handlers and HTTP API.

use crate::config::Config;
use crate::handlers::Handlers;
use crate::records::Records;
use anyhow::Context;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;
use voxline_sip::{SipEndpoint, SipEndpointOptions};
use voxline_store::{CallStore, StoreError};

/// Runs the server until SIGINT/SIGTERM.
pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let store = CallStore::open(&cfg.store.url, &cfg.node.name)
        .await
        .with_context(|| "store.url".to_string())?;
    let last_beat = claim_node_name(&store).await?;
    let closed = store.close_interrupted_at(last_beat).await?;
    if closed > 0 {
        info!(rows = closed, "closed call records left open by an earlier stop");
    }
    let heartbeat_store = store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tick.tick().await;
            match heartbeat_store.heartbeat().await {
                Ok(()) => {}
                Err(e @ StoreError::NodeTaken { .. }) => {
                    tracing::error!(error = %e, "another process took this node's name: its start-up may close this node's calls")
                }
                Err(e) => tracing::warn!(error = %e, "node heartbeat not written"),
            }
        }
    });
    let shutdown = CancellationToken::new();
    let webhooks = crate::webhooks::Webhooks::new(store.clone(), cfg.webhook_targets.clone());
    let sender = tokio::spawn(webhooks.clone().send(shutdown.clone()));
    let analysis_wake = Arc::new(tokio::sync::Notify::new());
    let spool = cfg.store.spool_of(&cfg.node.name);
    let records = Records::new(
        store.clone(),
        Some(webhooks.clone()),
        Some(analysis_wake.clone()),
        Some(&spool),
    )
    .context("store.spool_dir")?;
    let handlers = Arc::new(Handlers::new(&cfg, records, shutdown.clone()).await?);
    // Quality inspection of finished calls, off their path (decision 0055).
    let embedding_dir = cfg
        .llm
        .embedding_path()
        .unwrap_or_else(|| voxline_models::models_dir().join(voxline_models::defaults::EMBEDDING));
    let analysis_llm = crate::analysis::analysis_llm(&cfg, &handlers).await?;
    let analyzer = crate::analysis::Analyzer::new(
        store.clone(),
        handlers.embedder(),
        embedding_dir,
        Some(webhooks.clone()),
        analysis_wake,
        analysis_llm,
    );
    let analysis = tokio::spawn(analyzer.run(shutdown.clone()));
    let counters = handlers.counters();
    tokio::spawn(counters.load.clone().run(counters.clone(), shutdown.clone()));
    let endpoint = Arc::new(
        SipEndpoint::start(
            SipEndpointOptions {
                sip: cfg.sip.clone(),
                trunks: cfg.trunks.clone(),
                routes: cfg.routes.clone(),
                users: cfg.users.clone(),
                security: cfg.security.clone(),
                accept_inbound: true,
            },
            Some(handlers.clone()),
        )
        .await?,
    );
    handlers.set_endpoint(endpoint.clone());
    let registrations = endpoint.start_registrations(&cfg.trunks);
    // The node's outbound calls, the campaigns' and the API's together.
    let slots = Arc::new(tokio::sync::Semaphore::new(cfg.campaigns.max_calls as usize));
    if let Some(bind) = cfg.http.bind {
        if cfg.http.tokens.is_empty() {
            tracing::warn!(
                "[http] has no [[http.token]]: the API answers only /healthz (voxline token new makes a token)"
            );
        }
        let ctx = crate::http::ApiContext {
            cfg: Arc::new(cfg.clone()),
            store: store.clone(),
            counters: counters.clone(),
            router: endpoint.router(),
            registrations,
            live: handlers.live(),
            outbound: crate::http::Outbound {
                agents: handlers.agents(),
                endpoint: endpoint.clone(),
                records: handlers.records(),
                slots: slots.clone(),
            },
            browser_slots: Arc::new(tokio::sync::Semaphore::new(cfg.webrtc.max_calls)),
        };
        crate::http::start(bind, ctx, shutdown.clone())
            .await
            .with_context(|| format!("http.bind {bind}"))?;
    }
    let campaigns = cfg.campaigns.dial.then(|| {
        let runner = crate::campaigns::CampaignRunner::new(
            &cfg,
            store.clone(),
            handlers.records(),
            endpoint.clone(),
            handlers.agents(),
            slots.clone(),
            webhooks.clone(),
        );
        tokio::spawn(runner.run(shutdown.clone()))
    });
    info!(node = %cfg.node.name, "voxline ready");

    wait_for_signal().await;
    // New INVITEs get 503 from here on, so a trunk or proxy tries another node.
    endpoint.drain();
    info!("shutting down: new calls get 503, hanging up calls");
    shutdown.cancel();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let placing = || slots.available_permits() < cfg.campaigns.max_calls as usize;
    while (counters.active.load(Ordering::Relaxed) > 0 || placing()) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The campaigns' dialers write how their last calls ended.
    if let Some(c) = campaigns {
        if tokio::time::timeout_at(deadline + Duration::from_secs(2), c)
            .await
            .is_err()
        {
            tracing::warn!("campaign dialers still busy at shutdown: their contacts are picked up at the next start");
        }
    }
    // The calls' last record writes (their ends) land first, with what
    // follows them (webhook events into the outbox); a store that is down
    // is waited for.
    handlers.records().flush(SHUTDOWN_RECORD_WAIT).await;
    // Deliveries in flight finish or are taken again at the next start;
    // so do calls being scored (their lease runs out).
    let _ = tokio::time::timeout(Duration::from_secs(3), sender).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), analysis).await;
    // Let the BYEs leave before the transport closes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    endpoint.shutdown();
    if let Err(e) = store.release_node().await {
        tracing::warn!(error = %e, "node name not released: the next start on another host waits for it to go stale");
    }
    store.close().await;
    Ok(())
}

/// How long a stopping node waits for its queued record writes (the
/// store may be restarting).
const SHUTDOWN_RECORD_WAIT: Duration = Duration::from_secs(30);

/// How often a node writes its heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A node name whose heartbeat is this old is free (three beats missed).
const NODE_STALE: Duration = Duration::from_secs(15);

/// Takes `[node] name` for this process (decision 0065): refused while
/// another live process on this host holds it; held from another host, it
/// is waited for until its heartbeat is stale (a crashed node's), then
/// refused if it is still beating. Returns the name's last heartbeat.
async fn claim_node_name(store: &CallStore) -> anyhow::Result<Option<i64>> {
    let give_up = tokio::time::Instant::now() + NODE_STALE + HEARTBEAT;
    loop {
        match store.claim_node(NODE_STALE).await {
            Err(StoreError::NodeTaken {
                seen_ms_ago,
                elsewhere: true,
                ref holder,
                ..
            }) if tokio::time::Instant::now() < give_up => {
                let wait = NODE_STALE.saturating_sub(Duration::from_millis(seen_ms_ago.max(0) as u64));
                info!(holder = %holder, seen_ms_ago, wait_ms = wait.as_millis() as u64, "node name held by a process on another host: waiting for its heartbeat to go stale");
                tokio::time::sleep(wait + Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("node.name"),
            Ok(last) => return Ok(last),
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                tokio::signal::ctrl_c().await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok();
    }
}
