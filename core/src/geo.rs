//! Offline geolocation of CloudTrail source IPs: the country and network owner (ASN) of
//! each `sourceIPAddress`, and whether a call came from AWS itself.
//!
//! Everything is read from local files named in the configuration: an MMDB country
//! database (GeoLite2-Country or -City, or DB-IP's country or city lite), an MMDB ASN
//! database (GeoLite2-ASN or DB-IP's ASN lite) and AWS's published `ip-ranges.json`.
//! Without them keycheck still runs: AWS callers, private and reserved addresses are still
//! recognised, public addresses come back as [`LocationCategory::Unknown`], and
//! [`GeoStatus::summary`] reports that geolocation is unavailable.
//!
//! This module does not download or refresh those files, and it caches nothing between
//! lookups: each lookup reads the in-memory databases directly.

mod address;
mod aws_ranges;
mod mmdb;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use address::{Source, SpecialRange};
use aws_ranges::AwsIpRanges;
use mmdb::{AsnRecord, CountryRecord, DatabaseKind, MmdbDatabase};

/// Autonomous system numbers that AWS's own networks are announced from. An address
/// whose ASN is listed here is an AWS network even without `geo.aws_ip_ranges`.
///
/// AWS publishes no ASN list. AWS's peering policy names AS16509 (AMAZON-02). Public ASN
/// lists give the holders of the others: AS14618 (AMAZON-AES, Amazon.com, Inc.), and
/// AS8987 and AS39111 (Amazon Data Services Ireland Ltd, which holds AWS's EC2 address
/// blocks in Europe in the RIPE database). Two more Amazon ASNs are left out. The name and
/// holder of AS62785 (AMAZON-FC, Amazon.com Services LLC) point to Amazon's retail
/// fulfilment centres. For AS7224 (AMAZON-AS) the lists give only Amazon.com, Inc., which
/// does not tell whether AWS uses it.
///
/// NOTE: this list is not from AWS and can go stale. An address inside a prefix of
/// `geo.aws_ip_ranges` is the authoritative test.
pub const AMAZON_ASNS: [u32; 4] = [16509, 14618, 8987, 39111];

/// Geolocation data files: the `[geo]` table of the configuration.
///
/// Every file is optional. A relative path is resolved against the working directory.
///
/// NOTE: only fixtures in the GeoLite2 record shape are tested. Reading DB-IP lite files
/// assumes that they use the same field names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GeoConfig {
    /// MMDB file that maps addresses to countries: GeoLite2-Country, GeoLite2-City,
    /// DB-IP country lite or DB-IP city lite.
    pub country_db: Option<PathBuf>,
    /// MMDB file that maps addresses to autonomous systems (ASN and network owner):
    /// GeoLite2-ASN or DB-IP ASN lite.
    pub asn_db: Option<PathBuf>,
    /// AWS's published `ip-ranges.json`, used to label AWS addresses with their region
    /// and service.
    pub aws_ip_ranges: Option<PathBuf>,
}

/// A geolocation file that is missing, unreadable or not what its setting expects.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be read (missing, a directory, no permission).
    #[error(
        "failed to read {setting} file {} (fix the path or remove {setting} from the configuration)",
        path.display()
    )]
    Read {
        setting: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not an MMDB database, or it is damaged.
    #[error(
        "{setting} file {} is not a valid MMDB database (replace it with a fresh copy)",
        path.display()
    )]
    InvalidMmdb {
        setting: &'static str,
        path: PathBuf,
        source: maxminddb::MaxMindDbError,
    },
    /// The MMDB metadata names the other kind of database than the setting expects.
    #[error(
        "{setting} file {} is a {database_type} database, but {setting} expects {expected}",
        path.display()
    )]
    WrongDatabaseType {
        setting: &'static str,
        path: PathBuf,
        database_type: String,
        expected: &'static str,
    },
    /// The file is not in the format of AWS's `ip-ranges.json`.
    #[error(
        "geo.aws_ip_ranges file {} is not a valid ip-ranges.json (download it again from https://ip-ranges.amazonaws.com/ip-ranges.json)",
        path.display()
    )]
    InvalidIpRanges {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// The file parsed but lists no prefixes, so it cannot be AWS's `ip-ranges.json`.
    #[error(
        "geo.aws_ip_ranges file {} contains no prefixes (expected AWS's ip-ranges.json)",
        path.display()
    )]
    EmptyIpRanges { path: PathBuf },
}

/// Kind of source address, as an investigation sorts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationCategory {
    /// A service principal such as `ec2.amazonaws.com`: an AWS service made the call on
    /// the principal's behalf.
    AwsService,
    /// `AWS Internal` or `aws.internal`: CloudTrail's value when AWS itself made the call,
    /// so there is no caller network to locate.
    AwsInternal,
    /// An address in AWS's published ranges or announced from one of [`AMAZON_ASNS`].
    /// Any AWS customer can call from EC2 addresses, an attacker too, so this category is
    /// no sign that the caller is trusted.
    AwsNetwork,
    /// A private, loopback, link-local, shared (CGNAT) or unique local address, as seen
    /// for calls through VPC endpoints.
    Private,
    /// An address that is never routed on the internet (documentation, benchmarking,
    /// multicast, 240.0.0.0/4), as found in anonymised or example data.
    Reserved,
    /// A public address, with whatever the configured databases know about it.
    Public,
    /// No geolocation database is configured, or the text is not an address.
    Unknown,
}

/// The geolocation of one CloudTrail `sourceIPAddress`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Kind of source.
    pub category: LocationCategory,
    /// The parsed address, when the source is one. `035.249.253.232` becomes
    /// `35.249.253.232` and `::ffff:192.0.2.1` becomes `192.0.2.1`.
    pub address: Option<IpAddr>,
    /// ISO 3166-1 alpha-2 code of the country the database places the address in, or of
    /// the country its network is registered in when the database has no location.
    /// Always `None` for AWS networks, so they are never reported as a foreign country.
    pub country_code: Option<String>,
    /// English name of that country.
    pub country_name: Option<String>,
    /// Autonomous system number of the network the address belongs to.
    pub asn: Option<u32>,
    /// Organisation the autonomous system is registered to.
    pub network_owner: Option<String>,
    /// AWS region from `ip-ranges.json`, such as `us-east-1` or `GLOBAL`.
    pub aws_region: Option<String>,
    /// AWS service: the `ip-ranges.json` service (`EC2`, `S3`, `AMAZON`) for an AWS
    /// network, or the service principal for an AWS service call.
    pub aws_service: Option<String>,
}

impl Location {
    fn new(category: LocationCategory, address: Option<IpAddr>) -> Location {
        Location {
            category,
            address,
            country_code: None,
            country_name: None,
            asn: None,
            network_owner: None,
            aws_region: None,
            aws_service: None,
        }
    }

    /// Formats the location for people, for example `DE (AS24940 Hetzner Online GmbH)`,
    /// `AWS network (us-east-1, EC2)` or `reserved address (not routable)`.
    pub fn label(&self) -> String {
        match self.category {
            LocationCategory::AwsService => match &self.aws_service {
                Some(service) => format!("AWS service {service}"),
                None => "AWS service".to_owned(),
            },
            LocationCategory::AwsInternal => "AWS internal".to_owned(),
            LocationCategory::AwsNetwork => self.aws_network_label(),
            LocationCategory::Private => "private address".to_owned(),
            LocationCategory::Reserved => "reserved address (not routable)".to_owned(),
            LocationCategory::Public => self.public_label(),
            LocationCategory::Unknown if self.address.is_some() => {
                "unknown (no geolocation database)".to_owned()
            }
            LocationCategory::Unknown => {
                "unknown (not an IP address or AWS service name)".to_owned()
            }
        }
    }

    fn aws_network_label(&self) -> String {
        if let (Some(region), Some(service)) = (&self.aws_region, &self.aws_service) {
            return format!("AWS network ({region}, {service})");
        }
        match self.asn_label() {
            Some(asn) => format!("AWS network ({asn})"),
            None => "AWS network".to_owned(),
        }
    }

    fn public_label(&self) -> String {
        match (&self.country_code, self.asn_label()) {
            (Some(country), Some(asn)) => format!("{country} ({asn})"),
            (Some(country), None) => country.clone(),
            (None, Some(asn)) => asn,
            (None, None) => "public address (not in the geolocation databases)".to_owned(),
        }
    }

    /// `AS24940 Hetzner Online GmbH`, or `AS24940` when the owner is not known.
    fn asn_label(&self) -> Option<String> {
        let asn = self.asn?;
        Some(match &self.network_owner {
            Some(owner) => format!("AS{asn} {owner}"),
            None => format!("AS{asn}"),
        })
    }
}

/// An MMDB database that [`Geo`] has loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DatabaseStatus {
    /// Path from the configuration.
    pub path: PathBuf,
    /// `database_type` from the MMDB metadata, such as `GeoLite2-Country`.
    pub database_type: String,
    /// Build date from the MMDB metadata (`YYYY-MM-DD`, UTC).
    pub build_date: Option<String>,
}

/// The `ip-ranges.json` file that [`Geo`] has loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IpRangesStatus {
    /// Path from the configuration.
    pub path: PathBuf,
    /// Number of IPv4 and IPv6 entries.
    pub prefixes: usize,
    /// The file's `createDate`, such as `2026-01-01-00-00-00`.
    pub create_date: Option<String>,
}

/// Loaded geolocation sources, for the report header and `--format json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GeoStatus {
    /// The country database, when configured.
    pub country_db: Option<DatabaseStatus>,
    /// The ASN database, when configured.
    pub asn_db: Option<DatabaseStatus>,
    /// AWS's address ranges, when configured.
    pub aws_ip_ranges: Option<IpRangesStatus>,
    /// Lookups that failed on a damaged database record since the databases were opened.
    pub failed_lookups: u64,
}

impl GeoStatus {
    /// Returns `true` when countries or network owners can be shown for public addresses.
    pub fn is_available(&self) -> bool {
        self.country_db.is_some() || self.asn_db.is_some()
    }

    /// Describes the loaded sources in a few sentences, for example
    /// `geolocation unavailable: no country or ASN database configured (set
    /// geo.country_db / geo.asn_db to an MMDB file)`.
    pub fn summary(&self) -> String {
        let mut summary = match (&self.country_db, &self.asn_db) {
            (None, None) => "geolocation unavailable: no country or ASN database configured \
                 (set geo.country_db / geo.asn_db to an MMDB file)"
                .to_owned(),
            (Some(country), None) => format!(
                "geolocation: countries from {}. No ASN database, so network owners are not shown \
                 (set geo.asn_db to an MMDB file)",
                describe_database(country)
            ),
            (None, Some(asn)) => format!(
                "geolocation: network owners from {}. No country database, so countries are not \
                 shown (set geo.country_db to an MMDB file)",
                describe_database(asn)
            ),
            (Some(country), Some(asn)) => format!(
                "geolocation: countries from {}, network owners from {}",
                describe_database(country),
                describe_database(asn)
            ),
        };

        match (&self.aws_ip_ranges, &self.asn_db) {
            (Some(ranges), _) => {
                let _ = write!(
                    summary,
                    ". AWS networks from {} ({} prefixes",
                    ranges.path.display(),
                    ranges.prefixes
                );
                if let Some(created) = &ranges.create_date {
                    let _ = write!(summary, ", created {created}");
                }
                summary.push(')');
            }
            (None, Some(_)) => summary.push_str(
                ". AWS networks recognised by ASN only, without region or service \
                 (set geo.aws_ip_ranges to AWS's ip-ranges.json)",
            ),
            (None, None) => summary.push_str(
                ". AWS networks not recognised (set geo.aws_ip_ranges to AWS's ip-ranges.json)",
            ),
        }

        if self.failed_lookups > 0 {
            let _ = write!(
                summary,
                ". Lookups that failed on damaged database records: {} (see the log)",
                self.failed_lookups
            );
        }
        summary
    }
}

fn describe_database(database: &DatabaseStatus) -> String {
    match &database.build_date {
        Some(date) => format!("{} (built {date})", database.database_type),
        None => database.database_type.clone(),
    }
}

/// The loaded geolocation sources. Build it once per process or investigation and share
/// it: lookups take `&self` and are safe from many threads.
#[derive(Debug, Default)]
pub struct Geo {
    country_db: Option<MmdbDatabase>,
    asn_db: Option<MmdbDatabase>,
    aws_ranges: Option<(PathBuf, AwsIpRanges)>,
    failed_lookups: AtomicU64,
}

impl Geo {
    /// Loads every file that `config` names.
    ///
    /// # Errors
    ///
    /// A missing or unreadable file, a file that is not a valid MMDB database or
    /// `ip-ranges.json`, or an MMDB database of the wrong kind. The error names the file
    /// and its setting.
    pub fn open(config: &GeoConfig) -> Result<Geo, GeoError> {
        let country_db = config
            .country_db
            .as_deref()
            .map(|path| MmdbDatabase::open(path, DatabaseKind::Country))
            .transpose()?;
        let asn_db = config
            .asn_db
            .as_deref()
            .map(|path| MmdbDatabase::open(path, DatabaseKind::Asn))
            .transpose()?;
        let aws_ranges = config
            .aws_ip_ranges
            .as_deref()
            .map(|path| open_ip_ranges(path).map(|ranges| (path.to_owned(), ranges)))
            .transpose()?;

        let geo = Geo {
            country_db,
            asn_db,
            aws_ranges,
            failed_lookups: AtomicU64::new(0),
        };
        let status = geo.status();
        if status.is_available() {
            tracing::info!(summary = %status.summary(), "geolocation sources loaded");
        } else {
            // Info, not a warning: geolocation is optional, and every report states that
            // it is unavailable where it would have shown countries.
            tracing::info!(summary = %status.summary(), "geolocation unavailable");
        }
        Ok(geo)
    }

    /// Returns a `Geo` with no sources. It still recognises AWS callers, private and
    /// reserved addresses, and returns [`LocationCategory::Unknown`] for public ones.
    pub fn none() -> Geo {
        Geo::default()
    }

    /// Reports which sources are loaded.
    pub fn status(&self) -> GeoStatus {
        GeoStatus {
            country_db: self.country_db.as_ref().map(MmdbDatabase::status),
            asn_db: self.asn_db.as_ref().map(MmdbDatabase::status),
            aws_ip_ranges: self
                .aws_ranges
                .as_ref()
                .map(|(path, ranges)| IpRangesStatus {
                    path: path.clone(),
                    prefixes: ranges.prefix_count(),
                    create_date: ranges.create_date().map(str::to_owned),
                }),
            failed_lookups: self.failed_lookups.load(Ordering::Relaxed),
        }
    }

    /// Geolocates the raw text of a CloudTrail `sourceIPAddress`.
    ///
    /// The first check that matches decides the category. In order: `AWS Internal`, an
    /// AWS service principal, text that is no address (`Unknown`), a private address, a
    /// reserved address, and an address in `ip-ranges.json` or announced from one of
    /// [`AMAZON_ASNS`] (`AwsNetwork`, with no country). Any other address is `Public` with
    /// the database records, or `Unknown` when no database is configured.
    ///
    /// Documentation prefixes (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
    /// 2001:db8::/32, 3fff::/20) are reserved unless a configured source has a record for
    /// them. Public databases are not expected to have such records, while test databases
    /// use these prefixes on purpose.
    pub fn lookup(&self, source: &str) -> Location {
        let address = match address::parse_source(source) {
            Source::AwsInternal => return Location::new(LocationCategory::AwsInternal, None),
            Source::AwsService(service) => {
                let mut location = Location::new(LocationCategory::AwsService, None);
                location.aws_service = Some(service);
                return location;
            }
            Source::Unrecognised => return Location::new(LocationCategory::Unknown, None),
            Source::Address(address) => address,
        };

        let special = address::special_range(address);
        match special {
            Some(SpecialRange::Private) => {
                return Location::new(LocationCategory::Private, Some(address));
            }
            Some(SpecialRange::Reserved) => {
                return Location::new(LocationCategory::Reserved, Some(address));
            }
            Some(SpecialRange::Documentation) | None => {}
        }

        let asn = self.lookup_asn(address);
        if let Some(location) = self.aws_network(address, asn.as_ref()) {
            return location;
        }

        let country = self.lookup_country(address);
        if special == Some(SpecialRange::Documentation) && country.is_none() && asn.is_none() {
            return Location::new(LocationCategory::Reserved, Some(address));
        }
        if self.country_db.is_none() && self.asn_db.is_none() {
            return Location::new(LocationCategory::Unknown, Some(address));
        }

        let mut location = Location::new(LocationCategory::Public, Some(address));
        set_asn(&mut location, asn);
        if let Some(country) = country {
            location.country_code = country.iso_code;
            location.country_name = country.name;
        }
        location
    }

    /// Builds the `AwsNetwork` location when `address` is in AWS's published ranges or
    /// announced from an Amazon ASN.
    fn aws_network(&self, address: IpAddr, asn: Option<&AsnRecord>) -> Option<Location> {
        let range = self
            .aws_ranges
            .as_ref()
            .and_then(|(_, ranges)| ranges.find(address));
        let amazon_asn = asn
            .and_then(|record| record.number)
            .is_some_and(|number| AMAZON_ASNS.contains(&number));
        if range.is_none() && !amazon_asn {
            return None;
        }

        let mut location = Location::new(LocationCategory::AwsNetwork, Some(address));
        set_asn(&mut location, asn.cloned());
        if let Some(range) = range {
            location.aws_region = Some(range.region.clone());
            location.aws_service = Some(range.service.clone());
        }
        Some(location)
    }

    fn lookup_country(&self, address: IpAddr) -> Option<CountryRecord> {
        let database = self.country_db.as_ref()?;
        database.country(address).unwrap_or_else(|error| {
            self.record_failed_lookup(DatabaseKind::Country, address, &error)
        })
    }

    fn lookup_asn(&self, address: IpAddr) -> Option<AsnRecord> {
        let database = self.asn_db.as_ref()?;
        database
            .asn(address)
            .unwrap_or_else(|error| self.record_failed_lookup(DatabaseKind::Asn, address, &error))
    }

    /// Counts a lookup that failed on a damaged record and logs it: the first failure as
    /// a warning, later ones at debug level so that a damaged database does not flood
    /// the log. The address is then treated as having no record.
    fn record_failed_lookup<T>(
        &self,
        kind: DatabaseKind,
        address: IpAddr,
        error: &maxminddb::MaxMindDbError,
    ) -> Option<T> {
        let previous = self.failed_lookups.fetch_add(1, Ordering::Relaxed);
        if previous == 0 {
            tracing::warn!(setting = kind.setting(), %address, %error, "geolocation lookup failed");
        } else {
            tracing::debug!(setting = kind.setting(), %address, %error, "geolocation lookup failed");
        }
        None
    }
}

fn set_asn(location: &mut Location, asn: Option<AsnRecord>) {
    if let Some(record) = asn {
        location.asn = record.number;
        location.network_owner = record.organization;
    }
}

fn open_ip_ranges(path: &Path) -> Result<AwsIpRanges, GeoError> {
    let bytes = std::fs::read(path).map_err(|source| GeoError::Read {
        setting: "geo.aws_ip_ranges",
        path: path.to_owned(),
        source,
    })?;

    let ranges = AwsIpRanges::from_json(&bytes).map_err(|source| GeoError::InvalidIpRanges {
        path: path.to_owned(),
        source,
    })?;
    if ranges.prefix_count() == 0 {
        return Err(GeoError::EmptyIpRanges {
            path: path.to_owned(),
        });
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

    fn fixture(name: &str) -> PathBuf {
        Path::new(FIXTURES).join(name)
    }

    fn full_config() -> GeoConfig {
        GeoConfig {
            country_db: Some(fixture("geo-country-test.mmdb")),
            asn_db: Some(fixture("geo-asn-test.mmdb")),
            aws_ip_ranges: Some(fixture("geo-ip-ranges-test.json")),
        }
    }

    fn full_geo() -> Geo {
        Geo::open(&full_config()).expect("fixtures open")
    }

    fn open_error(config: &GeoConfig) -> GeoError {
        match Geo::open(config) {
            Ok(geo) => panic!(
                "expected an error for {config:?}, got a Geo: {:?}",
                geo.status()
            ),
            Err(error) => error,
        }
    }

    /// Checks category and label together, printing the whole location on failure.
    fn assert_location(
        geo: &Geo,
        source: &str,
        category: LocationCategory,
        label: &str,
    ) -> Location {
        let location = geo.lookup(source);
        assert_eq!(
            location.category, category,
            "source {source:?} gave {location:#?}"
        );
        assert_eq!(
            location.label(),
            label,
            "source {source:?} gave {location:#?}"
        );
        location
    }

    #[test]
    fn lookup_public_country_and_asn_owner() {
        let location = assert_location(
            &full_geo(),
            "192.0.2.10",
            LocationCategory::Public,
            "DE (AS64500 Example Hosting GmbH)",
        );

        assert_eq!(location.address, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(location.country_code.as_deref(), Some("DE"));
        assert_eq!(location.country_name.as_deref(), Some("Germany"));
        assert_eq!(location.asn, Some(64500));
        assert_eq!(
            location.network_owner.as_deref(),
            Some("Example Hosting GmbH")
        );
        assert_eq!(location.aws_region, None);
        assert_eq!(location.aws_service, None);
    }

    #[test]
    fn lookup_ipv4_leading_zeros() {
        let geo = full_geo();

        let padded = geo.lookup("192.000.002.010");

        assert_eq!(padded, geo.lookup("192.0.2.10"));
        assert_eq!(padded.address, Some("192.0.2.10".parse().unwrap()));
    }

    #[test]
    fn lookup_ipv6_public() {
        let location = assert_location(
            &full_geo(),
            "2001:db8:1::5",
            LocationCategory::Public,
            "NL (AS64503 Example Transit B.V.)",
        );

        assert_eq!(location.country_name.as_deref(), Some("Netherlands"));
    }

    #[test]
    fn lookup_ipv6_country_without_asn() {
        assert_location(&full_geo(), "2001:db8::1", LocationCategory::Public, "NL");
    }

    #[test]
    fn lookup_ipv4_mapped_ipv6() {
        let location = full_geo().lookup("::ffff:192.0.2.10");

        assert_eq!(location.address, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(location.country_code.as_deref(), Some("DE"));
    }

    #[test]
    fn lookup_aws_range_beats_country() {
        // The country fixture places 198.51.100.0/25 in the US and the ASN fixture gives
        // it AS64501, but ip-ranges.json lists it as EC2 in us-east-1.
        let location = assert_location(
            &full_geo(),
            "198.51.100.10",
            LocationCategory::AwsNetwork,
            "AWS network (us-east-1, EC2)",
        );

        assert_eq!(location.country_code, None);
        assert_eq!(location.country_name, None);
        assert_eq!(location.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(location.aws_service.as_deref(), Some("EC2"));
        assert_eq!(location.asn, Some(64501));
    }

    #[test]
    fn lookup_aws_range_ipv6() {
        assert_location(
            &full_geo(),
            "2001:db8:ff00::20",
            LocationCategory::AwsNetwork,
            "AWS network (eu-west-1, EC2)",
        );
    }

    #[test]
    fn lookup_amazon_asn_beats_country() {
        // 203.0.113.0/25 is in Ireland in the country fixture and announced from AS16509
        // in the ASN fixture, and it is not in the ip-ranges.json fixture.
        let location = assert_location(
            &full_geo(),
            "203.0.113.10",
            LocationCategory::AwsNetwork,
            "AWS network (AS16509 Amazon.com, Inc.)",
        );

        assert_eq!(location.country_code, None);
        assert_eq!(location.aws_region, None);
        assert_eq!(location.asn, Some(16509));
    }

    #[test]
    fn lookup_amazon_asn_without_ip_ranges() {
        let geo = Geo::open(&GeoConfig {
            asn_db: Some(fixture("geo-asn-test.mmdb")),
            ..GeoConfig::default()
        })
        .unwrap();

        assert_location(
            &geo,
            "203.0.113.10",
            LocationCategory::AwsNetwork,
            "AWS network (AS16509 Amazon.com, Inc.)",
        );
    }

    #[test]
    fn lookup_aws_range_without_databases() {
        let geo = Geo::open(&GeoConfig {
            aws_ip_ranges: Some(fixture("geo-ip-ranges-test.json")),
            ..GeoConfig::default()
        })
        .unwrap();

        assert_location(
            &geo,
            "198.51.100.100",
            LocationCategory::AwsNetwork,
            "AWS network (us-east-1, S3)",
        );
        assert_location(
            &geo,
            "8.8.8.8",
            LocationCategory::Unknown,
            "unknown (no geolocation database)",
        );
    }

    #[test]
    fn lookup_registered_country_fallback() {
        let location = assert_location(
            &full_geo(),
            "203.0.113.130",
            LocationCategory::Public,
            "JP (AS64502 Example Mobile K.K.)",
        );

        assert_eq!(location.country_name.as_deref(), Some("Japan"));
    }

    #[test]
    fn lookup_public_country_only() {
        assert_location(
            &full_geo(),
            "198.51.100.200",
            LocationCategory::Public,
            "BR",
        );
    }

    #[test]
    fn lookup_public_asn_only() {
        let geo = Geo::open(&GeoConfig {
            asn_db: Some(fixture("geo-asn-test.mmdb")),
            ..GeoConfig::default()
        })
        .unwrap();

        assert_location(
            &geo,
            "192.0.2.10",
            LocationCategory::Public,
            "AS64500 Example Hosting GmbH",
        );
    }

    #[test]
    fn lookup_public_not_in_databases() {
        assert_location(
            &full_geo(),
            "8.8.8.8",
            LocationCategory::Public,
            "public address (not in the geolocation databases)",
        );
    }

    #[test]
    fn lookup_documentation_without_record_is_reserved() {
        let geo = full_geo();

        // 203.0.113.192/26 has no record in any fixture.
        assert_location(
            &geo,
            "203.0.113.200",
            LocationCategory::Reserved,
            "reserved address (not routable)",
        );
        assert_location(
            &Geo::none(),
            "192.0.2.10",
            LocationCategory::Reserved,
            "reserved address (not routable)",
        );
    }

    #[test]
    fn lookup_aws_callers() {
        let geo = full_geo();

        for source in ["AWS Internal", "aws.internal"] {
            let location =
                assert_location(&geo, source, LocationCategory::AwsInternal, "AWS internal");
            assert_eq!(location.address, None, "source {source:?}");
        }
        let location = assert_location(
            &geo,
            "ec2.amazonaws.com",
            LocationCategory::AwsService,
            "AWS service ec2.amazonaws.com",
        );
        assert_eq!(location.aws_service.as_deref(), Some("ec2.amazonaws.com"));
    }

    #[test]
    fn lookup_private_addresses() {
        let geo = full_geo();

        for source in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "127.0.0.1",
            "100.64.1.1",
            "fe80::1",
            "fd00::1",
        ] {
            assert_location(&geo, source, LocationCategory::Private, "private address");
        }
    }

    #[test]
    fn lookup_reserved_addresses() {
        let geo = full_geo();

        for source in [
            "253.252.51.07",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "00.000.000.00",
            "ff02::1",
        ] {
            assert_location(
                &geo,
                source,
                LocationCategory::Reserved,
                "reserved address (not routable)",
            );
        }
    }

    #[test]
    fn lookup_text_that_is_no_address() {
        for geo in [full_geo(), Geo::none()] {
            let location = assert_location(
                &geo,
                "console.example.com",
                LocationCategory::Unknown,
                "unknown (not an IP address or AWS service name)",
            );
            assert_eq!(location.address, None);
        }
    }

    #[test]
    fn none_gives_unknown_and_unavailable_status() {
        let geo = Geo::none();

        let location = assert_location(
            &geo,
            "035.249.253.232",
            LocationCategory::Unknown,
            "unknown (no geolocation database)",
        );
        assert_eq!(location.address, Some("35.249.253.232".parse().unwrap()));

        let status = geo.status();
        assert!(!status.is_available());
        assert_eq!(
            status.summary(),
            "geolocation unavailable: no country or ASN database configured \
             (set geo.country_db / geo.asn_db to an MMDB file). AWS networks not recognised \
             (set geo.aws_ip_ranges to AWS's ip-ranges.json)"
        );
    }

    #[test]
    fn open_empty_config_matches_none() {
        let geo = Geo::open(&GeoConfig::default()).unwrap();

        assert_eq!(geo.status(), Geo::none().status());
        assert_eq!(geo.lookup("8.8.8.8").category, LocationCategory::Unknown);
    }

    #[test]
    fn status_lists_every_source() {
        let status = full_geo().status();

        assert!(status.is_available());
        let country = status.country_db.as_ref().expect("country database status");
        assert_eq!(country.database_type, "keycheck-Test-Country");
        assert_eq!(country.build_date.as_deref(), Some("2026-01-01"));
        let ranges = status.aws_ip_ranges.as_ref().expect("ip-ranges status");
        assert_eq!(ranges.prefixes, 7);
        assert_eq!(status.failed_lookups, 0);
        assert_eq!(
            status.summary(),
            format!(
                "geolocation: countries from keycheck-Test-Country (built 2026-01-01), \
                 network owners from keycheck-Test-ASN (built 2026-01-01). AWS networks from \
                 {} (7 prefixes, created 2026-01-01-00-00-00)",
                fixture("geo-ip-ranges-test.json").display()
            )
        );
    }

    #[test]
    fn status_country_only_names_missing_asn_setting() {
        let geo = Geo::open(&GeoConfig {
            country_db: Some(fixture("geo-country-test.mmdb")),
            ..GeoConfig::default()
        })
        .unwrap();

        let summary = geo.status().summary();

        assert!(
            summary.starts_with("geolocation: countries from keycheck-Test-Country"),
            "{summary}"
        );
        assert!(summary.contains("set geo.asn_db"), "{summary}");
        assert!(summary.contains("set geo.aws_ip_ranges"), "{summary}");
    }

    #[test]
    fn open_missing_file_names_setting_and_path() {
        let missing = fixture("no-such-file.mmdb");

        for (config, setting) in [
            (
                GeoConfig {
                    country_db: Some(missing.clone()),
                    ..GeoConfig::default()
                },
                "geo.country_db",
            ),
            (
                GeoConfig {
                    asn_db: Some(missing.clone()),
                    ..GeoConfig::default()
                },
                "geo.asn_db",
            ),
            (
                GeoConfig {
                    aws_ip_ranges: Some(missing.clone()),
                    ..GeoConfig::default()
                },
                "geo.aws_ip_ranges",
            ),
        ] {
            let error = open_error(&config);

            assert!(
                matches!(error, GeoError::Read { .. }),
                "{setting}: {error:?}"
            );
            let message = error.to_string();
            assert!(message.contains(setting), "{message}");
            assert!(
                message.contains(&missing.display().to_string()),
                "{message}"
            );
            let source = std::error::Error::source(&error).expect("io error as source");
            assert!(source.to_string().contains("No such file"), "{source}");
        }
    }

    #[test]
    fn open_corrupt_mmdb_names_setting_and_path() {
        let directory = tempfile::tempdir().unwrap();
        let garbage = directory.path().join("garbage.mmdb");
        std::fs::write(&garbage, b"this is not an MMDB file").unwrap();
        let truncated = directory.path().join("truncated.mmdb");
        let whole = std::fs::read(fixture("geo-country-test.mmdb")).unwrap();
        std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();

        for path in [garbage, truncated] {
            let error = open_error(&GeoConfig {
                country_db: Some(path.clone()),
                ..GeoConfig::default()
            });

            assert!(
                matches!(error, GeoError::InvalidMmdb { .. }),
                "{path:?}: {error:?}"
            );
            let message = error.to_string();
            assert!(message.contains("geo.country_db"), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
        }
    }

    #[test]
    fn open_swapped_databases_rejected() {
        let error = open_error(&GeoConfig {
            country_db: Some(fixture("geo-asn-test.mmdb")),
            ..GeoConfig::default()
        });
        assert_eq!(
            error.to_string(),
            format!(
                "geo.country_db file {} is a keycheck-Test-ASN database, but geo.country_db \
                 expects a country or city database (GeoLite2-Country, GeoLite2-City, DB-IP \
                 country or city lite)",
                fixture("geo-asn-test.mmdb").display()
            )
        );

        let error = open_error(&GeoConfig {
            asn_db: Some(fixture("geo-country-test.mmdb")),
            ..GeoConfig::default()
        });
        assert!(
            matches!(
                error,
                GeoError::WrongDatabaseType {
                    setting: "geo.asn_db",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn lookup_damaged_record_counts_failure() {
        // Overwrite the data section of the ASN fixture, keeping its search tree and metadata,
        // so that it opens but every record fails to decode.
        let mut bytes = std::fs::read(fixture("geo-asn-test.mmdb")).unwrap();
        let metadata = maxminddb::Reader::from_source(bytes.clone())
            .unwrap()
            .metadata()
            .clone();
        let data_start = metadata.node_count as usize * metadata.record_size as usize / 4 + 16;
        let marker = b"\xab\xcd\xefMaxMind.com";
        let data_end = bytes
            .windows(marker.len())
            .rposition(|window| window == marker)
            .unwrap();
        bytes[data_start..data_end].fill(0xff);
        let directory = tempfile::tempdir().unwrap();
        let damaged = directory.path().join("damaged-asn.mmdb");
        std::fs::write(&damaged, &bytes).unwrap();
        let geo = Geo::open(&GeoConfig {
            country_db: Some(fixture("geo-country-test.mmdb")),
            asn_db: Some(damaged),
            aws_ip_ranges: None,
        })
        .unwrap();

        assert_location(&geo, "192.0.2.10", LocationCategory::Public, "DE");
        assert_location(&geo, "2001:db8:1::5", LocationCategory::Public, "NL");

        let status = geo.status();
        assert_eq!(status.failed_lookups, 2);
        assert!(
            status
                .summary()
                .ends_with("Lookups that failed on damaged database records: 2 (see the log)"),
            "{}",
            status.summary()
        );
    }

    #[test]
    fn open_invalid_ip_ranges() {
        let directory = tempfile::tempdir().unwrap();
        let not_json = directory.path().join("not-json.json");
        std::fs::write(&not_json, b"<html>").unwrap();
        let empty = directory.path().join("empty.json");
        std::fs::write(&empty, b"{}").unwrap();

        let error = open_error(&GeoConfig {
            aws_ip_ranges: Some(not_json.clone()),
            ..GeoConfig::default()
        });
        assert!(
            matches!(error, GeoError::InvalidIpRanges { .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains(&not_json.display().to_string()),
            "{error}"
        );

        let error = open_error(&GeoConfig {
            aws_ip_ranges: Some(empty.clone()),
            ..GeoConfig::default()
        });
        assert!(matches!(error, GeoError::EmptyIpRanges { .. }), "{error:?}");
        assert!(error.to_string().contains("geo.aws_ip_ranges"), "{error}");
    }

    #[test]
    fn config_rejects_unknown_fields() {
        let config: GeoConfig =
            serde_json::from_str(r#"{"country_db": "/data/GeoLite2-Country.mmdb"}"#).unwrap();
        assert_eq!(
            config.country_db,
            Some(PathBuf::from("/data/GeoLite2-Country.mmdb"))
        );
        assert_eq!(config.asn_db, None);

        let error = serde_json::from_str::<GeoConfig>(r#"{"city_db": "/data/GeoLite2-City.mmdb"}"#)
            .expect_err("unknown field accepted");
        assert!(
            error.to_string().contains("unknown field `city_db`"),
            "{error}"
        );
    }

    #[test]
    fn category_serializes_snake_case() {
        let cases = [
            (LocationCategory::AwsService, "aws_service"),
            (LocationCategory::AwsInternal, "aws_internal"),
            (LocationCategory::AwsNetwork, "aws_network"),
            (LocationCategory::Private, "private"),
            (LocationCategory::Reserved, "reserved"),
            (LocationCategory::Public, "public"),
            (LocationCategory::Unknown, "unknown"),
        ];
        for (category, expected) in cases {
            assert_eq!(
                serde_json::to_value(category).unwrap(),
                expected,
                "{category:?}"
            );
        }
    }

    /// Every `sourceIPAddress` in the shared corpus of real CloudTrail records must parse
    /// as an address or an AWS caller, whatever the databases know.
    #[test]
    fn lookup_corpus_source_addresses() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
        if !corpus.is_dir() {
            eprintln!("skipped: no corpus at {}", corpus.display());
            return;
        }
        // Also matches the escaped form inside LookupEvents' CloudTrailEvent strings.
        let pattern = regex::Regex::new(r#"\\?"sourceIPAddress\\?"\s*:\s*\\?"([^"\\]*)"#).unwrap();
        let geo = Geo::none();

        let mut checked = 0;
        let mut pending = vec![corpus];
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                pending.extend(
                    std::fs::read_dir(&path)
                        .unwrap()
                        .map(|entry| entry.unwrap().path()),
                );
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for captures in pattern.captures_iter(&text) {
                let source = &captures[1];
                let location = geo.lookup(source);
                let recognised = location.address.is_some()
                    || matches!(
                        location.category,
                        LocationCategory::AwsInternal | LocationCategory::AwsService
                    );
                assert!(
                    recognised,
                    "{}: {source:?} gave {location:#?}",
                    path.display()
                );
                checked += 1;
            }
        }
        assert!(checked > 0, "no sourceIPAddress found in the corpus");
    }
}
