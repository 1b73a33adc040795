//! [`Client`]: what a request brings besides its body — the client address,
//! the user agent and the captcha answer — for the flows of
//! [`Auth`](crate::Auth) that limit, check or record them.
//!
//! The auth router reads it once per request. The address comes from the
//! connection (`ConnectInfo<SocketAddr>`, so serve the app with
//! `into_make_service_with_connect_info::<SocketAddr>()`). Only when the peer
//! is a configured trusted proxy is `X-Forwarded-For` believed, read from the
//! right: the first address that is not itself a trusted proxy is the client.
//! Without a trusted proxy a client cannot pick its own address.
//!
//! An app's own code (a CLI, an admin task, a test) calls the same flows with
//! [`Client::trusted`]: no captcha and no per-address limits (per-login limits
//! still hold).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::extract::connect_info::MockConnectInfo;
use http::HeaderMap;
use http::header::USER_AGENT;
use http::request::Parts;

/// Longest user agent kept, in characters.
const MAX_USER_AGENT: usize = 256;

/// Who is asking, as far as the server can tell.
#[derive(Clone, Debug, Default)]
pub struct Client {
    ip: Option<IpAddr>,
    user_agent: Option<String>,
    captcha: String,
    trusted: bool,
}

impl Client {
    /// An untrusted client (a request): per-address limits apply when `ip`
    /// is known, and the captcha is checked.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        Client {
            ip: ip.map(|ip| ip.to_canonical()),
            user_agent: user_agent.and_then(clean_user_agent),
            captcha: String::new(),
            trusted: false,
        }
    }

    /// The app's own code: no captcha, no per-address limits.
    pub fn trusted() -> Self {
        Client {
            trusted: true,
            ..Client::default()
        }
    }

    /// The captcha widget's answer that came with the request.
    #[must_use]
    pub fn with_captcha(mut self, answer: impl Into<String>) -> Self {
        self.captcha = answer.into();
        self
    }

    /// The client of a request: its address (see the module docs) and user
    /// agent.
    pub fn from_parts(parts: &Parts, trusted_proxies: &[IpAddr]) -> Self {
        let user_agent = parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
        Client::new(client_ip(parts, trusted_proxies), user_agent)
    }

    /// The client address, when known.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The user agent (at most 256 characters, controls removed).
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// The captcha answer ("" when none came).
    pub fn captcha(&self) -> &str {
        &self.captcha
    }

    /// Whether this is the app's own code ([`Client::trusted`]).
    pub fn is_trusted(&self) -> bool {
        self.trusted
    }

    /// The network a per-address limit counts: an IPv4 address, or the /64
    /// of an IPv6 one (one host usually holds a whole /64). `None` for
    /// trusted or unknown clients, which such limits skip.
    pub(crate) fn network(&self) -> Option<String> {
        self.network_with(64)
    }

    /// The wider network of the code-guessing cap: an IPv4 address or an
    /// IPv6 /48 (a site).
    pub(crate) fn site(&self) -> Option<String> {
        self.network_with(48)
    }

    fn network_with(&self, v6_prefix: u32) -> Option<String> {
        if self.trusted {
            return None;
        }
        Some(match self.ip? {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let mask = u128::MAX << (128 - v6_prefix);
                let net = Ipv6Addr::from(u128::from(v6) & mask);
                format!("{net}/{v6_prefix}")
            }
        })
    }
}

/// Truncates and drops control characters, so the value can be stored and
/// shown without surprises.
fn clean_user_agent(ua: &str) -> Option<String> {
    let cleaned: String = ua
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

/// The client address of a request, when the server knows it.
fn client_ip(parts: &Parts, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
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

    #[test]
    fn ipv6_clients_count_per_64_and_codes_per_48() {
        let a = Client::new(Some("2001:db8:1:2:aaaa::1".parse().unwrap()), None);
        let b = Client::new(Some("2001:db8:1:2:bbbb::2".parse().unwrap()), None);
        let c = Client::new(Some("2001:db8:1:3::1".parse().unwrap()), None);
        assert_eq!(a.network(), b.network());
        assert_eq!(a.network().as_deref(), Some("2001:db8:1:2::/64"));
        assert_ne!(a.network(), c.network());
        assert_eq!(a.site(), c.site());
        assert_eq!(a.site().as_deref(), Some("2001:db8:1::/48"));
        let v4 = Client::new(Some("203.0.113.7".parse().unwrap()), None);
        assert_eq!(v4.network().as_deref(), Some("203.0.113.7"));
        let mapped = Client::new(Some("::ffff:203.0.113.7".parse().unwrap()), None);
        assert_eq!(mapped.network(), v4.network());
        assert_eq!(Client::trusted().network(), None);
        assert_eq!(Client::new(None, None).network(), None);
    }

    #[test]
    fn user_agents_are_truncated_and_cleaned() {
        let c = Client::new(None, Some("Mozilla\n/5.0\x1b[31m"));
        assert_eq!(c.user_agent(), Some("Mozilla/5.0[31m"));
        let long = "x".repeat(1000);
        let c = Client::new(None, Some(&long));
        assert_eq!(c.user_agent().map(str::len), Some(MAX_USER_AGENT));
        assert_eq!(Client::new(None, Some(" \t ")).user_agent(), None);
    }
}
