//! Reading a CloudTrail `sourceIPAddress` value and sorting addresses that no database
//! needs to see: AWS's own callers, private networks and reserved ranges.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// Kind of value found in a `sourceIPAddress` field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// `AWS Internal` or `aws.internal`: CloudTrail's value when AWS itself made the call.
    AwsInternal,
    /// A service principal such as `ec2.amazonaws.com`, in lowercase.
    AwsService(String),
    /// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses are converted to IPv4.
    Address(IpAddr),
    /// Any other text.
    Unrecognised,
}

/// Parses a raw `sourceIPAddress` value, ignoring surrounding whitespace.
pub(super) fn parse_source(text: &str) -> Source {
    let text = text.trim();

    if text.eq_ignore_ascii_case("AWS Internal") || text.eq_ignore_ascii_case("aws.internal") {
        return Source::AwsInternal;
    }
    if let Some(address) = parse_address(text) {
        return Source::Address(address);
    }
    if is_aws_service_name(text) {
        return Source::AwsService(text.to_ascii_lowercase());
    }
    Source::Unrecognised
}

/// Parses an IPv6 or IPv4 address, accepting IPv4 octets with leading zeros.
fn parse_address(text: &str) -> Option<IpAddr> {
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(address.to_canonical());
    }
    parse_ipv4_leading_zeros(text).map(IpAddr::V4)
}

/// Parses dotted-quad IPv4 with octets of one to three decimal digits, so that
/// `035.249.253.232` is 35.249.253.232.
///
/// The standard library rejects leading zeros because `inet_aton` reads them as octal.
/// CloudTrail data sets anonymised by rewriting octets contain them and mean decimal.
fn parse_ipv4_leading_zeros(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');

    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }

    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// Checks whether `text` is a service principal host name under `amazonaws.com` (or
/// `amazonaws.com.cn`, the suffix of the AWS China regions).
fn is_aws_service_name(text: &str) -> bool {
    let lowercase = text.to_ascii_lowercase();
    let Some(service) = lowercase
        .strip_suffix(".amazonaws.com")
        .or_else(|| lowercase.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };

    !service.is_empty()
        && service.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}

/// The kind of special-purpose range an address falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SpecialRange {
    /// Private, loopback, link-local, shared (CGNAT) or unique local addresses.
    Private,
    /// Ranges that are never routed on the internet: unspecified, "this network",
    /// benchmarking, multicast, the former class E (240.0.0.0/4) and broadcast.
    Reserved,
    /// The documentation prefixes. Real geolocation databases hold no records for them,
    /// so the caller treats an address here as reserved unless a configured database or
    /// `ip-ranges.json` has a record for it.
    Documentation,
}

const PRIVATE_V4: [Ipv4Net; 6] = [
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8),
    Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12),
    Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16),
    Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8),
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16),
    // Shared address space for carrier-grade NAT (RFC 6598).
    Ipv4Net::new_assert(Ipv4Addr::new(100, 64, 0, 0), 10),
];

const RESERVED_V4: [Ipv4Net; 5] = [
    Ipv4Net::new_assert(Ipv4Addr::new(0, 0, 0, 0), 8),
    // IETF protocol assignments (RFC 6890).
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 0, 0), 24),
    // Benchmarking (RFC 2544).
    Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15),
    Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4),
    // Former class E, including 255.255.255.255. Anonymised data sets rewrite addresses
    // into it (253.x.x.x and the like).
    Ipv4Net::new_assert(Ipv4Addr::new(240, 0, 0, 0), 4),
];

// RFC 5737.
const DOCUMENTATION_V4: [Ipv4Net; 3] = [
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 2, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 0), 24),
    Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24),
];

const PRIVATE_V6: [Ipv6Net; 3] = [
    Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128),
    // Unique local addresses (RFC 4193).
    Ipv6Net::new_assert(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
];

const RESERVED_V6: [Ipv6Net; 3] = [
    Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 128),
    // Discard-only prefix (RFC 6666).
    Ipv6Net::new_assert(Ipv6Addr::new(0x0100, 0, 0, 0, 0, 0, 0, 0), 64),
    Ipv6Net::new_assert(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
];

// RFC 3849 and RFC 9637.
const DOCUMENTATION_V6: [Ipv6Net; 2] = [
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0), 32),
    Ipv6Net::new_assert(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),
];

/// Returns the special-purpose range `address` falls in, or `None` for an ordinary
/// public address.
pub(super) fn special_range(address: IpAddr) -> Option<SpecialRange> {
    match address {
        IpAddr::V4(v4) => {
            if PRIVATE_V4.iter().any(|net| net.contains(&v4)) {
                Some(SpecialRange::Private)
            } else if RESERVED_V4.iter().any(|net| net.contains(&v4)) {
                Some(SpecialRange::Reserved)
            } else if DOCUMENTATION_V4.iter().any(|net| net.contains(&v4)) {
                Some(SpecialRange::Documentation)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if PRIVATE_V6.iter().any(|net| net.contains(&v6)) {
                Some(SpecialRange::Private)
            } else if RESERVED_V6.iter().any(|net| net.contains(&v6)) {
                Some(SpecialRange::Reserved)
            } else if DOCUMENTATION_V6.iter().any(|net| net.contains(&v6)) {
                Some(SpecialRange::Documentation)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parse_source_aws_internal_spellings() {
        for text in [
            "AWS Internal",
            "aws internal",
            "aws.internal",
            " AWS Internal\n",
        ] {
            assert_eq!(parse_source(text), Source::AwsInternal, "input {text:?}");
        }
    }

    #[test]
    fn parse_source_service_principals() {
        let cases = [
            ("ec2.amazonaws.com", "ec2.amazonaws.com"),
            ("Lambda.AmazonAWS.com", "lambda.amazonaws.com"),
            (
                "elasticloadbalancing.amazonaws.com",
                "elasticloadbalancing.amazonaws.com",
            ),
            (
                "ssm.cn-north-1.amazonaws.com.cn",
                "ssm.cn-north-1.amazonaws.com.cn",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_source(text),
                Source::AwsService(expected.to_owned()),
                "input {text:?}"
            );
        }
    }

    #[test]
    fn parse_source_rejects_lookalike_hosts() {
        let cases = [
            "amazonaws.com",
            ".amazonaws.com",
            "ec2..amazonaws.com",
            "ec2.amazonaws.com.example.org",
            "evil_host.amazonaws.com",
            "example.com",
            "",
            "not an address",
        ];
        for text in cases {
            assert_eq!(parse_source(text), Source::Unrecognised, "input {text:?}");
        }
    }

    #[test]
    fn parse_source_ipv4_leading_zeros_are_decimal() {
        let cases = [
            ("035.249.253.232", "35.249.253.232"),
            ("253.252.51.07", "253.252.51.7"),
            ("00.000.000.00", "0.0.0.0"),
            ("010.001.002.009", "10.1.2.9"),
            ("192.0.2.10", "192.0.2.10"),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_source(text),
                Source::Address(address(expected)),
                "input {text:?}"
            );
        }
    }

    #[test]
    fn parse_source_rejects_malformed_ipv4() {
        let cases = [
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "0001.2.3.4",
            "1..2.3",
            "+1.2.3.4",
            "1.2.3.0x4",
            "1.2.3.4/32",
        ];
        for text in cases {
            assert_eq!(parse_source(text), Source::Unrecognised, "input {text:?}");
        }
    }

    #[test]
    fn parse_source_trims_whitespace() {
        assert_eq!(
            parse_source(" 192.0.2.10\t"),
            Source::Address(address("192.0.2.10"))
        );
    }

    #[test]
    fn parse_source_ipv6_and_mapped_ipv4() {
        assert_eq!(
            parse_source("2001:DB8::1"),
            Source::Address(address("2001:db8::1"))
        );
        assert_eq!(
            parse_source("::ffff:192.0.2.10"),
            Source::Address(address("192.0.2.10"))
        );
    }

    #[test]
    fn special_range_table() {
        let cases = [
            ("10.1.2.3", Some(SpecialRange::Private)),
            ("172.31.255.1", Some(SpecialRange::Private)),
            ("172.32.0.1", None),
            ("192.168.0.1", Some(SpecialRange::Private)),
            ("127.0.0.1", Some(SpecialRange::Private)),
            ("169.254.169.254", Some(SpecialRange::Private)),
            ("100.64.0.1", Some(SpecialRange::Private)),
            ("100.127.255.255", Some(SpecialRange::Private)),
            ("100.128.0.1", None),
            ("0.0.0.0", Some(SpecialRange::Reserved)),
            ("192.0.0.8", Some(SpecialRange::Reserved)),
            ("198.18.0.1", Some(SpecialRange::Reserved)),
            ("224.0.0.251", Some(SpecialRange::Reserved)),
            ("240.0.0.1", Some(SpecialRange::Reserved)),
            ("253.252.51.7", Some(SpecialRange::Reserved)),
            ("255.255.255.255", Some(SpecialRange::Reserved)),
            ("192.0.2.1", Some(SpecialRange::Documentation)),
            ("198.51.100.1", Some(SpecialRange::Documentation)),
            ("203.0.113.1", Some(SpecialRange::Documentation)),
            ("35.249.253.232", None),
            ("::1", Some(SpecialRange::Private)),
            ("fd12:3456::1", Some(SpecialRange::Private)),
            ("fe80::1", Some(SpecialRange::Private)),
            ("::", Some(SpecialRange::Reserved)),
            ("100::1", Some(SpecialRange::Reserved)),
            ("ff02::1", Some(SpecialRange::Reserved)),
            ("2001:db8::1", Some(SpecialRange::Documentation)),
            ("3fff::1", Some(SpecialRange::Documentation)),
            ("2600:1f18::1", None),
        ];
        for (text, expected) in cases {
            assert_eq!(special_range(address(text)), expected, "address {text}");
        }
    }
}
