//! `keycheck iam-policy`: the least-privilege IAM policies keycheck needs, built from the
//! one list of AWS operations the code calls (`keycheck_core::evidence::live::operations`).
//!
//! There are two policies. The investigation policy (read only) goes on every role keycheck
//! uses. The containment policy (deactivate, rotate, revoke sessions, quarantine) goes only on
//! roles that may change an account, next to the investigation policy. This module decides
//! how the actions are grouped into statements and which resources each statement allows.
//! The actions themselves come only from the operations list, so a printed policy never
//! grants an operation the code does not call. An operation that no statement rule covers
//! is an error, not a silent grant on `*`.
//!
//! `deploy/terraform/policies/` contains the JSON this prints, and a test fails when the
//! two differ.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use keycheck_core::evidence::live::operations::{OPERATIONS, Operation, Purpose, STS_ASSUME_ROLE};
use serde::Serialize;

/// Arguments of `keycheck iam-policy`.
#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// The policy to print: `investigate` (read only) or `contain` (changes the account).
    /// Default: both, each under a label.
    #[arg(long, value_enum, required_if_eq("format", "json"))]
    pub purpose: Option<PolicyPurpose>,

    /// `text` prints each policy under a label. `json` prints exactly one policy document,
    /// ready for `aws iam put-role-policy` or Terraform, so it needs --purpose.
    #[arg(long, value_enum, default_value_t = PolicyFormat::Text)]
    pub format: PolicyFormat,

    /// Role ARN the investigation policy may assume with `sts:AssumeRole`, such as
    /// `arn:aws:iam::111122223333:role/keycheck-investigate` in another account. Repeat the
    /// option for several roles. Without it, the policy grants no `sts:AssumeRole`.
    #[arg(long = "assume-role", value_name = "ROLE_ARN")]
    pub assume_roles: Vec<String>,
}

/// One of the two policies keycheck needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PolicyPurpose {
    /// Read only: every call an investigation makes.
    Investigate,
    /// Containment: deactivate or rotate the key, revoke its sessions, quarantine its owner.
    Contain,
}

impl PolicyPurpose {
    fn purpose(self) -> Purpose {
        match self {
            PolicyPurpose::Investigate => Purpose::Investigate,
            PolicyPurpose::Contain => Purpose::Contain,
        }
    }

    fn label(self) -> &'static str {
        match self {
            PolicyPurpose::Investigate => {
                "# Investigation policy (read only). Attach it to every role keycheck uses: the role\n\
                 # it runs as and the role it assumes in each account."
            }
            PolicyPurpose::Contain => {
                "# Containment policy: deactivate or rotate a key, revoke its sessions, quarantine\n\
                 # its owner. Attach it, next to the investigation policy, only to roles in accounts\n\
                 # where keycheck may contain keys. It may write inline policies on any role, so also\n\
                 # deny iam:PutRolePolicy and iam:AttachRolePolicy on keycheck's own roles\n\
                 # (deploy/terraform does)."
            }
        }
    }
}

/// Output format of `keycheck iam-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PolicyFormat {
    /// Each policy under a comment line that explains its use, for people.
    Text,
    /// One policy document and nothing else, for tools.
    Json,
}

/// An IAM identity policy document. Fields serialize in the order IAM's documentation
/// writes them, so the output reads like a hand-written policy.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    /// The policy language version, always `2012-10-17`.
    pub version: &'static str,
    /// The statements, in the fixed order of the statement rules.
    pub statement: Vec<Statement>,
}

/// One `Allow` statement of a policy document.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    /// Statement ID, unique within the document.
    pub sid: &'static str,
    /// Always `Allow`: keycheck's policies grant and never deny.
    pub effect: &'static str,
    /// IAM actions, sorted.
    pub action: Vec<&'static str>,
    /// One resource or a list of them, each `*` or an ARN pattern.
    pub resource: Resource,
    /// Condition operator, then condition key, then the allowed values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<BTreeMap<&'static str, BTreeMap<&'static str, Vec<&'static str>>>>,
}

/// The `Resource` element: one string when there is one resource, as IAM's examples write
/// it, else a list.
#[derive(Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Resource {
    /// A single resource, such as `*`.
    One(String),
    /// Several resources.
    Many(Vec<String>),
}

impl Resource {
    fn from_list(mut resources: Vec<String>) -> Resource {
        if resources.len() == 1 {
            return Resource::One(resources.remove(0));
        }
        Resource::Many(resources)
    }
}

/// The selection of listed operations that a statement rule takes.
enum Takes {
    /// Every operation of these IAM service prefixes.
    Services(&'static [&'static str]),
    /// Exactly these IAM actions.
    Actions(&'static [&'static str]),
    /// `sts:AssumeRole`, allowed only on the roles given on the command line.
    AssumeRole,
}

/// The recipe for one statement of a printed policy: its ID, the listed operations it
/// takes, and the resources and condition it allows them on.
struct StatementRule {
    sid: &'static str,
    purpose: Purpose,
    takes: Takes,
    resources: &'static [&'static str],
    condition: Option<(&'static str, &'static str, &'static [&'static str])>,
}

// NOTE: the ARN patterns below name the `aws` partition only, so the printed policies do
// not work as they are in AWS GovCloud (`aws-us-gov`) or China (`aws-cn`).
const ANY_USER: &str = "arn:aws:iam::*:user/*";
const ANY_ROLE: &str = "arn:aws:iam::*:role/*";

/// The statement rules, in the order the statements are printed. Each operation of the
/// list must match exactly one rule of its purpose.
const RULES: &[StatementRule] = &[
    // The key's owner, its groups and its policies are known only during an
    // investigation, and the credential report and the STS calls support no resource-level
    // permissions, so these reads stay on `*`.
    StatementRule {
        sid: "ReadKeyOwnerAndPermissions",
        purpose: Purpose::Investigate,
        takes: Takes::Services(&["iam", "sts"]),
        resources: &["*"],
        condition: None,
    },
    // The log groups that receive CloudTrail are configured or discovered at run time, and
    // LookupEvents supports no resource-level permissions.
    StatementRule {
        sid: "ReadCloudTrailEvents",
        purpose: Purpose::Investigate,
        takes: Takes::Services(&["cloudtrail", "logs"]),
        resources: &["*"],
        condition: None,
    },
    StatementRule {
        sid: "ReadSecurityFindings",
        purpose: Purpose::Investigate,
        takes: Takes::Services(&["access-analyzer", "guardduty", "securityhub"]),
        resources: &["*"],
        condition: None,
    },
    // These calls return names, tags and workload environment variables, but no Secrets
    // Manager or Parameter Store value. Environment variables may contain secrets, the
    // leaked key among them, which keycheck matches and never prints.
    StatementRule {
        sid: "FindWhereKeyIsStored",
        purpose: Purpose::Investigate,
        takes: Takes::Services(&["codebuild", "ecs", "lambda", "secretsmanager", "ssm"]),
        resources: &["*"],
        condition: None,
    },
    // Only the roles named with --assume-role: granting `sts:AssumeRole` on `*` would let
    // keycheck assume any role that trusts its account.
    StatementRule {
        sid: "AssumeAccountRoles",
        purpose: Purpose::Investigate,
        takes: Takes::AssumeRole,
        resources: &[],
        condition: None,
    },
    // A long-term key that another principal may change belongs to an IAM user (only the
    // root user can change the root user's keys), so no other resource type is needed.
    // `iam:DeleteAccessKey` removes only the new key of a rotation whose secret could not
    // be stored.
    StatementRule {
        sid: "DeactivateAndRotateKey",
        purpose: Purpose::Contain,
        takes: Takes::Actions(&["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:UpdateAccessKey"]),
        resources: &[ANY_USER],
        condition: None,
    },
    // Sessions are revoked with an inline deny on the user or on the role that issued them.
    // IAM has no condition key on an inline policy's content, so this grant cannot be
    // narrowed further, which is one reason containment needs an approval in chat.
    StatementRule {
        sid: "RevokeSessions",
        purpose: Purpose::Contain,
        takes: Takes::Actions(&["iam:PutRolePolicy", "iam:PutUserPolicy"]),
        resources: &[ANY_ROLE, ANY_USER],
        condition: None,
    },
    // Attaching any managed policy would let the containment role grant administrator
    // access, so the condition allows only AWS's compromised-key quarantine policies
    // (`AWSCompromisedKeyQuarantine`, `…V2`, `…V3`).
    StatementRule {
        sid: "AttachQuarantinePolicy",
        purpose: Purpose::Contain,
        takes: Takes::Actions(&["iam:AttachRolePolicy", "iam:AttachUserPolicy"]),
        resources: &[ANY_ROLE, ANY_USER],
        condition: Some((
            "ArnLike",
            "iam:PolicyARN",
            &["arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine*"],
        )),
    },
    // Rotation stores the new secret access key in Secrets Manager under the `keycheck/`
    // name prefix, so the containment role can create and write those secrets and no others.
    StatementRule {
        sid: "StoreRotatedKey",
        purpose: Purpose::Contain,
        takes: Takes::Actions(&[
            "secretsmanager:CreateSecret",
            "secretsmanager:DescribeSecret",
            "secretsmanager:PutSecretValue",
            "secretsmanager:TagResource",
        ]),
        resources: &["arn:aws:secretsmanager:*:*:secret:keycheck/*"],
        condition: None,
    },
];

impl StatementRule {
    fn takes(&self, operation: &Operation) -> bool {
        if operation.purpose != self.purpose {
            return false;
        }
        let is_assume_role = operation.action == STS_ASSUME_ROLE.action;
        match self.takes {
            Takes::AssumeRole => is_assume_role,
            Takes::Services(services) => !is_assume_role && services.contains(&operation.service),
            Takes::Actions(actions) => actions.contains(&operation.action),
        }
    }
}

/// Builds the policy document of one purpose from `operations`, allowing `sts:AssumeRole`
/// only on `assume_roles`.
///
/// Fails when an operation of that purpose matches no statement rule, naming it, because
/// granting it on `*` unreviewed could give the containment role more than it needs.
pub fn policy_document(
    purpose: Purpose,
    operations: &[Operation],
    assume_roles: &[String],
) -> anyhow::Result<PolicyDocument> {
    let uncovered: Vec<&str> = operations
        .iter()
        .filter(|operation| {
            operation.purpose == purpose && !RULES.iter().any(|rule| rule.takes(operation))
        })
        .map(|operation| operation.action)
        .collect();
    anyhow::ensure!(
        uncovered.is_empty(),
        "no statement rule of the {purpose:?} policy covers {}: add them to a rule in bot/src/iam_policy.rs",
        uncovered.join(", ")
    );

    let mut statements = Vec::new();
    for rule in RULES.iter().filter(|rule| rule.purpose == purpose) {
        let mut actions: Vec<&'static str> = operations
            .iter()
            .filter(|operation| rule.takes(operation))
            .map(|operation| operation.action)
            .collect();
        actions.sort_unstable();
        actions.dedup();
        if actions.is_empty() {
            continue;
        }

        let resources: Vec<String> = match rule.takes {
            Takes::AssumeRole => assume_roles.to_vec(),
            _ => rule
                .resources
                .iter()
                .map(|resource| resource.to_string())
                .collect(),
        };
        if resources.is_empty() {
            continue;
        }

        let condition = rule.condition.map(|(operator, key, values)| {
            BTreeMap::from([(operator, BTreeMap::from([(key, values.to_vec())]))])
        });
        statements.push(Statement {
            sid: rule.sid,
            effect: "Allow",
            action: actions,
            resource: Resource::from_list(resources),
            condition,
        });
    }

    Ok(PolicyDocument {
        version: "2012-10-17",
        statement: statements,
    })
}

/// Checks that `arn` names an IAM role, such as `arn:aws:iam::111122223333:role/keycheck`.
/// The account may be `*` and the name may end in `*`, as IAM allows in a `Resource`.
fn check_role_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4] == "*"
            || (parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit())))
        && parts[5]
            .strip_prefix("role/")
            .is_some_and(|name| !name.is_empty());
    if well_formed {
        return Ok(());
    }
    Err(format!(
        "--assume-role {arn:?} is not an IAM role ARN: write one such as arn:aws:iam::111122223333:role/keycheck-investigate"
    ))
}

/// Runs `keycheck iam-policy`.
pub fn run(args: &IamPolicyArgs) -> anyhow::Result<ExitCode> {
    for arn in &args.assume_roles {
        if let Err(message) = check_role_arn(arn) {
            eprintln!("keycheck: {message}");
            return Ok(ExitCode::from(2));
        }
    }

    let purposes = match args.purpose {
        Some(purpose) => vec![purpose],
        None => vec![PolicyPurpose::Investigate, PolicyPurpose::Contain],
    };
    let mut stdout = std::io::stdout().lock();
    for (index, purpose) in purposes.into_iter().enumerate() {
        let document = policy_document(purpose.purpose(), OPERATIONS, &args.assume_roles)?;
        let json =
            serde_json::to_string_pretty(&document).context("cannot serialize the policy")?;
        if args.format == PolicyFormat::Text {
            if index > 0 {
                writeln!(stdout)?;
            }
            writeln!(stdout, "{}", purpose.label())?;
        }
        writeln!(stdout, "{json}")?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn all_actions(document: &PolicyDocument) -> Vec<&'static str> {
        document
            .statement
            .iter()
            .flat_map(|s| s.action.iter().copied())
            .collect()
    }

    fn statement<'a>(document: &'a PolicyDocument, sid: &str) -> &'a Statement {
        document
            .statement
            .iter()
            .find(|s| s.sid == sid)
            .unwrap_or_else(|| panic!("no statement {sid} in {document:#?}"))
    }

    #[test]
    fn every_listed_operation_matches_one_rule() {
        for operation in OPERATIONS {
            let rules: Vec<&str> = RULES
                .iter()
                .filter(|r| r.takes(operation))
                .map(|r| r.sid)
                .collect();
            assert_eq!(
                rules.len(),
                1,
                "{} matches rules {rules:?}",
                operation.action
            );
        }
    }

    #[test]
    fn rule_actions_exist_in_list() {
        let listed: HashSet<&str> = OPERATIONS.iter().map(|o| o.action).collect();
        for rule in RULES {
            if let Takes::Actions(actions) = rule.takes {
                for action in actions {
                    assert!(
                        listed.contains(action),
                        "rule {} names {action}, which the list lacks",
                        rule.sid
                    );
                }
            }
        }
    }

    #[test]
    fn policies_grant_exactly_the_listed_actions() {
        let roles = vec!["arn:aws:iam::111122223333:role/keycheck-investigate".to_string()];
        for purpose in [Purpose::Investigate, Purpose::Contain] {
            let document = policy_document(purpose, OPERATIONS, &roles).unwrap();
            let mut granted = all_actions(&document);
            granted.sort_unstable();
            let mut listed: Vec<&str> = OPERATIONS
                .iter()
                .filter(|o| o.purpose == purpose)
                .map(|o| o.action)
                .collect();
            listed.sort_unstable();
            listed.dedup();
            assert_eq!(granted, listed, "{purpose:?}");
        }
    }

    #[test]
    fn investigate_policy_has_no_contain_action() {
        let document = policy_document(Purpose::Investigate, OPERATIONS, &[]).unwrap();
        let granted = all_actions(&document);
        for operation in OPERATIONS.iter().filter(|o| o.purpose == Purpose::Contain) {
            assert!(
                !granted.contains(&operation.action),
                "{} is in the investigation policy",
                operation.action
            );
        }
    }

    #[test]
    fn assume_role_only_with_roles() {
        let without = policy_document(Purpose::Investigate, OPERATIONS, &[]).unwrap();
        assert!(!all_actions(&without).contains(&"sts:AssumeRole"));

        let role = "arn:aws:iam::111122223333:role/keycheck-investigate".to_string();
        let with = policy_document(
            Purpose::Investigate,
            OPERATIONS,
            std::slice::from_ref(&role),
        )
        .unwrap();
        let assume = statement(&with, "AssumeAccountRoles");
        assert_eq!(assume.action, vec!["sts:AssumeRole"]);
        assert_eq!(assume.resource, Resource::One(role));

        let contain = policy_document(Purpose::Contain, OPERATIONS, &[]).unwrap();
        assert!(!all_actions(&contain).contains(&"sts:AssumeRole"));
    }

    #[test]
    fn contain_statements_are_scoped() {
        let document = policy_document(Purpose::Contain, OPERATIONS, &[]).unwrap();
        for statement in &document.statement {
            assert_ne!(
                statement.resource,
                Resource::One("*".to_string()),
                "{} allows *",
                statement.sid
            );
        }
        let keys = statement(&document, "DeactivateAndRotateKey");
        assert_eq!(keys.resource, Resource::One(ANY_USER.to_string()));
        let secrets = statement(&document, "StoreRotatedKey");
        assert_eq!(
            secrets.resource,
            Resource::One("arn:aws:secretsmanager:*:*:secret:keycheck/*".to_string())
        );
    }

    #[test]
    fn quarantine_attach_limited_to_aws_policies() {
        let document = policy_document(Purpose::Contain, OPERATIONS, &[]).unwrap();
        let attach = statement(&document, "AttachQuarantinePolicy");
        let condition = attach
            .condition
            .as_ref()
            .expect("a condition on iam:PolicyARN");
        assert_eq!(
            condition["ArnLike"]["iam:PolicyARN"],
            vec!["arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine*"]
        );
    }

    #[test]
    fn uncovered_operation_rejected_by_name() {
        let unknown = Operation {
            service: "iam",
            sdk_service: "IAM",
            name: "DeleteUser",
            action: "iam:DeleteUser",
            purpose: Purpose::Contain,
        };
        let error = policy_document(Purpose::Contain, &[unknown], &[]).unwrap_err();
        assert!(error.to_string().contains("iam:DeleteUser"), "{error}");
    }

    #[test]
    fn json_is_deterministic_and_ordered() {
        let first = serde_json::to_string_pretty(
            &policy_document(Purpose::Investigate, OPERATIONS, &[]).unwrap(),
        )
        .unwrap();
        let second = serde_json::to_string_pretty(
            &policy_document(Purpose::Investigate, OPERATIONS, &[]).unwrap(),
        )
        .unwrap();
        assert_eq!(first, second);
        let version = first.find("\"Version\"").unwrap();
        let statement = first.find("\"Statement\"").unwrap();
        assert!(version < statement, "{first}");
        let sid = first.find("\"Sid\"").unwrap();
        let effect = first.find("\"Effect\"").unwrap();
        let action = first.find("\"Action\"").unwrap();
        assert!(sid < effect, "{first}");
        assert!(effect < action, "{first}");
    }

    #[test]
    fn sids_unique_and_alphanumeric() {
        let mut seen = HashSet::new();
        for rule in RULES {
            assert!(seen.insert(rule.sid), "{} used twice", rule.sid);
            assert!(
                rule.sid.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{} has a character IAM rejects",
                rule.sid
            );
        }
    }

    #[test]
    fn policies_fit_role_policy_quota() {
        // IAM counts a role's inline policies together, without whitespace, against
        // 10,240 characters, and one managed policy against 6,144.
        let roles = vec!["arn:aws:iam::111122223333:role/keycheck-investigate".to_string()];
        let mut total = 0;
        for purpose in [Purpose::Investigate, Purpose::Contain] {
            let json =
                serde_json::to_string(&policy_document(purpose, OPERATIONS, &roles).unwrap())
                    .unwrap();
            assert!(
                json.len() <= 6_144,
                "{purpose:?} policy is {} characters",
                json.len()
            );
            total += json.len();
        }
        assert!(total <= 10_240, "both policies are {total} characters");
    }

    #[test]
    fn role_arn_check() {
        let valid = [
            "arn:aws:iam::111122223333:role/keycheck",
            "arn:aws:iam::*:role/keycheck-investigate",
            "arn:aws-us-gov:iam::111122223333:role/path/keycheck",
        ];
        for arn in valid {
            assert_eq!(check_role_arn(arn), Ok(()), "{arn}");
        }
        let invalid = [
            "keycheck",
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::1111:role/keycheck",
            "arn:aws:sts::111122223333:role/keycheck",
            "arn:aws:iam::111122223333:role/",
        ];
        for arn in invalid {
            let message = check_role_arn(arn).unwrap_err();
            assert!(
                message.contains("is not an IAM role ARN"),
                "{arn}: {message}"
            );
        }
    }
}
