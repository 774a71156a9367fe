//! Line-based inputs: JSON lines and CloudWatch Logs exports, where every line is read on
//! its own and a scan jumps straight to the lines that contain a needle.

use super::{Context, Reader, RecordError, Shape, scanner};

/// The next line for a line-based read.
enum NextLine {
    /// The next one: a read, or a scan that has not decided the shape yet.
    Every,
    /// The line that starts at this index, which contains a needle.
    At(usize),
    /// None: no needle is left.
    NoneLeft,
}

impl Reader<'_> {
    /// Reads an input with one or more records per line. A CloudWatch Logs export line
    /// starts with a timestamp and a space, which `timestamped` removes.
    pub(super) fn read_lines(&mut self, bytes: &[u8], start: usize, timestamped: bool) {
        let limit = bytes.len();
        let plain = if timestamped {
            Shape::CloudWatchLogsExport
        } else {
            Shape::JsonLines
        };
        let mut line_start = start;
        let mut line = 1 + memchr::memchr_iter(b'\n', &bytes[..start]).count();

        while line_start < limit {
            match self.next_line_to_read(bytes, line_start) {
                NextLine::Every => {}
                NextLine::NoneLeft => break,
                NextLine::At(next) => {
                    line += memchr::memchr_iter(b'\n', &bytes[line_start..next]).count();
                    line_start = next;
                }
            }
            let line_end = memchr::memchr(b'\n', &bytes[line_start..])
                .map_or(limit, |offset| line_start + offset);
            let context = Context {
                container: None,
                plain,
                line: Some(line),
            };
            self.read_line(bytes, line_start, line_end, timestamped, context);
            line_start = line_end + 1;
            line += 1;
        }
    }

    /// In a scan, once the shape is known, jumps to the next line that contains a needle.
    ///
    /// NOTE: an awslogs payload hides its events in base64, so a scan stops jumping once
    /// it has read one. An awslogs line that comes after the first jump is still missed.
    fn next_line_to_read(&mut self, bytes: &[u8], from: usize) -> NextLine {
        if self.shape.is_none() || self.saw_awslogs {
            return NextLine::Every;
        }
        let Some(needles) = self.needles.as_mut() else {
            return NextLine::Every;
        };
        let Some(hit) = needles.next_hit(bytes, from) else {
            return NextLine::NoneLeft;
        };
        let line_start =
            memchr::memrchr(b'\n', &bytes[from..hit]).map_or(from, |offset| from + offset + 1);
        NextLine::At(line_start)
    }

    fn read_line(
        &mut self,
        bytes: &[u8],
        line_start: usize,
        line_end: usize,
        timestamped: bool,
        context: Context,
    ) {
        let mut pos = scanner::skip_whitespace(bytes, line_start, line_end);
        if timestamped && bytes.get(pos).is_some_and(u8::is_ascii_digit) {
            let stamp_end =
                memchr::memchr(b' ', &bytes[pos..line_end]).map_or(line_end, |offset| pos + offset);
            pos = scanner::skip_whitespace(bytes, stamp_end, line_end);
        }

        let mut index = 0;
        while pos < line_end {
            index += 1;
            if !matches!(bytes[pos], b'{' | b'[') {
                if self.is_selected(bytes, pos, line_end) {
                    self.skip(context, index, &RecordError::NotObject);
                }
                return;
            }
            pos = self.read_element(bytes, pos, line_end, index, context);
            pos = scanner::skip_whitespace(bytes, pos, line_end);
            if bytes.get(pos) == Some(&b',') && pos < line_end {
                pos = scanner::skip_whitespace(bytes, pos + 1, line_end);
            }
        }
    }
}

/// Returns `true` when the input starts like a CloudWatch Logs export line,
/// `2024-01-01T00:00:00.000Z {…}`.
pub(super) fn is_export_line(bytes: &[u8], start: usize) -> bool {
    let line_end =
        memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |offset| start + offset);
    let line = &bytes[start..line_end];
    let is_date = line.len() > 10
        && line[..4].iter().all(u8::is_ascii_digit)
        && line[4] == b'-'
        && line[7] == b'-';
    if !is_date {
        return false;
    }
    let Some(space) = memchr::memchr(b' ', line) else {
        return false;
    };
    let json_start = scanner::skip_whitespace(line, space, line.len());
    matches!(line.get(json_start), Some(b'{' | b'['))
}

/// Returns `true` when the first line is a complete value and more input follows it. A
/// single document, compact or pretty-printed, is not JSON lines.
pub(super) fn is_json_lines(bytes: &[u8], start: usize) -> bool {
    let Some(offset) = memchr::memchr(b'\n', &bytes[start..]) else {
        return false;
    };
    let line_end = start + offset;
    if scanner::container_end(bytes, start, line_end).is_none() {
        return false;
    }
    scanner::skip_whitespace(bytes, line_end, bytes.len()) < bytes.len()
}
