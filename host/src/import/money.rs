//! Amounts written as decimal text ("19.99") read into integer minor units, exactly:
//! the digits are parsed as digits, never through a float.

/// How many minor units make a major unit in `currency`, as a power of ten (ISO 4217).
/// Most currencies have cents; these are the exceptions a store is likely to use.
pub fn minor_unit_exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND"
        | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Why an amount could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not an amount such as 19.99")]
    NotANumber(String),
    #[error("`{text}` has more than {exponent} decimal places")]
    TooPrecise { text: String, exponent: u32 },
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// Reads `text` ("19.99", "-5", "1,234.50", "$3.10") as minor units of a currency with
/// `exponent` decimal places. Extra decimal places are accepted only when they are zeros.
pub fn parse_minor_units(text: &str, exponent: u32) -> Result<i64, MoneyError> {
    let not_a_number = || MoneyError::NotANumber(text.to_owned());
    let trimmed = text.trim();
    let (negative, unsigned) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    // Exports sometimes carry a currency symbol or thousands separators.
    let unsigned = unsigned.trim_start_matches(['$', '€', '£', '¥']);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    // Commas are thousands separators only where they group digits by three: "12,00"
    // is a decimal comma, and reading it as 1200 would be wrong by a factor of 100.
    let mut groups = whole.split(',');
    let lead = groups.next().unwrap_or_default();
    if whole.contains(',') && (lead.is_empty() || lead.len() > 3 || groups.clone().any(|g| g.len() != 3)) {
        return Err(not_a_number());
    }
    let whole: String = whole.chars().filter(|c| *c != ',').collect();
    if (whole.is_empty() && fraction.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(not_a_number());
    }
    let (kept, dropped) = fraction.split_at(fraction.len().min(exponent as usize));
    if dropped.bytes().any(|b| b != b'0') {
        return Err(MoneyError::TooPrecise { text: text.to_owned(), exponent });
    }
    let overflow = || MoneyError::Overflow(text.to_owned());
    let mut value: i64 = 0;
    let padding = exponent as usize - kept.len();
    for digit in whole.bytes().chain(kept.bytes()).chain(std::iter::repeat_n(b'0', padding)) {
        value = value.checked_mul(10).and_then(|v| v.checked_add(i64::from(digit - b'0'))).ok_or_else(overflow)?;
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_decimal_text_exactly() {
        assert_eq!(parse_minor_units("19.99", 2), Ok(1999));
        assert_eq!(parse_minor_units("0.1", 2), Ok(10));
        assert_eq!(parse_minor_units("5", 2), Ok(500));
        assert_eq!(parse_minor_units(" 1,234.50 ", 2), Ok(123_450));
        assert_eq!(parse_minor_units("-3.00", 2), Ok(-300));
        assert_eq!(parse_minor_units("$7.05", 2), Ok(705));
        assert_eq!(parse_minor_units(".5", 2), Ok(50));
        assert_eq!(parse_minor_units("1500", 0), Ok(1500));
        assert_eq!(parse_minor_units("1.234", 3), Ok(1234));
        assert_eq!(parse_minor_units("2.500", 2), Ok(250));
        // 0.29 is not exactly representable as a float; the digits are.
        assert_eq!(parse_minor_units("1000000.29", 2), Ok(100_000_029));
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        assert!(matches!(parse_minor_units("", 2), Err(MoneyError::NotANumber(_))));
        assert!(matches!(parse_minor_units("abc", 2), Err(MoneyError::NotANumber(_))));
        assert!(matches!(parse_minor_units("1.2.3", 2), Err(MoneyError::NotANumber(_))));
        assert!(matches!(parse_minor_units("12,00", 2), Err(MoneyError::NotANumber(_))));
        assert!(matches!(parse_minor_units("1234,567.00", 2), Err(MoneyError::NotANumber(_))));
        assert!(matches!(parse_minor_units("1e5", 2), Err(MoneyError::NotANumber(_))));
        assert!(matches!(parse_minor_units("19.999", 2), Err(MoneyError::TooPrecise { .. })));
        assert!(matches!(parse_minor_units("99999999999999999999", 2), Err(MoneyError::Overflow(_))));
    }

    #[test]
    fn knows_currencies_without_cents() {
        assert_eq!(minor_unit_exponent("USD"), 2);
        assert_eq!(minor_unit_exponent("JPY"), 0);
        assert_eq!(minor_unit_exponent("KWD"), 3);
    }
}
