//! End-to-end tests of containment against the moto emulator. Each action changes exactly
//! what its plan describes, read back from IAM. The new secret of a rotation is readable
//! from Secrets Manager and appears in no returned value, log line, store file or
//! command-line output. Refused preconditions change nothing, and a secret that cannot be
//! stored leaves no active key behind.
//!
//! The log lines of this test binary are captured at `trace` level from every crate, the
//! AWS SDK included, so the secret checks cover the SDK's own request logging.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use keycheck_core::AccessKeyId;
use keycheck_core::approval::ActionKind;
use keycheck_core::evidence::KeyStatus;
use keycheck_core::evidence::live::{LiveConfig, LiveEvidence, OPERATIONS, Purpose, QueryMode};
use keycheck_core::policy::decode_document;
use keycheck_core::remediation::{
    ContainConfig, DEFAULT_QUARANTINE_POLICY_ARN, DEFAULT_REVOKE_POLICY_NAME, NewKeyCleanup, Plan,
    PostCheckVerdict, Principal, RemediationError, Remediator, Target, TargetSession,
    check_after_deactivation,
};
use keycheck_core::store::{AuditEvent, Store};
use keycheck_tests::aws::{ACCOUNT_ID, Clients, REGION, test_credentials};
use keycheck_tests::live;
use keycheck_tests::moto;
use keycheck_tests::proxy::{Fault, Proxy, format_calls};
use keycheck_tests::seed::{random_temporary_key, unique_suffix};
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

// ---------------------------------------------------------------------------------------
// Log capture

/// Every log line this test binary writes, from every crate at every level.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the capturing subscriber for the whole binary on first use.
fn capture_logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(buffer.clone())
            .try_init()
            .expect("no other global subscriber in this test binary");
        buffer
    })
}

fn captured_logs() -> String {
    let bytes = capture_logs()
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Asserts that neither `secret` nor its first half appears in `text`.
fn assert_no_secret(text: &str, secret: &str, place: &str) {
    assert!(
        secret.len() >= 40,
        "the secret to look for is too short to mean anything: {} characters",
        secret.len()
    );
    assert!(
        !text.contains(secret),
        "the new secret access key appears in {place}"
    );
    assert!(
        !text.contains(&secret[..20]),
        "the first half of the new secret access key appears in {place}"
    );
}

// ---------------------------------------------------------------------------------------
// Emulator, seeding and reading IAM back

async fn emulator() -> (Clients, String) {
    let moto = moto::shared().await;
    (Clients::new(&moto.endpoint()), moto.endpoint())
}

/// Returns the `[aws]` settings that point keycheck at `endpoint` in the test region.
fn aws_config(endpoint: &str) -> LiveConfig {
    keycheck_tests::aws::assert_loopback(endpoint);
    LiveConfig {
        region: Some(REGION.to_string()),
        regions: vec![REGION.to_string()],
        endpoint_url: Some(endpoint.to_string()),
        call_timeout: Duration::from_secs(2),
        operation_timeout: live::TEST_OPERATION_TIMEOUT,
        query_timeout: Duration::from_secs(10),
        region_timeout: Duration::from_secs(20),
        ..LiveConfig::default()
    }
}

fn new_investigation_id() -> String {
    format!("kc-{}", unique_suffix())
}

fn remediator(endpoint: &str, investigation_id: &str) -> Remediator {
    keycheck_tests::install_crypto_provider();
    Remediator::with_credentials(
        aws_config(endpoint),
        ContainConfig::default(),
        investigation_id,
        test_credentials(),
    )
    .expect("valid test configuration")
}

/// Resolves the target of `key` through the live evidence source, as the command line does.
async fn resolve(
    config: LiveConfig,
    key: &str,
    investigation_id: &str,
    read_sessions: bool,
) -> Target {
    keycheck_tests::install_crypto_provider();
    let evidence = LiveEvidence::with_credentials(config, investigation_id, test_credentials())
        .expect("valid test configuration");
    let key: AccessKeyId = key.parse().expect("the emulator issues valid key IDs");
    Target::resolve(&evidence, &key, investigation_id, read_sessions, Utc::now())
        .await
        .unwrap_or_else(|error| panic!("resolving {key} failed: {error}"))
}

/// Creates an IAM user with `keys` access keys and returns its name and key IDs.
async fn create_user(clients: &Clients, label: &str, keys: usize) -> (String, Vec<String>) {
    let name = format!("kc-{}-{label}", unique_suffix());
    clients
        .iam
        .create_user()
        .user_name(&name)
        .send()
        .await
        .expect("CreateUser");
    let mut key_ids = Vec::new();
    for _ in 0..keys {
        let created = clients
            .iam
            .create_access_key()
            .user_name(&name)
            .send()
            .await
            .expect("CreateAccessKey");
        key_ids.push(
            created
                .access_key()
                .expect("a key")
                .access_key_id()
                .to_string(),
        );
    }
    (name, key_ids)
}

async fn create_role(clients: &Clients, label: &str) -> String {
    let name = format!("kc-{}-{label}", unique_suffix());
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT_ID}:root")}, "Action": "sts:AssumeRole"}]
    });
    clients
        .iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("CreateRole");
    name
}

/// The IAM state of a user or role: its access keys with their status, its attached
/// managed policies, and its inline policies with their documents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct IamState {
    keys: BTreeMap<String, String>,
    attached: BTreeSet<String>,
    inline: BTreeMap<String, Value>,
}

async fn user_state(clients: &Clients, user: &str) -> IamState {
    let iam = &clients.iam;
    let mut state = IamState::default();
    let keys = iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .expect("ListAccessKeys");
    for key in keys.access_key_metadata() {
        let status = key
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        state
            .keys
            .insert(key.access_key_id().unwrap_or_default().to_string(), status);
    }
    let attached = iam
        .list_attached_user_policies()
        .user_name(user)
        .send()
        .await
        .expect("ListAttachedUserPolicies");
    state.attached = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    let names = iam
        .list_user_policies()
        .user_name(user)
        .send()
        .await
        .expect("ListUserPolicies");
    for name in names.policy_names() {
        let policy = iam
            .get_user_policy()
            .user_name(user)
            .policy_name(name)
            .send()
            .await
            .expect("GetUserPolicy");
        state.inline.insert(
            name.clone(),
            decode_document(policy.policy_document()).expect("a policy document"),
        );
    }
    state
}

async fn role_state(clients: &Clients, role: &str) -> IamState {
    let iam = &clients.iam;
    let mut state = IamState::default();
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("ListAttachedRolePolicies");
    state.attached = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    let names = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("ListRolePolicies");
    for name in names.policy_names() {
        let policy = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .expect("GetRolePolicy");
        state.inline.insert(
            name.clone(),
            decode_document(policy.policy_document()).expect("a policy document"),
        );
    }
    state
}

/// Returns the cutoff of a revoke-sessions policy after checking its shape.
fn revoke_cutoff(document: &Value) -> DateTime<Utc> {
    let statement = &document["Statement"][0];
    assert_eq!(statement["Effect"], "Deny", "{document}");
    assert_eq!(statement["Action"], "*", "{document}");
    assert_eq!(statement["Resource"], "*", "{document}");
    let time = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        .as_str()
        .unwrap_or_else(|| panic!("no DateLessThan aws:TokenIssueTime condition in {document}"));
    DateTime::parse_from_rfc3339(time)
        .expect("an RFC 3339 time")
        .with_timezone(&Utc)
}

async fn secret_names_with_prefix(clients: &Clients, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut pages = clients.secrets.list_secrets().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.expect("ListSecrets");
        for secret in page.secret_list() {
            if let Some(name) = secret.name().filter(|name| name.starts_with(prefix)) {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// Reads the secret access key of a created key from the proxy's record of the
/// CreateAccessKey response.
fn secret_from_proxy(proxy: &Proxy) -> String {
    let calls = proxy.calls();
    let call = calls
        .iter()
        .find(|call| call.operation == "iam:CreateAccessKey")
        .unwrap_or_else(|| {
            panic!(
                "no CreateAccessKey call went through the proxy:\n{}",
                format_calls(&calls)
            )
        });
    let start = call
        .response
        .find("<SecretAccessKey>")
        .map(|i| i + "<SecretAccessKey>".len());
    let end = call.response.find("</SecretAccessKey>");
    match (start, end) {
        (Some(start), Some(end)) => call.response[start..end].to_string(),
        _ => panic!(
            "the recorded CreateAccessKey response contains no whole secret: {}",
            call.response
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Deactivate

#[tokio::test]
async fn deactivate_changes_only_this_key() {
    capture_logs();
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "deactivate", 2).await;
    let before = user_state(&clients, &user).await;
    let investigation = new_investigation_id();

    let target = resolve(aws_config(&endpoint), &keys[0], &investigation, false).await;
    assert_eq!(target.owner, Some(Principal::user(ACCOUNT_ID, &user)));
    let remediator = remediator(&endpoint, &investigation);
    let plan = remediator
        .plan(ActionKind::Deactivate, &target)
        .await
        .expect("plan");
    let Plan::Deactivate(planned) = &plan else {
        panic!("not a deactivation plan: {plan:?}")
    };
    assert_eq!(planned.status, KeyStatus::Active);
    let others: Vec<&str> = planned
        .other_keys
        .iter()
        .map(|k| k.key_id.as_str())
        .collect();
    assert_eq!(others, [keys[1].as_str()]);
    assert_eq!(
        user_state(&clients, &user).await,
        before,
        "planning changed IAM"
    );

    let outcome = remediator.execute(&plan).await.expect("deactivation");

    let mut expected = before.clone();
    expected
        .keys
        .insert(keys[0].clone(), "Inactive".to_string());
    assert_eq!(
        user_state(&clients, &user).await,
        expected,
        "IAM after deactivation, plan: {:?}",
        plan.describe()
    );
    assert_eq!(outcome.changes.len(), 1, "{outcome:?}");
    assert_eq!(outcome.changes[0].operation, "iam:UpdateAccessKey");
    assert!(
        outcome.changes[0].request_id.is_some(),
        "no request ID in {outcome:?}"
    );
    assert!(outcome.deactivated_at.is_some());
    assert!(
        captured_logs().contains("access key deactivated"),
        "no info line for the change"
    );
}

#[tokio::test]
async fn deactivate_inactive_key_reported() {
    capture_logs();
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "inactive", 1).await;
    clients
        .iam
        .update_access_key()
        .user_name(&user)
        .access_key_id(&keys[0])
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .expect("UpdateAccessKey");
    let before = user_state(&clients, &user).await;
    let investigation = new_investigation_id();

    let target = resolve(aws_config(&endpoint), &keys[0], &investigation, false).await;
    let remediator = remediator(&endpoint, &investigation);
    let plan = remediator
        .plan(ActionKind::Deactivate, &target)
        .await
        .expect("plan");
    assert!(plan.changes_nothing(), "{plan:?}");
    let outcome = remediator
        .execute(&plan)
        .await
        .expect("an inactive key is reported, not an error");

    assert!(outcome.changes.is_empty(), "{outcome:?}");
    assert!(
        outcome
            .notes
            .iter()
            .any(|note| note.contains("already inactive")),
        "{outcome:?}"
    );
    assert_eq!(remediator.call_stats().calls_of("iam:UpdateAccessKey"), 0);
    assert_eq!(user_state(&clients, &user).await, before);
}

#[tokio::test]
async fn deactivate_missing_key_fails() {
    capture_logs();
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "deleted", 1).await;
    clients
        .iam
        .delete_access_key()
        .user_name(&user)
        .access_key_id(&keys[0])
        .send()
        .await
        .expect("DeleteAccessKey");
    let investigation = new_investigation_id();
    let target = Target {
        investigation_id: investigation.clone(),
        key: keys[0].parse().unwrap(),
        account_id: ACCOUNT_ID.to_string(),
        owner: None,
        sessions: Vec::new(),
    };

    let error = remediator(&endpoint, &investigation)
        .plan(ActionKind::Deactivate, &target)
        .await
        .expect_err("a deleted key cannot be deactivated");

    assert!(
        matches!(error, RemediationError::KeyNotFound { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "access key {} not found in account {ACCOUNT_ID}",
            keys[0]
        )),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------
// Rotate

#[tokio::test]
async fn rotate_stores_new_key_in_secret() {
    capture_logs();
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "rotate", 1).await;
    let before = user_state(&clients, &user).await;
    let investigation = new_investigation_id();

    let target = resolve(aws_config(&endpoint), &keys[0], &investigation, false).await;
    let remediator = remediator(&endpoint, &investigation);
    let plan = remediator
        .plan(ActionKind::Rotate, &target)
        .await
        .expect("plan");
    let Plan::Rotate(planned) = &plan else {
        panic!("not a rotation plan: {plan:?}")
    };
    assert_eq!(
        planned.secret_name,
        format!("keycheck/rotated/{user}/{{new_key_id}}")
    );
    assert_eq!(
        user_state(&clients, &user).await,
        before,
        "planning changed IAM"
    );

    let outcome = remediator.execute(&plan).await.expect("rotation");

    let new_key = outcome
        .new_key_id
        .clone()
        .expect("the outcome names the new key");
    let secret_arn = outcome
        .secret_arn
        .clone()
        .expect("the outcome names the secret");
    let mut expected = before.clone();
    expected
        .keys
        .insert(keys[0].clone(), "Inactive".to_string());
    expected.keys.insert(new_key.clone(), "Active".to_string());
    assert_eq!(
        user_state(&clients, &user).await,
        expected,
        "IAM after rotation, plan: {:?}",
        plan.describe()
    );
    let operations: Vec<&str> = outcome
        .changes
        .iter()
        .map(|c| c.operation.as_str())
        .collect();
    assert_eq!(
        operations,
        [
            "iam:CreateAccessKey",
            "secretsmanager:CreateSecret",
            "iam:UpdateAccessKey"
        ]
    );

    let stored = clients
        .secrets
        .get_secret_value()
        .secret_id(&secret_arn)
        .send()
        .await
        .expect("GetSecretValue");
    assert_eq!(
        stored.name(),
        Some(format!("keycheck/rotated/{user}/{new_key}").as_str())
    );
    let value: Value = serde_json::from_str(stored.secret_string().expect("a string secret"))
        .expect("a JSON secret");
    assert_eq!(value["AccessKeyId"], new_key.as_str());
    assert_eq!(value["ReplacesAccessKeyId"], keys[0].as_str());
    let secret = value["SecretAccessKey"]
        .as_str()
        .expect("the secret access key")
        .to_string();
    assert_eq!(secret.len(), 40, "a secret access key has 40 characters");

    let described = clients
        .secrets
        .describe_secret()
        .secret_id(&secret_arn)
        .send()
        .await
        .expect("DescribeSecret");
    let tags: BTreeMap<&str, &str> = described
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    assert_eq!(
        tags.get("keycheck:investigation-id"),
        Some(&investigation.as_str()),
        "{tags:?}"
    );
    assert_eq!(
        tags.get("keycheck:replaced-access-key-id"),
        Some(&keys[0].as_str()),
        "{tags:?}"
    );

    let returned = [
        ("the outcome's Debug", format!("{outcome:?}")),
        (
            "the outcome's JSON",
            serde_json::to_string(&outcome).unwrap(),
        ),
        ("the outcome's description", outcome.describe().join("\n")),
        ("the plan's Debug", format!("{plan:?}")),
        ("the plan's JSON", plan.to_json()),
    ];
    for (place, text) in returned {
        assert_no_secret(&text, &secret, place);
    }
    let logs = captured_logs();
    assert!(
        logs.contains("access key created") && logs.contains(&new_key),
        "the rotation's info lines are not captured"
    );
    assert!(
        logs.contains("transmitting request"),
        "the SDK's trace lines are not captured, so the check below proves nothing"
    );
    assert_no_secret(&logs, &secret, "the log lines");
    assert!(
        remediator.call_stats().unlisted().is_empty(),
        "calls OPERATIONS lacks: {:?}",
        remediator.call_stats().unlisted()
    );
}

#[tokio::test]
async fn rotate_refused_with_two_keys() {
    capture_logs();
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "twokeys", 2).await;
    let before = user_state(&clients, &user).await;
    let investigation = new_investigation_id();
    let target = resolve(aws_config(&endpoint), &keys[0], &investigation, false).await;
    let remediator = remediator(&endpoint, &investigation);

    let error = remediator
        .plan(ActionKind::Rotate, &target)
        .await
        .expect_err("two keys leave no room");

    assert!(
        matches!(error, RemediationError::TooManyKeys { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("IAM user {user} already has two access keys")),
        "{message}"
    );
    assert!(
        message.contains("delete or deactivate one first"),
        "{message}"
    );
    assert_eq!(user_state(&clients, &user).await, before);
    assert_eq!(remediator.call_stats().calls_of("iam:CreateAccessKey"), 0);
}

#[tokio::test]
async fn rotate_rechecks_key_count() {
    capture_logs();
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "recheck", 1).await;
    let investigation = new_investigation_id();
    let target = resolve(aws_config(&endpoint), &keys[0], &investigation, false).await;
    let remediator = remediator(&endpoint, &investigation);
    let plan = remediator
        .plan(ActionKind::Rotate, &target)
        .await
        .expect("one key leaves room");

    // A second key appears between the plan and its execution.
    clients
        .iam
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .expect("CreateAccessKey");
    let before = user_state(&clients, &user).await;
    let error = remediator
        .execute(&plan)
        .await
        .expect_err("the execution checks the key count again");

    assert!(
        matches!(error, RemediationError::TooManyKeys { .. }),
        "{error:?}"
    );
    assert_eq!(
        user_state(&clients, &user).await,
        before,
        "the refused rotation changed IAM"
    );
    assert_eq!(remediator.call_stats().calls_of("iam:CreateAccessKey"), 0);
    let secrets = secret_names_with_prefix(&clients, &format!("keycheck/rotated/{user}/")).await;
    assert!(secrets.is_empty(), "secrets created: {secrets:?}");
}

#[tokio::test]
async fn rotate_secret_denied_deletes_new_key() {
    capture_logs();
    let (clients, endpoint) = emulator().await;
    let proxy = live::start_proxy().await;
    proxy.fail("secretsmanager:CreateSecret", Fault::AccessDenied);
    let (user, keys) = create_user(&clients, "denied", 1).await;
    let before = user_state(&clients, &user).await;
    let investigation = new_investigation_id();
    let target = resolve(aws_config(&endpoint), &keys[0], &investigation, false).await;
    let remediator = remediator(&proxy.endpoint(), &investigation);
    let plan = remediator
        .plan(ActionKind::Rotate, &target)
        .await
        .expect("plan");

    let error = remediator
        .execute(&plan)
        .await
        .expect_err("CreateSecret is denied");

    let calls = format_calls(&proxy.calls());
    let RemediationError::CreateSecret {
        failure, cleanup, ..
    } = &error
    else {
        panic!("expected a CreateSecret error, got {error:?}\n{calls}");
    };
    assert_eq!(failure.permission, "secretsmanager:CreateSecret");
    assert!(
        matches!(cleanup, NewKeyCleanup::Deleted { .. }),
        "{cleanup:?}\n{calls}"
    );
    let message = error.to_string();
    assert!(message.contains("access denied"), "{message}");
    assert!(
        message.contains("give keycheck secretsmanager:CreateSecret"),
        "{message}"
    );
    assert!(message.contains("deleted the new key"), "{message}");
    assert_eq!(
        user_state(&clients, &user).await,
        before,
        "the failed rotation left a change behind\n{calls}"
    );
    let operations = proxy.operations();
    assert!(
        operations.iter().any(|op| op == "iam:DeleteAccessKey"),
        "{calls}"
    );
    assert!(
        !operations.iter().any(|op| op == "iam:UpdateAccessKey"),
        "the old key was touched\n{calls}"
    );

    let secret = secret_from_proxy(&proxy);
    assert_no_secret(&format!("{error:?}"), &secret, "the error's Debug");
    assert_no_secret(&message, &secret, "the error message");
    assert_no_secret(&captured_logs(), &secret, "the log lines");
}

#[tokio::test]
async fn rotate_delete_denied_deactivates_new_key() {
    capture_logs();
    let (clients, endpoint) = emulator().await;
    let proxy = live::start_proxy().await;
    proxy.fail("secretsmanager:CreateSecret", Fault::AccessDenied);
    proxy.fail("iam:DeleteAccessKey", Fault::AccessDenied);
    let (user, keys) = create_user(&clients, "nodelete", 1).await;
    let investigation = new_investigation_id();
    let target = resolve(aws_config(&endpoint), &keys[0], &investigation, false).await;
    let remediator = remediator(&proxy.endpoint(), &investigation);
    let plan = remediator
        .plan(ActionKind::Rotate, &target)
        .await
        .expect("plan");

    let error = remediator
        .execute(&plan)
        .await
        .expect_err("CreateSecret is denied");

    let calls = format_calls(&proxy.calls());
    let RemediationError::CreateSecret {
        cleanup: NewKeyCleanup::Deactivated { key_id, .. },
        ..
    } = &error
    else {
        panic!("expected the new key to be deactivated, got {error:?}\n{calls}");
    };
    assert!(
        error.to_string().contains("so keycheck deactivated it"),
        "{error}"
    );
    let after = user_state(&clients, &user).await;
    assert_eq!(
        after.keys.get(key_id).map(String::as_str),
        Some("Inactive"),
        "{after:?}"
    );
    assert_eq!(
        after.keys.get(&keys[0]).map(String::as_str),
        Some("Active"),
        "the old key must stay as it was: {after:?}"
    );
    let active: Vec<&String> = after
        .keys
        .iter()
        .filter(|(_, s)| *s == "Active")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        active,
        [&keys[0]],
        "an active key besides the old one is left behind"
    );
}

// ---------------------------------------------------------------------------------------
// Revoke sessions

#[tokio::test]
async fn revoke_sessions_on_role_of_temporary_key() {
    capture_logs();
    let started = Utc::now().trunc_subsecs(0);
    let (clients, endpoint) = emulator().await;
    let role = create_role(&clients, "deploy").await;
    let bystander = create_role(&clients, "bystander").await;
    let investigation = new_investigation_id();
    let target = Target {
        investigation_id: investigation.clone(),
        key: random_temporary_key().parse().unwrap(),
        account_id: ACCOUNT_ID.to_string(),
        owner: Some(Principal::role(ACCOUNT_ID, &role)),
        sessions: Vec::new(),
    };
    let remediator = remediator(&endpoint, &investigation);

    let plan = remediator
        .plan(ActionKind::RevokeSessions, &target)
        .await
        .expect("plan");
    let Plan::RevokeSessions(planned) = &plan else {
        panic!("not a revocation plan: {plan:?}")
    };
    assert_eq!(planned.principals.len(), 1, "{planned:?}");
    assert_eq!(
        planned.principals[0].principal,
        Principal::role(ACCOUNT_ID, &role)
    );
    assert!(!planned.principals[0].replaces_policy);
    let outcome = remediator.execute(&plan).await.expect("revocation");
    let finished = Utc::now();

    let state = role_state(&clients, &role).await;
    assert_eq!(
        state.inline.keys().collect::<Vec<_>>(),
        [DEFAULT_REVOKE_POLICY_NAME],
        "{state:?}"
    );
    assert!(state.attached.is_empty(), "{state:?}");
    let cutoff = revoke_cutoff(&state.inline[DEFAULT_REVOKE_POLICY_NAME]);
    assert!(
        started <= cutoff && cutoff <= finished,
        "cutoff {cutoff} is not between {started} and {finished}"
    );
    assert_eq!(
        role_state(&clients, &bystander).await,
        IamState::default(),
        "another role was changed"
    );
    assert_eq!(outcome.changes[0].operation, "iam:PutRolePolicy");
    assert!(outcome.changes[0].request_id.is_some(), "{outcome:?}");
}

#[tokio::test]
async fn revoke_sessions_replaces_older_policy() {
    capture_logs();
    let started = Utc::now().trunc_subsecs(0);
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "sessions", 1).await;
    let role = create_role(&clients, "assumed").await;
    let old_policy = keycheck_core::remediation::revoke::policy_document(
        "2020-01-01T00:00:00Z".parse().unwrap(),
    );
    clients
        .iam
        .put_user_policy()
        .user_name(&user)
        .policy_name(DEFAULT_REVOKE_POLICY_NAME)
        .policy_document(old_policy.to_string())
        .send()
        .await
        .expect("PutUserPolicy");
    let user_before = user_state(&clients, &user).await;
    let investigation = new_investigation_id();
    let session = |key_id: String, call: &str, principal: Principal| TargetSession {
        key_id,
        call: call.to_string(),
        issued_at: Utc::now(),
        principal: Some(principal),
    };
    let target = Target {
        investigation_id: investigation.clone(),
        key: keys[0].parse().unwrap(),
        account_id: ACCOUNT_ID.to_string(),
        owner: Some(Principal::user(ACCOUNT_ID, &user)),
        sessions: vec![
            session(
                random_temporary_key(),
                "sts:GetSessionToken",
                Principal::user(ACCOUNT_ID, &user),
            ),
            session(
                random_temporary_key(),
                "sts:AssumeRole",
                Principal::role(ACCOUNT_ID, &role),
            ),
        ],
    };
    let remediator = remediator(&endpoint, &investigation);

    let plan = remediator
        .plan(ActionKind::RevokeSessions, &target)
        .await
        .expect("plan");
    let Plan::RevokeSessions(planned) = &plan else {
        panic!("not a revocation plan: {plan:?}")
    };
    assert!(planned.principals[0].replaces_policy, "{planned:?}");
    assert_eq!(
        planned.principals[0].existing_cutoff,
        "2020-01-01T00:00:00Z".parse().ok()
    );
    assert!(!planned.principals[1].replaces_policy, "{planned:?}");
    remediator.execute(&plan).await.expect("revocation");
    let finished = Utc::now();

    let user_after = user_state(&clients, &user).await;
    assert_eq!(user_after.keys, user_before.keys, "the user's keys changed");
    assert_eq!(user_after.attached, user_before.attached);
    assert_eq!(user_after.inline.len(), 1, "{user_after:?}");
    let user_cutoff = revoke_cutoff(&user_after.inline[DEFAULT_REVOKE_POLICY_NAME]);
    assert!(
        started <= user_cutoff && user_cutoff <= finished,
        "user cutoff {user_cutoff} is not between {started} and {finished}"
    );
    let role_cutoff =
        revoke_cutoff(&role_state(&clients, &role).await.inline[DEFAULT_REVOKE_POLICY_NAME]);
    assert!(
        started <= role_cutoff && role_cutoff <= finished,
        "role cutoff {role_cutoff}"
    );
}

#[tokio::test]
async fn revoke_sessions_found_in_cloudtrail() {
    capture_logs();
    let started = Utc::now().trunc_subsecs(0);
    let incident = live::seed_incident().await;
    let (clients, endpoint) = emulator().await;
    let investigation = new_investigation_id();
    let config = live::live_config(&endpoint, &incident, QueryMode::FilterLogEvents);

    let target = resolve(config, &incident.leaked_key, &investigation, true).await;

    let minted = target
        .sessions
        .iter()
        .find(|session| session.key_id == incident.minted_key)
        .unwrap_or_else(|| {
            panic!(
                "the session issued with GetSessionToken is missing: {target:?}\n{}",
                incident.describe_events()
            )
        });
    let owner = Principal::user(ACCOUNT_ID, &incident.user_name);
    assert_eq!(minted.principal.as_ref(), Some(&owner), "{target:?}");
    assert!(
        !target
            .sessions
            .iter()
            .any(|s| s.key_id == incident.other_minted_key),
        "another user's session was taken for the key's: {target:?}"
    );
    let remediator = remediator(&endpoint, &investigation);
    let plan = remediator
        .plan(ActionKind::RevokeSessions, &target)
        .await
        .expect("plan");
    remediator.execute(&plan).await.expect("revocation");
    let finished = Utc::now();

    let state = user_state(&clients, &incident.user_name).await;
    let cutoff = revoke_cutoff(&state.inline[DEFAULT_REVOKE_POLICY_NAME]);
    assert!(started <= cutoff, "cutoff {cutoff} before the revocation started");
    assert!(cutoff <= finished, "cutoff {cutoff} after the revocation finished");
    let other = user_state(&clients, &incident.other_user_name).await;
    assert!(
        !other.inline.contains_key(DEFAULT_REVOKE_POLICY_NAME),
        "the other user's sessions were revoked"
    );
}

// ---------------------------------------------------------------------------------------
// Post-deactivation check

#[tokio::test]
async fn post_check_finds_session_calls() {
    capture_logs();
    let incident = live::seed_incident().await;
    let (_, endpoint) = emulator().await;
    let minting = incident
        .key_calls
        .iter()
        .find(|call| call.call == "sts:GetSessionToken")
        .unwrap_or_else(|| {
            panic!(
                "the incident has no GetSessionToken call\n{}",
                incident.describe_events()
            )
        });
    // The key is deactivated after it issued the session and before the session is used.
    let deactivated_at = minting.time + chrono::Duration::minutes(5);
    let investigation = new_investigation_id();
    keycheck_tests::install_crypto_provider();
    let config = live::live_config(&endpoint, &incident, QueryMode::FilterLogEvents);
    let evidence = LiveEvidence::with_credentials(config, &investigation, test_credentials())
        .expect("valid test configuration");
    let key: AccessKeyId = incident.leaked_key.parse().unwrap();

    // No session is passed in: the check must find the session through the call that issued it.
    let report = check_after_deactivation(&evidence, &key, &[], deactivated_at, Utc::now())
        .await
        .expect("the check reads CloudTrail");

    let expected_key_calls = incident
        .key_calls
        .iter()
        .filter(|c| c.time >= deactivated_at)
        .count();
    let expected_session_calls = incident
        .session_calls
        .iter()
        .filter(|c| c.time >= deactivated_at)
        .count();
    let events = incident.describe_events();
    assert_eq!(report.key_calls, expected_key_calls, "{report:?}\n{events}");
    assert_eq!(
        report.session_calls, expected_session_calls,
        "{report:?}\n{events}"
    );
    assert_eq!(
        report.sessions_used,
        [incident.minted_key.clone()],
        "{report:?}\n{events}"
    );
    assert_eq!(
        report.verdict,
        PostCheckVerdict::SessionsActive,
        "{report:?}\n{events}"
    );
    assert!(
        report.summary().contains("revoke these sessions"),
        "{}",
        report.summary()
    );
}

// ---------------------------------------------------------------------------------------
// Quarantine

#[tokio::test]
async fn quarantine_attaches_only_policy() {
    capture_logs();
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "quarantine", 2).await;
    clients
        .iam
        .attach_user_policy()
        .user_name(&user)
        .policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
        .send()
        .await
        .expect("AttachUserPolicy");
    let before = user_state(&clients, &user).await;
    let investigation = new_investigation_id();
    let target = resolve(aws_config(&endpoint), &keys[0], &investigation, false).await;
    let remediator = remediator(&endpoint, &investigation);

    let plan = remediator
        .plan(ActionKind::Quarantine, &target)
        .await
        .expect("plan");
    let Plan::Quarantine(planned) = &plan else {
        panic!("not a quarantine plan: {plan:?}")
    };
    assert_eq!(planned.principal, Principal::user(ACCOUNT_ID, &user));
    assert!(!planned.already_attached);
    let outcome = remediator.execute(&plan).await.expect("quarantine");

    let mut expected = before.clone();
    expected
        .attached
        .insert(DEFAULT_QUARANTINE_POLICY_ARN.to_string());
    assert_eq!(
        user_state(&clients, &user).await,
        expected,
        "IAM after quarantine, plan: {:?}",
        plan.describe()
    );
    assert_eq!(outcome.changes.len(), 1, "{outcome:?}");
    assert!(outcome.changes[0].request_id.is_some(), "{outcome:?}");

    // A second run finds the policy attached and changes nothing.
    let again = remediator
        .plan(ActionKind::Quarantine, &target)
        .await
        .expect("plan");
    assert!(again.changes_nothing(), "{again:?}");
    let repeated = remediator
        .execute(&again)
        .await
        .expect("an attached policy is reported, not an error");
    assert!(repeated.changes.is_empty(), "{repeated:?}");
    assert!(
        repeated
            .notes
            .iter()
            .any(|n| n.contains("already attached")),
        "{repeated:?}"
    );
    assert_eq!(remediator.call_stats().calls_of("iam:AttachUserPolicy"), 1);
    assert_eq!(user_state(&clients, &user).await, expected);
}

#[tokio::test]
async fn quarantine_role_of_temporary_key() {
    capture_logs();
    let (clients, endpoint) = emulator().await;
    let role = create_role(&clients, "quarantined").await;
    let investigation = new_investigation_id();
    let target = Target {
        investigation_id: investigation.clone(),
        key: random_temporary_key().parse().unwrap(),
        account_id: ACCOUNT_ID.to_string(),
        owner: Some(Principal::role(ACCOUNT_ID, &role)),
        sessions: Vec::new(),
    };
    let remediator = remediator(&endpoint, &investigation);

    let plan = remediator
        .plan(ActionKind::Quarantine, &target)
        .await
        .expect("plan");
    remediator.execute(&plan).await.expect("quarantine");

    let state = role_state(&clients, &role).await;
    assert_eq!(
        state.attached,
        BTreeSet::from([DEFAULT_QUARANTINE_POLICY_ARN.to_string()])
    );
    assert!(state.inline.is_empty(), "{state:?}");
}

// ---------------------------------------------------------------------------------------
// Every operation called is listed

#[tokio::test]
async fn containment_calls_listed_operations() {
    capture_logs();
    let (clients, _) = emulator().await;
    let proxy = live::start_proxy().await;
    let (user, keys) = create_user(&clients, "listed", 1).await;
    let role = create_role(&clients, "listed").await;
    let investigation = new_investigation_id();
    let mut target = resolve(
        aws_config(&proxy.endpoint()),
        &keys[0],
        &investigation,
        false,
    )
    .await;
    for (call, principal) in [
        ("sts:GetSessionToken", Principal::user(ACCOUNT_ID, &user)),
        ("sts:AssumeRole", Principal::role(ACCOUNT_ID, &role)),
    ] {
        target.sessions.push(TargetSession {
            key_id: random_temporary_key(),
            call: call.to_string(),
            issued_at: Utc::now(),
            principal: Some(principal),
        });
    }
    let remediator = remediator(&proxy.endpoint(), &investigation);

    for kind in [
        ActionKind::Quarantine,
        ActionKind::RevokeSessions,
        ActionKind::Rotate,
        ActionKind::Deactivate,
    ] {
        let plan = remediator
            .plan(kind, &target)
            .await
            .unwrap_or_else(|e| panic!("{kind} plan: {e}"));
        let outcome = remediator
            .execute(&plan)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        if kind == ActionKind::Rotate {
            assert!(outcome.new_key_id.is_some(), "{user}: {outcome:?}");
        }
    }

    let calls = proxy.calls();
    let listed: BTreeSet<String> = OPERATIONS.iter().map(|op| op.id()).collect();
    let unlisted: BTreeSet<&String> = calls
        .iter()
        .map(|c| &c.operation)
        .filter(|op| !listed.contains(*op))
        .collect();
    assert!(
        unlisted.is_empty(),
        "containment called operations OPERATIONS lacks: {unlisted:?}\n{}",
        format_calls(&calls)
    );
    let changes: BTreeSet<&str> = OPERATIONS
        .iter()
        .filter(|op| op.purpose == Purpose::Contain)
        .map(|op| op.action)
        .collect();
    for expected in [
        "iam:UpdateAccessKey",
        "iam:CreateAccessKey",
        "secretsmanager:CreateSecret",
        "iam:PutUserPolicy",
        "iam:PutRolePolicy",
        "iam:AttachUserPolicy",
    ] {
        assert!(
            calls.iter().any(|c| c.operation == expected),
            "{expected} was not called\n{}",
            format_calls(&calls)
        );
        assert!(
            changes.contains(expected),
            "{expected} is not listed as a containment operation"
        );
    }
    assert!(
        remediator.call_stats().unlisted().is_empty(),
        "{:?}",
        remediator.call_stats().unlisted()
    );
}

// ---------------------------------------------------------------------------------------
// The command line

/// One finished run of the `keycheck` binary.
struct Run {
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ran: keycheck {}", self.args.join(" "))?;
        writeln!(f, "exit code: {:?}", self.code)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// A configuration file and a SQLite store in a temporary folder, for the binary.
struct CliSetup {
    folder: tempfile::TempDir,
    config: PathBuf,
}

impl CliSetup {
    fn new(endpoint: &str) -> CliSetup {
        keycheck_tests::aws::assert_loopback(endpoint);
        let folder = tempfile::tempdir().expect("a temporary folder");
        // NOTE: the store creates a missing folder only for a plain file path, and the
        // configuration accepts only `sqlite:` URLs, so the folder is created here.
        std::fs::create_dir(folder.path().join("store")).expect("the store folder is created");
        let database = folder.path().join("store").join("keycheck.db");
        let config = folder.path().join("keycheck.toml");
        let text = format!(
            "[aws]\nregion = \"{REGION}\"\nendpoint_url = \"{endpoint}\"\ncall_timeout = \"2s\"\noperation_timeout = \"4s\"\n\n[store]\ndatabase_url = \"sqlite://{}\"\n",
            database.display()
        );
        std::fs::write(&config, text).expect("the configuration file is written");
        CliSetup { folder, config }
    }

    fn store_folder(&self) -> PathBuf {
        self.folder.path().join("store")
    }

    fn database_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.store_folder().join("keycheck.db").display()
        )
    }

    /// Runs the binary with the static test credentials and every log line on stderr.
    fn run(&self, args: &[&str]) -> Run {
        let empty = self.folder.path().join("no-such-aws-file");
        let output = Command::new(keycheck_binary())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.folder.path())
            .env("USER", "responder")
            .env("AWS_ACCESS_KEY_ID", keycheck_tests::aws::TEST_ACCESS_KEY_ID)
            .env(
                "AWS_SECRET_ACCESS_KEY",
                keycheck_tests::aws::TEST_SECRET_ACCESS_KEY,
            )
            .env("AWS_CONFIG_FILE", &empty)
            .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("KEYCHECK_LOG", "trace")
            // Makes the AWS SDK log the response bodies it would otherwise redact, such as
            // the CreateAccessKey response with the new secret.
            .env("LOG_SENSITIVE_BODIES", "true")
            .stdin(Stdio::null())
            .output()
            .expect("the keycheck binary starts");
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Returns the `keycheck` binary that `cargo test --workspace` builds next to this test.
///
/// NOTE: `cargo test -p keycheck-tests` alone does not build the binary, so a binary left
/// from an earlier build may run; the workspace command is the supported one.
fn keycheck_binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    let profile = test
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let binary = profile.join(format!("keycheck{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo test --workspace`, which builds it",
        binary.display()
    );
    binary
}

/// Reads every file of the store's folder (the database, its write-ahead log and shared
/// memory), as bytes, so that a secret in any table or free page is found.
fn store_files(folder: &Path) -> Vec<(PathBuf, String)> {
    let entries = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", folder.display()));
    entries
        .map(|entry| {
            let path = entry.expect("a folder entry").path();
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (path, String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect()
}

#[tokio::test]
async fn cli_dry_run_changes_nothing() {
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "dryrun", 1).await;
    let before = user_state(&clients, &user).await;
    let setup = CliSetup::new(&endpoint);

    for action in ["deactivate", "rotate", "quarantine"] {
        let run = setup.run(&["contain", action, &keys[0], "--dry-run"]);

        assert_eq!(run.code, Some(0), "{run}");
        assert!(
            run.stdout.contains(&format!("Plan: {action} {}", keys[0])),
            "{run}"
        );
        assert!(
            run.stdout.contains("Dry run: nothing was changed."),
            "{run}"
        );
        assert_eq!(
            user_state(&clients, &user).await,
            before,
            "IAM changed after a dry run\n{run}"
        );
    }
    assert!(
        !setup.store_folder().join("keycheck.db").exists(),
        "a dry run opened the store"
    );
    let secrets = secret_names_with_prefix(&clients, &format!("keycheck/rotated/{user}/")).await;
    assert!(secrets.is_empty(), "a dry run created secrets: {secrets:?}");
}

#[tokio::test]
async fn cli_needs_yes_without_terminal() {
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "noyes", 1).await;
    let before = user_state(&clients, &user).await;
    let setup = CliSetup::new(&endpoint);

    let run = setup.run(&["contain", "deactivate", &keys[0]]);

    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("pass --yes"), "{run}");
    assert_eq!(user_state(&clients, &user).await, before, "{run}");
}

#[tokio::test]
async fn cli_rotate_keeps_secret_out() {
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "clirotate", 1).await;
    let setup = CliSetup::new(&endpoint);

    let run = setup.run(&[
        "contain",
        "rotate",
        &keys[0],
        "--yes",
        "--investigation",
        "kc-cli-rotate",
    ]);

    assert_eq!(run.code, Some(0), "{run}");
    let after = user_state(&clients, &user).await;
    let new_key = after
        .keys
        .keys()
        .find(|k| **k != keys[0])
        .unwrap_or_else(|| panic!("no new key: {after:?}\n{run}"))
        .clone();
    assert_eq!(after.keys[&keys[0]], "Inactive", "{run}");
    assert_eq!(after.keys[&new_key], "Active", "{run}");
    let name = format!("keycheck/rotated/{user}/{new_key}");
    let stored = clients
        .secrets
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect("GetSecretValue");
    let value: Value = serde_json::from_str(stored.secret_string().unwrap()).unwrap();
    let secret = value["SecretAccessKey"]
        .as_str()
        .expect("the secret access key")
        .to_string();

    assert!(run.stdout.contains(&new_key), "{run}");
    assert!(
        run.stdout.contains(stored.arn().unwrap()),
        "the secret's ARN is not printed\n{run}"
    );
    assert!(
        run.stderr.contains("transmitting request"),
        "the SDK's trace lines are not on stderr, so the check proves little\n{run}"
    );
    assert_no_secret(&run.stdout, &secret, "standard output");
    assert_no_secret(&run.stderr, &secret, "standard error");

    let store = Store::open(&setup.database_url())
        .await
        .expect("the store opens");
    let entries = store
        .audit(Some(&keys[0].parse::<AccessKeyId>().unwrap()))
        .await
        .expect("the audit log");
    store.close().await;
    let events: Vec<AuditEvent> = entries.iter().map(|e| e.event).collect();
    assert_eq!(
        events,
        [
            AuditEvent::Requested,
            AuditEvent::Approved,
            AuditEvent::Executed
        ],
        "{entries:?}"
    );
    let executed = &entries[2];
    assert_eq!(executed.result.as_deref(), Some("ok"));
    assert!(executed.aws_request_id.is_some(), "{executed:?}");
    assert_eq!(executed.investigation_id.as_deref(), Some("kc-cli-rotate"));
    assert_eq!(executed.actor.user_id, "responder");
    for (path, text) in store_files(&setup.store_folder()) {
        assert_no_secret(&text, &secret, &path.display().to_string());
    }

    let audit = setup.run(&["audit", "--key", &keys[0]]);
    assert_eq!(audit.code, Some(0), "{audit}");
    for event in ["requested", "approved", "executed"] {
        assert!(audit.stdout.contains(event), "no {event} entry\n{audit}");
    }
    assert!(audit.stdout.contains("result ok"), "{audit}");
    assert_no_secret(&audit.stdout, &secret, "the audit command's output");
}

#[tokio::test]
async fn cli_refused_rotation_is_audited() {
    let (clients, endpoint) = emulator().await;
    let (user, keys) = create_user(&clients, "clirefused", 2).await;
    let before = user_state(&clients, &user).await;
    let setup = CliSetup::new(&endpoint);

    let run = setup.run(&["contain", "rotate", &keys[0], "--yes"]);

    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("already has two access keys"), "{run}");
    assert_eq!(user_state(&clients, &user).await, before, "{run}");
    let audit = setup.run(&["audit", "--key", &keys[0], "--json"]);
    assert_eq!(audit.code, Some(0), "{audit}");
    let entries: Vec<Value> = audit
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let events: Vec<&str> = entries.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(events, ["requested", "failed"], "{audit}");
    assert_eq!(entries[1]["result"], "too_many_keys", "{audit}");
}
