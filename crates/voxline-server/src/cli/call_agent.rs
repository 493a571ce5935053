//! `voxline call TARGET --agent ROUTE`: an agent route of the configuration
//! places one call and talks on it (it speaks first once answered), with
//! the contact's `--var` values in the call's facts; the call is recorded
//! in the store like the server's calls.

use crate::config::Config;
use crate::handlers::agent_metrics::AgentMetrics;
use crate::handlers::agent_route::CallOut;
use crate::handlers::engines::Engines;
use crate::leg::bridge::Dialer;
use crate::records::Records;
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use voxline_sip::SipEndpoint;
use voxline_store::CallStore;

/// Loads the route's engines, places the call and talks on it to its end;
/// exit code 0 when it was answered, 1 when not.
pub async fn run(cfg: &Config, endpoint: Arc<SipEndpoint>, route: &str, out: CallOut) -> anyhow::Result<ExitCode> {
    let route_cfg = cfg
        .routes
        .iter()
        .find(|r| r.name == route)
        .with_context(|| format!("--agent: no route named {route:?} in the configuration"))?;
    if route_cfg.handler != "agent" {
        anyhow::bail!(
            "--agent: route {route:?} has handler {:?}, not \"agent\"",
            route_cfg.handler
        );
    }
    let records = Records::new(
        CallStore::open(&cfg.store.url, &cfg.node.name)
            .await
            .context("store.url")?,
        None,
        None,
        None,
    )?;
    let shutdown = CancellationToken::new();
    let dialer = Dialer::default();
    dialer.set(endpoint.clone());
    let engines = Engines::load(cfg, true, true).await?;
    let agent = engines
        .agent_route(
            cfg,
            route_cfg,
            AgentMetrics::default(),
            dialer,
            shutdown.clone(),
            crate::handlers::live::LiveCalls::default(),
        )
        .await?;
    println!("calling {} with route {route}", out.target);
    let call = agent.call_out(&endpoint, route, out, &records);
    tokio::pin!(call);
    let end = tokio::select! {
        end = &mut call => end,
        _ = tokio::signal::ctrl_c() => {
            // The session hangs up (or the ringing call is cancelled) and the record is completed.
            shutdown.cancel();
            call.await
        }
    };
    println!(
        "ended: answered={} by={} reason={} call-id={}",
        end.answered, end.by, end.reason, end.call_id
    );
    records.close().await;
    // Let the BYE's transaction finish before the endpoint closes.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    endpoint.shutdown();
    Ok(ExitCode::from(if end.answered { 0 } else { 1 }))
}
