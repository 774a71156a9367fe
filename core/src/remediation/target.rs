//! The subject of a containment action: the key, its account, the user or role behind it,
//! and the sessions issued with it, each with the principal whose permissions it carries.
//!
//! A target comes from a finished investigation ([`Target::from_outcome`], what the chat
//! bot has when it offers buttons) or from the evidence source directly
//! ([`Target::resolve`], what the command line does). Either way it contains what keycheck
//! learned, not IAM's current state, so each action's plan reads IAM again.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::RemediationError;
use crate::cloudtrail::Event;
use crate::evidence::{EventQuery, EventSet, Evidence, Window};
use crate::key::{AccessKeyId, KeyKind};
use crate::playbook::Outcome;
use crate::report::{MintedSession, StepData};

/// How far back sessions issued with a key can still be valid: 36 hours, the longest
/// duration `sts:GetSessionToken` and `sts:GetFederationToken` grant. `AssumeRole`
/// sessions last at most 12 hours.
pub const MAX_SESSION_LIFETIME: Duration = Duration::hours(36);

/// The user name IAM's records give a root user's key, as the live evidence source and
/// the credential report write it.
const ROOT_USER: &str = "<root_account>";

/// Whether a principal is an IAM user or an IAM role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    Role,
}

/// An IAM user or role: what an inline policy or a managed policy attaches to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The 12-digit account that owns the principal.
    pub account_id: String,
    /// The user or role name, without its path, as IAM's API calls take it.
    pub name: String,
}

impl Principal {
    /// Creates an IAM user principal.
    pub fn user(account_id: &str, name: &str) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            account_id: account_id.to_string(),
            name: name.to_string(),
        }
    }

    /// Creates an IAM role principal.
    pub fn role(account_id: &str, name: &str) -> Principal {
        Principal {
            kind: PrincipalKind::Role,
            account_id: account_id.to_string(),
            name: name.to_string(),
        }
    }

    /// Parses the principal from an IAM user ARN (`arn:aws:iam::ACCOUNT:user/PATH/NAME`),
    /// an IAM role ARN (`…:role/PATH/NAME`) or an assumed-role session ARN
    /// (`arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`, which gives the role). Returns
    /// `None` for other ARNs, such as the root user's or a federated user's.
    pub fn from_arn(arn: &str) -> Option<Principal> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, _partition, service, _region, account, resource] = parts[..] else {
            return None;
        };
        if prefix != "arn" || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        fn last(path: &str) -> Option<&str> {
            path.rsplit('/').next().filter(|name| !name.is_empty())
        }
        match service {
            "iam" => {
                if let Some(path) = resource.strip_prefix("user/") {
                    return last(path).map(|name| Principal::user(account, name));
                }
                let path = resource.strip_prefix("role/")?;
                last(path).map(|name| Principal::role(account, name))
            }
            "sts" => {
                let session = resource.strip_prefix("assumed-role/")?;
                let name = session.split('/').next().filter(|n| !n.is_empty())?;
                Some(Principal::role(account, name))
            }
            _ => None,
        }
    }

    /// Returns the principal's ARN in the `aws` partition.
    ///
    /// NOTE: the ARN has no path, because keycheck learns principals by name. A user or
    /// role created with a path has a longer ARN in IAM.
    pub fn arn(&self) -> String {
        let kind = match self.kind {
            PrincipalKind::User => "user",
            PrincipalKind::Role => "role",
        };
        format!("arn:aws:iam::{}:{kind}/{}", self.account_id, self.name)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PrincipalKind::User => "IAM user",
            PrincipalKind::Role => "IAM role",
        };
        write!(f, "{kind} {} in account {}", self.name, self.account_id)
    }
}

/// A session issued with the key, directly or through another such session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSession {
    /// The session's temporary access key ID.
    pub key_id: String,
    /// The call that issued it, such as `sts:AssumeRole`.
    pub call: String,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// The user or role whose permissions the session carries, when known.
    pub principal: Option<Principal>,
}

/// The key a containment action is about, with what keycheck learned of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The investigation the action belongs to. Rotation tags the new secret with it, and
    /// assumed roles use it in their session name.
    pub investigation_id: String,
    pub key: AccessKeyId,
    /// The 12-digit account that owns the key.
    pub account_id: String,
    /// The IAM user of a long-term key, or the user or role whose session a temporary key
    /// is. `None` when unknown.
    pub owner: Option<Principal>,
    /// Sessions issued with the key, oldest first.
    pub sessions: Vec<TargetSession>,
}

impl Target {
    /// Builds the target from a finished investigation: the account from step 0, the
    /// owner from step 1 and the sessions issued with the key from step 2.
    ///
    /// Fails when the investigation did not establish the key's account.
    pub fn from_outcome(outcome: &Outcome) -> Result<Target, RemediationError> {
        let key = outcome.investigation.key.clone();
        let mut account_id = None;
        let mut owner = None;
        let mut minted: &[MintedSession] = &[];
        for report in &outcome.reports {
            match &report.data {
                StepData::Resolve(info) => account_id = info.account_id.clone(),
                StepData::Key(facts) => {
                    let record_user = facts.record.as_ref().map(|r| r.user_name.as_str());
                    owner = owner_from_facts(
                        &key,
                        account_id.as_deref(),
                        record_user,
                        facts.principal_arn.as_deref(),
                        facts.owner_name.as_deref(),
                    );
                }
                StepData::Activity(facts) => minted = &facts.minted_sessions,
                _ => {}
            }
        }
        let Some(account_id) = account_id else {
            return Err(RemediationError::AccountUnknown {
                key_id: key.to_string(),
            });
        };
        let sessions = sessions_of(&key, owner.as_ref(), minted, &HashMap::new());
        Ok(Target {
            investigation_id: outcome.investigation.id.clone(),
            key,
            account_id,
            owner,
            sessions,
        })
    }

    /// Builds the target by reading the evidence source: the account and the IAM owner of a
    /// long-term key. When `read_sessions` is set or the key is temporary, it also reads the
    /// CloudTrail events of the last [`MAX_SESSION_LIFETIME`], for the sessions issued with
    /// the key and the principal of a temporary key.
    ///
    /// Fails when the account cannot be established or an evidence read fails.
    pub async fn resolve(
        evidence: &dyn Evidence,
        key: &AccessKeyId,
        investigation_id: &str,
        read_sessions: bool,
        now: DateTime<Utc>,
    ) -> Result<Target, RemediationError> {
        let evidence_failed = |what| {
            move |source| RemediationError::Evidence {
                key_id: key.to_string(),
                what,
                source,
            }
        };
        let account = evidence
            .resolve_account(key)
            .await
            .map_err(evidence_failed("the account"))?;
        let Some(account_id) = account.account_id else {
            return Err(RemediationError::AccountUnknown {
                key_id: key.to_string(),
            });
        };

        let mut owner = None;
        if key.kind() == KeyKind::LongTerm {
            let record = evidence
                .access_key(key)
                .await
                .map_err(evidence_failed("the IAM record"))?;
            owner = record
                .filter(|record| record.user_name != ROOT_USER)
                .map(|record| Principal::user(&account_id, &record.user_name));
        }

        let mut sessions = Vec::new();
        if read_sessions || key.kind() == KeyKind::Temporary {
            let query = EventQuery {
                key: key.clone(),
                owner_arn: None,
                window: Some(Window::ending_at(now, MAX_SESSION_LIFETIME)),
                window_length: MAX_SESSION_LIFETIME,
                history: Duration::zero(),
            };
            let events = evidence
                .events(&query)
                .await
                .map_err(evidence_failed("the CloudTrail events"))?;
            if owner.is_none() {
                owner = principal_of_key(&events, key.as_str());
            }
            let seen = principals_in_events(&events);
            sessions = sessions_of(key, owner.as_ref(), &events.minted, &seen);
        }

        Ok(Target {
            investigation_id: investigation_id.to_string(),
            key: key.clone(),
            account_id,
            owner,
            sessions,
        })
    }
}

/// Returns the owner that step 1 established: the IAM user of the key's record, else the
/// principal of the key's calls. A federated user's ARN names no IAM principal, so for one
/// the issuing user (`owner_name`) is taken.
fn owner_from_facts(
    key: &AccessKeyId,
    account_id: Option<&str>,
    record_user: Option<&str>,
    principal_arn: Option<&str>,
    owner_name: Option<&str>,
) -> Option<Principal> {
    if let (Some(account), Some(user)) = (account_id, record_user)
        && user != ROOT_USER
    {
        return Some(Principal::user(account, user));
    }
    let arn = principal_arn?;
    if let Some(principal) = Principal::from_arn(arn) {
        return Some(principal);
    }
    let account = arn.split(':').nth(4).or(account_id)?;
    if key.kind() == KeyKind::Temporary && arn.contains(":federated-user/") {
        return owner_name.map(|name| Principal::user(account, name));
    }
    None
}

/// Returns the principal whose permissions a CloudTrail event's credentials carry: the
/// session issuer (the role, or the user of a federation token), else the caller's ARN.
pub(crate) fn principal_of_event(event: &Event) -> Option<Principal> {
    let issuer = event
        .user_identity
        .session_context
        .as_ref()
        .and_then(|context| context.session_issuer.as_ref())
        .and_then(|issuer| issuer.arn.as_deref())
        .and_then(Principal::from_arn);
    issuer.or_else(|| event.principal_arn().and_then(Principal::from_arn))
}

/// Returns the principal behind a temporary key: from its own calls, else from the call
/// that issued it.
fn principal_of_key(events: &EventSet, key_id: &str) -> Option<Principal> {
    let own_call = events
        .events
        .iter()
        .filter(|event| event.access_key_id() == Some(key_id))
        .find_map(principal_of_event);
    if own_call.is_some() {
        return own_call;
    }
    let minting = events.minting_event()?;
    match minting.request_string("roleArn") {
        Some(role_arn) => Principal::from_arn(role_arn),
        None => principal_of_event(minting),
    }
}

/// Returns the principal of each temporary key that signed one of the events.
fn principals_in_events(events: &EventSet) -> HashMap<String, Principal> {
    let mut principals = HashMap::new();
    for event in &events.events {
        let Some(key_id) = event.access_key_id() else {
            continue;
        };
        if principals.contains_key(key_id) {
            continue;
        }
        if let Some(principal) = principal_of_event(event) {
            principals.insert(key_id.to_string(), principal);
        }
    }
    principals
}

/// Pairs each session issued with `key` with its principal. That is the principal its own
/// calls show (`seen`), else the role it assumed, else the principal of the key that issued
/// it, because `sts:GetSessionToken` and `sts:GetFederationToken` sessions carry their
/// caller's permissions.
fn sessions_of(
    key: &AccessKeyId,
    owner: Option<&Principal>,
    minted: &[MintedSession],
    seen: &HashMap<String, Principal>,
) -> Vec<TargetSession> {
    let mut resolved: HashMap<String, Principal> = HashMap::new();
    if let Some(owner) = owner {
        resolved.insert(key.to_string(), owner.clone());
    }

    let mut sessions = Vec::new();
    let mut ordered: Vec<&MintedSession> = minted.iter().collect();
    ordered.sort_by_key(|session| session.time);
    for session in ordered {
        let inherits_caller = matches!(
            session.call.as_str(),
            "sts:GetSessionToken" | "sts:GetFederationToken"
        );
        let principal = seen
            .get(&session.key_id)
            .cloned()
            .or_else(|| session.role_arn.as_deref().and_then(Principal::from_arn))
            .or_else(|| {
                let parent = session.parent_key_id.as_deref()?;
                inherits_caller
                    .then(|| resolved.get(parent).cloned())
                    .flatten()
            });
        if let Some(principal) = &principal {
            resolved.insert(session.key_id.clone(), principal.clone());
        }
        sessions.push(TargetSession {
            key_id: session.key_id.clone(),
            call: session.call.clone(),
            issued_at: session.time,
            principal,
        });
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudtrail::read_bytes;

    const ACCOUNT: &str = "111122223333";

    fn key(text: &str) -> AccessKeyId {
        text.parse().unwrap()
    }

    #[test]
    fn principal_from_arns() {
        let cases = [
            (
                "arn:aws:iam::111122223333:user/alice",
                Some(Principal::user(ACCOUNT, "alice")),
            ),
            (
                "arn:aws:iam::111122223333:user/ops/alice",
                Some(Principal::user(ACCOUNT, "alice")),
            ),
            (
                "arn:aws:iam::111122223333:role/service-role/deploy",
                Some(Principal::role(ACCOUNT, "deploy")),
            ),
            (
                "arn:aws:sts::111122223333:assumed-role/deploy/session-1",
                Some(Principal::role(ACCOUNT, "deploy")),
            ),
            (
                "arn:aws-us-gov:iam::111122223333:user/bob",
                Some(Principal::user(ACCOUNT, "bob")),
            ),
            ("arn:aws:iam::111122223333:root", None),
            ("arn:aws:sts::111122223333:federated-user/visitor", None),
            ("arn:aws:iam::1111:user/alice", None),
            ("not an arn", None),
        ];
        for (arn, expected) in cases {
            assert_eq!(Principal::from_arn(arn), expected, "{arn}");
        }
    }

    #[test]
    fn principal_displays_kind_and_account() {
        let role = Principal::role(ACCOUNT, "deploy");
        assert_eq!(role.to_string(), "IAM role deploy in account 111122223333");
        assert_eq!(role.arn(), "arn:aws:iam::111122223333:role/deploy");
    }

    fn minted(
        key_id: &str,
        call: &str,
        parent: &str,
        role_arn: Option<&str>,
        minute: u32,
    ) -> MintedSession {
        MintedSession {
            key_id: key_id.to_string(),
            call: call.to_string(),
            time: format!("2026-05-01T10:{minute:02}:00Z").parse().unwrap(),
            parent_key_id: Some(parent.to_string()),
            role_arn: role_arn.map(str::to_string),
            event_id: None,
        }
    }

    #[test]
    fn sessions_inherit_or_assume() {
        let leaked = key("AKIAAAAAAAAAAAAAAAAA");
        let owner = Principal::user(ACCOUNT, "alice");
        let minted = [
            minted(
                "ASIACCCCCCCCCCCCCCCC",
                "sts:AssumeRole",
                "ASIABBBBBBBBBBBBBBBB",
                Some("arn:aws:iam::444455556666:role/ops"),
                5,
            ),
            minted(
                "ASIABBBBBBBBBBBBBBBB",
                "sts:GetSessionToken",
                "AKIAAAAAAAAAAAAAAAAA",
                None,
                1,
            ),
            minted(
                "ASIADDDDDDDDDDDDDDDD",
                "sts:AssumeRoot",
                "AKIAAAAAAAAAAAAAAAAA",
                None,
                9,
            ),
        ];
        let sessions = sessions_of(&leaked, Some(&owner), &minted, &HashMap::new());
        let principals: Vec<(&str, Option<Principal>)> = sessions
            .iter()
            .map(|s| (s.key_id.as_str(), s.principal.clone()))
            .collect();
        assert_eq!(
            principals,
            [
                ("ASIABBBBBBBBBBBBBBBB", Some(owner.clone())),
                (
                    "ASIACCCCCCCCCCCCCCCC",
                    Some(Principal::role("444455556666", "ops"))
                ),
                ("ASIADDDDDDDDDDDDDDDD", None),
            ]
        );
    }

    #[test]
    fn seen_principal_wins_over_request() {
        let leaked = key("AKIAAAAAAAAAAAAAAAAA");
        let minted = [minted(
            "ASIACCCCCCCCCCCCCCCC",
            "sts:AssumeRole",
            "AKIAAAAAAAAAAAAAAAAA",
            Some("arn:aws:iam::111122223333:role/asked"),
            1,
        )];
        let seen = HashMap::from([(
            "ASIACCCCCCCCCCCCCCCC".to_string(),
            Principal::role(ACCOUNT, "granted"),
        )]);
        let sessions = sessions_of(&leaked, None, &minted, &seen);
        assert_eq!(
            sessions[0].principal,
            Some(Principal::role(ACCOUNT, "granted"))
        );
    }

    #[test]
    fn owner_of_federated_session_is_issuer() {
        let temporary = key("ASIAAAAAAAAAAAAAAAAA");
        let owner = owner_from_facts(
            &temporary,
            Some(ACCOUNT),
            None,
            Some("arn:aws:sts::111122223333:federated-user/visitor"),
            Some("alice"),
        );
        assert_eq!(owner, Some(Principal::user(ACCOUNT, "alice")));
        let root = owner_from_facts(
            &key("AKIAAAAAAAAAAAAAAAAA"),
            Some(ACCOUNT),
            Some(ROOT_USER),
            None,
            None,
        );
        assert_eq!(root, None);
    }

    #[test]
    fn temporary_key_principal_from_events() {
        let json = r#"[
          {"eventTime":"2026-05-01T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","eventID":"e1",
           "userIdentity":{"type":"IAMUser","accessKeyId":"AKIAAAAAAAAAAAAAAAAA","arn":"arn:aws:iam::111122223333:user/alice"},
           "requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/path/deploy"},
           "responseElements":{"credentials":{"accessKeyId":"ASIACCCCCCCCCCCCCCCC"}}},
          {"eventTime":"2026-05-01T10:06:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"e2",
           "userIdentity":{"type":"AssumedRole","accessKeyId":"ASIACCCCCCCCCCCCCCCC",
             "arn":"arn:aws:sts::111122223333:assumed-role/deploy/s1",
             "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/path/deploy"}}}}
        ]"#;
        let events = read_bytes(json.as_bytes()).events;
        let temporary = key("ASIACCCCCCCCCCCCCCCC");
        let set = EventSet::build(&EventQuery::new(temporary), events.clone(), Utc::now());
        assert_eq!(
            principal_of_key(&set, "ASIACCCCCCCCCCCCCCCC"),
            Some(Principal::role(ACCOUNT, "deploy"))
        );

        // Without the session's own call, the role it assumed names the principal.
        let minting_only = EventSet::build(
            &EventQuery::new(key("ASIACCCCCCCCCCCCCCCC")),
            events[..1].to_vec(),
            Utc::now(),
        );
        assert_eq!(
            principal_of_key(&minting_only, "ASIACCCCCCCCCCCCCCCC"),
            Some(Principal::role(ACCOUNT, "deploy"))
        );
    }
}
