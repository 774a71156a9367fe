//! Readers that take CloudTrail events out of every shape they arrive in, and the fast
//! needle scan over large inputs.
//!
//! Input is bytes, so tests feed literals, and `read_path` only loads a file first. A broken
//! record is counted in [`ReadOutcome::skipped`] with its reason and never stops the read.
//! The reader does not fetch anything from AWS and does not filter by time or key, which
//! callers do on the events.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use memchr::memmem::Finder;
use serde::Serialize;

use super::event::Event;
use super::record::{self, Kind, RecordError};
use super::scanner::{self, RecordStarts};

mod lines;
mod needles;

use lines::{is_export_line, is_json_lines};
use needles::Needles;

/// The result of reading one input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReadOutcome {
    /// The shape of the input.
    pub shape: Shape,
    /// The events read, in input order.
    pub events: Vec<Event>,
    /// The records that yielded no event, with the reason for each.
    pub skipped: Vec<SkippedRecord>,
}

/// A record that yielded no event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkippedRecord {
    /// The 1-based line for line-based inputs, otherwise the 1-based index of the record
    /// in its array (or among the top-level values). 0 for a problem with the whole input,
    /// such as truncated gzip data.
    pub position: usize,
    /// The reason, prefixed with the position: `record 3: missing eventTime`.
    pub reason: String,
}

/// The shape an input arrived in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A CloudTrail log file from S3: `{"Records":[…]}`, often gzip.
    S3LogFile,
    /// A JSON array of events.
    JsonArray,
    /// One event per line, or events written one after another.
    JsonLines,
    /// One event on its own.
    SingleEvent,
    /// A CloudWatch Logs subscription payload, `{"messageType":"DATA_MESSAGE",
    /// "logEvents":[{"message":"<event JSON>"}]}`, or the Lambda form
    /// `{"awslogs":{"data":"<base64 of gzip>"}}`.
    CloudWatchLogsSubscription,
    /// `aws logs filter-log-events` or `get-log-events` output:
    /// `{"events":[{"message":"<event JSON>"}]}`.
    CloudWatchLogsFilterOutput,
    /// `aws logs get-query-results` output:
    /// `{"results":[[{"field":"@message","value":"<event JSON>"}]]}`.
    LogsInsightsResults,
    /// A CloudWatch Logs export to S3: one `<timestamp> <event JSON>` line per event.
    CloudWatchLogsExport,
    /// `aws cloudtrail lookup-events` output: `{"Events":[{"CloudTrailEvent":"<event
    /// JSON>"}]}`.
    LookupEvents,
    /// EventBridge events, `{"detail-type":"AWS API Call via CloudTrail","detail":{…}}`,
    /// alone, in an array or one per line.
    EventBridge,
    /// A CloudTrail digest file, which lists log files and contains no events.
    Digest,
    /// Nothing but whitespace.
    Empty,
    /// Not a shape CloudTrail events arrive in (Markdown, YAML, CSV, other JSON).
    Unrecognized,
}

/// Reads every CloudTrail event in `bytes`, whatever its shape, gzip or not.
pub fn read_bytes(bytes: &[u8]) -> ReadOutcome {
    Reader::new(None, 0).read(bytes)
}

/// Reads every CloudTrail event in the file at `path`.
///
/// # Errors
///
/// Only when the file cannot be read. Broken content is reported in the outcome.
pub fn read_path(path: &Path) -> std::io::Result<ReadOutcome> {
    let bytes = std::fs::read(path)?;
    Ok(read_bytes(&bytes))
}

/// Reads the events of the records whose bytes contain at least one of `needles`, such
/// as an access key ID, and parses no other record.
///
/// The events are those of [`read_bytes`] whose record contains a needle. A record's
/// bytes are the element as it appears in the decompressed input. For an event carried as
/// a JSON string, that is the escaped string and its wrapper. For the Lambda `awslogs`
/// form, it is the log event after decoding.
///
/// `skipped` lists only the broken records that contain a needle, because the others are
/// never parsed. With no needles, no record is selected, and an empty needle selects every
/// record.
///
/// Cutting an array into records still reads every byte, while JSON lines jump straight
/// to the lines that contain a needle.
pub fn scan_bytes(bytes: &[u8], needles: &[&[u8]]) -> ReadOutcome {
    let finders: Vec<Finder<'_>> = needles.iter().map(Finder::new).collect();
    Reader::new(Some(&finders), 0).read(bytes)
}

/// How far awslogs payloads may nest inside each other.
const MAX_NESTING: u8 = 1;

/// The maximum depth of arrays of records inside records, as in an array of subscription
/// payloads, each with its `logEvents`.
const MAX_ARRAY_NESTING: u8 = 4;

/// How many gzip layers are removed before reading.
const MAX_GZIP_LAYERS: usize = 3;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const UTF8_BOM: &[u8] = &[0xef, 0xbb, 0xbf];

/// Where a record sits, which decides its position and the shape it gives the input.
#[derive(Clone, Copy)]
struct Context {
    /// The shape of the enclosing container, when one decided it.
    container: Option<Shape>,
    /// The shape a plain event gives the input here.
    plain: Shape,
    /// The line, for line-based inputs.
    line: Option<usize>,
}

impl Context {
    fn position(self, index: usize) -> usize {
        self.line.unwrap_or(index)
    }

    fn unit(self) -> &'static str {
        if self.line.is_some() {
            "line"
        } else {
            "record"
        }
    }
}

/// One read of one buffer.
struct Reader<'n> {
    /// The needles of a scan, or `None` to read every record.
    finders: Option<&'n [Finder<'n>]>,
    needles: Option<Needles<'n>>,
    /// Searches for record starts, one per first key.
    record_starts: HashMap<Vec<u8>, RecordStarts>,
    shape: Option<Shape>,
    events: Vec<Event>,
    skipped: Vec<SkippedRecord>,
    /// Problems with the whole input, kept even when the shape stays unrecognized.
    input_problems: Vec<SkippedRecord>,
    /// The number of awslogs payloads this buffer is nested in.
    nesting: u8,
    /// How many arrays of records enclose the record being read.
    array_nesting: u8,
    saw_awslogs: bool,
}

/// The bytes of one record, `start..end`. When its closing bracket is missing before the
/// limit, `complete` is false and `end` is the limit.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    complete: bool,
}

/// The result of reading one record.
#[derive(PartialEq, Eq)]
enum Handled {
    Done,
    /// The record's JSON is broken, so the next record may start inside it.
    Broken,
}

impl<'n> Reader<'n> {
    fn new(finders: Option<&'n [Finder<'n>]>, nesting: u8) -> Self {
        Self {
            finders,
            needles: None,
            record_starts: HashMap::new(),
            shape: None,
            events: Vec::new(),
            skipped: Vec::new(),
            input_problems: Vec::new(),
            nesting,
            array_nesting: 0,
            saw_awslogs: false,
        }
    }

    fn read(mut self, bytes: &[u8]) -> ReadOutcome {
        let data = self.decompress(bytes);
        let data = data.strip_prefix(UTF8_BOM).unwrap_or(&data);
        self.needles = self.finders.map(Needles::new);

        let start = scanner::skip_whitespace(data, 0, data.len());
        if start == data.len() {
            self.shape = Some(Shape::Empty);
        } else if is_export_line(data, start) {
            self.shape = Some(Shape::CloudWatchLogsExport);
            self.read_lines(data, start, true);
        } else if !matches!(data[start], b'{' | b'[') {
            self.shape = Some(Shape::Unrecognized);
        } else if is_json_lines(data, start) {
            self.read_lines(data, start, false);
        } else {
            self.read_document(data, start);
        }
        self.finish()
    }

    fn finish(mut self) -> ReadOutcome {
        let shape = match self.shape {
            Some(shape) => shape,
            None => {
                // Nothing recognisable: records skipped on the way are not CloudTrail
                // records gone wrong, so they are not reported.
                self.skipped.clear();
                Shape::Unrecognized
            }
        };
        let mut skipped = self.input_problems;
        skipped.append(&mut self.skipped);
        ReadOutcome {
            shape,
            events: self.events,
            skipped,
        }
    }

    /// Removes gzip layers, keeping what decompressed before an error.
    fn decompress<'b>(&mut self, bytes: &'b [u8]) -> Cow<'b, [u8]> {
        let mut data = Cow::Borrowed(bytes);
        for _ in 0..MAX_GZIP_LAYERS {
            if !data.starts_with(GZIP_MAGIC) {
                break;
            }
            let mut inflated = Vec::new();
            if let Err(error) = MultiGzDecoder::new(&data[..]).read_to_end(&mut inflated) {
                self.input_problems.push(SkippedRecord {
                    position: 0,
                    reason: format!(
                        "input: gzip data is truncated or corrupt after {} bytes: {error}",
                        inflated.len()
                    ),
                });
            }
            data = Cow::Owned(inflated);
        }
        data
    }

    fn decide(&mut self, shape: Option<Shape>) {
        if self.shape.is_none() {
            self.shape = shape;
        }
    }

    /// Decides the shape from the first record whose kind determines it.
    fn note_kind(&mut self, kind: &Kind, context: Context) {
        if self.shape.is_none() {
            self.shape = context
                .container
                .or_else(|| record::kind_shape(kind, context.plain));
        }
    }

    fn skip(&mut self, context: Context, index: usize, error: &RecordError) {
        let position = context.position(index);
        let reason = format!("{} {position}: {error}", context.unit());
        tracing::debug!(position, %reason, "cloudtrail record skipped");
        self.skipped.push(SkippedRecord { position, reason });
    }

    /// Reads a whole document: one or more top-level values written one after another.
    fn read_document(&mut self, bytes: &[u8], start: usize) {
        let limit = bytes.len();
        let mut pos = start;
        let mut index = 0;
        let mut values = 0;

        while pos < limit {
            index += 1;
            let plain = if index == 1 {
                Shape::SingleEvent
            } else {
                Shape::JsonLines
            };
            let context = Context {
                container: None,
                plain,
                line: None,
            };
            pos = match bytes[pos] {
                b'{' => {
                    values += 1;
                    self.read_top_object(bytes, pos, limit, index, context)
                }
                b'[' => {
                    values += 1;
                    self.read_top_array(bytes, pos, limit, context)
                }
                _ => {
                    if self.is_selected(bytes, pos, limit) {
                        self.skip(context, index, &RecordError::NotObject);
                    }
                    break;
                }
            };
            pos = scanner::skip_whitespace(bytes, pos, limit);
        }

        if values > 1 && self.shape == Some(Shape::SingleEvent) {
            self.shape = Some(Shape::JsonLines);
        }
    }

    /// Reads a top-level object. A container's array is read in place, so a large log file
    /// is not scanned twice.
    fn read_top_object(
        &mut self,
        bytes: &[u8],
        start: usize,
        limit: usize,
        index: usize,
        context: Context,
    ) -> usize {
        let Kind::Container {
            array_start,
            shape,
            control,
        } = record::classify(bytes, start, limit)
        else {
            return self.read_element(bytes, start, limit, index, context);
        };
        self.decide(Some(shape));
        let array_end = if control {
            scanner::container_end(bytes, array_start, limit).unwrap_or(limit)
        } else {
            let inner = Context {
                container: Some(shape),
                ..context
            };
            self.read_array(bytes, array_start, limit, inner)
        };
        object_end_after(bytes, array_end, limit)
    }

    /// Reads a top-level array. An empty one is an empty JSON array of events.
    fn read_top_array(
        &mut self,
        bytes: &[u8],
        start: usize,
        limit: usize,
        context: Context,
    ) -> usize {
        if bytes.get(scanner::skip_whitespace(bytes, start + 1, limit)) == Some(&b']') {
            self.decide(Some(Shape::JsonArray));
        }
        self.read_array(
            bytes,
            start,
            limit,
            Context {
                plain: Shape::JsonArray,
                ..context
            },
        )
    }

    /// Reads the records of the array that opens at `start` and returns where it ends.
    fn read_array(&mut self, bytes: &[u8], start: usize, limit: usize, context: Context) -> usize {
        let mut pos = start + 1;
        let mut index = 0;

        loop {
            pos = scanner::skip_whitespace(bytes, pos, limit);
            let Some(&byte) = bytes.get(pos).filter(|_| pos < limit) else {
                return limit;
            };
            match byte {
                b']' => return pos + 1,
                // Stray commas and closing braces between records are passed over.
                b',' | b'}' => pos += 1,
                b'{' | b'[' => {
                    index += 1;
                    pos = self.read_element(bytes, pos, limit, index, context);
                }
                _ => {
                    index += 1;
                    let end = scanner::value_end(bytes, pos, limit).unwrap_or(limit);
                    if self.is_selected(bytes, pos, end) {
                        self.skip(context, index, &RecordError::NotObject);
                    }
                    pos = end;
                }
            }
        }
    }

    /// Reads the object or array at `start` as one record and returns where reading goes
    /// on.
    fn read_element(
        &mut self,
        bytes: &[u8],
        start: usize,
        limit: usize,
        index: usize,
        context: Context,
    ) -> usize {
        let closed_end = scanner::container_end(bytes, start, limit);
        let span = Span {
            start,
            end: closed_end.unwrap_or(limit),
            complete: closed_end.is_some(),
        };

        let selected = self.is_selected(bytes, span.start, span.end)
            || is_awslogs(bytes, span.start, span.end);
        if !selected && span.complete && !self.hides_record_start(bytes, span, context) {
            if self.shape.is_none() {
                self.note_kind(&record::classify(bytes, span.start, span.end), context);
            }
            return span.end;
        }

        let handled = self.read_record(bytes, span, index, context, selected);
        if handled == Handled::Done && span.complete {
            return span.end;
        }
        if context.line.is_some() {
            // Records never span lines, so a broken record only ends its own line.
            return if span.complete { span.end } else { limit };
        }
        match self.record_start_after(bytes, span.start, limit) {
            Some(next) if next < span.end || !span.complete => next,
            _ => span.end,
        }
    }

    /// Decodes one record and keeps its event or the reason it has none. With `collect`
    /// off, it only finds out whether the record is broken.
    fn read_record(
        &mut self,
        bytes: &[u8],
        span: Span,
        index: usize,
        context: Context,
        collect: bool,
    ) -> Handled {
        let kind = record::classify(bytes, span.start, span.end);
        self.note_kind(&kind, context);

        if !span.complete {
            if collect {
                self.skip(context, index, &RecordError::Unterminated);
            }
            return Handled::Broken;
        }

        match kind {
            Kind::Digest => Handled::Done,
            Kind::Container { control: true, .. } => Handled::Done,
            Kind::Container {
                array_start, shape, ..
            } => {
                let inner = Context {
                    container: Some(shape),
                    ..context
                };
                self.read_nested_array(bytes, array_start, span.end, index, inner);
                Handled::Done
            }
            Kind::Array => {
                let inner = Context {
                    plain: Shape::JsonArray,
                    ..context
                };
                self.read_nested_array(bytes, span.start, span.end, index, inner);
                Handled::Done
            }
            Kind::Awslogs { value_start } => {
                self.read_awslogs(bytes, value_start, span.end, index, context);
                Handled::Done
            }
            _ => self.decode_record(&kind, &bytes[span.start..span.end], index, context, collect),
        }
    }

    /// Reads an array of records inside a record, as long as arrays do not nest deeper
    /// than `MAX_ARRAY_NESTING`, which keeps the recursion bounded on hostile input.
    fn read_nested_array(
        &mut self,
        bytes: &[u8],
        start: usize,
        limit: usize,
        index: usize,
        context: Context,
    ) {
        if self.array_nesting >= MAX_ARRAY_NESTING {
            self.skip(context, index, &RecordError::TooDeep);
            return;
        }
        self.array_nesting += 1;
        self.read_array(bytes, start, limit, context);
        self.array_nesting -= 1;
    }

    fn decode_record(
        &mut self,
        kind: &Kind,
        raw: &[u8],
        index: usize,
        context: Context,
        collect: bool,
    ) -> Handled {
        match record::decode(kind, raw) {
            Ok(event) => {
                if collect {
                    self.events.push(event);
                }
                Handled::Done
            }
            Err(error) => {
                if collect {
                    self.skip(context, index, &error);
                }
                if error.is_broken() {
                    Handled::Broken
                } else {
                    Handled::Done
                }
            }
        }
    }

    /// Reads the Lambda form of a subscription payload: `{"awslogs":{"data":"…"}}`, where
    /// the data is base64 of gzip of a `DATA_MESSAGE`.
    fn read_awslogs(
        &mut self,
        bytes: &[u8],
        value_start: usize,
        end: usize,
        index: usize,
        context: Context,
    ) {
        self.saw_awslogs = true;
        self.decide(Some(Shape::CloudWatchLogsSubscription));
        match self.decode_awslogs(bytes, value_start, end) {
            Ok(outcome) => {
                self.events.extend(outcome.events);
                self.skipped.extend(outcome.skipped);
            }
            Err(error) => self.skip(context, index, &error),
        }
    }

    fn decode_awslogs(
        &self,
        bytes: &[u8],
        value_start: usize,
        end: usize,
    ) -> Result<ReadOutcome, RecordError> {
        #[derive(serde::Deserialize)]
        struct Awslogs {
            data: Option<String>,
        }

        if self.nesting >= MAX_NESTING {
            return Err(RecordError::NestedAwslogs);
        }
        let value_end =
            scanner::container_end(bytes, value_start, end).ok_or(RecordError::Unterminated)?;
        let awslogs: Awslogs = serde_json::from_slice(&bytes[value_start..value_end])
            .map_err(RecordError::InvalidJson)?;
        let data = awslogs
            .data
            .ok_or(RecordError::MissingField("awslogs.data"))?;
        let compressed = data_encoding::BASE64
            .decode(data.trim().as_bytes())
            .map_err(RecordError::Base64)?;
        if !compressed.starts_with(GZIP_MAGIC) {
            let not_gzip = std::io::Error::new(std::io::ErrorKind::InvalidData, "no gzip header");
            return Err(RecordError::Gzip(not_gzip));
        }
        let mut inflated = Vec::new();
        MultiGzDecoder::new(&compressed[..])
            .read_to_end(&mut inflated)
            .map_err(RecordError::Gzip)?;
        Ok(Reader::new(self.finders, self.nesting + 1).read(&inflated))
    }

    /// Returns `true` when the record at `start..end` is to be read: a scan selects it by
    /// needle, and a read selects every record.
    fn is_selected(&mut self, bytes: &[u8], start: usize, end: usize) -> bool {
        match self.needles.as_mut() {
            None => true,
            Some(needles) => needles.any_within(bytes, start, end),
        }
    }

    /// Returns `true` when a record that a scan would pass over contains the start of
    /// another record, because a read would resume there if this record proved broken.
    fn hides_record_start(&mut self, bytes: &[u8], span: Span, context: Context) -> bool {
        if context.line.is_some() {
            return false;
        }
        self.record_start_after(bytes, span.start, span.end)
            .is_some()
    }

    /// Finds the first place after `start` and before `limit` where an object opens with
    /// the same first key as the record at `start`.
    ///
    /// NOTE: one search is kept per first key, so records taken in order cost one pass per
    /// key. An input where every broken record has a first key of its own costs a search
    /// to the end of the input per broken record.
    fn record_start_after(&mut self, bytes: &[u8], start: usize, limit: usize) -> Option<usize> {
        let key = scanner::first_key(bytes, start, limit)?;
        if !self.record_starts.contains_key(key) {
            self.record_starts
                .insert(key.to_vec(), RecordStarts::new(key));
        }
        let starts = self.record_starts.get_mut(key)?;
        starts.find(bytes, start + 1, limit)
    }
}

/// Returns `true` when the object at `start` is a Lambda subscription payload. Its events
/// are base64, so a needle cannot match them before decoding.
fn is_awslogs(bytes: &[u8], start: usize, end: usize) -> bool {
    scanner::first_key(bytes, start, end) == Some(b"awslogs")
}

/// Walks the members left in an object after the value that ended at `pos`, and returns
/// where the object ends, or `limit` when it is broken.
fn object_end_after(bytes: &[u8], mut pos: usize, limit: usize) -> usize {
    loop {
        match scanner::next_member(bytes, pos, limit) {
            scanner::Member::End(end) => return end,
            scanner::Member::Broken => return limit,
            scanner::Member::Entry { value_start, .. } => {
                let Some(value_end) = scanner::value_end(bytes, value_start, limit) else {
                    return limit;
                };
                pos = value_end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;
    use crate::cloudtrail::IdentityType;

    /// Builds a compact CloudTrail event signed with `key`.
    fn event_json(name: &str, key: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","accessKeyId":"{key}","userName":"alice"}},"eventTime":"2024-01-02T03:04:05Z","eventSource":"iam.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2","requestParameters":{{"userName":"x{{]\"}}"}},"responseElements":null,"eventID":"id-{name}","eventType":"AwsApiCall","recipientAccountId":"123456789012"}}"#
        )
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn quoted(text: &str) -> String {
        serde_json::to_string(text).unwrap()
    }

    /// Checks shape and counts, printing the input and the outcome when they differ.
    #[track_caller]
    fn assert_outcome(
        input: &[u8],
        outcome: &ReadOutcome,
        shape: Shape,
        events: usize,
        skipped: usize,
    ) {
        let preview = String::from_utf8_lossy(&input[..input.len().min(600)]);
        assert_eq!(
            outcome.shape, shape,
            "input: {preview}\noutcome: {outcome:#?}"
        );
        assert_eq!(
            outcome.events.len(),
            events,
            "input: {preview}\nskipped: {:#?}",
            outcome.skipped
        );
        assert_eq!(
            outcome.skipped.len(),
            skipped,
            "input: {preview}\nskipped: {:#?}",
            outcome.skipped
        );
    }

    #[track_caller]
    fn read_expect(input: &[u8], shape: Shape, events: usize, skipped: usize) -> ReadOutcome {
        let outcome = read_bytes(input);
        assert_outcome(input, &outcome, shape, events, skipped);
        outcome
    }

    fn names(outcome: &ReadOutcome) -> Vec<&str> {
        outcome
            .events
            .iter()
            .map(|event| event.event_name.as_str())
            .collect()
    }

    #[test]
    fn s3_log_file() {
        let input = format!(
            r#"{{"Records":[{},{}]}}"#,
            event_json("CreateUser", "AKIA1"),
            event_json("ListUsers", "AKIA2")
        );
        let outcome = read_expect(input.as_bytes(), Shape::S3LogFile, 2, 0);
        assert_eq!(names(&outcome), ["CreateUser", "ListUsers"]);
        assert_eq!(outcome.events[0].access_key_id(), Some("AKIA1"));
        assert_eq!(outcome.events[0].request_string("userName"), Some("x{]\"}"));
    }

    #[test]
    fn s3_log_file_gzip() {
        let input = format!(r#"{{"Records":[{}]}}"#, event_json("CreateUser", "AKIA1"));
        let outcome = read_expect(&gzip(input.as_bytes()), Shape::S3LogFile, 1, 0);
        assert_eq!(names(&outcome), ["CreateUser"]);
    }

    #[test]
    fn s3_log_file_empty_records() {
        read_expect(br#"{"Records":[]}"#, Shape::S3LogFile, 0, 0);
    }

    #[test]
    fn json_array_pretty() {
        let first: serde_json::Value =
            serde_json::from_str(&event_json("CreateUser", "AKIA1")).unwrap();
        let input = serde_json::to_string_pretty(&vec![first.clone(), first]).unwrap();
        read_expect(input.as_bytes(), Shape::JsonArray, 2, 0);
        read_expect(b"[ ]", Shape::JsonArray, 0, 0);
    }

    #[test]
    fn json_lines_with_blank_and_crlf_lines() {
        let input = format!(
            "{}\r\n\r\n{}\n",
            event_json("A", "AKIA1"),
            event_json("B", "AKIA2")
        );
        let outcome = read_expect(input.as_bytes(), Shape::JsonLines, 2, 0);
        assert_eq!(names(&outcome), ["A", "B"]);
    }

    #[test]
    fn json_lines_bad_line_counted_by_line() {
        let input = format!(
            "{}\n{{\"eventVersion\":\"1.08\",\"eventName\":\"cut\n[1]\n{}\nnot json\n",
            event_json("A", "AKIA1"),
            event_json("B", "AKIA2")
        );
        let outcome = read_expect(input.as_bytes(), Shape::JsonLines, 2, 3);
        let positions: Vec<usize> = outcome.skipped.iter().map(|skip| skip.position).collect();
        assert_eq!(positions, [2, 3, 5]);
        assert!(
            outcome.skipped[0]
                .reason
                .starts_with("line 2: unterminated"),
            "{:?}",
            outcome.skipped
        );
        assert_eq!(outcome.skipped[2].reason, "line 5: not a JSON object");
    }

    #[test]
    fn single_event() {
        let outcome = read_expect(
            event_json("GetCallerIdentity", "AKIA1").as_bytes(),
            Shape::SingleEvent,
            1,
            0,
        );
        assert_eq!(outcome.events[0].call_name(), "iam:GetCallerIdentity");
    }

    #[test]
    fn concatenated_pretty_events_are_json_lines() {
        let value: serde_json::Value = serde_json::from_str(&event_json("A", "AKIA1")).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let input = format!("{pretty}\n{pretty}");
        read_expect(input.as_bytes(), Shape::JsonLines, 2, 0);
        let glued = format!("{}{}", event_json("A", "AKIA1"), event_json("B", "AKIA1"));
        read_expect(glued.as_bytes(), Shape::JsonLines, 2, 0);
    }

    #[test]
    fn missing_user_identity_through_reader() {
        let input = br#"{"eventTime":"2019-11-14T00:51:00Z","eventType":"AwsCloudTrailInsight","insightDetails":{"state":"Start"}}"#;
        let outcome = read_expect(input, Shape::SingleEvent, 1, 0);
        assert_eq!(
            outcome.events[0].user_identity.identity_type,
            IdentityType::Missing
        );
        assert!(outcome.events[0].insight_details.is_some());
    }

    fn subscription_message(message_type: &str, messages: &[String]) -> String {
        let log_events: Vec<String> = messages
            .iter()
            .enumerate()
            .map(|(i, message)| {
                format!(
                    r#"{{"id":"{i}","timestamp":1432826855000,"message":{}}}"#,
                    quoted(message)
                )
            })
            .collect();
        format!(
            r#"{{"messageType":"{message_type}","owner":"123456789012","logGroup":"CloudTrail","logStream":"s","subscriptionFilters":["f"],"logEvents":[{}]}}"#,
            log_events.join(",")
        )
    }

    #[test]
    fn cloudwatch_logs_subscription() {
        let input = subscription_message(
            "DATA_MESSAGE",
            &[
                event_json("A", "AKIA1"),
                "not an event".into(),
                event_json("B", "AKIA2"),
            ],
        );
        let outcome = read_expect(input.as_bytes(), Shape::CloudWatchLogsSubscription, 2, 1);
        assert!(
            outcome.skipped[0]
                .reason
                .starts_with("record 2: message is not a JSON event"),
            "{:?}",
            outcome.skipped
        );
    }

    #[test]
    fn cloudwatch_logs_subscription_control_message() {
        let input = subscription_message(
            "CONTROL_MESSAGE",
            &["CWL CONTROL MESSAGE: Checking health of destination".into()],
        );
        read_expect(input.as_bytes(), Shape::CloudWatchLogsSubscription, 0, 0);
    }

    #[test]
    fn cloudwatch_logs_subscription_concatenated_gzip() {
        let first = subscription_message("DATA_MESSAGE", &[event_json("A", "AKIA1")]);
        let second = subscription_message("DATA_MESSAGE", &[event_json("B", "AKIA1")]);
        let mut input = gzip(first.as_bytes());
        input.extend(gzip(second.as_bytes()));
        let outcome = read_expect(&input, Shape::CloudWatchLogsSubscription, 2, 0);
        assert_eq!(names(&outcome), ["A", "B"]);
    }

    #[test]
    fn awslogs_lambda_payload() {
        let inner = subscription_message(
            "DATA_MESSAGE",
            &[event_json("A", "AKIA1"), event_json("B", "AKIA2")],
        );
        let data = data_encoding::BASE64.encode(&gzip(inner.as_bytes()));
        let input = format!(r#"{{"awslogs":{{"data":"{data}"}}}}"#);
        let outcome = read_expect(input.as_bytes(), Shape::CloudWatchLogsSubscription, 2, 0);
        assert_eq!(names(&outcome), ["A", "B"]);

        let scanned = scan_bytes(input.as_bytes(), &[b"AKIA2"]);
        assert_outcome(
            input.as_bytes(),
            &scanned,
            Shape::CloudWatchLogsSubscription,
            1,
            0,
        );
        assert_eq!(names(&scanned), ["B"]);
    }

    #[test]
    fn awslogs_bad_data_is_skipped() {
        let outcome = read_expect(
            br#"{"awslogs":{"data":"%%%"}}"#,
            Shape::CloudWatchLogsSubscription,
            0,
            1,
        );
        assert!(
            outcome.skipped[0].reason.contains("not valid base64"),
            "{:?}",
            outcome.skipped
        );
        let plain = data_encoding::BASE64.encode(b"{}");
        let input = format!(r#"{{"awslogs":{{"data":"{plain}"}}}}"#);
        let outcome = read_expect(input.as_bytes(), Shape::CloudWatchLogsSubscription, 0, 1);
        assert!(
            outcome.skipped[0].reason.contains("not valid gzip"),
            "{:?}",
            outcome.skipped
        );
    }

    #[test]
    fn filter_log_events_output() {
        let input = format!(
            r#"{{"events":[{{"logStreamName":"s","timestamp":1,"message":{},"ingestionTime":2,"eventId":"1"}}],"searchedLogStreams":[{{"logStreamName":"s","searchedCompletely":true}}]}}"#,
            quoted(&event_json("A", "AKIA1"))
        );
        read_expect(input.as_bytes(), Shape::CloudWatchLogsFilterOutput, 1, 0);
    }

    #[test]
    fn get_log_events_output() {
        let input = format!(
            r#"{{"events":[{{"timestamp":1,"message":{},"ingestionTime":2}}],"nextForwardToken":"f/1","nextBackwardToken":"b/1"}}"#,
            quoted(&event_json("A", "AKIA1"))
        );
        read_expect(input.as_bytes(), Shape::CloudWatchLogsFilterOutput, 1, 0);
    }

    #[test]
    fn logs_insights_results() {
        let input = format!(
            r#"{{"results":[[{{"field":"@timestamp","value":"2024-01-02 03:04:05.000"}},{{"field":"@message","value":{}}}],[{{"field":"@timestamp","value":"x"}}]],"statistics":{{"recordsMatched":2.0}},"status":"Complete"}}"#,
            quoted(&event_json("A", "AKIA1"))
        );
        let outcome = read_expect(input.as_bytes(), Shape::LogsInsightsResults, 1, 1);
        assert_eq!(outcome.skipped[0].reason, "record 2: missing eventTime");
    }

    #[test]
    fn cloudwatch_logs_export_lines() {
        let input = format!(
            "2024-01-02T03:04:05.000Z {}\n2024-01-02T03:04:06.000Z {}\n2024-01-02T03:04:07.000Z CWL text\n",
            event_json("A", "AKIA1"),
            event_json("B", "AKIA2")
        );
        let outcome = read_expect(input.as_bytes(), Shape::CloudWatchLogsExport, 2, 1);
        assert_eq!(outcome.skipped[0].position, 3);
    }

    #[test]
    fn lookup_events_output() {
        let input = format!(
            r#"{{"Events":[{{"EventId":"1","EventName":"A","AccessKeyId":"AKIA1","CloudTrailEvent":{}}},{{"EventId":"2","CloudTrailEvent":"{{\"eventName\":\"B\"}}"}}],"NextToken":"t"}}"#,
            quoted(&event_json("A", "AKIA1"))
        );
        let outcome = read_expect(input.as_bytes(), Shape::LookupEvents, 1, 1);
        assert_eq!(outcome.skipped[0].reason, "record 2: missing eventTime");
        let array = format!(
            r#"[{{"EventId":"1","CloudTrailEvent":{}}}]"#,
            quoted(&event_json("A", "AKIA1"))
        );
        read_expect(array.as_bytes(), Shape::LookupEvents, 1, 0);
    }

    fn eventbridge(detail_type: &str, detail: &str) -> String {
        format!(
            r#"{{"version":"0","id":"1","detail-type":"{detail_type}","source":"aws.iam","account":"123456789012","time":"2024-01-02T03:04:05Z","region":"us-east-1","resources":[],"detail":{detail}}}"#
        )
    }

    #[test]
    fn eventbridge_single_array_and_lines() {
        let api_call = eventbridge("AWS API Call via CloudTrail", &event_json("A", "AKIA1"));
        let outcome = read_expect(api_call.as_bytes(), Shape::EventBridge, 1, 0);
        assert_eq!(names(&outcome), ["A"]);

        let other = eventbridge("GuardDuty Finding", r#"{"schemaVersion":"2.0"}"#);
        let array = format!("[{api_call},{other}]");
        let outcome = read_expect(array.as_bytes(), Shape::EventBridge, 1, 1);
        assert!(
            outcome.skipped[0].reason.contains("GuardDuty Finding"),
            "{:?}",
            outcome.skipped
        );

        let lines = format!("{api_call}\n{api_call}\n");
        read_expect(lines.as_bytes(), Shape::EventBridge, 2, 0);

        read_expect(other.as_bytes(), Shape::Unrecognized, 0, 0);
    }

    #[test]
    fn digest_file() {
        let input = br#"{"awsAccountId":"123456789123","digestStartTime":"2020-09-11T18:36:49Z","logFiles":[]}"#;
        read_expect(input, Shape::Digest, 0, 0);
    }

    #[test]
    fn empty_input() {
        read_expect(b"", Shape::Empty, 0, 0);
        read_expect(b" \n\t\r\n", Shape::Empty, 0, 0);
        read_expect(&gzip(b""), Shape::Empty, 0, 0);
    }

    #[test]
    fn unrecognized_inputs() {
        let inputs: [&[u8]; 9] = [
            b"# CloudTrail\n\n```json\n{\"Records\":[]}\n```\n",
            b"title: AWS S3\nid: SDAWS-1\n",
            b"Event Type,Event Name\nAwsApiCall,ListObjects\n",
            br#"{"accountId":"1","severity":8,"type":"UnauthorizedAccess:IAMUser/x"}"#,
            br#"{"events":[{"arn":"arn:aws:health:x","service":"EC2"}]}"#,
            br#"[{"UserName":"a"},{"UserName":"b"}]"#,
            b"[link](http://example.com) text",
            br#"[["a","b"],["c"]]"#,
            b"{broken",
        ];
        for input in inputs {
            read_expect(input, Shape::Unrecognized, 0, 0);
        }
    }

    #[test]
    fn broken_record_in_the_middle() {
        let good = |name: &str| event_json(name, "AKIA1");
        let cases = [
            // Unterminated string: the broken record hides the start of the next one.
            format!(
                r#"{{"Records":[{}, {{"eventVersion":"1.08","eventName":"cut, {}, {}]}}"#,
                good("A"),
                good("B"),
                good("C")
            ),
            // Missing closing brace.
            format!(
                r#"{{"Records":[{}, {{"eventVersion":"1.08","eventTime":"2024-01-02T03:04:05Z", {}, {}]}}"#,
                good("A"),
                good("B"),
                good("C")
            ),
            // Balanced but invalid.
            format!(
                r#"{{"Records":[{}, {{"eventVersion":"1.08","eventTime": tru}}, {}, {}]}}"#,
                good("A"),
                good("B"),
                good("C")
            ),
            // Not an object.
            format!(
                r#"{{"Records":[{}, "text", {}, {}]}}"#,
                good("A"),
                good("B"),
                good("C")
            ),
            // No eventTime.
            format!(
                r#"{{"Records":[{}, {{"eventVersion":"1.08","eventName":"X"}}, {}, {}]}}"#,
                good("A"),
                good("B"),
                good("C")
            ),
            // The same inside a bare JSON array.
            format!(
                r#"[{}, {{"eventVersion":"1.08","eventName":"cut, {}, {}]"#,
                good("A"),
                good("B"),
                good("C")
            ),
        ];
        for input in &cases {
            let outcome = read_bytes(input.as_bytes());
            let shape = if input.starts_with('[') {
                Shape::JsonArray
            } else {
                Shape::S3LogFile
            };
            assert_outcome(input.as_bytes(), &outcome, shape, 3, 1);
            assert_eq!(names(&outcome), ["A", "B", "C"], "{input}");
            assert_eq!(outcome.skipped[0].position, 2, "{input}");
            assert!(
                outcome.skipped[0].reason.starts_with("record 2: "),
                "{:?}",
                outcome.skipped
            );
        }
    }

    #[test]
    fn truncated_file_keeps_records_before() {
        let input = format!(
            r#"{{"Records":[{}, {}"#,
            event_json("A", "AKIA1"),
            event_json("B", "AKIA1")
        );
        let cut = &input[..input.len() - 20];
        let outcome = read_expect(cut.as_bytes(), Shape::S3LogFile, 1, 1);
        assert!(
            outcome.skipped[0]
                .reason
                .starts_with("record 2: unterminated"),
            "{:?}",
            outcome.skipped
        );
    }

    #[test]
    fn truncated_gzip_reports_input_problem() {
        let input = format!(
            r#"{{"Records":[{}, {}]}}"#,
            event_json("A", "AKIA1"),
            event_json("B", "AKIA1")
        );
        let compressed = gzip(input.as_bytes());
        let cut = &compressed[..compressed.len() - 12];
        let outcome = read_bytes(cut);
        assert_eq!(outcome.shape, Shape::S3LogFile, "{outcome:#?}");
        assert_eq!(outcome.skipped[0].position, 0, "{:?}", outcome.skipped);
        assert!(
            outcome.skipped[0].reason.contains("gzip data is truncated"),
            "{:?}",
            outcome.skipped
        );
    }

    #[test]
    fn serialize_then_read_round_trip() {
        let source = format!(
            r#"{{"Records":[{},{},{}]}}"#,
            event_json("A", "AKIA1"),
            r#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:s","arn":"arn:aws:sts::1:assumed-role/r/s","accountId":"1","accessKeyId":"ASIA1111111111111","sessionContext":{"sessionIssuer":{},"webIdFederationData":{},"attributes":{"creationDate":"2024-01-01T00:00:00Z","mfaAuthenticated":"true"}}},"eventTime":"2024-01-02T03:04:05.5Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","sourceIPAddress":"035.249.253.232","readOnly":true,"managementEvent":true,"sessionCredentialFromConsole":"true","tlsDetails":{"tlsVersion":"TLSv1.3"},"responseElements":{"credentials":{"accessKeyId":"ASIAMINTED"}}}"#,
            r#"{"eventTime":"2024-01-02T03:04:05Z","sourceIPAddress":"AWS Internal","insightDetails":{"state":"End"}}"#
        );
        let first = read_expect(source.as_bytes(), Shape::S3LogFile, 3, 0);

        let array = serde_json::to_string(&first.events).unwrap();
        let again = read_expect(array.as_bytes(), Shape::JsonArray, 3, 0);
        assert_eq!(again.events, first.events);

        let lines: Vec<String> = first
            .events
            .iter()
            .map(|event| serde_json::to_string(event).unwrap())
            .collect();
        let again = read_expect(lines.join("\n").as_bytes(), Shape::JsonLines, 3, 0);
        assert_eq!(again.events, first.events);
        assert_eq!(again.events[1].minted_access_key_id(), Some("ASIAMINTED"));
    }

    /// Inputs of every shape, some broken, with events signed by AKIA1 and AKIA2.
    fn scan_inputs() -> Vec<Vec<u8>> {
        let a = event_json("A", "AKIA1");
        let b = event_json("B", "AKIA2");
        let c = event_json("C", "AKIA1");
        let message = subscription_message("DATA_MESSAGE", &[a.clone(), b.clone(), c.clone()]);
        vec![
            format!(r#"{{"Records":[{a},{b},{c}]}}"#).into_bytes(),
            gzip(format!(r#"{{"Records":[{a},{b},{c}]}}"#).as_bytes()),
            format!(r#"{{"Records":[{a}, {{"eventVersion":"1.08","accessKeyId":"AKIA1","eventName":"cut, {b}, {c}]}}"#).into_bytes(),
            format!(r#"{{"Records":[{b}, {{"eventVersion":"1.08","eventName":"cut, {a}, {c}]}}"#).into_bytes(),
            format!(r#"{{"Records":[{b}, {{"eventVersion":"1.08","eventTime":"2024-01-02T03:04:05Z", {a}, {c}]}}"#).into_bytes(),
            format!("[{a},\n{b},\n{c}]").into_bytes(),
            format!("{a}\n{b}\n{{\"eventVersion\":\"AKIA1\n{c}\n").into_bytes(),
            format!("{b}\n{a}\n{b}\n{c}\n").into_bytes(),
            format!("2024-01-01T00:00:00.000Z {a}\n2024-01-01T00:00:00.000Z {b}\n").into_bytes(),
            message.clone().into_bytes(),
            format!(r#"{{"awslogs":{{"data":"{}"}}}}"#, data_encoding::BASE64.encode(&gzip(message.as_bytes()))).into_bytes(),
            format!(r#"{{"Events":[{{"CloudTrailEvent":{}}},{{"CloudTrailEvent":{}}}]}}"#, quoted(&a), quoted(&b)).into_bytes(),
            format!("[{},{}]", eventbridge("AWS API Call via CloudTrail", &b), eventbridge("AWS API Call via CloudTrail", &c)).into_bytes(),
            a.clone().into_bytes(),
            b.clone().into_bytes(),
        ]
    }

    #[test]
    fn scan_equals_read_filtered() {
        for input in scan_inputs() {
            let read = read_bytes(&input);
            for key in ["AKIA1", "AKIA2"] {
                let scanned = scan_bytes(&input, &[key.as_bytes()]);
                let expected: Vec<&Event> = read
                    .events
                    .iter()
                    .filter(|event| event.access_key_id() == Some(key))
                    .collect();
                let actual: Vec<&Event> = scanned.events.iter().collect();
                let preview = String::from_utf8_lossy(&input[..input.len().min(300)]);
                assert_eq!(actual, expected, "needle {key} in {preview}");
                assert_eq!(scanned.shape, read.shape, "needle {key} in {preview}");
                for skip in &scanned.skipped {
                    assert!(
                        read.skipped.contains(skip),
                        "scan skipped {skip:?}, read skipped {:?}",
                        read.skipped
                    );
                }
            }
            let both = scan_bytes(&input, &[b"AKIA1", b"AKIA2"]);
            assert_eq!(both.events, read.events);
            let everything = scan_bytes(&input, &[b""]);
            assert_eq!(everything, read);
            let nothing = scan_bytes(&input, &[]);
            assert!(nothing.events.is_empty());
            assert_eq!(nothing.shape, read.shape);
        }
    }

    #[test]
    fn scan_counts_broken_lines_with_needle() {
        let input = format!(
            "{}\n{{\"accessKeyId\":\"AKIA9\",\n{}\n",
            event_json("A", "AKIA1"),
            event_json("B", "AKIA9")
        );
        let scanned = scan_bytes(input.as_bytes(), &[b"AKIA9"]);
        assert_outcome(input.as_bytes(), &scanned, Shape::JsonLines, 1, 1);
        assert_eq!(scanned.skipped[0].position, 2);
        assert_eq!(names(&scanned), ["B"]);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let depth = 200_000;
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let records = format!("{}{}", r#"{"Records":["#.repeat(depth), "]}".repeat(depth));
        let objects = format!(
            r#"{{"eventVersion":"1",{}1{}}}"#,
            r#""a":{"#.repeat(depth),
            "}".repeat(depth)
        );
        let dotted = format!(
            r#"{{"results":[[{{"field":"eventTime","value":"2024-01-02T03:04:05Z"}},{{"field":"{}","value":"x"}}]]}}"#,
            "a.".repeat(depth)
        );
        for input in [arrays, records, objects, dotted] {
            let read = read_bytes(input.as_bytes());
            let scanned = scan_bytes(input.as_bytes(), &[b"a"]);
            assert!(read.events.len() <= 1, "{:?}", read.skipped);
            assert!(scanned.events.len() <= read.events.len());
        }
    }

    #[test]
    fn single_event_then_trailing_text() {
        let input = format!("{} trailing text", event_json("A", "AKIA1"));
        let outcome = read_expect(input.as_bytes(), Shape::SingleEvent, 1, 1);
        assert_eq!(outcome.skipped[0].reason, "record 2: not a JSON object");

        let input = format!("{}\ntrailing text\n", event_json("A", "AKIA1"));
        let outcome = read_expect(input.as_bytes(), Shape::JsonLines, 1, 1);
        assert_eq!(outcome.skipped[0].reason, "line 2: not a JSON object");
    }

    /// Returns `true` when `part` appears in `whole` in the same order, not necessarily
    /// side by side.
    fn is_subsequence(part: &[Event], whole: &[Event]) -> bool {
        let mut rest = whole.iter();
        part.iter().all(|wanted| rest.any(|event| event == wanted))
    }

    /// A small xorshift generator, so the corruption test needs no extra crate.
    fn next_random(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn truncated_and_corrupted_inputs_do_not_panic() {
        for input in scan_inputs() {
            for cut in (0..input.len()).step_by(7) {
                let prefix = &input[..cut];
                let _ = read_bytes(prefix);
                let _ = scan_bytes(prefix, &[b"AKIA1"]);
            }
        }

        let mut state = 0x2545_f491_4f6c_dd1d;
        let structural = b"{}[]\",:\\\n 0";
        for input in scan_inputs() {
            for _ in 0..300 {
                let mut corrupted = input.clone();
                for _ in 0..3 {
                    let at = (next_random(&mut state) as usize) % corrupted.len();
                    corrupted[at] =
                        structural[(next_random(&mut state) as usize) % structural.len()];
                }
                let read = read_bytes(&corrupted);
                let scanned = scan_bytes(&corrupted, &[b"AKIA1"]);
                let preview = String::from_utf8_lossy(&corrupted);
                assert!(
                    is_subsequence(&scanned.events, &read.events),
                    "scan read more than a read: {preview}"
                );
                let must_find: Vec<Event> = read
                    .events
                    .iter()
                    .filter(|event| serde_json::to_string(event).unwrap().contains("AKIA1"))
                    .cloned()
                    .collect();
                assert!(
                    is_subsequence(&must_find, &scanned.events),
                    "scan missed events: {preview}"
                );
            }
        }
    }
}
