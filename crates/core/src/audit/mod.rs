//! The audit log (操作日志): who changed what, written in the same
//! transaction as the change.

use crate::store::Page;
use crate::StoreResult;

/// Who did something, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub staff_id: Option<i64>,
    /// Username, or `cli` for the command line.
    pub label: String,
}

impl Actor {
    pub fn cli() -> Self {
        Self {
            staff_id: None,
            label: "cli".into(),
        }
    }

    /// kaquan itself, for what its background work decides (disabling a
    /// webhook endpoint that keeps failing).
    pub fn system() -> Self {
        Self {
            staff_id: None,
            label: "system".into(),
        }
    }
}

/// One audit record. Stores write `n_affected` themselves when the entry
/// accompanies a bulk change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub merchant_id: i64,
    pub actor: Actor,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub n_affected: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub entry: AuditEntry,
}

/// The audit log in the database.
/// Which audit records a search covers; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The actor's label, exactly (a staff member's username, `cli`, `system`).
    pub actor: Option<String>,
    /// Any of these action codes; empty means any action.
    pub actions: Vec<String>,
    /// A substring of the target or the detail (a card number, an order id).
    pub text: Option<String>,
    /// Inclusive timestamp bounds.
    pub created_from: Option<i64>,
    pub created_until: Option<i64>,
}

#[async_trait::async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// The newest records first.
    async fn search_audit(
        &self,
        merchant_id: i64,
        filter: &AuditFilter,
        page: Page,
    ) -> StoreResult<(Vec<AuditRecord>, i64)>;
    async fn list_audit(
        &self,
        merchant_id: i64,
        page: Page,
    ) -> StoreResult<(Vec<AuditRecord>, i64)> {
        self.search_audit(merchant_id, &AuditFilter::default(), page)
            .await
    }
    /// Numbers of deleted cards recorded under one audit record.
    async fn list_deleted_numbers(
        &self,
        merchant_id: i64,
        audit_id: i64,
    ) -> StoreResult<Vec<String>>;
}

pub mod chain;

/// Each action code and what the merchant calls it.
const ACTION_LABELS: &[(&str, &str)] = &[
    ("generate_batch", "创建卡券"),
    ("set_prepaid_policy", "预付卡政策"),
    ("set_approval_policy", "双人复核设置"),
    ("request_approval", "提交审批"),
    ("approve_request", "批准"),
    ("reject_request", "驳回"),
    ("import_batch", "导入卡券"),
    ("activate_cards", "激活"),
    ("deactivate_cards", "反激活"),
    ("void_cards", "作废"),
    ("restore_cards", "恢复"),
    ("delete_cards", "删除卡券"),
    ("edit_cards", "修改卡属性"),
    ("link_goods", "设置对应商品"),
    ("purge_card_secrets", "清除卡密码"),
    ("export_cards", "导出卡券数据"),
    ("export_qr_codes", "导出二维码"),
    ("redeem_pickup", "提货"),
    ("pickup_refused", "提货被拒"),
    ("cancel_order", "取消订单"),
    ("ship_orders", "发货"),
    ("export_orders", "导出订单"),
    ("create_goods", "新增提货商品"),
    ("update_goods", "修改提货商品"),
    ("add_goods_image", "上传商品图片"),
    ("delete_goods_image", "删除商品图片"),
    ("update_pickup_settings", "保存提货设置"),
    ("update_pickup_logo", "上传提货页 Logo"),
    ("create_carrier", "新增物流公司"),
    ("save_waybill_settings", "保存电子面单设置"),
    ("save_sms_settings", "保存通知设置"),
    ("test_sms", "发送测试短信"),
    ("save_erp_settings", "保存 ERP 参数"),
    ("create_staff", "新增管理员"),
    ("update_staff", "修改管理员"),
    ("create_role", "新增角色"),
    ("update_role", "修改角色权限"),
    ("create_distributor", "新增券商"),
    ("update_distributor", "修改券商"),
    ("create_api_key", "新建开放接口密钥"),
    ("revoke_api_key", "停用开放接口密钥"),
    ("create_webhook_endpoint", "新增推送地址"),
    ("update_webhook_endpoint", "修改推送地址"),
    ("delete_webhook_endpoint", "删除推送地址"),
    ("disable_webhook_endpoint", "停用推送地址（持续失败）"),
    ("rotate_webhook_secret", "更换推送密钥"),
    ("replay_webhook_delivery", "重新推送"),
    ("update_giftcard_settings", "保存礼品卡设置"),
    ("update_giftcard_image", "上传礼品卡图片"),
    ("create_code_template", "新建兑换码"),
    ("delete_code_template", "删除兑换码"),
    ("export_codes", "导出兑换码"),
    ("code_refused", "兑换被拒"),
    ("issue_order_codes", "商城订单发码"),
    ("export_customers", "导出顾客余额"),
    ("redeem_balance", "兑换入余额"),
    ("spend_balance", "余额消费"),
    ("refund_balance", "余额退款"),
    ("adjust_balance", "调整余额"),
    ("sell_cards", "商城卖卡"),
    ("refund_card_sale", "卖卡退款"),
    ("grant_credits", "赠送券点"),
    ("request_credit_purchase", "申请购买券点"),
    ("confirm_credit_purchase", "确认券点到账"),
    ("cancel_credit_purchase", "取消购买券点"),
    ("buy_coupon_stock", "券点兑换库存"),
    ("return_coupon_stock", "过期库存退还券点"),
    ("set_operator", "设置平台运营"),
    ("export_credit_statement", "导出券点明细"),
    ("create_ecard_product", "新建虚拟商品"),
    ("update_ecard_product", "修改虚拟商品"),
    ("import_ecard_stock", "导入卡密"),
    ("reveal_ecard_stock", "查看库存卡密"),
    ("deliver_ecards", "自动发货"),
    ("ecard_out_of_stock", "卡密缺货"),
    ("refund_ecards", "订单退款"),
    ("reveal_ecard", "查看卡密"),
    ("verify_ecard", "核销电子卡密"),
    ("export_ecard_orders", "导出电子卡密订单"),
    ("export_ecard_evidence", "导出证据"),
];

/// The actions the audit log's filter offers, by their labels.
pub fn action_labels() -> &'static [(&'static str, &'static str)] {
    ACTION_LABELS
}

/// An audit record in the merchant's words: the action (with the reason
/// of a refusal), the channel it came through, and the target and detail
/// with their codes named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditText {
    pub action: String,
    pub channel: Option<&'static str>,
    pub target: String,
    pub detail: String,
}

/// One `key=value` word of a target or detail, in Chinese; `None` drops it
/// (it went into the action or the channel).
fn word_zh(word: &str) -> Option<String> {
    let (key, value) = match word.split_once(['=', '~']) {
        Some(pair) => pair,
        None => return Some(word.to_owned()),
    };
    let bool_zh = |yes: &str, no: &str| {
        if value == "true" {
            yes.to_owned()
        } else {
            no.to_owned()
        }
    };
    Some(match key {
        "channel" | "reason" => return None,
        "batch" => format!("批次 {value}"),
        "card" => format!("卡号 {value}"),
        "order" => format!("订单 {value}"),
        "staff" => format!("管理员 #{value}"),
        "role" => format!("角色 #{value}"),
        "distributor" => format!("券商 #{value}"),
        "goods" => format!("商品 {value}"),
        "state" => format!(
            "状态 {}",
            crate::card::CardState::parse(value).map_or(value, |s| s.label_zh())
        ),
        "status" => format!(
            "状态 {}",
            crate::pickup::OrderStatus::parse(value).map_or(value, |s| s.label_zh())
        ),
        "activated" => bool_zh("已激活", "未激活"),
        "used" => bool_zh("已兑换", "未兑换"),
        "serial>" => format!("序号 ≥ {value}"),
        "serial<" => format!("序号 ≤ {value}"),
        "number" => format!("卡号含 {value}"),
        "format" => format!("格式 {value}"),
        "with_secrets" => bool_zh("含密码", "不含密码"),
        "approval" => format!("审批 #{value}"),
        "requested_by" => format!("提交人 {value}"),
        "approved_by" => format!("审批人 {value}"),
        "customer" => format!("顾客 {value}"),
        "kind" => match crate::approval::ApprovalKind::parse(value) {
            Some(kind) => kind.label_zh().to_owned(),
            None => word.to_owned(),
        },
        _ => word.to_owned(),
    })
}

pub fn words_zh(text: &str) -> String {
    if text.trim() == "all cards" {
        return "全部卡".into();
    }
    text.split_whitespace()
        .filter_map(word_zh)
        .collect::<Vec<_>>()
        .join(" ")
}

fn value_of<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

impl AuditEntry {
    /// The record of one change (`n_affected` left for the store).
    pub fn new(
        merchant_id: i64,
        actor: &Actor,
        action: &str,
        target: String,
        detail: String,
        now: i64,
    ) -> Self {
        Self {
            merchant_id,
            actor: actor.clone(),
            action: action.into(),
            target,
            detail,
            n_affected: 0,
            created_at: now,
        }
    }

    /// This record as the merchant reads it.
    pub fn text_zh(&self) -> AuditText {
        let mut action = ACTION_LABELS
            .iter()
            .find(|(code, _)| *code == self.action)
            .map_or_else(|| self.action.clone(), |(_, label)| (*label).to_owned());
        let words = format!("{} {}", self.target, self.detail);
        if let Some(reason) = value_of(&words, "reason") {
            let reason =
                crate::pickup::redeem::Reason::parse(reason).map_or(reason, |r| r.label_zh());
            action = format!("{action}（{reason}）");
        }
        if self.action == "export_cards" && value_of(&self.detail, "with_secrets") == Some("true") {
            action = "导出卡号和密码".into();
        }
        if self.action == "ship_orders" && self.n_affected > 1 {
            action = "批量发货".into();
        }
        AuditText {
            action,
            channel: value_of(&words, "channel")
                .and_then(crate::pickup::Channel::parse)
                .map(|c| c.label_zh()),
            target: words_zh(&self.target),
            detail: words_zh(&self.detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str, target: &str, detail: &str, n_affected: i64) -> AuditEntry {
        AuditEntry {
            merchant_id: 1,
            actor: Actor::cli(),
            action: action.into(),
            target: target.into(),
            detail: detail.into(),
            n_affected,
            created_at: 0,
        }
    }

    #[test]
    fn records_read_in_the_merchants_words() {
        let refused = entry(
            "pickup_refused",
            "card=A588001",
            "channel=phone reason=wrong_password",
            0,
        )
        .text_zh();
        assert_eq!(refused.action, "提货被拒（密码错误）");
        assert_eq!(refused.channel, Some("电话提货"));
        assert_eq!(refused.target, "卡号 A588001");
        assert_eq!(refused.detail, "");
        let export = entry(
            "export_cards",
            "batch=3 state=active",
            "format=xlsx with_secrets=true",
            30,
        )
        .text_zh();
        assert_eq!(export.action, "导出卡号和密码");
        assert_eq!(export.target, "批次 3 状态 已激活");
        assert_eq!(export.detail, "格式 xlsx 含密码");
        assert_eq!(
            entry("export_cards", "", "with_secrets=false", 1)
                .text_zh()
                .action,
            "导出卡券数据"
        );
        assert_eq!(entry("ship_orders", "", "", 6).text_zh().action, "批量发货");
        assert_eq!(entry("ship_orders", "", "", 1).text_zh().action, "发货");
        let range = entry("activate_cards", "serial>=11 serial<=20 number~88", "", 10).text_zh();
        assert_eq!(range.target, "序号 ≥ 11 序号 ≤ 20 卡号含 88");
        assert_eq!(
            entry("void_cards", "all cards", "", 1).text_zh().target,
            "全部卡"
        );
        assert_eq!(
            entry("export_orders", "status=pending", "", 1)
                .text_zh()
                .target,
            "状态 待发货"
        );
        assert_eq!(
            entry("redeem_pickup", "", "channel=web", 1)
                .text_zh()
                .channel,
            Some("顾客自助")
        );
        assert_eq!(
            entry("something_new", "x", "", 0).text_zh().action,
            "something_new",
            "unknown codes pass through"
        );
        let words = entry(
            "x",
            "order=7 staff=3 role=2 distributor=5 goods=[1,2]",
            "activated=true used=false",
            0,
        )
        .text_zh();
        assert_eq!(words.target, "订单 7 管理员 #3 角色 #2 券商 #5 商品 [1,2]");
        assert_eq!(words.detail, "已激活 未兑换");
        assert_eq!(
            entry("x", "activated=false used=true", "", 0)
                .text_zh()
                .target,
            "未激活 已兑换"
        );
    }

    #[test]
    fn every_action_has_one_label() {
        for (i, (code, label)) in ACTION_LABELS.iter().enumerate() {
            assert!(!label.is_ascii(), "{code}");
            assert!(
                ACTION_LABELS[i + 1..].iter().all(|(c, _)| c != code),
                "{code} twice"
            );
        }
    }
}
