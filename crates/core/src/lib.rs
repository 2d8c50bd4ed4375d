//! kaquan's domain: card, batch and staff rules, secret handling, and the
//! `Store` trait that the database backends implement.
//!
//! Nothing here performs I/O or knows about HTTP, SQL or an async runtime;
//! the use cases in [`usecases`] are written against [`store::Store`] and
//! run the same on every backend.

pub mod age;
pub mod analytics;
pub mod api_key;
pub mod approval;
pub mod attempts;
pub mod audit;
pub mod auth;
pub mod batch;
pub mod card;
pub mod card_sale;
pub mod clock;
pub mod code;
pub mod coupon;
pub mod credit;
pub mod customer;
pub mod dashboard;
pub mod distributor;
pub mod ecard;
pub mod erp;
pub mod error;
pub mod event;
pub mod giftcard;
pub mod goods;
pub mod keys;
pub mod ledger;
pub mod location;
pub mod mall;
pub mod member;
pub mod merchant;
pub mod money;
pub mod pickup;
pub mod prepaid;
pub mod print_shop;
pub mod secrets;
pub mod signing;
pub mod sms;
pub mod staff;
pub mod store;
pub mod text;
pub mod waybill;
pub mod webhook;

pub use error::{Conflict, StoreError, StoreResult};

/// Runs CPU-heavy work of a use case (making thousands of codes) on a
/// thread of its own, so no thread of the caller's async runtime waits on
/// it; core stays free of any runtime.
pub(crate) async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> StoreResult<T> {
    let (sender, receiver) = futures_channel::oneshot::channel();
    std::thread::spawn(move || {
        let _ = sender.send(work());
    });
    receiver
        .await
        .map_err(|_| StoreError::Backend("a worker thread stopped".into()))
}

/// The words people read (console, pages, exports) and the codes stored and
/// sent on the wire, pinned in one place: changing one is a change users or
/// integrators see, and must be deliberate.
#[cfg(test)]
mod label_tests {
    use crate::batch::{Numbering, PasswordCharset};
    use crate::card::{CardOp, CardState};
    use crate::code::{CodeKind, CodeState};
    use crate::giftcard::{GiftcardImageSlot, GoodsDisplay};
    use crate::pickup::{Channel, OrderStatus};

    fn pinned<T: Copy + PartialEq + std::fmt::Debug>(
        values: &[T],
        label: fn(T) -> &'static str,
        code: fn(T) -> &'static str,
        expected: &[(&str, &str)],
    ) {
        let got: Vec<_> = values.iter().map(|v| (code(*v), label(*v))).collect();
        assert_eq!(got, expected);
    }

    /// Every code parses back to its value, and nothing else parses.
    fn round_trip<T: Copy + PartialEq + std::fmt::Debug>(
        values: &[T],
        code: fn(T) -> &'static str,
        parse: fn(&str) -> Option<T>,
    ) {
        for value in values {
            assert_eq!(parse(code(*value)), Some(*value));
        }
        assert_eq!(parse("nonsense"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn every_code_parses_back() {
        round_trip(&CardState::ALL, CardState::code, CardState::parse);
        round_trip(&CardOp::ALL, CardOp::code, CardOp::parse);
        round_trip(
            &[Numbering::Sequential, Numbering::Random],
            Numbering::code,
            Numbering::parse,
        );
        round_trip(
            &PasswordCharset::ALL,
            PasswordCharset::code,
            PasswordCharset::parse,
        );
        round_trip(
            &[CodeKind::Online, CodeKind::Offline],
            CodeKind::code,
            CodeKind::parse,
        );
        round_trip(
            &[CodeState::Unused, CodeState::Used, CodeState::Voided],
            CodeState::code,
            CodeState::parse,
        );
        round_trip(
            &[GoodsDisplay::List, GoodsDisplay::Grid],
            GoodsDisplay::code,
            GoodsDisplay::parse,
        );
        round_trip(
            &GiftcardImageSlot::ALL,
            GiftcardImageSlot::code,
            GiftcardImageSlot::parse,
        );
        round_trip(&Channel::ALL, Channel::code, Channel::parse);
        round_trip(&OrderStatus::ALL, OrderStatus::code, OrderStatus::parse);
        assert_eq!(CardState::Voided.to_string(), "voided");
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

/// The limits and boundaries the README and the seeds promise, pinned at
/// their edges (cargo mutants found each one unchecked).
#[cfg(test)]
mod boundary_tests {
    use crate::card::{CardEdit, CardFilter, CardNumber, CardPassword, Prefix};
    use crate::code::{refusal_reason, CodeFacts, CodeState, CodeTemplate, CodeTemplateFields};
    use crate::giftcard::GiftcardSettings;
    use crate::pickup::{check_redirect_url, check_tracking_number, mask_phone, AppointmentMode};
    use crate::secrets::{random_token_hex, token_hash_hex, MasterKey};
    use crate::signing::{nonce_is_well_formed, NONCE_KEPT_SECONDS};

    #[test]
    fn card_numbers_passwords_and_prefixes_have_their_lengths() {
        assert!(CardNumber::parse("a1b2").is_ok());
        assert!(CardNumber::parse("a1b").is_err());
        assert!(CardNumber::parse(&"9".repeat(32)).is_ok());
        assert!(CardNumber::parse(&"9".repeat(33)).is_err());
        let number = CardNumber::parse(" a1b2 ").unwrap();
        assert_eq!(number.as_str(), "A1B2");
        assert_eq!(number.into_string(), "A1B2");
        assert!(CardPassword::parse("abcd").is_ok());
        assert!(CardPassword::parse("abc").is_err());
        assert!(CardPassword::parse(&"a".repeat(32)).is_ok());
        assert!(CardPassword::parse(&"a".repeat(33)).is_err());
        assert!(Prefix::parse(&"A".repeat(12)).is_ok());
        assert!(Prefix::parse(&"A".repeat(13)).is_err());
    }

    #[test]
    fn filters_and_edits_describe_themselves_for_the_audit_log() {
        assert_eq!(CardFilter::default().describe(), "all cards");
        let filter = CardFilter {
            batch_id: Some(3),
            serial_from: Some(1),
            serial_to: Some(9),
            ..Default::default()
        };
        assert_eq!(filter.describe(), "batch=3 serial>=1 serial<=9");
        let edit = CardEdit::default();
        assert!(edit.is_empty());
        let edit = CardEdit {
            remark: Some("中秋".into()),
            face_value_fen: Some(Some(100)),
            ..Default::default()
        };
        assert!(!edit.is_empty());
        assert_eq!(edit.describe(), "卡券面值、卡券备注");
    }

    #[test]
    fn tracking_numbers_and_redirects_have_their_lengths() {
        assert!(check_tracking_number("SF1234").is_ok());
        assert!(check_tracking_number("SF123").is_err());
        assert!(check_tracking_number(&"1".repeat(40)).is_ok());
        assert!(check_tracking_number(&"1".repeat(41)).is_err());
        let url = |n: usize| format!("https://{}", "a".repeat(n - "https://".len()));
        assert!(check_redirect_url(&url(500)).is_ok());
        assert!(check_redirect_url(&url(501)).is_err());
        assert!(check_redirect_url("https://shop.example/a b").is_err());
        assert!(check_redirect_url("ftp://shop.example").is_err());
        assert!(check_redirect_url("https:///path").is_err());
        for bad in ["\"", "<", ">", "\u{7}", "\t"] {
            assert!(
                check_redirect_url(&format!("https://shop.example/{bad}x")).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn phones_are_masked_but_for_the_first_three_and_last_four() {
        assert_eq!(mask_phone("13800001234"), "138****1234");
        assert_eq!(mask_phone("1234"), "****");
        assert_eq!(mask_phone("12345678"), "123*5678");
        assert_eq!(mask_phone("1234567"), "12*4567");
        assert_eq!(
            mask_phone("12345"),
            "*2345",
            "a short number still hides one"
        );
    }

    #[test]
    fn appointment_modes_include_their_edges() {
        let today = crate::clock::parse_date("2026-12-01").unwrap();
        let day = |n: i64| today + time::Duration::days(n);
        let min_two = AppointmentMode::MinDaysAhead(2);
        assert!(min_two.check(Some(day(2)), today, &[]).is_ok());
        assert!(min_two.check(Some(day(1)), today, &[]).is_err());
        let range = AppointmentMode::DateRange(day(3), day(5));
        assert!(range.check(Some(day(3)), today, &[]).is_ok());
        assert!(range.check(Some(day(5)), today, &[]).is_ok());
        assert!(range.check(Some(day(2)), today, &[]).is_err());
        assert!(range.check(Some(day(6)), today, &[]).is_err());
    }

    #[test]
    fn nonces_are_kept_eleven_minutes_and_have_their_shape() {
        assert_eq!(NONCE_KEPT_SECONDS, 660);
        assert!(nonce_is_well_formed(&"a".repeat(16)));
        assert!(!nonce_is_well_formed(&"a".repeat(15)));
        assert!(nonce_is_well_formed(&"a".repeat(64)));
        assert!(!nonce_is_well_formed(&"a".repeat(65)));
        assert!(nonce_is_well_formed("abcdefgh-_ABC123"));
        assert!(!nonce_is_well_formed("abcdefgh.ABC1234"));
    }

    #[test]
    fn api_keys_are_a_kq_id_and_a_long_random_secret() {
        let (key_id, secret) = crate::signing::new_api_key();
        let (other_id, other_secret) = crate::signing::new_api_key();
        assert!(key_id.starts_with("kq_") && key_id.len() == 19, "{key_id}");
        assert!(key_id[3..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(secret.len(), 64);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(key_id, other_id);
        assert_ne!(secret, other_secret);
    }

    #[test]
    fn merchant_keys_never_print_their_secrets() {
        let keys = MasterKey::from_bytes([7; 32]).merchant_keys(1, 3);
        assert_eq!(format!("{keys:?}"), "MerchantKeys(v3, <redacted>)");
    }

    #[test]
    fn tokens_are_random_hex_and_hashed_with_sha256() {
        let token = random_token_hex(16);
        assert_eq!(token.len(), 32);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(token, random_token_hex(16));
        assert_eq!(
            token_hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let keys = MasterKey::from_bytes([7; 32]).merchant_keys(1, 1);
        assert_eq!(keys.open("A0001", &[1, 2, 3]), None, "shorter than a nonce");
        let sealed = keys.seal("A0001", "secret12");
        assert_eq!(keys.open("A0001", &sealed).as_deref(), Some("secret12"));
    }

    #[test]
    fn code_templates_and_settings_have_their_limits() {
        let fields = |name: &str, from: Option<i64>, until: Option<i64>| CodeTemplateFields {
            name: name.into(),
            face_value_fen: 100,
            valid_from: from,
            valid_until: until,
        };
        assert!(fields(&"名".repeat(60), None, None).check().is_ok());
        assert!(fields(&"名".repeat(61), None, None).check().is_err());
        assert!(fields("  ", None, None).check().is_err());
        assert!(fields("卡", Some(5), Some(5)).check().is_ok());
        assert!(fields("卡", Some(6), Some(5)).check().is_err());
        let settings = |attempt_limit: i64, name: usize, title: usize, description: usize| {
            GiftcardSettings {
                attempt_limit,
                centre_name: "名".repeat(name),
                share_title: "题".repeat(title),
                description: "说".repeat(description),
                ..GiftcardSettings::default()
            }
            .check()
            .is_ok()
        };
        assert!(settings(1, 30, 60, 2000));
        assert!(settings(1000, 1, 0, 0));
        assert!(!settings(0, 1, 0, 0));
        assert!(!settings(1001, 1, 0, 0));
        assert!(!settings(1, 0, 0, 0));
        assert!(!settings(1, 31, 0, 0));
        assert!(!settings(1, 1, 61, 0));
        assert!(!settings(1, 1, 0, 2001));
    }

    #[test]
    fn code_counts_and_refusal_reasons() {
        let facts = |valid_from, valid_until| {
            Some(CodeFacts {
                state: CodeState::Unused,
                valid_from,
                valid_until,
            })
        };
        assert_eq!(refusal_reason(facts(None, Some(100)), 100), "raced");
        assert_eq!(refusal_reason(facts(None, Some(99)), 100), "expired");
        assert_eq!(refusal_reason(facts(Some(100), None), 100), "raced");
        assert_eq!(refusal_reason(facts(Some(101), None), 100), "not_yet_valid");
        let template = |n_issued, n_used, n_voided| CodeTemplate {
            n_issued,
            n_used,
            n_voided,
            ..test_template()
        };
        assert_eq!(template(10, 3, 2).n_unused(), 5);
    }

    #[test]
    fn an_issued_code_opens_to_its_grouped_plaintext_and_a_purged_one_to_nothing() {
        let master = MasterKey::from_bytes([3; 32]);
        let new = crate::code::new_codes(&master, 7, 1, 1).remove(0);
        let issued = |sealed: Option<Vec<u8>>| crate::code::IssuedCode {
            id: 1,
            template_id: 1,
            state: CodeState::Unused,
            face_value_fen: 100,
            valid_until: None,
            sealed,
            key_version: 1,
            order_id: None,
            customer_id: None,
            customer_label: None,
            redeemed_at: None,
            issued_at: 0,
        };
        let plain = issued(Some(new.sealed.clone())).plaintext(&master, 7);
        assert_eq!(plain.len(), 19, "{plain}");
        assert_eq!(plain.matches('-').count(), 3);
        let code = crate::code::Code::parse(&plain).expect("it reads back");
        assert_eq!(
            crate::code::code_digest(&crate::code::digest_keys(&master, 7), &code),
            new.digest,
            "the plaintext is the code whose digest was stored"
        );
        assert_eq!(issued(None).plaintext(&master, 7), "");
        assert_eq!(
            issued(Some(new.sealed)).plaintext(&master, 8),
            "",
            "another merchant's key"
        );
    }

    #[test]
    fn exactly_forty_bits_of_password_is_enough() {
        use crate::batch::{password_strength, Numbering, PasswordCharset};
        // 32 characters: 5 bits each, 8 of them make 40.
        assert!(
            password_strength(8, PasswordCharset::Unambiguous, Numbering::Random)
                .warnings
                .is_empty()
        );
        assert!(
            !password_strength(7, PasswordCharset::Unambiguous, Numbering::Random)
                .warnings
                .is_empty()
        );
    }

    fn test_template() -> CodeTemplate {
        CodeTemplate {
            id: 1,
            merchant_id: 1,
            kind: crate::code::CodeKind::Offline,
            fields: CodeTemplateFields {
                name: "卡".into(),
                face_value_fen: 100,
                valid_from: None,
                valid_until: None,
            },
            n_issued: 0,
            n_used: 0,
            n_voided: 0,
            created_by: String::new(),
            created_at: 0,
            deleted_at: None,
        }
    }
}
