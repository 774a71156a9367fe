//! Classification of one JSON value in an input, and decoding of the CloudTrail event
//! inside it. A value is a plain event, an EventBridge envelope, a `LookupEvents` entry, a
//! CloudWatch Logs log event, a Logs Insights result row, or a container of such records.
//!
//! Classification reads only keys, so it is cheap enough to run on every record. Cutting
//! the input into values is the scanner's job, and walking containers is the reader's.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::event::{Event, EventError, RawEvent};
use super::lenient;
use super::read::Shape;
use super::scanner::{self, Member};

/// The kind of a JSON value, decided by the first key that only one kind has.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A CloudTrail event.
    Event,
    /// An EventBridge event whose `detail` is a CloudTrail event.
    Envelope,
    /// A `LookupEvents` entry whose `CloudTrailEvent` is the event as a JSON string.
    LookupEvent,
    /// A CloudWatch Logs log event whose `message` is the event as a JSON string.
    LogEvent,
    /// A Logs Insights result row: an array of `{"field","value"}` pairs.
    InsightsRow,
    /// An array that starts with a record (or is empty).
    Array,
    /// An object whose array at `array_start` contains the records.
    Container {
        array_start: usize,
        shape: Shape,
        /// A CloudWatch Logs subscription `CONTROL_MESSAGE`, whose log events are health
        /// checks rather than events.
        control: bool,
    },
    /// A Lambda subscription payload whose `awslogs` object starts at `value_start`.
    Awslogs { value_start: usize },
    /// A CloudTrail digest file, which lists log files and contains no events.
    Digest,
    /// Well-formed JSON that is not a CloudTrail record.
    NotCloudTrail,
    /// Broken JSON before any key that decides the kind.
    Broken,
}

/// Keys that only a CloudTrail event has at its top level. `resources` is left out because
/// EventBridge envelopes have it too.
const EVENT_KEYS: &[&[u8]] = &[
    b"eventVersion",
    b"eventTime",
    b"eventSource",
    b"eventName",
    b"userIdentity",
    b"eventID",
    b"eventType",
    b"eventCategory",
    b"awsRegion",
    b"sourceIPAddress",
    b"recipientAccountId",
    b"requestParameters",
    b"responseElements",
    b"additionalEventData",
    b"errorCode",
    b"errorMessage",
    b"requestID",
    b"readOnly",
    b"managementEvent",
    b"sharedEventID",
    b"insightDetails",
    b"serviceEventDetails",
];

/// The maximum number of dot-separated parts in a Logs Insights field name. CloudTrail
/// fields nest a few levels (`userIdentity.sessionContext.sessionIssuer.userName`), and
/// deeper names are dropped so that a rebuilt event stays shallow.
const MAX_FIELD_DEPTH: usize = 16;

/// Keys of a CloudTrail digest file.
const DIGEST_KEYS: &[&[u8]] = &[
    b"digestStartTime",
    b"digestEndTime",
    b"digestS3Bucket",
    b"digestS3Object",
    b"digestSignatureAlgorithm",
    b"digestPublicKeyFingerprint",
];

/// Returns the shape of an object whose records are in the array under `key`.
fn container_shape(key: &[u8]) -> Option<Shape> {
    match key {
        b"Records" => Some(Shape::S3LogFile),
        b"logEvents" => Some(Shape::CloudWatchLogsSubscription),
        b"events" => Some(Shape::CloudWatchLogsFilterOutput),
        b"results" => Some(Shape::LogsInsightsResults),
        b"Events" => Some(Shape::LookupEvents),
        _ => None,
    }
}

/// Classifies the value that starts at `start`, looking no further than `limit`.
pub(super) fn classify(bytes: &[u8], start: usize, limit: usize) -> Kind {
    classify_at(bytes, start, limit, Peek::Contents)
}

/// Whether classification looks inside a container's array to check its first record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peek {
    Contents,
    /// Already inside such a check: a container key counts as it is, which bounds the
    /// recursion on inputs that nest containers deeply.
    KeysOnly,
}

fn classify_at(bytes: &[u8], start: usize, limit: usize, peek: Peek) -> Kind {
    match bytes.get(start) {
        Some(b'{') => classify_object(bytes, start, limit, peek),
        Some(b'[') => classify_array(bytes, start, limit, peek),
        _ => Kind::NotCloudTrail,
    }
}

fn classify_object(bytes: &[u8], start: usize, limit: usize, peek: Peek) -> Kind {
    let mut pos = start + 1;
    let mut control = false;

    loop {
        let (key, value_start) = match scanner::next_member(bytes, pos, limit) {
            Member::Entry { key, value_start } => (key, value_start),
            Member::End(_) => return Kind::NotCloudTrail,
            Member::Broken => return Kind::Broken,
        };
        let value = bytes[value_start];

        if let Some(shape) = container_shape(key)
            && value == b'['
            && (peek == Peek::KeysOnly || array_holds_records(bytes, value_start, limit))
        {
            return Kind::Container {
                array_start: value_start,
                shape,
                control,
            };
        }
        match key {
            b"awslogs" if value == b'{' => return Kind::Awslogs { value_start },
            b"messageType" => {
                control = string_value(bytes, value_start, limit) == Some(b"CONTROL_MESSAGE")
            }
            b"detail-type" => return detail_type_kind(bytes, value_start, limit),
            b"detail" => return Kind::Envelope,
            b"CloudTrailEvent" => return Kind::LookupEvent,
            b"message" => return Kind::LogEvent,
            _ if DIGEST_KEYS.contains(&key) => return Kind::Digest,
            _ if EVENT_KEYS.contains(&key) => return Kind::Event,
            _ => {}
        }

        let Some(value_end) = scanner::value_end(bytes, value_start, limit) else {
            return Kind::Broken;
        };
        pos = value_end;
    }
}

fn detail_type_kind(bytes: &[u8], value_start: usize, limit: usize) -> Kind {
    match string_value(bytes, value_start, limit) {
        Some(detail_type) if detail_type.ends_with(b"via CloudTrail") => Kind::Envelope,
        _ => Kind::NotCloudTrail,
    }
}

/// Classifies an array: a Logs Insights row is an array of objects with a `field` key, and
/// an array that starts with a record is a plain array of records.
fn classify_array(bytes: &[u8], start: usize, limit: usize, peek: Peek) -> Kind {
    let first = scanner::skip_whitespace(bytes, start + 1, limit);
    match scanner::first_key(bytes, first, limit) {
        Some(b"field" | b"value") => Kind::InsightsRow,
        _ if peek == Peek::Contents && array_holds_records(bytes, start, limit) => Kind::Array,
        _ => Kind::NotCloudTrail,
    }
}

/// Returns `true` when the array at `array_start` is empty or starts with a record that
/// can carry a CloudTrail event. This separates CloudWatch Logs output (`"events"` of log
/// events) from other APIs' `"events"`, such as AWS Health's.
fn array_holds_records(bytes: &[u8], array_start: usize, limit: usize) -> bool {
    let first = scanner::skip_whitespace(bytes, array_start + 1, limit);
    match bytes.get(first) {
        Some(b']') => true,
        Some(b'{' | b'[') => {
            let end = scanner::container_end(bytes, first, limit).unwrap_or(limit);
            !matches!(
                classify_at(bytes, first, end, Peek::KeysOnly),
                Kind::NotCloudTrail | Kind::Digest
            )
        }
        _ => false,
    }
}

/// Returns the raw text of the string value at `start`, without its quotes.
fn string_value(bytes: &[u8], start: usize, limit: usize) -> Option<&[u8]> {
    if bytes.get(start) != Some(&b'"') {
        return None;
    }
    let end = scanner::string_end(bytes, start, limit)?;
    Some(&bytes[start + 1..end - 1])
}

/// Returns the shape a record of this kind gives its input when no container decided it.
pub(super) fn kind_shape(kind: &Kind, plain: Shape) -> Option<Shape> {
    match kind {
        Kind::Event | Kind::Array => Some(plain),
        Kind::Envelope => Some(Shape::EventBridge),
        Kind::LookupEvent => Some(Shape::LookupEvents),
        Kind::LogEvent => Some(Shape::CloudWatchLogsFilterOutput),
        Kind::InsightsRow => Some(Shape::LogsInsightsResults),
        Kind::Container { shape, .. } => Some(*shape),
        Kind::Awslogs { .. } => Some(Shape::CloudWatchLogsSubscription),
        Kind::Digest => Some(Shape::Digest),
        Kind::NotCloudTrail | Kind::Broken => None,
    }
}

/// The reasons a record yields no event.
#[derive(Debug, thiserror::Error)]
pub(super) enum RecordError {
    #[error("invalid JSON: {0}")]
    InvalidJson(serde_json::Error),
    #[error("unterminated JSON value: the input ends inside it")]
    Unterminated,
    #[error("not a JSON object")]
    NotObject,
    #[error("not a CloudTrail event")]
    NotCloudTrail,
    #[error("EventBridge event of type {0:?} is not a CloudTrail event")]
    OtherDetailType(String),
    #[error("{0}")]
    Event(#[from] EventError),
    #[error("{field} is not a JSON event: {source}")]
    EmbeddedNotJson {
        field: &'static str,
        source: serde_json::Error,
    },
    #[error("no {0} field")]
    MissingField(&'static str),
    #[error("awslogs data is not valid base64: {0}")]
    Base64(data_encoding::DecodeError),
    #[error("awslogs data is not valid gzip: {0}")]
    Gzip(std::io::Error),
    #[error("awslogs payload nested in another awslogs payload")]
    NestedAwslogs,
    #[error("arrays of records nested too deeply")]
    TooDeep,
}

impl RecordError {
    /// Returns `true` when the record's own JSON is broken, so the next record may start
    /// inside it.
    pub(super) fn is_broken(&self) -> bool {
        match self {
            Self::Unterminated => true,
            Self::InvalidJson(error) => error.is_syntax() || error.is_eof(),
            _ => false,
        }
    }
}

/// Decodes the event in a record of the given kind, whose bytes are `raw`.
pub(super) fn decode(kind: &Kind, raw: &[u8]) -> Result<Event, RecordError> {
    match kind {
        Kind::Envelope => decode_envelope(raw),
        Kind::LookupEvent => decode_embedded(raw, EmbeddedField::CloudTrailEvent),
        Kind::LogEvent => decode_embedded(raw, EmbeddedField::Message),
        Kind::InsightsRow => decode_insights_row(raw),
        Kind::NotCloudTrail => Err(not_cloudtrail(raw)),
        _ => decode_event(raw),
    }
}

/// Explains why a well-formed record is not CloudTrail, naming the EventBridge detail type
/// when it has one.
fn not_cloudtrail(raw: &[u8]) -> RecordError {
    match serde_json::from_slice::<Envelope>(raw) {
        Ok(Envelope {
            detail_type: Some(detail_type),
            ..
        }) => RecordError::OtherDetailType(detail_type),
        _ => RecordError::NotCloudTrail,
    }
}

/// Decodes a plain CloudTrail event.
pub(super) fn decode_event(raw: &[u8]) -> Result<Event, RecordError> {
    let first = scanner::skip_whitespace(raw, 0, raw.len());
    if raw.get(first) != Some(&b'{') {
        return Err(RecordError::NotObject);
    }
    let raw_event: RawEvent = serde_json::from_slice(raw).map_err(RecordError::InvalidJson)?;
    Ok(Event::try_from(raw_event)?)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "detail-type", default, deserialize_with = "lenient::string")]
    detail_type: Option<String>,
    #[serde(borrow, default)]
    detail: Option<&'a RawValue>,
}

fn decode_envelope(raw: &[u8]) -> Result<Event, RecordError> {
    let envelope: Envelope = serde_json::from_slice(raw).map_err(RecordError::InvalidJson)?;
    if let Some(detail_type) = envelope.detail_type
        && !detail_type.ends_with("via CloudTrail")
    {
        return Err(RecordError::OtherDetailType(detail_type));
    }
    let detail = envelope.detail.ok_or(RecordError::MissingField("detail"))?;
    decode_event(detail.get().as_bytes())
}

/// The string field that carries an event as JSON text.
#[derive(Clone, Copy)]
enum EmbeddedField {
    CloudTrailEvent,
    Message,
}

#[derive(Deserialize)]
struct Embedded {
    #[serde(
        rename = "CloudTrailEvent",
        default,
        deserialize_with = "lenient::string"
    )]
    cloudtrail_event: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    message: Option<String>,
}

fn decode_embedded(raw: &[u8], field: EmbeddedField) -> Result<Event, RecordError> {
    let embedded: Embedded = serde_json::from_slice(raw).map_err(RecordError::InvalidJson)?;
    let (name, text) = match field {
        EmbeddedField::CloudTrailEvent => ("CloudTrailEvent", embedded.cloudtrail_event),
        EmbeddedField::Message => ("message", embedded.message),
    };
    let text = text.ok_or(RecordError::MissingField(name))?;
    decode_text(name, &text)
}

/// Decodes an event carried as JSON text in the field `name`.
fn decode_text(name: &'static str, text: &str) -> Result<Event, RecordError> {
    match decode_event(text.trim().as_bytes()) {
        Err(RecordError::InvalidJson(source)) => Err(RecordError::EmbeddedNotJson {
            field: name,
            source,
        }),
        Err(RecordError::NotObject) => Err(RecordError::EmbeddedNotJson {
            field: name,
            source: serde::de::Error::custom("not a JSON object"),
        }),
        other => other,
    }
}

#[derive(Deserialize)]
struct InsightsField {
    #[serde(default, deserialize_with = "lenient::string")]
    field: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    value: Option<String>,
}

/// Decodes a Logs Insights row: its `@message` when the query returned it, otherwise an
/// event rebuilt from the dotted field names (`userIdentity.accessKeyId`) it did return.
fn decode_insights_row(raw: &[u8]) -> Result<Event, RecordError> {
    let fields: Vec<InsightsField> =
        serde_json::from_slice(raw).map_err(RecordError::InvalidJson)?;
    let message = fields
        .iter()
        .find(|pair| pair.field.as_deref() == Some("@message"))
        .and_then(|pair| pair.value.as_deref());
    if let Some(message) = message {
        return decode_text("@message", message);
    }

    let mut rebuilt = Map::new();
    for pair in &fields {
        let (Some(field), Some(value)) = (&pair.field, &pair.value) else {
            continue;
        };
        if field.starts_with('@') {
            continue;
        }
        insert_dotted(&mut rebuilt, field, Value::String(value.clone()));
    }
    let raw_event: RawEvent =
        serde_json::from_value(Value::Object(rebuilt)).map_err(RecordError::InvalidJson)?;
    Ok(Event::try_from(raw_event)?)
}

/// Inserts `value` at a dotted path, creating the objects on the way. A path that runs
/// into a non-object value, or that is deeper than any CloudTrail field, is dropped.
fn insert_dotted(map: &mut Map<String, Value>, path: &str, value: Value) {
    if path.split('.').count() > MAX_FIELD_DEPTH {
        return;
    }
    let mut map = map;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            map.insert(part.to_owned(), value);
            return;
        }
        let child = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(child) = child else {
            return;
        };
        map = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(text: &str) -> Kind {
        classify(text.as_bytes(), 0, text.len())
    }

    #[test]
    fn classify_by_deciding_key() {
        let cases = [
            (r#"{"eventVersion":"1.08"}"#, Kind::Event),
            (
                r#"{"additionalEventData":{"x":1},"awsRegion":"x"}"#,
                Kind::Event,
            ),
            (
                r#"{"version":"0","detail-type":"AWS API Call via CloudTrail","detail":{}}"#,
                Kind::Envelope,
            ),
            (
                r#"{"detail-type":"GuardDuty Finding","detail":{}}"#,
                Kind::NotCloudTrail,
            ),
            (
                r#"{"EventId":"x","EventName":"y","CloudTrailEvent":"{}"}"#,
                Kind::LookupEvent,
            ),
            (r#"{"id":"1","timestamp":1,"message":"{}"}"#, Kind::LogEvent),
            (r#"[{"field":"@message","value":"{}"}]"#, Kind::InsightsRow),
            (r#"[{"eventVersion":"1"}]"#, Kind::Array),
            (r#"[["a","b"]]"#, Kind::NotCloudTrail),
            (
                r#"{"awsAccountId":"1","digestStartTime":"x"}"#,
                Kind::Digest,
            ),
            (r#"{"accountId":"1","severity":8}"#, Kind::NotCloudTrail),
            (r#"{"accountId" "1"}"#, Kind::Broken),
            ("42", Kind::NotCloudTrail),
        ];
        for (text, expected) in cases {
            assert_eq!(kind_of(text), expected, "{text}");
        }
    }

    #[test]
    fn classify_containers() {
        let text = r#"{"Records":[{"eventVersion":"1"}]}"#;
        assert_eq!(
            kind_of(text),
            Kind::Container {
                array_start: 11,
                shape: Shape::S3LogFile,
                control: false
            }
        );
        let control = r#"{"messageType":"CONTROL_MESSAGE","logEvents":[{"id":"1","message":"CWL CONTROL MESSAGE"}]}"#;
        assert!(matches!(
            kind_of(control),
            Kind::Container { control: true, .. }
        ));
        let health = r#"{"events":[{"arn":"arn:aws:health:x","service":"EC2"}]}"#;
        assert_eq!(kind_of(health), Kind::NotCloudTrail);
        let empty = r#"{"events":[]}"#;
        assert!(matches!(
            kind_of(empty),
            Kind::Container {
                shape: Shape::CloudWatchLogsFilterOutput,
                ..
            }
        ));
        assert_eq!(
            kind_of(r#"{"awslogs":{"data":"x"}}"#),
            Kind::Awslogs { value_start: 11 }
        );
    }

    #[test]
    fn decode_wrappers() {
        let event = r#"{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#;
        let quoted = serde_json::to_string(event).unwrap();

        let envelope =
            format!(r#"{{"detail-type":"AWS API Call via CloudTrail","detail":{event}}}"#);
        let lookup = format!(r#"{{"EventId":"1","CloudTrailEvent":{quoted}}}"#);
        let log_event = format!(r#"{{"id":"1","timestamp":1,"message":{quoted}}}"#);
        let row = format!(
            r#"[{{"field":"@timestamp","value":"x"}},{{"field":"@message","value":{quoted}}}]"#
        );
        for (kind, raw) in [
            (Kind::Envelope, envelope),
            (Kind::LookupEvent, lookup),
            (Kind::LogEvent, log_event),
            (Kind::InsightsRow, row),
        ] {
            let decoded =
                decode(&kind, raw.as_bytes()).unwrap_or_else(|error| panic!("{kind:?}: {error}"));
            assert_eq!(decoded.call_name(), "s3:GetObject", "{kind:?}");
        }
    }

    #[test]
    fn decode_insights_row_from_fields() {
        let row = r#"[{"field":"eventTime","value":"2024-01-02T03:04:05Z"},
            {"field":"eventName","value":"ListUsers"},{"field":"eventSource","value":"iam.amazonaws.com"},
            {"field":"userIdentity.accessKeyId","value":"AKIAEXAMPLE"},{"field":"@ptr","value":"x"}]"#;
        let event = decode(&Kind::InsightsRow, row.as_bytes()).unwrap();
        assert_eq!(event.call_name(), "iam:ListUsers");
        assert_eq!(event.access_key_id(), Some("AKIAEXAMPLE"));
    }

    #[test]
    fn decode_errors() {
        let not_json = r#"{"message":"CWL CONTROL MESSAGE: Checking health"}"#;
        let error = decode(&Kind::LogEvent, not_json.as_bytes()).unwrap_err();
        assert!(
            error.to_string().starts_with("message is not a JSON event"),
            "{error}"
        );
        assert!(!error.is_broken());

        let broken = decode_event(br#"{"eventTime":"2024-01-02T03:04:05Z","#).unwrap_err();
        assert!(broken.is_broken(), "{broken}");
        assert!(matches!(
            decode_event(b"[1]").unwrap_err(),
            RecordError::NotObject
        ));

        let guardduty = r#"{"detail-type":"GuardDuty Finding","detail":{}}"#;
        let error = decode(&Kind::Envelope, guardduty.as_bytes()).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"EventBridge event of type "GuardDuty Finding" is not a CloudTrail event"#
        );

        let no_field = decode(&Kind::LookupEvent, br#"{"EventId":"1"}"#).unwrap_err();
        assert_eq!(no_field.to_string(), "no CloudTrailEvent field");
    }
}
