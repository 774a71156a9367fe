//! The one interface the playbook reads AWS through, and the records it returns.
//!
//! Two implementations exist: `snapshot` reads a folder of exported JSON (or the built-in
//! demonstration incident), and `live` calls AWS. The playbook does not depend on which
//! one it runs on. Only this module and `remediation` construct AWS clients.

pub mod events;
pub mod live;
pub mod snapshot;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::key::AccessKeyId;

pub use events::{EventQuery, EventSet, Window};

/// How the playbook reads evidence about a key.
///
/// Every method may fail with `EvidenceError::NotAvailable` when the source does not hold
/// that kind of evidence (a snapshot without findings, say); steps report that instead of
/// guessing.
#[async_trait]
pub trait Evidence: Send + Sync {
    /// Describes the source for reports, such as `snapshot ./incident-42` or `live, account 111122223333`.
    fn describe(&self) -> String;

    /// Returns the account that owns the key and how that was established.
    async fn resolve_account(&self, key: &AccessKeyId) -> Result<AccountInfo, EvidenceError>;

    /// Returns the IAM record of a long-term key, or `None` when no such key exists.
    async fn access_key(&self, key: &AccessKeyId) -> Result<Option<KeyRecord>, EvidenceError>;

    /// Returns the name of the IAM user that owns a long-term key, or `None` when no such
    /// key exists. The playbook starts reading the owner's user record as soon as this
    /// returns. The default reads the whole record with `access_key`, so a source that can
    /// name the owner sooner should override it, as live IAM does with one call fewer.
    async fn access_key_owner(&self, key: &AccessKeyId) -> Result<Option<String>, EvidenceError> {
        Ok(self.access_key(key).await?.map(|record| record.user_name))
    }

    /// Returns an IAM user with MFA devices, console password, groups, policies and keys.
    async fn user(&self, user_name: &str) -> Result<Option<UserRecord>, EvidenceError>;

    /// Returns the IAM credential report of the account.
    async fn credential_report(&self) -> Result<Vec<CredentialReportRow>, EvidenceError>;

    /// Returns the CloudTrail events of the key, its owner and the sessions minted from the
    /// key. The playbook calls this once per investigation.
    async fn events(&self, query: &EventQuery) -> Result<EventSet, EvidenceError>;

    /// Returns Security Hub findings that name the subject, with the regions or filters
    /// that could not be searched. Fails only when none could.
    async fn security_hub_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError>;

    /// Returns GuardDuty findings that name the subject, with the regions or filters that
    /// could not be searched. Fails only when none could.
    async fn guardduty_findings(&self, subject: &Subject) -> Result<Search<SecurityFinding>, EvidenceError>;

    /// Returns AWS Health events that name the subject, such as `AWS_RISK_CREDENTIALS_EXPOSED`.
    async fn health_events(&self, subject: &Subject) -> Result<Vec<HealthEvent>, EvidenceError>;

    /// Returns active IAM Access Analyzer findings of the account, with the regions that
    /// could not be searched. Fails only when none could.
    async fn access_analyzer_findings(&self, subject: &Subject) -> Result<Search<AnalyzerFinding>, EvidenceError>;

    /// Returns the places that store the key (secrets, parameters, workload environments),
    /// with the services or regions that could not be searched. Fails only when none could.
    async fn key_locations(&self, subject: &Subject) -> Result<KeyLocationSearch, EvidenceError>;
}

/// The result of a search over several sources (regions, services, request filters): the
/// items found and the sources it could not search. A finding or stored copy of the key in
/// a failed source is missing from `found`, so a report built on it must name those sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Search<T> {
    /// The items returned by the sources that responded.
    pub found: Vec<T>,
    /// One error for each source that could not be searched, naming the operation and the
    /// IAM permission it needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<EvidenceError>,
}

impl<T> Search<T> {
    /// Creates the result of a search in which every source responded.
    pub fn complete(found: Vec<T>) -> Search<T> {
        Search {
            found,
            failures: Vec::new(),
        }
    }

    /// Returns true when every source responded.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The stored copies of the key that a search found, with the sources it could not search.
pub type KeyLocationSearch = Search<KeyLocation>;

/// What an investigation is about, as far as it is known when a step runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The access key under investigation.
    pub key: AccessKeyId,
    /// The account that owns the key.
    pub account_id: Option<String>,
    /// The IAM user that owns the key, or the role of a temporary key.
    pub owner_name: Option<String>,
    /// The owner's ARN.
    pub owner_arn: Option<String>,
}

/// A failure to read evidence. `keycheck-evidence.json` stores it for each source of a
/// search that failed during a collection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum EvidenceError {
    /// The source does not hold this kind of evidence.
    #[error("{what} is not available: {hint}")]
    NotAvailable { what: String, hint: String },
    /// An AWS call failed.
    #[error("{operation} failed for {target}: {reason} (needs {permission})")]
    Aws {
        /// The operation as `service:Operation`, such as `iam:ListAccessKeys`.
        operation: String,
        /// The IAM permission the operation needs.
        permission: String,
        /// The value the call was about.
        target: String,
        /// What went wrong.
        kind: AwsErrorKind,
        /// The error in one line.
        reason: String,
    },
    /// A snapshot file could not be read or parsed.
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
}

/// The class of an AWS failure, which decides the message and whether a retry helps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsErrorKind {
    AccessDenied,
    Throttled,
    Timeout,
    NotFound,
    NotEnabled,
    Other,
}

/// How the account that owns a key was established.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountSource {
    /// `sts:GetAccessKeyInfo` returned it.
    Sts,
    /// Decoded from the key ID offline.
    KeyDecoding,
    /// Read from the snapshot's records (key records or CloudTrail events).
    Snapshot,
    /// Not established.
    Unknown,
}

/// Step 0's answer: the account that owns the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The 12-digit account ID.
    pub account_id: Option<String>,
    /// How the account was established.
    pub source: AccountSource,
    /// The account decoded from the key ID, when the key ID is base32.
    pub decoded_account_id: Option<String>,
    /// Whether keycheck has credentials for that account (a configured role, or the
    /// snapshot's own account).
    pub credentials_available: bool,
    /// How keycheck reaches the account, such as `role arn:aws:iam::…:role/keycheck` or `snapshot`.
    pub access: Option<String>,
    /// Anything the responder should know, such as a decoding that disagrees with STS.
    pub note: Option<String>,
}

/// Whether an access key is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    Active,
    Inactive,
    /// Expired (a temporary key) or deleted.
    Gone,
    Unknown,
}

/// When and where a key was last used, as IAM records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastUsed {
    /// When the key was last used.
    pub date: Option<DateTime<Utc>>,
    /// The service it was last used with, such as `s3`.
    pub service: Option<String>,
    /// The region it was last used in.
    pub region: Option<String>,
}

/// An access key's IAM record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The access key ID.
    pub key_id: String,
    /// The IAM user that owns the key.
    pub user_name: String,
    /// Active or inactive.
    pub status: KeyStatus,
    /// When the key was created.
    pub created: Option<DateTime<Utc>>,
    /// When and where the key was last used.
    pub last_used: Option<LastUsed>,
}

/// An MFA device of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaDevice {
    /// The device serial number or ARN.
    pub serial: String,
    /// When the device was enabled.
    pub enabled: Option<DateTime<Utc>>,
}

/// How a policy applies to a principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicyAttachment {
    /// An inline policy of the principal.
    Inline,
    /// A managed policy attached to the principal.
    Managed,
    /// An inline policy of a group the user belongs to.
    GroupInline { group: String },
    /// A managed policy attached to a group the user belongs to.
    GroupManaged { group: String },
    /// The permissions boundary.
    Boundary,
}

/// A policy that applies to a principal, with its document when available.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// The policy name.
    pub name: String,
    /// The policy ARN, for managed policies.
    pub arn: Option<String>,
    /// How the policy applies.
    pub attachment: PolicyAttachment,
    /// The policy document (decoded JSON), when available.
    pub document: Option<serde_json::Value>,
}

impl PolicyRecord {
    /// Returns true for policies that AWS manages (`arn:aws:iam::aws:policy/…`).
    pub fn is_aws_managed(&self) -> bool {
        self.arn
            .as_deref()
            .is_some_and(|arn| arn.contains(":iam::aws:policy/"))
    }

    /// Returns the policy name with how it is attached, for display.
    pub fn display_name(&self) -> String {
        match &self.attachment {
            PolicyAttachment::Inline => format!("{} (inline)", self.name),
            PolicyAttachment::Managed if self.is_aws_managed() => {
                format!("{} (AWS managed)", self.name)
            }
            PolicyAttachment::Managed => format!("{} (managed)", self.name),
            PolicyAttachment::GroupInline { group } => {
                format!("{} (inline, group {group})", self.name)
            }
            PolicyAttachment::GroupManaged { group } => format!("{} (group {group})", self.name),
            PolicyAttachment::Boundary => format!("{} (permissions boundary)", self.name),
        }
    }
}

/// An IAM user with what the playbook needs about it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The user name.
    pub user_name: String,
    /// The user's ARN.
    pub arn: Option<String>,
    /// The user's unique ID (`AIDA…`).
    pub user_id: Option<String>,
    /// When the user was created.
    pub created: Option<DateTime<Utc>>,
    /// Whether the user has a console password; `None` when unknown.
    pub console_password: Option<bool>,
    /// The user's MFA devices; `None` when unknown.
    pub mfa_devices: Option<Vec<MfaDevice>>,
    /// Groups the user belongs to.
    pub groups: Vec<String>,
    /// Every policy that applies to the user, including group policies.
    pub policies: Vec<PolicyRecord>,
    /// The user's access keys.
    pub access_keys: Vec<KeyRecord>,
    /// The user's tags.
    pub tags: Vec<(String, String)>,
}

/// One row of the IAM credential report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialReportRow {
    /// The user name (`<root_account>` for the root user).
    pub user: String,
    /// The user's ARN.
    pub arn: Option<String>,
    /// Whether the user has a console password.
    pub password_enabled: Option<bool>,
    /// Whether the user has an MFA device.
    pub mfa_active: Option<bool>,
    /// Whether the first access key is active.
    pub access_key_1_active: Option<bool>,
    /// Whether the second access key is active.
    pub access_key_2_active: Option<bool>,
}

/// Which service produced a security finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FindingSource {
    GuardDuty,
    SecurityHub,
}

/// A GuardDuty or Security Hub finding, normalised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityFinding {
    /// GuardDuty or Security Hub.
    pub source: FindingSource,
    /// The finding ID.
    pub id: String,
    /// The finding type, such as `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS`.
    pub finding_type: String,
    /// The finding title.
    pub title: String,
    /// Severity label (LOW, MEDIUM, HIGH, CRITICAL) or GuardDuty's score band.
    pub severity: String,
    /// When the activity was first seen, or the finding created.
    pub first_seen: Option<DateTime<Utc>>,
    /// When the activity was last seen, or the finding updated.
    pub last_seen: Option<DateTime<Utc>>,
    /// The account the finding is about.
    pub account_id: Option<String>,
    /// The region the finding is from.
    pub region: Option<String>,
    /// Access key IDs the finding names.
    pub key_ids: Vec<String>,
    /// IAM user or principal names the finding names.
    pub user_names: Vec<String>,
    /// Remote IP addresses the finding names.
    pub source_ips: Vec<String>,
    /// The API call the finding is about, when it names one.
    pub api_call: Option<String>,
}

impl SecurityFinding {
    /// Returns true when the finding names the key or, where no key is named, the owner.
    pub fn names(&self, subject: &Subject) -> bool {
        if self.key_ids.iter().any(|k| k == subject.key.as_str()) {
            return true;
        }
        let Some(owner) = subject.owner_name.as_deref() else {
            return false;
        };
        self.key_ids.is_empty() && self.user_names.iter().any(|u| u == owner)
    }
}

/// An AWS Health event, such as `AWS_RISK_CREDENTIALS_EXPOSED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthEvent {
    /// The event type code.
    pub event_type_code: String,
    /// The event ARN.
    pub arn: Option<String>,
    /// When the event started.
    pub start_time: Option<DateTime<Utc>>,
    /// The account the event is about.
    pub account_id: Option<String>,
    /// Affected entities, such as access key IDs.
    pub affected_entities: Vec<String>,
    /// The first line of the event description.
    pub description: Option<String>,
}

/// An IAM Access Analyzer finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzerFinding {
    /// The finding ID.
    pub id: String,
    /// The resource shared, such as an S3 bucket ARN.
    pub resource: String,
    /// The resource type, such as `AWS::S3::Bucket`.
    pub resource_type: String,
    /// The external principal granted access, as text.
    pub principal: Option<String>,
    /// True when the resource is public.
    pub is_public: bool,
    /// Actions granted.
    pub actions: Vec<String>,
    /// Finding status (ACTIVE, ARCHIVED, RESOLVED).
    pub status: String,
    /// When the finding was created.
    pub created: Option<DateTime<Utc>>,
}

/// Where a copy of the key is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocationKind {
    SecretsManagerSecret,
    SsmParameter,
    LambdaEnvironment,
    CodeBuildEnvironment,
    EcsTaskDefinition,
}

/// A place that stores the key, so that rotation does not break a workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLocation {
    /// What kind of place.
    pub kind: KeyLocationKind,
    /// Its name or ARN.
    pub name: String,
    /// What matched: name, description, tag, or an environment variable (named, never its value).
    pub matched_by: String,
    /// Reads of this secret or parameter found in CloudTrail, oldest first.
    pub readers: Vec<String>,
}
