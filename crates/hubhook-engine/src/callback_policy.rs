//! Which callback URLs hubhook will POST to.
//!
//! By default a callback must not reach loopback, private or link-local addresses: the server
//! runs next to databases and cloud metadata endpoints that a customer-supplied URL must not
//! reach (SSRF). The check runs at instance creation and again at every delivery, inside the
//! HTTP client's DNS resolution, so a name that later resolves to a private address (DNS
//! rebinding) is refused too. `--allow-private-callbacks` turns it off (demo, tests, on-premise).

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A callback URL that hubhook will not call, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CallbackRefused(pub String);

#[derive(Debug, Clone, Copy)]
pub struct CallbackPolicy {
    allow_private: bool,
}

impl CallbackPolicy {
    pub fn new(allow_private: bool) -> CallbackPolicy {
        CallbackPolicy { allow_private }
    }

    /// Checks the form of the URL and, unless private targets are allowed, that its host
    /// resolves to public addresses only.
    pub async fn check_url(&self, url: &str) -> Result<(), CallbackRefused> {
        let host = self.check_literal(url)?;
        if self.allow_private {
            return Ok(());
        }
        let Some(host) = host else { return Ok(()) };
        let addrs = tokio::net::lookup_host((host.as_str(), 0))
            .await
            .map_err(|e| {
                CallbackRefused(format!("callback host `{host}` does not resolve: {e}"))
            })?;
        for addr in addrs {
            if is_private(addr.ip()) {
                return Err(CallbackRefused(format!(
                    "callback host `{host}` resolves to the private address {}; start the server with --allow-private-callbacks to allow it",
                    addr.ip()
                )));
            }
        }
        Ok(())
    }

    /// The checks that need no DNS: scheme, host present, and IP-literal hosts (which the
    /// resolver never sees). Returns the host name to resolve, if it is a name.
    pub fn check_literal(&self, url: &str) -> Result<Option<String>, CallbackRefused> {
        let parsed = url::Url::parse(url).map_err(|e| {
            CallbackRefused(format!(
                "callback url `{}` is not a URL: {e}",
                redacted_url(url)
            ))
        })?;
        let url = &redacted_url(url);
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(CallbackRefused(format!(
                "callback url `{url}` must use http or https, not `{}`",
                parsed.scheme()
            )));
        }
        match parsed.host() {
            None => Err(CallbackRefused(format!("callback url `{url}` has no host"))),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip), url).map(|_| None),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip), url).map(|_| None),
            Some(url::Host::Domain(name)) => {
                if !self.allow_private
                    && (name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost"))
                {
                    return Err(CallbackRefused(format!(
                        "callback url `{url}` targets localhost; start the server with --allow-private-callbacks to allow it"
                    )));
                }
                Ok(Some(name.to_string()))
            }
        }
    }

    /// `url` is already redacted.
    fn check_ip(&self, ip: IpAddr, url: &str) -> Result<(), CallbackRefused> {
        if !self.allow_private && is_private(ip) {
            return Err(CallbackRefused(format!(
                "callback url `{url}` targets the private address {ip}; start the server with --allow-private-callbacks to allow it"
            )));
        }
        Ok(())
    }

    /// A DNS resolver for the callback HTTP client that drops private addresses.
    pub fn resolver(&self) -> PolicyResolver {
        PolicyResolver {
            allow_private: self.allow_private,
        }
    }
}

/// A callback URL fit for messages, logs and stored attempt errors: without its query string
/// and user info, which may carry a token (`https://hooks.example/in?token=…`). The query is
/// shown as `?…` so that a reader knows there was one. Text that is not a URL is cut to its
/// part before any `?` or `#`.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let had_query = parsed.query().is_some() || parsed.fragment().is_some();
            parsed.set_query(None);
            parsed.set_fragment(None);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            let mut text = parsed.to_string();
            if had_query {
                text.push_str("?…");
            }
            text
        }
        Err(_) => {
            let cut = url.find(['?', '#', '@']).unwrap_or(url.len());
            url[..cut].chars().take(200).collect()
        }
    }
}

/// Resolves with the system resolver, then applies the policy to every address.
#[derive(Debug, Clone, Copy)]
pub struct PolicyResolver {
    allow_private: bool,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| allow_private || !is_private(a.ip()))
                .collect();
            if allowed.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> = format!(
                    "callback host `{host}` resolves only to private addresses ({addrs:?}); refused"
                )
                .into();
                return Err(refused);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Loopback, private, link-local, carrier-grade NAT, benchmarking, reserved, unspecified,
/// multicast and documentation ranges: nothing a public webhook receiver lives on. IPv6 forms
/// that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that address.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                // Teredo tunnels carry an obfuscated IPv4 address; nothing public needs them.
                || first == 0x2001 && v6.segments()[1] == 0
        }
    }
}

/// The IPv4 address inside an IPv6 address that carries one.
fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let seg = v6.segments();
    let from = |hi: u16, lo: u16| {
        std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated, but still routed by some stacks); not :: or ::1.
    if seg[..6] == [0; 6] && (seg[6] != 0 || seg[7] > 1) {
        return Some(from(seg[6], seg[7]));
    }
    // IPv4-translated ::ffff:0:a.b.c.d.
    if seg[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(from(seg[6], seg[7]));
    }
    // NAT64: the well-known prefix 64:ff9b::/96 and the local-use 64:ff9b:1::/48.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || seg[..3] == [0x64, 0xff9b, 1] {
        return Some(from(seg[6], seg[7]));
    }
    // 6to4 2002:a.b.c.d::/48.
    if seg[0] == 0x2002 {
        return Some(from(seg[1], seg[2]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(ip: &str, private: bool) {
        assert_eq!(is_private(ip.parse().expect("ip")), private, "{ip}");
    }

    #[test]
    fn private_ranges() {
        check("127.0.0.1", true);
        check("10.1.2.3", true);
        check("172.16.0.1", true);
        check("192.168.1.1", true);
        check("169.254.169.254", true);
        check("100.64.0.1", true);
        check("0.0.0.0", true);
        check("::1", true);
        check("fd00::1", true);
        check("fe80::1", true);
        check("::ffff:127.0.0.1", true);
        check("198.18.0.1", true);
        check("192.0.0.8", true);
        check("::ffff:0:a00:1", true);
        check("64:ff9b:1::a00:1", true);
        check("fec0::1", true);
        check("2001:0:4136:e378:8000:63bf:3fff:fdd2", true);
        check("240.0.0.1", true);
        check("::127.0.0.1", true);
        check("64:ff9b::a00:1", true);
        check("2002:c0a8:101::1", true);
        check("64:ff9b::5db8:d822", false);
        check("2002:5db8:d822::1", false);
        check("93.184.216.34", false);
        check("2606:4700::1111", false);
    }

    #[test]
    fn literal_checks() {
        let strict = CallbackPolicy::new(false);
        assert!(strict.check_literal("http://127.0.0.1:9000/hook").is_err());
        assert!(strict.check_literal("http://localhost/hook").is_err());
        assert!(strict.check_literal("ftp://example.com/").is_err());
        assert!(strict.check_literal("not a url").is_err());
        assert_eq!(
            strict.check_literal("https://example.com/x"),
            Ok(Some("example.com".into()))
        );
        let open = CallbackPolicy::new(true);
        assert!(open.check_literal("http://127.0.0.1:9000/hook").is_ok());
    }

    #[test]
    fn urls_in_messages_lose_their_query_and_user_info() {
        assert_eq!(
            redacted_url("https://user:pw@hooks.example/in?token=s3cret#frag"),
            "https://hooks.example/in?…"
        );
        assert_eq!(
            redacted_url("https://hooks.example/in"),
            "https://hooks.example/in"
        );
        assert_eq!(redacted_url("not a url?token=s3cret"), "not a url");
        let strict = CallbackPolicy::new(false);
        let refused = strict
            .check_literal("http://127.0.0.1:9/hook?token=s3cret")
            .unwrap_err();
        assert!(!refused.0.contains("s3cret"), "{}", refused.0);
        assert!(
            refused.0.contains("http://127.0.0.1:9/hook?…"),
            "{}",
            refused.0
        );
    }
}
