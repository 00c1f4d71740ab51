//! Outbound calls on someone's behalf (ARCHITECTURE.md §5.8): every URL the product
//! calls for a user (`webhook_url`, later the Alertmanager URL) must be https with no
//! credentials in it, and must not reach loopback, private, link-local or metadata
//! addresses. The check runs when the URL is saved and again at send time on the
//! resolved address, and the connection is pinned to the address checked (no DNS
//! rebinding); redirects are not followed. `OUTBOUND_ALLOW_PRIVATE=1` allows
//! loopback, private addresses and plain http, for local development and tests;
//! link-local and metadata addresses are refused always.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

/// Longest wait for a name to resolve (one tenant's slow DNS must not stall a batch).
pub const DNS_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an outbound URL or address is refused: a reason class, safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// Not a URL at all.
    #[error("not a valid URL")]
    Invalid,
    /// Not https (plain http only with OUTBOUND_ALLOW_PRIVATE).
    #[error("must be https")]
    NotHttps,
    /// `user:pass@` in the URL.
    #[error("must not carry credentials in the URL")]
    Credentials,
    /// Loopback, private, link-local, metadata or otherwise non-public.
    #[error("resolves to a {0} address, which is not allowed")]
    Blocked(&'static str),
    /// The host name does not resolve.
    #[error("the host name does not resolve")]
    Unresolvable,
}

impl OutboundError {
    /// Whether trying again later could succeed (a name that did not resolve may).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Unresolvable)
    }
}

/// The outbound URL policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboundPolicy {
    /// Allow loopback, private addresses and plain http (local development, tests).
    pub allow_private: bool,
}

/// The class of an address that is not public, if it is not.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => v4_class(v4),
            None => v6_class(v6),
        },
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("metadata")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("private")
    } else if ip.is_unspecified()
        || a == 0
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a >= 240
    {
        Some("reserved")
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address carries: mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let tail = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let nat64 = seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6].iter().all(|s| *s == 0);
    let compatible = seg[..6].iter().all(|s| *s == 0) && !ip.is_loopback() && !ip.is_unspecified();
    (nat64 || compatible).then_some(tail)
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some("metadata")
    } else if (first & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfec0 {
        Some("private")
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || first == 0x2002
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
    {
        Some("reserved")
    } else {
        None
    }
}

impl OutboundPolicy {
    /// From `OUTBOUND_ALLOW_PRIVATE` (`1` or `true` allows).
    pub fn from_setting(value: Option<&str>) -> Self {
        Self {
            allow_private: matches!(value.map(str::trim), Some("1" | "true")),
        }
    }

    fn address_allowed(&self, ip: IpAddr) -> Result<(), OutboundError> {
        match non_public(ip) {
            None => Ok(()),
            Some(class @ ("loopback" | "private")) if !self.allow_private => {
                Err(OutboundError::Blocked(class))
            }
            Some("loopback" | "private") => Ok(()),
            Some(class) => Err(OutboundError::Blocked(class)),
        }
    }

    /// Checks a URL as saved: scheme, credentials, and a literal address (IP hosts in
    /// any spelling: `127.1`, `2130706433`, `[::1]` are normalised by the parser).
    pub fn check_url(&self, text: &str) -> Result<Url, OutboundError> {
        let url = Url::parse(text.trim()).map_err(|_| OutboundError::Invalid)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            _ => return Err(OutboundError::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::Credentials);
        }
        match url.host() {
            None => Err(OutboundError::Invalid),
            Some(Host::Ipv4(ip)) => self.address_allowed(IpAddr::V4(ip)).map(|()| url),
            Some(Host::Ipv6(ip)) => self.address_allowed(IpAddr::V6(ip)).map(|()| url),
            Some(Host::Domain(name))
                if name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost") =>
            {
                self.address_allowed(IpAddr::V4(Ipv4Addr::LOCALHOST))
                    .map(|()| url)
            }
            Some(Host::Domain(_)) => Ok(url),
        }
    }

    /// Resolves the URL's host at send time; every address must be allowed, and the
    /// first is the one to connect to.
    pub async fn resolve(&self, url: &Url) -> Result<SocketAddr, OutboundError> {
        let port = url.port_or_known_default().ok_or(OutboundError::Invalid)?;
        let host = url.host_str().ok_or(OutboundError::Invalid)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let lookup = tokio::net::lookup_host((host, port));
        let addrs: Vec<SocketAddr> = tokio::time::timeout(DNS_TIMEOUT, lookup)
            .await
            .map_err(|_| OutboundError::Unresolvable)?
            .map_err(|_| OutboundError::Unresolvable)?
            .collect();
        let first = *addrs.first().ok_or(OutboundError::Unresolvable)?;
        for addr in &addrs {
            self.address_allowed(addr.ip())?;
        }
        Ok(first)
    }

    /// A client for one call to `url`, pinned to `addr` (checked), following no redirect.
    pub fn client(
        &self,
        url: &Url,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<reqwest::Client, OutboundError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect elsewhere than the address checked.
            .no_proxy()
            .timeout(timeout);
        if let Some(Host::Domain(name)) = url.host() {
            builder = builder.resolve(name, addr);
        }
        builder.build().map_err(|_| OutboundError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_class_of_the_probe_is_refused() {
        let strict = OutboundPolicy::default();
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://127.0.0.1/hook",
            "https://127.1/hook",
            "https://2130706433/hook",
            "https://0x7f.1/hook",
            "https://[::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://10.0.0.8/hook",
            "https://172.16.3.4/hook",
            "https://192.168.1.1/hook",
            "https://100.64.0.1/hook",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://0.0.0.0/",
            "https://localhost:8443/hook",
            "https://[::127.0.0.1]/hook",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:7f00:1::]/",
            "https://[fec0::1]/",
        ] {
            assert!(
                matches!(strict.check_url(url), Err(OutboundError::Blocked(_))),
                "{url}"
            );
        }
        assert_eq!(
            strict.check_url("http://hooks.example/x"),
            Err(OutboundError::NotHttps)
        );
        assert_eq!(
            strict.check_url("https://user:pass@hooks.example/x"),
            Err(OutboundError::Credentials)
        );
        assert_eq!(
            strict.check_url("javascript:alert(1)"),
            Err(OutboundError::NotHttps)
        );
        assert!(strict.check_url("https://hooks.example/x").is_ok());
        assert!(strict.check_url("https://203.0.114.9/x").is_ok());
    }

    #[test]
    fn allow_private_opens_loopback_and_http_but_never_metadata() {
        let local = OutboundPolicy {
            allow_private: true,
        };
        assert!(local.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(local.check_url("https://10.1.2.3/hook").is_ok());
        assert_eq!(
            local.check_url("http://169.254.169.254/"),
            Err(OutboundError::Blocked("metadata"))
        );
        assert_eq!(
            local.check_url("http://169.254.10.1/"),
            Err(OutboundError::Blocked("link-local"))
        );
        assert_eq!(
            local.check_url("http://[fd00:ec2::254]/"),
            Err(OutboundError::Blocked("metadata"))
        );
        assert!(OutboundPolicy::from_setting(Some("1")).allow_private);
        assert!(!OutboundPolicy::from_setting(Some("0")).allow_private);
        assert!(!OutboundPolicy::from_setting(None).allow_private);
    }

    #[tokio::test]
    async fn names_are_checked_on_their_resolved_address() {
        let strict = OutboundPolicy::default();
        let url = Url::parse("https://localhost:9/x").expect("url");
        assert!(matches!(
            strict.resolve(&url).await,
            Err(OutboundError::Blocked("loopback"))
        ));
        let local = OutboundPolicy {
            allow_private: true,
        };
        let addr = local
            .resolve(&Url::parse("http://127.0.0.1:9/x").expect("url"))
            .await
            .expect("resolves");
        assert_eq!(addr.port(), 9);
    }
}
