//! Quality inspection results: a call queued for analysis when it ends,
//! leased by one node's worker at a time (a lease left by a stopped node
//! runs out), then its score, verdict and each item's verdict.

use crate::{now_ms, CallStore, StoreError};
use sqlx::{AssertSqlSafe, Row};

/// A call's analysis as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AnalysisRow {
    /// The call record.
    pub record_id: String,
    /// The scorecard file it is scored against.
    pub scorecard: String,
    /// pending, running, done or failed.
    pub state: String,
    /// When it was queued (ms since the epoch).
    pub queued_at: i64,
    /// Tries so far.
    pub attempts: i32,
    /// When it was scored.
    pub analyzed_at: Option<i64>,
    /// The score, 0–100 (none when nothing could be judged).
    pub score: Option<f64>,
    /// Whether the call passed.
    pub passed: Option<bool>,
    /// The whole score (items, verdicts, evidence) as JSON text.
    #[serde(skip)]
    pub result: Option<String>,
    /// The call's summary as JSON text.
    #[serde(skip)]
    pub summary: Option<String>,
    /// Why the last try failed.
    pub error: Option<String>,
}

/// A scored call as listed: its analysis and the call it belongs to (read
/// in the same query).
#[derive(Debug, Clone, PartialEq)]
pub struct ListedAnalysis {
    /// The analysis.
    pub analysis: AnalysisRow,
    /// The call's SIP Call-ID (none when its record is gone).
    pub call_id: Option<String>,
    /// The route it took.
    pub route: Option<String>,
}

/// One item's verdict, as stored for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemVerdict {
    /// The item's id.
    pub item: String,
    /// pass, fail, na or unsure.
    pub verdict: String,
    /// A critical item.
    pub critical: bool,
}

/// One item's verdicts over many calls.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemTally {
    /// The item's id.
    pub item: String,
    /// A critical item.
    pub critical: bool,
    /// Calls it passed.
    pub passed: i64,
    /// Calls it failed.
    pub failed: i64,
    /// Calls it did not apply to.
    pub not_applicable: i64,
    /// Calls left to a person.
    pub unsure: i64,
}

/// Which analysed calls to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalysisFilter {
    /// Only these verdicts (true: passed).
    pub passed: Option<bool>,
    /// Score at least.
    pub min_score: Option<f64>,
    /// Score at most.
    pub max_score: Option<f64>,
    /// Only calls where this item failed.
    pub failed_item: Option<String>,
    /// Scored at or after (ms since the epoch).
    pub since: Option<i64>,
    /// Scored before.
    pub until: Option<i64>,
    /// At most this many, newest first.
    pub limit: i64,
    /// Lowest score first instead of newest first.
    pub worst_first: bool,
}

const COLUMNS: &str =
    "record_id, scorecard, state, queued_at, attempts, analyzed_at, score, passed, result, summary, error";

fn row(r: &sqlx::any::AnyRow) -> Result<AnalysisRow, StoreError> {
    Ok(AnalysisRow {
        record_id: r.try_get("record_id")?,
        scorecard: r.try_get("scorecard")?,
        state: r.try_get("state")?,
        queued_at: r.try_get("queued_at")?,
        attempts: r.try_get("attempts")?,
        analyzed_at: r.try_get("analyzed_at")?,
        score: r.try_get("score")?,
        passed: r.try_get::<Option<i32>, _>("passed")?.map(|p| p != 0),
        result: r.try_get("result")?,
        summary: r.try_get("summary")?,
        error: r.try_get("error")?,
    })
}

impl CallStore {
    /// Queues a finished call for scoring against `scorecard` (again from
    /// the start when it was queued before).
    pub async fn queue_analysis(&self, record_id: &str, scorecard: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM call_analysis_items WHERE record_id = $1")
            .bind(record_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM call_analysis WHERE record_id = $1")
            .bind(record_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO call_analysis (record_id, scorecard, state, queued_at, attempts) VALUES ($1, $2, 'pending', $3, 0)",
        )
        .bind(record_id)
        .bind(scorecard)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the oldest queued call (or one whose worker's lease ran out)
    /// until `lease_until` (ms); `None` when none waits. A call whose
    /// workers stopped midway `max_attempts` times is given up first (a
    /// call that crashes its scorer must not take every node down in turn).
    pub async fn lease_analysis(&self, lease_until: i64, max_attempts: i32) -> Result<Option<AnalysisRow>, StoreError> {
        self.lease_next("call_analysis", COLUMNS, lease_until, max_attempts)
            .await?
            .as_ref()
            .map(row)
            .transpose()
    }

    /// Leases the oldest row of a work queue `table` (`record_id`, `state`,
    /// `queued_at`, `attempts`, `lease_node`, `lease_until`, `error`) until
    /// `lease_until`, returning `columns`; a row whose workers stopped
    /// midway `max_attempts` times is given up first.
    pub(crate) async fn lease_next(
        &self,
        table: &str,
        columns: &str,
        lease_until: i64,
        max_attempts: i32,
    ) -> Result<Option<sqlx::any::AnyRow>, StoreError> {
        let give_up = format!(
            "UPDATE {table} SET state = 'failed', error = 'the worker stopped while on it, every try', \
             lease_node = NULL, lease_until = NULL WHERE state = 'running' AND lease_until < $1 AND attempts >= $2"
        );
        sqlx::query(AssertSqlSafe(give_up))
            .bind(now_ms())
            .bind(max_attempts)
            .execute(&self.pool)
            .await?;
        let lock = if self.postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE {table} SET state = 'running', attempts = attempts + 1, lease_node = $1, lease_until = $2 \
             WHERE record_id = (SELECT record_id FROM {table} WHERE state = 'pending' \
             OR (state = 'running' AND lease_until < $3) ORDER BY queued_at, record_id LIMIT 1{lock}) \
             AND state IN ('pending', 'running') RETURNING {columns}"
        );
        Ok(sqlx::query(AssertSqlSafe(sql))
            .bind(&self.node)
            .bind(lease_until)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A call scored: its score, verdict, the whole result, its summary
    /// (JSON) and each item's verdict.
    pub async fn analysis_done(
        &self,
        record_id: &str,
        score: Option<f64>,
        passed: bool,
        result: &str,
        summary: Option<&str>,
        items: &[ItemVerdict],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM call_analysis_items WHERE record_id = $1")
            .bind(record_id)
            .execute(&mut *tx)
            .await?;
        for i in items {
            sqlx::query("INSERT INTO call_analysis_items (record_id, item, verdict, critical) VALUES ($1, $2, $3, $4)")
                .bind(record_id)
                .bind(&i.item)
                .bind(&i.verdict)
                .bind(i32::from(i.critical))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE call_analysis SET state = 'done', analyzed_at = $1, score = $2, passed = $3, result = $4, \
             summary = $5, error = NULL, lease_node = NULL, lease_until = NULL WHERE record_id = $6",
        )
        .bind(now_ms())
        .bind(score)
        .bind(i32::from(passed))
        .bind(result)
        .bind(summary)
        .bind(record_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A try that failed: queued again, or given up (`retry: false`).
    pub async fn analysis_failed(&self, record_id: &str, error: &str, retry: bool) -> Result<(), StoreError> {
        self.try_failed("call_analysis", record_id, error, retry).await
    }

    /// A try at a row of work queue `table` that failed: queued again, or
    /// given up (`retry: false`), with its error; the lease is let go.
    pub(crate) async fn try_failed(
        &self,
        table: &str,
        record_id: &str,
        error: &str,
        retry: bool,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE {table} SET state = $1, error = $2, lease_node = NULL, lease_until = NULL WHERE record_id = $3"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(if retry { "pending" } else { "failed" })
            .bind(error)
            .bind(record_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A call's analysis, if it was queued.
    pub async fn analysis(&self, record_id: &str) -> Result<Option<AnalysisRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM call_analysis WHERE record_id = $1");
        sqlx::query(AssertSqlSafe(sql))
            .bind(record_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(row)
            .transpose()
    }

    /// Scored calls matching `f`, newest (or lowest scored) first.
    pub async fn analyses(&self, f: &AnalysisFilter) -> Result<Vec<ListedAnalysis>, StoreError> {
        let order = if f.worst_first {
            "CASE WHEN score IS NULL THEN 1 ELSE 0 END, score, analyzed_at DESC"
        } else {
            "analyzed_at DESC"
        };
        let sql = format!(
            "SELECT {COLUMNS}, c.call_id AS call_id, c.route AS route \
             FROM call_analysis LEFT JOIN calls c ON c.id = call_analysis.record_id WHERE state = 'done' \
             AND ($1 < 0 OR passed = $1) AND ($2 < 0 OR score >= $2) AND ($3 < 0 OR score <= $3) \
             AND ($4 = '' OR record_id IN (SELECT record_id FROM call_analysis_items WHERE item = $4 AND verdict = 'fail')) \
             AND analyzed_at >= $5 AND analyzed_at < $6 \
             ORDER BY {order}, record_id LIMIT $7"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(f.passed.map_or(-1, i32::from))
            .bind(f.min_score.unwrap_or(-1.0))
            .bind(f.max_score.unwrap_or(-1.0))
            .bind(f.failed_item.clone().unwrap_or_default())
            .bind(f.since.unwrap_or(0))
            .bind(f.until.unwrap_or(i64::MAX))
            .bind(f.limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(ListedAnalysis {
                    analysis: row(r)?,
                    call_id: r.try_get("call_id")?,
                    route: r.try_get("route")?,
                })
            })
            .collect()
    }

    /// Each item's verdicts over the calls scored in `[since, until)`.
    pub async fn item_tallies(&self, since: i64, until: i64) -> Result<Vec<ItemTally>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.item AS item, MAX(i.critical) AS critical, \
             SUM(CASE WHEN i.verdict = 'pass' THEN 1 ELSE 0 END) AS passed, \
             SUM(CASE WHEN i.verdict = 'fail' THEN 1 ELSE 0 END) AS failed, \
             SUM(CASE WHEN i.verdict = 'na' THEN 1 ELSE 0 END) AS na, \
             SUM(CASE WHEN i.verdict = 'unsure' THEN 1 ELSE 0 END) AS unsure \
             FROM call_analysis_items i JOIN call_analysis a ON a.record_id = i.record_id \
             WHERE a.state = 'done' AND a.analyzed_at >= $1 AND a.analyzed_at < $2 GROUP BY i.item ORDER BY i.item",
        )
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ItemTally {
                    item: r.try_get("item")?,
                    critical: r.try_get::<i64, _>("critical")? != 0,
                    passed: r.try_get("passed")?,
                    failed: r.try_get("failed")?,
                    not_applicable: r.try_get("na")?,
                    unsure: r.try_get("unsure")?,
                })
            })
            .collect()
    }
}
