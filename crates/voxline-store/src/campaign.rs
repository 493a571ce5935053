//! Campaign records: campaigns, their contacts and do-not-call numbers.
//! The campaign logic (import rules, windows, pacing) lives in
//! `voxline-campaign`; this module only keeps its state.

use crate::{now_ms, CallStore, StoreError};
use sqlx::Row;

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRow {
    /// Its id.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// The agent route its calls run on.
    pub route: String,
    /// Its settings (JSON, written and read by `voxline-campaign`).
    pub settings: String,
    /// draft, running, paused, stopped or finished.
    pub state: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
}

/// A contact to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContact {
    /// E.164 number.
    pub number: String,
    /// IANA time zone.
    pub tz: String,
    /// Its variables (JSON object).
    pub variables: String,
    /// The line of the file it came from.
    pub source_line: i64,
}

/// What storing an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredImport {
    /// Contacts added.
    pub added: u64,
    /// Contacts whose number the campaign already had (left as they were).
    pub already_there: u64,
}

/// Contacts of a campaign counted by state and by disposition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactCounts {
    /// (state, count), by state.
    pub by_state: Vec<(String, i64)>,
    /// (disposition, count) of contacts that have one.
    pub by_disposition: Vec<(String, i64)>,
}

/// A `campaigns` row.
pub(crate) fn campaign_row(r: &sqlx::any::AnyRow) -> Result<CampaignRow, StoreError> {
    Ok(CampaignRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        route: r.try_get("route")?,
        settings: r.try_get("settings")?,
        state: r.try_get("state")?,
        created_at: r.try_get("created_at")?,
    })
}

impl CallStore {
    /// Creates a campaign (state `draft`); a name already taken is an error.
    pub async fn create_campaign(&self, id: &str, name: &str, route: &str, settings: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO campaigns (id, name, route, settings, state, created_at) VALUES ($1, $2, $3, $4, 'draft', $5)",
        )
        .bind(id)
        .bind(name)
        .bind(route)
        .bind(settings)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The campaign named `name`, if any.
    pub async fn campaign_by_name(&self, name: &str) -> Result<Option<CampaignRow>, StoreError> {
        sqlx::query("SELECT id, name, route, settings, state, created_at FROM campaigns WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(campaign_row)
            .transpose()
    }

    /// Adds contacts to a campaign in one transaction: all of them or, on an
    /// error, none. A number the campaign already has is left as it was.
    /// New contacts are `pending`, due at once (the dialer applies windows).
    pub async fn add_contacts(&self, campaign_id: &str, contacts: &[NewContact]) -> Result<StoredImport, StoreError> {
        self.add_contacts_telling(campaign_id, contacts, &|_| {}).await
    }

    /// [`CallStore::add_contacts`], telling `done` how many contacts are
    /// written so far (every 500, and at the end) for a progress bar.
    pub async fn add_contacts_telling(
        &self,
        campaign_id: &str,
        contacts: &[NewContact],
        done: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<StoredImport, StoreError> {
        let mut tx = self.pool.begin().await?;
        let next: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS top FROM campaign_contacts WHERE campaign_id = $1")
                .bind(campaign_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("top")?;
        let now = now_ms();
        let mut stored = StoredImport::default();
        for (i, c) in contacts.iter().enumerate() {
            let added = sqlx::query(
                "INSERT INTO campaign_contacts (campaign_id, seq, number, tz, variables, source_line, state, attempts, \
                 next_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) \
                 ON CONFLICT (campaign_id, number) DO NOTHING",
            )
            .bind(campaign_id)
            .bind(next + 1 + i as i64)
            .bind(&c.number)
            .bind(&c.tz)
            .bind(&c.variables)
            .bind(c.source_line)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added == 1 {
                stored.added += 1;
            } else {
                stored.already_there += 1;
            }
            if (i + 1) % 500 == 0 {
                done(i as u64 + 1);
            }
        }
        tx.commit().await?;
        done(contacts.len() as u64);
        Ok(stored)
    }

    /// A campaign's contacts counted by state and disposition.
    pub async fn contact_counts(&self, campaign_id: &str) -> Result<ContactCounts, StoreError> {
        let count = |sql: &'static str| async move {
            sqlx::query(sql)
                .bind(campaign_id)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get::<String, _>("k")?, r.try_get::<i64, _>("n")?)))
                .collect::<Result<Vec<_>, StoreError>>()
        };
        Ok(ContactCounts {
            by_state: count(
                "SELECT state AS k, COUNT(*) AS n FROM campaign_contacts WHERE campaign_id = $1 GROUP BY state ORDER BY state",
            )
            .await?,
            by_disposition: count(
                "SELECT disposition AS k, COUNT(*) AS n FROM campaign_contacts WHERE campaign_id = $1 \
                 AND disposition IS NOT NULL GROUP BY disposition ORDER BY disposition",
            )
            .await?,
        })
    }

    /// Adds numbers (E.164) to a do-not-call list: `scope` is `""` for every
    /// campaign, else a campaign's id. Returns how many were new.
    pub async fn add_dnc(&self, scope: &str, numbers: &[String]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let mut added = 0;
        for n in numbers {
            added += sqlx::query(
                "INSERT INTO dnc_numbers (scope, number, added_at) VALUES ($1, $2, $3) ON CONFLICT (scope, number) DO NOTHING",
            )
            .bind(scope)
            .bind(n)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Takes numbers off a do-not-call list (`scope` as in [`CallStore::add_dnc`]).
    /// Returns how many were on it.
    pub async fn remove_dnc(&self, scope: &str, numbers: &[String]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut removed = 0;
        for n in numbers {
            removed += sqlx::query("DELETE FROM dnc_numbers WHERE scope = $1 AND number = $2")
                .bind(scope)
                .bind(n)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Up to `limit` numbers of a do-not-call list after `after` (in order),
    /// each with when it was added (ms since the epoch).
    pub async fn dnc_page(&self, scope: &str, after: &str, limit: i64) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query(
            "SELECT number, added_at FROM dnc_numbers WHERE scope = $1 AND number > $2 ORDER BY number LIMIT $3",
        )
        .bind(scope)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("number")?, r.try_get("added_at")?)))
        .collect()
    }

    /// Whether `number` may not be called by campaign `campaign_id` (on the
    /// global list or the campaign's own).
    pub async fn is_dnc(&self, campaign_id: &str, number: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM dnc_numbers WHERE number = $1 AND (scope = '' OR scope = $2)")
            .bind(number)
            .bind(campaign_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}
