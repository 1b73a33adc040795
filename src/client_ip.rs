//! The client's address, for per-address rate limits.
//!
//! It comes from the connection (`ConnectInfo<SocketAddr>`, so serve the app
//! with `into_make_service_with_connect_info::<SocketAddr>()`). Only when the
//! peer is a configured trusted proxy is `X-Forwarded-For` believed, read
//! from the right: the first address that is not itself a trusted proxy is
//! the client. Without a trusted proxy a client cannot pick its own address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::extract::connect_info::MockConnectInfo;
use http::HeaderMap;
use http::request::Parts;

/// The client address of a request, when the server knows it.
pub fn client_ip(parts: &Parts, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let ext = &parts.extensions;
    // `MockConnectInfo` is what tests and in-process callers install instead.
    let addr = match ext.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => addr,
        None => &ext.get::<MockConnectInfo<SocketAddr>>()?.0,
    };
    let peer = addr.ip().to_canonical();
    Some(forwarded_client(peer, &parts.headers, trusted_proxies))
}

fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip.to_canonical()) => continue,
            Ok(ip) => return ip.to_canonical(),
            // A garbled entry: stop trusting the chain at this point.
            Err(_) => return peer,
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let spoofed = headers("1.2.3.4, 203.0.113.7");
        assert_eq!(forwarded_client(client, &spoofed, &[proxy]), client);
        assert_eq!(forwarded_client(proxy, &spoofed, &[proxy]), client);
        assert_eq!(
            forwarded_client(proxy, &headers("nonsense"), &[proxy]),
            proxy
        );
        assert_eq!(forwarded_client(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }
}
