//! Field deserializers that take what third-party exports actually contain instead of
//! rejecting the record: a number where CloudTrail writes a string, `"true"` where it
//! writes a boolean, a string where it writes an object.
//!
//! Each one accepts any JSON value. A value of the wrong shape becomes text or `None`.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Reads a string. Numbers and booleans become their JSON text, objects and arrays their
/// compact JSON, and `null` becomes `None`.
pub(super) fn string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_any(StringVisitor)
}

struct StringVisitor;

impl<'de> Visitor<'de> for StringVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Some(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(Some(value))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(Some(value.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Some(value.to_string()))
    }
}

/// Reads a boolean. The strings `"true"` and `"false"` in any case count, and any other value
/// becomes `None`.
pub(super) fn boolean<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    let text = string(deserializer)?;
    Ok(match text.as_deref() {
        Some(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Some(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    })
}

/// Reads an object into `T`. Any other value (a string, an array, `null`) becomes `None`.
pub(super) fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_any(ObjectVisitor(PhantomData))
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Parses an `eventTime` value. CloudTrail writes RFC 3339 in UTC (`2024-07-30T21:31:21Z`).
/// Exports also carry fractional seconds, an offset, a space instead of the `T`, no zone
/// (read as UTC), or a Unix time in seconds or milliseconds.
pub(super) fn parse_event_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f%#z",
    ] {
        if let Ok(time) = DateTime::parse_from_str(text, format) {
            return Some(time.with_timezone(&Utc));
        }
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.and_utc());
        }
    }
    parse_unix_time(text)
}

/// Reads a whole number of Unix seconds, or milliseconds when it has 13 or more digits.
fn parse_unix_time(text: &str) -> Option<DateTime<Utc>> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let number: i64 = text.parse().ok()?;
    if text.len() >= 13 {
        return Utc.timestamp_millis_opt(number).single();
    }
    Utc.timestamp_opt(number, 0).single()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Inner {
        a: Option<String>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Probe {
        #[serde(default, deserialize_with = "string")]
        text: Option<String>,
        #[serde(default, deserialize_with = "boolean")]
        flag: Option<bool>,
        #[serde(default, deserialize_with = "object")]
        inner: Option<Inner>,
    }

    fn probe(json: &str) -> Probe {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn string_takes_any_value() {
        assert_eq!(probe(r#"{"text":"x"}"#).text.as_deref(), Some("x"));
        assert_eq!(probe(r#"{"text":1.05}"#).text.as_deref(), Some("1.05"));
        assert_eq!(probe(r#"{"text":true}"#).text.as_deref(), Some("true"));
        assert_eq!(
            probe(r#"{"text":{"b":[1]}}"#).text.as_deref(),
            Some(r#"{"b":[1]}"#)
        );
        assert_eq!(probe(r#"{"text":null}"#).text, None);
        assert_eq!(probe("{}").text, None);
    }

    #[test]
    fn boolean_takes_strings() {
        assert_eq!(probe(r#"{"flag":true}"#).flag, Some(true));
        assert_eq!(probe(r#"{"flag":"FALSE"}"#).flag, Some(false));
        assert_eq!(probe(r#"{"flag":"maybe"}"#).flag, None);
        assert_eq!(probe(r#"{"flag":[true]}"#).flag, None);
    }

    #[test]
    fn object_ignores_other_values() {
        assert_eq!(
            probe(r#"{"inner":{"a":"x"}}"#).inner,
            Some(Inner {
                a: Some("x".into())
            })
        );
        assert_eq!(probe(r#"{"inner":"x"}"#).inner, None);
        assert_eq!(
            probe(r#"{"inner":[{"a":"x"}],"text":"after"}"#)
                .text
                .as_deref(),
            Some("after")
        );
        assert_eq!(probe(r#"{"inner":null}"#).inner, None);
    }

    #[test]
    fn event_time_formats() {
        let expected = Utc.with_ymd_and_hms(2024, 7, 30, 21, 31, 21).unwrap();
        for text in [
            "2024-07-30T21:31:21Z",
            "2024-07-30T23:31:21+02:00",
            "2024-07-30T21:31:21",
            "2024-07-30 21:31:21",
            "2024-07-30 21:31:21+0000",
            "1722375081",
            "1722375081000",
        ] {
            assert_eq!(parse_event_time(text), Some(expected), "{text}");
        }
        assert_eq!(
            parse_event_time("2024-07-30T21:31:21.250Z"),
            Some(expected + chrono::Duration::milliseconds(250))
        );
    }

    #[test]
    fn event_time_rejects_text() {
        for text in ["", "yesterday", "2024-13-01T00:00:00Z", "2024-07-30", "-5"] {
            assert_eq!(parse_event_time(text), None, "{text}");
        }
    }
}
