//! Special functions the models need: the log-gamma function and the Gaussian
//! hypergeometric function 2F1, written out so the plugin has no dependencies.

use std::f64::consts::PI;

/// Lanczos coefficients (g = 7, n = 9), accurate to about 1e-15 relative.
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// `ln Γ(x)` for `x > 0` (the models never need it elsewhere).
pub fn ln_gamma(x: f64) -> f64 {
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + LANCZOS_G + 0.5;
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Why a 2F1 value could not be given.
#[derive(Debug, Clone, PartialEq)]
pub enum Hyp2f1Error {
    /// `|z| >= 1`, where the series diverges (the models never need it).
    OutsideDisc(f64),
    /// The series had not converged after the term budget.
    NotConverged { z: f64, terms: usize },
    /// A parameter or the sum was not finite.
    NotFinite,
}

impl std::fmt::Display for Hyp2f1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OutsideDisc(z) => write!(f, "2F1 asked at z = {z}, outside |z| < 1"),
            Self::NotConverged { z, terms } => write!(f, "2F1 series at z = {z} not converged after {terms} terms"),
            Self::NotFinite => write!(f, "2F1 parameters or sum not finite"),
        }
    }
}

/// Terms the series may take before it is declared not converged. At z = 0.999
/// (a horizon a thousand times longer than the customer's observed age plus α)
/// the terms fall by about 0.1 % each, so ~40,000 terms reach 1e-15.
const MAX_TERMS: usize = 200_000;

/// The Gaussian hypergeometric function `2F1(a, b; c; z)` for `0 <= z < 1`
/// and `c` not a non-positive integer, by its power series `Σ (a)_n (b)_n / ((c)_n n!) z^n`.
///
/// Convergence is checked, not assumed: once the ratio of consecutive terms
/// `ρ_n = (a+n)(b+n) z / ((c+n)(n+1))` is below 1 and falling (it is for all
/// large `n`, tending to `z`), the remainder after term `n` is at most
/// `|term_n| ρ / (1 - ρ)`; the sum stops when that bound is below 1e-15 of
/// the sum. Otherwise, after [`MAX_TERMS`], it is an error.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, Hyp2f1Error> {
    if !(a.is_finite() && b.is_finite() && c.is_finite() && z.is_finite()) || (c <= 0.0 && c.fract() == 0.0) {
        return Err(Hyp2f1Error::NotFinite);
    }
    if z.abs() >= 1.0 {
        return Err(Hyp2f1Error::OutsideDisc(z));
    }
    series(a, b, c, z)
}

fn series(a: f64, b: f64, c: f64, z: f64) -> Result<f64, Hyp2f1Error> {
    let mut sum = 1.0_f64;
    let mut term = 1.0_f64;
    for n in 0..MAX_TERMS {
        let nf = n as f64;
        let ratio = (a + nf) * (b + nf) / ((c + nf) * (nf + 1.0)) * z;
        term *= ratio;
        sum += term;
        if !sum.is_finite() {
            return Err(Hyp2f1Error::NotFinite);
        }
        if term == 0.0 {
            return Ok(sum);
        }
        // Every later ratio is at most max(next ratio, |z|) once the ratios
        // are monotone (they are from some n on: a ratio of quadratics tending
        // to z), so the tail is at most a geometric series of that ratio.
        let next = ((a + nf + 1.0) * (b + nf + 1.0) / ((c + nf + 1.0) * (nf + 2.0)) * z).abs();
        let bound_ratio = next.max(z.abs());
        if next <= ratio.abs().max(z.abs()) && bound_ratio < 1.0 {
            let tail = term.abs() * bound_ratio / (1.0 - bound_ratio);
            if tail <= 1e-15 * sum.abs() {
                return Ok(sum);
            }
        }
    }
    Err(Hyp2f1Error::NotConverged { z, terms: MAX_TERMS })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn ln_gamma_matches_known_values() {
        assert!(close(ln_gamma(1.0), 0.0, 1e-14));
        assert!(close(ln_gamma(2.0), 0.0, 1e-14));
        assert!(close(ln_gamma(0.5), PI.sqrt().ln(), 1e-14));
        // Γ(10) = 9! = 362880.
        assert!(close(ln_gamma(10.0), 362_880_f64.ln(), 1e-13));
        // Γ(x + 1) = x Γ(x) across small and large x.
        for &x in &[0.01, 0.3, 1.7, 12.5, 250.0, 1e5] {
            assert!(close(ln_gamma(x + 1.0), ln_gamma(x) + f64::ln(x), 1e-12), "x = {x}");
        }
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        for &z in &[0.0_f64, 0.1, 0.5, 0.9, 0.99, 0.999] {
            // 2F1(1, 1; 2; z) = -ln(1 - z) / z.
            let expect = if z == 0.0 { 1.0 } else { -(1.0 - z).ln() / z };
            assert!(close(hyp2f1(1.0, 1.0, 2.0, z).expect("a value"), expect, 1e-12), "z = {z}");
            // 2F1(a, b; b; z) = (1 - z)^-a.
            assert!(close(hyp2f1(2.5, 3.2, 3.2, z).expect("a value"), (1.0 - z).powf(-2.5), 1e-11), "z = {z}");
        }
        // 2F1(1/2, 1; 3/2; -z²) = atan(z) / z (a negative argument).
        let z = 0.7_f64;
        assert!(close(hyp2f1(0.5, 1.0, 1.5, -z * z).expect("a value"), z.atan() / z, 1e-12));
    }

    #[test]
    fn hyp2f1_refuses_what_it_cannot_sum() {
        assert_eq!(hyp2f1(1.0, 1.0, 2.0, 1.0), Err(Hyp2f1Error::OutsideDisc(1.0)));
        assert_eq!(hyp2f1(1.0, 1.0, 0.0, 0.5), Err(Hyp2f1Error::NotFinite));
        assert_eq!(hyp2f1(f64::NAN, 1.0, 2.0, 0.5), Err(Hyp2f1Error::NotFinite));
        // Slow enough (z within 1e-7 of 1) to exhaust the term budget.
        assert!(matches!(hyp2f1(1.0, 1.0, 2.0, 1.0 - 1e-7), Err(Hyp2f1Error::NotConverged { .. })));
    }
}
