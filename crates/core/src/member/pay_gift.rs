//! 支付后赠会员卡 (seed 002): a rule names a 会员卡 program, one or more
//! payment merchant ids (商户号), a condition (不限额, or an amount range in
//! fen) and the time it is live. When the merchant's payment system
//! reports a payment, a live matching rule sends the customer one claim
//! message with the 开卡 link: once per payment id, never to a member of
//! the program. A rule that was deleted, has ended, or whose program was
//! disabled is 已失效 and never fires; a 商户号 belongs to at most one rule
//! that is not 已失效.

use super::ProgramState;
use crate::StoreResult;

/// Longest 商户号 (WeChat Pay's are 10 digits; others are longer).
pub const MCH_ID_LENGTH_MAX: usize = 32;
/// Most 商户号 one rule names.
pub const MCH_IDS_MAX: usize = 20;

/// A rule as the merchant sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayGiftFields {
    pub program_id: i64,
    /// 商户号 the rule listens to.
    pub mch_ids: Vec<String>,
    /// 0 with no maximum: 不限额.
    pub least_cost_fen: i64,
    pub max_cost_fen: Option<i64>,
    /// Live from this second …
    pub begin_at: i64,
    /// … to this one, inclusive.
    pub end_at: i64,
}

/// Checks a 商户号: 1–32 letters, digits, `-` or `_`.
pub fn check_mch_id(text: &str) -> Result<String, String> {
    let text = text.trim();
    let ok = !text.is_empty()
        && text.len() <= MCH_ID_LENGTH_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| text.to_owned())
        .ok_or_else(|| format!("商户号「{text}」须为 1–{MCH_ID_LENGTH_MAX} 个字母、数字、- 或 _"))
}

impl PayGiftFields {
    pub fn check(&self) -> Result<(), String> {
        if self.mch_ids.is_empty() || self.mch_ids.len() > MCH_IDS_MAX {
            return Err(format!("请填写 1–{MCH_IDS_MAX} 个商户号"));
        }
        let mut seen = Vec::new();
        for id in &self.mch_ids {
            if check_mch_id(id)? != *id {
                return Err(format!("商户号「{id}」前后不能有空格"));
            }
            if seen.contains(&id) {
                return Err(format!("商户号「{id}」重复"));
            }
            seen.push(id);
        }
        if !(0..=crate::money::FEN_MAX).contains(&self.least_cost_fen) {
            return Err("最低金额超出范围".into());
        }
        if let Some(max) = self.max_cost_fen {
            if max < self.least_cost_fen.max(1) || max > crate::money::FEN_MAX {
                return Err("最高金额须不低于最低金额".into());
            }
        }
        if self.end_at < self.begin_at {
            return Err("结束时间须不早于开始时间".into());
        }
        Ok(())
    }

    /// The condition as the console says it.
    pub fn condition_zh(&self) -> String {
        let yuan = crate::money::format_yuan;
        match (self.least_cost_fen, self.max_cost_fen) {
            (0, None) => "不限额".into(),
            (least, None) => format!("满 ¥{} 及以上", yuan(least)),
            (least, Some(max)) => format!("¥{} – ¥{}", yuan(least), yuan(max)),
        }
    }
}

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayGiftRule {
    pub id: i64,
    pub merchant_id: i64,
    pub fields: PayGiftFields,
    pub created_by: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

/// Where a rule stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleStatus {
    /// Before its time: it holds its 商户号 but sends nothing yet.
    Pending,
    Live,
    /// 已失效, and why.
    Deleted,
    Ended,
    ProgramDisabled,
}

impl RuleStatus {
    pub fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Live => "live",
            Self::Deleted => "deleted",
            Self::Ended => "ended",
            Self::ProgramDisabled => "program_disabled",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Pending => "未开始",
            Self::Live => "生效中",
            Self::Deleted => "已删除",
            Self::Ended => "已过期",
            Self::ProgramDisabled => "会员卡已停用",
        }
    }
    /// 已失效: the rule never fires again and holds no 商户号.
    pub fn is_void(self) -> bool {
        matches!(self, Self::Deleted | Self::Ended | Self::ProgramDisabled)
    }
}

impl PayGiftRule {
    pub fn status(&self, program: ProgramState, now: i64) -> RuleStatus {
        if self.deleted_at.is_some() {
            RuleStatus::Deleted
        } else if program != ProgramState::Active {
            RuleStatus::ProgramDisabled
        } else if now > self.fields.end_at {
            RuleStatus::Ended
        } else if now < self.fields.begin_at {
            RuleStatus::Pending
        } else {
            RuleStatus::Live
        }
    }
}

/// The first rule not 已失效 that holds one of `mch_ids`, with the id it
/// holds: what a new rule conflicts with.
pub fn holder<'a>(
    rules: &'a [(PayGiftRule, ProgramState)],
    mch_ids: &[String],
    except_rule: Option<i64>,
    now: i64,
) -> Option<(&'a PayGiftRule, String)> {
    rules.iter().find_map(|(rule, program)| {
        if Some(rule.id) == except_rule || rule.status(*program, now).is_void() {
            return None;
        }
        mch_ids
            .iter()
            .find(|id| rule.fields.mch_ids.contains(id))
            .map(|id| (rule, id.clone()))
    })
}

/// A payment the merchant's payment system reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotice {
    /// The payment system's id: one message per payment.
    pub payment_id: String,
    pub mch_id: String,
    pub amount_fen: i64,
    pub paid_at: i64,
    /// The mall's customer id, if known.
    pub customer_id: Option<String>,
    /// The customer's mobile, if known.
    pub phone: Option<String>,
}

/// What a reported payment led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiftOutcome {
    /// A claim message with the 开卡 link went out.
    Sent,
    /// No rule was live for this 商户号 when it was paid.
    NoLiveRule,
    /// A rule was live but the amount is outside its range.
    AmountOutOfRange,
    /// The customer is already a member of the rule's program.
    AlreadyMember,
}

impl GiftOutcome {
    pub const ALL: [Self; 4] = [
        Self::Sent,
        Self::NoLiveRule,
        Self::AmountOutOfRange,
        Self::AlreadyMember,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::NoLiveRule => "no_live_rule",
            Self::AmountOutOfRange => "amount_out_of_range",
            Self::AlreadyMember => "already_member",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Sent => "已发送领卡消息",
            Self::NoLiveRule => "该商户号没有生效中的规则",
            Self::AmountOutOfRange => "金额不满足规则条件",
            Self::AlreadyMember => "已是会员，不再发送",
        }
    }
}

/// The rule a payment matches: live for its 商户号 when it was paid, with
/// the amount in range. `Err` says why none does.
pub fn match_rule<'a>(
    rules: &'a [(PayGiftRule, ProgramState)],
    notice: &PaymentNotice,
) -> Result<&'a PayGiftRule, GiftOutcome> {
    let mut live = rules.iter().filter(|(rule, program)| {
        rule.status(*program, notice.paid_at) == RuleStatus::Live
            && rule.fields.mch_ids.contains(&notice.mch_id)
    });
    let Some((rule, _)) = live.next() else {
        return Err(GiftOutcome::NoLiveRule);
    };
    let f = &rule.fields;
    let in_range = notice.amount_fen >= f.least_cost_fen
        && f.max_cost_fen.is_none_or(|max| notice.amount_fen <= max);
    if in_range {
        Ok(rule)
    } else {
        Err(GiftOutcome::AmountOutOfRange)
    }
}

/// One reported payment and what it led to, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftSend {
    pub id: i64,
    pub merchant_id: i64,
    pub notice: PaymentNotice,
    pub rule_id: Option<i64>,
    pub program_id: Option<i64>,
    pub outcome: GiftOutcome,
    pub created_at: i64,
}

/// The `member.invited` event of a sent claim message: what the
/// merchant's message sender needs to reach the customer.
pub fn invited_event(send: &GiftSend, open_url: &str) -> crate::event::NewEvent {
    crate::event::NewEvent::new(
        send.merchant_id,
        crate::event::EventType::MemberInvited,
        serde_json::json!({
            "payment_id": send.notice.payment_id,
            "mch_id": send.notice.mch_id,
            "amount_fen": send.notice.amount_fen,
            "paid_at": send.notice.paid_at,
            "customer_id": send.notice.customer_id,
            "phone": send.notice.phone,
            "rule_id": send.rule_id,
            "program_id": send.program_id,
            "open_url": open_url,
            "message": format!("感谢您的光临，点击领取会员卡：{open_url}"),
        }),
        send.created_at,
    )
}

/// A payment reported for 支付后赠会员卡: the live rule it matches (if
/// any), whether the customer is a member already, and the record with
/// its claim message, once per payment id (a repeat answers the first
/// outcome, marked replayed). `open_url` gives a program's 开卡 link.
pub async fn notify_payment(
    store: &dyn crate::store::Store,
    merchant_id: i64,
    notice: &PaymentNotice,
    open_url: &(dyn Fn(i64) -> String + Sync),
    now: i64,
) -> StoreResult<(GiftSend, bool)> {
    let rules = store.list_pay_gift_rules(merchant_id).await?;
    let matched = match_rule(&rules, notice);
    let mut outcome = match &matched {
        Ok(_) => GiftOutcome::Sent,
        Err(why) => *why,
    };
    let rule = matched.ok();
    if let Some(rule) = rule {
        if is_member(store, merchant_id, rule.fields.program_id, notice).await? {
            outcome = GiftOutcome::AlreadyMember;
        }
    }
    let send = GiftSend {
        id: 0,
        merchant_id,
        notice: notice.clone(),
        rule_id: rule.map(|r| r.id),
        program_id: rule.map(|r| r.fields.program_id),
        outcome,
        created_at: now,
    };
    let event = match (outcome, rule) {
        (GiftOutcome::Sent, Some(rule)) => {
            Some(invited_event(&send, &open_url(rule.fields.program_id)))
        }
        _ => None,
    };
    store
        .record_gift_send(merchant_id, &send, event.as_ref())
        .await
}

/// Whether the payer is a member of the program: by the mall's id, by the
/// customer's phone, or by the phone a member gave at 开卡.
async fn is_member(
    store: &dyn crate::store::Store,
    merchant_id: i64,
    program_id: i64,
    notice: &PaymentNotice,
) -> StoreResult<bool> {
    let mut customers = Vec::new();
    if let Some(external) = &notice.customer_id {
        customers.extend(store.find_external_customer(merchant_id, external).await?);
    }
    if let Some(phone) = &notice.phone {
        customers.extend(
            store
                .find_phone_customer(merchant_id, phone)
                .await?
                .map(|(c, _)| c),
        );
        let filter = super::MemberFilter {
            program_id: Some(program_id),
            search: Some(phone.clone()),
            ..Default::default()
        };
        let (members, _) = store
            .list_members(merchant_id, &filter, crate::store::Page::default())
            .await?;
        if members.iter().any(|m| m.phone == *phone) {
            return Ok(true);
        }
    }
    for customer in customers {
        let cards = store
            .find_customer_members(merchant_id, customer.id)
            .await?;
        if cards.iter().any(|m| m.program_id == program_id) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Why a rule could not be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRefusal {
    /// A 商户号 belongs to another rule that is not 已失效.
    MchIdTaken {
        mch_id: String,
        rule_id: i64,
    },
    ProgramNotFound,
}

impl RuleRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MchIdTaken { .. } => "mch_id_taken",
            Self::ProgramNotFound => "program_not_found",
        }
    }
    pub fn message_zh(&self) -> String {
        match self {
            Self::MchIdTaken { mch_id, rule_id } => {
                format!("商户号 {mch_id} 已被规则 #{rule_id} 使用，一个商户号只能配一个规则")
            }
            Self::ProgramNotFound => "找不到该会员卡".into(),
        }
    }
}

/// The rules and the payments they answered.
#[async_trait::async_trait]
pub trait PayGiftStore: Send + Sync + 'static {
    /// Saves a rule unless one of its 商户号 belongs to another rule that
    /// is not 已失效 (checked and written in one transaction, so two rules
    /// racing for one 商户号 cannot both be saved); audited.
    async fn create_pay_gift_rule(
        &self,
        merchant_id: i64,
        fields: &PayGiftFields,
        actor: &crate::audit::Actor,
        now: i64,
    ) -> StoreResult<Result<PayGiftRule, RuleRefusal>>;
    /// Deletes a rule (it moves to 已失效); audited.
    async fn delete_pay_gift_rule(
        &self,
        merchant_id: i64,
        rule_id: i64,
        actor: &crate::audit::Actor,
        now: i64,
    ) -> StoreResult<()>;
    /// Every rule of the merchant, newest first, with its program's state.
    async fn list_pay_gift_rules(
        &self,
        merchant_id: i64,
    ) -> StoreResult<Vec<(PayGiftRule, ProgramState)>>;
    /// Records what a payment led to, once per payment id: the first
    /// record wins and is returned with `true` when it was there before.
    /// A `Sent` outcome writes its `member.invited` event in the same
    /// transaction.
    async fn record_gift_send(
        &self,
        merchant_id: i64,
        send: &GiftSend,
        event: Option<&crate::event::NewEvent>,
    ) -> StoreResult<(GiftSend, bool)>;
    /// The payments reported, newest first.
    async fn list_gift_sends(
        &self,
        merchant_id: i64,
        page: crate::store::Page,
    ) -> StoreResult<(Vec<GiftSend>, i64)>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: i64, mch: &str, least: i64, max: Option<i64>) -> PayGiftRule {
        PayGiftRule {
            id,
            merchant_id: 1,
            fields: PayGiftFields {
                program_id: 1,
                mch_ids: vec![mch.into()],
                least_cost_fen: least,
                max_cost_fen: max,
                begin_at: 100,
                end_at: 200,
            },
            created_by: "owner".into(),
            created_at: 0,
            deleted_at: None,
        }
    }

    fn notice(mch: &str, amount_fen: i64, paid_at: i64) -> PaymentNotice {
        PaymentNotice {
            payment_id: "p1".into(),
            mch_id: mch.into(),
            amount_fen,
            paid_at,
            customer_id: None,
            phone: None,
        }
    }

    #[test]
    fn a_payment_matches_a_live_rule_of_its_mch_id_within_bounds_and_window() {
        let rules = vec![(rule(1, "m1", 1000, Some(5000)), ProgramState::Active)];
        assert_eq!(
            match_rule(&rules, &notice("m1", 1000, 100)).map(|r| r.id),
            Ok(1)
        );
        assert_eq!(
            match_rule(&rules, &notice("m1", 5000, 200)).map(|r| r.id),
            Ok(1)
        );
        assert_eq!(
            match_rule(&rules, &notice("m1", 999, 150)).map(|r| r.id),
            Err(GiftOutcome::AmountOutOfRange)
        );
        assert_eq!(
            match_rule(&rules, &notice("m1", 5001, 150)).map(|r| r.id),
            Err(GiftOutcome::AmountOutOfRange)
        );
        for paid_at in [99, 201] {
            assert_eq!(
                match_rule(&rules, &notice("m1", 2000, paid_at)).map(|r| r.id),
                Err(GiftOutcome::NoLiveRule),
                "{paid_at}"
            );
        }
        assert_eq!(
            match_rule(&rules, &notice("m2", 2000, 150)).map(|r| r.id),
            Err(GiftOutcome::NoLiveRule)
        );
        let unlimited = vec![(rule(2, "m1", 0, None), ProgramState::Active)];
        assert!(
            match_rule(&unlimited, &notice("m1", 1, 150)).is_ok(),
            "不限额"
        );
    }

    #[test]
    fn deleted_ended_and_disabled_rules_are_void_and_never_fire() {
        let mut deleted = rule(1, "m1", 0, None);
        deleted.deleted_at = Some(120);
        let rules = vec![
            (deleted.clone(), ProgramState::Active),
            (rule(2, "m2", 0, None), ProgramState::Disabled),
        ];
        assert_eq!(
            rules[0].0.status(ProgramState::Active, 150),
            RuleStatus::Deleted
        );
        assert_eq!(
            rules[1].0.status(ProgramState::Disabled, 150),
            RuleStatus::ProgramDisabled
        );
        assert_eq!(
            rule(3, "m", 0, None).status(ProgramState::Active, 201),
            RuleStatus::Ended
        );
        assert_eq!(
            rule(3, "m", 0, None).status(ProgramState::Active, 99),
            RuleStatus::Pending
        );
        assert!(match_rule(&rules, &notice("m1", 1, 150)).is_err());
        assert!(match_rule(&rules, &notice("m2", 1, 150)).is_err());
        // Void rules hold no 商户号; a pending one does.
        assert!(holder(&rules, &["m1".into(), "m2".into()], None, 150).is_none());
        let pending = vec![(rule(4, "m3", 0, None), ProgramState::Active)];
        let (held, id) = holder(&pending, &["m9".into(), "m3".into()], None, 50).unwrap();
        assert_eq!((held.id, id.as_str()), (4, "m3"));
        assert!(
            holder(&pending, &["m3".into()], Some(4), 50).is_none(),
            "itself"
        );
    }

    #[test]
    fn rules_check_their_ids_amounts_and_window() {
        let ok = rule(1, "1900000109", 100, Some(100)).fields;
        assert_eq!(ok.check(), Ok(()));
        let bad = |f: PayGiftFields| f.check().unwrap_err();
        assert_eq!(
            bad(PayGiftFields {
                mch_ids: vec![],
                ..ok.clone()
            }),
            "请填写 1–20 个商户号"
        );
        assert_eq!(
            bad(PayGiftFields {
                mch_ids: vec!["a b".into()],
                ..ok.clone()
            }),
            "商户号「a b」须为 1–32 个字母、数字、- 或 _"
        );
        assert_eq!(
            bad(PayGiftFields {
                mch_ids: vec!["m".into(), "m".into()],
                ..ok.clone()
            }),
            "商户号「m」重复"
        );
        assert_eq!(
            bad(PayGiftFields {
                max_cost_fen: Some(99),
                ..ok.clone()
            }),
            "最高金额须不低于最低金额"
        );
        assert_eq!(
            bad(PayGiftFields {
                end_at: 99,
                ..ok.clone()
            }),
            "结束时间须不早于开始时间"
        );
        assert_eq!(ok.condition_zh(), "¥1.00 – ¥1.00");
        assert_eq!(rule(1, "m", 0, None).fields.condition_zh(), "不限额");
        assert_eq!(
            rule(1, "m", 500, None).fields.condition_zh(),
            "满 ¥5.00 及以上"
        );
        assert_eq!(
            RuleRefusal::MchIdTaken {
                mch_id: "m1".into(),
                rule_id: 3
            }
            .message_zh(),
            "商户号 m1 已被规则 #3 使用，一个商户号只能配一个规则"
        );
    }
}
