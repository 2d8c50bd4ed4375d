//! ERP 参数 (旺店通) and the pushes planned with their orders' events,
//! leased to the pushers one try at a time (`FOR UPDATE SKIP LOCKED`).

use crate::sql::exec;
use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::opt;
use crate::sql::parse_or;
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::erp::{
    after_push, push_for, wants, ErpPush, ErpSettings, ErpSettingsFields, PushState,
};
use kaquan_core::event::{EventType, NewEvent};
use kaquan_core::store::Page;
use kaquan_core::StoreResult;
use tokio_postgres::Row;

async fn get_settings(
    c: &impl GenericClient,
    merchant_id: i64,
) -> StoreResult<Option<ErpSettings>> {
    let row = opt(
        c,
        "SELECT merchant_id, enabled, sid, appkey, secret_sealed, key_version, shop_no, updated_at \
         FROM erp_settings WHERE merchant_id = $1",
        &[&merchant_id],
    )
    .await?;
    Ok(row.map(|r| ErpSettings {
        merchant_id: r.get(0),
        fields: ErpSettingsFields {
            enabled: r.get(1),
            sid: r.get(2),
            appkey: r.get(3),
            appsecret: String::new(),
            shop_no: r.get(6),
        },
        secret_sealed: r.get(4),
        key_version: r.get(5),
        updated_at: r.get(7),
    }))
}

/// Plans the push an order's event causes, in the caller's transaction
/// (called by `insert_event`): nothing is read unless the event may cause one.
pub(crate) async fn plan_push(c: &impl GenericClient, event: &NewEvent) -> StoreResult<()> {
    if !wants(event.event_type) {
        return Ok(());
    }
    let Some(settings) = get_settings(c, event.merchant_id).await? else {
        return Ok(());
    };
    if let Some(order_id) = push_for(event, &settings) {
        exec(
            c,
            "INSERT INTO erp_pushes (merchant_id, order_id, reason, state, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, 'pending', $4, $4)",
            &[&event.merchant_id, &order_id, &event.event_type.code(), &event.created_at],
        )
        .await?;
    }
    Ok(())
}

const PUSH_COLUMNS: &str = "id, merchant_id, order_id, reason, state, attempts, next_attempt_at, \
    result_code, result_message, created_at, pushed_at";

fn push_from_row(r: &Row) -> StoreResult<ErpPush> {
    Ok(ErpPush {
        id: r.get(0),
        merchant_id: r.get(1),
        order_id: r.get(2),
        reason: parse_or(EventType::parse(r.get(3)), "push reason")?,
        state: parse_or(PushState::parse(r.get(4)), "push state")?,
        attempts: r.get(5),
        next_attempt_at: r.get(6),
        result_code: r.get(7),
        result_message: r.get(8),
        created_at: r.get(9),
        pushed_at: r.get(10),
    })
}

#[async_trait::async_trait]
impl kaquan_core::erp::ErpStore for PgStore {
    async fn get_erp_settings(&self, merchant_id: i64) -> StoreResult<Option<ErpSettings>> {
        get_settings(&self.client().await?, merchant_id).await
    }

    async fn save_erp_settings(
        &self,
        settings: &ErpSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(crate::sql::map_err)?;
        let f = &settings.fields;
        exec(
            &tx,
            "INSERT INTO erp_settings (merchant_id, enabled, sid, appkey, secret_sealed, key_version, shop_no, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (merchant_id) DO UPDATE SET enabled = excluded.enabled, sid = excluded.sid, \
             appkey = excluded.appkey, secret_sealed = coalesce(excluded.secret_sealed, erp_settings.secret_sealed), \
             key_version = CASE WHEN excluded.secret_sealed IS NULL THEN erp_settings.key_version ELSE excluded.key_version END, \
             shop_no = excluded.shop_no, updated_at = excluded.updated_at",
            &[&settings.merchant_id, &f.enabled, &f.sid, &f.appkey, &settings.secret_sealed, &settings.key_version, &f.shop_no, &settings.updated_at],
        )
        .await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(crate::sql::map_err)
    }

    async fn claim_erp_pushes(
        &self,
        limit: i64,
        lease_seconds: i64,
        now: i64,
    ) -> StoreResult<Vec<ErpPush>> {
        crate::sql::lease_due(
            &self.client().await?,
            "erp_pushes",
            PUSH_COLUMNS,
            (limit, lease_seconds, now),
        )
        .await?
        .iter()
        .map(push_from_row)
        .collect()
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
        let (state, next) = after_push(attempts, pushed, now);
        let pushed_at = (state == PushState::Pushed).then_some(now);
        let n = exec(
            &self.client().await?,
            "UPDATE erp_pushes SET state = $1, next_attempt_at = $2, lease_until = 0, result_code = $3, \
             result_message = $4, pushed_at = $5 WHERE id = $6 AND attempts = $7 AND state = 'pending'",
            &[&state.code(), &next, &code, &message, &pushed_at, &id, &attempts],
        )
        .await?;
        expect_one(n)
    }

    async fn list_erp_pushes(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<ErpPush>, i64)> {
        let (rows, total) = self
            .merchant_page("erp_pushes", PUSH_COLUMNS, merchant_id, page)
            .await?;
        Ok((
            rows.iter().map(push_from_row).collect::<StoreResult<_>>()?,
            total,
        ))
    }
}
