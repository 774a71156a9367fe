//! Text views of a playbook outcome for failure messages, and a guard that prints them
//! when a test panics.

use std::fmt::Write;

use keycheck_core::playbook::Outcome;
use keycheck_core::report::{StepData, StepId, StepReport};

/// Describes every step (status, summary, failure, findings) and the diagnosis, one line each.
pub fn describe(outcome: &Outcome) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "evidence: {}", outcome.evidence_source);
    for report in &outcome.reports {
        let _ = writeln!(
            text,
            "  {} {:<15} {:<13} {} ms: {}",
            report.step.number(),
            report.step.name(),
            report.status.label(),
            report.duration_ms,
            report.summary
        );
        if let Some(failure) = &report.failure {
            let _ = writeln!(
                text,
                "      failure: {} (permission {}): {}",
                failure.operation,
                failure.permission.as_deref().unwrap_or("none"),
                failure.message
            );
        }
        for finding in &report.findings {
            let _ = writeln!(text, "      - {} {}", finding.level.label(), finding.text);
        }
    }
    let diagnosis = &outcome.diagnosis;
    let _ = writeln!(text, "diagnosis: {}", diagnosis.summary);
    for spot in &diagnosis.blind_spots {
        let _ = writeln!(text, "  blind spot: {spot}");
    }
    text
}

/// Returns the report of `step`.
///
/// # Panics
///
/// Panics when the outcome has no report for the step, printing the outcome.
pub fn step(outcome: &Outcome, step: StepId) -> &StepReport {
    outcome
        .reports
        .iter()
        .find(|r| r.step == step)
        .unwrap_or_else(|| panic!("no report for step {step}\n{}", describe(outcome)))
}

/// Returns the typed data of a step as JSON, for failure messages.
pub fn data_json(data: &StepData) -> String {
    serde_json::to_string_pretty(data).unwrap_or_else(|e| format!("unserializable: {e}"))
}

/// Collects what a test sent and received, and prints it to standard error when the test
/// panics. The test runner shows that output with the failure.
#[derive(Default)]
pub struct PrintOnFailure {
    sections: Vec<(String, String)>,
}

impl PrintOnFailure {
    /// Creates an empty guard.
    pub fn new() -> PrintOnFailure {
        PrintOnFailure::default()
    }

    /// Adds a titled section, or replaces the section of that title.
    pub fn set(&mut self, title: &str, text: impl Into<String>) {
        let text = text.into();
        match self.sections.iter_mut().find(|(t, _)| t == title) {
            Some(section) => section.1 = text,
            None => self.sections.push((title.to_string(), text)),
        }
    }
}

impl Drop for PrintOnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (title, text) in &self.sections {
            eprintln!("===== {title} =====\n{text}");
        }
    }
}
