//! 数据驱动选品: per product and per marketplace over a period, the share
//! of delivered cards used (核销率), how soon they are used (median, p90
//! and a distribution), and the shares refunded and expired unused.

use super::{DeliveredStatus, DeliveryFact, Marketplace};

pub use crate::analytics::REDEEM_BUCKETS;
use crate::analytics::{bucket_of, percentile};

/// The figures of one group of delivered cards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub delivered: i64,
    pub verified: i64,
    pub refunded: i64,
    pub expired: i64,
    /// Seconds from delivery to use: the median and the 90th percentile
    /// (nearest rank), none when nothing was used.
    pub median_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
    /// Uses per bucket of [`REDEEM_BUCKETS`].
    pub buckets: [i64; 6],
}

impl Figures {
    /// A share of the delivered cards, 0 when none was delivered.
    pub fn rate(&self, n: i64) -> f64 {
        if self.delivered == 0 {
            0.0
        } else {
            n as f64 / self.delivered as f64
        }
    }
}

/// The figures of `facts` at `now`.
pub fn figures<'a>(facts: impl IntoIterator<Item = &'a DeliveryFact>, now: i64) -> Figures {
    let mut f = Figures::default();
    let mut waits = Vec::new();
    for fact in facts {
        f.delivered += 1;
        match fact.facts.status(now) {
            DeliveredStatus::Verified => {
                f.verified += 1;
                let wait = (fact.facts.verified_at.unwrap_or(fact.delivered_at)
                    - fact.delivered_at)
                    .max(0);
                waits.push(wait);
                f.buckets[bucket_of(wait)] += 1;
            }
            DeliveredStatus::Refunded => f.refunded += 1,
            DeliveredStatus::Expired => f.expired += 1,
            DeliveredStatus::Unverified => {}
        }
    }
    waits.sort_unstable();
    f.median_seconds = percentile(&waits, 50);
    f.p90_seconds = percentile(&waits, 90);
    f
}

/// Figures by product id and by marketplace.
pub type Breakdown = (Vec<(i64, Figures)>, Vec<(Marketplace, Figures)>);

/// The figures by product (ids ascending) and by marketplace (in
/// [`Marketplace::ALL`]'s order), groups without deliveries left out.
pub fn by_product_and_marketplace(facts: &[DeliveryFact], now: i64) -> Breakdown {
    let products: std::collections::BTreeSet<i64> = facts.iter().map(|f| f.product_id).collect();
    let by_product = products
        .into_iter()
        .map(|id| {
            (
                id,
                figures(facts.iter().filter(|f| f.product_id == id), now),
            )
        })
        .collect();
    let by_marketplace = Marketplace::ALL
        .into_iter()
        .map(|m| (m, figures(facts.iter().filter(|f| f.marketplace == m), now)))
        .filter(|(_, f)| f.delivered > 0)
        .collect();
    (by_product, by_marketplace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecard::DeliveredFacts;

    fn fact(
        product_id: i64,
        marketplace: Marketplace,
        verified_after: Option<i64>,
        refunded: bool,
    ) -> DeliveryFact {
        DeliveryFact {
            product_id,
            marketplace,
            delivered_at: 1_000,
            facts: DeliveredFacts {
                valid_until: 1_000 + 10 * 86_400,
                verified_at: verified_after.map(|s| 1_000 + s),
                refunded_at: refunded.then_some(2_000),
            },
        }
    }

    #[test]
    fn figures_count_each_status_and_time_the_uses() {
        use Marketplace::*;
        let facts = vec![
            fact(1, Pinduoduo, Some(60), false),
            fact(1, Pinduoduo, Some(7_200), false),
            fact(1, Douyin, Some(5 * 86_400), true),
            fact(2, Douyin, None, true),
            fact(2, Douyin, None, false),
        ];
        let all = figures(&facts, 1_000 + 20 * 86_400);
        assert_eq!(
            (all.delivered, all.verified, all.refunded, all.expired),
            (5, 3, 1, 1)
        );
        assert_eq!(all.median_seconds, Some(7_200));
        assert_eq!(all.p90_seconds, Some(5 * 86_400));
        assert_eq!(all.buckets, [1, 1, 0, 1, 0, 0]);
        assert_eq!(all.rate(all.verified), 0.6);
        let early = figures(&facts, 1_000);
        assert_eq!(early.expired, 0, "within validity nothing has expired");
        let (products, marketplaces) = by_product_and_marketplace(&facts, 1_000);
        assert_eq!(
            products
                .iter()
                .map(|(id, f)| (*id, f.delivered))
                .collect::<Vec<_>>(),
            vec![(1, 3), (2, 2)]
        );
        assert_eq!(
            marketplaces
                .iter()
                .map(|(m, f)| (*m, f.verified))
                .collect::<Vec<_>>(),
            vec![(Pinduoduo, 2), (Douyin, 1)]
        );
        assert_eq!(Figures::default().rate(0), 0.0);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[5], 90), Some(5));
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 50), Some(5));
        assert_eq!(percentile(&ten, 90), Some(9));
        assert_eq!(percentile(&ten, 100), Some(10));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
    }

    #[test]
    fn each_bucket_holds_the_waits_below_its_bound() {
        let at = |s| {
            let f = figures(&[fact(1, Marketplace::Own, Some(s), false)], 0);
            f.buckets.iter().position(|n| *n == 1).unwrap()
        };
        assert_eq!(
            [at(0), at(3_599), at(3_600), at(86_399), at(86_400)],
            [0, 0, 1, 1, 2]
        );
        assert_eq!(
            [at(3 * 86_400 - 1), at(7 * 86_400 - 1), at(30 * 86_400 - 1)],
            [2, 3, 4]
        );
        assert_eq!(
            [
                at(3 * 86_400),
                at(7 * 86_400),
                at(30 * 86_400),
                at(400 * 86_400)
            ],
            [3, 4, 5, 5]
        );
    }
}
