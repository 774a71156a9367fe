//! The recorder behind `keycheck snapshot collect`: an evidence source that passes every
//! call to the live source and keeps each result, or the error text of each failure, for
//! the snapshot. For a search that failed in some regions or services, the snapshot
//! contains what it found and the errors of the regions or services it could not read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use keycheck_core::AccessKeyId;
use keycheck_core::cloudtrail::Event;
use keycheck_core::evidence::snapshot::collected::{CloudTrailRead, CollectedEvidence, EvidenceKind};
use keycheck_core::evidence::{
    AccountInfo, AnalyzerFinding, CredentialReportRow, EventQuery, EventSet, Evidence, EvidenceError, HealthEvent,
    KeyLocationSearch, KeyRecord, Search, SecurityFinding, Subject, UserRecord,
};
use tokio::sync::watch;

/// The results the recorder kept of an investigation.
pub(super) struct Recorded {
    /// Every result and failure, for `keycheck-evidence.json`.
    pub evidence: CollectedEvidence,
    /// The CloudTrail events read, or `None` when CloudTrail could not be read.
    pub events: Option<Vec<Event>>,
    /// The kinds of evidence read without error at least once.
    pub read: BTreeSet<EvidenceKind>,
}

/// An evidence source that passes every call to the live source and records the result.
pub(super) struct Recorder {
    live: Arc<dyn Evidence>,
    collected: Mutex<CollectedEvidence>,
    events: Mutex<Option<Vec<Event>>>,
    read: Mutex<BTreeSet<EvidenceKind>>,
    /// Calls that have started and not finished, by kind.
    running: watch::Sender<BTreeMap<EvidenceKind, usize>>,
}

impl Recorder {
    pub(super) fn new(live: Arc<dyn Evidence>, key: AccessKeyId) -> Recorder {
        Recorder {
            live,
            collected: Mutex::new(CollectedEvidence::new(key, Utc::now())),
            events: Mutex::new(None),
            read: Mutex::new(BTreeSet::new()),
            running: watch::Sender::new(BTreeMap::new()),
        }
    }

    /// Waits up to `grace` for calls still running, which happens when the playbook gave
    /// up on a step, then returns what was recorded. A call still running after that is
    /// recorded as not finished.
    pub(super) async fn finish(&self, grace: Duration) -> Recorded {
        let mut running = self.running.subscribe();
        let idle = running.wait_for(|calls| calls.values().all(|n| *n == 0));
        let _ = tokio::time::timeout(grace, idle).await;

        let mut collected = self.collected.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (kind, calls) in self.running.borrow().iter() {
            if *calls > 0 {
                let reason = format!(
                    "the call was still running {} after the playbook finished",
                    humantime::format_duration(grace)
                );
                collected.unavailable.entry(*kind).or_insert(reason);
            }
        }
        Recorded {
            evidence: collected,
            events: self.events.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            read: self.read.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    fn start(&self, kind: EvidenceKind) -> Call<'_> {
        self.running.send_modify(|calls| *calls.entry(kind).or_default() += 1);
        Call {
            recorder: self,
            kind,
            finished: false,
        }
    }

    fn update(&self, change: impl FnOnce(&mut CollectedEvidence)) {
        change(&mut self.collected.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Stores the errors of the regions or services that a search of `kind` could not read,
/// replacing those of an earlier call as the search's results are.
fn keep_partial_failures(collected: &mut CollectedEvidence, kind: EvidenceKind, failures: &[EvidenceError]) {
    if failures.is_empty() {
        collected.partial_failures.remove(&kind);
    } else {
        collected.partial_failures.insert(kind, failures.to_vec());
    }
}

/// One evidence call in progress. Dropping it before `keep` means the playbook stopped
/// waiting for the call (its step timed out), which is recorded as the kind's failure.
struct Call<'a> {
    recorder: &'a Recorder,
    kind: EvidenceKind,
    finished: bool,
}

impl Call<'_> {
    /// Records the call's result: `store` keeps a success, a failure keeps its text.
    fn keep<T>(mut self, result: &Result<T, EvidenceError>, store: impl FnOnce(&mut CollectedEvidence, &T)) {
        self.finished = true;
        let kind = self.kind;
        if result.is_ok() {
            self.recorder.read.lock().unwrap_or_else(|p| p.into_inner()).insert(kind);
        }
        self.recorder.update(|collected| match result {
            Ok(value) => store(collected, value),
            Err(error) => {
                collected.unavailable.insert(kind, error.to_string());
            }
        });
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let kind = self.kind;
            self.recorder.update(|collected| {
                collected
                    .unavailable
                    .entry(kind)
                    .or_insert_with(|| "the call did not finish within the playbook's step timeout".to_string());
            });
        }
        let kind = self.kind;
        self.recorder.running.send_modify(|calls| {
            if let Some(count) = calls.get_mut(&kind) {
                *count = count.saturating_sub(1);
            }
        });
    }
}

#[async_trait]
impl Evidence for Recorder {
    fn describe(&self) -> String {
        self.live.describe()
    }

    async fn resolve_account(&self, key: &AccessKeyId) -> Result<AccountInfo, EvidenceError> {
        let call = self.start(EvidenceKind::Account);
        let result = self.live.resolve_account(key).await;
        call.keep(&result, |collected, info| collected.account = Some(info.clone()));
        result
    }

    async fn access_key(&self, key: &AccessKeyId) -> Result<Option<KeyRecord>, EvidenceError> {
        let call = self.start(EvidenceKind::AccessKey);
        let result = self.live.access_key(key).await;
        call.keep(&result, |collected, record| collected.access_key = record.clone());
        result
    }

    /// Passes the call on without recording it, because the playbook also reads the key's
    /// record with `access_key`, which is recorded and contains the owner's name.
    async fn access_key_owner(&self, key: &AccessKeyId) -> Result<Option<String>, EvidenceError> {
        self.live.access_key_owner(key).await
    }

    async fn user(&self, user_name: &str) -> Result<Option<UserRecord>, EvidenceError> {
        let call = self.start(EvidenceKind::Users);
        let result = self.live.user(user_name).await;
        call.keep(&result, |collected, user| {
            collected.users.retain(|u| u.user_name != user_name);
            collected.users_not_found.retain(|name| name != user_name);
            match user {
                Some(user) => collected.users.push(user.clone()),
                None => collected.users_not_found.push(user_name.to_string()),
            }
        });
        result
    }

    async fn credential_report(&self) -> Result<Vec<CredentialReportRow>, EvidenceError> {
        let call = self.start(EvidenceKind::CredentialReport);
        let result = self.live.credential_report().await;
        call.keep(&result, |collected, rows| collected.credential_report = Some(rows.clone()));
        result
    }

    async fn events(&self, query: &EventQuery) -> Result<EventSet, EvidenceError> {
        let call = self.start(EvidenceKind::Cloudtrail);
        let result = self.live.events(query).await;
        if let Ok(set) = &result {
            *self.events.lock().unwrap_or_else(|p| p.into_inner()) = Some(set.events.clone());
        }
        call.keep(&result, |collected, set| {
            collected.cloudtrail = Some(CloudTrailRead {
                window: set.window,
                history_start: set.history_start,
                skipped_records: set.skipped_records,
                source: set.source.clone(),
            });
            keep_partial_failures(collected, EvidenceKind::Cloudtrail, &set.failures);
        });
        result
    }

    async fn security_hub_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError> {
        let call = self.start(EvidenceKind::SecurityHub);
        let result = self.live.security_hub_findings(subject).await;
        call.keep(&result, |collected, search| {
            collected.security_hub = Some(search.found.clone());
            keep_partial_failures(collected, EvidenceKind::SecurityHub, &search.failures);
        });
        result
    }

    async fn guardduty_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError> {
        let call = self.start(EvidenceKind::Guardduty);
        let result = self.live.guardduty_findings(subject).await;
        call.keep(&result, |collected, search| {
            collected.guardduty = Some(search.found.clone());
            keep_partial_failures(collected, EvidenceKind::Guardduty, &search.failures);
        });
        result
    }

    async fn health_events(&self, subject: &Subject) -> Result<Vec<HealthEvent>, EvidenceError> {
        let call = self.start(EvidenceKind::Health);
        let result = self.live.health_events(subject).await;
        call.keep(&result, |collected, events| collected.health = Some(events.clone()));
        result
    }

    async fn access_analyzer_findings(&self, subject: &Subject) -> Result<Search<AnalyzerFinding>, EvidenceError> {
        let call = self.start(EvidenceKind::AccessAnalyzer);
        let result = self.live.access_analyzer_findings(subject).await;
        call.keep(&result, |collected, search| {
            collected.access_analyzer = Some(search.found.clone());
            keep_partial_failures(collected, EvidenceKind::AccessAnalyzer, &search.failures);
        });
        result
    }

    async fn key_locations(&self, subject: &Subject) -> Result<KeyLocationSearch, EvidenceError> {
        let call = self.start(EvidenceKind::KeyLocations);
        let result = self.live.key_locations(subject).await;
        call.keep(&result, |collected, search| {
            collected.key_locations = Some(search.found.clone());
            keep_partial_failures(collected, EvidenceKind::KeyLocations, &search.failures);
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keycheck_core::demo;

    /// The demonstration snapshot, with a step 0 lookup that never finishes.
    struct StuckAccount(keycheck_core::evidence::snapshot::Snapshot);

    #[async_trait]
    impl Evidence for StuckAccount {
        fn describe(&self) -> String {
            self.0.describe()
        }
        async fn resolve_account(&self, _key: &AccessKeyId) -> Result<AccountInfo, EvidenceError> {
            std::future::pending().await
        }
        async fn access_key(&self, key: &AccessKeyId) -> Result<Option<KeyRecord>, EvidenceError> {
            self.0.access_key(key).await
        }
        async fn user(&self, user_name: &str) -> Result<Option<UserRecord>, EvidenceError> {
            self.0.user(user_name).await
        }
        async fn credential_report(&self) -> Result<Vec<CredentialReportRow>, EvidenceError> {
            self.0.credential_report().await
        }
        async fn events(&self, query: &EventQuery) -> Result<EventSet, EvidenceError> {
            self.0.events(query).await
        }
        async fn security_hub_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError> {
            self.0.security_hub_findings(subject).await
        }
        async fn guardduty_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError> {
            self.0.guardduty_findings(subject).await
        }
        async fn health_events(&self, subject: &Subject) -> Result<Vec<HealthEvent>, EvidenceError> {
            self.0.health_events(subject).await
        }
        async fn access_analyzer_findings(&self, subject: &Subject) -> Result<Search<AnalyzerFinding>, EvidenceError> {
            self.0.access_analyzer_findings(subject).await
        }
        async fn key_locations(&self, subject: &Subject) -> Result<KeyLocationSearch, EvidenceError> {
            self.0.key_locations(subject).await
        }
    }

    fn stuck_recorder() -> Arc<Recorder> {
        let snapshot = demo::snapshot().expect("the demonstration snapshot");
        Arc::new(Recorder::new(Arc::new(StuckAccount(snapshot)), demo::key()))
    }

    #[tokio::test]
    async fn abandoned_call_recorded_as_failure() {
        let recorder = stuck_recorder();
        let abandoned = tokio::time::timeout(Duration::from_millis(20), recorder.resolve_account(&demo::key())).await;
        assert!(abandoned.is_err(), "the stuck lookup cannot finish");

        let recorded = recorder.finish(Duration::from_millis(20)).await;
        let reason = &recorded.evidence.unavailable[&EvidenceKind::Account];
        assert!(reason.contains("did not finish within the playbook's step timeout"), "{reason}");
        assert!(recorded.read.is_empty());
    }

    #[tokio::test]
    async fn running_call_recorded_after_grace() {
        let recorder = stuck_recorder();
        let running = tokio::spawn({
            let recorder = Arc::clone(&recorder);
            async move { recorder.resolve_account(&demo::key()).await }
        });
        tokio::task::yield_now().await;

        let recorded = recorder.finish(Duration::from_millis(20)).await;
        let reason = &recorded.evidence.unavailable[&EvidenceKind::Account];
        assert!(reason.contains("still running 20ms after the playbook finished"), "{reason}");
        running.abort();
    }

    #[tokio::test]
    async fn results_and_failures_recorded() {
        let recorder = stuck_recorder();
        let subject = Subject {
            key: demo::key(),
            account_id: None,
            owner_name: Some("no-such-user".to_string()),
            owner_arn: None,
        };

        let report = recorder.credential_report().await.expect("the demonstration credential report");
        assert_eq!(recorder.user("no-such-user").await, Ok(None));
        let findings = recorder.guardduty_findings(&subject).await.expect("the demonstration GuardDuty findings");

        let recorded = recorder.finish(Duration::from_millis(20)).await;
        assert_eq!(recorded.evidence.credential_report, Some(report));
        assert_eq!(recorded.evidence.users_not_found, ["no-such-user"]);
        assert_eq!(recorded.evidence.guardduty, Some(findings.found));
        let read: Vec<EvidenceKind> = recorded.read.into_iter().collect();
        assert_eq!(read, [EvidenceKind::Users, EvidenceKind::CredentialReport, EvidenceKind::Guardduty]);
        assert!(recorded.evidence.unavailable.is_empty(), "{:?}", recorded.evidence.unavailable);
    }
}
