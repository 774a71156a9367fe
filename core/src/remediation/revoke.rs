//! Session revocation: an inline policy that denies every action to sessions issued
//! before now, on each user or role whose sessions the leaked key is or issued.
//!
//! Deactivating a long-term key does not end the temporary credentials issued with it,
//! and a temporary key cannot be deactivated at all. AWS's own remedy, the IAM console's
//! "Revoke active sessions", is an inline policy that denies `*` on `*` when
//! `aws:TokenIssueTime` is before a cutoff. keycheck writes the same policy, under a
//! configurable name, on:
//!
//! - the role of a temporary key that is an assumed-role session, or its user for a
//!   `GetSessionToken` or `GetFederationToken` session;
//! - each role that a session issued with the key assumed, and the key's user for the
//!   sessions that carry the user's own permissions.
//!
//! Long-term access keys carry no token issue time, so the policy leaves the user's keys
//! working. It does end every older session of the principal, legitimate ones included.
//! An existing policy of the same name is replaced with one of a later cutoff.

use std::collections::HashMap;

use aws_sdk_iam::operation::RequestId;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::info;

use super::error::AwsFailure;
use super::iam::Iam;
use super::{Change, Outcome, Principal, PrincipalKind, RemediationError, Remediator, Target};
use crate::approval::ActionKind;
use crate::evidence::live::error::is_not_found;
use crate::evidence::live::operations::{
    IAM_GET_ROLE_POLICY, IAM_GET_USER_POLICY, IAM_PUT_ROLE_POLICY, IAM_PUT_USER_POLICY,
};
use crate::key::{AccessKeyId, KeyKind};
use crate::policy::decode_document;

/// The statement ID of the deny statement, as AWS's console policy
/// (`AWSRevokeOlderSessions`) names its own.
const STATEMENT_ID: &str = "KeycheckRevokeOlderSessions";

/// One user or role whose older sessions the plan denies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedPrincipal {
    pub principal: Principal,
    /// The key's sessions that carry this principal's permissions: the temporary key
    /// itself, and the sessions issued with the key.
    pub sessions: Vec<String>,
    /// Whether the principal already has an inline policy of the plan's name, which is
    /// replaced.
    pub replaces_policy: bool,
    /// The cutoff of that policy, when it has the shape keycheck writes.
    pub existing_cutoff: Option<DateTime<Utc>>,
}

/// The changes session revocation will make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokePlan {
    pub investigation_id: String,
    pub key_id: AccessKeyId,
    /// The account that owns the key. A principal may be in another account.
    pub account_id: String,
    /// The name of the inline policy written on each principal.
    pub policy_name: String,
    pub principals: Vec<RevokedPrincipal>,
    /// Sessions issued with the key whose user or role is unknown, which the plan
    /// cannot revoke.
    pub unknown_sessions: Vec<String>,
}

impl RevokePlan {
    /// Describes the plan, one sentence a line.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for revoked in &self.principals {
            let put = match revoked.principal.kind {
                PrincipalKind::User => "iam:PutUserPolicy",
                PrincipalKind::Role => "iam:PutRolePolicy",
            };
            lines.push(format!(
                "Put inline policy {} on {} with {put}: deny every action to its sessions issued before the time it runs, which ends {}.",
                self.policy_name,
                revoked.principal,
                revoked.sessions.join(", ")
            ));
            lines.push(match revoked.principal.kind {
                PrincipalKind::Role => "Every other session of the role issued before then ends too; workloads that use the role get new credentials when they next refresh them.".to_string(),
                PrincipalKind::User => "The user's console sessions issued before then end too; the user's long-term access keys keep working.".to_string(),
            });
            if revoked.replaces_policy {
                let previous = match revoked.existing_cutoff {
                    Some(cutoff) => format!(
                        ", which denies sessions issued before {}",
                        format_cutoff(cutoff)
                    ),
                    None => String::new(),
                };
                lines.push(format!(
                    "This replaces the policy of that name the principal already has{previous}."
                ));
            }
        }
        if !self.unknown_sessions.is_empty() {
            lines.push(format!(
                "Sessions {} are left alone, because CloudTrail does not show which user or role they belong to.",
                self.unknown_sessions.join(", ")
            ));
        }
        lines
    }
}

/// The principals to act on, each with its sessions, and the sessions with no known
/// principal.
type SessionGroups = (Vec<(Principal, Vec<String>)>, Vec<String>);

/// Groups the key's sessions by the principal whose permissions they carry.
///
/// Fails with `OwnerUnknown` for a temporary key without a known principal, with
/// `NoSessions` for a long-term key that issued no session, and with
/// `SessionPrincipalsUnknown` when no session has a known principal.
pub fn group_sessions(target: &Target) -> Result<SessionGroups, RemediationError> {
    let mut groups: Vec<(Principal, Vec<String>)> = Vec::new();
    let mut add = |principal: &Principal, session: &str| match groups
        .iter_mut()
        .find(|(known, _)| known == principal)
    {
        Some((_, sessions)) => sessions.push(session.to_string()),
        None => groups.push((principal.clone(), vec![session.to_string()])),
    };

    if target.key.kind() == KeyKind::Temporary {
        let Some(owner) = &target.owner else {
            return Err(RemediationError::OwnerUnknown {
                key_id: target.key.to_string(),
            });
        };
        add(owner, target.key.as_str());
    }
    let mut unknown = Vec::new();
    for session in &target.sessions {
        match &session.principal {
            Some(principal) => add(principal, &session.key_id),
            None => unknown.push(session.key_id.clone()),
        }
    }

    if groups.is_empty() && unknown.is_empty() {
        return Err(RemediationError::NoSessions {
            key_id: target.key.to_string(),
        });
    }
    if groups.is_empty() {
        return Err(RemediationError::SessionPrincipalsUnknown {
            key_id: target.key.to_string(),
            sessions: unknown,
        });
    }
    Ok((groups, unknown))
}

/// The inline policy of that name a principal has now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingPolicy {
    /// Its cutoff, when it has the shape keycheck writes.
    pub cutoff: Option<DateTime<Utc>>,
}

/// Decides the plan from the key's sessions and the policies of that name that the
/// principals already have.
///
/// Fails as [`group_sessions`] does.
pub fn plan(
    target: &Target,
    policy_name: &str,
    existing: &HashMap<Principal, ExistingPolicy>,
) -> Result<RevokePlan, RemediationError> {
    let (groups, unknown_sessions) = group_sessions(target)?;
    let principals = groups
        .into_iter()
        .map(|(principal, sessions)| {
            let found = existing.get(&principal);
            RevokedPrincipal {
                replaces_policy: found.is_some(),
                existing_cutoff: found.and_then(|policy| policy.cutoff),
                principal,
                sessions,
            }
        })
        .collect();
    Ok(RevokePlan {
        investigation_id: target.investigation_id.clone(),
        key_id: target.key.clone(),
        account_id: target.account_id.clone(),
        policy_name: policy_name.to_string(),
        principals,
        unknown_sessions,
    })
}

/// Builds the inline policy that denies every action to sessions issued before `cutoff`.
pub fn policy_document(cutoff: DateTime<Utc>) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": STATEMENT_ID,
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": format_cutoff(cutoff)}}
        }]
    })
}

/// Reads the cutoff of a policy in the shape [`policy_document`] writes, or `None`.
pub fn cutoff_of(document: &Value) -> Option<DateTime<Utc>> {
    let statements = match &document["Statement"] {
        Value::Array(statements) => statements.clone(),
        statement @ Value::Object(_) => vec![statement.clone()],
        _ => return None,
    };
    statements.iter().find_map(|statement| {
        let time = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str()?;
        DateTime::parse_from_rfc3339(time)
            .ok()
            .map(|time| time.with_timezone(&Utc))
    })
}

/// Returns the cutoff to write at `now`: now to the second, or the existing policy's
/// cutoff if that is later, so a run never shortens what an earlier run denied.
pub fn cutoff_to_write(now: DateTime<Utc>, existing: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let now = now.trunc_subsecs(0);
    existing.map_or(now, |existing| existing.max(now))
}

fn format_cutoff(cutoff: DateTime<Utc>) -> String {
    cutoff.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads the policies of that name the principals have and plans the revocation.
pub(super) async fn read_plan(
    remediator: &Remediator,
    target: &Target,
) -> Result<RevokePlan, RemediationError> {
    let policy_name = remediator.config().revoke_policy_name.as_str();
    let (groups, _) = group_sessions(target)?;
    let mut existing = HashMap::new();
    for (principal, _) in &groups {
        let clients = remediator.clients(&principal.account_id).await?;
        if let Some(policy) = read_existing(clients.iam(), principal, policy_name).await? {
            existing.insert(principal.clone(), policy);
        }
    }
    plan(target, policy_name, &existing)
}

async fn read_existing(
    iam: &Iam,
    principal: &Principal,
    policy_name: &str,
) -> Result<Option<ExistingPolicy>, RemediationError> {
    let document = match principal.kind {
        PrincipalKind::User => match iam
            .get_user_policy()
            .user_name(&principal.name)
            .policy_name(policy_name)
            .send()
            .await
        {
            Ok(output) => output.policy_document,
            Err(error) if is_not_found(&error) => return Ok(None),
            Err(error) => {
                return Err(RemediationError::GetUserPolicy {
                    user: principal.clone(),
                    policy_name: policy_name.to_string(),
                    failure: AwsFailure::from_sdk(&IAM_GET_USER_POLICY, &principal.name, &error),
                });
            }
        },
        PrincipalKind::Role => match iam
            .get_role_policy()
            .role_name(&principal.name)
            .policy_name(policy_name)
            .send()
            .await
        {
            Ok(output) => output.policy_document,
            Err(error) if is_not_found(&error) => return Ok(None),
            Err(error) => {
                return Err(RemediationError::GetRolePolicy {
                    role: principal.clone(),
                    policy_name: policy_name.to_string(),
                    failure: AwsFailure::from_sdk(&IAM_GET_ROLE_POLICY, &principal.name, &error),
                });
            }
        },
    };
    let cutoff = decode_document(&document).ok().as_ref().and_then(cutoff_of);
    Ok(Some(ExistingPolicy { cutoff }))
}

/// Writes the policy on every principal of the plan, with the cutoff taken now.
pub(super) async fn execute(
    remediator: &Remediator,
    plan: &RevokePlan,
) -> Result<Outcome, RemediationError> {
    let mut outcome = Outcome::new(
        ActionKind::RevokeSessions,
        &plan.key_id,
        &plan.investigation_id,
    );
    let mut revoked: Vec<String> = Vec::new();

    for target in &plan.principals {
        let principal = &target.principal;
        let clients = remediator.clients(&principal.account_id).await?;
        let cutoff = cutoff_to_write(Utc::now(), target.existing_cutoff);
        let document = policy_document(cutoff).to_string();

        let request_id = put_policy(clients.iam(), principal, &plan.policy_name, &document)
            .await
            .map_err(|failure| match principal.kind {
                PrincipalKind::User => RemediationError::PutUserPolicy {
                    user: principal.clone(),
                    policy_name: plan.policy_name.clone(),
                    revoked: revoked.clone(),
                    failure,
                },
                PrincipalKind::Role => RemediationError::PutRolePolicy {
                    role: principal.clone(),
                    policy_name: plan.policy_name.clone(),
                    revoked: revoked.clone(),
                    failure,
                },
            })?;
        let at = Utc::now();
        info!(
            key_id = %plan.key_id,
            action = "revoke_sessions",
            principal = %principal.arn(),
            policy_name = %plan.policy_name,
            cutoff = %format_cutoff(cutoff),
            request_id = request_id.as_deref().unwrap_or("none"),
            "sessions revoked"
        );
        let operation = match principal.kind {
            PrincipalKind::User => IAM_PUT_USER_POLICY.id(),
            PrincipalKind::Role => IAM_PUT_ROLE_POLICY.id(),
        };
        outcome.changes.push(Change {
            operation,
            description: format!(
                "denied every session of {principal} issued before {} (inline policy {})",
                format_cutoff(cutoff),
                plan.policy_name
            ),
            request_id,
            at,
        });
        revoked.push(principal.to_string());
    }
    if !plan.unknown_sessions.is_empty() {
        outcome.notes.push(format!(
            "sessions {} were not revoked: their user or role is unknown",
            plan.unknown_sessions.join(", ")
        ));
    }
    Ok(outcome)
}

async fn put_policy(
    iam: &Iam,
    principal: &Principal,
    policy_name: &str,
    document: &str,
) -> Result<Option<String>, AwsFailure> {
    match principal.kind {
        PrincipalKind::User => iam
            .put_user_policy()
            .user_name(&principal.name)
            .policy_name(policy_name)
            .policy_document(document)
            .send()
            .await
            .map(|output| output.request_id().map(str::to_string))
            .map_err(|error| AwsFailure::from_sdk(&IAM_PUT_USER_POLICY, &principal.name, &error)),
        PrincipalKind::Role => iam
            .put_role_policy()
            .role_name(&principal.name)
            .policy_name(policy_name)
            .policy_document(document)
            .send()
            .await
            .map(|output| output.request_id().map(str::to_string))
            .map_err(|error| AwsFailure::from_sdk(&IAM_PUT_ROLE_POLICY, &principal.name, &error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remediation::TargetSession;

    const ACCOUNT: &str = "111122223333";

    fn target(key: &str, owner: Option<Principal>, sessions: Vec<TargetSession>) -> Target {
        Target {
            investigation_id: "kc-0123456789".to_string(),
            key: key.parse().unwrap(),
            account_id: ACCOUNT.to_string(),
            owner,
            sessions,
        }
    }

    fn session(key_id: &str, principal: Option<Principal>) -> TargetSession {
        TargetSession {
            key_id: key_id.to_string(),
            call: "sts:AssumeRole".to_string(),
            issued_at: "2026-05-01T10:00:00Z".parse().unwrap(),
            principal,
        }
    }

    #[test]
    fn temporary_key_revokes_its_role() {
        let role = Principal::role(ACCOUNT, "deploy");
        let target = target("ASIAAAAAAAAAAAAAAAAA", Some(role.clone()), Vec::new());
        let plan = plan(&target, "keycheck-revoke-sessions", &HashMap::new()).unwrap();
        assert_eq!(plan.principals.len(), 1);
        assert_eq!(plan.principals[0].principal, role);
        assert_eq!(plan.principals[0].sessions, ["ASIAAAAAAAAAAAAAAAAA"]);
        let text = plan.describe().join("\n");
        assert!(text.contains("Put inline policy keycheck-revoke-sessions on IAM role deploy in account 111122223333 with iam:PutRolePolicy"), "{text}");
        assert!(text.contains("Every other session of the role"), "{text}");
    }

    #[test]
    fn long_term_key_groups_sessions() {
        let user = Principal::user(ACCOUNT, "alice");
        let ops = Principal::role("444455556666", "ops");
        let sessions = vec![
            session("ASIABBBBBBBBBBBBBBBB", Some(user.clone())),
            session("ASIACCCCCCCCCCCCCCCC", Some(ops.clone())),
            session("ASIADDDDDDDDDDDDDDDD", Some(ops.clone())),
            session("ASIAEEEEEEEEEEEEEEEE", None),
        ];
        let target = target("AKIAAAAAAAAAAAAAAAAA", Some(user.clone()), sessions);
        let existing = HashMap::from([(
            ops.clone(),
            ExistingPolicy {
                cutoff: "2026-04-01T00:00:00Z".parse().ok(),
            },
        )]);
        let plan = plan(&target, "keycheck-revoke-sessions", &existing).unwrap();

        let principals: Vec<&Principal> = plan.principals.iter().map(|p| &p.principal).collect();
        assert_eq!(principals, [&user, &ops]);
        assert_eq!(
            plan.principals[1].sessions,
            ["ASIACCCCCCCCCCCCCCCC", "ASIADDDDDDDDDDDDDDDD"]
        );
        assert!(!plan.principals[0].replaces_policy);
        assert!(plan.principals[1].replaces_policy);
        assert_eq!(plan.unknown_sessions, ["ASIAEEEEEEEEEEEEEEEE"]);
        let text = plan.describe().join("\n");
        assert!(text.contains("replaces the policy of that name the principal already has, which denies sessions issued before 2026-04-01T00:00:00Z"), "{text}");
        assert!(
            text.contains("Sessions ASIAEEEEEEEEEEEEEEEE are left alone"),
            "{text}"
        );
        assert!(
            text.contains("long-term access keys keep working"),
            "{text}"
        );
    }

    #[test]
    fn nothing_to_revoke_fails() {
        let alice = Some(Principal::user(ACCOUNT, "alice"));
        let error = plan(
            &target("AKIAAAAAAAAAAAAAAAAA", alice, Vec::new()),
            "p",
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(
            matches!(error, RemediationError::NoSessions { .. }),
            "{error}"
        );

        let error = plan(
            &target("ASIAAAAAAAAAAAAAAAAA", None, Vec::new()),
            "p",
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(
            matches!(error, RemediationError::OwnerUnknown { .. }),
            "{error}"
        );

        let unknown = vec![session("ASIABBBBBBBBBBBBBBBB", None)];
        let error = plan(
            &target("AKIAAAAAAAAAAAAAAAAA", None, unknown),
            "p",
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(
            matches!(error, RemediationError::SessionPrincipalsUnknown { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("ASIABBBBBBBBBBBBBBBB"),
            "{error}"
        );
    }

    #[test]
    fn document_denies_older_sessions() {
        let cutoff: DateTime<Utc> = "2026-05-01T10:00:00Z".parse().unwrap();
        let document = policy_document(cutoff);
        let statement = &document["Statement"][0];
        assert_eq!(statement["Effect"], "Deny");
        assert_eq!(statement["Action"], "*");
        assert_eq!(statement["Resource"], "*");
        assert_eq!(
            statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2026-05-01T10:00:00Z"
        );
        assert_eq!(cutoff_of(&document), Some(cutoff));
        assert_eq!(cutoff_of(&json!({"Statement": {"Effect": "Deny"}})), None);
    }

    #[test]
    fn cutoff_never_moves_back() {
        let now: DateTime<Utc> = "2026-05-01T10:00:00.750Z".parse().unwrap();
        let earlier: DateTime<Utc> = "2026-04-30T10:00:00Z".parse().unwrap();
        let later: DateTime<Utc> = "2026-05-02T10:00:00Z".parse().unwrap();
        assert_eq!(
            cutoff_to_write(now, None),
            "2026-05-01T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            cutoff_to_write(now, Some(earlier)),
            "2026-05-01T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(cutoff_to_write(now, Some(later)), later);
    }
}
