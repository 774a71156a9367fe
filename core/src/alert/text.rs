//! Reading alerts from chat text: undoing Slack's markup, finding the JSON documents a
//! message quotes, and reading what is left (prose, truncated or broken JSON,
//! `Name: value` lines) for key IDs and `"field": "value"` pairs.
//!
//! Every step is one pass over the text, so the work is linear in its length.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::Value;

use super::facts::{
    Facts, FieldValue, is_key_field, key_ids_in_text, normalised_field_name, strip_chat_formatting,
};
use super::shapes;
use crate::key::AccessKeyId;

/// Slack's markup for links, mentions and channels: `<https://…|label>`, `<https://…>`,
/// `<@U123>`, `<#C123|general>`, `<!here>`. Slack escapes a literal `<` as `&lt;`, so
/// every `<…>` in a message's raw text is markup.
static SLACK_LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<([^<>|\s]+)(?:\|([^<>]*))?>").expect("slack link pattern is valid")
});

/// Returns a Slack message's text as Slack displays it: links and mentions replaced by
/// their labels (with the URL kept when the label differs from it), HTML entities
/// decoded, code fences and blockquote markers removed.
pub(super) fn normalise_chat_text(text: &str) -> String {
    let delinked = SLACK_LINK.replace_all(text, |captures: &Captures<'_>| link_text(captures));
    let decoded = decode_entities(&delinked);
    let unfenced = decoded.replace("```", "\n");
    strip_blockquote_markers(&unfenced)
}

fn link_text(captures: &Captures<'_>) -> String {
    let target = &captures[1];
    let Some(label) = captures.get(2).map(|m| m.as_str()) else {
        return target.to_string();
    };
    let bare_target = ["https://", "http://", "mailto:"]
        .iter()
        .find_map(|scheme| target.strip_prefix(scheme))
        .unwrap_or(target);
    let is_url = target.contains("://") || target.starts_with("mailto:");
    if label.is_empty() || label == target || label == bare_target || !is_url {
        return if label.is_empty() {
            target.to_string()
        } else {
            label.to_string()
        };
    }
    // A link with its own label may carry the key ID only in its URL.
    format!("{label} ({target})")
}

/// Decodes the entities Slack and chat bridges write: `&amp;`, `&lt;`, `&gt;`,
/// `&quot;`, `&#39;` and `&apos;`, in one pass, so `&amp;quot;` becomes `&quot;`.
fn decode_entities(text: &str) -> String {
    const ENTITIES: [(&str, char); 6] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&#39;", '\''),
        ("&apos;", '\''),
    ];
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        decoded.push_str(&rest[..at]);
        rest = &rest[at..];
        match ENTITIES.iter().find(|(entity, _)| rest.starts_with(entity)) {
            Some((entity, character)) => {
                decoded.push(*character);
                rest = &rest[entity.len()..];
            }
            None => {
                decoded.push('&');
                rest = &rest[1..];
            }
        }
    }
    decoded.push_str(rest);
    decoded
}

/// Removes the `>` that starts each line of a Slack blockquote, so a quoted JSON
/// document parses again.
fn strip_blockquote_markers(text: &str) -> String {
    let mut stripped = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let content = match line.strip_prefix('>') {
            Some(rest) => rest.strip_prefix(' ').unwrap_or(rest),
            None => line,
        };
        stripped.push_str(content);
    }
    stripped
}

/// A stretch of text: a balanced `{…}` that may be a JSON document, a `{…` that is
/// cut off before it closes, or anything else.
#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Object(&'a str),
    Unclosed(&'a str),
    Prose(&'a str),
}

/// Splits text into top-level `{…}` objects and the prose between them, in one pass.
/// Braces inside JSON strings do not count, and quotes in prose outside an object are
/// ignored.
fn segments(text: &str) -> Vec<Segment<'_>> {
    let bytes = text.as_bytes();
    let mut segments = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut object_start = 0;
    let mut prose_start = 0;

    for (i, &b) in bytes.iter().enumerate() {
        if depth == 0 {
            if b == b'{' {
                if prose_start < i {
                    segments.push(Segment::Prose(&text[prose_start..i]));
                }
                object_start = i;
                depth = 1;
                in_string = false;
            }
            continue;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    segments.push(Segment::Object(&text[object_start..=i]));
                    prose_start = i + 1;
                }
            }
            _ => {}
        }
    }

    if depth > 0 {
        segments.push(Segment::Unclosed(&text[object_start..]));
    } else if prose_start < text.len() {
        segments.push(Segment::Prose(&text[prose_start..]));
    }
    segments
}

/// Collects the facts of every piece of `text`, in order: each JSON document it quotes
/// is read by shape, and everything else is read as loose text.
pub(super) fn facts_from_text(text: &str, embedded: usize, out: &mut Vec<Facts>) {
    for segment in segments(text) {
        let loose = match segment {
            Segment::Object(object) => match serde_json::from_str::<Value>(object) {
                Ok(value) => {
                    shapes::facts_from_value(&value, embedded, out);
                    continue;
                }
                Err(_) => object,
            },
            Segment::Unclosed(object) => object,
            Segment::Prose(prose) => prose,
        };
        let facts = loose_facts(loose);
        if !facts.is_empty() {
            out.push(facts);
        }
    }
}

/// `"name": "value"` and `"name": 12.5` pairs, also inside a JSON string where the
/// quotes are escaped (`\"name\":\"value\"`).
static QUOTED_PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"\\?"([A-Za-z][A-Za-z0-9_/:.\-]*)\\?"\s*:\s*(?:\\?"([^"\\]*)\\?"|(-?[0-9]+(?:\.[0-9]+)?))"#,
    )
    .expect("quoted pair pattern is valid")
});

/// `Name: value` lines, as in EventBridge events printed as YAML-like text or chat
/// attachments flattened to `Finding Type: …`. Values in quotes, braces or brackets are
/// left to [`QUOTED_PAIR`].
static LINE_PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)^[ \t*_]*([A-Za-z][A-Za-z0-9_ \-]{0,40}?)[ \t*_]*:[ \t]+([^\s{\["][^\r\n]*?)[ \t]*\r?$"#)
        .expect("line pair pattern is valid")
});

/// Reads text that is not a parseable JSON document: the key IDs written in it, the
/// values of key ID fields (in text order), and the other fields it names.
fn loose_facts(text: &str) -> Facts {
    let mut facts = Facts::new(None);
    let mut keys: Vec<(usize, AccessKeyId)> = key_ids_in_text(text).collect();

    for captures in QUOTED_PAIR.captures_iter(text) {
        let name = &captures[1];
        let value = match (captures.get(2), captures.get(3)) {
            (Some(text), _) => FieldValue::Text(text.as_str()),
            (None, Some(number)) => match number.as_str().parse() {
                Ok(number) => FieldValue::Number(number),
                Err(_) => continue,
            },
            (None, None) => continue,
        };
        read_pair(
            &mut facts,
            &mut keys,
            captures.get(0).map_or(0, |m| m.start()),
            name,
            value,
        );
    }

    for captures in LINE_PAIR.captures_iter(text) {
        let value = strip_chat_formatting(&captures[2]);
        let start = captures.get(0).map_or(0, |m| m.start());
        read_pair(
            &mut facts,
            &mut keys,
            start,
            captures[1].trim(),
            FieldValue::Text(value),
        );
    }

    keys.sort_by_key(|(position, _)| *position);
    for (_, key) in keys {
        facts.add_key(key);
    }
    facts
}

fn read_pair(
    facts: &mut Facts,
    keys: &mut Vec<(usize, AccessKeyId)>,
    position: usize,
    name: &str,
    value: FieldValue<'_>,
) {
    if !is_key_field(&normalised_field_name(name)) {
        facts.apply_field(name, value);
        return;
    }
    if let FieldValue::Text(text) = value
        && let Ok(key) = text.trim().parse::<AccessKeyId>()
    {
        keys.push((position, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_links_become_their_labels() {
        let text = "see <https://console.aws.amazon.com/x|console.aws.amazon.com/x> and <mailto:a@example.com|a@example.com>, <@U123>, <#C1|general>";
        assert_eq!(
            normalise_chat_text(text),
            "see console.aws.amazon.com/x and a@example.com, @U123, general"
        );
    }

    #[test]
    fn slack_link_with_other_label_keeps_url() {
        let text = "<https://example.com/keys?id=AKIAIOSFODNN7EXAMPLE|the key>";
        assert_eq!(
            normalise_chat_text(text),
            "the key (https://example.com/keys?id=AKIAIOSFODNN7EXAMPLE)"
        );
    }

    #[test]
    fn entities_decode_once() {
        assert_eq!(
            normalise_chat_text("&quot;a&quot; &amp;quot; &lt;b&gt; &#39;c&#39; &unknown;"),
            "\"a\" &quot; <b> 'c' &unknown;"
        );
    }

    #[test]
    fn fences_and_quote_markers_are_removed() {
        let text = "alert:\n```{\"a\":\n1}```\n&gt; {\"b\":\n&gt; 2}";
        assert_eq!(
            normalise_chat_text(text),
            "alert:\n\n{\"a\":\n1}\n\n{\"b\":\n2}"
        );
    }

    #[test]
    fn segments_split_objects_and_prose() {
        let text = r#"before {"a": "}{", "b": {"c": 1}} middle {"d": "x\"}"} end {"cut": "#;
        assert_eq!(
            segments(text),
            [
                Segment::Prose("before "),
                Segment::Object(r#"{"a": "}{", "b": {"c": 1}}"#),
                Segment::Prose(" middle "),
                Segment::Object(r#"{"d": "x\"}"}"#),
                Segment::Prose(" end "),
                Segment::Unclosed(r#"{"cut": "#),
            ]
        );
    }

    #[test]
    fn loose_facts_read_pairs_and_lines() {
        let text = "detail-type: GuardDuty Finding\nregion: eu-west-1\ndetail: {\"accountId\":\"111122223333\",\"type\":\"UnauthorizedAccess:IAMUser/MaliciousIPCaller\",\"resource\":{\"accessKeyDetails\":{\"accessKeyId\":\"asiaszs4si7reeexampl\",\"userName\":\"bob\"";
        let facts = loose_facts(text);
        assert_eq!(facts.source, Some(super::super::AlertSource::GuardDuty));
        assert_eq!(facts.region.as_deref(), Some("eu-west-1"));
        assert_eq!(facts.account_id.as_deref(), Some("111122223333"));
        assert_eq!(facts.user_name.as_deref(), Some("bob"));
        assert_eq!(
            facts.finding_type.as_deref(),
            Some("UnauthorizedAccess:IAMUser/MaliciousIPCaller")
        );
        let keys: Vec<&str> = facts.key_ids.iter().map(AccessKeyId::as_str).collect();
        assert_eq!(keys, ["ASIASZS4SI7REEEXAMPL"]);
    }
}
