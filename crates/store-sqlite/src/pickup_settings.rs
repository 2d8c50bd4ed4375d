//! 提货设置, the merchant's carriers and the pickup page's logo.

use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::pickup::AppointmentMode;
use kaquan_core::pickup::{format_blocked_dates, parse_blocked_dates, PickupSettings};
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{params, OptionalExtension};

#[async_trait::async_trait]
impl kaquan_core::pickup::PickupSettingsStore for SqliteStore {
    async fn get_pickup_settings(&self, merchant_id: i64) -> StoreResult<PickupSettings> {
        self.read(move |conn| {
            let row = conn
                .query_row(
                    "SELECT title, notice, enabled, closed_message, appointment_mode, appointment_min_days, appointment_from, \
                     appointment_until, blocked_dates, redirect_url, attempts_per_card, attempts_per_client, public_url \
                     FROM pickup_settings WHERE merchant_id = ?1",
                    [merchant_id],
                    |r| {
                        Ok((
                            (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?, r.get::<_, String>(3)?),
                            (r.get::<_, String>(4)?, r.get::<_, Option<i64>>(5)?, r.get::<_, Option<String>>(6)?, r.get::<_, Option<String>>(7)?),
                            (r.get::<_, String>(8)?, r.get::<_, Option<String>>(9)?, r.get::<_, i64>(10)?, r.get::<_, i64>(11)?),
                            r.get::<_, Option<String>>(12)?,
                        ))
                    },
                )
                .optional()
                .map_err(map_err)?;
            let Some(((title, notice, enabled, closed_message), (mode, min_days, from, until), (blocked, redirect_url, per_card, per_client), public_url)) = row
            else {
                return Ok(PickupSettings::default());
            };
            Ok(PickupSettings {
                title,
                notice,
                enabled,
                closed_message,
                appointment: AppointmentMode::from_parts(&mode, min_days, from.as_deref(), until.as_deref()).map_err(StoreError::Backend)?,
                blocked_dates: parse_blocked_dates(&blocked).map_err(StoreError::Backend)?,
                redirect_url,
                attempts_per_card: per_card,
                attempts_per_client: per_client,
                public_url,
            })
        })
        .await
    }

    async fn put_pickup_settings(
        &self,
        merchant_id: i64,
        settings: &PickupSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (settings, audit) = (settings.clone(), audit.clone());
        self.write(move |conn| {
            let (mode, min_days, from, until) = settings.appointment.to_parts();
            conn.execute(
                "INSERT INTO pickup_settings (merchant_id, title, notice, enabled, closed_message, appointment_mode, appointment_min_days, \
                 appointment_from, appointment_until, blocked_dates, redirect_url, attempts_per_card, attempts_per_client, updated_at, public_url) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
                 ON CONFLICT (merchant_id) DO UPDATE SET title = excluded.title, notice = excluded.notice, enabled = excluded.enabled, \
                 closed_message = excluded.closed_message, appointment_mode = excluded.appointment_mode, \
                 appointment_min_days = excluded.appointment_min_days, appointment_from = excluded.appointment_from, \
                 appointment_until = excluded.appointment_until, blocked_dates = excluded.blocked_dates, \
                 redirect_url = excluded.redirect_url, attempts_per_card = excluded.attempts_per_card, \
                 attempts_per_client = excluded.attempts_per_client, updated_at = excluded.updated_at, \
                 public_url = excluded.public_url",
                params![
                    merchant_id,
                    settings.title,
                    settings.notice,
                    settings.enabled,
                    settings.closed_message,
                    mode,
                    min_days,
                    from,
                    until,
                    format_blocked_dates(&settings.blocked_dates),
                    settings.redirect_url,
                    settings.attempts_per_card,
                    settings.attempts_per_client,
                    audit.created_at,
                    settings.public_url
                ],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_carriers(&self, merchant_id: i64) -> StoreResult<Vec<String>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT name FROM carriers WHERE merchant_id = ?1 ORDER BY name")
                .map_err(map_err)?;
            let rows = stmt
                .query_map([merchant_id], |r| r.get(0))
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn add_carrier(&self, merchant_id: i64, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO carriers (merchant_id, name) VALUES (?1, ?2)",
                params![merchant_id, name],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn put_logo(
        &self,
        merchant_id: i64,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        let (content_type, bytes) = (content_type.to_owned(), bytes.to_vec());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO merchant_logos (merchant_id, content_type, bytes, updated_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (merchant_id) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, \
                 updated_at = excluded.updated_at",
                params![merchant_id, content_type, bytes, now],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn logo_updated_at(&self, merchant_id: i64) -> StoreResult<Option<i64>> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT updated_at FROM merchant_logos WHERE merchant_id = ?1",
                [merchant_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn get_logo(&self, merchant_id: i64) -> StoreResult<Option<(String, Vec<u8>)>> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT content_type, bytes FROM merchant_logos WHERE merchant_id = ?1",
                [merchant_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }
}
