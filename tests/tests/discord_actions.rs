//! Containment buttons on Discord, end to end. Signed button clicks (message component
//! interactions) go to the bot's real interactions endpoint, the shared approval rules
//! decide them on actions in the bot's real store, and the fake Discord API records the
//! bot's responses. AWS is never called: the remediators of these tests count how often
//! an action tried to run, and fail without calling anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use keycheck_bot::containment::RemediatorFactory;
use keycheck_core::approval::{ActionKind, ActionState, ChatChannel, PendingAction, Platform};
use keycheck_core::evidence::KeyStatus;
use keycheck_core::remediation::{DeactivatePlan, Plan, Remediator};
use keycheck_core::store::{AuditEvent, InvestigationRecord, Scope, Store};
use keycheck_tests::discord_api::{Call, DiscordHarness, FakeDiscord, GUILD_ID, component_interaction, transcript};
use serde_json::json;

const CHANNEL: u64 = 1_200_000_000_000_000_001;
/// The root message under which the actions are offered. Its thread has the same ID.
const ROOT: u64 = 1_250_000_000_000_000_001;
const RESPONDERS: u64 = 1_600_000_000_000_000_001;
const REQUESTER: u64 = 1_400_000_000_000_000_001;
const APPROVER: u64 = 1_400_000_000_000_000_002;
const STRANGER: u64 = 1_400_000_000_000_000_003;
const TIMEOUT: Duration = Duration::from_secs(30);

const CALLBACK: &str = "POST /interactions/{id}/{token}/callback";
const FOLLOWUP: &str = "POST /webhooks/{id}/{token}";
const EDIT_ORIGINAL: &str = "PATCH /webhooks/{id}/{token}/messages/@original";
const CREATE_MESSAGE: &str = "POST /channels/{id}/messages";

/// Remediators that count how often an approved action tried to run, and fail without
/// calling AWS.
#[derive(Default)]
struct CountingRemediators(AtomicUsize);

impl RemediatorFactory for CountingRemediators {
    fn open(&self, investigation_id: &str) -> anyhow::Result<Remediator> {
        self.0.fetch_add(1, Ordering::SeqCst);
        anyhow::bail!("no AWS in this test (investigation {investigation_id})")
    }
}

/// The harness, the action offered under [`ROOT`], and the remediators' counter.
struct Setup {
    harness: DiscordHarness,
    store: Store,
    action: PendingAction,
    remediators: Arc<CountingRemediators>,
    _evidence: tempfile::TempDir,
}

/// Starts the bot with containment on (a snapshot of the demo incident, since the demo
/// itself turns containment off) and stores one offered Deactivate action under [`ROOT`].
async fn setup() -> Setup {
    let evidence = tempfile::tempdir().unwrap();
    for (name, bytes) in keycheck_core::demo::files() {
        let path = evidence.path().join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let table = format!(
        "[discord.approvals]\nrequesters = [\"{RESPONDERS}\"]\napprovers = [\"{APPROVER}\", \"{RESPONDERS}\"]\ntwo_person_rule = true\nexpiry = \"30m\"\n"
    );
    let extra = format!("[evidence]\nsource = {{ snapshot = \"{}\" }}\n", evidence.path().display());
    let remediators = Arc::new(CountingRemediators::default());
    let shared = Arc::clone(&remediators);
    let harness = DiscordHarness::start_custom(FakeDiscord::start().await, &table, &extra, move |parts| {
        parts.remediators = shared;
    })
    .await;

    let store = Store::open(&harness.database_url()).await.expect("the bot's store opens");
    let key = keycheck_core::demo::key();
    let mut record = InvestigationRecord::start(key.clone(), Scope::workspace(Platform::Discord, &GUILD_ID.to_string()), "discord", Utc::now());
    record.id = "kc-0123456789".to_string();
    store.claim_investigation(record, Duration::from_secs(1800)).await.expect("the investigation is stored");
    let plan = Plan::Deactivate(DeactivatePlan {
        investigation_id: "kc-0123456789".to_string(),
        key_id: key.clone(),
        account_id: keycheck_core::demo::account_id().to_string(),
        user_name: "ci-deploy".to_string(),
        status: KeyStatus::Active,
        other_keys: Vec::new(),
    });
    let place = ChatChannel {
        platform: Platform::Discord,
        workspace: GUILD_ID.to_string(),
        channel: ROOT.to_string(),
    };
    let offered = PendingAction::offer("kc-0123456789", ActionKind::Deactivate, key, "arn:aws:iam::123456789012:user/ci-deploy", &plan.to_json(), place, Utc::now());
    let action = store.create_action(&offered).await.expect("the action is stored");
    Setup {
        harness,
        store,
        action,
        remediators,
        _evidence: evidence,
    }
}

/// Waits until the calls after the first `from` satisfy `done`, and returns them.
async fn calls_after(setup: &Setup, from: usize, what: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
    let calls = setup.harness.fake.wait_for(what, TIMEOUT, |calls| done(&calls[from.min(calls.len())..])).await;
    calls.into_iter().skip(from).collect()
}

#[tokio::test]
async fn unauthorized_click_rejected_and_runs_nothing() {
    let setup = setup().await;
    let from = setup.harness.fake.calls().len();
    let click = component_interaction(1_900_000_000_000_000_001, STRANGER, &[7], CHANNEL, None, ROOT, setup.action.id.as_str());
    let response = setup.harness.interaction(&click).await;
    assert_eq!(response.status, 202, "{response:?}");

    calls_after(&setup, from, "the refusal", |calls| calls.iter().any(|c| c.route == FOLLOWUP)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls: Vec<Call> = setup.harness.fake.calls().into_iter().skip(from).collect();
    let shown = transcript(&calls);
    let routes: Vec<&str> = calls.iter().map(|c| c.route.as_str()).collect();
    assert_eq!(routes, [CALLBACK, FOLLOWUP], "an acknowledgement and a refusal, nothing else:\n{shown}");
    assert_eq!(calls[0].body, json!({"type": 6}), "acknowledged without changing the message:\n{shown}");
    assert_eq!(calls[1].body["flags"], 64, "the refusal is ephemeral:\n{shown}");
    assert!(calls[1].text("/content").unwrap_or_default().contains("not allowed to request containment actions"), "{shown}");

    let stored = setup.store.action(&setup.action.id).await.unwrap().unwrap();
    assert_eq!(stored.state, ActionState::Offered, "the action is unchanged");
    assert_eq!(setup.remediators.0.load(Ordering::SeqCst), 0, "nothing tried to run");
    let audit = setup.store.audit(Some(&setup.action.key_id)).await.unwrap();
    let refused = audit.iter().find(|entry| entry.event == AuditEvent::Refused).expect("the refusal is audited");
    assert_eq!(refused.actor.user_id, STRANGER.to_string());
    assert_eq!(refused.result.as_deref(), Some("not_requester"));
}

#[tokio::test]
async fn requester_click_posts_approval_request_in_thread() {
    let setup = setup().await;
    let from = setup.harness.fake.calls().len();
    let click = component_interaction(1_900_000_000_000_000_002, REQUESTER, &[RESPONDERS], CHANNEL, None, ROOT, setup.action.id.as_str());
    assert_eq!(setup.harness.interaction(&click).await.status, 202);

    let calls = calls_after(&setup, from, "the approval request", |calls| calls.iter().any(|c| c.route == CREATE_MESSAGE)).await;
    let shown = transcript(&calls);
    let routes: Vec<&str> = calls.iter().map(|c| c.route.as_str()).collect();
    assert_eq!(routes, [CALLBACK, CREATE_MESSAGE], "{shown}");
    let request = &calls[1];
    assert_eq!(request.path_id(1), Some(ROOT), "posted in the thread started from the root:\n{shown}");
    assert_eq!(request.text("/embeds/0/title"), Some("Approval requested: Deactivate"), "{shown}");
    let text = request.body.to_string();
    assert!(text.contains(&format!("<@{REQUESTER}>")), "names the requester:\n{shown}");
    assert!(text.contains("two-person rule"), "{shown}");
    let buttons: Vec<&str> = request.body["components"][0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["custom_id"].as_str().unwrap())
        .collect();
    let id = setup.action.id.as_str();
    assert_eq!(buttons, [format!("approve:{id}"), format!("reject:{id}")], "{shown}");

    let stored = setup.store.action(&setup.action.id).await.unwrap().unwrap();
    assert_eq!(stored.state, ActionState::Requested);
    assert_eq!(stored.requested_by.unwrap().user_id, REQUESTER.to_string());
    assert_eq!(setup.remediators.0.load(Ordering::SeqCst), 0, "a request runs nothing");
}

#[tokio::test]
async fn approval_follows_two_person_rule() {
    let setup = setup().await;
    let id = setup.action.id.as_str().to_string();
    let request = component_interaction(1_900_000_000_000_000_003, REQUESTER, &[RESPONDERS], CHANNEL, None, ROOT, &id);
    setup.harness.interaction(&request).await;
    let calls = calls_after(&setup, 0, "the approval request", |calls| calls.iter().any(|c| c.route == CREATE_MESSAGE)).await;
    let approval_message: u64 = calls.iter().find(|c| c.route == CREATE_MESSAGE).unwrap().response["id"].as_str().unwrap().parse().unwrap();

    // The requester cannot approve their own request, although their role makes them an
    // approver.
    let from = setup.harness.fake.calls().len();
    let own = component_interaction(1_900_000_000_000_000_004, REQUESTER, &[RESPONDERS], ROOT, Some(CHANNEL), approval_message, &format!("approve:{id}"));
    setup.harness.interaction(&own).await;
    let calls = calls_after(&setup, from, "the refusal of an own approval", |calls| calls.iter().any(|c| c.route == FOLLOWUP)).await;
    let refusal = calls.iter().find(|c| c.route == FOLLOWUP).unwrap();
    assert_eq!(refusal.body["flags"], 64, "{}", transcript(&calls));
    assert!(refusal.text("/content").unwrap_or_default().contains("two-person rule is on"), "{}", transcript(&calls));
    assert_eq!(setup.remediators.0.load(Ordering::SeqCst), 0);

    // Another approver's click runs the action, which fails here without AWS: the request
    // is closed without buttons and the failure is posted in the thread.
    let from = setup.harness.fake.calls().len();
    let approve = component_interaction(1_900_000_000_000_000_005, APPROVER, &[], ROOT, Some(CHANNEL), approval_message, &format!("approve:{id}"));
    setup.harness.interaction(&approve).await;
    let calls = calls_after(&setup, from, "the result", |calls| calls.iter().any(|c| c.route == CREATE_MESSAGE)).await;
    let shown = transcript(&calls);
    let routes: Vec<&str> = calls.iter().map(|c| c.route.as_str()).collect();
    assert_eq!(routes, [CALLBACK, EDIT_ORIGINAL, CREATE_MESSAGE], "{shown}");
    assert_eq!(calls[1].body["components"], json!([]), "the decided request keeps no buttons:\n{shown}");
    assert!(calls[1].body.to_string().contains(&format!("Approved by <@{APPROVER}>")), "{shown}");
    assert_eq!(calls[2].path_id(1), Some(ROOT), "{shown}");
    assert!(calls[2].text("/embeds/0/title").unwrap_or_default().contains("Deactivate failed"), "{shown}");
    assert_eq!(setup.remediators.0.load(Ordering::SeqCst), 1, "the approval ran the action once");
    let stored = setup.store.action(&setup.action.id).await.unwrap().unwrap();
    assert_eq!(stored.state, ActionState::Failed);

    // A second click on the decided request changes nothing.
    let from = setup.harness.fake.calls().len();
    let again = component_interaction(1_900_000_000_000_000_006, APPROVER, &[], ROOT, Some(CHANNEL), approval_message, &format!("approve:{id}"));
    setup.harness.interaction(&again).await;
    let calls = calls_after(&setup, from, "the refusal of a second approval", |calls| calls.iter().any(|c| c.route == FOLLOWUP)).await;
    assert!(
        calls.iter().find(|c| c.route == FOLLOWUP).unwrap().text("/content").unwrap_or_default().contains("changed nothing"),
        "{}",
        transcript(&calls)
    );
    assert_eq!(setup.remediators.0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn click_without_containment_rejected() {
    let harness = DiscordHarness::start("").await;
    let click = component_interaction(1_900_000_000_000_000_007, APPROVER, &[], CHANNEL, None, ROOT, "AZaz09-_AZaz09-_AZaz09");
    assert_eq!(harness.interaction(&click).await.status, 202);
    let calls = harness.fake.chat_calls();
    assert_eq!(calls.len(), 1, "{}", transcript(&calls));
    assert_eq!(calls[0].body["type"], 4, "{}", transcript(&calls));
    assert_eq!(calls[0].body["data"]["flags"], 64, "{}", transcript(&calls));
    assert!(calls[0].text("/data/content").unwrap_or_default().contains("turned off"), "{}", transcript(&calls));
}
