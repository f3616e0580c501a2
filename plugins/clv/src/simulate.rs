//! Customers simulated from known model parameters: the parameter-recovery
//! tests, the holdout checks and the fit-time benchmark draw from here.

use crate::bgnbd::{BgNbd, Rft};
use crate::gamma_gamma::GammaGamma;

/// A small, seeded generator (SplitMix64): reproducible across platforms,
/// and no dependency for the plugin.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform on (0, 1), never exactly 0 or 1.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Exponential with rate `rate`.
    pub fn exponential(&mut self, rate: f64) -> f64 {
        -self.uniform().ln() / rate
    }

    /// Gamma with shape `shape` and rate 1 (Marsaglia & Tsang 2000; shapes
    /// below 1 by `Gamma(shape + 1) · U^(1/shape)`).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = self.normal();
            let v = (1.0 + c * z).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Beta(`a`, `b`).
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }
}

/// A simulated customer: what was observed, and what happened next.
#[derive(Debug, Clone, Copy)]
pub struct Simulated {
    /// Their history up to the end of observation.
    pub calibration: Rft,
    /// Purchases in the holdout window after it.
    pub holdout_purchases: u32,
    /// Whether they were still alive at the end of observation.
    pub alive_at_end: bool,
}

/// `n` customers from BG/NBD `params`, each observed for an age drawn
/// uniformly from `ages` days, then followed for `holdout` more days.
pub fn simulate_bgnbd(rng: &mut Rng, params: &BgNbd, n: usize, ages: (f64, f64), holdout: f64) -> Vec<Simulated> {
    (0..n)
        .map(|_| {
            let lambda = rng.gamma(params.r) / params.alpha;
            let p = rng.beta(params.a, params.b);
            let age = ages.0 + (ages.1 - ages.0) * rng.uniform();
            let (mut x, mut t_x, mut t, mut alive) = (0u32, 0.0, 0.0, true);
            loop {
                t += rng.exponential(lambda);
                if t > age {
                    break;
                }
                x += 1;
                t_x = t;
                if rng.uniform() < p {
                    alive = false;
                    break;
                }
            }
            let mut holdout_purchases = 0;
            if alive {
                // The process is memoryless: the next purchase is Exp(λ) from the end.
                let mut s = age;
                loop {
                    s += rng.exponential(lambda);
                    if s > age + holdout {
                        break;
                    }
                    holdout_purchases += 1;
                    if rng.uniform() < p {
                        break;
                    }
                }
            }
            Simulated { calibration: Rft { x, t_x, t: age }, holdout_purchases, alive_at_end: alive }
        })
        .collect()
}

/// The average value of `transactions` orders of one customer drawn from
/// Gamma-Gamma `params`: ν ~ Gamma(q, γ), each value ~ Gamma(p, ν).
pub fn simulate_spend(rng: &mut Rng, params: &GammaGamma, transactions: u32) -> f64 {
    let nu = rng.gamma(params.q) / params.gamma;
    let total: f64 = (0..transactions).map(|_| rng.gamma(params.p) / nu).sum();
    total / f64::from(transactions.max(1))
}

/// The BG/NBD parameters of [`shop`]'s customers (purchase rate in days).
pub const SHOP_PURCHASES: BgNbd = BgNbd { r: 0.9, alpha: 25.0, a: 0.7, b: 3.0 };
/// The Gamma-Gamma parameters of [`shop`]'s order values (minor units).
pub const SHOP_SPEND: GammaGamma = GammaGamma { p: 6.0, q: 4.0, gamma: 150.0 };

/// A shop of `n` customers simulated from [`SHOP_PURCHASES`] and [`SHOP_SPEND`],
/// first buying between 30 and 700 days before `as_of`, as the host hands them
/// to a predictor.
pub fn shop(seed: u64, n: usize, as_of: i64) -> patron_sdk::PredictionBatch {
    const DAY_MS: f64 = 86_400_000.0;
    let mut rng = Rng::new(seed);
    let mut batch = patron_sdk::PredictionBatch::default();
    for s in simulate_bgnbd(&mut rng, &SHOP_PURCHASES, n, (30.0, 700.0), 0.0) {
        let c = s.calibration;
        let orders = c.x + 1;
        let first = as_of - (c.t * DAY_MS) as i64;
        batch.order_count.push(orders);
        batch.total_spent.push((simulate_spend(&mut rng, &SHOP_SPEND, orders) * f64::from(orders)) as i64);
        batch.first_order_at.push(first);
        batch.last_order_at.push(first + (c.t_x * DAY_MS) as i64);
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_have_the_right_moments() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        for shape in [0.4, 1.0, 3.5] {
            let draws: Vec<f64> = (0..n).map(|_| rng.gamma(shape)).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64;
            assert!((mean - shape).abs() / shape < 0.02, "shape {shape}: mean {mean}");
            assert!((var - shape).abs() / shape < 0.04, "shape {shape}: variance {var}");
        }
        let beta: f64 = (0..n).map(|_| rng.beta(2.0, 6.0)).sum::<f64>() / n as f64;
        assert!((beta - 0.25).abs() < 0.005, "{beta}");
    }
}
