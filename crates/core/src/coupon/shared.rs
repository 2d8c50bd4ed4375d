//! 朋友的券 (seed 002): what a shared program shows besides an ordinary
//! coupon, and its own rules. Its stock is bought with 券点
//! ([`crate::credit`]); how it is given out and used is in [`super::usecases`]
//! (`check_source`, `preview`).

use super::{CouponKind, CouponProgramFields};
use crate::text::check_field;

/// A 朋友的券's longest validity, in days.
pub const SHARED_VALIDITY_DAYS_MAX: i64 = 90;
/// A 朋友的券's 简介 (WeChat's `abstract`).
pub const ABSTRACT_CHARS_MAX: usize = 24;
/// A 朋友的券's 图文详情 text.
pub const DETAIL_TEXT_CHARS_MAX: usize = 2000;

/// What a 朋友的券 shows besides an ordinary coupon (WeChat's
/// `advanced_info.abstract` and `text_image_list`); all three are required,
/// the cover by 开始投放 (it is uploaded once the program exists).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SharedCoupon {
    /// 封面: a picture uploaded through the console (`/images/…`).
    pub cover_url: String,
    /// 简介.
    pub abstract_text: String,
    /// 图文详情.
    pub detail_text: String,
}

impl SharedCoupon {
    /// The kinds a 朋友的券 may be: 无门槛代金券, 满减代金券 and 兑换券.
    pub const KINDS: [CouponKind; 2] = [CouponKind::Cash, CouponKind::Gift];

    pub(crate) fn check(&self, fields: &CouponProgramFields, errors: &mut Vec<String>) {
        if !Self::KINDS.contains(&fields.benefit.kind()) {
            errors.push("朋友的券只能是代金券（无门槛或满减）或兑换券".into());
        }
        // The cover may be uploaded after 制券; 开始投放 needs it.
        if let Err(e) = check_field("封面", &self.cover_url, 300) {
            errors.push(e);
        }
        if self.abstract_text.trim().is_empty() {
            errors.push("朋友的券须填写简介".into());
        } else if let Err(e) = check_field("简介", &self.abstract_text, ABSTRACT_CHARS_MAX) {
            errors.push(e);
        }
        if self.detail_text.trim().is_empty() {
            errors.push("朋友的券须填写图文详情".into());
        } else if crate::text::is_too_long(&self.detail_text, DETAIL_TEXT_CHARS_MAX)
            || self
                .detail_text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r')
        {
            errors.push(format!("图文详情最多 {DETAIL_TEXT_CHARS_MAX} 个字符"));
        }
        if fields.validity.longest_days() > SHARED_VALIDITY_DAYS_MAX {
            errors.push(format!(
                "朋友的券的有效期最长 {SHARED_VALIDITY_DAYS_MAX} 天"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coupon::tests::cash_fields;
    use crate::coupon::{Benefit, Validity};

    fn errors_of(fields: &CouponProgramFields) -> Vec<String> {
        fields.check().err().unwrap_or_default()
    }

    fn shared(abstract_text: &str, detail_text: &str) -> CouponProgramFields {
        let mut fields = cash_fields();
        fields.shared = Some(SharedCoupon {
            cover_url: String::new(),
            abstract_text: abstract_text.into(),
            detail_text: detail_text.into(),
        });
        fields
    }

    #[test]
    fn a_shared_coupon_is_a_cash_or_gift_coupon_with_its_texts_and_ninety_days_at_most() {
        assert_eq!(
            errors_of(&shared("进店立减", "全场通用\r\n每单一张")),
            Vec::<String>::new()
        );
        let mut gift = shared("兑换", "到店兑换");
        gift.benefit = Benefit::Gift {
            goods_id: None,
            gift: "咖啡一杯".into(),
        };
        assert!(errors_of(&gift).is_empty());
        let mut discount = shared("打折", "全场");
        discount.benefit = Benefit::Discount {
            percent_off: 10,
            cap_fen: None,
        };
        assert_eq!(
            errors_of(&discount),
            ["朋友的券只能是代金券（无门槛或满减）或兑换券"]
        );
        assert_eq!(errors_of(&shared(" ", "x")), ["朋友的券须填写简介"]);
        assert_eq!(errors_of(&shared("x", " ")), ["朋友的券须填写图文详情"]);
        assert!(errors_of(&shared(&"简".repeat(ABSTRACT_CHARS_MAX), "x")).is_empty());
        assert_eq!(
            errors_of(&shared(&"简".repeat(ABSTRACT_CHARS_MAX + 1), "x")).len(),
            1
        );
        assert!(errors_of(&shared("x", &"详".repeat(DETAIL_TEXT_CHARS_MAX))).is_empty());
        let too_long = format!("图文详情最多 {DETAIL_TEXT_CHARS_MAX} 个字符");
        assert_eq!(
            errors_of(&shared("x", &"详".repeat(DETAIL_TEXT_CHARS_MAX + 1))),
            [too_long.as_str()]
        );
        assert_eq!(errors_of(&shared("x", "a\u{0}b")), [too_long.as_str()]);
        let mut cover = shared("x", "y");
        cover.shared.as_mut().unwrap().cover_url = "x".repeat(301);
        assert_eq!(errors_of(&cover).len(), 1);
        for (term_days, ok) in [(90, true), (91, false), (1, true)] {
            let mut relative = shared("x", "y");
            relative.validity = Validity::Relative {
                term_days,
                begin_after_days: 5,
                hard_end: None,
            };
            assert_eq!(errors_of(&relative).is_empty(), ok, "{term_days} days");
        }
        for (days, ok) in [(90, true), (91, false)] {
            let mut fixed = shared("x", "y");
            fixed.validity = Validity::Fixed {
                begin: 1_790_000_000,
                end: 1_790_000_000 + days * 86_400 - 1,
            };
            assert_eq!(errors_of(&fixed).is_empty(), ok, "{days} days");
        }
    }
}
