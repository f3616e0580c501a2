//! The behaviour-aware churn model of `predict evaluate`: what BG/NBD cannot see.
//! A logistic regression over a customer's recency, frequency and spend plus their
//! recent browsing, cart and checkout events and points activity, trained on the
//! shop's own history (label: no purchase in the following window) and scored beside
//! P(alive) on the same holdout. It runs in the host, over data the `predictor`
//! contract does not carry (events, points), and only in the evaluation.

use serde::Serialize;

/// The features, in order: order statistics at the time, then counts over the
/// [`ACTIVITY_DAYS`] before it.
pub const FEATURES: [&str; 9] = [
    "days_since_last_order",
    "orders",
    "log_average_order",
    "days_since_first_order",
    "page_views",
    "product_views",
    "cart_adds",
    "checkouts_started",
    "points_net",
];
/// Days of behaviour counted before the time of the features.
pub const ACTIVITY_DAYS: i64 = 90;
/// The event kinds counted, in the order of their features.
pub const EVENT_KINDS: [&str; 4] = ["page_view", "product_view", "add_to_cart", "checkout_started"];
/// L2 penalty on the standardised weights (not on the intercept).
const L2: f64 = 1.0;

/// A fitted logistic regression on standardised features.
#[derive(Debug, Clone, Serialize)]
pub struct Logistic {
    pub intercept: f64,
    /// Per feature: the weight of one standard deviation of it (0 for a constant one).
    pub weights: Vec<f64>,
    #[serde(skip)]
    means: Vec<f64>,
    #[serde(skip)]
    scales: Vec<f64>,
    /// Newton steps taken.
    pub iterations: usize,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) }
}

/// Solves `a x = b` in place by Gaussian elimination with partial pivoting; `None`
/// when `a` is singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (offset, row) in lower.iter_mut().enumerate() {
            let factor = row[col] / pivot_row[col];
            for (value, above) in row.iter_mut().zip(pivot_row).skip(col) {
                *value -= factor * above;
            }
            b[col + 1 + offset] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let tail: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    Some(x)
}

impl Logistic {
    /// Fits `P(y) = σ(intercept + w·z)` over standardised rows `z` of `x` by Newton's
    /// method (iteratively reweighted least squares) with an L2 penalty; `None` with
    /// fewer than two rows or only one class.
    pub fn fit(x: &[Vec<f64>], y: &[bool]) -> Option<Self> {
        let n = x.len();
        let positives = y.iter().filter(|v| **v).count();
        if n < 2 || positives == 0 || positives == n {
            return None;
        }
        let d = x[0].len();
        let means: Vec<f64> = (0..d).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n as f64).collect();
        let scales: Vec<f64> = (0..d)
            .map(|j| {
                let var = x.iter().map(|r| (r[j] - means[j]).powi(2)).sum::<f64>() / n as f64;
                if var > 1e-12 { var.sqrt() } else { 0.0 }
            })
            .collect();
        let z: Vec<Vec<f64>> = x
            .iter()
            .map(|r| {
                let mut row = Vec::with_capacity(d + 1);
                row.push(1.0);
                row.extend((0..d).map(|j| if scales[j] > 0.0 { (r[j] - means[j]) / scales[j] } else { 0.0 }));
                row
            })
            .collect();
        let k = d + 1;
        let mut beta = vec![0.0; k];
        let base = positives as f64 / n as f64;
        beta[0] = (base / (1.0 - base)).ln();
        let mut iterations = 0;
        for _ in 0..100 {
            iterations += 1;
            let mut hessian = vec![vec![0.0; k]; k];
            let mut gradient = vec![0.0; k];
            for (row, label) in z.iter().zip(y) {
                let p = sigmoid(row.iter().zip(&beta).map(|(a, b)| a * b).sum());
                let w = (p * (1.0 - p)).max(1e-12);
                let residual = f64::from(u8::from(*label)) - p;
                for a in 0..k {
                    gradient[a] += row[a] * residual;
                    for b in a..k {
                        hessian[a][b] += w * row[a] * row[b];
                    }
                }
            }
            for a in 0..k {
                let (above, rest) = hessian.split_at_mut(a);
                for (b, upper) in above.iter().enumerate() {
                    rest[0][b] = upper[a];
                }
                if a > 0 {
                    // The penalty: constant features (all-zero columns) get weight 0.
                    hessian[a][a] += L2;
                    gradient[a] -= L2 * beta[a];
                }
            }
            let step = solve(hessian, gradient)?;
            let size = step.iter().map(|s| s.abs()).fold(0.0, f64::max);
            for (b, s) in beta.iter_mut().zip(&step) {
                *b += s;
            }
            if size < 1e-9 {
                break;
            }
        }
        Some(Self { intercept: beta[0], weights: beta[1..].to_vec(), means, scales, iterations })
    }

    /// The predicted probability of the label for one row of raw features.
    pub fn predict(&self, x: &[f64]) -> f64 {
        let z: f64 = x
            .iter()
            .enumerate()
            .map(
                |(j, v)| {
                    if self.scales[j] > 0.0 { self.weights[j] * (v - self.means[j]) / self.scales[j] } else { 0.0 }
                },
            )
            .sum();
        sigmoid(self.intercept + z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_small_systems_and_refuses_singular_ones() {
        let x = solve(vec![vec![2.0, 1.0], vec![1.0, 3.0]], vec![3.0, 5.0]).expect("a value");
        assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12, "{x:?}");
        assert!(solve(vec![vec![1.0, 2.0], vec![2.0, 4.0]], vec![1.0, 2.0]).is_none());
    }

    #[test]
    fn recovers_the_direction_of_a_known_logistic_model() {
        // y = 1 with probability σ(-1 + 2 a - b), c is noise; a deterministic scatter.
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64) / (1u64 << 53) as f64
        };
        for _ in 0..20_000 {
            let (a, b, c) = (next() * 4.0 - 2.0, next() * 4.0 - 2.0, next());
            let p = sigmoid(-1.0 + 2.0 * a - b);
            y.push(next() < p);
            x.push(vec![a, b, c, 7.0]);
        }
        let model = Logistic::fit(&x, &y).expect("a value");
        // Standardised weights: a's sd is 4/√12, so its weight is about 2 · 1.155.
        assert!((model.weights[0] - 2.0 * 4.0 / 12f64.sqrt()).abs() < 0.15, "{model:?}");
        assert!((model.weights[1] + 4.0 / 12f64.sqrt()).abs() < 0.1, "{model:?}");
        assert!(model.weights[2].abs() < 0.1 && model.weights[3] == 0.0, "{model:?}");
        assert!(model.predict(&[2.0, -2.0, 0.5, 7.0]) > 0.95);
        assert!(Logistic::fit(&x, &vec![true; x.len()]).is_none());
    }
}
