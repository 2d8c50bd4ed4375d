//! The coupons customers hold (我的卡券), why one cannot be used, its
//! verification (核销) records and their reconciliation (数据与对账), and the
//! coupon domain's store.
//!
//! Architecture invariant: [`check_usable`] alone decides whether a coupon
//! may be verified, and names the reason when not; the store's guarded
//! update repeats only what can change between that read and the write
//! (the coupon's state, a gift, the program's state, the use limit).

use super::code::NewCouponCode;
use super::{Benefit, CouponKind, CouponProgram, CouponProgramFields, ProgramState};
use crate::audit::{Actor, AuditEntry};
use crate::clock::format_date;
use crate::ledger::{ApiCall, Called};
use crate::store::Page;
use crate::StoreResult;

/// Where a held coupon stands (stored); `expired` is derived from `valid_until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponState {
    Available,
    Verified,
}

impl CouponState {
    pub fn code(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Verified => "verified",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        [Self::Available, Self::Verified]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// How its holder got a coupon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponSource {
    /// 领取 by the claim link or QR code.
    Claim,
    /// 定向发放 by the merchant.
    Targeted,
    /// 获取卡券ID: bought in the mall.
    Order,
    /// 转赠: a friend gave it.
    Gift,
    /// 朋友的券: claimed through a friend's share link.
    Share,
    /// 核销后返券: given when another coupon was verified.
    GiveBack,
}

impl CouponSource {
    pub const ALL: [Self; 6] = [
        Self::Claim,
        Self::Targeted,
        Self::Order,
        Self::Gift,
        Self::Share,
        Self::GiveBack,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Targeted => "targeted",
            Self::Order => "order",
            Self::Gift => "gift",
            Self::Share => "share",
            Self::GiveBack => "give_back",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Claim => "领取",
            Self::Targeted => "定向发放",
            Self::Order => "商城购买",
            Self::Gift => "好友转赠",
            Self::Share => "好友分享",
            Self::GiveBack => "核销后返券",
        }
    }
}

/// One coupon a customer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coupon {
    pub id: i64,
    pub merchant_id: i64,
    pub program_id: i64,
    pub customer_id: i64,
    pub state: CouponState,
    pub valid_from: i64,
    pub valid_until: i64,
    pub sealed: Vec<u8>,
    pub key_version: i32,
    pub source: CouponSource,
    /// The mall's order and line it was bought with (获取卡券ID).
    pub order_id: Option<String>,
    pub claimed_at: i64,
    pub verified_at: Option<i64>,
    /// A gift link is open: the friend has not taken it yet.
    pub gifting: bool,
}

/// What the wallet and the verifier say of a coupon now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponStatus {
    Usable,
    NotYetValid,
    Expired,
    Verified,
    Gifting,
}

impl CouponStatus {
    pub fn code(self) -> &'static str {
        match self {
            Self::Usable => "usable",
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::Verified => "verified",
            Self::Gifting => "gifting",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Usable => "可使用",
            Self::NotYetValid => "未到使用时间",
            Self::Expired => "已过期",
            Self::Verified => "已使用",
            Self::Gifting => "转赠中",
        }
    }
}

impl Coupon {
    pub fn status(&self, now: i64) -> CouponStatus {
        match self.state {
            CouponState::Verified => CouponStatus::Verified,
            CouponState::Available if self.valid_until < now => CouponStatus::Expired,
            CouponState::Available if self.gifting => CouponStatus::Gifting,
            CouponState::Available if self.valid_from > now => CouponStatus::NotYetValid,
            CouponState::Available => CouponStatus::Usable,
        }
    }
}

/// The wallet's tabs: 可使用 / 已使用 / 已过期.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletTab {
    Usable,
    Used,
    Expired,
}

impl WalletTab {
    pub const ALL: [Self; 3] = [Self::Usable, Self::Used, Self::Expired];
    pub fn code(self) -> &'static str {
        match self {
            Self::Usable => "usable",
            Self::Used => "used",
            Self::Expired => "expired",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Usable => "可使用",
            Self::Used => "已使用",
            Self::Expired => "已过期",
        }
    }
}

pub use super::refusal::CouponRefusal;

/// Whether `coupon` of `program` may be verified at `location_id` now: the
/// one place the rule is written, with the precise reason when not.
pub fn check_usable(
    program: &CouponProgram,
    coupon: &Coupon,
    location_id: Option<i64>,
    now: i64,
) -> Result<(), CouponRefusal> {
    if let (CouponState::Verified, Some(verified_at)) = (coupon.state, coupon.verified_at) {
        return Err(CouponRefusal::Used { verified_at });
    }
    if coupon.gifting {
        return Err(CouponRefusal::Gifting);
    }
    if matches!(program.state, ProgramState::Paused | ProgramState::Draft) {
        return Err(CouponRefusal::ProgramPaused);
    }
    if coupon.valid_from > now {
        return Err(CouponRefusal::NotYetValid {
            valid_from: coupon.valid_from,
        });
    }
    if coupon.valid_until < now {
        return Err(CouponRefusal::Expired {
            valid_until: coupon.valid_until,
        });
    }
    if !program.fields.time_limit.allows(now) {
        return Err(CouponRefusal::WrongTime);
    }
    check_location(&program.fields, location_id)
}

/// What a store reads of a coupon inside the verifying transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyFacts {
    pub state: CouponState,
    pub verified_at: Option<i64>,
    pub gifting: bool,
    pub program_state: ProgramState,
    pub valid_from: i64,
    pub valid_until: i64,
    /// Coupons of the program the holder has used, and may use.
    pub n_used: i64,
    pub use_limit: i64,
}

/// What the verifying transaction checks again (what may have changed
/// since [`check_usable`] ran), with the same reasons.
pub fn recheck(facts: &VerifyFacts, now: i64) -> Result<(), CouponRefusal> {
    if let (CouponState::Verified, Some(verified_at)) = (facts.state, facts.verified_at) {
        return Err(CouponRefusal::Used { verified_at });
    }
    if facts.gifting {
        return Err(CouponRefusal::Gifting);
    }
    if matches!(
        facts.program_state,
        ProgramState::Paused | ProgramState::Draft
    ) {
        return Err(CouponRefusal::ProgramPaused);
    }
    if facts.valid_from > now {
        return Err(CouponRefusal::NotYetValid {
            valid_from: facts.valid_from,
        });
    }
    if facts.valid_until < now {
        return Err(CouponRefusal::Expired {
            valid_until: facts.valid_until,
        });
    }
    if facts.n_used >= facts.use_limit {
        return Err(CouponRefusal::UseLimitReached {
            use_limit: facts.use_limit,
        });
    }
    Ok(())
}

/// Whether a verification may be undone now, and why not.
pub fn check_undo(
    created_at: i64,
    undone_at: Option<i64>,
    window_seconds: i64,
    now: i64,
) -> Result<(), CouponRefusal> {
    if undone_at.is_some() {
        return Err(CouponRefusal::AlreadyUndone);
    }
    if now > created_at + window_seconds {
        return Err(CouponRefusal::UndoWindowPassed {
            window_minutes: window_seconds / 60,
        });
    }
    Ok(())
}

/// Whether `n` more coupons may be given out of a program in `state` with
/// `stock_left`, and, for a claim, to a holder who claimed `n_claimed` of
/// `get_limit` already.
pub fn check_issue(
    state: ProgramState,
    stock_left: i64,
    n: i64,
    claim: Option<(i64, i64)>,
) -> Result<(), CouponRefusal> {
    match state {
        ProgramState::Active => {}
        ProgramState::Paused => return Err(CouponRefusal::ProgramPaused),
        ProgramState::Draft | ProgramState::Ended => return Err(CouponRefusal::ProgramNotActive),
    }
    if stock_left < n {
        return Err(CouponRefusal::OutOfStock);
    }
    match claim {
        Some((n_claimed, get_limit)) if n_claimed + n > get_limit => {
            Err(CouponRefusal::ClaimLimitReached { get_limit })
        }
        _ => Ok(()),
    }
}

/// Maps the refusals of a call's guard (nonce, idempotency key).
pub fn refusal_of_guard(refusal: crate::ledger::Refusal) -> CouponRefusal {
    match refusal {
        crate::ledger::Refusal::NonceReused => CouponRefusal::NonceReused,
        _ => CouponRefusal::IdempotencyMismatch,
    }
}

/// Whether the program is valid at the location staff verify at.
pub fn check_location(
    fields: &CouponProgramFields,
    location_id: Option<i64>,
) -> Result<(), CouponRefusal> {
    match location_id {
        _ if fields.use_all_locations => Ok(()),
        None => Err(CouponRefusal::LocationRequired),
        Some(id) if fields.location_ids.contains(&id) => Ok(()),
        Some(_) => Err(CouponRefusal::WrongLocation),
    }
}

/// Whether a verifier bound to `bound` (empty: every location) may verify
/// at `location_id`.
pub fn check_verifier_location(
    bound: &[i64],
    location_id: Option<i64>,
) -> Result<(), CouponRefusal> {
    match location_id {
        _ if bound.is_empty() => Ok(()),
        Some(id) if bound.contains(&id) => Ok(()),
        Some(_) => Err(CouponRefusal::NotYourLocation),
        None => Err(CouponRefusal::LocationRequired),
    }
}

/// How a verification reached kaquan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyChannel {
    Scan,
    Typed,
    Api,
}

impl VerifyChannel {
    pub const ALL: [Self; 3] = [Self::Scan, Self::Typed, Self::Api];
    pub fn code(self) -> &'static str {
        match self {
            Self::Scan => "scan",
            Self::Typed => "typed",
            Self::Api => "api",
        }
    }
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Scan => "扫码核销",
            Self::Typed => "券码核销",
            Self::Api => "接口核销",
        }
    }
}

/// How a typed code names its coupon: by its digest (the fixed code), by
/// its id (the 动态码, whose one-time part is checked after), or not at all
/// (a malformed code).
#[derive(Debug, Clone, Copy)]
pub enum CouponLookup<'a> {
    Digest(&'a [u8]),
    Id(i64),
    Nothing,
}

/// One verification (核销记录).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponVerification {
    pub id: i64,
    pub merchant_id: i64,
    pub coupon_id: i64,
    pub program_id: i64,
    pub program_title: String,
    pub kind: CouponKind,
    pub location_id: Option<i64>,
    pub location_name: Option<String>,
    pub staff_id: Option<i64>,
    /// Who verified: a staff member's username, or the API key's label.
    pub verifier: String,
    pub channel: VerifyChannel,
    pub order_amount_fen: Option<i64>,
    pub discount_fen: i64,
    /// The mall's or POS's order reference.
    pub order_ref: String,
    pub customer_id: i64,
    pub customer_label: String,
    /// The coupon's sealed code, shown masked.
    pub sealed: Vec<u8>,
    pub key_version: i32,
    pub created_at: i64,
    pub undone_at: Option<i64>,
    pub undone_by: Option<String>,
    /// 核销后返券: the coupon the customer was given, if one was.
    pub given_coupon_id: Option<i64>,
}

impl CouponVerification {
    /// The audit record of a verification (`verify_coupon`) or of its undo.
    pub fn audit(&self, action: &str, actor: &Actor, now: i64) -> AuditEntry {
        AuditEntry {
            merchant_id: self.merchant_id,
            actor: actor.clone(),
            action: action.into(),
            target: format!("coupon_verification={}", self.id),
            detail: format!(
                "coupon={} program={} location={} channel={} discount_fen={}",
                self.coupon_id,
                self.program_id,
                self.location_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                self.channel.code(),
                self.discount_fen
            ),
            n_affected: 1,
            created_at: now,
        }
    }
}

/// Which verifications a list covers; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerificationFilter {
    pub program_id: Option<i64>,
    pub location_id: Option<i64>,
    pub verifier: Option<String>,
    pub channel: Option<VerifyChannel>,
    /// Verified at or after (unix seconds).
    pub from: Option<i64>,
    /// Verified at or before.
    pub until: Option<i64>,
}

/// One row of 数据与对账 per day and location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyVerificationStats {
    /// Merchant-local day, `YYYY-MM-DD`.
    pub day: String,
    pub location_id: Option<i64>,
    pub location_name: Option<String>,
    pub n_verified: i64,
    /// Order amounts the coupons were used on, where given.
    pub order_amount_fen: i64,
    pub discount_fen: i64,
    pub n_undone: i64,
}

/// One row of 数据与对账 per verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierStats {
    pub verifier: String,
    pub n_verified: i64,
    pub order_amount_fen: i64,
    pub discount_fen: i64,
    pub n_undone: i64,
}

/// The merchant-local day number of a timestamp (days since 1970-01-01 in
/// China time), which both stores group 数据与对账 by.
pub fn local_day_number(timestamp: i64) -> i64 {
    (timestamp + i64::from(crate::clock::MERCHANT_UTC_OFFSET_SECONDS)).div_euclid(86_400)
}

/// A day number back as `YYYY-MM-DD` (midnight UTC of that day number is
/// 08:00 in China, the same calendar day).
pub fn format_day_number(day: i64) -> String {
    format_date(day * 86_400)
}

/// Coupons to give out in one transaction, all or none.
#[derive(Debug, Clone)]
pub struct IssueCoupons {
    pub merchant_id: i64,
    pub program_id: i64,
    pub source: CouponSource,
    /// One code per coupon, each to its customer.
    pub coupons: Vec<(i64, NewCouponCode)>,
    /// The mall's order and line (获取卡券ID): issued once per line.
    pub order: Option<(String, String)>,
    /// The customer whose share link a friend claimed through.
    pub shared_by: Option<i64>,
    pub actor: Actor,
    pub now: i64,
}

impl IssueCoupons {
    /// Whether the holders' 每人可领 applies: to what customers take
    /// themselves or are given back, not to what the merchant hands out.
    pub fn within_claim_limit(&self) -> bool {
        matches!(
            self.source,
            CouponSource::Claim | CouponSource::Share | CouponSource::GiveBack
        )
    }

    /// How many coupons each customer gets, in the order they first appear.
    pub fn per_customer(&self) -> Vec<(i64, i64)> {
        let mut counts: Vec<(i64, i64)> = Vec::new();
        for (customer_id, _) in &self.coupons {
            match counts.iter_mut().find(|(id, _)| id == customer_id) {
                Some((_, k)) => *k += 1,
                None => counts.push((*customer_id, 1)),
            }
        }
        counts
    }

    /// The audit record of a targeted issue or a mall order's coupons
    /// (customers' own claims are not audited: they are the customers' acts).
    pub fn audit(&self, issue_id: i64) -> Option<AuditEntry> {
        (!matches!(self.source, CouponSource::Claim | CouponSource::Share)).then(|| AuditEntry {
            merchant_id: self.merchant_id,
            actor: self.actor.clone(),
            action: "issue_coupons".into(),
            target: format!("coupon_program={}", self.program_id),
            detail: match &self.order {
                Some((order_id, line)) => format!(
                    "source={} issue={issue_id} order={order_id} line={line}",
                    self.source.code()
                ),
                None => format!("source={} issue={issue_id}", self.source.code()),
            },
            n_affected: self.coupons.len() as i64,
            created_at: self.now,
        })
    }

    /// The event of the issue: every coupon made, with its holder.
    pub fn event(&self, made: &[(i64, i64)]) -> crate::event::NewEvent {
        crate::event::NewEvent::coupons_issued(
            self.merchant_id,
            self.program_id,
            self.source.code(),
            self.order.as_ref(),
            made,
            self.now,
        )
    }
}

/// A verification to record, checked by [`check_usable`] beforehand.
#[derive(Debug, Clone)]
pub struct VerifyCoupon {
    pub merchant_id: i64,
    pub coupon_id: i64,
    /// The coupon's program and holder as the caller read them (a coupon
    /// given to a friend since is verified for its new holder).
    pub program_id: i64,
    pub customer_id: i64,
    pub location_id: Option<i64>,
    pub actor: Actor,
    pub channel: VerifyChannel,
    pub order_amount_fen: Option<i64>,
    pub discount_fen: i64,
    pub order_ref: String,
    /// 核销后返券: the program to give one coupon of, and its code.
    pub give: Option<(i64, NewCouponCode)>,
    pub now: i64,
}

impl VerifyCoupon {
    /// The one coupon 核销后返券 gives, as an issue the store tries inside
    /// the verification's transaction.
    pub fn give_back(&self) -> Option<IssueCoupons> {
        let (program_id, code) = self.give.clone()?;
        Some(IssueCoupons {
            merchant_id: self.merchant_id,
            program_id,
            source: CouponSource::GiveBack,
            coupons: vec![(self.customer_id, code)],
            order: None,
            shared_by: None,
            actor: self.actor.clone(),
            now: self.now,
        })
    }

    /// The record this verification writes, as far as the request says
    /// it: no id yet, and the program's title and kind, the location's and
    /// customer's names and the sealed code left for the store to read.
    pub fn record(&self) -> CouponVerification {
        CouponVerification {
            id: 0,
            merchant_id: self.merchant_id,
            coupon_id: self.coupon_id,
            program_id: self.program_id,
            program_title: String::new(),
            kind: CouponKind::Cash,
            location_id: self.location_id,
            location_name: None,
            staff_id: self.actor.staff_id,
            verifier: self.actor.label.clone(),
            channel: self.channel,
            order_amount_fen: self.order_amount_fen,
            discount_fen: self.discount_fen,
            order_ref: self.order_ref.clone(),
            customer_id: self.customer_id,
            customer_label: String::new(),
            sealed: Vec::new(),
            key_version: 0,
            created_at: self.now,
            undone_at: None,
            undone_by: None,
            given_coupon_id: None,
        }
    }
}

/// An undo of a verification, within the merchant's window.
#[derive(Debug, Clone)]
pub struct UndoVerification {
    pub merchant_id: i64,
    pub verification_id: i64,
    pub window_seconds: i64,
    pub actor: Actor,
    pub now: i64,
}

/// The merchant's coupon settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CouponSettings {
    /// How long after a verification the mall or POS may undo it (minutes).
    pub undo_window_minutes: i64,
}

pub const UNDO_WINDOW_MINUTES_DEFAULT: i64 = 60;
pub const UNDO_WINDOW_MINUTES_MAX: i64 = 7 * 24 * 60;

impl Default for CouponSettings {
    fn default() -> Self {
        Self {
            undo_window_minutes: UNDO_WINDOW_MINUTES_DEFAULT,
        }
    }
}

/// Which programs a list covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramFilter {
    pub state: Option<ProgramState>,
    pub kind: Option<CouponKind>,
    /// Part of the title.
    pub title: Option<String>,
}

/// Which of a program's pictures an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponPicture {
    /// 商户 Logo (`logo_url`).
    Logo,
    /// 朋友的券's 封面 (`cover_url`).
    Cover,
}

/// A program's uploaded logo or cover (checked to be an image) and where
/// the customer's pages fetch it.
pub struct CouponLogo {
    pub picture: CouponPicture,
    pub merchant_id: i64,
    pub program_id: i64,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    pub url: String,
    pub now: i64,
}

/// A coupon with its program, as the wallet, the verifier and the API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCoupon {
    pub coupon: Coupon,
    pub program: CouponProgram,
}

impl HeldCoupon {
    pub fn benefit(&self) -> &Benefit {
        &self.program.fields.benefit
    }
}

/// A held coupon that passed its validity unused, announced once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiredCoupon {
    pub merchant_id: i64,
    pub coupon_id: i64,
    pub program_id: i64,
    pub customer_id: i64,
    pub valid_until: i64,
}

/// Most expired coupons one sweep announces.
pub const EXPIRY_SWEEP_MAX: i64 = 500;

/// Coupon programs, held coupons and their verifications in the database.
#[async_trait::async_trait]
pub trait CouponStore: Send + Sync + 'static {
    async fn create_coupon_program(
        &self,
        merchant_id: i64,
        fields: &CouponProgramFields,
        quantity: i64,
        claim_token: &str,
        audit: &AuditEntry,
    ) -> StoreResult<CouponProgram>;
    /// Saves an edit made on `version`; `Conflict::ProgramChanged` if
    /// another edit or a state change came first.
    async fn update_coupon_program(
        &self,
        merchant_id: i64,
        program_id: i64,
        version: i64,
        fields: &CouponProgramFields,
        audit: &AuditEntry,
    ) -> StoreResult<CouponProgram>;
    /// Moves a program to `to` from one of [`ProgramState::sources_of`];
    /// returns rows changed (0: it was not in such a state).
    async fn set_coupon_program_state(
        &self,
        merchant_id: i64,
        program_id: i64,
        to: ProgramState,
        audit: &AuditEntry,
    ) -> StoreResult<u64>;
    /// Adds `delta` (negative: removes) to the stock, never below what was
    /// claimed nor above [`super::STOCK_MAX`]; returns rows changed.
    async fn change_coupon_stock(
        &self,
        merchant_id: i64,
        program_id: i64,
        delta: i64,
        audit: &AuditEntry,
    ) -> StoreResult<u64>;
    /// Keeps an uploaded logo for the program (replacing any before) and
    /// points its `logo_url` at it, as a new version; `NotFound` when the
    /// program is not the merchant's.
    async fn put_coupon_logo(&self, logo: &CouponLogo, audit: &AuditEntry) -> StoreResult<()>;
    /// An uploaded logo: its content type and bytes.
    async fn get_coupon_logo(
        &self,
        program_id: i64,
        picture: CouponPicture,
    ) -> StoreResult<Option<(String, Vec<u8>)>>;
    async fn get_coupon_program(
        &self,
        merchant_id: i64,
        program_id: i64,
    ) -> StoreResult<CouponProgram>;
    /// The program behind a claim link, in whichever merchant.
    async fn find_program_by_claim_token(&self, token: &str) -> StoreResult<Option<CouponProgram>>;
    async fn list_coupon_programs(
        &self,
        merchant_id: i64,
        filter: &ProgramFilter,
        page: Page,
    ) -> StoreResult<(Vec<CouponProgram>, i64)>;

    /// Gives out coupons, all or none: stock for all of them, the claim
    /// limit per customer for [`CouponSource::Claim`], one issue per order
    /// line (a repeat answers the line's coupons, `replayed`).
    async fn issue_coupons(
        &self,
        call: &ApiCall,
        issue: &IssueCoupons,
    ) -> StoreResult<Called<Vec<Coupon>, CouponRefusal>>;
    /// The coupon a typed code names, and how often the reader failed
    /// since `since` (`AttemptStore::count_failures`), in one visit to the
    /// store: the verification's one read.
    async fn find_coupon_for_reader(
        &self,
        merchant_id: i64,
        lookup: CouponLookup<'_>,
        attempt_key: &str,
        since: i64,
    ) -> StoreResult<(Option<HeldCoupon>, i64)>;
    /// 核销 of a fixed code looked up inside the verifying transaction
    /// (`usecases::verify_code`); `None`: the store has no such path.
    async fn verify_coupon_code(
        &self,
        _call: &ApiCall,
        _ask: &super::usecases::CodeVerification,
    ) -> StoreResult<Option<Called<CouponVerification, CouponRefusal>>> {
        Ok(None)
    }
    async fn get_coupon(&self, merchant_id: i64, coupon_id: i64)
        -> StoreResult<Option<HeldCoupon>>;
    /// A customer's coupons in one wallet tab, newest first.
    async fn list_customer_coupons(
        &self,
        merchant_id: i64,
        customer_id: i64,
        tab: Option<WalletTab>,
        now: i64,
        page: Page,
    ) -> StoreResult<(Vec<HeldCoupon>, i64)>;

    /// Records a verification: one guarded update of the coupon (still
    /// available, not being given, its program not paused, within its
    /// validity) and of the holder's use count.
    async fn verify_coupon(
        &self,
        call: &ApiCall,
        verify: &VerifyCoupon,
    ) -> StoreResult<Called<CouponVerification, CouponRefusal>>;
    /// Undoes a verification inside its window: the coupon is usable again.
    async fn undo_coupon_verification(
        &self,
        call: &ApiCall,
        undo: &UndoVerification,
    ) -> StoreResult<Called<CouponVerification, CouponRefusal>>;
    async fn get_coupon_verification(
        &self,
        merchant_id: i64,
        verification_id: i64,
    ) -> StoreResult<Option<CouponVerification>>;
    async fn list_coupon_verifications(
        &self,
        merchant_id: i64,
        filter: &VerificationFilter,
        page: Page,
    ) -> StoreResult<(Vec<CouponVerification>, i64)>;
    /// 数据与对账 by day and location, newest day first.
    async fn daily_verification_stats(
        &self,
        merchant_id: i64,
        filter: &VerificationFilter,
    ) -> StoreResult<Vec<DailyVerificationStats>>;
    /// 数据与对账 by verifier.
    async fn verifier_stats(
        &self,
        merchant_id: i64,
        filter: &VerificationFilter,
    ) -> StoreResult<Vec<VerifierStats>>;

    /// Opens a gift link on the holder's usable coupon (its token's hash);
    /// returns rows changed.
    async fn offer_coupon_gift(
        &self,
        merchant_id: i64,
        coupon_id: i64,
        customer_id: i64,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<u64>;
    /// Closes the holder's open gift link; returns rows changed.
    async fn cancel_coupon_gift(
        &self,
        merchant_id: i64,
        coupon_id: i64,
        customer_id: i64,
    ) -> StoreResult<u64>;
    /// The coupon behind an open gift link.
    async fn find_coupon_gift(&self, token_hash: &str) -> StoreResult<Option<HeldCoupon>>;
    /// Moves the coupon of an open gift link to `friend_id`, once.
    async fn accept_coupon_gift(
        &self,
        merchant_id: i64,
        token_hash: &str,
        friend_id: i64,
        now: i64,
    ) -> StoreResult<Result<Coupon, CouponRefusal>>;

    /// Records `coupon.expired` once for up to `limit` coupons that passed
    /// their validity unused by `now`, each in the transaction that marks
    /// it announced (two nodes never announce one twice); returns how many.
    async fn announce_expired_coupons(&self, now: i64, limit: i64) -> StoreResult<i64>;

    async fn get_coupon_settings(&self, merchant_id: i64) -> StoreResult<CouponSettings>;
    async fn save_coupon_settings(
        &self,
        merchant_id: i64,
        settings: &CouponSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()>;
}
