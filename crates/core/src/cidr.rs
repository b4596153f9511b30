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

/// A range as a client should write it for [`CidrList::parse`], as a pattern: an IPv4 or IPv6
/// address in its standard text form (RFC 3986 `IPv4address` / `IPv6address`), optionally
/// with a prefix length. Everything it matches parses; the parser also forgives a few
/// spellings it leaves out (whitespace around, leading zeros in an IPv4 range).
pub fn cidr_pattern() -> String {
    let (v4, v6) = (ipv4_pattern(), ipv6_pattern());
    format!("^(?:{v4}(?:/(?:3[0-2]|[12]?[0-9]))?|{v6}(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$")
}

/// The schema of an optional IP address as text (`IpAddr`, or a field parsed as one): the
/// standard formats `ipv4` or `ipv6`, or `null`.
pub fn ip_address_or_null(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            {"type": "string", "format": "ipv4"},
            {"type": "string", "format": "ipv6"},
            {"type": "null"}
        ]
    })
}

/// The schema of one range, the `Cidr` component of the OpenAPI document. Only a schema: the
/// request fields stay `String` until [`CidrList::parse`] reads them.
#[derive(Debug)]
pub struct CidrText;

impl JsonSchema for CidrText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Cidr".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": cidr_pattern(),
            "description": "An IPv4 or IPv6 address (one host) or CIDR range.",
            "examples": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
        })
    }
}

/// An IPv4 address: four decimal octets, no leading zeros (an unanchored group).
fn ipv4_pattern() -> String {
    let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    format!(r"(?:{octet}(?:\.{octet}){{3}})")
}

/// An IPv6 address as RFC 3986 writes its grammar: eight groups, `::` for one or more zero
/// groups, the last two groups optionally an IPv4 address (an unanchored group).
fn ipv6_pattern() -> String {
    let h = "[0-9A-Fa-f]{1,4}";
    let ls32 = format!("(?:{h}:{h}|{})", ipv4_pattern());
    let before = |n: usize| format!("(?:(?:{h}:){{0,{n}}}{h})?");
    let forms = [
        format!("(?:{h}:){{6}}{ls32}"),
        format!("::(?:{h}:){{5}}{ls32}"),
        format!("(?:{h})?::(?:{h}:){{4}}{ls32}"),
        format!("{}::(?:{h}:){{3}}{ls32}", before(1)),
        format!("{}::(?:{h}:){{2}}{ls32}", before(2)),
        format!("{}::{h}:{ls32}", before(3)),
        format!("{}::{ls32}", before(4)),
        format!("{}::{h}", before(5)),
        format!("{}::", before(6)),
    ];
    format!("(?:{})", forms.join("|"))
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

    #[test]
    fn the_pattern_matches_only_what_parses() {
        let pattern = crate::pattern::tests::compile(&cidr_pattern());
        for ok in [
            "10.0.0.0/8",
            "255.255.255.255",
            "0.0.0.0/0",
            "::",
            "::/0",
            "::1",
            "2001:db8::/32",
            "1:2:3:4:5:6:7:8/128",
            "1:2:3:4:5:6:7::",
            "::ffff:10.1.2.3",
            "1:2:3:4:5:6:1.2.3.4/96",
            "fe80::1:2:3:4:5",
        ] {
            assert!(pattern.is_match(ok), "{ok}");
            assert!(CidrList::parse("f", &[ok.to_owned()]).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "10.0.0.0/33",
            "256.0.0.0",
            "10.0.0",
            "1.2.3.4.5",
            "2001:db8::/129",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "1:2:3:4:5:6:7::8:9",
            ":::",
            "fe80::1%eth0",
            "banana",
        ] {
            assert!(!pattern.is_match(bad), "{bad}");
            assert!(CidrList::parse("f", &[bad.to_owned()]).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn addresses_and_ranges_in_standard_form_match_the_pattern(
            v4: u32, v6: u128, len4 in 0u8..=32, len6 in 0u8..=128, form in 0usize..4,
        ) {
            let text = match form {
                0 => Ipv4Addr::from(v4).to_string(),
                1 => format!("{}/{len4}", Ipv4Addr::from(v4)),
                2 => Ipv6Addr::from(v6).to_string(),
                _ => format!("{}/{len6}", Ipv6Addr::from(v6 >> (v6 % 128))),
            };
            let pattern = crate::pattern::tests::compile(&cidr_pattern());
            prop_assert!(pattern.is_match(&text), "{}", text);
            prop_assert!(CidrList::parse("f", &[text]).is_ok());
        }

        #[test]
        fn whatever_the_pattern_matches_parses(s in "[0-9a-f:.]{1,12}(/[0-9]{1,3})?") {
            let pattern = crate::pattern::tests::compile(&cidr_pattern());
            if pattern.is_match(&s) {
                prop_assert!(CidrList::parse("f", std::slice::from_ref(&s)).is_ok(), "{}", s);
            }
        }

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
