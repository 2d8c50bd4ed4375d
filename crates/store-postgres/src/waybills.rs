//! 电子面单: the sender and carriers' channels, and one waybill per order,
//! claimed before the carrier is called (the claim locks the order's row,
//! so two nodes never call the carrier for one order at once).

use crate::sql::exec;
use crate::sql::expect_one;
use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::sql::opt;
use crate::PgStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::waybill::{
    carriers_from_json, carriers_to_json, WaybillClaim, WaybillSender, WaybillSettings,
    WaybillSettingsFields, CLAIM_SECONDS,
};
use kaquan_core::StoreResult;

#[async_trait::async_trait]
impl kaquan_core::waybill::WaybillStore for PgStore {
    async fn get_waybill_settings(&self, merchant_id: i64) -> StoreResult<Option<WaybillSettings>> {
        let row = opt(
            &self.client().await?,
            "SELECT sender_name, sender_phone, sender_province, sender_city, sender_district, sender_address, \
             sf_partner_id, sf_check_word_sealed, kuaidi100_key, kuaidi100_secret_sealed, key_version, carriers, updated_at \
             FROM waybill_settings WHERE merchant_id = $1",
            &[&merchant_id],
        )
        .await?;
        Ok(row.map(|r| WaybillSettings {
            merchant_id,
            fields: WaybillSettingsFields {
                sender: WaybillSender {
                    name: r.get(0),
                    phone: r.get(1),
                    province: r.get(2),
                    city: r.get(3),
                    district: r.get(4),
                    address: r.get(5),
                },
                sf_partner_id: r.get(6),
                sf_check_word: String::new(),
                kuaidi100_key: r.get(8),
                kuaidi100_secret: String::new(),
                carriers: carriers_from_json(r.get(11)),
            },
            sf_check_word_sealed: r.get(7),
            kuaidi100_secret_sealed: r.get(9),
            key_version: r.get(10),
            updated_at: r.get(12),
        }))
    }

    async fn save_waybill_settings(
        &self,
        settings: &WaybillSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let f = &settings.fields;
        let s = &f.sender;
        exec(
            &tx,
            "INSERT INTO waybill_settings (merchant_id, sender_name, sender_phone, sender_province, sender_city, \
             sender_district, sender_address, sf_partner_id, sf_check_word_sealed, kuaidi100_key, kuaidi100_secret_sealed, \
             key_version, carriers, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (merchant_id) DO UPDATE SET sender_name = excluded.sender_name, sender_phone = excluded.sender_phone, \
             sender_province = excluded.sender_province, sender_city = excluded.sender_city, \
             sender_district = excluded.sender_district, sender_address = excluded.sender_address, \
             sf_partner_id = excluded.sf_partner_id, \
             sf_check_word_sealed = coalesce(excluded.sf_check_word_sealed, waybill_settings.sf_check_word_sealed), \
             kuaidi100_key = excluded.kuaidi100_key, \
             kuaidi100_secret_sealed = coalesce(excluded.kuaidi100_secret_sealed, waybill_settings.kuaidi100_secret_sealed), \
             key_version = excluded.key_version, carriers = excluded.carriers, updated_at = excluded.updated_at",
            &[
                &settings.merchant_id, &s.name, &s.phone, &s.province, &s.city, &s.district, &s.address,
                &f.sf_partner_id, &settings.sf_check_word_sealed, &f.kuaidi100_key, &settings.kuaidi100_secret_sealed,
                &settings.key_version, &carriers_to_json(&f.carriers), &settings.updated_at,
            ],
        )
        .await?;
        insert_audit(&tx, audit, 1).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn claim_waybill(
        &self,
        merchant_id: i64,
        order_id: i64,
        carrier: &str,
        now: i64,
    ) -> StoreResult<WaybillClaim> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let claimed_until = now + CLAIM_SECONDS;
        let inserted = opt(
            &tx,
            "INSERT INTO waybills (merchant_id, order_id, carrier, state, calls, claimed_until, created_at, updated_at) \
             VALUES ($1, $2, $3, 'calling', 1, $4, $5, $5) ON CONFLICT (merchant_id, order_id) DO NOTHING RETURNING 1",
            &[&merchant_id, &order_id, &carrier, &claimed_until, &now],
        )
        .await?;
        let claim = if inserted.is_some() {
            WaybillClaim::Call
        } else {
            let r = opt(
                &tx,
                "SELECT state, waybill_no, claimed_until FROM waybills WHERE merchant_id = $1 AND order_id = $2 FOR UPDATE",
                &[&merchant_id, &order_id],
            )
            .await?
            .ok_or(kaquan_core::StoreError::NotFound)?;
            let (state, no, until): (String, Option<String>, i64) = (r.get(0), r.get(1), r.get(2));
            match (state.as_str(), no) {
                ("created", Some(no)) => WaybillClaim::Done(no),
                ("calling", _) if until > now => WaybillClaim::Busy,
                _ => {
                    expect_one(
                        exec(
                            &tx,
                            "UPDATE waybills SET state = 'calling', carrier = $3, calls = calls + 1, claimed_until = $4, updated_at = $5 \
                             WHERE merchant_id = $1 AND order_id = $2 AND state <> 'created'",
                            &[&merchant_id, &order_id, &carrier, &claimed_until, &now],
                        )
                        .await?,
                    )?;
                    WaybillClaim::Call
                }
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(claim)
    }

    async fn record_waybill(
        &self,
        merchant_id: i64,
        order_id: i64,
        result: Result<&str, &str>,
        now: i64,
    ) -> StoreResult<()> {
        let (state, no, error) = match result {
            Ok(no) => ("created", Some(no.to_owned()), String::new()),
            Err(error) => ("failed", None, error.to_owned()),
        };
        expect_one(
            exec(
                &self.client().await?,
                "UPDATE waybills SET state = $3, waybill_no = coalesce($4, waybill_no), error = $5, claimed_until = 0, updated_at = $6 \
                 WHERE merchant_id = $1 AND order_id = $2 AND state = 'calling'",
                &[&merchant_id, &order_id, &state, &no, &error, &now],
            )
            .await?,
        )
    }
}
