//! Deduplication of chat events and investigations: a retried delivery never starts a
//! second run, and a second alert or command for a key under investigation links to the
//! existing thread.
//!
//! Both chat adapters reach this through the [`Dedupe`] trait. [`StoreDedupe`] keeps the
//! state in `keycheck_core::store` (SQLite or PostgreSQL), so restarts and replicas share
//! it. [`MemoryDedupe`] keeps it in the process, for unit tests and tools.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keycheck_core::AccessKeyId;
use keycheck_core::approval::Platform;
use keycheck_core::diagnosis::{Severity, Verdict};
use keycheck_core::store::{
    InvestigationClaim, InvestigationRecord, InvestigationStatus, InvestigationUpdate, Scope, Store,
};

/// The channel of an investigation and, once posted, its thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadRecord {
    /// The investigation ID, such as `kc-0123456789`.
    pub investigation_id: String,
    /// The channel ID.
    pub channel: String,
    /// The thread, once known: the `ts` of its parent message on Slack, the thread's
    /// channel ID on Discord.
    pub thread_ts: Option<String>,
    /// When the investigation started.
    pub started_at: DateTime<Utc>,
    /// True when the investigation gave up before posting anything, so it has no thread
    /// to link to and a new request should run.
    pub abandoned: bool,
}

/// The result of claiming an investigation of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// No investigation of the key is current in the scope: the caller runs one.
    New,
    /// An investigation of the key is current; it posts in this thread.
    Existing(ThreadRecord),
}

/// The deduplication state. `scope` is the workspace: the Slack team ID or the Discord
/// guild ID.
#[async_trait]
pub trait Dedupe: Send + Sync {
    /// Records the event `event_id` for `ttl`. Returns false when it was already recorded,
    /// so the event is a retried or repeated delivery.
    async fn claim_event(&self, event_id: &str, ttl: Duration) -> anyhow::Result<bool>;

    /// Claims the investigation of `key` in `scope`, unless another is current: started
    /// or changed less than `window` ago.
    async fn claim_investigation(
        &self,
        key: &AccessKeyId,
        scope: &str,
        window: Duration,
        record: ThreadRecord,
    ) -> anyhow::Result<Claim>;

    /// Records the root message and thread of investigation `investigation_id`.
    async fn set_thread(&self, investigation_id: &str, channel: &str, root_ts: &str, thread_ts: &str) -> anyhow::Result<()>;

    /// Records the verdict of a finished investigation.
    async fn finish(&self, investigation_id: &str, verdict: Verdict, severity: Severity) -> anyhow::Result<()>;

    /// Marks investigation `investigation_id` of `key` as abandoned before it posted, so
    /// that the next request for the key runs.
    async fn abandon(&self, key: &AccessKeyId, scope: &str, investigation_id: &str) -> anyhow::Result<()>;

    /// Returns investigation `investigation_id`, if it is known.
    async fn thread_of(&self, investigation_id: &str) -> anyhow::Result<Option<ThreadRecord>>;
}

/// Deduplication state in `keycheck_core::store`, for the events and investigations of
/// one chat platform.
pub struct StoreDedupe {
    store: Store,
    platform: Platform,
}

impl StoreDedupe {
    /// Uses `store` for the events and investigations of `platform`.
    pub fn new(store: Store, platform: Platform) -> StoreDedupe {
        StoreDedupe { store, platform }
    }
}

fn thread_record(record: &InvestigationRecord) -> ThreadRecord {
    ThreadRecord {
        investigation_id: record.id.clone(),
        channel: record.channel.clone().unwrap_or_default(),
        thread_ts: record.thread.clone(),
        started_at: record.started_at,
        abandoned: record.status == InvestigationStatus::Finished && record.thread.is_none(),
    }
}

#[async_trait]
impl Dedupe for StoreDedupe {
    async fn claim_event(&self, event_id: &str, ttl: Duration) -> anyhow::Result<bool> {
        Ok(self.store.claim_event(self.platform, event_id, ttl, Utc::now()).await?)
    }

    async fn claim_investigation(
        &self,
        key: &AccessKeyId,
        scope: &str,
        window: Duration,
        record: ThreadRecord,
    ) -> anyhow::Result<Claim> {
        let mut stored = InvestigationRecord::start(
            key.clone(),
            Scope::workspace(self.platform, scope),
            self.platform.as_str(),
            record.started_at,
        );
        stored.id = record.investigation_id.clone();
        stored.channel = Some(record.channel.clone());
        stored.thread = record.thread_ts.clone();
        match self.store.claim_investigation(stored, window).await? {
            InvestigationClaim::New(_) => Ok(Claim::New),
            InvestigationClaim::Existing(existing) => Ok(Claim::Existing(thread_record(&existing))),
        }
    }

    async fn set_thread(&self, investigation_id: &str, channel: &str, root_ts: &str, thread_ts: &str) -> anyhow::Result<()> {
        let update = InvestigationUpdate {
            channel: Some(channel.to_string()),
            root_message: Some(root_ts.to_string()),
            thread: Some(thread_ts.to_string()),
            ..InvestigationUpdate::default()
        };
        self.store.update_investigation(investigation_id, &update, Utc::now()).await?;
        Ok(())
    }

    async fn finish(&self, investigation_id: &str, verdict: Verdict, severity: Severity) -> anyhow::Result<()> {
        let update = InvestigationUpdate {
            status: Some(InvestigationStatus::Finished),
            verdict: Some(verdict),
            severity: Some(severity),
            ..InvestigationUpdate::default()
        };
        self.store.update_investigation(investigation_id, &update, Utc::now()).await?;
        Ok(())
    }

    async fn abandon(&self, _key: &AccessKeyId, _scope: &str, investigation_id: &str) -> anyhow::Result<()> {
        // NOTE: the store has no way to give up a claim, so the claim stays current for
        // its window; `Claim::Existing` with `abandoned` set lets the caller run anyway.
        let update = InvestigationUpdate {
            status: Some(InvestigationStatus::Finished),
            ..InvestigationUpdate::default()
        };
        self.store.update_investigation(investigation_id, &update, Utc::now()).await?;
        Ok(())
    }

    async fn thread_of(&self, investigation_id: &str) -> anyhow::Result<Option<ThreadRecord>> {
        Ok(self.store.investigation(investigation_id).await?.as_ref().map(thread_record))
    }
}

/// Deduplication state in the process's memory. Expired entries are dropped as new ones
/// arrive, so memory grows with the events of one TTL, not with uptime.
#[derive(Debug, Default)]
pub struct MemoryDedupe {
    events: Mutex<HashMap<String, Instant>>,
    investigations: Mutex<HashMap<(AccessKeyId, String), (ThreadRecord, Instant)>>,
}

impl MemoryDedupe {
    /// Creates an empty state.
    pub fn new() -> MemoryDedupe {
        MemoryDedupe::default()
    }

    fn with_record(&self, investigation_id: &str, change: impl FnOnce(&mut ThreadRecord)) {
        let mut investigations = self.investigations.lock().expect("dedupe lock is never poisoned");
        if let Some((record, _)) = investigations.values_mut().find(|(record, _)| record.investigation_id == investigation_id) {
            change(record);
        }
    }
}

#[async_trait]
impl Dedupe for MemoryDedupe {
    async fn claim_event(&self, event_id: &str, ttl: Duration) -> anyhow::Result<bool> {
        let now = Instant::now();
        let mut events = self.events.lock().expect("dedupe lock is never poisoned");
        events.retain(|_, expires| *expires > now);
        if events.contains_key(event_id) {
            return Ok(false);
        }
        events.insert(event_id.to_string(), now + ttl);
        Ok(true)
    }

    async fn claim_investigation(
        &self,
        key: &AccessKeyId,
        scope: &str,
        window: Duration,
        record: ThreadRecord,
    ) -> anyhow::Result<Claim> {
        let now = Instant::now();
        let mut investigations = self.investigations.lock().expect("dedupe lock is never poisoned");
        investigations.retain(|_, (record, expires)| *expires > now && !record.abandoned);
        let slot = (key.clone(), scope.to_string());
        if let Some((existing, _)) = investigations.get(&slot) {
            return Ok(Claim::Existing(existing.clone()));
        }
        investigations.insert(slot, (record, now + window));
        Ok(Claim::New)
    }

    async fn set_thread(&self, investigation_id: &str, channel: &str, _root_ts: &str, thread_ts: &str) -> anyhow::Result<()> {
        self.with_record(investigation_id, |record| {
            record.channel = channel.to_string();
            record.thread_ts = Some(thread_ts.to_string());
        });
        Ok(())
    }

    async fn finish(&self, _investigation_id: &str, _verdict: Verdict, _severity: Severity) -> anyhow::Result<()> {
        Ok(())
    }

    async fn abandon(&self, _key: &AccessKeyId, _scope: &str, investigation_id: &str) -> anyhow::Result<()> {
        self.with_record(investigation_id, |record| record.abandoned = true);
        Ok(())
    }

    async fn thread_of(&self, investigation_id: &str) -> anyhow::Result<Option<ThreadRecord>> {
        let investigations = self.investigations.lock().expect("dedupe lock is never poisoned");
        Ok(investigations
            .values()
            .find(|(record, _)| record.investigation_id == investigation_id)
            .map(|(record, _)| record.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> ThreadRecord {
        ThreadRecord {
            investigation_id: id.to_string(),
            channel: "C1".to_string(),
            thread_ts: None,
            started_at: Utc::now(),
            abandoned: false,
        }
    }

    async fn implementations() -> Vec<(&'static str, Box<dyn Dedupe>, tempfile::TempDir)> {
        let folder = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", folder.path().join("keycheck.db").display());
        let store = Store::open(&url).await.expect("SQLite store opens");
        vec![
            ("memory", Box::new(MemoryDedupe::new()), tempfile::tempdir().unwrap()),
            ("store", Box::new(StoreDedupe::new(store, Platform::Slack)), folder),
        ]
    }

    #[tokio::test]
    async fn event_claimed_once() {
        for (name, dedupe, _folder) in implementations().await {
            assert!(dedupe.claim_event("Ev1", Duration::from_secs(60)).await.unwrap(), "{name}");
            assert!(!dedupe.claim_event("Ev1", Duration::from_secs(60)).await.unwrap(), "{name}");
            assert!(dedupe.claim_event("Ev2", Duration::from_secs(60)).await.unwrap(), "{name}");
        }
    }

    #[tokio::test]
    async fn platforms_claim_separately() {
        let folder = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", folder.path().join("keycheck.db").display());
        let store = Store::open(&url).await.expect("SQLite store opens");
        let slack = StoreDedupe::new(store.clone(), Platform::Slack);
        let discord = StoreDedupe::new(store, Platform::Discord);
        let key: AccessKeyId = "AKIAIOSFODNN7EXAMPLE".parse().unwrap();
        let window = Duration::from_secs(60);

        assert!(slack.claim_event("1234", window).await.unwrap());
        assert!(discord.claim_event("1234", window).await.unwrap(), "an ID of another platform is another event");
        assert!(!discord.claim_event("1234", window).await.unwrap());
        assert_eq!(slack.claim_investigation(&key, "T1", window, record("kc-1")).await.unwrap(), Claim::New);
        assert_eq!(discord.claim_investigation(&key, "T1", window, record("kc-2")).await.unwrap(), Claim::New, "a guild is not a Slack workspace");
    }

    #[tokio::test]
    async fn second_claim_sees_first_thread() {
        let key: AccessKeyId = "AKIAIOSFODNN7EXAMPLE".parse().unwrap();
        let window = Duration::from_secs(60);
        for (name, dedupe, _folder) in implementations().await {
            assert_eq!(dedupe.claim_investigation(&key, "T1", window, record("kc-1")).await.unwrap(), Claim::New, "{name}");
            dedupe.set_thread("kc-1", "C1", "1.0001", "1.0001").await.unwrap();
            let Claim::Existing(existing) = dedupe.claim_investigation(&key, "T1", window, record("kc-2")).await.unwrap() else {
                panic!("{name}: second claim was new");
            };
            assert_eq!(existing.investigation_id, "kc-1", "{name}");
            assert_eq!(existing.thread_ts.as_deref(), Some("1.0001"), "{name}");
            assert!(!existing.abandoned, "{name}");
            assert_eq!(dedupe.claim_investigation(&key, "T2", window, record("kc-3")).await.unwrap(), Claim::New, "{name}");
        }
    }

    #[tokio::test]
    async fn abandoned_claim_lets_next_run() {
        let key: AccessKeyId = "AKIAIOSFODNN7EXAMPLE".parse().unwrap();
        let window = Duration::from_secs(60);
        for (name, dedupe, _folder) in implementations().await {
            dedupe.claim_investigation(&key, "T1", window, record("kc-1")).await.unwrap();
            dedupe.abandon(&key, "T1", "kc-1").await.unwrap();
            let claim = dedupe.claim_investigation(&key, "T1", window, record("kc-2")).await.unwrap();
            let runs = match claim {
                Claim::New => true,
                Claim::Existing(existing) => existing.abandoned,
            };
            assert!(runs, "{name}: an abandoned investigation blocked the next one");
        }
    }
}
