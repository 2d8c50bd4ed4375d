//! Money is `i64` fen (分), never a float.

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
    whole.checked_mul(100)?.checked_add(frac_fen)
}

/// Formats fen as yuan with two decimals: 38850 → "388.50".
pub fn format_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
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
