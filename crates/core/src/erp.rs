//! ERP 参数 (旺店通 企业版 openapi2): pickup orders to be shipped are pushed
//! to the merchant's 旺店通 as trades (`trade_push.php`), new and changed
//! alike, with the goods mapped by their ERP 编码. A push is planned in the
//! transaction that records the order's event and sent later by a worker,
//! which reads the order as it is then; 旺店通 updates a trade pushed again
//! with the same `tid`, so a retry never makes a second trade.

use crate::event::{EventType, NewEvent};
use crate::pickup::order::PickupOrder;
use crate::pickup::OrderStatus;
use crate::secrets::MasterKey;
use crate::signing::md5_hex;
use crate::StoreResult;
use serde_json::{json, Value};

/// The merchant's ERP 参数 as entered (the appsecret in the clear only on
/// its way to being sealed; empty keeps the saved one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErpSettingsFields {
    /// 开关: push orders at all.
    pub enabled: bool,
    /// 卖家账号.
    pub sid: String,
    pub appkey: String,
    pub appsecret: String,
    /// 店铺编号 in 旺店通.
    pub shop_no: String,
}

/// The saved settings: the appsecret sealed with the merchant's key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErpSettings {
    pub merchant_id: i64,
    pub fields: ErpSettingsFields,
    pub secret_sealed: Option<Vec<u8>>,
    pub key_version: i32,
    pub updated_at: i64,
}

const ERP_SECRET_CONTEXT: &str = "erp-settings";

/// Checks the fields: everything is needed once the switch is on.
pub fn check_settings(fields: &ErpSettingsFields, has_saved_secret: bool) -> Result<(), String> {
    for (what, value) in [
        ("卖家账号 sid", &fields.sid),
        ("appkey", &fields.appkey),
        ("appsecret", &fields.appsecret),
        ("店铺编号", &fields.shop_no),
    ] {
        crate::text::check_field(what, value, 64)?;
    }
    if fields.enabled {
        let missing = [
            ("卖家账号 sid", fields.sid.trim().is_empty()),
            ("appkey", fields.appkey.trim().is_empty()),
            (
                "appsecret",
                fields.appsecret.is_empty() && !has_saved_secret,
            ),
            ("店铺编号", fields.shop_no.trim().is_empty()),
        ]
        .into_iter()
        .find(|(_, missing)| *missing);
        if let Some((what, _)) = missing {
            return Err(format!("开启推送须填写{what}"));
        }
    }
    Ok(())
}

pub fn seal_secret(
    master: &MasterKey,
    merchant_id: i64,
    key_version: i32,
    secret: &str,
) -> Vec<u8> {
    master
        .merchant_keys(merchant_id, key_version)
        .seal(ERP_SECRET_CONTEXT, secret)
}

pub fn open_secret(master: &MasterKey, settings: &ErpSettings) -> Option<String> {
    master
        .merchant_keys(settings.merchant_id, settings.key_version)
        .open(ERP_SECRET_CONTEXT, settings.secret_sealed.as_deref()?)
}

/// Whether an event may cause a push (so a store reads the settings only then).
pub fn wants(event_type: EventType) -> bool {
    matches!(
        event_type,
        EventType::PickupOrderCreated
            | EventType::PickupOrderShipped
            | EventType::PickupOrderCancelled
    )
}

/// The order a push is planned for: orders to be delivered (with a
/// consignee) when the switch is on; none for a hand-over in store.
pub fn push_for(event: &NewEvent, settings: &ErpSettings) -> Option<i64> {
    if !settings.fields.enabled || !wants(event.event_type) {
        return None;
    }
    let data: Value = serde_json::from_str(&event.data).ok()?;
    let has_consignee = data["consignee"].as_str().is_some_and(|c| !c.is_empty());
    has_consignee.then(|| data["order_id"].as_i64()).flatten()
}

/// 旺店通's `trade_status` of an order: 30 待发货, 50 已发货, 70 已完成
/// (handed over in store), 90 已关闭.
pub fn trade_status(status: OrderStatus) -> i64 {
    match status {
        OrderStatus::Pending => 30,
        OrderStatus::Shipped => 50,
        OrderStatus::PickedUp => 70,
        OrderStatus::Cancelled => 90,
    }
}

/// The `trade_list` entry of an order: `tid` is `KQ` and the order id; the
/// goods are named by their ERP 编码 (`goods_no`, `spec_no`).
pub fn trade(order: &PickupOrder, erp_code: &str) -> Value {
    let status = trade_status(order.status);
    let tid = format!("KQ{}", order.id);
    let c = &order.consignee;
    let created = crate::clock::format_datetime(order.created_at);
    json!({
        "tid": tid,
        "trade_status": status,
        "pay_status": "1",
        "delivery_term": 1,
        "trade_time": created,
        "pay_time": created,
        "buyer_nick": c.name,
        "receiver_name": c.name,
        "receiver_province": c.province,
        "receiver_city": c.city,
        "receiver_district": c.district,
        "receiver_address": c.address,
        "receiver_mobile": c.phone,
        "post_amount": 0,
        "cod_amount": 0,
        "ext_cod_fee": 0,
        "other_amount": 0,
        "paid": 0,
        "buyer_message": format!("提货卡 {}", order.card_number),
        "seller_memo": order.appointment_date.as_deref().map(|d| format!("预约发货 {d}")).unwrap_or_default(),
        "order_list": [{
            "oid": format!("{tid}-1"),
            "num": 1,
            "price": 0,
            "status": status,
            "refund_status": 0,
            "goods_id": order.goods_id.to_string(),
            "spec_id": "",
            "goods_no": erp_code,
            "spec_no": erp_code,
            "goods_name": order.goods_name,
            "spec_name": "",
            "discount": 0,
            "adjust_amount": 0,
            "share_discount": 0,
        }],
    })
}

/// 旺店通's `sign`: every parameter but `sign`, sorted by name, written as
/// `NN-name:LLLL-value` (lengths in characters) and joined by `;`, then
/// the appsecret appended and the whole MD5'd to lowercase hex.
pub fn wdt_sign(params: &[(&str, &str)], appsecret: &str) -> String {
    let mut params: Vec<&(&str, &str)> = params.iter().filter(|(k, _)| *k != "sign").collect();
    params.sort_by(|a, b| a.0.cmp(b.0));
    let packed = params
        .iter()
        .map(|(k, v)| format!("{:02}-{k}:{:04}-{v}", k.chars().count(), v.chars().count()))
        .collect::<Vec<_>>()
        .join(";");
    md5_hex(format!("{packed}{appsecret}").as_bytes())
}

/// Where a push stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    Pending,
    Pushed,
    Failed,
}

impl PushState {
    pub fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Pushed => "pushed",
            Self::Failed => "failed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "待推送",
            Self::Pushed => "已推送",
            Self::Failed => "推送失败",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [Self::Pending, Self::Pushed, Self::Failed]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// Seconds before each retry of a push: an ERP can wait, so the tries
/// spread over a day.
pub const PUSH_RETRY_DELAYS: [i64; 6] = [10, 60, 300, 1_800, 7_200, 43_200];

/// Where a push goes after its `attempts`-th try.
pub fn after_push(attempts: i64, pushed: bool, now: i64) -> (PushState, Option<i64>) {
    if pushed {
        return (PushState::Pushed, None);
    }
    match usize::try_from(attempts - 1)
        .ok()
        .and_then(|i| PUSH_RETRY_DELAYS.get(i))
    {
        Some(delay) => (PushState::Pending, Some(now + delay)),
        None => (PushState::Failed, None),
    }
}

/// A planned push with what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpPush {
    pub id: i64,
    pub merchant_id: i64,
    pub order_id: i64,
    /// The event behind it (`pickup_order.created`, …).
    pub reason: EventType,
    pub state: PushState,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    /// 旺店通's `code` (or a transport error) and `message`.
    pub result_code: String,
    pub result_message: String,
    pub created_at: i64,
    pub pushed_at: Option<i64>,
}

/// ERP 参数 and the pushes in the database.
#[async_trait::async_trait]
pub trait ErpStore: Send + Sync + 'static {
    async fn get_erp_settings(&self, merchant_id: i64) -> StoreResult<Option<ErpSettings>>;
    /// Saves the settings (`secret_sealed` `None` keeps the saved one) with an audit record.
    async fn save_erp_settings(
        &self,
        settings: &ErpSettings,
        audit: &crate::audit::AuditEntry,
    ) -> StoreResult<()>;
    /// Leases up to `limit` due pushes for `lease_seconds` and counts the attempt.
    async fn claim_erp_pushes(
        &self,
        limit: i64,
        lease_seconds: i64,
        now: i64,
    ) -> StoreResult<Vec<ErpPush>>;
    /// Records a try of a claimed push.
    async fn record_erp_push(
        &self,
        id: i64,
        attempts: i64,
        pushed: bool,
        code: &str,
        message: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// The pushes, newest first.
    async fn list_erp_pushes(
        &self,
        merchant_id: i64,
        page: crate::store::Page,
    ) -> StoreResult<(Vec<ErpPush>, i64)>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_matches_the_pinned_vector() {
        let params = [
            ("sid", "test"),
            ("appkey", "test2-xx"),
            ("timestamp", "1700000000"),
            ("shop_no", "shop1"),
            ("trade_list", r#"[{"tid":"T1"}]"#),
            ("sign", "ignored"),
        ];
        assert_eq!(
            wdt_sign(&params, "12345"),
            "f4b406b05e5764a15847181b2ddb1d9c"
        );
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        // "张三" is two characters (six bytes): `0002`.
        let a = wdt_sign(&[("n", "张三")], "s");
        assert_eq!(a, md5_hex("01-n:0002-张三s".as_bytes()));
    }

    #[test]
    fn pushes_retry_over_a_day_then_fail() {
        assert_eq!(after_push(1, true, 5), (PushState::Pushed, None));
        let mut at = 0;
        for attempts in 1..=6 {
            let (state, next) = after_push(attempts, false, at);
            assert_eq!(state, PushState::Pending);
            at = next.unwrap();
        }
        assert_eq!(at, PUSH_RETRY_DELAYS.iter().sum::<i64>());
        assert_eq!(after_push(7, false, at), (PushState::Failed, None));
        assert_eq!(after_push(0, false, at), (PushState::Failed, None));
        for s in [PushState::Pending, PushState::Pushed, PushState::Failed] {
            assert_eq!(PushState::parse(s.code()), Some(s));
            assert!(
                s.label().starts_with("待")
                    || s.label().starts_with("推送")
                    || s.label().starts_with("已")
            );
        }
        assert_eq!(PushState::Pushed.label(), "已推送");
    }

    #[test]
    fn only_delivered_orders_are_pushed_and_only_when_on() {
        let mut settings = ErpSettings::default();
        let event = |event_type, consignee: &str| NewEvent {
            merchant_id: 1,
            event_type,
            data: json!({"order_id": 9, "consignee": consignee}).to_string(),
            created_at: 0,
        };
        assert_eq!(
            push_for(&event(EventType::PickupOrderCreated, "张三"), &settings),
            None
        );
        settings.fields.enabled = true;
        assert_eq!(
            push_for(&event(EventType::PickupOrderCreated, "张三"), &settings),
            Some(9)
        );
        assert_eq!(
            push_for(&event(EventType::PickupOrderCancelled, "张三"), &settings),
            Some(9)
        );
        assert_eq!(
            push_for(&event(EventType::PickupOrderCreated, ""), &settings),
            None,
            "a hand-over in store"
        );
        assert_eq!(
            push_for(&event(EventType::BalanceChanged, "张三"), &settings),
            None
        );
    }

    #[test]
    fn the_appsecret_is_sealed_for_its_merchant_only() {
        let master = MasterKey::from_bytes([3; 32]);
        let settings = ErpSettings {
            merchant_id: 4,
            key_version: 1,
            secret_sealed: Some(seal_secret(&master, 4, 1, "appsecret")),
            ..Default::default()
        };
        assert_eq!(
            open_secret(&master, &settings).as_deref(),
            Some("appsecret")
        );
        let other = ErpSettings {
            merchant_id: 5,
            ..settings.clone()
        };
        assert_eq!(open_secret(&master, &other), None);
        assert_eq!(open_secret(&master, &ErpSettings::default()), None);
    }

    #[test]
    fn a_trade_carries_the_order_its_status_and_the_erp_code() {
        assert_eq!(
            [
                OrderStatus::Pending,
                OrderStatus::Shipped,
                OrderStatus::PickedUp,
                OrderStatus::Cancelled
            ]
            .map(trade_status),
            [30, 50, 70, 90]
        );
        let order = PickupOrder {
            id: 42,
            merchant_id: 1,
            card_id: 7,
            card_number: "A0001".into(),
            batch_id: 2,
            goods_id: 3,
            goods_name: "苹果礼盒".into(),
            channel: crate::pickup::Channel::Web,
            status: OrderStatus::Shipped,
            consignee: crate::pickup::Consignee::new(
                "张三",
                "13800001234",
                "浙江省",
                "杭州市",
                "西湖区",
                "文三路 100 号",
            )
            .unwrap(),
            appointment_date: Some("2026-12-08".into()),
            carrier: None,
            tracking_number: None,
            shipped_at: None,
            created_by: "customer".into(),
            created_at: 0,
            cancelled_at: None,
        };
        let t = trade(&order, "APPLE-5");
        assert_eq!(t["tid"], "KQ42");
        assert_eq!(t["trade_status"], 50);
        assert_eq!(
            (t["receiver_name"].as_str(), t["receiver_mobile"].as_str()),
            (Some("张三"), Some("13800001234"))
        );
        assert_eq!(t["receiver_district"], "西湖区");
        assert_eq!(t["buyer_message"], "提货卡 A0001");
        assert_eq!(t["seller_memo"], "预约发货 2026-12-08");
        assert_eq!(t["order_list"][0]["oid"], "KQ42-1");
        assert_eq!(t["order_list"][0]["goods_no"], "APPLE-5");
        assert_eq!(t["order_list"][0]["status"], 50);
        assert_eq!(t["order_list"][0]["goods_id"], "3");
    }

    #[test]
    fn settings_need_everything_once_on() {
        let mut fields = ErpSettingsFields::default();
        assert_eq!(check_settings(&fields, false), Ok(()));
        fields.enabled = true;
        assert!(check_settings(&fields, false).unwrap_err().contains("sid"));
        fields.sid = "s".into();
        fields.appkey = "k".into();
        fields.shop_no = "1".into();
        assert!(check_settings(&fields, false)
            .unwrap_err()
            .contains("appsecret"));
        assert_eq!(check_settings(&fields, true), Ok(()));
        fields.shop_no = "x".repeat(64);
        assert_eq!(check_settings(&fields, true), Ok(()));
        fields.shop_no = "x".repeat(65);
        assert!(check_settings(&fields, true).is_err());
        fields.shop_no = "a\u{0}b".into();
        assert!(check_settings(&fields, true).is_err());
    }
}
