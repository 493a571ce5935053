//! Durable records for voxline: call detail records (CDRs).
//!
//! One `calls` row per call: inserted when the INVITE is routed, updated on
//! answer and completed at the end. SQLite (a file, the default) and
//! PostgreSQL (a URL) are both served through sqlx's `Any` driver with one set
//! of portable migrations.

#![warn(missing_docs)]

mod analysis;
mod campaign;
mod dialer;
mod node;
mod record;
mod training;
mod webhook;

pub use analysis::{AnalysisFilter, AnalysisRow, ItemTally, ItemVerdict, ListedAnalysis};
pub use campaign::{CampaignRow, ContactCounts, NewContact, StoredImport};
pub use dialer::{AttemptEnd, ContactRow, LeftDialing, NextStep};
pub use record::{
    AgentTurn, CallDirection, CallEnd, CallRecord, FlowStep, NewCall, RtcpSummary, ToolUse, TranscriptLine,
};
pub use training::{ListedTraining, TrainingFilter, TrainingRow};
pub use webhook::{Delivery, NewDelivery};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::time::{SystemTime, UNIX_EPOCH};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("cannot open call store {url}: {source}")]
    Open {
        /// The URL (password removed).
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The schema migrations failed.
    #[error("call store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("call store query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored value cannot be read back (written by something else).
    #[error("call store value cannot be read: {0}")]
    Corrupt(String),
    /// Another running process holds this node name.
    #[error("node.name {name:?} is in use by {holder} (heartbeat {seen_ms_ago} ms ago): give each node its own name")]
    NodeTaken {
        /// The name.
        name: String,
        /// Who holds it.
        holder: String,
        /// How long ago its heartbeat was written.
        seen_ms_ago: i64,
        /// The holder runs on another host (its process cannot be checked
        /// from here: it may be a crashed node whose heartbeat is not stale yet).
        elsewhere: bool,
    },
}

/// Milliseconds since the Unix epoch, the store's time unit.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `SELECT` of every column of `calls`, followed by a literal tail.
macro_rules! select_call {
    ($tail:literal) => {
        concat!(
            "SELECT id, node, call_id, direction, from_uri, to_uri, source_addr, trunk, route, handler, codec, status, ",
            "invite_at, answer_at, end_at, end_reason, hangup_by, sip_status, recording_path, packets_sent, packets_received, ",
            "packets_lost, jitter_ms, rtt_ms, remote_lost, remote_jitter_ms, detail, outcome, amd, amd_ms, srtp, channel ",
            "FROM calls ",
            $tail
        )
    };
}

/// Which call records [`CallStore::search`] returns; `None` passes all.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Only this route.
    pub route: Option<String>,
    /// Only `inbound` or `outbound`.
    pub direction: Option<String>,
    /// Only `sip` or `webrtc`.
    pub channel: Option<String>,
    /// Only calls that ended this way (`hangup`, `no_answer`...).
    pub end_reason: Option<String>,
    /// The caller or the called party holds this (any case).
    pub party: Option<String>,
    /// A line of the transcript holds this (any case).
    pub text: Option<String>,
    /// Started at or after (ms since the epoch).
    pub since: Option<i64>,
    /// Started before.
    pub until: Option<i64>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// A `LIKE` pattern (escaped with a backslash) matching lower-cased text that
/// holds `needle`; empty (no filter) for a blank needle.
fn contains_pattern(needle: &str) -> String {
    let needle = needle.trim().to_lowercase();
    if needle.is_empty() {
        return String::new();
    }
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The call record store.
#[derive(Debug, Clone)]
pub struct CallStore {
    pool: AnyPool,
    node: String,
    /// This process, as the holder of the node name ("host/pid/process-start/n").
    instance: String,
    /// PostgreSQL (row locks: `FOR UPDATE SKIP LOCKED`), else SQLite.
    postgres: bool,
}

/// `url` with its password (`user:pass@`) replaced by `***`, to show or log.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

impl CallStore {
    /// Opens (creating when needed) the store at `url` — `sqlite://PATH` or
    /// `postgres://...` — and runs the migrations. `node` names this server
    /// in the rows it writes, so nodes sharing PostgreSQL keep apart.
    pub async fn open(url: &str, node: &str) -> Result<CallStore, StoreError> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        let mut url_owned = url.to_string();
        if is_sqlite {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                        url: redact(url),
                        source: sqlx::Error::Io(e),
                    })?;
                }
            }
            if !url.contains('?') {
                url_owned.push_str("?mode=rwc");
            }
        }
        // One direct attempt first: a wrong host or password fails now and
        // clearly, instead of after the pool's acquire timeout.
        use sqlx::Connection;
        sqlx::AnyConnection::connect(&url_owned)
            .await
            .map_err(|source| StoreError::Open {
                url: redact(url),
                source,
            })?
            .close()
            .await
            .ok();
        let mut options = AnyPoolOptions::new()
            .max_connections(if is_sqlite { 4 } else { 8 })
            .acquire_timeout(std::time::Duration::from_secs(10));
        if is_sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode=WAL").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA synchronous=NORMAL").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA busy_timeout=5000").execute(&mut *conn).await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url_owned).await.map_err(|source| StoreError::Open {
            url: redact(url),
            source,
        })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(CallStore {
            pool,
            node: node.to_string(),
            instance: node::instance_id(),
            postgres: !is_sqlite,
        })
    }

    /// Records a new call at INVITE time.
    pub async fn call_started(&self, call: &NewCall) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO calls (id, node, call_id, direction, from_uri, to_uri, source_addr, trunk, route, handler, status, invite_at, channel) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'ringing', $11, $12)",
        )
        .bind(&call.id)
        .bind(&self.node)
        .bind(&call.call_id)
        .bind(call.direction.as_str())
        .bind(&call.from_uri)
        .bind(&call.to_uri)
        .bind(call.source_addr.as_deref())
        .bind(call.trunk.as_deref())
        .bind(call.route.as_deref())
        .bind(call.handler.as_deref())
        .bind(call.invite_at)
        .bind(&call.channel)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a call answered with the negotiated codec and SRTP suite
    /// (`None`: plain RTP).
    pub async fn call_answered(
        &self,
        id: &str,
        codec: &str,
        srtp: Option<&str>,
        recording_path: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE calls SET status = 'answered', answer_at = $1, codec = $2, srtp = $3, recording_path = $4 WHERE id = $5",
        )
        .bind(now_ms())
        .bind(codec)
        .bind(srtp)
        .bind(recording_path)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Completes a call's record.
    pub async fn call_ended(&self, id: &str, end: &CallEnd) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE calls SET status = $1, end_at = $2, end_reason = $3, hangup_by = $4, sip_status = $5, \
             packets_sent = $6, packets_received = $7, packets_lost = $8, jitter_ms = $9, detail = $10, \
             rtt_ms = $11, remote_lost = $12, remote_jitter_ms = $13 WHERE id = $14",
        )
        .bind(if end.answered { "completed" } else { "failed" })
        .bind(now_ms())
        .bind(&end.reason)
        .bind(&end.hangup_by)
        .bind(end.sip_status.map(i32::from))
        .bind(end.packets_sent)
        .bind(end.packets_received)
        .bind(end.packets_lost)
        .bind(end.jitter_ms)
        .bind(end.detail.as_deref())
        .bind(end.rtcp.map(|r| r.rtt_ms).unwrap_or(None))
        .bind(end.rtcp.map(|r| r.remote_lost))
        .bind(end.rtcp.map(|r| r.remote_jitter_ms))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes the rows this node left open when it stopped abruptly, ending
    /// them at the node's last heartbeat (never before they started); returns
    /// how many. Run at start-up, before the first heartbeat.
    pub async fn close_interrupted(&self) -> Result<u64, StoreError> {
        let last: Option<i64> = sqlx::query_scalar("SELECT heartbeat_at FROM nodes WHERE name = $1")
            .bind(&self.node)
            .fetch_optional(&self.pool)
            .await?;
        self.close_interrupted_at(last).await
    }

    /// [`close_interrupted`](Self::close_interrupted) with the node's last
    /// heartbeat given ([`claim_node`](Self::claim_node) returns it).
    pub async fn close_interrupted_at(&self, last: Option<i64>) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE calls SET status = 'interrupted', end_reason = 'server_stopped', hangup_by = 'voxline', \
             end_at = CASE WHEN $1 > COALESCE(answer_at, invite_at) THEN $1 ELSE COALESCE(answer_at, invite_at) END, \
             detail = 'end time is the node''s last heartbeat before it stopped' \
             WHERE node = $2 AND end_at IS NULL",
        )
        .bind(last.unwrap_or(0))
        .bind(&self.node)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Whether the database answers (a trivial query).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The records with this SIP Call-ID (usually one).
    pub async fn find_by_call_id(&self, call_id: &str) -> Result<Vec<CallRecord>, StoreError> {
        let rows = sqlx::query(select_call!("WHERE call_id = $1 ORDER BY invite_at"))
            .bind(call_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(CallRecord::from_row).collect()
    }

    /// The record with this id.
    pub async fn record(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        let row = sqlx::query(select_call!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(CallRecord::from_row).transpose()
    }

    /// The records that pass `f`, newest first.
    pub async fn search(&self, f: &CallFilter) -> Result<Vec<CallRecord>, StoreError> {
        let sql = format!(
            "{}WHERE ($1 = '' OR route = $1) AND ($2 = '' OR direction = $2) AND ($3 = '' OR channel = $3) \
             AND ($4 = '' OR end_reason = $4) \
             AND ($5 = '' OR lower(from_uri) LIKE $5 ESCAPE '\\' OR lower(to_uri) LIKE $5 ESCAPE '\\') \
             AND ($6 = '' OR id IN (SELECT record_id FROM transcript_lines WHERE lower(text) LIKE $6 ESCAPE '\\')) \
             AND invite_at >= $7 AND invite_at < $8 ORDER BY invite_at DESC LIMIT $9",
            select_call!("")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(f.route.clone().unwrap_or_default())
            .bind(f.direction.clone().unwrap_or_default())
            .bind(f.channel.clone().unwrap_or_default())
            .bind(f.end_reason.clone().unwrap_or_default())
            .bind(f.party.as_deref().map(contains_pattern).unwrap_or_default())
            .bind(f.text.as_deref().map(contains_pattern).unwrap_or_default())
            .bind(f.since.unwrap_or(0))
            .bind(f.until.unwrap_or(i64::MAX))
            .bind(f.limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(CallRecord::from_row).collect()
    }

    /// Appends a line to a call's transcript.
    pub async fn transcript_line(&self, record_id: &str, line: &TranscriptLine) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO transcript_lines (record_id, seq, speaker, start_ms, end_ms, text, asr_latency_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(record_id)
        .bind(line.seq)
        .bind(&line.speaker)
        .bind(line.start_ms)
        .bind(line.end_ms)
        .bind(&line.text)
        .bind(line.asr_latency_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A call's transcript, in order.
    pub async fn transcript(&self, record_id: &str) -> Result<Vec<TranscriptLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, speaker, start_ms, end_ms, text, asr_latency_ms FROM transcript_lines \
             WHERE record_id = $1 ORDER BY seq",
        )
        .bind(record_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TranscriptLine {
                    seq: row.try_get("seq")?,
                    speaker: row.try_get("speaker")?,
                    start_ms: row.try_get("start_ms")?,
                    end_ms: row.try_get("end_ms")?,
                    text: row.try_get("text")?,
                    asr_latency_ms: row.try_get("asr_latency_ms")?,
                })
            })
            .collect()
    }

    /// Writes one of the agent's turns.
    pub async fn agent_turn(&self, record_id: &str, t: &AgentTurn) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agent_turns (record_id, seq, caller_end_ms, caller_text, intent, started_on, \
             end_declared_ms, asr_final_ms, llm_first_token_ms, first_phrase_ms, tts_first_audio_ms, first_rtp_ms, \
             barge_in_onset_ms, barge_in_stop_ms, llm_prompt_read) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(record_id)
        .bind(t.seq)
        .bind(t.caller_end_ms)
        .bind(&t.caller_text)
        .bind(&t.intent)
        .bind(&t.started_on)
        .bind(t.end_declared_ms)
        .bind(t.asr_final_ms)
        .bind(t.llm_first_token_ms)
        .bind(t.first_phrase_ms)
        .bind(t.tts_first_audio_ms)
        .bind(t.first_rtp_ms)
        .bind(t.barge_in_onset_ms)
        .bind(t.barge_in_stop_ms)
        .bind(t.llm_prompt_read)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A call's agent turns, in order.
    pub async fn agent_turns(&self, record_id: &str) -> Result<Vec<AgentTurn>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, caller_end_ms, caller_text, intent, started_on, end_declared_ms, asr_final_ms, \
             llm_first_token_ms, first_phrase_ms, tts_first_audio_ms, first_rtp_ms, barge_in_onset_ms, \
             barge_in_stop_ms, llm_prompt_read FROM agent_turns WHERE record_id = $1 ORDER BY seq",
        )
        .bind(record_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AgentTurn {
                    seq: row.try_get("seq")?,
                    caller_end_ms: row.try_get("caller_end_ms")?,
                    caller_text: row.try_get("caller_text")?,
                    intent: row.try_get("intent")?,
                    started_on: row.try_get("started_on")?,
                    end_declared_ms: row.try_get("end_declared_ms")?,
                    asr_final_ms: row.try_get("asr_final_ms")?,
                    llm_first_token_ms: row.try_get("llm_first_token_ms")?,
                    llm_prompt_read: row.try_get("llm_prompt_read")?,
                    first_phrase_ms: row.try_get("first_phrase_ms")?,
                    tts_first_audio_ms: row.try_get("tts_first_audio_ms")?,
                    first_rtp_ms: row.try_get("first_rtp_ms")?,
                    barge_in_onset_ms: row.try_get("barge_in_onset_ms")?,
                    barge_in_stop_ms: row.try_get("barge_in_stop_ms")?,
                })
            })
            .collect()
    }

    /// Writes a flow step a call reached.
    pub async fn flow_step(&self, record_id: &str, f: &FlowStep) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO flow_steps (record_id, seq, flow, step, via, at_ms) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(record_id)
            .bind(f.seq)
            .bind(&f.flow)
            .bind(&f.step)
            .bind(&f.via)
            .bind(f.at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The flow steps a call reached, in order.
    pub async fn flow_steps(&self, record_id: &str) -> Result<Vec<FlowStep>, StoreError> {
        let rows = sqlx::query("SELECT seq, flow, step, via, at_ms FROM flow_steps WHERE record_id = $1 ORDER BY seq")
            .bind(record_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(FlowStep {
                    seq: row.try_get("seq")?,
                    flow: row.try_get("flow")?,
                    step: row.try_get("step")?,
                    via: row.try_get("via")?,
                    at_ms: row.try_get("at_ms")?,
                })
            })
            .collect()
    }

    /// Writes a tool call a call made, once it answered or failed.
    pub async fn tool_call(&self, record_id: &str, t: &ToolUse) -> Result<(), StoreError> {
        let args = serde_json::to_string(&t.args).map_err(|e| StoreError::Corrupt(format!("tool_calls.args: {e}")))?;
        sqlx::query(
            "INSERT INTO tool_calls (record_id, seq, tool, args, ok, error, at_ms, took_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(record_id)
        .bind(t.seq)
        .bind(&t.tool)
        .bind(args)
        .bind(i64::from(t.ok))
        .bind(&t.error)
        .bind(t.at_ms)
        .bind(t.took_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The tools a call called, in order.
    pub async fn tool_calls(&self, record_id: &str) -> Result<Vec<ToolUse>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, tool, args, ok, error, at_ms, took_ms FROM tool_calls WHERE record_id = $1 ORDER BY seq",
        )
        .bind(record_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let args: String = row.try_get("args")?;
                Ok(ToolUse {
                    seq: row.try_get("seq")?,
                    tool: row.try_get("tool")?,
                    args: serde_json::from_str(&args)
                        .map_err(|e| StoreError::Corrupt(format!("tool_calls.args: {e}")))?,
                    ok: row.try_get::<i64, _>("ok")? != 0,
                    error: row.try_get("error")?,
                    at_ms: row.try_get("at_ms")?,
                    took_ms: row.try_get("took_ms")?,
                })
            })
            .collect()
    }

    /// Closes the pool, waiting for pending writes.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl CallRecord {
    fn from_row(row: &AnyRow) -> Result<CallRecord, StoreError> {
        Ok(CallRecord {
            id: row.try_get("id")?,
            node: row.try_get("node")?,
            call_id: row.try_get("call_id")?,
            direction: row.try_get("direction")?,
            from_uri: row.try_get("from_uri")?,
            to_uri: row.try_get("to_uri")?,
            source_addr: row.try_get("source_addr")?,
            trunk: row.try_get("trunk")?,
            route: row.try_get("route")?,
            handler: row.try_get("handler")?,
            codec: row.try_get("codec")?,
            srtp: row.try_get("srtp")?,
            channel: row.try_get("channel")?,
            status: row.try_get("status")?,
            invite_at: row.try_get("invite_at")?,
            answer_at: row.try_get("answer_at")?,
            end_at: row.try_get("end_at")?,
            end_reason: row.try_get("end_reason")?,
            hangup_by: row.try_get("hangup_by")?,
            sip_status: row.try_get("sip_status")?,
            recording_path: row.try_get("recording_path")?,
            packets_sent: row.try_get("packets_sent")?,
            packets_received: row.try_get("packets_received")?,
            packets_lost: row.try_get("packets_lost")?,
            jitter_ms: row.try_get("jitter_ms")?,
            rtt_ms: row.try_get("rtt_ms")?,
            remote_lost: row.try_get("remote_lost")?,
            remote_jitter_ms: row.try_get("remote_jitter_ms")?,
            detail: row.try_get("detail")?,
            outcome: row.try_get("outcome")?,
            amd: row.try_get("amd")?,
            amd_ms: row.try_get("amd_ms")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_url_names_the_store() {
        let err = CallStore::open("postgres://u:secret@127.0.0.1:1/none", "n")
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cannot open call store"), "{msg}");
        assert!(!msg.contains("secret"), "password leaked: {msg}");
    }
}
