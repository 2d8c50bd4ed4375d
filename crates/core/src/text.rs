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

/// A settings field: at most `chars_max` characters and no control
/// character; the error names the field.
pub fn check_field(what: &str, value: &str, chars_max: usize) -> Result<(), String> {
    if is_too_long(value, chars_max) || value.chars().any(char::is_control) {
        Err(format!("{what}最多 {chars_max} 个字符"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_bounded_and_free_of_control_characters() {
        assert_eq!(check_field("签名", "果园", 2), Ok(()));
        assert_eq!(
            check_field("签名", "果园仓", 2),
            Err("签名最多 2 个字符".into())
        );
        assert!(check_field("签名", "果\u{7}", 2).is_err());
    }

    #[test]
    fn a_limit_counts_characters_not_bytes() {
        assert!(!is_too_long("", 0));
        assert!(is_too_long("a", 0));
        assert!(!is_too_long("卡券卡券", 4));
        assert!(is_too_long("卡券卡券卡", 4));
    }
}
