//! The one list of AWS operations keycheck calls, each with the IAM action it needs and
//! whether it investigates (read only) or contains (changes the account).
//!
//! Errors name their operation and permission from this list, `keycheck iam-policy` prints
//! the least-privilege policies from it, and the call recorder flags any operation the
//! code calls that the list lacks. An operation missing here is a bug: the printed policy
//! would then deny a call that keycheck makes.

use serde_json::{Value, json};

/// The reason keycheck calls an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Reads evidence. Never changes the account.
    Investigate,
    /// Contains a leaked key: deactivates, rotates or quarantines. Runs only after an approval.
    Contain,
}

/// One AWS API operation that keycheck calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The IAM service prefix, such as `iam`, `logs` or `access-analyzer`.
    pub service: &'static str,
    /// The service name the SDK records for its calls, such as `IAM` or `CloudWatch Logs`.
    pub sdk_service: &'static str,
    /// The API operation, such as `ListAccessKeys`.
    pub name: &'static str,
    /// The IAM action the operation needs, such as `iam:ListAccessKeys`.
    pub action: &'static str,
    /// Whether the operation investigates or contains.
    pub purpose: Purpose,
}

impl Operation {
    /// Returns the operation as `service:Operation`, such as `iam:ListAccessKeys`, the form
    /// errors and reports use.
    pub fn id(&self) -> String {
        format!("{}:{}", self.service, self.name)
    }
}

/// Declares an operation whose IAM action is `service:Name`, which holds for every
/// operation keycheck calls today.
macro_rules! operation {
    ($purpose:ident, $service:literal, $sdk_service:literal, $name:literal) => {
        Operation {
            service: $service,
            sdk_service: $sdk_service,
            name: $name,
            action: concat!($service, ":", $name),
            purpose: Purpose::$purpose,
        }
    };
}

// Each constant is named after its service and operation, and `OPERATIONS` lists them all.

pub const STS_GET_ACCESS_KEY_INFO: Operation =
    operation!(Investigate, "sts", "STS", "GetAccessKeyInfo");
pub const STS_GET_CALLER_IDENTITY: Operation =
    operation!(Investigate, "sts", "STS", "GetCallerIdentity");
pub const STS_ASSUME_ROLE: Operation = operation!(Investigate, "sts", "STS", "AssumeRole");

pub const IAM_GET_ACCESS_KEY_LAST_USED: Operation =
    operation!(Investigate, "iam", "IAM", "GetAccessKeyLastUsed");
pub const IAM_LIST_ACCESS_KEYS: Operation = operation!(Investigate, "iam", "IAM", "ListAccessKeys");
pub const IAM_GET_USER: Operation = operation!(Investigate, "iam", "IAM", "GetUser");
pub const IAM_LIST_MFA_DEVICES: Operation = operation!(Investigate, "iam", "IAM", "ListMFADevices");
pub const IAM_GET_LOGIN_PROFILE: Operation =
    operation!(Investigate, "iam", "IAM", "GetLoginProfile");
pub const IAM_LIST_GROUPS_FOR_USER: Operation =
    operation!(Investigate, "iam", "IAM", "ListGroupsForUser");
pub const IAM_LIST_ATTACHED_USER_POLICIES: Operation =
    operation!(Investigate, "iam", "IAM", "ListAttachedUserPolicies");
pub const IAM_LIST_USER_POLICIES: Operation =
    operation!(Investigate, "iam", "IAM", "ListUserPolicies");
pub const IAM_GET_USER_POLICY: Operation = operation!(Investigate, "iam", "IAM", "GetUserPolicy");
pub const IAM_LIST_USER_TAGS: Operation = operation!(Investigate, "iam", "IAM", "ListUserTags");
pub const IAM_LIST_GROUP_POLICIES: Operation =
    operation!(Investigate, "iam", "IAM", "ListGroupPolicies");
pub const IAM_GET_GROUP_POLICY: Operation = operation!(Investigate, "iam", "IAM", "GetGroupPolicy");
pub const IAM_LIST_ATTACHED_GROUP_POLICIES: Operation =
    operation!(Investigate, "iam", "IAM", "ListAttachedGroupPolicies");
pub const IAM_GET_POLICY: Operation = operation!(Investigate, "iam", "IAM", "GetPolicy");
pub const IAM_GET_POLICY_VERSION: Operation =
    operation!(Investigate, "iam", "IAM", "GetPolicyVersion");
pub const IAM_GENERATE_CREDENTIAL_REPORT: Operation =
    operation!(Investigate, "iam", "IAM", "GenerateCredentialReport");
pub const IAM_GET_CREDENTIAL_REPORT: Operation =
    operation!(Investigate, "iam", "IAM", "GetCredentialReport");
// Read by containment only, before it acts on a role. They change nothing, so the
// investigation policy, which every keycheck role has, grants them.
pub const IAM_GET_ROLE_POLICY: Operation = operation!(Investigate, "iam", "IAM", "GetRolePolicy");
pub const IAM_LIST_ATTACHED_ROLE_POLICIES: Operation =
    operation!(Investigate, "iam", "IAM", "ListAttachedRolePolicies");

pub const LOGS_DESCRIBE_LOG_GROUPS: Operation =
    operation!(Investigate, "logs", "CloudWatch Logs", "DescribeLogGroups");
pub const LOGS_START_QUERY: Operation =
    operation!(Investigate, "logs", "CloudWatch Logs", "StartQuery");
pub const LOGS_GET_QUERY_RESULTS: Operation =
    operation!(Investigate, "logs", "CloudWatch Logs", "GetQueryResults");
pub const LOGS_STOP_QUERY: Operation =
    operation!(Investigate, "logs", "CloudWatch Logs", "StopQuery");
pub const LOGS_FILTER_LOG_EVENTS: Operation =
    operation!(Investigate, "logs", "CloudWatch Logs", "FilterLogEvents");

pub const CLOUDTRAIL_DESCRIBE_TRAILS: Operation =
    operation!(Investigate, "cloudtrail", "CloudTrail", "DescribeTrails");
pub const CLOUDTRAIL_LOOKUP_EVENTS: Operation =
    operation!(Investigate, "cloudtrail", "CloudTrail", "LookupEvents");

pub const SECURITYHUB_GET_FINDINGS: Operation =
    operation!(Investigate, "securityhub", "SecurityHub", "GetFindings");

pub const GUARDDUTY_LIST_DETECTORS: Operation =
    operation!(Investigate, "guardduty", "GuardDuty", "ListDetectors");
pub const GUARDDUTY_LIST_FINDINGS: Operation =
    operation!(Investigate, "guardduty", "GuardDuty", "ListFindings");
pub const GUARDDUTY_GET_FINDINGS: Operation =
    operation!(Investigate, "guardduty", "GuardDuty", "GetFindings");

pub const ACCESS_ANALYZER_LIST_ANALYZERS: Operation = operation!(
    Investigate,
    "access-analyzer",
    "AccessAnalyzer",
    "ListAnalyzers"
);
pub const ACCESS_ANALYZER_LIST_FINDINGS: Operation = operation!(
    Investigate,
    "access-analyzer",
    "AccessAnalyzer",
    "ListFindings"
);

pub const SECRETSMANAGER_LIST_SECRETS: Operation = operation!(
    Investigate,
    "secretsmanager",
    "Secrets Manager",
    "ListSecrets"
);
pub const SSM_DESCRIBE_PARAMETERS: Operation =
    operation!(Investigate, "ssm", "SSM", "DescribeParameters");
pub const LAMBDA_LIST_FUNCTIONS: Operation =
    operation!(Investigate, "lambda", "Lambda", "ListFunctions");
pub const CODEBUILD_LIST_PROJECTS: Operation =
    operation!(Investigate, "codebuild", "CodeBuild", "ListProjects");
pub const CODEBUILD_BATCH_GET_PROJECTS: Operation =
    operation!(Investigate, "codebuild", "CodeBuild", "BatchGetProjects");
pub const ECS_LIST_TASK_DEFINITIONS: Operation =
    operation!(Investigate, "ecs", "ECS", "ListTaskDefinitions");
pub const ECS_DESCRIBE_TASK_DEFINITION: Operation =
    operation!(Investigate, "ecs", "ECS", "DescribeTaskDefinition");

pub const IAM_UPDATE_ACCESS_KEY: Operation = operation!(Contain, "iam", "IAM", "UpdateAccessKey");
pub const IAM_CREATE_ACCESS_KEY: Operation = operation!(Contain, "iam", "IAM", "CreateAccessKey");
/// Removes the new key of a rotation whose secret could not be stored.
pub const IAM_DELETE_ACCESS_KEY: Operation = operation!(Contain, "iam", "IAM", "DeleteAccessKey");
pub const IAM_PUT_USER_POLICY: Operation = operation!(Contain, "iam", "IAM", "PutUserPolicy");
pub const IAM_PUT_ROLE_POLICY: Operation = operation!(Contain, "iam", "IAM", "PutRolePolicy");
pub const IAM_ATTACH_USER_POLICY: Operation = operation!(Contain, "iam", "IAM", "AttachUserPolicy");
pub const IAM_ATTACH_ROLE_POLICY: Operation = operation!(Contain, "iam", "IAM", "AttachRolePolicy");
pub const SECRETSMANAGER_CREATE_SECRET: Operation =
    operation!(Contain, "secretsmanager", "Secrets Manager", "CreateSecret");
pub const SECRETSMANAGER_PUT_SECRET_VALUE: Operation = operation!(
    Contain,
    "secretsmanager",
    "Secrets Manager",
    "PutSecretValue"
);
pub const SECRETSMANAGER_TAG_RESOURCE: Operation =
    operation!(Contain, "secretsmanager", "Secrets Manager", "TagResource");
pub const SECRETSMANAGER_DESCRIBE_SECRET: Operation = operation!(
    Contain,
    "secretsmanager",
    "Secrets Manager",
    "DescribeSecret"
);

/// Every operation keycheck calls: investigation first, then containment.
///
/// The containment entries are what `remediation` calls to deactivate, rotate into Secrets
/// Manager, revoke sessions with an inline deny and attach the quarantine policy.
pub const OPERATIONS: &[Operation] = &[
    STS_GET_ACCESS_KEY_INFO,
    STS_GET_CALLER_IDENTITY,
    STS_ASSUME_ROLE,
    IAM_GET_ACCESS_KEY_LAST_USED,
    IAM_LIST_ACCESS_KEYS,
    IAM_GET_USER,
    IAM_LIST_MFA_DEVICES,
    IAM_GET_LOGIN_PROFILE,
    IAM_LIST_GROUPS_FOR_USER,
    IAM_LIST_ATTACHED_USER_POLICIES,
    IAM_LIST_USER_POLICIES,
    IAM_GET_USER_POLICY,
    IAM_LIST_USER_TAGS,
    IAM_LIST_GROUP_POLICIES,
    IAM_GET_GROUP_POLICY,
    IAM_LIST_ATTACHED_GROUP_POLICIES,
    IAM_GET_POLICY,
    IAM_GET_POLICY_VERSION,
    IAM_GENERATE_CREDENTIAL_REPORT,
    IAM_GET_CREDENTIAL_REPORT,
    IAM_GET_ROLE_POLICY,
    IAM_LIST_ATTACHED_ROLE_POLICIES,
    LOGS_DESCRIBE_LOG_GROUPS,
    LOGS_START_QUERY,
    LOGS_GET_QUERY_RESULTS,
    LOGS_STOP_QUERY,
    LOGS_FILTER_LOG_EVENTS,
    CLOUDTRAIL_DESCRIBE_TRAILS,
    CLOUDTRAIL_LOOKUP_EVENTS,
    SECURITYHUB_GET_FINDINGS,
    GUARDDUTY_LIST_DETECTORS,
    GUARDDUTY_LIST_FINDINGS,
    GUARDDUTY_GET_FINDINGS,
    ACCESS_ANALYZER_LIST_ANALYZERS,
    ACCESS_ANALYZER_LIST_FINDINGS,
    SECRETSMANAGER_LIST_SECRETS,
    SSM_DESCRIBE_PARAMETERS,
    LAMBDA_LIST_FUNCTIONS,
    CODEBUILD_LIST_PROJECTS,
    CODEBUILD_BATCH_GET_PROJECTS,
    ECS_LIST_TASK_DEFINITIONS,
    ECS_DESCRIBE_TASK_DEFINITION,
    IAM_UPDATE_ACCESS_KEY,
    IAM_CREATE_ACCESS_KEY,
    IAM_DELETE_ACCESS_KEY,
    IAM_PUT_USER_POLICY,
    IAM_PUT_ROLE_POLICY,
    IAM_ATTACH_USER_POLICY,
    IAM_ATTACH_ROLE_POLICY,
    SECRETSMANAGER_CREATE_SECRET,
    SECRETSMANAGER_PUT_SECRET_VALUE,
    SECRETSMANAGER_TAG_RESOURCE,
    SECRETSMANAGER_DESCRIBE_SECRET,
];

/// Finds the operation the SDK recorded a call of, by the SDK's service name (`IAM`,
/// `CloudWatch Logs`) and operation name.
pub fn find(sdk_service: &str, name: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|op| op.sdk_service == sdk_service && op.name == name)
}

/// Returns the IAM actions of one purpose, sorted and without duplicates.
pub fn actions(purpose: Purpose) -> Vec<&'static str> {
    let mut actions: Vec<&'static str> = OPERATIONS
        .iter()
        .filter(|op| op.purpose == purpose)
        .map(|op| op.action)
        .collect();
    actions.sort_unstable();
    actions.dedup();
    actions
}

/// Builds the least-privilege identity policy for one purpose, as the JSON document
/// `keycheck iam-policy` prints.
///
/// `sts:AssumeRole` is granted only on `assumable_roles` (the configured per-account
/// roles) and left out when there are none. Every other action gets `"Resource": "*"`,
/// because the resources keycheck reads (users, log groups, findings) are only known
/// during an investigation. Each role keycheck assumes needs the investigation policy
/// too, attached in its own account.
pub fn iam_policy(purpose: Purpose, assumable_roles: &[&str]) -> Value {
    let (sid, mut actions) = match purpose {
        Purpose::Investigate => ("KeycheckInvestigate", actions(Purpose::Investigate)),
        Purpose::Contain => ("KeycheckContain", actions(Purpose::Contain)),
    };
    actions.retain(|action| *action != STS_ASSUME_ROLE.action);

    let mut statements = vec![json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": "*",
    })];
    if purpose == Purpose::Investigate && !assumable_roles.is_empty() {
        statements.push(json!({
            "Sid": "KeycheckAssumeAccountRoles",
            "Effect": "Allow",
            "Action": STS_ASSUME_ROLE.action,
            "Resource": assumable_roles,
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn operations_are_unique() {
        let mut seen = HashSet::new();
        for op in OPERATIONS {
            assert!(
                seen.insert((op.sdk_service, op.name)),
                "{} listed twice",
                op.id()
            );
        }
    }

    #[test]
    fn action_is_service_and_name() {
        for op in OPERATIONS {
            assert_eq!(op.action, op.id(), "the IAM action of {}", op.id());
        }
    }

    #[test]
    fn find_uses_sdk_service_name() {
        let found = find("CloudWatch Logs", "StartQuery").expect("StartQuery is listed");
        assert_eq!(found.action, "logs:StartQuery");
        assert!(find("IAM", "DeleteUser").is_none());
    }

    #[test]
    fn investigate_policy_reads_only() {
        let policy = iam_policy(Purpose::Investigate, &[]);
        let actions = policy["Statement"][0]["Action"].as_array().unwrap();
        assert!(actions.iter().any(|a| a == "iam:ListAccessKeys"));
        assert!(actions.iter().all(|a| a != "iam:UpdateAccessKey"));
        assert!(actions.iter().all(|a| a != "sts:AssumeRole"));
        assert_eq!(policy["Statement"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn investigate_policy_scopes_assume_role() {
        let role = "arn:aws:iam::111122223333:role/keycheck";
        let policy = iam_policy(Purpose::Investigate, &[role]);
        let assume = &policy["Statement"][1];
        assert_eq!(assume["Action"], "sts:AssumeRole");
        assert_eq!(assume["Resource"][0], role);
    }

    #[test]
    fn contain_policy_holds_changes_only() {
        let policy = iam_policy(
            Purpose::Contain,
            &["arn:aws:iam::111122223333:role/keycheck"],
        );
        let actions = policy["Statement"][0]["Action"].as_array().unwrap();
        assert!(actions.iter().any(|a| a == "iam:UpdateAccessKey"));
        assert!(actions.iter().any(|a| a == "secretsmanager:PutSecretValue"));
        assert!(actions.iter().all(|a| a != "iam:ListAccessKeys"));
        assert_eq!(
            policy["Statement"].as_array().unwrap().len(),
            1,
            "no AssumeRole statement"
        );
    }
}
