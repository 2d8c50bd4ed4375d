//! Signatures of the open API and of customer login links.
//!
//! A merchant's system signs every request with one of its API keys:
//! HMAC-SHA256 over the canonical request
//!
//! ```text
//! METHOD \n PATH \n QUERY \n TIMESTAMP \n NONCE \n hex(SHA-256(body))
//! ```
//!
//! sent as lowercase hex in `X-Kaquan-Signature`, with `X-Kaquan-Key`,
//! `X-Kaquan-Timestamp` (unix seconds, within ±5 minutes) and
//! `X-Kaquan-Nonce` (16–64 of `[A-Za-z0-9_-]`, never reused).
//!
//! A login link is `merchant.customer.expires.nonce.signature`, signed with
//! the installation key; it works once and only until it expires.

use crate::secrets::{from_hex, random_token_hex, to_hex, MasterKey};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How far a request's timestamp may be from the server's clock.
pub const TIMESTAMP_SKEW_SECONDS_MAX: i64 = 300;
/// Nonces are remembered for longer than the skew window, then forgotten.
pub const NONCE_KEPT_SECONDS: i64 = 2 * TIMESTAMP_SKEW_SECONDS_MAX + 60;
/// How long a login link works.
pub const LOGIN_LINK_SECONDS: i64 = 300;
/// Active API keys a merchant may have at once (two, for rotation).
pub const API_KEYS_ACTIVE_MAX: i64 = 2;
const NONCE_LENGTH_MIN: usize = 16;
const NONCE_LENGTH_MAX: usize = 64;

/// The string a request signature covers.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    format!(
        "{}\n{path}\n{query}\n{timestamp}\n{nonce}\n{}",
        method.to_ascii_uppercase(),
        body_hash_hex(body)
    )
}

/// SHA-256 of a body, lowercase hex.
pub fn body_hash_hex(body: &[u8]) -> String {
    to_hex(&Sha256::digest(body))
}

/// The signature of a canonical request under an API secret.
pub fn sign(secret: &str, canonical: &str) -> String {
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(canonical.as_bytes());
    to_hex(&mac.finalize().into_bytes())
}

/// Checks a signature in constant time.
pub fn signature_matches(secret: &str, canonical: &str, signature_hex: &str) -> bool {
    let Some(signature) = from_hex(signature_hex.trim()) else {
        return false;
    };
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(canonical.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

/// The request's timestamp if it is within the skew window of `now`.
pub fn fresh_timestamp(timestamp: &str, now: i64) -> Option<i64> {
    timestamp.parse::<i64>().ok().filter(|t| {
        t.checked_sub(now)
            .is_some_and(|skew| skew.unsigned_abs() <= TIMESTAMP_SKEW_SECONDS_MAX.unsigned_abs())
    })
}

pub fn nonce_is_well_formed(nonce: &str) -> bool {
    (NONCE_LENGTH_MIN..=NONCE_LENGTH_MAX).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A new API key: its public id and its secret (shown to the merchant once).
pub fn new_api_key() -> (String, String) {
    (format!("kq_{}", random_token_hex(8)), random_token_hex(32))
}

/// What a valid login link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLink {
    pub merchant_id: i64,
    pub customer_id: i64,
    pub expires_at: i64,
    /// Recorded when the link is used, so it works once.
    pub nonce: String,
}

fn login_link_payload(merchant_id: i64, customer_id: i64, expires_at: i64, nonce: &str) -> String {
    format!("{merchant_id}.{customer_id}.{expires_at}.{nonce}")
}

/// A login link token for one customer, valid for [`LOGIN_LINK_SECONDS`].
pub fn create_login_token(
    master: &MasterKey,
    merchant_id: i64,
    customer_id: i64,
    now: i64,
) -> String {
    let payload = login_link_payload(
        merchant_id,
        customer_id,
        now + LOGIN_LINK_SECONDS,
        &random_token_hex(12),
    );
    let signature = master.installation_hmac("login-link", payload.as_bytes());
    format!("{payload}.{}", to_hex(&signature))
}

/// Reads a login token: `None` when forged, altered or expired.
pub fn read_login_token(master: &MasterKey, token: &str, now: i64) -> Option<LoginLink> {
    let (payload, signature_hex) = token.rsplit_once('.')?;
    let signature = from_hex(signature_hex)?;
    if !master.installation_hmac_matches("login-link", payload.as_bytes(), &signature) {
        return None;
    }
    let mut parts = payload.split('.');
    let link = LoginLink {
        merchant_id: parts.next()?.parse().ok()?,
        customer_id: parts.next()?.parse().ok()?,
        expires_at: parts.next()?.parse().ok()?,
        nonce: parts.next()?.to_owned(),
    };
    (parts.next().is_none() && link.expires_at >= now).then_some(link)
}

/// What an API key's secret is sealed to, so a sealed copy cannot move to another key.
fn api_key_context(key_id: &str) -> String {
    format!("api-key:{key_id}")
}

/// Creates an API key for a merchant: returns it and its secret, which is
/// shown once and kept only sealed under the merchant's key.
pub async fn create_api_key(
    store: &dyn crate::store::Store,
    master: &MasterKey,
    merchant_id: i64,
    label: &str,
    audit: &crate::audit::AuditEntry,
) -> crate::StoreResult<(crate::api_key::ApiKey, String)> {
    let merchant = store.get_merchant(merchant_id).await?;
    let keys = master.merchant_keys(merchant_id, merchant.key_version);
    let (key_id, secret) = new_api_key();
    let sealed = keys.seal(&api_key_context(&key_id), &secret);
    let mut audit = audit.clone();
    audit.target = format!("api_key={key_id}");
    let key = store
        .create_api_key(
            merchant_id,
            &key_id,
            label,
            &sealed,
            merchant.key_version,
            &audit,
        )
        .await?;
    Ok((key, secret))
}

/// Opens the secret of an API key found by its public id.
pub fn open_api_secret(master: &MasterKey, key: &crate::api_key::ApiKeySecret) -> Option<String> {
    master
        .merchant_keys(key.merchant_id, key.key_version)
        .open(&api_key_context(&key.key_id), &key.secret_sealed)
}

/// Lowercase hex MD5, as 旺店通 and the carriers sign (MD5 is their
/// choice, not ours: it authenticates a request with a shared secret).
pub fn md5_hex(bytes: &[u8]) -> String {
    crate::secrets::to_hex(&md5_raw(bytes))
}

/// The 16 bytes of MD5.
pub fn md5_raw(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_timestamps_are_stale_not_overflowed() {
        let now = 1_790_000_000;
        for t in [i64::MIN, i64::MAX, i64::MIN + 1] {
            assert_eq!(fresh_timestamp(&t.to_string(), now), None, "{t}");
        }
        assert_eq!(
            fresh_timestamp(&(now - 300).to_string(), now),
            Some(now - 300)
        );
        assert_eq!(fresh_timestamp(&(now + 301).to_string(), now), None);
        assert_eq!(fresh_timestamp(&now.to_string(), i64::MIN), None);
    }

    #[test]
    fn a_signature_covers_every_part_of_the_request() {
        let secret = "s3cret";
        let base = (
            "POST",
            "/open/v1/redemptions",
            "",
            "1700000000",
            "abcdefghijklmnop",
            &b"{}"[..],
        );
        let canonical = canonical_request(base.0, base.1, base.2, base.3, base.4, base.5);
        let signature = sign(secret, &canonical);
        assert!(signature_matches(secret, &canonical, &signature));
        assert!(!signature_matches("other", &canonical, &signature));
        for altered in [
            canonical_request("PUT", base.1, base.2, base.3, base.4, base.5),
            canonical_request(base.0, "/open/v1/spends", base.2, base.3, base.4, base.5),
            canonical_request(base.0, base.1, "a=1", base.3, base.4, base.5),
            canonical_request(base.0, base.1, base.2, "1700000001", base.4, base.5),
            canonical_request(base.0, base.1, base.2, base.3, "abcdefghijklmnoq", base.5),
            canonical_request(base.0, base.1, base.2, base.3, base.4, b"{ }"),
        ] {
            assert!(!signature_matches(secret, &altered, &signature));
        }
        assert!(!signature_matches(secret, &canonical, "zz"));
    }

    #[test]
    fn timestamps_must_be_within_five_minutes() {
        assert_eq!(fresh_timestamp("1000", 1300), Some(1000));
        assert_eq!(fresh_timestamp("1600", 1300), Some(1600));
        assert_eq!(fresh_timestamp("999", 1300), None);
        assert_eq!(fresh_timestamp("1601", 1300), None);
        assert_eq!(fresh_timestamp("soon", 1300), None);
    }

    #[test]
    fn nonces_are_sixteen_to_sixty_four_safe_characters() {
        assert!(nonce_is_well_formed("0123456789abcdef"));
        assert!(!nonce_is_well_formed("short"));
        assert!(!nonce_is_well_formed("0123456789abcde/"));
        assert!(!nonce_is_well_formed(&"a".repeat(65)));
    }

    #[test]
    fn login_links_are_signed_and_expire() {
        let master = MasterKey::generate();
        let token = create_login_token(&master, 7, 42, 1000);
        let link = read_login_token(&master, &token, 1000).expect("fresh link");
        assert_eq!((link.merchant_id, link.customer_id), (7, 42));
        assert!(read_login_token(&master, &token, 1000 + LOGIN_LINK_SECONDS + 1).is_none());
        assert!(read_login_token(&MasterKey::generate(), &token, 1000).is_none());
        let forged = token.replacen("7.42.", "7.43.", 1);
        assert!(read_login_token(&master, &forged, 1000).is_none());
    }
}
