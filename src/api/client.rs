//! Who is calling: the client's IP address, for the throttles of what can
//! be tried without a credential (admin login, token requests, terminal
//! bring-up). The peer address of the TCP connection, unless the peer is
//! one of `security.trusted_proxies`: then the right-most address of
//! `X-Forwarded-For` that is not itself a trusted proxy (the left part of
//! that header is whatever the client wrote).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;
use crate::model::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        // The accept loop puts the peer in every request.
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or_else(|| Error::internal("request without its peer address"))?;
        Ok(ClientIp(client_ip(
            peer.ip(),
            &parts.headers,
            &state.core.config().security.trusted_proxies,
        )))
    }
}

/// The client's address as `trusted` proxies report it.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| same_ip(t, ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // From the right: hops our proxies appended, then the client. An
    // unreadable hop ends what can be believed.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            Err(_) => break,
        }
    }
    client
}

/// A hop as proxies write it: an address, or an address with a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:443`), or a bracketed IPv6 address.
fn parse_hop(hop: &str) -> Result<IpAddr, ()> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .ok_or(())?
                .parse::<IpAddr>()
                .map_err(|_| ())
        })
        .map_err(|_| ())
}

fn same_ip(a: &IpAddr, b: &IpAddr) -> bool {
    let canon = |ip: &IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(*ip, IpAddr::V4),
        v4 => *v4,
    };
    canon(a) == canon(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_peer_unless_it_is_a_trusted_proxy() {
        let proxy = [ip("10.0.0.1")];
        // (peer, X-Forwarded-For headers, the client's address)
        let cases: &[(&str, &[&str], &str)] = &[
            // Not a proxy: its header is the client's own writing.
            ("203.0.113.9", &["1.2.3.4"], "203.0.113.9"),
            // A proxy: the right-most address it did not write itself.
            ("10.0.0.1", &["1.2.3.4, 198.51.100.7"], "198.51.100.7"),
            (
                "::ffff:10.0.0.1",
                &["1.2.3.4", "198.51.100.7, 10.0.0.1"],
                "198.51.100.7",
            ),
            // Garbage to the left of what the proxy appended is ignored.
            ("10.0.0.1", &["evil, 198.51.100.7"], "198.51.100.7"),
            // Hops with ports, and bracketed IPv6.
            ("10.0.0.1", &["198.51.100.7:5678"], "198.51.100.7"),
            ("10.0.0.1", &["[2001:db8::9]:443"], "2001:db8::9"),
            ("10.0.0.1", &["[2001:db8::9]"], "2001:db8::9"),
            // No usable header: the proxy itself.
            ("10.0.0.1", &["nonsense"], "10.0.0.1"),
            ("10.0.0.1", &[], "10.0.0.1"),
        ];
        for (peer, xff, want) in cases {
            assert_eq!(
                client_ip(ip(peer), &headers(xff), &proxy),
                ip(want),
                "{peer} {xff:?}"
            );
        }
    }
}
