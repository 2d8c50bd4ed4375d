//! 双人复核's operations: the thresholds, 待审批 and its decisions, and the
//! 202 answer of every action the policy may hold.

use super::Io;

/// (method, path, operation id, summary, permission or `signed`).
pub(super) const OPERATIONS: &[(&str, &str, &str, &str, &str)] = &[
    ("get", "/api/v1/approval-policy", "get_approval_policy", "双人复核: the thresholds above which an action waits for a second person, and the daily activation caps", "staff.manage"),
    ("put", "/api/v1/approval-policy", "update_approval_policy", "Set the 双人复核 thresholds (audited); null or false lets an action through", "staff.manage"),
    ("get", "/api/v1/approvals", "list_approval_requests", "待审批: requests, newest first (state=pending|approved|rejected|done|failed|expired), each pending card request counted again now", "approvals.decide, cards.manage, cards.export_secrets, balances.adjust or api_keys.manage"),
    ("get", "/api/v1/approvals/{approval_id}", "get_approval_request", "One request, with its cards counted again now while it waits", "approvals.decide, cards.manage, cards.export_secrets, balances.adjust or api_keys.manage"),
    ("post", "/api/v1/approvals/{approval_id}/approve", "approve_approval_request", "Approve another person's request before it expires and run it as it was asked (a password export then waits for its requester to download it)", "approvals.decide and the action's own permission"),
    ("post", "/api/v1/approvals/{approval_id}/reject", "reject_approval_request", "Reject another person's request; nothing runs", "approvals.decide and the action's own permission"),
    ("get", "/api/v1/approvals/{approval_id}/file", "get_approval_request_file", "An approved password export, once, for the person who asked", "cards.export_secrets"),
    ("post", "/api/v1/approvals/{approval_id}/collect", "collect_approval_request", "An approved new webhook endpoint or rotated signing secret, made now and answered once (with its whsec_ secret) to the person who asked", "api_keys.manage"),
];

/// Operations a 双人复核 threshold may hold: they answer 202 with the request.
pub(super) const HELD: &[&str] = &[
    "activate_cards",
    "delete_cards",
    "export_cards",
    "create_export",
    "create_balance_adjustment",
    "create_webhook_endpoint",
    "update_webhook_endpoint",
    "rotate_webhook_endpoint_secret",
    "update_sms_settings",
];

/// The request and answers of an operation, or `io` back when it is not one of these.
pub(super) fn describe<'a>(operation_id: &str, io: Io<'a>) -> Result<Io<'a>, Io<'a>> {
    use crate::approvals as a;
    Ok(match operation_id {
        "get_approval_policy" => {
            io.answers::<crate::approval_policy::ApprovalPolicyDto>(200, "The thresholds")
        }
        "update_approval_policy" => {
            io.json::<crate::approval_policy::ApprovalPolicyDto>()
                .answers::<crate::approval_policy::ApprovalPolicyDto>(200, "The thresholds now")
        }
        "list_approval_requests" => io
            .query::<a::ApprovalQuery>()
            .answers_page::<a::ApprovalDto>("Requests and their total"),
        "get_approval_request" | "approve_approval_request" | "reject_approval_request" => {
            io.answers::<a::ApprovalDto>(200, "The request as it stands")
        }
        "collect_approval_request" => io.answers::<crate::webhooks::WebhookEndpointDto>(
            200,
            "The endpoint with its new secret, shown this once",
        ),
        "get_approval_request_file" => {
            io.file("The export with passwords", &[super::XLSX, "text/csv"])
        }
        _ => return Err(io),
    })
}

pub(super) fn error_codes(operation_id: &str) -> &'static [&'static str] {
    match operation_id {
        "approve_approval_request" | "reject_approval_request" => {
            &["own_request", "approval_expired", "approval_decided"]
        }
        "get_approval_request_file" | "collect_approval_request" => &["approval_not_approved"],
        _ => &[],
    }
}
