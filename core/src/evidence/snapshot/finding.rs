//! Parsers from the JSON that AWS security services write to keycheck's finding records:
//! GuardDuty findings, Security Hub findings in the AWS Security Finding Format (ASFF),
//! AWS Health events and IAM Access Analyzer findings.
//!
//! Each parser takes one parsed JSON value in any of the shapes that service's findings
//! arrive in: a `get-findings` response, a bare finding, an EventBridge event, or a list of
//! these. It returns every record it recognises, so the snapshot, the live source and the
//! alert reader can share the parsers. They do not filter: choosing the findings that
//! concern a key is the caller's job (`SecurityFinding::names`, `health_event_names`).

use serde_json::Value;

use super::json::{arn_resource_name, field, has_list, items, path, text, text_at, time_field};
use crate::evidence::{AnalyzerFinding, FindingSource, HealthEvent, SecurityFinding, Subject};

/// Reads GuardDuty findings from `aws guardduty get-findings` output (`{"Findings": […]}`),
/// a single finding, an EventBridge `GuardDuty Finding` event, or a list of any of these.
/// Field names are matched in either case, because EventBridge writes them in `camelCase`.
pub fn parse_guardduty(value: &Value) -> Vec<SecurityFinding> {
    let mut findings = Vec::new();
    collect_guardduty(value, &mut findings);
    findings
}

fn collect_guardduty(value: &Value, findings: &mut Vec<SecurityFinding>) {
    if let Value::Array(list) = value {
        list.iter()
            .for_each(|item| collect_guardduty(item, findings));
        return;
    }
    if has_list(value, "Findings") {
        items(field(value, "Findings")).for_each(|item| collect_guardduty(item, findings));
        return;
    }
    if eventbridge_detail_type(value).as_deref() == Some("GuardDuty Finding") {
        if let Some(detail) = field(value, "detail") {
            collect_guardduty(detail, findings);
        }
        return;
    }
    if is_guardduty_finding(value) {
        findings.push(guardduty_finding(value));
    }
}

/// Returns true for a GuardDuty finding: a type, a service section and an ID, and none of
/// the fields that only ASFF findings have.
pub(crate) fn is_guardduty_finding(value: &Value) -> bool {
    value.is_object()
        && field(value, "Type").is_some_and(Value::is_string)
        && field(value, "Service").is_some()
        && field(value, "Id").is_some()
        && field(value, "ProductArn").is_none()
}

fn guardduty_finding(finding: &Value) -> SecurityFinding {
    let key_details = path(finding, &["Resource", "AccessKeyDetails"]);
    let api_call = path(finding, &["Service", "Action", "AwsApiCallAction"]);

    let mut user_names = Vec::new();
    if let Some(details) = key_details {
        push_unique(&mut user_names, text(details, "UserName"));
        push_unique(&mut user_names, text(details, "PrincipalId"));
    }
    let mut source_ips = Vec::new();
    if let Some(call) = api_call {
        push_unique(
            &mut source_ips,
            text_at(call, &["RemoteIpDetails", "IpAddressV4"]),
        );
        push_unique(
            &mut source_ips,
            text_at(call, &["RemoteIpDetails", "IpAddressV6"]),
        );
    }
    let mut key_ids = Vec::new();
    push_unique(
        &mut key_ids,
        key_details.and_then(|d| text(d, "AccessKeyId")),
    );

    SecurityFinding {
        source: FindingSource::GuardDuty,
        id: text(finding, "Id").unwrap_or_default(),
        finding_type: text(finding, "Type").unwrap_or_default(),
        title: text(finding, "Title").unwrap_or_default(),
        severity: field(finding, "Severity")
            .and_then(guardduty_severity_value)
            .map_or_else(
                || "UNKNOWN".to_string(),
                |score| guardduty_severity_label(score).to_string(),
            ),
        first_seen: path(finding, &["Service", "EventFirstSeen"])
            .and_then(super::json::time)
            .or_else(|| time_field(finding, "CreatedAt")),
        last_seen: path(finding, &["Service", "EventLastSeen"])
            .and_then(super::json::time)
            .or_else(|| time_field(finding, "UpdatedAt")),
        account_id: text(finding, "AccountId"),
        region: text(finding, "Region"),
        key_ids,
        user_names,
        source_ips,
        api_call: api_call.and_then(|call| text(call, "Api")),
    }
}

/// Reads GuardDuty's numeric severity, which the CLI writes as a number and some
/// forwarders as a string.
fn guardduty_severity_value(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Returns the band of a GuardDuty severity score, per the GuardDuty User Guide ("Severity
/// levels of GuardDuty findings"): Low 1.0–3.9, Medium 4.0–6.9, High 7.0–8.9, Critical
/// 9.0–10.0. Scores below 1.0, which GuardDuty reserves, count as Low.
pub fn guardduty_severity_label(score: f64) -> &'static str {
    if score >= 9.0 {
        "CRITICAL"
    } else if score >= 7.0 {
        "HIGH"
    } else if score >= 4.0 {
        "MEDIUM"
    } else {
        "LOW"
    }
}

/// Reads Security Hub findings in ASFF from `aws securityhub get-findings` output
/// (`{"Findings": […]}`), a single finding, an EventBridge `Security Hub Findings - Imported`
/// (or `- Custom Action`) event, whose findings sit in `detail.findings`, or a list of these.
pub fn parse_asff(value: &Value) -> Vec<SecurityFinding> {
    let mut findings = Vec::new();
    collect_asff(value, &mut findings);
    findings
}

fn collect_asff(value: &Value, findings: &mut Vec<SecurityFinding>) {
    if let Value::Array(list) = value {
        list.iter().for_each(|item| collect_asff(item, findings));
        return;
    }
    if has_list(value, "Findings") {
        items(field(value, "Findings")).for_each(|item| collect_asff(item, findings));
        return;
    }
    if eventbridge_detail_type(value).is_some_and(|t| t.starts_with("Security Hub Findings")) {
        if let Some(detail) = field(value, "detail") {
            collect_asff(detail, findings);
        }
        return;
    }
    if is_asff_finding(value) {
        findings.push(asff_finding(value));
    }
}

/// Returns true for an ASFF finding, which always carries `ProductArn` and `AwsAccountId`.
pub(crate) fn is_asff_finding(value: &Value) -> bool {
    value.is_object()
        && value.get("ProductArn").is_some()
        && (value.get("AwsAccountId").is_some() || value.get("SchemaVersion").is_some())
}

fn asff_finding(finding: &Value) -> SecurityFinding {
    let mut key_ids = Vec::new();
    let mut user_names = Vec::new();
    let mut source_ips = Vec::new();
    let mut api_call = None;
    let mut region = text(finding, "Region");

    for resource in items(field(finding, "Resources")) {
        read_asff_resource(resource, &mut key_ids, &mut user_names);
        region = region.or_else(|| text(resource, "Region"));
    }

    // GuardDuty findings imported into Security Hub keep their details as flattened
    // ProductFields such as `action/awsApiCallAction/remoteIpDetails/ipAddressV4`, with or
    // without an `aws/guardduty/service/` prefix, so they are matched by suffix.
    if let Some(Value::Object(fields)) = field(finding, "ProductFields") {
        for (name, value) in fields {
            let Some(value) = value.as_str().filter(|v| !v.is_empty() && *v != "null") else {
                continue;
            };
            if name.ends_with("accessKeyDetails/accessKeyId") {
                push_unique(&mut key_ids, Some(value.to_string()));
            } else if name.ends_with("accessKeyDetails/userName") {
                push_unique(&mut user_names, Some(value.to_string()));
            } else if name.ends_with("awsApiCallAction/remoteIpDetails/ipAddressV4") {
                push_unique(&mut source_ips, Some(value.to_string()));
            } else if name.ends_with("awsApiCallAction/api") {
                api_call = Some(value.to_string());
            }
        }
    }

    SecurityFinding {
        source: FindingSource::SecurityHub,
        id: text(finding, "Id").unwrap_or_default(),
        finding_type: items(field(finding, "Types"))
            .next()
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_string(),
        title: text(finding, "Title").unwrap_or_default(),
        severity: asff_severity(finding),
        first_seen: time_field(finding, "FirstObservedAt")
            .or_else(|| time_field(finding, "CreatedAt")),
        last_seen: time_field(finding, "LastObservedAt")
            .or_else(|| time_field(finding, "UpdatedAt")),
        account_id: text(finding, "AwsAccountId"),
        region,
        key_ids,
        user_names,
        source_ips,
        api_call,
    }
}

/// Collects the access key IDs and user names an ASFF resource names: `AwsIamAccessKey`
/// details, `AwsIamUser` details, and resource IDs of the form `AWS::IAM::AccessKey:AKIA…`
/// (which GuardDuty writes as `AWS::IAM::AccessKey:null` when it has no key ID).
fn read_asff_resource(resource: &Value, key_ids: &mut Vec<String>, user_names: &mut Vec<String>) {
    let id = text(resource, "Id").unwrap_or_default();
    if let Some(key_id) = id.strip_prefix("AWS::IAM::AccessKey:") {
        push_unique(key_ids, Some(key_id.to_string()).filter(|k| k != "null"));
    }
    if let Some(details) = path(resource, &["Details", "AwsIamAccessKey"]) {
        push_unique(key_ids, text(details, "AccessKeyId"));
        push_unique(user_names, text(details, "UserName"));
        push_unique(user_names, text(details, "PrincipalName"));
    }
    if text(resource, "Type").as_deref() == Some("AwsIamUser") {
        let details_name = text_at(resource, &["Details", "AwsIamUser", "UserName"]);
        let arn_name = id
            .starts_with("arn:")
            .then(|| arn_resource_name(&id))
            .flatten();
        push_unique(user_names, details_name.or(arn_name));
    }
}

/// Returns the ASFF severity label: `Severity.Label`, else the label Security Hub copies
/// into `ProductFields`, else the band of `Severity.Normalized` as the ASFF reference
/// defines it (0 INFORMATIONAL, 1–39 LOW, 40–69 MEDIUM, 70–89 HIGH, 90–100 CRITICAL).
fn asff_severity(finding: &Value) -> String {
    if let Some(label) = text_at(finding, &["Severity", "Label"]) {
        return label;
    }
    if let Some(label) = text_at(finding, &["ProductFields", "aws/securityhub/SeverityLabel"]) {
        return label;
    }
    let Some(normalized) = path(finding, &["Severity", "Normalized"]).and_then(Value::as_f64)
    else {
        return "UNKNOWN".to_string();
    };
    let label = if normalized >= 90.0 {
        "CRITICAL"
    } else if normalized >= 70.0 {
        "HIGH"
    } else if normalized >= 40.0 {
        "MEDIUM"
    } else if normalized >= 1.0 {
        "LOW"
    } else {
        "INFORMATIONAL"
    };
    label.to_string()
}

/// Reads AWS Health events from `aws health describe-events` (`{"events": […]}`),
/// `describe-event-details` (`{"successfulSet": […]}`), `describe-affected-entities`
/// (`{"entities": […]}`, one partial event per entity, typed from its event ARN), an
/// EventBridge `AWS Health Event`, or a list of these. `merge_health` joins the entities
/// to their events.
pub fn parse_health(value: &Value) -> Vec<HealthEvent> {
    let mut events = Vec::new();
    collect_health(value, &mut events);
    events
}

fn collect_health(value: &Value, events: &mut Vec<HealthEvent>) {
    if let Value::Array(list) = value {
        list.iter().for_each(|item| collect_health(item, events));
        return;
    }
    if has_list(value, "events") {
        // CloudTrail `lookup-events` and CloudWatch Logs output also hold an `events` list,
        // so only entries with an event type code count.
        events.extend(
            items(field(value, "events"))
                .filter(|item| field(item, "eventTypeCode").is_some())
                .map(health_event),
        );
        return;
    }
    if has_list(value, "successfulSet") {
        for item in items(field(value, "successfulSet")) {
            let Some(event) = field(item, "event") else {
                continue;
            };
            let mut parsed = health_event(event);
            parsed.description =
                text_at(item, &["eventDescription", "latestDescription"]).and_then(first_line);
            events.push(parsed);
        }
        return;
    }
    if has_list(value, "entities") {
        events.extend(items(field(value, "entities")).filter_map(affected_entity));
        return;
    }
    if eventbridge_detail_type(value).is_some_and(|t| t.starts_with("AWS Health")) {
        if let Some(detail) = field(value, "detail") {
            let mut parsed = health_event(detail);
            parsed.account_id = parsed.account_id.or_else(|| text(value, "account"));
            events.push(parsed);
        }
        return;
    }
    if field(value, "eventTypeCode").is_some() {
        events.push(health_event(value));
    }
}

/// Reads one event as `describe-events` or an EventBridge `detail` writes it.
fn health_event(event: &Value) -> HealthEvent {
    let arn = text(event, "arn").or_else(|| text(event, "eventArn"));
    let event_type_code = text(event, "eventTypeCode")
        .or_else(|| arn.as_deref().and_then(type_code_from_arn))
        .unwrap_or_default();
    let affected_entities = items(field(event, "affectedEntities"))
        .filter_map(|entity| text(entity, "entityValue"))
        .collect();
    let description = items(field(event, "eventDescription"))
        .find_map(|d| text(d, "latestDescription"))
        .and_then(first_line);

    HealthEvent {
        event_type_code,
        arn,
        start_time: time_field(event, "startTime"),
        account_id: text(event, "affectedAccount").or_else(|| text(event, "awsAccountId")),
        affected_entities,
        description,
    }
}

/// Reads one `describe-affected-entities` entry as a partial event of its event ARN.
fn affected_entity(entity: &Value) -> Option<HealthEvent> {
    let arn = text(entity, "eventArn")?;
    Some(HealthEvent {
        event_type_code: type_code_from_arn(&arn).unwrap_or_default(),
        arn: Some(arn),
        start_time: None,
        account_id: text(entity, "awsAccountId"),
        affected_entities: text(entity, "entityValue").into_iter().collect(),
        description: None,
    })
}

/// Returns the event type code in a Health event ARN, such as `AWS_EC2_OPERATIONAL_ISSUE`
/// in `arn:aws:health:us-east-1::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/AWS_EC2_…_EXAMPLE111`.
fn type_code_from_arn(arn: &str) -> Option<String> {
    let resource = arn.split_once(":event/")?.1;
    let mut parts = resource.split('/');
    let first = parts.next()?;
    // Most ARNs read `event/SERVICE/TYPE/ID`; the published credential-exposure sample
    // reads `event/TYPE_ID`, which has no separable type.
    let code = parts.next().unwrap_or(first);
    code.starts_with("AWS_").then(|| code.to_string())
}

/// Joins partial events that share an event ARN (an event from `describe-events` and its
/// entities from `describe-affected-entities`), keeping the first value of each field and
/// every affected entity. Events without an ARN are kept as they are.
pub fn merge_health(events: Vec<HealthEvent>) -> Vec<HealthEvent> {
    let mut merged: Vec<HealthEvent> = Vec::new();
    for event in events {
        let existing = event
            .arn
            .as_ref()
            .and_then(|arn| merged.iter_mut().find(|m| m.arn.as_ref() == Some(arn)));
        let Some(existing) = existing else {
            merged.push(event);
            continue;
        };
        if existing.event_type_code.is_empty() {
            existing.event_type_code = event.event_type_code;
        }
        existing.start_time = existing.start_time.or(event.start_time);
        existing.account_id = existing.account_id.take().or(event.account_id);
        existing.description = existing.description.take().or(event.description);
        for entity in event.affected_entities {
            if !existing.affected_entities.contains(&entity) {
                existing.affected_entities.push(entity);
            }
        }
    }
    merged
}

/// Returns true when a Health event concerns the subject: an affected entity or the
/// description names the key or its owner. A credential risk event (`AWS_RISK_…`) with no
/// affected entities listed also counts, because `describe-events` output never lists
/// entities and such an event may be about this key.
pub fn health_event_names(event: &HealthEvent, subject: &Subject) -> bool {
    let key = subject.key.as_str();
    let owner = subject.owner_name.as_deref();
    let names_value = |value: &str| value == key || owner.is_some_and(|o| value == o);

    if event.affected_entities.iter().any(|e| names_value(e)) {
        return true;
    }
    if event
        .description
        .as_deref()
        .is_some_and(|d| d.contains(key))
    {
        return true;
    }
    event.event_type_code.starts_with("AWS_RISK_") && event.affected_entities.is_empty()
}

/// Reads IAM Access Analyzer findings from `aws accessanalyzer list-findings` or
/// `list-findings-v2` output (`{"findings": […]}`), an EventBridge `Access Analyzer
/// Finding` event, or a list of these. Each finding comes with the account that owns the
/// resource, when the output names it.
pub fn parse_access_analyzer(value: &Value) -> Vec<(Option<String>, AnalyzerFinding)> {
    let mut findings = Vec::new();
    collect_access_analyzer(value, &mut findings);
    findings
}

fn collect_access_analyzer(value: &Value, findings: &mut Vec<(Option<String>, AnalyzerFinding)>) {
    if let Value::Array(list) = value {
        list.iter()
            .for_each(|item| collect_access_analyzer(item, findings));
        return;
    }
    if has_list(value, "findings") {
        items(field(value, "findings")).for_each(|item| collect_access_analyzer(item, findings));
        return;
    }
    if eventbridge_detail_type(value).as_deref() == Some("Access Analyzer Finding") {
        if let Some(detail) = field(value, "detail") {
            collect_access_analyzer(detail, findings);
        }
        return;
    }
    if field(value, "resourceType").is_some() && field(value, "id").is_some() {
        findings.push((text(value, "resourceOwnerAccount"), analyzer_finding(value)));
    }
}

fn analyzer_finding(finding: &Value) -> AnalyzerFinding {
    AnalyzerFinding {
        id: text(finding, "id").unwrap_or_default(),
        resource: text(finding, "resource").unwrap_or_default(),
        resource_type: text(finding, "resourceType").unwrap_or_default(),
        principal: field(finding, "principal").and_then(principal_text),
        is_public: field(finding, "isPublic")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        actions: items(field(finding, "action"))
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        status: text(finding, "status").unwrap_or_default(),
        created: time_field(finding, "createdAt"),
    }
}

/// Writes an Access Analyzer principal map (`{"AWS": "444455556666"}`) as `AWS 444455556666`.
fn principal_text(principal: &Value) -> Option<String> {
    let Value::Object(map) = principal else {
        return super::json::value_text(principal);
    };
    let parts: Vec<String> = map
        .iter()
        .filter_map(|(kind, value)| Some(format!("{kind} {}", super::json::value_text(value)?)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Returns an EventBridge event's `detail-type`, such as `GuardDuty Finding`.
pub(crate) fn eventbridge_detail_type(value: &Value) -> Option<String> {
    value.get("detail-type")?.as_str().map(str::to_string)
}

fn first_line(text: String) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.to_string())
}

fn push_unique(list: &mut Vec<String>, value: Option<String>) {
    if let Some(value) = value
        && !list.contains(&value)
    {
        list.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subject(key: &str, owner: Option<&str>) -> Subject {
        Subject {
            key: key.parse().unwrap(),
            account_id: None,
            owner_name: owner.map(str::to_string),
            owner_arn: None,
        }
    }

    #[test]
    fn guardduty_cli_finding_fields() {
        let output = json!({"Findings": [{
            "Id": "f-1", "Type": "UnauthorizedAccess:IAMUser/MaliciousIPCaller",
            "Title": "API called from a known malicious IP", "Severity": 8.1,
            "AccountId": "111122223333", "Region": "eu-west-1",
            "CreatedAt": "2024-05-01T09:00:00Z",
            "Resource": {"ResourceType": "AccessKey", "AccessKeyDetails": {
                "AccessKeyId": "AKIAQWERTYUIOPASDFGH", "UserName": "deploy-bot",
                "PrincipalId": "AIDAQWERTYUIOPEXAMPLE"}},
            "Service": {"EventFirstSeen": "2024-05-01T10:00:00Z", "EventLastSeen": "2024-05-01T11:00:00Z",
                "Action": {"ActionType": "AWS_API_CALL", "AwsApiCallAction": {
                    "Api": "ListBuckets", "RemoteIpDetails": {"IpAddressV4": "203.0.113.9"}}}}
        }]});
        let findings = parse_guardduty(&output);
        assert_eq!(findings.len(), 1);
        let finding = &findings[0];
        assert_eq!(finding.source, FindingSource::GuardDuty);
        assert_eq!(finding.severity, "HIGH");
        assert_eq!(finding.key_ids, ["AKIAQWERTYUIOPASDFGH"]);
        assert_eq!(finding.user_names, ["deploy-bot", "AIDAQWERTYUIOPEXAMPLE"]);
        assert_eq!(finding.source_ips, ["203.0.113.9"]);
        assert_eq!(finding.api_call.as_deref(), Some("ListBuckets"));
        assert_eq!(
            finding.first_seen.unwrap().to_rfc3339(),
            "2024-05-01T10:00:00+00:00"
        );
        assert_eq!(
            finding.last_seen.unwrap().to_rfc3339(),
            "2024-05-01T11:00:00+00:00"
        );
        assert_eq!(finding.account_id.as_deref(), Some("111122223333"));
    }

    #[test]
    fn guardduty_eventbridge_camel_case() {
        let event = json!({"detail-type": "GuardDuty Finding", "source": "aws.guardduty",
            "detail": {"id": "f-2", "type": "CredentialAccess:IAMUser/AnomalousBehavior",
                "title": "t", "severity": 5, "accountId": "111122223333",
                "resource": {"accessKeyDetails": {"accessKeyId": "ASIAQWERTYUIOPASDFGH", "userName": "ops"}},
                "service": {"eventFirstSeen": "2024-05-02T00:00:00Z"}}});
        let findings = parse_guardduty(&event);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, "MEDIUM");
        assert_eq!(findings[0].key_ids, ["ASIAQWERTYUIOPASDFGH"]);
        assert_eq!(findings[0].user_names, ["ops"]);
    }

    #[test]
    fn guardduty_severity_bands() {
        for (score, label) in [
            (0.5, "LOW"),
            (3.9, "LOW"),
            (4.0, "MEDIUM"),
            (6.9, "MEDIUM"),
            (7.0, "HIGH"),
            (8.9, "HIGH"),
            (9.0, "CRITICAL"),
            (10.0, "CRITICAL"),
        ] {
            assert_eq!(guardduty_severity_label(score), label, "score {score}");
        }
    }

    #[test]
    fn guardduty_parser_skips_asff() {
        let asff = json!({"Findings": [{"SchemaVersion": "2018-10-08", "Id": "x", "ProductArn": "p",
            "AwsAccountId": "111122223333", "Types": ["T"], "Title": "t"}]});
        assert!(parse_guardduty(&asff).is_empty());
    }

    #[test]
    fn asff_resources_and_product_fields() {
        let output = json!({"Findings": [{
            "SchemaVersion": "2018-10-08", "Id": "arn:finding/1", "ProductArn": "arn:product/aws/guardduty",
            "AwsAccountId": "111122223333", "Types": ["TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller"],
            "Title": "Malicious caller", "Severity": {"Normalized": 70},
            "CreatedAt": "2024-05-01T09:00:00Z", "UpdatedAt": "2024-05-01T12:00:00Z",
            "ProductFields": {
                "aws/guardduty/service/action/awsApiCallAction/api": "GetCallerIdentity",
                "aws/guardduty/service/action/awsApiCallAction/remoteIpDetails/ipAddressV4": "198.51.100.4"},
            "Resources": [
                {"Type": "AwsIamAccessKey", "Id": "AWS::IAM::AccessKey:AKIAQWERTYUIOPASDFGH", "Region": "us-east-2",
                 "Details": {"AwsIamAccessKey": {"PrincipalName": "deploy-bot"}}},
                {"Type": "AwsIamUser", "Id": "arn:aws:iam::111122223333:user/ci/builder"}]
        }]});
        let findings = parse_asff(&output);
        assert_eq!(findings.len(), 1);
        let finding = &findings[0];
        assert_eq!(finding.source, FindingSource::SecurityHub);
        assert_eq!(finding.severity, "HIGH");
        assert_eq!(
            finding.finding_type,
            "TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller"
        );
        assert_eq!(finding.key_ids, ["AKIAQWERTYUIOPASDFGH"]);
        assert_eq!(finding.user_names, ["deploy-bot", "builder"]);
        assert_eq!(finding.source_ips, ["198.51.100.4"]);
        assert_eq!(finding.api_call.as_deref(), Some("GetCallerIdentity"));
        assert_eq!(finding.region.as_deref(), Some("us-east-2"));
        assert_eq!(
            finding.first_seen.unwrap().to_rfc3339(),
            "2024-05-01T09:00:00+00:00"
        );
    }

    #[test]
    fn asff_eventbridge_and_null_key() {
        let event = json!({"detail-type": "Security Hub Findings - Imported", "detail": {"findings": [{
            "SchemaVersion": "2018-10-08", "Id": "f", "ProductArn": "p", "AwsAccountId": "111122223333",
            "Types": ["T"], "Title": "t", "Severity": {"Label": "MEDIUM"},
            "Resources": [{"Type": "AwsIamAccessKey", "Id": "AWS::IAM::AccessKey:null",
                           "Details": {"AwsIamAccessKey": {"UserName": "ops"}}}]}]}});
        let findings = parse_asff(&event);
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].key_ids.is_empty(),
            "the literal null is not a key ID"
        );
        assert_eq!(findings[0].user_names, ["ops"]);
        assert_eq!(findings[0].severity, "MEDIUM");
    }

    #[test]
    fn health_entities_merge_into_events() {
        let arn = "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_ABC";
        let described = json!({"events": [{"arn": arn, "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
                                           "startTime": 1714557600.0}]});
        let entities = json!({"entities": [{"eventArn": arn, "entityValue": "AKIAQWERTYUIOPASDFGH",
                                            "awsAccountId": "111122223333"}]});
        let mut events = parse_health(&described);
        events.extend(parse_health(&entities));
        let merged = merge_health(events);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].event_type_code, "AWS_RISK_CREDENTIALS_EXPOSED");
        assert_eq!(merged[0].affected_entities, ["AKIAQWERTYUIOPASDFGH"]);
        assert_eq!(merged[0].account_id.as_deref(), Some("111122223333"));
        assert_eq!(
            merged[0].start_time.unwrap().to_rfc3339(),
            "2024-05-01T10:00:00+00:00"
        );
    }

    #[test]
    fn health_eventbridge_event() {
        let event = json!({"detail-type": "AWS Health Event", "account": "111122223333",
            "detail": {"eventArn": "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/X",
                "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED", "startTime": "Wed, 01 May 2024 10:00:00 GMT",
                "eventDescription": [{"language": "en_US", "latestDescription": "\nYour key was found online.\nMore."}],
                "affectedEntities": [{"entityValue": "AKIAQWERTYUIOPASDFGH"}]}});
        let events = parse_health(&event);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].account_id.as_deref(), Some("111122223333"));
        assert_eq!(
            events[0].description.as_deref(),
            Some("Your key was found online.")
        );
        assert_eq!(events[0].affected_entities, ["AKIAQWERTYUIOPASDFGH"]);
    }

    #[test]
    fn health_event_names_cases() {
        let mut event = HealthEvent {
            event_type_code: "AWS_EC2_OPERATIONAL_ISSUE".into(),
            arn: None,
            start_time: None,
            account_id: None,
            affected_entities: vec!["i-0abc".into()],
            description: None,
        };
        let key = "AKIAQWERTYUIOPASDFGH";
        assert!(!health_event_names(&event, &subject(key, None)));
        event.affected_entities.push(key.into());
        assert!(health_event_names(&event, &subject(key, None)));

        let risk = HealthEvent {
            event_type_code: "AWS_RISK_CREDENTIALS_EXPOSED".into(),
            affected_entities: Vec::new(),
            ..event.clone()
        };
        assert!(
            health_event_names(&risk, &subject(key, None)),
            "risk event without entities"
        );
        let other_key = HealthEvent {
            affected_entities: vec!["AKIAOTHEROTHEROTHER1".into()],
            ..risk
        };
        assert!(
            !health_event_names(&other_key, &subject(key, None)),
            "risk event about another key"
        );
    }

    #[test]
    fn access_analyzer_list_findings() {
        let output = json!({"findings": [{
            "id": "a-1", "principal": {"AWS": "444455556666"}, "action": ["s3:GetObject"],
            "resource": "arn:aws:s3:::reports", "isPublic": false, "resourceType": "AWS::S3::Bucket",
            "status": "ACTIVE", "createdAt": "2024-05-01T10:00:00Z", "resourceOwnerAccount": "111122223333"}]});
        let findings = parse_access_analyzer(&output);
        assert_eq!(findings.len(), 1);
        let (owner, finding) = &findings[0];
        assert_eq!(owner.as_deref(), Some("111122223333"));
        assert_eq!(finding.principal.as_deref(), Some("AWS 444455556666"));
        assert_eq!(finding.actions, ["s3:GetObject"]);
        assert_eq!(finding.status, "ACTIVE");
    }
}
