//! Deactivation: set the leaked access key to Inactive with `iam:UpdateAccessKey`, and no
//! other key of its user. A key that is already inactive is reported, not changed.
//!
//! Deactivation can be undone by setting the key to Active again, which is why it is the
//! first containment step the diagnosis recommends.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::iam::{self, KeyState};
use super::{Change, Outcome, Principal, RemediationError, Remediator, Target};
use crate::approval::ActionKind;
use crate::evidence::KeyStatus;
use crate::evidence::live::operations::IAM_UPDATE_ACCESS_KEY;
use crate::key::AccessKeyId;

/// The change deactivation will make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeactivatePlan {
    pub investigation_id: String,
    pub key_id: AccessKeyId,
    pub account_id: String,
    /// The IAM user that owns the key.
    pub user_name: String,
    /// The key's status when the plan was made.
    pub status: KeyStatus,
    /// The user's other keys, which deactivation leaves as they are.
    pub other_keys: Vec<KeyState>,
}

impl DeactivatePlan {
    /// Returns the user that owns the key.
    pub fn user(&self) -> Principal {
        Principal::user(&self.account_id, &self.user_name)
    }

    /// Returns whether the key was already inactive when planned.
    pub fn is_already_inactive(&self) -> bool {
        self.status == KeyStatus::Inactive
    }

    /// Describes the plan, one sentence a line.
    pub fn describe(&self) -> Vec<String> {
        let owner = self.user();
        if self.is_already_inactive() {
            return vec![format!(
                "Change nothing: access key {} of {owner} is already inactive.",
                self.key_id
            )];
        }
        let mut lines = vec![format!(
            "Set access key {} of {owner} to Inactive with iam:UpdateAccessKey. Every request signed with it fails from then on; setting it to Active again undoes this.",
            self.key_id
        )];
        let others = iam::describe_keys(self.other_keys.iter());
        if !others.is_empty() {
            lines.push(format!(
                "Leave the user's other key {} as it is.",
                others.join(" and ")
            ));
        }
        lines.push(
            "Sessions already issued with the key keep working until they expire: revoke them separately."
                .to_string(),
        );
        lines
    }
}

/// Decides the plan from the key's owner and that user's keys, as IAM lists them.
///
/// Fails with `KeyNotFound` when `keys` lacks the key.
pub fn plan(
    target: &Target,
    user_name: &str,
    keys: &[KeyState],
) -> Result<DeactivatePlan, RemediationError> {
    let Some(this) = keys.iter().find(|key| key.key_id == target.key.as_str()) else {
        return Err(RemediationError::KeyNotFound {
            key_id: target.key.to_string(),
            account_id: target.account_id.clone(),
        });
    };
    Ok(DeactivatePlan {
        investigation_id: target.investigation_id.clone(),
        key_id: target.key.clone(),
        account_id: target.account_id.clone(),
        user_name: user_name.to_string(),
        status: this.status,
        other_keys: keys
            .iter()
            .filter(|key| key.key_id != target.key.as_str())
            .cloned()
            .collect(),
    })
}

/// Reads the key's owner and keys from IAM and plans the deactivation.
pub(super) async fn read_plan(
    remediator: &Remediator,
    target: &Target,
) -> Result<DeactivatePlan, RemediationError> {
    iam::require_long_term(&target.key, "deactivate")?;
    let clients = remediator.clients(&target.account_id).await?;
    let ownership = iam::read_ownership(clients.iam(), &target.key, &target.account_id).await?;
    plan(target, &ownership.user, &ownership.keys)
}

/// Deactivates the key, after reading its status again.
pub(super) async fn execute(
    remediator: &Remediator,
    plan: &DeactivatePlan,
) -> Result<Outcome, RemediationError> {
    iam::require_long_term(&plan.key_id, "deactivate")?;
    let clients = remediator.clients(&plan.account_id).await?;
    let ownership = iam::read_ownership(clients.iam(), &plan.key_id, &plan.account_id).await?;
    let user = ownership.user.as_str();
    let mut outcome = Outcome::new(ActionKind::Deactivate, &plan.key_id, &plan.investigation_id);

    if ownership.status_of(plan.key_id.as_str()) == Some(KeyStatus::Inactive) {
        info!(key_id = %plan.key_id, action = "deactivate", user, "access key already inactive, nothing changed");
        outcome.notes.push(format!(
            "access key {} of IAM user {user} is already inactive: nothing changed",
            plan.key_id
        ));
        return Ok(outcome);
    }

    let request_id = iam::deactivate_key(clients.iam(), user, plan.key_id.as_str())
        .await
        .map_err(|failure| RemediationError::UpdateAccessKey {
            key_id: plan.key_id.to_string(),
            user: user.to_string(),
            failure,
        })?;
    let at = Utc::now();
    info!(
        key_id = %plan.key_id,
        action = "deactivate",
        user,
        account_id = %plan.account_id,
        request_id = request_id.as_deref().unwrap_or("none"),
        "access key deactivated"
    );
    outcome.changes.push(Change {
        operation: IAM_UPDATE_ACCESS_KEY.id(),
        description: format!(
            "set access key {} of IAM user {user} to Inactive",
            plan.key_id
        ),
        request_id,
        at,
    });
    outcome.deactivated_at = Some(at);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remediation::Plan;

    const LEAKED: &str = "AKIAAAAAAAAAAAAAAAAA";
    const OTHER: &str = "AKIABBBBBBBBBBBBBBBB";

    fn target() -> Target {
        Target {
            investigation_id: "kc-0123456789".to_string(),
            key: LEAKED.parse().unwrap(),
            account_id: "111122223333".to_string(),
            owner: None,
            sessions: Vec::new(),
        }
    }

    fn key(key_id: &str, status: KeyStatus) -> KeyState {
        KeyState {
            key_id: key_id.to_string(),
            status,
            created: None,
        }
    }

    #[test]
    fn plan_leaves_other_key() {
        let keys = [
            key(LEAKED, KeyStatus::Active),
            key(OTHER, KeyStatus::Active),
        ];
        let plan = plan(&target(), "alice", &keys).unwrap();
        assert!(!plan.is_already_inactive());
        assert_eq!(plan.other_keys, [key(OTHER, KeyStatus::Active)]);
        let text = plan.describe().join("\n");
        assert!(
            text.contains(&format!(
                "Set access key {LEAKED} of IAM user alice in account 111122223333 to Inactive"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "Leave the user's other key {OTHER} (Active) as it is"
            )),
            "{text}"
        );
        assert!(!Plan::Deactivate(plan).changes_nothing());
    }

    #[test]
    fn plan_already_inactive_changes_nothing() {
        let keys = [key(LEAKED, KeyStatus::Inactive)];
        let plan = plan(&target(), "alice", &keys).unwrap();
        assert!(plan.is_already_inactive());
        assert_eq!(plan.describe().len(), 1);
        assert!(
            plan.describe()[0].contains("already inactive"),
            "{:?}",
            plan.describe()
        );
        assert!(Plan::Deactivate(plan).changes_nothing());
    }

    #[test]
    fn plan_without_key_fails() {
        let keys = [key(OTHER, KeyStatus::Active)];
        let error = plan(&target(), "alice", &keys).unwrap_err();
        assert!(
            matches!(error, RemediationError::KeyNotFound { .. }),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("not found in account 111122223333"),
            "{error}"
        );
    }

    #[test]
    fn temporary_key_rejected() {
        let temporary: AccessKeyId = "ASIAAAAAAAAAAAAAAAAA".parse().unwrap();
        let error = iam::require_long_term(&temporary, "deactivate").unwrap_err();
        assert!(
            error.to_string().contains("which IAM cannot deactivate"),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("keycheck contain revoke-sessions"),
            "{error}"
        );
    }

    #[test]
    fn plan_round_trips_json() {
        let keys = [
            key(LEAKED, KeyStatus::Active),
            key(OTHER, KeyStatus::Inactive),
        ];
        let plan = Plan::Deactivate(plan(&target(), "alice", &keys).unwrap());
        let json = plan.to_json();
        assert!(json.contains(r#""action":"deactivate""#), "{json}");
        assert_eq!(Plan::from_json(&json).unwrap(), plan);
    }
}
