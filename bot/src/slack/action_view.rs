//! View structs of the containment messages in Slack: the action buttons under the
//! verdict, the approval request (`templates/slack/approval.hbs`) and the notes on what
//! happened (`templates/slack/action_result.hbs`).
//!
//! Field conventions are those of `view`: plain fields are escaped by the template, and
//! fields ending in `_mrkdwn` contain mentions and are escaped here. A button's value is
//! only the opaque action ID.

use keycheck_core::approval::{ActionKind, Actor, PendingAction};
use keycheck_core::remediation::{PostCheckReport, PostCheckVerdict};
use keycheck_core::render::escape_slack;
use serde::Serialize;

use super::view::{ButtonView, user_mention};
use crate::containment::{self, ApprovalRequest, Execution, ExecutionFailure, Offer, PostCheck};

/// The prefix of the `action_id` of the action buttons under the verdict. The action kind
/// follows it, because Slack requires distinct action IDs within one block.
pub const REQUEST_ACTION_PREFIX: &str = "keycheck_request_";
/// The `action_id` of Approve on an approval request.
pub const APPROVE_ACTION: &str = "keycheck_approve";
/// The `action_id` of Reject on an approval request.
pub const REJECT_ACTION: &str = "keycheck_reject";
/// The `block_id` of the action buttons in the root message, as `root.hbs` writes it.
pub const ROOT_ACTIONS_BLOCK: &str = "keycheck_actions";

/// Returns one button per offered action, with the action ID as the value.
pub fn offer_buttons(offer: &Offer) -> Vec<ButtonView> {
    offer
        .actions
        .iter()
        .map(|action| ButtonView {
            text: action.label.to_string(),
            action_id: format!("{REQUEST_ACTION_PREFIX}{}", action.kind),
            value: action.id.to_string(),
            style: (action.kind == ActionKind::Deactivate).then(|| "danger".to_string()),
        })
        .collect()
}

/// Returns the note that lists the recommended actions without a button, with the reasons.
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
    pub fallback: String,
    pub heading: String,
    /// The plan, one bullet a sentence.
    pub plan: String,
    pub requested_mrkdwn: String,
    /// Approve and Reject, or none once the request is decided.
    pub buttons: Vec<ButtonView>,
    /// The decision, once made, such as `Approved by <@U…>`.
    pub decision_mrkdwn: Option<String>,
    pub footer: String,
}

impl ApprovalView {
    /// Builds the open request, with its buttons.
    pub fn open(request: &ApprovalRequest) -> ApprovalView {
        let mut view = ApprovalView::closed(&request.action, &request.plan, request.two_person_rule, String::new());
        view.buttons = vec![
            ButtonView {
                text: "Approve".to_string(),
                action_id: APPROVE_ACTION.to_string(),
                value: request.action.id.to_string(),
                style: Some("primary".to_string()),
            },
            ButtonView {
                text: "Reject".to_string(),
                action_id: REJECT_ACTION.to_string(),
                value: request.action.id.to_string(),
                style: Some("danger".to_string()),
            },
        ];
        view
    }

    /// Builds the request after its decision, without buttons.
    pub fn closed(action: &PendingAction, plan: &[String], two_person_rule: bool, decision_mrkdwn: String) -> ApprovalView {
        let label = containment::label(action.kind);
        let requester = action
            .requested_by
            .as_ref()
            .map_or_else(|| "someone".to_string(), |actor| user_mention(&actor.user_id));
        let mut requested = format!("Requested by {requester}");
        if let Some(deadline) = action.expires_at {
            requested.push_str(&format!(" · an approver has until {} UTC", deadline.format("%Y-%m-%d %H:%M")));
        }
        if two_person_rule {
            requested.push_str(" · the approver must be someone else (two-person rule)");
        }
        ApprovalView {
            fallback: format!("Approval requested: {label} {}", action.key_id),
            heading: format!("*Approval requested: {label}* for `{}`", action.key_id),
            plan: bullets(plan),
            requested_mrkdwn: requested,
            buttons: Vec::new(),
            decision_mrkdwn: (!decision_mrkdwn.is_empty()).then_some(decision_mrkdwn),
            footer: footer(action),
        }
    }
}

/// A note in the thread on what a click did: an execution's result, a failure, a
/// rejection, a dismissal, or the post-deactivation check.
#[derive(Clone, Debug, Serialize)]
pub struct ActionResultView {
    pub fallback: String,
    pub heading_mrkdwn: String,
    /// Details, one bullet a line.
    pub lines: Option<String>,
    /// For a rotation: the new access key ID, shown with `secret`.
    pub new_key: Option<String>,
    /// For a rotation: the ARN of the secret that contains the new key.
    pub secret: Option<String>,
    pub footer: String,
}

impl ActionResultView {
    /// Describes an action that ran: each change with its AWS request ID, and for a
    /// rotation the new access key ID and the secret's ARN.
    pub fn executed(execution: &Execution) -> ActionResultView {
        let action = &execution.action;
        let label = containment::label(action.kind);
        let outcome = &execution.outcome;
        let rotation = match (&outcome.new_key_id, &outcome.secret_arn) {
            (Some(key_id), Some(arn)) if action.kind == ActionKind::Rotate => Some((key_id, arn)),
            _ => None,
        };
        ActionResultView {
            fallback: format!("{label} done for {}", action.key_id),
            heading_mrkdwn: format!(
                "✅ *{label} done* for `{}`, approved by {}",
                action.key_id,
                user_mention(&execution.approved_by.user_id)
            ),
            lines: Some(bullets(&outcome.describe())),
            new_key: rotation.map(|(key_id, _)| format!("*New access key*\n`{key_id}`")),
            secret: rotation.map(|(_, arn)| format!("*Secret in Secrets Manager*\n`{arn}`")),
            footer: footer(action),
        }
    }

    /// Describes an action that failed, with the error.
    pub fn failed(failure: &ExecutionFailure) -> ActionResultView {
        let action = &failure.action;
        let label = containment::label(action.kind);
        ActionResultView {
            fallback: format!("{label} failed for {}", action.key_id),
            heading_mrkdwn: format!(
                "❌ *{label} failed* for `{}`, approved by {}",
                action.key_id,
                user_mention(&failure.approved_by.user_id)
            ),
            lines: Some(failure.error.clone()),
            new_key: None,
            secret: None,
            footer: footer(action),
        }
    }

    /// Notes a rejected request.
    pub fn rejected(action: &PendingAction, by: &Actor) -> ActionResultView {
        let label = containment::label(action.kind);
        ActionResultView {
            fallback: format!("{label} rejected for {}", action.key_id),
            heading_mrkdwn: format!(
                "🚫 *{label} rejected* for `{}` by {}: nothing was changed in AWS.",
                action.key_id,
                user_mention(&by.user_id)
            ),
            lines: None,
            new_key: None,
            secret: None,
            footer: footer(action),
        }
    }

    /// Notes a dismissed offer and the actions closed with it.
    pub fn dismissed(action: &PendingAction, by: &Actor, closed: &[ActionKind]) -> ActionResultView {
        let labels: Vec<&str> = closed.iter().map(|kind| containment::label(*kind)).collect();
        ActionResultView {
            fallback: format!("Containment of {} dismissed", action.key_id),
            heading_mrkdwn: format!(
                "👋 *Containment dismissed* for `{}` by {}: nothing was changed in AWS.",
                action.key_id,
                user_mention(&by.user_id)
            ),
            lines: (!labels.is_empty()).then(|| format!("Closed with it: {}.", labels.join(", "))),
            new_key: None,
            secret: None,
            footer: footer(action),
        }
    }

    /// Reports the post-deactivation check.
    pub fn post_check(check: &PostCheck, report: &PostCheckReport) -> ActionResultView {
        let emoji = match report.verdict {
            PostCheckVerdict::Quiet | PostCheckVerdict::KeyRejected => "✅",
            PostCheckVerdict::SessionsActive | PostCheckVerdict::KeyStillWorks => "⚠️",
        };
        ActionResultView {
            fallback: format!("Post-deactivation check of {}", check.key_id),
            heading_mrkdwn: format!("{emoji} *Post-deactivation check* of `{}`", check.key_id),
            lines: Some(report.summary()),
            new_key: None,
            secret: None,
            footer: format!("action {} · investigation {}", check.action_id, check.investigation_id),
        }
    }

    /// Reports a post-deactivation check that could not run, with `text` as the reason.
    pub fn post_check_failed(check: &PostCheck, text: &str) -> ActionResultView {
        ActionResultView {
            fallback: format!("Post-deactivation check of {} failed", check.key_id),
            heading_mrkdwn: format!("❌ *Post-deactivation check* of `{}` could not run", check.key_id),
            lines: Some(format!(
                "{text}. Run `keycheck investigate {}` to see whether the key or its sessions are still used.",
                check.key_id
            )),
            new_key: None,
            secret: None,
            footer: format!("action {} · investigation {}", check.action_id, check.investigation_id),
        }
    }
}

/// Returns `lines` as a bulleted list.
fn bullets(lines: &[String]) -> String {
    lines.iter().map(|line| format!("• {line}")).collect::<Vec<_>>().join("\n")
}

fn footer(action: &PendingAction) -> String {
    format!(
        "action {} · investigation {} · `keycheck audit --key {}` shows the audit log",
        action.id, action.investigation_id, action.key_id
    )
}

/// Returns the decision line of a closed approval request, such as `✅ Approved by <@U…>: done`.
pub fn decision(emoji: &str, verb: &str, by: &Actor, result: &str) -> String {
    format!("{emoji} {verb} by {}{}", user_mention(&by.user_id), escape_slack(result))
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
                platform: Platform::Slack,
                workspace: "T0TEST".to_string(),
                channel: "C0INCIDENT".to_string(),
            },
            Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap(),
        );
        action.state = ActionState::Requested;
        action.requested_by = Some(Actor {
            platform: Platform::Slack,
            user_id: "U0ALICE".to_string(),
            display_name: "alice".to_string(),
        });
        action.expires_at = Some(Utc.with_ymd_and_hms(2025, 3, 14, 9, 30, 0).unwrap());
        action
    }

    #[test]
    fn approval_buttons_carry_only_action_id() {
        let request = ApprovalRequest {
            action: action(ActionKind::Deactivate),
            plan: vec!["Set access key AKIAIOSFODNN7EXAMPLE to Inactive.".to_string()],
            two_person_rule: true,
        };
        let view = ApprovalView::open(&request);
        assert_eq!(view.buttons.len(), 2);
        for button in &view.buttons {
            assert_eq!(button.value, request.action.id.as_str());
        }
        assert_eq!(view.plan, "• Set access key AKIAIOSFODNN7EXAMPLE to Inactive.");
        assert!(view.requested_mrkdwn.contains("<@U0ALICE>"), "{}", view.requested_mrkdwn);
        assert!(view.requested_mrkdwn.contains("2025-03-14 09:30 UTC"), "{}", view.requested_mrkdwn);
        assert!(view.requested_mrkdwn.contains("two-person rule"), "{}", view.requested_mrkdwn);
    }

    #[test]
    fn approval_renders_within_limits() {
        let renderer = keycheck_core::render::Renderer::new();
        let request = ApprovalRequest {
            action: action(ActionKind::Rotate),
            plan: vec!["a <b> & c".to_string(); 200],
            two_person_rule: false,
        };
        let message = super::super::blocks::render(&renderer, "approval", &ApprovalView::open(&request)).unwrap();
        assert!(super::super::blocks::limit_violations(&message).is_empty());
        let text = serde_json::to_string(&message.blocks).unwrap();
        assert!(text.contains("a &lt;b&gt; &amp; c"), "{text}");
        assert!(text.contains(APPROVE_ACTION), "{text}");

        let closed = ApprovalView::closed(&request.action, &request.plan, false, "✅ Approved by <@U0BOB>".to_string());
        let message = super::super::blocks::render(&renderer, "approval", &closed).unwrap();
        let text = serde_json::to_string(&message.blocks).unwrap();
        assert!(!text.contains(APPROVE_ACTION), "a closed request keeps no buttons: {text}");
        assert!(text.contains("<@U0BOB>"), "{text}");
    }

    #[test]
    fn result_renders_rejection_and_dismissal() {
        let renderer = keycheck_core::render::Renderer::new();
        let by = Actor {
            platform: Platform::Slack,
            user_id: "U0BOB".to_string(),
            display_name: "bob".to_string(),
        };
        let rejected = ActionResultView::rejected(&action(ActionKind::Quarantine), &by);
        let message = super::super::blocks::render(&renderer, "action_result", &rejected).unwrap();
        assert_eq!(message.text, "Quarantine rejected for AKIAIOSFODNN7EXAMPLE");

        let dismissed = ActionResultView::dismissed(&action(ActionKind::Dismiss), &by, &[ActionKind::Deactivate, ActionKind::Rotate]);
        let message = super::super::blocks::render(&renderer, "action_result", &dismissed).unwrap();
        let text = serde_json::to_string(&message.blocks).unwrap();
        assert!(text.contains("Closed with it: Deactivate, Rotate."), "{text}");
    }
}
