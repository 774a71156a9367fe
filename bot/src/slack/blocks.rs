//! Rendering of Slack messages from the templates, and the pass that holds every message
//! to Block Kit's limits.
//!
//! The templates may produce any amount of text. [`enforce_limits`] runs on every
//! rendered message and cuts what is too long. It adds a note that gives how much was left
//! out, so that Slack never rejects a message for its size.

use anyhow::Context;
use keycheck_core::render::{Family, Renderer};
use serde::Serialize;
use serde_json::{Value, json};

use super::api::Message;

/// Maximum number of blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Maximum characters in a section's text, or in a context element's text.
pub const MAX_SECTION_TEXT: usize = 3000;
/// Maximum characters in one section field.
pub const MAX_FIELD_TEXT: usize = 2000;
/// Maximum number of fields in one section.
pub const MAX_FIELDS: usize = 10;
/// Maximum characters in a header's text.
pub const MAX_HEADER_TEXT: usize = 150;
/// Maximum number of elements in a context block.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// Maximum number of elements in an actions block.
pub const MAX_ACTIONS: usize = 25;
/// Maximum characters in a button's label.
pub const MAX_BUTTON_TEXT: usize = 75;
/// Maximum characters in a button's value.
pub const MAX_BUTTON_VALUE: usize = 2000;
/// Maximum characters kept in the top-level `text`, which only notifications show. Slack
/// accepts more, but a notification shows a line or two.
pub const MAX_FALLBACK_TEXT: usize = 3000;

/// Renders template `name` of the Slack family with `view` and holds the result to Block
/// Kit's limits.
pub fn render<T: Serialize>(renderer: &Renderer, name: &str, view: &T) -> anyhow::Result<Message> {
    let json = renderer.render(Family::Slack, name, view)?;
    let value: Value = serde_json::from_str(&json).with_context(|| format!("template slack/{name} did not produce JSON"))?;
    let text = value.get("text").and_then(Value::as_str).unwrap_or_default().to_string();
    let blocks = value
        .get("blocks")
        .and_then(Value::as_array)
        .cloned()
        .with_context(|| format!("template slack/{name} produced no \"blocks\" array"))?;
    let mut message = Message { text, blocks };
    enforce_limits(&mut message);
    Ok(message)
}

/// Returns the length of `text` as Slack counts it for its limits.
///
/// NOTE: Slack does not document its unit. Counting UTF-16 code units counts an emoji as
/// two, which is never less than Slack's count in code points, so a text cut to this
/// length fits either way.
pub fn slack_length(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Cuts every text, field list and block list of `message` to Block Kit's limits, with a
/// note where something was left out.
pub fn enforce_limits(message: &mut Message) {
    if slack_length(&message.text) > MAX_FALLBACK_TEXT {
        message.text = cut_plain(&message.text, MAX_FALLBACK_TEXT);
    }
    for block in &mut message.blocks {
        limit_block(block);
    }
    if message.blocks.len() > MAX_BLOCKS {
        let dropped = message.blocks.split_off(MAX_BLOCKS - 1);
        let characters: usize = dropped.iter().map(block_text_length).sum();
        let note = format!(
            "_{} more blocks ({} characters) left out to fit Slack's limit of {MAX_BLOCKS} blocks; run `keycheck investigate` for the full report_",
            dropped.len(),
            characters
        );
        message.blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}));
    }
}

fn limit_block(block: &mut Value) {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    match kind.as_str() {
        "header" => {
            if let Some(text) = block.pointer_mut("/text/text") {
                limit_plain(text, MAX_HEADER_TEXT);
            }
        }
        "section" => {
            if let Some(text) = block.pointer_mut("/text/text") {
                limit_mrkdwn(text, MAX_SECTION_TEXT);
            }
            if let Some(Value::Array(fields)) = block.get_mut("fields") {
                fields.truncate(MAX_FIELDS);
                for field in fields {
                    if let Some(text) = field.get_mut("text") {
                        limit_mrkdwn(text, MAX_FIELD_TEXT);
                    }
                }
            }
        }
        "context" => {
            if let Some(Value::Array(elements)) = block.get_mut("elements") {
                elements.truncate(MAX_CONTEXT_ELEMENTS);
                for element in elements {
                    if let Some(text) = element.get_mut("text") {
                        limit_mrkdwn(text, MAX_SECTION_TEXT);
                    }
                }
            }
        }
        "actions" => {
            if let Some(Value::Array(elements)) = block.get_mut("elements") {
                elements.truncate(MAX_ACTIONS);
                for element in elements.iter_mut() {
                    if let Some(text) = element.pointer_mut("/text/text") {
                        limit_plain(text, MAX_BUTTON_TEXT);
                    }
                    if let Some(Value::String(value)) = element.get("value")
                        && slack_length(value) > MAX_BUTTON_VALUE
                    {
                        // A cut value would name another action, so the button goes.
                        *element = Value::Null;
                    }
                }
                elements.retain(|element| !element.is_null());
            }
        }
        _ => {}
    }
}

fn limit_plain(text: &mut Value, max: usize) {
    if let Value::String(value) = text
        && slack_length(value) > max
    {
        *value = cut_plain(value, max);
    }
}

fn limit_mrkdwn(text: &mut Value, max: usize) {
    if let Value::String(value) = text
        && slack_length(value) > max
    {
        *value = cut_mrkdwn(value, max);
    }
}

/// Returns the longest prefix of `text` at most `max` long, by [`slack_length`].
fn prefix(text: &str, max: usize) -> &str {
    let mut length = 0;
    for (index, character) in text.char_indices() {
        length += character.len_utf16();
        if length > max {
            return &text[..index];
        }
    }
    text
}

/// Cuts plain text to `max`, ending in `…`.
fn cut_plain(text: &str, max: usize) -> String {
    format!("{}…", prefix(text, max.saturating_sub(1)))
}

/// Cuts mrkdwn to `max` with a note of how many characters were left out. The cut never
/// splits an `&amp;`-style entity or a `<…>` link, and closes a code block it opens.
pub fn cut_mrkdwn(text: &str, max: usize) -> String {
    let total = slack_length(text);
    // The note's length depends on the number it gives; reserving room for the longest
    // number keeps the result within `max`.
    let note_room = slack_length(&note(total)) + "…\n```\n".len();
    let mut kept = prefix(text, max.saturating_sub(note_room)).to_string();

    if let Some(amp) = kept.rfind('&')
        && !kept[amp..].contains(';')
    {
        kept.truncate(amp);
    }
    if let Some(open) = kept.rfind('<')
        && !kept[open..].contains('>')
    {
        kept.truncate(open);
    }
    let fence = if kept.matches("```").count() % 2 == 1 { "\n```" } else { "" };
    let left_out = total - slack_length(&kept);
    format!("{kept}…{fence}\n{}", note(left_out))
}

fn note(left_out: usize) -> String {
    format!("_({left_out} more characters left out)_")
}

/// Returns the characters of text in a block, to say how much a dropped block held.
fn block_text_length(block: &Value) -> usize {
    match block {
        Value::String(text) => slack_length(text),
        Value::Array(items) => items.iter().map(block_text_length).sum(),
        Value::Object(map) => map
            .iter()
            .filter(|(key, _)| !matches!(key.as_str(), "type" | "block_id" | "action_id" | "style"))
            .map(|(_, value)| block_text_length(value))
            .sum(),
        _ => 0,
    }
}

/// Lists every way `message` breaks Block Kit's limits; empty when it fits. Tests and
/// debug assertions use it.
pub fn limit_violations(message: &Message) -> Vec<String> {
    let mut problems = Vec::new();
    if message.blocks.len() > MAX_BLOCKS {
        problems.push(format!("{} blocks", message.blocks.len()));
    }
    for (index, block) in message.blocks.iter().enumerate() {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or_default();
        let mut check = |pointer: &str, max: usize| {
            if let Some(text) = block.pointer(pointer).and_then(Value::as_str)
                && slack_length(text) > max
            {
                problems.push(format!("block {index} ({kind}) {pointer}: {} characters", slack_length(text)));
            }
        };
        match kind {
            "header" => check("/text/text", MAX_HEADER_TEXT),
            "section" => {
                check("/text/text", MAX_SECTION_TEXT);
                for field in 0..MAX_FIELDS {
                    check(&format!("/fields/{field}/text"), MAX_FIELD_TEXT);
                }
            }
            "context" => {
                for element in 0..MAX_CONTEXT_ELEMENTS {
                    check(&format!("/elements/{element}/text"), MAX_SECTION_TEXT);
                }
            }
            _ => {}
        }
        let count = |name: &str| block.get(name).and_then(Value::as_array).map_or(0, Vec::len);
        if kind == "section" && count("fields") > MAX_FIELDS {
            problems.push(format!("block {index}: {} fields", count("fields")));
        }
        if kind == "context" && count("elements") > MAX_CONTEXT_ELEMENTS {
            problems.push(format!("block {index}: {} context elements", count("elements")));
        }
        if kind == "actions" && count("elements") > MAX_ACTIONS {
            problems.push(format!("block {index}: {} buttons", count("elements")));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> Value {
        json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    }

    #[test]
    fn long_section_cut_with_note() {
        let mut message = Message {
            text: "x".to_string(),
            blocks: vec![section(&"a".repeat(10_000))],
        };
        enforce_limits(&mut message);
        let text = message.blocks[0]["text"]["text"].as_str().unwrap();
        assert!(slack_length(text) <= MAX_SECTION_TEXT, "{}", slack_length(text));
        assert!(text.contains("more characters left out"), "{text}");
        let kept = text.split('…').next().unwrap().matches('a').count();
        assert!(text.contains(&format!("({} more characters", 10_000 - kept)), "{text}");
    }

    #[test]
    fn cut_never_splits_entity_or_link() {
        let entity = format!("{}&amp;tail", "a".repeat(2950));
        let cut = cut_mrkdwn(&entity, 2990);
        assert!(!cut.contains("&am…"), "{cut}");
        assert!(!cut.contains("&…"), "{cut}");

        let link = format!("{}<https://example.com/very/long|label> tail", "a".repeat(2940));
        let cut = cut_mrkdwn(&link, 2990);
        assert_eq!(cut.matches('<').count(), cut.matches('>').count(), "{cut}");
    }

    #[test]
    fn cut_closes_open_code_block() {
        let text = format!("intro\n```\n{}\n```", "line\n".repeat(1000));
        let cut = cut_mrkdwn(&text, MAX_SECTION_TEXT);
        assert_eq!(cut.matches("```").count() % 2, 0, "{cut}");
        assert!(slack_length(&cut) <= MAX_SECTION_TEXT);
    }

    #[test]
    fn emoji_counted_as_two() {
        let text = "🔴".repeat(2000);
        let cut = cut_mrkdwn(&text, MAX_SECTION_TEXT);
        assert!(slack_length(&cut) <= MAX_SECTION_TEXT);
    }

    #[test]
    fn too_many_blocks_cut_with_note() {
        let mut message = Message {
            text: "x".to_string(),
            blocks: (0..80).map(|i| section(&format!("block {i}"))).collect(),
        };
        enforce_limits(&mut message);
        assert_eq!(message.blocks.len(), MAX_BLOCKS);
        let note = message.blocks[MAX_BLOCKS - 1]["elements"][0]["text"].as_str().unwrap();
        assert!(note.contains("31 more blocks"), "{note}");
        assert!(limit_violations(&message).is_empty(), "{:?}", limit_violations(&message));
    }

    #[test]
    fn header_and_fields_cut() {
        let mut message = Message {
            text: "y".repeat(5000),
            blocks: vec![
                json!({"type": "header", "text": {"type": "plain_text", "text": "h".repeat(400)}}),
                json!({"type": "section", "fields": (0..14).map(|_| json!({"type": "mrkdwn", "text": "f".repeat(2500)})).collect::<Vec<_>>()}),
            ],
        };
        enforce_limits(&mut message);
        assert!(limit_violations(&message).is_empty(), "{:?}", limit_violations(&message));
        assert!(slack_length(&message.text) <= MAX_FALLBACK_TEXT);
        assert_eq!(message.blocks[1]["fields"].as_array().unwrap().len(), MAX_FIELDS);
    }
}
