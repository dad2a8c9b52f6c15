//! Where a webhook may be sent: the SSRF guard.
//!
//! A webhook URL is user input that makes the server open a connection, so without a guard a
//! user could make Taskstream POST into its own network (a cloud metadata service at
//! 169.254.169.254, an admin port on localhost, a database on 10.x). [`TargetPolicy`] refuses
//! every address that is not globally routable — loopback, private (RFC 1918, unique local),
//! link-local, carrier-grade NAT, unspecified, multicast, documentation and reserved ranges —
//! unless an operator lists it in the allow-list (`WEBHOOK_ALLOW_PRIVATE`, CIDRs).
//!
//! IPv6 addresses that carry an IPv4 address a network may route to ([`embedded_ipv4`]:
//! IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`, IPv4-compatible
//! `::a.b.c.d`, 6to4 `2002:AABB:CCDD::/16` and NAT64 `64:ff9b::/96`) are judged by that IPv4
//! address, exactly as the IPv4 literal would be (so `[::ffff:127.0.0.1]` is loopback, and
//! allow-listing `127.0.0.1` allows it too). Two forms are refused whatever they carry, because
//! where the IPv4 address sits is not fixed or not the destination: Teredo (`2001::/32`, a
//! deprecated tunnel whose client address is obfuscated and whose relay is chosen by the
//! network) and NAT64 local-use (`64:ff9b:1::/48`, RFC 8215: not globally reachable, and its
//! operator may place the IPv4 address at any RFC 6052 offset). The allow-list can still
//! permit them.
//!
//! It is applied where it cannot be bypassed: to the URL's host when it is an IP literal
//! (before any connection), and to every address a host name resolves to ([`GuardedResolver`],
//! installed as the HTTP client's resolver, so the address checked is the address connected
//! to and DNS rebinding does not help). Redirects are never followed (a 3xx is a failure), and
//! proxies from the environment are not used.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Why a target was refused; a permanent failure of the delivery.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the webhook URL is not valid: {0}")]
    InvalidUrl(String),
    #[error("the webhook URL must be http or https, not {0}")]
    Scheme(String),
    #[error(
        "refused to send to {host}: it is {address}, a {kind} address; webhooks go to public \
         addresses only unless WEBHOOK_ALLOW_PRIVATE lists it"
    )]
    Refused {
        host: String,
        address: IpAddr,
        kind: &'static str,
    },
    #[error("{0} does not resolve to any address")]
    Unresolved(String),
}

/// The SSRF policy: public addresses, plus the allow-listed networks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allowed: Vec<IpNet>,
}

impl TargetPolicy {
    /// Public addresses only.
    pub fn public_only() -> TargetPolicy {
        TargetPolicy::default()
    }

    /// Public addresses and `allowed`.
    pub fn with_allowed(allowed: Vec<IpNet>) -> TargetPolicy {
        TargetPolicy { allowed }
    }

    /// Parses an allow-list: comma-separated CIDRs or single addresses
    /// (`127.0.0.1/32,10.0.0.0/8,::1`). Empty means none.
    pub fn parse(list: &str) -> Result<TargetPolicy, String> {
        let mut allowed = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    format!(
                        "WEBHOOK_ALLOW_PRIVATE: {item:?} is not a CIDR (10.0.0.0/8) or an address"
                    )
                })?,
            };
            allowed.push(net.trunc());
        }
        Ok(TargetPolicy { allowed })
    }

    /// The allow-listed networks.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Checks one address; `host` names it in the error. An IPv6 address that embeds an IPv4
    /// address ([`embedded_ipv4`]) is allowed when either of the two is allow-listed.
    pub fn check_address(&self, host: &str, address: IpAddr) -> Result<(), TargetError> {
        let listed = |ip: IpAddr| self.allowed.iter().any(|net| net.contains(&ip));
        let embedded = match address {
            IpAddr::V6(v6) => embedded_ipv4(v6),
            IpAddr::V4(_) => None,
        };
        match non_public_kind(address) {
            None => Ok(()),
            Some(_) if listed(address) => Ok(()),
            Some(_) if embedded.is_some_and(|v4| listed(IpAddr::V4(v4))) => Ok(()),
            Some(kind) => Err(TargetError::Refused {
                host: host.to_owned(),
                address,
                kind,
            }),
        }
    }

    /// Checks what can be checked without resolving: the scheme, and the host when it is an
    /// IP literal or `localhost`. Host names are checked at connection time by
    /// [`GuardedResolver`].
    pub fn check_url(&self, raw: &str) -> Result<reqwest::Url, TargetError> {
        let url = reqwest::Url::parse(raw).map_err(|e| TargetError::InvalidUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TargetError::Scheme(url.scheme().to_owned()));
        }
        match url.host() {
            None => return Err(TargetError::InvalidUrl("the URL has no host".into())),
            Some(url::Host::Ipv4(ip)) => self.check_address(&ip.to_string(), IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_address(&ip.to_string(), IpAddr::V6(ip))?,
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    self.check_address(&name, IpAddr::V4(Ipv4Addr::LOCALHOST))?;
                }
            }
        }
        Ok(url)
    }
}

/// What kind of non-public address `ip` is, or `None` for a globally routable one.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
        Some("documentation or benchmarking")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignment")
    } else {
        None
    }
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if let Some(v4) = embedded_ipv4(ip) {
        // The IPv4 address it carries decides, as if it had been given as a literal.
        return v4_kind(v4);
    }
    let segments = ip.segments();
    let first = segments[0];
    if first & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast or reserved")
    } else if first == 0x2001 && segments[1] == 0x0db8 {
        Some("documentation or benchmarking")
    } else if first == 0x2001 && segments[1] == 0 {
        Some("Teredo tunnel")
    } else if segments[..3] == [0x0064, 0xff9b, 0x0001] {
        Some("NAT64 local-use")
    } else {
        None
    }
}

/// The IPv4 address that `ip` carries in a form a network may deliver to that IPv4 address:
///
/// - IPv4-mapped `::ffff:a.b.c.d` and IPv4-translated `::ffff:0:a.b.c.d` (SIIT): the last 32
///   bits;
/// - IPv4-compatible `::a.b.c.d` (deprecated; `::` and `::1` are not, they are the IPv6
///   unspecified and loopback addresses): the last 32 bits;
/// - 6to4 `2002:AABB:CCDD::/16`: bits 16 to 48 (`AA.BB.CC.DD`);
/// - NAT64 well-known prefix `64:ff9b::/96` (RFC 6052): the last 32 bits.
///
/// Teredo and NAT64 local-use are not listed: [`non_public_kind`] refuses them outright.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    let [.., hi, lo] = segments;
    let last_32_bits = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match segments {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(last_32_bits),
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_unspecified() && !ip.is_loopback() => Some(last_32_bits),
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(last_32_bits),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))),
        _ => None,
    }
}

/// The HTTP client's resolver: resolves with the system resolver and refuses the name when
/// any of its addresses is not permitted (a name that mixes public and private addresses is
/// refused rather than trimmed: it is someone's trick more often than a real setup).
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    policy: Arc<TargetPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<TargetPolicy>) -> GuardedResolver {
        GuardedResolver { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() {
                return Err(Box::new(TargetError::Unresolved(host)) as _);
            }
            for address in &addresses {
                // Boxed as the trait object directly: `?` on a `Box<TargetError>` would box it
                // a second time and hide it from [`refusal`].
                policy
                    .check_address(&host, address.ip())
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The [`TargetError`] somewhere in `error`'s source chain, if any.
pub fn refusal<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a TargetError> {
    let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<TargetError>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse()
            .unwrap_or_else(|_| panic!("BUG: test address {s}"))
    }

    #[test]
    fn private_loopback_link_local_and_reserved_addresses_are_not_public() {
        for (address, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("224.0.0.1", "multicast or reserved"),
            ("255.255.255.255", "multicast or reserved"),
            ("192.0.2.10", "documentation or benchmarking"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:127.0.0.1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2001:db8::1", "documentation or benchmarking"),
        ] {
            assert_eq!(non_public_kind(ip(address)), Some(kind), "{address}");
        }
    }

    #[test]
    fn globally_routable_addresses_are_public() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700::1111",
            "100.128.0.1",
        ] {
            assert_eq!(non_public_kind(ip(address)), None, "{address}");
        }
    }

    #[test]
    fn ipv6_forms_embedding_a_non_public_ipv4_are_judged_by_that_ipv4() {
        for (address, kind) in [
            // IPv4-compatible.
            ("::127.0.0.1", "loopback"),
            ("::10.0.0.1", "private"),
            ("::169.254.169.254", "link-local"),
            // IPv4-mapped and IPv4-translated.
            ("::ffff:192.168.0.1", "private"),
            ("::ffff:0:127.0.0.1", "loopback"),
            // 6to4: 2002:7f00:0001::/48 is 127.0.0.1, 2002:a9fe:a9fe::/48 is 169.254.169.254.
            ("2002:7f00:1::1", "loopback"),
            ("2002:a9fe:a9fe:1::5", "link-local"),
            ("2002:c0a8:101::", "private"),
            // NAT64 well-known prefix.
            ("64:ff9b::127.0.0.1", "loopback"),
            ("64:ff9b::10.1.2.3", "private"),
        ] {
            assert_eq!(non_public_kind(ip(address)), Some(kind), "{address}");
        }
    }

    #[test]
    fn teredo_and_nat64_local_use_are_refused_whatever_they_carry() {
        for (address, kind) in [
            // Teredo with server 65.54.227.120 and client 127.0.0.1 (XOR 0xffffffff).
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo tunnel"),
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "Teredo tunnel"),
            ("64:ff9b:1::7f00:1", "NAT64 local-use"),
            ("64:ff9b:1::808:808", "NAT64 local-use"),
        ] {
            assert_eq!(non_public_kind(ip(address)), Some(kind), "{address}");
        }
    }

    #[test]
    fn ipv6_forms_embedding_a_public_ipv4_are_public() {
        for address in [
            "::8.8.8.8",
            "::ffff:1.1.1.1",
            "::ffff:0:1.1.1.1",
            "2002:808:808::1",
            "64:ff9b::1.1.1.1",
        ] {
            assert_eq!(non_public_kind(ip(address)), None, "{address}");
        }
        assert_eq!(
            embedded_ipv4("::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED)),
            None
        );
        assert_eq!(embedded_ipv4(Ipv6Addr::UNSPECIFIED), None);
        assert_eq!(
            embedded_ipv4("2002:c000:0204::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED)),
            Some(Ipv4Addr::new(192, 0, 2, 4))
        );
    }

    #[test]
    fn allow_listing_an_ipv4_address_allows_the_ipv6_forms_that_embed_it() {
        let policy = TargetPolicy::parse("127.0.0.1").unwrap_or_default();
        for address in [
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "2002:7f00:1::1",
            "64:ff9b::7f00:1",
        ] {
            assert!(policy.check_address("h", ip(address)).is_ok(), "{address}");
        }
        assert!(policy.check_address("h", ip("::ffff:127.0.0.2")).is_err());
        assert!(policy.check_address("h", ip("64:ff9b:1::7f00:1")).is_err());
    }

    #[test]
    fn urls_with_ipv6_literals_embedding_a_private_ipv4_are_refused_before_connecting() {
        let policy = TargetPolicy::public_only();
        for url in [
            "http://[::127.0.0.1]/hook",
            "http://[::ffff:127.0.0.1]:8080/hook",
            "http://[::ffff:7f00:1]/hook",
            "http://[::ffff:0:a00:1]/hook",
            "http://[2002:a9fe:a9fe::1]/latest/meta-data",
            "http://[64:ff9b::169.254.169.254]/latest/meta-data",
            "http://[64:ff9b:1::a00:1]/hook",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
        ] {
            assert!(
                matches!(policy.check_url(url), Err(TargetError::Refused { .. })),
                "{url}"
            );
        }
        assert!(policy.check_url("http://[2002:808:808::1]/hook").is_ok());
    }

    #[test]
    fn the_allow_list_permits_only_its_networks() {
        let policy = TargetPolicy::parse("127.0.0.1/32, 10.0.0.0/8,::1").unwrap_or_default();
        assert!(policy.check_address("h", ip("127.0.0.1")).is_ok());
        assert!(policy.check_address("h", ip("10.200.0.1")).is_ok());
        assert!(policy.check_address("h", ip("::1")).is_ok());
        assert!(policy.check_address("h", ip("127.0.0.2")).is_err());
        assert!(policy.check_address("h", ip("192.168.0.1")).is_err());
    }

    #[test]
    fn a_bad_allow_list_entry_is_named_in_the_error() {
        let err = TargetPolicy::parse("10.0.0.0/8, not-a-net").unwrap_err();
        assert!(err.contains("\"not-a-net\""), "{err}");
        assert!(TargetPolicy::parse("10.0.0.0/33").is_err());
        assert_eq!(TargetPolicy::parse(" , ").map(|p| p.allowed().len()), Ok(0));
    }

    #[test]
    fn urls_with_private_literals_or_localhost_are_refused_before_connecting() {
        let policy = TargetPolicy::public_only();
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/hook",
            "http://api.localhost./hook",
            "http://0x7f000001/hook",
            "http://2130706433/hook",
        ] {
            assert!(
                matches!(policy.check_url(url), Err(TargetError::Refused { .. })),
                "{url}"
            );
        }
        assert!(matches!(
            policy.check_url("ftp://example.com/x"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            policy.check_url("not a url"),
            Err(TargetError::InvalidUrl(_))
        ));
        assert!(policy.check_url("https://hooks.example.com/x").is_ok());
        assert!(policy.check_url("https://1.1.1.1/x").is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_to_private_addresses() {
        use reqwest::dns::Resolve;
        let resolver = GuardedResolver::new(Arc::new(TargetPolicy::public_only()));
        let name: reqwest::dns::Name = "localhost".parse().unwrap_or_else(|_| panic!("BUG"));
        let err = resolver
            .resolve(name)
            .await
            .err()
            .unwrap_or_else(|| panic!("localhost must be refused"));
        assert!(
            matches!(
                refusal(err.as_ref()),
                Some(TargetError::Refused {
                    kind: "loopback",
                    ..
                })
            ),
            "{err}"
        );
        let allowing = GuardedResolver::new(Arc::new(
            TargetPolicy::parse("127.0.0.0/8,::1").unwrap_or_default(),
        ));
        let name: reqwest::dns::Name = "localhost".parse().unwrap_or_else(|_| panic!("BUG"));
        assert!(allowing.resolve(name).await.is_ok());
    }
}
