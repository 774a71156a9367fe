//! Analysis of IAM policy documents for playbook steps 3 and 4: does a policy enforce MFA,
//! and what can the key's owner do (administrator access, wildcard grants,
//! privilege-escalation and persistence actions, the AWS quarantine policy)?
//!
//! Everything here is pure. It reads documents the evidence layer already fetched and
//! never calls AWS. It is not a policy simulator either: it evaluates no conditions,
//! permissions boundaries, service control policies or resource-based policies. Where it
//! simplifies, it leans toward reporting a grant: a conditioned `Deny` never removes an
//! `Allow`, and a conditioned `Allow` still counts as a grant, though not as administrator
//! access.

mod managed;
mod pattern;
mod statement;

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use managed::{quarantine_name, quarantine_version, stand_in_document};
use pattern::{has_wildcard, is_every_action, pattern_covers, pattern_matches};
use statement::{Effect, Scope, Statement, json_type, parse_statements};

/// One action that lets the caller gain permissions or keep access after the leaked key
/// is deactivated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EscalationAction {
    /// The IAM action, as policies spell it.
    pub action: &'static str,
    /// True when the action counts only if allowed on every resource of its type (`*`,
    /// `arn:aws:iam::*:role/*`), because on a few named resources it reaches only those.
    pub needs_any_resource: bool,
    /// Why the action matters, in one line for the report.
    pub reason: &'static str,
}

/// Privilege-escalation and persistence actions that keycheck reports when a policy
/// allows them, directly or through a wildcard.
///
/// Sources: Rhino Security Labs, "AWS IAM Privilege Escalation – Methods and Mitigation",
/// parts 1 and 2, whose methods are numbered in the README of
/// <https://github.com/RhinoSecurityLabs/AWS-IAM-Privilege-Escalation> (methods 1, 2, 4 to
/// 14, 18, 20 and 26). `iam:CreateUser` and `iam:PutUserPermissionsBoundary` are denied by
/// AWS's own `AWSCompromisedKeyQuarantine` policy for a leaked key. The other
/// permissions-boundary actions, `sts:AssumeRole`, `ssm:SendCommand`, `ssm:StartSession`
/// and `ec2-instance-connect:SendSSHPublicKey` are keycheck's additions, and their reasons
/// state the route. `iam:PassRole` escalates only together with another action; see
/// [`PASS_ROLE_TARGETS`].
pub const ESCALATION_ACTIONS: &[EscalationAction] = &[
    EscalationAction {
        action: "iam:CreateAccessKey",
        needs_any_resource: false,
        reason: "creates an access key for a user, which keeps access after the leaked key is deactivated or takes over another user's permissions",
    },
    EscalationAction {
        action: "iam:CreateLoginProfile",
        needs_any_resource: false,
        reason: "sets a console password for a user that has none and signs in as that user",
    },
    EscalationAction {
        action: "iam:UpdateLoginProfile",
        needs_any_resource: false,
        reason: "changes a user's console password and signs in as that user",
    },
    EscalationAction {
        action: "iam:AttachUserPolicy",
        needs_any_resource: false,
        reason: "attaches any managed policy, such as AdministratorAccess, to a user",
    },
    EscalationAction {
        action: "iam:AttachGroupPolicy",
        needs_any_resource: false,
        reason: "attaches any managed policy to a group, and so to every member",
    },
    EscalationAction {
        action: "iam:AttachRolePolicy",
        needs_any_resource: false,
        reason: "attaches any managed policy to a role that the caller can assume",
    },
    EscalationAction {
        action: "iam:PutUserPolicy",
        needs_any_resource: false,
        reason: "writes an inline policy with any permissions into a user",
    },
    EscalationAction {
        action: "iam:PutGroupPolicy",
        needs_any_resource: false,
        reason: "writes an inline policy with any permissions into a group",
    },
    EscalationAction {
        action: "iam:PutRolePolicy",
        needs_any_resource: false,
        reason: "writes an inline policy with any permissions into a role",
    },
    EscalationAction {
        action: "iam:CreatePolicyVersion",
        needs_any_resource: false,
        reason: "writes a new version of a managed policy and makes it the default without needing iam:SetDefaultPolicyVersion",
    },
    EscalationAction {
        action: "iam:SetDefaultPolicyVersion",
        needs_any_resource: false,
        reason: "switches a managed policy back to an older version that may grant more",
    },
    EscalationAction {
        action: "iam:AddUserToGroup",
        needs_any_resource: false,
        reason: "adds a user to any group and so takes the group's permissions",
    },
    EscalationAction {
        action: "iam:UpdateAssumeRolePolicy",
        needs_any_resource: false,
        reason: "rewrites a role's trust policy so that the caller, or an account the attacker owns, can assume the role",
    },
    EscalationAction {
        action: "iam:CreateUser",
        needs_any_resource: false,
        reason: "creates a new IAM user, a foothold that outlives the leaked key",
    },
    EscalationAction {
        action: "iam:DeleteUserPermissionsBoundary",
        needs_any_resource: false,
        reason: "removes the permissions boundary that caps what a user's policies grant",
    },
    EscalationAction {
        action: "iam:DeleteRolePermissionsBoundary",
        needs_any_resource: false,
        reason: "removes the permissions boundary that caps what a role's policies grant",
    },
    EscalationAction {
        action: "iam:PutUserPermissionsBoundary",
        needs_any_resource: false,
        reason: "replaces a user's permissions boundary with a broader policy",
    },
    EscalationAction {
        action: "iam:PutRolePermissionsBoundary",
        needs_any_resource: false,
        reason: "replaces a role's permissions boundary with a broader policy",
    },
    EscalationAction {
        action: "lambda:UpdateFunctionCode",
        needs_any_resource: false,
        reason: "replaces a function's code, which then runs with the function's execution role",
    },
    EscalationAction {
        action: "lambda:UpdateFunctionConfiguration",
        needs_any_resource: false,
        reason: "attaches a layer that overrides a function's libraries, which then run with the function's execution role",
    },
    EscalationAction {
        action: "glue:UpdateDevEndpoint",
        needs_any_resource: false,
        reason: "sets the SSH public key of a Glue development endpoint and uses the endpoint's role",
    },
    EscalationAction {
        action: "sts:AssumeRole",
        needs_any_resource: true,
        reason: "assumes any role whose trust policy trusts this principal or its account",
    },
    EscalationAction {
        action: "ssm:SendCommand",
        needs_any_resource: true,
        reason: "runs commands on any managed instance and reads its instance profile credentials",
    },
    EscalationAction {
        action: "ssm:StartSession",
        needs_any_resource: true,
        reason: "opens a shell on any managed instance and reads its instance profile credentials",
    },
    EscalationAction {
        action: "ec2-instance-connect:SendSSHPublicKey",
        needs_any_resource: false,
        reason: "pushes an SSH key to an instance, logs in and reads its instance profile credentials",
    },
];

/// Action sets that turn `iam:PassRole` into privilege escalation: each hands an existing
/// role to a resource the caller controls, so the caller acts with the role's permissions.
/// Every action of a set must be allowed, in any of the principal's policies.
///
/// Source: Rhino Security Labs (see [`ESCALATION_ACTIONS`]), methods 3, 15 to 17, 19, 21,
/// 22 and 27. The Lambda set names only `lambda:CreateFunction` because methods 15 to 17
/// invoke the function in three different ways (`lambda:InvokeFunction`,
/// `lambda:AddPermission`, an event source mapping).
pub const PASS_ROLE_TARGETS: &[&[&str]] = &[
    // Launch an instance with the role, then read its credentials from instance metadata.
    &["ec2:RunInstances"],
    // Create a function that runs with the role.
    &["lambda:CreateFunction"],
    // Create a Glue development endpoint with the role and log in over SSH.
    &["glue:CreateDevEndpoint"],
    // Create a stack that the role deploys.
    &["cloudformation:CreateStack"],
    // Create a pipeline whose activities run as the role.
    &[
        "datapipeline:CreatePipeline",
        "datapipeline:PutPipelineDefinition",
    ],
    // Create a notebook instance with the role and open it.
    &[
        "sagemaker:CreateNotebookInstance",
        "sagemaker:CreatePresignedNotebookInstanceUrl",
    ],
];

/// Actions that let a principal write its own permissions. An `Allow` with `NotAction` on
/// every resource that leaves any of these allowed is one call away from `*` on `*`, so
/// keycheck reports it as administrator access.
const SELF_GRANT_ACTIONS: &[&str] = &[
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
    "iam:PutUserPolicy",
    "iam:PutGroupPolicy",
    "iam:PutRolePolicy",
    "iam:CreatePolicyVersion",
];

/// Note for reasons that come from a stand-in document (see [`stand_in_document`]).
const JUDGED_BY_ARN: &str =
    "AWS managed policy judged by its ARN because its document was not provided";

/// A policy to analyze.
#[derive(Clone, Copy, Debug)]
pub struct PolicyInput<'a> {
    /// The policy name, as reports show it.
    pub name: &'a str,
    /// The policy ARN, for managed policies.
    pub arn: Option<&'a str>,
    /// The decoded policy document (see [`decode_document`]), when the evidence has it.
    pub document: Option<&'a Value>,
}

/// Findings of steps 3 and 4 from the policies of one principal.
///
/// Names and grants keep the order of the input policies, without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// Policies that allow every action on every resource without a condition. An `Allow`
    /// with `NotAction` on `*` counts too, unless it excludes every action that writes the
    /// principal's own permissions (`iam:AttachUserPolicy`, `iam:PutUserPolicy`, …).
    pub admin: Vec<String>,
    /// Wildcard actions (`*`, `iam:*`, `s3:Get*`) and `NotAction` lists that an `Allow`
    /// grants.
    pub wildcard_grants: Vec<Grant>,
    /// Allowed privilege-escalation and persistence actions (see [`ESCALATION_ACTIONS`]).
    pub escalation: Vec<Grant>,
    /// Policies that tie some access to MFA through `aws:MultiFactorAuthPresent`. Some of
    /// these forms do not stop a long-term access key: see [`mfa_enforcement`].
    pub mfa_enforcing: Vec<String>,
    /// The newest `AWSCompromisedKeyQuarantine` policy version attached, by name.
    pub quarantine: Option<String>,
    /// Policies that keycheck could not judge: no document and no known AWS managed ARN,
    /// or a document with statements it could not read. The readable statements of the
    /// latter are still analyzed.
    pub unreadable: Vec<String>,
}

/// One allowed action or action pattern that the report lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The policy that grants it.
    pub policy: String,
    /// The action (`iam:PutUserPolicy`) or the pattern (`iam:*`, `NotAction iam:*`).
    pub action: String,
    /// The statement's resources, comma-separated, or `NotResource …` for an exclusion list.
    pub resource: String,
    /// Why it matters, with how it was allowed when that is not the action itself.
    pub reason: String,
}

/// A form of MFA enforcement through the `aws:MultiFactorAuthPresent` condition key.
///
/// Requests signed with a long-term access key carry no `aws:MultiFactorAuthPresent` key,
/// and `Bool` does not match a missing key while `BoolIfExists` does
/// (<https://repost.aws/knowledge-center/mfa-iam-user-aws-cli>). The forms therefore differ
/// in whether they stop a leaked long-term key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaEnforcement {
    /// `Deny` with `BoolIfExists` `false`: denies every request made without MFA,
    /// including requests signed with a long-term access key.
    DenyWithoutMfa,
    /// `Deny` with `Null` `true`: denies requests that lack the key, which include those
    /// signed with a long-term access key, but not temporary credentials without MFA.
    DenyLongTermKeys,
    /// `Deny` with `Bool` `false`: denies temporary credentials obtained without MFA, but
    /// not requests signed with a long-term access key.
    DenyTemporaryWithoutMfa,
    /// `Allow` with `Bool` `true`: the statement grants only to requests made with MFA.
    AllowOnlyWithMfa,
}

impl MfaEnforcement {
    /// Returns true when this form stops requests signed with a long-term access key,
    /// for the actions its statement covers.
    pub fn stops_long_term_key(self) -> bool {
        !matches!(self, MfaEnforcement::DenyTemporaryWithoutMfa)
    }
}

/// An error reading a policy document.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The text is empty or only whitespace.
    #[error("policy document is empty")]
    Empty,
    /// Percent-decoding produced bytes that are not UTF-8.
    #[error("policy document is URL-encoded but does not decode to UTF-8 text")]
    InvalidEncoding,
    /// The decoded text is not JSON.
    #[error("policy document is not valid JSON: {0}")]
    InvalidJson(serde_json::Error),
    /// The JSON is not an object.
    #[error("policy document is a JSON {found}, but a policy document is a JSON object")]
    NotAnObject { found: &'static str },
    /// The object has no `Statement` element.
    #[error("policy document has no Statement element")]
    MissingStatement,
    /// The `Statement` element is neither an object nor an array.
    #[error("policy document has a Statement that is a JSON {found}, not an object or array")]
    InvalidStatements { found: &'static str },
    /// One statement is malformed; `index` counts from 0.
    #[error("statement {index} of the policy document {problem}")]
    InvalidStatement { index: usize, problem: String },
}

/// Decodes a policy document as IAM returns it. The IAM API URL-encodes documents
/// following RFC 3986 (IAM API Reference, `GetUserPolicy`), while the AWS CLI and exported
/// snapshots contain plain JSON. Both are accepted.
///
/// Text that starts with `{` is read as JSON as it is, so a plain document is never
/// percent-decoded.
pub fn decode_document(raw: &str) -> Result<Value, PolicyError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(PolicyError::Empty);
    }

    let text: Cow<str> = if trimmed.starts_with('{') {
        Cow::Borrowed(trimmed)
    } else {
        percent_decode_str(trimmed)
            .decode_utf8()
            .map_err(|_| PolicyError::InvalidEncoding)?
    };

    let document: Value = serde_json::from_str(&text).map_err(PolicyError::InvalidJson)?;
    if !document.is_object() {
        return Err(PolicyError::NotAnObject {
            found: json_type(&document),
        });
    }
    Ok(document)
}

/// Analyzes the identity-based policies of one principal: its inline and attached
/// policies and those of its groups.
///
/// An unconditioned `Deny` in any of them removes the matching grants of all of them, as
/// an explicit deny does in IAM. Pass no permissions boundary here: a boundary grants
/// nothing, and its `Allow` statements would read as grants.
pub fn analyze(policies: &[PolicyInput]) -> Analysis {
    let mut analysis = Analysis::default();
    let mut readable = Vec::new();

    for policy in policies {
        let quarantine = quarantine_name(policy);
        if let Some(name) = quarantine {
            analysis.note_quarantine(name);
        }

        match read_policy(policy) {
            Reading::Complete(read) => readable.push(read),
            Reading::Partial(read) => {
                push_unique(&mut analysis.unreadable, policy.name);
                readable.push(read);
            }
            // NOTE: a quarantine policy judged by name applies none of its Deny
            // statements, so grants it would block are still reported.
            Reading::Missing if quarantine.is_some() => {}
            Reading::Missing => push_unique(&mut analysis.unreadable, policy.name),
        }
    }

    let denies: Vec<&Statement> = readable
        .iter()
        .flat_map(|policy| &policy.statements)
        .filter(|statement| statement.effect == Effect::Deny && statement.condition.is_none())
        .collect();

    for policy in &readable {
        for statement in &policy.statements {
            if statement_mfa(statement).is_some() {
                push_unique(&mut analysis.mfa_enforcing, policy.name);
            }
            if statement.effect != Effect::Allow {
                continue;
            }
            if grants_admin(statement, &denies) {
                push_unique(&mut analysis.admin, policy.name);
            }
            for grant in wildcard_grants(policy, statement, &denies) {
                push_grant(&mut analysis.wildcard_grants, grant);
            }
            for grant in escalation_grants(policy, statement, &readable, &denies) {
                push_grant(&mut analysis.escalation, grant);
            }
        }
    }

    analysis
}

/// Lists how a policy document ties access to MFA, one entry per form found, in the
/// order of [`MfaEnforcement`]. Statements that cannot be read are skipped.
pub fn mfa_enforcement(document: &Value) -> Vec<MfaEnforcement> {
    let Ok(statements) = parse_statements(document) else {
        return Vec::new();
    };

    let mut forms: Vec<MfaEnforcement> = statements
        .iter()
        .filter_map(|statement| statement.as_ref().ok())
        .filter_map(statement_mfa)
        .collect();
    forms.sort();
    forms.dedup();
    forms
}

/// Reports whether an IAM action pattern matches an action, as IAM matches the `Action`
/// element: `*` matches any run of characters, `?` any one character, and the comparison
/// ignores case ("iam:ListAccessKeys is the same as IAM:listaccesskeys", IAM User Guide,
/// "IAM JSON policy elements: Action"). The service prefix is part of the text, so
/// `iam:*` matches only IAM actions and `*` matches every action.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    pattern_matches(pattern, action, true)
}

impl Analysis {
    fn note_quarantine(&mut self, name: &str) {
        let newer = match &self.quarantine {
            None => true,
            Some(current) => quarantine_version(name) > quarantine_version(current),
        };
        if newer {
            self.quarantine = Some(name.to_string());
        }
    }
}

/// A policy whose statements keycheck could read.
struct ReadPolicy<'a> {
    name: &'a str,
    statements: Vec<Statement>,
    /// True when the statements come from a stand-in for a missing AWS managed document.
    judged_by_arn: bool,
}

enum Reading<'a> {
    /// Every statement was read.
    Complete(ReadPolicy<'a>),
    /// Some statements could not be read, but the others were.
    Partial(ReadPolicy<'a>),
    /// No document, or a document without a readable `Statement` element.
    Missing,
}

fn read_policy<'a>(policy: &PolicyInput<'a>) -> Reading<'a> {
    let (document, judged_by_arn) = match policy.document {
        Some(document) => (Cow::Borrowed(document), false),
        None => match policy.arn.and_then(stand_in_document) {
            Some(stand_in) => (Cow::Owned(stand_in), true),
            None => return Reading::Missing,
        },
    };

    let Ok(parsed) = parse_statements(&document) else {
        return Reading::Missing;
    };
    let complete = parsed.iter().all(Result::is_ok);
    let read = ReadPolicy {
        name: policy.name,
        statements: parsed.into_iter().filter_map(Result::ok).collect(),
        judged_by_arn,
    };

    if complete {
        Reading::Complete(read)
    } else {
        Reading::Partial(read)
    }
}

// ---- Deciding what the statements grant ----

fn grants_admin(statement: &Statement, denies: &[&Statement]) -> bool {
    if statement.condition.is_some() || !reaches_every_resource(&statement.resources) {
        return false;
    }

    let every_action = match &statement.actions {
        Scope::Listed(patterns) => patterns.iter().any(|pattern| is_every_action(pattern)),
        Scope::AllExcept(excluded) => SELF_GRANT_ACTIONS.iter().any(|action| {
            !excluded
                .iter()
                .any(|pattern| action_matches(pattern, action))
        }),
    };

    // NOTE: only a Deny of every action on every resource removes admin. A narrower Deny,
    // such as the quarantine policy or `iam:*`, leaves the policy listed and removes only
    // the matching escalation grants.
    every_action && !denied(denies, "*:*", &statement.resources)
}

fn wildcard_grants(
    policy: &ReadPolicy,
    statement: &Statement,
    denies: &[&Statement],
) -> Vec<Grant> {
    let grant = |action: String, reason: String| Grant {
        policy: policy.name.to_string(),
        action,
        resource: describe_resources(&statement.resources),
        reason: finish_reason(&reason, None, statement, policy),
    };

    match &statement.actions {
        Scope::Listed(patterns) => patterns
            .iter()
            .filter(|pattern| has_wildcard(pattern))
            .filter(|pattern| !denied(denies, pattern, &statement.resources))
            .map(|pattern| grant(pattern.clone(), describe_wildcard(pattern)))
            .collect(),
        Scope::AllExcept(_) if denied(denies, "*:*", &statement.resources) => Vec::new(),
        Scope::AllExcept(excluded) => vec![grant(
            format!("NotAction {}", excluded.join(", ")),
            "allows every action except the listed ones".to_string(),
        )],
    }
}

fn escalation_grants(
    policy: &ReadPolicy,
    statement: &Statement,
    readable: &[ReadPolicy],
    denies: &[&Statement],
) -> Vec<Grant> {
    let grant = |action: &str, reason: &str, allowed_by: &str| Grant {
        policy: policy.name.to_string(),
        action: action.to_string(),
        resource: describe_resources(&statement.resources),
        reason: finish_reason(reason, Some((action, allowed_by)), statement, policy),
    };
    let mut grants = Vec::new();

    for rule in ESCALATION_ACTIONS {
        let Some(allowed_by) = allowing_pattern(statement, rule.action) else {
            continue;
        };
        if rule.needs_any_resource && !reaches_any_resource(&statement.resources) {
            continue;
        }
        if denied(denies, rule.action, &statement.resources) {
            continue;
        }
        grants.push(grant(rule.action, rule.reason, &allowed_by));
    }

    if let Some(pass_role) = pass_role_grant(policy, statement, readable, denies) {
        grants.push(pass_role);
    }

    grants
}

/// Returns the `iam:PassRole` grant of a statement when the principal may also use one of
/// [`PASS_ROLE_TARGETS`], in any of its policies.
fn pass_role_grant(
    policy: &ReadPolicy,
    statement: &Statement,
    readable: &[ReadPolicy],
    denies: &[&Statement],
) -> Option<Grant> {
    let action = "iam:PassRole";
    let allowed_by = allowing_pattern(statement, action)?;
    if denied(denies, action, &statement.resources) {
        return None;
    }

    let targets: Vec<String> = PASS_ROLE_TARGETS
        .iter()
        .filter(|target| {
            target
                .iter()
                .all(|partner| allowed_anywhere(readable, denies, partner))
        })
        .map(|target| target.join(" + "))
        .collect();
    if targets.is_empty() {
        return None;
    }

    let reason = format!(
        "hands an existing role to a resource the caller controls and acts with the role's permissions, together with {}",
        targets.join(", ")
    );
    Some(Grant {
        policy: policy.name.to_string(),
        action: action.to_string(),
        resource: describe_resources(&statement.resources),
        reason: finish_reason(&reason, Some((action, &allowed_by)), statement, policy),
    })
}

/// Returns the pattern of a statement that matches an action: the `Action` entry, or
/// `NotAction …` when the action is outside the exclusion list.
fn allowing_pattern(statement: &Statement, action: &str) -> Option<String> {
    match &statement.actions {
        Scope::Listed(patterns) => patterns
            .iter()
            .find(|pattern| action_matches(pattern, action))
            .cloned(),
        Scope::AllExcept(excluded)
            if excluded
                .iter()
                .any(|pattern| action_matches(pattern, action)) =>
        {
            None
        }
        Scope::AllExcept(excluded) => Some(format!("NotAction {}", excluded.join(", "))),
    }
}

fn allowed_anywhere(readable: &[ReadPolicy], denies: &[&Statement], action: &str) -> bool {
    readable
        .iter()
        .flat_map(|policy| &policy.statements)
        .filter(|statement| statement.effect == Effect::Allow)
        .any(|statement| {
            allowing_pattern(statement, action).is_some()
                && !denied(denies, action, &statement.resources)
        })
}

/// Reports whether an unconditioned `Deny` removes an allowed action or action pattern on
/// the allowing statement's resources.
///
/// NOTE: a `Deny` with `NotResource` never removes anything here, and a `Deny` with
/// `NotAction` removes only single actions, not patterns. Both err toward reporting.
fn denied(denies: &[&Statement], allowed: &str, resources: &Scope) -> bool {
    denies.iter().any(|deny| {
        let actions_covered = match &deny.actions {
            Scope::Listed(patterns) => patterns
                .iter()
                .any(|pattern| pattern_covers(pattern, allowed, true)),
            Scope::AllExcept(excluded) => {
                !has_wildcard(allowed)
                    && !excluded
                        .iter()
                        .any(|pattern| action_matches(pattern, allowed))
            }
        };
        let resources_covered = match (&deny.resources, resources) {
            (Scope::Listed(deny_patterns), Scope::Listed(allow_patterns)) => {
                allow_patterns.iter().all(|resource| {
                    deny_patterns
                        .iter()
                        .any(|pattern| pattern_covers(pattern, resource, false))
                })
            }
            (Scope::Listed(deny_patterns), Scope::AllExcept(_)) => deny_patterns
                .iter()
                .any(|pattern| pattern_covers(pattern, "*", false)),
            (Scope::AllExcept(_), _) => false,
        };
        actions_covered && resources_covered
    })
}

fn statement_mfa(statement: &Statement) -> Option<MfaEnforcement> {
    let condition = statement.condition.as_ref()?;

    for (operator, keys) in condition {
        let Some(keys) = keys.as_object() else {
            continue;
        };
        for (key, value) in keys {
            if !key.eq_ignore_ascii_case("aws:MultiFactorAuthPresent") {
                continue;
            }
            let values = bool_values(value);
            let form = match (statement.effect, operator.to_ascii_lowercase().as_str()) {
                (Effect::Deny, "boolifexists") if values.contains(&false) => {
                    MfaEnforcement::DenyWithoutMfa
                }
                (Effect::Deny, "bool") if values.contains(&false) => {
                    MfaEnforcement::DenyTemporaryWithoutMfa
                }
                (Effect::Deny, "null") if values.contains(&true) => {
                    MfaEnforcement::DenyLongTermKeys
                }
                // Several values are alternatives, so `[true, false]` allows without MFA.
                (Effect::Allow, "bool") if !values.is_empty() && values.iter().all(|v| *v) => {
                    MfaEnforcement::AllowOnlyWithMfa
                }
                _ => continue,
            };
            return Some(form);
        }
    }
    None
}

/// Reads condition values that IAM compares as booleans: `"true"`, `"false"` (any case),
/// JSON booleans, or an array of them. Other values are left out.
fn bool_values(value: &Value) -> Vec<bool> {
    let single = |value: &Value| match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().filter_map(single).collect(),
        other => single(other).into_iter().collect(),
    }
}

// ---- Describing grants ----

fn describe_wildcard(pattern: &str) -> String {
    if is_every_action(pattern) {
        return "allows every action".to_string();
    }
    match pattern.split_once(':') {
        Some((service, "*")) if !has_wildcard(service) => format!("allows every {service} action"),
        _ => format!("allows every action that matches {pattern}"),
    }
}

fn describe_resources(resources: &Scope) -> String {
    match resources {
        Scope::Listed(patterns) => patterns.join(", "),
        Scope::AllExcept(patterns) => format!("NotResource {}", patterns.join(", ")),
    }
}

/// Appends to a reason what the reader needs to weigh it: the pattern that allowed the
/// action, the statement's condition keys, and whether the document was a stand-in.
fn finish_reason(
    reason: &str,
    matched: Option<(&str, &str)>,
    statement: &Statement,
    policy: &ReadPolicy,
) -> String {
    let mut notes = Vec::new();
    if let Some((action, allowed_by)) = matched
        && !allowed_by.eq_ignore_ascii_case(action)
    {
        notes.push(format!("allowed by {allowed_by}"));
    }
    if let Some(condition) = &statement.condition {
        let keys: Vec<String> = condition
            .iter()
            .flat_map(|(operator, keys)| match keys.as_object() {
                Some(keys) => keys.keys().map(|key| format!("{operator} {key}")).collect(),
                None => vec![operator.clone()],
            })
            .collect();
        notes.push(format!("conditional: {}", keys.join(", ")));
    }
    if policy.judged_by_arn {
        notes.push(JUDGED_BY_ARN.to_string());
    }

    if notes.is_empty() {
        reason.to_string()
    } else {
        format!("{reason} ({})", notes.join("; "))
    }
}

fn push_unique(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|existing| existing == name) {
        names.push(name.to_string());
    }
}

fn push_grant(grants: &mut Vec<Grant>, grant: Grant) {
    let duplicate = grants.iter().any(|existing| {
        existing.policy == grant.policy
            && existing.action == grant.action
            && existing.resource == grant.resource
    });
    if !duplicate {
        grants.push(grant);
    }
}

fn reaches_every_resource(resources: &Scope) -> bool {
    match resources {
        Scope::Listed(patterns) => patterns
            .iter()
            .any(|pattern| pattern_covers(pattern, "*", false)),
        Scope::AllExcept(_) => false,
    }
}

/// Reports whether the resources include every resource of some type: `*`, an ARN that
/// ends in `:*`, or one that ends in `:<type>/*` such as `arn:aws:iam::*:role/*`. A
/// `NotResource` list counts, because it excludes only what it names.
fn reaches_any_resource(resources: &Scope) -> bool {
    let broad = |pattern: &String| {
        let tail = pattern.rsplit(':').next().unwrap_or(pattern);
        tail == "*"
            || tail
                .split_once('/')
                .is_some_and(|(kind, rest)| rest == "*" && !kind.is_empty() && !has_wildcard(kind))
    };
    match resources {
        Scope::Listed(patterns) => patterns.iter().any(broad),
        Scope::AllExcept(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    fn inline<'a>(name: &'a str, document: &'a Value) -> PolicyInput<'a> {
        PolicyInput {
            name,
            arn: None,
            document: Some(document),
        }
    }

    fn managed<'a>(name: &'a str, arn: &'a str) -> PolicyInput<'a> {
        PolicyInput {
            name,
            arn: Some(arn),
            document: None,
        }
    }

    fn allow(action: Value, resource: &str) -> Value {
        json!({ "Version": "2012-10-17", "Statement": { "Effect": "Allow", "Action": action, "Resource": resource } })
    }

    fn actions(grants: &[Grant]) -> Vec<&str> {
        grants.iter().map(|grant| grant.action.as_str()).collect()
    }

    fn escalation_of(analysis: &Analysis, action: &str) -> Option<Grant> {
        analysis
            .escalation
            .iter()
            .find(|grant| grant.action == action)
            .cloned()
    }

    /// Returns the IAM User Guide example "IAM: Allows IAM users to self-manage an MFA
    /// device".
    fn self_manage_mfa_example() -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [
                { "Sid": "AllowListActions", "Effect": "Allow",
                  "Action": ["iam:ListUsers", "iam:ListVirtualMFADevices"], "Resource": "*" },
                { "Sid": "AllowUserToCreateVirtualMFADevice", "Effect": "Allow",
                  "Action": ["iam:CreateVirtualMFADevice"], "Resource": "arn:aws:iam::*:mfa/*" },
                { "Sid": "AllowUserToManageTheirOwnMFA", "Effect": "Allow",
                  "Action": ["iam:EnableMFADevice", "iam:ListMFADevices", "iam:ResyncMFADevice"],
                  "Resource": "arn:aws:iam::*:user/${aws:username}" },
                { "Sid": "AllowUserToDeactivateTheirOwnMFAOnlyWhenUsingMFA", "Effect": "Allow",
                  "Action": ["iam:DeactivateMFADevice"], "Resource": ["arn:aws:iam::*:user/${aws:username}"],
                  "Condition": { "Bool": { "aws:MultiFactorAuthPresent": "true" } } },
                { "Sid": "BlockMostAccessUnlessSignedInWithMFA", "Effect": "Deny",
                  "NotAction": ["iam:CreateVirtualMFADevice", "iam:EnableMFADevice", "iam:ListMFADevices",
                                "iam:ListUsers", "iam:ListVirtualMFADevices", "iam:ResyncMFADevice"],
                  "Resource": "*",
                  "Condition": { "BoolIfExists": { "aws:MultiFactorAuthPresent": "false" } } }
            ]
        })
    }

    #[test]
    fn admin_from_inline_document() {
        for action in [json!("*"), json!(["*"]), json!(["s3:GetObject", "*"])] {
            let document = allow(action.clone(), "*");
            let analysis = analyze(&[inline("everything", &document)]);
            assert_eq!(
                analysis.admin,
                vec!["everything"],
                "Action {action}: {analysis:#?}"
            );
        }
    }

    #[test]
    fn admin_needs_every_resource_and_no_condition() {
        let scoped = allow(json!("*"), "arn:aws:s3:::bucket/*");
        let conditioned = json!({ "Statement": { "Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": { "IpAddress": { "aws:SourceIp": "203.0.113.0/24" } } } });
        let service = allow(json!("iam:*"), "*");

        let analysis = analyze(&[
            inline("scoped", &scoped),
            inline("conditioned", &conditioned),
            inline("service", &service),
        ]);

        assert!(analysis.admin.is_empty(), "{analysis:#?}");
        let conditional = analysis
            .wildcard_grants
            .iter()
            .find(|grant| grant.policy == "conditioned")
            .expect("conditioned * still listed as a wildcard grant");
        assert!(
            conditional
                .reason
                .contains("conditional: IpAddress aws:SourceIp"),
            "{conditional:#?}"
        );
    }

    #[test]
    fn admin_from_aws_managed_arn() {
        let policy = managed(
            "AdministratorAccess",
            "arn:aws:iam::aws:policy/AdministratorAccess",
        );
        let analysis = analyze(&[policy]);

        assert_eq!(analysis.admin, vec!["AdministratorAccess"], "{analysis:#?}");
        assert!(analysis.unreadable.is_empty(), "{analysis:#?}");
        let grant =
            escalation_of(&analysis, "iam:PutUserPolicy").expect("admin allows iam:PutUserPolicy");
        assert!(grant.reason.contains("judged by its ARN"), "{grant:#?}");
    }

    #[test]
    fn admin_not_from_customer_policy_named_like_aws() {
        let policy = managed(
            "AdministratorAccess",
            "arn:aws:iam::123456789012:policy/AdministratorAccess",
        );
        let analysis = analyze(&[policy]);

        assert!(analysis.admin.is_empty(), "{analysis:#?}");
        assert_eq!(analysis.unreadable, vec!["AdministratorAccess"]);
    }

    #[test]
    fn not_action_leaving_iam_is_admin() {
        let document = json!({ "Statement": { "Effect": "Allow", "NotAction": "s3:DeleteBucket", "Resource": "*" } });
        let analysis = analyze(&[inline("all-but-delete-bucket", &document)]);

        assert_eq!(
            analysis.admin,
            vec!["all-but-delete-bucket"],
            "{analysis:#?}"
        );
        assert_eq!(
            actions(&analysis.wildcard_grants),
            vec!["NotAction s3:DeleteBucket"]
        );
        assert!(
            escalation_of(&analysis, "iam:AttachUserPolicy").is_some(),
            "{analysis:#?}"
        );
    }

    #[test]
    fn not_action_allow_excluding_iam_is_wildcard_only() {
        let document = json!({ "Statement": { "Effect": "Allow",
            "NotAction": ["iam:*", "organizations:*"], "Resource": "*" } });
        let analysis = analyze(&[inline("power-user-copy", &document)]);

        assert!(analysis.admin.is_empty(), "{analysis:#?}");
        assert_eq!(
            actions(&analysis.wildcard_grants),
            vec!["NotAction iam:*, organizations:*"]
        );
        assert!(
            escalation_of(&analysis, "iam:PutUserPolicy").is_none(),
            "{analysis:#?}"
        );
        let lambda = escalation_of(&analysis, "lambda:UpdateFunctionCode").expect("lambda allowed");
        assert!(
            lambda.reason.contains("allowed by NotAction iam:*"),
            "{lambda:#?}"
        );
    }

    #[test]
    fn power_user_by_arn_is_wildcard_not_admin() {
        let policy = managed("PowerUserAccess", "arn:aws:iam::aws:policy/PowerUserAccess");
        let analysis = analyze(&[policy]);

        assert!(analysis.admin.is_empty(), "{analysis:#?}");
        assert!(analysis.unreadable.is_empty(), "{analysis:#?}");
        assert_eq!(
            actions(&analysis.wildcard_grants),
            vec!["NotAction iam:*, organizations:*, account:*"]
        );
        assert!(
            escalation_of(&analysis, "iam:CreateAccessKey").is_none(),
            "{analysis:#?}"
        );
        assert!(
            escalation_of(&analysis, "ssm:SendCommand").is_some(),
            "{analysis:#?}"
        );
        // iam:PassRole is excluded, so ec2:RunInstances alone does not escalate.
        assert!(
            escalation_of(&analysis, "iam:PassRole").is_none(),
            "{analysis:#?}"
        );
    }

    #[test]
    fn iam_full_access_by_arn_is_escalation() {
        let policy = managed("IAMFullAccess", "arn:aws:iam::aws:policy/IAMFullAccess");
        let analysis = analyze(&[policy]);

        assert!(analysis.admin.is_empty(), "{analysis:#?}");
        assert!(
            actions(&analysis.wildcard_grants).contains(&"iam:*"),
            "{analysis:#?}"
        );
        for action in [
            "iam:CreateAccessKey",
            "iam:AttachUserPolicy",
            "iam:CreateUser",
        ] {
            assert!(
                escalation_of(&analysis, action).is_some(),
                "{action} missing: {analysis:#?}"
            );
        }
        // PassRole needs a compute action that IAMFullAccess does not allow.
        assert!(
            escalation_of(&analysis, "iam:PassRole").is_none(),
            "{analysis:#?}"
        );
    }

    #[test]
    fn other_aws_managed_without_document_is_unreadable() {
        let policies = [
            managed("ReadOnlyAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
            managed(
                "ViewOnlyAccess",
                "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess",
            ),
            PolicyInput {
                name: "inline-without-document",
                arn: None,
                document: None,
            },
        ];
        let analysis = analyze(&policies);

        assert_eq!(
            analysis.unreadable,
            vec![
                "ReadOnlyAccess",
                "ViewOnlyAccess",
                "inline-without-document"
            ]
        );
        assert_eq!(
            analysis,
            Analysis {
                unreadable: analysis.unreadable.clone(),
                ..Analysis::default()
            }
        );
    }

    #[test]
    fn iam_star_yields_escalation_actions() {
        let document = allow(json!("iam:*"), "*");
        let analysis = analyze(&[inline("iam-admin", &document)]);

        assert_eq!(actions(&analysis.wildcard_grants), vec!["iam:*"]);
        assert_eq!(
            analysis.wildcard_grants[0].reason,
            "allows every iam action"
        );
        for rule in ESCALATION_ACTIONS
            .iter()
            .filter(|rule| rule.action.starts_with("iam:"))
        {
            let grant = escalation_of(&analysis, rule.action)
                .unwrap_or_else(|| panic!("{} missing: {analysis:#?}", rule.action));
            assert!(grant.reason.starts_with(rule.reason), "{grant:#?}");
            assert!(grant.reason.ends_with("(allowed by iam:*)"), "{grant:#?}");
            assert_eq!(grant.resource, "*");
        }
        assert!(
            escalation_of(&analysis, "lambda:UpdateFunctionCode").is_none(),
            "{analysis:#?}"
        );
    }

    #[test]
    fn put_star_matches_put_not_pass_role() {
        assert!(action_matches("iam:Put*", "iam:PutUserPolicy"));
        assert!(!action_matches("iam:Put*", "iam:PassRole"));

        let document = allow(json!("iam:Put*"), "*");
        let analysis = analyze(&[inline("put-anything", &document)]);
        assert!(
            escalation_of(&analysis, "iam:PutUserPolicy").is_some(),
            "{analysis:#?}"
        );
        assert!(
            escalation_of(&analysis, "iam:PutUserPermissionsBoundary").is_some(),
            "{analysis:#?}"
        );
        assert!(
            escalation_of(&analysis, "iam:PassRole").is_none(),
            "{analysis:#?}"
        );
        assert!(
            escalation_of(&analysis, "iam:AttachUserPolicy").is_none(),
            "{analysis:#?}"
        );
    }

    #[test]
    fn action_matches_ignores_case() {
        assert!(action_matches("IAM:putuserpolicy", "iam:PutUserPolicy"));
        assert!(action_matches("iam:PUT*", "iam:PutUserPolicy"));
        assert!(action_matches("iam:putuserpolicy", "IAM:PUTUSERPOLICY"));

        let document = allow(json!("IAM:createaccesskey"), "*");
        let analysis = analyze(&[inline("shouting", &document)]);
        let grant =
            escalation_of(&analysis, "iam:CreateAccessKey").expect("case-insensitive match");
        assert!(
            !grant.reason.contains("allowed by"),
            "exact action needs no pattern note: {grant:#?}"
        );
    }

    #[test]
    fn action_matches_wildcards_and_service_prefix() {
        assert!(action_matches("*", "sts:AssumeRole"));
        assert!(action_matches("iam:*", "iam:PassRole"));
        assert!(!action_matches("iam:*", "sts:AssumeRole"));
        assert!(action_matches("iam:?assRole", "iam:PassRole"));
        assert!(!action_matches("iam:?PassRole", "iam:PassRole"));
        assert!(action_matches("iam:*User*", "iam:AttachUserPolicy"));
        assert!(!action_matches("iam:*User", "iam:AttachUserPolicy"));
        assert!(!action_matches("iam:PassRole", "iam:PassRoles"));
        assert!(!action_matches("", "iam:PassRole"));
    }

    #[test]
    fn pattern_covers_only_narrower_patterns() {
        assert!(pattern_covers("iam:*", "iam:Put*", true));
        assert!(!pattern_covers("iam:Put*", "iam:*", true));
        assert!(pattern_covers("*", "*:*", true));
        assert!(!pattern_covers("iam:?ut*", "iam:*ut*", true));
        assert!(pattern_covers("iam:*ut*", "iam:?ut*", true));
        assert!(!pattern_covers(
            "arn:aws:s3:::Bucket/*",
            "arn:aws:s3:::bucket/key",
            false
        ));
    }

    #[test]
    fn unconditioned_deny_removes_grants() {
        let allow_iam = allow(json!("iam:*"), "*");
        let deny_iam =
            json!({ "Statement": { "Effect": "Deny", "Action": "iam:*", "Resource": "*" } });
        let analysis = analyze(&[
            inline("allow-iam", &allow_iam),
            inline("deny-iam", &deny_iam),
        ]);

        assert!(analysis.escalation.is_empty(), "{analysis:#?}");
        assert!(analysis.wildcard_grants.is_empty(), "{analysis:#?}");
    }

    #[test]
    fn deny_removes_only_what_it_covers() {
        let document = json!({ "Statement": [
            { "Effect": "Allow", "Action": ["iam:CreateAccessKey", "iam:CreateUser"], "Resource": "*" },
            { "Effect": "Deny", "Action": "iam:CreateAccessKey", "Resource": "*" },
            { "Effect": "Deny", "Action": "iam:CreateUser", "Resource": "arn:aws:iam::123456789012:user/admin" }
        ]});
        let analysis = analyze(&[inline("mixed", &document)]);

        assert!(
            escalation_of(&analysis, "iam:CreateAccessKey").is_none(),
            "{analysis:#?}"
        );
        // The Deny names one user, so the Allow on * still reaches others.
        assert!(
            escalation_of(&analysis, "iam:CreateUser").is_some(),
            "{analysis:#?}"
        );
    }

    #[test]
    fn deny_not_action_removes_other_actions() {
        let document = json!({ "Statement": [
            { "Effect": "Allow", "Action": ["iam:CreateAccessKey", "iam:*"], "Resource": "*" },
            { "Effect": "Deny", "NotAction": "iam:Get*", "Resource": "*" }
        ]});
        let analysis = analyze(&[inline("read-only-iam", &document)]);

        assert!(
            escalation_of(&analysis, "iam:CreateAccessKey").is_none(),
            "{analysis:#?}"
        );
        // NotAction removes single actions only, so the iam:* pattern stays listed.
        assert_eq!(actions(&analysis.wildcard_grants), vec!["iam:*"]);
    }

    #[test]
    fn not_resource_allow_reaches_any_resource() {
        let document = json!({ "Statement": { "Effect": "Allow", "Action": "ssm:SendCommand",
            "NotResource": "arn:aws:ec2:*:*:instance/i-0123456789abcdef0" } });
        let analysis = analyze(&[inline("all-but-one", &document)]);

        let grant = escalation_of(&analysis, "ssm:SendCommand").expect("NotResource is broad");
        assert_eq!(
            grant.resource,
            "NotResource arn:aws:ec2:*:*:instance/i-0123456789abcdef0"
        );
    }

    #[test]
    fn deny_of_everything_removes_admin() {
        let admin = allow(json!("*"), "*");
        let deny_all = json!({ "Statement": { "Effect": "Deny", "Action": "*", "Resource": "*" } });
        let analysis = analyze(&[inline("admin", &admin), inline("revoke", &deny_all)]);

        assert!(analysis.admin.is_empty(), "{analysis:#?}");
        assert!(analysis.escalation.is_empty(), "{analysis:#?}");
    }

    #[test]
    fn conditioned_deny_keeps_grants() {
        let document = json!({ "Statement": [
            { "Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*" },
            { "Effect": "Deny", "Action": "*", "Resource": "*",
              "Condition": { "NotIpAddress": { "aws:SourceIp": "203.0.113.0/24" } } }
        ]});
        let analysis = analyze(&[inline("office-only", &document)]);

        assert!(
            escalation_of(&analysis, "iam:CreateAccessKey").is_some(),
            "{analysis:#?}"
        );
    }

    #[test]
    fn conditional_allow_keeps_grant_with_note() {
        let document = json!({ "Statement": { "Effect": "Allow", "Action": "iam:PutUserPolicy", "Resource": "*",
            "Condition": { "Bool": { "aws:MultiFactorAuthPresent": "true" } } } });
        let analysis = analyze(&[inline("mfa-put", &document)]);

        let grant =
            escalation_of(&analysis, "iam:PutUserPolicy").expect("conditional allow still counts");
        assert!(
            grant
                .reason
                .ends_with("(conditional: Bool aws:MultiFactorAuthPresent)"),
            "{grant:#?}"
        );
    }

    #[test]
    fn pass_role_needs_a_target_action() {
        let pass_role = allow(json!("iam:PassRole"), "*");
        let alone = analyze(&[inline("pass", &pass_role)]);
        assert!(alone.escalation.is_empty(), "{alone:#?}");

        let run_instances = allow(json!("ec2:RunInstances"), "*");
        let paired = analyze(&[inline("pass", &pass_role), inline("run", &run_instances)]);
        let grant = escalation_of(&paired, "iam:PassRole").expect("PassRole with RunInstances");
        assert_eq!(grant.policy, "pass");
        assert!(
            grant.reason.ends_with("together with ec2:RunInstances"),
            "{grant:#?}"
        );

        let half_pipeline = allow(json!("datapipeline:CreatePipeline"), "*");
        let incomplete = analyze(&[
            inline("pass", &pass_role),
            inline("pipeline", &half_pipeline),
        ]);
        assert!(incomplete.escalation.is_empty(), "{incomplete:#?}");
    }

    #[test]
    fn assume_role_counts_only_on_any_role() {
        let one_role = allow(
            json!("sts:AssumeRole"),
            "arn:aws:iam::123456789012:role/deploy",
        );
        let narrow = analyze(&[inline("one-role", &one_role)]);
        assert!(narrow.escalation.is_empty(), "{narrow:#?}");

        for resource in [
            "*",
            "arn:aws:iam::*:role/*",
            "arn:aws:iam::123456789012:role/*",
        ] {
            let any_role = allow(json!("sts:AssumeRole"), resource);
            let broad = analyze(&[inline("any-role", &any_role)]);
            assert!(
                escalation_of(&broad, "sts:AssumeRole").is_some(),
                "{resource}: {broad:#?}"
            );
        }
    }

    #[test]
    fn mfa_self_manage_example_enforces() {
        let document = self_manage_mfa_example();
        let analysis = analyze(&[inline("Force_MFA", &document)]);

        assert_eq!(analysis.mfa_enforcing, vec!["Force_MFA"], "{analysis:#?}");
        assert_eq!(
            mfa_enforcement(&document),
            vec![
                MfaEnforcement::DenyWithoutMfa,
                MfaEnforcement::AllowOnlyWithMfa
            ]
        );
        // The Deny is conditioned, so it removes nothing, and nothing here escalates.
        assert!(analysis.escalation.is_empty(), "{analysis:#?}");
    }

    #[test]
    fn mfa_condition_forms() {
        let cases = [
            (
                "Deny",
                "BoolIfExists",
                json!("false"),
                Some(MfaEnforcement::DenyWithoutMfa),
            ),
            (
                "Deny",
                "BoolIfExists",
                json!(false),
                Some(MfaEnforcement::DenyWithoutMfa),
            ),
            (
                "Deny",
                "Bool",
                json!(["false"]),
                Some(MfaEnforcement::DenyTemporaryWithoutMfa),
            ),
            (
                "Deny",
                "Null",
                json!("true"),
                Some(MfaEnforcement::DenyLongTermKeys),
            ),
            (
                "Allow",
                "Bool",
                json!("true"),
                Some(MfaEnforcement::AllowOnlyWithMfa),
            ),
            ("Allow", "Bool", json!(["true", "false"]), None),
            ("Allow", "BoolIfExists", json!("true"), None),
            ("Deny", "Bool", json!("true"), None),
            ("Deny", "Null", json!("false"), None),
        ];

        for (effect, operator, value, expected) in cases {
            let document = json!({ "Statement": { "Effect": effect, "Action": "*", "Resource": "*",
                "Condition": { operator: { "aws:MultiFactorAuthPresent": value } } } });
            let found = mfa_enforcement(&document);
            assert_eq!(
                found,
                expected.into_iter().collect::<Vec<_>>(),
                "{document}"
            );

            let analysis = analyze(&[inline("candidate", &document)]);
            assert_eq!(
                analysis.mfa_enforcing.len(),
                usize::from(expected.is_some()),
                "{document}"
            );
        }
    }

    #[test]
    fn mfa_bool_false_misses_long_term_keys() {
        assert!(!MfaEnforcement::DenyTemporaryWithoutMfa.stops_long_term_key());
        assert!(MfaEnforcement::DenyWithoutMfa.stops_long_term_key());
        assert!(MfaEnforcement::DenyLongTermKeys.stops_long_term_key());
    }

    #[test]
    fn mfa_absent_without_condition() {
        let document = allow(json!("*"), "*");
        let analysis = analyze(&[inline("plain", &document)]);
        assert!(analysis.mfa_enforcing.is_empty(), "{analysis:#?}");
        assert!(mfa_enforcement(&document).is_empty());
    }

    #[test]
    fn quarantine_versions_by_arn_and_name() {
        let cases = [
            (
                "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine",
                "AWSCompromisedKeyQuarantine",
            ),
            (
                "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2",
                "AWSCompromisedKeyQuarantineV2",
            ),
            (
                "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3",
                "AWSCompromisedKeyQuarantineV3",
            ),
            (
                "arn:aws-us-gov:iam::aws:policy/AWSCompromisedKeyQuarantineV2",
                "AWSCompromisedKeyQuarantineV2",
            ),
        ];
        for (arn, name) in cases {
            let analysis = analyze(&[managed(name, arn)]);
            assert_eq!(analysis.quarantine.as_deref(), Some(name), "{arn}");
            assert!(analysis.unreadable.is_empty(), "{arn}: {analysis:#?}");
        }

        let by_name = PolicyInput {
            name: "AWSCompromisedKeyQuarantineV3",
            arn: None,
            document: None,
        };
        assert_eq!(
            analyze(&[by_name]).quarantine.as_deref(),
            Some("AWSCompromisedKeyQuarantineV3")
        );
    }

    #[test]
    fn quarantine_newest_version_wins() {
        let analysis = analyze(&[
            managed(
                "AWSCompromisedKeyQuarantineV2",
                "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2",
            ),
            managed(
                "AWSCompromisedKeyQuarantineV3",
                "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3",
            ),
            managed(
                "AWSCompromisedKeyQuarantine",
                "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine",
            ),
        ]);
        assert_eq!(
            analysis.quarantine.as_deref(),
            Some("AWSCompromisedKeyQuarantineV3")
        );
    }

    #[test]
    fn quarantine_rejects_lookalikes() {
        let lookalikes = [
            managed(
                "AWSCompromisedKeyQuarantineV2",
                "arn:aws:iam::123456789012:policy/AWSCompromisedKeyQuarantineV2",
            ),
            managed(
                "AWSCompromisedKeyQuarantineX",
                "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineX",
            ),
            managed(
                "Quarantine",
                "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV",
            ),
        ];
        for policy in lookalikes {
            let analysis = analyze(&[policy]);
            assert_eq!(analysis.quarantine, None, "{policy:?}");
            assert_eq!(analysis.unreadable, vec![policy.name], "{policy:?}");
        }
    }

    #[test]
    fn quarantine_document_denies_escalation() {
        // A shortened quarantine Deny statement. AWSCompromisedKeyQuarantine V1 and V3 deny
        // all four actions.
        let quarantine = json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Deny",
            "Action": ["iam:AttachUserPolicy", "iam:CreateAccessKey", "iam:CreateUser", "iam:PutUserPolicy"],
            "Resource": ["*"] }] });
        let admin = managed(
            "AdministratorAccess",
            "arn:aws:iam::aws:policy/AdministratorAccess",
        );
        let attached = PolicyInput {
            name: "AWSCompromisedKeyQuarantineV2",
            arn: Some("arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"),
            document: Some(&quarantine),
        };
        let analysis = analyze(&[admin, attached]);

        assert_eq!(
            analysis.quarantine.as_deref(),
            Some("AWSCompromisedKeyQuarantineV2")
        );
        assert_eq!(analysis.admin, vec!["AdministratorAccess"], "{analysis:#?}");
        assert!(
            escalation_of(&analysis, "iam:CreateAccessKey").is_none(),
            "{analysis:#?}"
        );
        assert!(
            escalation_of(&analysis, "iam:PutGroupPolicy").is_some(),
            "{analysis:#?}"
        );
    }

    #[test]
    fn decode_url_encoded_document() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        let document = decode_document(encoded).expect("URL-encoded document decodes");
        assert_eq!(document["Statement"][0]["Action"], "*");

        let analysis = analyze(&[inline("encoded", &document)]);
        assert_eq!(analysis.admin, vec!["encoded"]);
    }

    #[test]
    fn decode_plain_document_keeps_percent_signs() {
        let raw = "\n  {\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::bucket/100%25\"}}";
        let document = decode_document(raw).expect("plain JSON decodes");
        assert_eq!(
            document["Statement"]["Resource"],
            "arn:aws:s3:::bucket/100%25"
        );
    }

    #[test]
    fn decode_malformed_document_fails() {
        let cases = [
            ("", "policy document is empty"),
            ("   ", "policy document is empty"),
            ("{\"Statement\": [", "policy document is not valid JSON"),
            ("%7B%22Statement", "policy document is not valid JSON"),
            (
                "%FF%FE",
                "policy document is URL-encoded but does not decode to UTF-8 text",
            ),
            ("%5B%5D", "policy document is a JSON array"),
            ("\"text\"", "policy document is a JSON string"),
        ];
        for (raw, expected) in cases {
            let error = decode_document(raw).expect_err(raw);
            assert!(
                error.to_string().starts_with(expected),
                "{raw:?} gave {error}"
            );
        }
    }

    #[test]
    fn analyze_malformed_documents_as_unreadable() {
        let documents = [
            json!({ "Version": "2012-10-17" }),
            json!({ "Statement": 5 }),
            json!([1, 2]),
            json!({ "Statement": [
                { "Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*" },
                { "Effect": "Maybe", "Action": "*", "Resource": "*" },
                { "Effect": "Allow", "Action": [1], "Resource": "*" },
                { "Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*" },
                { "Effect": "Allow", "Action": "*" },
                { "Effect": "Allow", "Action": "*", "Resource": "*", "Condition": "always" },
                "not a statement"
            ]}),
        ];
        for document in &documents {
            let analysis = analyze(&[inline("broken", document)]);
            assert_eq!(analysis.unreadable, vec!["broken"], "{document}");
            assert!(analysis.admin.is_empty(), "{document}: {analysis:#?}");
        }

        // The readable statement of the last document still counts.
        let partial = analyze(&[inline("broken", &documents[3])]);
        assert!(
            escalation_of(&partial, "iam:CreateUser").is_some(),
            "{partial:#?}"
        );
    }

    #[test]
    fn statement_errors_name_the_problem() {
        let document = json!({ "Statement": [{ "Effect": "Allow", "Action": "*" }] });
        let statements = parse_statements(&document).expect("statement list");
        let error = statements[0].as_ref().expect_err("no Resource");
        assert_eq!(
            error.to_string(),
            "statement 0 of the policy document has neither Resource nor NotResource"
        );
    }

    #[test]
    fn analyze_empty_list() {
        assert_eq!(analyze(&[]), Analysis::default());
    }

    #[test]
    fn grants_are_not_repeated() {
        let document = json!({ "Statement": [
            { "Effect": "Allow", "Action": ["iam:CreateUser", "iam:*"], "Resource": "*" },
            { "Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*" }
        ]});
        let analysis = analyze(&[inline("twice", &document), inline("twice", &document)]);

        let create_user = analysis
            .escalation
            .iter()
            .filter(|grant| grant.action == "iam:CreateUser")
            .count();
        assert_eq!(create_user, 1, "{analysis:#?}");
    }

    /// The AWS CLI example output of `get-account-authorization-details` contains real
    /// customer and AWS managed policy documents.
    #[test]
    fn analyze_corpus_authorization_details() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpus/awscli-examples/iam_get-account-authorization-details.output1.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipped: no corpus file at {}", path.display());
            return;
        };
        let details: Value = serde_json::from_str(&text).expect("corpus file is JSON");

        let mut found = Vec::new();
        for policy in details["Policies"].as_array().expect("Policies array") {
            let versions = policy["PolicyVersionList"]
                .as_array()
                .expect("PolicyVersionList");
            let default = versions
                .iter()
                .find(|version| version["IsDefaultVersion"] == true)
                .expect("default version");
            found.push((
                policy["PolicyName"].as_str().expect("PolicyName"),
                policy["Arn"].as_str().expect("Arn"),
                &default["Document"],
            ));
        }
        let analyzed = |name: &str| {
            let (name, arn, document) = found.iter().find(|(n, ..)| *n == name).expect(name);
            analyze(&[PolicyInput {
                name,
                arn: Some(arn),
                document: Some(document),
            }])
        };

        let versions = analyzed("create-update-delete-set-managed-policies");
        assert_eq!(
            actions(&versions.escalation),
            vec!["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"],
            "{versions:#?}"
        );

        let read_only = analyzed("S3-read-only-specific-bucket");
        assert_eq!(
            actions(&read_only.wildcard_grants),
            vec!["s3:Get*", "s3:List*"]
        );
        assert_eq!(
            read_only.wildcard_grants[0].resource,
            "arn:aws:s3:::amzn-s3-demo-bucket, arn:aws:s3:::amzn-s3-demo-bucket/*"
        );
        assert!(read_only.escalation.is_empty(), "{read_only:#?}");

        let ec2 = analyzed("AmazonEC2FullAccess");
        assert_eq!(
            actions(&ec2.wildcard_grants),
            vec![
                "ec2:*",
                "elasticloadbalancing:*",
                "cloudwatch:*",
                "autoscaling:*"
            ]
        );
        assert!(
            ec2.admin.is_empty() && ec2.unreadable.is_empty(),
            "{ec2:#?}"
        );
    }
}
