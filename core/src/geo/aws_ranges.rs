//! AWS's published address ranges (`ip-ranges.json`) as a longest-prefix lookup table.
//!
//! The file lists every prefix once per service that uses it, and the catch-all service
//! `AMAZON` repeats them all, plus prefixes that belong to no named service.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;

/// The catch-all service name in `ip-ranges.json`.
const CATCH_ALL_SERVICE: &str = "AMAZON";

/// One entry of `ip-ranges.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct AwsRange {
    pub(super) prefix: IpNet,
    pub(super) region: String,
    pub(super) service: String,
}

/// The prefixes of one `ip-ranges.json` file, ready for lookups.
#[derive(Debug)]
pub(super) struct AwsIpRanges {
    v4: PrefixTable,
    v6: PrefixTable,
    prefix_count: usize,
    create_date: Option<String>,
}

/// The shape of `ip-ranges.json`. Serde ignores the fields that keycheck does not use.
#[derive(Deserialize)]
struct IpRangesFile {
    #[serde(rename = "createDate")]
    create_date: Option<String>,
    #[serde(default)]
    prefixes: Vec<Ipv4Entry>,
    #[serde(default)]
    ipv6_prefixes: Vec<Ipv6Entry>,
}

#[derive(Deserialize)]
struct Ipv4Entry {
    ip_prefix: Ipv4Net,
    region: String,
    service: String,
}

#[derive(Deserialize)]
struct Ipv6Entry {
    ipv6_prefix: Ipv6Net,
    region: String,
    service: String,
}

impl AwsIpRanges {
    /// Parses the contents of an `ip-ranges.json` file.
    pub(super) fn from_json(bytes: &[u8]) -> Result<AwsIpRanges, serde_json::Error> {
        let file: IpRangesFile = serde_json::from_slice(bytes)?;

        let mut v4 = PrefixTable::new(32);
        for entry in file.prefixes {
            v4.insert(AwsRange {
                prefix: IpNet::V4(entry.ip_prefix.trunc()),
                region: entry.region,
                service: entry.service,
            });
        }

        let mut v6 = PrefixTable::new(128);
        for entry in file.ipv6_prefixes {
            v6.insert(AwsRange {
                prefix: IpNet::V6(entry.ipv6_prefix.trunc()),
                region: entry.region,
                service: entry.service,
            });
        }

        Ok(AwsIpRanges {
            prefix_count: v4.len + v6.len,
            v4: v4.finish(),
            v6: v6.finish(),
            create_date: file.create_date,
        })
    }

    /// Returns the number of entries read, IPv4 and IPv6 together.
    pub(super) fn prefix_count(&self) -> usize {
        self.prefix_count
    }

    /// Returns the file's `createDate`, such as `2026-01-01-00-00-00`.
    pub(super) fn create_date(&self) -> Option<&str> {
        self.create_date.as_deref()
    }

    /// Finds the entry that best describes `address`: a named service over the catch-all
    /// `AMAZON`, then the longest prefix.
    ///
    /// A named service ranks first because `AMAZON` repeats every other service's
    /// prefixes, so a longer `AMAZON`-only prefix inside an `EC2` prefix is less specific
    /// about the address than the `EC2` entry is.
    pub(super) fn find(&self, address: IpAddr) -> Option<&AwsRange> {
        match address {
            IpAddr::V4(v4) => self.v4.find(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => self.v6.find(u128::from(v6)),
        }
    }
}

/// Prefixes grouped by length, each group keyed by the network bits, so a lookup costs
/// one hash probe per distinct prefix length in the file.
#[derive(Debug)]
struct PrefixTable {
    /// Address width in bits: 32 or 128.
    width: u32,
    /// Groups ordered from the longest prefix length to the shortest.
    by_length: Vec<(u8, HashMap<u128, Vec<AwsRange>>)>,
    len: usize,
}

impl PrefixTable {
    fn new(width: u32) -> PrefixTable {
        PrefixTable {
            width,
            by_length: Vec::new(),
            len: 0,
        }
    }

    fn insert(&mut self, range: AwsRange) {
        let length = range.prefix.prefix_len();
        let key = network_key(prefix_bits(range.prefix), self.width, length);

        let group = match self.by_length.iter().position(|(len, _)| *len == length) {
            Some(index) => &mut self.by_length[index].1,
            None => {
                self.by_length.push((length, HashMap::new()));
                &mut self.by_length.last_mut().expect("just pushed").1
            }
        };
        group.entry(key).or_default().push(range);
        self.len += 1;
    }

    fn finish(mut self) -> PrefixTable {
        self.by_length
            .sort_unstable_by_key(|(length, _)| std::cmp::Reverse(*length));
        self
    }

    fn find(&self, bits: u128) -> Option<&AwsRange> {
        let mut catch_all = None;

        for (length, group) in &self.by_length {
            let Some(ranges) = group.get(&network_key(bits, self.width, *length)) else {
                continue;
            };
            if let Some(named) = ranges.iter().find(|r| r.service != CATCH_ALL_SERVICE) {
                return Some(named);
            }
            catch_all = catch_all.or(ranges.first());
        }

        catch_all
    }
}

fn prefix_bits(prefix: IpNet) -> u128 {
    match prefix {
        IpNet::V4(net) => u128::from(u32::from(net.network())),
        IpNet::V6(net) => u128::from(net.network()),
    }
}

/// Returns the first `length` bits of an address `width` bits wide, shifted down.
fn network_key(bits: u128, width: u32, length: u8) -> u128 {
    // A /0 prefix shifts by the whole width, which `checked_shr` reports as overflow
    // for 128-bit addresses: every address has the same (empty) network part.
    bits.checked_shr(width - u32::from(length)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/geo-ip-ranges-test.json"
    );

    fn fixture() -> AwsIpRanges {
        let bytes = std::fs::read(FIXTURE).unwrap();
        AwsIpRanges::from_json(&bytes).unwrap()
    }

    fn find<'a>(ranges: &'a AwsIpRanges, text: &str) -> Option<(&'a str, &'a str, String)> {
        ranges.find(text.parse().unwrap()).map(|range| {
            (
                range.region.as_str(),
                range.service.as_str(),
                range.prefix.to_string(),
            )
        })
    }

    #[test]
    fn from_json_counts_and_create_date() {
        let ranges = fixture();

        assert_eq!(ranges.prefix_count(), 7);
        assert_eq!(ranges.create_date(), Some("2026-01-01-00-00-00"));
    }

    #[test]
    fn find_prefers_named_service_on_same_prefix() {
        let ranges = fixture();

        assert_eq!(
            find(&ranges, "198.51.100.10"),
            Some(("us-east-1", "EC2", "198.51.100.0/25".to_owned()))
        );
    }

    #[test]
    fn find_prefers_longer_named_prefix() {
        let ranges = fixture();

        assert_eq!(
            find(&ranges, "198.51.100.100"),
            Some(("us-east-1", "S3", "198.51.100.96/28".to_owned()))
        );
    }

    #[test]
    fn find_prefers_named_service_over_longer_catch_all() {
        let ranges = fixture();

        assert_eq!(
            find(&ranges, "198.51.100.70"),
            Some(("us-east-1", "EC2", "198.51.100.0/25".to_owned()))
        );
    }

    #[test]
    fn find_ipv6() {
        let ranges = fixture();

        assert_eq!(
            find(&ranges, "2001:db8:ff12::1"),
            Some(("eu-west-1", "EC2", "2001:db8:ff00::/40".to_owned()))
        );
        assert_eq!(find(&ranges, "2001:db8:fe00::1"), None);
    }

    #[test]
    fn find_outside_every_prefix() {
        let ranges = fixture();

        assert_eq!(find(&ranges, "198.51.100.128"), None);
        assert_eq!(find(&ranges, "192.0.2.1"), None);
    }

    #[test]
    fn find_catch_all_only() {
        let json = br#"{"prefixes": [
            {"ip_prefix": "192.0.2.0/24", "region": "GLOBAL", "service": "AMAZON"}
        ]}"#;
        let ranges = AwsIpRanges::from_json(json).unwrap();

        assert_eq!(
            find(&ranges, "192.0.2.7"),
            Some(("GLOBAL", "AMAZON", "192.0.2.0/24".to_owned()))
        );
    }

    #[test]
    fn find_zero_and_host_prefixes() {
        let json = br#"{
            "prefixes": [
                {"ip_prefix": "0.0.0.0/0", "region": "GLOBAL", "service": "AMAZON"},
                {"ip_prefix": "192.0.2.9/32", "region": "us-east-1", "service": "ROUTE53"}
            ],
            "ipv6_prefixes": [
                {"ipv6_prefix": "::/0", "region": "GLOBAL", "service": "AMAZON"}
            ]
        }"#;
        let ranges = AwsIpRanges::from_json(json).unwrap();

        assert_eq!(
            find(&ranges, "192.0.2.9"),
            Some(("us-east-1", "ROUTE53", "192.0.2.9/32".to_owned()))
        );
        assert_eq!(
            find(&ranges, "192.0.2.10"),
            Some(("GLOBAL", "AMAZON", "0.0.0.0/0".to_owned()))
        );
        assert_eq!(
            find(&ranges, "2001:db8::1"),
            Some(("GLOBAL", "AMAZON", "::/0".to_owned()))
        );
    }

    #[test]
    fn from_json_truncates_host_bits() {
        let json = br#"{"prefixes": [
            {"ip_prefix": "192.0.2.77/24", "region": "us-east-1", "service": "EC2"}
        ]}"#;
        let ranges = AwsIpRanges::from_json(json).unwrap();

        assert_eq!(
            find(&ranges, "192.0.2.1"),
            Some(("us-east-1", "EC2", "192.0.2.0/24".to_owned()))
        );
    }

    #[test]
    fn from_json_rejects_invalid_prefix() {
        let json = br#"{"prefixes": [
            {"ip_prefix": "192.0.2.0/33", "region": "us-east-1", "service": "EC2"}
        ]}"#;

        assert!(AwsIpRanges::from_json(json).is_err());
    }
}
