//! Tests of the test harness itself. The emulator starts, resets and stops. The proxy
//! forwards, records and delays calls, and the AWS SDK reads its injected errors as the
//! real services' errors. The seeded incident is in the emulator.

use std::time::{Duration, Instant};

use aws_sdk_sts::error::ProvideErrorMetadata;
use keycheck_tests::aws::{ACCOUNT_ID, Clients, sdk_config};
use keycheck_tests::moto::{self, Moto};
use keycheck_tests::proxy::{Fault, Proxy, Rule, format_calls};
use keycheck_tests::seed;

async fn proxy() -> Proxy {
    let moto = moto::shared().await;
    Proxy::start(&moto.endpoint()).await.expect("proxy starts")
}

#[tokio::test]
async fn moto_serves_sts() {
    let moto = moto::shared().await;
    let clients = Clients::new(&moto.endpoint());

    let identity = clients.sts.get_caller_identity().send().await;

    let identity = identity.unwrap_or_else(|e| panic!("GetCallerIdentity failed: {e:?}\n{}", moto.log_tail()));
    assert_eq!(identity.account(), Some(ACCOUNT_ID));
}

#[tokio::test]
async fn moto_reset_and_stop() {
    let moto = Moto::start().await.expect("a private emulator starts");
    let clients = Clients::new(&moto.endpoint());
    let name = format!("kc-{}-reset", seed::unique_suffix());
    clients.iam.create_user().user_name(&name).send().await.expect("CreateUser");

    moto.reset().await.expect("reset");
    let after = clients.iam.get_user().user_name(&name).send().await;
    assert_eq!(after.err().and_then(|e| e.code().map(str::to_string)).as_deref(), Some("NoSuchEntity"));

    let endpoint = moto.endpoint();
    drop(moto);
    let response = reqwest::Client::new()
        .get(format!("{endpoint}/moto-api/"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(response.is_err(), "the emulator still responds on {endpoint} after drop");
}

#[tokio::test]
async fn proxy_forwards_and_records() {
    let proxy = proxy().await;
    let clients = Clients::new(&proxy.endpoint());

    let identity = clients.sts.get_caller_identity().send().await;
    let groups = clients.logs.describe_log_groups().limit(1).send().await;
    let findings = clients.security_hub.get_findings().max_results(1).send().await;

    let calls = proxy.calls();
    let log = format_calls(&calls);
    assert!(identity.is_ok(), "{identity:?}\n{log}");
    assert!(groups.is_ok(), "{groups:?}\n{log}");
    assert!(findings.is_ok(), "{findings:?}\n{log}");
    assert_eq!(
        proxy.operations(),
        ["sts:GetCallerIdentity", "logs:DescribeLogGroups", "securityhub:GetFindings"],
        "{log}"
    );
    assert!(calls.iter().all(|c| c.succeeded()), "{log}");
}

#[tokio::test]
async fn access_denied_query_protocol() {
    let proxy = proxy().await;
    proxy.fail("iam:ListMFADevices", Fault::AccessDenied);
    let clients = Clients::new(&proxy.endpoint());

    let result = clients.iam.list_mfa_devices().user_name("nobody").send().await;

    let log = format_calls(&proxy.calls());
    let error = result.expect_err("the proxy denies ListMFADevices");
    assert_eq!(error.code(), Some("AccessDenied"), "{log}");
    assert!(error.message().unwrap_or_default().contains("iam:ListMFADevices"), "{log}");
}

#[tokio::test]
async fn access_denied_json_protocol() {
    let proxy = proxy().await;
    proxy.fail("logs:*", Fault::AccessDenied);
    let clients = Clients::new(&proxy.endpoint());

    let result = clients.logs.filter_log_events().log_group_name("any").send().await;

    let log = format_calls(&proxy.calls());
    let error = result.expect_err("the proxy denies every logs call");
    assert_eq!(error.code(), Some("AccessDeniedException"), "{log}");
    assert_eq!(proxy.operations(), ["logs:FilterLogEvents"], "{log}");
}

#[tokio::test]
async fn access_denied_rest_protocol() {
    let proxy = proxy().await;
    proxy.fail("securityhub:GetFindings", Fault::AccessDenied);
    let clients = Clients::new(&proxy.endpoint());

    let result = clients.security_hub.get_findings().send().await;

    let log = format_calls(&proxy.calls());
    let error = result.expect_err("the proxy denies GetFindings");
    assert_eq!(error.code(), Some("AccessDeniedException"), "{log}");
}

#[tokio::test]
async fn throttling_retried_then_returned() {
    let proxy = proxy().await;
    proxy.fail("sts:GetCallerIdentity", Fault::Throttling);
    let clients = Clients::new(&proxy.endpoint());

    let result = clients.sts.get_caller_identity().send().await;

    let calls = proxy.calls();
    let log = format_calls(&calls);
    let error = result.expect_err("every attempt is throttled");
    assert_eq!(error.code(), Some("Throttling"), "{log}");
    // The SDK's standard retry mode makes 3 attempts; only throttling-type errors are retried.
    assert_eq!(calls.len(), 3, "the SDK did not retry the throttling error as throttling\n{log}");
}

#[tokio::test]
async fn throttling_once_then_success() {
    let proxy = proxy().await;
    proxy.add_rule(Rule::new("logs:DescribeLogGroups", Fault::Throttling).times(1));
    let clients = Clients::new(&proxy.endpoint());

    let result = clients.logs.describe_log_groups().limit(1).send().await;

    let calls = proxy.calls();
    let log = format_calls(&calls);
    assert!(result.is_ok(), "{result:?}\n{log}");
    assert_eq!(calls.len(), 2, "{log}");
    assert_eq!(calls[0].fault, Some(Fault::Throttling), "{log}");
    assert!(calls[1].succeeded(), "{log}");
}

#[tokio::test]
async fn hang_outlasts_client_timeout() {
    let proxy = proxy().await;
    proxy.fail("sts:GetCallerIdentity", Fault::hang());
    let config = sdk_config(&proxy.endpoint())
        .into_builder()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(800))
                .build(),
        )
        .build();
    let sts = aws_sdk_sts::Client::new(&config);

    let started = Instant::now();
    let result = sts.get_caller_identity().send().await;

    let calls = proxy.calls();
    let log = format_calls(&calls);
    assert!(result.is_err(), "the call returned instead of timing out\n{log}");
    assert!(started.elapsed() < Duration::from_secs(10), "{log}");
    assert_eq!(calls[0].status, None, "the hung call got a response\n{log}");
}

#[tokio::test]
async fn delay_applies_to_every_call() {
    let proxy = proxy().await;
    proxy.set_delay(Duration::from_millis(150));
    let clients = Clients::new(&proxy.endpoint());

    let started = Instant::now();
    clients.sts.get_caller_identity().send().await.expect("GetCallerIdentity");
    clients.sts.get_caller_identity().send().await.expect("GetCallerIdentity");
    let elapsed = started.elapsed();

    assert!(elapsed >= Duration::from_millis(300), "two calls took {elapsed:?}");
}

#[tokio::test]
async fn seeded_incident_present() {
    let moto = moto::shared().await;
    let clients = Clients::new(&moto.endpoint());

    let incident = seed::seed_incident(&clients).await.expect("incident seeded");

    let description = incident.describe_events();
    let keys = clients.iam.list_access_keys().user_name(&incident.user_name).send().await.expect("ListAccessKeys");
    let mut key_ids: Vec<&str> = keys.access_key_metadata().iter().filter_map(|k| k.access_key_id()).collect();
    key_ids.sort();
    let mut expected = vec![incident.leaked_key.as_str(), incident.second_key.as_str()];
    expected.sort();
    assert_eq!(key_ids, expected, "{description}");

    let mfa = clients.iam.list_mfa_devices().user_name(&incident.user_name).send().await.expect("ListMFADevices");
    assert!(mfa.mfa_devices().is_empty(), "{description}");

    let policies = clients.iam.list_user_policies().user_name(&incident.user_name).send().await.expect("ListUserPolicies");
    assert_eq!(policies.policy_names(), [incident.admin_policy.clone()], "{description}");

    let events = clients
        .logs
        .filter_log_events()
        .log_group_name(&incident.log_group)
        .send()
        .await
        .expect("FilterLogEvents");
    let seeded = incident.history_calls.len()
        + incident.key_calls.len()
        + incident.session_calls.len()
        + incident.near_misses.len()
        + incident.unreadable_messages;
    assert_eq!(events.events().len(), seeded, "{description}");

    let secrets = clients.secrets.list_secrets().send().await.expect("ListSecrets");
    let described = secrets
        .secret_list()
        .iter()
        .find(|s| s.name() == Some(incident.secret_name.as_str()))
        .and_then(|s| s.description());
    assert!(described.is_some_and(|d| d.contains(&incident.user_name)), "{described:?}");
}

#[tokio::test]
async fn fixed_response_replaces_call() {
    let proxy = proxy().await;
    proxy.fail("securityhub:GetFindings", Fault::Respond { status: 200, body: r#"{"Findings":[]}"# });
    let clients = Clients::new(&proxy.endpoint());

    let result = clients.security_hub.get_findings().send().await;

    let calls = proxy.calls();
    let log = format_calls(&calls);
    let output = result.unwrap_or_else(|e| panic!("{e:?}\n{log}"));
    assert!(output.findings().is_empty(), "{log}");
    assert_eq!(calls[0].upstream, None, "the call was forwarded\n{log}");
}
