//! A failed AWS call leaves a complete report. Through the proxy, the operation a step
//! needs is denied, throttled (on every attempt, so the SDK's retries run out) or held
//! past the call timeout. The report must still have all ten steps and a diagnosis, with
//! that step in error naming the operation's IAM permission and the other steps finished.
//!
//! Steps 0, 7 and 9 have a second source: step 0 decodes the key ID, steps 7 and 9 read
//! CloudTrail. When only one source fails, the playbook keeps the step's other results and
//! reports the failure, with its permission, as a finding of a degraded step rather than
//! turning the whole step into an error. Those cases check that, and the cases where every
//! source of the step fails check for the error.

use keycheck_core::evidence::live::QueryMode;
use keycheck_core::report::{Status, StepId};
use keycheck_tests::live::{self, LiveRun};
use keycheck_tests::outcome::step;
use keycheck_tests::proxy::Fault;

/// What a fault must do to its step.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The step is in error, and its failure names the permission.
    Error,
    /// The step finishes with its other source's results, not in error, and a finding
    /// names the permission.
    Degraded,
}

/// One fault scenario.
struct Case {
    /// The step under test.
    step: StepId,
    /// The operations the proxy fails, as `service:Operation`.
    operations: &'static [&'static str],
    /// The permission the step must name: the IAM action of the first failed operation
    /// the step reads.
    permission: &'static str,
    /// What the step's report must show.
    expect: Expect,
    /// Other steps that read the same evidence and so may fail with it.
    may_fail: &'static [StepId],
    /// The CloudTrail query mode.
    query: QueryMode,
}

/// Every later call needs keycheck's own identity, so without it every step fails.
const RESOLVE: Case = Case {
    step: StepId::Resolve,
    operations: &["sts:GetCallerIdentity"],
    permission: "sts:GetCallerIdentity",
    expect: Expect::Error,
    may_fail: &StepId::ALL,
    query: QueryMode::LogsInsights,
};

/// Without `GetAccessKeyInfo`, step 0 falls back to decoding the key ID, which depends on
/// the random key ID the emulator issued: the account is then unknown or another one.
const RESOLVE_ACCOUNT: Case = Case {
    step: StepId::Resolve,
    operations: &["sts:GetAccessKeyInfo"],
    permission: "sts:GetAccessKeyInfo",
    expect: Expect::Degraded,
    may_fail: &[],
    query: QueryMode::LogsInsights,
};

/// The owner's user record lists the last use of each of the owner's keys, so steps 3 and
/// 4, which read that record, fail with step 1.
const KEY: Case = Case {
    step: StepId::Key,
    operations: &["iam:GetAccessKeyLastUsed"],
    permission: "iam:GetAccessKeyLastUsed",
    expect: Expect::Error,
    may_fail: &[StepId::Mfa, StepId::Permissions],
    query: QueryMode::LogsInsights,
};

/// Without CloudTrail, steps 7 and 8 lose their events too. Step 7 is then left with
/// Access Analyzer alone, which the emulator does not implement.
const ACTIVITY_INSIGHTS: Case = Case {
    step: StepId::Activity,
    operations: &["logs:StartQuery"],
    permission: "logs:StartQuery",
    expect: Expect::Error,
    may_fail: &[StepId::CrossAccount, StepId::ExternalAccess],
    query: QueryMode::LogsInsights,
};

const ACTIVITY_FILTER: Case = Case {
    step: StepId::Activity,
    operations: &["logs:FilterLogEvents"],
    permission: "logs:FilterLogEvents",
    expect: Expect::Error,
    may_fail: &[StepId::CrossAccount, StepId::ExternalAccess],
    query: QueryMode::FilterLogEvents,
};

/// The owner's user record feeds steps 3 and 4, so both fail when any of its calls does.
const MFA_DEVICES: Case = Case {
    step: StepId::Mfa,
    operations: &["iam:ListMFADevices"],
    permission: "iam:ListMFADevices",
    expect: Expect::Error,
    may_fail: &[StepId::Permissions],
    query: QueryMode::LogsInsights,
};

const MFA_CREDENTIAL_REPORT: Case = Case {
    step: StepId::Mfa,
    operations: &["iam:GenerateCredentialReport"],
    permission: "iam:GenerateCredentialReport",
    expect: Expect::Error,
    may_fail: &[],
    query: QueryMode::LogsInsights,
};

const PERMISSIONS: Case = Case {
    step: StepId::Permissions,
    operations: &["iam:ListUserPolicies"],
    permission: "iam:ListUserPolicies",
    expect: Expect::Error,
    may_fail: &[StepId::Mfa],
    query: QueryMode::LogsInsights,
};

/// Step 5 reads Security Hub, GuardDuty and AWS Health. On the emulator GuardDuty has no
/// detector and Health is not read live, so Security Hub is its only source.
const FINDINGS: Case = Case {
    step: StepId::Findings,
    operations: &["securityhub:GetFindings"],
    permission: "securityhub:GetFindings",
    expect: Expect::Error,
    may_fail: &[],
    query: QueryMode::LogsInsights,
};

const GUARDDUTY: Case = Case {
    step: StepId::Guardduty,
    operations: &["guardduty:ListDetectors"],
    permission: "guardduty:ListDetectors",
    expect: Expect::Error,
    may_fail: &[],
    query: QueryMode::LogsInsights,
};

const EXTERNAL_ACCESS: Case = Case {
    step: StepId::ExternalAccess,
    operations: &["access-analyzer:ListAnalyzers", "logs:StartQuery"],
    permission: "access-analyzer:ListAnalyzers",
    expect: Expect::Error,
    may_fail: &[StepId::Activity, StepId::CrossAccount],
    query: QueryMode::LogsInsights,
};

const EXTERNAL_ACCESS_ANALYZER: Case = Case {
    step: StepId::ExternalAccess,
    operations: &["access-analyzer:ListAnalyzers"],
    permission: "access-analyzer:ListAnalyzers",
    expect: Expect::Degraded,
    may_fail: &[],
    query: QueryMode::LogsInsights,
};

const CROSS_ACCOUNT: Case = Case {
    step: StepId::CrossAccount,
    operations: &["logs:StartQuery"],
    permission: "logs:StartQuery",
    expect: Expect::Error,
    may_fail: &[StepId::Activity, StepId::ExternalAccess],
    query: QueryMode::LogsInsights,
};

/// Step 9 errs only when CloudTrail and every place the key may be stored fail.
const SECRETS: Case = Case {
    step: StepId::Secrets,
    operations: &[
        "secretsmanager:ListSecrets",
        "ssm:DescribeParameters",
        "lambda:ListFunctions",
        "codebuild:ListProjects",
        "ecs:ListTaskDefinitions",
        "logs:StartQuery",
    ],
    permission: "secretsmanager:ListSecrets",
    expect: Expect::Error,
    may_fail: &[StepId::Activity, StepId::CrossAccount, StepId::ExternalAccess],
    query: QueryMode::LogsInsights,
};

/// The parameter is still found, and the step must name the Secrets Manager failure,
/// because rotating the key would break whatever reads the secret.
const SECRETS_STORAGE: Case = Case {
    step: StepId::Secrets,
    operations: &["secretsmanager:ListSecrets"],
    permission: "secretsmanager:ListSecrets",
    expect: Expect::Degraded,
    may_fail: &[],
    query: QueryMode::LogsInsights,
};

/// Returns the words the failure message must contain for a fault.
fn fault_words(fault: &Fault) -> &'static str {
    match fault {
        Fault::AccessDenied => "access denied",
        Fault::Throttling => "throttled",
        Fault::Hang(_) => "timed out",
        Fault::Respond { .. } => unreachable!("the fault cases inject errors only"),
    }
}

/// Seeds an incident, fails the case's operations with `fault`, investigates, and checks
/// the report.
async fn check(case: Case, fault: Fault) {
    let incident = live::seed_incident().await;
    let proxy = live::start_proxy().await;
    for operation in case.operations {
        proxy.fail(operation, fault.clone());
    }
    let config = live::live_config(&proxy.endpoint(), &incident, case.query);

    let run = live::investigate(&proxy, &incident, config).await;

    let mut guard = run.print_on_failure();
    guard.set("fault", format!("{fault} on {:?}; step {} expected {:?}", case.operations, case.step, case.expect));
    check_complete(&run, &case);
    check_faulted_calls(&run, &case);
    match case.expect {
        Expect::Error => check_error(&run, &case, &fault),
        Expect::Degraded => check_degraded(&run, &case),
    }
}

fn check_complete(run: &LiveRun, case: &Case) {
    let steps: Vec<StepId> = run.outcome.reports.iter().map(|r| r.step).collect();
    assert_eq!(steps, StepId::ALL, "the report lacks steps");
    for report in &run.outcome.reports {
        if report.step == case.step || case.may_fail.contains(&report.step) {
            continue;
        }
        assert_ne!(report.status, Status::Error, "step {} failed although its evidence was not faulted", report.step);
    }
    assert!(!run.outcome.diagnosis.summary.is_empty(), "no diagnosis");
}

fn check_faulted_calls(run: &LiveRun, case: &Case) {
    let faulted = run.calls.iter().filter(|c| c.fault.is_some()).count();
    assert!(faulted > 0, "keycheck never called {:?}, so the case tests nothing", case.operations);
}

fn check_error(run: &LiveRun, case: &Case, fault: &Fault) {
    let report = step(&run.outcome, case.step);
    assert_eq!(report.status, Status::Error, "step {}", case.step);
    let failure = report.failure.as_ref().expect("an error report has a failure");
    assert_eq!(failure.permission.as_deref(), Some(case.permission), "{failure:?}");
    assert!(
        failure.message.contains(fault_words(fault)),
        "the failure does not say {:?}: {failure:?}",
        fault_words(fault)
    );
    let blind_spot = format!("step {} ", case.step.number());
    let listed = run
        .outcome
        .diagnosis
        .blind_spots
        .iter()
        .any(|spot| spot.starts_with(&blind_spot) && spot.contains(case.permission));
    assert!(listed, "the diagnosis does not list step {} as a blind spot naming {}", case.step, case.permission);
}

fn check_degraded(run: &LiveRun, case: &Case) {
    let report = step(&run.outcome, case.step);
    assert_ne!(report.status, Status::Error, "step {} turned into an error although its other source worked", case.step);
    assert_ne!(report.status, Status::NotAvailable, "step {}", case.step);
    let named = report.findings.iter().any(|f| f.text.contains(case.permission));
    assert!(named, "no finding of step {} names {}", case.step, case.permission);
}

/// Declares one test per fault kind for a case.
macro_rules! fault_tests {
    ($($case:ident => $denied:ident, $throttled:ident, $timed_out:ident;)*) => {$(
        #[tokio::test]
        async fn $denied() {
            check($case, Fault::AccessDenied).await;
        }

        #[tokio::test]
        async fn $throttled() {
            check($case, Fault::Throttling).await;
        }

        #[tokio::test]
        async fn $timed_out() {
            check($case, Fault::hang()).await;
        }
    )*};
}

fault_tests! {
    RESOLVE => resolve_denied, resolve_throttled, resolve_timed_out;
    RESOLVE_ACCOUNT => account_denied, account_throttled, account_timed_out;
    KEY => key_denied, key_throttled, key_timed_out;
    ACTIVITY_INSIGHTS => activity_insights_denied, activity_insights_throttled, activity_insights_timed_out;
    ACTIVITY_FILTER => activity_filter_denied, activity_filter_throttled, activity_filter_timed_out;
    MFA_DEVICES => mfa_devices_denied, mfa_devices_throttled, mfa_devices_timed_out;
    MFA_CREDENTIAL_REPORT => mfa_report_denied, mfa_report_throttled, mfa_report_timed_out;
    PERMISSIONS => permissions_denied, permissions_throttled, permissions_timed_out;
    FINDINGS => findings_denied, findings_throttled, findings_timed_out;
    GUARDDUTY => guardduty_denied, guardduty_throttled, guardduty_timed_out;
    EXTERNAL_ACCESS => external_access_denied, external_access_throttled, external_access_timed_out;
    EXTERNAL_ACCESS_ANALYZER => analyzer_denied, analyzer_throttled, analyzer_timed_out;
    CROSS_ACCOUNT => cross_account_denied, cross_account_throttled, cross_account_timed_out;
    SECRETS => secrets_denied, secrets_throttled, secrets_timed_out;
    SECRETS_STORAGE => storage_denied, storage_throttled, storage_timed_out;
}
