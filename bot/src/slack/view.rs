//! View structs for the Slack templates in `templates/slack/`.
//!
//! Fields contain raw text, which the template escapes for Slack (`&`, `<`, `>`) and
//! JSON-encodes with `{{json_string …}}`. They may contain mrkdwn markup that needs no
//! escaping (`*bold*`, `_italic_`, `` `code` ``). Fields whose names end in `_mrkdwn`
//! contain links or mentions (`<@U…>`, `<https://…|text>`), are escaped here, and are
//! inserted with `{{{json_string …}}}`. Every text was redacted by the core views or is
//! redacted here.

use keycheck_core::playbook::Investigation;
use keycheck_core::redact::redact;
use keycheck_core::render::escape_slack;
use keycheck_core::render::view::HeaderView;
use keycheck_core::render::{DiagnosisView, StepView};
use serde::Serialize;

/// One button of the root message's action block.
#[derive(Clone, Debug, Serialize)]
pub struct ButtonView {
    /// The label, such as `Deactivate`.
    pub text: String,
    /// The `action_id` Slack sends back on a click.
    pub action_id: String,
    /// The opaque action ID from the store; its meaning stays in the store.
    pub value: String,
    /// `primary`, `danger`, or `None` for the default style.
    pub style: Option<String>,
}

/// The root message of an investigation: posted when it starts, updated with the verdict.
#[derive(Clone, Debug, Serialize)]
pub struct RootView {
    pub fallback: String,
    pub title: String,
    pub key_field: String,
    pub account_field: String,
    pub requester_mrkdwn: String,
    pub window_field: String,
    pub summary: Option<String>,
    pub note: Option<String>,
    pub buttons: Vec<ButtonView>,
    pub status: String,
}

/// The requester and alert details shown in the root message.
#[derive(Clone, Debug)]
pub struct RootContext {
    /// The person or alert that started the investigation, as mrkdwn escaped for Slack.
    pub requester_mrkdwn: String,
    /// A note under the fields, such as the other keys an alert names.
    pub note: Option<String>,
}

impl RootView {
    /// Builds the root message of a running investigation.
    pub fn running(investigation: &Investigation, evidence_source: &str, context: &RootContext) -> RootView {
        let header = HeaderView::new(investigation, evidence_source);
        let key = investigation.key.to_string();
        RootView {
            fallback: format!("keycheck is investigating {key}"),
            title: format!("🔎 Investigating {key}"),
            key_field: format!("*Access key*\n`{key}` ({})", header.key_kind),
            account_field: format!("*Account*\n{}", crate::chat::decoded_account(investigation)),
            requester_mrkdwn: format!("*Requested by*\n{}", context.requester_mrkdwn),
            window_field: format!("*Window*\n{}", header.window),
            summary: None,
            note: context.note.clone(),
            buttons: Vec::new(),
            status: format!(
                "{} · evidence: {} · running: each step is posted in the thread as it finishes",
                header.investigation_id, header.evidence_source
            ),
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
        self.fallback = format!("keycheck: {key} is {} ({})", diagnosis.verdict, diagnosis.severity);
        self.title = format!("{} {} · {}: {key}", diagnosis.emoji, diagnosis.verdict_upper, diagnosis.severity);
        if let Some(account) = account {
            self.account_field = format!("*Account*\n{account}");
        }
        self.summary = Some(diagnosis.summary.clone());
        self.buttons = buttons;
        self.status = format!("{investigation_id} · finished: the steps and the diagnosis are in the thread");
        self
    }
}

/// One finding of a step reply.
#[derive(Clone, Debug, Serialize)]
pub struct SlackFindingView {
    pub text: String,
    pub evidence: Option<String>,
}

/// A step's reply in the thread.
#[derive(Clone, Debug, Serialize)]
pub struct SlackStepView {
    pub fallback: String,
    pub heading: String,
    pub findings: Vec<SlackFindingView>,
    pub more_findings: Option<String>,
    pub failure: Option<String>,
    pub footer: String,
}

impl SlackStepView {
    /// Builds the reply of one step from its core view.
    pub fn new(step: &StepView) -> SlackStepView {
        let findings = step
            .findings
            .iter()
            .map(|finding| {
                let mut lines: Vec<String> = finding.evidence.iter().map(|line| format!("`{line}`")).collect();
                if let Some(more) = &finding.more_evidence {
                    lines.push(format!("_{more}_"));
                }
                SlackFindingView {
                    text: format!("{} {}", finding.emoji, finding.text),
                    evidence: (!lines.is_empty()).then(|| lines.join("\n")),
                }
            })
            .collect();
        SlackStepView {
            fallback: format!("Step {}. {}: {}", step.number, step.title, step.status),
            heading: format!("{} *Step {}. {}*: {}\n{}", step.emoji, step.number, step.title, step.status, step.summary),
            findings,
            more_findings: step.more_findings.as_ref().map(|more| format!("_{more}_")),
            failure: step.failure.as_ref().map(|failure| format!("*Fix:* {failure}")),
            footer: format!("step {} · {}", step.name, step.duration),
        }
    }
}

/// The diagnosis reply in the thread.
#[derive(Clone, Debug, Serialize)]
pub struct SlackDiagnosisView {
    pub fallback: String,
    pub title: String,
    pub summary: String,
    pub first_detection: Option<String>,
    pub sections: Vec<String>,
    pub timeline: Option<String>,
    pub actions: Option<String>,
    pub blind_spots: Option<String>,
    pub widened: Option<String>,
    pub footer: String,
}

impl SlackDiagnosisView {
    /// Builds the diagnosis reply from its core view.
    pub fn new(diagnosis: &DiagnosisView, investigation_id: &str) -> SlackDiagnosisView {
        let sections = diagnosis
            .sections
            .iter()
            .map(|section| {
                let mut text = format!("{} *{}*", section.emoji, section.heading);
                for claim in &section.claims {
                    text.push_str(&format!("\n• {}", claim.text));
                    for line in &claim.evidence {
                        text.push_str(&format!("\n    `{line}`"));
                    }
                }
                text
            })
            .collect();
        let timeline = (!diagnosis.timeline.is_empty()).then(|| {
            let lines: Vec<String> = diagnosis
                .timeline
                .iter()
                .map(|entry| format!("{:>9}  {}  {}", entry.offset, entry.time, entry.text))
                .collect();
            format!("*Timeline* (offsets from {})\n```\n{}\n```", diagnosis.timeline_baseline, lines.join("\n"))
        });
        let actions = (!diagnosis.actions.is_empty()).then(|| {
            let lines: Vec<String> = diagnosis
                .actions
                .iter()
                .enumerate()
                .map(|(index, action)| format!("{}. *{}*: {}", index + 1, action.kind, action.text))
                .collect();
            format!("*Recommended actions*\n{}", lines.join("\n"))
        });
        SlackDiagnosisView {
            fallback: format!("Diagnosis: {} ({})", diagnosis.verdict, diagnosis.severity),
            title: format!("{} Diagnosis: {} ({})", diagnosis.emoji, diagnosis.verdict, diagnosis.severity),
            summary: diagnosis.summary.clone(),
            first_detection: diagnosis.first_detection.as_ref().map(|time| format!("*First detection:* {time}")),
            sections,
            timeline,
            actions,
            blind_spots: bullet_list("*Not seen*", &diagnosis.blind_spots),
            widened: bullet_list("*Also checked because nothing correlated*", &diagnosis.widened),
            footer: format!("{investigation_id} · diagnosis"),
        }
    }
}

fn bullet_list(heading: &str, items: &[String]) -> Option<String> {
    (!items.is_empty()).then(|| {
        let lines: Vec<String> = items.iter().map(|item| format!("• {item}")).collect();
        format!("{heading}\n{}", lines.join("\n"))
    })
}

/// A short message: a notice, an error or a refusal.
#[derive(Clone, Debug, Serialize)]
pub struct NoticeView {
    /// Plain text for notifications.
    pub text: String,
    /// The message as mrkdwn, escaped for Slack.
    pub body_mrkdwn: String,
}

impl NoticeView {
    /// Creates a notice of plain `text`, which is redacted and escaped here.
    pub fn plain(text: &str) -> NoticeView {
        let text = redact(text).into_owned();
        NoticeView {
            body_mrkdwn: escape_slack(&text),
            text,
        }
    }

    /// Creates a notice from mrkdwn that is already escaped, with `text` for notifications.
    pub fn mrkdwn(text: &str, body_mrkdwn: String) -> NoticeView {
        NoticeView {
            text: redact(text).into_owned(),
            body_mrkdwn,
        }
    }
}

/// The text of `/keycheck help`.
#[derive(Clone, Debug, Serialize)]
pub struct HelpView {
    pub command: String,
    pub default_window: String,
    pub duplicate_window: String,
    pub example_key: String,
}

/// Returns a Slack link to `url` with `label`, both escaped.
pub fn link(url: &str, label: &str) -> String {
    format!("<{}|{}>", escape_slack(url).replace('|', "%7C"), escape_slack(label).replace('|', "/"))
}

/// Returns a mention of user `user_id`.
pub fn user_mention(user_id: &str) -> String {
    format!("<@{}>", escape_slack(user_id))
}

/// Returns a mention of channel `channel_id`.
pub fn channel_mention(channel_id: &str) -> String {
    format!("<#{}>", escape_slack(channel_id))
}
