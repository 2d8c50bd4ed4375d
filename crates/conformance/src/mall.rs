//! Mall orders.

#[allow(unused_imports)]
use crate::fixtures::*;
use crate::NOW;
use kaquan_core::{audit::*, code::*, giftcard::*, ledger::*, mall::*, store::*};

pub async fn mall_orders_issue_codes_once(store: &dyn Store) {
    let m = merchant(store, "A").await.id;
    let online = store
        .create_code_template(
            m,
            CodeKind::Online,
            &fields("线上卡", 20_000),
            &[],
            &audit(m, "create_code_template"),
        )
        .await
        .unwrap();
    let product = store
        .create_giftcard_product(
            m,
            &GiftcardProductFields {
                name: "200元礼品卡".into(),
                template_id: online.id,
                price_fen: 19_000,
                on_shelf: true,
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(product.face_value_fen, 20_000);
    assert!(product.template_live, "its template exists");
    let request = |order_id: &str, quantity: i64| IssueOrderCodesRequest {
        merchant_id: m,
        order_id: order_id.into(),
        product_id: product.id,
        quantity,
        customer: Some(CustomerRef::External("buyer".into())),
        actor: Actor::cli(),
        now: NOW,
    };
    let issue = |order_id: &'static str, quantity: i64| {
        let request = request(order_id, quantity);
        async move {
            kaquan_core::mall::issue_order_codes(store, &master(), &ApiCall::default(), request)
                .await
                .unwrap()
        }
    };
    let first = issue("o1", 2).await;
    let order = first.result.clone().expect("issued");
    assert!(!first.replayed);
    assert_eq!(order.codes.len(), 2);
    let again = issue("o1", 2).await;
    assert!(again.replayed);
    assert_eq!(again.result, first.result, "the same codes, nothing new");
    assert_eq!(issue("o1", 3).await.result, Err(Refusal::OrderMismatch));
    assert_eq!(
        store
            .get_code_template(m, online.id)
            .await
            .unwrap()
            .n_issued,
        2
    );
    // The buyer redeems one of them; the order then shows it used.
    let keys = master().merchant_keys(m, 1);
    let code = open_code(&keys, order.codes[0].sealed.as_deref().unwrap()).unwrap();
    redeem(
        store,
        &GiftcardSettings::default(),
        redeemer(m, "buyer", "ip"),
        &code,
    )
    .await
    .unwrap();
    let buyer = customer_id(store, m, "buyer").await;
    let orders = store.list_customer_orders(m, buyer).await.unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[0].codes.iter().map(|c| c.state).collect::<Vec<_>>(),
        [CodeState::Used, CodeState::Unused]
    );
    store
        .update_giftcard_product(
            m,
            product.id,
            &GiftcardProductFields {
                on_shelf: false,
                ..product.fields.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        issue("o2", 1).await.result,
        Err(Refusal::ProductUnavailable)
    );
    let products = store.list_giftcard_products(m).await.unwrap();
    assert_eq!(products.len(), 1);
    assert!(products[0].template_live);
    // Deleting the template (voiding its one unused code) leaves the
    // product, which says so.
    store
        .delete_code_template(m, online.id, 1, &audit(m, "delete_code_template"))
        .await
        .unwrap();
    let products = store.list_giftcard_products(m).await.unwrap();
    assert!(!products[0].template_live, "the template is gone");
    assert_verified(store).await;
}
