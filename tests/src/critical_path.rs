//! The critical path of a live investigation: the longest chain of AWS calls in which each
//! call needs the response of the one before it. No implementation can finish faster than
//! that chain, however concurrent it is.
//!
//! The model is a table of stages ([`LIVE_INVESTIGATION`]). A stage is a set of
//! operations with the stages whose responses they need. The recorded calls give each
//! stage its cost, and the critical path is the longest chain of stage costs. Calls to
//! different regions may always overlap. Within a region:
//!
//! - `Sequential` calls follow each other: query polls, and a follow-up scan that needs
//!   the first scan's result.
//! - `Paged` calls are independent requests (one per filter, say) that may overlap, each
//!   followed by its continuation pages (a request that carries a next token or marker).
//! - `Parallel` calls fan out over items already known, such as one `GetUserPolicy` per
//!   policy name, so the stage costs its slowest call.
//!
//! It is a lower bound under the model, not a prediction: it ignores the CPU time of the
//! client and assumes unlimited concurrency.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::proxy::Call;

/// How the calls of one stage combine within a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    /// One after another: the sum of the calls.
    Sequential,
    /// First pages at once, continuation pages after them: the slowest first page plus
    /// every continuation page.
    Paged,
    /// All at once: the slowest call.
    Parallel,
}

/// A group of operations that need the same earlier responses.
#[derive(Clone, Copy, Debug)]
pub struct Stage {
    /// A short name for the output.
    pub name: &'static str,
    /// The operations, as `service:Operation`.
    pub operations: &'static [&'static str],
    /// How the stage's calls combine.
    pub cost: Cost,
    /// The stages whose responses this stage needs. Each must come earlier in the table.
    pub after: &'static [&'static str],
}

const fn stage(name: &'static str, operations: &'static [&'static str], cost: Cost, after: &'static [&'static str]) -> Stage {
    Stage { name, operations, cost, after }
}

use Cost::{Paged, Parallel, Sequential};

/// The data dependencies of an investigation. Resolving the account comes first, because
/// every other call needs credentials for that account: keycheck's own when its identity
/// (`GetCallerIdentity`) is in that account, else an assumed role. The key's owner comes
/// from `GetAccessKeyLastUsed`, and the owner's record, policies and the searches that
/// name the owner need it. The CloudTrail scans need only the account. The follow-up scan
/// for minted sessions needs the first scan's result, and both are in the `events` stage.
///
/// NOTE: `iam:GetAccessKeyLastUsed` is also called for the owner's other keys, after the
/// owner's `ListAccessKeys`. The table cannot place one operation in two stages, so those
/// calls count in the key-record stage, which runs them in parallel with the first.
pub const LIVE_INVESTIGATION: &[Stage] = &[
    stage("resolve", &["sts:GetAccessKeyInfo"], Sequential, &[]),
    stage("caller", &["sts:GetCallerIdentity"], Sequential, &[]),
    stage("credentials", &["sts:AssumeRole"], Sequential, &["resolve", "caller"]),
    stage("key record", &["iam:GetAccessKeyLastUsed"], Parallel, &["credentials", "resolve"]),
    stage(
        "owner",
        &[
            "iam:GetUser",
            "iam:ListAccessKeys",
            "iam:ListMFADevices",
            "iam:GetLoginProfile",
            "iam:ListUserPolicies",
            "iam:ListAttachedUserPolicies",
            "iam:ListGroupsForUser",
            "iam:ListUserTags",
        ],
        Parallel,
        &["key record"],
    ),
    stage(
        "owner policies",
        &["iam:GetUserPolicy", "iam:GetPolicy", "iam:ListGroupPolicies", "iam:ListAttachedGroupPolicies"],
        Parallel,
        &["owner"],
    ),
    stage("policy documents", &["iam:GetPolicyVersion", "iam:GetGroupPolicy"], Parallel, &["owner policies"]),
    stage(
        "credential report",
        &["iam:GenerateCredentialReport", "iam:GetCredentialReport"],
        Sequential,
        &["credentials", "resolve"],
    ),
    stage("log groups", &["cloudtrail:DescribeTrails", "logs:DescribeLogGroups"], Sequential, &["credentials", "resolve"]),
    stage(
        "events",
        &["logs:StartQuery", "logs:GetQueryResults", "logs:StopQuery", "logs:FilterLogEvents", "cloudtrail:LookupEvents"],
        Sequential,
        &["log groups"],
    ),
    stage("security hub", &["securityhub:GetFindings"], Paged, &["key record"]),
    stage("guardduty detectors", &["guardduty:ListDetectors"], Paged, &["credentials", "resolve"]),
    stage("guardduty finding ids", &["guardduty:ListFindings"], Paged, &["guardduty detectors", "key record"]),
    stage("guardduty findings", &["guardduty:GetFindings"], Parallel, &["guardduty finding ids"]),
    stage(
        "health events",
        &["health:DescribeEvents", "health:DescribeEventsForOrganization"],
        Paged,
        &["credentials", "resolve"],
    ),
    stage(
        "health details",
        &["health:DescribeAffectedEntities", "health:DescribeEventDetails"],
        Parallel,
        &["health events"],
    ),
    stage("analyzers", &["access-analyzer:ListAnalyzers"], Paged, &["credentials", "resolve"]),
    stage(
        "analyzer findings",
        &["access-analyzer:ListFindings", "access-analyzer:ListFindingsV2"],
        Paged,
        &["analyzers"],
    ),
    stage(
        "analyzer details",
        &["access-analyzer:GetFinding", "access-analyzer:GetFindingV2"],
        Parallel,
        &["analyzer findings"],
    ),
    stage("secrets", &["secretsmanager:ListSecrets"], Paged, &["key record"]),
    stage("parameters", &["ssm:DescribeParameters"], Paged, &["key record"]),
    stage("lambda functions", &["lambda:ListFunctions"], Paged, &["credentials", "resolve"]),
    stage("codebuild projects", &["codebuild:ListProjects"], Paged, &["credentials", "resolve"]),
    stage("codebuild details", &["codebuild:BatchGetProjects"], Parallel, &["codebuild projects"]),
    stage("ecs task definitions", &["ecs:ListTaskDefinitions"], Paged, &["credentials", "resolve"]),
    stage("ecs details", &["ecs:DescribeTaskDefinition"], Parallel, &["ecs task definitions"]),
];

/// One stage on the critical path with its cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathStage {
    /// The stage name.
    pub name: String,
    /// What the stage costs.
    pub cost: Duration,
    /// How many recorded calls the stage had.
    pub calls: usize,
}

/// The critical path of a set of recorded calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriticalPath {
    /// The path's length.
    pub total: Duration,
    /// The stages on the path, first first; stages without calls are left out.
    pub stages: Vec<PathStage>,
    /// Operations the model does not list, counted as one parallel stage that needs only
    /// the account's credentials.
    pub unmodelled: BTreeSet<String>,
}

/// Computes the critical path of `calls` under `stages`, each call weighing `weight(call)`.
///
/// # Panics
///
/// Panics when a stage names a stage in `after` that is not earlier in the table.
pub fn critical_path(stages: &[Stage], calls: &[Call], weight: impl Fn(&Call) -> Duration) -> CriticalPath {
    let mut by_stage: Vec<Vec<&Call>> = vec![Vec::new(); stages.len()];
    let mut unmodelled_calls = Vec::new();
    for call in calls {
        match stages.iter().position(|s| s.operations.contains(&call.operation.as_str())) {
            Some(index) => by_stage[index].push(call),
            None => unmodelled_calls.push(call),
        }
    }

    // Latest finish time of each stage, with the stage before it on that path.
    let mut finish: Vec<(Duration, Option<usize>)> = Vec::with_capacity(stages.len());
    for (index, stage) in stages.iter().enumerate() {
        let mut start = Duration::ZERO;
        let mut previous = None;
        for name in stage.after {
            let before = stages[..index]
                .iter()
                .position(|s| s.name == *name)
                .unwrap_or_else(|| panic!("stage {:?} needs {name:?}, which is not earlier in the table", stage.name));
            if finish[before].0 > start || previous.is_none() {
                start = start.max(finish[before].0);
                previous = Some(before);
            }
        }
        let cost = stage_cost(stage.cost, &by_stage[index], &weight);
        finish.push((start + cost, previous));
    }

    let unmodelled_cost = stage_cost(Parallel, &unmodelled_calls, &weight);
    let credentials_ready = stages
        .iter()
        .position(|s| s.name == "credentials")
        .map_or(Duration::ZERO, |i| finish[i].0);

    let last = (0..stages.len()).max_by_key(|i| finish[*i].0);
    let mut path = Vec::new();
    let mut total = last.map_or(Duration::ZERO, |i| finish[i].0);
    let mut cursor = last;
    while let Some(index) = cursor {
        if !by_stage[index].is_empty() {
            path.push(PathStage {
                name: stages[index].name.to_string(),
                cost: stage_cost(stages[index].cost, &by_stage[index], &weight),
                calls: by_stage[index].len(),
            });
        }
        cursor = finish[index].1;
    }
    path.reverse();

    if credentials_ready + unmodelled_cost > total {
        total = credentials_ready + unmodelled_cost;
        path = vec![PathStage {
            name: "unmodelled operations".to_string(),
            cost: unmodelled_cost,
            calls: unmodelled_calls.len(),
        }];
    }

    CriticalPath {
        total,
        stages: path,
        unmodelled: unmodelled_calls.iter().map(|c| c.operation.clone()).collect(),
    }
}

fn stage_cost(cost: Cost, calls: &[&Call], weight: &impl Fn(&Call) -> Duration) -> Duration {
    let mut by_region: BTreeMap<Option<&str>, Vec<&Call>> = BTreeMap::new();
    for call in calls {
        by_region.entry(call.region.as_deref()).or_default().push(call);
    }
    by_region
        .into_values()
        .map(|calls| region_cost(cost, &calls, weight))
        .max()
        .unwrap_or_default()
}

fn region_cost(cost: Cost, calls: &[&Call], weight: &impl Fn(&Call) -> Duration) -> Duration {
    match cost {
        Cost::Sequential => calls.iter().map(|c| weight(c)).sum(),
        Cost::Parallel => calls.iter().map(|c| weight(c)).max().unwrap_or_default(),
        Cost::Paged => {
            let (continued, first): (Vec<&&Call>, Vec<&&Call>) = calls.iter().partition(|c| is_continuation(c));
            let first_pages = first.iter().map(|c| weight(c)).max().unwrap_or_default();
            first_pages + continued.iter().map(|c| weight(c)).sum::<Duration>()
        }
    }
}

/// Numbers each recorded call by the round it ran in, as the recorded times show. A call
/// is in round 1 when no call finished before it started, and otherwise in one round more
/// than the highest round among the calls that did. `calls` must be in the order they
/// started, as the proxy records them.
///
/// With a fixed delay on every call, far longer than the client's own work, a call's round
/// is the number of calls that ran one after another up to it. So the highest round counts
/// the sequential rounds of an investigation, whatever each call took.
pub fn rounds(calls: &[Call]) -> Vec<usize> {
    let mut rounds = Vec::with_capacity(calls.len());
    for call in calls {
        let before = calls
            .iter()
            .zip(&rounds)
            .filter(|(earlier, _)| earlier.finished.is_some_and(|finished| finished <= call.started))
            .map(|(_, round)| *round)
            .max()
            .unwrap_or(0);
        rounds.push(before + 1);
    }
    rounds
}

/// Returns true for a request for a later page: it carries a next token (JSON protocols)
/// or a marker (query protocols).
pub fn is_continuation(call: &Call) -> bool {
    ["NextToken", "nextToken", "Marker="].iter().any(|token| call.request.contains(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Protocol;

    fn call(operation: &str, region: &str) -> Call {
        Call {
            operation: operation.to_string(),
            protocol: Protocol::Query,
            region: Some(region.to_string()),
            fault: None,
            status: Some(200),
            started: Duration::ZERO,
            finished: None,
            upstream: None,
            request: String::new(),
            response: String::new(),
        }
    }

    const MS: Duration = Duration::from_millis(1);
    const TEST_STAGES: &[Stage] = &[
        stage("resolve", &["sts:GetAccessKeyInfo"], Sequential, &[]),
        stage("owner", &["iam:GetUser", "iam:ListMFADevices"], Parallel, &["resolve"]),
        stage("events", &["logs:StartQuery", "logs:GetQueryResults"], Sequential, &["resolve"]),
    ];

    #[test]
    fn sequential_stage_sums_calls() {
        let calls = [
            call("sts:GetAccessKeyInfo", "us-east-1"),
            call("iam:GetUser", "us-east-1"),
            call("iam:ListMFADevices", "us-east-1"),
            call("logs:StartQuery", "us-east-1"),
            call("logs:GetQueryResults", "us-east-1"),
            call("logs:StartQuery", "us-east-1"),
            call("logs:GetQueryResults", "us-east-1"),
        ];

        let path = critical_path(TEST_STAGES, &calls, |_| MS * 10);

        assert_eq!(path.total, MS * 50, "resolve, then four event calls in a row");
        let names: Vec<&str> = path.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["resolve", "events"]);
        assert!(path.unmodelled.is_empty());
    }

    #[test]
    fn regions_overlap_in_sequential_stage() {
        let calls = [
            call("sts:GetAccessKeyInfo", "us-east-1"),
            call("logs:StartQuery", "us-east-1"),
            call("logs:StartQuery", "eu-west-1"),
        ];

        let path = critical_path(TEST_STAGES, &calls, |_| MS * 10);

        assert_eq!(path.total, MS * 20);
    }

    #[test]
    fn parallel_stage_costs_slowest_call() {
        let calls = [
            call("sts:GetAccessKeyInfo", "us-east-1"),
            call("iam:GetUser", "us-east-1"),
            call("iam:ListMFADevices", "us-east-1"),
        ];

        let path = critical_path(TEST_STAGES, &calls, |c| if c.operation == "iam:GetUser" { MS * 30 } else { MS * 10 });

        assert_eq!(path.total, MS * 40);
        assert_eq!(path.stages.last().map(|s| s.name.as_str()), Some("owner"));
    }

    #[test]
    fn paged_stage_overlaps_first_pages() {
        const PAGED: &[Stage] = &[stage("findings", &["securityhub:GetFindings"], Paged, &[])];
        let mut next = call("securityhub:GetFindings", "us-east-1");
        next.request = r#"POST /findings {"NextToken":"abc"}"#.to_string();
        let calls = [call("securityhub:GetFindings", "us-east-1"), call("securityhub:GetFindings", "us-east-1"), next];

        let path = critical_path(PAGED, &calls, |_| MS * 10);

        assert_eq!(path.total, MS * 20, "two first pages at once, then one next page");
    }

    #[test]
    fn unmodelled_operations_listed() {
        let calls = [call("sts:GetAccessKeyInfo", "us-east-1"), call("s3:ListBuckets", "us-east-1")];

        let path = critical_path(TEST_STAGES, &calls, |_| MS * 10);

        assert_eq!(path.unmodelled.iter().collect::<Vec<_>>(), ["s3:ListBuckets"]);
    }

    #[test]
    fn rounds_follow_finished_calls() {
        let timed = |operation: &str, started: u64, finished: u64| Call {
            started: MS * started as u32,
            finished: Some(MS * finished as u32),
            ..call(operation, "us-east-1")
        };
        let calls = [
            timed("sts:GetAccessKeyInfo", 0, 50),
            timed("sts:GetCallerIdentity", 1, 51),
            timed("iam:GetAccessKeyLastUsed", 52, 102),
            timed("logs:StartQuery", 52, 103),
            timed("iam:GetUser", 103, 153),
            timed("logs:GetQueryResults", 104, 154),
        ];

        assert_eq!(rounds(&calls), [1, 1, 2, 2, 3, 3]);
    }

    #[test]
    fn live_table_is_ordered() {
        let path = critical_path(LIVE_INVESTIGATION, &[], |_| MS);
        assert_eq!(path.total, Duration::ZERO);
    }
}
