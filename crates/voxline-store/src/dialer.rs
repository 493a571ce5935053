//! The dialer's state: a node's lease on the contact it dials (one UPDATE,
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two nodes never take the same
//! contact), each attempt written before its INVITE leaves and completed
//! with the contact's next step in one transaction, and what a stopped node
//! left half-done. The rules (windows, pacing, retries) live in
//! `voxline-campaign`.

use crate::campaign::campaign_row;
use crate::{now_ms, CallStore, CampaignRow, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// A campaign contact as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    /// Its campaign.
    pub campaign_id: String,
    /// Its place in the campaign (import order).
    pub seq: i64,
    /// E.164 number.
    pub number: String,
    /// IANA time zone.
    pub tz: String,
    /// Its variables (a JSON object).
    pub variables: String,
    /// The line of the file it came from.
    pub source_line: i64,
    /// `pending`, `dialing` or `done`.
    pub state: String,
    /// Attempts started.
    pub attempts: i32,
    /// When it may be dialled next (ms).
    pub next_at: i64,
    /// Its final disposition, once `done`.
    pub disposition: Option<String>,
    /// The last attempt's SIP status, when it had one.
    pub sip_status: Option<i32>,
    /// How the last attempt ended.
    pub last_result: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptEnd {
    /// `answered`, `busy`, `no_answer`, `rejected`, `failed`, `interrupted`…
    pub result: String,
    /// The final SIP status, when there was one.
    pub sip_status: Option<u16>,
    /// The conversation's outcome on an answered call.
    pub outcome: Option<String>,
}

/// What becomes of a contact after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// Dialled again from this time (ms).
    Retry {
        /// When.
        at: i64,
    },
    /// Done, with this disposition.
    Final {
        /// Its final disposition.
        disposition: String,
    },
}

/// A contact a node was dialling when it stopped, with what the store
/// knows of its last attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftDialing {
    /// The contact.
    pub contact: ContactRow,
    /// Its last attempt's Call-ID, when the attempt was written (its INVITE
    /// may then have left); `None`: it never was, so nobody was called.
    pub call_id: Option<String>,
    /// The attempt's call was answered (its record says so).
    pub answered: bool,
    /// The outcome the conversation had given before the stop.
    pub outcome: Option<String>,
}

// The SQL built with `format!` below joins only these constants and fixed
// clauses (`AssertSqlSafe`): no value is ever formatted into it.
const CONTACT_COLUMNS: &str = "campaign_id, seq, number, tz, variables, source_line, state, attempts, next_at, \
     disposition, sip_status, last_result";

fn contact(r: &AnyRow) -> Result<ContactRow, StoreError> {
    Ok(ContactRow {
        campaign_id: r.try_get("campaign_id")?,
        seq: r.try_get("seq")?,
        number: r.try_get("number")?,
        tz: r.try_get("tz")?,
        variables: r.try_get("variables")?,
        source_line: r.try_get("source_line")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        next_at: r.try_get("next_at")?,
        disposition: r.try_get("disposition")?,
        sip_status: r.try_get("sip_status")?,
        last_result: r.try_get("last_result")?,
    })
}

impl CallStore {
    /// This node's name (the rows it writes and the leases it holds).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Records the outcome a call's conversation gave it (written at once,
    /// so a crash after it keeps it).
    pub async fn call_outcome(&self, record_id: &str, outcome: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE calls SET outcome = $1 WHERE id = $2")
            .bind(outcome)
            .bind(record_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records who answered an outbound call (`human: why`, `machine: why`)
    /// and when it was decided, ms after the answer.
    pub async fn call_amd(&self, record_id: &str, verdict: &str, at_ms: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE calls SET amd = $1, amd_ms = $2 WHERE id = $3")
            .bind(verdict)
            .bind(at_ms as i64)
            .bind(record_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every campaign, newest first.
    pub async fn campaigns(&self) -> Result<Vec<CampaignRow>, StoreError> {
        sqlx::query("SELECT id, name, route, settings, state, created_at FROM campaigns ORDER BY created_at DESC, name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(campaign_row)
            .collect()
    }

    /// The campaign with id `id`, if any.
    pub async fn campaign_by_id(&self, id: &str) -> Result<Option<CampaignRow>, StoreError> {
        sqlx::query("SELECT id, name, route, settings, state, created_at FROM campaigns WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(campaign_row)
            .transpose()
    }

    /// Moves campaign `id` to `to` when it is in one of `from`; false when
    /// it was not (another writer moved it first, or the move is not allowed).
    pub async fn set_campaign_state(&self, id: &str, from: &[&str], to: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now: Option<String> = sqlx::query_scalar("SELECT state FROM campaigns WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(now) = now else {
            return Ok(false);
        };
        if !from.contains(&now.as_str()) {
            return Ok(false);
        }
        let n = sqlx::query("UPDATE campaigns SET state = $1 WHERE id = $2 AND state = $3")
            .bind(to)
            .bind(id)
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Takes the next contact of `campaign_id` due by now for this node,
    /// until `lease_until` (ms): its state becomes `dialing`. `None` when
    /// none is due. One statement: on PostgreSQL the row is taken with
    /// `FOR UPDATE SKIP LOCKED`, on SQLite the write lock serialises it.
    pub async fn lease_contact(&self, campaign_id: &str, lease_until: i64) -> Result<Option<ContactRow>, StoreError> {
        let lock = if self.postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE campaign_contacts SET state = 'dialing', lease_node = $1, lease_until = $2, updated_at = $3 \
             WHERE campaign_id = $4 AND state = 'pending' AND seq = (SELECT seq FROM campaign_contacts \
             WHERE campaign_id = $4 AND state = 'pending' AND next_at <= $3 ORDER BY next_at, seq LIMIT 1{lock}) \
             RETURNING {CONTACT_COLUMNS}"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(&self.node)
            .bind(lease_until)
            .bind(now_ms())
            .bind(campaign_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(contact)
            .transpose()
    }

    /// Gives a leased contact back undialled, due again at `next_at` (its
    /// window is closed now).
    pub async fn release_contact(&self, campaign_id: &str, seq: i64, next_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE campaign_contacts SET state = 'pending', next_at = $1, lease_node = NULL, lease_until = NULL, \
             updated_at = $2 WHERE campaign_id = $3 AND seq = $4 AND state = 'dialing'",
        )
        .bind(next_at)
        .bind(now_ms())
        .bind(campaign_id)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes attempt number `attempt` of a leased contact before its INVITE
    /// leaves: after a crash the store knows the number may have rung.
    pub async fn attempt_started(&self, contact: &ContactRow, attempt: i32, call_id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        sqlx::query(
            "UPDATE campaign_contacts SET attempts = $1, updated_at = $2 WHERE campaign_id = $3 AND seq = $4 \
             AND state = 'dialing'",
        )
        .bind(attempt)
        .bind(now)
        .bind(&contact.campaign_id)
        .bind(contact.seq)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO campaign_attempts (campaign_id, seq, attempt, call_id, node, number, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&contact.campaign_id)
        .bind(contact.seq)
        .bind(attempt)
        .bind(call_id)
        .bind(&self.node)
        .bind(&contact.number)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Completes attempt `attempt` of a contact and moves the contact on
    /// (due again, or done with its disposition), in one transaction.
    pub async fn attempt_ended(
        &self,
        campaign_id: &str,
        seq: i64,
        attempt: i32,
        end: &AttemptEnd,
        next: &NextStep,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        sqlx::query(
            "UPDATE campaign_attempts SET ended_at = $1, result = $2, sip_status = $3, outcome = $4 \
             WHERE campaign_id = $5 AND seq = $6 AND attempt = $7",
        )
        .bind(now)
        .bind(&end.result)
        .bind(end.sip_status.map(i32::from))
        .bind(end.outcome.as_deref())
        .bind(campaign_id)
        .bind(seq)
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
        move_on(&mut tx, campaign_id, seq, next, end.sip_status, Some(&end.result), now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes back attempt `attempt`, whose INVITE never left (the node shut
    /// down first): its row is removed and the contact is due again at once
    /// with the attempts it had.
    pub async fn attempt_withdrawn(&self, campaign_id: &str, seq: i64, attempt: i32) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM campaign_attempts WHERE campaign_id = $1 AND seq = $2 AND attempt = $3")
            .bind(campaign_id)
            .bind(seq)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        let now = now_ms();
        sqlx::query(
            "UPDATE campaign_contacts SET state = 'pending', attempts = $1, next_at = $2, lease_node = NULL, \
             lease_until = NULL, updated_at = $2 WHERE campaign_id = $3 AND seq = $4",
        )
        .bind(attempt - 1)
        .bind(now)
        .bind(campaign_id)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A leased contact done without an attempt (on a do-not-call list, its
    /// window will not open again).
    pub async fn finish_contact(&self, campaign_id: &str, seq: i64, disposition: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let next = NextStep::Final {
            disposition: disposition.to_string(),
        };
        move_on(&mut tx, campaign_id, seq, &next, None, None, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Contacts of `campaign_id` left `dialing`: by this node (`mine`, at
    /// its start, when none of its calls can still be up), else by other
    /// nodes whose lease ran out before `now`.
    pub async fn left_dialing(&self, campaign_id: &str, mine: bool, now: i64) -> Result<Vec<LeftDialing>, StoreError> {
        let whose = if mine {
            "c.lease_node = $2"
        } else {
            "c.lease_node <> $2 AND c.lease_until < $3"
        };
        let sql = format!(
            "SELECT c.campaign_id, c.seq, c.number, c.tz, c.variables, c.source_line, c.state, c.attempts, c.next_at, \
             c.disposition, c.sip_status, c.last_result, a.call_id AS attempt_call_id, \
             (SELECT MAX(k.answer_at) FROM calls k WHERE k.call_id = a.call_id AND k.direction = 'outbound') AS answered_at, \
             (SELECT MAX(k.outcome) FROM calls k WHERE k.call_id = a.call_id AND k.direction = 'outbound') AS call_outcome \
             FROM campaign_contacts c LEFT JOIN campaign_attempts a ON a.campaign_id = c.campaign_id \
             AND a.seq = c.seq AND a.attempt = c.attempts AND a.ended_at IS NULL \
             WHERE c.campaign_id = $1 AND c.state = 'dialing' AND {whose} AND $3 >= 0 ORDER BY c.seq"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(campaign_id)
            .bind(&self.node)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LeftDialing {
                    contact: contact(r)?,
                    call_id: r.try_get("attempt_call_id")?,
                    answered: r.try_get::<Option<i64>, _>("answered_at")?.is_some(),
                    outcome: r.try_get("call_outcome")?,
                })
            })
            .collect()
    }

    /// When the next pending contact of `campaign_id` falls due (ms), if
    /// any is pending.
    pub async fn next_due(&self, campaign_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_at) FROM campaign_contacts WHERE campaign_id = $1 AND state = 'pending'",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Contacts of `campaign_id` not `done` yet.
    pub async fn open_contacts(&self, campaign_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM campaign_contacts WHERE campaign_id = $1 AND state <> 'done'")
                .bind(campaign_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Attempts of `campaign_id` started since `since` (ms).
    pub async fn attempts_since(&self, campaign_id: &str, since: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM campaign_attempts WHERE campaign_id = $1 AND started_at >= $2")
                .bind(campaign_id)
                .bind(since)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// A campaign's attempts over time: per span of `bucket_ms` (its start,
    /// ms since the epoch) and result (the conversation's outcome when it
    /// gave one, else how the call ended, `under_way` while it lasts), how
    /// many; oldest first.
    pub async fn attempts_over_time(
        &self,
        campaign_id: &str,
        bucket_ms: i64,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT (started_at / $2) * $2 AS span, COALESCE(outcome, result, 'under_way') AS result, COUNT(*) AS n \
             FROM campaign_attempts WHERE campaign_id = $1 GROUP BY span, COALESCE(outcome, result, 'under_way') \
             ORDER BY span, result",
        )
        .bind(campaign_id)
        .bind(bucket_ms.max(1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("span")?, r.try_get("result")?, r.try_get("n")?)))
            .collect()
    }

    /// The campaign attempt a call was (campaign id, contact seq, attempt), if it was one.
    pub async fn attempt_of_call(&self, call_id: &str) -> Result<Option<(String, i64, i32)>, StoreError> {
        sqlx::query("SELECT campaign_id, seq, attempt FROM campaign_attempts WHERE call_id = $1")
            .bind(call_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| Ok((r.try_get("campaign_id")?, r.try_get("seq")?, r.try_get("attempt")?)))
            .transpose()
    }

    /// Up to `limit` contacts of `campaign_id` after `after_seq`, in order.
    pub async fn contacts_page(
        &self,
        campaign_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<ContactRow>, StoreError> {
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM campaign_contacts WHERE campaign_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(campaign_id)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(contact)
            .collect()
    }

    /// The Call-IDs of every attempt of `campaign_id` so far, with the
    /// contact's seq and number and the attempt's result (`None` while under way).
    pub async fn attempts(
        &self,
        campaign_id: &str,
    ) -> Result<Vec<(i64, i32, String, String, Option<String>)>, StoreError> {
        sqlx::query(
            "SELECT seq, attempt, call_id, number, result FROM campaign_attempts WHERE campaign_id = $1 \
             ORDER BY seq, attempt",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("seq")?,
                r.try_get("attempt")?,
                r.try_get("call_id")?,
                r.try_get("number")?,
                r.try_get("result")?,
            ))
        })
        .collect()
    }
}

/// Moves a contact on after an attempt (or without one), its lease cleared.
async fn move_on(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    campaign_id: &str,
    seq: i64,
    next: &NextStep,
    sip_status: Option<u16>,
    result: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let (state, next_at, disposition) = match next {
        NextStep::Retry { at } => ("pending", *at, None),
        NextStep::Final { disposition } => ("done", now, Some(disposition.as_str())),
    };
    sqlx::query(
        "UPDATE campaign_contacts SET state = $1, next_at = $2, disposition = $3, \
         sip_status = COALESCE($4, sip_status), last_result = COALESCE($5, last_result), lease_node = NULL, \
         lease_until = NULL, updated_at = $6 WHERE campaign_id = $7 AND seq = $8",
    )
    .bind(state)
    .bind(next_at)
    .bind(disposition)
    .bind(sip_status.map(i32::from))
    .bind(result)
    .bind(now)
    .bind(campaign_id)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
