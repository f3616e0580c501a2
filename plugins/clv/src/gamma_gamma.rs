//! The Gamma-Gamma model of spend per order (Fader, Hardie & Lee 2005,
//! "RFM and CLV: using iso-value curves for customer base analysis"; Fader &
//! Hardie 2013, "The Gamma-Gamma model of monetary value"): each order's
//! value is Gamma(p, ν) with the customer's ν ~ Gamma(q, γ), independent of
//! how often they buy. A customer is summarised by the number of orders `n`
//! their average `m` is over.

use patron_sdk::json::{self, Fields, FromJson, ToJson, Value};

use crate::FitError;
use crate::bgnbd::Fitted;
use crate::optimize::{Options, nelder_mead};
use crate::special::ln_gamma;

/// One customer's spend: `n` orders averaging `m` (minor units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    /// Orders the average is over.
    pub n: u32,
    /// Their average value, in minor units.
    pub m: f64,
}

/// Gamma-Gamma parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    /// Shape of one order's value.
    pub p: f64,
    /// Shape of the customers' rate parameter ν.
    pub q: f64,
    /// Rate of the customers' ν (in minor units).
    pub gamma: f64,
}

impl FromJson for GammaGamma {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        Ok(Self { p: f.required("p")?, q: f.required("q")?, gamma: f.required("gamma")? })
    }
}

impl ToJson for GammaGamma {
    fn to_json(&self) -> Value {
        json::object([("p", self.p.to_json()), ("q", self.q.to_json()), ("gamma", self.gamma.to_json())])
    }
}

/// The fewest customers with repeat orders a fit is attempted on.
pub const MIN_CUSTOMERS: usize = 10;

impl GammaGamma {
    /// `ln f(m | n)` of one customer (Fader & Hardie 2013, eq. 4):
    /// `ln Γ(pn+q) - ln Γ(pn) - ln Γ(q) + q ln γ + (pn-1) ln m + pn ln n - (pn+q) ln(γ + n m)`.
    fn ll_one(&self, s: &Spend) -> f64 {
        let n = f64::from(s.n);
        let pn = self.p * n;
        ln_gamma(pn + self.q) - ln_gamma(pn) - ln_gamma(self.q)
            + self.q * self.gamma.ln()
            + (pn - 1.0) * s.m.ln()
            + pn * n.ln()
            - (pn + self.q) * (self.gamma + n * s.m).ln()
    }

    /// The log-likelihood of the customers' average spends.
    pub fn log_likelihood(&self, spends: &[Spend]) -> f64 {
        spends.iter().map(|s| self.ll_one(s)).sum()
    }

    /// Whether every parameter is finite and positive.
    pub fn is_valid(&self) -> bool {
        [self.p, self.q, self.gamma].iter().all(|v| v.is_finite() && *v > 0.0)
    }

    /// The maximum-likelihood parameters. Customers whose average is not
    /// positive, or who have fewer than two orders (no repeat purchase), are
    /// left out, as the model requires (it is fitted on repeat buyers, whose
    /// average is over several orders). The start is `p = 1, q = 2`, `γ` =
    /// the mean spend (so the population mean `pγ/(q-1)` starts at the
    /// observed one).
    pub fn fit(spends: &[Spend]) -> Result<Fitted<GammaGamma>, FitError> {
        let kept: Vec<Spend> = spends.iter().copied().filter(|s| s.n >= 2 && s.m > 0.0 && s.m.is_finite()).collect();
        if kept.len() < MIN_CUSTOMERS {
            return Err(FitError::TooFewSpenders { have: kept.len(), need: MIN_CUSTOMERS });
        }
        let n = kept.len() as f64;
        let mean = kept.iter().map(|s| s.m).sum::<f64>() / n;
        let start = [0.0, 2.0_f64.ln(), mean.ln()];
        let mut objective = |theta: &[f64]| {
            if theta.iter().any(|v| !(-20.0..=40.0).contains(v)) {
                return f64::INFINITY;
            }
            let g = GammaGamma { p: theta[0].exp(), q: theta[1].exp(), gamma: theta[2].exp() };
            -g.log_likelihood(&kept) / n
        };
        let m = nelder_mead(&mut objective, &start, Options::default());
        let params = GammaGamma { p: m.x[0].exp(), q: m.x[1].exp(), gamma: m.x[2].exp() };
        if !m.converged || !m.value.is_finite() || !params.is_valid() {
            return Err(FitError::NotConverged { model: "Gamma-Gamma", evaluations: m.evaluations });
        }
        Ok(Fitted { params, log_likelihood: -m.value * n, customers: kept.len(), evaluations: m.evaluations })
    }

    /// The population's mean order value, `pγ/(q-1)`; `None` when `q <= 1`,
    /// where the model's mean is infinite.
    pub fn population_mean(&self) -> Option<f64> {
        (self.q > 1.0).then(|| self.p * self.gamma / (self.q - 1.0))
    }

    /// The expected value of this customer's future orders (Fader & Hardie
    /// 2013, eq. 5): `p(γ + n m) / (pn + q - 1)`, a weighted mean of the
    /// population mean and the customer's own average. `None` when `q <= 1`.
    /// A customer with no usable average (`n = 0` or `m <= 0`) gets the
    /// population mean.
    pub fn expected_order_value(&self, s: &Spend) -> Option<f64> {
        let mean = self.population_mean()?;
        if s.n == 0 || !(s.m > 0.0 && s.m.is_finite()) {
            return Some(mean);
        }
        let n = f64::from(s.n);
        Some(self.p * (self.gamma + n * s.m) / (self.p * n + self.q - 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{Rng, simulate_spend};

    /// At p = 2, q = 3, γ = 50 every gamma function has an integer argument,
    /// so the likelihood is written with factorials by hand.
    #[test]
    fn log_likelihood_matches_the_hand_derived_value() {
        let (p, q, g) = (2.0_f64, 3.0_f64, 50.0_f64);
        let model = GammaGamma { p, q, gamma: g };
        let data = [Spend { n: 2, m: 30.0 }, Spend { n: 3, m: 12.5 }];
        // n = 2: Γ(7)/(Γ(4)Γ(3)) = 720/(6·2) = 60; · γ³ · m³ · 2⁴ / (γ + 2m)⁷.
        let f2 = 60.0 * g.powi(3) * 30.0_f64.powi(3) * 2.0_f64.powi(4) / (g + 60.0).powi(7);
        // n = 3: Γ(9)/(Γ(6)Γ(3)) = 40320/(120·2) = 168; · γ³ · m⁵ · 3⁶ / (γ + 3m)⁹.
        let f3 = 168.0 * g.powi(3) * 12.5_f64.powi(5) * 3.0_f64.powi(6) / (g + 37.5).powi(9);
        let expect = f2.ln() + f3.ln();
        let got = model.log_likelihood(&data);
        assert!((got - expect).abs() < 1e-9, "got {got}, hand-derived {expect}");
    }

    #[test]
    fn recovers_known_parameters_from_simulated_customers() {
        let truth = GammaGamma { p: 6.0, q: 4.0, gamma: 150.0 };
        for seed in [21, 22, 23] {
            let mut rng = Rng::new(seed);
            let spends: Vec<Spend> = (0..100_000)
                .map(|_| {
                    let n = 2 + (rng.uniform() * 11.0) as u32;
                    Spend { n, m: simulate_spend(&mut rng, &truth, n) }
                })
                .collect();
            let fit = GammaGamma::fit(&spends).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let g = fit.params;
            for (name, got, want) in [("p", g.p, truth.p), ("q", g.q, truth.q), ("gamma", g.gamma, truth.gamma)] {
                assert!((got - want).abs() / want < 0.05, "seed {seed}: {name} = {got}, truth {want} ({g:?})");
            }
        }
    }

    #[test]
    fn leaves_out_what_the_model_cannot_take() {
        let mut spends = vec![Spend { n: 1, m: 50.0 }; 100];
        spends.extend(vec![Spend { n: 3, m: 0.0 }; 100]);
        spends.extend(vec![Spend { n: 3, m: -5.0 }; 5]);
        assert!(matches!(GammaGamma::fit(&spends), Err(FitError::TooFewSpenders { have: 0, .. })));
    }

    #[test]
    fn expected_order_value_shrinks_towards_the_population_mean() {
        let g = GammaGamma { p: 6.0, q: 4.0, gamma: 150.0 };
        let mean = g.population_mean().expect("a value");
        assert!((mean - 300.0).abs() < 1e-12);
        let few = g.expected_order_value(&Spend { n: 2, m: 600.0 }).expect("a value");
        let many = g.expected_order_value(&Spend { n: 20, m: 600.0 }).expect("a value");
        assert!(mean < few && few < many && many < 600.0, "{few} {many}");
        assert_eq!(g.expected_order_value(&Spend { n: 0, m: 0.0 }), Some(mean));
        assert_eq!(GammaGamma { q: 0.9, ..g }.expected_order_value(&Spend { n: 2, m: 600.0 }), None);
    }
}
