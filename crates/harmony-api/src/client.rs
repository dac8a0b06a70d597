//! Who is calling, by network address: the TCP peer, or, when the peer is a reverse proxy the
//! operator trusts (`server.trusted_proxies`), the address the proxy says it serves: the
//! right-most entry of `X-Forwarded-For` that is not itself a trusted proxy. From anyone else the
//! header is ignored, so a client cannot choose its own address. Login and registration limits
//! are kept per address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::AppState;

/// One trusted network: an address and how many leading bits must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    bits: u8,
}

impl Network {
    fn parse(raw: &str) -> Result<Self, String> {
        let (addr, bits) = match raw.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (raw, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{raw:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{raw:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)) << 96, self.bits)
                    == masked(u128::from(u32::from(ip)) << 96, self.bits)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.bits) == masked(u128::from(ip), self.bits)
            }
            _ => false,
        }
    }
}

fn masked(value: u128, bits: u8) -> u128 {
    match bits {
        0 => 0,
        b => value & (u128::MAX << (128 - u32::from(b))),
    }
}

/// An IPv4 address seen through an IPv6 socket is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and networks (`10.0.0.0/8, ::1`); empty:
    /// trust no one.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Network::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address, given the TCP peer's and the request's headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                // A hop we cannot read: everything left of it is the client's to invent.
                return peer;
            };
            let ip = canonical(ip);
            if !self.trusts(ip) {
                return ip;
            }
        }
        peer
    }
}

/// The caller's address; `None` when the server was not told the peer (an in-memory call).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self(peer.map(|peer| {
            state.trusted_proxies.client(peer, &parts.headers)
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_str(value).expect("ascii"),
        );
        headers
    }

    #[test]
    fn networks_match_by_prefix() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7 ,fd00::/8").expect("valid");
        assert!(proxies.trusts(ip("10.200.3.4")));
        assert!(proxies.trusts(ip("::ffff:10.1.1.1")), "IPv4-mapped");
        assert!(proxies.trusts(ip("192.168.1.7")));
        assert!(!proxies.trusts(ip("192.168.1.8")));
        assert!(proxies.trusts(ip("fd12::1")));
        assert!(!proxies.trusts(ip("fe80::1")));
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .expect("valid")
            .trusts(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/x"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
        assert!(TrustedProxies::parse("").expect("valid").0.is_empty());
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let proxies = TrustedProxies::parse("10.0.0.1, 10.0.0.2").expect("valid");
        let headers = forwarded("6.6.6.6, 1.2.3.4, 10.0.0.2");
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &headers),
            ip("1.2.3.4"),
            "the right-most untrusted hop; what the client wrote left of it is ignored"
        );
        assert_eq!(
            proxies.client(ip("5.5.5.5"), &headers),
            ip("5.5.5.5"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &forwarded("1.2.3.4, garbage")),
            ip("10.0.0.1"),
            "an unreadable hop stops the walk"
        );
    }
}
