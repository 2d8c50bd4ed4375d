//! 概况 and 数据分析's operations, and the 预付卡政策 setting: their rows of the operation table,
//! bodies and answers. What each shows follows the caller's permissions,
//! as the console's pages do.

use super::Io;

/// (method, path, operation id, summary, permission or `signed`).
pub(super) const OPERATIONS: &[(&str, &str, &str, &str, &str)] = &[
    ("get", "/api/v1/overview", "get_overview", "概况: a period's figures across products (period=today|7d|30d), each with its daily series, what waits to ship, what is owed and what failed; each part only for a role that may open its list", "-"),
    ("get", "/api/v1/analytics", "get_analytics", "数据分析 of a period (from, to): per card batch (kind=batches, cards.view), 兑换码 template (codes, giftcards.manage) or coupon program (coupons, coupons.manage) issued, redeemed, time to redeem, lapsed, refunded and outstanding; per 会员卡 program (members, members.view) joins, points, top-ups and spending", "-"),
    ("get", "/api/v1/analytics/export", "export_analytics", "The same figures as xlsx; columns are only ever added at the end", "-"),
    ("get", "/api/v1/prepaid-policy", "get_prepaid_policy", "预付卡政策: whether it is on, and its rules", "staff.manage"),
    ("put", "/api/v1/prepaid-policy", "update_prepaid_policy", "Switch 预付卡政策 on or off (audited); while on, batches and 兑换码 templates over ¥1,000 or valid under 3 years are refused with the rule named", "staff.manage"),
];

/// The request and answers of an operation, or `io` back when it is not one of these.
pub(super) fn describe<'a>(operation_id: &str, io: Io<'a>) -> Result<Io<'a>, Io<'a>> {
    use crate::analytics as a;
    Ok(match operation_id {
        "get_overview" => io
            .query::<crate::dashboard::OverviewQuery>()
            .answers::<crate::dashboard::Overview>(200, "The figures of the period"),
        "get_analytics" => io
            .query::<a::AnalyticsQuery>()
            .answers::<a::AnalyticsView>(200, "The figures, newest instrument first"),
        "export_analytics" => io
            .query::<a::AnalyticsQuery>()
            .file("The figures as xlsx", &[super::XLSX]),
        "get_prepaid_policy" => io.answers::<crate::prepaid::PrepaidPolicyDto>(200, "The policy"),
        "update_prepaid_policy" => {
            io.json::<crate::prepaid::PrepaidPolicyRequest>()
                .answers::<crate::prepaid::PrepaidPolicyDto>(200, "The policy now")
        }
        _ => return Err(io),
    })
}
