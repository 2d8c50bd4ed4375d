//! 礼品卡, 兑换码, customers' balances and the open API's stored-value
//! operations: their bodies and answers, beside the rest in `openapi.rs`.

use super::{Io, XLSX};

/// 礼品卡, codes, customers, API keys and the open API.
pub(super) fn describe<'a>(operation_id: &str, io: Io<'a>) -> Result<Io<'a>, Io<'a>> {
    use crate::open_api as open;
    Ok(match operation_id {
        "get_giftcard_settings" => {
            io.answers::<crate::giftcards::GiftcardSettingsDto>(200, "礼品卡设置")
        }
        "update_giftcard_settings" => {
            io.json::<crate::giftcards::GiftcardSettingsDto>()
                .answers::<crate::giftcards::GiftcardSettingsDto>(200, "The saved settings")
        }
        "list_code_templates" => io
            .query::<crate::lists::ListQuery>()
            .answers_page::<crate::codes::CodeTemplateDto>("Templates"),
        "create_code_template" => io
            .json::<crate::codes::CodeTemplateRequest>()
            .answers::<crate::codes::CodeTemplateDto>(201, "The template"),
        "list_codes" => io
            .query::<crate::lists::ListQuery>()
            .answers_page::<crate::codes::MaskedCodeDto>("Codes, masked"),
        "get_code" => io
            .json::<crate::codes::LookupRequest>()
            .answers::<crate::codes::LookedUpCodeDto>(200, "The code"),
        "delete_code_template" => {
            io.json::<crate::codes::DeleteTemplateRequest>()
                .answers::<crate::codes::DeletedTemplateDto>(200, "How many codes were voided")
        }
        "list_giftcard_products" => {
            io.answers_many::<crate::giftcards::GiftcardProductDto>("礼品卡商品")
        }
        "create_giftcard_product" => {
            io.json::<crate::giftcards::GiftcardProductDto>()
                .answers::<crate::giftcards::GiftcardProductDto>(201, "The product")
        }
        "update_giftcard_product" => io
            .json::<crate::giftcards::GiftcardProductDto>()
            .empty(204, "Changed"),
        "list_customers" => io
            .query::<crate::lists::ListQuery>()
            .answers_page::<crate::customers::CustomerDto>("Customers"),
        "export_customers" => io
            .query::<crate::lists::ListQuery>()
            .file("Customers' balances", &[XLSX]),
        "list_customer_statement" => io
            .query::<crate::lists::ListQuery>()
            .answers_page::<crate::customers::TransactionView>("余额明细"),
        "create_balance_adjustment" => {
            io.json::<crate::customers::AdjustmentRequest>()
                .answers::<crate::customers::TransactionView>(201, "The adjustment")
        }
        "create_order_codes" => io
            .json::<open::IssueOrderRequest>()
            .answers::<open::MallOrderDto>(
                201,
                "The order's codes (the same codes when the order is reported again)",
            ),
        "create_redemption" => io
            .json::<open::RedeemRequest>()
            .answers::<open::TransactionDto>(201, "The redemption's ledger transaction"),
        "create_spend" => io
            .json::<open::SpendRequest>()
            .answers::<open::TransactionDto>(201, "The spend's ledger transaction"),
        "create_refund" => io
            .json::<open::RefundRequest>()
            .answers::<open::TransactionDto>(201, "The refund's ledger transaction"),
        "create_login_link" => io
            .json::<open::LoginLinkRequest>()
            .answers::<open::LoginLinkDto>(201, "The single-use link"),
        "get_customer_balance" => io.answers::<open::BalanceDto>(200, "The customer's balance"),
        "list_customer_statement_signed" => io
            .query::<open::PageQuery>()
            .answers::<open::StatementDto>(200, "余额明细, newest first"),
        "get_giftcard_centre" => io.answers::<open::GiftcardCentreDto>(200, "What the mall shows"),
        _ => return Err(io),
    })
}
