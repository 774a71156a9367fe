//! The live evidence source: the `Evidence` trait implemented by calling AWS.
//!
//! One `LiveEvidence` serves one investigation. It resolves the key's account in step 0,
//! then reads that account with keycheck's own credentials or the role configured for
//! it. CloudTrail is fetched once (one CloudWatch Logs Insights query or `FilterLogEvents`
//! pass, plus one follow-up per round of sessions minted from the key), and every event
//! returned is checked again here, because AWS and its emulators return near-misses.
//! Regional services are read in every relevant region at once.
//!
//! Module layout: `config` (settings), `operations` (every AWS operation and its IAM
//! action), `clients` (credentials and clients), `error` (SDK errors to `EvidenceError`),
//! `stats` (the call recorder), `memo` (IAM records read once per investigation), and one
//! module per kind of evidence.

pub mod config;
pub mod operations;

mod account;
pub(crate) mod clients;
pub(crate) mod error;
mod findings;
mod iam;
mod memo;
mod regional;
mod stats;
mod storage;
mod trail;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub use config::{AccountAccess, ConfigError, LiveConfig, QueryMode};
pub use operations::{OPERATIONS, Operation, Purpose};
pub use stats::{AwsCallStats, CallName, CallObserver, CallOutcome, OperationCalls, set_call_observer};

use super::events::{EventQuery, EventSet};
use super::{
    AccountInfo, AnalyzerFinding, CredentialReportRow, Evidence, EvidenceError, HealthEvent,
    KeyLocationSearch, KeyRecord, Search, SecurityFinding, Subject, UserRecord,
};
use crate::key::AccessKeyId;
use clients::{Access, BaseSource, Clients};
use config::is_region_name;

/// Evidence read live from AWS for one investigation. Implements `Evidence`.
pub struct LiveEvidence {
    access: Access,
    stats: AwsCallStats,
    /// The account under investigation, once step 0 resolved it.
    target: Mutex<Option<String>>,
    /// Regions the key was seen in: its last-used region and the regions of its events.
    seen_regions: Mutex<BTreeSet<String>>,
    /// Progress of the CloudTrail read. Without configured regions, the regional searches
    /// wait for it to learn the regions the key was seen in.
    trail_read: watch::Sender<TrailRead>,
    /// IAM records shared by the calls that need them.
    iam_reads: iam::Reads,
}

/// How far the investigation's CloudTrail read has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TrailRead {
    NotStarted,
    Running,
    Finished,
}

/// Marks the CloudTrail read finished when dropped, whether it succeeded, failed or was
/// cancelled, so that no regional search waits for it forever.
struct TrailReadGuard<'a>(&'a watch::Sender<TrailRead>);

impl Drop for TrailReadGuard<'_> {
    fn drop(&mut self) {
        self.0.send_replace(TrailRead::Finished);
    }
}

impl LiveEvidence {
    /// Creates the live source for investigation `investigation_id`, with keycheck's own
    /// credentials from the AWS default chain (or the configured profile).
    ///
    /// Fails only on an invalid configuration, as `NotAvailable` with the field to fix.
    /// Credentials are loaded on the first AWS call, so missing credentials surface as
    /// step 0's error.
    pub fn new(config: LiveConfig, investigation_id: &str) -> Result<LiveEvidence, EvidenceError> {
        validated(&config)?;
        Ok(LiveEvidence::build(
            config,
            investigation_id,
            BaseSource::DefaultChain,
            Vec::new(),
        ))
    }

    /// Creates the live source with fixed credentials and nothing read from the
    /// environment: the configured region (else `us-east-1`) and endpoint. Meant for tests
    /// against an emulator, and for callers that obtained credentials themselves.
    pub fn with_credentials(
        config: LiveConfig,
        investigation_id: &str,
        credentials: Credentials,
    ) -> Result<LiveEvidence, EvidenceError> {
        validated(&config)?;
        let sdk_config = clients::static_config(&config, credentials);
        Ok(LiveEvidence::build(
            config,
            investigation_id,
            BaseSource::Prepared(sdk_config),
            Vec::new(),
        ))
    }

    /// Creates the live source on a prepared SDK configuration, with extra interceptors on
    /// every client, such as recorded responses.
    #[cfg(test)]
    pub(crate) fn with_sdk_config(
        config: LiveConfig,
        investigation_id: &str,
        sdk_config: aws_config::SdkConfig,
        interceptors: Vec<aws_smithy_runtime_api::client::interceptors::SharedInterceptor>,
    ) -> LiveEvidence {
        validated(&config).expect("valid test configuration");
        LiveEvidence::build(
            config,
            investigation_id,
            BaseSource::Prepared(sdk_config),
            interceptors,
        )
    }

    fn build(
        config: LiveConfig,
        investigation_id: &str,
        source: BaseSource,
        interceptors: Vec<aws_smithy_runtime_api::client::interceptors::SharedInterceptor>,
    ) -> LiveEvidence {
        let stats = AwsCallStats::default();
        LiveEvidence {
            access: Access::new(
                config,
                investigation_id,
                source,
                stats.clone(),
                interceptors,
            ),
            stats,
            target: Mutex::new(None),
            seen_regions: Mutex::new(BTreeSet::new()),
            trail_read: watch::Sender::new(TrailRead::NotStarted),
            iam_reads: iam::Reads::default(),
        }
    }

    /// Returns the counts of AWS calls made so far, by operation and outcome. The handle
    /// stays live: later calls show up in it.
    pub fn call_stats(&self) -> AwsCallStats {
        self.stats.clone()
    }

    fn config(&self) -> &LiveConfig {
        self.access.config()
    }

    /// Returns the account under investigation: the one step 0 resolved, else keycheck's
    /// own account.
    async fn target_account(&self) -> Result<String, EvidenceError> {
        if let Some(account) = self
            .target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(account);
        }
        Ok(self.access.caller().await?.account)
    }

    /// Returns the clients of the account under investigation in the home region, where
    /// IAM and CloudTrail discovery are called.
    async fn home_clients(&self) -> Result<Arc<Clients>, EvidenceError> {
        let account = self.target_account().await?;
        let region = self.access.home_region().await?;
        self.access.clients(&account, &region).await
    }

    /// Returns the account a subject names, else the account under investigation.
    async fn subject_account(&self, subject: &Subject) -> Result<String, EvidenceError> {
        match &subject.account_id {
            Some(account) => Ok(account.clone()),
            None => self.target_account().await,
        }
    }

    /// Records a region the key was seen in, ignoring values that are not region names
    /// (CloudTrail and IAM write `N/A` and the like).
    fn note_region(&self, region: &str) {
        if is_region_name(region) {
            let mut seen = self.seen_regions.lock().unwrap_or_else(|p| p.into_inner());
            seen.insert(region.to_string());
        }
    }

    /// Marks the CloudTrail read running until the returned guard is dropped.
    fn trail_reading(&self) -> TrailReadGuard<'_> {
        self.trail_read.send_replace(TrailRead::Running);
        TrailReadGuard(&self.trail_read)
    }

    /// Returns the configured regions immediately. Without configured regions, waits for
    /// a running CloudTrail read to finish and note the regions of the key's events, then
    /// returns `relevant_regions`.
    ///
    /// NOTE: a search that gets here before the CloudTrail read has started does not wait
    /// for it. The playbook spawns the read before the searches, which first wait for the
    /// owner's name, but nothing enforces that order.
    async fn regions_after_trail(&self) -> Result<Vec<String>, EvidenceError> {
        if self.config().regions.is_empty() {
            let mut progress = self.trail_read.subscribe();
            // The sender lives as long as `self`, so the wait ends only with the read.
            let _ = progress.wait_for(|read| *read != TrailRead::Running).await;
        }
        self.relevant_regions().await
    }

    /// Returns the regions to search: the configured ones, else the home region and every
    /// region the key was seen in so far, home region first.
    async fn relevant_regions(&self) -> Result<Vec<String>, EvidenceError> {
        if !self.config().regions.is_empty() {
            return Ok(self.config().regions.clone());
        }
        let home = self.access.home_region().await?;
        let seen = self
            .seen_regions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut regions = vec![home.clone()];
        regions.extend(seen.into_iter().filter(|r| *r != home));
        Ok(regions)
    }
}

/// Converts an SDK timestamp to UTC.
fn utc(time: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

fn validated(config: &LiveConfig) -> Result<(), EvidenceError> {
    config
        .validate()
        .map_err(|error| EvidenceError::NotAvailable {
            what: "live AWS evidence".to_string(),
            hint: error.to_string(),
        })
}

#[async_trait]
impl Evidence for LiveEvidence {
    fn describe(&self) -> String {
        match self
            .target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
        {
            Some(account) => format!("live, account {account}"),
            None => "live AWS".to_string(),
        }
    }

    async fn resolve_account(&self, key: &AccessKeyId) -> Result<AccountInfo, EvidenceError> {
        account::resolve(self, key).await
    }

    async fn access_key(&self, key: &AccessKeyId) -> Result<Option<KeyRecord>, EvidenceError> {
        iam::access_key(self, key).await
    }

    async fn access_key_owner(&self, key: &AccessKeyId) -> Result<Option<String>, EvidenceError> {
        iam::access_key_owner(self, key).await
    }

    async fn user(&self, user_name: &str) -> Result<Option<UserRecord>, EvidenceError> {
        iam::user(self, user_name).await
    }

    async fn credential_report(&self) -> Result<Vec<CredentialReportRow>, EvidenceError> {
        iam::credential_report(self).await
    }

    async fn events(&self, query: &EventQuery) -> Result<EventSet, EvidenceError> {
        trail::events(self, query).await
    }

    async fn security_hub_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError> {
        findings::security_hub(self, subject).await
    }

    async fn guardduty_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError> {
        findings::guardduty(self, subject).await
    }

    async fn health_events(&self, _subject: &Subject) -> Result<Vec<HealthEvent>, EvidenceError> {
        // NOTE: AWS Health is not read live. Its API is served from us-east-1 only, needs a
        // Business, Enterprise On-Ramp or Enterprise support plan, and keycheck has no
        // aws-sdk-health dependency. Health events still reach keycheck as forwarded alerts.
        Err(EvidenceError::NotAvailable {
            what: "AWS Health events".to_string(),
            hint: "keycheck does not call the AWS Health API, which needs a Business or Enterprise support plan: forward AWS Health events (AWS_RISK_CREDENTIALS_EXPOSED) to a watched channel instead".to_string(),
        })
    }

    async fn access_analyzer_findings(&self, subject: &Subject) -> Result<Search<AnalyzerFinding>, EvidenceError> {
        findings::access_analyzer(self, subject).await
    }

    async fn key_locations(&self, subject: &Subject) -> Result<KeyLocationSearch, EvidenceError> {
        storage::key_locations(self, subject).await
    }
}
