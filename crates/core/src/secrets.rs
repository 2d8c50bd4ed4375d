//! Keys and sealed secrets (DESIGN.md §5).
//!
//! A master key lives outside the database (a 0600 key file or an env var).
//! Each merchant gets its own keys derived from it with HKDF, by key version:
//! an HMAC-SHA256 key for checking card passwords (one-way, the seed's
//! "per-merchant salt") and an AES-256-GCM key for the sealed copy that only
//! a permitted, audited export opens.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// Length of a password digest in bytes.
pub const DIGEST_LENGTH: usize = 32;
const NONCE_LENGTH: usize = 12;

/// The installation's master key. `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = from_hex(text.trim())?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// Names the key without revealing it (a backup's manifest carries it,
    /// so a restore can tell it was given the key its secrets need): 16 hex
    /// digits of an HKDF output no other use of the key derives.
    pub fn fingerprint(&self) -> String {
        let hkdf = Hkdf::<Sha256>::new(Some(b"kaquan key fingerprint v1"), &self.0);
        let mut out = [0u8; 8];
        hkdf.expand(b"fingerprint", &mut out)
            .expect("8 bytes is a valid HKDF output length");
        to_hex(&out)
    }

    /// The keys of one merchant at one key version.
    pub fn merchant_keys(&self, merchant_id: i64, key_version: i32) -> MerchantKeys {
        let hkdf = Hkdf::<Sha256>::new(Some(b"kaquan merchant keys v1"), &self.0);
        let mut hmac_key = [0u8; 32];
        let mut aead_key = [0u8; 32];
        hkdf.expand(
            format!("merchant:{merchant_id}:v{key_version}:hmac").as_bytes(),
            &mut hmac_key,
        )
        .expect("32 bytes is a valid HKDF output length");
        hkdf.expand(
            format!("merchant:{merchant_id}:v{key_version}:aead").as_bytes(),
            &mut aead_key,
        )
        .expect("32 bytes is a valid HKDF output length");
        MerchantKeys {
            key_version,
            hmac: <HmacSha256 as Mac>::new_from_slice(&hmac_key)
                .expect("HMAC takes any key length"),
            aead: Aes256Gcm::new_from_slice(&aead_key).expect("32-byte AES key"),
        }
    }

    /// A key for things that belong to the installation, not a merchant
    /// (session tokens are hashed with plain SHA-256 and need none).
    pub fn installation_hmac(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        self.installation_mac(purpose, message)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Checks a tag made by [`Self::installation_hmac`], in constant time.
    pub fn installation_hmac_matches(&self, purpose: &str, message: &[u8], tag: &[u8]) -> bool {
        self.installation_mac(purpose, message)
            .verify_slice(tag)
            .is_ok()
    }

    fn installation_mac(&self, purpose: &str, message: &[u8]) -> HmacSha256 {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(message);
        mac
    }
}

/// One merchant's derived keys.
#[derive(Clone)]
pub struct MerchantKeys {
    pub key_version: i32,
    hmac: HmacSha256,
    aead: Aes256Gcm,
}

impl fmt::Debug for MerchantKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MerchantKeys(v{}, <redacted>)", self.key_version)
    }
}

impl MerchantKeys {
    /// The one-way digest of a card password, bound to its card number so
    /// equal passwords on two cards have different digests.
    pub fn secret_digest(&self, number: &str, secret: &str) -> [u8; DIGEST_LENGTH] {
        let mut mac = self.hmac.clone();
        mac.update(number.as_bytes());
        mac.update(b"\0");
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Checks a typed password against a stored digest in constant time.
    pub fn secret_matches(&self, number: &str, secret: &str, digest: &[u8]) -> bool {
        let mut mac = self.hmac.clone();
        mac.update(number.as_bytes());
        mac.update(b"\0");
        mac.update(secret.as_bytes());
        mac.verify_slice(digest).is_ok()
    }

    /// Encrypts a secret for later export: nonce ‖ ciphertext+tag, with the
    /// card number as associated data so a sealed copy cannot be moved to
    /// another card.
    pub fn seal(&self, number: &str, secret: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LENGTH];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: number.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short message cannot fail");
        let mut sealed = Vec::with_capacity(NONCE_LENGTH + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens a sealed copy; `None` if it was tampered with or sealed for
    /// another card or key.
    pub fn open(&self, number: &str, sealed: &[u8]) -> Option<String> {
        if sealed.len() < NONCE_LENGTH {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LENGTH);
        let plain = self
            .aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: number.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Random bytes as lowercase hex, for tokens.
pub fn random_token_hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    to_hex(&bytes)
}

/// SHA-256 of a token, hex; sessions are stored by this so a database dump
/// does not hand out live sessions.
pub fn token_hash_hex(token: &str) -> String {
    use sha2::Digest;
    to_hex(&Sha256::digest(token.as_bytes()))
}

/// The SHA-256 of a file, read in pieces (a backup may be gigabytes).
pub fn file_sha256_hex(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(to_hex(&hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_names_its_key_only() {
        let key = MasterKey::from_bytes([7; 32]);
        let fingerprint = key.fingerprint();
        assert_eq!(fingerprint.len(), 16);
        assert_eq!(fingerprint, MasterKey::from_bytes([7; 32]).fingerprint());
        assert_ne!(fingerprint, MasterKey::from_bytes([8; 32]).fingerprint());
        assert!(!key.to_hex().contains(&fingerprint));
    }

    #[test]
    fn sealed_secrets_open_only_for_their_card_and_merchant() {
        let master = MasterKey::generate();
        let keys = master.merchant_keys(1, 1);
        let sealed = keys.seal("A0001", "12345678");
        assert_eq!(keys.open("A0001", &sealed).as_deref(), Some("12345678"));
        assert_eq!(keys.open("A0002", &sealed), None, "moved to another card");
        assert_eq!(
            master.merchant_keys(2, 1).open("A0001", &sealed),
            None,
            "another merchant"
        );
        assert_eq!(
            master.merchant_keys(1, 2).open("A0001", &sealed),
            None,
            "another key version"
        );
        assert!(
            !sealed.windows(8).any(|w| w == b"12345678"),
            "plaintext must not appear"
        );
    }

    #[test]
    fn digests_are_per_merchant_and_per_card() {
        let master = MasterKey::generate();
        let keys = master.merchant_keys(1, 1);
        let digest = keys.secret_digest("A0001", "12345678");
        assert!(keys.secret_matches("A0001", "12345678", &digest));
        assert!(!keys.secret_matches("A0001", "12345679", &digest));
        assert_ne!(digest, keys.secret_digest("A0002", "12345678"));
        assert_ne!(
            digest,
            master
                .merchant_keys(2, 1)
                .secret_digest("A0001", "12345678")
        );
    }

    #[test]
    fn master_keys_round_trip_through_hex_and_never_print() {
        let master = MasterKey::generate();
        let again = MasterKey::from_hex(&master.to_hex()).unwrap();
        assert_eq!(again.to_hex(), master.to_hex());
        assert_eq!(format!("{master:?}"), "MasterKey(<redacted>)");
        assert!(MasterKey::from_hex("abc").is_none());
    }
}
