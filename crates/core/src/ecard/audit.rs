//! 电子卡密's audit records, written once for both stores: their actions,
//! targets and words. An order's steps all name it as `ecard_order=ID`, so
//! its evidence is the records with that target.

use super::store::{EcardProduct, NewStock, OrderRefund, Reveal, VerifyEcard};
use crate::audit::{Actor, AuditEntry};

/// The target every step of an order is recorded under.
pub fn order_target(order_ref: i64) -> String {
    format!("ecard_order={order_ref}")
}

/// A product made or changed (`create_ecard_product`, `update_ecard_product`).
pub fn product(product: &EcardProduct, action: &str, actor: &Actor, now: i64) -> AuditEntry {
    AuditEntry::new(
        product.merchant_id,
        actor,
        action,
        format!("ecard_product={}", product.id),
        format!("name={}", product.fields.name),
        now,
    )
}

/// Stock imported: the file's name and SHA-256, its rows, what came in.
pub fn import(stock: &NewStock, import_id: i64) -> AuditEntry {
    AuditEntry::new(
        stock.merchant_id,
        &stock.actor,
        "import_ecard_stock",
        format!("ecard_product={} import={import_id}", stock.product_id),
        format!(
            "file={} sha256={} rows={} imported={}",
            stock.file_name.replace(char::is_whitespace, "_"),
            stock.file_digest,
            stock.n_rows,
            stock.items.len()
        ),
        stock.now,
    )
}

/// A secret in stock read by staff.
pub fn stock_revealed(
    merchant_id: i64,
    actor: &Actor,
    (product_id, stock_id, tail): (i64, i64, &str),
    now: i64,
) -> AuditEntry {
    AuditEntry::new(
        merchant_id,
        actor,
        "reveal_ecard_stock",
        format!("ecard_product={product_id} stock={stock_id}"),
        format!("card=…{tail}"),
        now,
    )
}

/// A line's delivery (`deliver_ecards`) or its wait for stock
/// (`ecard_out_of_stock`): the secrets taken, by their stock ids.
pub struct LineStep<'a> {
    pub merchant_id: i64,
    pub order_ref: i64,
    pub line_id: &'a str,
    pub product_id: i64,
    pub quantity: i64,
}

impl LineStep<'_> {
    pub fn delivered(&self, stock_ids: &[i64], actor: &Actor, now: i64) -> AuditEntry {
        let ids: Vec<String> = stock_ids.iter().map(i64::to_string).collect();
        AuditEntry::new(
            self.merchant_id,
            actor,
            "deliver_ecards",
            order_target(self.order_ref),
            format!(
                "line={} ecard_product={} cards={} stock={}",
                self.line_id,
                self.product_id,
                self.quantity,
                ids.join(",")
            ),
            now,
        )
    }

    pub fn out_of_stock(&self, actor: &Actor, now: i64) -> AuditEntry {
        AuditEntry::new(
            self.merchant_id,
            actor,
            "ecard_out_of_stock",
            order_target(self.order_ref),
            format!(
                "line={} ecard_product={} cards={}",
                self.line_id, self.product_id, self.quantity
            ),
            now,
        )
    }
}

/// A refunded line: how many secrets went back to stock, how many were voided.
pub fn refunded(
    refund: &OrderRefund,
    (order_ref, line_id): (i64, &str),
    (returned, voided): (i64, i64),
) -> AuditEntry {
    AuditEntry::new(
        refund.merchant_id,
        &refund.actor,
        "refund_ecards",
        order_target(order_ref),
        format!("line={line_id} returned={returned} voided={voided}"),
        refund.now,
    )
}

/// A 核销 and its way.
pub fn verified(v: &VerifyEcard, order_ref: i64, tail: &str) -> AuditEntry {
    AuditEntry::new(
        v.merchant_id,
        &v.actor,
        "verify_ecard",
        order_target(order_ref),
        format!(
            "card=…{tail} way={} proof={} note={}",
            v.way.code(),
            v.proof.is_some(),
            v.note
        ),
        v.now,
    )
}

/// A reveal with its IP and user agent.
pub fn revealed(r: &Reveal, order_ref: i64, tail: &str) -> AuditEntry {
    AuditEntry::new(
        r.merchant_id,
        &r.actor,
        "reveal_ecard",
        order_target(order_ref),
        format!("card=…{tail} ip={} ua={}", r.ip, r.user_agent),
        r.now,
    )
}
