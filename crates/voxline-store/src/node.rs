//! One running process per node name (decision 0065). A node's name keys
//! the calls it closes after a crash, so two live processes must never
//! share one: the second is refused. The holder is
//! "host/pid/process-start/n": on the same host a holder whose process is gone (its pid not running, or
//! running a process started at another time) is taken over at once (a
//! restart after a crash); on another host, once its heartbeat is older
//! than the stale time.

use crate::{now_ms, CallStore, StoreError};
use std::time::Duration;

/// When process `pid` started (clock ticks after boot, from
/// `/proc/PID/stat`): with the pid, names one process for good (pids are
/// reused; a container's process is pid 1 after every restart).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (in parentheses, which may hold spaces).
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// A holder string for a new store: "host/pid/process-start/n", n telling
/// apart stores opened by one process.
pub(crate) fn instance_id() -> String {
    static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let pid = std::process::id();
    format!(
        "{}/{pid}/{}/{}",
        host_name(),
        process_start(pid).unwrap_or(0),
        OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Where a holder runs, seen from here.
#[derive(Debug, PartialEq, Eq)]
enum Holder {
    /// On this host, its process gone (a crash or kill): free now.
    GoneHere,
    /// On this host (or this very process), running.
    AliveHere,
    /// On another host: only its heartbeat tells.
    Elsewhere,
}

fn whereabouts(holder: &str) -> Holder {
    let mut parts = holder.split('/');
    let (Some(host), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return Holder::Elsewhere;
    };
    if host != host_name() {
        return Holder::Elsewhere;
    }
    match (pid.parse::<u32>().ok().and_then(process_start), start.parse::<u64>()) {
        (Some(running), Ok(start)) if running == start => Holder::AliveHere,
        _ => Holder::GoneHere,
    }
}

impl CallStore {
    /// Takes this store's node name for this process, returning the name's
    /// last heartbeat before (the end time of calls a crash left open).
    /// Refused with [`StoreError::NodeTaken`] while another live process
    /// holds the name: its heartbeat younger than `stale`, and on this host
    /// its process still running.
    pub async fn claim_node(&self, stale: Duration) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64, Option<String>)> =
            sqlx::query_as("SELECT heartbeat_at, instance FROM nodes WHERE name = $1")
                .bind(&self.node)
                .fetch_optional(&self.pool)
                .await?;
        let now = now_ms();
        let stale_ms = stale.as_millis() as i64;
        // A holder whose process is gone (on this host) is taken over at once.
        let mut gone = None;
        if let Some((beat, Some(holder))) = &row {
            if *holder != self.instance {
                let age = now - beat;
                let place = whereabouts(holder);
                if place == Holder::GoneHere {
                    gone = Some(holder.clone());
                } else if age < stale_ms {
                    return Err(StoreError::NodeTaken {
                        name: self.node.clone(),
                        holder: holder.clone(),
                        seen_ms_ago: age,
                        elsewhere: place == Holder::Elsewhere,
                    });
                }
            }
        }
        // Taken only if nobody else took it meanwhile.
        let r = sqlx::query(
            "INSERT INTO nodes (name, heartbeat_at, instance) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, instance = excluded.instance \
             WHERE nodes.instance IS NULL OR nodes.instance = excluded.instance OR nodes.heartbeat_at < $4 \
             OR nodes.instance = $5",
        )
        .bind(&self.node)
        .bind(now)
        .bind(&self.instance)
        .bind(now - stale_ms)
        .bind(gone)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NodeTaken {
                name: self.node.clone(),
                holder: "another process (just now)".into(),
                seen_ms_ago: 0,
                elsewhere: false,
            });
        }
        Ok(row.map(|r| r.0))
    }

    /// Records that this node is alive now (run every few seconds). Fails
    /// with [`StoreError::NodeTaken`] when another process took the name
    /// (this one was silent past the stale time).
    pub async fn heartbeat(&self) -> Result<(), StoreError> {
        let r = sqlx::query(
            "INSERT INTO nodes (name, heartbeat_at, instance) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, instance = excluded.instance \
             WHERE nodes.instance IS NULL OR nodes.instance = excluded.instance",
        )
        .bind(&self.node)
        .bind(now_ms())
        .bind(&self.instance)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NodeTaken {
                name: self.node.clone(),
                holder: "another process".into(),
                seen_ms_ago: 0,
                elsewhere: false,
            });
        }
        Ok(())
    }

    /// Gives the node name up (a clean stop): the next process takes it at
    /// once, wherever it runs.
    pub async fn release_node(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET instance = NULL WHERE name = $1 AND instance = $2")
            .bind(&self.node)
            .bind(&self.instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_is_placed_by_its_host_and_process() {
        let ours = instance_id();
        let host = host_name();
        // A process that ran and was reaped: its pid is free.
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let dead = child.id();
        child.wait().expect("wait");
        assert_eq!(whereabouts(&format!("{host}/{dead}/1/0")), Holder::GoneHere);
        assert_eq!(whereabouts(&ours), Holder::AliveHere);
        // Another store of this process is alive; an earlier process with
        // this pid (a container restarted: pid 1 again) is gone.
        assert_eq!(whereabouts(&instance_id()), Holder::AliveHere);
        let pid = std::process::id();
        let start = process_start(pid).expect("our start time");
        assert_eq!(whereabouts(&format!("{host}/{pid}/{}/0", start - 1)), Holder::GoneHere);
        assert_eq!(whereabouts("another-host.example/1234/5/0"), Holder::Elsewhere);
        assert_eq!(whereabouts("garbage"), Holder::Elsewhere);
    }
}
