//! Allowed source ranges for a key.
//!
//! IPv4 and IPv6 are matched independently: an address is checked against the ranges of its
//! own family only, so `10.0.0.0/8` alone admits no IPv6 caller. An empty list admits every
//! address. IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) are matched as the IPv4 address they
//! carry, so a dual-stack listener cannot be used to slip past an IPv4 rule.

use std::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validation::{FieldError, Warning};

/// Most ranges on one key.
pub const MAX_CIDRS: usize = 100;

/// A key's validated source-address allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CidrList(Vec<IpNet>);

impl JsonSchema for CidrList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CidrList".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "array",
            "maxItems": MAX_CIDRS,
            "items": {"type": "string", "description": "An IPv4 or IPv6 CIDR range", "examples": ["10.0.0.0/8"]},
            "description": "Allowed source ranges; empty admits every address. IPv4 and IPv6 are matched independently."
        })
    }
}

impl CidrList {
    /// Parses ranges (a bare address means a single host), normalising host bits away. Wildcard
    /// ranges are accepted with a warning.
    pub fn parse(field: &str, inputs: &[String]) -> Result<(Self, Vec<Warning>), Vec<FieldError>> {
        if inputs.len() > MAX_CIDRS {
            return Err(vec![FieldError::new(
                field,
                format!("at most {MAX_CIDRS} ranges are allowed"),
            )]);
        }
        let mut nets = Vec::with_capacity(inputs.len());
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for (i, raw) in inputs.iter().enumerate() {
            let text = raw.trim();
            let parsed = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => {
                    let net = net.trunc();
                    if net.prefix_len() == 0 {
                        warnings.push(Warning::new(
                            format!("{field}[{i}]"),
                            format!(
                                "{net} admits every {} address",
                                if net.addr().is_ipv4() { "IPv4" } else { "IPv6" }
                            ),
                        ));
                    }
                    if !nets.contains(&net) {
                        nets.push(net);
                    }
                }
                Err(_) => errors.push(FieldError::new(
                    format!("{field}[{i}]"),
                    format!(
                        "'{}' is not an IP address or CIDR range (e.g. 10.0.0.0/8 or 2001:db8::/32)",
                        text.chars().take(64).collect::<String>()
                    ),
                )),
            }
        }
        if errors.is_empty() {
            Ok((Self(nets), warnings))
        } else {
            Err(errors)
        }
    }

    /// Whether `ip` may use the key.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ranges(&self) -> &[IpNet] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn list(items: &[&str]) -> (CidrList, Vec<Warning>) {
        let owned: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        CidrList::parse("allowed_cidrs", &owned).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_admits_everyone() {
        let (l, w) = list(&[]);
        assert!(w.is_empty());
        assert!(l.allows(ip("1.2.3.4")) && l.allows(ip("2001:db8::1")));
    }

    #[test]
    fn families_are_matched_independently() {
        let (l, _) = list(&["10.0.0.0/8"]);
        assert!(l.allows(ip("10.9.8.7")));
        assert!(!l.allows(ip("11.0.0.1")));
        assert!(
            !l.allows(ip("2001:db8::1")),
            "an IPv4-only list admits no IPv6"
        );
        let (l, _) = list(&["10.0.0.0/8", "2001:db8::/32"]);
        assert!(l.allows(ip("2001:db8:1::5")));
        assert!(!l.allows(ip("2001:db9::1")));
    }

    #[test]
    fn mapped_addresses_match_as_ipv4() {
        let (l, _) = list(&["10.0.0.0/8"]);
        assert!(l.allows(ip("::ffff:10.1.2.3")));
        assert!(!l.allows(ip("::ffff:11.1.2.3")));
    }

    #[test]
    fn wildcards_are_warned_about_and_hosts_normalised() {
        let (l, w) = list(&["0.0.0.0/0", "::/0", "192.168.1.77/24", "8.8.8.8"]);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].field, "allowed_cidrs[0]");
        assert_eq!(l.ranges()[2].to_string(), "192.168.1.0/24");
        assert_eq!(l.ranges()[3].to_string(), "8.8.8.8/32");
    }

    #[test]
    fn bad_ranges_name_their_index() {
        let errs = CidrList::parse(
            "allowed_cidrs",
            &["10.0.0.0/8".into(), "10.0.0.0/33".into(), "banana".into()],
        )
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["allowed_cidrs[1]", "allowed_cidrs[2]"]);
        let many: Vec<String> = (0..101).map(|i| format!("10.0.0.{}", i % 250)).collect();
        assert!(CidrList::parse("allowed_cidrs", &many).is_err());
    }

    proptest! {
        #[test]
        fn an_ipv4_range_contains_exactly_its_addresses(a: u32, len in 0u8..=32, probe: u32) {
            let net = ipnet::Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc();
            let (l, _) = list(&[&net.to_string()]);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let inside = (probe & mask) == (u32::from(net.network()) & mask);
            prop_assert_eq!(l.allows(IpAddr::V4(Ipv4Addr::from(probe))), inside);
            prop_assert!(!l.allows(IpAddr::V6(Ipv6Addr::from(u128::from(probe) << 64 | 1))));
        }
    }
}
