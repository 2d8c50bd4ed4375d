//! Goods and their links to cards.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::StoreError;
use kaquan_core::{card::*, goods::*, store::*};

pub async fn goods_are_kept_per_merchant_with_their_images(store: &dyn Store) {
    let m = merchant(store, "A").await;
    let other = merchant(store, "B").await;
    let apple = store
        .create_goods(m.id, &goods_fields("苹果"), NOW)
        .await
        .unwrap();
    let mut peach_fields = goods_fields("桃子");
    peach_fields.on_shelf = false;
    let peach = store.create_goods(m.id, &peach_fields, NOW).await.unwrap();
    store
        .create_goods(other.id, &goods_fields("别家的梨"), NOW)
        .await
        .unwrap();
    assert_eq!(store.list_goods(m.id, false).await.unwrap().len(), 2);
    let on_shelf = store.list_goods(m.id, true).await.unwrap();
    assert_eq!(
        on_shelf.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["苹果"]
    );
    let mut renamed = goods_fields("苹果礼盒");
    renamed.sku = "SKU-9".into();
    store
        .update_goods(m.id, apple.id, &renamed, NOW + 1)
        .await
        .unwrap();
    let apple = store.get_goods(m.id, apple.id).await.unwrap();
    assert_eq!(
        (apple.name.as_str(), apple.sku.as_str(), apple.updated_at),
        ("苹果礼盒", "SKU-9", NOW + 1)
    );
    assert_eq!(apple.description, "<p>产地直发</p>");
    assert!(matches!(
        store.get_goods(other.id, apple.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update_goods(other.id, apple.id, &renamed, NOW).await,
        Err(StoreError::NotFound)
    ));
    let png = b"\x89PNG\r\n\x1a\nfake".to_vec();
    let first = store
        .add_goods_image(m.id, apple.id, "image/png", &png, NOW)
        .await
        .unwrap();
    let second = store
        .add_goods_image(m.id, apple.id, "image/jpeg", &[0xFF, 0xD8, 0xFF], NOW)
        .await
        .unwrap();
    assert_eq!(
        store.get_goods(m.id, apple.id).await.unwrap().image_ids,
        vec![first, second]
    );
    assert_eq!(
        store.get_goods_image(m.id, first).await.unwrap(),
        ("image/png".to_owned(), png.clone())
    );
    assert!(matches!(
        store.get_goods_image(other.id, first).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .add_goods_image(other.id, apple.id, "image/png", &png, NOW)
            .await
            .is_err(),
        "not another merchant's goods"
    );
    assert!(
        store
            .add_goods_image(m.id, peach.id, "text/html", b"<html>", NOW)
            .await
            .is_err(),
        "only image types"
    );
    store
        .delete_goods_image(m.id, apple.id, first)
        .await
        .unwrap();
    assert_eq!(
        store.get_goods(m.id, apple.id).await.unwrap().image_ids,
        vec![second]
    );
    for _ in 1..GOODS_IMAGES_MAX {
        store
            .add_goods_image(m.id, apple.id, "image/png", &png, NOW)
            .await
            .unwrap();
    }
    assert!(matches!(
        store
            .add_goods_image(m.id, apple.id, "image/png", &png, NOW)
            .await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn cards_are_linked_to_goods_by_filter(store: &dyn Store) {
    let m = merchant(store, "A").await;
    generate(store, m.id, quantity(10)).await;
    let [a, b, c] = ["苹果", "桃子", "苹果桃子礼盒"].map(goods_fields);
    let a = store.create_goods(m.id, &a, NOW).await.unwrap();
    let b = store.create_goods(m.id, &b, NOW).await.unwrap();
    let c = store.create_goods(m.id, &c, NOW).await.unwrap();
    let first_five = CardFilter {
        serial_to: Some(5),
        ..Default::default()
    };
    let first_two = CardFilter {
        serial_to: Some(2),
        ..Default::default()
    };
    let n = store
        .link_card_goods(
            m.id,
            &first_five,
            &[a.id, b.id, a.id],
            GoodsLinkMode::Replace,
            &audit(m.id, "link_goods"),
        )
        .await
        .unwrap();
    assert_eq!(n, 5);
    store
        .link_card_goods(
            m.id,
            &first_two,
            &[c.id],
            GoodsLinkMode::Add,
            &audit(m.id, "link_goods"),
        )
        .await
        .unwrap();
    let cards = store
        .list_cards(m.id, &CardFilter::default(), Page::default())
        .await
        .unwrap();
    let card_ids: Vec<i64> = cards.iter().map(|c| c.id).collect();
    let names = |card_idx: usize| {
        let card_id = card_ids[card_idx];
        async move {
            store
                .goods_of_card(m.id, card_id)
                .await
                .unwrap()
                .into_iter()
                .map(|g| g.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names(0).await, ["苹果", "桃子", "苹果桃子礼盒"]);
    assert_eq!(names(2).await, ["苹果", "桃子"]);
    assert!(names(5).await.is_empty());
    store
        .link_card_goods(
            m.id,
            &first_five,
            &[c.id],
            GoodsLinkMode::Replace,
            &audit(m.id, "link_goods"),
        )
        .await
        .unwrap();
    assert_eq!(names(0).await, ["苹果桃子礼盒"]);
    let other = merchant(store, "B").await;
    let foreign = store
        .create_goods(other.id, &goods_fields("别家"), NOW)
        .await
        .unwrap();
    let result = store
        .link_card_goods(
            m.id,
            &first_two,
            &[foreign.id],
            GoodsLinkMode::Add,
            &audit(m.id, "link_goods"),
        )
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)));
    assert_eq!(
        names(0).await,
        ["苹果桃子礼盒"],
        "a refused link changes nothing"
    );
    let (log, _) = store.list_audit(m.id, Page::default()).await.unwrap();
    assert_eq!(
        (log[0].entry.action.as_str(), log[0].entry.n_affected),
        ("link_goods", 5)
    );
    store
        .apply_card_op(m.id, &first_two, CardOp::Void, &audit(m.id, "void_cards"))
        .await
        .unwrap();
    assert_eq!(
        store
            .apply_card_op(
                m.id,
                &first_two,
                CardOp::Delete,
                &audit(m.id, "delete_cards")
            )
            .await
            .unwrap(),
        2,
        "linked cards can be deleted"
    );
    assert!(store.check_invariants().await.unwrap().is_empty());
}

/// The card list's 对应商品: every card of a page with its goods' names in
/// one call, only the merchant's own.
pub async fn the_goods_names_of_a_page_of_cards_come_in_one_call(store: &dyn Store) {
    let (m, cards, goods) = pickup_fixture(store, 3).await;
    let names = store
        .goods_names_of_cards(m, &[cards[1], cards[0], 999_999])
        .await
        .unwrap();
    assert_eq!(
        names,
        [
            (cards[1], "苹果".to_owned()),
            (cards[1], "桃子".to_owned()),
            (cards[0], "苹果".to_owned()),
            (cards[0], "桃子".to_owned()),
        ]
    );
    assert_eq!(goods.len(), 2);
    let other = merchant(store, "别家").await;
    assert!(store
        .goods_names_of_cards(other.id, &cards)
        .await
        .unwrap()
        .is_empty());
}
