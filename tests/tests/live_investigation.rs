//! The whole playbook, live against the moto emulator: the seeded incident must come back
//! exactly, in both CloudTrail query modes.
//!
//! moto ignores FilterLogEvents' JSON filter patterns and the text of Logs Insights
//! queries, so every query returns the whole log group, near-misses included. A report
//! that names exactly the key's calls therefore proves that keycheck re-checks each event
//! on the client. Each query mode runs one investigation, shared by the tests below.

use keycheck_core::diagnosis::{Severity, Verdict};
use keycheck_core::evidence::live::QueryMode;
use keycheck_core::evidence::{EventQuery, Evidence, KeyLocation, KeyLocationKind, KeyStatus};
use keycheck_core::report::{
    ActivityFacts, CrossAccountFacts, FindingFacts, KeyFacts, MfaFacts, PermissionFacts, SecretFacts, Status, StepData,
    StepId,
};
use keycheck_tests::critical_path::{is_continuation, rounds};
use keycheck_tests::live::{self, LiveRun};
use keycheck_tests::outcome::{data_json, step};
use keycheck_tests::proxy::{Call, Fault};
use keycheck_tests::seed::OTHER_ACCOUNT_ID;
use tokio::sync::OnceCell;

static INSIGHTS: OnceCell<LiveRun> = OnceCell::const_new();
static FILTER: OnceCell<LiveRun> = OnceCell::const_new();

async fn insights_run() -> &'static LiveRun {
    INSIGHTS.get_or_init(|| live::investigate_new_incident(QueryMode::LogsInsights)).await
}

async fn filter_run() -> &'static LiveRun {
    FILTER.get_or_init(|| live::investigate_new_incident(QueryMode::FilterLogEvents)).await
}

/// Returns the typed data of a step, or panics with the step's report.
macro_rules! facts {
    ($run:expr, $step:expr, $variant:ident) => {{
        let report = step(&$run.outcome, $step);
        match &report.data {
            StepData::$variant(facts) => facts,
            other => panic!("step {} has no {} data: {:?}\n{}", $step, stringify!($variant), report.status, data_json(other)),
        }
    }};
}

fn activity(run: &LiveRun) -> &ActivityFacts {
    facts!(run, StepId::Activity, Activity)
}

fn sorted_ids<'a>(ids: impl Iterator<Item = Option<&'a String>>) -> Vec<String> {
    let mut ids: Vec<String> = ids.map(|id| id.cloned().unwrap_or_else(|| "<no event ID>".to_string())).collect();
    ids.sort();
    ids
}

/// Returns the key location listed under one of `names` (a name or an ARN).
fn find_location<'a>(facts: &'a SecretFacts, names: &[&str]) -> Option<&'a KeyLocation> {
    facts.key_locations.iter().find(|location| names.contains(&location.name.as_str()))
}

/// Counts the CloudTrail scans among the calls: Logs Insights queries started, and
/// FilterLogEvents or LookupEvents first pages (a request without a next token).
fn scans(calls: &[Call]) -> usize {
    calls
        .iter()
        .filter(|c| match c.operation.as_str() {
            "logs:StartQuery" => true,
            "logs:FilterLogEvents" | "cloudtrail:LookupEvents" => !c.request.contains("nextToken") && !c.request.contains("NextToken"),
            _ => false,
        })
        .count()
}

#[tokio::test]
async fn every_step_reports() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();

    let steps: Vec<StepId> = run.outcome.reports.iter().map(|r| r.step).collect();
    assert_eq!(steps, StepId::ALL);
    for report in &run.outcome.reports {
        assert_ne!(report.status, Status::Error, "step {} failed on the emulator", report.step);
    }
}

#[tokio::test]
async fn activity_names_exactly_key_calls() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts = activity(run);

    let timeline = sorted_ids(facts.timeline.iter().map(|b| b.event_id.as_ref()));
    assert_eq!(timeline, run.incident.key_call_ids(), "the activity timeline is not the key's seeded calls");
    assert_eq!(facts.total_calls, run.incident.key_calls.len());
    for brief in &facts.timeline {
        assert_eq!(brief.key_id.as_deref(), Some(run.incident.leaked_key.as_str()), "{brief:?}");
    }
}

#[tokio::test]
async fn activity_counts_failed_call() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts = activity(run);

    assert_eq!(facts.failed_calls, 1, "organizations:ListAccounts was denied");
    assert!(facts.history_available, "the key's office calls before the window are history");
}

#[tokio::test]
async fn activity_follows_minted_session() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts = activity(run);

    let minted: Vec<&str> = facts.minted_sessions.iter().map(|m| m.key_id.as_str()).collect();
    assert_eq!(minted, [run.incident.minted_key.as_str()], "the other user's session must not be followed");
    let session = &facts.minted_sessions[0];
    assert_eq!(session.call, "sts:GetSessionToken");
    assert_eq!(session.parent_key_id.as_deref(), Some(run.incident.leaked_key.as_str()));

    let session_calls = sorted_ids(facts.session_calls.iter().map(|b| b.event_id.as_ref()));
    assert_eq!(session_calls, run.incident.session_call_ids(), "the minted session's calls");
}

#[tokio::test]
async fn key_step_names_owner() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts: &KeyFacts = facts!(run, StepId::Key, Key);

    assert_eq!(facts.owner_name.as_deref(), Some(run.incident.user_name.as_str()));
    let record = facts.record.as_ref().expect("the key's IAM record");
    assert_eq!(record.key_id, run.incident.leaked_key);
    assert_eq!(record.user_name, run.incident.user_name);
    assert_eq!(record.status, KeyStatus::Active);
}

#[tokio::test]
async fn key_step_lists_second_key() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts: &KeyFacts = facts!(run, StepId::Key, Key);

    let others: Vec<&str> = facts.other_keys.iter().map(|k| k.key_id.as_str()).collect();
    assert_eq!(others, [run.incident.second_key.as_str()]);
}

#[tokio::test]
async fn mfa_step_reports_mfa_off() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts: &MfaFacts = facts!(run, StepId::Mfa, Mfa);

    assert_eq!(facts.owner_has_mfa, Some(false));
    assert_eq!(facts.owner_has_console_password, Some(true));
    assert!(facts.credential_report_available, "the credential report was read");
    assert!(
        facts.users_without_mfa.contains(&run.incident.user_name),
        "{:?} lacks the owner",
        facts.users_without_mfa
    );
    assert_eq!(facts.calls_without_mfa, run.incident.key_calls.len(), "a long-term key never carries MFA");
}

#[tokio::test]
async fn permissions_step_finds_admin() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts: &PermissionFacts = facts!(run, StepId::Permissions, Permissions);

    assert!(facts.admin, "the inline policy allows * on *");
    let inline = format!("{} (inline)", run.incident.admin_policy);
    assert!(facts.policies.contains(&inline), "{:?} lacks {inline}", facts.policies);
}

#[tokio::test]
async fn findings_step_names_only_this_key() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts: &FindingFacts = facts!(run, StepId::Findings, Findings);

    // The emulator returns every test's findings: keycheck must keep only this key's.
    let ids: Vec<&str> = facts.security_hub.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, [run.incident.finding_id.as_str()]);
}

#[tokio::test]
async fn cross_account_step_finds_denied_move() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts: &CrossAccountFacts = facts!(run, StepId::CrossAccount, CrossAccount);

    assert_eq!(facts.assumptions.len(), 1, "one AssumeRole, by the minted session");
    let assumption = &facts.assumptions[0];
    assert!(assumption.denied);
    assert_eq!(assumption.target_account.as_deref(), Some(OTHER_ACCOUNT_ID));
    assert_eq!(assumption.caller_key_id.as_deref(), Some(run.incident.minted_key.as_str()));
    assert_eq!(facts.other_accounts, [OTHER_ACCOUNT_ID]);
}

#[tokio::test]
async fn secrets_step_finds_reads() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts: &SecretFacts = facts!(run, StepId::Secrets, Secrets);

    let expected = [run.incident.secret_arn.clone(), "/prod/reporting/db-password".to_string()];
    let mut distinct = facts.distinct_secrets.clone();
    distinct.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(distinct, expected, "the key read the secret, its session the parameter");
}

#[tokio::test]
async fn secrets_step_finds_stored_key() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts: &SecretFacts = facts!(run, StepId::Secrets, Secrets);
    let incident = &run.incident;

    assert!(facts.storage_search_available, "the key-storage search ran");
    let secret = find_location(facts, &[&incident.secret_name, &incident.secret_arn]);
    let secret = secret.unwrap_or_else(|| panic!("secret {} not found: {:?}", incident.secret_name, facts.key_locations));
    assert_eq!(secret.kind, KeyLocationKind::SecretsManagerSecret);

    let parameter = find_location(facts, &[&incident.parameter_name]);
    let parameter = parameter.unwrap_or_else(|| panic!("parameter {} not found: {:?}", incident.parameter_name, facts.key_locations));
    assert_eq!(parameter.kind, KeyLocationKind::SsmParameter);

    let unrelated = facts.key_locations.iter().find(|l| l.name.contains(&incident.unrelated_secret_name));
    assert!(unrelated.is_none(), "a secret that names nobody involved was listed: {unrelated:?}");
}

#[tokio::test]
async fn secrets_step_names_secret_reader() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let facts: &SecretFacts = facts!(run, StepId::Secrets, Secrets);
    let incident = &run.incident;

    let secret = find_location(facts, &[&incident.secret_name, &incident.secret_arn]);
    let secret = secret.unwrap_or_else(|| panic!("secret {} not found: {:?}", incident.secret_name, facts.key_locations));
    assert_eq!(secret.readers.len(), 1, "the key's GetSecretValue is the one read: {:?}", secret.readers);
    assert!(secret.readers[0].contains(&incident.leaked_key), "{:?}", secret.readers);
}

#[tokio::test]
async fn diagnosis_says_compromised() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();
    let diagnosis = &run.outcome.diagnosis;

    assert_eq!(diagnosis.verdict, Verdict::Compromised);
    assert_eq!(diagnosis.severity, Severity::Critical, "an active admin key with persistence calls");
}

#[tokio::test]
async fn insights_scans_once_plus_session() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();

    assert_eq!(scans(&run.calls), 2, "one query for the key, one for the session it minted");
}

#[tokio::test]
async fn filter_scans_once_plus_session() {
    let run = filter_run().await;
    let _guard = run.print_on_failure();

    assert_eq!(scans(&run.calls), 2, "one pass for the key, one for the session it minted");
    assert!(
        run.calls.iter().all(|c| c.operation != "logs:StartQuery"),
        "FilterLogEvents mode started a Logs Insights query"
    );
}

#[tokio::test]
async fn query_modes_give_same_calls() {
    let insights = insights_run().await;
    let filter = filter_run().await;
    let _guard_insights = insights.print_on_failure();
    let _guard_filter = filter.print_on_failure();

    let (a, b) = (activity(insights), activity(filter));
    // Each run seeded its own incident, so compare each with its own seed, then the shapes.
    let timeline = sorted_ids(b.timeline.iter().map(|e| e.event_id.as_ref()));
    assert_eq!(timeline, filter.incident.key_call_ids(), "FilterLogEvents: the key's calls");
    let sessions = sorted_ids(b.session_calls.iter().map(|e| e.event_id.as_ref()));
    assert_eq!(sessions, filter.incident.session_call_ids(), "FilterLogEvents: the session's calls");

    let calls = |facts: &ActivityFacts| -> Vec<(String, usize)> { facts.calls.iter().map(|c| (c.call.clone(), c.count)).collect() };
    assert_eq!(calls(a), calls(b), "the two modes grouped the calls differently");
    assert_eq!(a.session_calls.len(), b.session_calls.len());
}

#[tokio::test]
async fn events_scan_count_recorded() {
    let incident = live::seed_incident().await;
    let proxy = live::start_proxy().await;
    let config = live::live_config(&proxy.endpoint(), &incident, QueryMode::LogsInsights);
    let key = incident.leaked_key.parse().expect("valid key ID");

    let events = live::on_large_stack(move || async move {
        let evidence = live::build_evidence(config, "kc-events-test");
        evidence.events(&EventQuery::new(key)).await
    })
    .await;

    let calls = keycheck_tests::proxy::format_calls(&proxy.calls());
    let events = events.unwrap_or_else(|e| panic!("events failed: {e}\n{calls}"));
    assert_eq!(events.scans, 2, "one scan for the key, one for its minted session\n{calls}");
    let key_calls = sorted_ids(events.key_calls().map(|e| e.event_id.as_ref()));
    assert_eq!(key_calls, incident.key_call_ids(), "{}\n{calls}", incident.describe_events());
    // moto returns the whole log group to every scan, so the cut-short record is skipped
    // once per scan. AWS would return it to the first scan only.
    let skipped = events.skipped_records;
    assert!((1..=events.scans as usize).contains(&skipped), "skipped {skipped} records in {} scans\n{calls}", events.scans);
}

/// The delay the proxy adds to every call in the rounds test. It is meant to be far longer
/// than the client's own work between two calls, even in a debug build on a busy machine,
/// so that calls that do not depend on each other overlap. NOTE: 200 ms is an estimate of
/// that margin, not a measured bound, so a much slower machine could shift rounds.
const ROUND_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// The `ListAnalyzers` response of an account without an analyzer. moto has no Access
/// Analyzer and returns HTTP 500, which the SDK retries with backoff, adding rounds.
const NO_ANALYZERS: &str = r#"{"analyzers":[]}"#;

/// Every call must start as soon as the responses it needs have arrived. With every call
/// slowed down, the recorded start and end times number the calls by round (see
/// `critical_path::rounds`), which catches a call that waits for one it does not need
/// without measuring any duration.
#[tokio::test]
async fn calls_start_once_inputs_known() {
    let incident = live::seed_incident().await;
    let proxy = live::start_proxy().await;
    proxy.set_delay(ROUND_DELAY);
    proxy.fail("access-analyzer:ListAnalyzers", Fault::Respond { status: 200, body: NO_ANALYZERS });
    let config = live::live_config(&proxy.endpoint(), &incident, QueryMode::LogsInsights);

    let run = live::investigate(&proxy, &incident, config).await;

    let mut guard = run.print_on_failure();
    let rounds = rounds(&run.calls);
    let listing: Vec<String> = run.calls.iter().zip(&rounds).map(|(call, round)| format!("round {round}: {}", call.operation)).collect();
    guard.set("rounds", listing.join("\n"));
    let rounds_of = |operation: &str| -> Vec<usize> {
        run.calls
            .iter()
            .zip(&rounds)
            .filter(|(call, _)| call.operation == operation && !is_continuation(call))
            .map(|(_, round)| *round)
            .collect()
    };

    assert_eq!(rounds_of("sts:GetAccessKeyInfo"), [1]);
    assert_eq!(rounds_of("sts:GetCallerIdentity"), [1], "keycheck's identity does not need the key's account");
    assert_eq!(rounds_of("logs:StartQuery"), [2, 4], "the key's scan, then its minted session's");
    assert_eq!(rounds_of("logs:GetQueryResults"), [3, 5]);
    assert_eq!(rounds_of("iam:GetUser"), [3], "the owner is read once IAM names it, while CloudTrail is scanned");
    assert_eq!(rounds_of("iam:ListMFADevices"), [3], "the owner's lists are requested with GetUser");
    assert_eq!(rounds_of("iam:ListUserPolicies"), [3], "the owner's lists are requested with GetUser");
    assert_eq!(rounds_of("iam:GetUserPolicy"), [4], "policy documents follow the policy lists");
    let hub = rounds_of("securityhub:GetFindings");
    assert!(!hub.is_empty() && hub.iter().all(|r| *r == 3), "every Security Hub filter at once, with the owner's name: {hub:?}");
    assert_eq!(rounds_of("secretsmanager:ListSecrets"), [3], "the storage search needs only the owner's name");
    assert_eq!(rounds_of("ssm:DescribeParameters"), [3], "the storage search needs only the owner's name");
    let highest = highest_round(&run.calls, &rounds);
    assert_eq!(highest, 5, "the critical path is 5 calls: the key's account, then two CloudTrail queries of two calls each");
}

/// Returns the highest round among the calls that are not later pages of a request.
fn highest_round(calls: &[Call], rounds: &[usize]) -> usize {
    calls
        .iter()
        .zip(rounds)
        .filter(|(call, _)| !is_continuation(call))
        .map(|(_, round)| *round)
        .max()
        .unwrap_or(0)
}

/// The key's own IAM record is read once, though the key's record, its owner's name and
/// the owner's list of keys all need it.
#[tokio::test]
async fn key_record_read_once() {
    let run = insights_run().await;
    let _guard = run.print_on_failure();

    let last_used: Vec<&Call> = run
        .calls
        .iter()
        .filter(|c| c.operation == "iam:GetAccessKeyLastUsed" && c.request.contains(&run.incident.leaked_key))
        .collect();
    assert_eq!(last_used.len(), 1, "GetAccessKeyLastUsed of the leaked key");
    let listings = run.calls.iter().filter(|c| c.operation == "iam:ListAccessKeys").count();
    assert_eq!(listings, 1, "ListAccessKeys of the owner");
}

#[tokio::test]
async fn moto_ignores_filter_pattern() {
    // The premise of the tests above: the emulator returns the whole log group to a
    // filtered read, so only keycheck's own re-check keeps the near-misses out of the report.
    let incident = live::seed_incident().await;
    let moto = keycheck_tests::moto::shared().await;
    let clients = keycheck_tests::aws::Clients::new(&moto.endpoint());
    let pattern = format!("{{ $.userIdentity.accessKeyId = \"{}\" }}", incident.leaked_key);

    let output = clients
        .logs
        .filter_log_events()
        .log_group_name(&incident.log_group)
        .filter_pattern(&pattern)
        .send()
        .await
        .expect("FilterLogEvents");

    let messages: Vec<&str> = output.events().iter().filter_map(|e| e.message()).collect();
    let near_miss = messages.iter().any(|m| m.contains(&incident.other_key));
    assert!(near_miss, "moto applied the filter pattern; the re-check tests no longer see near-misses");
}
