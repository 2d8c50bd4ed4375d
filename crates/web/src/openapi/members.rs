//! The 会员卡 operations' bodies, queries and answers (the mall's and
//! POS's member contract), beside the rest in `openapi.rs`.

use super::Io;

/// The stable error codes a member operation may answer beyond the common ones.
pub(super) fn error_codes(operation_id: &str) -> &'static [&'static str] {
    match operation_id {
        "create_member" => &[
            "program_not_found",
            "program_disabled",
            "idempotency_mismatch",
        ],
        "get_member_signed" | "list_member_points" => &["not_a_member", "program_required"],
        "create_payment" => &[
            "not_a_member",
            "program_required",
            "program_disabled",
            "points_disabled",
            "stored_value_disabled",
            "insufficient_points",
            "insufficient_balance",
            "points_below_minimum_order",
            "points_over_maximum",
            "points_exceed_order",
            "balance_exceeds_order",
            "payment_exists",
            "idempotency_mismatch",
        ],
        "create_payment_refund" => &[
            "payment_not_found",
            "refund_exceeds_payment",
            "idempotency_mismatch",
        ],
        "create_recharge" => &[
            "not_a_member",
            "program_required",
            "program_disabled",
            "stored_value_disabled",
            "payment_exists",
            "idempotency_mismatch",
            "prepaid_balance_cap",
        ],
        "create_pay_gift_rule" => &["mch_id_taken", "program_not_found"],
        "create_points_adjustment" => &[
            "insufficient_points",
            "not_a_member",
            "idempotency_mismatch",
        ],
        _ => &[],
    }
}

/// 开卡, members, 买单, refunds, 充值 and points statements.
pub(super) fn describe<'a>(operation_id: &str, io: Io<'a>) -> Result<Io<'a>, Io<'a>> {
    use crate::member_open as open;
    use crate::member_programs as programs;
    use crate::members as staff;
    Ok(match operation_id {
        "list_member_programs" => {
            io.answers_many::<programs::MemberProgramDto>("会员卡, newest first")
        }
        "create_member_program" => io
            .json::<programs::MemberProgramRequest>()
            .answers::<programs::MemberProgramDto>(
            201,
            "The program, active, with its 开卡 link",
        ),
        "get_member_program" => io.answers::<programs::MemberProgramDto>(200, "The program"),
        "update_member_program_picture" => io
            .multipart(&["file"], &["file"])
            .answers::<programs::MemberProgramDto>(
            200,
            "The program with its new logo_url or background_pic_url",
        ),
        "update_member_program" => io
            .json::<programs::MemberProgramRequest>()
            .answers::<programs::MemberProgramDto>(200, "The saved program"),
        "update_member_program_state" => {
            io.json::<programs::MemberProgramStateRequest>()
                .answers::<programs::MemberProgramDto>(200, "The program in its new state")
        }
        "list_members" => io
            .query::<staff::MemberQuery>()
            .answers_page::<staff::MemberView>("Members, newest first"),
        "export_members" => io
            .query::<staff::MemberQuery>()
            .file("The matching members as xlsx", &[super::XLSX]),
        "get_member" => io.answers::<staff::MemberView>(200, "The member with points and balance"),
        "list_member_points_statement" => {
            io.query::<staff::PageQuery>()
                .answers_page::<crate::customers::TransactionView>("积分明细, newest first")
        }
        "list_member_operations" => io
            .query::<staff::PageQuery>()
            .answers_page::<staff::MemberOperationView>(
                "The member's operations (开卡, 买单, 退款, 充值, 积分调整), newest first",
            ),
        "list_pay_gift_rules" => {
            io.answers_many::<crate::pay_gift::PayGiftRuleDto>("Rules, newest first")
        }
        "create_pay_gift_rule" => io
            .json::<crate::pay_gift::PayGiftRuleRequest>()
            .answers::<crate::pay_gift::PayGiftRuleDto>(201, "The rule"),
        "delete_pay_gift_rule" => io.empty(204, "Deleted: the rule is 已失效"),
        "list_pay_gift_sends" => {
            io.query::<crate::pay_gift::SendQuery>()
                .answers_page::<crate::pay_gift::GiftSendDto>("Reported payments, newest first")
        }
        "create_payment_notification" => io
            .json::<crate::pay_gift::PaymentNotificationRequest>()
            .answers::<crate::pay_gift::GiftSendDto>(201, "What the payment led to")
            .answers::<crate::pay_gift::GiftSendDto>(
                200,
                "The first answer: the payment id was reported before",
            ),
        "list_member_messages" => io
            .query::<staff::PageQuery>()
            .answers_page::<staff::MemberMessageView>("消息记录, newest first"),
        "create_points_adjustment" => io
            .json::<staff::PointsAdjustmentRequest>()
            .answers::<staff::MemberOperationView>(201, "The adjustment"),
        "create_member" => io
            .json::<open::MemberRequest>()
            .answers::<open::MemberDto>(201, "The member, with their new card")
            .answers::<open::MemberDto>(200, "Already a member: the existing card"),
        "get_member_signed" => io
            .query::<open::MemberQuery>()
            .answers::<open::MemberDto>(200, "The member: tier, discount, points and balance"),
        "list_member_points" => io
            .query::<open::PointsQuery>()
            .answers::<open::PointsStatementDto>(200, "积分明细, newest first"),
        "create_payment" => io
            .json::<open::PaymentRequest>()
            .answers::<open::MemberOperationDto>(201, "What the payment did"),
        "create_payment_refund" => io
            .json::<open::PaymentRefundRequest>()
            .answers::<open::MemberOperationDto>(201, "What the refund gave back and took back"),
        "create_recharge" => io
            .json::<open::RechargeRequest>()
            .answers::<open::MemberOperationDto>(201, "The top-up and its bonus"),
        _ => return Err(io),
    })
}
