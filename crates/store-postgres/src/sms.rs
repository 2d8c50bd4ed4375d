//! 短信: the merchant's 通知设置, and the texts planned with their events
//! and leased to the senders one try at a time (`FOR UPDATE SKIP LOCKED`,
//! so two nodes never send one text at once).

use crate::sql::exec;
use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::opt;
use crate::sql::parse_or;
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::event::NewEvent;
use kaquan_core::sms::{
    after_sms_attempt, messages_for, wants, SmsKind, SmsMessage, SmsOutcome, SmsProvider,
    SmsSettings, SmsSettingsFields, SmsState,
};
use kaquan_core::store::Page;
use kaquan_core::StoreResult;
use tokio_postgres::Row;

pub(crate) const SETTINGS_COLUMNS: &str = "merchant_id, provider, access_key_id, secret_sealed, key_version, \
    sdk_app_id, region, sign_name, notify_customer_on_submit, template_submit, \
    notify_admin_on_submit, template_admin, admin_phones, notify_customer_on_ship, template_ship, updated_at, \
    notify_buyer_on_sale, template_sale, notify_member_on_change, template_member_change, \
    notify_customer_on_invite, template_invite, notify_member_on_expiry, template_points_expiring, \
    notify_buyer_on_ecard, template_ecard, notify_buyer_on_ecard_expiry, template_ecard_expiring, \
    notify_admin_on_low_stock, template_low_stock";

/// The settings whose columns ([`SETTINGS_COLUMNS`]) start at `at`.
pub(crate) fn settings_from_row_at(r: &Row, at: usize) -> StoreResult<SmsSettings> {
    let phones: String = r.get(at + 12);
    Ok(SmsSettings {
        merchant_id: r.get(at),
        fields: SmsSettingsFields {
            provider: parse_or(SmsProvider::parse(r.get(at + 1)), "sms provider")?,
            access_key_id: r.get(at + 2),
            access_key_secret: String::new(),
            sdk_app_id: r.get(at + 5),
            region: r.get(at + 6),
            sign_name: r.get(at + 7),
            notify_customer_on_submit: r.get(at + 8),
            template_submit: r.get(at + 9),
            notify_admin_on_submit: r.get(at + 10),
            template_admin: r.get(at + 11),
            admin_phones: phones
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            notify_customer_on_ship: r.get(at + 13),
            template_ship: r.get(at + 14),
            notify_buyer_on_sale: r.get(at + 16),
            template_sale: r.get(at + 17),
            notify_member_on_change: r.get(at + 18),
            template_member_change: r.get(at + 19),
            notify_customer_on_invite: r.get(at + 20),
            template_invite: r.get(at + 21),
            notify_member_on_expiry: r.get(at + 22),
            template_points_expiring: r.get(at + 23),
            notify_buyer_on_ecard: r.get(at + 24),
            template_ecard: r.get(at + 25),
            notify_buyer_on_ecard_expiry: r.get(at + 26),
            template_ecard_expiring: r.get(at + 27),
            notify_admin_on_low_stock: r.get(at + 28),
            template_low_stock: r.get(at + 29),
        },
        secret_sealed: r.get(at + 3),
        key_version: r.get(at + 4),
        updated_at: r.get(at + 15),
    })
}

pub(crate) async fn get_settings(
    c: &impl GenericClient,
    merchant_id: i64,
) -> StoreResult<Option<SmsSettings>> {
    opt(
        c,
        &format!("SELECT {SETTINGS_COLUMNS} FROM sms_settings WHERE merchant_id = $1"),
        &[&merchant_id],
    )
    .await?
    .as_ref()
    .map(|r| settings_from_row_at(r, 0))
    .transpose()
}

/// Plans the texts an event causes, in the caller's transaction (called
/// by `insert_event`): nothing is read unless the event may cause one.
pub(crate) async fn plan_sms(c: &impl GenericClient, event: &NewEvent) -> StoreResult<()> {
    if !wants(event.event_type) {
        return Ok(());
    }
    let Some(settings) = get_settings(c, event.merchant_id).await? else {
        return Ok(());
    };
    for sms in messages_for(event, &settings) {
        insert_sms(c, &sms).await?;
    }
    Ok(())
}

async fn insert_sms(c: &impl GenericClient, sms: &kaquan_core::sms::NewSms) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO sms_messages (merchant_id, kind, phone, template, params, state, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
        &[&sms.merchant_id, &sms.kind.code(), &sms.phone, &sms.template, &sms.params, &sms.created_at],
    )
    .await?;
    Ok(())
}

/// Plans a card sale's text to the buyer (switch D), in the sale's transaction.
pub(crate) async fn plan_sale_sms(
    c: &impl GenericClient,
    sale: &kaquan_core::card_sale::NewCardSale,
) -> StoreResult<()> {
    let Some(settings) = get_settings(c, sale.merchant_id).await? else {
        return Ok(());
    };
    match kaquan_core::sms::sale_message(&settings, &sale.phone, &sale.order_id, sale.now) {
        Some(sms) => insert_sms(c, &sms).await,
        None => Ok(()),
    }
}

const SMS_COLUMNS: &str = "id, merchant_id, kind, phone, template, params, state, attempts, \
    next_attempt_at, provider_code, provider_message, created_at, sent_at";

fn sms_from_row(r: &Row) -> StoreResult<SmsMessage> {
    Ok(SmsMessage {
        id: r.get(0),
        merchant_id: r.get(1),
        kind: parse_or(SmsKind::parse(r.get(2)), "sms kind")?,
        phone: r.get(3),
        template: r.get(4),
        params: r.get(5),
        state: parse_or(SmsState::parse(r.get(6)), "sms state")?,
        attempts: r.get(7),
        next_attempt_at: r.get(8),
        provider_code: r.get(9),
        provider_message: r.get(10),
        created_at: r.get(11),
        sent_at: r.get(12),
    })
}

#[async_trait::async_trait]
impl kaquan_core::sms::SmsStore for PgStore {
    async fn get_sms_settings(&self, merchant_id: i64) -> StoreResult<Option<SmsSettings>> {
        get_settings(&self.client().await?, merchant_id).await
    }

    async fn save_sms_settings(
        &self,
        settings: &SmsSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(crate::sql::map_err)?;
        let f = &settings.fields;
        exec(
            &tx,
            "INSERT INTO sms_settings (merchant_id, provider, access_key_id, secret_sealed, key_version, \
             sdk_app_id, region, sign_name, notify_customer_on_submit, template_submit, \
             notify_admin_on_submit, template_admin, admin_phones, notify_customer_on_ship, template_ship, updated_at, \
                 notify_buyer_on_sale, template_sale, notify_member_on_change, template_member_change, \
                 notify_customer_on_invite, template_invite, notify_member_on_expiry, template_points_expiring, \
                 notify_buyer_on_ecard, template_ecard, notify_buyer_on_ecard_expiry, template_ecard_expiring, \
                 notify_admin_on_low_stock, template_low_stock) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30) \
             ON CONFLICT (merchant_id) DO UPDATE SET provider = excluded.provider, \
             access_key_id = excluded.access_key_id, \
             secret_sealed = coalesce(excluded.secret_sealed, sms_settings.secret_sealed), \
             key_version = CASE WHEN excluded.secret_sealed IS NULL THEN sms_settings.key_version ELSE excluded.key_version END, \
             sdk_app_id = excluded.sdk_app_id, region = excluded.region, sign_name = excluded.sign_name, \
             notify_customer_on_submit = excluded.notify_customer_on_submit, template_submit = excluded.template_submit, \
             notify_admin_on_submit = excluded.notify_admin_on_submit, template_admin = excluded.template_admin, \
             admin_phones = excluded.admin_phones, notify_customer_on_ship = excluded.notify_customer_on_ship, \
             template_ship = excluded.template_ship, updated_at = excluded.updated_at, \
                 notify_buyer_on_sale = excluded.notify_buyer_on_sale, template_sale = excluded.template_sale, \
                 notify_member_on_change = excluded.notify_member_on_change, template_member_change = excluded.template_member_change, \
                 notify_customer_on_invite = excluded.notify_customer_on_invite, template_invite = excluded.template_invite, \
                 notify_member_on_expiry = excluded.notify_member_on_expiry, template_points_expiring = excluded.template_points_expiring, \
                 notify_buyer_on_ecard = excluded.notify_buyer_on_ecard, template_ecard = excluded.template_ecard, \
                 notify_buyer_on_ecard_expiry = excluded.notify_buyer_on_ecard_expiry, template_ecard_expiring = excluded.template_ecard_expiring, \
                 notify_admin_on_low_stock = excluded.notify_admin_on_low_stock, template_low_stock = excluded.template_low_stock",
            &[
                &settings.merchant_id,
                &f.provider.code(),
                &f.access_key_id,
                &settings.secret_sealed,
                &settings.key_version,
                &f.sdk_app_id,
                &f.region,
                &f.sign_name,
                &f.notify_customer_on_submit,
                &f.template_submit,
                &f.notify_admin_on_submit,
                &f.template_admin,
                &f.admin_phones.join(","),
                &f.notify_customer_on_ship,
                &f.template_ship,
                &settings.updated_at,
                &f.notify_buyer_on_sale,
                &f.template_sale,
                &f.notify_member_on_change,
                &f.template_member_change,
                &f.notify_customer_on_invite,
                &f.template_invite,
                &f.notify_member_on_expiry,
                &f.template_points_expiring,
                &f.notify_buyer_on_ecard,
                &f.template_ecard,
                &f.notify_buyer_on_ecard_expiry,
                &f.template_ecard_expiring,
                &f.notify_admin_on_low_stock,
                &f.template_low_stock,
            ],
        )
        .await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(crate::sql::map_err)
    }

    async fn claim_sms(
        &self,
        limit: i64,
        lease_seconds: i64,
        now: i64,
    ) -> StoreResult<Vec<SmsMessage>> {
        crate::sql::lease_due(
            &self.client().await?,
            "sms_messages",
            SMS_COLUMNS,
            (limit, lease_seconds, now),
        )
        .await?
        .iter()
        .map(sms_from_row)
        .collect()
    }

    async fn record_sms_attempt(
        &self,
        id: i64,
        attempts: i64,
        outcome: &SmsOutcome,
        now: i64,
    ) -> StoreResult<()> {
        let (state, next) = after_sms_attempt(attempts, outcome, now);
        let sent_at = (state == SmsState::Sent).then_some(now);
        let n = exec(
            &self.client().await?,
            "UPDATE sms_messages SET state = $1, next_attempt_at = $2, lease_until = 0, \
             provider_code = $3, provider_message = $4, sent_at = $5 \
             WHERE id = $6 AND attempts = $7 AND state = 'pending'",
            &[
                &state.code(),
                &next,
                &outcome.provider_code,
                &outcome.provider_message,
                &sent_at,
                &id,
                &attempts,
            ],
        )
        .await?;
        expect_one(n)
    }

    async fn list_sms(&self, merchant_id: i64, page: Page) -> StoreResult<(Vec<SmsMessage>, i64)> {
        let (rows, total) = self
            .merchant_page("sms_messages", SMS_COLUMNS, merchant_id, page)
            .await?;
        Ok((
            rows.iter().map(sms_from_row).collect::<StoreResult<_>>()?,
            total,
        ))
    }
}
