//! The outbox (`events`), webhook endpoints, deliveries and attempts.
//! SQLite has one writer, so a dispatch or a claim runs alone: no two
//! workers can take one row.

use crate::sql::decode;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::merchant_page;
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::event::{
    event_types_from_text, event_types_to_text, Attempt, AttemptOutcome, ClaimedDelivery, Delivery,
    DeliveryFilter, DeliveryState, EndpointFields, EndpointSecrets, Event, EventType, NewEndpoint,
    NewEvent, WebhookEndpoint, DISABLE_AFTER_FAILING_SECONDS,
};
use kaquan_core::store::Page;
use kaquan_core::{Conflict, StoreError, StoreResult};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

/// Records an event in the caller's transaction, with the texts and the
/// ERP push it causes.
pub(crate) fn insert_event(conn: &Connection, event: &NewEvent) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO events (merchant_id, event_type, data, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| {
        s.execute(params![
            event.merchant_id,
            event.event_type.code(),
            event.data,
            event.created_at
        ])
    })
    .map_err(map_err)?;
    plan_deliveries(conn, event)
}

/// What an event written sets going beside the outbox: its text messages
/// and its ERP pushes.
pub(crate) fn plan_deliveries(conn: &Connection, event: &NewEvent) -> StoreResult<()> {
    crate::sms::plan_sms(conn, event)?;
    crate::erp::plan_push(conn, event)
}

const ENDPOINT_COLUMNS: &str = "id, merchant_id, url, description, event_types, enabled, \
     disabled_reason, failing_since, previous_secret_until, created_at";

fn endpoint_from_row(row: &Row) -> rusqlite::Result<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        url: row.get(2)?,
        description: row.get(3)?,
        event_types: event_types_from_text(&row.get::<_, String>(4)?),
        enabled: row.get(5)?,
        disabled_reason: row.get(6)?,
        failing_since: row.get(7)?,
        previous_secret_until: row.get(8)?,
        created_at: row.get(9)?,
    })
}

pub(crate) const EVENT_COLUMNS: &str = "id, merchant_id, event_type, data, created_at";

pub(crate) fn event_from_row(row: &Row) -> rusqlite::Result<Event> {
    Ok(Event {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        event_type: decode(EventType::parse(&row.get::<_, String>(2)?), 2, "event type")?,
        data: row.get(3)?,
        created_at: row.get(4)?,
    })
}

const DELIVERY_COLUMNS: &str = "d.id, d.merchant_id, d.event_id, e.event_type, d.endpoint_id, w.url, \
     d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.delivered_at, d.created_at";

fn delivery_from_row(row: &Row) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        event_id: row.get(2)?,
        event_type: decode(EventType::parse(&row.get::<_, String>(3)?), 3, "event type")?,
        endpoint_id: row.get(4)?,
        endpoint_url: row.get(5)?,
        state: decode(
            DeliveryState::parse(&row.get::<_, String>(6)?),
            6,
            "delivery state",
        )?,
        attempts: row.get(7)?,
        next_attempt_at: row.get(8)?,
        last_status: row.get(9)?,
        last_error: row.get(10)?,
        delivered_at: row.get(11)?,
        created_at: row.get(12)?,
    })
}

fn one_changed(n: usize) -> StoreResult<()> {
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

#[async_trait::async_trait]
impl kaquan_core::event::EventStore for SqliteStore {
    async fn create_endpoint(
        &self,
        endpoint: &NewEndpoint,
        audit: &AuditEntry,
    ) -> StoreResult<WebhookEndpoint> {
        let (e, audit) = (endpoint.clone(), audit.clone());
        self.write(move |conn| {
            let created = conn
                .query_row(
                    &format!(
                        "INSERT INTO webhook_endpoints (merchant_id, url, description, event_types, enabled, \
                         secret_sealed, key_version, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                         RETURNING {ENDPOINT_COLUMNS}"
                    ),
                    params![
                        e.merchant_id,
                        e.fields.url,
                        e.fields.description,
                        event_types_to_text(&e.fields.event_types),
                        e.fields.enabled,
                        e.secret_sealed,
                        e.key_version,
                        e.created_at
                    ],
                    endpoint_from_row,
                )
                .map_err(map_err)?;
            let audit = AuditEntry {
                target: format!("webhook_endpoint={}", created.id),
                ..audit.clone()
            };
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(created)
        })
        .await
    }

    async fn update_endpoint(
        &self,
        merchant_id: i64,
        id: i64,
        fields: &EndpointFields,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (f, audit) = (fields.clone(), audit.clone());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE webhook_endpoints SET url = ?1, description = ?2, event_types = ?3, enabled = ?4, \
                     disabled_reason = CASE WHEN ?4 THEN '' ELSE disabled_reason END, \
                     failing_since = CASE WHEN ?4 AND NOT enabled THEN NULL ELSE failing_since END \
                     WHERE id = ?5 AND merchant_id = ?6 AND deleted_at IS NULL",
                    params![f.url, f.description, event_types_to_text(&f.event_types), f.enabled, id, merchant_id],
                )
                .map_err(map_err)?;
            one_changed(n)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
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
        let (sealed, audit) = (secret_sealed.to_vec(), audit.clone());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE webhook_endpoints SET previous_secret_sealed = secret_sealed, \
                     previous_key_version = key_version, previous_secret_until = ?1, \
                     secret_sealed = ?2, key_version = ?3 \
                     WHERE id = ?4 AND merchant_id = ?5 AND deleted_at IS NULL",
                    params![previous_until, sealed, key_version, id, merchant_id],
                )
                .map_err(map_err)?;
            one_changed(n)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn delete_endpoint(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let audit = audit.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE webhook_endpoints SET deleted_at = ?1, enabled = 0 \
                     WHERE id = ?2 AND merchant_id = ?3 AND deleted_at IS NULL",
                    params![audit.created_at, id, merchant_id],
                )
                .map_err(map_err)?;
            one_changed(n)?;
            conn.execute(
                "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL, last_error = '推送地址已删除' \
                 WHERE endpoint_id = ?1 AND state = 'pending'",
                [id],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_endpoints(&self, merchant_id: i64) -> StoreResult<Vec<WebhookEndpoint>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                     WHERE merchant_id = ?1 AND deleted_at IS NULL ORDER BY id"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], endpoint_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_endpoint(&self, merchant_id: i64, id: i64) -> StoreResult<WebhookEndpoint> {
        self.read(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                     WHERE id = ?1 AND merchant_id = ?2 AND deleted_at IS NULL"
                ),
                params![id, merchant_id],
                endpoint_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn record_events(&self, events: &[NewEvent]) -> StoreResult<()> {
        let events = events.to_vec();
        self.write(move |conn| events.iter().try_for_each(|e| insert_event(conn, e)))
            .await
    }

    async fn get_event(&self, merchant_id: i64, id: i64) -> StoreResult<Event> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1 AND merchant_id = ?2"),
                params![id, merchant_id],
                event_from_row,
            )
            .map_err(map_err)
        })
        .await
    }

    async fn list_events(&self, merchant_id: i64, page: Page) -> StoreResult<(Vec<Event>, i64)> {
        self.read(move |conn| {
            merchant_page(
                conn,
                "events",
                EVENT_COLUMNS,
                merchant_id,
                page,
                event_from_row,
            )
        })
        .await
    }

    async fn dispatch_events(&self, limit: i64, now: i64) -> StoreResult<i64> {
        self.write(move |conn| {
            let due = "SELECT id FROM events WHERE dispatched = 0 ORDER BY id LIMIT ?1";
            conn.execute(
                &format!(
                    "INSERT INTO webhook_deliveries (merchant_id, event_id, endpoint_id, state, attempts, \
                     next_attempt_at, lease_until, created_at) \
                     SELECT e.merchant_id, e.id, w.id, 'pending', 0, ?2, 0, ?2 FROM events e \
                     JOIN webhook_endpoints w ON w.merchant_id = e.merchant_id AND w.enabled AND w.deleted_at IS NULL \
                     AND (w.event_types = '' OR instr(w.event_types, ',' || e.event_type || ',') > 0) \
                     WHERE e.id IN ({due}) ORDER BY e.id, w.id"
                ),
                params![limit, now],
            )
            .map_err(map_err)?;
            let n = conn
                .execute(&format!("UPDATE events SET dispatched = 1 WHERE id IN ({due})"), [limit])
                .map_err(map_err)?;
            Ok(n as i64)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        limit: i64,
        lease_seconds: i64,
        now: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        self.write(move |conn| {
            let ids: Vec<i64> = {
                let mut stmt = conn
                    .prepare_cached(
                        "UPDATE webhook_deliveries SET lease_until = ?1, attempts = attempts + 1 \
                         WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' \
                         AND next_attempt_at <= ?2 AND lease_until <= ?2 ORDER BY next_attempt_at, id LIMIT ?3) \
                         RETURNING id",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(params![now + lease_seconds, now, limit], |r| r.get(0))
                    .map_err(map_err)?;
                rows.collect::<Result<_, _>>().map_err(map_err)?
            };
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let marks = vec!["?"; ids.len()].join(", ");
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT d.id, d.attempts, d.round_start, e.id, e.merchant_id, e.event_type, e.data, e.created_at, \
                     w.id, w.url, w.secret_sealed, w.key_version, \
                     CASE WHEN w.previous_secret_until > {now} THEN w.previous_secret_sealed END, w.previous_key_version \
                     FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
                     JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id IN ({marks}) ORDER BY d.id"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params_from_iter(ids.iter().map(|id| SqlValue::Integer(*id))), claimed_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn record_attempt(
        &self,
        claimed: &ClaimedDelivery,
        outcome: &AttemptOutcome,
        state: DeliveryState,
        next_attempt_at: Option<i64>,
        now: i64,
    ) -> StoreResult<()> {
        let (c, o) = (claimed.clone(), outcome.clone());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE webhook_deliveries SET state = ?1, next_attempt_at = ?2, lease_until = 0, last_status = ?3, \
                     last_error = ?4, delivered_at = CASE WHEN ?1 = 'delivered' THEN ?5 ELSE delivered_at END \
                     WHERE id = ?6 AND attempts = ?7 AND state = 'pending'",
                    params![state.code(), next_attempt_at, o.status, o.error, now, c.delivery_id, c.attempt_no],
                )
                .map_err(map_err)?;
            if n != 1 {
                return Err(StoreError::Conflict(Conflict::DeliveryLeaseLost));
            }
            conn.execute(
                "INSERT INTO webhook_attempts (delivery_id, attempt_no, status, error, duration_ms, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![c.delivery_id, c.attempt_no, o.status, o.error, o.duration_ms, now],
            )
            .map_err(map_err)?;
            if o.succeeded() {
                conn.execute("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL", [c.endpoint_id])
                    .map_err(map_err)?;
                return Ok(());
            }
            let reason = o.disable_reason();
            let disabled = conn
                .query_row(
                    "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, ?1), \
                     enabled = CASE WHEN ?2 OR coalesce(failing_since, ?1) <= ?1 - ?3 THEN 0 ELSE enabled END, \
                     disabled_reason = CASE WHEN enabled AND (?2 OR coalesce(failing_since, ?1) <= ?1 - ?3) \
                     THEN ?4 ELSE disabled_reason END \
                     WHERE id = ?5 RETURNING disabled_reason = ?4 AND NOT enabled",
                    params![now, o.gone(), DISABLE_AFTER_FAILING_SECONDS, reason, c.endpoint_id],
                    |r| r.get::<_, bool>(0),
                )
                .optional()
                .map_err(map_err)?
                .unwrap_or(false);
            if disabled {
                let audit = c.disabled_audit(&reason, now);
                insert_audit(conn, &audit, 1).map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn list_deliveries(
        &self,
        merchant_id: i64,
        filter: &DeliveryFilter,
        page: Page,
    ) -> StoreResult<(Vec<Delivery>, i64)> {
        let filter = filter.clone();
        self.read(move |conn| {
            let mut clause = String::from("d.merchant_id = ?1");
            let mut values = vec![SqlValue::Integer(merchant_id)];
            if let Some(endpoint_id) = filter.endpoint_id {
                values.push(SqlValue::Integer(endpoint_id));
                clause.push_str(&format!(" AND d.endpoint_id = ?{}", values.len()));
            }
            if let Some(state) = filter.state {
                values.push(SqlValue::Text(state.code().into()));
                clause.push_str(&format!(" AND d.state = ?{}", values.len()));
            }
            if let Some(event_type) = filter.event_type {
                values.push(SqlValue::Text(event_type.code().into()));
                clause.push_str(&format!(" AND e.event_type = ?{}", values.len()));
            }
            let from = "webhook_deliveries d JOIN events e ON e.id = d.event_id \
                        JOIN webhook_endpoints w ON w.id = d.endpoint_id";
            let total: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM {from} WHERE {clause}"),
                    params_from_iter(values.iter()),
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            values.push(SqlValue::Integer(page.page_size));
            values.push(SqlValue::Integer(page.offset()));
            let n = values.len();
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM {from} WHERE {clause} ORDER BY d.id DESC LIMIT ?{} OFFSET ?{n}",
                    n - 1
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params_from_iter(values.iter()), delivery_from_row)
                .map_err(map_err)?;
            Ok((rows.collect::<Result<_, _>>().map_err(map_err)?, total))
        })
        .await
    }

    async fn get_delivery(
        &self,
        merchant_id: i64,
        id: i64,
    ) -> StoreResult<(Delivery, Vec<Attempt>)> {
        self.read(move |conn| {
            let delivery = conn
                .query_row(
                    &format!(
                        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
                         JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = ?1 AND d.merchant_id = ?2"
                    ),
                    params![id, merchant_id],
                    delivery_from_row,
                )
                .map_err(map_err)?;
            let mut stmt = conn
                .prepare(
                    "SELECT attempt_no, status, error, duration_ms, created_at FROM webhook_attempts \
                     WHERE delivery_id = ?1 ORDER BY attempt_no DESC",
                )
                .map_err(map_err)?;
            let attempts = stmt
                .query_map([id], |r| {
                    Ok(Attempt {
                        attempt_no: r.get(0)?,
                        status: r.get(1)?,
                        error: r.get(2)?,
                        duration_ms: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                })
                .map_err(map_err)?
                .collect::<Result<_, _>>()
                .map_err(map_err)?;
            Ok((delivery, attempts))
        })
        .await
    }

    async fn replay_delivery(
        &self,
        merchant_id: i64,
        id: i64,
        audit: &AuditEntry,
        now: i64,
    ) -> StoreResult<()> {
        let audit = audit.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE webhook_deliveries SET next_attempt_at = ?1, \
                     round_start = CASE WHEN state = 'pending' THEN round_start ELSE attempts END, \
                     state = 'pending' WHERE id = ?2 AND merchant_id = ?3 \
                     AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL)",
                    params![now, id, merchant_id],
                )
                .map_err(map_err)?;
            one_changed(n)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }
}

fn claimed_from_row(r: &Row) -> rusqlite::Result<ClaimedDelivery> {
    let attempt_no: i64 = r.get(1)?;
    let round_start: i64 = r.get(2)?;
    let previous: Option<Vec<u8>> = r.get(12)?;
    let previous_version: Option<i32> = r.get(13)?;
    Ok(ClaimedDelivery {
        delivery_id: r.get(0)?,
        attempt_no,
        round_attempt: attempt_no - round_start,
        event: Event {
            id: r.get(3)?,
            merchant_id: r.get(4)?,
            event_type: decode(EventType::parse(&r.get::<_, String>(5)?), 5, "event type")?,
            data: r.get(6)?,
            created_at: r.get(7)?,
        },
        endpoint_id: r.get(8)?,
        url: r.get(9)?,
        secrets: EndpointSecrets {
            secret_sealed: r.get(10)?,
            key_version: r.get(11)?,
            previous: previous.zip(previous_version),
        },
    })
}
