//! 单用途预付卡 rules (China's rules for stored value sold to consumers)
//! that a merchant switches on: kaquan's cards and 兑换码 are 不记名
//! (bearer) instruments, so with the policy on a card batch or a code
//! template is refused when its face value is over ¥1,000 or it is valid
//! for less than three years (no last day is fine). Each refusal names the
//! rule it broke.

use crate::merchant::MerchantStore;
use crate::StoreResult;

/// 不记名卡 face value at most ¥1,000.
pub const ANONYMOUS_FACE_VALUE_MAX_FEN: i64 = 100_000;
/// 不记名卡 valid at least three years: 3 × 365 days.
pub const ANONYMOUS_VALIDITY_MIN_DAYS: i64 = 3 * 365;

/// 记名卡 (a member's stored value, 会员卡 储值) at most ¥5,000.
pub const NAMED_BALANCE_MAX_FEN: i64 = 500_000;

/// The rules as the console states them.
pub const RULES_ZH: [&str; 3] = [
    "不记名卡、兑换码面值不超过 1000 元",
    "不记名卡、兑换码有效期不少于 3 年（或不设截止日期）",
    "记名卡（会员储值）余额不超过 5000 元",
];

/// Whether a top-up that leaves a member's stored value at
/// `balance_after_fen` (bonus included) breaks the policy; stores ask it
/// inside the top-up's transaction when the merchant has the policy on.
pub fn named_balance_breaks(balance_after_fen: i64) -> bool {
    balance_after_fen > NAMED_BALANCE_MAX_FEN
}

/// What a batch or template breaks of the policy (nothing when it keeps it).
/// `valid_until` is the last second of validity; validity starts at
/// `valid_from`, or `now` when it has none.
pub fn breaches(
    face_value_fen: Option<i64>,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
    now: i64,
) -> Vec<String> {
    let mut broken = Vec::new();
    if face_value_fen.is_some_and(|fen| fen > ANONYMOUS_FACE_VALUE_MAX_FEN) {
        broken.push(format!("预付卡政策：{}", RULES_ZH[0]));
    }
    if let Some(until) = valid_until {
        let start = valid_from.unwrap_or(now);
        if until + 1 - start < ANONYMOUS_VALIDITY_MIN_DAYS * 86_400 {
            broken.push(format!("预付卡政策：{}", RULES_ZH[1]));
        }
    }
    broken
}

/// What a batch or template of `merchant_id` breaks of its policy; nothing
/// when the merchant has the policy off.
pub async fn check(
    store: &dyn MerchantStore,
    merchant_id: i64,
    face_value_fen: Option<i64>,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
    now: i64,
) -> StoreResult<Vec<String>> {
    if !store.get_merchant(merchant_id).await?.prepaid_policy {
        return Ok(Vec::new());
    }
    Ok(breaches(face_value_fen, valid_from, valid_until, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_named_balance_may_reach_the_cap_but_not_pass_it() {
        assert!(!named_balance_breaks(500_000));
        assert!(named_balance_breaks(500_001));
    }

    #[test]
    fn face_value_and_validity_are_held_to_the_rules() {
        let now = 1_000 * DAY;
        let three_years = ANONYMOUS_VALIDITY_MIN_DAYS * DAY;
        // At the limits: kept.
        assert!(breaches(Some(100_000), None, Some(now + three_years - 1), now).is_empty());
        assert!(
            breaches(None, None, None, now).is_empty(),
            "no face value, no last day"
        );
        assert!(breaches(Some(1), Some(5 * DAY), Some(5 * DAY + three_years - 1), now).is_empty());
        // One fen over, one second short.
        let over = breaches(Some(100_001), None, None, now);
        assert_eq!(over, ["预付卡政策：不记名卡、兑换码面值不超过 1000 元"]);
        let short = breaches(None, None, Some(now + three_years - 2), now);
        assert_eq!(short.len(), 1);
        assert!(short[0].contains("不少于 3 年"));
        // Validity counts from its first day, not from today.
        assert_eq!(
            breaches(None, Some(now + DAY), Some(now + three_years - 1), now).len(),
            1
        );
        assert_eq!(breaches(Some(200_000), None, Some(now), now).len(), 2);
        // Three years are 1,095 days: a card valid for 1,094 days is short.
        assert!(breaches(None, None, Some(now + 1_095 * DAY - 1), now).is_empty());
        assert_eq!(breaches(None, None, Some(now + 1_094 * DAY), now).len(), 1);
    }
}
