//! The OpenAPI document of `/api/v1` and the signed `/open/v1`, built from one table of operations so
//! that ids follow `<verb>_<resource>` and the snapshot test sees every change.

use crate::extract::Json;
use crate::AppState;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use utoipa::openapi::path::ParameterIn;
use utoipa::{IntoParams, PartialSchema, ToSchema};

mod approvals;
mod coupons;
mod ecards;
mod insights;
mod members;
mod print_shops;
mod stored_value;

/// What one operation takes and answers beyond its path and headers, from
/// the wire types themselves (their `utoipa` derives), so the schema and
/// the type cannot drift apart.
struct Io<'a> {
    components: &'a mut Map<String, Value>,
    body: Option<Value>,
    query: Vec<Value>,
    responses: Map<String, Value>,
}

impl<'a> Io<'a> {
    fn new(components: &'a mut Map<String, Value>) -> Self {
        Self {
            components,
            body: None,
            query: Vec::new(),
            responses: Map::new(),
        }
    }

    /// A `$ref` to `T`'s component schema, adding it and the schemas it uses.
    fn schema<T: ToSchema>(&mut self) -> Value {
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        for (name, schema) in nested {
            self.add(
                name,
                serde_json::to_value(schema).expect("a schema serializes"),
            );
        }
        let name = T::name().into_owned();
        let schema =
            serde_json::to_value(<T as PartialSchema>::schema()).expect("a schema serializes");
        self.add(name.clone(), schema);
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// Adds a component schema; two different wire types with one name
    /// would silently describe one of them wrongly, so they fail the build
    /// of the document (and with it the tests).
    fn add(&mut self, name: String, schema: Value) {
        if let Some(known) = self.components.get(&name) {
            assert_eq!(known, &schema, "two wire types are both named {name}");
        }
        self.components.insert(name, schema);
    }

    /// A JSON request body of type `T`. Its example must be a `T` the
    /// server reads: the document is built in tests, so an example that
    /// drifted from the type fails them.
    fn json<T: ToSchema + serde::de::DeserializeOwned>(mut self) -> Self {
        let schema = self.schema::<T>();
        if let Some(example) = self.components[T::name().as_ref()].get("example") {
            if let Err(e) = serde_json::from_value::<T>(example.clone()) {
                panic!("the example of {} is not one: {e}", T::name());
            }
        }
        self.body =
            Some(json!({"required": true, "content": {"application/json": {"schema": schema}}}));
        self
    }

    /// Query parameters of type `T`.
    fn query<T: IntoParams>(mut self) -> Self {
        for parameter in T::into_params(|| Some(ParameterIn::Query)) {
            self.query
                .push(serde_json::to_value(parameter).expect("a parameter serializes"));
        }
        self
    }

    /// An answer with no body.
    fn empty(mut self, status: u16, description: &str) -> Self {
        self.responses
            .insert(status.to_string(), json!({"description": description}));
        self
    }

    /// A file download in one of `content_types`.
    fn file(mut self, description: &str, content_types: &[&str]) -> Self {
        let content: Map<String, Value> = content_types
            .iter()
            .map(|t| {
                (
                    t.to_string(),
                    json!({"schema": {"type": "string", "format": "binary", "contentMediaType": t}}),
                )
            })
            .collect();
        self.responses.insert(
            "200".into(),
            json!({"description": description, "content": content}),
        );
        self
    }

    /// A multipart upload whose fields `fields` names (each a string; `file` binary).
    fn multipart(mut self, required: &[&str], fields: &[&str]) -> Self {
        let properties: Map<String, Value> = fields
            .iter()
            .map(|f| {
                let schema = if *f == "file" {
                    json!({"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"})
                } else {
                    json!({"type": "string"})
                };
                (f.to_string(), schema)
            })
            .collect();
        self.body = Some(
            json!({"required": true, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": required, "properties": properties
            }}}}),
        );
        self
    }

    /// A JSON array of `T` with 200.
    fn answers_many<T: ToSchema>(mut self, description: &str) -> Self {
        let item = self.schema::<T>();
        self.json_answer(200, description, json!({"type": "array", "items": item}))
    }

    /// A page of `T` in the list envelope `{items, total, page, page_size}` with 200.
    fn answers_page<T: ToSchema>(mut self, description: &str) -> Self {
        let item = self.schema::<T>();
        let count = json!({"type": "integer", "format": "int64"});
        let page = json!({
            "type": "object",
            "required": ["items", "total", "page", "page_size"],
            "properties": {
                "items": {"type": "array", "items": item},
                "total": count, "page": count, "page_size": count
            }
        });
        self.json_answer(200, description, page)
    }

    /// A JSON answer of type `T` with `status`.
    fn answers<T: ToSchema>(mut self, status: u16, description: &str) -> Self {
        let schema = self.schema::<T>();
        self.json_answer(status, description, schema)
    }

    /// The 202 of an action 双人复核 held: the request waiting in 待审批,
    /// beside any 202 the operation answers already.
    fn or_held(mut self) -> Self {
        let held = self.schema::<crate::approvals::ApprovalDto>();
        let description =
            "Held for a second person's approval (双人复核): the request waiting in 待审批";
        let existing = self
            .responses
            .get("202")
            .map(|r| r["content"]["application/json"]["schema"].clone());
        match existing {
            Some(schema) => {
                let example = serde_json::to_value(
                    <crate::approvals::ApprovalDto as PartialSchema>::schema(),
                )
                .ok()
                .and_then(|s| s.get("example").cloned());
                let either = json!({"oneOf": [schema, held], "example": example});
                self.json_answer(202, &format!("Started, or {description}"), either)
            }
            None => self.json_answer(202, description, held),
        }
    }

    /// A JSON answer with `schema` and `status`.
    fn json_answer(mut self, status: u16, description: &str, schema: Value) -> Self {
        self.responses.insert(
            status.to_string(),
            json!({"description": description, "content": {"application/json": {"schema": schema}}}),
        );
        self
    }
}

/// The error codes an operation may answer with in the envelope, from what
/// it reads (a JSON body, a query, an upload, a signature) and what it
/// changes. Programs branch on these; the README's table says what each means.
fn error_codes(
    method: &str,
    path: &str,
    operation_id: &str,
    has_body: bool,
    has_query: bool,
) -> Vec<&'static str> {
    let signed = path.starts_with("/open/");
    let mut codes = vec!["internal"];
    if signed {
        codes.extend(["bad_signature", "nonce_reused"]);
        if method == "post" {
            codes.push("idempotency_mismatch");
        }
    } else if operation_id != "create_session" {
        codes.extend(["unauthenticated", "forbidden"]);
    }
    if path.contains('{') {
        codes.push("not_found");
    }
    if has_body || method != "get" {
        codes.extend([
            "malformed_json",
            "body_too_large",
            "unsupported_media_type",
            "unreadable_body",
        ]);
    }
    if has_body || has_query || method != "get" {
        codes.extend([
            "unknown_field",
            "missing_field",
            "invalid_field",
            "duplicate_field",
            "control_character",
            "too_long",
            "invalid",
        ]);
    }
    let specific: &[&str] = match operation_id {
        "create_session" => &["too_many_attempts"],
        "activate_cards" | "deactivate_cards" | "void_cards" | "restore_cards" | "delete_cards"
        | "purge_card_secrets" | "edit_cards" | "link_card_goods" | "export_cards"
        | "export_qr_codes" => &["no_cards_chosen", "exports_busy"],
        "create_export" => &["no_cards_chosen", "exports_busy"],
        "get_export_file" => &["export_not_ready"],
        "import_batch" | "import_shipments" => &["import_rows_invalid", "order_not_pending"],
        "check_pickup_card" => &["too_many_attempts"],
        "create_pickup" => &["too_many_attempts", "card_not_usable"],
        "cancel_order" => &["order_not_pending", "card_not_used"],
        "ship_orders" => &["order_not_pending"],
        "delete_code_template" => &["codes_changed"],
        "create_api_key" => &["api_keys_full"],
        "create_webhook_endpoint" => &["invalid"],
        "create_balance_adjustment" => &["insufficient_balance", "idempotency_mismatch"],
        "create_order_codes" => &["product_unavailable", "order_mismatch"],
        "create_card_sale" => &["batch_not_found", "out_of_stock", "order_mismatch"],
        "create_card_sale_refund" => &["sale_not_found"],
        "create_redemption" => &["code_refused", "locked"],
        "create_spend" => &["insufficient_balance"],
        "create_refund" => &["refund_exceeds_spend", "spend_not_found"],
        "get_customer_balance" | "list_customer_statement_signed" => &["customer_not_found"],
        _ => &[],
    };
    codes.extend(specific);
    codes.extend(coupons::error_codes(operation_id));
    codes.extend(members::error_codes(operation_id));
    codes.extend(ecards::error_codes(operation_id));
    codes.extend(approvals::error_codes(operation_id));
    if method == "post" && !signed && operation_id.starts_with("create_") {
        codes.push("conflict");
    }
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// An operation's request body, query parameters and success answers.
type Described = (Option<Value>, Vec<Value>, Map<String, Value>);

/// The request and success answers of an operation, by operation id.
fn describe(operation_id: &str, io: Io<'_>) -> Option<Described> {
    let io = describe_cards(operation_id, io)
        .or_else(|io| describe_pickups(operation_id, io))
        .or_else(|io| stored_value::describe(operation_id, io))
        .or_else(|io| describe_integration(operation_id, io))
        .or_else(|io| coupons::describe(operation_id, io))
        .or_else(|io| members::describe(operation_id, io))
        .or_else(|io| ecards::describe(operation_id, io))
        .or_else(|io| insights::describe(operation_id, io))
        .or_else(|io| approvals::describe(operation_id, io))
        .or_else(|io| print_shops::describe(operation_id, io))
        .ok()?;
    let io = if approvals::HELD.contains(&operation_id) {
        io.or_held()
    } else {
        io
    };
    Some((io.body, io.query, io.responses))
}

pub(crate) const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Sign-in, batches, cards and exports.
fn describe_cards<'a>(operation_id: &str, io: Io<'a>) -> Result<Io<'a>, Io<'a>> {
    Ok(match operation_id {
        "create_session" => io
            .json::<crate::auth::SignInRequest>()
            .answers::<crate::auth::MeDto>(200, "Signed in: the session cookie is set"),
        "delete_session" => io.empty(204, "Signed out"),
        "get_me" => io.answers::<crate::auth::MeDto>(200, "The signed-in staff member"),
        "list_batches" => io
            .query::<crate::lists::PageQuery>()
            .answers_page::<crate::batches::BatchDto>("Batches, newest first"),
        "create_batch" => io
            .json::<crate::batches::BatchRequest>()
            .answers::<crate::batches::CreatedBatchDto>(202, "Generation started"),
        "get_batch" => io.answers::<crate::batches::BatchDto>(200, "The batch"),
        "estimate_password_strength" => {
            io.json::<crate::batches::StrengthRequest>()
                .answers::<crate::batches::StrengthDto>(200, "Bits and warnings")
        }
        "import_batch" => io
            .multipart(
                &["file"],
                &[
                    "file",
                    "name",
                    "face_value_fen",
                    "valid_from",
                    "valid_until",
                    "remark",
                    "activate",
                ],
            )
            .answers::<crate::batches::BatchDto>(201, "The imported batch"),
        "get_import_template" => io
            .query::<crate::batches::FormatQuery>()
            .file("The import template", &[XLSX, "text/csv"]),
        "list_cards" => io
            .query::<crate::cards::ListQuery>()
            .answers_page::<crate::cards::CardDto>("Cards and their total"),
        "activate_cards" | "deactivate_cards" | "void_cards" | "restore_cards" | "delete_cards"
        | "purge_card_secrets" => io
            .json::<crate::cards::CardOpRequest>()
            .answers::<crate::lists::ChangedDto>(200, "How many cards changed"),
        "edit_cards" => io
            .json::<crate::cards::EditCardsRequest>()
            .answers::<crate::lists::ChangedDto>(200, "How many cards changed"),
        "export_cards" => io
            .query::<crate::cards::ExportQuery>()
            .file("The cards", &[XLSX, "text/csv"]),
        "export_qr_codes" => io
            .query::<crate::cards::ExportQuery>()
            .file("A zip of QR images", &["application/zip"]),
        "create_export" => io
            .json::<crate::export_jobs::ExportJobRequest>()
            .answers::<crate::export_jobs::ExportJobDto>(202, "The export started"),
        "get_export" => {
            io.answers::<crate::export_jobs::ExportJobDto>(200, "How the export stands")
        }
        "get_export_file" => io.file(
            "The finished export",
            &[XLSX, "text/csv", "application/zip"],
        ),
        _ => return Err(io),
    })
}

/// Goods, pickups, orders, 提货设置 and people.
fn describe_pickups<'a>(operation_id: &str, io: Io<'a>) -> Result<Io<'a>, Io<'a>> {
    Ok(match operation_id {
        "list_goods" => io.answers_many::<crate::goods::GoodsDto>("The goods"),
        "create_goods" => io
            .json::<crate::goods::GoodsRequest>()
            .answers::<crate::goods::GoodsDto>(201, "The new goods"),
        "get_goods" => io.answers::<crate::goods::GoodsDto>(200, "The goods"),
        "update_goods" => io
            .json::<crate::goods::GoodsRequest>()
            .empty(204, "Changed"),
        "create_goods_image" => io
            .multipart(&["file"], &["file"])
            .answers::<crate::goods::GoodsImageDto>(201, "The stored image"),
        "delete_goods_image" => io.empty(204, "Removed"),
        "link_card_goods" => io
            .json::<crate::goods::LinkGoodsRequest>()
            .answers::<crate::lists::ChangedDto>(200, "How many cards were linked"),
        "check_pickup_card" => io
            .json::<crate::pickup::CheckCardRequest>()
            .answers::<crate::pickup::CheckedCardDto>(
            200,
            "The card and the goods to choose from",
        ),
        "create_pickup" => io
            .json::<crate::pickup::CreatePickupRequest>()
            .answers::<crate::pickup::PickupOrderDto>(201, "The order"),
        "list_orders" => io
            .query::<crate::orders::OrderListQuery>()
            .answers_page::<crate::orders::OrderDto>("Orders and their total"),
        "get_order" => io.answers::<crate::orders::OrderDto>(200, "The order"),
        "cancel_order" => io.empty(204, "Cancelled; the card is usable again"),
        "ship_orders" => io
            .json::<crate::orders::ShipRequest>()
            .answers::<crate::lists::ChangedDto>(200, "How many orders were shipped"),
        "import_shipments" => io
            .multipart(&["file"], &["file"])
            .answers::<crate::lists::ChangedDto>(200, "How many orders were shipped"),
        "export_orders" => io
            .query::<crate::orders::OrderListQuery>()
            .file("The orders", &[XLSX]),
        "list_carriers" => io.json_answer(
            200,
            "Carrier names",
            json!({"type": "array", "items": {"type": "string"}, "example": ["顺丰速运", "同城闪送"]}),
        ),
        "create_carrier" => io
            .json::<crate::orders::CarrierRequest>()
            .answers::<crate::orders::CarrierDto>(201, "The carrier"),
        "get_pickup_settings" => {
            io.answers::<crate::pickup_settings::PickupSettingsDto>(200, "提货设置")
        }
        "update_pickup_settings" => io
            .json::<crate::pickup_settings::PickupSettingsDto>()
            .empty(204, "Saved"),
        "update_pickup_logo" => io.multipart(&["file"], &["file"]).empty(204, "Saved"),
        "list_distributors" => io.answers_many::<crate::people::DistributorDto>("Distributors"),
        "create_distributor" => io
            .json::<crate::people::DistributorRequest>()
            .answers::<crate::people::DistributorDto>(201, "The distributor"),
        "update_distributor" => io
            .json::<crate::people::DistributorRequest>()
            .empty(204, "Changed"),
        "list_staff" => io.answers_many::<crate::people::StaffDto>("Staff accounts"),
        "create_staff" => io
            .json::<crate::people::CreateStaffRequest>()
            .answers::<crate::people::StaffDto>(201, "The account"),
        "update_staff" => io
            .json::<crate::people::UpdateStaffRequest>()
            .empty(204, "Changed"),
        "list_roles" => io.answers_many::<crate::people::RoleDto>("Roles"),
        "create_role" => io
            .json::<crate::people::RoleRequest>()
            .answers::<crate::people::RoleDto>(201, "The role"),
        "update_role" => io
            .json::<crate::people::RoleRequest>()
            .empty(204, "Changed"),
        "list_audit_log" => io
            .query::<crate::audit::AuditQuery>()
            .answers_page::<crate::audit::AuditDto>("The audit log, newest first"),
        "export_audit_log" => io
            .query::<crate::audit::AuditQuery>()
            .file("The filtered audit log, newest first", &[XLSX]),
        "list_deleted_cards" => io.answers::<crate::audit::DeletedCardsDto>(200, "The numbers"),
        _ => return Err(io),
    })
}

/// API keys, webhook endpoints, their deliveries and the event log.
fn describe_integration<'a>(operation_id: &str, io: Io<'a>) -> Result<Io<'a>, Io<'a>> {
    Ok(match operation_id {
        "list_api_keys" => io.answers_many::<crate::api_keys::ApiKeyDto>("API keys"),
        "create_api_key" => io
            .json::<crate::api_keys::ApiKeyRequest>()
            .answers::<crate::api_keys::ApiKeyDto>(201, "The key with its secret, shown this once"),
        "revoke_api_key" => io.empty(204, "Revoked"),
        "list_webhook_endpoints" => {
            io.answers_many::<crate::webhooks::WebhookEndpointDto>("The endpoints")
        }
        "create_webhook_endpoint" => io
            .json::<crate::webhooks::WebhookEndpointRequest>()
            .answers::<crate::webhooks::WebhookEndpointDto>(
            201,
            "The endpoint with its secret, shown this once",
        ),
        "update_webhook_endpoint" => io
            .json::<crate::webhooks::WebhookEndpointRequest>()
            .empty(204, "Changed"),
        "delete_webhook_endpoint" => io.empty(204, "Deleted"),
        "rotate_webhook_endpoint_secret" => io.answers::<crate::webhooks::WebhookEndpointDto>(
            200,
            "The endpoint with its new secret, shown this once",
        ),
        "list_webhook_deliveries" => {
            io.query::<crate::webhooks::DeliveryQuery>()
                .answers_page::<crate::webhooks::WebhookDeliveryDto>("Deliveries, newest first")
        }
        "get_webhook_delivery" => {
            io.answers::<crate::webhooks::WebhookDeliveryDetailDto>(200, "The delivery")
        }
        "replay_webhook_delivery" => io.empty(204, "Queued to be sent now"),
        "get_sms_settings" => io.answers::<crate::sms::SmsSettingsDto>(200, "通知设置"),
        "update_sms_settings" => io
            .json::<crate::sms::SmsSettingsRequest>()
            .answers::<crate::sms::SmsSettingsDto>(200, "The saved settings"),
        "create_sms_test" => io
            .json::<crate::sms::SmsTestRequest>()
            .answers::<crate::sms::SmsTestDto>(200, "What the provider answered"),
        "list_sms_messages" => io
            .query::<crate::lists::PageQuery>()
            .answers_page::<crate::sms::SmsMessageDto>("Texts, newest first"),
        "get_waybill_settings" => io.answers::<crate::waybills::WaybillSettingsDto>(200, "电子面单设置"),
        "update_waybill_settings" => io
            .json::<crate::waybills::WaybillSettingsRequest>()
            .answers::<crate::waybills::WaybillSettingsDto>(200, "The saved settings"),
        "create_waybills" => io
            .json::<crate::waybills::WaybillsRequest>()
            .answers::<crate::waybills::WaybillsDto>(200, "Each order's waybill or error"),
        "get_erp_settings" => io.answers::<crate::erp::ErpSettingsDto>(200, "ERP 参数"),
        "update_erp_settings" => io
            .json::<crate::erp::ErpSettingsRequest>()
            .answers::<crate::erp::ErpSettingsDto>(200, "The saved settings"),
        "list_erp_pushes" => io
            .query::<crate::lists::PageQuery>()
            .answers_page::<crate::erp::ErpPushDto>("Pushes, newest first"),
        "list_card_sales" => io
            .query::<crate::lists::PageQuery>()
            .answers_page::<crate::card_sales::CardSaleView>("Card sales, newest first"),
        "create_card_sale" => io
            .json::<crate::card_sales::CardSaleRequest>()
            .answers::<crate::card_sales::CardSaleDto>(
                201,
                "The sale with every card's number and password (200 and the same cards when the order is reported again)",
            ),
        "create_card_sale_refund" => io.answers::<crate::card_sales::CardSaleDto>(
            200,
            "The refunded sale, its cards with their states now",
        ),
        "list_events" => io
            .query::<crate::lists::PageQuery>()
            .answers_page::<crate::webhooks::EventDto>("Events, newest first"),
        _ => return Err(io),
    })
}

/// (method, path, operation id, summary, permission needed).
/// Every operation: (method, path, operation id, summary, permission or
/// `signed`).
pub fn operations() -> impl Iterator<
    Item = &'static (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ),
> {
    OPERATIONS
        .iter()
        .chain(ecards::OPERATIONS)
        .chain(insights::OPERATIONS)
        .chain(approvals::OPERATIONS)
        .chain(print_shops::OPERATIONS)
}

const OPERATIONS: &[(&str, &str, &str, &str, &str)] = &[
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
    ("get", "/api/v1/audit-log", "list_audit_log", "The audit log, newest first, paged; filtered by actor, action, text (a card or order number) and dates", "audit.view"),
    ("get", "/api/v1/audit-log/export", "export_audit_log", "The filtered audit log as xlsx (操作日志导出), at most 100000 rows", "audit.view"),
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
    ("get", "/api/v1/webhook-endpoints", "list_webhook_endpoints", "事件推送: the merchant's webhook endpoints (secrets never shown again)", "api_keys.manage"),
    ("post", "/api/v1/webhook-endpoints", "create_webhook_endpoint", "Add a webhook endpoint (url, description, event_types, enabled); the answer holds its whsec_ secret, shown only once (at most 10 endpoints)", "api_keys.manage"),
    ("put", "/api/v1/webhook-endpoints/{endpoint_id}", "update_webhook_endpoint", "Change an endpoint's url, description, event types or enabled (enabling clears kaquan's disabling)", "api_keys.manage"),
    ("delete", "/api/v1/webhook-endpoints/{endpoint_id}", "delete_webhook_endpoint", "Delete an endpoint; its pending deliveries are given up", "api_keys.manage"),
    ("post", "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret", "rotate_webhook_endpoint_secret", "A new secret, shown only once; the old one keeps signing beside it for 24 hours", "api_keys.manage"),
    ("get", "/api/v1/webhook-deliveries", "list_webhook_deliveries", "The delivery log, newest first (endpoint_id, state, event_type)", "api_keys.manage"),
    ("get", "/api/v1/webhook-deliveries/{delivery_id}", "get_webhook_delivery", "One delivery with every attempt and the body it sends", "api_keys.manage"),
    ("post", "/api/v1/webhook-deliveries/{delivery_id}/replay", "replay_webhook_delivery", "Send a delivery again now, with the same webhook-id", "api_keys.manage"),
    ("get", "/api/v1/sms-settings", "get_sms_settings", "通知设置: the SMS provider, signature, switches A/B/C and their templates (the AccessKey secret never shown)", "api_keys.manage"),
    ("put", "/api/v1/sms-settings", "update_sms_settings", "Save 通知设置; leave access_key_secret empty to keep the saved one", "api_keys.manage"),
    ("post", "/api/v1/sms-settings/test", "create_sms_test", "Send a sample text now with the saved settings and the first template set; answers what the provider said", "api_keys.manage"),
    ("get", "/api/v1/sms-messages", "list_sms_messages", "The texts sent (or being retried), newest first, with the provider's answer", "api_keys.manage"),
    ("get", "/api/v1/waybill-settings", "get_waybill_settings", "电子面单设置: the sender, the channels' accounts and each carrier's channel (secrets never shown)", "orders.manage"),
    ("put", "/api/v1/waybill-settings", "update_waybill_settings", "Save 电子面单设置; leave sf_check_word / kuaidi100_secret empty to keep the saved ones", "orders.manage"),
    ("post", "/api/v1/orders/waybills", "create_waybills", "电子面单发货: make each pending order's waybill with the carrier's channel (once per order, however often asked) and ship it; a failure is reported for its order only", "orders.manage"),
    ("get", "/api/v1/erp-settings", "get_erp_settings", "ERP 参数: the 旺店通 account and switch (the appsecret never shown)", "api_keys.manage"),
    ("put", "/api/v1/erp-settings", "update_erp_settings", "Save ERP 参数; leave appsecret empty to keep the saved one", "api_keys.manage"),
    ("get", "/api/v1/erp-pushes", "list_erp_pushes", "The pushes of pickup orders to 旺店通, newest first, with its answer", "api_keys.manage"),
    ("get", "/api/v1/card-sales", "list_card_sales", "商城卖卡: the sales the mall reported, newest first, with their card numbers and states (never passwords)", "cards.view"),
    ("get", "/api/v1/events", "list_events", "The recorded events (the outbox), newest first", "api_keys.manage"),
    ("post", "/open/v1/orders", "create_order_codes", "A paid gift-card order (order_id, product_id, quantity, customer_id?): issues that many codes and returns them; the same order again returns the same codes", "signed"),
    ("post", "/open/v1/card-sales", "create_card_sale", "商城卖卡: a paid order for pickup cards (order_id, batch_id, quantity, phone?): activates that many unsold inactive cards of the batch and returns their numbers and passwords; the same order again returns the same cards", "signed"),
    ("post", "/open/v1/card-sales/{order_id}/refund", "create_card_sale_refund", "The order was refunded: its cards still active become inactive (and are never sold again); returns the sale", "signed"),
    ("post", "/open/v1/redemptions", "create_redemption", "Redeem a code (customer_id, code, client_ip?) into the customer's balance", "signed"),
    ("post", "/open/v1/spends", "create_spend", "Spend balance (customer_id, amount_fen, reference); never below zero", "signed"),
    ("post", "/open/v1/refunds", "create_refund", "Refund all or part of a spend (spend_id, amount_fen, reason?); never more than is left of it", "signed"),
    ("post", "/open/v1/login-links", "create_login_link", "A single-use, 5-minute link that signs the mall's customer in to the exchange centre", "signed"),
    ("get", "/open/v1/customers/{customer_id}/balance", "get_customer_balance", "A customer's balance by the mall's customer id", "signed"),
    ("get", "/open/v1/customers/{customer_id}/statement", "list_customer_statement_signed", "A customer's 余额明细 by the mall's customer id (page, page_size)", "signed"),
    ("get", "/open/v1/giftcard-centre", "get_giftcard_centre", "礼品卡设置 as the mall shows them: which entries and modules to show, names, picture addresses, exchange-centre address and the 礼品卡商品 on the shelf", "signed"),
    ("get", "/api/v1/coupon-programs", "list_coupon_programs", "优惠券: programs with their stock, claimed, verified and expired counts and claim links (state, kind, title filter)", "coupons.manage"),
    ("post", "/api/v1/coupon-programs", "create_coupon_program", "制券: a program of one of the five kinds with its quantity (库存), limits, validity, time and location rules; created as a draft", "coupons.manage"),
    ("get", "/api/v1/coupon-programs/{program_id}", "get_coupon_program", "One program", "coupons.manage"),
    ("put", "/api/v1/coupon-programs/{program_id}", "update_coupon_program", "Edit a program made on `version`: anything while a draft; once active the benefit stays and the validity only widens (held coupons follow)", "coupons.manage"),
    ("post", "/api/v1/coupon-programs/{program_id}/state", "update_coupon_program_state", "开始投放 / 暂停 / 结束 (state active, paused or ended)", "coupons.manage"),
    ("post", "/api/v1/coupon-programs/{program_id}/stock", "update_coupon_program_stock", "Add to (or take from) the stock, never below what was claimed", "coupons.manage"),
    ("post", "/api/v1/coupon-programs/{program_id}/logo", "update_coupon_program_logo", "Upload the program's logo (multipart field file; PNG/JPEG/WebP/GIF, at most 2 MB); logo_url then points at it", "coupons.manage"),
    ("post", "/api/v1/coupon-programs/{program_id}/cover", "update_coupon_program_cover", "Upload a 朋友的券's cover (封面; multipart field file; PNG/JPEG/WebP/GIF, at most 2 MB); cover_url then points at it; 开始投放 needs one", "coupons.manage"),
    ("post", "/api/v1/coupon-programs/{program_id}/issues", "create_coupon_issue", "定向发放: one coupon per recipient (phone or the mall's customer id), all or none with a per-row report", "coupons.manage"),
    ("get", "/api/v1/coupon-programs/{program_id}/qr", "get_coupon_program_qr", "The claim link's QR code for posters (format=png|svg)", "coupons.manage"),
    ("get", "/api/v1/locations", "list_locations", "门店", "coupons.verify"),
    ("post", "/api/v1/locations", "create_location", "Add a location (门店)", "coupons.manage"),
    ("put", "/api/v1/locations/{location_id}", "update_location", "Change a location, or close it (enabled false)", "coupons.manage"),
    ("get", "/api/v1/staff/{staff_id}/locations", "get_staff_locations", "The locations a 核销员 is bound to (empty: all)", "coupons.manage"),
    ("put", "/api/v1/staff/{staff_id}/locations", "update_staff_locations", "Bind a 核销员 to locations (empty: all)", "coupons.manage"),
    ("get", "/api/v1/coupon-settings", "get_coupon_settings", "Coupon settings (the undo window)", "coupons.manage"),
    ("put", "/api/v1/coupon-settings", "update_coupon_settings", "Save the coupon settings", "coupons.manage"),
    ("get", "/api/v1/coupon-verifications", "list_coupon_verifications", "核销记录, newest first (program, location, verifier, channel, dates)", "coupons.manage"),
    ("post", "/api/v1/coupon-verifications", "create_coupon_verification", "确认核销 of a scanned or typed code at a location, with the order amount; irreversible from the console", "coupons.verify"),
    ("post", "/api/v1/coupon-verifications/check", "check_coupon_code", "Step 1 of 核销: what the code is and whether it may be used here now, with the exact reason when not", "coupons.verify"),
    ("get", "/api/v1/coupon-verifications/export", "export_coupon_verifications", "核销记录 as xlsx (the same filters), at most 100000 rows", "coupons.manage"),
    ("get", "/api/v1/coupon-verifications/stats/export", "export_coupon_verification_stats", "数据与对账 as xlsx (the same filters)", "coupons.manage"),
    ("get", "/api/v1/coupon-verifications/stats", "get_coupon_verification_stats", "数据与对账: per day and location, and per verifier: count, order amounts, discounts, undone", "coupons.manage"),
    ("post", "/open/v1/coupons", "create_coupon", "获取卡券ID: issue a program's coupons for a paid order line (one per unit); the same line again returns the same coupons", "signed"),
    ("get", "/open/v1/customers/{customer_id}/coupons", "list_customer_coupons", "A customer's coupons by the mall's customer id (status usable|used|expired)", "signed"),
    ("post", "/open/v1/coupons/query", "check_coupon", "Query a code: its state, where and when it may be used, and the discount for order_amount_fen", "signed"),
    ("post", "/open/v1/coupon-verifications", "create_coupon_verification_signed", "核销 a code with its location, order reference and amount (the discount is returned)", "signed"),
    ("post", "/open/v1/coupon-verifications/{verification_id}/undo", "create_coupon_verification_undo", "Undo a verification within the merchant's window (default 60 minutes): the coupon is usable again", "signed"),
    ("post", "/open/v1/coupon-exchanges", "create_coupon_exchange", "使用卡券ID: a 兑换券 exchanges for its goods (goods_id checked)", "signed"),
    ("get", "/api/v1/credits", "get_credit_account", "券点账户: free and paid balances (in tenths of a 券点) and the unit prices of a 朋友的券's stock", "coupons.manage"),
    ("get", "/api/v1/credits/transactions", "list_credit_transactions", "The 券点 statement, newest first: every change with its amount, balance after and cause", "coupons.manage"),
    ("get", "/api/v1/credits/transactions/export", "export_credit_transactions", "The 券点 statement as xlsx (amounts as number cells in 券点), at most 100000 lines; audited", "coupons.manage"),
    ("get", "/api/v1/credits/purchases", "list_credit_purchases", "The merchant's purchases of paid 券点 (state filter)", "coupons.manage"),
    ("post", "/api/v1/credits/purchases", "create_credit_purchase", "Ask to buy paid 券点 (1 券点 = ¥1, at least 100); the operator confirms it once paid", "coupons.manage"),
    ("post", "/api/v1/credits/purchases/{purchase_id}/cancel", "cancel_credit_purchase", "Withdraw a purchase not yet confirmed", "coupons.manage"),
    ("get", "/api/v1/coupon-programs/{program_id}/stock-purchases", "list_stock_purchases", "A 朋友的券's stock bought with 券点, oldest first, with what each cost of each kind", "coupons.manage"),
    ("post", "/api/v1/coupon-programs/{program_id}/stock-purchases", "create_stock_purchase", "增加库存 of a 朋友的券 with 券点 (0.2 a unit, 0.4 with conditions; free ones first), atomic with the stock", "coupons.manage"),
    ("get", "/api/v1/credits/merchants", "list_merchant_credits", "平台运营: every merchant with its 券点 balances and purchases awaiting confirmation", "operator"),
    ("get", "/api/v1/credits/merchants/{merchant_id}/transactions", "list_merchant_credit_transactions", "平台运营: a merchant's 券点 statement, newest first", "operator"),
    ("post", "/api/v1/credits/merchants/{merchant_id}/grants", "create_credit_grant", "平台运营: give a merchant free 券点 (活动奖励), audited", "operator"),
    ("get", "/api/v1/credits/requests", "list_credit_requests", "平台运营: purchases of every merchant (state, merchant_id filters)", "operator"),
    ("post", "/api/v1/credits/merchants/{merchant_id}/purchases/{purchase_id}/confirm", "create_credit_purchase_confirmation", "平台运营: the purchase was paid; its 券点 go in, once", "operator"),
    ("post", "/api/v1/credits/merchants/{merchant_id}/purchases/{purchase_id}/cancel", "cancel_merchant_credit_purchase", "平台运营: cancel a purchase that was not paid", "operator"),
    ("get", "/api/v1/member-programs", "list_member_programs", "会员卡 programs with their 开卡 links and member counts", "members.view"),
    ("post", "/api/v1/member-programs", "create_member_program", "制卡: a 会员卡 program (face, discount, points rule, stored value, tiers, custom fields and links, number pattern, expiry, messages)", "members.manage"),
    ("get", "/api/v1/member-programs/{program_id}", "get_member_program", "A 会员卡 program", "members.view"),
    ("put", "/api/v1/member-programs/{program_id}", "update_member_program", "Edit a 会员卡 program (all fields; members keep their tier)", "members.manage"),
    ("post", "/api/v1/member-programs/{program_id}/state", "update_member_program_state", "启用/停用 a program: a disabled one takes no 开卡, payments or top-ups", "members.manage"),
    ("get", "/api/v1/members", "list_members", "Members (program, tier, phone/name/number search, activation dates, points and balance at least)", "members.view"),
    ("get", "/api/v1/members/export", "export_members", "The matching members as xlsx (at most 100000 rows)", "members.view"),
    ("get", "/api/v1/members/{member_id}", "get_member", "A member: number, tier, discount, points, balance", "members.view"),
    ("get", "/api/v1/members/{member_id}/points-statement", "list_member_points_statement", "积分明细 of a member", "members.view"),
    ("get", "/api/v1/members/{member_id}/operations", "list_member_operations", "A member's operations", "members.view"),
    ("post", "/api/v1/members/{member_id}/points-adjustments", "create_points_adjustment", "积分调整 with a reason (audited; an Idempotency-Key replays)", "members.manage"),
    ("get", "/api/v1/member-messages", "list_member_messages", "消息记录: one message per operation that moved points or balance (merged when both moved), newest first", "members.view"),
    ("get", "/api/v1/pay-gift-rules", "list_pay_gift_rules", "支付后赠会员卡 rules with where each stands (void: 已失效)", "members.view"),
    ("post", "/api/v1/pay-gift-rules", "create_pay_gift_rule", "Add a 支付后赠会员卡 rule: the card, 商户号 (one rule each), 不限额 or an amount range, the days it is live", "members.manage"),
    ("delete", "/api/v1/pay-gift-rules/{rule_id}", "delete_pay_gift_rule", "Delete a rule (it moves to 已失效)", "members.manage"),
    ("get", "/api/v1/pay-gift-sends", "list_pay_gift_sends", "The payments reported for 支付后赠会员卡 and what each led to", "members.view"),
    ("post", "/open/v1/payment-notifications", "create_payment_notification", "支付后赠会员卡: report a payment; a live matching rule sends the customer one claim message with the 开卡 link (once per payment id, never to a member)", "signed"),
    ("post", "/open/v1/members", "create_member", "开卡: the mall's customer becomes a member of a 会员卡 program (one card per customer per program; initial points given)", "signed"),
    ("get", "/open/v1/members/{customer_id}", "get_member_signed", "A member by the mall's customer id: number, tier, discount, points and balance", "signed"),
    ("get", "/open/v1/members/{customer_id}/points-statement", "list_member_points", "积分明细 of a member, newest first", "signed"),
    ("post", "/open/v1/payments", "create_payment", "买单: report a payment; the member discount, points used and balance spent as asked, points earned on what was paid, tier raised", "signed"),
    ("post", "/open/v1/payments/{payment_id}/refunds", "create_payment_refund", "Refund (part of) a payment: used points and balance come back and earned points are taken back in proportion", "signed"),
    ("post", "/open/v1/recharges", "create_recharge", "充值: prepaid stored value for a member, with its bonus posted apart", "signed"),
];

pub fn document() -> Value {
    let mut paths = Map::new();
    let mut components = Map::new();
    for (method, path, operation_id, summary, permission) in operations() {
        let mut operation = json!({
            "operationId": operation_id,
            "summary": summary,
            "x-permission": permission,
            "responses": {
                "default": {"description": "Error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        let signed = path.starts_with("/open/");
        // The open API names customers and orders by the mall's own (string) ids.
        let id_type = |name: &str| {
            if signed && name != "verification_id" {
                "string"
            } else {
                "integer"
            }
        };
        let mut parameters: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": id_type(name)}}))
            .collect();
        if signed {
            if *method == "post" {
                parameters.push(json!({"name": "Idempotency-Key", "in": "header", "required": !["create_login_link", "check_coupon"].contains(operation_id), "schema": {"type": "string", "maxLength": 255}}));
            }
            operation["security"] = json!([{"kaquanKey": [], "kaquanTimestamp": [], "kaquanNonce": [], "kaquanSignature": []}]);
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
        if let Some((body, query, responses)) = describe(operation_id, Io::new(&mut components)) {
            if let Some(body) = body {
                operation["requestBody"] = body;
            }
            if !query.is_empty() {
                let mut p = operation
                    .get("parameters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                p.extend(query);
                operation["parameters"] = Value::Array(p);
            }
            for (status, response) in responses {
                operation["responses"][status] = response;
            }
        }
        let codes = error_codes(
            method,
            path,
            operation_id,
            operation.get("requestBody").is_some(),
            operation["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["in"] == "query")),
        );
        operation["responses"]["default"]["description"] = json!(format!(
            "The error envelope; `code` is one of: {}",
            codes.join(", ")
        ));
        operation["x-error-codes"] = json!(codes);
        paths.entry(path.to_string()).or_insert_with(|| json!({}))[*method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "kaquan API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": schemas(components),
            "securitySchemes": security_schemes(),
        },
        "security": [{"session": []}]
    })
}

fn schemas(mut components: Map<String, Value>) -> Value {
    components.insert("Error".into(), json!({
        "type": "object",
        "example": {"error": {"code": "invalid_field", "message": "quantity: 应为整数"}},
                    "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"},
                        "details": {"type": "array", "items": {"type": "string"}},
                        "rows": {"type": "array", "items": {"type": "object", "properties": {"line": {"type": "integer"}, "message": {"type": "string"}}}}
                    }}}
    }));
    Value::Object(components)
}

fn security_schemes() -> Value {
    let header = |name: &str, description: &str| json!({"type": "apiKey", "in": "header", "name": name, "description": description});
    json!({
        "session": {"type": "apiKey", "in": "cookie", "name": "kaquan_session", "description": "The console's session (POST /api/v1/sessions); every request that changes something also sends X-CSRF-Token"},
        "kaquanKey": header("X-Kaquan-Key", "The public id of one of the merchant's API keys (开放接口密钥)"),
        "kaquanTimestamp": header("X-Kaquan-Timestamp", "Unix seconds, within 5 minutes of the server's clock"),
        "kaquanNonce": header("X-Kaquan-Nonce", "16–64 of [A-Za-z0-9_-], never reused"),
        "kaquanSignature": header("X-Kaquan-Signature", "Lowercase hex HMAC-SHA256 with the API secret over METHOD\\nPATH\\nQUERY\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body)); see the README"),
    })
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(|| async { Json(document()) }))
        .route("/api/reference", get(reference_page))
}

/// The same document as a page a person reads (API 参考), served by kaquan
/// itself: no CDN, no script.
async fn reference_page(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    crate::pages::render(
        &state,
        "api_reference.html",
        &crate::pages::Page::anonymous("API 参考"),
        reference_view(&document()),
    )
}

/// A schema's type as one short phrase: `string ≤ 64`, `array of X`, `X`.
fn type_text(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    let mut text = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "object".into(),
    };
    if let Some(items) = schema.get("items") {
        text = format!("array of {}", type_text(items));
    }
    for (key, label) in [
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("pattern", "pattern"),
        ("contentMediaType", ""),
    ] {
        if let Some(value) = schema.get(key) {
            let value = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            text = format!("{text}, {label} {value}");
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        text = format!("{text}, one of {}", values.join(", "));
    }
    text
}

/// The document as the reference page lists it: operations in table
/// order, then every schema with its fields.
fn reference_view(document: &Value) -> Value {
    let mut listed = Vec::new();
    for (method, path, operation_id, _, _) in operations() {
        let op = &document["paths"][path][method];
        let parameters: Vec<Value> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| json!({"name": p["name"], "in": p["in"], "required": p["required"], "type": type_text(&p["schema"]), "description": p["description"]}))
            .collect();
        let body = op["requestBody"]["content"].as_object().map(|content| {
            content
                .iter()
                .map(|(media, c)| json!({"media": media, "type": type_text(&c["schema"])}))
                .collect::<Vec<_>>()
        });
        let responses: Vec<Value> = op["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(status, r)| {
                let content: Vec<Value> = r["content"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(media, c)| json!({"media": media, "type": type_text(&c["schema"])}))
                    .collect();
                json!({"status": status, "description": r["description"], "content": content})
            })
            .collect();
        listed.push(json!({
            "method": method.to_uppercase(), "path": path, "id": operation_id,
            "summary": op["summary"], "permission": op["x-permission"],
            "signed": op.get("security").is_some(),
            "parameters": parameters, "body": body, "responses": responses,
            "errors": op["x-error-codes"],
        }));
    }
    let schemas: Vec<Value> = document["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, schema)| {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let fields: Vec<Value> = schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(field, s)| json!({"name": field, "type": type_text(s), "required": required.contains(&field.as_str()), "description": s["description"]}))
                .collect();
            json!({"name": name, "description": schema["description"], "fields": fields, "example": schema.get("example").map(|e| serde_json::to_string_pretty(e).unwrap_or_default())})
        })
        .collect();
    json!({"operations": listed, "schemas": schemas, "version": document["info"]["version"]})
}
