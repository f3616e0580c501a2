//! The BG/NBD model of the purchase process (Fader, Hardie & Lee 2005,
//! "Counting your customers the easy way"): while alive, a customer buys as a
//! Poisson process with rate λ ~ Gamma(r, α); after each repeat purchase they
//! drop out for good with probability p ~ Beta(a, b).
//!
//! A customer is summarised by `x` (repeat purchases: orders after the first),
//! `t_x` (time of the last purchase, from the first) and `T` (time from the
//! first purchase to the end of observation). Times are in days.

use patron_sdk::json::{self, Fields, FromJson, ToJson, Value};

use crate::FitError;
use crate::optimize::{Options, nelder_mead};
use crate::special::{Hyp2f1Error, hyp2f1, ln_gamma};

/// One customer's purchase history, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rft {
    /// Repeat purchases (orders after the first).
    pub x: u32,
    /// Days from the first purchase to the last (0 when `x` is 0).
    pub t_x: f64,
    /// Days from the first purchase to the end of observation.
    pub t: f64,
}

impl Rft {
    /// Whether the summary is one the model can score: finite, `0 <= t_x <= T`,
    /// `t_x = 0` when there were no repeat purchases, and at most [`MAX_REPEAT`]
    /// repeat purchases.
    pub fn is_valid(&self) -> bool {
        self.x <= MAX_REPEAT
            && self.t_x.is_finite()
            && self.t.is_finite()
            && self.t_x >= 0.0
            && self.t_x <= self.t
            && (self.x > 0 || self.t_x == 0.0)
    }
}

/// BG/NBD parameters: λ ~ Gamma(shape `r`, rate `alpha`), p ~ Beta(`a`, `b`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Rate (inverse scale, in days) of the purchase-rate distribution.
    pub alpha: f64,
    /// First shape of the dropout-probability distribution.
    pub a: f64,
    /// Second shape of the dropout-probability distribution.
    pub b: f64,
}

/// The most repeat purchases of one customer a fit takes (its per-`x` terms are
/// tabulated up to the largest `x`).
pub const MAX_REPEAT: u32 = 1_000_000;

/// The fewest customers a fit is attempted on.
pub const MIN_CUSTOMERS: usize = 10;
/// The fewest customers with a repeat purchase a fit is attempted on: with
/// none, nothing tells the purchase rate from the dropout.
pub const MIN_REPEAT_CUSTOMERS: usize = 3;

impl FromJson for BgNbd {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        Ok(Self { r: f.required("r")?, alpha: f.required("alpha")?, a: f.required("a")?, b: f.required("b")? })
    }
}

impl ToJson for BgNbd {
    fn to_json(&self) -> Value {
        json::object([
            ("r", self.r.to_json()),
            ("alpha", self.alpha.to_json()),
            ("a", self.a.to_json()),
            ("b", self.b.to_json()),
        ])
    }
}

/// A fitted model and how the fit went; in JSON, keys in snake_case.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted<P> {
    /// The maximum-likelihood parameters.
    pub params: P,
    /// The log-likelihood there (summed over customers).
    pub log_likelihood: f64,
    /// Customers fitted on.
    pub customers: usize,
    /// Objective evaluations the optimizer used.
    pub evaluations: usize,
}

impl<P: FromJson> FromJson for Fitted<P> {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        Ok(Self {
            params: f.required("params")?,
            log_likelihood: f.required("log_likelihood")?,
            customers: f.required("customers")?,
            evaluations: f.required("evaluations")?,
        })
    }
}

impl<P: ToJson> ToJson for Fitted<P> {
    fn to_json(&self) -> Value {
        json::object([
            ("params", self.params.to_json()),
            ("log_likelihood", self.log_likelihood.to_json()),
            ("customers", self.customers.to_json()),
            ("evaluations", self.evaluations.to_json()),
        ])
    }
}

/// Terms of the log-likelihood that depend on `x` only, per distinct `x`.
struct ByX {
    /// `ln Γ(r+x) - ln Γ(r) + r ln α + ln Γ(a+b) + ln Γ(b+x) - ln Γ(b) - ln Γ(a+b+x)`.
    constant: Vec<f64>,
    /// `ln a - ln(b+x-1)` (unused at `x = 0`).
    dropped: Vec<f64>,
}

impl BgNbd {
    fn by_x(&self, max_x: u32) -> ByX {
        let Self { r, alpha, a, b } = *self;
        let base = -ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) - ln_gamma(b);
        let mut constant = Vec::with_capacity(max_x as usize + 1);
        let mut dropped = Vec::with_capacity(max_x as usize + 1);
        for x in 0..=max_x {
            let x = f64::from(x);
            constant.push(base + ln_gamma(r + x) + ln_gamma(b + x) - ln_gamma(a + b + x));
            dropped.push(if x > 0.0 { a.ln() - (b + x - 1.0).ln() } else { f64::NEG_INFINITY });
        }
        ByX { constant, dropped }
    }

    fn ll_one(&self, by_x: &ByX, c: &Rft) -> f64 {
        let x = c.x as usize;
        let rx = self.r + f64::from(c.x);
        // ln(A3 + δ A4) by log-sum-exp: A3 = (α+T)^-(r+x), A4 = a/(b+x-1) (α+t_x)^-(r+x).
        let ln_a3 = -rx * (self.alpha + c.t).ln();
        let tail = if c.x > 0 {
            let ln_a4 = by_x.dropped[x] - rx * (self.alpha + c.t_x).ln();
            let hi = ln_a3.max(ln_a4);
            hi + ((ln_a3 - hi).exp() + (ln_a4 - hi).exp()).ln()
        } else {
            ln_a3
        };
        by_x.constant[x] + tail
    }

    /// The log-likelihood of the customers under these parameters (FHL 2005,
    /// eq. 6): `Σ ln[A1 · A2 · (A3 + δ(x>0) A4)]` with
    /// `A1 = Γ(r+x) α^r / Γ(r)`, `A2 = Γ(a+b) Γ(b+x) / (Γ(b) Γ(a+b+x))`,
    /// `A3 = (α+T)^-(r+x)`, `A4 = a/(b+x-1) · (α+t_x)^-(r+x)`.
    pub fn log_likelihood(&self, customers: &[Rft]) -> f64 {
        let max_x = customers.iter().map(|c| c.x).max().unwrap_or(0);
        let by_x = self.by_x(max_x);
        customers.iter().map(|c| self.ll_one(&by_x, c)).sum()
    }

    /// Whether every parameter is finite and positive.
    pub fn is_valid(&self) -> bool {
        [self.r, self.alpha, self.a, self.b].iter().all(|v| v.is_finite() && *v > 0.0)
    }

    /// The maximum-likelihood parameters for `customers`, by Nelder–Mead on
    /// the logs of the parameters, from `r = 1`, `α` = mean age over mean
    /// repeat purchases (the rate if nobody dropped out), `a = 1`, `b = 3`.
    pub fn fit(customers: &[Rft]) -> Result<Fitted<BgNbd>, FitError> {
        if let Some(bad) = customers.iter().position(|c| !c.is_valid()) {
            return Err(FitError::BadInput(format!("customer {bad}: {:?} is not a valid (x, t_x, T)", customers[bad])));
        }
        if customers.len() < MIN_CUSTOMERS {
            return Err(FitError::TooFewCustomers { have: customers.len(), need: MIN_CUSTOMERS });
        }
        let repeat = customers.iter().filter(|c| c.x > 0).count();
        if repeat < MIN_REPEAT_CUSTOMERS {
            return Err(FitError::TooFewRepeatCustomers { have: repeat, need: MIN_REPEAT_CUSTOMERS });
        }
        let n = customers.len() as f64;
        let mean_t = customers.iter().map(|c| c.t).sum::<f64>() / n;
        if mean_t <= 0.0 {
            return Err(FitError::NoObservationTime);
        }
        let mean_x = customers.iter().map(|c| f64::from(c.x)).sum::<f64>() / n;
        let max_x = customers.iter().map(|c| c.x).max().unwrap_or(0);
        let start = [0.0, (mean_t / mean_x).ln(), 0.0, 3.0_f64.ln()];
        let mut objective = |theta: &[f64]| {
            if theta.iter().any(|v| !(-20.0..=20.0).contains(v)) {
                return f64::INFINITY;
            }
            let p = BgNbd { r: theta[0].exp(), alpha: theta[1].exp(), a: theta[2].exp(), b: theta[3].exp() };
            let by_x = p.by_x(max_x);
            -customers.iter().map(|c| p.ll_one(&by_x, c)).sum::<f64>() / n
        };
        let m = nelder_mead(&mut objective, &start, Options::default());
        let params = BgNbd { r: m.x[0].exp(), alpha: m.x[1].exp(), a: m.x[2].exp(), b: m.x[3].exp() };
        if !m.converged || !m.value.is_finite() || !params.is_valid() {
            return Err(FitError::NotConverged { model: "BG/NBD", evaluations: m.evaluations });
        }
        Ok(Fitted { params, log_likelihood: -m.value * n, customers: customers.len(), evaluations: m.evaluations })
    }

    /// `ln[a/(b+x-1) · ((α+T)/(α+t_x))^(r+x)]`, the log-odds of having dropped
    /// out after the last purchase against being alive (−∞ when `x` is 0).
    fn ln_dropout_odds(&self, c: &Rft) -> f64 {
        if c.x == 0 {
            return f64::NEG_INFINITY;
        }
        let x = f64::from(c.x);
        self.a.ln() - (self.b + x - 1.0).ln() + (self.r + x) * ((self.alpha + c.t).ln() - (self.alpha + c.t_x).ln())
    }

    /// The probability the customer is still alive at the end of observation
    /// (FHL 2005, eq. 13): `1 / (1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x))`.
    /// A customer with no repeat purchase cannot have dropped out yet: 1.
    pub fn p_alive(&self, c: &Rft) -> f64 {
        let odds = self.ln_dropout_odds(c);
        if odds == f64::NEG_INFINITY {
            return 1.0;
        }
        // 1 / (1 + e^odds), without overflow.
        if odds > 0.0 { (-odds).exp() / (1.0 + (-odds).exp()) } else { 1.0 / (1.0 + odds.exp()) }
    }

    /// The expected number of purchases in the `horizon` days after the end
    /// of observation (FHL 2005, eq. 10):
    ///
    /// `E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x)
    ///   · 2F1(r+x, b+x; a+b+x-1; t/(α+T+t))] / (1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x))`.
    ///
    /// At `a = 1` the expression is 0/0 (a removable singularity); within
    /// 1e-4 of it the value is interpolated from `a = 1 ± 1e-4`.
    pub fn expected_purchases(&self, c: &Rft, horizon: f64) -> Result<f64, Hyp2f1Error> {
        if horizon <= 0.0 {
            return Ok(0.0);
        }
        const H: f64 = 1e-4;
        let unconditional_alive = if (self.a - 1.0).abs() < H {
            let lo = Self { a: 1.0 - H, ..*self }.alive_purchases(c, horizon)?;
            let hi = Self { a: 1.0 + H, ..*self }.alive_purchases(c, horizon)?;
            lo + (hi - lo) * (self.a - (1.0 - H)) / (2.0 * H)
        } else {
            self.alive_purchases(c, horizon)?
        };
        Ok((unconditional_alive * self.p_alive(c)).max(0.0))
    }

    /// The bracketed part of eq. 10: expected purchases given alive now.
    ///
    /// Summed as written or after Euler's transformation `2F1(a', b'; c'; z) =
    /// (1-z)^(c'-a'-b') 2F1(c'-a', c'-b'; c'; z)`: with `1 - z = (α+T)/(α+T+t)` the
    /// bracket becomes `1 - (1-z)^(a-1) · 2F1(a+b-1-r, a-1; a+b+x-1; z)`, whose
    /// series has small numerator parameters whatever `x` is, so a customer with
    /// thousands of orders neither overflows nor needs thousands of terms; the
    /// plain series serves fits with a huge `a` (whose transformed terms overflow).
    fn alive_purchases(&self, c: &Rft, t: f64) -> Result<f64, Hyp2f1Error> {
        let Self { r, alpha, a, b } = *self;
        let x = f64::from(c.x);
        let z = t / (alpha + c.t + t);
        let ln_one_minus_z = (alpha + c.t).ln() - (alpha + c.t + t).ln();
        let scale = (a + b + x - 1.0) / (a - 1.0);
        // As written: 1 - (1-z)^(r+x) · 2F1(r+x, b+x; a+b+x-1; z).
        let plain = || -> Result<f64, Hyp2f1Error> {
            let f = hyp2f1(r + x, b + x, a + b + x - 1.0, z)?;
            Ok(1.0 - ((r + x) * ln_one_minus_z).exp() * f)
        };
        // Transformed: 1 - (1-z)^(a-1) · 2F1(a+b-1-r, a-1; a+b+x-1; z).
        let euler = || -> Result<f64, Hyp2f1Error> {
            let f = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)?;
            Ok(1.0 - ((a - 1.0) * ln_one_minus_z).exp() * f)
        };
        // The series whose first terms are smaller first (many orders: the
        // transformed one; a fitted a and b in the thousands: the plain one), the
        // other if it cannot be summed.
        let plain_first = ((r + x) * (b + x)).abs() <= ((a + b - 1.0 - r) * (a - 1.0)).abs();
        let bracket = if plain_first { plain().or_else(|_| euler()) } else { euler().or_else(|_| plain()) }?;
        let value = scale * bracket;
        if value.is_finite() { Ok(value) } else { Err(Hyp2f1Error::NotFinite) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{Rng, simulate_bgnbd};

    /// The log-likelihood of a tiny fixture at known parameters, derived by
    /// hand from FHL 2005 eq. 6 with the gamma ratios written as finite
    /// products (Γ(r+x)/Γ(r) = r(r+1)…(r+x-1), and so on), so the check
    /// shares no code with the implementation.
    #[test]
    fn log_likelihood_matches_the_hand_derived_value() {
        let (r, alpha, a, b) = (0.25_f64, 4.0_f64, 0.8_f64, 2.5_f64);
        let p = BgNbd { r, alpha, a, b };
        let fixture =
            [Rft { x: 0, t_x: 0.0, t: 30.0 }, Rft { x: 1, t_x: 10.0, t: 40.0 }, Rft { x: 3, t_x: 25.5, t: 38.0 }];

        // x = 0: L = α^r · 1 · (α+T)^-r.
        let l0 = alpha.powf(r) * (alpha + 30.0).powf(-r);
        // x = 1: A1 = r α^r; A2 = b/(a+b); A3 = (α+40)^-(r+1); A4 = a/b · (α+10)^-(r+1).
        let a1 = r * alpha.powf(r);
        let a2 = b / (a + b);
        let l1 = a1 * a2 * ((alpha + 40.0).powf(-(r + 1.0)) + a / b * (alpha + 10.0).powf(-(r + 1.0)));
        // x = 3: A1 = r(r+1)(r+2) α^r; A2 = b(b+1)(b+2) / ((a+b)(a+b+1)(a+b+2));
        // A3 = (α+38)^-(r+3); A4 = a/(b+2) · (α+25.5)^-(r+3).
        let a1 = r * (r + 1.0) * (r + 2.0) * alpha.powf(r);
        let a2 = b * (b + 1.0) * (b + 2.0) / ((a + b) * (a + b + 1.0) * (a + b + 2.0));
        let l3 = a1 * a2 * ((alpha + 38.0).powf(-(r + 3.0)) + a / (b + 2.0) * (alpha + 25.5).powf(-(r + 3.0)));
        let expect = l0.ln() + l1.ln() + l3.ln();

        let got = p.log_likelihood(&fixture);
        assert!((got - expect).abs() < 1e-9, "got {got}, hand-derived {expect}");
    }

    #[test]
    fn p_alive_follows_the_closed_form() {
        let p = BgNbd { r: 0.25, alpha: 4.0, a: 0.8, b: 2.5 };
        assert_eq!(p.p_alive(&Rft { x: 0, t_x: 0.0, t: 100.0 }), 1.0);
        let c = Rft { x: 2, t_x: 20.0, t: 100.0 };
        let expect = 1.0 / (1.0 + 0.8 / 3.5 * ((4.0_f64 + 100.0) / (4.0 + 20.0)).powf(2.25));
        assert!((p.p_alive(&c) - expect).abs() < 1e-12);
        // A customer who bought recently is likelier alive than one who stopped long ago.
        assert!(p.p_alive(&Rft { x: 2, t_x: 95.0, t: 100.0 }) > p.p_alive(&c));
        // Far past their last purchase, a frequent buyer is almost surely gone: no NaN.
        let gone = p.p_alive(&Rft { x: 500, t_x: 1.0, t: 3650.0 });
        assert!(gone.is_finite() && gone < 1e-12, "{gone}");
    }

    /// The expected purchases over a horizon, summed over a simulated
    /// population at the true parameters, match the purchases the same
    /// simulated customers go on to make (for a < 1 and a > 1, and a at 1).
    #[test]
    fn expected_purchases_match_simulated_futures() {
        for (seed, params) in [
            (1, BgNbd { r: 0.8, alpha: 20.0, a: 0.6, b: 2.5 }),
            (2, BgNbd { r: 1.5, alpha: 60.0, a: 1.8, b: 4.0 }),
            (3, BgNbd { r: 1.5, alpha: 60.0, a: 1.0, b: 4.0 }),
        ] {
            let mut rng = Rng::new(seed);
            let sim = simulate_bgnbd(&mut rng, &params, 40_000, (120.0, 400.0), 90.0);
            let expected: f64 =
                sim.iter().map(|s| params.expected_purchases(&s.calibration, 90.0).expect("a value")).sum();
            let actual: f64 = sim.iter().map(|s| f64::from(s.holdout_purchases)).sum();
            let rel = (expected - actual).abs() / actual;
            assert!(rel < 0.03, "seed {seed}: expected {expected:.0}, simulated {actual:.0}");
            // And P(alive) averages to the share of simulated customers still alive.
            let p_alive: f64 = sim.iter().map(|s| params.p_alive(&s.calibration)).sum();
            let alive = sim.iter().filter(|s| s.alive_at_end).count() as f64;
            assert!((p_alive - alive).abs() / alive < 0.02, "seed {seed}: P(alive) sum {p_alive:.0}, alive {alive}");
        }
    }

    /// The transformed series gives eq. 10 as written (the untransformed 2F1) where
    /// both can be summed, and stays finite for a customer with 20,000 orders.
    #[test]
    fn expected_purchases_follow_eq_10() {
        let p = BgNbd { r: 0.8, alpha: 20.0, a: 0.6, b: 2.5 };
        for c in
            [Rft { x: 0, t_x: 0.0, t: 50.0 }, Rft { x: 4, t_x: 80.0, t: 120.0 }, Rft { x: 30, t_x: 300.0, t: 310.0 }]
        {
            for t in [30.0, 365.0] {
                let x = f64::from(c.x);
                let (r, alpha, a, b) = (p.r, p.alpha, p.a, p.b);
                let power = ((alpha + c.t) / (alpha + c.t + t)).powf(r + x);
                let f = hyp2f1(r + x, b + x, a + b + x - 1.0, t / (alpha + c.t + t)).expect("a value");
                let eq10 = (a + b + x - 1.0) / (a - 1.0) * (1.0 - power * f) * p.p_alive(&c);
                let got = p.expected_purchases(&c, t).expect("a value");
                assert!((got - eq10).abs() <= 1e-9 * eq10.abs().max(1e-3), "{c:?}, t = {t}: {got} vs {eq10}");
            }
        }
        let heavy = Rft { x: 20_000, t_x: 730.0, t: 730.0 };
        let e = p.expected_purchases(&heavy, 365.0).expect("a value");
        assert!(e.is_finite() && e > 1_000.0, "{e}");
    }

    #[test]
    fn recovers_known_parameters_from_simulated_customers() {
        let truth = BgNbd { r: 0.9, alpha: 25.0, a: 0.7, b: 3.0 };
        for seed in [11, 12, 13] {
            let mut rng = Rng::new(seed);
            let sim = simulate_bgnbd(&mut rng, &truth, 40_000, (365.0, 730.0), 0.0);
            let data: Vec<Rft> = sim.iter().map(|s| s.calibration).collect();
            let fit = BgNbd::fit(&data).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let p = fit.params;
            for (name, got, want) in
                [("r", p.r, truth.r), ("alpha", p.alpha, truth.alpha), ("a", p.a, truth.a), ("b", p.b, truth.b)]
            {
                assert!((got - want).abs() / want < 0.05, "seed {seed}: {name} = {got}, truth {want} ({p:?})");
            }
            // The fit is at least as likely as the truth (it is the maximum).
            assert!(fit.log_likelihood >= truth.log_likelihood(&data) - 1e-6);
        }
    }

    #[test]
    fn degenerate_shops_get_a_clear_error() {
        let one = |x, t_x, t| Rft { x, t_x, t };
        assert!(matches!(BgNbd::fit(&[one(1, 2.0, 5.0); 3]), Err(FitError::TooFewCustomers { have: 3, .. })));
        // Nobody came back: the purchase rate and the dropout cannot be told apart.
        let singles = vec![one(0, 0.0, 50.0); 100];
        assert!(matches!(BgNbd::fit(&singles), Err(FitError::TooFewRepeatCustomers { have: 0, .. })));
        // Everyone is brand new (and bought several times at one instant).
        let new = vec![one(2, 0.0, 0.0); 100];
        assert!(matches!(BgNbd::fit(&new), Err(FitError::NoObservationTime)));
        // A last purchase after the end of observation.
        assert!(matches!(BgNbd::fit(&[one(1, 9.0, 5.0); 20]), Err(FitError::BadInput(_))));
        assert!(matches!(BgNbd::fit(&[one(1, f64::NAN, 5.0); 20]), Err(FitError::BadInput(_))));
    }

    #[test]
    fn identical_timestamps_fit_without_nan() {
        // Half the repeat buyers ordered twice at the same instant (t_x = 0).
        let mut data = vec![Rft { x: 1, t_x: 0.0, t: 100.0 }; 50];
        data.extend(vec![Rft { x: 0, t_x: 0.0, t: 80.0 }; 50]);
        data.extend((1..=50).map(|i| Rft { x: 2, t_x: f64::from(i), t: 100.0 }));
        match BgNbd::fit(&data) {
            Ok(fit) => {
                assert!(fit.params.is_valid() && fit.log_likelihood.is_finite(), "{fit:?}");
                for c in &data {
                    assert!(fit.params.p_alive(c).is_finite());
                    let e = fit.params.expected_purchases(c, 365.0);
                    assert!(e.as_ref().is_ok_and(|v| v.is_finite()), "{c:?}: {e:?} ({fit:?})");
                }
            }
            Err(e) => assert!(matches!(e, FitError::NotConverged { .. }), "{e}"),
        }
    }
}
