//! Money is `i64` fen (分), never a float.

/// The largest amount anything holds or moves: a face value, a price, a
/// ledger amount (¥1,000,000.00). One cap, the same everywhere.
pub const FEN_MAX: i64 = 100_000_000;

/// Whether `fen` is an amount a record may hold: 0 to [`FEN_MAX`].
pub fn is_valid_fen(fen: i64) -> bool {
    (0..=FEN_MAX).contains(&fen)
}

/// Parses a yuan amount as a merchant types it ("388", "388.5", "388.50")
/// into fen. Rejects negatives, more than two decimals and anything else.
pub fn parse_yuan(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let mut frac_fen: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    if frac.len() == 1 {
        frac_fen *= 10;
    }
    whole
        .checked_mul(100)?
        .checked_add(frac_fen)
        .filter(|fen| *fen <= FEN_MAX)
}

/// Formats fen as yuan with two decimals: 38850 → "388.50".
pub fn format_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn one_cap_holds_for_every_amount() {
        assert_eq!(
            FEN_MAX, 100_000_000,
            "¥1,000,000.00, as the README promises"
        );
        assert!(is_valid_fen(0));
        assert!(is_valid_fen(FEN_MAX));
        assert!(!is_valid_fen(FEN_MAX + 1));
        assert!(!is_valid_fen(-1));
        assert_eq!(parse_yuan("1000000"), Some(FEN_MAX));
        assert_eq!(parse_yuan("1000000.01"), None);
        assert_eq!(parse_yuan("92233720368547758.07"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_amounts_parse_to_fen_and_back() {
        let check =
            |text: &str, expected: Option<i64>| assert_eq!(parse_yuan(text), expected, "{text}");
        check("388", Some(38800));
        check("388.5", Some(38850));
        check("388.05", Some(38805));
        check("0.01", Some(1));
        check("-1", None);
        check("1.234", None);
        check("1e3", None);
        check("", None);
        check(".5", None);
        assert_eq!(format_yuan(38805), "388.05");
        assert_eq!(format_yuan(0), "0.00");
    }
}
