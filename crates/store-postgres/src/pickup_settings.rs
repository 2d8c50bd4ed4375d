//! 提货设置, the merchant's carriers and the pickup page's logo.

use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::{exec, opt};
use crate::PgStore;
use deadpool_postgres::GenericClient;
use kaquan_core::audit::AuditEntry;
use kaquan_core::pickup::AppointmentMode;
use kaquan_core::pickup::{format_blocked_dates, parse_blocked_dates, PickupSettings};
use kaquan_core::{StoreError, StoreResult};

#[async_trait::async_trait]
impl kaquan_core::pickup::PickupSettingsStore for PgStore {
    async fn get_pickup_settings(&self, merchant_id: i64) -> StoreResult<PickupSettings> {
        let rows = self
            .query_cached(
                "SELECT title, notice, enabled, closed_message, appointment_mode, appointment_min_days, appointment_from, \
                 appointment_until, blocked_dates, redirect_url, attempts_per_card, attempts_per_client, public_url \
                 FROM pickup_settings WHERE merchant_id = $1",
                &[&merchant_id],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(PickupSettings::default());
        };
        let (from, until): (Option<String>, Option<String>) = (r.get(6), r.get(7));
        Ok(PickupSettings {
            title: r.get(0),
            notice: r.get(1),
            enabled: r.get(2),
            closed_message: r.get(3),
            appointment: AppointmentMode::from_parts(
                r.get(4),
                r.get(5),
                from.as_deref(),
                until.as_deref(),
            )
            .map_err(StoreError::Backend)?,
            blocked_dates: parse_blocked_dates(r.get(8)).map_err(StoreError::Backend)?,
            public_url: r.get(12),
            redirect_url: r.get(9),
            attempts_per_card: r.get(10),
            attempts_per_client: r.get(11),
        })
    }

    async fn put_pickup_settings(
        &self,
        merchant_id: i64,
        settings: &PickupSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (mode, min_days, from, until) = settings.appointment.to_parts();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        exec(&tx, "INSERT INTO pickup_settings (merchant_id, title, notice, enabled, closed_message, appointment_mode, appointment_min_days, \
             appointment_from, appointment_until, blocked_dates, redirect_url, attempts_per_card, attempts_per_client, updated_at, public_url) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (merchant_id) DO UPDATE SET title = excluded.title, notice = excluded.notice, enabled = excluded.enabled, \
             closed_message = excluded.closed_message, appointment_mode = excluded.appointment_mode, \
             appointment_min_days = excluded.appointment_min_days, appointment_from = excluded.appointment_from, \
             appointment_until = excluded.appointment_until, blocked_dates = excluded.blocked_dates, \
             redirect_url = excluded.redirect_url, attempts_per_card = excluded.attempts_per_card, \
             attempts_per_client = excluded.attempts_per_client, updated_at = excluded.updated_at, \
             public_url = excluded.public_url",
            &[
                &merchant_id,
                &settings.title,
                &settings.notice,
                &settings.enabled,
                &settings.closed_message,
                &mode,
                &min_days,
                &from,
                &until,
                &format_blocked_dates(&settings.blocked_dates),
                &settings.redirect_url,
                &settings.attempts_per_card,
                &settings.attempts_per_client,
                &audit.created_at,
                &settings.public_url,
            ]).await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_carriers(&self, merchant_id: i64) -> StoreResult<Vec<String>> {
        self.query_strings(
            "SELECT name FROM carriers WHERE merchant_id = $1 ORDER BY name",
            &[&merchant_id],
        )
        .await
    }

    async fn add_carrier(&self, merchant_id: i64, name: &str) -> StoreResult<()> {
        exec(
            &self.client().await?,
            "INSERT INTO carriers (merchant_id, name) VALUES ($1, $2)",
            &[&merchant_id, &name],
        )
        .await?;
        Ok(())
    }

    async fn put_logo(
        &self,
        merchant_id: i64,
        content_type: &str,
        bytes: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        exec(&self.client().await?, "INSERT INTO merchant_logos (merchant_id, content_type, bytes, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (merchant_id) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, \
                 updated_at = excluded.updated_at",
                &[&merchant_id, &content_type, &bytes, &now]).await?;
        Ok(())
    }

    async fn logo_updated_at(&self, merchant_id: i64) -> StoreResult<Option<i64>> {
        let row = opt(
            &self.client().await?,
            "SELECT updated_at FROM merchant_logos WHERE merchant_id = $1",
            &[&merchant_id],
        )
        .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn get_logo(&self, merchant_id: i64) -> StoreResult<Option<(String, Vec<u8>)>> {
        let row = opt(
            &self.client().await?,
            "SELECT content_type, bytes FROM merchant_logos WHERE merchant_id = $1",
            &[&merchant_id],
        )
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }
}
