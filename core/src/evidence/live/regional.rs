//! Reading a regional service in several regions at once, and combining the results.
//!
//! Each region runs concurrently under the region timeout. Combining keeps what the
//! regions or sources that responded found, and returns the failures of the others beside
//! it, because a report must name the places it did not search. A region where the
//! service is not enabled is not a failure.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use tracing::warn;

use super::LiveEvidence;
use super::clients::Clients;
use super::error::{failure, is_kind};
use super::operations::Operation;
use crate::evidence::{AwsErrorKind, EvidenceError, Search};

/// The result of one region or source, labelled for logs and messages.
pub(super) type Labelled<T> = (String, Result<Vec<T>, EvidenceError>);

/// Runs `work` in every region concurrently with the clients of `account` there. A region
/// that runs past the region timeout fails as a timeout of `operation`.
pub(super) async fn each_region<T, F, Fut>(
    live: &LiveEvidence,
    account: &str,
    regions: &[String],
    operation: &Operation,
    work: F,
) -> Vec<Labelled<T>>
where
    F: Fn(Arc<Clients>, String) -> Fut,
    Fut: Future<Output = Result<Vec<T>, EvidenceError>>,
{
    let timeout = live.config().region_timeout;
    let work = &work;
    let tasks = regions.iter().map(|region| async move {
        let clients = match live.access.clients(account, region).await {
            Ok(clients) => clients,
            Err(error) => return (region.clone(), Err(error)),
        };
        let result = match tokio::time::timeout(timeout, work(clients, region.clone())).await {
            Ok(result) => result,
            Err(_) => Err(failure(
                operation,
                region,
                AwsErrorKind::Timeout,
                format!(
                    "{region} did not respond within {}",
                    humantime::format_duration(timeout)
                ),
            )),
        };
        (region.clone(), result)
    });
    join_all(tasks).await
}

/// Runs `work` in every region to search, concurrently. The regions known now (the
/// configured ones, or the home region and the key's last-used region) are searched
/// immediately. When no regions are configured, the regions that the key's CloudTrail
/// events add are searched after the CloudTrail read finishes, so CloudTrail delays only
/// those.
pub(super) async fn each_relevant_region<T, F, Fut>(
    live: &LiveEvidence,
    account: &str,
    operation: &Operation,
    work: F,
) -> Result<Vec<Labelled<T>>, EvidenceError>
where
    F: Fn(Arc<Clients>, String) -> Fut,
    Fut: Future<Output = Result<Vec<T>, EvidenceError>>,
{
    let known = live.relevant_regions().await?;
    let added = async {
        let after = live.regions_after_trail().await?;
        let added: Vec<String> = after.into_iter().filter(|region| !known.contains(region)).collect();
        Ok::<_, EvidenceError>(each_region(live, account, &added, operation, &work).await)
    };
    let (mut results, added) = tokio::join!(each_region(live, account, &known, operation, &work), added);
    results.extend(added?);
    Ok(results)
}

/// Flattens the results of `each_region` whose regions each return several sources (one
/// per request filter or service) into one result per source. A region that failed as a
/// whole stays one failed source.
pub(super) fn per_source<T>(per_region: Vec<Labelled<Labelled<T>>>) -> Vec<Labelled<T>> {
    let mut sources = Vec::new();
    for (region, result) in per_region {
        match result {
            Ok(found) => sources.extend(found),
            Err(error) => sources.push((region, Err(error))),
        }
    }
    sources
}

/// Combines the results of several regions or sources of `what` (such as `GuardDuty
/// findings`) into one.
///
/// - Some succeeded: their items, with the failures of the others, each distinct failure
///   once, except those where the service is not enabled or the evidence not available.
/// - None succeeded and every one is not enabled or not available: `NotAvailable`, naming
///   where.
/// - Otherwise: the first real failure.
pub(super) fn combine<T>(what: &str, results: Vec<Labelled<T>>) -> Result<Search<T>, EvidenceError> {
    let mut items = Vec::new();
    let mut succeeded = 0;
    let mut failures: Vec<(String, EvidenceError)> = Vec::new();
    for (label, result) in results {
        match result {
            Ok(found) => {
                succeeded += 1;
                items.extend(found);
            }
            Err(error) => failures.push((label, error)),
        }
    }

    let is_unavailable = |error: &EvidenceError| {
        matches!(error, EvidenceError::NotAvailable { .. })
            || is_kind(error, AwsErrorKind::NotEnabled)
    };
    let first_failure = failures
        .iter()
        .find(|(_, error)| !is_unavailable(error))
        .map(|(_, e)| e.clone());

    if succeeded == 0 {
        if let Some(error) = first_failure {
            return Err(error);
        }
        return Err(not_available(what, &failures));
    }
    for (label, error) in &failures {
        warn!(what, source = %label, %error, "part of the evidence could not be read");
    }

    // Several sources of one region can fail with the same error, such as one denied
    // `GetFindings` per Security Hub filter, and the report needs to name it only once.
    let mut not_searched: Vec<EvidenceError> = Vec::new();
    for (_, error) in failures {
        if !is_unavailable(&error) && !not_searched.contains(&error) {
            not_searched.push(error);
        }
    }
    Ok(Search {
        found: items,
        failures: not_searched,
    })
}

/// Builds the `NotAvailable` error for evidence that no region or source could provide. A
/// `NotAvailable` from below (no role for the account, say) is passed on as it is.
fn not_available(what: &str, failures: &[(String, EvidenceError)]) -> EvidenceError {
    if let Some((_, error @ EvidenceError::NotAvailable { .. })) = failures.first() {
        return error.clone();
    }
    let labels: Vec<&str> = failures.iter().map(|(label, _)| label.as_str()).collect();
    let reason = match failures.first() {
        Some((_, EvidenceError::Aws { reason, .. })) => format!(" ({reason})"),
        _ => String::new(),
    };
    EvidenceError::NotAvailable {
        what: what.to_string(),
        hint: format!("not enabled in {}{reason}", labels.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::live::operations::GUARDDUTY_LIST_FINDINGS;

    fn failed(kind: AwsErrorKind) -> EvidenceError {
        failure(&GUARDDUTY_LIST_FINDINGS, "us-east-1", kind, "reason")
    }

    #[test]
    fn combine_keeps_found_items_and_failures() {
        let results = vec![
            ("us-east-1".to_string(), Ok(vec![1])),
            (
                "eu-west-1".to_string(),
                Err(failed(AwsErrorKind::AccessDenied)),
            ),
        ];
        let search = combine("findings", results).unwrap();
        assert_eq!(search.found, [1]);
        assert_eq!(search.failures, [failed(AwsErrorKind::AccessDenied)]);
    }

    #[test]
    fn combine_reports_failure_beside_empty_result() {
        let results: Vec<Labelled<u8>> = vec![
            ("us-east-1".to_string(), Ok(vec![])),
            (
                "eu-west-1".to_string(),
                Err(failed(AwsErrorKind::Throttled)),
            ),
        ];
        let search = combine("findings", results).unwrap();
        assert!(search.found.is_empty());
        assert_eq!(search.failures.len(), 1);
        assert!(is_kind(&search.failures[0], AwsErrorKind::Throttled), "{search:?}");
    }

    #[test]
    fn combine_reports_same_failure_once() {
        let results = vec![
            ("us-east-1, filter 1".to_string(), Err(failed(AwsErrorKind::AccessDenied))),
            ("us-east-1, filter 2".to_string(), Err(failed(AwsErrorKind::AccessDenied))),
            ("us-east-1, filter 3".to_string(), Ok(vec![1])),
            ("us-east-1, filter 4".to_string(), Err(failed(AwsErrorKind::Throttled))),
        ];
        let search = combine("findings", results).unwrap();
        assert_eq!(search.found, [1]);
        assert_eq!(
            search.failures,
            [failed(AwsErrorKind::AccessDenied), failed(AwsErrorKind::Throttled)]
        );
    }

    #[test]
    fn combine_trusts_empty_result_beside_not_enabled() {
        let results: Vec<Labelled<u8>> = vec![
            ("us-east-1".to_string(), Ok(vec![])),
            (
                "eu-west-1".to_string(),
                Err(failed(AwsErrorKind::NotEnabled)),
            ),
        ];
        let search = combine("findings", results).unwrap();
        assert!(search.found.is_empty());
        assert!(search.is_complete(), "{search:?}");
    }

    #[test]
    fn combine_all_not_enabled_is_not_available() {
        let results: Vec<Labelled<u8>> = vec![
            (
                "us-east-1".to_string(),
                Err(failed(AwsErrorKind::NotEnabled)),
            ),
            (
                "eu-west-1".to_string(),
                Err(failed(AwsErrorKind::NotEnabled)),
            ),
        ];
        let error = combine("GuardDuty findings", results).unwrap_err();
        let EvidenceError::NotAvailable { what, hint } = error else {
            panic!("expected NotAvailable, got {error:?}");
        };
        assert_eq!(what, "GuardDuty findings");
        assert!(
            hint.starts_with("not enabled in us-east-1, eu-west-1"),
            "{hint}"
        );
    }
}
