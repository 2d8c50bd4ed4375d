//! 电子面单: the sender and carriers' channels, and one waybill per order,
//! claimed before the carrier is called.

use crate::sql::insert_audit;
use crate::sql::map_err;
use crate::SqliteStore;
use kaquan_core::audit::AuditEntry;
use kaquan_core::waybill::{
    carriers_from_json, carriers_to_json, WaybillClaim, WaybillSender, WaybillSettings,
    WaybillSettingsFields, CLAIM_SECONDS,
};
use kaquan_core::{StoreError, StoreResult};
use rusqlite::{params, OptionalExtension};

#[async_trait::async_trait]
impl kaquan_core::waybill::WaybillStore for SqliteStore {
    async fn get_waybill_settings(&self, merchant_id: i64) -> StoreResult<Option<WaybillSettings>> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT sender_name, sender_phone, sender_province, sender_city, sender_district, sender_address, \
                 sf_partner_id, sf_check_word_sealed, kuaidi100_key, kuaidi100_secret_sealed, key_version, carriers, updated_at \
                 FROM waybill_settings WHERE merchant_id = ?1",
                [merchant_id],
                |r| {
                    Ok(WaybillSettings {
                        merchant_id,
                        fields: WaybillSettingsFields {
                            sender: WaybillSender {
                                name: r.get(0)?,
                                phone: r.get(1)?,
                                province: r.get(2)?,
                                city: r.get(3)?,
                                district: r.get(4)?,
                                address: r.get(5)?,
                            },
                            sf_partner_id: r.get(6)?,
                            sf_check_word: String::new(),
                            kuaidi100_key: r.get(8)?,
                            kuaidi100_secret: String::new(),
                            carriers: carriers_from_json(&r.get::<_, String>(11)?),
                        },
                        sf_check_word_sealed: r.get(7)?,
                        kuaidi100_secret_sealed: r.get(9)?,
                        key_version: r.get(10)?,
                        updated_at: r.get(12)?,
                    })
                },
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn save_waybill_settings(
        &self,
        settings: &WaybillSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let (settings, audit) = (settings.clone(), audit.clone());
        self.write(move |conn| {
            let f = &settings.fields;
            let s = &f.sender;
            conn.execute(
                "INSERT INTO waybill_settings (merchant_id, sender_name, sender_phone, sender_province, sender_city, \
                 sender_district, sender_address, sf_partner_id, sf_check_word_sealed, kuaidi100_key, kuaidi100_secret_sealed, \
                 key_version, carriers, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
                 ON CONFLICT (merchant_id) DO UPDATE SET sender_name = excluded.sender_name, sender_phone = excluded.sender_phone, \
                 sender_province = excluded.sender_province, sender_city = excluded.sender_city, \
                 sender_district = excluded.sender_district, sender_address = excluded.sender_address, \
                 sf_partner_id = excluded.sf_partner_id, \
                 sf_check_word_sealed = coalesce(excluded.sf_check_word_sealed, waybill_settings.sf_check_word_sealed), \
                 kuaidi100_key = excluded.kuaidi100_key, \
                 kuaidi100_secret_sealed = coalesce(excluded.kuaidi100_secret_sealed, waybill_settings.kuaidi100_secret_sealed), \
                 key_version = excluded.key_version, carriers = excluded.carriers, updated_at = excluded.updated_at",
                params![
                    settings.merchant_id, s.name, s.phone, s.province, s.city, s.district, s.address,
                    f.sf_partner_id, settings.sf_check_word_sealed, f.kuaidi100_key, settings.kuaidi100_secret_sealed,
                    settings.key_version, carriers_to_json(&f.carriers), settings.updated_at
                ],
            )
            .map_err(map_err)?;
            insert_audit(conn, &audit, 1).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn claim_waybill(
        &self,
        merchant_id: i64,
        order_id: i64,
        carrier: &str,
        now: i64,
    ) -> StoreResult<WaybillClaim> {
        let carrier = carrier.to_owned();
        self.write(move |conn| {
            let found: Option<(String, Option<String>, i64)> = conn
                .query_row(
                    "SELECT state, waybill_no, claimed_until FROM waybills WHERE merchant_id = ?1 AND order_id = ?2",
                    params![merchant_id, order_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(map_err)?;
            let claimed_until = now + CLAIM_SECONDS;
            match found {
                None => {
                    conn.execute(
                        "INSERT INTO waybills (merchant_id, order_id, carrier, state, calls, claimed_until, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, 'calling', 1, ?4, ?5, ?5)",
                        params![merchant_id, order_id, carrier, claimed_until, now],
                    )
                    .map_err(map_err)?;
                    Ok(WaybillClaim::Call)
                }
                Some((state, Some(no), _)) if state == "created" => Ok(WaybillClaim::Done(no)),
                Some((state, _, until)) if state == "calling" && until > now => Ok(WaybillClaim::Busy),
                Some(_) => {
                    let n = conn
                        .execute(
                            "UPDATE waybills SET state = 'calling', carrier = ?3, calls = calls + 1, claimed_until = ?4, updated_at = ?5 \
                             WHERE merchant_id = ?1 AND order_id = ?2 AND state <> 'created' AND (state = 'failed' OR claimed_until <= ?5)",
                            params![merchant_id, order_id, carrier, claimed_until, now],
                        )
                        .map_err(map_err)?;
                    crate::sql::expect_one(n)?;
                    Ok(WaybillClaim::Call)
                }
            }
        })
        .await
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
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE waybills SET state = ?3, waybill_no = coalesce(?4, waybill_no), error = ?5, claimed_until = 0, updated_at = ?6 \
                     WHERE merchant_id = ?1 AND order_id = ?2 AND state = 'calling'",
                    params![merchant_id, order_id, state, no, error, now],
                )
                .map_err(map_err)?;
            if n == 1 {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            }
        })
        .await
    }
}
