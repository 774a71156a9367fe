//! Containment from Discord end to end. Correctly signed `/keycheck` and button-click
//! interactions go to the bot's real interactions endpoint. The bot investigates the
//! incident seeded into the moto emulator, offers the containment buttons on the verdict,
//! and runs the approval flow. The test then reads the deactivation back from IAM. Every AWS
//! call goes through the fault proxy, and every Discord call to the fake, which records
//! it. A failing test prints the fake's transcript and the AWS calls. Needs `moto_server`
//! on `PATH`.

use std::collections::BTreeMap;
use std::panic::resume_unwind;
use std::sync::Arc;
use std::time::Duration;

use keycheck_bot::containment::RemediatorFactory;
use keycheck_bot::serve::EvidenceFactory;
use keycheck_core::approval::{ActionId, ActionState};
use keycheck_core::evidence::Evidence;
use keycheck_core::evidence::live::{LiveConfig, QueryMode};
use keycheck_core::remediation::{ContainConfig, Remediator};
use keycheck_core::store::{AuditEvent, Store};
use keycheck_tests::aws::{Clients, test_credentials};
use keycheck_tests::discord_api::{Call, DiscordHarness, FakeDiscord, command_interaction, component_interaction, keycheck_options, transcript};
use keycheck_tests::live;
use keycheck_tests::proxy::format_calls;

const CHANNEL: u64 = 1_200_000_000_000_000_001;
const RESPONDERS: u64 = 1_600_000_000_000_000_001;
const RESPONDER: u64 = 1_400_000_000_000_000_001;
const LEAD: u64 = 1_400_000_000_000_000_002;
const TIMEOUT: Duration = Duration::from_secs(90);

/// Live evidence through the proxy, with the static test credentials.
struct MotoEvidence(LiveConfig);

impl EvidenceFactory for MotoEvidence {
    fn open(&self, investigation_id: &str) -> anyhow::Result<Arc<dyn Evidence>> {
        Ok(Arc::new(live::build_evidence(self.0.clone(), investigation_id)))
    }
}

/// Remediators through the proxy, with the static test credentials.
struct MotoRemediators(LiveConfig);

impl RemediatorFactory for MotoRemediators {
    fn open(&self, investigation_id: &str) -> anyhow::Result<Remediator> {
        keycheck_tests::install_crypto_provider();
        Ok(Remediator::with_credentials(self.0.clone(), ContainConfig::default(), investigation_id, test_credentials())?)
    }
}

/// Runs the future `make` builds on a runtime whose threads have the stack an
/// investigation needs in the dev profile, and raises its panic here.
fn run<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let thread = std::thread::Builder::new()
        .stack_size(live::INVESTIGATION_STACK_BYTES)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(live::INVESTIGATION_STACK_BYTES)
                .enable_all()
                .build()
                .expect("a Tokio runtime");
            runtime.block_on(make());
        })
        .expect("the test thread starts");
    if let Err(panic) = thread.join() {
        resume_unwind(panic);
    }
}

/// Returns the buttons of a message by label, with their `custom_id`.
fn buttons(message: &Call) -> BTreeMap<String, String> {
    let mut buttons = BTreeMap::new();
    for row in message.body["components"].as_array().into_iter().flatten() {
        for button in row["components"].as_array().into_iter().flatten() {
            let label = button["label"].as_str().unwrap_or_default().to_string();
            buttons.insert(label, button["custom_id"].as_str().unwrap_or_default().to_string());
        }
    }
    buttons
}

#[test]
fn deactivate_through_discord_buttons() {
    run(|| async {
        let incident = live::seed_incident().await;
        let moto = keycheck_tests::moto::shared().await;
        let clients = Clients::new(&moto.endpoint());
        let proxy = live::start_proxy().await;
        let aws = live::live_config(&proxy.endpoint(), &incident, QueryMode::LogsInsights);
        let table = format!("[discord.approvals]\nrequesters = [\"{RESPONDERS}\"]\napprovers = [\"{LEAD}\"]\n");
        let (evidence, remediators) = (aws.clone(), aws.clone());
        let harness = DiscordHarness::start_custom(FakeDiscord::start().await, &table, "", move |parts| {
            parts.evidence = Arc::new(MotoEvidence(evidence));
            parts.remediators = Arc::new(MotoRemediators(remediators));
        })
        .await;
        let failed = |what: &str| format!("{what}\n--- Discord calls ---\n{}\n--- AWS calls ---\n{}", transcript(&harness.fake.calls()), format_calls(&proxy.calls()));

        // The verdict edit carries one button per offered action, each naming only an action ID.
        let command = command_interaction(1_950_000_000_000_000_001, RESPONDER, &[RESPONDERS], CHANNEL, keycheck_options(&incident.leaked_key, None));
        assert_eq!(harness.interaction(&command).await.status, 202);
        let calls = harness
            .fake
            .wait_for("the verdict with buttons", TIMEOUT, |calls| {
                calls.iter().any(|c| c.route == "PATCH /webhooks/{id}/{token}/messages/@original" && !buttons(c).is_empty())
            })
            .await;
        let verdict = calls.iter().rev().find(|c| c.route == "PATCH /webhooks/{id}/{token}/messages/@original").unwrap();
        let offered = buttons(verdict);
        let labels: Vec<&str> = offered.keys().map(String::as_str).collect();
        assert_eq!(labels, ["Deactivate", "Dismiss", "Quarantine", "Revoke sessions"], "{}", failed("the offered buttons"));
        for custom_id in offered.values() {
            assert!(ActionId::parse(custom_id).is_some(), "a button's custom_id is only an action ID: {custom_id:?}");
        }
        assert!(verdict.body.to_string().contains("Rotate is not offered"), "{}", failed("the note on rotation"));
        let root: u64 = verdict.response["id"].as_str().unwrap().parse().unwrap();
        let thread = calls.iter().find(|c| c.route == "POST /channels/{id}/messages/{id}/threads").unwrap();
        assert_eq!(thread.path_id(3), Some(root), "{}", failed("the thread starts from the root"));

        // A responder requests the deactivation: the approval request goes to the thread.
        let from = harness.fake.calls().len();
        let request = component_interaction(1_950_000_000_000_000_002, RESPONDER, &[RESPONDERS], CHANNEL, None, root, &offered["Deactivate"]);
        assert_eq!(harness.interaction(&request).await.status, 202);
        let calls = harness
            .fake
            .wait_for("the approval request", TIMEOUT, |calls| calls[from..].iter().any(|c| c.route == "POST /channels/{id}/messages"))
            .await;
        let posted = calls[from..].iter().find(|c| c.route == "POST /channels/{id}/messages").unwrap();
        assert_eq!(posted.path_id(1), Some(root), "{}", failed("the request is posted in the thread"));
        let approve = buttons(posted);
        let approval_message: u64 = posted.response["id"].as_str().unwrap().parse().unwrap();

        // The lead approves, and the key becomes inactive in IAM.
        let from = harness.fake.calls().len();
        let click = component_interaction(1_950_000_000_000_000_003, LEAD, &[], root, Some(CHANNEL), approval_message, &approve["Approve"]);
        assert_eq!(harness.interaction(&click).await.status, 202);
        let calls = harness
            .fake
            .wait_for("the result", TIMEOUT, |calls| {
                calls[from..].iter().any(|c| c.route == "POST /channels/{id}/messages" && c.body.to_string().contains("Deactivate done"))
            })
            .await;
        let result = calls[from..].iter().find(|c| c.body.to_string().contains("Deactivate done")).unwrap();
        assert!(result.body.to_string().contains(&format!("<@{LEAD}>")), "{}", failed("the result names the approver"));
        let keys = clients.iam.list_access_keys().user_name(&incident.user_name).send().await.expect("ListAccessKeys");
        let status = keys
            .access_key_metadata()
            .iter()
            .find(|key| key.access_key_id() == Some(incident.leaked_key.as_str()))
            .and_then(|key| key.status().map(|s| s.as_str().to_string()));
        assert_eq!(status.as_deref(), Some("Inactive"), "{}", failed("the key after the approval"));

        let store = Store::open(&harness.database_url()).await.expect("the bot's store");
        let action = store.action(&ActionId::parse(&offered["Deactivate"]).unwrap()).await.unwrap().unwrap();
        assert_eq!(action.state, ActionState::Done);
        assert_eq!(action.channel.channel, root.to_string(), "the action belongs to the investigation's thread");
        let audit = store.audit(Some(&action.key_id)).await.unwrap();
        let events: Vec<AuditEvent> = audit.iter().filter(|e| e.action_id.as_ref() == Some(&action.id)).map(|e| e.event).collect();
        assert_eq!(
            events,
            [AuditEvent::Offered, AuditEvent::Requested, AuditEvent::Approved, AuditEvent::Executing, AuditEvent::Executed],
            "{}",
            failed("the audit log")
        );
    });
}
