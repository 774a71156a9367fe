//! The `sourceIPAddress` field of a CloudTrail event: the text as written, and what that
//! text is (an IPv4 or IPv6 address, an AWS service name, `AWS Internal` or other text).
//!
//! Classification is lenient and cannot fail (anything unknown is `Other`), because a
//! record must never be rejected for this field. Geolocation and network lookups belong to the `geo` module, not here.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The caller's address as CloudTrail recorded it. Serializes as the raw text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourceIp {
    /// The text exactly as it appeared in the event.
    pub raw: String,
    /// The kind of value the text is.
    pub kind: SourceIpKind,
}

/// The kind of value in `sourceIPAddress`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SourceIpKind {
    /// An IPv4 address. Octets with leading zeros (`035.249.253.232`, seen in anonymised
    /// data sets) are read as decimal.
    Ipv4(Ipv4Addr),
    /// An IPv6 address, including IPv4-mapped ones such as `::ffff:1.2.3.4`.
    Ipv6(Ipv6Addr),
    /// An AWS service that made the call on the principal's behalf, such as
    /// `ec2.amazonaws.com`.
    AwsServiceName(String),
    /// `AWS Internal`: a call made by AWS inside its own network, for example from the
    /// console's backend. The spelling `aws.internal`, seen in some exports, counts too.
    AwsInternal,
    /// Anything else, kept only as raw text.
    Other,
}

impl SourceIp {
    /// Classifies `raw` and keeps it. Text that is nothing known becomes `Other`.
    pub fn new(raw: impl Into<String>) -> Self {
        let raw = raw.into();
        let kind = classify(raw.trim());
        Self { raw, kind }
    }

    /// Returns the text exactly as it appeared in the event.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Returns the IP address, when the value is one. An IPv4-mapped IPv6 address stays
    /// IPv6 here, so call [`IpAddr::to_canonical`] to compare it with IPv4 addresses.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.kind {
            SourceIpKind::Ipv4(ip) => Some(IpAddr::V4(ip)),
            SourceIpKind::Ipv6(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        }
    }

    /// Returns `true` when the call came from AWS itself (a service name or `AWS
    /// Internal`) rather than from an address on a network.
    pub fn is_aws(&self) -> bool {
        matches!(
            self.kind,
            SourceIpKind::AwsServiceName(_) | SourceIpKind::AwsInternal
        )
    }
}

impl fmt::Display for SourceIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for SourceIp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for SourceIp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SourceIp::new)
    }
}

fn classify(text: &str) -> SourceIpKind {
    if let Some(ip) = parse_ipv4_lenient(text) {
        return SourceIpKind::Ipv4(ip);
    }
    if let Some(ip) = parse_ipv6_lenient(text) {
        return SourceIpKind::Ipv6(ip);
    }
    if text.eq_ignore_ascii_case("AWS Internal") || text.eq_ignore_ascii_case("aws.internal") {
        return SourceIpKind::AwsInternal;
    }
    if is_service_name(text) {
        return SourceIpKind::AwsServiceName(text.to_owned());
    }
    SourceIpKind::Other
}

/// Parses four dot-separated decimal octets of one to three digits each. Unlike
/// `Ipv4Addr::from_str`, leading zeros are accepted and read as decimal, never octal.
fn parse_ipv4_lenient(text: &str) -> Option<Ipv4Addr> {
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

/// Parses an IPv6 address, optionally in brackets or with a zone (`%eth0`), whose embedded
/// IPv4 tail may have leading zeros.
fn parse_ipv6_lenient(text: &str) -> Option<Ipv6Addr> {
    let text = text
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(text);
    let text = text
        .split_once('%')
        .map_or(text, |(address, _zone)| address);
    if !text.contains(':') {
        return None;
    }
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }

    let (head, tail) = text.rsplit_once(':')?;
    let ipv4 = parse_ipv4_lenient(tail)?;
    format!("{head}:{ipv4}").parse().ok()
}

/// Returns `true` when `text` is a host name under `amazonaws.com`, which is how
/// CloudTrail names the service that called on a principal's behalf.
fn is_service_name(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let Some(service) = lower.strip_suffix(".amazonaws.com") else {
        return false;
    };
    !service.is_empty()
        && service
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_leading_zeros_are_decimal() {
        let ip = SourceIp::new("035.249.253.232");
        assert_eq!(
            ip.kind,
            SourceIpKind::Ipv4(Ipv4Addr::new(35, 249, 253, 232))
        );
        assert_eq!(ip.raw, "035.249.253.232");
        assert_eq!(
            SourceIp::new("08.1.250.216").kind,
            SourceIpKind::Ipv4(Ipv4Addr::new(8, 1, 250, 216))
        );
        assert_eq!(
            SourceIp::new("00.000.000.00").kind,
            SourceIpKind::Ipv4(Ipv4Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn ipv4_rejects_out_of_range_and_odd_forms() {
        for text in [
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "0001.2.3.4",
            "1..2.3",
            "1.2.3.x",
        ] {
            assert_eq!(SourceIp::new(text).kind, SourceIpKind::Other, "{text}");
        }
    }

    #[test]
    fn ipv6_forms() {
        let mapped = SourceIp::new("::ffff:1.2.3.4");
        let SourceIpKind::Ipv6(ip) = mapped.kind else {
            panic!("expected IPv6, got {:?}", mapped.kind);
        };
        assert_eq!(ip.to_ipv4_mapped(), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(
            SourceIp::new("2001:db8::1").ip(),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            SourceIp::new("[2001:db8::1]").ip(),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            SourceIp::new("fe80::1%eth0").ip(),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(
            SourceIp::new("::ffff:035.1.2.3").ip(),
            Some("::ffff:35.1.2.3".parse().unwrap())
        );
    }

    #[test]
    fn aws_internal_and_service_names() {
        assert_eq!(
            SourceIp::new("AWS Internal").kind,
            SourceIpKind::AwsInternal
        );
        assert_eq!(
            SourceIp::new("aws.internal").kind,
            SourceIpKind::AwsInternal
        );
        assert_eq!(
            SourceIp::new("ec2.amazonaws.com").kind,
            SourceIpKind::AwsServiceName("ec2.amazonaws.com".into())
        );
        assert_eq!(
            SourceIp::new("elasticmapreduce.amazonaws.com").kind,
            SourceIpKind::AwsServiceName("elasticmapreduce.amazonaws.com".into())
        );
        assert!(SourceIp::new("lambda.amazonaws.com").is_aws());
        assert!(!SourceIp::new("1.2.3.4").is_aws());
    }

    #[test]
    fn other_text_is_kept() {
        for text in [
            "",
            "amazonaws.com",
            "evil host.amazonaws.com",
            "localhost",
            "—",
        ] {
            let ip = SourceIp::new(text);
            assert_eq!(ip.kind, SourceIpKind::Other, "{text:?}");
            assert_eq!(ip.raw, text);
        }
    }

    #[test]
    fn serializes_as_raw_text() {
        let ip = SourceIp::new("035.249.253.232");
        assert_eq!(serde_json::to_string(&ip).unwrap(), r#""035.249.253.232""#);
        let back: SourceIp = serde_json::from_str(r#""035.249.253.232""#).unwrap();
        assert_eq!(back, ip);
    }
}
