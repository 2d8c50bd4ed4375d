//! A coupon's code: 20 decimal digits (66 bits from the OS CSPRNG), so it
//! types on a phone's number pad and fits a barcode. It is stored only as
//! a keyed digest (to find the coupon) and a sealed copy (shown to the
//! customer who holds it).
//!
//! A program with 动态码 shows, instead, an 18-digit code that changes every
//! [`ROTATION_SECONDS`]: the coupon's id (10 digits) followed by an 8-digit
//! one-time code derived from the coupon's own code and the time step, so
//! a screenshot is useless a minute later and the code itself is never shown.

use crate::secrets::{MasterKey, MerchantKeys};
use rand::Rng;

/// Digits in a coupon's code.
pub const CODE_DIGITS: usize = 20;
/// Digits in a rotating code: the coupon id, then the one-time code.
pub const ROTATING_DIGITS: usize = 18;
const ROTATING_ID_DIGITS: usize = 10;
const ROTATING_OTP_MODULUS: u64 = 100_000_000;
/// How long a rotating code lasts; the one before it is still taken, so a
/// code read at the end of its step does not fail at the counter.
pub const ROTATION_SECONDS: i64 = 30;
/// What a coupon code's digest and sealed copy are bound to.
const CODE_CONTEXT: &str = "coupon-code";
const ROTATING_CONTEXT: &str = "coupon-rotating";
/// The key version every coupon digest is made with (see `code::CODE_DIGEST_KEY_VERSION`).
const DIGEST_KEY_VERSION: i32 = 1;

/// A coupon's code in canonical form (20 digits). `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct CouponCode(String);

impl std::fmt::Debug for CouponCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CouponCode(<redacted>)")
    }
}

impl CouponCode {
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        Self(
            (0..CODE_DIGITS)
                .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
                .collect(),
        )
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `1234 5678 …`, as shown under a barcode.
    pub fn grouped(&self) -> String {
        group_digits(&self.0)
    }
}

/// Groups digits in fours with spaces.
pub fn group_digits(digits: &str) -> String {
    digits
        .as_bytes()
        .chunks(4)
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Only the last four digits: `**** **** **** **** 5678`.
pub fn mask_coupon_code(code: &str) -> String {
    let tail = code.get(code.len().saturating_sub(4)..).unwrap_or_default();
    format!("**** **** **** **** {tail}")
}

/// What staff typed or scanned, read as the two kinds of code: spaces and
/// hyphens do not matter (a scanner gun may add neither, a person both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedCode {
    Fixed(CouponCode),
    Rotating {
        coupon_id: i64,
        otp: u64,
    },
    /// Anything else: looked up like a code, so its shape tells nothing.
    Malformed,
}

impl TypedCode {
    pub fn parse(text: &str) -> Self {
        let digits: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '\t'))
            .collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Self::Malformed;
        }
        match digits.len() {
            CODE_DIGITS => Self::Fixed(CouponCode(digits)),
            ROTATING_DIGITS => {
                let (id, otp) = digits.split_at(ROTATING_ID_DIGITS);
                match (id.parse(), otp.parse()) {
                    (Ok(coupon_id), Ok(otp)) => Self::Rotating { coupon_id, otp },
                    _ => Self::Malformed,
                }
            }
            _ => Self::Malformed,
        }
    }
}

/// The keys every coupon digest of a merchant is made with.
pub fn digest_keys(master: &MasterKey, merchant_id: i64) -> MerchantKeys {
    master.merchant_keys(merchant_id, DIGEST_KEY_VERSION)
}

/// The keyed digest a coupon is found by.
pub fn coupon_code_digest(keys: &MerchantKeys, code: &str) -> Vec<u8> {
    keys.secret_digest(CODE_CONTEXT, code).to_vec()
}

/// A new coupon's code as the store inserts it.
#[derive(Debug, Clone)]
pub struct NewCouponCode {
    pub digest: Vec<u8>,
    pub sealed: Vec<u8>,
    pub key_version: i32,
}

/// `n` fresh codes for a merchant, sealed under `key_version`.
pub fn new_coupon_codes(
    master: &MasterKey,
    merchant_id: i64,
    key_version: i32,
    n: usize,
) -> Vec<NewCouponCode> {
    let (digest_keys, keys) = (
        digest_keys(master, merchant_id),
        master.merchant_keys(merchant_id, key_version),
    );
    (0..n)
        .map(|_| {
            let code = CouponCode::generate();
            NewCouponCode {
                digest: coupon_code_digest(&digest_keys, code.expose()),
                sealed: keys.seal(CODE_CONTEXT, code.expose()),
                key_version,
            }
        })
        .collect()
}

/// Opens a coupon's sealed code.
pub fn open_coupon_code(
    master: &MasterKey,
    merchant_id: i64,
    key_version: i32,
    sealed: &[u8],
) -> Option<String> {
    master
        .merchant_keys(merchant_id, key_version)
        .open(CODE_CONTEXT, sealed)
}

/// The one-time part of a coupon's rotating code at time step `step`.
fn otp_at(keys: &MerchantKeys, code: &str, step: i64) -> u64 {
    let mac = keys.secret_digest(ROTATING_CONTEXT, &format!("{code}:{step}"));
    let head = u64::from_be_bytes(mac[..8].try_into().expect("a digest has 32 bytes"));
    head % ROTATING_OTP_MODULUS
}

/// The rotating code a coupon shows at `now` (18 digits).
pub fn rotating_code(keys: &MerchantKeys, coupon_id: i64, code: &str, now: i64) -> String {
    let otp = otp_at(keys, code, now.div_euclid(ROTATION_SECONDS));
    format!("{coupon_id:0ROTATING_ID_DIGITS$}{otp:08}")
}

/// Whether `otp` is the coupon's one-time code now or one step ago.
pub fn rotating_code_matches(keys: &MerchantKeys, code: &str, otp: u64, now: i64) -> bool {
    let step = now.div_euclid(ROTATION_SECONDS);
    // Both steps are always computed, so a match costs what a miss costs.
    let (current, previous) = (otp_at(keys, code, step), otp_at(keys, code, step - 1));
    current == otp || previous == otp
}

/// Seconds until the rotating code changes, for the wallet's countdown.
pub fn seconds_until_rotation(now: i64) -> i64 {
    ROTATION_SECONDS - now.rem_euclid(ROTATION_SECONDS)
}

/// The tag of a 朋友的券's share link (`/m/{merchant}/shared/{coupon}/{tag}`):
/// a keyed hash of the sharer's coupon, so a link names that coupon and no
/// one can make a link for another.
pub fn share_tag(master: &MasterKey, merchant_id: i64, coupon_id: i64) -> String {
    crate::secrets::to_hex(
        &master.installation_hmac(SHARE_PURPOSE, &share_message(merchant_id, coupon_id)),
    )
}

/// Whether `tag` is the share tag of the coupon, in constant time.
pub fn share_tag_matches(master: &MasterKey, merchant_id: i64, coupon_id: i64, tag: &str) -> bool {
    crate::secrets::from_hex(tag).is_some_and(|bytes| {
        master.installation_hmac_matches(
            SHARE_PURPOSE,
            &share_message(merchant_id, coupon_id),
            &bytes,
        )
    })
}

fn share_message(merchant_id: i64, coupon_id: i64) -> Vec<u8> {
    format!("{merchant_id}:{coupon_id}").into_bytes()
}

const SHARE_PURPOSE: &str = "coupon-share";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_twenty_random_digits_and_parse_back_however_typed() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let code = CouponCode::generate();
            assert_eq!(code.expose().len(), CODE_DIGITS);
            assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(
                TypedCode::parse(&code.grouped()),
                TypedCode::Fixed(code.clone())
            );
            assert!(seen.insert(code.expose().to_owned()));
        }
        assert_eq!(
            format!("{:?}", CouponCode::generate()),
            "CouponCode(<redacted>)"
        );
    }

    #[test]
    fn typed_text_is_a_fixed_code_a_rotating_code_or_nothing() {
        assert_eq!(
            TypedCode::parse("0000000042-12345678"),
            TypedCode::Rotating {
                coupon_id: 42,
                otp: 12_345_678
            }
        );
        for bad in [
            "",
            "1234",
            "1234567890123456789",
            "1234567890123456789a",
            "１２",
        ] {
            assert_eq!(TypedCode::parse(bad), TypedCode::Malformed, "{bad}");
        }
        assert_eq!(
            mask_coupon_code("12345678901234567890"),
            "**** **** **** **** 7890"
        );
        assert_eq!(group_digits("123456789"), "1234 5678 9");
    }

    #[test]
    fn a_rotating_code_holds_for_its_step_and_the_one_after_then_fails() {
        let master = MasterKey::from_bytes([7; 32]);
        let keys = digest_keys(&master, 1);
        let code = "12345678901234567890";
        let now = 1_800_000_000 - 1_800_000_000 % ROTATION_SECONDS;
        let shown = rotating_code(&keys, 42, code, now);
        assert_eq!(shown.len(), ROTATING_DIGITS);
        let TypedCode::Rotating { coupon_id, otp } = TypedCode::parse(&shown) else {
            panic!("a rotating code parses as one");
        };
        assert_eq!(coupon_id, 42);
        assert!(rotating_code_matches(&keys, code, otp, now));
        assert!(rotating_code_matches(
            &keys,
            code,
            otp,
            now + ROTATION_SECONDS
        ));
        assert!(!rotating_code_matches(
            &keys,
            code,
            otp,
            now + 2 * ROTATION_SECONDS
        ));
        assert!(!rotating_code_matches(&keys, code, otp, now - 1));
        assert!(
            !rotating_code_matches(&keys, "12345678901234567891", otp, now),
            "another coupon's code"
        );
        assert_ne!(
            shown,
            rotating_code(&keys, 42, code, now + ROTATION_SECONDS)
        );
        assert_eq!(seconds_until_rotation(now), ROTATION_SECONDS);
        assert_eq!(seconds_until_rotation(now + 29), 1);
    }

    #[test]
    fn sealed_codes_open_and_digests_find_them() {
        let master = MasterKey::from_bytes([9; 32]);
        let made = new_coupon_codes(&master, 3, 2, 2);
        let plain = open_coupon_code(&master, 3, 2, &made[0].sealed).unwrap();
        assert_eq!(
            coupon_code_digest(&digest_keys(&master, 3), &plain),
            made[0].digest
        );
        assert_ne!(made[0].digest, made[1].digest);
        assert!(open_coupon_code(&master, 4, 2, &made[0].sealed).is_none());
    }

    #[test]
    fn a_share_tag_names_one_coupon_of_one_merchant() {
        let master = MasterKey::from_bytes([7; 32]);
        let tag = share_tag(&master, 1, 42);
        assert_eq!(tag.len(), 64);
        assert!(share_tag_matches(&master, 1, 42, &tag));
        assert!(!share_tag_matches(&master, 1, 43, &tag));
        assert!(!share_tag_matches(&master, 2, 42, &tag));
        assert!(!share_tag_matches(&master, 1, 42, &tag[..62]));
        assert!(!share_tag_matches(&master, 1, 42, "zz"));
        assert!(!share_tag_matches(
            &MasterKey::from_bytes([8; 32]),
            1,
            42,
            &tag
        ));
    }
}
