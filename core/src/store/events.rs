//! Deduplication of chat events: Slack delivers an event again, with the same event ID
//! and an `X-Slack-Retry-Num` header, when the first delivery was not acknowledged in
//! time. Only the first delivery may start work.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::debug;

use super::codec::{DbTime, clean, saturating_add};
use super::{Store, StoreError, query_failed};
use crate::approval::Platform;

/// Takes over the record of an event whose time to live has passed, so the row count is
/// 1 for a first delivery and 0 for a repeated one. Both backends count an upsert that
/// its `WHERE` skips as no change.
const CLAIM_EVENT: &str = "INSERT INTO chat_events (platform, event_id, received_at, expires_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (platform, event_id) DO UPDATE \
     SET received_at = excluded.received_at, expires_at = excluded.expires_at \
     WHERE chat_events.expires_at <= excluded.received_at";

const PURGE_EVENTS: &str = "DELETE FROM chat_events WHERE expires_at <= $1";

impl Store {
    /// Records the delivery of chat event `event_id` at `at`, and returns true only for
    /// its first delivery.
    ///
    /// The record is kept for `ttl`, which must outlast the platform's retries (Slack's
    /// Events API retries up to three times over about five minutes). After that the
    /// same ID counts as new again. Concurrent deliveries, on one replica or several, get exactly one true,
    /// because the decision is one conditional insert. A first delivery also deletes
    /// the records whose time to live has passed.
    pub async fn claim_event(
        &self,
        platform: Platform,
        event_id: &str,
        ttl: Duration,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let event_id = clean("event_id", event_id);
        let target = format!("{platform} event {event_id}");
        let expires_at = saturating_add(at, ttl);

        let claimed = with_pool!(self, pool => sqlx::query(CLAIM_EVENT)
            .bind(platform.as_str())
            .bind(&event_id)
            .bind(DbTime::new(at))
            .bind(DbTime::new(expires_at))
            .execute(pool)
            .await
            .map_err(query_failed("claim_event", &target))?
            .rows_affected()
            == 1);
        if !claimed {
            debug!(%platform, event_id, "ignored a repeated delivery of a chat event");
            return Ok(false);
        }

        with_pool!(self, pool => {
            sqlx::query(PURGE_EVENTS)
                .bind(DbTime::new(at))
                .execute(pool)
                .await
                .map_err(query_failed("claim_event", &target))?;
        });
        Ok(true)
    }
}
