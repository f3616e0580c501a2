//! Decimal text to the nearest `f64`, in a few hundred bytes of code: the standard
//! library's parser is correct too, but brings 15 KB of code and tables into every
//! plugin that reads a number with a fraction.
//!
//! Most numbers (at most 19 significant digits, 15 or so of them below 2^53, and a
//! small exponent) take Clinger's fast path: one exact integer times or divided by an
//! exact power of ten, a single correctly rounded operation. Every other number is
//! rounded exactly with big-integer arithmetic: slow (microseconds), but never wrong.

/// Powers of ten that are exact as `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// Significant digits kept; the rest only say whether the number is above what was kept.
/// 800 is more than the 767 a halfway case between two `f64` can need.
const MAX_DIGITS: usize = 800;

/// A decimal number (`12`, `-1.5`, `+.5`, `1e3`, `2.5E-3`) as the nearest `f64`, rounding
/// half to even; `None` for any other text, and for numbers too large for an `f64`.
pub fn parse_f64(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let (negative, mut i) = match bytes.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    // Significant digits (leading zeros dropped), and the decimal exponent of the last one kept.
    let mut digits: Vec<u8> = Vec::new();
    let mut exponent: i64 = 0;
    let mut truncated = false;
    let mut seen = 0;
    let mut fraction = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'0'..=b'9' => {
                seen += 1;
                if digits.len() < MAX_DIGITS {
                    if b != b'0' || !digits.is_empty() {
                        digits.push(b - b'0');
                    }
                    if fraction {
                        exponent -= 1;
                    }
                } else {
                    truncated |= b != b'0';
                    if !fraction {
                        exponent += 1;
                    }
                }
            }
            b'.' if !fraction => fraction = true,
            _ => break,
        }
        i += 1;
    }
    if seen == 0 {
        return None;
    }
    if let Some(b'e' | b'E') = bytes.get(i) {
        i += 1;
        let sign = match bytes.get(i) {
            Some(b'-') => {
                i += 1;
                -1
            }
            Some(b'+') => {
                i += 1;
                1
            }
            _ => 1,
        };
        let start = i;
        let mut e: i64 = 0;
        while let Some(&b @ b'0'..=b'9') = bytes.get(i) {
            e = (e * 10 + i64::from(b - b'0')).min(1 << 40);
            i += 1;
        }
        if i == start {
            return None;
        }
        exponent += sign * e;
    }
    if i != bytes.len() {
        return None;
    }
    if truncated {
        // A digit past the last one kept, strictly between the neighbours that matter.
        digits.push(1);
        exponent -= 1;
    }
    // Trailing zeros only move the exponent.
    while digits.last() == Some(&0) {
        digits.pop();
        exponent += 1;
    }
    let magnitude = magnitude(&digits, exponent)?;
    Some(if negative { -magnitude } else { magnitude })
}

/// `digits × 10^exponent` (digits most significant first, no leading zero).
fn magnitude(digits: &[u8], exponent: i64) -> Option<f64> {
    if digits.is_empty() {
        return Some(0.0);
    }
    // Beyond these the value is surely above `f64::MAX`, or below half the least subnormal.
    let top = digits.len() as i64 + exponent;
    if top > 310 {
        return None;
    }
    if top < -330 {
        return Some(0.0);
    }
    if digits.len() <= 19 {
        let w = digits.iter().fold(0u64, |w, &d| w * 10 + u64::from(d));
        if w < 1 << 53 && exponent.abs() <= 22 {
            let (w, p) = (w as f64, POW10[exponent.unsigned_abs() as usize]);
            return Some(if exponent < 0 { w / p } else { w * p });
        }
    }
    let mut n = Big::from_digits(digits);
    let mut d = Big::one();
    if exponent >= 0 {
        n.mul_pow10(exponent as u32);
    } else {
        d.mul_pow10(exponent.unsigned_abs() as u32);
    }
    // n / d with 65 bits of quotient: shift one of them so that it has that many.
    let shift = 64 + d.bits() as i64 - n.bits() as i64;
    if shift >= 0 {
        n.shl(shift as u32);
    } else {
        d.shl(shift.unsigned_abs() as u32);
    }
    let (q, exact) = n.div(&d);
    round(q, !exact, -shift)
}

/// The nearest `f64` to `q × 2^e` (plus a little if `sticky`), `q` below 2^65.
fn round(mut q: u128, mut sticky: bool, mut e: i64) -> Option<f64> {
    while q >> 64 != 0 {
        sticky |= q & 1 != 0;
        q >>= 1;
        e += 1;
    }
    let q = q as u64;
    if q == 0 {
        return Some(0.0);
    }
    // Keep 53 bits, or fewer where the result is subnormal (its last bit worth 2^-1074).
    let top = 63 - i64::from(q.leading_zeros()) + e;
    let keep_from = (top - 52).max(-1074);
    let drop = keep_from - e;
    if drop <= 0 {
        let value = q as f64 * pow2(e)?;
        return value.is_finite().then_some(value);
    }
    if drop > 64 {
        return Some(0.0);
    }
    let (m, rest) = if drop == 64 { (0, q) } else { (q >> drop, q & ((1 << drop) - 1)) };
    let half = 1u64 << (drop - 1);
    let up = rest > half || (rest == half && (sticky || m & 1 == 1));
    let m = m + u64::from(up);
    let value = m as f64 * pow2(keep_from)?;
    value.is_finite().then_some(value)
}

/// 2^e as an `f64`, for `e` from -1074 to 1023.
fn pow2(e: i64) -> Option<f64> {
    match e {
        -1022..=1023 => Some(f64::from_bits(((e + 1023) as u64) << 52)),
        -1074..=-1023 => Some(f64::from_bits(1 << (e + 1074))),
        _ => None,
    }
}

/// A non-negative big integer, 32-bit limbs, least significant first.
struct Big(Vec<u32>);

impl Big {
    fn one() -> Self {
        Self(vec![1])
    }

    fn from_digits(digits: &[u8]) -> Self {
        let mut n = Self(Vec::with_capacity(digits.len() / 9 + 1));
        for chunk in digits.chunks(9) {
            let value = chunk.iter().fold(0u32, |v, &d| v * 10 + u32::from(d));
            n.mul_add(10u32.pow(chunk.len() as u32), value);
        }
        n
    }

    /// `self × m + a`.
    fn mul_add(&mut self, m: u32, a: u32) {
        let mut carry = u64::from(a);
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow10(&mut self, mut e: u32) {
        while e > 0 {
            let step = e.min(9);
            self.mul_add(10u32.pow(step), 0);
            e -= step;
        }
    }

    fn bits(&self) -> u32 {
        let top = self.0.iter().rposition(|&l| l != 0).map_or(0, |i| i + 1);
        match top {
            0 => 0,
            n => (n as u32 - 1) * 32 + (32 - self.0[n - 1].leading_zeros()),
        }
    }

    fn shl(&mut self, bits: u32) {
        let (limbs, bits) = ((bits / 32) as usize, bits % 32);
        if bits > 0 {
            let mut carry = 0;
            for limb in &mut self.0 {
                let v = (*limb << bits) | carry;
                carry = *limb >> (32 - bits);
                *limb = v;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        self.0.splice(0..0, std::iter::repeat_n(0, limbs));
    }

    fn shr1(&mut self) {
        let mut carry = 0;
        for limb in self.0.iter_mut().rev() {
            let v = (*limb >> 1) | carry;
            carry = *limb << 31;
            *limb = v;
        }
    }

    fn at_least(&self, other: &Self) -> bool {
        let len = self.0.len().max(other.0.len());
        for i in (0..len).rev() {
            let (a, b) = (self.0.get(i).copied().unwrap_or(0), other.0.get(i).copied().unwrap_or(0));
            if a != b {
                return a > b;
            }
        }
        true
    }

    /// `self -= other`, `other` not greater.
    fn sub(&mut self, other: &Self) {
        let mut borrow = 0i64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let v = i64::from(*limb) - i64::from(other.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(v < 0);
            *limb = v.rem_euclid(1 << 32) as u32;
        }
    }

    /// `self / d` (below 2^65 here) and whether it is exact; `self` becomes the remainder.
    fn div(&mut self, d: &Self) -> (u128, bool) {
        let bits = (self.bits() + 1).saturating_sub(d.bits());
        let mut shifted = Self(d.0.clone());
        shifted.shl(bits.saturating_sub(1));
        let mut q = 0u128;
        for _ in 0..bits {
            q <<= 1;
            if self.at_least(&shifted) {
                self.sub(&shifted);
                q |= 1;
            }
            shifted.shr1();
        }
        (q, self.bits() == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) {
        let want = text.parse::<f64>().ok().filter(|f| f.is_finite());
        assert_eq!(parse_f64(text).map(f64::to_bits), want.map(f64::to_bits), "{text}");
    }

    #[test]
    fn hard_cases_round_as_the_standard_library_does() {
        for text in [
            "0",
            "-0",
            "0.0",
            "1",
            "-1",
            "0.1",
            "0.2",
            "0.3",
            "1.25",
            "3.14159",
            "1e22",
            "1e23",
            "1e-22",
            "1e-23",
            "123456789012345678",
            "9007199254740992",
            "9007199254740993",
            "9007199254740995",
            "18446744073709551615",
            "18446744073709551616",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.7976931348623159e308",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "2.2250738585072012e-308",
            "4.9406564584124654e-324",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "5e-324",
            "1e-400",
            "1e400",
            "0.000001",
            "1e-7",
            "123.456e7",
            "0.30000000000000004",
            "7.038531e-26",
            "8.533e+68",
            "4.1006e-184",
            "9.998e+307",
            "9.9538452227e-280",
            "6.47660115e-260",
            "7.4e+47",
            "5.92e+48",
            "7.35e+66",
            "8.32116e+55",
            "2.2250738585072011e-308",
            "1.00000000000000011102230246251565404236316680908203125",
            "1.00000000000000011102230246251565404236316680908203124",
            "1.00000000000000011102230246251565404236316680908203126",
            "9007199254740993.0000000000000000000000000000000000000000000000000000000000000000000000001",
            "+.5",
            ".5e1",
            "5.",
            "-0.000000000000000000000000000000000001e38",
        ] {
            check(text);
        }
        // A halfway case spelled with 800+ digits, the last one tipping it over.
        let long = format!("1.00000000000000011102230246251565404236316680908203125{}1", "0".repeat(900));
        check(&long);
        let long = format!("1.00000000000000011102230246251565404236316680908203125{}", "0".repeat(900));
        check(&long);
    }

    #[test]
    fn not_numbers() {
        for text in
            ["", "-", "+", ".", "e5", "1e", "1e+", "--1", "1..2", "1.2.3", "inf", "NaN", "0x10", " 1", "1 ", "1_0"]
        {
            assert_eq!(parse_f64(text), None, "{text:?}");
        }
    }

    /// Random digits and exponents, against the standard library.
    #[test]
    fn random_numbers_round_as_the_standard_library_does() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = 1 + (next() % 25) as usize;
            let digits: String = (0..len).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
            let point = (next() % (len as u64 + 1)) as usize;
            let exponent = (next() % 700) as i64 - 350;
            let text = format!("{}.{}e{exponent}", &digits[..point], &digits[point..]);
            let text = if point == 0 { format!("0{text}") } else { text };
            check(&text);
            // Exactly representable values written in full, and their neighbours.
            let f = f64::from_bits(next() >> 1);
            if f.is_finite() {
                check(&format!("{f:e}"));
                check(&format!("{f:?}"));
                check(&format!("{:.30e}", f));
            }
        }
    }
}
