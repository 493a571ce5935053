//! The webhook outbox: deliveries written before they are sent, leased by
//! one node's worker at a time, retried until delivered or given up.

use crate::{now_ms, CallStore, StoreError};
use sqlx::{AssertSqlSafe, Row};

/// A delivery to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Its id (the receiver sees it, to drop a repeat).
    pub id: String,
    /// `""` for a receiver of the configuration, else the campaign's id.
    pub owner: String,
    /// Where it goes.
    pub url: String,
    /// `call.answered`, `call.ended`, `campaign.finished`.
    pub event: String,
    /// The JSON body, as it is signed and sent.
    pub body: String,
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id.
    pub id: String,
    /// `""` or a campaign's id.
    pub owner: String,
    /// Where it goes.
    pub url: String,
    /// The event.
    pub event: String,
    /// The JSON body.
    pub body: String,
    /// pending, sending, delivered or failed.
    pub state: String,
    /// Tries so far.
    pub attempts: i32,
    /// The receiver's last HTTP status.
    pub last_status: Option<i32>,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// When it was written (ms since the epoch).
    pub created_at: i64,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
}

const COLUMNS: &str = "id, owner, url, event, body, state, attempts, last_status, last_error, created_at, delivered_at";

fn delivery(r: &sqlx::any::AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.try_get("id")?,
        owner: r.try_get("owner")?,
        url: r.try_get("url")?,
        event: r.try_get("event")?,
        body: r.try_get("body")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        last_status: r.try_get("last_status")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

impl CallStore {
    /// Writes deliveries (one transaction), due at once.
    pub async fn enqueue_webhooks(&self, deliveries: &[NewDelivery]) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        for d in deliveries {
            sqlx::query(
                "INSERT INTO webhook_outbox (id, owner, url, event, body, created_at, state, next_at, attempts) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', $6, 0)",
            )
            .bind(&d.id)
            .bind(&d.owner)
            .bind(&d.url)
            .bind(&d.event)
            .bind(&d.body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Takes the next delivery due (or one whose sender's lease ran out)
    /// until `lease_until` (ms); `None` when none is due. A receiver with
    /// `per_url` deliveries being sent already is skipped: one that is slow
    /// to answer holds up no other.
    pub async fn lease_webhook(&self, lease_until: i64, per_url: i64) -> Result<Option<Delivery>, StoreError> {
        let lock = if self.postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE webhook_outbox SET state = 'sending', attempts = attempts + 1, lease_node = $1, lease_until = $2 \
             WHERE id = (SELECT id FROM webhook_outbox WHERE ((state = 'pending' AND next_at <= $3) \
             OR (state = 'sending' AND lease_until < $3)) AND url NOT IN (SELECT url FROM webhook_outbox \
             WHERE state = 'sending' AND lease_until >= $3 GROUP BY url HAVING COUNT(*) >= $4) \
             ORDER BY next_at, id LIMIT 1{lock}) AND state IN ('pending', 'sending') RETURNING {COLUMNS}"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(&self.node)
            .bind(lease_until)
            .bind(now_ms())
            .bind(per_url)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(delivery)
            .transpose()
    }

    /// A delivery the receiver took (`status`: its 2xx).
    pub async fn webhook_delivered(&self, id: &str, status: u16) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE webhook_outbox SET state = 'delivered', last_status = $1, last_error = NULL, delivered_at = $2, \
             lease_node = NULL, lease_until = NULL WHERE id = $3",
        )
        .bind(i32::from(status))
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A try that failed: due again at `retry_at`, or given up (`None`).
    pub async fn webhook_failed(
        &self,
        id: &str,
        status: Option<u16>,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let (state, next) = match retry_at {
            Some(at) => ("pending", at),
            None => ("failed", now_ms()),
        };
        sqlx::query(
            "UPDATE webhook_outbox SET state = $1, next_at = $2, last_status = $3, last_error = $4, \
             lease_node = NULL, lease_until = NULL WHERE id = $5",
        )
        .bind(state)
        .bind(next)
        .bind(status.map(i32::from))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest deliveries, newest first (`state`: only those in it).
    pub async fn webhook_deliveries(&self, state: Option<&str>, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_outbox WHERE ($1 = '' OR state = $1) ORDER BY created_at DESC, id LIMIT $2"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(state.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(delivery)
            .collect()
    }
}
