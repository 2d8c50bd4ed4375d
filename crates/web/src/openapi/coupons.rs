//! The coupon operations' bodies, queries and answers (优惠券, 门店,
//! 核销记录 and the mall's coupon contract), beside the rest in `openapi.rs`.

use super::Io;

/// The stable error codes a coupon operation may answer beyond the common ones.
pub(super) fn error_codes(operation_id: &str) -> &'static [&'static str] {
    match operation_id {
        "create_coupon_program" | "update_coupon_program" => &["coupon_program_changed"],
        "update_coupon_program_state" => &["conflict"],
        "create_coupon_issue" | "create_coupon" => &[
            "import_rows_invalid",
            "coupon_program_not_found",
            "coupon_program_not_active",
            "coupon_program_paused",
            "coupon_program_expired",
            "coupon_out_of_stock",
            "customer_not_found",
            "order_mismatch",
            "idempotency_mismatch",
            "coupon_claim_only",
        ],
        "check_coupon_code"
        | "check_coupon"
        | "create_coupon_verification"
        | "create_coupon_verification_signed"
        | "create_coupon_exchange" => &[
            "coupon_unknown_code",
            "coupon_used",
            "coupon_not_yet_valid",
            "coupon_expired",
            "coupon_wrong_time",
            "coupon_wrong_location",
            "coupon_not_your_location",
            "coupon_location_required",
            "coupon_program_paused",
            "coupon_gifting",
            "coupon_below_threshold",
            "coupon_use_limit",
            "coupon_rotating_code_required",
            "coupon_not_an_exchange",
            "coupon_offline_only",
            "locked",
            "idempotency_mismatch",
        ],
        "create_coupon_verification_undo" => &[
            "coupon_verification_not_found",
            "coupon_verification_undone",
            "coupon_undo_window_passed",
            "idempotency_mismatch",
        ],
        "list_customer_coupons" => &["customer_not_found"],
        "create_stock_purchase" => &[
            "coupon_program_not_found",
            "coupon_not_shared",
            "coupon_program_closed",
            "coupon_stock_changed",
            "coupon_stock_units",
            "insufficient_credits",
        ],
        "cancel_credit_purchase"
        | "create_credit_purchase_confirmation"
        | "cancel_merchant_credit_purchase" => &["conflict"],
        "create_credit_grant" => &["credits_changed"],
        _ => &[],
    }
}

/// Programs, 投放, 门店, 核销 and the mall's coupon calls.
pub(super) fn describe<'a>(operation_id: &str, io: Io<'a>) -> Result<Io<'a>, Io<'a>> {
    use crate::coupon_issues as i;
    use crate::coupon_open as open;
    use crate::coupon_records as records;
    use crate::coupons as c;
    use crate::credits as cr;
    use crate::locations as l;
    Ok(match operation_id {
        "get_credit_account" => io.answers::<cr::CreditAccountDto>(200, "The 券点账户"),
        "export_credit_transactions" => io.file("券点明细 as xlsx", &[super::XLSX]),
        "list_credit_transactions" | "list_merchant_credit_transactions" => io
            .query::<crate::lists::PageQuery>()
            .answers_page::<cr::CreditTransactionDto>("The 券点 statement, newest first"),
        "list_credit_purchases" | "list_credit_requests" => io
            .query::<cr::PurchaseQuery>()
            .answers_page::<cr::CreditPurchaseDto>("Purchases, newest first"),
        "create_credit_purchase" => io
            .json::<cr::PurchaseRequest>()
            .answers::<cr::CreditPurchaseDto>(201, "The purchase, awaiting payment"),
        "cancel_credit_purchase" | "create_credit_purchase_confirmation" | "cancel_merchant_credit_purchase" => {
            io.answers::<cr::CreditPurchaseDto>(200, "The purchase, decided")
        }
        "list_stock_purchases" => io.answers_many::<cr::StockPurchaseDto>("Stock bought, oldest first"),
        "create_stock_purchase" => io
            .json::<cr::StockPurchaseRequest>()
            .answers::<cr::StockPurchaseDto>(201, "The stock bought and what it cost"),
        "list_merchant_credits" => io
            .query::<crate::lists::PageQuery>()
            .answers_page::<cr::MerchantCreditsDto>("Merchants by id"),
        "create_credit_grant" => io
            .json::<cr::GrantRequest>()
            .answers::<cr::CreditTransactionDto>(201, "The grant's statement line"),
        "list_coupon_programs" => io
            .query::<c::ProgramQuery>()
            .answers_page::<c::CouponProgramDto>("Programs, newest first, with stock and counts"),
        "create_coupon_program" => io
            .json::<c::CouponProgramRequest>()
            .answers::<c::CouponProgramDto>(201, "The program, a draft"),
        "get_coupon_program" => io.answers::<c::CouponProgramDto>(200, "The program"),
        "update_coupon_program" => io
            .json::<c::CouponProgramUpdate>()
            .answers::<c::CouponProgramDto>(200, "The saved program"),
        "update_coupon_program_state" => io
            .json::<c::ProgramStateRequest>()
            .answers::<c::CouponProgramDto>(200, "The program in its new state"),
        "update_coupon_program_cover" => io
            .multipart(&["file"], &["file"])
            .answers::<c::CouponProgramDto>(200, "The program with its new cover_url"),
        "update_coupon_program_logo" => io
            .multipart(&["file"], &["file"])
            .answers::<c::CouponProgramDto>(200, "The program with its new logo_url"),
        "update_coupon_program_stock" => io
            .json::<c::StockRequest>()
            .answers::<c::CouponProgramDto>(200, "The program with its new stock"),
        "create_coupon_issue" => io
            .json::<i::CouponIssueRequest>()
            .answers::<i::CouponIssueDto>(201, "How many were issued, and the stock left"),
        "get_coupon_program_qr" => io
            .query::<i::QrQuery>()
            .file("The claim link's QR code", &["image/png", "image/svg+xml"]),
        "list_locations" => io.answers_many::<l::LocationDto>("门店, by id"),
        "create_location" => io
            .json::<l::LocationRequest>()
            .answers::<l::LocationDto>(201, "The location"),
        "update_location" => io
            .json::<l::LocationRequest>()
            .answers::<l::LocationDto>(200, "The location"),
        "get_staff_locations" => io.answers::<l::StaffLocations>(200, "The staff member's locations"),
        "update_staff_locations" => io
            .json::<l::StaffLocations>()
            .answers::<l::StaffLocations>(200, "The staff member's locations"),
        "get_coupon_settings" => io.answers::<l::CouponSettingsDto>(200, "The coupon settings"),
        "update_coupon_settings" => io
            .json::<l::CouponSettingsDto>()
            .answers::<l::CouponSettingsDto>(200, "The saved settings"),
        "list_coupon_verifications" => io
            .query::<records::VerificationQuery>()
            .answers_page::<records::CouponVerificationView>("核销记录, newest first"),
        "create_coupon_verification" => io
            .json::<records::CouponVerifyRequest>()
            .answers::<records::CouponVerificationView>(201, "The verification"),
        "check_coupon_code" => io
            .json::<records::CouponCheckRequest>()
            .answers::<records::CouponCheckDto>(200, "The coupon and whether it may be used here now"),
        "export_coupon_verifications" => io
            .query::<records::VerificationQuery>()
            .file("核销记录 as xlsx", &[super::XLSX]),
        "export_coupon_verification_stats" => io
            .query::<records::VerificationQuery>()
            .file("数据与对账 as xlsx: a sheet per day × location, one per verifier", &[super::XLSX]),
        "get_coupon_verification_stats" => io
            .query::<records::VerificationQuery>()
            .answers::<records::VerificationStatsDto>(200, "数据与对账"),
        "create_coupon" => io
            .json::<open::CouponIssueOrderRequest>()
            .answers::<open::CouponIssueOrderDto>(
                201,
                "The line's coupons with their codes (200 and the same coupons when the line is reported again)",
            ),
        "list_customer_coupons" => io
            .query::<open::CustomerCouponsQuery>()
            .answers::<open::CustomerCouponsDto>(200, "The customer's coupons, newest first"),
        "check_coupon" => io
            .json::<open::CouponQueryRequest>()
            .answers::<open::CouponQueryDto>(200, "The coupon, whether it may be used, and the discount"),
        "create_coupon_verification_signed" => io
            .json::<open::CouponVerificationSignedRequest>()
            .answers::<open::CouponVerificationDto>(201, "The verification (200 when replayed)"),
        "create_coupon_verification_undo" => io
            .answers::<open::CouponVerificationDto>(200, "The undone verification"),
        "create_coupon_exchange" => io
            .json::<open::CouponExchangeRequest>()
            .answers::<open::CouponExchangeDto>(201, "The verification and the goods"),
        _ => return Err(io),
    })
}
