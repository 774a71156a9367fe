//! Tests of `LiveEvidence` against recorded responses (`aws-smithy-mocks`), for what the
//! moto emulator lacks or gets wrong: GuardDuty findings, the Logs Insights query text,
//! Security Hub filters, `FilterLogEvents` pagination with near-misses, error mapping, and
//! the `LookupEvents` fallback.
//!
//! Every client gets static test credentials and the mock HTTP client, so no test reaches
//! the network, the environment's credentials or an instance metadata address. A request
//! that no rule matches panics inside the SDK call and fails the test with its input.

use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use chrono::{DateTime, Utc};

use super::clients::static_config;
use super::error::aws_error;
use super::operations::IAM_GET_USER;
use super::*;
use crate::evidence::{
    AwsErrorKind, FindingSource, KeyLocationKind, KeyStatus, PolicyAttachment, Window,
};

const ACCOUNT: &str = "111122223333";
const KEY: &str = "AKIAQWERTYUIOPASDFGH";
const OTHER_KEY: &str = "AKIAQWERTYUIOPASDFGX";
const SESSION: &str = "ASIAQWERTYUIOPSESSNA";
const OWNER_ARN: &str = "arn:aws:iam::111122223333:user/alice";

fn key() -> AccessKeyId {
    KEY.parse().unwrap()
}

fn subject() -> Subject {
    Subject {
        key: key(),
        account_id: Some(ACCOUNT.to_string()),
        owner_name: Some("alice".to_string()),
        owner_arn: Some(OWNER_ARN.to_string()),
    }
}

/// Settings for tests: home region us-east-1, one attempt per call.
fn settings() -> LiveConfig {
    LiveConfig {
        region: Some("us-east-1".to_string()),
        max_attempts: 1,
        ..LiveConfig::default()
    }
}

/// Builds a live source whose every client responds from `rules`, plus keycheck's own
/// identity in `ACCOUNT`.
fn live(config: LiveConfig, rules: &[&Rule]) -> LiveEvidence {
    let mut interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(&caller_rule());
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let credentials = Credentials::new("AKIDTEST", "test-secret", None, None, "test");
    let sdk_config = static_config(&config, credentials)
        .to_builder()
        .http_client(create_mock_http_client())
        .build();
    LiveEvidence::with_sdk_config(
        config,
        "kc-test",
        sdk_config,
        vec![SharedInterceptor::new(interceptor)],
    )
}

/// Returns mock rules that give an empty result for every IAM read that `user` sends
/// besides `GetUser`. Tests about `GetUser` alone need them because `user` sends those
/// reads concurrently with `GetUser`, so each one needs a response.
fn empty_user_reads() -> Vec<Rule> {
    use aws_sdk_iam::operation::get_login_profile::GetLoginProfileError;
    use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
    use aws_sdk_iam::operation::list_attached_user_policies::ListAttachedUserPoliciesOutput;
    use aws_sdk_iam::operation::list_groups_for_user::ListGroupsForUserOutput;
    use aws_sdk_iam::operation::list_mfa_devices::ListMfaDevicesOutput;
    use aws_sdk_iam::operation::list_user_policies::ListUserPoliciesOutput;
    use aws_sdk_iam::operation::list_user_tags::ListUserTagsOutput;

    vec![
        mock!(aws_sdk_iam::Client::list_mfa_devices)
            .then_output(|| ListMfaDevicesOutput::builder().set_mfa_devices(Some(vec![])).build().unwrap()),
        mock!(aws_sdk_iam::Client::get_login_profile).then_error(|| {
            GetLoginProfileError::generic(error_metadata("NoSuchEntity", "Login Profile for User alice cannot be found."))
        }),
        mock!(aws_sdk_iam::Client::list_groups_for_user)
            .then_output(|| ListGroupsForUserOutput::builder().set_groups(Some(vec![])).build().unwrap()),
        mock!(aws_sdk_iam::Client::list_user_tags)
            .then_output(|| ListUserTagsOutput::builder().set_tags(Some(vec![])).build().unwrap()),
        mock!(aws_sdk_iam::Client::list_user_policies)
            .then_output(|| ListUserPoliciesOutput::builder().set_policy_names(Some(vec![])).build().unwrap()),
        mock!(aws_sdk_iam::Client::list_attached_user_policies)
            .then_output(|| ListAttachedUserPoliciesOutput::builder().build()),
        mock!(aws_sdk_iam::Client::list_access_keys)
            .then_output(|| ListAccessKeysOutput::builder().set_access_key_metadata(Some(vec![])).build().unwrap()),
    ]
}

fn caller_rule() -> Rule {
    mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
            .account(ACCOUNT)
            .arn("arn:aws:iam::111122223333:user/keycheck")
            .user_id("AIDAKEYCHECK")
            .build()
    })
}

/// Fails when the source called an operation that `OPERATIONS` lacks.
fn assert_operations_listed(evidence: &LiveEvidence) {
    let unlisted = evidence.call_stats().unlisted();
    assert!(
        unlisted.is_empty(),
        "operations called but missing from OPERATIONS: {unlisted:?}"
    );
}

fn error_metadata(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn time(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// Returns a CloudTrail event as the JSON text that CloudWatch Logs and `LookupEvents` carry.
fn trail_event(id: &str, at: &str, name: &str, key_id: &str, extra: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventID":"{id}","eventTime":"{at}","eventSource":"sts.amazonaws.com",
            "eventName":"{name}","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.7",
            "userIdentity":{{"type":"IAMUser","accessKeyId":"{key_id}","arn":"arn:aws:iam::111122223333:user/someone"}}{extra}}}"#
    )
}

fn event_ids(set: &EventSet) -> Vec<&str> {
    set.events
        .iter()
        .filter_map(|e| e.event_id.as_deref())
        .collect()
}

fn fixed_query() -> EventQuery {
    let mut query = EventQuery::new(key());
    query.owner_arn = Some(OWNER_ARN.to_string());
    query.window = Some(Window {
        start: time("2024-05-01T00:00:00Z"),
        end: time("2024-05-01T12:00:00Z"),
    });
    query
}

// ---------------------------------------------------------------------------------------
// GuardDuty

fn guardduty_finding(id: &str, key_id: &str, user: &str) -> aws_sdk_guardduty::types::Finding {
    use aws_sdk_guardduty::types::{AccessKeyDetails, Finding, Resource, Service};
    Finding::builder()
        .id(id)
        .r#type("UnauthorizedAccess:IAMUser/MaliciousIPCaller")
        .title("API called from a known malicious IP")
        .severity(8.0)
        .account_id(ACCOUNT)
        .region("us-east-1")
        .created_at("2024-05-01T10:00:00Z")
        .resource(
            Resource::builder()
                .resource_type("AccessKey")
                .access_key_details(
                    AccessKeyDetails::builder()
                        .access_key_id(key_id)
                        .user_name(user)
                        .build(),
                )
                .build(),
        )
        .service(
            Service::builder()
                .event_first_seen("2024-05-01T09:30:00Z")
                .build(),
        )
        .build()
}

#[tokio::test]
async fn guardduty_criteria_name_key_and_owner() {
    use aws_sdk_guardduty::operation::get_findings::GetFindingsOutput;
    use aws_sdk_guardduty::operation::list_detectors::ListDetectorsOutput;
    use aws_sdk_guardduty::operation::list_findings::{ListFindingsInput, ListFindingsOutput};

    let sent: Arc<Mutex<Vec<ListFindingsInput>>> = Arc::default();
    let detectors = mock!(aws_sdk_guardduty::Client::list_detectors)
        .then_output(|| ListDetectorsOutput::builder().detector_ids("det-1").build());
    let recorded = Arc::clone(&sent);
    let list = mock!(aws_sdk_guardduty::Client::list_findings).then_compute_output(move |input| {
        recorded.lock().unwrap().push(input.clone());
        ListFindingsOutput::builder()
            .finding_ids("f-own")
            .finding_ids("f-other")
            .build()
    });
    let get = mock!(aws_sdk_guardduty::Client::get_findings)
        .match_requests(|input| input.detector_id() == Some("det-1"))
        .then_output(|| {
            GetFindingsOutput::builder()
                .findings(guardduty_finding("f-own", KEY, "alice"))
                .findings(guardduty_finding("f-other", OTHER_KEY, "alice"))
                .build()
        });
    let evidence = live(settings(), &[&detectors, &list, &get]);

    let findings = evidence
        .guardduty_findings(&subject())
        .await
        .expect("findings")
        .found;

    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 2, "one request per criterion");
    let key_criterion = sent[0].finding_criteria().unwrap().criterion().unwrap();
    let key_condition = &key_criterion["resource.accessKeyDetails.accessKeyId"];
    assert_eq!(key_condition.equals(), [KEY], "sent: {:?}", sent[0]);
    let user_criterion = sent[1].finding_criteria().unwrap().criterion().unwrap();
    assert_eq!(
        user_criterion["resource.accessKeyDetails.userName"].equals(),
        ["alice"]
    );
    assert_eq!(sent[0].detector_id(), Some("det-1"));

    let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        ["f-own"],
        "the finding about another key of the owner is dropped"
    );
    assert_eq!(findings[0].source, FindingSource::GuardDuty);
    assert_eq!(findings[0].severity, "HIGH");
    assert_eq!(findings[0].key_ids, [KEY]);
    assert_eq!(get.num_calls(), 1, "both IDs fit one GetFindings batch");
    assert_operations_listed(&evidence);
}

#[tokio::test]
async fn guardduty_missing_findings_api_is_not_available() {
    use aws_sdk_guardduty::operation::list_detectors::ListDetectorsOutput;

    let detectors = mock!(aws_sdk_guardduty::Client::list_detectors)
        .then_output(|| ListDetectorsOutput::builder().detector_ids("det-1").build());
    // moto 5.2.5 returns 404 with no error code for the GuardDuty findings API.
    let list = mock!(aws_sdk_guardduty::Client::list_findings).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(404).unwrap(),
            SdkBody::from("<html>Not Found</html>"),
        )
    });
    let evidence = live(settings(), &[&detectors, &list]);

    let error = evidence
        .guardduty_findings(&subject())
        .await
        .expect_err("no findings API");

    let EvidenceError::NotAvailable { what, hint } = &error else {
        panic!("expected NotAvailable, got {error:?}");
    };
    assert_eq!(what, "GuardDuty findings");
    assert!(hint.contains("us-east-1"), "{hint}");
    assert_operations_listed(&evidence);
}

#[tokio::test]
async fn guardduty_without_detector_is_not_available() {
    use aws_sdk_guardduty::operation::list_detectors::ListDetectorsOutput;

    let detectors = mock!(aws_sdk_guardduty::Client::list_detectors)
        .then_output(|| ListDetectorsOutput::builder().build());
    let evidence = live(settings(), &[&detectors]);

    let error = evidence
        .guardduty_findings(&subject())
        .await
        .expect_err("GuardDuty off");
    assert!(
        matches!(error, EvidenceError::NotAvailable { .. }),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------
// CloudWatch Logs Insights

fn insights_row(message: &str) -> Vec<aws_sdk_cloudwatchlogs::types::ResultField> {
    use aws_sdk_cloudwatchlogs::types::ResultField;
    vec![
        ResultField::builder()
            .field("@timestamp")
            .value("2024-05-01 09:00:00.000")
            .build(),
        ResultField::builder()
            .field("@message")
            .value(message)
            .build(),
    ]
}

fn query_results(
    status: aws_sdk_cloudwatchlogs::types::QueryStatus,
    messages: &[String],
) -> aws_sdk_cloudwatchlogs::operation::get_query_results::GetQueryResultsOutput {
    let rows = messages.iter().map(|m| insights_row(m)).collect();
    aws_sdk_cloudwatchlogs::operation::get_query_results::GetQueryResultsOutput::builder()
        .status(status)
        .set_results(Some(rows))
        .build()
}

#[tokio::test]
async fn insights_query_names_key_range_and_sessions() {
    use aws_sdk_cloudwatchlogs::operation::start_query::{StartQueryInput, StartQueryOutput};
    use aws_sdk_cloudwatchlogs::types::QueryStatus;

    let own_call = trail_event("e1", "2024-05-01T09:00:00Z", "GetCallerIdentity", KEY, "");
    let minting = trail_event(
        "e2",
        "2024-05-01T09:10:00Z",
        "GetSessionToken",
        KEY,
        &format!(r#","responseElements":{{"credentials":{{"accessKeyId":"{SESSION}"}}}}"#),
    );
    let near_miss = trail_event(
        "e3",
        "2024-05-01T09:15:00Z",
        "GetCallerIdentity",
        OTHER_KEY,
        &format!(r#","requestParameters":{{"note":"{KEY}"}}"#),
    );
    let owner_call = format!(
        r#"{{"eventID":"e4","eventTime":"2024-05-01T08:00:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin",
            "userIdentity":{{"type":"IAMUser","arn":"{OWNER_ARN}"}}}}"#
    );
    let session_call = trail_event("e5", "2024-05-01T09:20:00Z", "ListBuckets", SESSION, "");

    let sent: Arc<Mutex<Vec<StartQueryInput>>> = Arc::default();
    let recorded = Arc::clone(&sent);
    let start =
        mock!(aws_sdk_cloudwatchlogs::Client::start_query).then_compute_output(move |input| {
            let mut sent = recorded.lock().unwrap();
            sent.push(input.clone());
            StartQueryOutput::builder()
                .query_id(format!("q-{}", sent.len()))
                .build()
        });
    let first_messages = [own_call.clone(), minting, near_miss.clone(), owner_call];
    let first = mock!(aws_sdk_cloudwatchlogs::Client::get_query_results)
        .match_requests(|input| input.query_id() == Some("q-1"))
        .sequence()
        .output(|| query_results(QueryStatus::Running, &[]))
        .output(move || query_results(QueryStatus::Complete, &first_messages))
        .build();
    // moto ignores the filter, so the follow-up returns the first round's events again,
    // here on two pages.
    let second_messages = [own_call, near_miss];
    let second = mock!(aws_sdk_cloudwatchlogs::Client::get_query_results)
        .match_requests(|input| input.query_id() == Some("q-2") && input.next_token().is_none())
        .then_output(move || {
            let mut page = query_results(QueryStatus::Complete, &second_messages);
            page.next_token = Some("page-2".to_string());
            page
        });
    let second_page = [session_call];
    let second_rest = mock!(aws_sdk_cloudwatchlogs::Client::get_query_results)
        .match_requests(|input| {
            input.query_id() == Some("q-2") && input.next_token() == Some("page-2")
        })
        .then_output(move || query_results(QueryStatus::Complete, &second_page));
    let mut config = settings();
    config.log_groups = vec!["trail-logs".to_string()];
    let evidence = live(config, &[&start, &first, &second, &second_rest]);

    let set = evidence.events(&fixed_query()).await.expect("events");

    let sent = sent.lock().unwrap();
    assert_eq!(
        sent.len(),
        2,
        "one query for the key, one for its minted session"
    );
    assert_eq!(set.scans, 2);
    let text = sent[0].query_string().unwrap();
    assert!(
        text.contains(&format!("userIdentity.accessKeyId = '{KEY}'")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "responseElements.credentials.accessKeyId = '{KEY}'"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("userIdentity.arn = '{OWNER_ARN}'")),
        "{text}"
    );
    assert!(
        text.ends_with("| sort @timestamp asc\n| limit 10000"),
        "{text}"
    );
    assert_eq!(sent[0].log_group_names(), ["trail-logs"]);
    assert_eq!(
        sent[0].start_time(),
        Some(time("2024-04-17T00:00:00Z").timestamp()),
        "history start"
    );
    assert_eq!(
        sent[0].end_time(),
        Some(time("2024-05-01T12:15:00Z").timestamp()),
        "window end plus delivery slack"
    );

    let follow_up = sent[1].query_string().unwrap();
    assert!(
        follow_up.contains(&format!("userIdentity.accessKeyId = '{SESSION}'")),
        "{follow_up}"
    );
    assert!(
        !follow_up.contains(KEY),
        "the follow-up reads only the new session: {follow_up}"
    );
    assert_eq!(
        sent[1].start_time(),
        Some(time("2024-05-01T09:10:00Z").timestamp()),
        "from the minting call"
    );

    assert_eq!(
        event_ids(&set),
        ["e4", "e1", "e2", "e5"],
        "near-miss e3 dropped, e1 not doubled"
    );
    assert_eq!(set.minted.len(), 1);
    assert_eq!(set.minted[0].key_id, SESSION);
    assert_eq!(
        set.source,
        "CloudWatch Logs Insights on log group trail-logs (us-east-1)"
    );
    assert_eq!(
        second_rest.num_calls(),
        1,
        "the second page of results is read"
    );
    assert_eq!(
        evidence.call_stats().calls_of("logs:GetQueryResults"),
        4,
        "polled until complete, then paged"
    );
    assert_eq!(
        evidence.relevant_regions().await.unwrap(),
        ["us-east-1", "eu-west-1"],
        "the key's calls were in eu-west-1"
    );
    assert_operations_listed(&evidence);
}

// ---------------------------------------------------------------------------------------
// FilterLogEvents

#[tokio::test]
async fn filter_log_events_paginates_and_drops_near_misses() {
    use aws_sdk_cloudwatchlogs::operation::filter_log_events::{
        FilterLogEventsInput, FilterLogEventsOutput,
    };
    use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;

    let first_page = [
        trail_event("e1", "2024-05-01T09:00:00Z", "GetCallerIdentity", KEY, ""),
        trail_event(
            "e3",
            "2024-05-01T09:05:00Z",
            "GetCallerIdentity",
            OTHER_KEY,
            "",
        ),
    ];
    let last_page = [trail_event(
        "e7",
        "2024-05-01T11:00:00Z",
        "ListUsers",
        KEY,
        "",
    )];
    let page = |messages: &[String], token: Option<&str>| {
        let events = messages
            .iter()
            .map(|m| FilteredLogEvent::builder().message(m).build())
            .collect();
        FilterLogEventsOutput::builder()
            .set_events(Some(events))
            .set_next_token(token.map(str::to_string))
            .build()
    };

    let sent: Arc<Mutex<Vec<FilterLogEventsInput>>> = Arc::default();
    let recorded = Arc::clone(&sent);
    let filter = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events).then_compute_output(
        move |input| {
            recorded.lock().unwrap().push(input.clone());
            match input.next_token() {
                None => page(&first_page, Some("t-2")),
                Some(_) => page(&last_page, None),
            }
        },
    );
    let mut config = settings();
    config.log_groups = vec!["trail-logs".to_string()];
    config.query = QueryMode::FilterLogEvents;
    let mut query = fixed_query();
    query.owner_arn = None;
    let evidence = live(config, &[&filter]);

    let set = evidence.events(&query).await.expect("events");

    let sent = sent.lock().unwrap();
    let tokens: Vec<Option<&str>> = sent.iter().map(|input| input.next_token()).collect();
    assert_eq!(tokens, [None, Some("t-2")], "paginated to the end");
    assert_eq!(
        sent[0].filter_pattern(),
        Some(
            "{ ($.userIdentity.accessKeyId = \"AKIAQWERTYUIOPASDFGH\") || ($.responseElements.credentials.accessKeyId = \"AKIAQWERTYUIOPASDFGH\") }"
        )
    );
    assert_eq!(sent[0].log_group_name(), Some("trail-logs"));
    assert_eq!(
        sent[0].start_time(),
        Some(time("2024-04-17T00:00:00Z").timestamp_millis())
    );
    assert_eq!(
        sent[0].end_time(),
        Some(time("2024-05-01T12:15:00Z").timestamp_millis())
    );
    assert_eq!(
        event_ids(&set),
        ["e1", "e7"],
        "the other key's call is dropped"
    );
    assert_eq!(set.scans, 1, "one pass, however many pages");
    assert_eq!(
        set.source,
        "CloudWatch Logs FilterLogEvents on log group trail-logs (us-east-1)"
    );
    assert_operations_listed(&evidence);
}

// ---------------------------------------------------------------------------------------
// LookupEvents fallback

#[tokio::test]
async fn lookup_events_fallback_when_log_group_missing() {
    use aws_sdk_cloudtrail::operation::lookup_events::{LookupEventsInput, LookupEventsOutput};
    use aws_sdk_cloudtrail::types::{Event, LookupAttributeKey};
    use aws_sdk_cloudwatchlogs::operation::start_query::StartQueryError;

    let start = mock!(aws_sdk_cloudwatchlogs::Client::start_query).then_error(|| {
        StartQueryError::generic(error_metadata(
            "ResourceNotFoundException",
            "The specified log group does not exist.",
        ))
    });
    let own_call = trail_event("e1", "2024-05-01T09:00:00Z", "GetCallerIdentity", KEY, "");
    let near_miss = trail_event(
        "e3",
        "2024-05-01T09:05:00Z",
        "GetCallerIdentity",
        OTHER_KEY,
        "",
    );
    let sent: Arc<Mutex<Vec<LookupEventsInput>>> = Arc::default();
    let recorded = Arc::clone(&sent);
    let lookup =
        mock!(aws_sdk_cloudtrail::Client::lookup_events).then_compute_output(move |input| {
            recorded.lock().unwrap().push(input.clone());
            LookupEventsOutput::builder()
                .events(Event::builder().cloud_trail_event(&own_call).build())
                .events(Event::builder().cloud_trail_event(&near_miss).build())
                .build()
        });
    let mut config = settings();
    config.log_groups = vec!["missing-trail".to_string()];
    config.regions = vec!["us-east-1".to_string(), "eu-west-1".to_string()];
    let mut query = fixed_query();
    query.owner_arn = None;
    let evidence = live(config, &[&start, &lookup]);

    let set = evidence
        .events(&query)
        .await
        .expect("events from LookupEvents");

    assert_eq!(
        set.source,
        "CloudTrail LookupEvents in us-east-1, eu-west-1: management events only"
    );
    assert_eq!(lookup.num_calls(), 2, "one lookup per region");
    assert_eq!(set.scans, 2);
    let sent = sent.lock().unwrap();
    let attribute = &sent[0].lookup_attributes()[0];
    assert_eq!(attribute.attribute_key(), &LookupAttributeKey::AccessKeyId);
    assert_eq!(attribute.attribute_value(), KEY);
    assert_eq!(
        event_ids(&set),
        ["e1"],
        "near-miss dropped, the same event from two regions kept once"
    );
    assert_operations_listed(&evidence);
}

#[tokio::test]
async fn missing_log_group_without_fallback_fails() {
    use aws_sdk_cloudwatchlogs::operation::start_query::StartQueryError;

    let start = mock!(aws_sdk_cloudwatchlogs::Client::start_query).then_error(|| {
        StartQueryError::generic(error_metadata(
            "ResourceNotFoundException",
            "The specified log group does not exist.",
        ))
    });
    let mut config = settings();
    config.log_groups = vec!["missing-trail".to_string()];
    config.lookup_events_fallback = false;
    let evidence = live(config, &[&start]);

    let error = evidence.events(&fixed_query()).await.expect_err("no trail");

    let EvidenceError::Aws {
        operation,
        permission,
        target,
        kind,
        ..
    } = &error
    else {
        panic!("expected an AWS error, got {error:?}");
    };
    assert_eq!(operation, "logs:StartQuery");
    assert_eq!(permission, "logs:StartQuery");
    assert_eq!(target, "missing-trail");
    assert_eq!(*kind, AwsErrorKind::NotFound);
}

// ---------------------------------------------------------------------------------------
// Security Hub

fn asff_finding(id: &str, key_id: &str) -> aws_sdk_securityhub::types::AwsSecurityFinding {
    use aws_sdk_securityhub::types::{AwsSecurityFinding, Resource, Severity, SeverityLabel};
    AwsSecurityFinding::builder()
        .schema_version("2018-10-08")
        .id(id)
        .product_arn("arn:aws:securityhub:us-east-1::product/aws/guardduty")
        .aws_account_id(ACCOUNT)
        .types("TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller")
        .title("Malicious caller")
        .created_at("2024-05-01T10:00:00Z")
        .severity(Severity::builder().label(SeverityLabel::High).build())
        .resources(
            Resource::builder()
                .r#type("AwsIamAccessKey")
                .id(format!("AWS::IAM::AccessKey:{key_id}"))
                .region("us-east-1")
                .build(),
        )
        .build()
}

#[tokio::test]
async fn security_hub_filters_and_recheck() {
    use aws_sdk_securityhub::operation::get_findings::{GetFindingsInput, GetFindingsOutput};
    use aws_sdk_securityhub::types::StringFilterComparison;

    let sent: Arc<Mutex<Vec<GetFindingsInput>>> = Arc::default();
    let recorded = Arc::clone(&sent);
    // moto ignores the filters, so every request returns every finding.
    let get = mock!(aws_sdk_securityhub::Client::get_findings).then_compute_output(move |input| {
        recorded.lock().unwrap().push(input.clone());
        GetFindingsOutput::builder()
            .findings(asff_finding("sh-own", KEY))
            .findings(asff_finding("sh-other", OTHER_KEY))
            .build()
    });
    let evidence = live(settings(), &[&get]);

    let findings = evidence
        .security_hub_findings(&subject())
        .await
        .expect("findings")
        .found;

    let sent = sent.lock().unwrap();
    assert_eq!(
        sent.len(),
        3,
        "resource IDs, access key user name, access key principal name"
    );
    let by_resource = sent[0].filters().unwrap();
    let resource_ids: Vec<(&str, &StringFilterComparison)> = by_resource
        .resource_id()
        .iter()
        .map(|f| (f.value().unwrap(), f.comparison().unwrap()))
        .collect();
    assert_eq!(
        resource_ids,
        [
            (KEY, &StringFilterComparison::Contains),
            (OWNER_ARN, &StringFilterComparison::Equals)
        ]
    );
    assert_eq!(by_resource.record_state()[0].value(), Some("ACTIVE"));
    #[allow(deprecated)]
    let user_names = sent[1]
        .filters()
        .unwrap()
        .resource_aws_iam_access_key_user_name();
    assert_eq!(user_names[0].value(), Some("alice"));
    let principal_names = sent[2]
        .filters()
        .unwrap()
        .resource_aws_iam_access_key_principal_name();
    assert_eq!(principal_names[0].value(), Some("alice"));

    let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        ["sh-own"],
        "the other key's finding is dropped, duplicates merged"
    );
    assert_eq!(findings[0].source, FindingSource::SecurityHub);
    assert_eq!(findings[0].key_ids, [KEY]);
    assert_operations_listed(&evidence);
}

#[tokio::test]
async fn security_hub_not_subscribed_is_not_available() {
    use aws_sdk_securityhub::operation::get_findings::GetFindingsError;

    let get = mock!(aws_sdk_securityhub::Client::get_findings).then_error(|| {
        GetFindingsError::generic(error_metadata(
            "InvalidAccessException",
            "Account 111122223333 is not subscribed to AWS Security Hub",
        ))
    });
    let evidence = live(settings(), &[&get]);

    let error = evidence
        .security_hub_findings(&subject())
        .await
        .expect_err("not subscribed");

    let EvidenceError::NotAvailable { what, hint } = &error else {
        panic!("expected NotAvailable, got {error:?}");
    };
    assert_eq!(what, "Security Hub findings");
    assert!(hint.contains("not subscribed"), "{hint}");
}

// ---------------------------------------------------------------------------------------
// Errors

#[tokio::test]
async fn access_denied_names_operation_and_permission() {
    use aws_sdk_iam::operation::get_access_key_last_used::GetAccessKeyLastUsedOutput;
    use aws_sdk_iam::operation::list_access_keys::ListAccessKeysError;

    let last_used = mock!(aws_sdk_iam::Client::get_access_key_last_used).then_output(|| {
        GetAccessKeyLastUsedOutput::builder()
            .user_name("alice")
            .build()
    });
    let list = mock!(aws_sdk_iam::Client::list_access_keys).then_error(|| {
        ListAccessKeysError::generic(error_metadata(
            "AccessDenied",
            "User: arn:aws:iam::111122223333:user/keycheck is not authorized to perform: iam:ListAccessKeys",
        ))
    });
    let evidence = live(settings(), &[&last_used, &list]);

    let error = evidence.access_key(&key()).await.expect_err("denied");

    let EvidenceError::Aws {
        operation,
        permission,
        target,
        kind,
        reason,
    } = &error
    else {
        panic!("expected an AWS error, got {error:?}");
    };
    assert_eq!(operation, "iam:ListAccessKeys");
    assert_eq!(permission, "iam:ListAccessKeys");
    assert_eq!(target, "alice");
    assert_eq!(*kind, AwsErrorKind::AccessDenied);
    assert!(
        reason.starts_with("access denied (AccessDenied: User:"),
        "{reason}"
    );
    assert_eq!(
        error.to_string(),
        format!("iam:ListAccessKeys failed for alice: {reason} (needs iam:ListAccessKeys)")
    );
}

#[tokio::test]
async fn throttling_after_retries_is_throttled() {
    let throttled = r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
        <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
        <RequestId>r-1</RequestId></ErrorResponse>"#;
    let get_user = mock!(aws_sdk_iam::Client::get_user).then_http_response(move || {
        HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::from(throttled))
    });
    let mut config = settings();
    config.max_attempts = 2;
    let others = empty_user_reads();
    let mut rules: Vec<&Rule> = others.iter().collect();
    rules.push(&get_user);
    let evidence = live(config, &rules);

    let error = evidence.user("alice").await.expect_err("throttled");

    let EvidenceError::Aws {
        operation,
        permission,
        kind,
        ..
    } = &error
    else {
        panic!("expected an AWS error, got {error:?}");
    };
    assert_eq!(operation, "iam:GetUser");
    assert_eq!(permission, "iam:GetUser");
    assert_eq!(*kind, AwsErrorKind::Throttled);
    assert_eq!(get_user.num_calls(), 2, "the SDK retried once");
    let calls = evidence
        .call_stats()
        .operations()
        .into_iter()
        .find(|c| c.operation == "GetUser")
        .unwrap();
    assert_eq!(
        (calls.throttled, calls.attempts),
        (1, 2),
        "recorded as one throttled call of two attempts"
    );
}

#[test]
fn timeout_maps_to_timeout() {
    let error: SdkError<aws_sdk_iam::operation::get_user::GetUserError, HttpResponse> =
        SdkError::timeout_error(
            "operation timeout (all attempts including retries) occurred after 30s",
        );
    let mapped = aws_error(&IAM_GET_USER, "alice", &error);
    assert!(
        matches!(
            mapped,
            EvidenceError::Aws {
                kind: AwsErrorKind::Timeout,
                ..
            }
        ),
        "{mapped:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Accounts and credentials

fn access_key_info_rule(account: &'static str) -> Rule {
    mock!(aws_sdk_sts::Client::get_access_key_info).then_output(move || {
        aws_sdk_sts::operation::get_access_key_info::GetAccessKeyInfoOutput::builder()
            .account(account)
            .build()
    })
}

#[tokio::test]
async fn own_account_uses_own_credentials() {
    let info = access_key_info_rule(ACCOUNT);
    let evidence = live(settings(), &[&info]);

    let account = evidence.resolve_account(&key()).await.expect("resolved");

    assert_eq!(account.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(account.source, crate::evidence::AccountSource::Sts);
    assert!(account.credentials_available);
    assert_eq!(
        account.access.as_deref(),
        Some("keycheck's own credentials (arn:aws:iam::111122223333:user/keycheck)")
    );
    assert_eq!(evidence.describe(), "live, account 111122223333");
}

#[tokio::test]
async fn account_without_role_is_reported_not_fatal() {
    let info = access_key_info_rule("444455556666");
    let evidence = live(settings(), &[&info]);

    let account = evidence.resolve_account(&key()).await.expect("resolved");

    assert_eq!(account.account_id.as_deref(), Some("444455556666"));
    assert!(!account.credentials_available);
    let note = account.note.unwrap();
    assert!(
        note.starts_with("no role configured for account 444455556666: add [aws.accounts.\"444455556666\"] role_arn ="),
        "{note}"
    );
    let error = evidence
        .user("alice")
        .await
        .expect_err("no way into the account");
    let EvidenceError::NotAvailable { what, .. } = &error else {
        panic!("expected NotAvailable, got {error:?}");
    };
    assert_eq!(what, "AWS access to account 444455556666");
}

#[tokio::test]
async fn sts_failure_falls_back_to_decoding() {
    use aws_sdk_sts::operation::get_access_key_info::GetAccessKeyInfoError;

    let info = mock!(aws_sdk_sts::Client::get_access_key_info).then_error(|| {
        GetAccessKeyInfoError::generic(error_metadata("AccessDenied", "not allowed"))
    });
    let evidence = live(settings(), &[&info]);

    let account = evidence.resolve_account(&key()).await.expect("resolved");

    let crate::key::AccountDecoding::Decoded {
        account_id: decoded,
    } = key().decode_account()
    else {
        panic!("the test key decodes");
    };
    assert_eq!(account.source, crate::evidence::AccountSource::KeyDecoding);
    assert_eq!(account.account_id.as_deref(), Some(decoded.as_str()));
    let note = account.note.unwrap();
    assert!(note.contains("sts:GetAccessKeyInfo failed"), "{note}");
}

#[tokio::test]
async fn configured_role_is_assumed_once() {
    use aws_sdk_iam::operation::get_user::GetUserError;
    use aws_sdk_sts::operation::assume_role::{AssumeRoleInput, AssumeRoleOutput};

    let role_arn = "arn:aws:iam::444455556666:role/keycheck";
    let info = access_key_info_rule("444455556666");
    let sent: Arc<Mutex<Vec<AssumeRoleInput>>> = Arc::default();
    let recorded = Arc::clone(&sent);
    let assume = mock!(aws_sdk_sts::Client::assume_role).then_compute_output(move |input| {
        recorded.lock().unwrap().push(input.clone());
        let credentials = aws_sdk_sts::types::Credentials::builder()
            .access_key_id("ASIAROLEROLEROLEROLE")
            .secret_access_key("role-secret")
            .session_token("role-token")
            .expiration(aws_smithy_types::DateTime::from_secs(
                Utc::now().timestamp() + 3600,
            ))
            .build()
            .unwrap();
        AssumeRoleOutput::builder().credentials(credentials).build()
    });
    let get_user = mock!(aws_sdk_iam::Client::get_user).then_error(|| {
        GetUserError::generic(error_metadata(
            "NoSuchEntity",
            "The user with name alice cannot be found.",
        ))
    });
    let mut config = settings();
    config.accounts.insert(
        "444455556666".to_string(),
        AccountAccess {
            role_arn: role_arn.to_string(),
            external_id: Some("kc-external".to_string()),
        },
    );
    let others = empty_user_reads();
    let mut rules: Vec<&Rule> = others.iter().collect();
    rules.extend([&info, &assume, &get_user]);
    let evidence = live(config, &rules);

    let account = evidence.resolve_account(&key()).await.expect("resolved");
    assert!(account.credentials_available);
    assert_eq!(
        account.access.as_deref(),
        Some("role arn:aws:iam::444455556666:role/keycheck")
    );
    assert_eq!(
        evidence.user("alice").await.expect("read through the role"),
        None
    );
    assert_eq!(
        evidence.user("alice").await.expect("read through the role"),
        None
    );

    assert_eq!(assume.num_calls(), 1, "credentials are reused");
    let sent = sent.lock().unwrap();
    assert_eq!(sent[0].role_arn(), Some(role_arn));
    assert_eq!(sent[0].role_session_name(), Some("keycheck-kc-test"));
    assert_eq!(sent[0].external_id(), Some("kc-external"));
    assert_operations_listed(&evidence);
}

// ---------------------------------------------------------------------------------------
// IAM

#[tokio::test]
async fn access_key_status_and_last_use() {
    use aws_sdk_iam::operation::get_access_key_last_used::GetAccessKeyLastUsedOutput;
    use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
    use aws_sdk_iam::types::{AccessKeyLastUsed, AccessKeyMetadata, StatusType};

    let last_used = mock!(aws_sdk_iam::Client::get_access_key_last_used).then_output(|| {
        GetAccessKeyLastUsedOutput::builder()
            .user_name("alice")
            .access_key_last_used(
                AccessKeyLastUsed::builder()
                    .last_used_date(aws_smithy_types::DateTime::from_secs(1_714_554_000))
                    .service_name("s3")
                    .region("ap-south-1")
                    .build()
                    .unwrap(),
            )
            .build()
    });
    let list = mock!(aws_sdk_iam::Client::list_access_keys).then_output(|| {
        ListAccessKeysOutput::builder()
            .access_key_metadata(
                AccessKeyMetadata::builder()
                    .access_key_id(KEY)
                    .user_name("alice")
                    .status(StatusType::Inactive)
                    .create_date(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                    .build(),
            )
            .build()
            .unwrap()
    });
    let evidence = live(settings(), &[&last_used, &list]);

    let record = evidence
        .access_key(&key())
        .await
        .expect("read")
        .expect("exists");

    assert_eq!(record.user_name, "alice");
    assert_eq!(record.status, KeyStatus::Inactive);
    assert_eq!(record.created.unwrap().timestamp(), 1_700_000_000);
    let used = record.last_used.unwrap();
    assert_eq!(used.service.as_deref(), Some("s3"));
    assert_eq!(used.region.as_deref(), Some("ap-south-1"));
    assert_eq!(
        evidence.relevant_regions().await.unwrap(),
        ["us-east-1", "ap-south-1"]
    );
    assert_operations_listed(&evidence);
}

#[tokio::test]
async fn user_collects_policies_in_order() {
    use aws_sdk_iam::operation::get_login_profile::GetLoginProfileError;
    use aws_sdk_iam::operation::get_policy::GetPolicyOutput;
    use aws_sdk_iam::operation::get_policy_version::GetPolicyVersionOutput;
    use aws_sdk_iam::operation::get_user::GetUserOutput;
    use aws_sdk_iam::operation::get_user_policy::GetUserPolicyOutput;
    use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
    use aws_sdk_iam::operation::list_attached_group_policies::ListAttachedGroupPoliciesOutput;
    use aws_sdk_iam::operation::list_attached_user_policies::ListAttachedUserPoliciesOutput;
    use aws_sdk_iam::operation::list_group_policies::ListGroupPoliciesOutput;
    use aws_sdk_iam::operation::list_groups_for_user::ListGroupsForUserOutput;
    use aws_sdk_iam::operation::list_mfa_devices::ListMfaDevicesOutput;
    use aws_sdk_iam::operation::list_user_policies::ListUserPoliciesOutput;
    use aws_sdk_iam::operation::list_user_tags::ListUserTagsOutput;
    use aws_sdk_iam::types::{AttachedPolicy, Group, Policy, PolicyVersion, Tag, User};

    const QUARANTINE: &str = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3";
    const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    let epoch = || aws_smithy_types::DateTime::from_secs(1_700_000_000);

    let rules = [
        mock!(aws_sdk_iam::Client::get_user).then_output(move || {
            let user = User::builder()
                .path("/")
                .user_name("alice")
                .user_id("AIDAALICE")
                .arn(OWNER_ARN)
                .create_date(epoch())
                .build()
                .unwrap();
            GetUserOutput::builder().user(user).build()
        }),
        mock!(aws_sdk_iam::Client::list_mfa_devices)
            .then_output(|| ListMfaDevicesOutput::builder().set_mfa_devices(Some(vec![])).build().unwrap()),
        mock!(aws_sdk_iam::Client::get_login_profile).then_error(|| {
            GetLoginProfileError::generic(error_metadata("NoSuchEntity", "Login Profile for User alice cannot be found."))
        }),
        mock!(aws_sdk_iam::Client::list_groups_for_user).then_output(move || {
            let group = Group::builder()
                .path("/")
                .group_name("devs")
                .group_id("AGPADEVS")
                .arn("arn:aws:iam::111122223333:group/devs")
                .create_date(epoch())
                .build()
                .unwrap();
            ListGroupsForUserOutput::builder().groups(group).build().unwrap()
        }),
        mock!(aws_sdk_iam::Client::list_user_tags).then_output(|| {
            let tag = Tag::builder().key("team").value("payments").build().unwrap();
            ListUserTagsOutput::builder().tags(tag).build().unwrap()
        }),
        mock!(aws_sdk_iam::Client::list_access_keys)
            .then_output(|| ListAccessKeysOutput::builder().set_access_key_metadata(Some(vec![])).build().unwrap()),
        mock!(aws_sdk_iam::Client::list_user_policies)
            .then_output(|| ListUserPoliciesOutput::builder().policy_names("admin-inline").build().unwrap()),
        mock!(aws_sdk_iam::Client::get_user_policy).then_output(|| {
            GetUserPolicyOutput::builder()
                .user_name("alice")
                .policy_name("admin-inline")
                .policy_document("%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D")
                .build()
                .unwrap()
        }),
        mock!(aws_sdk_iam::Client::list_attached_user_policies).then_output(|| {
            let policy = AttachedPolicy::builder()
                .policy_name("AWSCompromisedKeyQuarantineV3")
                .policy_arn(QUARANTINE)
                .build();
            ListAttachedUserPoliciesOutput::builder().attached_policies(policy).build()
        }),
        mock!(aws_sdk_iam::Client::list_group_policies)
            .then_output(|| ListGroupPoliciesOutput::builder().set_policy_names(Some(vec![])).build().unwrap()),
        mock!(aws_sdk_iam::Client::list_attached_group_policies).then_output(|| {
            let policy = AttachedPolicy::builder().policy_name("ReadOnlyAccess").policy_arn(READ_ONLY).build();
            ListAttachedGroupPoliciesOutput::builder().attached_policies(policy).build()
        }),
        mock!(aws_sdk_iam::Client::get_policy).then_compute_output(|input| {
            let policy = Policy::builder()
                .set_arn(input.policy_arn().map(str::to_string))
                .default_version_id("v3")
                .build();
            GetPolicyOutput::builder().policy(policy).build()
        }),
        mock!(aws_sdk_iam::Client::get_policy_version).then_output(|| {
            let version = PolicyVersion::builder()
                .version_id("v3")
                .is_default_version(true)
                .document("%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Deny%22%2C%22Action%22%3A%22iam%3ACreateUser%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D")
                .build();
            GetPolicyVersionOutput::builder().policy_version(version).build()
        }),
    ];
    let rule_refs: Vec<&Rule> = rules.iter().collect();
    let evidence = live(settings(), &rule_refs);

    let user = evidence.user("alice").await.expect("read").expect("exists");

    assert_eq!(user.arn.as_deref(), Some(OWNER_ARN));
    assert_eq!(
        user.console_password,
        Some(false),
        "NoSuchEntity from GetLoginProfile means no password"
    );
    assert_eq!(user.mfa_devices, Some(vec![]));
    assert_eq!(user.groups, ["devs"]);
    assert_eq!(user.tags, [("team".to_string(), "payments".to_string())]);
    let names: Vec<String> = user.policies.iter().map(|p| p.display_name()).collect();
    assert_eq!(
        names,
        [
            "admin-inline (inline)",
            "AWSCompromisedKeyQuarantineV3 (AWS managed)",
            "ReadOnlyAccess (group devs)"
        ]
    );
    assert_eq!(
        user.policies[0].document.as_ref().unwrap()["Statement"][0]["Action"],
        "*",
        "URL-decoded"
    );
    assert_eq!(
        user.policies[2].attachment,
        PolicyAttachment::GroupManaged {
            group: "devs".to_string()
        }
    );
    assert!(user.policies[1].document.is_some());
    assert_eq!(
        evidence.call_stats().calls_of("iam:GetPolicyVersion"),
        2,
        "one per managed policy"
    );
    assert_operations_listed(&evidence);
}

#[tokio::test]
async fn credential_report_waits_until_complete() {
    use aws_sdk_iam::operation::generate_credential_report::GenerateCredentialReportOutput;
    use aws_sdk_iam::operation::get_credential_report::GetCredentialReportOutput;
    use aws_sdk_iam::types::ReportStateType;

    let generate = mock!(aws_sdk_iam::Client::generate_credential_report)
        .sequence()
        .output(|| {
            GenerateCredentialReportOutput::builder()
                .state(ReportStateType::Started)
                .build()
        })
        .output(|| {
            GenerateCredentialReportOutput::builder()
                .state(ReportStateType::Complete)
                .build()
        })
        .build();
    let csv = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n\
               alice,arn:aws:iam::111122223333:user/alice,2023-11-14T22:13:20+00:00,true,N/A,N/A,N/A,false,true,2023-11-14T22:13:20+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n";
    let report = mock!(aws_sdk_iam::Client::get_credential_report).then_output(move || {
        GetCredentialReportOutput::builder()
            .content(aws_smithy_types::Blob::new(csv.as_bytes()))
            .build()
    });
    let evidence = live(settings(), &[&generate, &report]);

    let rows = evidence.credential_report().await.expect("report");

    assert_eq!(generate.num_calls(), 2, "asked again until COMPLETE");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user, "alice");
    assert_eq!(rows[0].password_enabled, Some(true));
    assert_eq!(rows[0].mfa_active, Some(false));
    assert_eq!(rows[0].access_key_1_active, Some(true));
}

// ---------------------------------------------------------------------------------------
// Key storage

#[tokio::test]
async fn key_locations_match_without_keeping_values() {
    use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
    use aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput;
    use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair, TaskDefinition};
    use aws_sdk_lambda::operation::list_functions::ListFunctionsOutput;
    use aws_sdk_lambda::types::{EnvironmentResponse, FunctionConfiguration};
    use aws_sdk_secretsmanager::operation::list_secrets::ListSecretsOutput;
    use aws_sdk_secretsmanager::types::{SecretListEntry, Tag};
    use aws_sdk_ssm::operation::describe_parameters::DescribeParametersOutput;

    const SECRET_VALUE: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz";
    let secrets = mock!(aws_sdk_secretsmanager::Client::list_secrets).then_output(|| {
        ListSecretsOutput::builder()
            .secret_list(
                SecretListEntry::builder()
                    .name("ci/deploy")
                    .tags(Tag::builder().key("Owner").value("alice").build())
                    .build(),
            )
            .secret_list(SecretListEntry::builder().name("unrelated").build())
            .build()
    });
    let parameters = mock!(aws_sdk_ssm::Client::describe_parameters)
        .then_output(|| DescribeParametersOutput::builder().build());
    let functions = mock!(aws_sdk_lambda::Client::list_functions).then_output(|| {
        let environment = EnvironmentResponse::builder()
            .variables("AWS_ACCESS_KEY_ID", KEY)
            .variables("AWS_SECRET_ACCESS_KEY", SECRET_VALUE)
            .build();
        ListFunctionsOutput::builder()
            .functions(
                FunctionConfiguration::builder()
                    .function_name("nightly-export")
                    .environment(environment)
                    .build(),
            )
            .build()
    });
    // An endpoint without CodeBuild returns 404, and the other sources still count.
    let projects = mock!(aws_sdk_codebuild::Client::list_projects).then_http_response(|| {
        HttpResponse::new(StatusCode::try_from(404).unwrap(), SdkBody::from(""))
    });
    let task_arn = "arn:aws:ecs:us-east-1:111122223333:task-definition/web:7";
    let tasks = mock!(aws_sdk_ecs::Client::list_task_definitions).then_output(move || {
        ListTaskDefinitionsOutput::builder()
            .task_definition_arns(task_arn)
            .build()
    });
    let describe = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .match_requests(move |input| input.task_definition() == Some(task_arn))
        .then_output(|| {
            let container = ContainerDefinition::builder()
                .name("app")
                .environment(
                    KeyValuePair::builder()
                        .name("DEPLOY_KEY_ID")
                        .value(KEY)
                        .build(),
                )
                .environment(
                    KeyValuePair::builder()
                        .name("DEPLOY_SECRET")
                        .value(SECRET_VALUE)
                        .build(),
                )
                .build();
            let definition = TaskDefinition::builder()
                .family("web")
                .revision(7)
                .container_definitions(container)
                .build();
            DescribeTaskDefinitionOutput::builder()
                .task_definition(definition)
                .build()
        });
    let evidence = live(
        settings(),
        &[
            &secrets,
            &parameters,
            &functions,
            &projects,
            &tasks,
            &describe,
        ],
    );

    let locations = evidence.key_locations(&subject()).await.expect("locations").found;

    let found: Vec<(KeyLocationKind, &str, &str)> = locations
        .iter()
        .map(|l| (l.kind, l.name.as_str(), l.matched_by.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                KeyLocationKind::SecretsManagerSecret,
                "ci/deploy",
                "tag Owner"
            ),
            (
                KeyLocationKind::LambdaEnvironment,
                "nightly-export",
                "environment variable AWS_ACCESS_KEY_ID"
            ),
            (
                KeyLocationKind::EcsTaskDefinition,
                "web:7",
                "environment variable DEPLOY_KEY_ID of container app"
            ),
        ]
    );
    assert!(
        !format!("{locations:?}").contains(SECRET_VALUE),
        "no value is kept"
    );
    assert_operations_listed(&evidence);
}

// ---------------------------------------------------------------------------------------
// Access Analyzer

#[tokio::test]
async fn access_analyzer_reads_active_external_findings() {
    use aws_sdk_accessanalyzer::operation::list_analyzers::ListAnalyzersOutput;
    use aws_sdk_accessanalyzer::operation::list_findings::{ListFindingsInput, ListFindingsOutput};
    use aws_sdk_accessanalyzer::types::{
        AnalyzerStatus, AnalyzerSummary, FindingStatus, FindingSummary, ResourceType, Type,
    };

    let epoch = || aws_smithy_types::DateTime::from_secs(1_714_557_600);
    let analyzers = mock!(aws_sdk_accessanalyzer::Client::list_analyzers).then_output(move || {
        let summary = |name: &str, kind: Type| {
            AnalyzerSummary::builder()
                .arn(format!(
                    "arn:aws:access-analyzer:us-east-1:111122223333:analyzer/{name}"
                ))
                .name(name)
                .r#type(kind)
                .created_at(epoch())
                .status(AnalyzerStatus::Active)
                .build()
                .unwrap()
        };
        ListAnalyzersOutput::builder()
            .analyzers(summary("external", Type::Account))
            .analyzers(summary("unused", Type::AccountUnusedAccess))
            .build()
            .unwrap()
    });
    let sent: Arc<Mutex<Vec<ListFindingsInput>>> = Arc::default();
    let recorded = Arc::clone(&sent);
    let findings =
        mock!(aws_sdk_accessanalyzer::Client::list_findings).then_compute_output(move |input| {
            recorded.lock().unwrap().push(input.clone());
            let finding = FindingSummary::builder()
                .id("aa-1")
                .principal("AWS", "444455556666")
                .action("s3:GetObject")
                .resource("arn:aws:s3:::reports")
                .is_public(false)
                .resource_type(ResourceType::AwsS3Bucket)
                .set_condition(Some(Default::default()))
                .created_at(epoch())
                .analyzed_at(epoch())
                .updated_at(epoch())
                .status(FindingStatus::Active)
                .resource_owner_account(ACCOUNT)
                .build()
                .unwrap();
            ListFindingsOutput::builder()
                .findings(finding)
                .build()
                .unwrap()
        });
    let evidence = live(settings(), &[&analyzers, &findings]);

    let found = evidence
        .access_analyzer_findings(&subject())
        .await
        .expect("findings")
        .found;

    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 1, "only the external-access analyzer is read");
    assert!(sent[0].analyzer_arn().unwrap().ends_with("/external"));
    assert_eq!(sent[0].filter().unwrap()["status"].eq(), ["ACTIVE"]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].principal.as_deref(), Some("AWS 444455556666"));
    assert_eq!(found[0].resource_type, "AWS::S3::Bucket");
    assert_operations_listed(&evidence);
}
