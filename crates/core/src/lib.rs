//! kaquan's domain: card, batch and staff rules, secret handling, and the
//! `Store` trait that the database backends implement.
//!
//! Nothing here performs I/O or knows about HTTP, SQL or an async runtime;
//! the use cases in [`usecases`] are written against [`store::Store`] and
//! run the same on every backend.

pub mod auth;
pub mod batch;
pub mod card;
pub mod clock;
pub mod error;
pub mod giftcard;
pub mod goods;
pub mod ledger;
pub mod money;
pub mod pickup;
pub mod redeem;
pub mod secrets;
pub mod signing;
pub mod store;
pub mod text;
pub mod usecases;

pub use error::{StoreError, StoreResult};

/// The words people read (console, pages, exports) and the codes stored and
/// sent on the wire, pinned in one place: changing one is a change users or
/// integrators see, and must be deliberate.
#[cfg(test)]
mod label_tests {
    use crate::batch::{Numbering, PasswordCharset};
    use crate::card::{CardOp, CardState};
    use crate::giftcard::{CodeKind, CodeState, GiftcardImageSlot, GoodsDisplay};
    use crate::pickup::{Channel, OrderStatus};

    fn pinned<T: Copy>(
        values: &[T],
        label: fn(T) -> &'static str,
        code: fn(T) -> &'static str,
        expected: &[(&str, &str)],
    ) {
        let got: Vec<_> = values.iter().map(|v| (code(*v), label(*v))).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn labels_and_codes_are_what_users_and_integrators_read() {
        pinned(
            &CardState::ALL,
            CardState::label_zh,
            CardState::code,
            &[
                ("inactive", "未激活"),
                ("active", "已激活"),
                ("used", "已兑换"),
                ("voided", "已作废"),
            ],
        );
        pinned(
            &CardOp::ALL,
            CardOp::label_zh,
            CardOp::code,
            &[
                ("activate", "激活"),
                ("deactivate", "反激活"),
                ("void", "作废"),
                ("restore", "恢复"),
                ("delete", "删除"),
            ],
        );
        pinned(
            &[Numbering::Sequential, Numbering::Random],
            Numbering::label_zh,
            Numbering::code,
            &[("sequential", "顺序生成"), ("random", "随机生成")],
        );
        pinned(
            &PasswordCharset::ALL,
            PasswordCharset::label_zh,
            PasswordCharset::code,
            &[
                ("digits", "纯数字"),
                ("letters", "纯字母"),
                ("mixed", "字母+数字"),
                ("unambiguous", "字母+数字（去除易混淆的 0/O/1/I）"),
            ],
        );
        pinned(
            &[CodeKind::Online, CodeKind::Offline],
            CodeKind::label_zh,
            CodeKind::code,
            &[("online", "线上兑换码"), ("offline", "线下兑换码")],
        );
        pinned(
            &[CodeState::Unused, CodeState::Used, CodeState::Voided],
            CodeState::label_zh,
            CodeState::code,
            &[
                ("unused", "未兑换"),
                ("used", "已兑换"),
                ("voided", "已作废"),
            ],
        );
        pinned(
            &GiftcardImageSlot::ALL,
            GiftcardImageSlot::label_zh,
            GiftcardImageSlot::code,
            &[
                ("share", "分享图片"),
                ("cover", "礼品卡首页入口封面图"),
                ("banner", "礼品卡页顶部图片"),
            ],
        );
        pinned(
            &Channel::ALL,
            Channel::label_zh,
            Channel::code,
            &[
                ("web", "顾客自助"),
                ("store", "到店提货"),
                ("phone", "电话提货"),
                ("api", "接口"),
            ],
        );
        pinned(
            &OrderStatus::ALL,
            OrderStatus::label_zh,
            OrderStatus::code,
            &[
                ("pending", "待发货"),
                ("shipped", "已发货"),
                ("picked_up", "已到店提货"),
                ("cancelled", "已取消"),
            ],
        );
        assert_eq!(
            [GoodsDisplay::List.code(), GoodsDisplay::Grid.code()],
            ["list", "grid"]
        );
    }
}
