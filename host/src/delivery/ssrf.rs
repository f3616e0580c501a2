//! The SSRF guard: webhooks go to the public internet only, unless the operator allows
//! private and loopback targets (local sinks, tests). Checked when a channel is
//! configured and again at every send, where the resolver drops private addresses so a
//! name that later resolves inward (DNS rebinding) reaches nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is one a webhook must not reach unless the operator allows it.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(v6),
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // Carrier-grade NAT, and the benchmarking range.
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (18..20).contains(&b))
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7 and link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// Why a target is refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetError {
    #[error("`{0}` does not resolve")]
    Unresolvable(String),
    #[error("`{0}` is a private, loopback or otherwise internal address")]
    Private(String),
}

/// Resolves `host` and refuses it if any of its addresses is internal (unless allowed).
pub async fn check_host(host: &str, port: u16, allow_private: bool) -> Result<(), TargetError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return if is_private(ip) && !allow_private { Err(TargetError::Private(host.to_owned())) } else { Ok(()) };
    }
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((bare, port)).await.map_err(|_| TargetError::Unresolvable(host.to_owned()))?.collect();
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable(host.to_owned()));
    }
    if !allow_private && addrs.iter().any(|a| is_private(a.ip())) {
        return Err(TargetError::Private(host.to_owned()));
    }
    Ok(())
}

/// The HTTP client's resolver: the system's, with internal addresses removed.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(resolve_guarded(name.as_str().to_owned(), self.allow_private))
    }
}

async fn resolve_guarded(host: String, allow_private: bool) -> Result<Addrs, Box<dyn std::error::Error + Send + Sync>> {
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((host.as_str(), 0)).await?.filter(|a| allow_private || !is_private(a.ip())).collect();
    if addrs.is_empty() {
        return Err(Box::new(TargetError::Private(host)));
    }
    Ok(Box::new(addrs.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_private_and_public_ones_not() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(internal.parse().expect("ip")), "{internal}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_private(public.parse().expect("ip")), "{public}");
        }
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        assert!(matches!(check_host("127.0.0.1", 80, false).await, Err(TargetError::Private(_))));
        assert!(matches!(check_host("localhost", 80, false).await, Err(TargetError::Private(_))));
        assert!(check_host("[::1]", 80, true).await.is_ok());
    }
}
