//! 数据分析 of every instrument (seed 004's 数据驱动, applied to card
//! batches, 兑换码 templates and coupon programs as to e-cards): of what
//! was issued in a period, how much was redeemed, how soon (median, p90 and
//! a distribution), how much lapsed unused, and what is still outstanding.
//! The stores give one fact per issued thing; the figures are made here.
//! 会员卡 programs are counted by what their members did in the period
//! (joined, points issued, used and lapsed, top-ups and spending) and
//! what they hold now, from the stores' sums per program and operation
//! kind.

use crate::member::operation::OperationKind;
use crate::StoreResult;

/// The distribution's buckets of time to redeem: upper bounds in seconds
/// (the last is open) and their labels.
pub const REDEEM_BUCKETS: [(i64, &str); 6] = [
    (3_600, "1 小时内"),
    (86_400, "1–24 小时"),
    (3 * 86_400, "1–3 天"),
    (7 * 86_400, "3–7 天"),
    (30 * 86_400, "7–30 天"),
    (i64::MAX, "30 天以上"),
];

/// The nearest-rank percentile `p` (0–100) of sorted values.
pub(crate) fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// The bucket of [`REDEEM_BUCKETS`] a wait falls in.
pub(crate) fn bucket_of(wait_seconds: i64) -> usize {
    REDEEM_BUCKETS
        .iter()
        .position(|(bound, _)| wait_seconds < *bound)
        .unwrap_or(REDEEM_BUCKETS.len() - 1)
}

/// What kind of thing is issued and redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstrumentKind {
    /// 卡券批次: cards activated, then picked up.
    Batch,
    /// 兑换码: codes issued, then redeemed into a balance.
    CodeTemplate,
    /// 优惠券: coupons claimed, then verified.
    CouponProgram,
}

impl InstrumentKind {
    pub const ALL: [InstrumentKind; 3] = [Self::Batch, Self::CodeTemplate, Self::CouponProgram];

    pub fn code(self) -> &'static str {
        match self {
            Self::Batch => "batches",
            Self::CodeTemplate => "codes",
            Self::CouponProgram => "coupons",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Batch => "卡券批次",
            Self::CodeTemplate => "兑换码",
            Self::CouponProgram => "优惠券",
        }
    }
}

/// One issued thing: a card activated, a code issued, a coupon claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueFact {
    /// The batch, template or program it belongs to.
    pub instrument_id: i64,
    pub issued_at: i64,
    pub redeemed_at: Option<i64>,
    /// Unused and past its validity, or voided.
    pub lapsed: bool,
    /// What it is worth while unused (a card's or code's face value; 0
    /// for a coupon, whose worth depends on the order).
    pub value_fen: i64,
}

/// The figures of one instrument's issued things.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstrumentFigures {
    pub instrument_id: i64,
    pub issued: i64,
    pub redeemed: i64,
    pub lapsed: i64,
    /// Still usable: neither redeemed nor lapsed.
    pub outstanding: i64,
    /// What the outstanding ones are worth.
    pub outstanding_fen: i64,
    /// Sold and then refunded in the period (a card sale's refund gives
    /// its cards back to inactive, so they are no longer issued).
    pub refunded: i64,
    /// Seconds from issue to redemption: the median and the 90th
    /// percentile (nearest rank), none when nothing was redeemed.
    pub median_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
    /// Redemptions per bucket of [`REDEEM_BUCKETS`].
    pub buckets: [i64; 6],
}

impl InstrumentFigures {
    /// The share of the issued ones redeemed, 0 when none was issued.
    pub fn redemption_rate(&self) -> f64 {
        if self.issued == 0 {
            0.0
        } else {
            self.redeemed as f64 / self.issued as f64
        }
    }
}

/// How many of an instrument's things were refunded in a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refunded {
    pub instrument_id: i64,
    pub count: i64,
}

/// The figures of each instrument among `facts` and `refunds`, by
/// instrument id.
pub fn figures(facts: &[IssueFact], refunds: &[Refunded]) -> Vec<InstrumentFigures> {
    let mut ids: Vec<i64> = facts.iter().map(|f| f.instrument_id).collect();
    ids.extend(refunds.iter().map(|r| r.instrument_id));
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let mut f = InstrumentFigures {
                instrument_id: id,
                refunded: refunds
                    .iter()
                    .filter(|r| r.instrument_id == id)
                    .map(|r| r.count)
                    .sum(),
                ..Default::default()
            };
            let mut waits = Vec::new();
            for fact in facts.iter().filter(|fact| fact.instrument_id == id) {
                f.issued += 1;
                match fact.redeemed_at {
                    Some(at) => {
                        f.redeemed += 1;
                        let wait = (at - fact.issued_at).max(0);
                        f.buckets[bucket_of(wait)] += 1;
                        waits.push(wait);
                    }
                    None if fact.lapsed => f.lapsed += 1,
                    None => {
                        f.outstanding += 1;
                        f.outstanding_fen += fact.value_fen;
                    }
                }
            }
            waits.sort_unstable();
            f.median_seconds = percentile(&waits, 50);
            f.p90_seconds = percentile(&waits, 90);
            f
        })
        .collect()
}

/// The sums of one kind of operation on one program's members in a
/// period, as the stores add them up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationTotals {
    pub program_id: i64,
    pub kind: OperationKind,
    pub count: i64,
    /// Points earned, of the operations that added points.
    pub points_gained: i64,
    /// Points taken (as a positive number), of those that took points.
    pub points_lost: i64,
    pub points_used: i64,
    pub balance_fen: i64,
    pub bonus_fen: i64,
    pub amount_fen: i64,
    pub discount_fen: i64,
}

/// What one program's members hold now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgramHoldings {
    pub program_id: i64,
    pub members: i64,
    /// Their points and stored value; a customer who holds cards of two
    /// programs counts in each, since points and balance are the
    /// customer's.
    pub points: i64,
    pub balance_fen: i64,
}

/// The figures of one 会员卡 program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramFigures {
    pub program_id: i64,
    /// 新会员: cards opened in the period.
    pub joined: i64,
    /// 积分发放: points earned (开卡赠送, 消费, 手动增加).
    pub points_issued: i64,
    /// 积分使用: points spent on payments, less those refunds gave back.
    pub points_used: i64,
    /// 积分过期.
    pub points_expired: i64,
    /// 积分扣回: points taken back by refunds and by hand.
    pub points_taken: i64,
    /// 充值 and its 赠送.
    pub recharged_fen: i64,
    pub bonus_fen: i64,
    /// 储值消费: balance spent on payments, less what refunds gave back.
    pub balance_spent_fen: i64,
    /// 会员消费: what members paid after their discount, less refunds.
    pub spend_fen: i64,
    pub holdings: ProgramHoldings,
}

/// The figures of each program among `totals` and `holdings`.
pub fn program_figures(
    totals: &[OperationTotals],
    holdings: &[ProgramHoldings],
) -> Vec<ProgramFigures> {
    let mut ids: Vec<i64> = totals.iter().map(|t| t.program_id).collect();
    ids.extend(holdings.iter().map(|h| h.program_id));
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let mut f = ProgramFigures {
                program_id: id,
                holdings: holdings
                    .iter()
                    .find(|h| h.program_id == id)
                    .copied()
                    .unwrap_or(ProgramHoldings {
                        program_id: id,
                        ..Default::default()
                    }),
                ..Default::default()
            };
            for t in totals.iter().filter(|t| t.program_id == id) {
                f.points_issued += t.points_gained;
                match t.kind {
                    OperationKind::Activate => f.joined += t.count,
                    OperationKind::Payment => {
                        f.points_used += t.points_used;
                        f.balance_spent_fen += t.balance_fen;
                        f.spend_fen += t.amount_fen - t.discount_fen;
                    }
                    OperationKind::Refund => {
                        f.points_used -= t.points_used;
                        f.balance_spent_fen -= t.balance_fen;
                        f.spend_fen -= t.amount_fen;
                    }
                    OperationKind::Recharge => {
                        f.recharged_fen += t.balance_fen;
                        f.bonus_fen += t.bonus_fen;
                    }
                    OperationKind::ExpirePoints => f.points_expired += t.points_lost,
                    OperationKind::AdjustPoints => {}
                }
                if !matches!(t.kind, OperationKind::ExpirePoints) {
                    f.points_taken += t.points_lost;
                }
            }
            f
        })
        .collect()
}

/// The facts analytics reads.
#[async_trait::async_trait]
pub trait AnalyticsStore: Send + Sync + 'static {
    /// Every thing of `kind` the merchant issued in `[from, to)`, with
    /// whether it lapsed by `now`.
    async fn issue_facts(
        &self,
        merchant_id: i64,
        kind: InstrumentKind,
        from: i64,
        to: i64,
        now: i64,
    ) -> StoreResult<Vec<IssueFact>>;

    /// How many things of `kind` were refunded in `[from, to)`, per
    /// instrument (card sales' refunds; nothing else is refunded).
    async fn refunded_counts(
        &self,
        merchant_id: i64,
        kind: InstrumentKind,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<Refunded>>;

    /// The sums of the operations on the merchant's members in
    /// `[from, to)`, per program and kind.
    async fn member_operation_totals(
        &self,
        merchant_id: i64,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<OperationTotals>>;

    /// What each program's members hold now.
    async fn program_holdings(&self, merchant_id: i64) -> StoreResult<Vec<ProgramHoldings>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(id: i64, redeemed_after: Option<i64>, lapsed: bool) -> IssueFact {
        IssueFact {
            instrument_id: id,
            issued_at: 1_000,
            redeemed_at: redeemed_after.map(|s| 1_000 + s),
            lapsed,
            value_fen: 500,
        }
    }

    #[test]
    fn figures_count_redeemed_lapsed_and_outstanding_per_instrument() {
        let facts = [
            fact(2, Some(60), false),
            fact(2, Some(2 * 86_400), false),
            fact(2, Some(40 * 86_400), false),
            fact(2, None, true),
            fact(2, None, false),
            fact(1, None, false),
        ];
        let all = figures(&facts, &[]);
        assert_eq!(all.len(), 2);
        let (one, two) = (&all[0], &all[1]);
        assert_eq!(one.instrument_id, 1);
        assert_eq!(
            (
                one.issued,
                one.redeemed,
                one.outstanding,
                one.outstanding_fen
            ),
            (1, 0, 1, 500)
        );
        assert_eq!((one.median_seconds, one.redemption_rate()), (None, 0.0));
        assert_eq!(
            (two.issued, two.redeemed, two.lapsed, two.outstanding),
            (5, 3, 1, 1)
        );
        assert_eq!(two.outstanding_fen, 500);
        assert_eq!(two.median_seconds, Some(2 * 86_400));
        assert_eq!(two.p90_seconds, Some(40 * 86_400));
        assert_eq!(two.buckets, [1, 0, 1, 0, 0, 1]);
        assert_eq!(two.redemption_rate(), 0.6);
        assert_eq!(InstrumentFigures::default().redemption_rate(), 0.0);
    }

    #[test]
    fn refunds_count_per_instrument_even_without_an_issue() {
        let refunds = [
            Refunded {
                instrument_id: 2,
                count: 3,
            },
            Refunded {
                instrument_id: 2,
                count: 1,
            },
            Refunded {
                instrument_id: 7,
                count: 5,
            },
        ];
        let all = figures(&[fact(2, None, false)], &refunds);
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].instrument_id, all[0].refunded), (2, 4));
        assert_eq!(all[0].issued, 1);
        assert_eq!(
            (all[1].instrument_id, all[1].refunded, all[1].issued),
            (7, 5, 0)
        );
    }

    fn totals(kind: OperationKind, n: i64) -> OperationTotals {
        OperationTotals {
            program_id: 1,
            kind,
            count: n,
            points_gained: 10 * n,
            points_lost: 3 * n,
            points_used: 5 * n,
            balance_fen: 100 * n,
            bonus_fen: 7 * n,
            amount_fen: 1_000 * n,
            discount_fen: 50 * n,
        }
    }

    #[test]
    fn program_figures_fold_each_kind_of_operation() {
        let all = [
            totals(OperationKind::Activate, 2),
            totals(OperationKind::Payment, 3),
            totals(OperationKind::Refund, 1),
            totals(OperationKind::Recharge, 4),
            totals(OperationKind::AdjustPoints, 5),
            totals(OperationKind::ExpirePoints, 6),
        ];
        let holdings = [ProgramHoldings {
            program_id: 1,
            members: 9,
            points: 80,
            balance_fen: 900,
        }];
        let f = &program_figures(&all, &holdings)[0];
        assert_eq!(f.joined, 2);
        assert_eq!(f.points_issued, 10 * (2 + 3 + 1 + 4 + 5 + 6));
        assert_eq!(f.points_used, 5 * 3 - 5);
        assert_eq!(f.points_expired, 3 * 6);
        assert_eq!(f.points_taken, 3 * (2 + 3 + 1 + 4 + 5));
        assert_eq!((f.recharged_fen, f.bonus_fen), (400, 28));
        assert_eq!(f.balance_spent_fen, 300 - 100);
        assert_eq!(f.spend_fen, 3 * 950 - 1_000);
        assert_eq!(f.holdings, holdings[0]);
    }

    #[test]
    fn a_program_with_members_and_no_activity_still_shows() {
        let holdings = [ProgramHoldings {
            program_id: 4,
            members: 1,
            points: 0,
            balance_fen: 0,
        }];
        let all = program_figures(&[], &holdings);
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].program_id, all[0].joined), (4, 0));
        let alone = program_figures(&[totals(OperationKind::Activate, 1)], &[]);
        assert_eq!(alone[0].holdings.program_id, 1);
        assert_eq!(alone[0].holdings.members, 0);
    }

    #[test]
    fn a_redemption_stamped_before_its_issue_waits_no_time() {
        let early = IssueFact {
            redeemed_at: Some(900),
            ..fact(1, None, false)
        };
        let f = &figures(&[early], &[])[0];
        assert_eq!((f.median_seconds, f.buckets[0]), (Some(0), 1));
    }

    #[test]
    fn kinds_read_back_from_their_codes() {
        for kind in InstrumentKind::ALL {
            assert_eq!(InstrumentKind::parse(kind.code()), Some(kind));
        }
        assert_eq!(InstrumentKind::parse("batch"), None);
    }

    #[test]
    fn percentiles_use_the_nearest_rank_and_buckets_their_bounds() {
        assert_eq!(percentile(&[], 50), None);
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 50), Some(5));
        assert_eq!(percentile(&ten, 90), Some(9));
        assert_eq!(
            [
                bucket_of(0),
                bucket_of(3_599),
                bucket_of(3_600),
                bucket_of(30 * 86_400)
            ],
            [0, 0, 1, 5]
        );
        assert_eq!(
            bucket_of(i64::MAX),
            5,
            "the open bucket takes even the longest wait"
        );
    }
}
