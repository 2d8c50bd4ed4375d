//! The client's address behind a reverse proxy. Per-client limits (sign-in,
//! 兑换防刷, the delivery page) count by it. The TCP peer is the client
//! unless it is one of the operator's `trusted_proxies`; then the client is
//! the right-most address of `X-Forwarded-For` that is not a trusted proxy
//! (what nginx's `$proxy_add_x_forwarded_for` appends). A client can write
//! anything to the left of that header, so nothing further left is read,
//! and without trusted proxies the header is ignored altogether.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::net::{IpAddr, SocketAddr};

/// Networks whose requests carry the client's address in `X-Forwarded-For`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Reads `10.0.0.0/8`, `127.0.0.1`, `::1/128`; the error names what is wrong.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in entries {
            let (ip, bits) = match entry.trim().split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (entry.trim(), None),
            };
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("trusted_proxies: {entry:?} is not an address or network"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits =
                match bits {
                    None => max,
                    Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| {
                        format!("trusted_proxies: {entry:?} has a bad prefix length")
                    })?,
                };
            nets.push((ip, bits));
        }
        Ok(TrustedProxies(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0
            .iter()
            .any(|&(net, bits)| match (canonical(net), ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
                (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
                _ => false,
            })
    }

    /// The client of a request from `peer` with these `X-Forwarded-For` values.
    pub fn client<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if self.contains(ip) => client = ip,
                Ok(ip) => return canonical(ip),
                // A hop that is not an address: go no further left.
                Err(_) => return client,
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(net: &[u8], address: &[u8], bits: u8) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if net[..whole] != address[..whole] {
        return false;
    }
    rest == 0 || (net[whole] ^ address[whole]) >> (8 - rest) == 0
}

/// The request's client address (see the module's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// As the per-client limits key it.
    pub fn key(&self) -> String {
        self.0.to_string()
    }
}

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or_else(|| {
                ApiError::Internal("the server was started without peer addresses".into())
            })?;
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        Ok(ClientAddress(
            state.trusted_proxies.client(peer.ip(), forwarded),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_hold_what_their_prefix_covers() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8", "192.168.1.7", "fd00::/8"]).unwrap();
        assert!(trusted.contains(ip("10.255.0.1")));
        assert!(!trusted.contains(ip("11.0.0.1")));
        assert!(trusted.contains(ip("192.168.1.7")));
        assert!(!trusted.contains(ip("192.168.1.8")));
        assert!(
            trusted.contains(ip("::ffff:10.1.2.3")),
            "IPv4 mapped into IPv6"
        );
        assert!(trusted.contains(ip("fd12::1")));
        assert!(!trusted.contains(ip("fe80::1")));
        let odd = TrustedProxies::parse(["172.16.0.0/12"]).unwrap();
        assert!(odd.contains(ip("172.31.255.255")));
        assert!(!odd.contains(ip("172.32.0.0")));
        assert!(TrustedProxies::parse(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(["nginx"]).is_err());
        assert!(TrustedProxies::parse(["::/129"]).is_err());
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let trusted = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let client = |peer: &str, header: &[&str]| trusted.client(ip(peer), header.iter().copied());
        // Not from a proxy: the header is the client's own word, ignored.
        assert_eq!(client("203.0.113.9", &["1.2.3.4"]), ip("203.0.113.9"));
        assert_eq!(client("10.0.0.2", &["203.0.113.5"]), ip("203.0.113.5"));
        // What the client wrote is left of what the proxy appended.
        assert_eq!(
            client("10.0.0.2", &["1.2.3.4, 203.0.113.5"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client("10.0.0.2", &["203.0.113.5, 10.0.0.3"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client("10.0.0.2", &["1.1.1.1", "203.0.113.5"]),
            ip("203.0.113.5")
        );
        // No header, or only proxies, or garbage: the last trusted hop.
        assert_eq!(client("10.0.0.2", &[]), ip("10.0.0.2"));
        assert_eq!(client("10.0.0.2", &["10.0.0.3"]), ip("10.0.0.3"));
        assert_eq!(client("10.0.0.2", &["1.2.3.4, nonsense"]), ip("10.0.0.2"));
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("10.0.0.2"), ["203.0.113.5"].into_iter()),
            ip("10.0.0.2")
        );
    }
}
