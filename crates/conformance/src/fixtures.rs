//! What the checks share: a merchant, an audit entry, a batch, a pickup
//! fixture, codes, ledger calls, and the timing comparison.

use crate::NOW;
use kaquan_core::batch::usecases::{self as usecases, BatchProgress};
use kaquan_core::secrets::MasterKey;
use kaquan_core::{
    audit::*, batch::*, card::*, code::*, giftcard::*, goods::*, ledger::*, merchant::*,
    pickup::order::*, pickup::*, store::*,
};
use std::sync::Arc;

pub(crate) fn audit(merchant_id: i64, action: &str) -> AuditEntry {
    AuditEntry {
        merchant_id,
        actor: Actor::cli(),
        action: action.into(),
        target: String::new(),
        detail: String::new(),
        n_affected: 0,
        created_at: NOW,
    }
}

pub(crate) async fn merchant(store: &dyn Store, name: &str) -> Merchant {
    store
        .create_merchant(name, NOW)
        .await
        .expect("create merchant")
}

pub(crate) fn master() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

/// Generates a batch through the real use case and returns it ready.
pub async fn generate(store: &dyn Store, merchant_id: i64, fields: BatchFields) -> Batch {
    let spec = BatchSpec::new(fields).expect("valid spec");
    let batch = usecases::start_generated_batch(store, merchant_id, &spec, "test", NOW)
        .await
        .expect("start batch");
    assert_eq!(batch.state, BatchState::Generating);
    let progress = Arc::new(BatchProgress::default());
    let n = usecases::fill_generated_batch(
        store,
        &master(),
        &batch,
        &spec,
        audit(merchant_id, "generate_batch"),
        progress.clone(),
        NOW,
    )
    .await
    .expect("fill batch");
    assert_eq!(n, spec.quantity);
    assert_eq!(progress.snapshot(), (spec.quantity, spec.quantity));
    store
        .get_batch(merchant_id, batch.id)
        .await
        .expect("get batch")
}

pub(crate) fn quantity(n: i64) -> BatchFields {
    BatchFields {
        quantity: n,
        ..Default::default()
    }
}

pub(crate) struct DuplicatingSource(pub(crate) u8);

impl CardSource for DuplicatingSource {
    fn next_chunk(&mut self) -> Vec<NewCard> {
        self.0 += 1;
        if self.0 > 3 {
            return Vec::new();
        }
        // The third chunk repeats a number from the first: the unique constraint fires mid-batch.
        let base = if self.0 == 3 {
            100
        } else {
            self.0 as i64 * 100
        };
        (0..100)
            .map(|i| NewCard {
                serial: self.0 as i64 * 1000 + i,
                number: format!("X{:06}", base + i),
                secret_digest: [1; 32],
                secret_sealed: vec![1, 2, 3],
            })
            .collect()
    }
}

/// A merchant with `n` active cards linked to two goods; returns (merchant, card ids, goods ids).
pub(crate) async fn pickup_fixture(store: &dyn Store, n: i64) -> (i64, Vec<i64>, Vec<i64>) {
    let m = merchant(store, "A").await;
    generate(store, m.id, quantity(n)).await;
    let apple = store
        .create_goods(m.id, &goods_fields("苹果"), NOW)
        .await
        .unwrap();
    let peach = store
        .create_goods(m.id, &goods_fields("桃子"), NOW)
        .await
        .unwrap();
    store
        .link_card_goods(
            m.id,
            &CardFilter::default(),
            &[apple.id, peach.id],
            GoodsLinkMode::Replace,
            &audit(m.id, "link_goods"),
        )
        .await
        .unwrap();
    store
        .apply_card_op(
            m.id,
            &CardFilter::default(),
            CardOp::Activate,
            &audit(m.id, "activate_cards"),
        )
        .await
        .unwrap();
    let cards = store
        .list_cards(m.id, &CardFilter::default(), Page::new(None, Some(200)))
        .await
        .unwrap();
    (
        m.id,
        cards.iter().map(|c| c.id).collect(),
        vec![apple.id, peach.id],
    )
}

pub(crate) fn consignee() -> Consignee {
    Consignee::new(
        "张三",
        "13800001234",
        "浙江省",
        "杭州市",
        "西湖区",
        "文三路 100 号",
    )
    .unwrap()
}

pub(crate) fn new_order(
    merchant_id: i64,
    card_id: i64,
    goods_id: i64,
    channel: Channel,
) -> NewPickupOrder {
    NewPickupOrder {
        merchant_id,
        card_id,
        goods_id,
        channel,
        consignee: (channel != Channel::AtLocation).then(consignee),
        appointment_date: Some("2026-12-01".into()),
        created_by: "customer".into(),
        created_at: NOW,
    }
}

/// Changes the chosen fields of the cards with serials `from..=to`.
pub(crate) async fn edit_serials(
    store: &dyn Store,
    merchant_id: i64,
    from: i64,
    to: i64,
    edit: CardEdit,
) {
    store
        .edit_cards(
            merchant_id,
            &CardFilter {
                serial_from: Some(from),
                serial_to: Some(to),
                ..Default::default()
            },
            &edit,
            &audit(merchant_id, "edit_cards"),
        )
        .await
        .unwrap();
}

/// Numbers and passwords of the merchant's cards, by serial.
pub(crate) async fn card_secrets(store: &dyn Store, merchant_id: i64) -> Vec<(String, String)> {
    let keys = master().merchant_keys(merchant_id, 1);
    store
        .cards_after(merchant_id, &CardFilter::default(), 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let sealed = row.secret_sealed.as_deref().unwrap();
            (
                row.card.number.clone(),
                keys.open(&row.card.number, sealed).unwrap(),
            )
        })
        .collect()
}

pub(crate) fn fields(name: &str, face_value_fen: i64) -> CodeTemplateFields {
    CodeTemplateFields {
        name: name.into(),
        face_value_fen,
        valid_from: None,
        valid_until: None,
    }
}

/// An offline batch of `n` codes; returns the template id and the plaintext codes.
pub(crate) async fn offline_codes(
    store: &dyn Store,
    merchant_id: i64,
    fields: CodeTemplateFields,
    n: usize,
) -> (i64, Vec<String>) {
    let codes = kaquan_core::code::new_codes(&master(), merchant_id, 1, n);
    let template = store
        .create_code_template(
            merchant_id,
            CodeKind::Offline,
            &fields,
            &codes,
            &audit(merchant_id, "create_code_template"),
        )
        .await
        .expect("create offline codes");
    assert_eq!((template.n_issued, template.n_used), (n as i64, 0));
    (
        template.id,
        plaintext_codes(store, merchant_id, template.id).await,
    )
}

pub(crate) async fn plaintext_codes(
    store: &dyn Store,
    merchant_id: i64,
    template_id: i64,
) -> Vec<String> {
    let keys = master().merchant_keys(merchant_id, 1);
    store
        .codes_after(merchant_id, template_id, 0, 1000)
        .await
        .expect("codes")
        .iter()
        .map(|c| open_code(&keys, c.sealed.as_deref().expect("sealed")).expect("opens"))
        .collect()
}

pub(crate) fn redeemer(merchant_id: i64, customer: &str, client: &str) -> CodeRedeemer {
    CodeRedeemer {
        merchant_id,
        customer: CustomerRef::External(customer.into()),
        client_key: client.into(),
        channel: Channel::Api,
        actor: Actor::cli(),
        now: NOW,
    }
}

pub(crate) async fn redeem(
    store: &dyn Store,
    settings: &GiftcardSettings,
    who: CodeRedeemer,
    code: &str,
) -> Result<LedgerTransaction, Refusal> {
    kaquan_core::code::redeem_code(store, &master(), settings, &ApiCall::default(), who, code)
        .await
        .expect("redeem")
        .result
}

/// A signed call under `key` (its body hashed as the key) with `nonce`.
pub(crate) fn signed_call(key: &str, nonce: &str) -> ApiCall {
    ApiCall {
        nonce: Some(NonceUse {
            api_key_id: "kq_test".into(),
            nonce: nonce.into(),
            signed_at: NOW,
        }),
        ..claim(key, key)
    }
}

pub(crate) fn claim(key: &str, body: &str) -> ApiCall {
    ApiCall {
        nonce: None,
        idempotency: Some(IdempotencyClaim {
            key: IdempotencyKey::parse(key).unwrap(),
            request_hash: body.into(),
        }),
    }
}

pub(crate) async fn customer_id(store: &dyn Store, merchant_id: i64, external_id: &str) -> i64 {
    store
        .ensure_customer(merchant_id, external_id, NOW)
        .await
        .expect("customer")
        .id
}

pub(crate) async fn balance(store: &dyn Store, merchant_id: i64, customer_id: i64) -> i64 {
    store
        .get_customer(merchant_id, customer_id)
        .await
        .expect("customer")
        .balance_fen
}

pub(crate) fn adjust(merchant_id: i64, customer_id: i64, delta_fen: i64) -> LedgerOp {
    LedgerOp::Adjust(AdjustBalance {
        merchant_id,
        customer_id,
        delta_fen,
        reason: "测试".into(),
        actor: Actor::cli(),
        now: NOW,
    })
}

pub(crate) fn spend(merchant_id: i64, customer: &str, amount_fen: i64) -> LedgerOp {
    LedgerOp::Spend(SpendBalance {
        merchant_id,
        customer: CustomerRef::External(customer.into()),
        amount_fen,
        reference: "order-1".into(),
        actor: Actor::cli(),
        now: NOW,
    })
}

pub(crate) fn refund(merchant_id: i64, spend_transaction_id: i64, amount_fen: i64) -> LedgerOp {
    LedgerOp::Refund(RefundSpend {
        merchant_id,
        spend_transaction_id,
        amount_fen,
        reason: "退货".into(),
        actor: Actor::cli(),
        now: NOW,
    })
}

pub(crate) async fn post(store: &dyn Store, op: LedgerOp) -> Result<LedgerTransaction, Refusal> {
    store
        .post_ledger(&ApiCall::default(), &op)
        .await
        .expect("post")
        .result
}

pub(crate) async fn assert_verified(store: &dyn Store) {
    assert_eq!(
        store.check_invariants().await.expect("verify"),
        Vec::<String>::new()
    );
    // Every audit record the test wrote, on whatever path, seals into a
    // chain that walks clean.
    kaquan_core::audit::chain::seal_all(store)
        .await
        .expect("seal");
    let (broken, _) = store.check_audit_chains().await.expect("walk");
    assert_eq!(broken, Vec::<String>::new());
}

/// A signed call: its nonce and, when given, its idempotency key and body.
pub(crate) fn signed(nonce: &str, key: Option<(&str, &str)>) -> ApiCall {
    ApiCall {
        nonce: Some(NonceUse {
            api_key_id: "kq_1".into(),
            nonce: nonce.into(),
            signed_at: NOW,
        }),
        idempotency: key.map(|(key, body)| claim(key, body).idempotency.unwrap()),
    }
}

pub(crate) async fn redeem_signed(
    store: &dyn Store,
    call: &ApiCall,
    who: CodeRedeemer,
    code: &str,
) -> Called<LedgerTransaction> {
    let settings = GiftcardSettings::default();
    kaquan_core::code::redeem_code(store, &master(), &settings, call, who, code)
        .await
        .expect("redeem")
}

pub(crate) fn goods_fields(name: &str) -> GoodsFields {
    GoodsFields::new(name, "<p>产地直发</p>", "SKU-1", "ERP-1", "规格: 5斤", true).unwrap()
}

/// A small deterministic generator, so a failing sequence can be replayed.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}
