//! Reduction of CloudTrail events to the one-line form reports and timelines show.

use crate::cloudtrail::Event;
use crate::report::{EvidenceItem, EventBrief};

/// Request parameters that name what a call acted on, most telling first.
const TARGET_PARAMETERS: &[&str] = &[
    "userName",
    "roleArn",
    "roleName",
    "secretId",
    "name",
    "names",
    "policyArn",
    "policyName",
    "groupName",
    "functionName",
    "trailName",
    "bucketName",
    "imageId",
    "snapshotId",
    "dBSnapshotIdentifier",
    "groupId",
    "instanceId",
    "target",
    "documentName",
    "keyId",
    "modelId",
    "resolverQueryLogConfigId",
    "path",
];

/// Reduces an event to what a timeline shows.
pub(crate) fn brief(event: &Event) -> EventBrief {
    EventBrief {
        time: event.event_time,
        call: event.call_name(),
        source: event.source_ip_address.as_ref().map(|s| s.raw.clone()),
        region: event.aws_region.clone(),
        error_code: event.error_code.clone(),
        key_id: event.access_key_id().map(str::to_string),
        event_id: event.event_id.clone(),
        target: target_of(event),
    }
}

/// Returns the resource a call acted on, from its request parameters.
pub(crate) fn target_of(event: &Event) -> Option<String> {
    let parameters = event.request_parameters.as_ref()?.as_object()?;
    for name in TARGET_PARAMETERS {
        match parameters.get(*name) {
            Some(serde_json::Value::String(value)) if !value.is_empty() => {
                return Some(value.clone());
            }
            Some(serde_json::Value::Array(values)) if !values.is_empty() => {
                let joined: Vec<String> = values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                if !joined.is_empty() {
                    return Some(joined.join(", "));
                }
            }
            _ => {}
        }
    }
    None
}

/// Returns an evidence item for an event: time, event ID and a one-line description.
pub(crate) fn evidence_item(event: &Event) -> EvidenceItem {
    let brief = brief(event);
    EvidenceItem {
        time: Some(brief.time),
        id: brief.event_id.clone(),
        text: describe(&brief),
    }
}

/// Describes a brief in one line: `iam:CreateUser backdoor from 203.0.113.7 (denied: AccessDenied)`.
pub(crate) fn describe(brief: &EventBrief) -> String {
    let mut text = brief.call.clone();
    if let Some(target) = &brief.target {
        text.push(' ');
        text.push_str(target);
    }
    if let Some(source) = &brief.source {
        text.push_str(" from ");
        text.push_str(source);
    }
    if let Some(key) = &brief.key_id {
        text.push_str(" with ");
        text.push_str(key);
    }
    if let Some(code) = &brief.error_code {
        text.push_str(" (failed: ");
        text.push_str(code);
        text.push(')');
    }
    text
}
