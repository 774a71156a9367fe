//! Block Kit limits: a step report far beyond them renders within them, with notes that
//! give how much was left out.

use keycheck_bot::slack::blocks::{self, MAX_BLOCKS, MAX_SECTION_TEXT, limit_violations, slack_length};
use keycheck_bot::slack::view::SlackStepView;
use keycheck_core::render::{Renderer, StepView};
use keycheck_core::report::{EvidenceItem, Finding, Status, StepData, StepId, StepReport};

fn huge_report() -> StepReport {
    let mut report = StepReport::new(StepId::Activity, Status::Critical, "200 findings", StepData::None);
    report.findings.push(Finding::new(Status::Critical, "x".repeat(10_000)));
    for index in 1..200 {
        let evidence = (0..8).map(|line| EvidenceItem {
            time: None,
            id: Some(format!("event-{index}-{line}")),
            text: format!("iam:CreateAccessKey <user-{index}> & more {}", "y".repeat(300)),
        });
        report.findings.push(Finding::new(Status::Warning, format!("finding {index}")).with_evidence(evidence));
    }
    report
}

#[test]
fn huge_step_renders_within_limits() {
    let report = huge_report();
    let message = blocks::render(&Renderer::new(), "step", &SlackStepView::new(&StepView::new(&report))).expect("renders");
    let shown = serde_json::to_string_pretty(&message.blocks).unwrap();

    assert!(limit_violations(&message).is_empty(), "{:?}\n{shown}", limit_violations(&message));
    assert!(message.blocks.len() <= MAX_BLOCKS, "{} blocks", message.blocks.len());

    let texts: Vec<String> = message
        .blocks
        .iter()
        .filter_map(|b| b.pointer("/text/text").or_else(|| b.pointer("/elements/0/text")))
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    let long = texts.iter().find(|t| t.starts_with("🔴 xxx")).expect("the long finding is kept, cut");
    assert!(slack_length(long) <= MAX_SECTION_TEXT, "{}", slack_length(long));
    assert!(long.contains("more characters left out"), "{long}");

    assert!(texts.iter().any(|t| t.contains("and 175 more findings")) || texts.iter().any(|t| t.contains("more blocks")), "{shown}");
    let last = texts.last().unwrap();
    assert!(last.contains("more blocks"), "the last block gives what was cut: {last}");
    assert!(last.contains("left out"), "the last block gives what was cut: {last}");

    // Data is escaped for Slack, so `<user-1>` is not read as a link.
    assert!(shown.contains("&lt;user-1&gt; &amp; more"), "{shown}");
}

#[test]
fn ordinary_step_needs_no_cut() {
    let mut report = StepReport::new(StepId::Mfa, Status::Warning, "the owner has no MFA", StepData::None);
    report.findings.push(Finding::new(Status::Warning, "no MFA device"));
    let message = blocks::render(&Renderer::new(), "step", &SlackStepView::new(&StepView::new(&report))).unwrap();
    let text = serde_json::to_string(&message.blocks).unwrap();
    assert!(!text.contains("left out"), "{text}");
    assert_eq!(message.text, "Step 3. MFA: warning");
}
