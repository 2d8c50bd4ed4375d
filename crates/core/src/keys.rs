//! Key rotation and the key ring.
//!
//! **Rotation** (`kaquan keys rotate`): a merchant's key version goes up by
//! one; new secrets are sealed (and card passwords digested) under it,
//! while every row keeps the version it was made with, so old digests
//! keep verifying. The sealed copies of card passwords and 兑换码 are then
//! re-sealed under the new version in steps ([`reseal_step`]): by the
//! command, with progress, and by every server in the background. A card's
//! password digest moves with its copy; a code's lookup digest never moves
//! (`code::CODE_DIGEST_KEY_VERSION`). A card whose copy was purged after
//! printing keeps its version, which stays derivable from the root key.
//!
//! **The key ring** (`kaquan keys rewrap --new-key-file`): every key is
//! derived from one root. At first the root is the key file's key itself;
//! a rewrap stores the root in the database sealed under a new key file's
//! key (AES-256-GCM), so the key file can be replaced without touching a
//! row. [`open_ring`] gives the root back from the key file's key.

use crate::audit::AuditEntry;
use crate::secrets::MasterKey;
use crate::StoreResult;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

/// What holds sealed copies that a rotation moves to the new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resealable {
    /// Card passwords: the copy and the digest (bound to the card number).
    Cards,
    /// 兑换码: the copy only.
    Codes,
}

impl Resealable {
    pub const ALL: [Resealable; 2] = [Self::Cards, Self::Codes];

    /// As `kaquan keys status --json` names it.
    pub fn code(self) -> &'static str {
        match self {
            Self::Cards => "cards",
            Self::Codes => "codes",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Cards => "卡密码",
            Self::Codes => "兑换码",
        }
    }
}

/// A sealed copy as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCopy {
    pub id: i64,
    /// The card number the copy is bound to; empty for a code.
    pub number: String,
    pub sealed: Vec<u8>,
    pub key_version: i32,
}

/// A copy sealed again, to replace the row's while it still has `from_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resealed {
    pub id: i64,
    pub from_version: i32,
    /// A card password's digest under the new version (`None` for a code).
    pub digest: Option<Vec<u8>>,
    pub sealed: Vec<u8>,
    pub key_version: i32,
}

/// Opens `copy` under its own version and seals it under `to_version`;
/// `None` when it does not open (tampered with, or another key).
pub fn reseal(
    master: &MasterKey,
    merchant_id: i64,
    kind: Resealable,
    copy: &SealedCopy,
    to_version: i32,
) -> Option<Resealed> {
    let old = master.merchant_keys(merchant_id, copy.key_version);
    let new = master.merchant_keys(merchant_id, to_version);
    let (sealed, digest) = match kind {
        Resealable::Cards => {
            let secret = old.open(&copy.number, &copy.sealed)?;
            let digest = new.secret_digest(&copy.number, &secret).to_vec();
            (new.seal(&copy.number, &secret), Some(digest))
        }
        Resealable::Codes => {
            let code = crate::code::open_code(&old, &copy.sealed)?;
            (crate::code::seal_code(&new, &code), None)
        }
    };
    Some(Resealed {
        id: copy.id,
        from_version: copy.key_version,
        digest,
        sealed,
        key_version: to_version,
    })
}

/// How far a merchant's re-seal has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealProgress {
    /// Copies sealed again by this step.
    pub resealed: i64,
    /// Copies that did not open (left as they are, and counted by verify).
    pub unreadable: i64,
    /// The last row id the step reached (the next step starts after it);
    /// `None` once nothing below the version is left after the cursor.
    pub cursor: Option<i64>,
}

/// Re-seals up to `limit` of the merchant's copies of `kind` that are
/// below its key version, after row `after` (a keyset cursor).
pub async fn reseal_step(
    store: &dyn KeyStore,
    master: &MasterKey,
    merchant_id: i64,
    kind: Resealable,
    (after, limit): (i64, i64),
) -> StoreResult<ResealProgress> {
    let version = store.get_merchant(merchant_id).await?.key_version;
    let copies = store
        .copies_below(merchant_id, kind, version, after, limit)
        .await?;
    let Some(last) = copies.last().map(|c| c.id) else {
        return Ok(ResealProgress::default());
    };
    let master = master.clone();
    let (resealed, unreadable) = crate::off_thread(move || {
        let mut resealed = Vec::with_capacity(copies.len());
        for copy in &copies {
            resealed.extend(reseal(&master, merchant_id, kind, copy, version));
        }
        let unreadable = (copies.len() - resealed.len()) as i64;
        (resealed, unreadable)
    })
    .await?;
    let n = store.reseal_copies(merchant_id, kind, &resealed).await?;
    Ok(ResealProgress {
        resealed: n,
        unreadable,
        cursor: Some(last),
    })
}

/// The root sealed under a key file's key, as the key ring stores it:
/// nonce ‖ AES-256-GCM(root), bound to the purpose.
pub fn wrap_root(root: &MasterKey, file_key: &MasterKey) -> Vec<u8> {
    let kek = file_key.installation_hmac("key-ring", b"kek");
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let bytes = crate::secrets::from_hex(&root.to_hex()).expect("a key is hex");
    let sealed = Aes256Gcm::new((&kek).into())
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &bytes,
                aad: b"kaquan key ring v1",
            },
        )
        .expect("AES-GCM seals 32 bytes");
    [nonce.as_slice(), &sealed].concat()
}

/// The root from the key ring (`None`: the ring is empty, the key file's
/// key is the root); an error when the key file does not open the ring.
pub fn open_ring(ring: Option<&[u8]>, file_key: &MasterKey) -> Result<MasterKey, String> {
    let Some(ring) = ring else {
        return Ok(file_key.clone());
    };
    let kek = file_key.installation_hmac("key-ring", b"kek");
    let refused = || {
        "这个主密钥文件打不开本数据库的密钥环（密钥已用 kaquan keys rewrap 换过？请用换后的密钥文件）".to_owned()
    };
    if ring.len() < 12 {
        return Err(refused());
    }
    let (nonce, sealed) = ring.split_at(12);
    let bytes = Aes256Gcm::new((&kek).into())
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: b"kaquan key ring v1",
            },
        )
        .map_err(|_| refused())?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| refused())?;
    Ok(MasterKey::from_bytes(bytes))
}

#[async_trait::async_trait]
pub trait KeyStore: crate::merchant::MerchantStore {
    /// Raises the merchant's key version by one; returns the new version.
    async fn rotate_key(&self, merchant_id: i64, audit: &AuditEntry) -> StoreResult<i32>;
    /// Copies below `version` with an id after `after`, by id, at most `limit`.
    async fn copies_below(
        &self,
        merchant_id: i64,
        kind: Resealable,
        version: i32,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<SealedCopy>>;
    async fn count_copies_below(
        &self,
        merchant_id: i64,
        kind: Resealable,
        version: i32,
    ) -> StoreResult<i64>;
    /// Replaces each copy (and a card's digest) while the row still has the
    /// version it was read with; returns how many were replaced.
    async fn reseal_copies(
        &self,
        merchant_id: i64,
        kind: Resealable,
        rows: &[Resealed],
    ) -> StoreResult<i64>;
    /// The root sealed under the key file's key, once a rewrap stored it.
    async fn key_ring(&self) -> StoreResult<Option<Vec<u8>>>;
    /// Stores the ring if it is still `previous`; `false` when another
    /// rewrap came first.
    async fn set_key_ring(&self, ring: &[u8], previous: Option<&[u8]>) -> StoreResult<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_copy_moves_to_the_new_version_with_its_digest() {
        let master = MasterKey::from_bytes([3; 32]);
        let v1 = master.merchant_keys(7, 1);
        let copy = SealedCopy {
            id: 1,
            number: "88001".into(),
            sealed: v1.seal("88001", "123456"),
            key_version: 1,
        };
        let moved = reseal(&master, 7, Resealable::Cards, &copy, 2).unwrap();
        let v2 = master.merchant_keys(7, 2);
        assert_eq!((moved.from_version, moved.key_version), (1, 2));
        assert_eq!(v2.open("88001", &moved.sealed).as_deref(), Some("123456"));
        assert!(v2.secret_matches("88001", "123456", moved.digest.as_deref().unwrap()));
        assert!(!v1.secret_matches("88001", "123456", moved.digest.as_deref().unwrap()));
        assert_eq!(
            reseal(&master, 8, Resealable::Cards, &copy, 2),
            None,
            "another merchant's keys"
        );
    }

    #[test]
    fn a_code_copy_moves_and_keeps_no_digest() {
        let master = MasterKey::from_bytes([4; 32]);
        let code = crate::code::new_codes(&master, 5, 1, 1).remove(0);
        let copy = SealedCopy {
            id: 9,
            number: String::new(),
            sealed: code.sealed.clone(),
            key_version: 1,
        };
        let moved = reseal(&master, 5, Resealable::Codes, &copy, 3).unwrap();
        assert_eq!(moved.digest, None);
        let v1_plain = crate::code::open_code(&master.merchant_keys(5, 1), &code.sealed);
        let v3_plain = crate::code::open_code(&master.merchant_keys(5, 3), &moved.sealed);
        assert_eq!(v1_plain, v3_plain);
        assert!(v3_plain.is_some());
    }

    #[test]
    fn each_kind_has_its_code_and_chinese_name() {
        let named: Vec<_> = Resealable::ALL
            .iter()
            .map(|k| (k.code(), k.label_zh()))
            .collect();
        assert_eq!(named, [("cards", "卡密码"), ("codes", "兑换码")]);
    }

    #[test]
    fn the_ring_opens_with_its_key_file_only() {
        let root = MasterKey::from_bytes([1; 32]);
        let (old, new) = (
            MasterKey::from_bytes([1; 32]),
            MasterKey::from_bytes([2; 32]),
        );
        assert_eq!(open_ring(None, &old).unwrap().to_hex(), root.to_hex());
        let ring = wrap_root(&root, &new);
        assert_eq!(
            open_ring(Some(&ring), &new).unwrap().to_hex(),
            root.to_hex()
        );
        assert!(open_ring(Some(&ring), &old).is_err());
        let mut bent = ring.clone();
        bent[20] ^= 1;
        assert!(open_ring(Some(&bent), &new).is_err());
        assert!(open_ring(Some(&ring[..5]), &new).is_err());
    }
}
