//! The MMDB databases behind geolocation: opening one with errors that name its setting,
//! and reading the country or ASN record for an address.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{MaxMindDbError, Reader, geoip2};

use super::{DatabaseStatus, GeoError};

/// Role of a database file: the country database or the ASN database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DatabaseKind {
    Country,
    Asn,
}

impl DatabaseKind {
    /// Returns the configuration setting that names this database.
    pub(super) fn setting(self) -> &'static str {
        match self {
            DatabaseKind::Country => "geo.country_db",
            DatabaseKind::Asn => "geo.asn_db",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            DatabaseKind::Country => {
                "a country or city database (GeoLite2-Country, GeoLite2-City, DB-IP country or city lite)"
            }
            DatabaseKind::Asn => "an ASN database (GeoLite2-ASN or DB-IP ASN lite)",
        }
    }
}

/// A country's ISO 3166-1 alpha-2 code and English name, as the database stores them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct CountryRecord {
    pub(super) iso_code: Option<String>,
    pub(super) name: Option<String>,
}

/// An autonomous system number and the organisation it is registered to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct AsnRecord {
    pub(super) number: Option<u32>,
    pub(super) organization: Option<String>,
}

/// One opened MMDB file, held in memory.
#[derive(Debug)]
pub(super) struct MmdbDatabase {
    path: PathBuf,
    reader: Reader<Vec<u8>>,
}

impl MmdbDatabase {
    /// Reads the whole file into memory and checks its metadata.
    ///
    /// Rejects a database whose type names the other kind (an ASN database configured
    /// as the country database, for example). It does not walk the search tree, so damage
    /// beyond the metadata shows up later as failed lookups.
    pub(super) fn open(path: &Path, kind: DatabaseKind) -> Result<MmdbDatabase, GeoError> {
        let bytes = std::fs::read(path).map_err(|source| GeoError::Read {
            setting: kind.setting(),
            path: path.to_owned(),
            source,
        })?;

        let reader = Reader::from_source(bytes).map_err(|source| GeoError::InvalidMmdb {
            setting: kind.setting(),
            path: path.to_owned(),
            source,
        })?;

        let database_type = &reader.metadata().database_type;
        if names_other_kind(database_type, kind) {
            return Err(GeoError::WrongDatabaseType {
                setting: kind.setting(),
                path: path.to_owned(),
                database_type: database_type.clone(),
                expected: kind.expected(),
            });
        }

        Ok(MmdbDatabase {
            path: path.to_owned(),
            reader,
        })
    }

    /// Returns the path, database type and build date, for [`super::GeoStatus`].
    pub(super) fn status(&self) -> DatabaseStatus {
        let metadata = self.reader.metadata();
        let build_date = i64::try_from(metadata.build_epoch)
            .ok()
            .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
            .map(|time| time.format("%Y-%m-%d").to_string());

        DatabaseStatus {
            path: self.path.clone(),
            database_type: metadata.database_type.clone(),
            build_date,
        }
    }

    /// Reads the country record for `address`, falling back to the country the network
    /// is registered in when the record has no located country.
    ///
    /// Returns `Ok(None)` when the database has no record, or when it holds only IPv4
    /// networks and `address` is IPv6.
    pub(super) fn country(&self, address: IpAddr) -> Result<Option<CountryRecord>, MaxMindDbError> {
        if !self.covers(address) {
            return Ok(None);
        }
        let Some(record) = self.reader.lookup(address)?.decode::<geoip2::Country>()? else {
            return Ok(None);
        };

        let country = if record.country.iso_code.is_some() {
            record.country
        } else {
            record.registered_country
        };
        if country.iso_code.is_none() && country.names.english.is_none() {
            return Ok(None);
        }

        Ok(Some(CountryRecord {
            iso_code: country.iso_code.map(str::to_owned),
            name: country.names.english.map(str::to_owned),
        }))
    }

    /// Reads the ASN record for `address`, with the same `Ok(None)` cases as
    /// [`MmdbDatabase::country`].
    pub(super) fn asn(&self, address: IpAddr) -> Result<Option<AsnRecord>, MaxMindDbError> {
        if !self.covers(address) {
            return Ok(None);
        }
        let Some(record) = self.reader.lookup(address)?.decode::<geoip2::Asn>()? else {
            return Ok(None);
        };
        if record.autonomous_system_number.is_none() {
            return Ok(None);
        }

        Ok(Some(AsnRecord {
            number: record.autonomous_system_number,
            organization: record.autonomous_system_organization.map(str::to_owned),
        }))
    }

    /// Checks whether the database can contain `address`. An IPv4-only database cannot
    /// contain IPv6 addresses, and the reader returns an error when asked for one.
    fn covers(&self, address: IpAddr) -> bool {
        address.is_ipv4() || self.reader.metadata().ip_version == 6
    }
}

/// Checks whether an MMDB `database_type` such as `GeoLite2-ASN` or `DBIP-Country-Lite`
/// names the other kind of database than the one it is configured as.
///
/// Types that name neither kind (custom or unfamiliar databases) are accepted.
fn names_other_kind(database_type: &str, kind: DatabaseKind) -> bool {
    let words: Vec<String> = database_type
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .collect();
    let has = |candidates: &[&str]| words.iter().any(|word| candidates.contains(&word.as_str()));

    let country_words = ["country", "city", "enterprise"];
    let asn_words = ["asn", "isp"];
    match kind {
        DatabaseKind::Country => has(&asn_words) && !has(&country_words),
        DatabaseKind::Asn => has(&country_words) && !has(&asn_words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_other_kind_table() {
        let cases = [
            ("GeoLite2-Country", DatabaseKind::Country, false),
            ("GeoLite2-City", DatabaseKind::Country, false),
            ("GeoIP2-Enterprise", DatabaseKind::Country, false),
            ("DBIP-Country-Lite", DatabaseKind::Country, false),
            ("DBIP-City-Lite", DatabaseKind::Country, false),
            ("GeoLite2-ASN", DatabaseKind::Country, true),
            ("GeoIP2-ISP", DatabaseKind::Country, true),
            ("GeoLite2-ASN", DatabaseKind::Asn, false),
            ("GeoIP2-ISP", DatabaseKind::Asn, false),
            (
                "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
                DatabaseKind::Asn,
                false,
            ),
            ("GeoLite2-Country", DatabaseKind::Asn, true),
            ("GeoLite2-City", DatabaseKind::Asn, true),
            ("GeoIP", DatabaseKind::Asn, false),
            ("GeoIP", DatabaseKind::Country, false),
            ("Displaced-Cityscape", DatabaseKind::Asn, false),
        ];
        for (database_type, kind, expected) in cases {
            assert_eq!(
                names_other_kind(database_type, kind),
                expected,
                "database_type {database_type:?} configured as {kind:?}"
            );
        }
    }
}
