//! Reverse proxies: which peers are trusted to say who the client is
//! (`LATCHKEY_TRUSTED_PROXIES`) and in which header (`LATCHKEY_FORWARDED_HEADER`).
//!
//! Only a request whose TCP peer is in a trusted network has its client address taken from the
//! forwarded header (and its `X-Request-Id` honoured); from anyone else those headers are
//! ignored. One header is read, never both: a proxy that sets one passes the other through
//! from the client untouched, so reading the other would let any client choose its address.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &["LATCHKEY_TRUSTED_PROXIES", "LATCHKEY_FORWARDED_HEADER"];

/// The header a trusted proxy states the client address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, cloud load balancers).
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

impl ForwardedHeader {
    /// The header name, lowercase.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

/// The trusted proxy networks and the header they write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies {
    /// `LATCHKEY_TRUSTED_PROXIES`: networks (CIDRs; a bare address is a /32 or /128).
    pub networks: Vec<IpNet>,
    /// `LATCHKEY_FORWARDED_HEADER` (default `x-forwarded-for`).
    pub header: ForwardedHeader,
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self {
            networks: Vec::new(),
            header: ForwardedHeader::XForwardedFor,
        }
    }
}

impl TrustedProxies {
    /// Whether `ip` is in a trusted network (an IPv4-mapped IPv6 address counts as IPv4).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// Whether any proxy is trusted at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<TrustedProxies, ConfigError> {
    let mut networks = Vec::new();
    for item in vars.list("LATCHKEY_TRUSTED_PROXIES") {
        let net = item
            .parse::<IpNet>()
            .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                err(
                    "LATCHKEY_TRUSTED_PROXIES",
                    format!("`{item}` is not a network like 10.0.0.0/8 or an address"),
                )
            })?;
        // 10.1.2.3/8 is taken as 10.0.0.0/8: what was meant, stated as the network.
        networks.push(net.trunc());
    }
    let header = match vars
        .get("LATCHKEY_FORWARDED_HEADER")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("x-forwarded-for") => ForwardedHeader::XForwardedFor,
        Some("forwarded") => ForwardedHeader::Forwarded,
        Some(v) => {
            return Err(err(
                "LATCHKEY_FORWARDED_HEADER",
                format!("`{v}` is not x-forwarded-for or forwarded"),
            ));
        }
    };
    Ok(TrustedProxies { networks, header })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parsed(value: &str) -> Result<TrustedProxies, ConfigError> {
        let map = HashMap::from([("LATCHKEY_TRUSTED_PROXIES".to_owned(), value.to_owned())]);
        parse(&Vars::new(&map))
    }

    #[test]
    fn networks_and_bare_addresses_are_accepted() {
        let t = parsed("10.0.0.0/8, 192.168.1.7 ,fd00::/8,::1").unwrap();
        assert_eq!(t.networks.len(), 4);
        assert!(t.contains("10.20.30.40".parse().unwrap()));
        assert!(t.contains("192.168.1.7".parse().unwrap()));
        assert!(!t.contains("192.168.1.8".parse().unwrap()));
        assert!(t.contains("fd12::1".parse().unwrap()));
        assert!(
            t.contains("::ffff:10.0.0.1".parse().unwrap()),
            "IPv4-mapped"
        );
        assert!(!t.contains("8.8.8.8".parse().unwrap()));
        assert_eq!(
            parsed("10.1.2.3/8").unwrap().networks[0].to_string(),
            "10.0.0.0/8"
        );
    }

    #[test]
    fn garbage_names_the_variable_and_empty_trusts_nobody() {
        for bad in ["10.0.0.0/33", "example.com", "10.0.0/8"] {
            assert_eq!(
                parsed(bad).unwrap_err().variable,
                "LATCHKEY_TRUSTED_PROXIES"
            );
        }
        assert!(parsed("").unwrap().is_empty());
    }
}
