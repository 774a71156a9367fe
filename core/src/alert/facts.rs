//! The facts that one finding, event or stretch of text reports about a key, before the
//! pieces of a message are merged into one [`Alert`](super::Alert). Also the rules that
//! read single field values: key IDs, account IDs, ARNs, regions, times, severities and
//! addresses.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;

use super::AlertSource;
use crate::key::{AccessKeyId, KEY_ID_LEN};

/// The facts one piece of a message gives. Every field is optional. The first value
/// seen for a field wins, except for the times, which widen to the earliest first
/// sighting and the latest last sighting.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Facts {
    pub source: Option<AlertSource>,
    pub key_ids: Vec<AccessKeyId>,
    pub user_name: Option<String>,
    pub principal_id: Option<String>,
    pub principal_arn: Option<String>,
    pub account_id: Option<String>,
    pub finding_type: Option<String>,
    pub finding_id: Option<String>,
    pub title: Option<String>,
    pub severity: Option<String>,
    pub region: Option<String>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub source_ips: Vec<String>,
    /// The same key IDs and addresses as sets, so that deduplication stays linear when a
    /// message names thousands of them.
    seen_keys: HashSet<AccessKeyId>,
    seen_ips: HashSet<String>,
}

/// A scalar read from JSON or from text: a string, or a number.
#[derive(Clone, Copy, Debug)]
pub(super) enum FieldValue<'a> {
    Text(&'a str),
    Number(f64),
}

impl FieldValue<'_> {
    fn as_text(&self) -> Option<&str> {
        match self {
            FieldValue::Text(text) => Some(text),
            FieldValue::Number(_) => None,
        }
    }
}

impl Facts {
    pub fn new(source: Option<AlertSource>) -> Self {
        Facts {
            source,
            ..Facts::default()
        }
    }

    /// Returns true when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Facts::default()
    }

    pub fn names_key(&self, key: &AccessKeyId) -> bool {
        self.seen_keys.contains(key)
    }

    pub fn add_key(&mut self, key: AccessKeyId) {
        if self.seen_keys.insert(key.clone()) {
            self.key_ids.push(key);
        }
    }

    /// Adds the value of a field that contains an access key ID, such as `AccessKeyId` or
    /// `entityValue`. A field name vouches for its value, so lowercase is accepted here.
    /// Placeholders such as `GeneratedFindingAccessKeyId` do not parse and are skipped.
    pub fn add_key_field(&mut self, value: &str) {
        if let Ok(key) = value.trim().parse::<AccessKeyId>() {
            self.add_key(key);
        }
    }

    /// Adds every access key ID that appears in free text.
    pub fn add_keys_in_text(&mut self, text: &str) {
        for (_, key) in key_ids_in_text(text) {
            self.add_key(key);
        }
    }

    /// Adds a remote address named by a finding when it parses as an IP address, which
    /// skips service names such as `ec2.amazonaws.com` in `sourceIPAddress`.
    pub fn add_ip(&mut self, value: &str) {
        let value = value.trim();
        if value.parse::<IpAddr>().is_ok() && self.seen_ips.insert(value.to_string()) {
            self.source_ips.push(value.to_string());
        }
    }

    pub fn hint_source(&mut self, source: Option<AlertSource>) {
        if self.source.is_none() {
            self.source = source;
        }
    }

    pub fn observe_first(&mut self, time: Option<DateTime<Utc>>) {
        if let Some(time) = time {
            self.first_seen = Some(self.first_seen.map_or(time, |seen| seen.min(time)));
        }
    }

    pub fn observe_last(&mut self, time: Option<DateTime<Utc>>) {
        if let Some(time) = time {
            self.last_seen = Some(self.last_seen.map_or(time, |seen| seen.max(time)));
        }
    }

    /// Reads one named field from an object of unknown shape or from text, by the
    /// field names GuardDuty, Security Hub, AWS Health, CloudTrail and chat formatters
    /// use. Names are compared without case, `_`, `-` or spaces, and a path such as
    /// `action/awsApiCallAction/remoteIpDetails/ipAddressV4` is read by its last part.
    /// Access key ID fields are left to the caller, which keeps keys in text order.
    pub fn apply_field(&mut self, name: &str, value: FieldValue<'_>) {
        let path = name.to_ascii_lowercase();
        let field = normalised_field_name(name);
        let text = value.as_text();

        match field.as_str() {
            "username" | "principalname" | "user" => fill_text(&mut self.user_name, text),
            "principalid" => fill_text(&mut self.principal_id, text),
            "arn" | "principalarn" | "userarn" => {
                fill_if(&mut self.principal_arn, text, is_principal_arn)
            }
            "accountid" | "awsaccountid" | "account" | "recipientaccountid" | "affectedaccount" => {
                fill_if(&mut self.account_id, text, is_account_id)
            }
            "type" if text.is_some_and(is_guardduty_type) => {
                fill_text(&mut self.finding_type, text);
                self.hint_source(Some(AlertSource::GuardDuty));
            }
            "findingtype" => fill_text(&mut self.finding_type, text),
            "eventtypecode" if text.is_some_and(|code| code.starts_with("AWS_")) => {
                fill_text(&mut self.finding_type, text);
                self.hint_source(Some(AlertSource::Health));
            }
            "id" | "findingid" => fill_if(&mut self.finding_id, text, is_finding_id),
            "eventarn" => fill_if(&mut self.finding_id, text, |arn| arn.contains(":health:")),
            "title" => fill_text(&mut self.title, text),
            "severity" if self.severity.is_none() => self.severity = severity_from(value),
            "severitylabel" | "label" if self.severity.is_none() => {
                self.severity = text.and_then(severity_label).map(str::to_string);
            }
            "region" | "awsregion" => fill_if(&mut self.region, text, is_region),
            "eventfirstseen" | "firstobservedat" | "starttime" | "firstseen" => {
                self.observe_first(parse_time(value))
            }
            "eventlastseen" | "lastobservedat" | "lastupdatedtime" | "lastseen" => {
                self.observe_last(parse_time(value))
            }
            // GuardDuty also reports the instance's own address, as localIpDetails.
            "ipaddressv4" | "ipaddressv6" | "sourceipaddress" | "sourceipv4" | "sourceipv6"
                if !path.contains("local") =>
            {
                if let Some(address) = text {
                    self.add_ip(address);
                }
            }
            "detailtype" => self.hint_source(text.and_then(source_from_detail_type)),
            "source" => self.hint_source(text.and_then(source_from_event_source)),
            "productarn" if text.is_some_and(|arn| arn.contains(":securityhub:")) => {
                self.hint_source(Some(AlertSource::SecurityHub));
            }
            "schemaversion" if text.is_some_and(|version| version.starts_with("2018-")) => {
                self.hint_source(Some(AlertSource::SecurityHub));
            }
            _ => {}
        }
    }
}

/// Returns a field name in lowercase without `_`, `-` or spaces, taking the last part
/// of a `/`-separated path: `Account ID` and `detail-type` become `accountid` and
/// `detailtype`.
pub(super) fn normalised_field_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Returns true for a normalised field name whose value is an access key ID.
pub(super) fn is_key_field(normalised: &str) -> bool {
    matches!(
        normalised,
        "accesskeyid" | "awsaccesskeyid" | "entityvalue" | "accesskey"
    )
}

fn fill_text(slot: &mut Option<String>, value: Option<&str>) {
    fill_if(slot, value, |_| true);
}

fn fill_if(slot: &mut Option<String>, value: Option<&str>, accept: impl Fn(&str) -> bool) {
    if slot.is_some() {
        return;
    }
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return;
    };
    if accept(value) {
        *slot = Some(value.to_string());
    }
}

/// Access key IDs in canonical uppercase form: `AKIA` or `ASIA` and 16 capitals or
/// digits. Lowercase is not matched, so no word of prose is taken for a key ID.
static KEY_ID_IN_TEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:AKIA|ASIA)[A-Z0-9]{16}").expect("key ID pattern is valid"));

/// Finds the access key IDs in free text, with their byte offsets, in order.
///
/// A key ID counts only as a whole word: no letter or digit may touch it, except the
/// letter of a JSON escape such as `\n` before it.
pub(super) fn key_ids_in_text(text: &str) -> impl Iterator<Item = (usize, AccessKeyId)> + '_ {
    let bytes = text.as_bytes();
    KEY_ID_IN_TEXT.find_iter(text).filter_map(move |found| {
        let (start, end) = (found.start(), found.end());
        let after_escape = start >= 2
            && bytes[start - 2] == b'\\'
            && matches!(bytes[start - 1], b'n' | b't' | b'r');
        let joined_before = start > 0 && bytes[start - 1].is_ascii_alphanumeric() && !after_escape;
        let joined_after = bytes.get(end).is_some_and(u8::is_ascii_alphanumeric);
        if joined_before || joined_after {
            return None;
        }
        let key = found.as_str().parse::<AccessKeyId>().ok()?;
        Some((start, key))
    })
}

/// Parses a value that must be an access key ID in canonical form: exactly 20
/// characters, `AKIA` or `ASIA`, capitals and digits. Used where no field name vouches
/// for the value, such as the last part of a resource ID.
pub(super) fn strict_key_id(value: &str) -> Option<AccessKeyId> {
    let canonical = value.len() == KEY_ID_LEN
        && (value.starts_with("AKIA") || value.starts_with("ASIA"))
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    canonical.then(|| value.parse().ok()).flatten()
}

pub(super) fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// Returns true for the ARN of an IAM or STS principal: a user, role, assumed role,
/// federated user or the root user, in any partition.
pub(super) fn is_principal_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    arn == "arn"
        && partition.starts_with("aws")
        && matches!(service, "iam" | "sts")
        && region.is_empty()
        && is_account_id(account)
        && (resource == "root"
            || ["user/", "role/", "assumed-role/", "federated-user/"]
                .iter()
                .any(|prefix| resource.starts_with(prefix)))
}

/// Returns true for a region code such as `us-east-1` or `us-gov-west-1`.
pub(super) fn is_region(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// Returns true for a GuardDuty finding type,
/// `ThreatPurpose:ResourceTypeAffected/ThreatFamilyName.DetectionMechanism!Artifact`,
/// such as `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS`.
pub(super) fn is_guardduty_type(value: &str) -> bool {
    let Some((purpose, rest)) = value.split_once(':') else {
        return false;
    };
    let Some((resource_type, family)) = rest.split_once('/') else {
        return false;
    };
    !purpose.is_empty()
        && purpose.bytes().all(|b| b.is_ascii_alphabetic())
        && !resource_type.is_empty()
        && resource_type.bytes().all(|b| b.is_ascii_alphanumeric())
        && !family.is_empty()
        && !family.contains(char::is_whitespace)
}

/// Returns true for a finding ID: GuardDuty's 32 lowercase hex characters, or the ARN
/// of a GuardDuty or Security Hub finding. EventBridge event IDs (UUIDs) do not count.
fn is_finding_id(value: &str) -> bool {
    let guardduty_id = value.len() == 32
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let finding_arn = value.starts_with("arn:aws") && value.contains("finding/");
    guardduty_id || finding_arn
}

/// Maps an EventBridge `detail-type` to the alert source it carries.
pub(super) fn source_from_detail_type(detail_type: &str) -> Option<AlertSource> {
    if detail_type == "GuardDuty Finding" {
        Some(AlertSource::GuardDuty)
    } else if detail_type.starts_with("Security Hub Findings") {
        Some(AlertSource::SecurityHub)
    } else if detail_type.starts_with("AWS Health") {
        Some(AlertSource::Health)
    } else {
        None
    }
}

/// Maps an EventBridge `source` to the alert source it carries.
fn source_from_event_source(source: &str) -> Option<AlertSource> {
    match source {
        "aws.guardduty" => Some(AlertSource::GuardDuty),
        "aws.securityhub" => Some(AlertSource::SecurityHub),
        "aws.health" => Some(AlertSource::Health),
        _ => None,
    }
}

/// Normalises a severity label (`HIGH`, `high`, `High`) to title case.
pub(super) fn severity_label(label: &str) -> Option<&'static str> {
    match label.trim().to_ascii_uppercase().as_str() {
        "INFORMATIONAL" => Some("Informational"),
        "LOW" => Some("Low"),
        "MEDIUM" => Some("Medium"),
        "HIGH" => Some("High"),
        "CRITICAL" => Some("Critical"),
        _ => None,
    }
}

/// Reads a `severity` field: a label, or GuardDuty's numeric score.
fn severity_from(value: FieldValue<'_>) -> Option<String> {
    match value {
        FieldValue::Number(score) => guardduty_severity(score),
        FieldValue::Text(text) => match severity_label(text) {
            Some(label) => Some(label.to_string()),
            None => text.trim().parse::<f64>().ok().and_then(guardduty_severity),
        },
    }
}

/// Labels a GuardDuty severity score and keeps the score: `High (8)`. The bands are
/// those of the GuardDuty User Guide, "Severity levels of GuardDuty findings": Low
/// 1.0–3.9, Medium 4.0–6.9, High 7.0–8.9, Critical 9.0–10.0.
pub(super) fn guardduty_severity(score: f64) -> Option<String> {
    if !(0.0..=10.0).contains(&score) {
        return None;
    }
    let label = if score >= 9.0 {
        "Critical"
    } else if score >= 7.0 {
        "High"
    } else if score >= 4.0 {
        "Medium"
    } else {
        "Low"
    };
    Some(format!("{label} ({score})"))
}

/// Labels a Security Hub `Severity.Normalized` score (0–100) the way Security Hub
/// does when a finding gives no label: 0 Informational, 1–39 Low, 40–69 Medium, 70–89
/// High, 90–100 Critical.
pub(super) fn normalized_severity(score: f64) -> Option<&'static str> {
    let label = match score {
        s if !(0.0..=100.0).contains(&s) => return None,
        s if s < 1.0 => "Informational",
        s if s < 40.0 => "Low",
        s if s < 70.0 => "Medium",
        s if s < 90.0 => "High",
        _ => "Critical",
    };
    Some(label)
}

/// Reads a time in any form the alert shapes use: RFC 3339 (`2020-05-26T22:02:24Z`),
/// RFC 2822 (`Sat, 05 Jun 2016 15:10:09 GMT`, AWS Health events) or seconds since the
/// epoch (`1587462325.096`, AWS Health CLI output). Numbers above 10^11 are read as
/// milliseconds.
pub(super) fn parse_time(value: FieldValue<'_>) -> Option<DateTime<Utc>> {
    let seconds = match value {
        FieldValue::Number(seconds) => seconds,
        FieldValue::Text(text) => {
            let text = text.trim();
            if let Ok(time) = DateTime::parse_from_rfc3339(text) {
                return Some(time.with_timezone(&Utc));
            }
            if let Some(time) = parse_rfc2822_any_weekday(text) {
                return Some(time);
            }
            text.parse::<f64>().ok()?
        }
    };
    epoch_time(seconds)
}

/// Parses an RFC 2822 time whose weekday may disagree with its date, as in the AWS
/// Health sample event `Sat, 05 Jun 2016` (a Sunday). The weekday is optional in RFC
/// 2822, so it is dropped when the whole text does not parse.
fn parse_rfc2822_any_weekday(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc2822(text) {
        return Some(time.with_timezone(&Utc));
    }
    let (weekday, rest) = text.split_once(", ")?;
    if weekday.len() != 3 || !weekday.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let time = DateTime::parse_from_rfc2822(rest).ok()?;
    Some(time.with_timezone(&Utc))
}

fn epoch_time(value: f64) -> Option<DateTime<Utc>> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let seconds = if value > 1e11 { value / 1000.0 } else { value };
    if seconds > 1e11 {
        return None;
    }
    let whole = seconds.trunc();
    let nanos = ((seconds - whole) * 1e9).round().min(999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos)
}

/// Strips the formatting a chat formatter puts around a value: backticks, asterisks,
/// underscores and quotes.
pub(super) fn strip_chat_formatting(value: &str) -> &str {
    value
        .trim()
        .trim_matches(|c| matches!(c, '`' | '*' | '_' | '"' | '\''))
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_in_text_need_word_bounds() {
        let found = |text: &str| -> Vec<String> {
            key_ids_in_text(text)
                .map(|(_, key)| key.as_str().to_string())
                .collect()
        };
        assert_eq!(
            found("key AKIAIOSFODNN7EXAMPLE leaked"),
            ["AKIAIOSFODNN7EXAMPLE"]
        );
        assert_eq!(
            found("`ASIASZ4SI7REEEXAMPLE`,AKIAI44QH8DHBEXAMPLE."),
            ["ASIASZ4SI7REEEXAMPLE", "AKIAI44QH8DHBEXAMPLE"]
        );
        assert_eq!(found("_AKIAIOSFODNN7EXAMPLE_"), ["AKIAIOSFODNN7EXAMPLE"]);
        assert_eq!(
            found(r#""line\nAKIAIOSFODNN7EXAMPLE""#),
            ["AKIAIOSFODNN7EXAMPLE"]
        );
        assert!(found("XAKIAIOSFODNN7EXAMPLE").is_empty());
        assert!(found("AKIAIOSFODNN7EXAMPLEX").is_empty());
        assert!(found("AKIAIOSFODNN7EXAMPL").is_empty());
        assert!(found("akiaiosfodnn7example").is_empty());
        assert!(found("AIDACKCEVSQ6C2EXAMPLE AROA1234567890EXAMPLE").is_empty());
    }

    #[test]
    fn strict_key_id_rejects_lowercase_and_placeholders() {
        assert!(strict_key_id("ASIAZL6XWCR2ISQCR2PB").is_some());
        assert!(strict_key_id("asiazl6xwcr2isqcr2pb").is_none());
        assert!(strict_key_id("null").is_none());
        assert!(strict_key_id("GeneratedFindingAccessKeyId").is_none());
    }

    #[test]
    fn principal_arn_shapes() {
        assert!(is_principal_arn("arn:aws:iam::123456789012:user/Paulo"));
        assert!(is_principal_arn("arn:aws:iam::123456789012:root"));
        assert!(is_principal_arn(
            "arn:aws-us-gov:sts::123456789012:assumed-role/r/s"
        ));
        assert!(!is_principal_arn(
            "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/f"
        ));
        assert!(!is_principal_arn(
            "arn:aws:iam::aws:policy/AdministratorAccess"
        ));
        assert!(!is_principal_arn("arn:aws:iam::123456789012:mfa/Bob"));
    }

    #[test]
    fn region_and_account_shapes() {
        for region in [
            "us-east-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "eu-central-1",
        ] {
            assert!(is_region(region), "{region}");
        }
        for not_region in [
            "global",
            "us-east",
            "apiso-westcentral-3r",
            "US-EAST-1",
            "-east-1",
        ] {
            assert!(!is_region(not_region), "{not_region}");
        }
        assert!(is_account_id("111122223333"));
        assert!(!is_account_id("123456789"));
        assert!(!is_account_id("***"));
    }

    #[test]
    fn guardduty_type_shapes() {
        assert!(is_guardduty_type(
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
        ));
        assert!(is_guardduty_type("Backdoor:EC2/C&CActivity.B!DNS"));
        assert!(is_guardduty_type("Recon:IAMUser/UserPermissions"));
        assert!(!is_guardduty_type("Recon:EC2 PortProbeUnprotectedPort"));
        assert!(!is_guardduty_type("https://example.com/x"));
        assert!(!is_guardduty_type(
            "Software and Configuration Checks/Industry"
        ));
    }

    #[test]
    fn severities_are_labelled() {
        assert_eq!(guardduty_severity(8.0).as_deref(), Some("High (8)"));
        assert_eq!(guardduty_severity(5.0).as_deref(), Some("Medium (5)"));
        assert_eq!(guardduty_severity(2.5).as_deref(), Some("Low (2.5)"));
        assert_eq!(guardduty_severity(9.0).as_deref(), Some("Critical (9)"));
        assert_eq!(guardduty_severity(11.0), None);
        assert_eq!(normalized_severity(50.0), Some("Medium"));
        assert_eq!(normalized_severity(0.0), Some("Informational"));
        assert_eq!(normalized_severity(90.0), Some("Critical"));
        assert_eq!(severity_label("MEDIUM"), Some("Medium"));
    }

    #[test]
    fn times_parse_in_each_form() {
        let expected = DateTime::parse_from_rfc3339("2016-06-05T15:10:09Z").unwrap();
        let forms = [
            "2016-06-05T15:10:09Z",
            "2016-06-05T15:10:09+00:00",
            "Sun, 05 Jun 2016 15:10:09 GMT",
            "05 Jun 2016 15:10:09 GMT",
            // The AWS Health sample event names the wrong weekday.
            "Sat, 05 Jun 2016 15:10:09 GMT",
            "1465139409",
        ];
        for text in forms {
            assert_eq!(
                parse_time(FieldValue::Text(text)),
                Some(expected.with_timezone(&Utc)),
                "{text}"
            );
        }
        assert_eq!(
            parse_time(FieldValue::Number(1465139409.0)),
            Some(expected.with_timezone(&Utc))
        );
        assert_eq!(
            parse_time(FieldValue::Number(1465139409000.0)),
            Some(expected.with_timezone(&Utc))
        );
        assert_eq!(parse_time(FieldValue::Number(f64::NAN)), None);
        assert_eq!(parse_time(FieldValue::Number(-1.0)), None);
        assert_eq!(parse_time(FieldValue::Number(1e300)), None);
        assert_eq!(parse_time(FieldValue::Text("yesterday")), None);
    }
}
