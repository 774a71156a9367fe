//! Classification of one JSON document by its fields, and the quick check on a file's
//! first bytes that recognises CloudTrail without parsing the file.

use serde_json::Value;

use super::collected::FORMAT_FIELD;
use super::finding::{eventbridge_detail_type, is_asff_finding, is_guardduty_finding};
use super::inventory::FileKind;
use super::json::{field, has_list, items};
use super::storage::is_storage_output;

/// Returns true when a file's first bytes show CloudTrail events: `eventVersion` (bare,
/// or escaped inside `lookup-events` and CloudWatch Logs messages) or a `CloudTrailEvent`
/// field. A `Records` list alone is not enough, because SNS and S3 notifications to Lambda
/// use one too (with `EventVersion` capitalised, for SNS).
pub(super) fn is_cloudtrail_head(head: &[u8]) -> bool {
    let finder = |needle: &[u8]| memchr::memmem::find(head, needle).is_some();
    finder(b"eventVersion") || finder(b"\"CloudTrailEvent\"")
}

pub(super) fn is_digest_head(head: &[u8]) -> bool {
    memchr::memmem::find(head, b"\"digestStartTime\"").is_some()
        || memchr::memmem::find(head, b"\"digestPublicKeyFingerprint\"").is_some()
}

/// Class of one JSON document.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Class {
    Kind(FileKind),
    Digest,
}

/// Classifies one JSON document by its fields. The folder name (`guardduty/`,
/// `securityhub/`, `health/`, `access-analyzer/`) only breaks the tie for an empty list
/// of findings or events, whose fields alone do not say which service wrote it.
pub(super) fn classify(document: &Value, label: &str) -> Option<Class> {
    let kind = |kind| Some(Class::Kind(kind));
    let object = document.as_object()?;
    let has = |name: &str| field(document, name).is_some();

    // keycheck's own evidence file also has a `collected_at` field, so it goes first.
    if object.contains_key(FORMAT_FIELD) {
        return kind(FileKind::CollectedEvidence);
    }
    if ["collected_at", "key_id", "window_start", "window_end"]
        .iter()
        .any(|k| object.contains_key(*k))
    {
        return kind(FileKind::Metadata);
    }
    if let Some(detail_type) = eventbridge_detail_type(document) {
        return classify_eventbridge(&detail_type).map(Class::Kind);
    }
    if has("digestStartTime") || has("digestPublicKeyFingerprint") {
        return Some(Class::Digest);
    }
    if is_cloudtrail_document(document) {
        return kind(FileKind::CloudTrail);
    }
    if has("UserDetailList") || has("GroupDetailList") || has("RoleDetailList") {
        return kind(FileKind::AuthorizationDetails);
    }
    if object.contains_key("Content") || object.contains_key("ReportFormat") {
        return kind(FileKind::CredentialReport);
    }
    for (field_name, file_kind) in [
        ("AccessKeyMetadata", FileKind::AccessKeys),
        ("AccessKeyLastUsed", FileKind::AccessKeyLastUsed),
        ("MFADevices", FileKind::MfaDevices),
        ("LoginProfile", FileKind::LoginProfile),
    ] {
        if object.contains_key(field_name) {
            return kind(file_kind);
        }
    }
    if let Some(findings) = object.get("Findings").and_then(Value::as_array) {
        return classify_findings(findings, label).map(Class::Kind);
    }
    if is_asff_finding(document) {
        return kind(FileKind::SecurityHub);
    }
    if is_guardduty_finding(document) {
        return kind(FileKind::GuardDuty);
    }
    if is_health_document(document, label) {
        return kind(FileKind::Health);
    }
    if is_access_analyzer_document(document, label) {
        return kind(FileKind::AccessAnalyzer);
    }
    if is_storage_output(document) {
        return kind(FileKind::Storage);
    }
    None
}

fn classify_eventbridge(detail_type: &str) -> Option<FileKind> {
    if detail_type.contains("via CloudTrail") {
        return Some(FileKind::CloudTrail);
    }
    match detail_type {
        "GuardDuty Finding" => Some(FileKind::GuardDuty),
        "Access Analyzer Finding" => Some(FileKind::AccessAnalyzer),
        t if t.starts_with("Security Hub Findings") => Some(FileKind::SecurityHub),
        t if t.starts_with("AWS Health") => Some(FileKind::Health),
        _ => None,
    }
}

/// Recognises the CloudTrail shapes whose first kilobytes did not already show it.
fn is_cloudtrail_document(document: &Value) -> bool {
    let has = |name: &str| document.get(name).is_some();
    if has("eventVersion") || (has("eventName") && has("eventSource") && has("eventTime")) {
        return true;
    }
    // A CloudTrail log file from S3, which may list no records at all.
    if let Some(records) = document.get("Records").and_then(Value::as_array) {
        return records.is_empty() || records.iter().any(|r| r.get("eventTime").is_some());
    }
    // `aws cloudtrail lookup-events` output.
    let lookup = items(document.get("Events")).any(|e| e.get("CloudTrailEvent").is_some());
    // CloudWatch Logs: a subscription payload, or `filter-log-events` output.
    let logs = document.get("logEvents").is_some_and(Value::is_array)
        || items(document.get("events")).any(|e| e.get("message").is_some());
    lookup || logs
}

fn classify_findings(findings: &[Value], label: &str) -> Option<FileKind> {
    if findings.iter().any(is_asff_finding) {
        return Some(FileKind::SecurityHub);
    }
    if findings.iter().any(is_guardduty_finding) {
        return Some(FileKind::GuardDuty);
    }
    let label = label.to_ascii_lowercase();
    if findings.is_empty() && label.contains("guardduty") {
        return Some(FileKind::GuardDuty);
    }
    if findings.is_empty() && (label.contains("securityhub") || label.contains("security-hub")) {
        return Some(FileKind::SecurityHub);
    }
    None
}

fn is_health_document(document: &Value, label: &str) -> bool {
    if field(document, "eventTypeCode").is_some() || has_list(document, "successfulSet") {
        return true;
    }
    if items(field(document, "entities")).any(|e| field(e, "entityValue").is_some()) {
        return true;
    }
    let events: Vec<&Value> = items(document.get("events")).collect();
    if events.iter().any(|e| field(e, "eventTypeCode").is_some()) {
        return true;
    }
    let is_empty_list = has_list(document, "events") || has_list(document, "entities");
    is_empty_list && events.is_empty() && label.to_ascii_lowercase().contains("health")
}

fn is_access_analyzer_document(document: &Value, label: &str) -> bool {
    let Some(findings) = document.get("findings").and_then(Value::as_array) else {
        return false;
    };
    if findings.iter().any(|f| f.get("resourceType").is_some()) {
        return true;
    }
    let label = label.to_ascii_lowercase();
    findings.is_empty() && (label.contains("access-analyzer") || label.contains("accessanalyzer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classify_by_fields() {
        let cases = [
            (
                json!({"collected_at": "2024-05-01T00:00:00Z"}),
                Class::Kind(FileKind::Metadata),
            ),
            (
                json!({"keycheck_evidence": 1, "collected_at": "2024-05-01T00:00:00Z"}),
                Class::Kind(FileKind::CollectedEvidence),
            ),
            (json!({"Records": []}), Class::Kind(FileKind::CloudTrail)),
            (
                json!({"detail-type": "AWS API Call via CloudTrail", "detail": {}}),
                Class::Kind(FileKind::CloudTrail),
            ),
            (
                json!({"Events": [{"CloudTrailEvent": "{}"}]}),
                Class::Kind(FileKind::CloudTrail),
            ),
            (
                json!({"events": [{"message": "{}", "timestamp": 1}]}),
                Class::Kind(FileKind::CloudTrail),
            ),
            (json!({"digestStartTime": "x"}), Class::Digest),
            (
                json!({"UserDetailList": []}),
                Class::Kind(FileKind::AuthorizationDetails),
            ),
            (
                json!({"Content": "x", "ReportFormat": "text/csv"}),
                Class::Kind(FileKind::CredentialReport),
            ),
            (
                json!({"AccessKeyMetadata": []}),
                Class::Kind(FileKind::AccessKeys),
            ),
            (
                json!({"AccessKeyLastUsed": {}}),
                Class::Kind(FileKind::AccessKeyLastUsed),
            ),
            (json!({"MFADevices": []}), Class::Kind(FileKind::MfaDevices)),
            (
                json!({"LoginProfile": {}}),
                Class::Kind(FileKind::LoginProfile),
            ),
            (
                json!({"detail-type": "GuardDuty Finding", "detail": {}}),
                Class::Kind(FileKind::GuardDuty),
            ),
            (
                json!({"detail-type": "Security Hub Findings - Imported"}),
                Class::Kind(FileKind::SecurityHub),
            ),
            (
                json!({"detail-type": "AWS Health Event"}),
                Class::Kind(FileKind::Health),
            ),
            (
                json!({"Findings": [{"Id": "x", "Type": "T", "Service": {}}]}),
                Class::Kind(FileKind::GuardDuty),
            ),
            (
                json!({"Findings": [{"ProductArn": "p", "AwsAccountId": "1"}]}),
                Class::Kind(FileKind::SecurityHub),
            ),
            (
                json!({"events": [{"eventTypeCode": "AWS_X", "arn": "a"}]}),
                Class::Kind(FileKind::Health),
            ),
            (json!({"successfulSet": []}), Class::Kind(FileKind::Health)),
            (
                json!({"entities": [{"entityValue": "x", "eventArn": "a"}]}),
                Class::Kind(FileKind::Health),
            ),
            (
                json!({"findings": [{"id": "x", "resourceType": "AWS::S3::Bucket"}]}),
                Class::Kind(FileKind::AccessAnalyzer),
            ),
            (json!({"SecretList": []}), Class::Kind(FileKind::Storage)),
            (
                json!({"taskDefinition": {"family": "web"}}),
                Class::Kind(FileKind::Storage),
            ),
        ];
        for (document, expected) in cases {
            assert_eq!(
                classify(&document, "any.json"),
                Some(expected),
                "document {document}"
            );
        }
        assert_eq!(
            classify(&json!({"UserId": "x", "Account": "1"}), "any.json"),
            None
        );
        assert_eq!(
            classify(&json!({"projects": ["name-only"]}), "any.json"),
            None
        );
        let sns =
            json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": {}}]});
        assert_eq!(classify(&sns, "any.json"), None);
    }

    #[test]
    fn empty_lists_need_folder_hint() {
        let empty = json!({"Findings": []});
        assert_eq!(classify(&empty, "exports/findings.json"), None);
        assert_eq!(
            classify(&empty, "guardduty/findings.json"),
            Some(Class::Kind(FileKind::GuardDuty))
        );
        assert_eq!(
            classify(&empty, "securityhub/all.json"),
            Some(Class::Kind(FileKind::SecurityHub))
        );
        let empty_events = json!({"events": []});
        assert_eq!(classify(&empty_events, "x/events.json"), None);
        assert_eq!(
            classify(&empty_events, "health/events.json"),
            Some(Class::Kind(FileKind::Health))
        );
    }

    #[test]
    fn cloudtrail_head_markers() {
        assert!(is_cloudtrail_head(br#"{"Records":[{"eventVersion":"1.08""#));
        assert!(is_cloudtrail_head(
            br#"{"Events":[{"EventId":"x","CloudTrailEvent":"{\"eventVersion\""#
        ));
        assert!(!is_cloudtrail_head(
            br#"{"Findings":[{"SchemaVersion":"2.0""#
        ));
        assert!(!is_cloudtrail_head(
            br#"{"Records":[{"EventSource":"aws:sns","EventVersion":"1.0""#
        ));
    }
}
