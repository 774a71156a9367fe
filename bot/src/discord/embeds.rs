//! Rendering of Discord messages from the templates, and the pass that keeps every message
//! within Discord's limits.
//!
//! The templates may produce any amount of text. [`enforce_limits`] runs on every rendered
//! message and cuts what is too long. A cut text keeps its opening and ends with a note of
//! how many characters were left out. Fields or embeds dropped to fit are counted in a note
//! appended to the message's content. Discord then never rejects a message for its size
//! (error 50035).

use anyhow::Context;
use keycheck_core::render::{Family, Renderer};
use serde::Serialize;
use serde_json::{Value, json};

/// Maximum characters of a message's content.
pub const MAX_CONTENT: usize = 2000;
/// Maximum number of embeds in one message.
pub const MAX_EMBEDS: usize = 10;
/// Maximum characters of all embeds of one message together: titles, descriptions, field
/// names and values, footer texts and author names.
pub const MAX_EMBED_TOTAL: usize = 6000;
/// Maximum characters of an embed's title.
pub const MAX_TITLE: usize = 256;
/// Maximum characters of an embed's description.
pub const MAX_DESCRIPTION: usize = 4096;
/// Maximum number of fields in one embed.
pub const MAX_FIELDS: usize = 25;
/// Maximum characters of a field's name.
pub const MAX_FIELD_NAME: usize = 256;
/// Maximum characters of a field's value.
pub const MAX_FIELD_VALUE: usize = 1024;
/// Maximum characters of an embed's footer text.
pub const MAX_FOOTER: usize = 2048;
/// Maximum characters of an embed's author name.
pub const MAX_AUTHOR_NAME: usize = 256;
/// Maximum number of action rows in one message.
pub const MAX_ACTION_ROWS: usize = 5;
/// Maximum number of buttons in one action row.
pub const MAX_ROW_BUTTONS: usize = 5;
/// Maximum characters of a button's label.
pub const MAX_BUTTON_LABEL: usize = 80;
/// Maximum characters of a component's `custom_id`.
pub const MAX_CUSTOM_ID: usize = 100;

/// Discord rejects an empty field name or value, so this zero-width space replaces it.
const EMPTY_FIELD: &str = "\u{200b}";

/// The shortest text worth keeping when the 6,000-character budget runs out inside it.
const MIN_KEPT: usize = 80;

/// Renders template `name` of the Discord family with `view`, and keeps the resulting
/// message (`content`, `embeds`, `components`) within Discord's limits.
pub fn render<T: Serialize>(renderer: &Renderer, name: &str, view: &T) -> anyhow::Result<Value> {
    let json = renderer.render(Family::Discord, name, view)?;
    let mut message: Value =
        serde_json::from_str(&json).with_context(|| format!("template discord/{name} did not produce JSON"))?;
    anyhow::ensure!(message.is_object(), "template discord/{name} did not produce a JSON object");
    enforce_limits(&mut message);
    Ok(message)
}

/// Returns the length of `text` as Discord counts it for its limits.
///
/// NOTE: Discord's documentation says "characters" without a unit. Counting UTF-16 code
/// units counts an emoji as two, which is never less than a count in code points, so a
/// text cut to this length fits either way.
pub fn discord_length(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Counts of what was dropped to fit the limits, for the note in the content.
#[derive(Debug, Default)]
struct LeftOut {
    embeds: usize,
    fields: usize,
    characters: usize,
}

/// Cuts every text, field list, embed list and component list of `message` to Discord's
/// limits, with a note where something was left out.
pub fn enforce_limits(message: &mut Value) {
    let Some(object) = message.as_object_mut() else { return };
    let mut left_out = LeftOut::default();

    if let Some(Value::Array(embeds)) = object.get_mut("embeds") {
        if embeds.len() > MAX_EMBEDS {
            for dropped in embeds.split_off(MAX_EMBEDS) {
                left_out.embeds += 1;
                left_out.characters += embed_length(&dropped);
            }
        }
        for embed in embeds.iter_mut() {
            limit_embed(embed, &mut left_out);
        }
        fit_total(embeds, &mut left_out);
    }
    if let Some(Value::Array(rows)) = object.get_mut("components") {
        limit_components(rows);
    }

    let content = object.get("content").and_then(Value::as_str).unwrap_or_default().to_string();
    let note = left_out_note(&left_out);
    let content = match note {
        None if discord_length(&content) <= MAX_CONTENT => return,
        None => cut_markdown(&content, MAX_CONTENT),
        Some(note) => {
            let room = MAX_CONTENT - discord_length(&note) - 1;
            let kept = if discord_length(&content) > room { cut_markdown(&content, room) } else { content };
            if kept.is_empty() { note } else { format!("{kept}\n{note}") }
        }
    };
    object.insert("content".to_string(), Value::String(content));
}

fn left_out_note(left_out: &LeftOut) -> Option<String> {
    if left_out.embeds == 0 && left_out.fields == 0 {
        return None;
    }
    let plural = |count: usize, noun: &str| if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") };
    let mut parts = Vec::new();
    if left_out.fields > 0 {
        parts.push(plural(left_out.fields, "field"));
    }
    if left_out.embeds > 0 {
        parts.push(plural(left_out.embeds, "embed"));
    }
    Some(format!(
        "*{} ({} characters) left out to fit Discord's limits of {MAX_EMBEDS} embeds, {MAX_FIELDS} fields and {MAX_EMBED_TOTAL} characters a message. Run `keycheck investigate` for the full report*",
        parts.join(" and "),
        left_out.characters
    ))
}

/// Cuts the texts of one embed and drops its fields beyond [`MAX_FIELDS`].
fn limit_embed(embed: &mut Value, left_out: &mut LeftOut) {
    limit_text(embed, "/title", MAX_TITLE, cut_plain);
    limit_text(embed, "/author/name", MAX_AUTHOR_NAME, cut_plain);
    limit_text(embed, "/footer/text", MAX_FOOTER, cut_plain);
    limit_text(embed, "/description", MAX_DESCRIPTION, cut_markdown);

    let Some(Value::Array(fields)) = embed.get_mut("fields") else { return };
    if fields.len() > MAX_FIELDS {
        for dropped in fields.split_off(MAX_FIELDS) {
            left_out.fields += 1;
            left_out.characters += field_length(&dropped);
        }
    }
    for field in fields.iter_mut() {
        limit_text(field, "/name", MAX_FIELD_NAME, cut_plain);
        limit_text(field, "/value", MAX_FIELD_VALUE, cut_markdown);
        for name in ["name", "value"] {
            let empty = field.get(name).and_then(Value::as_str).is_none_or(|text| text.trim().is_empty());
            if empty {
                field[name] = Value::String(EMPTY_FIELD.to_string());
            }
        }
    }
}

fn limit_text(value: &mut Value, pointer: &str, max: usize, cut: fn(&str, usize) -> String) {
    if let Some(Value::String(text)) = value.pointer_mut(pointer)
        && discord_length(text) > max
    {
        *text = cut(text, max);
    }
}

/// Keeps the embeds within [`MAX_EMBED_TOTAL`] characters together. Texts count in the order
/// a reader meets them, each embed's title, author and footer before its description and
/// fields, so short labels survive. The text that crosses the budget is cut, and every
/// field and embed after it is dropped.
fn fit_total(embeds: &mut Vec<Value>, left_out: &mut LeftOut) {
    let total: usize = embeds.iter().map(embed_length).sum();
    if total <= MAX_EMBED_TOTAL {
        return;
    }

    let mut used = 0;
    let mut keep_embeds = embeds.len();
    'embeds: for (index, embed) in embeds.iter_mut().enumerate() {
        for pointer in ["/title", "/author/name", "/footer/text"] {
            used += embed.pointer(pointer).and_then(Value::as_str).map_or(0, discord_length);
        }
        if used > MAX_EMBED_TOTAL {
            keep_embeds = index;
            break;
        }
        if let Some(Value::String(description)) = embed.get_mut("description") {
            let length = discord_length(description);
            if used + length > MAX_EMBED_TOTAL {
                let room = MAX_EMBED_TOTAL - used;
                if room >= MIN_KEPT {
                    *description = cut_markdown(description, room);
                } else if room >= discord_length(EMPTY_FIELD) {
                    *description = EMPTY_FIELD.to_string();
                } else if let Some(object) = embed.as_object_mut() {
                    // The labels used the whole budget, so not even the placeholder fits.
                    object.remove("description");
                }
                drop_fields_from(embed, 0, left_out);
                keep_embeds = index + 1;
                break 'embeds;
            }
            used += length;
        }
        let Some(Value::Array(fields)) = embed.get_mut("fields") else { continue };
        for position in 0..fields.len() {
            let length = field_length(&fields[position]);
            if used + length <= MAX_EMBED_TOTAL {
                used += length;
                continue;
            }
            let name_length = fields[position].get("name").and_then(Value::as_str).map_or(0, discord_length);
            let room = MAX_EMBED_TOTAL.saturating_sub(used + name_length);
            let cut_from = if room >= MIN_KEPT {
                let value = fields[position]["value"].as_str().unwrap_or_default().to_string();
                fields[position]["value"] = Value::String(cut_markdown(&value, room));
                position + 1
            } else {
                position
            };
            drop_fields_from(embed, cut_from, left_out);
            keep_embeds = index + 1;
            break 'embeds;
        }
    }
    for dropped in embeds.split_off(keep_embeds.min(embeds.len())) {
        left_out.embeds += 1;
        left_out.characters += embed_length(&dropped);
    }
}

fn drop_fields_from(embed: &mut Value, from: usize, left_out: &mut LeftOut) {
    let Some(Value::Array(fields)) = embed.get_mut("fields") else { return };
    if from >= fields.len() {
        return;
    }
    for dropped in fields.split_off(from) {
        left_out.fields += 1;
        left_out.characters += field_length(&dropped);
    }
}

fn field_length(field: &Value) -> usize {
    ["name", "value"]
        .iter()
        .map(|name| field.get(*name).and_then(Value::as_str).map_or(0, discord_length))
        .sum()
}

/// Returns the characters of an embed that count towards [`MAX_EMBED_TOTAL`].
pub fn embed_length(embed: &Value) -> usize {
    let texts: usize = ["/title", "/description", "/footer/text", "/author/name"]
        .iter()
        .map(|pointer| embed.pointer(pointer).and_then(Value::as_str).map_or(0, discord_length))
        .sum();
    let fields: usize = embed
        .get("fields")
        .and_then(Value::as_array)
        .map_or(0, |fields| fields.iter().map(field_length).sum());
    texts + fields
}

/// Keeps action rows and buttons within their limits. A button whose `custom_id` is too long
/// is dropped, because a cut ID would name another action.
fn limit_components(rows: &mut Vec<Value>) {
    rows.truncate(MAX_ACTION_ROWS);
    for row in rows.iter_mut() {
        let Some(Value::Array(buttons)) = row.get_mut("components") else { continue };
        buttons.retain(|button| button.get("custom_id").and_then(Value::as_str).is_none_or(|id| id.len() <= MAX_CUSTOM_ID));
        buttons.truncate(MAX_ROW_BUTTONS);
        for button in buttons.iter_mut() {
            limit_text(button, "/label", MAX_BUTTON_LABEL, cut_plain);
        }
    }
    rows.retain(|row| row.get("components").and_then(Value::as_array).is_some_and(|buttons| !buttons.is_empty()));
}

/// Returns the longest prefix of `text` at most `max` long, by [`discord_length`].
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

/// Cuts markdown to `max` with a note of how many characters were left out. The cut never
/// ends in an escaping backslash or inside a `<…>` mention, and closes a code block or
/// inline code it opens.
pub fn cut_markdown(text: &str, max: usize) -> String {
    let total = discord_length(text);
    // The note's length depends on the number it gives, so reserving room for the longest
    // number keeps the result within `max`.
    let note_room = discord_length(&note(total)) + "…\n```\n".len() + 1;
    let mut kept = prefix(text, max.saturating_sub(note_room)).to_string();

    if let Some(open) = kept.rfind('<')
        && !kept[open..].contains('>')
    {
        kept.truncate(open);
    }
    let trailing_backslashes = kept.len() - kept.trim_end_matches('\\').len();
    if trailing_backslashes % 2 == 1 {
        kept.pop();
    }
    let closing = if kept.matches("```").count() % 2 == 1 {
        "\n```"
    } else if kept.replace("```", "").matches('`').count() % 2 == 1 {
        "`"
    } else {
        ""
    };
    let left_out = total - discord_length(&kept);
    format!("{kept}…{closing}\n{}", note(left_out))
}

fn note(left_out: usize) -> String {
    format!("*({left_out} more characters left out)*")
}

/// Returns every way `message` breaks Discord's limits, for tests. The list is empty when
/// the message fits.
pub fn limit_violations(message: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let length = |value: &Value, pointer: &str| value.pointer(pointer).and_then(Value::as_str).map_or(0, discord_length);
    let check = |problems: &mut Vec<String>, what: String, actual: usize, max: usize| {
        if actual > max {
            problems.push(format!("{what}: {actual} > {max}"));
        }
    };

    check(&mut problems, "content".to_string(), length(message, "/content"), MAX_CONTENT);
    let empty = Vec::new();
    let embeds = message.get("embeds").and_then(Value::as_array).unwrap_or(&empty);
    check(&mut problems, "embeds".to_string(), embeds.len(), MAX_EMBEDS);
    check(&mut problems, "characters across embeds".to_string(), embeds.iter().map(embed_length).sum(), MAX_EMBED_TOTAL);
    for (index, embed) in embeds.iter().enumerate() {
        check(&mut problems, format!("embed {index} title"), length(embed, "/title"), MAX_TITLE);
        check(&mut problems, format!("embed {index} description"), length(embed, "/description"), MAX_DESCRIPTION);
        check(&mut problems, format!("embed {index} footer"), length(embed, "/footer/text"), MAX_FOOTER);
        check(&mut problems, format!("embed {index} author"), length(embed, "/author/name"), MAX_AUTHOR_NAME);
        let fields = embed.get("fields").and_then(Value::as_array).unwrap_or(&empty);
        check(&mut problems, format!("embed {index} fields"), fields.len(), MAX_FIELDS);
        for (position, field) in fields.iter().enumerate() {
            check(&mut problems, format!("embed {index} field {position} name"), length(field, "/name"), MAX_FIELD_NAME);
            check(&mut problems, format!("embed {index} field {position} value"), length(field, "/value"), MAX_FIELD_VALUE);
            if length(field, "/name") == 0 || length(field, "/value") == 0 {
                problems.push(format!("embed {index} field {position} is empty"));
            }
        }
    }
    let rows = message.get("components").and_then(Value::as_array).unwrap_or(&empty);
    check(&mut problems, "action rows".to_string(), rows.len(), MAX_ACTION_ROWS);
    for (index, row) in rows.iter().enumerate() {
        let buttons = row.get("components").and_then(Value::as_array).unwrap_or(&empty);
        check(&mut problems, format!("row {index} buttons"), buttons.len(), MAX_ROW_BUTTONS);
        for (position, button) in buttons.iter().enumerate() {
            check(&mut problems, format!("row {index} button {position} label"), length(button, "/label"), MAX_BUTTON_LABEL);
            let id = button.get("custom_id").and_then(Value::as_str).map_or(0, str::len);
            check(&mut problems, format!("row {index} button {position} custom_id"), id, MAX_CUSTOM_ID);
        }
    }
    problems
}

/// Returns a message object of `content` alone, for text that needs no template.
pub fn plain(content: &str) -> Value {
    let mut message = json!({"content": content});
    enforce_limits(&mut message);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, value: &str) -> Value {
        json!({"name": name, "value": value, "inline": false})
    }

    #[test]
    fn long_description_cut_with_note() {
        let mut message = json!({"content": "", "embeds": [{"title": "t", "description": "a".repeat(10_000)}]});
        enforce_limits(&mut message);
        let description = message["embeds"][0]["description"].as_str().unwrap();
        assert!(discord_length(description) <= MAX_DESCRIPTION, "{}", discord_length(description));
        let kept = description.split('…').next().unwrap().len();
        assert!(description.contains(&format!("({} more characters left out)", 10_000 - kept)), "{description}");
        assert!(limit_violations(&message).is_empty(), "{:?}", limit_violations(&message));
    }

    #[test]
    fn too_many_fields_and_embeds_counted_in_content() {
        let fields: Vec<Value> = (0..40).map(|i| field(&format!("f{i}"), "v")).collect();
        let embeds: Vec<Value> = (0..12).map(|i| json!({"title": format!("e{i}"), "fields": fields.clone()})).collect();
        let mut message = json!({"content": "hello", "embeds": embeds});
        enforce_limits(&mut message);
        assert!(limit_violations(&message).is_empty(), "{:?}", limit_violations(&message));
        let content = message["content"].as_str().unwrap();
        assert!(content.starts_with("hello\n"), "{content}");
        assert!(content.contains("fields and 2 embeds"), "{content}");
        assert!(content.contains("left out to fit Discord's limits"), "{content}");
    }

    #[test]
    fn total_budget_cuts_inside_and_drops_after() {
        let fields: Vec<Value> = (0..10).map(|i| field(&format!("finding {i}"), &"v".repeat(1000))).collect();
        let embeds: Vec<Value> = (0..3).map(|i| json!({"title": format!("e{i}"), "description": "d".repeat(500), "fields": fields.clone(), "footer": {"text": "kc-1"}})).collect();
        let mut message = json!({"content": "", "embeds": embeds});
        enforce_limits(&mut message);
        assert!(limit_violations(&message).is_empty(), "{:?}", limit_violations(&message));
        let embeds = message["embeds"].as_array().unwrap();
        assert_eq!(embeds.len(), 1, "{message:#}");
        assert_eq!(embeds[0]["footer"]["text"], "kc-1", "short labels survive");
        let last = embeds[0]["fields"].as_array().unwrap().last().unwrap()["value"].as_str().unwrap();
        assert!(last.contains("more characters left out"), "{last}");
        assert!(message["content"].as_str().unwrap().contains("2 embeds"), "{message:#}");
    }

    #[test]
    fn description_removed_when_labels_fill_budget() {
        // Two embeds of 256 + 2,048 + 256 label characters and a third of 256 + 624 use
        // exactly 6,000 characters before the third embed's description.
        let full = json!({"title": "t".repeat(MAX_TITLE), "footer": {"text": "f".repeat(MAX_FOOTER)}, "author": {"name": "a".repeat(MAX_AUTHOR_NAME)}});
        let last = json!({"title": "t".repeat(MAX_TITLE), "footer": {"text": "f".repeat(624)}, "description": "d".repeat(100)});
        let mut message = json!({"content": "", "embeds": [full.clone(), full, last]});
        enforce_limits(&mut message);
        assert!(limit_violations(&message).is_empty(), "{:?}", limit_violations(&message));
        assert_eq!(message["embeds"].as_array().unwrap().len(), 3, "{message:#}");
        assert!(message["embeds"][2].get("description").is_none(), "{message:#}");
    }

    #[test]
    fn cut_keeps_markdown_valid() {
        let block = format!("intro\n```\n{}\n```", "line\n".repeat(1000));
        let cut = cut_markdown(&block, MAX_FIELD_VALUE);
        assert_eq!(cut.matches("```").count() % 2, 0, "{cut}");
        assert!(discord_length(&cut) <= MAX_FIELD_VALUE);

        let escaped = format!("{}\\*tail", "a".repeat(1000));
        for max in 900..1010 {
            let cut = cut_markdown(&escaped, max);
            let before_ellipsis = cut.split('…').next().unwrap();
            assert!(!before_ellipsis.ends_with('\\'), "{max}: {cut}");
        }

        let mention = format!("{}<#123456789012345678> tail", "a".repeat(950));
        let cut = cut_markdown(&mention, 1000);
        assert_eq!(cut.matches('<').count(), cut.matches('>').count(), "{cut}");
    }

    #[test]
    fn empty_field_filled_and_long_custom_id_dropped() {
        let mut message = json!({
            "embeds": [{"title": "t", "fields": [field("", "")]}],
            "components": [{"type": 1, "components": [
                {"type": 2, "style": 4, "label": "L".repeat(100), "custom_id": "a".repeat(22)},
                {"type": 2, "style": 2, "label": "x", "custom_id": "b".repeat(101)}
            ]}]
        });
        enforce_limits(&mut message);
        assert!(limit_violations(&message).is_empty(), "{:?}", limit_violations(&message));
        assert_eq!(message["components"][0]["components"].as_array().unwrap().len(), 1);
    }
}
