//! Containment of a leaked key: deactivate it, rotate it, revoke the sessions issued with
//! it, or quarantine its owner, and check after a deactivation whether anything still uses
//! the key.
//!
//! Each action has a module with two halves. The plan reads IAM and computes what will
//! change, through a pure function that tests feed literals. The plan is what an approver
//! is shown and what `keycheck contain --dry-run` prints, and it serializes to JSON so that a
//! pending action can store it. The execution reads the state again right before it acts,
//! because it may have changed since the plan, and returns an [`Outcome`] with the AWS
//! request ID of every change. Approval, the store and chat are not this module's business:
//! callers decide whether a plan may run.
//!
//! Rotation creates a secret access key. That secret goes to Secrets Manager and nowhere
//! else: no plan, outcome, error or log line contains it (see `secret`).
//!
//! AWS is reached through the same clients as the live evidence source: keycheck's own
//! credentials, or the role configured for the key's account, assumed under the session
//! name `keycheck-<investigation id>`.

mod config;
mod error;
mod iam;
mod secret;
mod target;

pub mod deactivate;
pub mod post_check;
pub mod quarantine;
pub mod revoke;
pub mod rotate;

use std::sync::Arc;

use aws_credential_types::Credentials;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use config::{
    CONFIG_TABLE, ContainConfig, ContainConfigError, DEFAULT_QUARANTINE_POLICY_ARN,
    DEFAULT_REVOKE_POLICY_NAME, DEFAULT_SECRET_NAME, SECRET_NAME_PLACEHOLDERS,
};
pub use deactivate::DeactivatePlan;
pub use error::{AwsFailure, NewKeyCleanup, RemediationError};
pub use iam::KeyState;
pub use post_check::{PostCheckReport, PostCheckVerdict, check_after_deactivation};
pub use quarantine::QuarantinePlan;
pub use revoke::{RevokePlan, RevokedPrincipal};
pub use rotate::RotatePlan;
pub use target::{MAX_SESSION_LIFETIME, Principal, PrincipalKind, Target, TargetSession};

use crate::approval::ActionKind;
use crate::evidence::live::clients::{Access, BaseSource, Clients, static_config};
use crate::evidence::live::{AwsCallStats, LiveConfig};
use crate::key::AccessKeyId;

/// The changes a containment action will make, computed from IAM before approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Plan {
    Deactivate(DeactivatePlan),
    Rotate(RotatePlan),
    RevokeSessions(RevokePlan),
    Quarantine(QuarantinePlan),
}

impl Plan {
    /// Returns the kind of action.
    pub fn kind(&self) -> ActionKind {
        match self {
            Plan::Deactivate(_) => ActionKind::Deactivate,
            Plan::Rotate(_) => ActionKind::Rotate,
            Plan::RevokeSessions(_) => ActionKind::RevokeSessions,
            Plan::Quarantine(_) => ActionKind::Quarantine,
        }
    }

    /// Returns the access key the action is about.
    pub fn key_id(&self) -> &AccessKeyId {
        match self {
            Plan::Deactivate(plan) => &plan.key_id,
            Plan::Rotate(plan) => &plan.key_id,
            Plan::RevokeSessions(plan) => &plan.key_id,
            Plan::Quarantine(plan) => &plan.key_id,
        }
    }

    /// Returns the investigation the action belongs to.
    pub fn investigation_id(&self) -> &str {
        match self {
            Plan::Deactivate(plan) => &plan.investigation_id,
            Plan::Rotate(plan) => &plan.investigation_id,
            Plan::RevokeSessions(plan) => &plan.investigation_id,
            Plan::Quarantine(plan) => &plan.investigation_id,
        }
    }

    /// Returns the principals the action changes, as ARNs joined by `, `, for the pending
    /// action's `principal` column.
    pub fn principal(&self) -> String {
        match self {
            Plan::Deactivate(plan) => plan.user().arn(),
            Plan::Rotate(plan) => plan.user().arn(),
            Plan::RevokeSessions(plan) => plan
                .principals
                .iter()
                .map(|revoked| revoked.principal.arn())
                .collect::<Vec<_>>()
                .join(", "),
            Plan::Quarantine(plan) => plan.principal.arn(),
        }
    }

    /// Returns whether executing the plan would change nothing, such as deactivating a key
    /// that is already inactive.
    pub fn changes_nothing(&self) -> bool {
        match self {
            Plan::Deactivate(plan) => plan.is_already_inactive(),
            Plan::Quarantine(plan) => plan.already_attached,
            Plan::Rotate(_) | Plan::RevokeSessions(_) => false,
        }
    }

    /// Describes the plan for an approver, one sentence a line.
    pub fn describe(&self) -> Vec<String> {
        match self {
            Plan::Deactivate(plan) => plan.describe(),
            Plan::Rotate(plan) => plan.describe(),
            Plan::RevokeSessions(plan) => plan.describe(),
            Plan::Quarantine(plan) => plan.describe(),
        }
    }

    /// Serializes the plan for a pending action's `plan` column.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .expect("a plan serializes, because it contains only strings, times and lists")
    }

    /// Reads a plan that [`Plan::to_json`] wrote.
    ///
    /// Fails when `text` is not such a plan, such as one written by a newer keycheck.
    pub fn from_json(text: &str) -> Result<Plan, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// One change made in AWS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The operation that made it, as `service:Operation`, such as `iam:UpdateAccessKey`.
    pub operation: String,
    /// The change in one sentence.
    pub description: String,
    /// The request ID AWS returned for the call.
    pub request_id: Option<String>,
    /// When the call returned.
    pub at: DateTime<Utc>,
}

/// The result of an executed action. It never contains a secret access key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub kind: ActionKind,
    pub key_id: AccessKeyId,
    pub investigation_id: String,
    /// The changes made, in order.
    pub changes: Vec<Change>,
    /// Things found already done, or skipped, such as `already inactive`.
    pub notes: Vec<String>,
    /// For a rotation: the new access key ID.
    pub new_key_id: Option<String>,
    /// For a rotation: the ARN of the secret that contains the new key.
    pub secret_arn: Option<String>,
    /// When the key under investigation became inactive through this action, which is
    /// where the post-deactivation check starts looking.
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl Outcome {
    fn new(kind: ActionKind, key_id: &AccessKeyId, investigation_id: &str) -> Outcome {
        Outcome {
            kind,
            key_id: key_id.clone(),
            investigation_id: investigation_id.to_string(),
            changes: Vec::new(),
            notes: Vec::new(),
            new_key_id: None,
            secret_arn: None,
            deactivated_at: None,
        }
    }

    /// Returns the request IDs of the changes, joined by `, `, for the audit log; `None`
    /// when nothing changed or AWS returned no ID.
    pub fn request_ids(&self) -> Option<String> {
        let ids: Vec<&str> = self
            .changes
            .iter()
            .filter_map(|change| change.request_id.as_deref())
            .collect();
        (!ids.is_empty()).then(|| ids.join(", "))
    }

    /// Describes the outcome, one sentence a line: each change with its request ID, then
    /// the notes.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .changes
            .iter()
            .map(|change| match &change.request_id {
                Some(id) => format!("{} (request ID {id})", change.description),
                None => change.description.clone(),
            })
            .collect();
        lines.extend(self.notes.iter().cloned());
        if lines.is_empty() {
            lines.push("nothing changed".to_string());
        }
        lines
    }
}

/// Plans and executes containment actions against AWS for one investigation.
pub struct Remediator {
    access: Access,
    config: ContainConfig,
    stats: AwsCallStats,
}

impl Remediator {
    /// Creates the remediator with keycheck's own credentials from the AWS default chain
    /// (or the configured profile), reaching other accounts through the roles of `aws`.
    ///
    /// Fails when either configuration is invalid.
    pub fn new(
        aws: LiveConfig,
        contain: ContainConfig,
        investigation_id: &str,
    ) -> Result<Remediator, RemediationError> {
        aws.validate()?;
        contain.validate()?;
        Ok(Remediator::build(
            aws,
            contain,
            investigation_id,
            BaseSource::DefaultChain,
        ))
    }

    /// Creates the remediator with fixed credentials and nothing read from the
    /// environment: the configured region (else `us-east-1`) and endpoint. Meant for tests
    /// against an emulator.
    ///
    /// Fails when either configuration is invalid.
    pub fn with_credentials(
        aws: LiveConfig,
        contain: ContainConfig,
        investigation_id: &str,
        credentials: Credentials,
    ) -> Result<Remediator, RemediationError> {
        aws.validate()?;
        contain.validate()?;
        let sdk_config = static_config(&aws, credentials);
        Ok(Remediator::build(
            aws,
            contain,
            investigation_id,
            BaseSource::Prepared(sdk_config),
        ))
    }

    fn build(
        aws: LiveConfig,
        contain: ContainConfig,
        investigation_id: &str,
        source: BaseSource,
    ) -> Remediator {
        let stats = AwsCallStats::default();
        Remediator {
            access: Access::new(aws, investigation_id, source, stats.clone(), Vec::new()),
            config: contain,
            stats,
        }
    }

    /// Returns the containment settings.
    pub fn config(&self) -> &ContainConfig {
        &self.config
    }

    /// Returns the counts of AWS calls made so far, by operation and outcome.
    pub fn call_stats(&self) -> AwsCallStats {
        self.stats.clone()
    }

    /// Plans action `kind` on `target` by reading IAM (and Secrets Manager for a
    /// rotation). Changes nothing.
    ///
    /// Fails when the action cannot run on this key, such as rotating for a user who
    /// already has two keys, or when a read fails.
    pub async fn plan(&self, kind: ActionKind, target: &Target) -> Result<Plan, RemediationError> {
        match kind {
            ActionKind::Deactivate => {
                Ok(Plan::Deactivate(deactivate::read_plan(self, target).await?))
            }
            ActionKind::Rotate => Ok(Plan::Rotate(rotate::read_plan(self, target).await?)),
            ActionKind::RevokeSessions => {
                Ok(Plan::RevokeSessions(revoke::read_plan(self, target).await?))
            }
            ActionKind::Quarantine => {
                Ok(Plan::Quarantine(quarantine::read_plan(self, target).await?))
            }
            ActionKind::Dismiss => Err(RemediationError::NotAnAction { kind }),
        }
    }

    /// Executes `plan`, checking its preconditions again first.
    ///
    /// Fails when a precondition no longer applies or an AWS call fails. The error says what
    /// was changed before the failure, if anything.
    pub async fn execute(&self, plan: &Plan) -> Result<Outcome, RemediationError> {
        match plan {
            Plan::Deactivate(plan) => deactivate::execute(self, plan).await,
            Plan::Rotate(plan) => rotate::execute(self, plan).await,
            Plan::RevokeSessions(plan) => revoke::execute(self, plan).await,
            Plan::Quarantine(plan) => quarantine::execute(self, plan).await,
        }
    }

    /// Returns the clients of `account_id` in the home region.
    async fn clients(&self, account_id: &str) -> Result<Arc<Clients>, RemediationError> {
        let no_access = |source| RemediationError::Access {
            account_id: account_id.to_string(),
            source,
        };
        let region = self.access.home_region().await.map_err(no_access)?;
        self.access
            .clients(account_id, &region)
            .await
            .map_err(no_access)
    }
}
