//! The coupon use cases the console, the H5 pages, the verifier page, the
//! open API and the CLI share: 制券, 投放 (claim, targeted issue, the
//! mall's order), 核销 and its undo, and 转赠.

use super::code::{
    coupon_code_digest, digest_keys, new_coupon_codes, open_coupon_code, rotating_code_matches,
    TypedCode,
};
use super::usage::{
    check_usable, check_verifier_location, CouponLookup, CouponRefusal, CouponSource,
    CouponVerification, HeldCoupon, IssueCoupons, UndoVerification, VerifyChannel, VerifyCoupon,
};
use super::{check_edit, Benefit, CouponProgram, CouponProgramFields, ProgramState, STOCK_MAX};
use crate::attempts::{lock, ATTEMPT_WINDOW_SECONDS};
use crate::audit::{Actor, AuditEntry};
use crate::ledger::{ApiCall, Called};
use crate::secrets::{random_token_hex, MasterKey, MerchantKeys};
use crate::store::Store;
use crate::{StoreError, StoreResult};

/// Wrong codes a verifier (a staff account) may type per window before waiting.
pub const VERIFIER_FAILURES_MAX: i64 = 20;
/// Wrong codes one API key may send per window.
pub const API_CODE_FAILURES_MAX: i64 = 500;
/// Most coupons one call issues (a mall order line, a targeted list).
pub const ISSUE_COUPONS_MAX: i64 = 10_000;

/// Why a program was not created or saved.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("{}", .0.join("；"))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// 制券: creates a program as a draft with `quantity` in stock.
pub async fn create_coupon_program(
    store: &dyn Store,
    merchant_id: i64,
    fields: &CouponProgramFields,
    quantity: i64,
    actor: &Actor,
    now: i64,
) -> Result<CouponProgram, ProgramError> {
    let mut errors = fields.check().err().unwrap_or_default();
    if fields.shared.is_some() {
        if quantity != 0 {
            errors.push("朋友的券的库存须用券点增加，制券时库存为 0".into());
        }
    } else if !(1..=STOCK_MAX).contains(&quantity) {
        errors.push(format!("库存须为 1–{STOCK_MAX}"));
    }
    check_give_program(store, merchant_id, fields, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ProgramError::Invalid(errors));
    }
    let entry = AuditEntry::new(
        merchant_id,
        actor,
        "create_coupon_program",
        String::new(),
        format!("kind={} quantity={quantity}", fields.benefit.kind().code()),
        now,
    );
    Ok(store
        .create_coupon_program(merchant_id, fields, quantity, &random_token_hex(16), &entry)
        .await?)
}

/// 核销后返券 names a program of the same merchant.
async fn check_give_program(
    store: &dyn Store,
    merchant_id: i64,
    fields: &CouponProgramFields,
    errors: &mut Vec<String>,
) -> StoreResult<()> {
    if let Some(give) = fields.give_program_id {
        match store.get_coupon_program(merchant_id, give).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => errors.push("核销后赠送的券不存在".into()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Saves an edit made on `version`: anything while a draft; once投放, the
/// benefit stays and the validity only widens.
pub async fn edit_coupon_program(
    store: &dyn Store,
    merchant_id: i64,
    program_id: i64,
    version: i64,
    fields: &CouponProgramFields,
    actor: &Actor,
    now: i64,
) -> Result<CouponProgram, ProgramError> {
    let program = store.get_coupon_program(merchant_id, program_id).await?;
    check_edit(&program, fields).map_err(ProgramError::Invalid)?;
    let mut errors = Vec::new();
    check_give_program(store, merchant_id, fields, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ProgramError::Invalid(errors));
    }
    let entry = AuditEntry::new(
        merchant_id,
        actor,
        "update_coupon_program",
        format!("coupon_program={program_id}"),
        format!("validity={}", fields.validity.text_zh()),
        now,
    );
    Ok(store
        .update_coupon_program(merchant_id, program_id, version, fields, &entry)
        .await?)
}

/// Moves a program to `to`; `Ok(false)` when its state does not allow it.
pub async fn set_program_state(
    store: &dyn Store,
    merchant_id: i64,
    program_id: i64,
    to: ProgramState,
    actor: &Actor,
    now: i64,
) -> Result<bool, ProgramError> {
    if to == ProgramState::Active {
        let program = store.get_coupon_program(merchant_id, program_id).await?;
        let mut errors = Vec::new();
        if program.is_shared() && program.quantity == 0 {
            errors.push("朋友的券库存为 0，请先用券点增加库存再投放".into());
        }
        if program
            .fields
            .shared
            .as_ref()
            .is_some_and(|s| s.cover_url.trim().is_empty())
        {
            errors.push("朋友的券须先上传封面再投放".into());
        }
        if !errors.is_empty() {
            return Err(ProgramError::Invalid(errors));
        }
    }
    let entry = AuditEntry::new(
        merchant_id,
        actor,
        "set_coupon_program_state",
        format!("coupon_program={program_id}"),
        format!("state={}", to.code()),
        now,
    );
    Ok(store
        .set_coupon_program_state(merchant_id, program_id, to, &entry)
        .await?
        == 1)
}

/// Adds or removes stock; `Ok(false)` when the stock would fall below what
/// was claimed or rise above the limit.
pub async fn change_stock(
    store: &dyn Store,
    merchant_id: i64,
    program_id: i64,
    delta: i64,
    actor: &Actor,
    now: i64,
) -> Result<bool, ProgramError> {
    if delta == 0 || delta.abs() > STOCK_MAX {
        return Ok(false);
    }
    if store
        .get_coupon_program(merchant_id, program_id)
        .await?
        .is_shared()
    {
        return Err(ProgramError::Invalid(vec![
            "朋友的券的库存用券点增加（增加库存），不能直接修改".into(),
        ]));
    }
    let entry = AuditEntry::new(
        merchant_id,
        actor,
        "change_coupon_stock",
        format!("coupon_program={program_id}"),
        format!("delta={delta}"),
        now,
    );
    Ok(store
        .change_coupon_stock(merchant_id, program_id, delta, &entry)
        .await?
        == 1)
}

/// Whether a program may give out coupons now.
pub fn check_issuable(program: &CouponProgram, now: i64) -> Result<(), CouponRefusal> {
    match program.state {
        ProgramState::Active => {}
        ProgramState::Paused => return Err(CouponRefusal::ProgramPaused),
        ProgramState::Draft | ProgramState::Ended => return Err(CouponRefusal::ProgramNotActive),
    }
    if !program.fields.validity.claimable_at(now) {
        return Err(CouponRefusal::ProgramExpired);
    }
    Ok(())
}

/// Who receives coupons, and why.
#[derive(Debug, Clone)]
pub struct Recipients {
    pub source: CouponSource,
    /// One entry per coupon: the customer who gets it.
    pub customer_ids: Vec<i64>,
    /// The mall's order and line (获取卡券ID).
    pub order: Option<(String, String)>,
    /// The customer whose share link a friend claimed through (朋友的券).
    pub shared_by: Option<i64>,
}

/// How a 朋友的券 may be given out: by its claim link or QR code, or a
/// friend's share link; and only a 朋友的券 is claimed through a share link.
pub fn check_source(program: &CouponProgram, source: CouponSource) -> Result<(), CouponRefusal> {
    match (program.is_shared(), source) {
        (false, CouponSource::Share) => Err(CouponRefusal::NotShared),
        (true, CouponSource::Targeted | CouponSource::Order) => Err(CouponRefusal::ClaimOnly),
        _ => Ok(()),
    }
}

/// 领取, 定向发放 or 获取卡券ID: makes one code per coupon (on a thread of
/// its own for long lists) and issues them all or none.
pub async fn issue_coupons(
    store: &dyn Store,
    master: &MasterKey,
    call: &ApiCall,
    program: &CouponProgram,
    recipients: Recipients,
    actor: &Actor,
    now: i64,
) -> StoreResult<Called<Vec<super::usage::Coupon>, CouponRefusal>> {
    if let Err(refusal) =
        check_issuable(program, now).and_then(|()| check_source(program, recipients.source))
    {
        return Ok(Called {
            result: Err(refusal),
            replayed: false,
        });
    }
    let merchant_id = program.merchant_id;
    let key_version = store.get_merchant(merchant_id).await?.key_version;
    let n = recipients.customer_ids.len();
    let master = master.clone();
    let codes = if n > 100 {
        crate::off_thread(move || new_coupon_codes(&master, merchant_id, key_version, n)).await?
    } else {
        new_coupon_codes(&master, merchant_id, key_version, n)
    };
    let issue = IssueCoupons {
        merchant_id,
        program_id: program.id,
        source: recipients.source,
        coupons: recipients.customer_ids.into_iter().zip(codes).collect(),
        order: recipients.order,
        shared_by: recipients.shared_by,
        actor: actor.clone(),
        now,
    };
    store.issue_coupons(call, &issue).await
}

/// Who looks a code up, for the throttle: a staff account or an API key.
#[derive(Debug, Clone)]
pub struct CodeReader {
    pub merchant_id: i64,
    /// `coupon-verifier:{staff_id}` or `coupon-client:{key}`.
    pub attempt_key: String,
    pub failures_max: i64,
    /// Staff at the counter: a rotating program's fixed code is refused.
    pub at_counter: bool,
}

impl CodeReader {
    pub fn staff(merchant_id: i64, staff_id: i64) -> Self {
        Self {
            merchant_id,
            attempt_key: format!("coupon-verifier:{staff_id}"),
            failures_max: VERIFIER_FAILURES_MAX,
            at_counter: true,
        }
    }
    pub fn api(merchant_id: i64, api_key_id: &str) -> Self {
        Self {
            merchant_id,
            attempt_key: format!("coupon-client:{api_key_id}"),
            failures_max: API_CODE_FAILURES_MAX,
            at_counter: false,
        }
    }
}

/// Finds the coupon a typed or scanned code names, under the reader's
/// throttle. Every malformed or unknown code does the same work and gets
/// the same answer.
pub async fn look_up_code(
    store: &dyn Store,
    master: &MasterKey,
    reader: &CodeReader,
    typed: &str,
    now: i64,
) -> StoreResult<Result<HeldCoupon, CouponRefusal>> {
    let keys = digest_keys(master, reader.merchant_id);
    let parsed = TypedCode::parse(typed);
    let digest = code_digest(&keys, &parsed, typed);
    look_up_parsed(store, master, reader, &keys, parsed, digest, now).await
}

/// The digest a fixed code is found by; a malformed code is hashed too,
/// so that it costs what an unknown one does.
fn code_digest(keys: &MerchantKeys, parsed: &TypedCode, typed: &str) -> Option<Vec<u8>> {
    match parsed {
        TypedCode::Fixed(code) => Some(coupon_code_digest(keys, code.expose())),
        TypedCode::Rotating { .. } => None,
        TypedCode::Malformed => {
            let _ = coupon_code_digest(keys, typed);
            None
        }
    }
}

/// [`look_up_code`] of a code already parsed and hashed.
async fn look_up_parsed(
    store: &dyn Store,
    master: &MasterKey,
    reader: &CodeReader,
    keys: &MerchantKeys,
    parsed: TypedCode,
    digest: Option<Vec<u8>>,
    now: i64,
) -> StoreResult<Result<HeldCoupon, CouponRefusal>> {
    let m = reader.merchant_id;
    let since = now - ATTEMPT_WINDOW_SECONDS;
    let lookup = match (&parsed, &digest) {
        (TypedCode::Fixed(_), Some(digest)) => CouponLookup::Digest(digest),
        (TypedCode::Rotating { coupon_id, .. }, _) => CouponLookup::Id(*coupon_id),
        _ => CouponLookup::Nothing,
    };
    // The throttle's count and the look-up go to the store together.
    let (found, n_failures) = store
        .find_coupon_for_reader(m, lookup, &reader.attempt_key, since)
        .await?;
    let found = match parsed {
        TypedCode::Fixed(_) => found.map(|held| (held, true)),
        TypedCode::Rotating { otp, .. } => found
            .filter(|h| {
                open_coupon_code(master, m, h.coupon.key_version, &h.coupon.sealed)
                    .is_some_and(|code| rotating_code_matches(keys, &code, otp, now))
            })
            .map(|held| (held, false)),
        TypedCode::Malformed => None,
    };
    let oldest = if crate::attempts::is_locked(n_failures, reader.failures_max) {
        store.oldest_failure(m, &reader.attempt_key, since).await?
    } else {
        None
    };
    let answer = answer_look_up(reader, found, n_failures, oldest, since);
    if answer.as_ref().err() == Some(&CouponRefusal::UnknownCode) {
        store.record_failure(m, &reader.attempt_key, now).await?;
    }
    Ok(answer)
}

/// What a look-up answers once its throttle's count is known: the coupon
/// (`found`, with whether its fixed code was typed), or why not.
/// `oldest_failure` need only be read when the reader may be locked out.
/// The caller records the failure of an `UnknownCode`.
pub fn answer_look_up(
    reader: &CodeReader,
    found: Option<(HeldCoupon, bool)>,
    n_failures: i64,
    oldest_failure: Option<i64>,
    since: i64,
) -> Result<HeldCoupon, CouponRefusal> {
    if let Some(retry_after_seconds) = lock(n_failures, oldest_failure, since, reader.failures_max)
    {
        return Err(CouponRefusal::Locked {
            retry_after_seconds,
        });
    }
    match found {
        None => Err(CouponRefusal::UnknownCode),
        Some((held, true)) if reader.at_counter && held.program.fields.rotating_code => {
            Err(CouponRefusal::RotatingCodeRequired)
        }
        Some((held, _)) => Ok(held),
    }
}

/// A fixed code and the verification asked of it, for a store that looks
/// the code up inside the verifying transaction
/// (`CouponStore::verify_coupon_code`): as [`look_up_code`] then
/// [`verify_coupon`] do, in one visit to the store.
#[derive(Debug, Clone)]
pub struct CodeVerification {
    pub reader: CodeReader,
    pub digest: Vec<u8>,
    /// Where the throttle's window starts.
    pub since: i64,
    pub request: VerifyRequest,
}

/// 核销 of a typed or scanned code: the look-up under the reader's
/// throttle, then the verification; in one visit to a store that can.
pub async fn verify_code(
    store: &dyn Store,
    master: &MasterKey,
    reader: &CodeReader,
    call: &ApiCall,
    typed: &str,
    request: &VerifyRequest,
) -> StoreResult<Called<CouponVerification, CouponRefusal>> {
    let keys = digest_keys(master, reader.merchant_id);
    let parsed = TypedCode::parse(typed);
    let digest = code_digest(&keys, &parsed, typed);
    if let (TypedCode::Fixed(_), Some(digest)) = (&parsed, &digest) {
        let ask = CodeVerification {
            reader: reader.clone(),
            digest: digest.clone(),
            since: request.now - ATTEMPT_WINDOW_SECONDS,
            request: request.clone(),
        };
        match store.verify_coupon_code(call, &ask).await {
            Ok(Some(called)) => return Ok(called),
            // The coupon's program gives one back on verification: its
            // code is made here, after the look-up.
            Ok(None) | Err(StoreError::Conflict(crate::Conflict::LookUpFirst)) => {}
            Err(e) => return Err(e),
        }
    }
    let now = request.now;
    match look_up_parsed(store, master, reader, &keys, parsed, digest, now).await? {
        Ok(held) => verify_coupon(store, master, call, &held, request).await,
        Err(refusal) => Ok(Called {
            result: Err(refusal),
            replayed: false,
        }),
    }
}

/// A verification as staff or a system asks for it.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub location_id: Option<i64>,
    /// The locations the verifier is bound to (empty: all; always empty for the API).
    pub verifier_locations: Vec<i64>,
    pub channel: VerifyChannel,
    pub order_amount_fen: Option<i64>,
    pub order_ref: String,
    /// 使用卡券ID: only a 兑换券 (of this goods item, when given) is taken.
    pub exchange_goods: Option<Option<i64>>,
    pub actor: Actor,
    pub now: i64,
}

/// What step 1 of the verifier page shows: whether the coupon may be
/// verified here now, and the discount an amount would get.
pub fn preview(held: &HeldCoupon, request: &VerifyRequest) -> Result<i64, CouponRefusal> {
    if held.program.is_shared() && request.channel == VerifyChannel::Api {
        return Err(CouponRefusal::OfflineOnly);
    }
    check_verifier_location(&request.verifier_locations, request.location_id)?;
    check_usable(
        &held.program,
        &held.coupon,
        request.location_id,
        request.now,
    )?;
    if let Some(goods) = request.exchange_goods {
        match held.benefit() {
            Benefit::Gift { goods_id, .. } if goods.is_none() || goods == *goods_id => {}
            _ => return Err(CouponRefusal::NotAnExchange),
        }
    }
    held.benefit().discount_fen(request.order_amount_fen)
}

/// 核销: checks the coupon again and records the verification, with the
/// coupon 核销后返券 gives when its program names one.
pub async fn verify_coupon(
    store: &dyn Store,
    master: &MasterKey,
    call: &ApiCall,
    held: &HeldCoupon,
    request: &VerifyRequest,
) -> StoreResult<Called<CouponVerification, CouponRefusal>> {
    match verification_of(held, call, request) {
        Ok(mut verify) => {
            // 核销后返券: the code of the coupon it gives is made here,
            // where the master key is, and only for a program that names one.
            if let Some(give_program_id) = held.program.fields.give_program_id {
                let c = &held.coupon;
                verify.give = new_coupon_codes(master, c.merchant_id, c.key_version, 1)
                    .pop()
                    .map(|code| (give_program_id, code));
            }
            store.verify_coupon(call, &verify).await
        }
        Err(refusal) => Ok(Called {
            result: Err(refusal),
            replayed: false,
        }),
    }
}

/// The verification of a looked-up coupon the store is asked to record,
/// or why it may not be used here now ([`preview`]).
pub fn verification_of(
    held: &HeldCoupon,
    call: &ApiCall,
    request: &VerifyRequest,
) -> Result<VerifyCoupon, CouponRefusal> {
    let discount_fen = match preview(held, request) {
        Ok(fen) => fen,
        // A retry of a verification that went through finds its coupon
        // used: its key, in the store, answers with the first outcome.
        Err(CouponRefusal::Used { .. }) if call.idempotency.is_some() => 0,
        Err(refusal) => return Err(refusal),
    };
    Ok(VerifyCoupon {
        merchant_id: held.coupon.merchant_id,
        coupon_id: held.coupon.id,
        program_id: held.coupon.program_id,
        customer_id: held.coupon.customer_id,
        location_id: request.location_id,
        actor: request.actor.clone(),
        channel: request.channel,
        order_amount_fen: request.order_amount_fen,
        discount_fen,
        order_ref: request.order_ref.clone(),
        // Filled by `verify_coupon`, which makes the give-back code.
        give: None,
        now: request.now,
    })
}

/// Undoes a verification inside the merchant's window.
pub async fn undo_verification(
    store: &dyn Store,
    call: &ApiCall,
    merchant_id: i64,
    verification_id: i64,
    actor: &Actor,
    now: i64,
) -> StoreResult<Called<CouponVerification, CouponRefusal>> {
    let settings = store.get_coupon_settings(merchant_id).await?;
    let undo = UndoVerification {
        merchant_id,
        verification_id,
        window_seconds: settings.undo_window_minutes * 60,
        actor: actor.clone(),
        now,
    };
    store.undo_coupon_verification(call, &undo).await
}

/// 转赠: opens a gift link on the holder's usable coupon and returns its
/// token (shown once, in the link; only its hash is kept).
pub async fn offer_gift(
    store: &dyn Store,
    held: &HeldCoupon,
    customer_id: i64,
    now: i64,
) -> StoreResult<Result<String, CouponRefusal>> {
    if !held.program.fields.can_give_friend {
        return Ok(Err(CouponRefusal::GiftNotAllowed));
    }
    if held.coupon.customer_id != customer_id {
        return Err(StoreError::NotFound);
    }
    let status = held.coupon.status(now);
    if !matches!(
        status,
        super::usage::CouponStatus::Usable | super::usage::CouponStatus::NotYetValid
    ) {
        return Ok(Err(CouponRefusal::GiftUnavailable));
    }
    let token = random_token_hex(16);
    let n = store
        .offer_coupon_gift(
            held.coupon.merchant_id,
            held.coupon.id,
            customer_id,
            &crate::secrets::token_hash_hex(&token),
            now,
        )
        .await?;
    Ok(if n == 1 {
        Ok(token)
    } else {
        Err(CouponRefusal::GiftUnavailable)
    })
}
