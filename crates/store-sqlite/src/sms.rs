//! 短信: the merchant's 通知设置, and the texts planned with their events
//! and leased to the sender one try at a time.

use crate::sql::decode;
use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::merchant_page;
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::event::NewEvent;
use kaquan_core::sms::{
    after_sms_attempt, messages_for, wants, SmsKind, SmsMessage, SmsOutcome, SmsProvider,
    SmsSettings, SmsSettingsFields, SmsState,
};
use kaquan_core::store::Page;
use kaquan_core::StoreResult;
use rusqlite::{params, Connection, OptionalExtension, Row};

const SETTINGS_COLUMNS: &str = "merchant_id, provider, access_key_id, secret_sealed, key_version, \
    sdk_app_id, region, sign_name, notify_customer_on_submit, template_submit, \
    notify_admin_on_submit, template_admin, admin_phones, notify_customer_on_ship, template_ship, updated_at, \
    notify_buyer_on_sale, template_sale, notify_member_on_change, template_member_change, \
    notify_customer_on_invite, template_invite, notify_member_on_expiry, template_points_expiring, \
    notify_buyer_on_ecard, template_ecard, notify_buyer_on_ecard_expiry, template_ecard_expiring, \
    notify_admin_on_low_stock, template_low_stock";

fn settings_from_row(r: &Row) -> rusqlite::Result<SmsSettings> {
    let phones: String = r.get(12)?;
    Ok(SmsSettings {
        merchant_id: r.get(0)?,
        fields: SmsSettingsFields {
            provider: decode(
                SmsProvider::parse(&r.get::<_, String>(1)?),
                1,
                "sms provider",
            )?,
            access_key_id: r.get(2)?,
            access_key_secret: String::new(),
            sdk_app_id: r.get(5)?,
            region: r.get(6)?,
            sign_name: r.get(7)?,
            notify_customer_on_submit: r.get(8)?,
            template_submit: r.get(9)?,
            notify_admin_on_submit: r.get(10)?,
            template_admin: r.get(11)?,
            admin_phones: phones
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            notify_customer_on_ship: r.get(13)?,
            template_ship: r.get(14)?,
            notify_buyer_on_sale: r.get(16)?,
            template_sale: r.get(17)?,
            notify_member_on_change: r.get(18)?,
            template_member_change: r.get(19)?,
            notify_customer_on_invite: r.get(20)?,
            template_invite: r.get(21)?,
            notify_member_on_expiry: r.get(22)?,
            template_points_expiring: r.get(23)?,
            notify_buyer_on_ecard: r.get(24)?,
            template_ecard: r.get(25)?,
            notify_buyer_on_ecard_expiry: r.get(26)?,
            template_ecard_expiring: r.get(27)?,
            notify_admin_on_low_stock: r.get(28)?,
            template_low_stock: r.get(29)?,
        },
        secret_sealed: r.get(3)?,
        key_version: r.get(4)?,
        updated_at: r.get(15)?,
    })
}

pub(crate) fn get_settings(
    conn: &Connection,
    merchant_id: i64,
) -> StoreResult<Option<SmsSettings>> {
    conn.prepare_cached(&format!(
        "SELECT {SETTINGS_COLUMNS} FROM sms_settings WHERE merchant_id = ?1"
    ))
    .and_then(|mut s| s.query_row([merchant_id], settings_from_row).optional())
    .map_err(map_err)
}

/// Plans the texts an event causes, in the caller's transaction (called
/// by `insert_event`): nothing is read unless the event may cause one.
pub(crate) fn plan_sms(conn: &Connection, event: &NewEvent) -> StoreResult<()> {
    if !wants(event.event_type) {
        return Ok(());
    }
    let Some(settings) = get_settings(conn, event.merchant_id)? else {
        return Ok(());
    };
    for sms in messages_for(event, &settings) {
        insert_sms(conn, &sms)?;
    }
    Ok(())
}

pub(crate) fn insert_sms(conn: &Connection, sms: &kaquan_core::sms::NewSms) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO sms_messages (merchant_id, kind, phone, template, params, state, next_attempt_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            sms.merchant_id,
            sms.kind.code(),
            sms.phone,
            sms.template,
            sms.params,
            sms.created_at
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

/// Plans a card sale's text to the buyer (switch D), in the sale's transaction.
pub(crate) fn plan_sale_sms(
    conn: &Connection,
    sale: &kaquan_core::card_sale::NewCardSale,
) -> StoreResult<()> {
    let Some(settings) = get_settings(conn, sale.merchant_id)? else {
        return Ok(());
    };
    match kaquan_core::sms::sale_message(&settings, &sale.phone, &sale.order_id, sale.now) {
        Some(sms) => insert_sms(conn, &sms),
        None => Ok(()),
    }
}

const SMS_COLUMNS: &str = "id, merchant_id, kind, phone, template, params, state, attempts, \
    next_attempt_at, provider_code, provider_message, created_at, sent_at";

fn sms_from_row(r: &Row) -> rusqlite::Result<SmsMessage> {
    Ok(SmsMessage {
        id: r.get(0)?,
        merchant_id: r.get(1)?,
        kind: decode(SmsKind::parse(&r.get::<_, String>(2)?), 2, "sms kind")?,
        phone: r.get(3)?,
        template: r.get(4)?,
        params: r.get(5)?,
        state: decode(SmsState::parse(&r.get::<_, String>(6)?), 6, "sms state")?,
        attempts: r.get(7)?,
        next_attempt_at: r.get(8)?,
        provider_code: r.get(9)?,
        provider_message: r.get(10)?,
        created_at: r.get(11)?,
        sent_at: r.get(12)?,
    })
}

#[async_trait::async_trait]
impl kaquan_core::sms::SmsStore for SqliteStore {
    async fn get_sms_settings(&self, merchant_id: i64) -> StoreResult<Option<SmsSettings>> {
        self.read(move |conn| get_settings(conn, merchant_id)).await
    }

    async fn save_sms_settings(
        &self,
        settings: &SmsSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (settings, audit) = (settings.clone(), audit.clone());
        self.write(move |conn| {
            let f = &settings.fields;
            conn.execute(
                "INSERT INTO sms_settings (merchant_id, provider, access_key_id, secret_sealed, key_version, \
                 sdk_app_id, region, sign_name, notify_customer_on_submit, template_submit, \
                 notify_admin_on_submit, template_admin, admin_phones, notify_customer_on_ship, template_ship, updated_at, \
                 notify_buyer_on_sale, template_sale, notify_member_on_change, template_member_change, \
                 notify_customer_on_invite, template_invite, notify_member_on_expiry, template_points_expiring, \
                 notify_buyer_on_ecard, template_ecard, notify_buyer_on_ecard_expiry, template_ecard_expiring, \
                 notify_admin_on_low_stock, template_low_stock) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30) \
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
                params![
                    settings.merchant_id,
                    f.provider.code(),
                    f.access_key_id,
                    settings.secret_sealed,
                    settings.key_version,
                    f.sdk_app_id,
                    f.region,
                    f.sign_name,
                    f.notify_customer_on_submit,
                    f.template_submit,
                    f.notify_admin_on_submit,
                    f.template_admin,
                    f.admin_phones.join(","),
                    f.notify_customer_on_ship,
                    f.template_ship,
                    settings.updated_at,
                    f.notify_buyer_on_sale,
                    f.template_sale,
                    f.notify_member_on_change,
                    f.template_member_change,
                    f.notify_customer_on_invite,
                    f.template_invite,
                    f.notify_member_on_expiry,
                    f.template_points_expiring,
                    f.notify_buyer_on_ecard,
                    f.template_ecard,
                    f.notify_buyer_on_ecard_expiry,
                    f.template_ecard_expiring,
                    f.notify_admin_on_low_stock,
                    f.template_low_stock,
                ],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn claim_sms(
        &self,
        limit: i64,
        lease_seconds: i64,
        now: i64,
    ) -> StoreResult<Vec<SmsMessage>> {
        self.write(move |conn| {
            crate::sql::lease_due(
                conn,
                "sms_messages",
                SMS_COLUMNS,
                (limit, lease_seconds, now),
                sms_from_row,
            )
        })
        .await
    }

    async fn record_sms_attempt(
        &self,
        id: i64,
        attempts: i64,
        outcome: &SmsOutcome,
        now: i64,
    ) -> StoreResult<()> {
        let outcome = outcome.clone();
        self.write(move |conn| {
            let (state, next) = after_sms_attempt(attempts, &outcome, now);
            let n = conn
                .execute(
                    "UPDATE sms_messages SET state = ?1, next_attempt_at = ?2, lease_until = 0, \
                     provider_code = ?3, provider_message = ?4, sent_at = CASE WHEN ?1 = 'sent' THEN ?5 END \
                     WHERE id = ?6 AND attempts = ?7 AND state = 'pending'",
                    params![state.code(), next, outcome.provider_code, outcome.provider_message, now, id, attempts],
                )
                .map_err(map_err)?;
            expect_one(n)
        })
        .await
    }

    async fn list_sms(&self, merchant_id: i64, page: Page) -> StoreResult<(Vec<SmsMessage>, i64)> {
        self.read(move |conn| {
            merchant_page(
                conn,
                "sms_messages",
                SMS_COLUMNS,
                merchant_id,
                page,
                sms_from_row,
            )
        })
        .await
    }
}
