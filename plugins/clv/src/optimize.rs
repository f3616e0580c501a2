//! Nelder–Mead minimisation: derivative-free, robust on the smooth, low-
//! dimensional (3–4 parameter) log-space likelihoods the models fit.

/// Where a minimisation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    /// The best point found.
    pub x: Vec<f64>,
    /// The objective there.
    pub value: f64,
    /// Objective evaluations used.
    pub evaluations: usize,
    /// Whether the simplex shrank below the tolerances before the budget ran out.
    pub converged: bool,
}

/// Tolerances and budget of [`nelder_mead`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Largest spread of objective values across the simplex at convergence,
    /// relative to `1 + |best value|`.
    pub f_tol: f64,
    /// Largest distance of a vertex from the best one at convergence.
    pub x_tol: f64,
    /// Objective evaluations allowed.
    pub max_evaluations: usize,
    /// Size of the first simplex's steps along each axis.
    pub initial_step: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self { f_tol: 1e-12, x_tol: 1e-7, max_evaluations: 20_000, initial_step: 0.5 }
    }
}

/// Restarts after the first run, at most.
const RESTARTS: usize = 3;

/// Minimise `f` from `start` with the Nelder–Mead simplex method (standard
/// coefficients: reflection 1, expansion 2, contraction ½, shrink ½). A
/// non-finite objective counts as +∞, so `f` may refuse a region by
/// returning NaN or ∞. Nelder–Mead can stall on a collapsed simplex, so
/// after it stops the search restarts from the best point with a fresh,
/// smaller simplex; it has converged once a restart improves the objective by
/// no more than 1e-9 (relative). A search that keeps improving until the
/// budget runs out is reported as not converged.
pub fn nelder_mead(f: &mut dyn FnMut(&[f64]) -> f64, start: &[f64], options: Options) -> Minimum {
    // Each run gets a share of the budget, so that a run crawling along a flat ridge
    // (parameters the data do not pin down) leaves room for the restarts that show
    // the objective no longer moves.
    let per_run = (options.max_evaluations / (RESTARTS + 1)).max(1);
    let mut best = simplex_run(f, start, options, per_run);
    let mut evaluations = best.evaluations;
    let mut step = options.initial_step;
    for _ in 0..RESTARTS {
        let budget = per_run.min(options.max_evaluations.saturating_sub(evaluations));
        if budget == 0 {
            break;
        }
        step *= 0.2;
        let next = simplex_run(f, &best.x, Options { initial_step: step, ..options }, budget);
        evaluations += next.evaluations;
        let improvement = best.value - next.value;
        // Converged in value: a restart from the optimum finds nothing better. On a
        // ridge the parameters along it may still drift; the objective does not.
        let settled = improvement <= 1e-9 * (1.0 + best.value.abs());
        if next.value < best.value {
            best = next;
        }
        if settled {
            return Minimum { converged: true, evaluations, ..best };
        }
    }
    Minimum { converged: false, evaluations, ..best }
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { f64::INFINITY }
}

fn simplex_run(f: &mut dyn FnMut(&[f64]) -> f64, start: &[f64], options: Options, budget: usize) -> Minimum {
    let n = start.len();
    let mut evaluations = 0;
    let mut eval = |x: &[f64], evaluations: &mut usize| {
        *evaluations += 1;
        finite(f(x))
    };
    let mut points: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
    points.push(start.to_vec());
    for i in 0..n {
        let mut p = start.to_vec();
        p[i] += options.initial_step;
        points.push(p);
    }
    let mut values: Vec<f64> = points.iter().map(|p| eval(p, &mut evaluations)).collect();
    let mut converged = false;
    while evaluations < budget {
        // Order the vertices best first.
        let order = ascending(&values);
        points = order.iter().map(|&i| points[i].clone()).collect();
        values = order.iter().map(|&i| values[i]).collect();

        let spread = values[n] - values[0];
        let size = points[1..]
            .iter()
            .map(|p| p.iter().zip(&points[0]).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max))
            .fold(0.0, f64::max);
        if spread.is_finite() && spread <= options.f_tol * (1.0 + values[0].abs()) && size <= options.x_tol {
            converged = true;
            break;
        }

        let centroid: Vec<f64> = (0..n).map(|k| points[..n].iter().map(|p| p[k]).sum::<f64>() / n as f64).collect();
        let along = |t: f64| -> Vec<f64> { (0..n).map(|k| centroid[k] + t * (points[n][k] - centroid[k])).collect() };

        let reflected = along(-1.0);
        let fr = eval(&reflected, &mut evaluations);
        if fr < values[0] {
            let expanded = along(-2.0);
            let fe = eval(&expanded, &mut evaluations);
            if fe < fr {
                points[n] = expanded;
                values[n] = fe;
            } else {
                points[n] = reflected;
                values[n] = fr;
            }
            continue;
        }
        if fr < values[n - 1] {
            points[n] = reflected;
            values[n] = fr;
            continue;
        }
        // Contract: outside if the reflection beat the worst vertex, inside otherwise.
        let (contracted, fc) = if fr < values[n] {
            let c = along(-0.5);
            let fc = eval(&c, &mut evaluations);
            (c, fc)
        } else {
            let c = along(0.5);
            let fc = eval(&c, &mut evaluations);
            (c, fc)
        };
        if fc < values[n].min(fr) {
            points[n] = contracted;
            values[n] = fc;
            continue;
        }
        // Shrink towards the best vertex.
        for i in 1..=n {
            let shrunk: Vec<f64> = (0..n).map(|k| points[0][k] + 0.5 * (points[i][k] - points[0][k])).collect();
            values[i] = eval(&shrunk, &mut evaluations);
            points[i] = shrunk;
        }
    }
    let best = (0..=n).min_by(|&i, &j| values[i].total_cmp(&values[j])).unwrap_or(0);
    Minimum { x: points[best].clone(), value: values[best], evaluations, converged }
}

/// Positions of `values` from the smallest value up (equal values in position order).
/// The plugin's one sort: each `sort_by` closure puts another copy of the standard
/// library's sort in the component.
pub fn ascending(values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let mut rosenbrock = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let m = nelder_mead(&mut rosenbrock, &[-1.2, 1.0], Options::default());
        assert!(m.converged, "{m:?}");
        assert!((m.x[0] - 1.0).abs() < 1e-4 && (m.x[1] - 1.0).abs() < 1e-4, "{m:?}");
    }

    #[test]
    fn finds_a_four_dimensional_quadratic_minimum() {
        let target = [0.3, -2.0, 1.5, 4.0];
        let mut f =
            |x: &[f64]| x.iter().zip(&target).enumerate().map(|(i, (a, b))| (i + 1) as f64 * (a - b).powi(2)).sum();
        let m = nelder_mead(&mut f, &[0.0; 4], Options::default());
        assert!(m.converged, "{m:?}");
        for (a, b) in m.x.iter().zip(&target) {
            assert!((a - b).abs() < 1e-4, "{m:?}");
        }
    }

    #[test]
    fn avoids_regions_where_the_objective_is_not_finite() {
        // ln is NaN below 0: the minimum of x - ln x is at 1.
        let mut f = |x: &[f64]| x[0] - x[0].ln();
        let m = nelder_mead(&mut f, &[3.0], Options::default());
        assert!(m.converged && (m.x[0] - 1.0).abs() < 1e-4, "{m:?}");
    }

    #[test]
    fn says_when_the_budget_ran_out() {
        let mut rosenbrock = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let m = nelder_mead(&mut rosenbrock, &[-1.2, 1.0], Options { max_evaluations: 30, ..Options::default() });
        assert!(!m.converged, "{m:?}");
        assert!(m.value.is_finite());
    }
}
