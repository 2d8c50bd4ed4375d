//! ERP 参数 (旺店通) and the pushes planned with their orders' events,
//! leased to the pusher one try at a time.

use crate::sql::decode;
use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::merchant_page;
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::erp::{
    after_push, push_for, wants, ErpPush, ErpSettings, ErpSettingsFields, PushState,
};
use kaquan_core::event::{EventType, NewEvent};
use kaquan_core::store::Page;
use kaquan_core::StoreResult;
use rusqlite::{params, Connection, OptionalExtension, Row};

fn get_settings(conn: &Connection, merchant_id: i64) -> StoreResult<Option<ErpSettings>> {
    conn.prepare_cached(
        "SELECT merchant_id, enabled, sid, appkey, secret_sealed, key_version, shop_no, updated_at \
         FROM erp_settings WHERE merchant_id = ?1",
    )
    .and_then(|mut s| {
        s.query_row([merchant_id], |r| {
            Ok(ErpSettings {
                merchant_id: r.get(0)?,
                fields: ErpSettingsFields {
                    enabled: r.get(1)?,
                    sid: r.get(2)?,
                    appkey: r.get(3)?,
                    appsecret: String::new(),
                    shop_no: r.get(6)?,
                },
                secret_sealed: r.get(4)?,
                key_version: r.get(5)?,
                updated_at: r.get(7)?,
            })
        })
        .optional()
    })
    .map_err(map_err)
}

/// Plans the push an order's event causes, in the caller's transaction
/// (called by `insert_event`): nothing is read unless the event may cause one.
pub(crate) fn plan_push(conn: &Connection, event: &NewEvent) -> StoreResult<()> {
    if !wants(event.event_type) {
        return Ok(());
    }
    let Some(settings) = get_settings(conn, event.merchant_id)? else {
        return Ok(());
    };
    if let Some(order_id) = push_for(event, &settings) {
        conn.prepare_cached(
            "INSERT INTO erp_pushes (merchant_id, order_id, reason, state, next_attempt_at, created_at) \
             VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
        )
        .and_then(|mut s| s.execute(params![event.merchant_id, order_id, event.event_type.code(), event.created_at]))
        .map_err(map_err)?;
    }
    Ok(())
}

const PUSH_COLUMNS: &str = "id, merchant_id, order_id, reason, state, attempts, next_attempt_at, \
    result_code, result_message, created_at, pushed_at";

fn push_from_row(r: &Row) -> rusqlite::Result<ErpPush> {
    Ok(ErpPush {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        order_id: r.get(2)?,
        reason: decode(EventType::parse(&r.get::<_, String>(3)?), 3, "push reason")?,
        state: decode(PushState::parse(&r.get::<_, String>(4)?), 4, "push state")?,
        attempts: r.get(5)?,
        next_attempt_at: r.get(6)?,
        result_code: r.get(7)?,
        result_message: r.get(8)?,
        created_at: r.get(9)?,
        pushed_at: r.get(10)?,
    })
}

#[async_trait::async_trait]
impl kaquan_core::erp::ErpStore for SqliteStore {
    async fn get_erp_settings(&self, merchant_id: i64) -> StoreResult<Option<ErpSettings>> {
        self.read(move |conn| get_settings(conn, merchant_id)).await
    }

    async fn save_erp_settings(
        &self,
        settings: &ErpSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (settings, audit) = (settings.clone(), audit.clone());
        self.write(move |conn| {
            let f = &settings.fields;
            conn.execute(
                "INSERT INTO erp_settings (merchant_id, enabled, sid, appkey, secret_sealed, key_version, shop_no, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (merchant_id) DO UPDATE SET enabled = excluded.enabled, sid = excluded.sid, \
                 appkey = excluded.appkey, secret_sealed = coalesce(excluded.secret_sealed, erp_settings.secret_sealed), \
                 key_version = CASE WHEN excluded.secret_sealed IS NULL THEN erp_settings.key_version ELSE excluded.key_version END, \
                 shop_no = excluded.shop_no, updated_at = excluded.updated_at",
                params![settings.merchant_id, f.enabled, f.sid, f.appkey, settings.secret_sealed, settings.key_version, f.shop_no, settings.updated_at],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn claim_erp_pushes(
        &self,
        limit: i64,
        lease_seconds: i64,
        now: i64,
    ) -> StoreResult<Vec<ErpPush>> {
        self.write(move |conn| {
            crate::sql::lease_due(
                conn,
                "erp_pushes",
                PUSH_COLUMNS,
                (limit, lease_seconds, now),
                push_from_row,
            )
        })
        .await
    }

    async fn record_erp_push(
        &self,
        id: i64,
        attempts: i64,
        pushed: bool,
        code: &str,
        message: &str,
        now: i64,
    ) -> StoreResult<()> {
        let (code, message) = (code.to_owned(), message.to_owned());
        self.write(move |conn| {
            let (state, next) = after_push(attempts, pushed, now);
            let pushed_at = (state == PushState::Pushed).then_some(now);
            let n = conn
                .execute(
                    "UPDATE erp_pushes SET state = ?1, next_attempt_at = ?2, lease_until = 0, result_code = ?3, \
                     result_message = ?4, pushed_at = ?5 WHERE id = ?6 AND attempts = ?7 AND state = 'pending'",
                    params![state.code(), next, code, message, pushed_at, id, attempts],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn list_erp_pushes(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<ErpPush>, i64)> {
        self.read(move |conn| {
            merchant_page(
                conn,
                "erp_pushes",
                PUSH_COLUMNS,
                merchant_id,
                page,
                push_from_row,
            )
        })
        .await
    }
}
