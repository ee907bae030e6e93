//! Deal commission: a configurable tier table and the payer split.
//!
//! Defaults (SPEC part A): 4% below 100 000, 3% below 1 000 000, 2% below 5 000 000,
//! 1% from 5 000 000, no minimum. Gateway surcharges on the invoice amount: Robokassa 2.9%,
//! Mandarin 2.4%. All amounts are rounded half-up to kopecks, and
//! `consumer_pay − supplier_receive = commission` holds exactly for every payer.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{self, percent_of, round};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payer {
    #[serde(rename = "supplier")]
    Supplier,
    #[serde(rename = "consumer")]
    Consumer,
    #[serde(rename = "50/50")]
    Half,
}

/// One tier: applies from `from` (inclusive) up to the next tier's `from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    pub from: Decimal,
    pub percent: Decimal,
    /// Minimum commission in roubles, if any.
    #[serde(default)]
    pub min: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommissionTable {
    /// Sorted by `from`, the first starting at 0.
    pub tiers: Vec<Tier>,
    /// Robokassa surcharge, percent.
    pub gateway_percent: Decimal,
    /// Mandarin surcharge, percent.
    pub mandarin_percent: Decimal,
}

impl Default for CommissionTable {
    fn default() -> Self {
        let tier = |from: i64, percent: i64| Tier { from: from.into(), percent: percent.into(), min: None };
        CommissionTable {
            tiers: vec![tier(0, 4), tier(100_000, 3), tier(1_000_000, 2), tier(5_000_000, 1)],
            gateway_percent: Decimal::new(29, 1),
            mandarin_percent: Decimal::new(24, 1),
        }
    }
}

/// The full breakdown for one cost and payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakdown {
    pub cost: Decimal,
    pub percent: Decimal,
    pub commission: Decimal,
    /// What the consumer pays by bank invoice.
    pub consumer_pay: Decimal,
    pub supplier_receive: Decimal,
    /// `consumer_pay` with the Robokassa surcharge.
    pub gateway_pay: Decimal,
    /// `consumer_pay` with the Mandarin surcharge.
    pub mandarin_pay: Decimal,
}

impl Breakdown {
    /// "4%", "2.5%".
    pub fn description(&self) -> String {
        describe(self.percent)
    }
}

/// A commission percent as the API writes it: "4%", "2.5%".
pub fn describe(percent: Decimal) -> String {
    money::written(percent.normalize(), "%")
}

impl CommissionTable {
    /// Parses `COMMISSION_TIERS`: `from:percent[:min],...`, e.g. `0:4:50,100000:3,1000000:2`.
    pub fn parse_tiers(spec: &str) -> Result<Vec<Tier>, String> {
        let mut tiers = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let fields: Vec<&str> = part.split(':').collect();
            let num =
                |s: &str| s.trim().parse::<Decimal>().map_err(|_| format!("bad number {s:?} in {part:?}"));
            let tier = match fields.as_slice() {
                [from, percent] => Tier { from: num(from)?, percent: num(percent)?, min: None },
                [from, percent, min] => {
                    Tier { from: num(from)?, percent: num(percent)?, min: Some(num(min)?) }
                }
                _ => return Err(format!("tier {part:?} is not from:percent[:min]")),
            };
            tiers.push(tier);
        }
        tiers.sort_by_key(|t| t.from);
        match tiers.first() {
            Some(t) if t.from.is_zero() => Ok(tiers),
            _ => Err("the first tier must start at 0".into()),
        }
    }

    fn tier(&self, cost: Decimal) -> &Tier {
        self.tiers.iter().rev().find(|t| cost >= t.from).unwrap_or(&self.tiers[0])
    }

    /// `invoice` with the Robokassa (card gateway) surcharge.
    pub fn gateway_total(&self, invoice: Decimal) -> Decimal {
        round(invoice + percent_of(invoice, self.gateway_percent))
    }

    /// `invoice` with the Mandarin surcharge.
    pub fn mandarin_total(&self, invoice: Decimal) -> Decimal {
        round(invoice + percent_of(invoice, self.mandarin_percent))
    }

    pub fn compute(&self, cost: Decimal, payer: Payer) -> Breakdown {
        let cost = round(cost);
        let tier = self.tier(cost);
        self.in_kopecks(cost, tier, payer).unwrap_or_else(|| self.in_decimals(cost, tier, payer))
    }

    /// The breakdown with `Decimal` arithmetic: the definition, and the way for what
    /// [`Self::in_kopecks`] does not take.
    fn in_decimals(&self, cost: Decimal, tier: &Tier, payer: Payer) -> Breakdown {
        let mut commission = percent_of(cost, tier.percent);
        if let Some(min) = tier.min {
            commission = commission.max(round(min));
        }
        let (consumer_part, supplier_part) = match payer {
            Payer::Consumer => (commission, Decimal::ZERO),
            Payer::Supplier => (Decimal::ZERO, commission),
            Payer::Half => {
                // The consumer's half takes the odd kopeck, so the halves add up exactly.
                let consumer_half = round(money::half(commission));
                (consumer_half, commission - consumer_half)
            }
        };
        let consumer_pay = money::round(cost + consumer_part);
        Breakdown {
            cost,
            percent: tier.percent,
            commission,
            consumer_pay,
            supplier_receive: money::round(cost - supplier_part),
            gateway_pay: self.gateway_total(consumer_pay),
            mandarin_pay: self.mandarin_total(consumer_pay),
        }
    }

    /// The same breakdown counted in whole kopecks (`i128`), for an amount in kopecks and
    /// percents of at most four decimals, none negative: every product is exact there, as it
    /// is in `Decimal`, and each rounding is the same half away from zero, so the amounts are
    /// the same to the digit (a property test compares the two). A `Decimal` product and
    /// division cost ten times the integers' (the call is made for every change of a form's
    /// amount). `None` for anything else.
    fn in_kopecks(&self, cost: Decimal, tier: &Tier, payer: Payer) -> Option<Breakdown> {
        /// Kopecks of a non-negative amount with two decimals.
        fn kopecks(v: Decimal) -> Option<i128> {
            (v.scale() == 2 && !v.is_sign_negative()).then(|| v.mantissa())
        }
        /// `amount × percent / 100` rounded to kopecks, half up (nothing here is negative).
        fn share(amount: i128, percent: Decimal) -> Option<i128> {
            if percent.is_sign_negative() || percent.scale() > 4 {
                return None;
            }
            let product = amount.checked_mul(percent.mantissa())?;
            // Within what a `Decimal` holds exactly (96 bits).
            if product >= 1i128 << 95 {
                return None;
            }
            let per = 10u64.pow(percent.scale() + 2);
            // In 64 bits (a machine division) whenever the product fits, as an amount's does.
            let Ok(product) = u64::try_from(product) else {
                let per = i128::from(per);
                return Some(product / per + i128::from(2 * (product % per) >= per));
            };
            Some(i128::from(product / per + u64::from(2 * (product % per) >= per)))
        }
        let cost_k = kopecks(cost)?;
        let mut commission = share(cost_k, tier.percent)?;
        if let Some(min) = tier.min {
            commission = commission.max(kopecks(round(min))?);
        }
        let (consumer_part, supplier_part) = match payer {
            Payer::Consumer => (commission, 0),
            Payer::Supplier => (0, commission),
            // The consumer's half takes the odd kopeck.
            Payer::Half => ((commission + 1) / 2, commission - (commission + 1) / 2),
        };
        let consumer_pay = cost_k + consumer_part;
        let gateway_pay = consumer_pay + share(consumer_pay, self.gateway_percent)?;
        let mandarin_pay = consumer_pay + share(consumer_pay, self.mandarin_percent)?;
        let amount = |k: i128| Decimal::try_from_i128_with_scale(k, 2).ok();
        Some(Breakdown {
            cost,
            percent: tier.percent,
            commission: amount(commission)?,
            consumer_pay: amount(consumer_pay)?,
            supplier_receive: amount(cost_k - supplier_part)?,
            gateway_pay: amount(gateway_pay)?,
            mandarin_pay: amount(mandarin_pay)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn reproduces_the_seed_example() {
        let b = CommissionTable::default().compute(dec!(10000000), Payer::Half);
        assert_eq!(b.commission, dec!(100000));
        assert_eq!(b.description(), "1%");
        assert_eq!(b.supplier_receive, dec!(9950000));
        assert_eq!(b.consumer_pay, dec!(10050000));
        assert_eq!(b.gateway_pay, dec!(10341450));
        assert_eq!(b.mandarin_pay, dec!(10291200));
    }

    #[test]
    fn tiers_switch_at_their_bounds() {
        let t = CommissionTable::default();
        let pct = |c: Decimal| t.compute(c, Payer::Consumer).description();
        assert_eq!(pct(dec!(23)), "4%");
        assert_eq!(pct(dec!(99999.99)), "4%");
        assert_eq!(pct(dec!(100000)), "3%");
        assert_eq!(pct(dec!(1000000)), "2%");
        assert_eq!(pct(dec!(4999999.99)), "2%");
        assert_eq!(pct(dec!(5000000)), "1%");
        let small = t.compute(dec!(23), Payer::Consumer);
        assert_eq!(
            (small.commission, small.consumer_pay, small.gateway_pay),
            (dec!(0.92), dec!(23.92), dec!(24.61))
        );
    }

    #[test]
    fn parses_a_tier_table_with_minimum() {
        let tiers = CommissionTable::parse_tiers("100000:3, 0:4:50").unwrap();
        let t = CommissionTable { tiers, ..Default::default() };
        assert_eq!(t.compute(dec!(100), Payer::Consumer).commission, dec!(50));
        assert_eq!(t.compute(dec!(200000), Payer::Consumer).commission, dec!(6000));
        assert!(CommissionTable::parse_tiers("10:4").is_err());
        assert!(CommissionTable::parse_tiers("0:x").is_err());
    }

    fn payer() -> impl Strategy<Value = Payer> {
        prop_oneof![Just(Payer::Consumer), Just(Payer::Supplier), Just(Payer::Half)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn consumer_pay_minus_supplier_receive_is_commission(kopecks in 2000i64..100_000_000_000, payer in payer()) {
            let cost = Decimal::new(kopecks, 2);
            let b = CommissionTable::default().compute(cost, payer);
            prop_assert_eq!(b.consumer_pay - b.supplier_receive, b.commission);
            for v in [b.commission, b.consumer_pay, b.supplier_receive, b.gateway_pay, b.mandarin_pay] {
                prop_assert_eq!(v.scale(), 2);
                prop_assert_eq!(round(v), v);
            }
            prop_assert!(b.consumer_pay >= cost && b.supplier_receive <= cost);
            prop_assert!(b.gateway_pay >= b.consumer_pay && b.mandarin_pay >= b.consumer_pay);
        }
    }

    /// Counting in kopecks gives what `Decimal` arithmetic gives, digit for digit and sign
    /// for sign, for any cost, tier percent (up to six decimals: past four it is `Decimal`'s
    /// own way), minimum and surcharge, every payer; and it is the way taken for amounts.
    #[test]
    fn kopecks_are_decimals() {
        let decimal = |max: i64, scales: std::ops::RangeInclusive<u32>| {
            (0..=max, scales).prop_map(|(m, s)| Decimal::new(m, s))
        };
        let table = (
            decimal(10_000_000, 0..=6),
            proptest::option::of(decimal(1_000_000, 0..=3)),
            decimal(100_000, 0..=6),
            decimal(100_000, 0..=4),
        )
            .prop_map(|(percent, min, gateway, mandarin)| CommissionTable {
                tiers: vec![Tier { from: Decimal::ZERO, percent, min }],
                gateway_percent: gateway,
                mandarin_percent: mandarin,
            });
        let cost = prop_oneof![decimal(i64::MAX, 0..=4), decimal(100_000_000_000_000, 0..=2)];
        proptest!(ProptestConfig::with_cases(20_000), |(t in table, cost in cost, payer in payer())| {
            let rounded = round(cost);
            let tier = t.tier(rounded);
            let want = t.in_decimals(rounded, tier, payer);
            let got = t.compute(cost, payer);
            prop_assert_eq!(format!("{got:?}"), format!("{want:?}"));
            prop_assert_eq!(&got, &want);
        });
        // Amounts, the seed's percents and the default table: the kopecks' way.
        let t = CommissionTable::default();
        for cost in [dec!(20), dec!(99999.99), dec!(10000000), dec!(1000000000000)] {
            assert!(t.in_kopecks(round(cost), t.tier(cost), Payer::Half).is_some(), "{cost}");
        }
    }
}
