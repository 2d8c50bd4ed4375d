//! Why a coupon was not claimed, issued, verified, undone or given: one
//! reason each, with its stable code and the message people read.

use crate::clock::{format_date, format_datetime};
use crate::money::format_yuan;

/// Why a coupon was not claimed, issued, verified, undone or given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponRefusal {
    /// No coupon has this code (or a rotating code did not match).
    UnknownCode,
    ProgramNotFound,
    CustomerNotFound,
    /// Claims and issues need an active program.
    ProgramNotActive,
    /// The program is paused: its coupons wait.
    ProgramPaused,
    OutOfStock,
    ClaimLimitReached {
        get_limit: i64,
    },
    UseLimitReached {
        use_limit: i64,
    },
    /// The program's validity has ended: a claim now could never be used.
    ProgramExpired,
    Used {
        verified_at: i64,
    },
    NotYetValid {
        valid_from: i64,
    },
    Expired {
        valid_until: i64,
    },
    WrongTime,
    WrongLocation,
    /// The verifier is not bound to the location they chose.
    NotYourLocation,
    /// A location is needed: the program is valid at listed locations only.
    LocationRequired,
    Gifting,
    BelowThreshold {
        least_cost_fen: i64,
    },
    /// The program shows a rotating code; the fixed one is not taken at the counter.
    RotatingCodeRequired,
    /// A 兑换券 was expected (or another goods item).
    NotAnExchange,
    VerificationNotFound,
    AlreadyUndone,
    UndoWindowPassed {
        window_minutes: i64,
    },
    /// The gift link was taken, cancelled, or the coupon is no longer usable.
    GiftUnavailable,
    /// The program's coupons cannot be given to friends.
    GiftNotAllowed,
    /// The giver opened their own gift link.
    OwnGift,
    /// The mall's order line was issued before with another program or quantity.
    OrderMismatch,
    /// Too many wrong codes: the verifier waits.
    Locked {
        retry_after_seconds: i64,
    },
    /// The signed request's nonce was seen before.
    NonceReused,
    /// The Idempotency-Key was used before with another request.
    IdempotencyMismatch,
    /// A 朋友的券 is given out only by its claim link, QR code or a
    /// friend's share link.
    ClaimOnly,
    /// A 朋友的券 is verified at a location, never through the mall's API.
    OfflineOnly,
    /// Only a 朋友的券 is shared with friends.
    NotShared,
}

impl CouponRefusal {
    /// The stable code of the API's error envelope.
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownCode => "coupon_unknown_code",
            Self::ProgramNotFound => "coupon_program_not_found",
            Self::CustomerNotFound => "customer_not_found",
            Self::ProgramNotActive => "coupon_program_not_active",
            Self::ProgramPaused => "coupon_program_paused",
            Self::OutOfStock => "coupon_out_of_stock",
            Self::ClaimLimitReached { .. } => "coupon_claim_limit",
            Self::UseLimitReached { .. } => "coupon_use_limit",
            Self::ProgramExpired => "coupon_program_expired",
            Self::Used { .. } => "coupon_used",
            Self::NotYetValid { .. } => "coupon_not_yet_valid",
            Self::Expired { .. } => "coupon_expired",
            Self::WrongTime => "coupon_wrong_time",
            Self::WrongLocation => "coupon_wrong_location",
            Self::NotYourLocation => "coupon_not_your_location",
            Self::LocationRequired => "coupon_location_required",
            Self::Gifting => "coupon_gifting",
            Self::BelowThreshold { .. } => "coupon_below_threshold",
            Self::RotatingCodeRequired => "coupon_rotating_code_required",
            Self::NotAnExchange => "coupon_not_an_exchange",
            Self::VerificationNotFound => "coupon_verification_not_found",
            Self::AlreadyUndone => "coupon_verification_undone",
            Self::UndoWindowPassed { .. } => "coupon_undo_window_passed",
            Self::GiftUnavailable => "coupon_gift_unavailable",
            Self::GiftNotAllowed => "coupon_gift_not_allowed",
            Self::OwnGift => "coupon_own_gift",
            Self::OrderMismatch => "order_mismatch",
            Self::Locked { .. } => "locked",
            Self::NonceReused => "nonce_reused",
            Self::IdempotencyMismatch => "idempotency_mismatch",
            Self::ClaimOnly => "coupon_claim_only",
            Self::OfflineOnly => "coupon_offline_only",
            Self::NotShared => "coupon_not_shared",
        }
    }

    /// Whether the answer is 404 rather than 409/422 (nothing by that name).
    pub fn is_not_found(self) -> bool {
        matches!(
            self,
            Self::UnknownCode
                | Self::ProgramNotFound
                | Self::CustomerNotFound
                | Self::VerificationNotFound
        )
    }

    /// What staff, customers and the merchant's systems read.
    pub fn message_zh(self) -> String {
        match self {
            Self::UnknownCode => "券码无效，请核对后重试".into(),
            Self::ProgramNotFound => "找不到该优惠券".into(),
            Self::CustomerNotFound => "找不到该顾客".into(),
            Self::ProgramNotActive => "该优惠券未在投放中".into(),
            Self::ProgramPaused => "该优惠券已暂停使用".into(),
            Self::OutOfStock => "优惠券已领完".into(),
            Self::ClaimLimitReached { get_limit } => format!("每人限领 {get_limit} 张，您已领取"),
            Self::UseLimitReached { use_limit } => format!("每人限用 {use_limit} 张，已达上限"),
            Self::ProgramExpired => "优惠券已过期，不能再领取".into(),
            Self::Used { verified_at } => {
                format!("该券已于 {} 核销", format_datetime(verified_at))
            }
            Self::NotYetValid { valid_from } => {
                format!("未到使用时间，{} 起可用", format_datetime(valid_from))
            }
            Self::Expired { valid_until } => {
                format!("该券已过期（有效期至 {}）", format_date(valid_until))
            }
            Self::WrongTime => "当前时段不可使用该券".into(),
            Self::WrongLocation => "该券不适用于本门店".into(),
            Self::NotYourLocation => "您不是该门店的核销员".into(),
            Self::LocationRequired => "该券仅限指定门店使用，请选择门店".into(),
            Self::Gifting => "该券正在转赠中".into(),
            Self::BelowThreshold { least_cost_fen } => {
                format!(
                    "订单金额未满 {} 元，不能使用该券",
                    format_yuan(least_cost_fen)
                )
            }
            Self::RotatingCodeRequired => "该券使用动态码，请顾客出示券码页面扫码".into(),
            Self::NotAnExchange => "该券不是可兑换此商品的兑换券".into(),
            Self::VerificationNotFound => "找不到该核销记录".into(),
            Self::AlreadyUndone => "该核销已撤销".into(),
            Self::UndoWindowPassed { window_minutes } => {
                format!("已超过可撤销时限（核销后 {window_minutes} 分钟内）")
            }
            Self::GiftUnavailable => "该转赠已被领取或已取消".into(),
            Self::GiftNotAllowed => "该券不可转赠".into(),
            Self::OwnGift => "不能领取自己转赠的券".into(),
            Self::OrderMismatch => "该订单行已发过券，且优惠券或数量不同".into(),
            Self::Locked {
                retry_after_seconds,
            } => format!(
                "输错次数过多，请 {} 分钟后再试",
                (retry_after_seconds + 59) / 60
            ),
            Self::NonceReused => "请求已被使用过（nonce 重复）".into(),
            Self::IdempotencyMismatch => "Idempotency-Key 已用于另一个不同的请求".into(),
            Self::ClaimOnly => "朋友的券只能通过领券二维码、链接或好友分享领取".into(),
            Self::OfflineOnly => "朋友的券仅限到店核销".into(),
            Self::NotShared => "该券不能分享给朋友".into(),
        }
    }
}
