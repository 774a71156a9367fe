//! View structs for the Discord templates in `templates/discord/`.
//!
//! Every field contains Discord markdown ready to print, because the templates insert
//! fields with `json_string` and the Discord family of templates escapes nothing. Data
//! from AWS and alerts is escaped here with [`escape_markdown`] or put in code with
//! [`code`] and [`code_block`], so that a user agent or a finding title cannot add a
//! masked link, a heading or a mention. Every text was redacted by the core views or is
//! redacted here.

use keycheck_core::playbook::Investigation;
use keycheck_core::redact::redact;
use keycheck_core::render::view::HeaderView;
use keycheck_core::render::{DiagnosisView, StepView};
use serde::Serialize;

/// Embed colour of a running investigation: Discord's blurple.
pub const COLOR_RUNNING: u32 = 0x5865F2;

/// One field of an embed.
#[derive(Clone, Debug, Serialize)]
pub struct FieldView {
    pub name: String,
    pub value: String,
    pub inline: bool,
}

impl FieldView {
    fn new(name: impl Into<String>, value: impl Into<String>, inline: bool) -> FieldView {
        FieldView {
            name: name.into(),
            value: value.into(),
            inline,
        }
    }
}

/// One button of a message: a component of style 1 to 4 whose `custom_id` Discord sends
/// back on a click.
#[derive(Clone, Debug, Serialize)]
pub struct ButtonView {
    pub label: String,
    /// The opaque action ID from the store, prefixed with `approve:` or `reject:` on an
    /// approval request's buttons. What the action does stays in the store.
    pub custom_id: String,
    /// 1 primary, 2 secondary, 3 success, 4 danger.
    pub style: u8,
}

/// Returns `buttons` in action rows of at most five, as Discord lays them out.
pub fn button_rows(buttons: Vec<ButtonView>) -> Vec<Vec<ButtonView>> {
    let mut rows: Vec<Vec<ButtonView>> = Vec::new();
    for button in buttons {
        match rows.last_mut() {
            Some(row) if row.len() < 5 => row.push(button),
            _ => rows.push(vec![button]),
        }
    }
    rows
}

/// The root message of an investigation: the interaction's response, or the first
/// message of an alert's thread. Posted when the investigation starts and edited with
/// the verdict.
#[derive(Clone, Debug, Serialize)]
pub struct RootView {
    pub title: String,
    pub description: Option<String>,
    pub color: u32,
    pub fields: Vec<FieldView>,
    pub footer: String,
    pub button_rows: Vec<Vec<ButtonView>>,
}

/// The requester and alert details shown in the root message.
#[derive(Clone, Debug)]
pub struct RootContext {
    /// The person or alert that started the investigation, as Discord markdown.
    pub requester: String,
    /// A note under the fields, such as the other keys an alert names, as plain text.
    pub note: Option<String>,
}

impl RootView {
    /// Builds the root message of a running investigation.
    pub fn running(investigation: &Investigation, evidence_source: &str, context: &RootContext) -> RootView {
        let header = HeaderView::new(investigation, evidence_source);
        let key = investigation.key.to_string();
        RootView {
            title: format!("🔎 Investigating {key}"),
            description: context.note.as_deref().map(escape_markdown),
            color: COLOR_RUNNING,
            fields: vec![
                FieldView::new("Access key", format!("{} ({})", code(&key), header.key_kind), true),
                FieldView::new("Account", escape_markdown(&crate::chat::decoded_account(investigation)), true),
                FieldView::new("Requested by", context.requester.clone(), true),
                FieldView::new("Window", escape_markdown(&header.window), false),
            ],
            footer: format!(
                "{} · evidence: {} · running: each step is posted in the thread as it finishes",
                header.investigation_id, header.evidence_source
            ),
            button_rows: Vec::new(),
        }
    }

    /// Turns the view of a running investigation into that of a finished one.
    pub fn finished(
        mut self,
        key: &str,
        diagnosis: &DiagnosisView,
        account: Option<&str>,
        investigation_id: &str,
        buttons: Vec<ButtonView>,
    ) -> RootView {
        self.title = format!("{} {} · {}: {key}", diagnosis.emoji, diagnosis.verdict_upper, diagnosis.severity);
        if let Some(account) = account
            && let Some(field) = self.fields.iter_mut().find(|field| field.name == "Account")
        {
            field.value = escape_markdown(account);
        }
        let summary = escape_markdown(&diagnosis.summary);
        self.description = Some(match self.description.take() {
            Some(note) => format!("{summary}\n\n{note}"),
            None => summary,
        });
        self.color = verdict_color(&diagnosis.verdict);
        self.footer = format!("{investigation_id} · finished: the steps and the diagnosis are in the thread");
        self.button_rows = button_rows(buttons);
        self
    }
}

/// Returns the embed colour of a verdict label.
fn verdict_color(verdict: &str) -> u32 {
    match verdict {
        "compromised" => 0xD0021B,
        "suspicious" => 0xF5A623,
        _ => 0x2EB67D,
    }
}

/// Returns the embed colour of a step status label.
fn status_color(status: &str) -> u32 {
    match status {
        "critical" => 0xD0021B,
        "warning" => 0xF5A623,
        "ok" => 0x2EB67D,
        "error" => 0x8B0000,
        _ => 0x99AAB5,
    }
}

/// A step's message in the thread: one embed, a field per finding.
#[derive(Clone, Debug, Serialize)]
pub struct StepMessageView {
    pub title: String,
    pub description: String,
    pub color: u32,
    pub fields: Vec<FieldView>,
    pub footer: String,
}

impl StepMessageView {
    /// Builds the message of one step from its core view.
    pub fn new(step: &StepView) -> StepMessageView {
        let mut description = escape_markdown(&step.summary);
        if let Some(failure) = &step.failure {
            description.push_str(&format!("\n**Fix:** {}", escape_markdown(failure)));
        }
        if let Some(more) = &step.more_findings {
            description.push_str(&format!("\n*{}*", escape_markdown(more)));
        }
        let fields = step
            .findings
            .iter()
            .map(|finding| {
                let mut lines: Vec<String> = finding.evidence.clone();
                if let Some(more) = &finding.more_evidence {
                    lines.push(more.clone());
                }
                let value = if lines.is_empty() { "\u{200b}".to_string() } else { code_block(&lines.join("\n")) };
                finding_field(&finding.emoji, &finding.text, value)
            })
            .collect();
        StepMessageView {
            title: format!("{} Step {}. {}: {}", step.emoji, step.number, step.title, step.status),
            description,
            color: status_color(&step.status),
            fields,
            footer: format!("step {} · {}", step.name, step.duration),
        }
    }
}

/// The maximum length, in characters, of a finding text shown whole as a field's name. A
/// longer one moves into the value, because a field's name has at most 256 characters.
const MAX_FINDING_NAME: usize = 200;

/// Returns the field of a finding: its text as the name, its evidence as the value.
fn finding_field(emoji: &str, text: &str, evidence: String) -> FieldView {
    if text.chars().count() <= MAX_FINDING_NAME {
        return FieldView::new(format!("{emoji} {}", escape_markdown(text)), evidence, false);
    }
    let opening: String = text.chars().take(MAX_FINDING_NAME).collect();
    let value = if evidence == "\u{200b}" {
        escape_markdown(text)
    } else {
        format!("{}\n{evidence}", escape_markdown(text))
    };
    FieldView::new(format!("{emoji} {}…", escape_markdown(&opening)), value, false)
}

/// The diagnosis message in the thread: the verdict embed with a field per section, then
/// the timeline, the recommended actions and the blind spots, an embed each.
#[derive(Clone, Debug, Serialize)]
pub struct DiagnosisMessageView {
    pub title: String,
    pub description: String,
    pub color: u32,
    pub sections: Vec<FieldView>,
    pub timeline: Option<String>,
    pub actions: Option<String>,
    pub blind_spots: Option<String>,
    pub widened: Option<String>,
    pub footer: String,
}

impl DiagnosisMessageView {
    /// Builds the diagnosis message from its core view.
    pub fn new(diagnosis: &DiagnosisView, investigation_id: &str) -> DiagnosisMessageView {
        let mut description = escape_markdown(&diagnosis.summary);
        if let Some(time) = &diagnosis.first_detection {
            description.push_str(&format!("\n**First detection:** {}", escape_markdown(time)));
        }
        let sections = diagnosis
            .sections
            .iter()
            .map(|section| {
                let mut value = String::new();
                for claim in &section.claims {
                    value.push_str(&format!("• {}\n", escape_markdown(&claim.text)));
                    if !claim.evidence.is_empty() {
                        value.push_str(&code_block(&claim.evidence.join("\n")));
                        value.push('\n');
                    }
                }
                let value = if value.trim().is_empty() { "\u{200b}".to_string() } else { value.trim_end().to_string() };
                FieldView::new(format!("{} {}", section.emoji, escape_markdown(&section.heading)), value, false)
            })
            .collect();
        let timeline = (!diagnosis.timeline.is_empty()).then(|| {
            let lines: Vec<String> = diagnosis
                .timeline
                .iter()
                .map(|entry| format!("{:>9}  {}  {}", entry.offset, entry.time, entry.text))
                .collect();
            format!("Offsets from {}\n{}", escape_markdown(&diagnosis.timeline_baseline), code_block(&lines.join("\n")))
        });
        let actions = (!diagnosis.actions.is_empty()).then(|| {
            let lines: Vec<String> = diagnosis
                .actions
                .iter()
                .enumerate()
                .map(|(index, action)| format!("{}. **{}**: {}", index + 1, action.kind, escape_markdown(&action.text)))
                .collect();
            lines.join("\n")
        });
        DiagnosisMessageView {
            title: format!("{} Diagnosis: {} ({})", diagnosis.emoji, diagnosis.verdict, diagnosis.severity),
            description,
            color: verdict_color(&diagnosis.verdict),
            sections,
            timeline,
            actions,
            blind_spots: bullet_list(&diagnosis.blind_spots),
            widened: bullet_list(&diagnosis.widened),
            footer: format!("{investigation_id} · diagnosis"),
        }
    }
}

fn bullet_list(items: &[String]) -> Option<String> {
    (!items.is_empty()).then(|| {
        let lines: Vec<String> = items.iter().map(|item| format!("• {}", escape_markdown(item))).collect();
        lines.join("\n")
    })
}

/// A short message without embeds: a notice, an error or a refusal.
#[derive(Clone, Debug, Serialize)]
pub struct NoticeView {
    /// The message as Discord markdown.
    pub content: String,
}

impl NoticeView {
    /// Creates a notice of plain `text`, which is redacted and escaped here.
    pub fn plain(text: &str) -> NoticeView {
        NoticeView {
            content: escape_markdown(&redact(text)),
        }
    }

    /// Creates a notice from markdown that is already escaped, such as one with a channel
    /// mention. It is redacted here.
    pub fn markdown(content: String) -> NoticeView {
        NoticeView {
            content: redact(&content).into_owned(),
        }
    }
}

/// Escapes what Discord's markdown would read as formatting, a link or a mention: `\`,
/// `*`, `_`, `~`, `` ` ``, `|`, `[`, `]`, `<`, `>` anywhere, and `#`, `-`, `+` and a
/// numbered list's `1.` at the start of a line.
pub fn escape_markdown(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            escaped.push('\n');
        }
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        escaped.push_str(indent);
        if trimmed.starts_with(['#', '-', '+']) {
            escaped.push('\\');
        }
        let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
        for (position, character) in trimmed.char_indices() {
            let numbered_list_dot = digits > 0 && position == digits && character == '.';
            if numbered_list_dot || matches!(character, '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '<' | '>') {
                escaped.push('\\');
            }
            escaped.push(character);
        }
    }
    escaped
}

/// Returns `text` as inline code. Backticks inside become `ˋ` (U+02CB), because Discord
/// has no escape inside code and a backtick would end it.
pub fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "ˋ"))
}

/// Returns `text` as a code block, with backticks replaced as in [`code`].
pub fn code_block(text: &str) -> String {
    format!("```\n{}\n```", text.replace('`', "ˋ"))
}

/// Returns a mention of user `user_id`, which Discord shows as the user's name.
pub fn user_mention(user_id: u64) -> String {
    format!("<@{user_id}>")
}

/// Returns a mention of channel or thread `channel_id`, which Discord shows as a link.
pub fn channel_mention(channel_id: u64) -> String {
    format!("<#{channel_id}>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_markdown_blocks_formatting_and_links() {
        assert_eq!(escape_markdown("[click](https://evil.example)"), "\\[click\\](https://evil.example)");
        assert_eq!(escape_markdown("<@123> **bold** a_b"), "\\<@123\\> \\*\\*bold\\*\\* a\\_b");
        assert_eq!(escape_markdown("# heading\n- item\n1. first"), "\\# heading\n\\- item\n1\\. first");
        assert_eq!(escape_markdown("plain 2024-01-01 text"), "plain 2024-01-01 text");
    }

    #[test]
    fn code_cannot_be_closed_by_data() {
        assert_eq!(code("a`b"), "`aˋb`");
        assert_eq!(code_block("```\nx"), "```\nˋˋˋ\nx\n```");
    }

    #[test]
    fn buttons_laid_out_five_a_row() {
        let buttons = (0..7)
            .map(|index| ButtonView {
                label: format!("b{index}"),
                custom_id: format!("id{index}"),
                style: 2,
            })
            .collect();
        let rows = button_rows(buttons);
        assert_eq!(rows.iter().map(Vec::len).collect::<Vec<_>>(), [5, 2]);
    }

    #[test]
    fn long_finding_moves_into_value() {
        let text = "x".repeat(500);
        let field = finding_field("🔴", &text, "\u{200b}".to_string());
        assert!(field.name.chars().count() <= 256, "{}", field.name.chars().count());
        assert_eq!(field.value, text);
    }
}
