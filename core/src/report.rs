//! The reports a playbook step produces: status, findings with their evidence, and the
//! typed data the diagnosis correlates.
//!
//! Reports are plain data. They are serialized for `--format json`, rendered by the
//! templates, and read by `diagnosis`; nothing here calls AWS.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::evidence::{
    AccountInfo, AnalyzerFinding, HealthEvent, KeyLocation, KeyRecord, SecurityFinding,
};
use crate::geo::Location;

/// The ten playbook steps, in playbook order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepId {
    Resolve,
    Key,
    Activity,
    Mfa,
    Permissions,
    Findings,
    Guardduty,
    ExternalAccess,
    CrossAccount,
    Secrets,
}

impl StepId {
    /// Every step, in playbook order.
    pub const ALL: [StepId; 10] = [
        StepId::Resolve,
        StepId::Key,
        StepId::Activity,
        StepId::Mfa,
        StepId::Permissions,
        StepId::Findings,
        StepId::Guardduty,
        StepId::ExternalAccess,
        StepId::CrossAccount,
        StepId::Secrets,
    ];

    /// Returns the step's number in the playbook, 0 to 9.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// Returns the step's title as shown to responders.
    pub fn title(self) -> &'static str {
        match self {
            StepId::Resolve => "Account and key type",
            StepId::Key => "Key status and owner",
            StepId::Activity => "API activity",
            StepId::Mfa => "MFA",
            StepId::Permissions => "Permissions",
            StepId::Findings => "Security Hub and GuardDuty findings",
            StepId::Guardduty => "Credential-compromise detections",
            StepId::ExternalAccess => "External access",
            StepId::CrossAccount => "Role assumption and cross-account moves",
            StepId::Secrets => "Secrets read and key storage",
        }
    }

    /// Returns the step's short name, as used in logs, metrics and configuration.
    pub fn name(self) -> &'static str {
        match self {
            StepId::Resolve => "resolve",
            StepId::Key => "key",
            StepId::Activity => "activity",
            StepId::Mfa => "mfa",
            StepId::Permissions => "permissions",
            StepId::Findings => "findings",
            StepId::Guardduty => "guardduty",
            StepId::ExternalAccess => "external_access",
            StepId::CrossAccount => "cross_account",
            StepId::Secrets => "secrets",
        }
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A step's overall result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The step looked and found nothing of concern.
    Ok,
    /// Something a responder should look at.
    Warning,
    /// Evidence of compromise or of dangerous power.
    Critical,
    /// The evidence this step needs is not available (for example, absent from the snapshot).
    NotAvailable,
    /// The step failed; `StepReport::failure` names the AWS operation and permission.
    Error,
}

/// Returns `count` with the noun in the form it needs: `1 user`, `3 users`.
pub fn counted(count: usize, singular: &str, plural: &str) -> String {
    if count == 1 {
        format!("1 {singular}")
    } else {
        format!("{count} {plural}")
    }
}

impl Status {
    /// Returns the most severe of `levels` for a step's status, leaving out
    /// `NotAvailable`: a source the step could not check does not outrank what it found in
    /// the others. Returns `Ok` when nothing else is left.
    pub fn of_findings(levels: impl IntoIterator<Item = Status>) -> Status {
        levels
            .into_iter()
            .filter(|level| *level != Status::NotAvailable)
            .max()
            .unwrap_or(Status::Ok)
    }

    /// Returns the rank of a finding at this level in a step's list, most severe first,
    /// with `NotAvailable` last: what could not be checked comes after what was found.
    pub fn finding_rank(self) -> u8 {
        match self {
            Status::Error => 0,
            Status::Critical => 1,
            Status::Warning => 2,
            Status::Ok => 3,
            Status::NotAvailable => 4,
        }
    }

    /// Returns the status as a lowercase word for display.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::NotAvailable => "not available",
            Status::Error => "error",
        }
    }
}

/// One claim a step makes, with the evidence behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Seriousness of the claim: `Ok` for neutral facts, `Warning` or `Critical` otherwise.
    pub level: Status,
    /// The claim in one line.
    pub text: String,
    /// The records that support the claim, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<EvidenceItem>,
}

impl Finding {
    /// Creates a finding with no evidence attached yet.
    pub fn new(level: Status, text: impl Into<String>) -> Finding {
        Finding {
            level,
            text: text.into(),
            evidence: Vec::new(),
        }
    }

    /// Attaches evidence items to the finding.
    pub fn with_evidence(mut self, evidence: impl IntoIterator<Item = EvidenceItem>) -> Finding {
        self.evidence.extend(evidence);
        self
    }
}

/// A record that supports a finding: usually one CloudTrail event, sometimes a finding or
/// an IAM record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceItem {
    /// When the recorded thing happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    /// The CloudTrail event ID, GuardDuty finding ID or other record ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The record's content in one line.
    pub text: String,
}

/// Why a step could not finish: the AWS operation that failed and the IAM permission it
/// needed, so the responder can fix the role and run again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFailure {
    /// The AWS operation, such as `iam:GetAccessKeyLastUsed`, or `timeout` when the step ran out of time.
    pub operation: String,
    /// The IAM permission the operation needs, when one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    /// The error in one line.
    pub message: String,
}

/// The result of one playbook step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The step reported on.
    pub step: StepId,
    /// The step's overall result.
    pub status: Status,
    /// One-line answer to the step's question.
    pub summary: String,
    /// The claims behind the summary, most serious first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The failure, when `status` is `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<StepFailure>,
    /// Parts of the step's evidence that were not available, so that a step that still
    /// answered can say what it could not see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<String>,
    /// Typed results for the diagnosis.
    pub data: StepData,
    /// Wall time the step took, in milliseconds.
    pub duration_ms: u64,
}

impl StepReport {
    /// Creates a report with the given status and summary and no findings.
    pub fn new(step: StepId, status: Status, summary: impl Into<String>, data: StepData) -> Self {
        StepReport {
            step,
            status,
            summary: summary.into(),
            findings: Vec::new(),
            failure: None,
            gaps: Vec::new(),
            data,
            duration_ms: 0,
        }
    }

    /// Creates the report of a step whose evidence is missing.
    pub fn not_available(step: StepId, reason: impl Into<String>) -> Self {
        StepReport::new(step, Status::NotAvailable, reason, StepData::None)
    }

    /// Creates the report of a step that failed.
    pub fn failed(step: StepId, failure: StepFailure) -> Self {
        let summary = match &failure.permission {
            Some(permission) => format!("{} (needs {permission})", failure.message),
            None => failure.message.clone(),
        };
        StepReport {
            failure: Some(failure),
            ..StepReport::new(step, Status::Error, summary, StepData::None)
        }
    }

    /// Returns the most serious level among the findings, or `Ok` when there are none.
    pub fn worst_finding_level(&self) -> Status {
        self.findings
            .iter()
            .map(|f| f.level)
            .filter(|level| matches!(level, Status::Warning | Status::Critical))
            .max()
            .unwrap_or(Status::Ok)
    }
}

/// Typed results of each step, for the diagnosis and for machine-readable output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepData {
    /// The step produced no typed data (failed or not available).
    None,
    Resolve(AccountInfo),
    Key(KeyFacts),
    Activity(ActivityFacts),
    Mfa(MfaFacts),
    Permissions(PermissionFacts),
    Findings(FindingFacts),
    Guardduty(GuardDutyFacts),
    ExternalAccess(ExternalAccessFacts),
    CrossAccount(CrossAccountFacts),
    Secrets(SecretFacts),
}

/// Step 1: whether the key exists, its owner and status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyFacts {
    /// The key's IAM record, when one was found.
    pub record: Option<KeyRecord>,
    /// The principal that used the key, from CloudTrail (user or role session ARN).
    pub principal_arn: Option<String>,
    /// The IAM user that owns the key, or the user or role whose session it is.
    pub owner_name: Option<String>,
    /// For a temporary key: the call that minted it and the key that made that call.
    pub minted_by: Option<MintedSession>,
    /// The owner's other access keys.
    pub other_keys: Vec<KeyRecord>,
}

/// A temporary key minted by a call (AssumeRole, GetSessionToken, GetFederationToken, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintedSession {
    /// The temporary key ID returned by the call.
    pub key_id: String,
    /// The minting call, such as `sts:AssumeRole`.
    pub call: String,
    /// When the call was made.
    pub time: DateTime<Utc>,
    /// The key that made the call.
    pub parent_key_id: Option<String>,
    /// The role assumed, for AssumeRole calls.
    pub role_arn: Option<String>,
    /// The CloudTrail event ID of the minting call.
    pub event_id: Option<String>,
}

/// A count of calls of one API operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCount {
    /// The call as `service:Operation`, such as `iam:CreateUser`.
    pub call: String,
    /// Number of calls in the window.
    pub count: usize,
    /// Number of those calls that failed with an error.
    pub errors: usize,
    /// Number of those calls that were denied.
    pub denied: usize,
    /// First call in the window.
    pub first: DateTime<Utc>,
    /// Last call in the window.
    pub last: DateTime<Utc>,
    /// True when the key made no such call before the window.
    pub new: bool,
}

/// Calls from one source address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceCount {
    /// The source address as CloudTrail recorded it.
    pub source: String,
    /// Location of the source: country, network owner, AWS network or service.
    pub location: Location,
    /// Number of calls from this source in the window.
    pub count: usize,
    /// First call from this source in the window.
    pub first: DateTime<Utc>,
    /// True when the key was not used from this source before the window.
    pub new: bool,
    /// Spacing of this source's calls.
    pub cadence: Cadence,
}

/// A value (user agent, region, country) with the number of calls that carried it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueCount {
    /// The value.
    pub value: String,
    /// Number of calls in the window.
    pub count: usize,
    /// True when the value was not seen for this key before the window.
    pub new: bool,
}

/// Regularity of the spacing between the key's calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Calls arrive at regular intervals, as from a scheduled job or a service.
    Constant,
    /// Calls arrive in bursts with gaps, as from a person at a keyboard or a script run by hand.
    Intermittent,
    /// Too few calls to tell.
    Unknown,
}

/// One CloudTrail event, reduced to what a responder reads in a timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBrief {
    /// When the call was made.
    pub time: DateTime<Utc>,
    /// The call as `service:Operation`.
    pub call: String,
    /// The source address as recorded.
    pub source: Option<String>,
    /// The AWS region the call went to.
    pub region: Option<String>,
    /// The error code when the call failed.
    pub error_code: Option<String>,
    /// The access key that made the call.
    pub key_id: Option<String>,
    /// The CloudTrail event ID.
    pub event_id: Option<String>,
    /// The request parameter that names what the call acted on (user created, secret read, role assumed, …).
    pub target: Option<String>,
}

/// A run of denied calls close together, typical of permission enumeration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedBurst {
    /// First denied call of the burst.
    pub start: DateTime<Utc>,
    /// Last denied call of the burst.
    pub end: DateTime<Utc>,
    /// Number of denied calls.
    pub count: usize,
    /// The calls denied, with counts, most frequent first.
    pub calls: Vec<(String, usize)>,
    /// The access keys that made the calls: the investigated key, sessions minted from it, or both.
    pub keys: Vec<String>,
}

/// Step 2: what the key called, from where, and what is new.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityFacts {
    /// Start of the investigated window.
    pub window_start: DateTime<Utc>,
    /// End of the investigated window.
    pub window_end: DateTime<Utc>,
    /// Whether the evidence held any of the key's activity before the window, which is what
    /// "new" is measured against.
    pub history_available: bool,
    /// Start of the history that "new" is measured against, when there is any.
    pub history_start: Option<DateTime<Utc>>,
    /// Calls the key made in the window.
    pub total_calls: usize,
    /// Calls in the window that failed.
    pub failed_calls: usize,
    /// Calls in the window that were denied.
    pub denied_calls: usize,
    /// Calls grouped by operation, most frequent first.
    pub calls: Vec<CallCount>,
    /// Calls grouped by source address, most frequent first.
    pub sources: Vec<SourceCount>,
    /// Countries or networks the calls came from.
    pub countries: Vec<ValueCount>,
    /// User agents, most frequent first.
    pub user_agents: Vec<ValueCount>,
    /// AWS regions called, most frequent first.
    pub regions: Vec<ValueCount>,
    /// Spacing of the calls.
    pub cadence: Cadence,
    /// Median gap between consecutive calls, in seconds.
    pub median_gap_seconds: Option<f64>,
    /// Every call in the window, oldest first (renderers truncate).
    pub timeline: Vec<EventBrief>,
    /// Runs of denied calls.
    pub denied_bursts: Vec<DeniedBurst>,
    /// Temporary keys minted by this key in the window.
    pub minted_sessions: Vec<MintedSession>,
    /// Calls made with the minted temporary keys.
    pub session_calls: Vec<EventBrief>,
    /// Whether geolocation data was available.
    pub geolocation: String,
    /// Records the readers skipped as unreadable.
    pub skipped_records: usize,
}

/// Step 3: MFA of the owner and of the account's users.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaFacts {
    /// The owner, when it is an IAM user.
    pub user_name: Option<String>,
    /// Whether the owner has an MFA device; `None` when unknown.
    pub owner_has_mfa: Option<bool>,
    /// Whether the owner has a console password; `None` when unknown.
    pub owner_has_console_password: Option<bool>,
    /// Whether the owner's policies were read, so that `mfa_enforced_by_policy` means something.
    pub policies_read: bool,
    /// Whether a policy of the owner denies actions without MFA.
    pub mfa_enforced_by_policy: bool,
    /// The policies that enforce MFA.
    pub enforcing_policies: Vec<String>,
    /// True when MFA is enforced only in a form that requests signed with a long-term key
    /// escape (`Bool` rather than `BoolIfExists`), so the leaked key is not stopped by it.
    pub enforcement_misses_long_term_keys: bool,
    /// Users of the account with a console password or an active key but no MFA.
    pub users_without_mfa: Vec<String>,
    /// Whether the credential report was available.
    pub credential_report_available: bool,
    /// Calls of the key that CloudTrail records as made without MFA.
    pub calls_without_mfa: usize,
    /// Examples of such calls.
    pub calls_without_mfa_examples: Vec<EventBrief>,
}

/// One policy statement keycheck considers dangerous, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskyGrant {
    /// The policy that grants it.
    pub policy: String,
    /// The grant, such as `iam:CreateAccessKey on *`.
    pub grant: String,
    /// Why it matters.
    pub reason: String,
}

/// Step 4: what the owner can do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionFacts {
    /// The principal whose policies were read.
    pub principal: Option<String>,
    /// Every policy that applies, as `name (how attached)`.
    pub policies: Vec<String>,
    /// True when some policy allows every action on every resource.
    pub admin: bool,
    /// Statements with wildcard actions.
    pub wildcard_grants: Vec<RiskyGrant>,
    /// Privilege-escalation actions the principal is allowed.
    pub escalation_actions: Vec<RiskyGrant>,
    /// The AWS quarantine policy attached, if any.
    pub quarantine_policy: Option<String>,
    /// Policies whose documents were not available, so the analysis is partial.
    pub unreadable_policies: Vec<String>,
}

/// Step 5: findings that name the key or its owner.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingFacts {
    /// Security Hub findings.
    pub security_hub: Vec<SecurityFinding>,
    /// GuardDuty findings.
    pub guardduty: Vec<SecurityFinding>,
    /// AWS Health events such as `AWS_RISK_CREDENTIALS_EXPOSED`.
    pub health: Vec<HealthEvent>,
    /// Sources that could not be read, with the reason.
    pub unavailable: Vec<String>,
}

/// Step 6: GuardDuty's credential-compromise detections.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardDutyFacts {
    /// Findings whose type is a credential-compromise type.
    pub credential_findings: Vec<SecurityFinding>,
    /// Earliest detection among GuardDuty findings, Health events and the alert.
    pub first_detection: Option<DateTime<Utc>>,
    /// Source of the first detection.
    pub first_detection_source: Option<String>,
}

/// Step 7: access granted to principals outside the account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalAccessFacts {
    /// Active IAM Access Analyzer findings.
    pub analyzer_findings: Vec<AnalyzerFinding>,
    /// Calls of the key that shared a resource or opened access to outside principals.
    pub grants: Vec<EventBrief>,
    /// Whether Access Analyzer findings were available.
    pub analyzer_available: bool,
}

/// One role assumption made with the key or a session minted from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleAssumption {
    /// When the call was made.
    pub time: DateTime<Utc>,
    /// The role ARN requested, when recorded.
    pub role_arn: Option<String>,
    /// The account that owns the role.
    pub target_account: Option<String>,
    /// True when the role is in another account than the caller.
    pub cross_account: bool,
    /// True when the call was denied.
    pub denied: bool,
    /// The error code of a failed call.
    pub error_code: Option<String>,
    /// The key that made the call.
    pub caller_key_id: Option<String>,
    /// The temporary key the call returned.
    pub minted_key_id: Option<String>,
    /// The CloudTrail event ID.
    pub event_id: Option<String>,
}

/// Step 8: role assumptions and moves into other accounts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossAccountFacts {
    /// Every AssumeRole call by the key or its sessions, oldest first.
    pub assumptions: Vec<RoleAssumption>,
    /// True when a session minted from the key assumed another role (role chaining).
    pub chained: bool,
    /// Accounts other than the key's own that were reached or attempted.
    pub other_accounts: Vec<String>,
}

/// Step 9: secrets and parameters read, and where the key itself is stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretFacts {
    /// Secret and parameter reads by the key or its sessions, oldest first.
    pub reads: Vec<EventBrief>,
    /// Distinct secrets and parameters read.
    pub distinct_secrets: Vec<String>,
    /// Places that store the key (secrets, parameters, workload environments).
    pub key_locations: Vec<KeyLocation>,
    /// Whether the key-storage search ran.
    pub storage_search_available: bool,
    /// The sources the key-storage search could not read, such as
    /// `secretsmanager:ListSecrets for us-east-1`, which may still store a copy of the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_not_searched: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn unchecked_source_does_not_outrank_findings() {
        let levels = [Status::NotAvailable, Status::Critical, Status::Ok];
        assert_eq!(Status::of_findings(levels), Status::Critical);
        assert_eq!(Status::of_findings([Status::NotAvailable]), Status::Ok);
        assert_eq!(Status::of_findings([]), Status::Ok);
    }

    #[test]
    fn unchecked_findings_listed_last() {
        let mut levels = vec![Status::NotAvailable, Status::Ok, Status::Critical, Status::Warning];
        levels.sort_by_key(|level| level.finding_rank());
        assert_eq!(levels, [Status::Critical, Status::Warning, Status::Ok, Status::NotAvailable]);
    }
}
