//! View structs of the containment messages in Discord: the action buttons under the
//! verdict, the approval request (`templates/discord/approval.hbs`) and the notes on what
//! happened (`templates/discord/action_result.hbs`).
//!
//! Field conventions are those of `view`: every field is Discord markdown with data
//! escaped. A request button's `custom_id` is only the opaque action ID. Approve and
//! Reject prefix it with the button's name, because a click carries nothing else.

use keycheck_core::approval::{ActionKind, Actor, Button, PendingAction};
use keycheck_core::remediation::{PostCheckReport, PostCheckVerdict};
use serde::Serialize;

use super::view::{ButtonView, button_rows, code, escape_markdown};
use crate::containment::{self, ApprovalRequest, Execution, ExecutionFailure, Offer, PostCheck};

/// The prefix of the Approve button's `custom_id` on an approval request, before the
/// action ID.
pub const APPROVE_PREFIX: &str = "approve:";
/// The prefix of the Reject button's `custom_id` on an approval request, before the
/// action ID.
pub const REJECT_PREFIX: &str = "reject:";

/// Returns the button and the action ID a `custom_id` names.
pub fn parse_custom_id(custom_id: &str) -> (Button, &str) {
    if let Some(id) = custom_id.strip_prefix(APPROVE_PREFIX) {
        return (Button::Approve, id);
    }
    if let Some(id) = custom_id.strip_prefix(REJECT_PREFIX) {
        return (Button::Reject, id);
    }
    (Button::Request, custom_id)
}

/// Returns one button per offered action, with the action ID as the `custom_id`.
pub fn offer_buttons(offer: &Offer) -> Vec<ButtonView> {
    offer
        .actions
        .iter()
        .map(|action| ButtonView {
            label: action.label.to_string(),
            custom_id: action.id.to_string(),
            style: match action.kind {
                ActionKind::Deactivate => 4,
                ActionKind::Dismiss => 2,
                _ => 1,
            },
        })
        .collect()
}

/// Returns the note that lists the recommended actions without a button and the reason
/// for each, as plain text.
pub fn unavailable_note(offer: &Offer) -> Option<String> {
    let lines: Vec<String> = offer
        .unavailable
        .iter()
        .map(|unavailable| format!("{} is not offered: {}", containment::label(unavailable.kind), unavailable.reason))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// An approval request in the thread: the plan, who requested it, the deadline, and
/// Approve / Reject buttons while it is open.
#[derive(Clone, Debug, Serialize)]
pub struct ApprovalView {
    pub title: String,
    /// The key, then the plan with one bullet per line.
    pub description: String,
    pub requested: String,
    /// The decision, once made, such as `✅ Approved by <@…>: done`.
    pub decision: Option<String>,
    pub footer: String,
    pub button_rows: Vec<Vec<ButtonView>>,
}

impl ApprovalView {
    /// Builds the open request, with its buttons.
    pub fn open(request: &ApprovalRequest) -> ApprovalView {
        let mut view = ApprovalView::closed(&request.action, &request.plan, request.two_person_rule, None);
        let id = request.action.id.as_str();
        view.button_rows = button_rows(vec![
            ButtonView {
                label: "Approve".to_string(),
                custom_id: format!("{APPROVE_PREFIX}{id}"),
                style: 3,
            },
            ButtonView {
                label: "Reject".to_string(),
                custom_id: format!("{REJECT_PREFIX}{id}"),
                style: 4,
            },
        ]);
        view
    }

    /// Builds the request after its decision, without buttons.
    pub fn closed(action: &PendingAction, plan: &[String], two_person_rule: bool, decision: Option<String>) -> ApprovalView {
        let label = containment::label(action.kind);
        let requester = action.requested_by.as_ref().map_or_else(|| "someone".to_string(), mention);
        let mut requested = format!("Requested by {requester}");
        if let Some(deadline) = action.expires_at {
            requested.push_str(&format!(" · an approver has until {} UTC", deadline.format("%Y-%m-%d %H:%M")));
        }
        if two_person_rule {
            requested.push_str(" · the approver must be someone else (two-person rule)");
        }
        ApprovalView {
            title: format!("Approval requested: {label}"),
            description: format!("For {}\n{}", code(action.key_id.as_str()), bullets(plan)),
            requested,
            decision,
            footer: footer(action),
            button_rows: Vec::new(),
        }
    }
}

/// A note in the thread on what a click did: an execution's result, a failure, a
/// rejection, a dismissal, or the post-deactivation check.
#[derive(Clone, Debug, Serialize)]
pub struct ActionResultView {
    pub title: String,
    pub description: Option<String>,
    pub color: u32,
    /// For a rotation: the new access key ID, in code.
    pub new_key: Option<String>,
    /// For a rotation: the ARN of the secret that contains the new key, in code.
    pub secret: Option<String>,
    pub footer: String,
}

const COLOR_DONE: u32 = 0x2EB67D;
const COLOR_FAILED: u32 = 0xD0021B;
const COLOR_CLOSED: u32 = 0x99AAB5;
const COLOR_WARNING: u32 = 0xF5A623;

impl ActionResultView {
    /// Describes an action that ran: each change with its AWS request ID, and for a
    /// rotation the new access key ID and the secret's ARN, never the secret.
    pub fn executed(execution: &Execution) -> ActionResultView {
        let action = &execution.action;
        let label = containment::label(action.kind);
        let outcome = &execution.outcome;
        let rotation = match (&outcome.new_key_id, &outcome.secret_arn) {
            (Some(key_id), Some(arn)) if action.kind == ActionKind::Rotate => Some((key_id, arn)),
            _ => None,
        };
        ActionResultView {
            title: format!("✅ {label} done for {}", action.key_id),
            description: Some(format!("Approved by {}\n{}", mention(&execution.approved_by), bullets(&outcome.describe()))),
            color: COLOR_DONE,
            new_key: rotation.map(|(key_id, _)| code(&key_id.to_string())),
            secret: rotation.map(|(_, arn)| code(arn)),
            footer: footer(action),
        }
    }

    /// Describes an action that failed, with the error.
    pub fn failed(failure: &ExecutionFailure) -> ActionResultView {
        let action = &failure.action;
        let label = containment::label(action.kind);
        ActionResultView {
            title: format!("❌ {label} failed for {}", action.key_id),
            description: Some(format!("Approved by {}\n{}", mention(&failure.approved_by), escape_markdown(&failure.error))),
            color: COLOR_FAILED,
            new_key: None,
            secret: None,
            footer: footer(action),
        }
    }

    /// Notes a rejected request.
    pub fn rejected(action: &PendingAction, by: &Actor) -> ActionResultView {
        let label = containment::label(action.kind);
        ActionResultView {
            title: format!("🚫 {label} rejected for {}", action.key_id),
            description: Some(format!("Rejected by {}: nothing was changed in AWS.", mention(by))),
            color: COLOR_CLOSED,
            new_key: None,
            secret: None,
            footer: footer(action),
        }
    }

    /// Notes a dismissed offer and the actions closed with it.
    pub fn dismissed(action: &PendingAction, by: &Actor, closed: &[ActionKind]) -> ActionResultView {
        let labels: Vec<&str> = closed.iter().map(|kind| containment::label(*kind)).collect();
        let mut description = format!("Dismissed by {}: nothing was changed in AWS.", mention(by));
        if !labels.is_empty() {
            description.push_str(&format!("\nClosed with it: {}.", labels.join(", ")));
        }
        ActionResultView {
            title: format!("👋 Containment dismissed for {}", action.key_id),
            description: Some(description),
            color: COLOR_CLOSED,
            new_key: None,
            secret: None,
            footer: footer(action),
        }
    }

    /// Reports the post-deactivation check.
    pub fn post_check(check: &PostCheck, report: &PostCheckReport) -> ActionResultView {
        let (emoji, color) = match report.verdict {
            PostCheckVerdict::Quiet | PostCheckVerdict::KeyRejected => ("✅", COLOR_DONE),
            PostCheckVerdict::SessionsActive | PostCheckVerdict::KeyStillWorks => ("⚠️", COLOR_WARNING),
        };
        ActionResultView {
            title: format!("{emoji} Post-deactivation check of {}", check.key_id),
            description: Some(escape_markdown(&report.summary())),
            color,
            new_key: None,
            secret: None,
            footer: format!("action {} · investigation {}", check.action_id, check.investigation_id),
        }
    }

    /// Reports a post-deactivation check that could not run, with `text` as the reason.
    pub fn post_check_failed(check: &PostCheck, text: &str) -> ActionResultView {
        ActionResultView {
            title: format!("❌ Post-deactivation check of {} could not run", check.key_id),
            description: Some(format!(
                "{}. Run {} to see whether the key or its sessions are still used.",
                escape_markdown(text),
                code(&format!("keycheck investigate {}", check.key_id))
            )),
            color: COLOR_FAILED,
            new_key: None,
            secret: None,
            footer: format!("action {} · investigation {}", check.action_id, check.investigation_id),
        }
    }
}

/// Returns the decision line of a closed approval request, such as `✅ Approved by <@…>: done`.
pub fn decision(emoji: &str, verb: &str, by: &Actor, result: &str) -> String {
    format!("{emoji} {verb} by {}{}", mention(by), escape_markdown(result))
}

/// Returns a mention of a Discord actor, or their escaped name when the ID is not a
/// snowflake.
fn mention(actor: &Actor) -> String {
    match actor.user_id.parse::<u64>() {
        Ok(id) => super::view::user_mention(id),
        Err(_) => escape_markdown(&actor.display_name),
    }
}

/// Returns `lines` as a bulleted list, escaped.
fn bullets(lines: &[String]) -> String {
    lines.iter().map(|line| format!("• {}", escape_markdown(line))).collect::<Vec<_>>().join("\n")
}

fn footer(action: &PendingAction) -> String {
    format!(
        "action {} · investigation {} · keycheck audit --key {} shows the audit log",
        action.id, action.investigation_id, action.key_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use keycheck_core::approval::{ActionState, ChatChannel, Platform};

    fn action(kind: ActionKind) -> PendingAction {
        let mut action = PendingAction::offer(
            "kc-0123456789",
            kind,
            "AKIAIOSFODNN7EXAMPLE".parse().unwrap(),
            "arn:aws:iam::123456789012:user/deploy",
            "{}",
            ChatChannel {
                platform: Platform::Discord,
                workspace: "100000000000000001".to_string(),
                channel: "200000000000000001".to_string(),
            },
            Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap(),
        );
        action.state = ActionState::Requested;
        action.requested_by = Some(Actor {
            platform: Platform::Discord,
            user_id: "300000000000000001".to_string(),
            display_name: "alice".to_string(),
        });
        action.expires_at = Some(Utc.with_ymd_and_hms(2025, 3, 14, 9, 30, 0).unwrap());
        action
    }

    #[test]
    fn custom_ids_name_button_and_action() {
        let id = "AZaz09-_AZaz09-_AZaz09";
        assert_eq!(parse_custom_id(id), (Button::Request, id));
        assert_eq!(parse_custom_id(&format!("{APPROVE_PREFIX}{id}")), (Button::Approve, id));
        assert_eq!(parse_custom_id(&format!("{REJECT_PREFIX}{id}")), (Button::Reject, id));
    }

    #[test]
    fn approval_renders_within_limits_and_closes() {
        let renderer = keycheck_core::render::Renderer::new();
        let request = ApprovalRequest {
            action: action(ActionKind::Rotate),
            plan: vec!["a [link](https://x) *b*".to_string(); 300],
            two_person_rule: true,
        };
        let open = super::super::embeds::render(&renderer, "approval", &ApprovalView::open(&request)).unwrap();
        assert!(super::super::embeds::limit_violations(&open).is_empty(), "{open:#}");
        let text = open.to_string();
        assert!(text.contains("approve:"), "{text}");
        assert!(text.contains("\\\\[link\\\\]"), "the plan is escaped: {text}");
        assert!(text.contains("<@300000000000000001>"), "{text}");
        assert!(text.contains("two-person rule"), "{text}");

        let by = Actor {
            platform: Platform::Discord,
            user_id: "300000000000000002".to_string(),
            display_name: "bob".to_string(),
        };
        let closed = ApprovalView::closed(&request.action, &request.plan, true, Some(decision("✅", "Approved", &by, ": done")));
        let message = super::super::embeds::render(&renderer, "approval", &closed).unwrap();
        assert_eq!(message["components"], serde_json::json!([]), "a closed request keeps no buttons");
        assert!(message.to_string().contains("<@300000000000000002>"));
    }

    #[test]
    fn results_render() {
        let renderer = keycheck_core::render::Renderer::new();
        let by = Actor {
            platform: Platform::Discord,
            user_id: "300000000000000002".to_string(),
            display_name: "bob".to_string(),
        };
        let views = [
            ActionResultView::rejected(&action(ActionKind::Quarantine), &by),
            ActionResultView::dismissed(&action(ActionKind::Dismiss), &by, &[ActionKind::Deactivate, ActionKind::Rotate]),
        ];
        for view in views {
            let message = super::super::embeds::render(&renderer, "action_result", &view).unwrap();
            assert!(super::super::embeds::limit_violations(&message).is_empty(), "{message:#}");
            assert!(message.to_string().contains("nothing was changed in AWS"), "{message:#}");
        }
    }
}
