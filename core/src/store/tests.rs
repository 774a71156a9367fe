//! Tests of the store against a real SQLite file and, when `KEYCHECK_TEST_DATABASE_URL`
//! names a PostgreSQL server that accepts connections, against PostgreSQL.
//! [`each_backend`] runs the same test body on both. On PostgreSQL each run gets a fresh
//! schema, so parallel tests and test binaries never see each other's rows.

use std::future::Future;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::FutureExt;
use futures::future::join_all;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::*;
use crate::approval::{
    ActionKind, ActionState, Actor, ChatChannel, PendingAction, Platform, StateChange,
};
use crate::diagnosis::{Severity, Verdict};
use crate::key::AccessKeyId;
use crate::redact;

const DATABASE_URL_VAR: &str = "KEYCHECK_TEST_DATABASE_URL";

const HOUR: Duration = Duration::from_secs(3600);

/// A store under test and the URL that opens it again, as a restarted bot or a second
/// replica would.
struct TestDb {
    store: Store,
    url: String,
}

impl TestDb {
    async fn open_again(&self) -> Store {
        Store::open(&self.url)
            .await
            .unwrap_or_else(|error| panic!("reopening {} failed: {error}", self.url))
    }
}

/// A PostgreSQL server for tests, and a pool on it for creating and dropping schemas.
struct PostgresServer {
    url: String,
    admin: PgPool,
}

/// Returns the test PostgreSQL server, or `None` with a printed notice when
/// `KEYCHECK_TEST_DATABASE_URL` is unset or the server cannot be reached.
async fn postgres_server(test: &str) -> Option<PostgresServer> {
    let Ok(url) = std::env::var(DATABASE_URL_VAR) else {
        eprintln!("{test}: skipped on PostgreSQL because {DATABASE_URL_VAR} is not set");
        return None;
    };
    if !is_postgres_url(&url) {
        eprintln!(
            "{test}: skipped on PostgreSQL because {DATABASE_URL_VAR} is not a postgres:// URL"
        );
        return None;
    }
    let connected = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await;
    match connected {
        Ok(admin) => Some(PostgresServer { url, admin }),
        Err(error) => {
            eprintln!(
                "{test}: skipped on PostgreSQL because {} cannot be reached: {error}",
                display_url(&url)
            );
            None
        }
    }
}

/// Returns `url` with the connection's search_path set to `schema`.
fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// Runs `body` on a new SQLite file, then on a fresh PostgreSQL schema when a server is
/// available. A failure names the backend it happened on.
async fn each_backend<F, Fut>(test: &str, body: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = dir
        .path()
        .join("keycheck.db")
        .to_str()
        .expect("UTF-8 path")
        .to_string();
    let store = Store::open(&url).await.expect("opening the SQLite store");
    eprintln!("{test}: running on SQLite at {url}");
    body(TestDb {
        store: store.clone(),
        url,
    })
    .await;
    store.close().await;

    let Some(server) = postgres_server(test).await else {
        return;
    };
    let schema = format!("keycheck_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&server.admin)
        .await
        .expect("creating the test schema");
    let url = with_search_path(&server.url, &schema);
    let store = Store::open(&url)
        .await
        .expect("opening the PostgreSQL store");
    eprintln!("{test}: running on PostgreSQL in schema {schema}");

    let outcome = AssertUnwindSafe(body(TestDb {
        store: store.clone(),
        url,
    }))
    .catch_unwind()
    .await;

    store.close().await;
    if let Err(error) = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&server.admin)
        .await
    {
        eprintln!("{test}: dropping schema {schema} failed: {error}");
    }
    server.admin.close().await;
    if let Err(panic) = outcome {
        eprintln!("{test}: failed on PostgreSQL");
        resume_unwind(panic);
    }
}

impl Store {
    /// Runs SQL outside the store's API, as a tampering client would.
    async fn execute_raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        with_pool!(self, pool => sqlx::query(sql).execute(pool).await.map(|done| done.rows_affected()))
    }

    /// Returns the first column of the first row of `sql` as text.
    async fn query_text(&self, sql: &str) -> String {
        let text: Option<String> =
            with_pool!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
                .unwrap_or_else(|error| panic!("{sql} failed: {error}"));
        text.unwrap_or_default()
    }
}

/// Returns 09:00 UTC on 14 March 2025 plus `minutes`.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn key(suffix: u32) -> AccessKeyId {
    format!("AKIAIOSFODNN7EXAM{suffix:03}")
        .parse()
        .expect("valid key ID")
}

fn actor(user_id: &str) -> Actor {
    Actor {
        platform: Platform::Slack,
        user_id: user_id.to_string(),
        display_name: format!("name of {user_id}"),
    }
}

fn channel() -> ChatChannel {
    ChatChannel {
        platform: Platform::Slack,
        workspace: "T0WORK".to_string(),
        channel: "C0INCIDENT".to_string(),
    }
}

fn scope() -> Scope {
    Scope::channel(Platform::Slack, "T0WORK", "C0INCIDENT")
}

/// Stores a new investigation of `key_id` and returns its ID. A window of zero makes
/// every call start a new one.
async fn new_investigation(store: &Store, key_id: AccessKeyId) -> String {
    let record = InvestigationRecord::start(key_id, scope(), "command", at(0));
    let claim = store
        .claim_investigation(record, Duration::ZERO)
        .await
        .unwrap();
    assert!(claim.is_new(), "{claim:?}");
    claim.record().id.clone()
}

/// Stores an offered deactivation of key 1 and returns it as stored.
async fn offered_action(store: &Store) -> PendingAction {
    let investigation_id = new_investigation(store, key(1)).await;
    let action = PendingAction::offer(
        &investigation_id,
        ActionKind::Deactivate,
        key(1),
        "arn:aws:iam::123456789012:user/deploy",
        r#"{"update_access_key":{"user_name":"deploy","status":"Inactive"}}"#,
        channel(),
        at(0),
    );
    store.create_action(&action).await.unwrap()
}

/// Stores an action of key 1 that U0REQUEST requested at minute 1, with its approval
/// deadline at minute 31.
async fn requested_action(store: &Store) -> PendingAction {
    let action = offered_action(store).await;
    let request = StateChange {
        from: ActionState::Offered,
        to: ActionState::Requested,
        expires_at: Some(at(31)),
    };
    assert!(
        store
            .transition(&action.id, request, &actor("U0REQUEST"), at(1))
            .await
            .unwrap()
    );
    store.action(&action.id).await.unwrap().unwrap()
}

fn audit_entry(minute: i64, key_id: AccessKeyId, event: AuditEvent, detail: &str) -> AuditEntry {
    AuditEntry {
        at: at(minute),
        investigation_id: Some("inv-audit".to_string()),
        action_id: Some(crate::approval::ActionId::generate()),
        key_id: Some(key_id),
        actor: actor("U0APPROVE"),
        event,
        detail: detail.to_string(),
        aws_request_id: Some("c2b2a3b4-5e6f-4a1b-9c8d-0123456789ab".to_string()),
        result: Some("ok".to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_event_first_delivery_only() {
    each_backend("claim_event_first_delivery_only", |db| async move {
        let store = db.store;
        assert!(
            store
                .claim_event(Platform::Slack, "Ev01", HOUR, at(0))
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_event(Platform::Slack, "Ev01", HOUR, at(1))
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_event(Platform::Discord, "Ev01", HOUR, at(1))
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_event(Platform::Slack, "Ev02", HOUR, at(2))
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_event(Platform::Slack, "Ev01", HOUR, at(59))
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_event(Platform::Slack, "Ev01", HOUR, at(60))
                .await
                .unwrap(),
            "an event ID counts as new once its time to live has passed"
        );
        assert!(
            !store
                .claim_event(Platform::Slack, "Ev01", HOUR, at(61))
                .await
                .unwrap()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_event_concurrent_deliveries() {
    each_backend("claim_event_concurrent_deliveries", |db| async move {
        let replicas = [db.store.clone(), db.open_again().await];
        let tasks = (0..10).map(|task| {
            let store = replicas[task % 2].clone();
            tokio::spawn(async move {
                store
                    .claim_event(Platform::Slack, "Ev0RETRIED", HOUR, at(0))
                    .await
            })
        });
        let results: Vec<bool> = join_all(tasks)
            .await
            .into_iter()
            .map(|joined| joined.expect("task panicked").expect("claim_event failed"))
            .collect();
        assert_eq!(
            results.iter().filter(|first| **first).count(),
            1,
            "{results:?}"
        );
        replicas[1].close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_investigation_joins_current() {
    each_backend("claim_investigation_joins_current", |db| async move {
        let store = db.store;
        let claim = |key_id: AccessKeyId, scope: Scope, minute: i64| {
            let store = store.clone();
            async move {
                let record = InvestigationRecord::start(key_id, scope, "alert", at(minute));
                store.claim_investigation(record, HOUR).await.unwrap()
            }
        };

        let first = claim(key(1), scope(), 0).await;
        assert!(first.is_new());
        let second = claim(key(1), scope(), 10).await;
        assert_eq!(second, InvestigationClaim::Existing(first.record().clone()));

        let other_channel = Scope::channel(Platform::Slack, "T0WORK", "C0OTHER");
        assert!(claim(key(1), other_channel, 10).await.is_new());
        let whole_guild = Scope::workspace(Platform::Discord, "81384788765712384");
        assert!(claim(key(1), whole_guild, 10).await.is_new());
        assert!(claim(key(2), scope(), 10).await.is_new());

        let after_window = claim(key(1), scope(), 61).await;
        assert!(after_window.is_new(), "{after_window:?}");
        assert_ne!(after_window.record().id, first.record().id);
        let joined = claim(key(1), scope(), 62).await;
        assert_eq!(joined.record().id, after_window.record().id);
        assert!(!joined.is_new());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_investigation_window_counts_from_update() {
    each_backend(
        "claim_investigation_window_counts_from_update",
        |db| async move {
            let store = db.store;
            let record = InvestigationRecord::start(key(3), scope(), "command", at(0));
            let first = store.claim_investigation(record, HOUR).await.unwrap();
            let update = InvestigationUpdate {
                status: Some(InvestigationStatus::Finished),
                ..InvestigationUpdate::default()
            };
            assert!(
                store
                    .update_investigation(&first.record().id, &update, at(50))
                    .await
                    .unwrap()
            );

            let record = InvestigationRecord::start(key(3), scope(), "alert", at(100));
            let within = store.claim_investigation(record, HOUR).await.unwrap();
            assert_eq!(within.record().id, first.record().id);
            assert!(!within.is_new());

            let record = InvestigationRecord::start(key(3), scope(), "alert", at(111));
            assert!(
                store
                    .claim_investigation(record, HOUR)
                    .await
                    .unwrap()
                    .is_new()
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn release_investigation_lets_next_claim_start() {
    each_backend(
        "release_investigation_lets_next_claim_start",
        |db| async move {
            let store = db.store;
            let record = InvestigationRecord::start(key(5), scope(), "command", at(0));
            let abandoned = store.claim_investigation(record, HOUR).await.unwrap();
            assert!(
                store
                    .release_investigation(&abandoned.record().id)
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .release_investigation(&abandoned.record().id)
                    .await
                    .unwrap()
            );

            let record = InvestigationRecord::start(key(5), scope(), "command", at(1));
            let next = store.claim_investigation(record, HOUR).await.unwrap();
            assert!(next.is_new(), "{next:?}");
            assert!(
                !store
                    .release_investigation(&abandoned.record().id)
                    .await
                    .unwrap()
            );
            assert!(
                store
                    .investigation(&abandoned.record().id)
                    .await
                    .unwrap()
                    .is_some()
            );

            let record = InvestigationRecord::start(key(5), scope(), "alert", at(2));
            assert_eq!(
                store
                    .claim_investigation(record, HOUR)
                    .await
                    .unwrap()
                    .record()
                    .id,
                next.record().id
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_investigation_race_starts_one() {
    each_backend("claim_investigation_race_starts_one", |db| async move {
        let replicas = [db.store.clone(), db.open_again().await];
        for round in 0..10 {
            let tasks = replicas.iter().cycle().take(4).map(|store| {
                let store = store.clone();
                let record = InvestigationRecord::start(key(round), scope(), "alert", at(0));
                tokio::spawn(async move { store.claim_investigation(record, HOUR).await })
            });
            let claims: Vec<InvestigationClaim> = join_all(tasks)
                .await
                .into_iter()
                .map(|joined| {
                    joined
                        .expect("task panicked")
                        .expect("claim_investigation failed")
                })
                .collect();
            let new = claims.iter().filter(|claim| claim.is_new()).count();
            assert_eq!(new, 1, "round {round}: {claims:#?}");
            for claim in &claims {
                assert_eq!(
                    claim.record().id,
                    claims[0].record().id,
                    "round {round}: {claims:#?}"
                );
            }
        }
        replicas[1].close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_investigation_round_trip() {
    each_backend("update_investigation_round_trip", |db| async move {
        let store = db.store;
        let id = new_investigation(&store, key(4)).await;
        let chat = InvestigationUpdate {
            channel: Some("C0INCIDENT".to_string()),
            root_message: Some("1741942800.000100".to_string()),
            thread: Some("1741942800.000100".to_string()),
            ..InvestigationUpdate::default()
        };
        assert!(store.update_investigation(&id, &chat, at(1)).await.unwrap());
        let verdict = InvestigationUpdate {
            status: Some(InvestigationStatus::Finished),
            verdict: Some(Verdict::Compromised),
            severity: Some(Severity::Critical),
            ..InvestigationUpdate::default()
        };
        assert!(
            store
                .update_investigation(&id, &verdict, at(7))
                .await
                .unwrap()
        );

        let stored = store
            .investigation(&id)
            .await
            .unwrap()
            .expect("investigation stored");
        let expected = InvestigationRecord {
            id: id.clone(),
            key_id: key(4),
            scope: scope(),
            origin: "command".to_string(),
            status: InvestigationStatus::Finished,
            verdict: Some(Verdict::Compromised),
            severity: Some(Severity::Critical),
            channel: Some("C0INCIDENT".to_string()),
            root_message: Some("1741942800.000100".to_string()),
            thread: Some("1741942800.000100".to_string()),
            started_at: at(0),
            updated_at: at(7),
            finished_at: Some(at(7)),
        };
        assert_eq!(stored, expected);

        assert!(
            !store
                .update_investigation("no-such-investigation", &verdict, at(8))
                .await
                .unwrap()
        );
        assert_eq!(
            store.investigation("no-such-investigation").await.unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_action_round_trip() {
    each_backend("create_action_round_trip", |db| async move {
        let store = db.store;
        let investigation_id = new_investigation(&store, key(1)).await;
        let mut action = PendingAction::offer(
            &investigation_id,
            ActionKind::RevokeSessions,
            key(1),
            "arn:aws:iam::123456789012:user/deploy",
            r#"{"put_user_policy":{"policy_name":"keycheck-revoke-sessions"}}"#,
            channel(),
            at(0),
        );
        // Times keep microseconds and lose nanoseconds on both backends.
        action.created_at = at(0) + TimeDelta::nanoseconds(123_456_789);
        let stored = store.create_action(&action).await.unwrap();

        let expected = PendingAction {
            created_at: at(0) + TimeDelta::microseconds(123_456),
            ..action.clone()
        };
        assert_eq!(stored, expected);
        assert_eq!(
            store.action(&action.id).await.unwrap(),
            Some(expected.clone())
        );
        assert_eq!(
            store
                .actions_for_investigation(&investigation_id)
                .await
                .unwrap(),
            vec![expected]
        );

        let unknown = crate::approval::ActionId::generate();
        assert_eq!(store.action(&unknown).await.unwrap(), None);
        assert!(
            store.create_action(&action).await.is_err(),
            "a second action with the same ID must fail"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_action_needs_investigation() {
    each_backend("create_action_needs_investigation", |db| async move {
        let action = PendingAction::offer(
            "no-such-investigation",
            ActionKind::Quarantine,
            key(1),
            "arn:aws:iam::123456789012:user/deploy",
            "{}",
            channel(),
            at(0),
        );
        let error = db.store.create_action(&action).await.unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Query {
                    operation: "create_action",
                    ..
                }
            ),
            "{error}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transition_records_requester_and_approver() {
    each_backend(
        "transition_records_requester_and_approver",
        |db| async move {
            let store = db.store;
            let requested = requested_action(&store).await;
            assert_eq!(requested.state, ActionState::Requested);
            assert_eq!(requested.requested_by, Some(actor("U0REQUEST")));
            assert_eq!(requested.requested_at, Some(at(1)));
            assert_eq!(requested.expires_at, Some(at(31)));
            assert_eq!(requested.updated_at, at(1));
            assert_eq!(requested.decided_by, None);

            let approve = StateChange::new(ActionState::Requested, ActionState::Approved);
            assert!(
                store
                    .transition(&requested.id, approve, &actor("U0APPROVE"), at(5))
                    .await
                    .unwrap()
            );
            let run = StateChange::new(ActionState::Approved, ActionState::Executing);
            assert!(
                store
                    .transition(&requested.id, run, &actor("U0KEYCHECK"), at(6))
                    .await
                    .unwrap()
            );
            let done = StateChange::new(ActionState::Executing, ActionState::Done);
            assert!(
                store
                    .transition(&requested.id, done, &actor("U0KEYCHECK"), at(7))
                    .await
                    .unwrap()
            );

            let stored = store.action(&requested.id).await.unwrap().unwrap();
            assert_eq!(stored.state, ActionState::Done);
            assert_eq!(stored.requested_by, Some(actor("U0REQUEST")));
            assert_eq!(stored.decided_by, Some(actor("U0APPROVE")));
            assert_eq!(stored.decided_at, Some(at(5)));
            assert_eq!(stored.closed_at, Some(at(7)));
            assert_eq!(stored.updated_at, at(7));

            assert!(
                !store
                    .transition(&requested.id, approve, &actor("U0APPROVE2"), at(8))
                    .await
                    .unwrap(),
                "a second approval of a done action must change nothing"
            );
            assert_eq!(store.action(&requested.id).await.unwrap().unwrap(), stored);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transition_one_click_records_both() {
    each_backend("transition_one_click_records_both", |db| async move {
        let store = db.store;
        let action = offered_action(&store).await;
        let one_click = StateChange::new(ActionState::Offered, ActionState::Approved);
        assert!(
            store
                .transition(&action.id, one_click, &actor("U0APPROVE"), at(2))
                .await
                .unwrap()
        );

        let stored = store.action(&action.id).await.unwrap().unwrap();
        assert_eq!(stored.state, ActionState::Approved);
        assert_eq!(stored.requested_by, Some(actor("U0APPROVE")));
        assert_eq!(stored.decided_by, Some(actor("U0APPROVE")));
        assert_eq!(stored.requested_at, Some(at(2)));
        assert_eq!(stored.closed_at, None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transition_rejects_invalid_changes() {
    each_backend("transition_rejects_invalid_changes", |db| async move {
        let store = db.store;
        let action = offered_action(&store).await;

        let skip = StateChange::new(ActionState::Offered, ActionState::Done);
        let error = store
            .transition(&action.id, skip, &actor("U0APPROVE"), at(2))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidTransition { .. }),
            "{error}"
        );

        let no_deadline = StateChange::new(ActionState::Offered, ActionState::Requested);
        let error = store
            .transition(&action.id, no_deadline, &actor("U0REQUEST"), at(2))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("deadline"), "{error}");

        let wrong_from = StateChange::new(ActionState::Requested, ActionState::Approved);
        assert!(
            !store
                .transition(&action.id, wrong_from, &actor("U0APPROVE"), at(2))
                .await
                .unwrap()
        );

        let unknown = crate::approval::ActionId::generate();
        let dismiss = StateChange::new(ActionState::Offered, ActionState::Dismissed);
        assert!(
            !store
                .transition(&unknown, dismiss, &actor("U0REQUEST"), at(2))
                .await
                .unwrap()
        );

        assert_eq!(store.action(&action.id).await.unwrap().unwrap(), action);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transition_concurrent_approvals_one_wins() {
    each_backend(
        "transition_concurrent_approvals_one_wins",
        |db| async move {
            let replicas = [db.store.clone(), db.open_again().await];
            let action = requested_action(&replicas[0]).await;

            let approve = StateChange::new(ActionState::Requested, ActionState::Approved);
            let tasks = (0..20).map(|attempt| {
                let store = replicas[attempt % 2].clone();
                let id = action.id.clone();
                let approver = actor(&format!("U0APPROVER{attempt:02}"));
                tokio::spawn(async move {
                    let applied = store.transition(&id, approve, &approver, at(5)).await;
                    (approver, applied)
                })
            });
            let results: Vec<(Actor, bool)> = join_all(tasks)
                .await
                .into_iter()
                .map(|joined| {
                    let (approver, applied) = joined.expect("task panicked");
                    (approver, applied.expect("transition failed"))
                })
                .collect();

            let winners: Vec<&Actor> = results
                .iter()
                .filter(|(_, applied)| *applied)
                .map(|(who, _)| who)
                .collect();
            assert_eq!(winners.len(), 1, "{results:?}");
            let stored = replicas[1].action(&action.id).await.unwrap().unwrap();
            assert_eq!(stored.state, ActionState::Approved);
            assert_eq!(stored.decided_by.as_ref(), Some(winners[0]));
            replicas[1].close().await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transition_respects_deadline() {
    each_backend("transition_respects_deadline", |db| async move {
        let store = db.store;
        let action = requested_action(&store).await;
        let approve = StateChange::new(ActionState::Requested, ActionState::Approved);
        let expire = StateChange::new(ActionState::Requested, ActionState::Expired);

        assert!(
            !store
                .transition(&action.id, approve, &actor("U0APPROVE"), at(31))
                .await
                .unwrap(),
            "approval at the deadline must not apply"
        );
        assert!(
            !store
                .transition(&action.id, expire, &actor("U0KEYCHECK"), at(30))
                .await
                .unwrap(),
            "expiry before the deadline must not apply"
        );
        assert!(
            store
                .transition(&action.id, expire, &actor("U0KEYCHECK"), at(31))
                .await
                .unwrap()
        );
        assert!(
            !store
                .transition(&action.id, approve, &actor("U0APPROVE"), at(20))
                .await
                .unwrap()
        );

        let stored = store.action(&action.id).await.unwrap().unwrap();
        assert_eq!(stored.state, ActionState::Expired);
        assert_eq!(stored.closed_at, Some(at(31)));
        assert_eq!(stored.decided_by, None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expire_overdue_expires_only_overdue() {
    each_backend("expire_overdue_expires_only_overdue", |db| async move {
        let store = db.store;
        let overdue = requested_action(&store).await;
        let offered = offered_action(&store).await;
        let later = offered_action(&store).await;
        let request = StateChange {
            from: ActionState::Offered,
            to: ActionState::Requested,
            expires_at: Some(at(60)),
        };
        assert!(
            store
                .transition(&later.id, request, &actor("U0REQUEST"), at(30))
                .await
                .unwrap()
        );

        assert_eq!(
            store.expire_overdue(at(40)).await.unwrap(),
            vec![overdue.id.clone()]
        );
        assert_eq!(store.expire_overdue(at(40)).await.unwrap(), vec![]);

        let state = |id| {
            let store = store.clone();
            async move { store.action(&id).await.unwrap().unwrap().state }
        };
        assert_eq!(state(overdue.id).await, ActionState::Expired);
        assert_eq!(state(offered.id).await, ActionState::Offered);
        assert_eq!(state(later.id).await, ActionState::Requested);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_log_ordered_and_filtered() {
    each_backend("audit_log_ordered_and_filtered", |db| async move {
        let store = db.store;
        let requested = audit_entry(1, key(1), AuditEvent::Requested, "requested deactivation");
        let refused = audit_entry(2, key(1), AuditEvent::Refused, "not_approver");
        let same_time = audit_entry(2, key(1), AuditEvent::Approved, "approved");
        let other_key = audit_entry(0, key(2), AuditEvent::Executed, "UpdateAccessKey Inactive");
        let unknown_action = AuditEntry {
            action_id: None,
            key_id: None,
            investigation_id: None,
            aws_request_id: None,
            result: None,
            ..audit_entry(
                3,
                key(1),
                AuditEvent::Refused,
                "unknown action ID in button value",
            )
        };

        for entry in [
            &refused,
            &same_time,
            &requested,
            &other_key,
            &unknown_action,
        ] {
            store.append_audit(entry).await.unwrap();
        }

        let all = store.audit(None).await.unwrap();
        assert_eq!(
            all,
            vec![
                other_key,
                requested.clone(),
                refused.clone(),
                same_time.clone(),
                unknown_action
            ]
        );
        let for_key = store.audit(Some(&key(1))).await.unwrap();
        assert_eq!(for_key, vec![requested, refused, same_time]);
        assert_eq!(store.audit(Some(&key(9))).await.unwrap(), vec![]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_log_rejects_update_and_delete() {
    each_backend("audit_log_rejects_update_and_delete", |db| async move {
        let store = db.store;
        let entry = audit_entry(1, key(1), AuditEvent::Executed, "UpdateAccessKey Inactive");
        store.append_audit(&entry).await.unwrap();

        let mut tampering = vec![
            "UPDATE audit_log SET detail = 'nothing happened'",
            "DELETE FROM audit_log",
        ];
        if store.backend() == Backend::Postgres {
            tampering.push("TRUNCATE audit_log");
        }
        for sql in tampering {
            let error = store.execute_raw(sql).await.expect_err(sql);
            assert!(error.to_string().contains("append-only"), "{sql}: {error}");
        }
        assert_eq!(store.audit(None).await.unwrap(), vec![entry]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_keeps_pending_action() {
    each_backend("restart_keeps_pending_action", |db| async move {
        let requested = requested_action(&db.store).await;
        db.store.close().await;

        let reopened = db.open_again().await;
        let stored = reopened.action(&requested.id).await.unwrap();
        assert_eq!(stored, Some(requested.clone()));

        let approve = StateChange::new(ActionState::Requested, ActionState::Approved);
        assert!(
            reopened
                .transition(&requested.id, approve, &actor("U0APPROVE"), at(5))
                .await
                .unwrap()
        );
        assert!(
            !reopened
                .transition(&requested.id, approve, &actor("U0APPROVE2"), at(5))
                .await
                .unwrap()
        );
        reopened.close().await;
    })
    .await;
}

/// The example secret access key from the AWS documentation, and a Slack bot token.
/// [`with_secrets`] puts the key after `aws_secret_access_key=`, where the redactor
/// recognises it.
const SECRETS: [&str; 2] = [
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
];

fn with_secrets(text: &str) -> String {
    format!(
        "{text} aws_secret_access_key={} token {}",
        SECRETS[0], SECRETS[1]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_never_stored() {
    assert!(redact::contains_secret(&format!(
        "aws_secret_access_key={}",
        SECRETS[0]
    )));
    assert!(redact::contains_secret(SECRETS[1]));

    each_backend("secrets_never_stored", |db| async move {
        let store = db.store;
        let leaky = |name: &str| Actor {
            display_name: with_secrets(name),
            ..actor(name)
        };

        assert!(
            store
                .claim_event(Platform::Slack, &with_secrets("Ev0"), HOUR, at(0))
                .await
                .unwrap()
        );
        let record = InvestigationRecord::start(key(1), scope(), &with_secrets("alert"), at(0));
        let investigation = store
            .claim_investigation(record, HOUR)
            .await
            .unwrap()
            .record()
            .clone();
        let update = InvestigationUpdate {
            thread: Some(with_secrets("1741942800.000100")),
            ..InvestigationUpdate::default()
        };
        store
            .update_investigation(&investigation.id, &update, at(1))
            .await
            .unwrap();

        let action = PendingAction {
            requested_by: Some(leaky("U0REQUEST")),
            ..PendingAction::offer(
                &investigation.id,
                ActionKind::Rotate,
                key(1),
                &with_secrets("arn:aws:iam::123456789012:user/deploy"),
                &with_secrets(r#"{"create_access_key":{}}"#),
                channel(),
                at(0),
            )
        };
        store.create_action(&action).await.unwrap();
        let one_click = StateChange::new(ActionState::Offered, ActionState::Approved);
        assert!(
            store
                .transition(&action.id, one_click, &leaky("U0APPROVE"), at(2))
                .await
                .unwrap()
        );
        let entry = AuditEntry {
            actor: leaky("U0APPROVE"),
            aws_request_id: Some(with_secrets("req")),
            result: Some(with_secrets("ok")),
            ..audit_entry(2, key(1), AuditEvent::Executed, &with_secrets("rotated"))
        };
        store.append_audit(&entry).await.unwrap();

        let stored_texts = [
            format!(
                "{:?}",
                store.investigation(&investigation.id).await.unwrap()
            ),
            format!("{:?}", store.action(&action.id).await.unwrap()),
            format!("{:?}", store.audit(None).await.unwrap()),
        ];
        for text in &stored_texts {
            assert!(!redact::contains_secret(text), "{text}");
            assert!(
                text.contains("[redacted"),
                "placeholders expected in {text}"
            );
        }

        let everything = match store.backend() {
            Backend::Sqlite => {
                store.close().await;
                sqlite_files_text(Path::new(&db.url))
            }
            Backend::Postgres => postgres_tables_text(&store).await,
        };
        for secret in SECRETS {
            assert!(
                !everything.contains(secret),
                "{secret} found in the database"
            );
        }
        assert!(
            everything.contains("U0APPROVE"),
            "the dump must contain the stored rows"
        );
    })
    .await;
}

/// Returns the bytes of the SQLite database and its WAL file as text.
fn sqlite_files_text(path: &Path) -> String {
    let mut bytes = std::fs::read(path).expect("reading the SQLite file");
    let wal = path.with_extension("db-wal");
    if let Ok(more) = std::fs::read(&wal) {
        bytes.extend(more);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Returns every row of every keycheck table as JSON text.
async fn postgres_tables_text(store: &Store) -> String {
    let mut text = String::new();
    for table in [
        "chat_events",
        "investigations",
        "investigation_claims",
        "pending_actions",
        "audit_log",
    ] {
        let sql =
            format!("SELECT COALESCE(string_agg(row_to_json(t)::text, ' '), '') FROM {table} t");
        text.push_str(&store.query_text(&sql).await);
    }
    text
}

#[tokio::test]
async fn open_sqlite_creates_file_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("nested").join("keycheck.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();

    assert!(path.exists(), "{} was not created", path.display());
    assert_eq!(store.backend(), Backend::Sqlite);
    assert_eq!(store.query_text("PRAGMA journal_mode").await, "wal");
    let busy_timeout: i64 =
        with_pool!(store, pool => sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(pool).await)
            .unwrap();
    assert_eq!(busy_timeout, 5000);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_sqlite_concurrently_on_new_file() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("keycheck.db").to_str().unwrap().to_string();
        let (first, second, third) =
            tokio::join!(Store::open(&url), Store::open(&url), Store::open(&url));
        for opened in [first, second, third] {
            let store = opened.unwrap_or_else(|error| panic!("round {round}: {error}"));
            store.close().await;
        }
    }
}

#[tokio::test]
async fn open_postgres_names_refused_connection() {
    // Port 1 on loopback has no server, so the connection is refused at once.
    let error = Store::open("postgres://keycheck:s3cret@127.0.0.1:1/keycheck").await.unwrap_err();
    let message = error.to_string();
    assert!(message.to_ascii_lowercase().contains("refused"), "{message}");
    assert!(!message.contains("pool timed out"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[test]
fn sqlite_file_of_each_url_form() {
    let cases = [
        ("sqlite://keycheck.db", Some("keycheck.db")),
        ("sqlite:/var/lib/keycheck.db?mode=rwc", Some("/var/lib/keycheck.db")),
        ("/var/lib/keycheck.db", Some("/var/lib/keycheck.db")),
        ("sqlite::memory:", None),
        ("postgres://db.internal/keycheck", None),
    ];
    for (url, expected) in cases {
        assert_eq!(sqlite_file(url).as_deref(), expected.map(Path::new), "{url}");
    }
}

#[tokio::test]
async fn open_rejects_other_database_urls() {
    let error = Store::open("mysql://u:hunter2@db.internal/keycheck").await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("unsupported database URL mysql://db.internal/keycheck"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn open_sqlite_url_forms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("url.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.unwrap();
    assert!(path.exists(), "{url} did not create {}", path.display());
    store.close().await;

    let memory = Store::open("sqlite::memory:").await.unwrap();
    assert!(
        memory
            .claim_event(Platform::Slack, "Ev01", HOUR, at(0))
            .await
            .unwrap()
    );
    memory.close().await;
}

#[tokio::test]
async fn open_failure_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let path = file.join("keycheck.db");

    let error = Store::open(path.to_str().unwrap()).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains(file.to_str().unwrap()), "{message}");
}

#[tokio::test]
async fn open_failure_hides_postgres_password() {
    let Some(server) = postgres_server("open_failure_hides_postgres_password").await else {
        return;
    };
    server.admin.close().await;
    let shown = display_url(&server.url);
    let host = shown
        .trim_start_matches("postgres://")
        .trim_start_matches("postgresql://");
    let host = host.split(['/', '?']).next().unwrap();
    let database = format!("keycheck_missing_{}", uuid::Uuid::new_v4().simple());
    let url = format!("postgres://postgres:hunter2@{host}/{database}");

    let error = Store::open(&url).await.unwrap_err();
    let message = error.to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        message.contains(&format!("postgres://{host}/{database}")),
        "{message}"
    );
}

#[test]
fn display_url_strips_credentials() {
    let cases = [
        (
            "postgres://keycheck:s3cret@db.internal:5432/keycheck",
            "postgres://db.internal:5432/keycheck",
        ),
        (
            "postgresql://keycheck@db.internal/keycheck",
            "postgresql://db.internal/keycheck",
        ),
        ("postgres://u:p%40ss@host", "postgres://host"),
        (
            "postgres://u:p@ss@host/db?sslmode=require",
            "postgres://host/db?sslmode=require",
        ),
        (
            "postgres://host/db?user=keycheck&password=s3cret&sslmode=require",
            "postgres://host/db?user=keycheck&password=redacted&sslmode=require",
        ),
        ("postgres://host/db", "postgres://host/db"),
        (
            "/var/lib/keycheck/keycheck.db",
            "/var/lib/keycheck/keycheck.db",
        ),
        ("sqlite://keycheck.db", "sqlite://keycheck.db"),
        ("mysql://u:hunter2@db.internal/keycheck", "mysql://db.internal/keycheck"),
    ];
    for (url, expected) in cases {
        assert_eq!(display_url(url), expected, "{url}");
    }
}

#[test]
fn scope_round_trip() {
    for scope in [
        scope(),
        Scope::workspace(Platform::Discord, "81384788765712384"),
    ] {
        let text = scope.to_string();
        assert_eq!(text.parse::<Scope>(), Ok(scope), "{text}");
    }
    assert_eq!(scope().to_string(), "slack:T0WORK/C0INCIDENT");
    assert!("teams:T0".parse::<Scope>().is_err());
    assert!("slack".parse::<Scope>().is_err());
}

#[test]
fn stored_time_clamps_and_truncates() {
    use super::codec::stored_time;
    let time = at(0) + TimeDelta::nanoseconds(1_999);
    assert_eq!(stored_time(time), at(0) + TimeDelta::microseconds(1));
    assert_eq!(
        stored_time(DateTime::<Utc>::MAX_UTC).to_rfc3339(),
        "9999-12-31T23:59:59.999999+00:00"
    );
    assert_eq!(
        stored_time(DateTime::<Utc>::MIN_UTC).to_rfc3339(),
        "0001-01-01T00:00:00+00:00"
    );
}

#[tokio::test]
async fn embedded_migrations_match_folders() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for (folder, embedded) in [
        ("sqlite", migrations::SQLITE),
        ("postgres", migrations::POSTGRES),
    ] {
        let from_folder = sqlx::migrate::Migrator::new(root.join(folder))
            .await
            .unwrap_or_else(|error| panic!("reading migrations/{folder} failed: {error}"));
        let folder_list: Vec<(i64, String, Vec<u8>)> = from_folder
            .iter()
            .map(|migration| {
                (
                    migration.version,
                    migration.description.to_string(),
                    migration.checksum.to_vec(),
                )
            })
            .collect();

        let embedded_migrator = match folder {
            "sqlite" => migrations::sqlite().await,
            _ => migrations::postgres().await,
        };
        let embedded_list: Vec<(i64, String, Vec<u8>)> = embedded_migrator
            .iter()
            .map(|migration| {
                (
                    migration.version,
                    migration.description.to_string(),
                    migration.checksum.to_vec(),
                )
            })
            .collect();

        assert_eq!(embedded_list.len(), embedded.len());
        assert_eq!(
            embedded_list, folder_list,
            "migrations/{folder} and the embedded list differ: add each new file to store/migrations.rs"
        );
    }
}
