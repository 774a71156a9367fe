//! The diagnosis: rules over the step reports that correlate them into claims with
//! evidence, a timeline from the first detection, a verdict, a severity and the
//! recommended actions.
//!
//! Every rule is a pure function of the reports, so each can be tested on its own.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::evidence::KeyStatus;
use crate::geo::LocationCategory;
use crate::key::KeyKind;
use crate::playbook::Investigation;
use crate::report::{
    ActivityFacts, Cadence, CrossAccountFacts, EventBrief, EvidenceItem, GuardDutyFacts, KeyFacts, MfaFacts,
    PermissionFacts, SecretFacts, Status, StepData, StepReport, FindingFacts, ExternalAccessFacts,
};
use crate::tactics::{Tactic, classify};

/// How many evidence items a claim keeps; the rest are counted in the claim's text.
const EVIDENCE_PER_CLAIM: usize = 5;

/// How many entries the timeline keeps.
const TIMELINE_ENTRIES: usize = 40;

/// The overall judgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The evidence shows the key in someone else's hands.
    Compromised,
    /// Something needs a human to look, but it does not prove compromise.
    Suspicious,
    /// Nothing in the evidence correlates.
    NoEvidence,
    /// Nothing correlates, but the key's CloudTrail activity could not be read, so the
    /// evidence cannot show that the key was not misused.
    Inconclusive,
}

impl Verdict {
    /// Returns the verdict as shown to responders.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Compromised => "compromised",
            Verdict::Suspicious => "suspicious",
            Verdict::NoEvidence => "no evidence of compromise",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Urgency of the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Returns the severity as an uppercase word.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// One claim of the diagnosis with the records behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The claim in one line.
    pub text: String,
    /// The records that support it, oldest first.
    pub evidence: Vec<EvidenceItem>,
}

/// Claims under one heading, such as "Persistence".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// The heading.
    pub heading: String,
    /// Seriousness of the section.
    pub level: Status,
    /// The claims.
    pub claims: Vec<Claim>,
}

/// An entry of the incident timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Offset from the baseline, such as `+2h13m` or `-1d4h`.
    pub offset: String,
    /// What happened.
    pub text: String,
}

/// The containment actions keycheck can run, and the ones a human does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Deactivate,
    Rotate,
    RevokeSessions,
    Quarantine,
    /// Something keycheck cannot do for you.
    Manual,
}

/// A recommended action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Kind of action.
    pub kind: ActionKind,
    /// The step to take and its reason, in one line.
    pub text: String,
}

/// The diagnosis of one investigation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The judgement.
    pub verdict: Verdict,
    /// Urgency of the response.
    pub severity: Severity,
    /// The diagnosis in one sentence.
    pub summary: String,
    /// The first detection time, the baseline of the timeline.
    pub first_detection: Option<DateTime<Utc>>,
    /// Source of the first detection.
    pub first_detection_source: Option<String>,
    /// Claims grouped by heading, most serious first.
    pub sections: Vec<Section>,
    /// The incident timeline, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// Event the timeline's offsets count from.
    pub timeline_baseline: String,
    /// Recommended actions, most urgent first.
    pub actions: Vec<Action>,
    /// Evidence keycheck could not see, with the reason.
    pub blind_spots: Vec<String>,
    /// Checks widened or added because nothing correlated: a wider window, Access
    /// Analyzer, cross-account moves.
    pub widened: Vec<String>,
}

/// The typed facts of every step that reported them.
#[derive(Default)]
struct Facts<'a> {
    key: Option<&'a KeyFacts>,
    activity: Option<&'a ActivityFacts>,
    mfa: Option<&'a MfaFacts>,
    permissions: Option<&'a PermissionFacts>,
    findings: Option<&'a FindingFacts>,
    guardduty: Option<&'a GuardDutyFacts>,
    external: Option<&'a ExternalAccessFacts>,
    cross_account: Option<&'a CrossAccountFacts>,
    secrets: Option<&'a SecretFacts>,
}

impl<'a> Facts<'a> {
    fn from_reports(reports: &'a [StepReport]) -> Facts<'a> {
        let mut facts = Facts::default();
        for report in reports {
            match &report.data {
                StepData::Key(f) => facts.key = Some(f),
                StepData::Activity(f) => facts.activity = Some(f),
                StepData::Mfa(f) => facts.mfa = Some(f),
                StepData::Permissions(f) => facts.permissions = Some(f),
                StepData::Findings(f) => facts.findings = Some(f),
                StepData::Guardduty(f) => facts.guardduty = Some(f),
                StepData::ExternalAccess(f) => facts.external = Some(f),
                StepData::CrossAccount(f) => facts.cross_account = Some(f),
                StepData::Secrets(f) => facts.secrets = Some(f),
                StepData::Resolve(_) | StepData::None => {}
            }
        }
        facts
    }

    /// Returns a test for routine calls: with history available, a call the key already
    /// made before the window, from an address it already used.
    fn routine_filter(&self) -> impl Fn(&EventBrief) -> bool + 'a {
        let activity = self.activity.filter(|a| a.history_available);
        let known_calls: Vec<&'a str> = activity
            .map(|a| a.calls.iter().filter(|c| !c.new).map(|c| c.call.as_str()).collect())
            .unwrap_or_default();
        let new_sources: Vec<&'a str> = activity
            .map(|a| a.sources.iter().filter(|s| s.new).map(|s| s.source.as_str()).collect())
            .unwrap_or_default();
        move |call: &EventBrief| {
            known_calls.contains(&call.call.as_str())
                && !call.source.as_deref().is_some_and(|s| new_sources.contains(&s))
        }
    }

    /// Returns every call in the window by the key and its sessions, oldest first.
    fn calls(&self) -> Vec<&'a EventBrief> {
        let Some(activity) = self.activity else {
            return Vec::new();
        };
        let mut calls: Vec<&EventBrief> = activity.timeline.iter().chain(&activity.session_calls).collect();
        calls.sort_by_key(|c| c.time);
        calls
    }
}

/// Signals the rules raise, which decide the verdict.
#[derive(Default, Debug)]
struct Signals {
    /// Signals that on their own show compromise.
    strong: Vec<String>,
    /// Signals that need a human to look.
    weak: Vec<String>,
}

/// Correlates the step reports into a diagnosis.
pub fn diagnose(investigation: &Investigation, reports: &[StepReport]) -> Diagnosis {
    let facts = Facts::from_reports(reports);
    let mut signals = Signals::default();
    let mut sections = Vec::new();

    sections.extend(detections(investigation, &facts, &mut signals));
    sections.extend(tactic_sections(&facts, &mut signals));
    sections.extend(novelty(&facts, &mut signals));
    sections.extend(denied_bursts(&facts, investigation.key.as_str(), &mut signals));
    sections.extend(minted_credentials(&facts, &mut signals));
    sections.extend(cross_account(&facts, &mut signals));
    sections.extend(external_access(&facts, &mut signals));
    sections.extend(mfa_gaps(&facts, &mut signals));
    sections.extend(power(&facts));
    sections.extend(pattern(&facts));
    sections.sort_by(|a, b| b.level.cmp(&a.level));

    let had_activity = facts.activity.is_some_and(|a| a.total_calls + a.session_calls.len() > 0);
    let verdict = verdict(&signals, had_activity, facts.activity.is_some());
    let severity = severity(verdict, investigation, &facts);
    let (first_detection, first_detection_source) = first_detection(&facts);
    let blind_spots = blind_spots(reports);
    let actions = actions(verdict, investigation, &facts);
    let timeline = timeline(&facts, first_detection);
    let timeline_baseline = match &first_detection_source {
        Some(source) => format!("the first detection ({source})"),
        None => "the first notable event".to_string(),
    };
    let summary = summary(verdict, severity, &signals, &blind_spots);
    let widened = if verdict == Verdict::NoEvidence { extra_checks(&facts) } else { Vec::new() };

    Diagnosis {
        verdict,
        severity,
        summary,
        first_detection,
        first_detection_source,
        sections,
        timeline,
        timeline_baseline,
        actions,
        blind_spots,
        widened,
    }
}

fn verdict(signals: &Signals, had_activity: bool, activity_read: bool) -> Verdict {
    if !signals.strong.is_empty() && had_activity {
        Verdict::Compromised
    } else if !signals.strong.is_empty() || !signals.weak.is_empty() {
        Verdict::Suspicious
    } else if !activity_read {
        Verdict::Inconclusive
    } else {
        Verdict::NoEvidence
    }
}

fn severity(verdict: Verdict, investigation: &Investigation, facts: &Facts) -> Severity {
    let key_works = match facts.key.and_then(|k| k.record.as_ref()) {
        Some(record) => record.status == KeyStatus::Active,
        None => investigation.key.kind() == KeyKind::LongTerm,
    };
    let powerful = facts
        .permissions
        .is_some_and(|p| p.admin || !p.escalation_actions.is_empty());
    let high_risk_success = facts
        .calls()
        .iter()
        .any(|c| c.error_code.is_none() && tactic_of(&c.call).is_some_and(Tactic::is_high_risk));
    match verdict {
        Verdict::Compromised if key_works && (powerful || high_risk_success) => Severity::Critical,
        Verdict::Compromised => Severity::High,
        Verdict::Suspicious if high_risk_success || powerful => Severity::High,
        Verdict::Suspicious => Severity::Medium,
        Verdict::NoEvidence if investigation.alert.is_some() && key_works => Severity::Low,
        Verdict::NoEvidence => Severity::Info,
        Verdict::Inconclusive if investigation.alert.is_some() || key_works => Severity::Medium,
        Verdict::Inconclusive => Severity::Low,
    }
}

fn summary(verdict: Verdict, severity: Severity, signals: &Signals, blind_spots: &[String]) -> String {
    let reasons: Vec<&str> = signals
        .strong
        .iter()
        .chain(&signals.weak)
        .map(String::as_str)
        .take(4)
        .collect();
    let mut text = format!("{} ({})", capitalise(verdict.label()), severity.label());
    if verdict == Verdict::Inconclusive {
        text.push_str(": the key's CloudTrail activity could not be read, so its use cannot be judged");
    } else if reasons.is_empty() {
        text.push_str(": nothing in the evidence correlates");
    } else {
        text.push_str(": ");
        text.push_str(&reasons.join("; "));
    }
    if !blind_spots.is_empty() {
        text.push_str(&format!(". {} things could not be checked", blind_spots.len()));
    }
    text
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Returns the tactic of a `service:Operation` call name.
fn tactic_of(call: &str) -> Option<Tactic> {
    let (service, name) = call.split_once(':')?;
    classify(service, name)
}

fn brief_item(brief: &EventBrief) -> EvidenceItem {
    EvidenceItem {
        time: Some(brief.time),
        id: brief.event_id.clone(),
        text: crate::playbook::describe_brief(brief),
    }
}

fn detections(investigation: &Investigation, facts: &Facts, signals: &mut Signals) -> Option<Section> {
    let mut claims = Vec::new();
    if let Some(guardduty) = facts.guardduty {
        for finding in &guardduty.credential_findings {
            signals.strong.push(format!("GuardDuty {}", finding.finding_type));
            claims.push(Claim {
                text: format!("GuardDuty {} ({}): {}", finding.finding_type, finding.severity, finding.title),
                evidence: vec![EvidenceItem {
                    time: finding.first_seen,
                    id: Some(finding.id.clone()),
                    text: finding.title.clone(),
                }],
            });
        }
    }
    if let Some(findings) = facts.findings {
        for event in &findings.health {
            signals.strong.push(format!("AWS Health {}", event.event_type_code));
            claims.push(Claim {
                text: format!("AWS Health {}: AWS found the key exposed publicly", event.event_type_code),
                evidence: vec![EvidenceItem {
                    time: event.start_time,
                    id: event.arn.clone(),
                    text: event.description.clone().unwrap_or_default(),
                }],
            });
        }
        for finding in findings.security_hub.iter().filter(|f| matches!(f.severity.as_str(), "HIGH" | "CRITICAL")) {
            signals.weak.push(format!("Security Hub {}", finding.title));
            claims.push(Claim {
                text: format!("Security Hub {} ({}): {}", finding.finding_type, finding.severity, finding.title),
                evidence: vec![EvidenceItem {
                    time: finding.first_seen,
                    id: Some(finding.id.clone()),
                    text: finding.title.clone(),
                }],
            });
        }
    }
    if let Some(alert) = &investigation.alert {
        let what = alert.finding_type.as_deref().unwrap_or("an alert");
        signals.strong.push(format!("{} reported {what}", alert.source));
        claims.push(Claim {
            text: format!("started by {} {what}", alert.source),
            evidence: vec![EvidenceItem {
                time: alert.first_seen,
                id: None,
                text: format!("alert names source IPs: {}", alert.source_ips.join(", ")),
            }],
        });
    }
    section("Detections", Status::Critical, claims)
}

/// Files every classified call under its tactic's heading, one claim per kind of call.
///
/// When the key has history, calls it already made before the window from an address it
/// already used are routine and are left out: a deploy job's daily
/// `ecr:GetAuthorizationToken` is not credential access.
fn tactic_sections(facts: &Facts, signals: &mut Signals) -> Vec<Section> {
    let new_sources: Vec<&str> = facts
        .activity
        .map(|a| a.sources.iter().filter(|s| s.new).map(|s| s.source.as_str()).collect())
        .unwrap_or_default();
    let routine = facts.routine_filter();
    let mut by_tactic: BTreeMap<Tactic, BTreeMap<String, Vec<&EventBrief>>> = BTreeMap::new();
    for call in facts.calls() {
        let Some(tactic) = tactic_of(&call.call) else { continue };
        if matches!(tactic, Tactic::Discovery | Tactic::RoleAssumption | Tactic::TemporaryCredentials) {
            continue;
        }
        if routine(call) {
            continue;
        }
        by_tactic.entry(tactic).or_default().entry(call.call.clone()).or_default().push(call);
    }

    let mut sections = Vec::new();
    for (tactic, calls) in by_tactic {
        let mut claims = Vec::new();
        let mut succeeded_any = false;
        let mut from_new_source = false;
        for (call, events) in calls {
            let failed = events.iter().filter(|e| e.error_code.is_some()).count();
            let succeeded = events.len() - failed;
            succeeded_any |= succeeded > 0;
            from_new_source |= events
                .iter()
                .any(|e| e.source.as_deref().is_some_and(|s| new_sources.contains(&s)));
            let targets: Vec<&str> = dedup(events.iter().filter_map(|e| e.target.as_deref()));
            let mut text = format!("{call} ×{}", events.len());
            if failed > 0 {
                text.push_str(&format!(" ({failed} failed)"));
            }
            if !targets.is_empty() {
                text.push_str(&format!(": {}", truncate_list(&targets, 5)));
            }
            claims.push(Claim {
                text,
                evidence: events.iter().take(EVIDENCE_PER_CLAIM).map(|e| brief_item(e)).collect(),
            });
        }

        let signal = format!("{} calls", tactic.heading().to_lowercase());
        let strong = (tactic == Tactic::DefenseEvasion && succeeded_any)
            || (from_new_source && (tactic.is_high_risk() || tactic == Tactic::SecretsRead));
        if strong {
            signals.strong.push(signal);
        } else {
            signals.weak.push(signal);
        }
        let level = if succeeded_any && (tactic.is_high_risk() || tactic == Tactic::SecretsRead) {
            Status::Critical
        } else {
            Status::Warning
        };
        sections.extend(section(tactic.heading(), level, claims));
    }
    sections
}

fn novelty(facts: &Facts, signals: &mut Signals) -> Option<Section> {
    let activity = facts.activity?;
    if !activity.history_available {
        return None;
    }
    let mut claims = Vec::new();
    for source in activity.sources.iter().filter(|s| s.new) {
        claims.push(Claim {
            text: format!(
                "{} calls from new source {} ({}), first {}",
                source.count,
                source.source,
                source.location.label(),
                source.first.format("%Y-%m-%d %H:%M UTC")
            ),
            evidence: Vec::new(),
        });
    }
    let new_countries: Vec<&str> = activity.countries.iter().filter(|c| c.new).map(|c| c.value.as_str()).collect();
    if !new_countries.is_empty() {
        claims.push(Claim {
            text: format!("new countries or networks: {}", new_countries.join(", ")),
            evidence: Vec::new(),
        });
    }
    let new_calls: Vec<&str> = activity.calls.iter().filter(|c| c.new).map(|c| c.call.as_str()).collect();
    if !new_calls.is_empty() {
        let kinds = if new_calls.len() == 1 { "kind of call" } else { "kinds of call" };
        claims.push(Claim {
            text: format!("{} {kinds} never made before: {}", new_calls.len(), truncate_list(&new_calls, 12)),
            evidence: Vec::new(),
        });
    }
    if claims.is_empty() {
        return None;
    }

    // A new read-only call from a known address is how people use a key; a new address,
    // country or a call with a tactic is what an intruder looks like.
    let new_places = activity.sources.iter().any(|s| {
        s.new && !matches!(s.location.category, LocationCategory::AwsService | LocationCategory::AwsInternal)
    }) || !new_countries.is_empty();
    let new_tactics = new_calls
        .iter()
        .any(|c| tactic_of(c).is_some_and(|t| t != Tactic::Discovery));
    if !new_places && !new_tactics {
        return section("Activity outside the key's history", Status::Ok, claims);
    }
    signals.weak.push("activity outside the key's history".to_string());
    section("Activity outside the key's history", Status::Warning, claims)
}

fn denied_bursts(facts: &Facts, investigation_key: &str, signals: &mut Signals) -> Option<Section> {
    let activity = facts.activity?;
    let claims: Vec<Claim> = activity
        .denied_bursts
        .iter()
        .map(|burst| {
            let calls: Vec<String> = burst.calls.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
            Claim {
                text: format!(
                    "{} denied calls in {} seconds: {}{}",
                    burst.count,
                    (burst.end - burst.start).num_seconds(),
                    calls.join(", "),
                    crate::playbook::burst_keys_note(burst, investigation_key)
                ),
                evidence: vec![EvidenceItem {
                    time: Some(burst.start),
                    id: None,
                    text: format!("burst from {} to {}", burst.start.format("%H:%M:%S"), burst.end.format("%H:%M:%S UTC")),
                }],
            }
        })
        .collect();
    if !claims.is_empty() {
        signals.weak.push("denied-call bursts (enumeration)".to_string());
    }
    section("Denied-call bursts (enumeration)", Status::Warning, claims)
}

fn minted_credentials(facts: &Facts, signals: &mut Signals) -> Option<Section> {
    let activity = facts.activity?;
    let claims: Vec<Claim> = activity
        .minted_sessions
        .iter()
        .map(|session| {
            let used = activity
                .session_calls
                .iter()
                .filter(|c| c.key_id.as_deref() == Some(session.key_id.as_str()))
                .count();
            let role = session.role_arn.as_deref().map(|r| format!(" for {r}")).unwrap_or_default();
            Claim {
                text: format!("{} minted {} with {}{role}; used for {used} calls", session.parent_key_id.as_deref().unwrap_or("the key"), session.key_id, session.call),
                evidence: vec![EvidenceItem {
                    time: Some(session.time),
                    id: session.event_id.clone(),
                    text: format!("{} returned {}", session.call, session.key_id),
                }],
            }
        })
        .collect();
    if !claims.is_empty() {
        signals.weak.push("temporary credentials minted".to_string());
    }
    section(Tactic::TemporaryCredentials.heading(), Status::Warning, claims)
}

fn cross_account(facts: &Facts, signals: &mut Signals) -> Option<Section> {
    let cross = facts.cross_account?;
    let mut claims: Vec<Claim> = cross
        .assumptions
        .iter()
        .map(|a| {
            let role = a.role_arn.as_deref().unwrap_or("an unrecorded role");
            let scope = if a.cross_account { "in another account" } else { "in the same account" };
            let outcome = if a.denied {
                "denied".to_string()
            } else if let Some(code) = &a.error_code {
                format!("failed ({code})")
            } else {
                "succeeded".to_string()
            };
            Claim {
                text: format!("AssumeRole {role} {scope}: {outcome}"),
                evidence: vec![EvidenceItem {
                    time: Some(a.time),
                    id: a.event_id.clone(),
                    text: format!("sts:AssumeRole by {}", a.caller_key_id.as_deref().unwrap_or("unknown key")),
                }],
            }
        })
        .collect();
    if cross.chained {
        claims.push(Claim {
            text: "role chaining: a session minted from the key assumed another role".to_string(),
            evidence: Vec::new(),
        });
    }
    if !cross.other_accounts.is_empty() {
        claims.push(Claim {
            text: format!("other accounts reached or tried: {}", cross.other_accounts.join(", ")),
            evidence: Vec::new(),
        });
    }
    if claims.is_empty() {
        return None;
    }
    let succeeded_elsewhere = cross.assumptions.iter().any(|a| a.cross_account && !a.denied && a.error_code.is_none());
    if succeeded_elsewhere {
        signals.strong.push("moved into another account".to_string());
    } else {
        signals.weak.push("role assumption attempts".to_string());
    }
    let level = if succeeded_elsewhere { Status::Critical } else { Status::Warning };
    section(Tactic::RoleAssumption.heading(), level, claims)
}

fn external_access(facts: &Facts, signals: &mut Signals) -> Option<Section> {
    let external = facts.external?;
    let claims: Vec<Claim> = external
        .analyzer_findings
        .iter()
        .map(|f| Claim {
            text: format!(
                "Access Analyzer: {} {} shared with {}{}",
                f.resource_type,
                f.resource,
                f.principal.as_deref().unwrap_or("an external principal"),
                if f.is_public { " (public)" } else { "" }
            ),
            evidence: vec![EvidenceItem {
                time: f.created,
                id: Some(f.id.clone()),
                text: f.actions.join(", "),
            }],
        })
        .collect();
    // Access Analyzer reports the whole account, so a finding older than the window on a
    // resource the key never touched describes the account, not this incident: it is
    // listed, but it does not make the key suspicious.
    let window_start = facts.activity.map(|a| a.window_start);
    let calls = facts.calls();
    let related = external.analyzer_findings.iter().any(|finding| {
        let new = finding.created.zip(window_start).is_some_and(|(created, start)| created >= start);
        let touched = calls
            .iter()
            .any(|call| call.target.as_deref().is_some_and(|target| names_resource(&finding.resource, target)));
        new || touched
    });
    if related {
        signals.weak.push("resources shared outside the account".to_string());
    }
    section("External access", Status::Warning, claims)
}

/// Returns whether a call's `target` (a name or an ARN) names the resource `arn`, such as
/// the bucket `logs` for `arn:aws:s3:::logs`.
fn names_resource(arn: &str, target: &str) -> bool {
    !target.is_empty()
        && (arn == target || arn.ends_with(&format!(":{target}")) || arn.ends_with(&format!("/{target}")))
}

fn mfa_gaps(facts: &Facts, signals: &mut Signals) -> Option<Section> {
    let mfa = facts.mfa?;
    let mut claims = Vec::new();
    if mfa.mfa_enforced_by_policy && mfa.calls_without_mfa > 0 {
        signals.weak.push("calls without MFA although a policy requires it".to_string());
        claims.push(Claim {
            text: format!(
                "{} calls ran without MFA although {} requires it",
                mfa.calls_without_mfa,
                mfa.enforcing_policies.join(", ")
            ),
            evidence: mfa.calls_without_mfa_examples.iter().map(brief_item).collect(),
        });
    }
    if mfa.owner_has_mfa == Some(false) {
        let console = if mfa.owner_has_console_password == Some(true) {
            " and can sign in to the console with a password alone"
        } else {
            ""
        };
        claims.push(Claim {
            text: format!("{} has no MFA device{console}", mfa.user_name.as_deref().unwrap_or("the owner")),
            evidence: Vec::new(),
        });
    }
    if !mfa.users_without_mfa.is_empty() {
        claims.push(Claim {
            text: format!(
                "{} of the account lack MFA: {}",
                crate::report::counted(mfa.users_without_mfa.len(), "user", "users"),
                truncate_list(&mfa.users_without_mfa.iter().map(String::as_str).collect::<Vec<_>>(), 10)
            ),
            evidence: Vec::new(),
        });
    }
    section("MFA gaps", Status::Warning, claims)
}

fn power(facts: &Facts) -> Option<Section> {
    let permissions = facts.permissions?;
    let mut claims = Vec::new();
    if permissions.admin {
        claims.push(Claim {
            text: "the owner is a full administrator".to_string(),
            evidence: Vec::new(),
        });
    }
    if !permissions.escalation_actions.is_empty() {
        let grants: Vec<&str> = permissions.escalation_actions.iter().map(|g| g.grant.as_str()).collect();
        claims.push(Claim {
            text: format!("the owner can escalate privileges: {}", truncate_list(&grants, 8)),
            evidence: Vec::new(),
        });
    }
    if let Some(policy) = &permissions.quarantine_policy {
        claims.push(Claim {
            text: format!("already quarantined by {policy}"),
            evidence: Vec::new(),
        });
    }
    section("Power of the key", Status::Warning, claims)
}

fn pattern(facts: &Facts) -> Option<Section> {
    let activity = facts.activity?;
    if activity.total_calls == 0 {
        return None;
    }
    let describe = |cadence: Cadence| match cadence {
        Cadence::Constant => Some("at a constant rhythm, as from automation"),
        Cadence::Intermittent => Some("intermittently, as from a person or a script run by hand"),
        Cadence::Unknown => None,
    };
    let mut claims = Vec::new();
    if activity.sources.len() > 1 {
        for source in &activity.sources {
            let Some(rhythm) = describe(source.cadence) else { continue };
            let known = if source.new { "new source" } else { "known source" };
            claims.push(Claim {
                text: format!("{} calls from {known} {} arrive {rhythm}", source.count, source.source),
                evidence: Vec::new(),
            });
        }
    } else if let Some(rhythm) = describe(activity.cadence) {
        claims.push(Claim {
            text: format!("calls arrive {rhythm}"),
            evidence: Vec::new(),
        });
    }
    section("Activity pattern", Status::Ok, claims)
}

fn first_detection(facts: &Facts) -> (Option<DateTime<Utc>>, Option<String>) {
    match facts.guardduty {
        Some(g) if g.first_detection.is_some() => (g.first_detection, g.first_detection_source.clone()),
        _ => (None, None),
    }
}

/// Lists the checks beyond the key's own calls that also found nothing, so that a "no
/// evidence" verdict says how far keycheck looked.
fn extra_checks(facts: &Facts) -> Vec<String> {
    let mut checks = Vec::new();
    if let Some(external) = facts.external {
        if external.analyzer_available {
            checks.push(format!(
                "Access Analyzer: {} active findings of resources shared outside the account",
                external.analyzer_findings.len()
            ));
        }
    }
    if let Some(cross) = facts.cross_account {
        checks.push(format!(
            "cross-account: {} role assumptions, {} other accounts reached",
            cross.assumptions.len(),
            cross.other_accounts.len()
        ));
    }
    checks
}

/// Lists the steps that could not run and the parts of evidence the others lacked.
fn blind_spots(reports: &[StepReport]) -> Vec<String> {
    let mut spots = Vec::new();
    for report in reports {
        let step = format!("step {} ({})", report.step.number(), report.step.title());
        if matches!(report.status, Status::NotAvailable | Status::Error) {
            spots.push(format!("{step}: {}", report.summary));
            continue;
        }
        spots.extend(report.gaps.iter().map(|gap| format!("{step}: {gap}")));
    }
    spots
}

fn actions(verdict: Verdict, investigation: &Investigation, facts: &Facts) -> Vec<Action> {
    let mut actions = Vec::new();
    let key = &investigation.key;
    let status = facts.key.and_then(|k| k.record.as_ref()).map(|r| r.status);
    let exposed = investigation.alert.is_some() || facts.findings.is_some_and(|f| !f.health.is_empty());
    let act = verdict != Verdict::NoEvidence || exposed;

    if act && key.kind() == KeyKind::LongTerm && status != Some(KeyStatus::Inactive) {
        actions.push(Action {
            kind: ActionKind::Deactivate,
            text: format!("deactivate {key} now: it stops working at once and can be re-activated if this was a false alarm"),
        });
    }
    let sessions = facts.activity.map(|a| a.minted_sessions.len()).unwrap_or(0);
    if act && key.kind() == KeyKind::Temporary {
        actions.push(Action {
            kind: ActionKind::RevokeSessions,
            text: format!(
                "revoke sessions: {key} is temporary and cannot be deactivated, so deny every session of its role or user issued before now"
            ),
        });
    } else if act && sessions > 0 {
        let minted = if sessions == 1 { "session".to_string() } else { format!("{sessions} sessions") };
        actions.push(Action {
            kind: ActionKind::RevokeSessions,
            text: format!("revoke sessions: deactivating a key does not end the {minted} minted from it"),
        });
    }
    if act && facts.permissions.is_some_and(|p| (p.admin || !p.escalation_actions.is_empty()) && p.quarantine_policy.is_none()) {
        actions.push(Action {
            kind: ActionKind::Quarantine,
            text: "quarantine the owner with AWSCompromisedKeyQuarantineV3: the owner can escalate, so other credentials may already exist".to_string(),
        });
    }
    if act && key.kind() == KeyKind::LongTerm {
        let stored = facts.secrets.map(|s| s.key_locations.len()).unwrap_or(0);
        let mut text = if stored > 0 {
            format!(
                "rotate the key: create a new one, update the {} that {} it, then delete {key}",
                crate::report::counted(stored, "place", "places"),
                if stored == 1 { "stores" } else { "store" }
            )
        } else {
            format!("rotate the key: create a new one for the workloads that use {key}, then delete it")
        };
        let not_searched = facts.secrets.map(|s| s.storage_not_searched.as_slice()).unwrap_or_default();
        if !not_searched.is_empty() {
            text.push_str(&format!(
                ". The search for stored copies could not read {}, so check there by hand first",
                not_searched.join(", ")
            ));
        }
        actions.push(Action { kind: ActionKind::Rotate, text });
    }
    actions.extend(manual_actions(facts));
    if matches!(verdict, Verdict::NoEvidence | Verdict::Inconclusive) {
        let looked_days = facts.activity.map(|a| (a.window_end - a.window_start).num_days()).unwrap_or(0);
        let text = if facts.activity.is_none() {
            "CloudTrail could not be read, so nothing could be judged: fix what is listed as not seen and run again".to_string()
        } else if looked_days >= 7 {
            "nothing correlates: check where the key was exposed and who could have copied it".to_string()
        } else {
            "nothing correlates: re-run with a 7-day window (--window 7d), and check where the key was exposed".to_string()
        };
        actions.push(Action { kind: ActionKind::Manual, text });
    }
    actions
}

/// Returns clean-up actions a human must do: persistence to remove, logging to restore,
/// secrets to rotate.
fn manual_actions(facts: &Facts) -> Vec<Action> {
    let mut actions = Vec::new();
    let calls = facts.calls();
    let succeeded = |tactic: Tactic| -> Vec<&EventBrief> {
        calls
            .iter()
            .copied()
            .filter(|c| c.error_code.is_none() && tactic_of(&c.call) == Some(tactic))
            .collect()
    };

    let persistence = succeeded(Tactic::Persistence);
    if !persistence.is_empty() {
        let made = distinct_changes(&persistence);
        actions.push(Action {
            kind: ActionKind::Manual,
            text: format!("remove what the attacker created: {}", truncate_list(&made.iter().map(String::as_str).collect::<Vec<_>>(), 8)),
        });
    }
    let escalation = succeeded(Tactic::PrivilegeEscalation);
    if !escalation.is_empty() {
        let made = distinct_changes(&escalation);
        actions.push(Action {
            kind: ActionKind::Manual,
            text: format!("revert the permission changes: {}", truncate_list(&made.iter().map(String::as_str).collect::<Vec<_>>(), 8)),
        });
    }
    if !succeeded(Tactic::DefenseEvasion).is_empty() {
        actions.push(Action {
            kind: ActionKind::Manual,
            text: "restore logging and detection that was turned off (StartLogging, flow logs, resolver query logs)".to_string(),
        });
    }
    if let Some(secrets) = facts.secrets {
        if !secrets.distinct_secrets.is_empty() {
            let names: Vec<&str> = secrets.distinct_secrets.iter().map(String::as_str).collect();
            actions.push(Action {
                kind: ActionKind::Manual,
                text: format!("rotate the secrets that were read: {}", truncate_list(&names, 6)),
            });
        }
    }
    if let Some(cross) = facts.cross_account {
        if !cross.other_accounts.is_empty() {
            actions.push(Action {
                kind: ActionKind::Manual,
                text: format!("investigate the other accounts reached: {}", cross.other_accounts.join(", ")),
            });
        }
    }
    actions
}

/// Returns each distinct `call target` of `calls` once, in order of first appearance,
/// with `(×N)` after one that was made N times.
fn distinct_changes(calls: &[&EventBrief]) -> Vec<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for call in calls {
        let change = format!("{} {}", call.call, call.target.as_deref().unwrap_or("")).trim_end().to_string();
        match counts.iter_mut().find(|(seen, _)| *seen == change) {
            Some((_, count)) => *count += 1,
            None => counts.push((change, 1)),
        }
    }
    counts
        .into_iter()
        .map(|(change, count)| if count > 1 { format!("{change} (×{count})") } else { change })
        .collect()
}

fn timeline(facts: &Facts, baseline: Option<DateTime<Utc>>) -> Vec<TimelineEntry> {
    let mut entries: Vec<(DateTime<Utc>, String)> = Vec::new();
    if let Some(guardduty) = facts.guardduty {
        if let (Some(time), Some(source)) = (guardduty.first_detection, &guardduty.first_detection_source) {
            entries.push((time, format!("first detection: {source}")));
        }
    }
    if let Some(activity) = facts.activity {
        for source in activity.sources.iter().filter(|s| s.new) {
            entries.push((source.first, format!("first call from new source {} ({})", source.source, source.location.label())));
        }
        for session in &activity.minted_sessions {
            entries.push((session.time, format!("{} minted {}", session.call, session.key_id)));
        }
        for burst in &activity.denied_bursts {
            entries.push((burst.start, format!("burst of {} denied calls begins", burst.count)));
        }
    }
    if let Some(cross) = facts.cross_account {
        for assumption in cross.assumptions.iter().filter(|a| a.denied) {
            let role = assumption.role_arn.as_deref().unwrap_or("an unrecorded role");
            entries.push((assumption.time, format!("AssumeRole into {role} denied")));
        }
    }
    // Minted sessions and role assumptions have entries of their own above.
    let routine = facts.routine_filter();
    let mut seen = std::collections::HashSet::new();
    for call in facts.calls() {
        let Some(tactic) = tactic_of(&call.call) else { continue };
        let covered = matches!(tactic, Tactic::Discovery | Tactic::TemporaryCredentials | Tactic::RoleAssumption);
        if covered || routine(call) || !seen.insert(call.call.clone()) {
            continue;
        }
        entries.push((call.time, format!("{}: {}", tactic.heading(), crate::playbook::describe_brief(call))));
    }

    entries.sort_by_key(|(time, _)| *time);
    let baseline = baseline.or_else(|| entries.first().map(|(t, _)| *t));
    entries
        .into_iter()
        .take(TIMELINE_ENTRIES)
        .map(|(time, text)| TimelineEntry {
            time,
            offset: baseline.map(|b| offset(time - b)).unwrap_or_default(),
            text,
        })
        .collect()
}

/// Formats an offset from the baseline: `+0m`, `+2h13m`, `-1d4h`.
pub fn offset(delta: Duration) -> String {
    let sign = if delta < Duration::zero() { "-" } else { "+" };
    let minutes = delta.num_minutes().abs();
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if days > 0 {
        format!("{sign}{days}d{hours}h")
    } else if hours > 0 {
        format!("{sign}{hours}h{minutes:02}m")
    } else {
        format!("{sign}{minutes}m")
    }
}

fn section(heading: &str, level: Status, claims: Vec<Claim>) -> Option<Section> {
    if claims.is_empty() {
        return None;
    }
    Some(Section {
        heading: heading.to_string(),
        level,
        claims,
    })
}

fn dedup<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// Joins up to `max` items and counts the rest: `a, b, c and 4 more`.
fn truncate_list(items: &[&str], max: usize) -> String {
    if items.len() <= max {
        return items.join(", ");
    }
    format!("{} and {} more", items[..max].join(", "), items.len() - max)
}

#[cfg(test)]
mod tests;
