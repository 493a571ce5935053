//! Training sessions: a call between a human trainee and the bot playing a
//! scenario's customer, queued for its report when it ends, leased by one
//! node's worker at a time (like quality inspection), then holding the
//! trainee's report. Listed per trainee.

use crate::{now_ms, CallStore, StoreError};
use sqlx::{AssertSqlSafe, Row};

/// A training session as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrainingRow {
    /// The call record.
    pub record_id: String,
    /// Who was trained.
    pub trainee: String,
    /// The scenario's name.
    pub scenario: String,
    /// The scenario's file.
    pub scenario_file: String,
    /// pending, running, done or failed.
    pub state: String,
    /// When it was queued (ms since the epoch).
    pub queued_at: i64,
    /// Tries so far.
    pub attempts: i32,
    /// When its report was written.
    pub reported_at: Option<i64>,
    /// The trainee's score, 0–100 (none when nothing could be judged).
    pub score: Option<f64>,
    /// Whether the trainee passed the scenario's scorecard.
    pub passed: Option<bool>,
    /// How the customer left: satisfied, angry (none: the trainee hung up).
    pub outcome: Option<String>,
    /// The report as JSON text.
    #[serde(skip)]
    pub report: Option<String>,
    /// Why the last try failed.
    pub error: Option<String>,
}

/// A session as listed, with its call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ListedTraining {
    /// The session.
    #[serde(flatten)]
    pub session: TrainingRow,
    /// The call's SIP Call-ID (none when its record is gone).
    pub call_id: Option<String>,
    /// The route it took.
    pub route: Option<String>,
    /// When the call was answered (ms since the epoch).
    pub started_at: Option<i64>,
}

/// Which sessions to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainingFilter {
    /// Only this trainee's.
    pub trainee: Option<String>,
    /// Only this scenario's.
    pub scenario: Option<String>,
    /// At most this many, newest first.
    pub limit: i64,
}

const COLUMNS: &str = "record_id, trainee, scenario, scenario_file, state, queued_at, attempts, reported_at, \
                       score, passed, outcome, report, error";

fn row(r: &sqlx::any::AnyRow) -> Result<TrainingRow, StoreError> {
    Ok(TrainingRow {
        record_id: r.try_get("record_id")?,
        trainee: r.try_get("trainee")?,
        scenario: r.try_get("scenario")?,
        scenario_file: r.try_get("scenario_file")?,
        state: r.try_get("state")?,
        queued_at: r.try_get("queued_at")?,
        attempts: r.try_get("attempts")?,
        reported_at: r.try_get("reported_at")?,
        score: r.try_get("score")?,
        passed: r.try_get::<Option<i32>, _>("passed")?.map(|p| p != 0),
        outcome: r.try_get("outcome")?,
        report: r.try_get("report")?,
        error: r.try_get("error")?,
    })
}

impl CallStore {
    /// Queues a finished training call for its report (again from the
    /// start when it was queued before).
    pub async fn queue_training(
        &self,
        record_id: &str,
        trainee: &str,
        scenario: &str,
        scenario_file: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM training_sessions WHERE record_id = $1")
            .bind(record_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO training_sessions (record_id, trainee, scenario, scenario_file, state, queued_at, attempts) \
             VALUES ($1, $2, $3, $4, 'pending', $5, 0)",
        )
        .bind(record_id)
        .bind(trainee)
        .bind(scenario)
        .bind(scenario_file)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the oldest queued session (or one whose worker's lease ran
    /// out) until `lease_until` (ms); `None` when none waits.
    pub async fn lease_training(&self, lease_until: i64, max_attempts: i32) -> Result<Option<TrainingRow>, StoreError> {
        self.lease_next("training_sessions", COLUMNS, lease_until, max_attempts)
            .await?
            .as_ref()
            .map(row)
            .transpose()
    }

    /// A session's report written: the score, verdict, how the customer
    /// left and the report (JSON).
    pub async fn training_done(
        &self,
        record_id: &str,
        score: Option<f64>,
        passed: bool,
        outcome: Option<&str>,
        report: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE training_sessions SET state = 'done', reported_at = $1, score = $2, passed = $3, outcome = $4, \
             report = $5, error = NULL, lease_node = NULL, lease_until = NULL WHERE record_id = $6",
        )
        .bind(now_ms())
        .bind(score)
        .bind(i32::from(passed))
        .bind(outcome)
        .bind(report)
        .bind(record_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A try that failed: queued again, or given up (`retry: false`).
    pub async fn training_failed(&self, record_id: &str, error: &str, retry: bool) -> Result<(), StoreError> {
        self.try_failed("training_sessions", record_id, error, retry).await
    }

    /// A call's training session, if it was one.
    pub async fn training_session(&self, record_id: &str) -> Result<Option<TrainingRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM training_sessions WHERE record_id = $1");
        sqlx::query(AssertSqlSafe(sql))
            .bind(record_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(row)
            .transpose()
    }

    /// Sessions matching `f`, newest first.
    pub async fn training_sessions(&self, f: &TrainingFilter) -> Result<Vec<ListedTraining>, StoreError> {
        // The calls table has columns of the same names (outcome).
        let columns: Vec<String> = COLUMNS.split(',').map(|c| format!("t.{}", c.trim())).collect();
        let sql = format!(
            "SELECT {}, c.call_id AS call_id, c.route AS route, c.answer_at AS started_at \
             FROM training_sessions t LEFT JOIN calls c ON c.id = t.record_id \
             WHERE ($1 = '' OR t.trainee = $1) AND ($2 = '' OR t.scenario = $2) \
             ORDER BY t.queued_at DESC, t.record_id LIMIT $3",
            columns.join(", ")
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(f.trainee.clone().unwrap_or_default())
            .bind(f.scenario.clone().unwrap_or_default())
            .bind(f.limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(ListedTraining {
                    session: row(r)?,
                    call_id: r.try_get("call_id")?,
                    route: r.try_get("route")?,
                    started_at: r.try_get("started_at")?,
                })
            })
            .collect()
    }
}
