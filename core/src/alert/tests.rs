use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::*;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SESSION_KEY: &str = "ASIAY34FZKBOKMUTVV7A";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test time is RFC 3339")
        .with_timezone(&Utc)
}

fn keys(alert: &Alert) -> Vec<&str> {
    alert.key_ids.iter().map(AccessKeyId::as_str).collect()
}

/// Recognises `text` and fails with the input when nothing is recognised.
fn recognised(text: &str) -> Alert {
    recognise(text).unwrap_or_else(|| panic!("nothing recognised in:\n{text}"))
}

fn recognised_json(value: &serde_json::Value) -> Alert {
    recognise_json(value).unwrap_or_else(|| panic!("nothing recognised in:\n{value:#}"))
}

/// Builds a GuardDuty finding in the camelCase spelling of EventBridge events.
fn guardduty_detail(key: &str) -> serde_json::Value {
    json!({
        "schemaVersion": "2.0",
        "accountId": "210987654321",
        "region": "eu-west-1",
        "id": "5cc9a1b2c3d4e5f60718293a4b5c6d7e",
        "type": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "title": "Credentials for instance role web-role used from a remote AWS account.",
        "severity": 8,
        "resource": {
            "resourceType": "AccessKey",
            "accessKeyDetails": {
                "accessKeyId": key,
                "principalId": "AROAEXAMPLEROLEID1234:i-0abc",
                "userType": "AssumedRole",
                "userName": "web-role"
            }
        },
        "service": {
            "serviceName": "guardduty",
            "eventFirstSeen": "2024-03-01T10:00:00Z",
            "eventLastSeen": "2024-03-01T12:30:00.000Z",
            "action": {
                "actionType": "AWS_API_CALL",
                "awsApiCallAction": {
                    "api": "ListBuckets",
                    "remoteIpDetails": {"ipAddressV4": "203.0.113.7"}
                }
            }
        },
        "description": "The key AKIAI44QH8DHBEXAMPLE is unrelated and only mentioned here."
    })
}

fn guardduty_event(key: &str) -> serde_json::Value {
    json!({
        "version": "0",
        "id": "7f2c8d3e-0000-4000-8000-000000000001",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": "210987654321",
        "region": "eu-west-1",
        "resources": [],
        "detail": guardduty_detail(key)
    })
}

fn assert_guardduty_fields(alert: &Alert) {
    assert_eq!(alert.source, AlertSource::GuardDuty);
    assert_eq!(keys(alert), [SESSION_KEY]);
    assert_eq!(alert.user_name.as_deref(), Some("web-role"));
    assert_eq!(
        alert.principal_id.as_deref(),
        Some("AROAEXAMPLEROLEID1234:i-0abc")
    );
    assert_eq!(alert.account_id.as_deref(), Some("210987654321"));
    assert_eq!(
        alert.finding_type.as_deref(),
        Some("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS")
    );
    assert_eq!(
        alert.finding_id.as_deref(),
        Some("5cc9a1b2c3d4e5f60718293a4b5c6d7e")
    );
    assert_eq!(alert.severity.as_deref(), Some("High (8)"));
    assert_eq!(alert.region.as_deref(), Some("eu-west-1"));
    assert_eq!(alert.first_seen, Some(time("2024-03-01T10:00:00Z")));
    assert_eq!(alert.last_seen, Some(time("2024-03-01T12:30:00Z")));
    assert_eq!(alert.source_ips, ["203.0.113.7"]);
    assert!(!alert.secret_pasted);
}

#[test]
fn guardduty_eventbridge_event_gives_every_field() {
    let alert = recognised_json(&guardduty_event(SESSION_KEY));
    assert_guardduty_fields(&alert);
    assert!(
        alert
            .title
            .as_deref()
            .is_some_and(|t| t.starts_with("Credentials for"))
    );
}

#[test]
fn guardduty_event_as_text_gives_same_alert() {
    let event = guardduty_event(SESSION_KEY);
    let from_json = recognised_json(&event);
    let from_text = recognised(&serde_json::to_string_pretty(&event).unwrap());
    assert_eq!(from_text, from_json);
}

#[test]
fn guardduty_structured_key_wins_over_text() {
    // The description names another key, but only the finding's own key counts.
    let alert = recognised_json(&guardduty_detail(SESSION_KEY));
    assert_eq!(keys(&alert), [SESSION_KEY]);
}

#[test]
fn guardduty_get_findings_output_in_pascal_case() {
    let output = json!({
        "Findings": [{
            "AccountId": "111122223333",
            "Region": "us-east-2",
            "Id": "0123456789abcdef0123456789abcdef",
            "Type": "CredentialAccess:IAMUser/AnomalousBehavior",
            "Severity": 5.5,
            "Resource": {
                "ResourceType": "AccessKey",
                "AccessKeyDetails": {"AccessKeyId": KEY, "UserName": "alice", "PrincipalId": "AIDAEXAMPLEUSERID1234"}
            },
            "Service": {
                "EventFirstSeen": "2024-01-02T03:04:05Z",
                "Action": {"AwsApiCallAction": {"RemoteIpDetails": {"IpAddressV4": "198.51.100.9"}}}
            }
        }]
    });
    let alert = recognised_json(&output);
    assert_eq!(alert.source, AlertSource::GuardDuty);
    assert_eq!(keys(&alert), [KEY]);
    assert_eq!(alert.user_name.as_deref(), Some("alice"));
    assert_eq!(alert.severity.as_deref(), Some("Medium (5.5)"));
    assert_eq!(alert.region.as_deref(), Some("us-east-2"));
    assert_eq!(alert.first_seen, Some(time("2024-01-02T03:04:05Z")));
    assert_eq!(alert.source_ips, ["198.51.100.9"]);
}

#[test]
fn guardduty_sample_placeholder_is_no_key() {
    let mut sample = guardduty_event("GeneratedFindingAccessKeyId");

    // With the key field a placeholder, a key ID written elsewhere in the finding is
    // the fallback.
    let fallback = recognised_json(&sample);
    assert_eq!(keys(&fallback), ["AKIAI44QH8DHBEXAMPLE"]);

    sample["detail"]["description"] = json!("A description without a key.");
    assert_eq!(recognise_json(&sample), None);
    assert_eq!(recognise(&sample.to_string()), None);
}

fn asff_finding(resource_id: &str) -> serde_json::Value {
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": "arn:aws:securityhub:us-west-2:210987654321:finding/0f1e2d3c",
        "ProductArn": "arn:aws:securityhub:us-west-2::product/aws/guardduty",
        "AwsAccountId": "210987654321",
        "Types": ["TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller"],
        "FirstObservedAt": "2024-05-05T05:05:05Z",
        "LastObservedAt": "2024-05-06T06:06:06Z",
        "Severity": {"Label": "HIGH", "Normalized": 70},
        "Title": "API was invoked from a known malicious IP address.",
        "ProductFields": {
            "aws/guardduty/service/action/awsApiCallAction/remoteIpDetails/ipAddressV4": "192.0.2.44",
            "aws/guardduty/service/action/networkConnectionAction/localIpDetails/ipAddressV4": "10.0.0.5"
        },
        "Resources": [
            {
                "Type": "AwsIamAccessKey",
                "Id": resource_id,
                "Region": "us-west-2",
                "Details": {"AwsIamAccessKey": {"PrincipalId": "AIDAEXAMPLEUSERID5678", "PrincipalName": "deploy-bot", "PrincipalType": "IAMUser"}}
            },
            {
                "Type": "AwsIamUser",
                "Id": "arn:aws:iam::210987654321:user/deploy-bot"
            }
        ]
    })
}

#[test]
fn security_hub_imported_event_gives_every_field() {
    let event = json!({
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "region": "us-west-2",
        "detail": {"findings": [asff_finding(&format!("AWS::IAM::AccessKey:{SESSION_KEY}"))]}
    });
    let alert = recognised_json(&event);
    assert_eq!(alert.source, AlertSource::SecurityHub);
    assert_eq!(keys(&alert), [SESSION_KEY]);

    assert_eq!(alert.user_name.as_deref(), Some("deploy-bot"));
    assert_eq!(alert.principal_id.as_deref(), Some("AIDAEXAMPLEUSERID5678"));
    assert_eq!(
        alert.principal_arn.as_deref(),
        Some("arn:aws:iam::210987654321:user/deploy-bot")
    );
    assert_eq!(alert.account_id.as_deref(), Some("210987654321"));

    assert_eq!(
        alert.finding_type.as_deref(),
        Some("TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller")
    );
    assert_eq!(
        alert.finding_id.as_deref(),
        Some("arn:aws:securityhub:us-west-2:210987654321:finding/0f1e2d3c")
    );
    assert_eq!(alert.severity.as_deref(), Some("High"));
    assert_eq!(alert.region.as_deref(), Some("us-west-2"));

    assert_eq!(alert.first_seen, Some(time("2024-05-05T05:05:05Z")));
    assert_eq!(alert.last_seen, Some(time("2024-05-06T06:06:06Z")));
    // The local address of the instance is not a remote address.
    assert_eq!(alert.source_ips, ["192.0.2.44"]);
}

#[test]
fn security_hub_key_in_details_field() {
    let mut finding = asff_finding("arn:aws:iam::210987654321:user/deploy-bot");
    finding["Resources"][0]["Details"]["AwsIamAccessKey"]["AccessKeyId"] = json!(KEY);
    let output = json!({"Findings": [finding]});
    assert_eq!(keys(&recognised_json(&output)), [KEY]);
}

#[test]
fn security_hub_null_key_is_no_key() {
    let finding = asff_finding("AWS::IAM::AccessKey:null");
    assert_eq!(recognise_json(&finding), None);
}

#[test]
fn several_findings_keep_fields_of_first() {
    let mut other = asff_finding(&format!("AWS::IAM::AccessKey:{KEY}"));
    other["Resources"][0]["Details"]["AwsIamAccessKey"]["PrincipalName"] = json!("someone-else");
    other["FirstObservedAt"] = json!("2020-01-01T00:00:00Z");
    let keyless = asff_finding("AWS::IAM::AccessKey:null");
    let page = json!({"Findings": [asff_finding(&format!("AWS::IAM::AccessKey:{SESSION_KEY}")), keyless, other]});

    let alert = recognised_json(&page);
    assert_eq!(keys(&alert), [SESSION_KEY, KEY]);
    assert_eq!(alert.user_name.as_deref(), Some("deploy-bot"));
    assert_eq!(alert.first_seen, Some(time("2024-05-05T05:05:05Z")));
}

fn health_detail(entity: &str) -> serde_json::Value {
    json!({
        "eventArn": "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_ABC123",
        "service": "RISK",
        "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
        "eventTypeCategory": "issue",
        "startTime": "Mon, 04 Mar 2024 09:15:00 GMT",
        "eventDescription": [{"language": "en_US", "latestDescription": "Your key was found on a public website."}],
        "affectedEntities": [{"entityValue": entity}]
    })
}

#[test]
fn health_event_names_exposed_key() {
    let event = json!({
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": "210987654321",
        "region": "us-east-1",
        "resources": [],
        "detail": health_detail(KEY)
    });
    let alert = recognised_json(&event);
    assert_eq!(alert.source, AlertSource::Health);
    assert_eq!(keys(&alert), [KEY]);
    assert_eq!(
        alert.finding_type.as_deref(),
        Some("AWS_RISK_CREDENTIALS_EXPOSED")
    );
    assert!(
        alert
            .finding_id
            .as_deref()
            .is_some_and(|id| id.starts_with("arn:aws:health:"))
    );
    assert_eq!(alert.account_id.as_deref(), Some("210987654321"));
    assert_eq!(alert.region.as_deref(), Some("us-east-1"));
    assert_eq!(alert.first_seen, Some(time("2024-03-04T09:15:00Z")));
}

#[test]
fn health_event_key_in_description_or_resources() {
    let mut detail = health_detail("see description");
    detail["eventDescription"][0]["latestDescription"] = json!(format!(
        "The access key {KEY} for user bob was found on GitHub."
    ));
    assert_eq!(keys(&recognised_json(&detail)), [KEY]);

    let event = json!({
        "detail-type": "AWS Health Event",
        "resources": [SESSION_KEY],
        "detail": health_detail("")
    });
    let alert = recognised_json(&event);
    assert_eq!(alert.source, AlertSource::Health);
    assert_eq!(keys(&alert), [SESSION_KEY]);
}

#[test]
fn health_api_output_shapes() {
    let entities = json!({"entities": [{
        "entityValue": KEY,
        "eventArn": "arn:aws:health:us-east-1::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/X",
        "awsAccountId": "210987654321"
    }]});
    let alert = recognised_json(&entities);
    assert_eq!(alert.source, AlertSource::Health);
    assert_eq!(alert.region.as_deref(), Some("us-east-1"));
    assert_eq!(alert.account_id.as_deref(), Some("210987654321"));

    let details = json!({"successfulSet": [{
        "event": {"arn": "arn:aws:health:us-east-1::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/X", "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED", "startTime": 1709543700.5},
        "eventDescription": {"latestDescription": format!("Access key {KEY} was exposed.")}
    }]});
    let alert = recognised_json(&details);
    assert_eq!(alert.source, AlertSource::Health);
    assert_eq!(keys(&alert), [KEY]);
    assert_eq!(alert.first_seen, Some(time("2024-03-04T09:15:00.500Z")));
}

#[test]
fn sns_envelopes_wrap_any_shape() {
    let event = guardduty_event(SESSION_KEY);
    let notification = json!({
        "Type": "Notification",
        "TopicArn": "arn:aws:sns:eu-west-1:210987654321:alerts",
        "Message": serde_json::to_string(&event).unwrap()
    });
    assert_guardduty_fields(&recognised_json(&notification));

    let lambda_records = json!({"Records": [{"EventSource": "aws:sns", "Sns": notification}]});
    assert_guardduty_fields(&recognised_json(&lambda_records));

    // SNS to SQS to Lambda: the notification is itself a string in the record's body.
    let sqs_records = json!({"Records": [{"body": serde_json::to_string(&notification).unwrap()}]});
    assert_guardduty_fields(&recognised_json(&sqs_records));
}

#[test]
fn sns_plain_text_message() {
    let notification = json!({"Type": "Notification", "Message": format!("Key {KEY} leaked in a public repository")});
    let alert = recognised_json(&notification);
    assert_eq!(alert.source, AlertSource::Text);
    assert_eq!(keys(&alert), [KEY]);
}

#[test]
fn slack_escaped_alert_in_code_fence() {
    let event = serde_json::to_string_pretty(&guardduty_event(SESSION_KEY)).unwrap();
    let escaped = event
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let message = format!("GuardDuty says:\n```\n{escaped}\n```\nplease look");
    assert_guardduty_fields(&recognised(&message));
}

#[test]
fn blockquoted_alert_parses() {
    let event = serde_json::to_string_pretty(&guardduty_event(SESSION_KEY)).unwrap();
    let quoted: String = event.lines().map(|line| format!("&gt; {line}\n")).collect();
    assert_guardduty_fields(&recognised(&quoted));
}

#[test]
fn truncated_alert_still_gives_key_and_fields() {
    // An EventBridge event as a forwarder prints it, cut off by a message size limit.
    let cut = r#"{"version":"0","id":"7f2c8d3e-0000-4000-8000-000000000001","detail-type":"GuardDuty Finding","source":"aws.guardduty","account":"210987654321","region":"eu-west-1","detail":{"schemaVersion":"2.0","accountId":"210987654321","type":"UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS","resource":{"resourceType":"AccessKey","accessKeyDetails":{"accessKeyId":"ASIAY34FZKBOKMUTVV7A","principalId":"AROAEXAMPLEROLEID1234:i-0abc","userType":"AssumedRole","userName":"web-role"}},"service":{"serviceName":"guardduty","eventFirstSeen":"2024-03-01T10:00:00Z","action":{"actionType":"AWS_API_CALL","awsApiCallAction":{"remoteIpDetails":{"ipAddr"#;
    let alert = recognised(&format!("forwarded:\n{cut}"));
    assert_eq!(alert.source, AlertSource::GuardDuty);
    assert_eq!(keys(&alert), [SESSION_KEY]);
    assert_eq!(alert.user_name.as_deref(), Some("web-role"));
    assert_eq!(
        alert.principal_id.as_deref(),
        Some("AROAEXAMPLEROLEID1234:i-0abc")
    );
    assert_eq!(alert.account_id.as_deref(), Some("210987654321"));
    assert_eq!(
        alert.finding_type.as_deref(),
        Some("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS")
    );
    assert_eq!(alert.region.as_deref(), Some("eu-west-1"));
    assert_eq!(alert.first_seen, Some(time("2024-03-01T10:00:00Z")));
    // The envelope's event ID is a UUID, not a finding ID.
    assert_eq!(alert.finding_id, None);
}

#[test]
fn plain_text_names_key() {
    let alert = recognised(&format!("please check {KEY} asap"));
    assert_eq!(alert.source, AlertSource::Text);
    assert_eq!(keys(&alert), [KEY]);
    assert!(!alert.secret_pasted);
    assert_eq!(alert.user_name, None);
}

#[test]
fn plain_text_keys_dedup_in_order() {
    let alert = recognised(&format!(
        "{SESSION_KEY}, then {KEY}, and again {SESSION_KEY}"
    ));
    assert_eq!(keys(&alert), [SESSION_KEY, KEY]);
}

#[test]
fn text_without_key_gives_none() {
    for text in [
        "",
        "hello",
        "akiaiosfodnn7example is lowercase in prose",
        "Asia and the AKIA prefix are words here",
        "AIDACKCEVSQ6C2EXAMPLE is a user ID, AROA1234567890EXAMPLE a role ID",
        "AKIAIOSFODNN7EXAMPL is one character short",
        "XAKIAIOSFODNN7EXAMPLE is glued to a letter",
        "{\"accessKeyId\": \"GeneratedFindingAccessKeyId\"}",
    ] {
        assert_eq!(recognise(text), None, "{text:?}");
    }
}

#[test]
fn key_in_slack_link_url_is_found() {
    let message = format!(
        "<https://console.aws.amazon.com/iam/home#/users/bob?accessKeyId={KEY}|open the key>"
    );
    assert_eq!(keys(&recognised(&message)), [KEY]);
}

#[test]
fn flattened_attachment_fields_are_read() {
    let message = format!(
        "*GuardDuty Finding*\nFinding Type: `Recon:IAMUser/UserPermissions`\nAccess key ID: `{KEY}`\nAccount ID: `123456789012`\nSeverity: `High`\nRegion: `us-east-1`\nFirst Seen: `2020-01-02T01:02:03Z`"
    );
    let alert = recognised(&message);
    assert_eq!(keys(&alert), [KEY]);
    assert_eq!(
        alert.finding_type.as_deref(),
        Some("Recon:IAMUser/UserPermissions")
    );
    assert_eq!(alert.account_id.as_deref(), Some("123456789012"));
    assert_eq!(alert.severity.as_deref(), Some("High"));
    assert_eq!(alert.region.as_deref(), Some("us-east-1"));
    assert_eq!(alert.first_seen, Some(time("2020-01-02T01:02:03Z")));
}

#[test]
fn prose_key_takes_context_from_quoted_sample() {
    // The quoted finding names only a placeholder, so the prose's key is the alert's,
    // and the finding supplies the type.
    let sample = serde_json::to_string(&guardduty_detail("GeneratedFindingAccessKeyId"))
        .unwrap()
        .replace("AKIAI44QH8DHBEXAMPLE", "another key");
    let alert = recognised(&format!("{KEY} looks like this finding: {sample}"));
    assert_eq!(keys(&alert), [KEY]);
    assert_eq!(alert.source, AlertSource::GuardDuty);
    assert_eq!(
        alert.finding_type.as_deref(),
        Some("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS")
    );
}

#[test]
fn cloudtrail_event_names_caller_key() {
    let event = json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEUSERID1234",
            "arn": "arn:aws:iam::210987654321:user/alice",
            "accountId": "210987654321",
            "accessKeyId": KEY,
            "userName": "alice"
        },
        "eventTime": "2024-02-02T02:02:02Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.20"
    });
    let alert = recognised_json(&event);
    assert_eq!(alert.source, AlertSource::Text);
    assert_eq!(keys(&alert), [KEY]);
    assert_eq!(
        alert.principal_arn.as_deref(),
        Some("arn:aws:iam::210987654321:user/alice")
    );
    assert_eq!(alert.user_name.as_deref(), Some("alice"));
    assert_eq!(alert.region.as_deref(), Some("us-east-1"));
    assert_eq!(alert.source_ips, ["198.51.100.20"]);
    assert_eq!(alert.first_seen, Some(time("2024-02-02T02:02:02Z")));
}

#[test]
fn secret_next_to_key_is_reported() {
    let alert = recognised(&format!("{KEY} {SECRET}"));
    assert_eq!(keys(&alert), [KEY]);
    assert!(alert.secret_pasted);

    let credentials = json!({"AccessKeyId": KEY, "SecretAccessKey": "anything-at-all"});
    assert!(recognised_json(&credentials).secret_pasted);
    assert!(recognised(&credentials.to_string()).secret_pasted);
}

#[test]
fn recognise_never_panics() {
    let deep_braces = "{".repeat(100_000);
    let deep_arrays = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let deep_object = format!("{}{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let inputs = [
        deep_braces.as_str(),
        deep_arrays.as_str(),
        deep_object.as_str(),
        "}}}}{{{{\"\\",
        "{\"Type\":\"Notification\",\"Message\":\"{\\\"Type\\\":\\\"Notification\\\",\\\"Message\\\":\\\"{\\\\\\\"a\\\\\\\":",
        "<<<|>>>&&&;;;",
        "<|>",
        "é{é\"é\\é}é",
        "\u{0}\u{1}AKIA\u{7f}",
        "\"startTime\": 1e400, \"severity\": -0.0, \"eventFirstSeen\": 99999999999999999999",
    ];
    for input in inputs {
        let _ = recognise(input);
    }

    // SNS notifications nested deeper than the embedded documents that are read.
    let mut nested = json!({"Type": "Notification", "Message": format!("key {KEY}")});
    for _ in 0..8 {
        nested = json!({"Type": "Notification", "Message": nested.to_string()});
    }
    assert_eq!(keys(&recognised_json(&nested)), [KEY]);
    let _ = recognise(&nested.to_string());
}

#[test]
fn recognise_json_handles_deep_values() {
    let mut value = json!({"accessKeyId": KEY});
    for _ in 0..100 {
        value = json!({"wrap": value});
    }
    // Deeper than the walk goes: nothing is found, and nothing panics.
    assert_eq!(recognise_json(&value), None);
}

#[test]
fn recognise_is_linear_in_input_size() {
    let pieces = [
        "{\"a\":".repeat(20_000),
        "\"accessKeyId\": \"".repeat(20_000),
        "{\"Type\":\"Notification\",\"Message\":\"".repeat(10_000),
        format!("{KEY} ").repeat(20_000),
        "detail-type: x\n".repeat(20_000),
        "<a|b>&amp;".repeat(20_000),
    ];
    for piece in &pieces {
        let started = Instant::now();
        let _ = recognise(piece);
        let elapsed = started.elapsed();
        assert!(
            elapsed.as_secs() < 5,
            "{} bytes took {elapsed:?}",
            piece.len()
        );
    }

    // Thousands of distinct keys, in prose and in JSON objects between it.
    let many_keys: String = (0..5_000)
        .map(|i| format!("AKIA{i:016} {{\"AccessKeyId\": \"ASIA{i:016}\"}} "))
        .collect();
    let started = Instant::now();
    assert_eq!(recognised(&many_keys).key_ids.len(), 10_000);
    let elapsed = started.elapsed();
    assert!(
        elapsed.as_secs() < 5,
        "{} bytes took {elapsed:?}",
        many_keys.len()
    );

    // A realistic 40 KB message: a GuardDuty event padded with a long description.
    let mut event = guardduty_event(SESSION_KEY);
    event["detail"]["description"] = json!("x".repeat(40_000));
    let started = Instant::now();
    assert_eq!(keys(&recognised(&event.to_string())), [SESSION_KEY]);
    assert!(started.elapsed().as_secs() < 2);
}

// ---------------------------------------------------------------------------------------
// Corpus of real alerts and API output written by others
// ---------------------------------------------------------------------------------------

/// Folders of the shared corpus whose files are alerts, API output or forwarded
/// messages. Every file in them must have a row in [`CORPUS_EXPECTED`].
const CORPUS_FOLDERS: [&str; 6] = [
    "awscli-examples",
    "c7n",
    "health",
    "securityhub",
    "slack-forwarding",
    "cloudwatch-logs",
];

/// Files of the `sekoia` folder that are GuardDuty findings.
const CORPUS_SEKOIA_PREFIX: &str = "sekoia/aws-guardduty__";

/// The access key IDs each corpus file names, worked out by reading the files. An
/// empty list means the file names no valid key, so `recognise` must return `None`.
const CORPUS_EXPECTED: &[(&str, &[&str])] = &[
    ("awscli-examples/cloudtrail_lookup-events.output1.json", &[]),
    ("awscli-examples/cloudtrail_lookup-events.rst", &[]),
    ("awscli-examples/guardduty_create-sample-findings.rst", &[]),
    (
        "awscli-examples/guardduty_get-findings.output1.json",
        &["ASIASZ4SI7REEEXAMPLE"],
    ),
    (
        "awscli-examples/guardduty_get-findings.rst",
        &["ASIASZ4SI7REEEXAMPLE"],
    ),
    ("awscli-examples/guardduty_list-findings.output1.txt", &[]),
    ("awscli-examples/guardduty_list-findings.output2.json", &[]),
    ("awscli-examples/guardduty_list-findings.output3.json", &[]),
    ("awscli-examples/guardduty_list-findings.rst", &[]),
    (
        "awscli-examples/health_describe-event-details.output1.json",
        &[],
    ),
    ("awscli-examples/health_describe-event-details.rst", &[]),
    ("awscli-examples/health_describe-events.output1.json", &[]),
    ("awscli-examples/health_describe-events.output2.json", &[]),
    ("awscli-examples/health_describe-events.rst", &[]),
    (
        "awscli-examples/iam_get-access-key-last-used.output1.json",
        &[],
    ),
    // The prose names the key as ABCDEXAMPLE, which is no access key ID.
    ("awscli-examples/iam_get-access-key-last-used.rst", &[]),
    // Only user, role, instance profile and policy IDs (AIDA, AROA, AIPA, ANPA).
    (
        "awscli-examples/iam_get-account-authorization-details.output1.json",
        &[],
    ),
    (
        "awscli-examples/iam_get-account-authorization-details.rst",
        &[],
    ),
    (
        "awscli-examples/iam_get-credential-report.output1.json",
        &[],
    ),
    ("awscli-examples/iam_get-credential-report.rst", &[]),
    ("awscli-examples/iam_get-user.output1.json", &[]),
    ("awscli-examples/iam_get-user.rst", &[]),
    (
        "awscli-examples/iam_list-access-keys.output1.json",
        &["AKIAIOSFODNN7EXAMPLE", "AKIAI44QH8DHBEXAMPLE"],
    ),
    (
        "awscli-examples/iam_list-access-keys.rst",
        &["AKIAIOSFODNN7EXAMPLE", "AKIAI44QH8DHBEXAMPLE"],
    ),
    (
        "awscli-examples/iam_list-attached-user-policies.output1.json",
        &[],
    ),
    ("awscli-examples/iam_list-attached-user-policies.rst", &[]),
    ("awscli-examples/iam_list-mfa-devices.output1.json", &[]),
    ("awscli-examples/iam_list-mfa-devices.rst", &[]),
    ("awscli-examples/iam_list-user-policies.output1.json", &[]),
    ("awscli-examples/iam_list-user-policies.rst", &[]),
    ("awscli-examples/securityhub_get-findings.output1.json", &[]),
    ("awscli-examples/securityhub_get-findings.output2.txt", &[]),
    ("awscli-examples/securityhub_get-findings.rst", &[]),
    ("awscli-examples/sts_get-caller-identity.output1.json", &[]),
    ("awscli-examples/sts_get-caller-identity.rst", &[]),
    ("c7n/cwe__ec2-duty-event.json", &[]),
    (
        "c7n/cwe__event-securityhub-cloudtrail-finding-action.json",
        &[],
    ),
    // The finding's resource is AWS::IAM::AccessKey:null.
    ("c7n/cwe__event-securityhub-iamkey-finding-action.json", &[]),
    (
        "c7n/placebo__test_account_credential_report__iam.GetCredentialReport_1.json",
        &[],
    ),
    (
        "c7n/placebo__test_iam_mfa_filter__iam.ListMFADevices_1.json",
        &[],
    ),
    (
        "c7n/placebo__test_iam_mfa_filter__iam.ListMFADevices_2.json",
        &[],
    ),
    (
        "c7n/placebo__test_iam_user_access_key_multi__iam.ListAccessKeys_1.json",
        &["AKIAIYJPJRH5H6NADJEA"],
    ),
    (
        "c7n/placebo__test_iam_user_unused_keys__iam.GetCredentialReport_1.json",
        &[],
    ),
    (
        "c7n/placebo__test_phd_event_mode__health.DescribeAffectedEntities_1.json",
        &[],
    ),
    (
        "c7n/placebo__test_security_hub_mode_action_insight__securityhub.GetFindings_1.json",
        &[
            "AKIAIPRJCJL6BOF6DPMA",
            "AKIAJEZJDQQX4TZNRMKQ",
            "AKIAJNQCVBXO27VWVEXQ",
            "ASIAZL6XWCR2ISQCR2PB",
        ],
    ),
    // The affected entity is the placeholder ACCESS_KEY_ID_HERE.
    (
        "health/aws-health-tools_AWS_RISK_CREDENTIALS_EXPOSED_event.json",
        &[],
    ),
    (
        "securityhub/awsdocs-guardduty-securityhub-integration.md",
        &[],
    ),
    ("securityhub/awsdocs_guardduty-to-asff_example.json", &[]),
    // GuardDuty sample findings: the key is GeneratedFindingAccessKeyId.
    (
        "sekoia/aws-guardduty__event_accesskey_apicall.raw.json",
        &[],
    ),
    (
        "sekoia/aws-guardduty__event_instance_portprobe.raw.json",
        &[],
    ),
    ("sekoia/aws-guardduty__event_s3bucket_apicall.raw.json", &[]),
    (
        "slack-forwarding/assertible-lambda-cloudwatch-slack-issue36_raw-guardduty-as-slack-text.excerpt.txt",
        &[],
    ),
    (
        "slack-forwarding/awsdocs-guardduty_findings_cloudwatch.md",
        &[],
    ),
    (
        "slack-forwarding/awsdocs_guardduty-sns-email-input-transformer.txt",
        &[],
    ),
    (
        "slack-forwarding/notify-slack/events__aws_health_event.json",
        &[],
    ),
    (
        "slack-forwarding/notify-slack/events__guardduty_finding_high.json",
        &[],
    ),
    (
        "slack-forwarding/notify-slack/events__guardduty_finding_low.json",
        &[],
    ),
    (
        "slack-forwarding/notify-slack/events__guardduty_finding_medium.json",
        &[],
    ),
    (
        "slack-forwarding/notify-slack/messages__text_message.json",
        &[],
    ),
    (
        "slack-forwarding/notify-slack/snapshots__snap_notify_slack_test.py",
        &[],
    ),
    (
        "cloudwatch-logs/awsdocs_cwl-subscription-lambda-decoded_CloudTrail.json",
        &[],
    ),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("corpus entry is readable").path();
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// Lists the corpus files this test covers, by path relative to the corpus folder.
fn corpus_files(corpus: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for folder in CORPUS_FOLDERS {
        collect_files(&corpus.join(folder), &mut files);
    }
    collect_files(&corpus.join("sekoia"), &mut files);

    let mut relative: Vec<String> = files
        .iter()
        .filter_map(|path| path.strip_prefix(corpus).ok())
        .map(|path| path.to_string_lossy().replace('\\', "/"))
        .filter(|path| !path.starts_with("sekoia/") || path.starts_with(CORPUS_SEKOIA_PREFIX))
        .collect();
    relative.sort();
    relative
}

#[test]
fn corpus_samples_give_expected_keys() {
    let corpus = corpus_dir();
    if !corpus.is_dir() {
        println!(
            "corpus not found at {}: skipping the corpus test",
            corpus.display()
        );
        return;
    }

    let expected: BTreeMap<&str, &[&str]> = CORPUS_EXPECTED.iter().copied().collect();
    assert_eq!(
        expected.len(),
        CORPUS_EXPECTED.len(),
        "a corpus file is listed twice"
    );
    let files = corpus_files(&corpus);

    let mut failures = Vec::new();
    for file in &files {
        let Some(expected_keys) = expected.get(file.as_str()) else {
            failures.push(format!("{file}: missing from CORPUS_EXPECTED"));
            continue;
        };
        let text = std::fs::read_to_string(corpus.join(file))
            .unwrap_or_else(|error| panic!("{file}: {error}"));

        let alert = recognise(&text);
        let got: Vec<&str> = alert.as_ref().map(keys).unwrap_or_default();
        if got != *expected_keys {
            failures.push(format!(
                "{file}: expected {expected_keys:?}, recognise gave {alert:#?}"
            ));
        }
        if alert.as_ref().is_some_and(|alert| alert.secret_pasted) {
            failures.push(format!(
                "{file}: secret_pasted is true, but the file holds no secret"
            ));
        }

        // A file that is one JSON document must give the same keys from recognise_json.
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
            let from_json = recognise_json(&value);
            let got_json: Vec<&str> = from_json.as_ref().map(keys).unwrap_or_default();
            if got_json != *expected_keys {
                failures.push(format!(
                    "{file}: expected {expected_keys:?}, recognise_json gave {from_json:#?}"
                ));
            }
        }
    }
    for listed in expected.keys() {
        if !files.iter().any(|file| file == listed) {
            failures.push(format!(
                "{listed}: listed in CORPUS_EXPECTED but not in the corpus"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_guardduty_finding_fields() {
    let path = corpus_dir().join("awscli-examples/guardduty_get-findings.output1.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!("corpus file {} not found: skipping", path.display());
        return;
    };
    let alert = recognised(&text);
    assert_eq!(alert.source, AlertSource::GuardDuty);
    assert_eq!(alert.user_name.as_deref(), Some("testuser"));
    assert_eq!(alert.principal_id.as_deref(), Some("AIDACKCEVSQ6C2EXAMPLE"));
    assert_eq!(alert.account_id.as_deref(), Some("111122223333"));
    assert_eq!(
        alert.finding_type.as_deref(),
        Some("Recon:IAMUser/UserPermissions")
    );
    assert_eq!(
        alert.finding_id.as_deref(),
        Some("1ab92989eaf0e742df4a014d5example")
    );
    assert_eq!(alert.severity.as_deref(), Some("Medium (5)"));
    assert_eq!(alert.region.as_deref(), Some("us-east-1"));
    assert_eq!(alert.first_seen, Some(time("2020-05-26T22:02:24Z")));
    assert_eq!(alert.last_seen, Some(time("2020-05-26T22:33:55Z")));
    assert_eq!(alert.source_ips, ["52.94.36.7"]);
}

#[test]
fn corpus_security_hub_page_fields() {
    let path = corpus_dir()
        .join("c7n/placebo__test_security_hub_mode_action_insight__securityhub.GetFindings_1.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!("corpus file {} not found: skipping", path.display());
        return;
    };
    let alert = recognised(&text);
    assert_eq!(alert.source, AlertSource::SecurityHub);
    assert_eq!(alert.user_name.as_deref(), Some("user-b1"));
    assert_eq!(alert.account_id.as_deref(), Some("644160558196"));
    assert_eq!(
        alert.finding_type.as_deref(),
        Some("TTPs/Discovery/Recon:IAMUser-ResourcePermissions")
    );
    assert_eq!(alert.severity.as_deref(), Some("Medium"));
    assert_eq!(alert.region.as_deref(), Some("us-east-1"));
    assert_eq!(alert.first_seen, Some(time("2019-06-24T16:22:59Z")));
    assert_eq!(alert.last_seen, Some(time("2019-06-24T17:46:00Z")));
    assert_eq!(alert.source_ips, ["204.63.43.36"]);
}
