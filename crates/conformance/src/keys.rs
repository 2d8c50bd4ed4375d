//! Key rotation: a merchant's version goes up; its sealed card passwords
//! and 兑换码 are re-sealed under it step by step, each only while it has
//! the version it was read with; passwords still check and codes still
//! redeem; the key ring is set once and replaced only over what it was.

#[allow(unused_imports)]
use crate::fixtures::*;
use kaquan_core::code::open_code;
use kaquan_core::giftcard::GiftcardSettings;
use kaquan_core::keys::{reseal_step, Resealable, Resealed};
use kaquan_core::store::*;

pub async fn a_rotation_reseals_copies_and_old_secrets_still_work(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let other = merchant(store, "B").await.id;
    generate(store, m, quantity(5)).await;
    generate(store, other, quantity(2)).await;
    let (template_id, codes) = offline_codes(store, m, fields("礼品卡", 1_000), 3).await;
    let cards = card_secrets(store, m).await;
    assert_eq!(store.get_merchant(m).await.unwrap().key_version, 1);
    let version = store.rotate_key(m, &audit(m, "rotate_key")).await.unwrap();
    assert_eq!(
        (
            version,
            store.get_merchant(other).await.unwrap().key_version
        ),
        (2, 1)
    );
    assert_eq!(
        store
            .count_copies_below(m, Resealable::Cards, 2)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        store
            .count_copies_below(m, Resealable::Codes, 2)
            .await
            .unwrap(),
        3
    );
    // Two steps of three: the cursor carries on after the last row.
    let first = reseal_step(store, &master(), m, Resealable::Cards, (0, 3))
        .await
        .unwrap();
    assert_eq!((first.resealed, first.unreadable), (3, 0));
    let second = reseal_step(
        store,
        &master(),
        m,
        Resealable::Cards,
        (first.cursor.unwrap(), 3),
    )
    .await
    .unwrap();
    assert_eq!(second.resealed, 2);
    let done = reseal_step(
        store,
        &master(),
        m,
        Resealable::Cards,
        (second.cursor.unwrap(), 3),
    )
    .await
    .unwrap();
    assert_eq!(done.cursor, None, "nothing after the last row");
    let codes_step = reseal_step(store, &master(), m, Resealable::Codes, (0, 10))
        .await
        .unwrap();
    assert_eq!(codes_step.resealed, 3);
    assert_eq!(
        store
            .count_copies_below(m, Resealable::Cards, 2)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .count_copies_below(other, Resealable::Cards, 1)
            .await
            .unwrap(),
        0
    );

    let copies = secrets_still_work(store, m, (&cards, &codes), template_id).await;
    // A row read at one version is not replaced once it has another.
    let stale = Resealed {
        id: copies[1].id,
        from_version: 1,
        digest: None,
        sealed: vec![0; 40],
        key_version: 3,
    };
    assert_eq!(
        store
            .reseal_copies(m, Resealable::Codes, &[stale])
            .await
            .unwrap(),
        0
    );
    assert_verified(store).await;

    key_ring_is_set_once_then_over_what_it_was(store).await;
}

/// The key ring: set once, then only over what it was.
async fn key_ring_is_set_once_then_over_what_it_was(store: &dyn Store) {
    assert_eq!(store.key_ring().await.unwrap(), None);
    assert!(store.set_key_ring(b"ring-1", None).await.unwrap());
    assert!(!store.set_key_ring(b"ring-x", None).await.unwrap());
    assert!(!store
        .set_key_ring(b"ring-x", Some(b"ring-0"))
        .await
        .unwrap());
    assert!(store
        .set_key_ring(b"ring-2", Some(b"ring-1"))
        .await
        .unwrap());
    assert_eq!(
        store.key_ring().await.unwrap().as_deref(),
        Some(&b"ring-2"[..])
    );
}

/// Passwords check under the new version, the copies open under it, and a
/// code still redeems; the codes' copies as stored.
async fn secrets_still_work(
    store: &dyn Store,
    m: i64,
    (cards, codes): (&[(String, String)], &[String]),
    template_id: i64,
) -> Vec<kaquan_core::code::IssuedCode> {
    // Passwords check under the new version; the copies open under it.
    let v2 = master().merchant_keys(m, 2);
    for (number, password) in cards {
        let card = store.card_for_check(m, number).await.unwrap().unwrap();
        assert_eq!(card.key_version, 2);
        assert!(v2.secret_matches(number, password, &card.secret_digest));
    }
    let copies = store.codes_after(m, template_id, 0, 10).await.unwrap();
    let mut opened: Vec<_> = copies
        .iter()
        .map(|c| {
            assert_eq!(c.key_version, 2);
            open_code(&v2, c.sealed.as_deref().unwrap()).unwrap()
        })
        .collect();
    let mut expected = codes.to_vec();
    opened.sort();
    expected.sort();
    assert_eq!(opened, expected);
    // A code still redeems: its lookup digest never moved.
    let settings = GiftcardSettings::default();
    redeem(store, &settings, redeemer(m, "u1", "c1"), &codes[0])
        .await
        .unwrap();

    copies
}
