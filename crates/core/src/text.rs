//! Limits on the text people type: every free-text field has a named
//! length limit here (or beside its domain, such as `goods::GOODS_NAME_LENGTH_MAX`),
//! counted in characters, so no field grows without bound and a limit is
//! the same wherever the field is written.

/// Staff names, role labels, distributor names and contacts' names.
pub const NAME_CHARS_MAX: usize = 64;
/// Phone numbers as typed (digits, `+`, `-`, spaces).
pub const PHONE_CHARS_MAX: usize = 20;
/// A distributor's contact line (person, phone, messenger id).
pub const CONTACT_CHARS_MAX: usize = 100;
/// Remarks and notes on records (cards, distributors, orders).
pub const REMARK_CHARS_MAX: usize = 200;
/// A search term typed into a filter (part of a card number, a phone).
pub const SEARCH_CHARS_MAX: usize = 64;

/// Whether `text` is longer than `chars_max` characters.
pub fn is_too_long(text: &str, chars_max: usize) -> bool {
    text.chars().nth(chars_max).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_counts_characters_not_bytes() {
        assert!(!is_too_long("", 0));
        assert!(is_too_long("a", 0));
        assert!(!is_too_long("卡券卡券", 4));
        assert!(is_too_long("卡券卡券卡", 4));
    }
}
