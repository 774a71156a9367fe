//! Field access for AWS JSON outputs. The same record arrives with `PascalCase` names from
//! the AWS CLI (`AccessKeyDetails`) and `camelCase` names inside EventBridge events
//! (`accessKeyDetails`). Timestamps come as RFC 3339, RFC 2822 or epoch seconds. So every
//! reader here goes through these helpers rather than indexing a `Value` directly.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

/// Returns the field `name` of an object, matching the name without regard to ASCII case
/// when no field has that exact name.
pub(crate) fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    if let Some(found) = object.get(name) {
        return Some(found);
    }
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, found)| found)
}

/// Follows a chain of fields, such as `["Service", "Action", "AwsApiCallAction"]`.
pub(crate) fn path<'a>(value: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .try_fold(value, |current, name| field(current, name))
}

/// Returns a field as text: strings as they are, numbers and booleans written out. Empty
/// strings and the literal `null` that some exports write count as absent.
pub(crate) fn text(value: &Value, name: &str) -> Option<String> {
    value_text(field(value, name)?)
}

/// Returns the text at a chain of fields, as `text` does for one field.
pub(crate) fn text_at(value: &Value, names: &[&str]) -> Option<String> {
    value_text(path(value, names)?)
}

/// Returns a scalar value as text, as `text` does for a field.
pub(crate) fn value_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text.trim().to_string(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        _ => return None,
    };
    if text.is_empty() || text == "null" {
        return None;
    }
    Some(text)
}

/// Iterates over a field that contains a list, or a single object where a list was expected
/// (some published samples write one policy attachment as a bare object).
pub(crate) fn items(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    let slice: &[Value] = match value {
        Some(Value::Array(items)) => items,
        Some(single @ Value::Object(_)) => std::slice::from_ref(single),
        _ => &[],
    };
    slice.iter()
}

/// Returns true when the object has a field `name` (in any case) that contains a list.
pub(crate) fn has_list(value: &Value, name: &str) -> bool {
    matches!(field(value, name), Some(Value::Array(_)))
}

/// Reads tags written as `[{"Key": …, "Value": …}]` (IAM, Secrets Manager, ASFF lists) or
/// as a `{"key": "value"}` object (ASFF resources, Health entities).
pub(crate) fn tags(value: Option<&Value>) -> Vec<(String, String)> {
    match value {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|tag| {
                let key = text(tag, "Key")?;
                let value = text(tag, "Value").unwrap_or_default();
                Some((key, value))
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| (key.clone(), value_text(value).unwrap_or_default()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Returns the time in a field, in any format `time` accepts.
pub(crate) fn time_field(value: &Value, name: &str) -> Option<DateTime<Utc>> {
    time(field(value, name)?)
}

/// Reads a timestamp: RFC 3339 (`2024-05-01T10:00:00Z`), ISO 8601 with a `+0000` offset
/// (Lambda), RFC 2822 (`Sat, 05 Jun 2016 15:10:09 GMT`, AWS Health EventBridge events),
/// epoch seconds or milliseconds (AWS Health and Access Analyzer CLI output), or a
/// botocore placebo `{"__class__": "datetime", …}` object.
pub(crate) fn time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => time_text(text),
        Value::Number(number) => epoch(number.as_f64()?),
        Value::Object(_) if text(value, "__class__").as_deref() == Some("datetime") => {
            placebo_time(value)
        }
        _ => None,
    }
}

fn time_text(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    if let Ok(time) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(time.with_timezone(&Utc));
    }
    // The weekday is optional in RFC 2822 and chrono rejects one that does not match the
    // date, as in AWS Health's published sample event, so it is dropped before parsing.
    let without_weekday = text.split_once(", ").map_or(text, |(_, rest)| rest);
    if let Ok(time) = DateTime::parse_from_rfc2822(without_weekday) {
        return Some(time.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.and_utc());
        }
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return epoch(seconds);
    }
    None
}

/// Converts epoch seconds, or milliseconds when the number is too large to be seconds
/// (anything past the year 5138), to a time.
fn epoch(value: f64) -> Option<DateTime<Utc>> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let millis = if value > 1e11 { value } else { value * 1000.0 };
    Utc.timestamp_millis_opt(millis.round() as i64).single()
}

fn placebo_time(value: &Value) -> Option<DateTime<Utc>> {
    let number = |name: &str| field(value, name).and_then(Value::as_u64);
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number("year")?).ok()?,
        u32::try_from(number("month")?).ok()?,
        u32::try_from(number("day")?).ok()?,
    )?;
    let time = date.and_hms_micro_opt(
        u32::try_from(number("hour").unwrap_or(0)).ok()?,
        u32::try_from(number("minute").unwrap_or(0)).ok()?,
        u32::try_from(number("second").unwrap_or(0)).ok()?,
        u32::try_from(number("microsecond").unwrap_or(0)).ok()?,
    )?;
    Some(time.and_utc())
}

/// Returns the account ID in an ARN (`arn:aws:iam::111122223333:user/alice`).
pub(crate) fn arn_account(arn: &str) -> Option<String> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
        .then(|| account.to_string())
}

/// Returns the last segment of an ARN's resource, such as `alice` for
/// `arn:aws:iam::111122223333:user/division/alice`.
pub(crate) fn arn_resource_name(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let name = resource.rsplit('/').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// Returns true when `needle` occurs in `haystack` as a whole word, ignoring ASCII case:
/// `alice` matches `deploy key of Alice` and `alice-ci`, but not `malice`.
pub(crate) fn mentions_word(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let haystack = haystack.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    let is_word = |c: char| c.is_ascii_alphanumeric();
    haystack.match_indices(&needle).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + needle.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_ignores_case_when_no_exact_match() {
        let finding = json!({"accessKeyDetails": {"AccessKeyId": "AKIAEXAMPLE"}});
        assert_eq!(
            text_at(&finding, &["AccessKeyDetails", "accessKeyId"]).as_deref(),
            Some("AKIAEXAMPLE")
        );
    }

    #[test]
    fn items_accepts_single_object() {
        let group = json!({"AttachedManagedPolicies": {"PolicyName": "A"}});
        assert_eq!(items(field(&group, "AttachedManagedPolicies")).count(), 1);
        let none = json!({});
        assert_eq!(items(field(&none, "AttachedManagedPolicies")).count(), 0);
    }

    #[test]
    fn time_reads_every_aws_format() {
        let expected = "2016-06-05T15:10:09+00:00";
        for input in [
            json!("2016-06-05T15:10:09Z"),
            json!("2016-06-05T15:10:09.000+0000"),
            json!("Sun, 05 Jun 2016 15:10:09 GMT"),
            json!("Sat, 05 Jun 2016 15:10:09 GMT"),
            json!(1465139409.0),
            json!(1465139409000u64),
            json!({"__class__": "datetime", "year": 2016, "month": 6, "day": 5,
                   "hour": 15, "minute": 10, "second": 9, "microsecond": 0}),
        ] {
            let parsed = time(&input).unwrap_or_else(|| panic!("no time read from {input}"));
            assert_eq!(parsed.to_rfc3339(), expected, "input {input}");
        }
        assert_eq!(time(&json!("N/A")), None);
    }

    #[test]
    fn arn_parts() {
        let arn = "arn:aws:iam::111122223333:user/division/alice";
        assert_eq!(arn_account(arn).as_deref(), Some("111122223333"));
        assert_eq!(arn_resource_name(arn).as_deref(), Some("alice"));
        assert_eq!(arn_account("arn:aws:iam::aws:policy/ReadOnlyAccess"), None);
    }

    #[test]
    fn mentions_word_needs_word_boundaries() {
        assert!(mentions_word("deploy key of Alice", "alice"));
        assert!(mentions_word("alice-ci", "alice"));
        assert!(!mentions_word("malice", "alice"));
        assert!(!mentions_word("alice2", "alice"));
        assert!(!mentions_word("anything", ""));
    }
}
