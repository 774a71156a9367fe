//! The IAM policy `keycheck iam-policy` prints comes from `OPERATIONS`; it is only right if
//! the code calls nothing that list lacks. These tests run whole investigations (both
//! CloudTrail query modes) through the proxy and check every operation it forwarded.

use std::collections::BTreeSet;

use keycheck_core::evidence::live::{OPERATIONS, Purpose, QueryMode};
use keycheck_tests::live::{self, LiveRun};
use keycheck_tests::proxy::REST_OPERATIONS;

fn operations_called(run: &LiveRun) -> BTreeSet<String> {
    run.calls.iter().map(|c| c.operation.clone()).collect()
}

fn listed(purpose: Option<Purpose>) -> BTreeSet<String> {
    OPERATIONS
        .iter()
        .filter(|op| purpose.is_none_or(|p| op.purpose == p))
        .map(|op| op.id())
        .collect()
}

async fn check_calls_listed(query: QueryMode) {
    let run = live::investigate_new_incident(query).await;
    let _guard = run.print_on_failure();
    let called = operations_called(&run);

    let unidentified: Vec<&String> = called.iter().filter(|op| op.contains(' ')).collect();
    assert!(
        unidentified.is_empty(),
        "the proxy could not name these REST calls; add them to proxy::REST_OPERATIONS ({} entries): {unidentified:?}",
        REST_OPERATIONS.len()
    );
    let investigate = listed(Some(Purpose::Investigate));
    let missing: Vec<&String> = called.iter().filter(|op| !investigate.contains(*op)).collect();
    assert!(
        missing.is_empty(),
        "an investigation called operations that OPERATIONS lacks or lists as containment, so the printed investigation policy would deny them: {missing:?}"
    );
}

#[tokio::test]
async fn insights_calls_listed_operations() {
    check_calls_listed(QueryMode::LogsInsights).await;
}

#[tokio::test]
async fn filter_calls_listed_operations() {
    check_calls_listed(QueryMode::FilterLogEvents).await;
}

#[tokio::test]
async fn call_stats_match_proxy() {
    let run = live::investigate_new_incident(QueryMode::LogsInsights).await;
    let _guard = run.print_on_failure();

    let unlisted: Vec<String> = run
        .call_stats
        .iter()
        .filter(|c| c.action.is_none())
        .map(|c| format!("{}:{}", c.sdk_service, c.operation))
        .collect();
    assert!(unlisted.is_empty(), "the call recorder found operations OPERATIONS lacks: {unlisted:?}");

    // The recorder and the proxy see the same operations, so both count the same thing.
    let recorded: BTreeSet<String> = run.call_stats.iter().filter_map(|c| c.action.map(str::to_string)).collect();
    assert_eq!(recorded, operations_called(&run));

    let attempts: u64 = run.call_stats.iter().map(|c| c.attempts).sum();
    assert_eq!(attempts as usize, run.calls.len(), "HTTP attempts recorded versus requests the proxy received");
}
