//! Standard Webhooks as kaquan sends them: the `whsec_` secret, the
//! `webhook-signature` header over `id.timestamp.body`, and which addresses
//! a webhook may reach. The outbox and the endpoints are in [`crate::event`].

/// A Standard Webhooks secret: `whsec_` and the base64 of 24–64 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// A new secret of 32 random bytes.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Reads `whsec_<base64>`; `None` unless it holds 24–64 bytes.
    pub fn parse(text: &str) -> Option<Self> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.strip_prefix("whsec_")?)
            .ok()?;
        (24..=64).contains(&bytes.len()).then_some(Self(bytes))
    }

    /// `whsec_<base64>`, as the merchant copies it once.
    pub fn to_text(&self) -> String {
        use base64::Engine;
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(&self.0)
        )
    }

    /// `v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
        use base64::Engine;
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC takes any key length");
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        )
    }
}

/// The `webhook-signature` header: one `v1,…` per secret, space-separated,
/// so a receiver holding either the new or the old secret (during
/// rotation's grace period) accepts the message.
pub fn signature_header(
    secrets: &[WebhookSecret],
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(webhook_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a webhook may be sent to `ip`: not loopback, private, link-local,
/// shared (CGNAT), multicast, reserved or unspecified, in IPv4 or IPv6
/// (IPv4-mapped and NAT64 addresses are judged by the IPv4 inside), unless
/// the operator allowed private addresses.
pub fn is_public_address(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    let v4 = |ip: Ipv4Addr| {
        let [a, b, ..] = ip.octets();
        !(ip.is_unspecified()
            || ip.is_loopback()
            || ip.is_private()
            || ip.is_link_local()
            || ip.is_multicast()
            || ip.is_broadcast()
            || ip.is_documentation()
            || a == 0
            || a >= 240
            || (a == 100 && (64..128).contains(&b))
            || (a == 198 && (18..20).contains(&b))
            || (a == 192 && b == 0 && ip.octets()[2] == 0))
    };
    match ip {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return v4(mapped);
            }
            let segments = ip.segments();
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return v4(Ipv4Addr::new(a, b, c, d));
            }
            !(ip.is_unspecified()
                || ip.is_loopback()
                || ip.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80
                || (segments[0] == 0x2001 && segments[1] == 0x0db8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_published_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let other = WebhookSecret::generate();
        let header = signature_header(&[secret.clone(), other.clone()], "m", 1, b"b");
        assert_eq!(
            header,
            format!("{} {}", secret.sign("m", 1, b"b"), other.sign("m", 1, b"b"))
        );
        assert_eq!(WebhookSecret::parse(&other.to_text()), Some(other));
        assert_eq!(format!("{secret:?}"), "WebhookSecret(…)");
    }

    #[test]
    fn a_secret_is_whsec_and_24_to_64_bytes() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
        assert!(WebhookSecret::parse("whsec_not base64").is_none());
        assert!(WebhookSecret::parse("whsec_AAAA").is_none(), "3 bytes");
        assert!(
            WebhookSecret::parse(&format!("whsec_{}", "A".repeat(84))).is_some(),
            "63 bytes"
        );
        assert!(
            WebhookSecret::parse(&format!("whsec_{}", "A".repeat(88))).is_none(),
            "66 bytes"
        );
        assert!(WebhookSecret::generate().to_text().starts_with("whsec_"));
    }

    #[test]
    fn only_public_addresses_are_reached_unless_allowed_documentation_prefix_included() {
        let public: std::net::IpAddr = "2001:4860::8888".parse().unwrap();
        assert!(
            is_public_address(public),
            "2001:: outside the documentation prefix"
        );
        let docs: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        assert!(!is_public_address(docs));
        let other: std::net::IpAddr = "2002:db8::1".parse().unwrap();
        assert!(is_public_address(other));
    }

    #[test]
    fn only_public_addresses_are_reached_unless_allowed() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public_address(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "192.0.1.1",
            "223.255.255.255",
            "2400:3200::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public_address(public.parse().unwrap()), "{public}");
        }
    }
}
