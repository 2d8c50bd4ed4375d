//! Redeeming a pickup card (提货): checking number + password under the
//! merchant's attempt limits, and turning a good check into an order.
//!
//! Every wrong answer (unknown number, wrong password, inactive, voided,
//! expired, already used) is one [`RedeemError::Refused`]; it carries the
//! precise reason, which the audit log records and signed-in staff are
//! shown, while an anonymous customer gets one answer for all of them (only
//! a right password on a used card shows that card's order). Every refusal also does
//! the same work, so its time tells nothing either: an unknown number still
//! costs one HMAC, and every refusal counts against the attempt limits (a
//! right password on an unsold card must not answer faster than a guess).

use crate::attempts::{is_locked, lock, ATTEMPT_WINDOW_SECONDS};
use crate::audit::{Actor, AuditEntry};
use crate::card::Card;
use crate::card::{CardPassword, CardState};
use crate::clock::format_date;
use crate::goods::Goods;
use crate::pickup::order::{NewPickupOrder, PickupOrder};
use crate::pickup::{Channel, Consignee, PickupSettings};
use crate::secrets::MasterKey;
use crate::store::Store;
use crate::StoreError;

/// Why a check or pickup did not go through, as the caller may know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeemError {
    /// A wrong card, password or state; customers are given one answer for all.
    Refused(PickupRefusal),
    /// Too many wrong guesses for this card or from this client.
    Locked {
        retry_after_seconds: i64,
    },
    /// The merchant switched the pickup page off (its message is shown).
    Closed,
    /// The chosen goods are not among the card's (or off the shelf).
    GoodsUnavailable,
    /// The consignee or appointment date are not acceptable.
    Invalid(Vec<String>),
    Store(String),
}

/// Why a card was refused, for the audit log and signed-in staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickupRefusal {
    pub reason: Reason,
    /// The card, only when its password was right (so only its owner or
    /// staff who hold the card learn anything of it).
    pub card_id: Option<i64>,
}

impl RedeemError {
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused(_))
    }

    /// A stable code of what stopped the pickup (`/metrics` counts by it):
    /// a refusal's reason, or `locked`, `closed`, `goods_unavailable`,
    /// `invalid`, `error`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(refusal) => refusal.reason.code(),
            Self::Locked { .. } => "locked",
            Self::Closed => "closed",
            Self::GoodsUnavailable => "goods_unavailable",
            Self::Invalid(_) => "invalid",
            Self::Store(_) => "error",
        }
    }
}

impl From<StoreError> for RedeemError {
    fn from(error: StoreError) -> Self {
        Self::Store(error.to_string())
    }
}

/// Who is asking, for attempt limits and the audit log.
#[derive(Debug, Clone)]
pub struct Requester {
    pub channel: Channel,
    /// The client's address (or session) for the per-client limit.
    pub client_key: String,
    pub actor: Actor,
}

/// A card that passed the check, with the goods it may be exchanged for.
#[derive(Debug, Clone)]
pub struct CheckedCard {
    pub card: Card,
    pub goods: Vec<Goods>,
}

/// The precise reason a check failed: for the audit log, and for signed-in
/// staff, never for an anonymous customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    UnknownNumber,
    WrongPassword,
    Inactive,
    Voided,
    Used,
    Expired,
    NotYetValid,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Self::UnknownNumber,
        Self::WrongPassword,
        Self::Inactive,
        Self::Voided,
        Self::Used,
        Self::Expired,
        Self::NotYetValid,
    ];

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::UnknownNumber => "卡号不存在",
            Self::WrongPassword => "密码错误",
            Self::Inactive => "未激活",
            Self::Voided => "已作废",
            Self::Used => "已提货",
            Self::Expired => "已过期",
            Self::NotYetValid => "未到有效期",
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownNumber => "unknown_number",
            Self::WrongPassword => "wrong_password",
            Self::Inactive => "inactive",
            Self::Voided => "voided",
            Self::Used => "used",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
        }
    }
}

fn card_key(number: &str) -> String {
    format!("card:{}", number.trim().to_ascii_uppercase())
}

fn client_key(requester: &Requester) -> String {
    format!("client:{}", requester.client_key)
}

/// The store, keys, merchant and time a redemption runs with.
pub struct Redeemer<'a> {
    pub store: &'a dyn Store,
    pub master: &'a MasterKey,
    pub merchant_id: i64,
    pub now: i64,
}

async fn check_limits(
    store: &dyn Store,
    merchant_id: i64,
    settings: &PickupSettings,
    number: &str,
    requester: &Requester,
    now: i64,
) -> Result<(), RedeemError> {
    let since = now - ATTEMPT_WINDOW_SECONDS;
    for (key, limit) in [
        (card_key(number), settings.attempts_per_card),
        (client_key(requester), settings.attempts_per_client),
    ] {
        let n_failures = store.count_failures(merchant_id, &key, since).await?;
        if is_locked(n_failures, limit) {
            // Free again when the oldest failure leaves the window.
            let oldest = store.oldest_failure(merchant_id, &key, since).await?;
            if let Some(retry_after_seconds) = lock(n_failures, oldest, since, limit) {
                return Err(RedeemError::Locked {
                    retry_after_seconds,
                });
            }
        }
    }
    Ok(())
}

/// Checks a card number and password for a pickup. With `for_lookup` a used
/// card passes too (the customer is looking up an existing order).
pub async fn check_card(
    r: &Redeemer<'_>,
    settings: &PickupSettings,
    number: &str,
    password: &str,
    requester: &Requester,
    for_lookup: bool,
) -> Result<CheckedCard, RedeemError> {
    let (store, master, merchant_id, now) = (r.store, r.master, r.merchant_id, r.now);
    check_limits(store, merchant_id, settings, number, requester, now).await?;
    let found = store.card_for_check(merchant_id, number).await?;
    let password_ok = match (&found, CardPassword::parse(password)) {
        (Some(found), Ok(password)) => {
            let keys = master.merchant_keys(merchant_id, found.key_version);
            keys.secret_matches(&found.card.number, password.expose(), &found.secret_digest)
        }
        _ => {
            // Spend the same work on a miss as on a wrong password.
            let _ = master
                .merchant_keys(merchant_id, 1)
                .secret_digest(number, password);
            false
        }
    };
    let reason = match &found {
        None => Some(Reason::UnknownNumber),
        Some(_) if !password_ok => Some(Reason::WrongPassword),
        Some(f) => match f.card.state {
            CardState::Inactive => Some(Reason::Inactive),
            CardState::Voided => Some(Reason::Voided),
            CardState::Used if !for_lookup => Some(Reason::Used),
            _ if f.card.valid_until.is_some_and(|t| t < now) && f.card.state != CardState::Used => {
                Some(Reason::Expired)
            }
            _ if f.card.valid_from.is_some_and(|t| t > now) => Some(Reason::NotYetValid),
            _ => None,
        },
    };
    if let Some(reason) = reason {
        store
            .record_failure(merchant_id, &card_key(number), now)
            .await?;
        store
            .record_failure(merchant_id, &client_key(requester), now)
            .await?;
        store
            .append_audit(&AuditEntry {
                merchant_id,
                actor: requester.actor.clone(),
                action: "pickup_refused".into(),
                target: format!("card={}", number.trim().to_ascii_uppercase()),
                detail: format!(
                    "channel={} reason={}",
                    requester.channel.code(),
                    reason.code()
                ),
                n_affected: 0,
                created_at: now,
            })
            .await?;
        return Err(RedeemError::Refused(PickupRefusal {
            reason,
            card_id: found.filter(|_| password_ok).map(|f| f.card.id),
        }));
    }
    let card = found.expect("a card without a refusal reason exists").card;
    let goods = store
        .goods_of_card(merchant_id, card.id)
        .await?
        .into_iter()
        .filter(|g| g.on_shelf)
        .collect();
    Ok(CheckedCard { card, goods })
}

/// What a customer or staff member submits to pick up goods.
#[derive(Debug, Clone)]
pub struct PickupRequest {
    pub number: String,
    pub password: String,
    pub goods_id: i64,
    /// Required unless the channel is [`Channel::AtLocation`].
    pub consignee: Option<Consignee>,
    pub appointment_date: Option<String>,
}

/// Checks the card again, the goods, the consignee and the date, then
/// redeems: the card is used and the order exists, or neither.
/// `settings` are the merchant's current 提货设置 (the caller usually has them).
pub async fn redeem_pickup(
    r: &Redeemer<'_>,
    settings: &PickupSettings,
    request: &PickupRequest,
    requester: &Requester,
) -> Result<PickupOrder, RedeemError> {
    let (store, merchant_id, now) = (r.store, r.merchant_id, r.now);
    if requester.channel == Channel::Web && !settings.enabled {
        return Err(RedeemError::Closed);
    }
    let checked = check_card(
        r,
        settings,
        &request.number,
        &request.password,
        requester,
        false,
    )
    .await?;
    if !checked.goods.iter().any(|g| g.id == request.goods_id) {
        return Err(RedeemError::GoodsUnavailable);
    }
    let mut errors = Vec::new();
    let consignee = match (&request.consignee, requester.channel) {
        (_, Channel::AtLocation) => None,
        (Some(c), _) => Some(c.clone()),
        (None, _) => {
            errors.push("请填写收货信息".to_owned());
            None
        }
    };
    let appointment_date = if requester.channel == Channel::AtLocation {
        None
    } else {
        let today = crate::clock::parse_date(&format_date(now)).expect("a formatted date parses");
        let chosen = match request
            .appointment_date
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            None => None,
            Some(text) => match crate::clock::parse_date(text) {
                Some(date) => Some(date),
                None => {
                    errors.push(format!("预约日期应为 {}", crate::clock::DATE_FORMAT_HINT));
                    None
                }
            },
        };
        match settings
            .appointment
            .check(chosen, today, &settings.blocked_dates)
        {
            Ok(date) => date.map(|d| d.to_string()),
            Err(message) => {
                errors.push(message);
                None
            }
        }
    };
    if !errors.is_empty() {
        return Err(RedeemError::Invalid(errors));
    }
    let order = NewPickupOrder {
        merchant_id,
        card_id: checked.card.id,
        goods_id: request.goods_id,
        channel: requester.channel,
        consignee,
        appointment_date,
        created_by: requester.actor.label.clone(),
        created_at: now,
    };
    let audit = AuditEntry {
        merchant_id,
        actor: requester.actor.clone(),
        action: "redeem_pickup".into(),
        target: format!("card={}", checked.card.number),
        detail: format!("channel={}", requester.channel.code()),
        n_affected: 1,
        created_at: now,
    };
    match store.redeem_pickup(&order, &audit).await {
        Ok(order) => Ok(order),
        // Another pickup of the same card won the race.
        Err(StoreError::Conflict(_)) => Err(RedeemError::Refused(PickupRefusal {
            reason: Reason::Used,
            card_id: Some(order.card_id),
        })),
        Err(StoreError::NotFound) => Err(RedeemError::GoodsUnavailable),
        Err(other) => Err(other.into()),
    }
}

/// The customer's order lookup: the card's newest order, after the same check.
pub async fn find_order(
    r: &Redeemer<'_>,
    number: &str,
    password: &str,
    requester: &Requester,
) -> Result<Option<PickupOrder>, RedeemError> {
    let settings = r.store.get_pickup_settings(r.merchant_id).await?;
    let checked = check_card(r, &settings, number, password, requester, true).await?;
    Ok(r.store
        .latest_order_of_card(r.merchant_id, checked.card.id)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_a_pickup_stops_has_its_own_code() {
        let refused = |reason| {
            RedeemError::Refused(PickupRefusal {
                reason,
                card_id: None,
            })
        };
        let mut codes: Vec<&str> = Reason::ALL.iter().map(|r| refused(*r).code()).collect();
        assert_eq!(codes[0], "unknown_number");
        codes.extend(
            [
                RedeemError::Locked {
                    retry_after_seconds: 1,
                },
                RedeemError::Closed,
                RedeemError::GoodsUnavailable,
                RedeemError::Invalid(Vec::new()),
                RedeemError::Store(String::new()),
            ]
            .iter()
            .map(RedeemError::code),
        );
        assert_eq!(
            &codes[7..],
            ["locked", "closed", "goods_unavailable", "invalid", "error"]
        );
        let mut distinct = codes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), codes.len());
    }
}
