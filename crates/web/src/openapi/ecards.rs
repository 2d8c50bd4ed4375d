//! 电子卡密's operations (虚拟商品, 卡密库存, marketplace orders, evidence,
//! analytics and the marketplaces' signed contract): their rows of the
//! operation table, their error codes, bodies and answers.

use super::Io;

/// (method, path, operation id, summary, permission or `signed`).
pub(super) const OPERATIONS: &[(&str, &str, &str, &str, &str)] = &[
    ("get", "/api/v1/ecard-products", "list_ecard_products", "虚拟商品 with their stock counts (可用, 已发货, 已核销, 已过期, 已作废)", "ecards.manage"),
    ("post", "/api/v1/ecard-products", "create_ecard_product", "新建虚拟商品: name, face value, delivery form, 兑换说明, validity (days after delivery or a last day), own 核销码, 低库存预警, marketplace listings", "ecards.manage"),
    ("get", "/api/v1/ecard-products/{product_id}", "get_ecard_product", "A 虚拟商品 with its stock counts", "ecards.manage"),
    ("put", "/api/v1/ecard-products/{product_id}", "update_ecard_product", "Change a 虚拟商品 (delivered cards keep their validity)", "ecards.manage"),
    ("post", "/api/v1/ecard-products/{product_id}/stock", "create_ecard_stock_import", "Import secrets (multipart field file: xlsx/CSV, 卡号 and 卡密 columns): duplicates within the file or of stock skipped and listed, any wrong row refuses the file", "ecards.manage"),
    ("post", "/api/v1/ecard-products/{product_id}/stock/generate", "create_ecard_stock_codes", "Generate 16-character codes kaquan verifies itself as stock (兑换码 and 二维码 products)", "ecards.manage"),
    ("get", "/api/v1/ecard-products/{product_id}/imports", "list_ecard_stock_imports", "入库记录: each import's file, SHA-256, rows, who and when", "ecards.manage"),
    ("get", "/api/v1/ecard-stock", "list_ecard_stock", "卡密库存, masked (product_id, state filters)", "ecards.manage"),
    ("get", "/api/v1/ecard-stock/template", "get_ecard_stock_template", "The import template (xlsx)", "ecards.manage"),
    ("post", "/api/v1/ecard-stock/{stock_id}/reveal", "create_ecard_stock_reveal", "Read one secret in stock; audited", "ecards.reveal"),
    ("get", "/api/v1/marketplace-orders", "list_marketplace_orders", "电子卡密订单 with lines and delivered cards (masked) and their status; filters marketplace, order_id, product_id, status, out_of_stock, from, to", "ecards.manage"),
    ("get", "/api/v1/marketplace-orders/export", "export_marketplace_orders", "The filtered orders as xlsx, one row per card (masked); audited", "ecards.manage"),
    ("post", "/api/v1/marketplace-orders/deliveries", "create_waiting_deliveries", "补发缺货: deliver every 缺货 line that stock now covers", "ecards.manage"),
    ("get", "/api/v1/marketplace-orders/{order_ref}", "get_marketplace_order", "One order with its cards and delivery link", "ecards.manage"),
    ("post", "/api/v1/marketplace-orders/{order_ref}/cards/{card_id}/verification", "create_ecard_manual_verification", "手动核销 a delivered card (multipart: note, optional proof picture); audited", "ecards.manage"),
    ("get", "/api/v1/marketplace-orders/{order_ref}/cards/{card_id}/proof", "get_ecard_proof", "A manual 核销's proof picture", "ecards.manage"),
    ("get", "/api/v1/marketplace-orders/{order_ref}/evidence", "export_ecard_evidence", "证据保留: every step of the order (stock import with file digest, delivery, reveals with IP and user agent, 核销 and its way, refunds) as xlsx or PDF; audited", "ecards.manage"),
    ("get", "/api/v1/marketplace-orders/{order_ref}/delivery-qr", "get_delivery_qr", "The order's delivery link as a QR code (PNG, never cached)", "ecards.manage"),
    ("get", "/api/v1/ecard-analytics", "get_ecard_analytics", "数据驱动选品: per product and marketplace over a period, 核销率, time to redeem (median, p90, distribution), 退款率, 过期率", "ecards.manage"),
    ("get", "/api/v1/ecard-analytics/export", "export_ecard_analytics", "The analytics as xlsx", "ecards.manage"),
    ("post", "/open/v1/marketplace-orders", "create_marketplace_order", "A paid marketplace order: each line delivered from stock exactly once per (marketplace, order_id, line_id); answers the delivery link (201 first, 200 repeated); 缺货 lines wait", "signed"),
    ("post", "/open/v1/marketplace-orders/refunds", "create_marketplace_refund", "A refund of the order or one line: unused cards refunded (unseen back to stock, revealed voided); before its paid event it keeps the line from delivery", "signed"),
    ("post", "/open/v1/ecard-verifications", "create_ecard_verification", "核销 of a delivered card: 第三方核销回传 by card_number, or kaquan's own verification_code; a repeat answers the first (200)", "signed"),
];

/// The stable error codes an e-card operation may answer beyond the common ones.
pub(super) fn error_codes(operation_id: &str) -> &'static [&'static str] {
    match operation_id {
        "create_marketplace_order" => &["ecard_unknown_listing", "ecard_line_changed"],
        "create_ecard_verification" | "create_ecard_manual_verification" => {
            &["ecard_unknown", "ecard_refunded", "ecard_expired"]
        }
        "create_ecard_stock_import" | "create_ecard_stock_codes" => &["import_rows_invalid"],
        _ => &[],
    }
}

pub(super) fn describe<'a>(operation_id: &str, io: Io<'a>) -> Result<Io<'a>, Io<'a>> {
    use crate::ecard_analytics as a;
    use crate::ecard_open as open;
    use crate::ecard_orders as o;
    use crate::ecards as e;
    Ok(match operation_id {
        "list_ecard_products" => io.answers_many::<e::EcardProductDto>("Products, newest first"),
        "create_ecard_product" => io
            .json::<e::EcardProductRequest>()
            .answers::<e::EcardProductDto>(201, "The product"),
        "get_ecard_product" => io.answers::<e::EcardProductDto>(200, "The product"),
        "update_ecard_product" => io
            .json::<e::EcardProductRequest>()
            .answers::<e::EcardProductDto>(200, "The saved product"),
        "create_ecard_stock_import" => io
            .multipart(&["file"], &["file"])
            .answers::<e::StockImportResultDto>(
                201,
                "The import and the rows skipped as duplicates",
            ),
        "create_ecard_stock_codes" => io
            .json::<e::GenerateCodesRequest>()
            .answers::<e::StockImportResultDto>(201, "The generation, recorded as an import"),
        "list_ecard_stock_imports" => io.answers_many::<e::StockImportDto>("Imports, newest first"),
        "list_ecard_stock" => io
            .query::<e::StockQuery>()
            .answers_page::<e::StockItemDto>("Stock, newest first, masked"),
        "get_ecard_stock_template" => io.file("The import template", &[super::XLSX]),
        "create_ecard_stock_reveal" => io.answers::<e::RevealedStockDto>(200, "The secret"),
        "list_marketplace_orders" => io
            .query::<o::OrderQuery>()
            .answers_page::<open::MarketplaceOrderDto>("Orders, newest first"),
        "export_marketplace_orders" => io
            .query::<o::OrderQuery>()
            .file("The orders as xlsx", &[super::XLSX]),
        "create_waiting_deliveries" => {
            io.answers::<o::WaitingDeliveredDto>(200, "How many lines were delivered")
        }
        "get_marketplace_order" => io.answers::<open::MarketplaceOrderDto>(200, "The order"),
        "create_ecard_manual_verification" => io
            .multipart(&[], &["note", "proof"])
            .answers::<open::EcardVerificationDto>(
            201,
            "The verification (200 when it was verified before)",
        ),
        "get_ecard_proof" => io.file(
            "The proof picture",
            &["image/png", "image/jpeg", "image/webp", "image/gif"],
        ),
        "export_ecard_evidence" => io
            .query::<o::EvidenceQuery>()
            .file("The evidence", &[super::XLSX, "application/pdf"]),
        "get_delivery_qr" => io.file("The delivery link's QR code", &["image/png"]),
        "get_ecard_analytics" => io
            .query::<a::AnalyticsQuery>()
            .answers::<a::AnalyticsDto>(200, "The figures"),
        "export_ecard_analytics" => io
            .query::<a::AnalyticsQuery>()
            .file("The figures as xlsx", &[super::XLSX]),
        "create_marketplace_order" => io
            .json::<open::PaidOrderRequest>()
            .answers::<open::MarketplaceOrderDto>(201, "The order as delivered")
            .answers::<open::MarketplaceOrderDto>(200, "A repeat: the order as it stands"),
        "create_marketplace_refund" => {
            io.json::<open::MarketplaceRefundRequest>()
                .answers::<open::MarketplaceOrderDto>(200, "The order after the refund")
        }
        "create_ecard_verification" => {
            io.json::<open::EcardVerificationRequest>()
                .answers::<open::EcardVerificationDto>(201, "The verification (200 when repeated)")
        }
        _ => return Err(io),
    })
}
