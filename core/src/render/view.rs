//! View structs for the templates: every field ready to print, so that templates need no
//! logic beyond `if` and `each`.

use serde::Serialize;

use crate::diagnosis::{ActionKind, Diagnosis};
use crate::playbook::{Investigation, Origin, Outcome};
use crate::redact::redact;
use crate::report::{EvidenceItem, Status, StepReport};

/// How many findings a step view keeps; renderers for tight platforms cut further.
const FINDINGS_PER_STEP: usize = 25;

/// How many evidence lines a finding view keeps.
const EVIDENCE_PER_FINDING: usize = 5;

/// The opening of a report: which key, whose account, who asked.
#[derive(Clone, Debug, Serialize)]
pub struct HeaderView {
    pub investigation_id: String,
    pub key_id: String,
    pub key_kind: String,
    pub origin: String,
    pub window: String,
    pub evidence_source: String,
}

/// One finding, ready to print.
#[derive(Clone, Debug, Serialize)]
pub struct FindingView {
    pub marker: String,
    pub emoji: String,
    pub text: String,
    pub evidence: Vec<String>,
    pub more_evidence: Option<String>,
}

/// One step's report, ready to print.
#[derive(Clone, Debug, Serialize)]
pub struct StepView {
    pub number: u8,
    pub name: String,
    pub title: String,
    pub status: String,
    pub marker: String,
    pub emoji: String,
    pub summary: String,
    pub findings: Vec<FindingView>,
    pub more_findings: Option<String>,
    pub failure: Option<String>,
    pub duration: String,
}

/// One claim of the diagnosis.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimView {
    pub text: String,
    pub evidence: Vec<String>,
}

/// One section of the diagnosis.
#[derive(Clone, Debug, Serialize)]
pub struct SectionView {
    pub heading: String,
    pub marker: String,
    pub emoji: String,
    pub claims: Vec<ClaimView>,
}

/// One timeline entry.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineView {
    pub offset: String,
    pub time: String,
    pub text: String,
}

/// One recommended action.
#[derive(Clone, Debug, Serialize)]
pub struct ActionView {
    pub kind: String,
    pub text: String,
    pub button: bool,
}

/// The diagnosis, ready to print.
#[derive(Clone, Debug, Serialize)]
pub struct DiagnosisView {
    pub verdict: String,
    pub verdict_upper: String,
    pub severity: String,
    pub emoji: String,
    pub summary: String,
    pub first_detection: Option<String>,
    pub sections: Vec<SectionView>,
    pub timeline: Vec<TimelineView>,
    pub timeline_baseline: String,
    pub actions: Vec<ActionView>,
    pub blind_spots: Vec<String>,
    pub widened: Vec<String>,
}

/// A whole report: header, every step in playbook order, diagnosis.
#[derive(Clone, Debug, Serialize)]
pub struct ReportView {
    pub header: HeaderView,
    pub steps: Vec<StepView>,
    pub diagnosis: DiagnosisView,
    pub finished_at: String,
}

/// Returns the plain-text marker of a status, such as `[warn]`.
pub fn marker(status: Status) -> &'static str {
    match status {
        Status::Ok => "[ok]",
        Status::Warning => "[warn]",
        Status::Critical => "[CRIT]",
        Status::NotAvailable => "[n/a]",
        Status::Error => "[ERROR]",
    }
}

/// Returns the emoji of a status, for Markdown and chat.
pub fn emoji(status: Status) -> &'static str {
    match status {
        Status::Ok => "✅",
        Status::Warning => "⚠️",
        Status::Critical => "🔴",
        Status::NotAvailable => "➖",
        Status::Error => "❌",
    }
}

impl HeaderView {
    /// Builds the header of an investigation.
    pub fn new(investigation: &Investigation, evidence_source: &str) -> HeaderView {
        let window = match investigation.window {
            Some(window) => format!(
                "{} to {}",
                window.start.format("%Y-%m-%d %H:%M"),
                window.end.format("%Y-%m-%d %H:%M UTC")
            ),
            None => format!("the last {} hours of recorded activity", investigation.window_length.num_hours()),
        };
        HeaderView {
            investigation_id: investigation.id.clone(),
            key_id: investigation.key.to_string(),
            key_kind: match investigation.key.kind() {
                crate::key::KeyKind::LongTerm => "long-term".to_string(),
                crate::key::KeyKind::Temporary => "temporary".to_string(),
            },
            origin: origin_text(&investigation.origin),
            window,
            evidence_source: redact(evidence_source).into_owned(),
        }
    }
}

fn origin_text(origin: &Origin) -> String {
    match origin {
        Origin::Cli => "command line".to_string(),
        Origin::Command { platform, user, .. } => format!("/keycheck by {user} on {platform}"),
        Origin::Alert { platform, source, .. } => format!("{source} alert on {platform}"),
    }
}

impl StepView {
    /// Builds the view of one step report.
    pub fn new(report: &StepReport) -> StepView {
        let findings: Vec<FindingView> = report
            .findings
            .iter()
            .take(FINDINGS_PER_STEP)
            .map(|f| FindingView {
                marker: marker(f.level).to_string(),
                emoji: emoji(f.level).to_string(),
                text: redact(&f.text).into_owned(),
                evidence: f.evidence.iter().take(EVIDENCE_PER_FINDING).map(evidence_line).collect(),
                more_evidence: more(f.evidence.len(), EVIDENCE_PER_FINDING, "records"),
            })
            .collect();
        StepView {
            number: report.step.number(),
            name: report.step.name().to_string(),
            title: report.step.title().to_string(),
            status: report.status.label().to_string(),
            marker: marker(report.status).to_string(),
            emoji: emoji(report.status).to_string(),
            summary: redact(&report.summary).into_owned(),
            findings,
            more_findings: more(report.findings.len(), FINDINGS_PER_STEP, "findings"),
            failure: report.failure.as_ref().map(failure_advice),
            duration: format!("{:.1} s", report.duration_ms as f64 / 1000.0),
        }
    }
}

/// Returns what a responder should do about a failed step: grant the permission when
/// access was denied, wait and run again when AWS throttled or failed, otherwise the error
/// itself.
fn failure_advice(failure: &crate::report::StepFailure) -> String {
    let message = failure.message.to_ascii_lowercase();
    let operation = &failure.operation;
    match &failure.permission {
        Some(permission) if message.contains("denied") => {
            format!("{operation} was denied; grant {permission} to keycheck's role and run again")
        }
        Some(_) if message.contains("throttl") || message.contains("rate exceeded") => {
            format!("AWS throttled {operation}; run again in a few minutes, or raise aws.max_attempts")
        }
        Some(_) if message.contains("http 5") || message.contains("service unavailable") || message.contains("internal error") => {
            format!("AWS returned a server error for {operation}; run again in a few minutes")
        }
        _ => redact(&failure.message).into_owned(),
    }
}

/// Formats an evidence item as one line: `2024-05-01 10:00:00  iam:CreateUser …  (event e1)`.
pub fn evidence_line(item: &EvidenceItem) -> String {
    let time = item
        .time
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "—".to_string());
    let id = item.id.as_deref().map(|id| format!(" (id {id})")).unwrap_or_default();
    redact(&format!("{time}  {}{id}", item.text)).into_owned()
}

/// Returns "and N more records" when `total` exceeds `shown`.
fn more(total: usize, shown: usize, what: &str) -> Option<String> {
    (total > shown).then(|| format!("and {} more {what}", total - shown))
}

impl DiagnosisView {
    /// Builds the view of a diagnosis.
    pub fn new(diagnosis: &Diagnosis) -> DiagnosisView {
        let emoji = match diagnosis.verdict {
            crate::diagnosis::Verdict::Compromised => "🚨",
            crate::diagnosis::Verdict::Suspicious => "⚠️",
            crate::diagnosis::Verdict::NoEvidence => "✅",
            crate::diagnosis::Verdict::Inconclusive => "❔",
        };
        DiagnosisView {
            verdict: diagnosis.verdict.label().to_string(),
            verdict_upper: diagnosis.verdict.label().to_uppercase(),
            severity: diagnosis.severity.label().to_string(),
            emoji: emoji.to_string(),
            summary: redact(&diagnosis.summary).into_owned(),
            first_detection: diagnosis.first_detection.map(|t| {
                format!(
                    "{} ({})",
                    t.format("%Y-%m-%d %H:%M UTC"),
                    diagnosis.first_detection_source.as_deref().unwrap_or("unknown source")
                )
            }),
            sections: diagnosis
                .sections
                .iter()
                .map(|s| SectionView {
                    heading: s.heading.clone(),
                    marker: marker(s.level).to_string(),
                    emoji: emoji_for_section(s.level).to_string(),
                    claims: s
                        .claims
                        .iter()
                        .map(|c| ClaimView {
                            text: redact(&c.text).into_owned(),
                            evidence: c.evidence.iter().map(evidence_line).collect(),
                        })
                        .collect(),
                })
                .collect(),
            timeline: diagnosis
                .timeline
                .iter()
                .map(|t| TimelineView {
                    offset: t.offset.clone(),
                    time: t.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                    text: redact(&t.text).into_owned(),
                })
                .collect(),
            timeline_baseline: diagnosis.timeline_baseline.clone(),
            actions: diagnosis
                .actions
                .iter()
                .map(|a| ActionView {
                    kind: action_label(a.kind).to_string(),
                    text: redact(&a.text).into_owned(),
                    button: a.kind != ActionKind::Manual,
                })
                .collect(),
            blind_spots: diagnosis.blind_spots.iter().map(|b| redact(b).into_owned()).collect(),
            widened: diagnosis.widened.clone(),
        }
    }
}

fn emoji_for_section(level: Status) -> &'static str {
    match level {
        Status::Critical => "🔴",
        Status::Warning => "🟠",
        _ => "🔵",
    }
}

/// Returns the label of an action kind, as on its button.
pub fn action_label(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Deactivate => "Deactivate",
        ActionKind::Rotate => "Rotate",
        ActionKind::RevokeSessions => "Revoke sessions",
        ActionKind::Quarantine => "Quarantine",
        ActionKind::Manual => "Manual",
    }
}

impl ReportView {
    /// Builds the view of a whole outcome.
    pub fn new(outcome: &Outcome) -> ReportView {
        ReportView {
            header: HeaderView::new(&outcome.investigation, &outcome.evidence_source),
            steps: outcome.reports.iter().map(StepView::new).collect(),
            diagnosis: DiagnosisView::new(&outcome.diagnosis),
            finished_at: outcome.finished_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::failure_advice;
    use crate::report::StepFailure;

    fn failure(message: &str) -> StepFailure {
        StepFailure {
            operation: "cloudtrail:LookupEvents".to_string(),
            permission: Some("cloudtrail:LookupEvents".to_string()),
            message: format!("cloudtrail:LookupEvents failed: {message}"),
        }
    }

    #[test]
    fn advice_fits_the_failure() {
        let cases = [
            ("AccessDenied: not authorized", "grant cloudtrail:LookupEvents to keycheck's role"),
            ("throttled after 3 attempts", "AWS throttled cloudtrail:LookupEvents; run again"),
            ("failed (HTTP 500)", "AWS returned a server error for cloudtrail:LookupEvents"),
            ("the log group was not found", "cloudtrail:LookupEvents failed: the log group was not found"),
        ];
        for (message, expected) in cases {
            let advice = failure_advice(&failure(message));
            assert!(advice.contains(expected), "{message}: {advice}");
        }
    }
}
