//! 电子面单: the merchant's sender (寄件人) and, per carrier of 物流配置,
//! the e-waybill channel with its 月结代码 and 产品类型; one waybill per
//! order, claimed before the carrier is called so that a second click or a
//! retry never makes a second one; and the request signatures of the two
//! channels - SF Express's open platform (`msgDigest`, 标准MD5) and 快递100
//! (`sign`) - pinned to their published vectors.

use crate::secrets::MasterKey;
use crate::signing::{md5_hex, md5_raw};
use crate::StoreResult;

/// 寄件人: every field is needed (seed 003: 省市县必须要全部写完).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaybillSender {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub address: String,
}

/// Which e-waybill service a carrier is ordered through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaybillChannel {
    /// 顺丰开放平台 (丰桥), `EXP_RECE_CREATE_ORDER`.
    SfExpress,
    /// 快递100 电子面单 for the other carriers.
    Kuaidi100,
}

impl WaybillChannel {
    pub const ALL: [WaybillChannel; 2] = [Self::SfExpress, Self::Kuaidi100];

    pub fn code(self) -> &'static str {
        match self {
            Self::SfExpress => "sf",
            Self::Kuaidi100 => "kuaidi100",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::SfExpress => "顺丰开放平台",
            Self::Kuaidi100 => "快递100",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// How one carrier of 物流配置 (顺丰速运, or a variant such as 省外顺丰)
/// makes its waybills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierChannel {
    pub carrier: String,
    pub channel: WaybillChannel,
    /// 月结代码 (SF `monthlyCard`; 快递100 `partnerId`).
    pub monthly_account: String,
    /// 产品类型 (SF `expressTypeId`, e.g. 1 标快, 2 特快; 快递100 `expType`).
    pub product_type: String,
    /// 快递100's carrier code (`kuaidicom`, e.g. `zhongtong`); empty for SF.
    pub carrier_code: String,
}

/// 电子面单设置 as entered: the channel secrets in the clear only on their
/// way to being sealed (empty keeps the saved one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaybillSettingsFields {
    pub sender: WaybillSender,
    /// SF 顾客编码 (`partnerID`) and 校验码 (`checkWord`).
    pub sf_partner_id: String,
    pub sf_check_word: String,
    /// 快递100 授权 key and secret.
    pub kuaidi100_key: String,
    pub kuaidi100_secret: String,
    pub carriers: Vec<CarrierChannel>,
}

/// The saved settings: the SF check word and the 快递100 secret sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaybillSettings {
    pub merchant_id: i64,
    pub fields: WaybillSettingsFields,
    pub sf_check_word_sealed: Option<Vec<u8>>,
    pub kuaidi100_secret_sealed: Option<Vec<u8>>,
    pub key_version: i32,
    pub updated_at: i64,
}

const SF_CONTEXT: &str = "waybill-sf";
const KUAIDI100_CONTEXT: &str = "waybill-kuaidi100";

/// Most carriers with an e-waybill channel.
pub const CARRIER_CHANNELS_MAX: usize = 30;

/// Checks the settings: a whole sender, and per carrier a channel whose
/// account is set up, a 月结代码 and a 产品类型.
pub fn check_settings(
    fields: &WaybillSettingsFields,
    saved: Option<&WaybillSettings>,
    known_carriers: &[String],
) -> Result<(), String> {
    let s = &fields.sender;
    let limits = [
        ("寄件人", &s.name, 64),
        ("寄件人电话", &s.phone, 20),
        ("省", &s.province, 32),
        ("市", &s.city, 32),
        ("区县", &s.district, 32),
        ("详细地址", &s.address, 100),
        ("顺丰顾客编码", &fields.sf_partner_id, 64),
        ("顺丰校验码", &fields.sf_check_word, 64),
        ("快递100 key", &fields.kuaidi100_key, 64),
        ("快递100 secret", &fields.kuaidi100_secret, 64),
    ];
    for (what, value, max) in limits {
        crate::text::check_field(what, value, max)?;
    }
    for (what, value) in [
        ("寄件人", &s.name),
        ("寄件人电话", &s.phone),
        ("省", &s.province),
        ("市", &s.city),
        ("区县", &s.district),
        ("详细地址", &s.address),
    ] {
        if value.trim().is_empty() {
            return Err(format!("请填写{what}：电子面单的寄件人省市县须全部写完"));
        }
    }
    if fields.carriers.len() > CARRIER_CHANNELS_MAX {
        return Err(format!("最多配置 {CARRIER_CHANNELS_MAX} 家物流"));
    }
    let has_sf = !fields.sf_partner_id.is_empty()
        && (!fields.sf_check_word.is_empty()
            || saved.is_some_and(|s| s.sf_check_word_sealed.is_some()));
    let has_kd = !fields.kuaidi100_key.is_empty()
        && (!fields.kuaidi100_secret.is_empty()
            || saved.is_some_and(|s| s.kuaidi100_secret_sealed.is_some()));
    for (i, c) in fields.carriers.iter().enumerate() {
        if !known_carriers.iter().any(|k| k == &c.carrier) {
            return Err(format!("物流公司「{}」不在物流配置中", c.carrier));
        }
        if fields.carriers[..i].iter().any(|d| d.carrier == c.carrier) {
            return Err(format!("物流公司「{}」配置了两次", c.carrier));
        }
        for (field, value) in [
            (format!("{}的月结代码", c.carrier), &c.monthly_account),
            (format!("{}的产品类型", c.carrier), &c.product_type),
            (format!("{}的快递公司编码", c.carrier), &c.carrier_code),
        ] {
            crate::text::check_field(&field, value, 64)?;
        }
        if c.monthly_account.trim().is_empty() || c.product_type.trim().is_empty() {
            return Err(format!("请填写{}的月结代码和产品类型", c.carrier));
        }
        match c.channel {
            WaybillChannel::SfExpress if !has_sf => {
                return Err("使用顺丰开放平台须填写顾客编码和校验码".into())
            }
            WaybillChannel::Kuaidi100 if !has_kd => {
                return Err("使用快递100须填写 key 和 secret".into())
            }
            WaybillChannel::Kuaidi100 if c.carrier_code.trim().is_empty() => {
                return Err(format!("请填写{}在快递100的快递公司编码", c.carrier))
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn seal_sf(
    master: &MasterKey,
    merchant_id: i64,
    key_version: i32,
    check_word: &str,
) -> Vec<u8> {
    master
        .merchant_keys(merchant_id, key_version)
        .seal(SF_CONTEXT, check_word)
}

pub fn seal_kuaidi100(
    master: &MasterKey,
    merchant_id: i64,
    key_version: i32,
    secret: &str,
) -> Vec<u8> {
    master
        .merchant_keys(merchant_id, key_version)
        .seal(KUAIDI100_CONTEXT, secret)
}

/// The SF check word and the 快递100 secret, opened.
pub fn open_secrets(
    master: &MasterKey,
    settings: &WaybillSettings,
) -> (Option<String>, Option<String>) {
    let keys = master.merchant_keys(settings.merchant_id, settings.key_version);
    (
        settings
            .sf_check_word_sealed
            .as_deref()
            .and_then(|s| keys.open(SF_CONTEXT, s)),
        settings
            .kuaidi100_secret_sealed
            .as_deref()
            .and_then(|s| keys.open(KUAIDI100_CONTEXT, s)),
    )
}

/// The carriers' channels as stored (a JSON array).
pub fn carriers_to_json(carriers: &[CarrierChannel]) -> String {
    serde_json::Value::Array(
        carriers
            .iter()
            .map(|c| {
                serde_json::json!({"carrier": c.carrier, "channel": c.channel.code(),
                    "monthly_account": c.monthly_account, "product_type": c.product_type,
                    "carrier_code": c.carrier_code})
            })
            .collect(),
    )
    .to_string()
}

/// The carriers' channels read back; an unreadable entry is left out.
pub fn carriers_from_json(text: &str) -> Vec<CarrierChannel> {
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            Some(CarrierChannel {
                carrier: text(&c["carrier"]),
                channel: WaybillChannel::parse(c["channel"].as_str()?)?,
                monthly_account: text(&c["monthly_account"]),
                product_type: text(&c["product_type"]),
                carrier_code: text(&c["carrier_code"]),
            })
        })
        .collect()
}

/// The order id a channel is given for an order: the same on every try,
/// so the carrier answers a retry with the first waybill.
pub fn channel_order_id(order_id: i64) -> String {
    format!("KQ{order_id}")
}

/// A try to claim an order's waybill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaybillClaim {
    /// Call the carrier (the first time, or again after a failure).
    Call,
    /// The order has its waybill already: no call.
    Done(String),
    /// Another request is calling the carrier for this order right now.
    Busy,
}

/// How long a claim keeps others from calling the carrier for the order:
/// longer than any call.
pub const CLAIM_SECONDS: i64 = 60;

/// 电子面单设置 and the waybills in the database.
#[async_trait::async_trait]
pub trait WaybillStore: Send + Sync + 'static {
    async fn get_waybill_settings(&self, merchant_id: i64) -> StoreResult<Option<WaybillSettings>>;
    /// Saves the settings (a sealed secret `None` keeps the saved one) with an audit record.
    async fn save_waybill_settings(
        &self,
        settings: &WaybillSettings,
        audit: &crate::audit::AuditEntry,
    ) -> StoreResult<()>;
    /// Claims the order's waybill for a call to the carrier: one caller at
    /// a time, none once it has its waybill.
    async fn claim_waybill(
        &self,
        merchant_id: i64,
        order_id: i64,
        carrier: &str,
        now: i64,
    ) -> StoreResult<WaybillClaim>;
    /// Records what the carrier answered: the waybill number, or the error.
    async fn record_waybill(
        &self,
        merchant_id: i64,
        order_id: i64,
        result: Result<&str, &str>,
        now: i64,
    ) -> StoreResult<()>;
}

/// `java.net.URLEncoder.encode(text, "UTF-8")`: letters, digits and
/// `. - * _` kept, space as `+`, every other byte `%XX` (uppercase).
pub fn java_url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || b".-*_".contains(&b) => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// SF Express's `msgDigest` (标准MD5): base64 of the MD5 of the
/// URL-encoded `msgData + timestamp + checkWord`.
pub fn sf_msg_digest(msg_data: &str, timestamp: &str, check_word: &str) -> String {
    use base64::Engine;
    let encoded = java_url_encode(&format!("{msg_data}{timestamp}{check_word}"));
    base64::engine::general_purpose::STANDARD.encode(md5_raw(encoded.as_bytes()))
}

/// 快递100's `sign`: uppercase hex MD5 of `param + t + key + secret`.
pub fn kuaidi100_sign(param: &str, t: &str, key: &str, secret: &str) -> String {
    md5_hex(format!("{param}{t}{key}{secret}").as_bytes()).to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG_DATA: &str = r#"{"language":"zh-CN","orderId":"QIAO-20200618-004"}"#;

    #[test]
    fn sf_matches_the_documented_example() {
        assert_eq!(
            sf_msg_digest(
                MSG_DATA,
                "12312334453453",
                "fjcg5PGKaNpPSHFAZ4QsCOkV71R3zVci"
            ),
            "IIKJtuLVzoFTu4kHI8M8vA=="
        );
        assert_eq!(
            sf_msg_digest(
                MSG_DATA,
                "1652410044726",
                "cURqDC12jflwXdruegDudWwXBVSsQk7t"
            ),
            "qgwN2Vcl2SDRwnNzbX7B6A=="
        );
    }

    #[test]
    fn the_java_encoder_keeps_what_java_keeps() {
        assert_eq!(java_url_encode("a b.c-d*e_f~"), "a+b.c-d*e_f%7E");
        assert_eq!(
            java_url_encode("{\"k\":\"顺\"}"),
            "%7B%22k%22%3A%22%E9%A1%BA%22%7D"
        );
    }

    fn settings() -> WaybillSettingsFields {
        WaybillSettingsFields {
            sender: WaybillSender {
                name: "果园仓".into(),
                phone: "0571-88880000".into(),
                province: "浙江省".into(),
                city: "杭州市".into(),
                district: "西湖区".into(),
                address: "文三路 1 号".into(),
            },
            sf_partner_id: "KQ_SF".into(),
            sf_check_word: "check".into(),
            carriers: vec![CarrierChannel {
                carrier: "省外顺丰".into(),
                channel: WaybillChannel::SfExpress,
                monthly_account: "7551234567".into(),
                product_type: "2".into(),
                carrier_code: String::new(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn settings_need_a_whole_sender_and_a_set_up_channel() {
        let known = vec![
            "顺丰速运".to_owned(),
            "省外顺丰".to_owned(),
            "中通快递".to_owned(),
        ];
        assert_eq!(check_settings(&settings(), None, &known), Ok(()));
        let mut no_district = settings();
        no_district.sender.district = " ".into();
        assert!(check_settings(&no_district, None, &known)
            .unwrap_err()
            .contains("省市县"));
        let mut unknown = settings();
        unknown.carriers[0].carrier = "某快递".into();
        assert!(check_settings(&unknown, None, &known)
            .unwrap_err()
            .contains("物流配置"));
        let mut twice = settings();
        twice.carriers.push(twice.carriers[0].clone());
        assert!(check_settings(&twice, None, &known)
            .unwrap_err()
            .contains("两次"));
        let mut no_account = settings();
        no_account.carriers[0].monthly_account.clear();
        assert!(check_settings(&no_account, None, &known)
            .unwrap_err()
            .contains("月结代码"));
        let mut no_secret = settings();
        no_secret.sf_check_word.clear();
        assert!(check_settings(&no_secret, None, &known)
            .unwrap_err()
            .contains("校验码"));
        let saved = WaybillSettings {
            sf_check_word_sealed: Some(vec![1]),
            ..Default::default()
        };
        assert_eq!(
            check_settings(&no_secret, Some(&saved), &known),
            Ok(()),
            "the saved one is kept"
        );
        let mut kd = settings();
        kd.carriers.push(CarrierChannel {
            carrier: "中通快递".into(),
            channel: WaybillChannel::Kuaidi100,
            monthly_account: "z1".into(),
            product_type: "标准快递".into(),
            carrier_code: String::new(),
        });
        assert!(check_settings(&kd, None, &known)
            .unwrap_err()
            .contains("key"));
        kd.kuaidi100_key = "k".into();
        kd.kuaidi100_secret = "s".into();
        assert!(check_settings(&kd, None, &known)
            .unwrap_err()
            .contains("编码"));
        kd.carriers[1].carrier_code = "zhongtong".into();
        assert_eq!(check_settings(&kd, None, &known), Ok(()));
        assert_eq!(
            carriers_from_json(&carriers_to_json(&kd.carriers)),
            kd.carriers
        );
        assert!(carriers_from_json("not json").is_empty());
        assert_eq!(channel_order_id(42), "KQ42");
    }

    #[test]
    fn limits_are_exact_and_secrets_sealed_per_merchant() {
        let known = vec!["省外顺丰".to_owned()];
        let mut f = settings();
        f.sender.address = "路".repeat(100);
        assert_eq!(check_settings(&f, None, &known), Ok(()));
        f.sender.address = "路".repeat(101);
        assert!(check_settings(&f, None, &known).is_err());
        f.sender.address = "文三路\u{0}".into();
        assert!(check_settings(&f, None, &known).is_err());
        let mut f = settings();
        f.carriers[0].monthly_account = "7".repeat(64);
        assert_eq!(check_settings(&f, None, &known), Ok(()));
        f.carriers[0].monthly_account = "7".repeat(65);
        assert!(check_settings(&f, None, &known).is_err());
        f.carriers[0].monthly_account = "7\u{1}".into();
        assert!(check_settings(&f, None, &known).is_err());
        let mut f = settings();
        f.carriers[0].product_type = " ".into();
        assert!(check_settings(&f, None, &known)
            .unwrap_err()
            .contains("产品类型"));
        let many: Vec<String> = (0..=CARRIER_CHANNELS_MAX)
            .map(|i| format!("c{i}"))
            .collect();
        let mut f = settings();
        f.carriers = many[..CARRIER_CHANNELS_MAX]
            .iter()
            .map(|c| CarrierChannel {
                carrier: c.clone(),
                ..settings().carriers[0].clone()
            })
            .collect();
        assert_eq!(check_settings(&f, None, &many), Ok(()));
        f.carriers.push(CarrierChannel {
            carrier: many[CARRIER_CHANNELS_MAX].clone(),
            ..settings().carriers[0].clone()
        });
        assert!(check_settings(&f, None, &many)
            .unwrap_err()
            .contains("最多"));
        // An account id without its secret (saved or given) is not set up.
        let mut f = settings();
        f.sf_partner_id.clear();
        assert!(check_settings(&f, None, &known)
            .unwrap_err()
            .contains("顾客编码"));
        let master = MasterKey::from_bytes([3; 32]);
        let saved = WaybillSettings {
            merchant_id: 4,
            key_version: 1,
            sf_check_word_sealed: Some(seal_sf(&master, 4, 1, "check")),
            kuaidi100_secret_sealed: Some(seal_kuaidi100(&master, 4, 1, "kd")),
            ..Default::default()
        };
        assert_eq!(
            open_secrets(&master, &saved),
            (Some("check".into()), Some("kd".into()))
        );
        assert_eq!(
            open_secrets(
                &master,
                &WaybillSettings {
                    merchant_id: 5,
                    ..saved.clone()
                }
            ),
            (None, None)
        );
        assert_ne!(
            WaybillChannel::SfExpress.label(),
            WaybillChannel::Kuaidi100.label()
        );
        assert!(WaybillChannel::ALL
            .iter()
            .all(|c| c.label().contains("顺丰") || c.label().contains("快递100")));
    }

    #[test]
    fn kuaidi100_matches_the_pinned_vector() {
        assert_eq!(
            kuaidi100_sign(r#"{"a":1}"#, "1700000000000", "key", "secret"),
            "02ABE0B0C5C14E06EFBC8395E72B7160"
        );
    }
}
