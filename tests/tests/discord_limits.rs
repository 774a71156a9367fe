//! Discord's message limits: a step report and a diagnosis far beyond them render within
//! every limit, with notes that give how much was left out. The limits are 10 embeds,
//! 6,000 characters across embeds, 4,096 a description, 256 a title, 25 fields, 1,024 a
//! field value and 2,000 characters of content.

use keycheck_bot::discord::embeds::{
    self, MAX_DESCRIPTION, MAX_EMBED_TOTAL, MAX_FIELD_VALUE, MAX_FIELDS, MAX_TITLE, discord_length, embed_length, limit_violations,
};
use keycheck_bot::discord::view::{DiagnosisMessageView, StepMessageView};
use keycheck_core::render::{DiagnosisView, Renderer, StepView};
use keycheck_core::report::{EvidenceItem, Finding, Status, StepData, StepId, StepReport};
use serde_json::Value;

fn huge_report() -> StepReport {
    let mut report = StepReport::new(StepId::Activity, Status::Critical, "s".repeat(6000), StepData::None);
    report.findings.push(Finding::new(Status::Critical, "x".repeat(10_000)));
    for index in 1..200 {
        let evidence = (0..8).map(|line| EvidenceItem {
            time: None,
            id: Some(format!("event-{index}-{line}")),
            text: format!("iam:CreateAccessKey [user-{index}](https://evil.example) `tick` {}", "y".repeat(300)),
        });
        report.findings.push(Finding::new(Status::Warning, format!("finding {index} *bold*")).with_evidence(evidence));
    }
    report
}

fn pretty_json(message: &Value) -> String {
    serde_json::to_string_pretty(message).unwrap()
}

#[test]
fn huge_step_renders_within_limits() {
    let report = huge_report();
    let message = embeds::render(&Renderer::new(), "step", &StepMessageView::new(&StepView::new(&report))).expect("renders");
    let shown = pretty_json(&message);

    assert!(limit_violations(&message).is_empty(), "{:?}\n{shown}", limit_violations(&message));
    let embeds = message["embeds"].as_array().unwrap();
    let total: usize = embeds.iter().map(embed_length).sum();
    assert!(total <= MAX_EMBED_TOTAL, "{total}");
    let embed = &embeds[0];
    assert!(discord_length(embed["title"].as_str().unwrap()) <= MAX_TITLE);
    assert!(discord_length(embed["description"].as_str().unwrap()) <= MAX_DESCRIPTION);
    let fields = embed["fields"].as_array().unwrap();
    assert!(fields.len() <= MAX_FIELDS, "{} fields", fields.len());
    for field in fields {
        assert!(discord_length(field["value"].as_str().unwrap()) <= MAX_FIELD_VALUE);
    }

    // Each cut text gives how much of it was left out, and the content gives how many
    // fields were dropped to fit 6,000 characters.
    assert!(shown.contains("more characters left out"), "{shown}");
    let content = message["content"].as_str().unwrap();
    assert!(content.contains("fields"), "{content}");
    assert!(content.contains("left out to fit Discord's limits"), "{content}");
    assert!(content.contains("characters)"), "{content}");
    assert_eq!(embed["footer"]["text"], "step activity · 0.0 s", "the footer survives the cut");

    // Data is escaped, so a finding cannot add bold text, and evidence stays in a code
    // block, where a link or a backtick from CloudTrail cannot be read as markdown.
    let finding = fields
        .iter()
        .find(|field| field["name"].as_str().unwrap().contains("finding 1 "))
        .expect("the first short finding is kept");
    assert_eq!(finding["name"], "⚠️ finding 1 \\*bold\\*", "{shown}");
    let evidence = finding["value"].as_str().unwrap();
    assert!(evidence.starts_with("```\n"), "{evidence}");
    assert!(evidence.contains("[user-1](https://evil.example) ˋtickˋ"), "{evidence}");
    assert_eq!(evidence.matches("```").count() % 2, 0, "{evidence}");
}

#[test]
fn huge_diagnosis_renders_within_limits() {
    let incident = keycheck_core::demo::snapshot().expect("the demo incident");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let investigation = keycheck_core::playbook::Investigation::new(
        keycheck_core::demo::key(),
        keycheck_core::playbook::Origin::Cli,
    );
    let outcome = runtime.block_on(keycheck_core::playbook::run_to_end(
        investigation,
        std::sync::Arc::new(incident),
        std::sync::Arc::new(keycheck_core::geo::Geo::none()),
        keycheck_core::playbook::PlaybookConfig::default(),
        |_| {},
    ));
    let mut view = DiagnosisView::new(&outcome.diagnosis);
    for section in &mut view.sections {
        for claim in &mut section.claims {
            claim.text.push_str(&" and more".repeat(200));
            claim.evidence.extend((0..30).map(|i| format!("evidence line {i} {}", "z".repeat(120))));
        }
    }
    view.blind_spots.extend((0..200).map(|i| format!("blind spot {i}")));
    let message = embeds::render(&Renderer::new(), "diagnosis", &DiagnosisMessageView::new(&view, "kc-0123456789")).expect("renders");
    let shown = pretty_json(&message);
    assert!(limit_violations(&message).is_empty(), "{:?}\n{shown}", limit_violations(&message));
    assert!(shown.contains("more characters left out") || shown.contains("left out to fit"), "{shown}");
    assert!(message["embeds"][0]["title"].as_str().unwrap().contains("Diagnosis: compromised"), "{shown}");
}

#[test]
fn ordinary_step_needs_no_cut() {
    let mut report = StepReport::new(StepId::Mfa, Status::Warning, "the owner has no MFA", StepData::None);
    report.findings.push(Finding::new(Status::Warning, "no MFA device"));
    let message = embeds::render(&Renderer::new(), "step", &StepMessageView::new(&StepView::new(&report))).unwrap();
    let shown = pretty_json(&message);
    assert!(!shown.contains("left out"), "{shown}");
    assert_eq!(message["embeds"][0]["title"], "⚠️ Step 3. MFA: warning");
    assert_eq!(message["content"], "");
}
