//! A JSON-aware byte scanner that finds where values end without parsing them.
//!
//! The readers use it to cut a `Records` array, a JSON array or a line into one byte range
//! per record, so that each record is parsed on its own and a broken one costs only itself.
//! It tracks strings, backslash escapes and bracket depth, and nothing else: it does not
//! validate JSON. Every function takes a `limit` and never looks at or past it.

use memchr::memmem::Finder;

/// Returns the index of the first byte at or after `pos` that is not JSON whitespace, or
/// `limit` when there is none.
pub(super) fn skip_whitespace(bytes: &[u8], mut pos: usize, limit: usize) -> usize {
    while pos < limit && is_whitespace(bytes[pos]) {
        pos += 1;
    }
    pos
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Finds the end (exclusive) of the string whose opening quote is at `start`, or `None`
/// when the string is not closed before `limit`.
pub(super) fn string_end(bytes: &[u8], start: usize, limit: usize) -> Option<usize> {
    let mut from = start + 1;
    while let Some(offset) = memchr::memchr(b'"', bytes.get(from..limit)?) {
        let quote = from + offset;
        if !is_escaped(bytes, start + 1, quote) {
            return Some(quote + 1);
        }
        from = quote + 1;
    }
    None
}

/// Returns `true` when the quote at `quote` is escaped: an odd number of backslashes
/// precede it within the string that starts at `string_start`.
fn is_escaped(bytes: &[u8], string_start: usize, quote: usize) -> bool {
    let backslashes = bytes[string_start..quote]
        .iter()
        .rev()
        .take_while(|&&byte| byte == b'\\')
        .count();
    backslashes % 2 == 1
}

/// Finds the end (exclusive) of the object or array that opens at `start`, or `None` when
/// it is not closed before `limit`.
///
/// Only the bracket kind that opens the value is counted: in valid JSON the other kind is
/// balanced inside it. The scan jumps from quote to quote with `memchr`, and only the short
/// stretches between strings are read byte by byte, because this runs over every byte of a
/// large input.
pub(super) fn container_end(bytes: &[u8], start: usize, limit: usize) -> Option<usize> {
    if start >= limit {
        return None;
    }
    let (open, close) = match bytes.get(start) {
        Some(b'[') => (b'[', b']'),
        Some(b'{') => (b'{', b'}'),
        _ => return None,
    };
    let haystack = bytes.get(..limit)?;
    let mut quotes = memchr::memchr_iter(b'"', &haystack[start..]).map(|offset| start + offset);
    let mut depth = 0usize;
    let mut segment_start = start;

    loop {
        let opening_quote = quotes.next();
        let segment_end = opening_quote.unwrap_or(limit);
        for (offset, &byte) in haystack[segment_start..segment_end].iter().enumerate() {
            if byte == open {
                depth += 1;
            } else if byte == close {
                depth -= 1;
                if depth == 0 {
                    return Some(segment_start + offset + 1);
                }
            }
        }

        let opening_quote = opening_quote?;
        let closing_quote = loop {
            let quote = quotes.next()?;
            if !is_escaped(haystack, opening_quote + 1, quote) {
                break quote;
            }
        };
        segment_start = closing_quote + 1;
    }
}

/// Finds the end (exclusive) of a number, `true`, `false`, `null` or stray text starting at
/// `start`: the next comma, closing bracket or whitespace.
pub(super) fn scalar_end(bytes: &[u8], start: usize, limit: usize) -> usize {
    let Some(rest) = bytes.get(start..limit) else {
        return limit.max(start);
    };
    rest.iter()
        .position(|&byte| matches!(byte, b',' | b']' | b'}') || is_whitespace(byte))
        .map_or(limit, |offset| start + offset)
}

/// Finds the end (exclusive) of any JSON value starting at `start`, or `None` when a
/// string, object or array is not closed before `limit`.
pub(super) fn value_end(bytes: &[u8], start: usize, limit: usize) -> Option<usize> {
    if start >= limit {
        return None;
    }
    match bytes.get(start)? {
        b'"' => string_end(bytes, start, limit),
        b'{' | b'[' => container_end(bytes, start, limit),
        _ => Some(scalar_end(bytes, start, limit).max(start + 1)),
    }
}

/// One step through the members of an object.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Member<'a> {
    /// A member: its key as written (escapes left as they are) and where its value starts.
    Entry { key: &'a [u8], value_start: usize },
    /// The closing brace, with the index just after it, where the object ends.
    End(usize),
    /// Something other than a key, a comma or the closing brace, or the limit.
    Broken,
}

/// Reads the next member of an object, from just after its opening brace or just after
/// the previous member's value.
pub(super) fn next_member(bytes: &[u8], pos: usize, limit: usize) -> Member<'_> {
    let mut pos = skip_whitespace(bytes, pos, limit);
    if bytes.get(pos) == Some(&b',') && pos < limit {
        pos = skip_whitespace(bytes, pos + 1, limit);
    }
    if pos >= limit {
        return Member::Broken;
    }
    match bytes[pos] {
        b'}' => return Member::End(pos + 1),
        b'"' => {}
        _ => return Member::Broken,
    }

    let Some(key_end) = string_end(bytes, pos, limit) else {
        return Member::Broken;
    };
    let colon = skip_whitespace(bytes, key_end, limit);
    if colon >= limit || bytes[colon] != b':' {
        return Member::Broken;
    }
    let value_start = skip_whitespace(bytes, colon + 1, limit);
    if value_start >= limit {
        return Member::Broken;
    }
    Member::Entry {
        key: &bytes[pos + 1..key_end - 1],
        value_start,
    }
}

/// Returns the first key of the object that opens at `start`, as written.
pub(super) fn first_key(bytes: &[u8], start: usize, limit: usize) -> Option<&[u8]> {
    if bytes.get(start) != Some(&b'{') {
        return None;
    }
    match next_member(bytes, start + 1, limit) {
        Member::Entry { key, .. } => Some(key),
        _ => None,
    }
}

/// Finds, one after another, the places where a record could start again after a broken
/// one: an opening brace directly followed by `"key"`, where the previous non-whitespace
/// byte is a comma, an opening bracket, a closing brace or the start of the input.
///
/// Valid JSON cannot contain that sequence inside a string, because quotes in strings are
/// escaped, so a match is structure even when the scan before it lost track of strings.
pub(super) struct RecordStarts {
    finder: Finder<'static>,
    /// The last search: the range it covered and the first record start in that range.
    last: Option<LastSearch>,
}

#[derive(Clone, Copy)]
struct LastSearch {
    from: usize,
    limit: usize,
    found: Option<usize>,
}

impl RecordStarts {
    /// Prepares a search for records whose first key is `key`.
    pub(super) fn new(key: &[u8]) -> Self {
        let mut quoted = Vec::with_capacity(key.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(key);
        quoted.push(b'"');
        Self {
            finder: Finder::new(&quoted).into_owned(),
            last: None,
        }
    }

    /// Finds the first record start in `from..limit`. A call whose range starts at or
    /// after the previous one's reuses that search when it already answers the question.
    pub(super) fn find(&mut self, bytes: &[u8], from: usize, limit: usize) -> Option<usize> {
        if let Some(last) = self.last
            && from >= last.from
        {
            match last.found {
                Some(start) if start >= from => return Some(start).filter(|&start| start < limit),
                None if limit <= last.limit => return None,
                _ => {}
            }
        }
        let found = self.search(bytes, from, limit);
        self.last = Some(LastSearch { from, limit, found });
        found
    }

    fn search(&self, bytes: &[u8], from: usize, limit: usize) -> Option<usize> {
        let haystack = bytes.get(..limit)?;
        let mut quote_from = from;
        while quote_from < limit {
            let quote = quote_from + self.finder.find(&haystack[quote_from..])?;
            if let Some(brace) = record_brace_before(bytes, quote)
                && brace >= from
            {
                return Some(brace);
            }
            quote_from = quote + 1;
        }
        None
    }
}

/// Returns the opening brace before the key quote at `quote`, when it is where a record
/// starts.
fn record_brace_before(bytes: &[u8], quote: usize) -> Option<usize> {
    let brace = previous_non_whitespace(bytes, quote)?;
    if bytes[brace] != b'{' {
        return None;
    }
    match previous_non_whitespace(bytes, brace) {
        None => Some(brace),
        Some(before) if matches!(bytes[before], b',' | b'[' | b'}') => Some(brace),
        Some(_) => None,
    }
}

fn previous_non_whitespace(bytes: &[u8], pos: usize) -> Option<usize> {
    bytes[..pos].iter().rposition(|&byte| !is_whitespace(byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(text: &str) -> Option<usize> {
        container_end(text.as_bytes(), 0, text.len())
    }

    #[test]
    fn container_end_object_and_array() {
        assert_eq!(end_of(r#"{"a":1} tail"#), Some(7));
        assert_eq!(end_of(r#"[1,[2],{"b":[3]}],"#), Some(17));
        assert_eq!(end_of("{}"), Some(2));
    }

    #[test]
    fn container_end_ignores_brackets_in_strings() {
        let text = r#"{"a":"}{][","b":{"c":"\"}"}} rest"#;
        assert_eq!(end_of(text), Some(text.find(" rest").unwrap()));
    }

    #[test]
    fn container_end_even_backslashes_close_string() {
        let text = r#"{"a":"x\\"} rest"#;
        assert_eq!(end_of(text), Some(text.find(" rest").unwrap()));
    }

    #[test]
    fn container_end_unterminated() {
        assert_eq!(end_of(r#"{"a":{"b":1}"#), None);
        assert_eq!(end_of(r#"{"a":"open}"#), None);
        let text = r#"{"a":1}"#;
        assert_eq!(container_end(text.as_bytes(), 0, 6), None);
    }

    #[test]
    fn container_end_rejects_non_container() {
        assert_eq!(end_of("12"), None);
        assert_eq!(container_end(b"", 0, 0), None);
    }

    #[test]
    fn string_end_skips_escaped_quotes() {
        let text = r#""a\"b\\" x"#;
        assert_eq!(string_end(text.as_bytes(), 0, text.len()), Some(8));
        assert_eq!(string_end(br#""open"#, 0, 5), None);
    }

    #[test]
    fn value_end_scalars() {
        assert_eq!(value_end(b"true,", 0, 5), Some(4));
        assert_eq!(value_end(b"-1.5e3]", 0, 7), Some(6));
        assert_eq!(value_end(b"null", 0, 4), Some(4));
    }

    #[test]
    fn next_member_walks_object() {
        let text = br#"{ "a" : 1 , "b":[2] }"#;
        let Member::Entry { key, value_start } = next_member(text, 1, text.len()) else {
            panic!("expected the first member");
        };
        assert_eq!(key, b"a");
        assert_eq!(text[value_start], b'1');
        let after = value_end(text, value_start, text.len()).unwrap();
        let Member::Entry { key, value_start } = next_member(text, after, text.len()) else {
            panic!("expected the second member");
        };
        assert_eq!(key, b"b");
        let after = value_end(text, value_start, text.len()).unwrap();
        assert_eq!(
            next_member(text, after, text.len()),
            Member::End(text.len())
        );
    }

    #[test]
    fn next_member_broken() {
        assert_eq!(next_member(b"{1:2}", 1, 5), Member::Broken);
        assert_eq!(next_member(br#"{"a" 2}"#, 1, 7), Member::Broken);
        assert_eq!(next_member(br#"{"a":"#, 1, 5), Member::Broken);
    }

    #[test]
    fn first_key_of_object() {
        assert_eq!(
            first_key(br#"{ "eventVersion":"1"}"#, 0, 21),
            Some(&b"eventVersion"[..])
        );
        assert_eq!(first_key(b"[1]", 0, 3), None);
    }

    #[test]
    fn record_starts_after_comma_bracket_or_brace() {
        let text = br#"[{"k":1}, {"x":{"k":2}}, { "k":3}{"k":4} "k" {"k":5}]"#;
        let mut starts = RecordStarts::new(b"k");
        let first = starts.find(text, 0, text.len()).unwrap();
        assert_eq!(first, 1);
        let second = starts.find(text, first + 1, text.len()).unwrap();
        assert_eq!(&text[second..second + 6], br#"{ "k":"#);
        let third = starts.find(text, second + 1, text.len()).unwrap();
        assert_eq!(&text[third..third + 7], br#"{"k":4}"#);
        assert_eq!(starts.find(text, third + 1, text.len()), None);
    }

    #[test]
    fn record_starts_respects_limit() {
        let text = br#"[{"k":1},{"k":2}]"#;
        let mut starts = RecordStarts::new(b"k");
        assert_eq!(starts.find(text, 2, 8), None);
        assert_eq!(starts.find(text, 2, text.len()), Some(9));
    }
}
