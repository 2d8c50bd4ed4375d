//! 双人复核 (maker-checker): per merchant, the thresholds above which a
//! risky bulk action waits in 待审批 for a second staff member, and the
//! daily caps on what one staff member may activate.
//!
//! A request records exactly what it will do: the card filter (as
//! [`CardFilter::describe`] writes it, read back by
//! [`CardFilter::from_description`]), how many cards and how much face
//! value it reached when asked, or the customer and the amount. A
//! different person with [`crate::auth::Permission::ApprovalsDecide`]
//! approves or rejects it while it has not expired; approval runs the same
//! filter against the cards as they are then, and the count is taken again
//! and shown beside the one asked for. Every step is audited.

use crate::audit::AuditEntry;
use crate::card::{CardFilter, CardOp};
use crate::store::Page;
use crate::StoreResult;

/// How long a request waits by default, and the longest a merchant may set.
pub const EXPIRY_HOURS_DEFAULT: i64 = 24;
pub const EXPIRY_HOURS_MAX: i64 = 168;

/// A merchant's thresholds. `None` (or `false`) lets the action through
/// without a second person; the default is everything off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// 激活 of more than this many cards at once.
    pub activate_count_over: Option<i64>,
    /// 激活 of more than this much face value at once.
    pub activate_value_over_fen: Option<i64>,
    /// Every export with passwords.
    pub export_secrets: bool,
    /// Every 删除 of cards.
    pub delete_cards: bool,
    /// A balance adjustment (either way) above this amount.
    pub adjust_over_fen: Option<i64>,
    /// Every change of where events go or of what signs in to the SMS
    /// provider: a new webhook endpoint, a changed URL, a rotated signing
    /// secret, new SMS provider credentials.
    pub credentials: bool,
    /// What one staff member may activate in a merchant-local day without
    /// a second person: beyond it, an activation waits for approval.
    pub daily_cap: DailyCap,
    pub expiry_hours: i64,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        ApprovalPolicy {
            activate_count_over: None,
            activate_value_over_fen: None,
            export_secrets: false,
            delete_cards: false,
            adjust_over_fen: None,
            credentials: false,
            daily_cap: DailyCap::default(),
            expiry_hours: EXPIRY_HOURS_DEFAULT,
        }
    }
}

/// One staff member's activations in a merchant-local day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyCap {
    pub max_cards: Option<i64>,
    pub max_value_fen: Option<i64>,
}

impl DailyCap {
    /// Whether a day's activations, this one included, stay within the cap.
    pub fn allows(&self, day: Reach) -> bool {
        self.max_cards.is_none_or(|max| day.n_cards <= max)
            && self.max_value_fen.is_none_or(|max| day.value_fen <= max)
    }
}

/// What an action reaches: cards and their face value, or an amount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reach {
    pub n_cards: i64,
    pub value_fen: i64,
}

/// The actions a policy can hold for a second person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalKind {
    ActivateCards,
    DeleteCards,
    ExportSecrets,
    AdjustBalance,
    ChangeCredentials,
}

impl ApprovalKind {
    pub const ALL: [ApprovalKind; 5] = [
        Self::ActivateCards,
        Self::DeleteCards,
        Self::ExportSecrets,
        Self::AdjustBalance,
        Self::ChangeCredentials,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::ActivateCards => "activate_cards",
            Self::DeleteCards => "delete_cards",
            Self::ExportSecrets => "export_secrets",
            Self::AdjustBalance => "adjust_balance",
            Self::ChangeCredentials => "change_credentials",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::ActivateCards => "激活卡",
            Self::DeleteCards => "删除卡",
            Self::ExportSecrets => "导出卡号和密码",
            Self::AdjustBalance => "调整顾客余额",
            Self::ChangeCredentials => "修改推送或短信凭据",
        }
    }

    /// The card operation it runs, for the kinds that change cards.
    pub fn card_op(self) -> Option<CardOp> {
        match self {
            Self::ActivateCards => Some(CardOp::Activate),
            Self::DeleteCards => Some(CardOp::Delete),
            Self::ExportSecrets | Self::AdjustBalance | Self::ChangeCredentials => None,
        }
    }
}

impl ApprovalPolicy {
    /// Why `kind` reaching `reach` needs a second person, or `None` when
    /// the person asking may go ahead.
    pub fn reason(&self, kind: ApprovalKind, reach: Reach) -> Option<String> {
        match kind {
            ApprovalKind::ActivateCards => {
                if let Some(over) = self.activate_count_over.filter(|&o| reach.n_cards > o) {
                    return Some(format!("一次激活超过 {over} 张"));
                }
                self.activate_value_over_fen
                    .filter(|&o| reach.value_fen > o)
                    .map(|over| format!("一次激活面值超过 {} 元", crate::money::format_yuan(over)))
            }
            ApprovalKind::DeleteCards => self.delete_cards.then(|| "删除卡须复核".to_owned()),
            ApprovalKind::ExportSecrets => self.export_secrets.then(|| "导出密码须复核".to_owned()),
            ApprovalKind::AdjustBalance => self
                .adjust_over_fen
                .filter(|&o| reach.value_fen.abs() > o)
                .map(|over| format!("调整余额超过 {} 元", crate::money::format_yuan(over))),
            ApprovalKind::ChangeCredentials => self
                .credentials
                .then(|| "修改推送地址或短信凭据须复核".to_owned()),
        }
    }

    /// Whether [`ApprovalPolicy::reason`] for `kind` reads the reach, so
    /// that a caller counts the cards only when a threshold needs them.
    pub fn reads_reach(&self, kind: ApprovalKind) -> bool {
        match kind {
            ApprovalKind::ActivateCards => {
                self.activate_count_over.is_some() || self.activate_value_over_fen.is_some()
            }
            ApprovalKind::AdjustBalance => self.adjust_over_fen.is_some(),
            ApprovalKind::DeleteCards
            | ApprovalKind::ExportSecrets
            | ApprovalKind::ChangeCredentials => false,
        }
    }

    /// What the form may hold: amounts and counts not negative, expiry
    /// between an hour and a week.
    pub fn check(&self) -> Result<(), String> {
        let limits = [
            self.activate_count_over,
            self.activate_value_over_fen,
            self.adjust_over_fen,
            self.daily_cap.max_cards,
            self.daily_cap.max_value_fen,
        ];
        if limits.iter().flatten().any(|&v| v < 0) {
            return Err("复核阈值和每日上限不能为负数".into());
        }
        if !(1..=EXPIRY_HOURS_MAX).contains(&self.expiry_hours) {
            return Err(format!("审批有效期须为 1–{EXPIRY_HOURS_MAX} 小时"));
        }
        Ok(())
    }
}

/// Where a request is. An expired request stays `Pending` in the database
/// and is shown as expired ([`ApprovalRequest::shown_state`]); it can no
/// longer be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    Pending,
    /// Approved and running (or stopped by a crash while it ran).
    Approved,
    Rejected,
    Done,
    Failed,
    Expired,
}

impl ApprovalState {
    pub const ALL: [ApprovalState; 6] = [
        Self::Pending,
        Self::Approved,
        Self::Rejected,
        Self::Done,
        Self::Failed,
        Self::Expired,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Pending => "待审批",
            Self::Approved => "已批准",
            Self::Rejected => "已驳回",
            Self::Done => "已执行",
            Self::Failed => "执行失败",
            Self::Expired => "已过期",
        }
    }
}

/// A request as the person asking made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    pub merchant_id: i64,
    pub kind: ApprovalKind,
    /// The card filter's description, `customer=ID`, or what a credential
    /// change changes ([`CredentialChange::target`]).
    pub target: String,
    /// The export's format, the adjustment's reason, or the credential
    /// change's verb ([`CredentialChange::verb`]).
    pub detail: String,
    /// A credential change's new settings as JSON, their secret left out
    /// (it is in `secret_sealed`); empty for the other kinds.
    pub payload: String,
    /// A credential change's new secret, sealed under the merchant's key
    /// `key_version` as the settings it replaces keep theirs.
    pub secret_sealed: Option<Vec<u8>>,
    pub key_version: i32,
    /// What it reached when asked (for an adjustment, the signed amount).
    pub reach: Reach,
    /// Why it needs a second person.
    pub reason: String,
    pub requested_by: i64,
    pub requested_by_name: String,
    pub requested_at: i64,
    pub expires_at: i64,
}

impl NewApproval {
    /// The filter a card request runs, read back from its target.
    pub fn filter(&self) -> Option<CardFilter> {
        CardFilter::from_description(&self.target)
    }

    /// The customer an adjustment request is for.
    pub fn customer_id(&self) -> Option<i64> {
        self.target.strip_prefix("customer=")?.parse().ok()
    }

    /// The credential change a request carries.
    pub fn credential_change(&self) -> Option<CredentialChange> {
        if self.kind != ApprovalKind::ChangeCredentials {
            return None;
        }
        CredentialChange::parse(&self.target, &self.detail)
    }

    /// Whether approval leaves the run to the person who asked, because it
    /// hands back something only they should see once: the password
    /// export's file, a webhook endpoint's new signing secret.
    pub fn run_by_requester(&self) -> bool {
        match self.kind {
            ApprovalKind::ExportSecrets => true,
            ApprovalKind::ChangeCredentials => {
                self.credential_change().is_some_and(|c| c.makes_secret())
            }
            _ => false,
        }
    }
}

/// What a credential request changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialChange {
    CreateEndpoint,
    /// A new URL for an endpoint.
    UpdateEndpoint(i64),
    RotateEndpointSecret(i64),
    /// New SMS provider credentials.
    SmsSettings,
}

impl CredentialChange {
    pub fn target(self) -> String {
        match self {
            Self::CreateEndpoint => "webhook_endpoint=new".into(),
            Self::UpdateEndpoint(id) | Self::RotateEndpointSecret(id) => {
                format!("webhook_endpoint={id}")
            }
            Self::SmsSettings => "sms_settings".into(),
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Self::CreateEndpoint => "create",
            Self::UpdateEndpoint(_) => "update",
            Self::RotateEndpointSecret(_) => "rotate_secret",
            Self::SmsSettings => "save",
        }
    }

    pub fn parse(target: &str, verb: &str) -> Option<Self> {
        let endpoint = target.strip_prefix("webhook_endpoint=");
        match (endpoint, target, verb) {
            (Some("new"), _, "create") => Some(Self::CreateEndpoint),
            (Some(id), _, "update") => id.parse().ok().map(Self::UpdateEndpoint),
            (Some(id), _, "rotate_secret") => id.parse().ok().map(Self::RotateEndpointSecret),
            (None, "sms_settings", "save") => Some(Self::SmsSettings),
            _ => None,
        }
    }

    /// Whether running it makes a secret to show once.
    pub fn makes_secret(self) -> bool {
        matches!(self, Self::CreateEndpoint | Self::RotateEndpointSecret(_))
    }

    pub fn label_zh(self) -> String {
        match self {
            Self::CreateEndpoint => "新增推送地址".into(),
            Self::UpdateEndpoint(id) => format!("修改推送地址 {id} 的 URL"),
            Self::RotateEndpointSecret(id) => format!("更换推送地址 {id} 的签名密钥"),
            Self::SmsSettings => "修改短信服务商凭据".into(),
        }
    }
}

/// A request with its decision and outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub id: i64,
    pub request: NewApproval,
    pub state: ApprovalState,
    pub decided_by: Option<i64>,
    pub decided_by_name: Option<String>,
    pub decided_at: Option<i64>,
    /// How many cards the run changed or wrote (the adjustment: 1).
    pub n_done: Option<i64>,
    /// Why the run failed, or what it produced.
    pub outcome: String,
}

impl ApprovalRequest {
    pub fn shown_state(&self, now: i64) -> ApprovalState {
        if self.state == ApprovalState::Pending && now >= self.request.expires_at {
            ApprovalState::Expired
        } else {
            self.state
        }
    }

    /// Whether `staff_id` may decide it now, and why not.
    pub fn may_decide(&self, staff_id: i64, now: i64) -> Result<(), DecisionRefusal> {
        match self.shown_state(now) {
            ApprovalState::Pending if self.request.requested_by == staff_id => {
                Err(DecisionRefusal::OwnRequest)
            }
            ApprovalState::Pending => Ok(()),
            ApprovalState::Expired => Err(DecisionRefusal::Expired),
            state => Err(DecisionRefusal::Decided(state)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn state(self) -> ApprovalState {
        match self {
            Self::Approve => ApprovalState::Approved,
            Self::Reject => ApprovalState::Rejected,
        }
    }
}

/// Why a request cannot be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionRefusal {
    OwnRequest,
    Expired,
    Decided(ApprovalState),
}

impl DecisionRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::OwnRequest => "own_request",
            Self::Expired => "approval_expired",
            Self::Decided(_) => "approval_decided",
        }
    }

    pub fn message_zh(self) -> String {
        match self {
            Self::OwnRequest => "不能审批自己提交的请求，须由另一位管理员审批".into(),
            Self::Expired => "该请求已过期，未执行任何操作；如仍需要，请重新提交".into(),
            Self::Decided(state) => format!("该请求已处理（{}）", state.label_zh()),
        }
    }
}

/// Who decides, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    pub staff_id: i64,
    pub name: String,
    pub now: i64,
}

/// An activation counted against the staff member's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivationTally {
    pub staff_id: i64,
    /// The first second of the merchant-local day.
    pub day: i64,
    /// `None` for an approved request: the second person took it on.
    pub cap: Option<DailyCap>,
}

#[async_trait::async_trait]
pub trait ApprovalStore: Send + Sync + 'static {
    async fn approval_policy(&self, merchant_id: i64) -> StoreResult<ApprovalPolicy>;
    async fn set_approval_policy(
        &self,
        merchant_id: i64,
        policy: &ApprovalPolicy,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
    async fn create_approval(
        &self,
        request: &NewApproval,
        audit: &AuditEntry,
    ) -> StoreResult<ApprovalRequest>;
    async fn approval(&self, merchant_id: i64, id: i64) -> StoreResult<Option<ApprovalRequest>>;
    /// Newest first; `state` narrows (expired ones are pending past their time).
    async fn list_approvals(
        &self,
        merchant_id: i64,
        state: Option<ApprovalState>,
        now: i64,
        page: Page,
    ) -> StoreResult<(Vec<ApprovalRequest>, i64)>;
    /// `pending → approved | rejected` in one guarded statement: still
    /// pending, not expired, and decided by someone other than the person
    /// asking. `false` when the guard held it back.
    async fn decide_approval(
        &self,
        merchant_id: i64,
        id: i64,
        decision: Decision,
        by: &Decider,
        audit: &AuditEntry,
    ) -> StoreResult<bool>;
    /// `approved → done | failed` with what the run did.
    async fn finish_approval(
        &self,
        merchant_id: i64,
        id: i64,
        outcome: Result<i64, String>,
    ) -> StoreResult<bool>;
    /// How many cards `op` would move under `filter` now, and their face value.
    async fn card_op_reach(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        op: CardOp,
    ) -> StoreResult<Reach>;
    /// 激活 as [`crate::card::CardStore::apply_card_op`] does, counted in
    /// the staff member's day in the same transaction; beyond the cap the
    /// whole change is undone with [`crate::Conflict::DailyCapReached`].
    async fn activate_cards_counted(
        &self,
        merchant_id: i64,
        filter: &CardFilter,
        audit: &AuditEntry,
        tally: &ActivationTally,
    ) -> StoreResult<i64>;
    /// What the staff member activated in the day starting at `day`.
    async fn activated_in_day(
        &self,
        merchant_id: i64,
        staff_id: i64,
        day: i64,
    ) -> StoreResult<Reach>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(state: ApprovalState, by: i64, expires_at: i64) -> ApprovalRequest {
        ApprovalRequest {
            id: 1,
            request: NewApproval {
                merchant_id: 1,
                kind: ApprovalKind::ActivateCards,
                target: "batch=3".into(),
                detail: String::new(),
                payload: String::new(),
                secret_sealed: None,
                key_version: 0,
                reach: Reach::default(),
                reason: String::new(),
                requested_by: by,
                requested_by_name: "a".into(),
                requested_at: 0,
                expires_at,
            },
            state,
            decided_by: None,
            decided_by_name: None,
            decided_at: None,
            n_done: None,
            outcome: String::new(),
        }
    }

    #[test]
    fn thresholds_hold_only_what_is_over_them() {
        let policy = ApprovalPolicy {
            activate_count_over: Some(100),
            activate_value_over_fen: Some(50_000),
            adjust_over_fen: Some(10_000),
            ..ApprovalPolicy::default()
        };
        let reach = |n_cards, value_fen| Reach { n_cards, value_fen };
        let activate = ApprovalKind::ActivateCards;
        assert_eq!(policy.reason(activate, reach(100, 50_000)), None);
        assert_eq!(
            policy.reason(activate, reach(101, 0)).as_deref(),
            Some("一次激活超过 100 张")
        );
        assert_eq!(
            policy.reason(activate, reach(1, 50_001)).as_deref(),
            Some("一次激活面值超过 500.00 元")
        );
        let adjust = ApprovalKind::AdjustBalance;
        assert_eq!(policy.reason(adjust, reach(0, 10_000)), None);
        assert_eq!(policy.reason(adjust, reach(0, -10_000)), None);
        assert!(policy.reason(adjust, reach(0, -10_001)).is_some());
        assert!(policy.reason(adjust, reach(0, 10_001)).is_some());
        assert_eq!(policy.reason(ApprovalKind::DeleteCards, reach(9, 0)), None);
        assert_eq!(
            policy.reason(ApprovalKind::ExportSecrets, reach(9, 0)),
            None
        );
        let strict = ApprovalPolicy {
            delete_cards: true,
            export_secrets: true,
            ..ApprovalPolicy::default()
        };
        assert!(strict
            .reason(ApprovalKind::DeleteCards, reach(1, 0))
            .is_some());
        assert!(strict
            .reason(ApprovalKind::ExportSecrets, reach(1, 0))
            .is_some());
        assert_eq!(strict.reason(activate, reach(1_000_000, i64::MAX)), None);
        // The reach is read only where a threshold is set.
        assert!(policy.reads_reach(activate) && policy.reads_reach(adjust));
        assert!(!strict.reads_reach(activate) && !strict.reads_reach(adjust));
        assert!(!strict.reads_reach(ApprovalKind::DeleteCards));
        let by_value = ApprovalPolicy {
            activate_value_over_fen: Some(1),
            ..ApprovalPolicy::default()
        };
        assert!(by_value.reads_reach(activate));
    }

    #[test]
    fn a_daily_cap_allows_up_to_its_limits() {
        let cap = DailyCap {
            max_cards: Some(10),
            max_value_fen: Some(1_000),
        };
        let day = |n_cards, value_fen| Reach { n_cards, value_fen };
        assert!(cap.allows(day(10, 1_000)));
        assert!(!cap.allows(day(11, 0)));
        assert!(!cap.allows(day(0, 1_001)));
        assert!(DailyCap::default().allows(day(i64::MAX, i64::MAX)));
    }

    #[test]
    fn the_policy_form_refuses_negatives_and_odd_expiry() {
        assert!(ApprovalPolicy::default().check().is_ok());
        let negative = ApprovalPolicy {
            daily_cap: DailyCap {
                max_cards: Some(-1),
                max_value_fen: None,
            },
            ..ApprovalPolicy::default()
        };
        assert!(negative.check().is_err());
        let zero = ApprovalPolicy {
            activate_count_over: Some(0),
            adjust_over_fen: Some(0),
            ..ApprovalPolicy::default()
        };
        assert!(zero.check().is_ok(), "a zero threshold holds every action");
        for (hours, ok) in [(0, false), (1, true), (168, true), (169, false)] {
            let policy = ApprovalPolicy {
                expiry_hours: hours,
                ..ApprovalPolicy::default()
            };
            assert_eq!(policy.check().is_ok(), ok, "{hours} hours");
        }
    }

    #[test]
    fn only_another_person_decides_a_pending_request_in_time() {
        let pending = request(ApprovalState::Pending, 7, 100);
        assert_eq!(pending.may_decide(8, 99), Ok(()));
        assert_eq!(pending.may_decide(7, 99), Err(DecisionRefusal::OwnRequest));
        assert_eq!(pending.may_decide(8, 100), Err(DecisionRefusal::Expired));
        assert_eq!(pending.shown_state(100), ApprovalState::Expired);
        assert_eq!(pending.shown_state(99), ApprovalState::Pending);
        let done = request(ApprovalState::Done, 7, 100);
        assert_eq!(
            done.may_decide(8, 0),
            Err(DecisionRefusal::Decided(ApprovalState::Done))
        );
        assert_eq!(done.shown_state(1_000), ApprovalState::Done);
    }

    #[test]
    fn codes_read_back() {
        for kind in ApprovalKind::ALL {
            assert_eq!(ApprovalKind::parse(kind.code()), Some(kind));
        }
        for state in ApprovalState::ALL {
            assert_eq!(ApprovalState::parse(state.code()), Some(state));
        }
        assert_eq!(
            ApprovalKind::ActivateCards.card_op(),
            Some(CardOp::Activate)
        );
        assert_eq!(ApprovalKind::DeleteCards.card_op(), Some(CardOp::Delete));
        assert_eq!(ApprovalKind::AdjustBalance.card_op(), None);
        assert_eq!(ApprovalKind::ChangeCredentials.card_op(), None);
        let adjust = NewApproval {
            target: "customer=42".into(),
            ..request(ApprovalState::Pending, 1, 1).request
        };
        assert_eq!(adjust.customer_id(), Some(42));
        assert_eq!(
            request(ApprovalState::Pending, 1, 1).request.filter(),
            Some(CardFilter {
                batch_id: Some(3),
                ..CardFilter::default()
            })
        );
    }

    #[test]
    fn credential_changes_read_back_and_only_new_secrets_wait_for_the_requester() {
        let changes = [
            CredentialChange::CreateEndpoint,
            CredentialChange::UpdateEndpoint(4),
            CredentialChange::RotateEndpointSecret(4),
            CredentialChange::SmsSettings,
        ];
        for change in changes {
            let request = NewApproval {
                kind: ApprovalKind::ChangeCredentials,
                target: change.target(),
                detail: change.verb().into(),
                ..request(ApprovalState::Pending, 1, 1).request
            };
            assert_eq!(request.credential_change(), Some(change));
            assert_eq!(request.run_by_requester(), change.makes_secret());
            let other_kind = NewApproval {
                kind: ApprovalKind::AdjustBalance,
                ..request
            };
            assert_eq!(other_kind.credential_change(), None);
            assert!(!other_kind.run_by_requester());
        }
        assert!(CredentialChange::CreateEndpoint.makes_secret());
        assert!(CredentialChange::RotateEndpointSecret(1).makes_secret());
        assert!(!CredentialChange::UpdateEndpoint(1).makes_secret());
        assert!(!CredentialChange::SmsSettings.makes_secret());
        assert_eq!(
            CredentialChange::parse("webhook_endpoint=x", "update"),
            None
        );
        assert_eq!(
            CredentialChange::parse("webhook_endpoint=new", "update"),
            None
        );
        assert_eq!(CredentialChange::parse("sms_settings", "create"), None);
        assert_eq!(
            CredentialChange::parse("webhook_endpoint=3", "delete"),
            None
        );
        let export = NewApproval {
            kind: ApprovalKind::ExportSecrets,
            ..request(ApprovalState::Pending, 1, 1).request
        };
        assert!(export.run_by_requester());
        assert!(!request(ApprovalState::Pending, 1, 1)
            .request
            .run_by_requester());
        let policy = ApprovalPolicy {
            credentials: true,
            ..ApprovalPolicy::default()
        };
        let kind = ApprovalKind::ChangeCredentials;
        assert!(policy.reason(kind, Reach::default()).is_some());
        assert!(!policy.reads_reach(kind));
        assert_eq!(
            ApprovalPolicy::default().reason(kind, Reach::default()),
            None
        );
    }

    #[test]
    fn every_kind_state_and_change_reads_in_chinese() {
        let labels: Vec<String> = ApprovalKind::ALL
            .iter()
            .map(|k| k.label_zh().to_owned())
            .chain(ApprovalState::ALL.iter().map(|s| s.label_zh().to_owned()))
            .collect();
        assert_eq!(
            ApprovalKind::ChangeCredentials.label_zh(),
            "修改推送或短信凭据"
        );
        assert_eq!(ApprovalState::Pending.label_zh(), "待审批");
        for (i, label) in labels.iter().enumerate() {
            assert!(label.chars().any(|c| c > '\u{2e80}'), "{label}");
            assert!(!labels[..i].contains(label), "{label} twice");
        }
        assert_eq!(
            CredentialChange::RotateEndpointSecret(4).label_zh(),
            "更换推送地址 4 的签名密钥"
        );
        assert_eq!(
            CredentialChange::UpdateEndpoint(4).label_zh(),
            "修改推送地址 4 的 URL"
        );
        assert_eq!(CredentialChange::CreateEndpoint.label_zh(), "新增推送地址");
        assert_eq!(
            CredentialChange::SmsSettings.label_zh(),
            "修改短信服务商凭据"
        );
    }

    #[test]
    fn refusals_carry_their_codes_and_say_why() {
        let refusals = [
            (DecisionRefusal::OwnRequest, "own_request", "自己"),
            (DecisionRefusal::Expired, "approval_expired", "过期"),
            (
                DecisionRefusal::Decided(ApprovalState::Rejected),
                "approval_decided",
                "已驳回",
            ),
        ];
        for (refusal, code, says) in refusals {
            assert_eq!(refusal.code(), code);
            assert!(
                refusal.message_zh().contains(says),
                "{}",
                refusal.message_zh()
            );
        }
    }
}
