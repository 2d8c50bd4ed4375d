//! 电子面单: the request signatures of the two e-waybill channels a
//! carrier may use - SF Express's open platform (`msgDigest`, 标准MD5) and
//! 快递100 (`sign`) - pinned to their published vectors.

use crate::signing::{md5_hex, md5_raw};

/// `java.net.URLEncoder.encode(text, "UTF-8")`: letters, digits and
/// `. - * _` kept, space as `+`, every other byte `%XX` (uppercase).
pub fn java_url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || b".-*_".contains(&b) => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// SF Express's `msgDigest` (标准MD5): base64 of the MD5 of the
/// URL-encoded `msgData + timestamp + checkWord`.
pub fn sf_msg_digest(msg_data: &str, timestamp: &str, check_word: &str) -> String {
    use base64::Engine;
    let encoded = java_url_encode(&format!("{msg_data}{timestamp}{check_word}"));
    base64::engine::general_purpose::STANDARD.encode(md5_raw(encoded.as_bytes()))
}

/// 快递100's `sign`: uppercase hex MD5 of `param + t + key + secret`.
pub fn kuaidi100_sign(param: &str, t: &str, key: &str, secret: &str) -> String {
    md5_hex(format!("{param}{t}{key}{secret}").as_bytes()).to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG_DATA: &str = r#"{"language":"zh-CN","orderId":"QIAO-20200618-004"}"#;

    #[test]
    fn sf_matches_the_documented_example() {
        assert_eq!(
            sf_msg_digest(
                MSG_DATA,
                "12312334453453",
                "fjcg5PGKaNpPSHFAZ4QsCOkV71R3zVci"
            ),
            "IIKJtuLVzoFTu4kHI8M8vA=="
        );
        assert_eq!(
            sf_msg_digest(
                MSG_DATA,
                "1652410044726",
                "cURqDC12jflwXdruegDudWwXBVSsQk7t"
            ),
            "qgwN2Vcl2SDRwnNzbX7B6A=="
        );
    }

    #[test]
    fn the_java_encoder_keeps_what_java_keeps() {
        assert_eq!(java_url_encode("a b.c-d*e_f~"), "a+b.c-d*e_f%7E");
        assert_eq!(
            java_url_encode("{\"k\":\"顺\"}"),
            "%7B%22k%22%3A%22%E9%A1%BA%22%7D"
        );
    }

    #[test]
    fn kuaidi100_matches_the_pinned_vector() {
        assert_eq!(
            kuaidi100_sign(r#"{"a":1}"#, "1700000000000", "key", "secret"),
            "02ABE0B0C5C14E06EFBC8395E72B7160"
        );
    }
}
