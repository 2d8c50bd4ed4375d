//! The OpenAPI document of `/api/v1` and the signed `/open/v1`, built from one table of operations so
//! that ids follow `<verb>_<resource>` and the snapshot test sees every change.

use crate::extract::Json;
use crate::AppState;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

/// (method, path, operation id, summary, permission needed).
pub const OPERATIONS: &[(&str, &str, &str, &str, &str)] = &[
    ("post", "/api/v1/sessions", "create_session", "Sign in with username and password; sets the session cookie and returns the CSRF token", "-"),
    ("delete", "/api/v1/sessions", "delete_session", "Sign out", "-"),
    ("get", "/api/v1/me", "get_me", "The signed-in staff member, permissions and CSRF token", "-"),
    ("get", "/api/v1/batches", "list_batches", "Batches, newest first, paged", "cards.view"),
    ("post", "/api/v1/batches", "create_batch", "Create a batch and generate its cards in the background (202)", "cards.create"),
    ("get", "/api/v1/batches/{batch_id}", "get_batch", "One batch with its state and generation progress", "cards.view"),
    ("post", "/api/v1/batches/password-strength", "estimate_password_strength", "Password strength in bits and warnings for a rule", "-"),
    ("post", "/api/v1/batches/import", "import_batch", "Import cards with their own numbers and passwords (multipart: file, name, face_value_fen, valid_from, valid_until, remark); all or nothing", "cards.create"),
    ("get", "/api/v1/batches/import-template", "get_import_template", "The import template (format=xlsx|csv)", "cards.create"),
    ("get", "/api/v1/cards", "list_cards", "Cards matching a filter, paged, with the total count", "cards.view"),
    ("post", "/api/v1/cards/activate", "activate_cards", "Activate the inactive cards matching a filter", "cards.manage"),
    ("post", "/api/v1/cards/deactivate", "deactivate_cards", "Deactivate the active cards matching a filter", "cards.manage"),
    ("post", "/api/v1/cards/void", "void_cards", "Void the unused cards matching a filter", "cards.manage"),
    ("post", "/api/v1/cards/restore", "restore_cards", "Restore the voided cards matching a filter", "cards.manage"),
    ("post", "/api/v1/cards/delete", "delete_cards", "Delete the voided cards matching a filter (irreversible; numbers kept in the audit log)", "cards.manage"),
    ("post", "/api/v1/cards/edit", "edit_cards", "Change only the chosen fields of the cards matching a filter", "cards.manage"),
    ("post", "/api/v1/cards/purge-secrets", "purge_card_secrets", "Drop the sealed password copies of the matching cards after printing", "cards.export_secrets"),
    ("get", "/api/v1/cards/export", "export_cards", "Export matching cards (format=xlsx|csv, with_secrets=true needs cards.export_secrets)", "cards.export"),
    ("get", "/api/v1/cards/qr-codes", "export_qr_codes", "A zip of QR images, one per matching card (image=svg|png)", "cards.export"),
    ("post", "/api/v1/exports", "create_export", "Start a background export: kind cards (format xlsx|csv, with_secrets) or qr_codes (image png|svg) of the cards a filter chooses; 202 with its status", "cards.export"),
    ("get", "/api/v1/exports/{export_id}", "get_export", "How a background export stands: running|ready|failed, n_done of n_total, download_url once ready (your own exports only)", "cards.export"),
    ("get", "/api/v1/exports/{export_id}/file", "get_export_file", "Download a finished background export (kept one hour; 409 export_not_ready while running)", "cards.export"),
    ("get", "/api/v1/goods", "list_goods", "The goods catalogue (提货商品) with image URLs", "cards.view"),
    ("post", "/api/v1/goods", "create_goods", "Add goods: name required; description, sku, erp_code, attributes, on_shelf", "goods.manage"),
    ("get", "/api/v1/goods/{goods_id}", "get_goods", "One goods", "cards.view"),
    ("put", "/api/v1/goods/{goods_id}", "update_goods", "Change goods fields or put it on/off the shelf", "goods.manage"),
    ("post", "/api/v1/goods/{goods_id}/images", "create_goods_image", "Upload an image (multipart field file; PNG/JPEG/WebP/GIF, at most 2 MB, 9 per goods)", "goods.manage"),
    ("delete", "/api/v1/goods/{goods_id}/images/{image_id}", "delete_goods_image", "Remove an image", "goods.manage"),
    ("post", "/api/v1/cards/link-goods", "link_card_goods", "对应商品: set (mode=replace) or add (mode=add) the goods of the cards matching a filter", "cards.manage"),
    ("post", "/api/v1/pickups/check", "check_pickup_card", "到店/电话提货 step 1: check card number + password; returns face value and the goods to choose from", "pickup.assist"),
    ("post", "/api/v1/pickups", "create_pickup", "Redeem a card for ONE of its goods (channel store|phone|api; consignee and appointment_date unless store)", "pickup.assist"),
    ("get", "/api/v1/orders", "list_orders", "订单列表: status, quick (today|tomorrow|day_after|shipped_today|shipped_yesterday), batch_id, goods_id, channel, date_from, date_until, card_number, phone; personal data masked without personal_data.view", "orders.manage"),
    ("get", "/api/v1/orders/{order_id}", "get_order", "One order", "orders.manage"),
    ("post", "/api/v1/orders/{order_id}/cancel", "cancel_order", "Cancel an unshipped order; its card becomes usable again", "orders.manage"),
    ("post", "/api/v1/orders/ship", "ship_orders", "Ship orders: shipments [{order_id, carrier, tracking_number}], all or none", "orders.manage"),
    ("post", "/api/v1/orders/ship-import", "import_shipments", "批量发货 from a filled xlsx/CSV (订单号, 物流公司, 运单号), all or none with a per-row report", "orders.manage"),
    ("get", "/api/v1/orders/export", "export_orders", "订单导出 of the filtered orders as xlsx", "orders.manage"),
    ("get", "/api/v1/carriers", "list_carriers", "Carriers: the common ones and the merchant's own", "orders.manage"),
    ("post", "/api/v1/carriers", "create_carrier", "Add the merchant's own carrier name (物流配置)", "orders.manage"),
    ("get", "/api/v1/pickup-settings", "get_pickup_settings", "提货设置", "orders.manage"),
    ("put", "/api/v1/pickup-settings", "update_pickup_settings", "Change 提货设置 (page texts, switch, appointment mode, blocked dates, redirect URL, attempt limits)", "orders.manage"),
    ("post", "/api/v1/pickup-settings/logo", "update_pickup_logo", "The pickup page's logo (multipart field file; PNG/JPEG/WebP/GIF, at most 2 MB)", "orders.manage"),
    ("get", "/api/v1/distributors", "list_distributors", "Distributors with their card counts", "cards.view"),
    ("post", "/api/v1/distributors", "create_distributor", "Add a distributor", "distributors.manage"),
    ("put", "/api/v1/distributors/{distributor_id}", "update_distributor", "Change a distributor", "distributors.manage"),
    ("get", "/api/v1/staff", "list_staff", "Staff accounts", "staff.manage"),
    ("post", "/api/v1/staff", "create_staff", "Add a staff account", "staff.manage"),
    ("put", "/api/v1/staff/{staff_id}", "update_staff", "Change a staff account (name, phone, role, password, disabled)", "staff.manage"),
    ("get", "/api/v1/roles", "list_roles", "Roles and their permissions", "staff.manage"),
    ("post", "/api/v1/roles", "create_role", "Add a role", "staff.manage"),
    ("put", "/api/v1/roles/{role_id}", "update_role", "Change a role's label and permissions", "staff.manage"),
    ("get", "/api/v1/audit-log", "list_audit_log", "The audit log, newest first, paged", "audit.view"),
    ("get", "/api/v1/audit-log/{audit_id}/deleted-cards", "list_deleted_cards", "The card numbers one delete removed", "audit.view"),
    ("get", "/api/v1/giftcard-settings", "get_giftcard_settings", "礼品卡设置", "giftcards.manage"),
    ("put", "/api/v1/giftcard-settings", "update_giftcard_settings", "Change 礼品卡设置 (activity switch, personal-centre entry, attempt limit, centre name, share title, description, phone login)", "giftcards.manage"),
    ("get", "/api/v1/code-templates", "list_code_templates", "线上/线下兑换码 (kind=online|offline) with issued, used and unused counts", "giftcards.manage"),
    ("post", "/api/v1/code-templates", "create_code_template", "Add a code template: kind, name, face_value_fen, valid_from, valid_until; offline also quantity (codes generated at once)", "giftcards.manage"),
    ("get", "/api/v1/code-templates/{template_id}/codes", "list_codes", "兑换记录 / 查看所有: every code's state, who redeemed it and when (codes masked); state=unused|used|voided filters", "giftcards.manage"),
    ("post", "/api/v1/codes/lookup", "get_code", "查码: the code in the body (case, spaces and hyphens do not matter) with its template, state, 使用人 and time; 404 when the merchant has no such code", "giftcards.manage"),
    ("post", "/api/v1/code-templates/{template_id}/delete", "delete_code_template", "Delete a template and void its unused codes; confirm_unused must equal the current unused count", "giftcards.manage"),
    ("get", "/api/v1/giftcard-products", "list_giftcard_products", "礼品卡商品", "giftcards.manage"),
    ("post", "/api/v1/giftcard-products", "create_giftcard_product", "Add a gift-card product linked to an online code template (关联兑换码)", "giftcards.manage"),
    ("put", "/api/v1/giftcard-products/{product_id}", "update_giftcard_product", "Change a gift-card product or put it on/off the shelf", "giftcards.manage"),
    ("get", "/api/v1/customers", "list_customers", "Customers with their balances (search by mall id, phone or nickname)", "balances.view"),
    ("get", "/api/v1/customers/export", "export_customers", "Every matching customer's balance as xlsx (search), audited", "balances.view"),
    ("get", "/api/v1/customers/{customer_id}/statement", "list_customer_statement", "余额明细 of a customer, newest first", "balances.view"),
    ("post", "/api/v1/customers/{customer_id}/adjustments", "create_balance_adjustment", "Adjust a balance by delta_fen with a reason (never below zero); optional Idempotency-Key header", "balances.adjust"),
    ("get", "/api/v1/api-keys", "list_api_keys", "The merchant's open-API keys", "api_keys.manage"),
    ("post", "/api/v1/api-keys", "create_api_key", "Create an API key; the answer holds its secret, shown only once (two may be active)", "api_keys.manage"),
    ("post", "/api/v1/api-keys/{id}/revoke", "revoke_api_key", "Stop accepting requests signed with a key", "api_keys.manage"),
    ("post", "/open/v1/orders", "create_order_codes", "A paid gift-card order (order_id, product_id, quantity, customer_id?): issues that many codes and returns them; the same order again returns the same codes", "signed"),
    ("post", "/open/v1/redemptions", "create_redemption", "Redeem a code (customer_id, code, client_ip?) into the customer's balance", "signed"),
    ("post", "/open/v1/spends", "create_spend", "Spend balance (customer_id, amount_fen, reference); never below zero", "signed"),
    ("post", "/open/v1/refunds", "create_refund", "Refund all or part of a spend (spend_id, amount_fen, reason?); never more than is left of it", "signed"),
    ("post", "/open/v1/login-links", "create_login_link", "A single-use, 5-minute link that signs the mall's customer in to the exchange centre", "signed"),
    ("get", "/open/v1/customers/{customer_id}/balance", "get_customer_balance", "A customer's balance by the mall's customer id", "signed"),
    ("get", "/open/v1/customers/{customer_id}/statement", "list_customer_statement_signed", "A customer's 余额明细 by the mall's customer id (page, page_size)", "signed"),
    ("get", "/open/v1/giftcard-centre", "get_giftcard_centre", "礼品卡设置 as the mall shows them: which entries and modules to show, names, picture addresses, exchange-centre address and the 礼品卡商品 on the shelf", "signed"),
];

pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, operation_id, summary, permission) in OPERATIONS {
        let mut operation = json!({
            "operationId": operation_id,
            "summary": summary,
            "x-permission": permission,
            "responses": {
                "default": {"description": "Error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        let signed = path.starts_with("/open/");
        // The open API names customers by the mall's own (string) ids.
        let id_type = if signed { "string" } else { "integer" };
        let mut parameters: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": id_type}}))
            .collect();
        if signed {
            for header in [
                "X-Kaquan-Key",
                "X-Kaquan-Timestamp",
                "X-Kaquan-Nonce",
                "X-Kaquan-Signature",
            ] {
                parameters.push(json!({"name": header, "in": "header", "required": true, "schema": {"type": "string"}}));
            }
            if *method == "post" {
                parameters.push(json!({"name": "Idempotency-Key", "in": "header", "required": *operation_id != "create_login_link", "schema": {"type": "string", "maxLength": 255}}));
            }
            operation["security"] = json!([{"signature": []}]);
        }
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if !signed && *method != "get" && *method != "delete" && *operation_id != "create_session" {
            operation["parameters"] = {
                let mut p = operation
                    .get("parameters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                p.push(json!({"name": "X-CSRF-Token", "in": "header", "required": true, "schema": {"type": "string"}}));
                Value::Array(p)
            };
        }
        paths.entry(path.to_string()).or_insert_with(|| json!({}))[*method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "kaquan API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"},
                        "details": {"type": "array", "items": {"type": "string"}},
                        "rows": {"type": "array", "items": {"type": "object", "properties": {"line": {"type": "integer"}, "message": {"type": "string"}}}}
                    }}}
                }
            },
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "kaquan_session"},
                "signature": {"type": "apiKey", "in": "header", "name": "X-Kaquan-Signature", "description": "HMAC-SHA256 (hex) with the API secret over METHOD\\nPATH\\nQUERY\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body)); see the README"}
            }
        },
        "security": [{"session": []}]
    })
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(|| async { Json(document()) }))
}
