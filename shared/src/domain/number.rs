//! Numbers as JSON gives them: JSON Schema counts an integral number written with a
//! fraction or an exponent (`320.0`, `1e3`) as an integer, and so does this
//! backend — within what a double holds exactly.

/// Largest integer a JSON number written as a double holds exactly (2^53).
pub const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// `n` as a non-negative integer: an integer, or an integral double up to
/// [`MAX_EXACT_INTEGER`] (`320.0`, `1e3`); `None` for a fraction, a negative or a
/// double beyond what it holds exactly.
pub fn whole_number(n: &serde_json::Number) -> Option<u64> {
    if let Some(integer) = n.as_u64() {
        return Some(integer);
    }
    let double = n.as_f64()?;
    (double.fract() == 0.0 && (0.0..=MAX_EXACT_INTEGER as f64).contains(&double))
        .then_some(double as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> serde_json::Number {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn integral_numbers_are_integers_whatever_their_spelling() {
        for (text, want) in [
            ("320", Some(320)),
            ("320.0", Some(320)),
            ("1e3", Some(1000)),
            ("1.5e1", Some(15)),
            ("0.0", Some(0)),
            ("9007199254740992.0", Some(MAX_EXACT_INTEGER)),
        ] {
            assert_eq!(whole_number(&number(text)), want, "{text}");
        }
        for text in ["320.5", "-1", "-1.0", "1e300", "9007199254740994.0", "1e-3"] {
            assert_eq!(whole_number(&number(text)), None, "{text}");
        }
    }
}
