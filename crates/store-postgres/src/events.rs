//! The outbox (`events`), webhook endpoints, deliveries and attempts. Many
//! nodes dispatch and claim at once: each takes its rows `FOR UPDATE SKIP
//! LOCKED`, so no event is fanned out twice and no delivery is leased twice.

use crate::sql::all;
use crate::sql::exec;
use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::one;
use crate::sql::opt;
use crate::sql::parse_or;
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::event::{
    event_types_from_text, event_types_to_text, Attempt, AttemptOutcome, ClaimedDelivery, Delivery,
    DeliveryFilter, DeliveryState, EndpointFields, EndpointSecrets, Event, EventType, NewEndpoint,
    NewEvent, WebhookEndpoint, DISABLE_AFTER_FAILING_SECONDS,
};
use kaquan_core::store::Page;
use kaquan_core::{Conflict, StoreError, StoreResult};
use tokio_postgres::Row;

/// Records an event in the caller's transaction, with the texts and the
/// ERP push it causes.
pub(crate) async fn insert_event(c: &impl GenericClient, event: &NewEvent) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO events (merchant_id, event_type, data, created_at) VALUES ($1, $2, $3, $4)",
        &[
            &event.merchant_id,
            &event.event_type.code(),
            &event.data,
            &event.created_at,
        ],
    )
    .await?;
    // Both read their settings; pipelined, they cost one round trip.
    futures_util::try_join!(
        crate::sms::plan_sms(c, event),
        crate::erp::plan_push(c, event)
    )?;
    Ok(())
}

const ENDPOINT_COLUMNS: &str = "id, merchant_id, url, description, event_types, enabled, \
     disabled_reason, failing_since, previous_secret_until, created_at";

fn endpoint_from_row(row: &Row) -> WebhookEndpoint {
    WebhookEndpoint {
        id: row.get(0),
        merchant_id: row.get(1),
        url: row.get(2),
        description: row.get(3),
        event_types: event_types_from_text(row.get(4)),
        enabled: row.get(5),
        disabled_reason: row.get(6),
        failing_since: row.get(7),
        previous_secret_until: row.get(8),
        created_at: row.get(9),
    }
}

pub(crate) const EVENT_COLUMNS: &str = "id, merchant_id, event_type, data, created_at";

pub(crate) fn event_from_row(row: &Row, first: usize) -> StoreResult<Event> {
    Ok(Event {
        id: row.get(first),
        merchant_id: row.get(first + 1),
        event_type: parse_or(EventType::parse(row.get(first + 2)), "event type")?,
        data: row.get(first + 3),
        created_at: row.get(first + 4),
    })
}

const DELIVERY_COLUMNS: &str = "d.id, d.merchant_id, d.event_id, e.event_type, d.endpoint_id, w.url, \
     d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.delivered_at, d.created_at";
const DELIVERY_FROM: &str = "webhook_deliveries d JOIN events e ON e.id = d.event_id \
     JOIN webhook_endpoints w ON w.id = d.endpoint_id";

fn status(row: &Row, idx: usize) -> Option<u16> {
    row.get::<_, Option<i32>>(idx)
        .and_then(|s| u16::try_from(s).ok())
}

fn delivery_from_row(row: &Row) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: row.get(0),
        merchant_id: row.get(1),
        event_id: row.get(2),
        event_type: parse_or(EventType::parse(row.get(3)), "event type")?,
        endpoint_id: row.get(4),
        endpoint_url: row.get(5),
        state: parse_or(DeliveryState::parse(row.get(6)), "delivery state")?,
        attempts: row.get(7),
        next_attempt_at: row.get(8),
        last_status: status(row, 9),
        last_error: row.get(10),
        delivered_at: row.get(11),
        created_at: row.get(12),
    })
}

fn claimed_from_row(row: &Row) -> StoreResult<ClaimedDelivery> {
    let attempt_no: i64 = row.get(1);
    let round_start: i64 = row.get(2);
    let previous: Option<Vec<u8>> = row.get(12);
    let previous_version: Option<i32> = row.get(13);
    Ok(ClaimedDelivery {
        delivery_id: row.get(0),
        attempt_no,
        round_attempt: attempt_no - round_start,
        event: event_from_row(row, 3)?,
        endpoint_id: row.get(8),
        url: row.get(9),
        secrets: EndpointSecrets {
            secret_sealed: row.get(10),
            key_version: row.get(11),
            previous: previous.zip(previous_version),
        },
    })
}

#[async_trait::async_trait]
impl kaquan_core::event::EventStore for PgStore {
    async fn create_endpoint(
        &self,
        e: &NewEndpoint,
        audit: &AuditEntry,
    ) -> StoreResult<WebhookEndpoint> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let created = endpoint_from_row(
            &one(
                &tx,
                &format!(
                    "INSERT INTO webhook_endpoints (merchant_id, url, description, event_types, enabled, \
                     secret_sealed, key_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     RETURNING {ENDPOINT_COLUMNS}"
                ),
                &[
                    &e.merchant_id,
                    &e.fields.url,
                    &e.fields.description,
                    &event_types_to_text(&e.fields.event_types),
                    &e.fields.enabled,
                    &e.secret_sealed,
                    &e.key_version,
                    &e.created_at,
                ],
            )
            .await?,
        );
        let audit = AuditEntry {
            target: format!("webhook_endpoint={}", created.id),
            ..audit.clone()
        };
        insert_audit(&tx, &audit, 1).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn update_endpoint(
        &self,
        merchant_id: i64,
        id: i64,
        f: &EndpointFields,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE webhook_endpoints SET url = $1, description = $2, event_types = $3, enabled = $4, \
             disabled_reason = CASE WHEN $4 THEN '' ELSE disabled_reason END, \
             failing_since = CASE WHEN $4 AND NOT enabled THEN NULL ELSE failing_since END \
             WHERE id = $5 AND merchant_id = $6 AND deleted_at IS NULL",
            &[
                &f.url,
                &f.description,
                &event_types_to_text(&f.event_types),
                &f.enabled,
                &id,
                &merchant_id,
            ],
        )
        .await?;
        expect_one(n)?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn rotate_endpoint_secret(
        &self,
        merchant_id: i64,
        id: i64,
        secret_sealed: &[u8],
        key_version: i32,
        previous_until: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE webhook_endpoints SET previous_secret_sealed = secret_sealed, \
             previous_key_version = key_version, previous_secret_until = $1, \
             secret_sealed = $2, key_version = $3 \
             WHERE id = $4 AND merchant_id = $5 AND deleted_at IS NULL",
            &[
                &previous_until,
                &secret_sealed,
                &key_version,
                &id,
                &merchant_id,
            ],
        )
        .await?;
        expect_one(n)?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_endpoint(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE webhook_endpoints SET deleted_at = $1, enabled = false \
             WHERE id = $2 AND merchant_id = $3 AND deleted_at IS NULL",
            &[&audit.created_at, &id, &merchant_id],
        )
        .await?;
        expect_one(n)?;
        exec(
            &tx,
            "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL, last_error = '推送地址已删除' \
             WHERE endpoint_id = $1 AND state = 'pending'",
            &[&id],
        )
        .await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_endpoints(&self, merchant_id: i64) -> StoreResult<Vec<WebhookEndpoint>> {
        let client = self.client().await?;
        let rows = all(
            &client,
            &format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                 WHERE merchant_id = $1 AND deleted_at IS NULL ORDER BY id"
            ),
            &[&merchant_id],
        )
        .await?;
        Ok(rows.iter().map(endpoint_from_row).collect())
    }

    async fn get_endpoint(&self, merchant_id: i64, id: i64) -> StoreResult<WebhookEndpoint> {
        let client = self.client().await?;
        opt(
            &client,
            &format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                 WHERE id = $1 AND merchant_id = $2 AND deleted_at IS NULL"
            ),
            &[&id, &merchant_id],
        )
        .await?
        .map(|r| endpoint_from_row(&r))
        .ok_or(StoreError::NotFound)
    }

    async fn record_events(&self, events: &[NewEvent]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        for event in events {
            insert_event(&tx, event).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn get_event(&self, merchant_id: i64, id: i64) -> StoreResult<Event> {
        let client = self.client().await?;
        let row = opt(
            &client,
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1 AND merchant_id = $2"),
            &[&id, &merchant_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        event_from_row(&row, 0)
    }

    async fn list_events(&self, merchant_id: i64, page: Page) -> StoreResult<(Vec<Event>, i64)> {
        let (rows, total) = self
            .merchant_page("events", EVENT_COLUMNS, merchant_id, page)
            .await?;
        let events = rows
            .iter()
            .map(|r| event_from_row(r, 0))
            .collect::<StoreResult<_>>()?;
        Ok((events, total))
    }

    async fn dispatch_events(&self, limit: i64, now: i64) -> StoreResult<i64> {
        let client = self.client().await?;
        let n = exec(
            &client,
            "WITH due AS ( \
               SELECT id, merchant_id, event_type FROM events WHERE NOT dispatched \
               ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED \
             ), fanned AS ( \
               INSERT INTO webhook_deliveries (merchant_id, event_id, endpoint_id, state, attempts, \
               next_attempt_at, lease_until, created_at) \
               SELECT due.merchant_id, due.id, w.id, 'pending', 0, $2, 0, $2 FROM due \
               JOIN webhook_endpoints w ON w.merchant_id = due.merchant_id AND w.enabled AND w.deleted_at IS NULL \
               AND (w.event_types = '' OR position(',' || due.event_type || ',' IN w.event_types) > 0) \
             ) \
             UPDATE events SET dispatched = true FROM due WHERE events.id = due.id",
            &[&limit, &now],
        )
        .await?;
        Ok(n as i64)
    }

    async fn claim_deliveries(
        &self,
        limit: i64,
        lease_seconds: i64,
        now: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let client = self.client().await?;
        let lease_until = now + lease_seconds;
        let rows = all(
            &client,
            "WITH claimed AS ( \
               UPDATE webhook_deliveries SET lease_until = $1, attempts = attempts + 1 \
               WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' \
               AND next_attempt_at <= $2 AND lease_until <= $2 ORDER BY next_attempt_at, id LIMIT $3 \
               FOR UPDATE SKIP LOCKED) \
               RETURNING id, attempts, round_start, event_id, endpoint_id \
             ) \
             SELECT c.id, c.attempts, c.round_start, e.id, e.merchant_id, e.event_type, e.data, e.created_at, \
             w.id, w.url, w.secret_sealed, w.key_version, \
             CASE WHEN w.previous_secret_until > $2 THEN w.previous_secret_sealed END, w.previous_key_version \
             FROM claimed c JOIN events e ON e.id = c.event_id JOIN webhook_endpoints w ON w.id = c.endpoint_id \
             ORDER BY c.id",
            &[&lease_until, &now, &limit],
        )
        .await?;
        rows.iter().map(claimed_from_row).collect()
    }

    async fn record_attempt(
        &self,
        c: &ClaimedDelivery,
        o: &AttemptOutcome,
        state: DeliveryState,
        next_attempt_at: Option<i64>,
        now: i64,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let status = o.status.map(i32::from);
        let n = exec(
            &tx,
            "UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, lease_until = 0, last_status = $3, \
             last_error = $4, delivered_at = CASE WHEN $1 = 'delivered' THEN $5 ELSE delivered_at END \
             WHERE id = $6 AND attempts = $7 AND state = 'pending'",
            &[
                &state.code(),
                &next_attempt_at,
                &status,
                &o.error,
                &now,
                &c.delivery_id,
                &c.attempt_no,
            ],
        )
        .await?;
        if n != 1 {
            return Err(StoreError::Conflict(Conflict::DeliveryLeaseLost));
        }
        exec(
            &tx,
            "INSERT INTO webhook_attempts (delivery_id, attempt_no, status, error, duration_ms, created_at, merchant_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&c.delivery_id, &c.attempt_no, &status, &o.error, &o.duration_ms, &now, &c.event.merchant_id],
        )
        .await?;
        if o.succeeded() {
            exec(
                &tx,
                // Only an endpoint that was failing is written: every delivery to
                // one endpoint would otherwise queue on its row.
                "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
                &[&c.endpoint_id],
            )
            .await?;
        } else {
            let reason = o.disable_reason();
            let disabled = opt(
                &tx,
                "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, $1), \
                 enabled = CASE WHEN $2 OR coalesce(failing_since, $1) <= $1 - $3 THEN false ELSE enabled END, \
                 disabled_reason = CASE WHEN enabled AND ($2 OR coalesce(failing_since, $1) <= $1 - $3) \
                 THEN $4 ELSE disabled_reason END \
                 WHERE id = $5 RETURNING disabled_reason = $4 AND NOT enabled",
                &[
                    &now,
                    &o.gone(),
                    &DISABLE_AFTER_FAILING_SECONDS,
                    &reason,
                    &c.endpoint_id,
                ],
            )
            .await?
            .is_some_and(|r| r.get::<_, bool>(0));
            if disabled {
                insert_audit(&tx, &c.disabled_audit(&reason, now), 1).await?;
            }
        }
        tx.commit().await.map_err(map_err)
    }

    async fn list_deliveries(
        &self,
        merchant_id: i64,
        filter: &DeliveryFilter,
        page: Page,
    ) -> StoreResult<(Vec<Delivery>, i64)> {
        let client = self.client().await?;
        let clause = "d.merchant_id = $1 AND ($2::bigint IS NULL OR d.endpoint_id = $2) \
             AND ($3::text IS NULL OR d.state = $3) AND ($4::text IS NULL OR e.event_type = $4)";
        let state = filter.state.map(DeliveryState::code);
        let event_type = filter.event_type.map(EventType::code);
        let total: i64 = one(
            &client,
            &format!("SELECT count(*) FROM {DELIVERY_FROM} WHERE {clause}"),
            &[&merchant_id, &filter.endpoint_id, &state, &event_type],
        )
        .await?
        .get(0);
        let rows = all(
            &client,
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE {clause} \
                 ORDER BY d.id DESC LIMIT $5 OFFSET $6"
            ),
            &[
                &merchant_id,
                &filter.endpoint_id,
                &state,
                &event_type,
                &page.page_size,
                &page.offset(),
            ],
        )
        .await?;
        let deliveries = rows
            .iter()
            .map(delivery_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((deliveries, total))
    }

    async fn get_delivery(
        &self,
        merchant_id: i64,
        id: i64,
    ) -> StoreResult<(Delivery, Vec<Attempt>)> {
        let client = self.client().await?;
        let delivery = opt(
            &client,
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.id = $1 AND d.merchant_id = $2"
            ),
            &[&id, &merchant_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        let attempts = all(
            &client,
            "SELECT attempt_no, status, error, duration_ms, created_at FROM webhook_attempts \
             WHERE delivery_id = $1 ORDER BY attempt_no DESC",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| Attempt {
            attempt_no: r.get(0),
            status: status(r, 1),
            error: r.get(2),
            duration_ms: r.get(3),
            created_at: r.get(4),
        })
        .collect();
        Ok((delivery_from_row(&delivery)?, attempts))
    }

    async fn replay_delivery(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
        now: i64,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE webhook_deliveries SET next_attempt_at = $1, \
             round_start = CASE WHEN state = 'pending' THEN round_start ELSE attempts END, \
             state = 'pending' WHERE id = $2 AND merchant_id = $3 \
             AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL)",
            &[&now, &id, &merchant_id],
        )
        .await?;
        expect_one(n)?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }
}
