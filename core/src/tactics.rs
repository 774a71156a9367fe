//! Classification of AWS API calls by what an attacker achieves with them, for the
//! diagnosis headings: defense evasion, persistence, privilege escalation, and so on.
//!
//! The table follows the tactics of MITRE ATT&CK's cloud matrix and the technique
//! catalogue of Stratus Red Team (DataDog), which detonates each technique with real API
//! calls. A call appears under the tactic it most often serves. `CreateLoginProfile` is
//! persistence because it opens a new way in, and `UpdateLoginProfile` is privilege
//! escalation because it takes over someone else's console access.

use serde::{Deserialize, Serialize};

/// The goal an attacker reaches with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tactic {
    DefenseEvasion,
    Persistence,
    PrivilegeEscalation,
    SecretsRead,
    CredentialAccess,
    Exfiltration,
    Execution,
    LateralMovement,
    Impact,
    TemporaryCredentials,
    RoleAssumption,
    Discovery,
}

impl Tactic {
    /// Returns the heading the diagnosis files calls of this tactic under.
    pub fn heading(self) -> &'static str {
        match self {
            Tactic::DefenseEvasion => "Defense evasion",
            Tactic::Persistence => "Persistence",
            Tactic::PrivilegeEscalation => "Privilege escalation",
            Tactic::SecretsRead => "Secrets read",
            Tactic::CredentialAccess => "Credential access",
            Tactic::Exfiltration => "Exfiltration and external sharing",
            Tactic::Execution => "Execution on workloads",
            Tactic::LateralMovement => "Lateral movement",
            Tactic::Impact => "Impact",
            Tactic::TemporaryCredentials => "Temporary credentials minted",
            Tactic::RoleAssumption => "Cross-account activity and role assumption",
            Tactic::Discovery => "Discovery",
        }
    }

    /// Returns true for tactics that make a key suspicious on their own, whatever the source.
    pub fn is_high_risk(self) -> bool {
        matches!(
            self,
            Tactic::DefenseEvasion
                | Tactic::Persistence
                | Tactic::PrivilegeEscalation
                | Tactic::Exfiltration
                | Tactic::LateralMovement
        )
    }
}

/// Calls by tactic, as `(event source prefix, event name)`. Lambda's versioned event names
/// (`UpdateFunctionCode20150331v2`) are matched without their version suffix.
const CALLS: &[(Tactic, &str, &str)] = &[
    // Turning off or blinding the logs and detectors that would show the attacker.
    (Tactic::DefenseEvasion, "cloudtrail", "StopLogging"),
    (Tactic::DefenseEvasion, "cloudtrail", "DeleteTrail"),
    (Tactic::DefenseEvasion, "cloudtrail", "UpdateTrail"),
    (Tactic::DefenseEvasion, "cloudtrail", "PutEventSelectors"),
    (Tactic::DefenseEvasion, "ec2", "DeleteFlowLogs"),
    (Tactic::DefenseEvasion, "route53resolver", "DeleteResolverQueryLogConfig"),
    (Tactic::DefenseEvasion, "route53resolver", "DisassociateResolverQueryLogConfig"),
    (Tactic::DefenseEvasion, "organizations", "LeaveOrganization"),
    (Tactic::DefenseEvasion, "guardduty", "DeleteDetector"),
    (Tactic::DefenseEvasion, "guardduty", "UpdateDetector"),
    (Tactic::DefenseEvasion, "guardduty", "DisassociateFromMasterAccount"),
    (Tactic::DefenseEvasion, "guardduty", "DisassociateFromAdministratorAccount"),
    (Tactic::DefenseEvasion, "guardduty", "CreateIPSet"),
    (Tactic::DefenseEvasion, "securityhub", "DisableSecurityHub"),
    (Tactic::DefenseEvasion, "config", "StopConfigurationRecorder"),
    (Tactic::DefenseEvasion, "config", "DeleteConfigurationRecorder"),
    (Tactic::DefenseEvasion, "config", "DeleteDeliveryChannel"),
    (Tactic::DefenseEvasion, "logs", "DeleteLogGroup"),
    (Tactic::DefenseEvasion, "logs", "DeleteLogStream"),
    (Tactic::DefenseEvasion, "access-analyzer", "DeleteAnalyzer"),
    // New ways back in that survive the key's deactivation.
    (Tactic::Persistence, "iam", "CreateUser"),
    (Tactic::Persistence, "iam", "CreateAccessKey"),
    (Tactic::Persistence, "iam", "CreateLoginProfile"),
    (Tactic::Persistence, "iam", "CreateRole"),
    (Tactic::Persistence, "iam", "UpdateAssumeRolePolicy"),
    (Tactic::Persistence, "iam", "UploadSSHPublicKey"),
    (Tactic::Persistence, "iam", "CreateServiceSpecificCredential"),
    (Tactic::Persistence, "iam", "CreateVirtualMFADevice"),
    (Tactic::Persistence, "iam", "EnableMFADevice"),
    (Tactic::Persistence, "iam", "CreateOpenIDConnectProvider"),
    (Tactic::Persistence, "iam", "CreateSAMLProvider"),
    (Tactic::Persistence, "rolesanywhere", "CreateTrustAnchor"),
    (Tactic::Persistence, "rolesanywhere", "CreateProfile"),
    (Tactic::Persistence, "lambda", "AddPermission"),
    (Tactic::Persistence, "lambda", "UpdateFunctionConfiguration"),
    (Tactic::Persistence, "lambda", "UpdateFunctionCode"),
    (Tactic::Persistence, "lambda", "CreateFunction"),
    (Tactic::Persistence, "lambda", "PublishLayerVersion"),
    (Tactic::Persistence, "ec2", "CreateKeyPair"),
    (Tactic::Persistence, "ec2", "ImportKeyPair"),
    (Tactic::Persistence, "sso", "CreatePermissionSet"),
    // Giving a principal more power than it had.
    (Tactic::PrivilegeEscalation, "iam", "AttachUserPolicy"),
    (Tactic::PrivilegeEscalation, "iam", "AttachGroupPolicy"),
    (Tactic::PrivilegeEscalation, "iam", "AttachRolePolicy"),
    (Tactic::PrivilegeEscalation, "iam", "PutUserPolicy"),
    (Tactic::PrivilegeEscalation, "iam", "PutGroupPolicy"),
    (Tactic::PrivilegeEscalation, "iam", "PutRolePolicy"),
    (Tactic::PrivilegeEscalation, "iam", "CreatePolicyVersion"),
    (Tactic::PrivilegeEscalation, "iam", "SetDefaultPolicyVersion"),
    (Tactic::PrivilegeEscalation, "iam", "AddUserToGroup"),
    (Tactic::PrivilegeEscalation, "iam", "UpdateLoginProfile"),
    (Tactic::PrivilegeEscalation, "iam", "DeleteUserPermissionsBoundary"),
    (Tactic::PrivilegeEscalation, "iam", "DeleteRolePermissionsBoundary"),
    (Tactic::PrivilegeEscalation, "iam", "PutUserPermissionsBoundary"),
    (Tactic::PrivilegeEscalation, "iam", "PassRole"),
    // Reading stored secrets.
    (Tactic::SecretsRead, "secretsmanager", "GetSecretValue"),
    (Tactic::SecretsRead, "secretsmanager", "BatchGetSecretValue"),
    (Tactic::SecretsRead, "ssm", "GetParameter"),
    (Tactic::SecretsRead, "ssm", "GetParameters"),
    (Tactic::SecretsRead, "ssm", "GetParametersByPath"),
    (Tactic::SecretsRead, "ssm", "GetParameterHistory"),
    // Harvesting other credentials.
    (Tactic::CredentialAccess, "ec2", "GetPasswordData"),
    (Tactic::CredentialAccess, "iam", "GetCredentialReport"),
    (Tactic::CredentialAccess, "codebuild", "BatchGetProjects"),
    (Tactic::CredentialAccess, "ecr", "GetAuthorizationToken"),
    (Tactic::CredentialAccess, "sts", "GetFederationToken"),
    // Sharing data or opening access to the outside.
    (Tactic::Exfiltration, "ec2", "ModifyImageAttribute"),
    (Tactic::Exfiltration, "ec2", "ModifySnapshotAttribute"),
    (Tactic::Exfiltration, "ec2", "AuthorizeSecurityGroupIngress"),
    (Tactic::Exfiltration, "rds", "ModifyDBSnapshotAttribute"),
    (Tactic::Exfiltration, "rds", "ModifyDBClusterSnapshotAttribute"),
    (Tactic::Exfiltration, "s3", "PutBucketPolicy"),
    (Tactic::Exfiltration, "s3", "PutBucketAcl"),
    (Tactic::Exfiltration, "s3", "PutObjectAcl"),
    (Tactic::Exfiltration, "s3", "DeleteBucketPublicAccessBlock"),
    (Tactic::Exfiltration, "s3", "PutBucketReplication"),
    (Tactic::Exfiltration, "kms", "PutKeyPolicy"),
    (Tactic::Exfiltration, "kms", "CreateGrant"),
    (Tactic::Exfiltration, "ecr", "SetRepositoryPolicy"),
    (Tactic::Exfiltration, "secretsmanager", "PutResourcePolicy"),
    (Tactic::Exfiltration, "ram", "CreateResourceShare"),
    // Running code on workloads.
    (Tactic::Execution, "ssm", "SendCommand"),
    (Tactic::Execution, "ssm", "StartSession"),
    (Tactic::Execution, "ec2", "RunInstances"),
    (Tactic::Execution, "ec2", "ModifyInstanceAttribute"),
    (Tactic::Execution, "lambda", "Invoke"),
    (Tactic::Execution, "ecs", "RunTask"),
    (Tactic::Execution, "glue", "CreateDevEndpoint"),
    (Tactic::Execution, "cloudformation", "CreateStack"),
    // Reaching instances directly.
    (Tactic::LateralMovement, "ec2-instance-connect", "SendSSHPublicKey"),
    (Tactic::LateralMovement, "ec2-instance-connect", "SendSerialConsoleSSHPublicKey"),
    (Tactic::LateralMovement, "ec2", "EnableSerialConsoleAccess"),
    // Spending or destroying.
    (Tactic::Impact, "bedrock", "InvokeModel"),
    (Tactic::Impact, "bedrock", "InvokeModelWithResponseStream"),
    (Tactic::Impact, "bedrock", "Converse"),
    (Tactic::Impact, "bedrock", "PutFoundationModelEntitlement"),
    (Tactic::Impact, "bedrock", "CreateFoundationModelAgreement"),
    (Tactic::Impact, "bedrock", "PutUseCaseForModelAccess"),
    (Tactic::Impact, "s3", "DeleteBucket"),
    (Tactic::Impact, "s3", "PutBucketLifecycleConfiguration"),
    (Tactic::Impact, "ec2", "TerminateInstances"),
    (Tactic::Impact, "kms", "ScheduleKeyDeletion"),
    (Tactic::Impact, "rds", "DeleteDBInstance"),
    (Tactic::Impact, "ec2", "RequestSpotInstances"),
    // New credentials derived from the key.
    (Tactic::TemporaryCredentials, "sts", "GetSessionToken"),
    (Tactic::TemporaryCredentials, "signin", "GetSigninToken"),
    (Tactic::RoleAssumption, "sts", "AssumeRole"),
    (Tactic::RoleAssumption, "sts", "AssumeRoleWithSAML"),
    (Tactic::RoleAssumption, "sts", "AssumeRoleWithWebIdentity"),
];

/// Read-only call name prefixes that are typical of discovery when they come in volume.
const DISCOVERY_PREFIXES: &[&str] = &["List", "Describe", "Get", "Search", "Lookup"];

/// Returns the event name without a trailing API version: Lambda records
/// `UpdateFunctionCode20150331v2`, an 8-digit date optionally followed by `v` and a number.
pub fn normalise_event_name(name: &str) -> &str {
    let without_revision = match name.rfind('v') {
        Some(v)
            if v + 1 < name.len()
                && name[v + 1..].bytes().all(|b| b.is_ascii_digit())
                && ends_with_date(&name[..v]) =>
        {
            &name[..v]
        }
        _ => name,
    };
    if ends_with_date(without_revision) {
        &without_revision[..without_revision.len() - 8]
    } else {
        without_revision
    }
}

/// Returns true when `name` is longer than 8 characters and ends in 8 digits.
fn ends_with_date(name: &str) -> bool {
    name.len() > 8 && name.as_bytes()[name.len() - 8..].iter().all(u8::is_ascii_digit)
}

/// Returns the service prefix of an event source: `iam` for `iam.amazonaws.com`.
pub fn service_of(event_source: &str) -> &str {
    event_source.split('.').next().unwrap_or(event_source)
}

/// Classifies a call by its CloudTrail event source and name. Read-only calls not in the
/// table count as discovery; other calls are not classified.
pub fn classify(event_source: &str, event_name: &str) -> Option<Tactic> {
    let service = service_of(event_source);
    let name = normalise_event_name(event_name);
    if let Some((tactic, _, _)) = CALLS
        .iter()
        .find(|(_, s, n)| *s == service && *n == name)
    {
        return Some(*tactic);
    }
    if name == "GetCallerIdentity" || DISCOVERY_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Some(Tactic::Discovery);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_strips_lambda_versions() {
        assert_eq!(normalise_event_name("UpdateFunctionCode20150331v2"), "UpdateFunctionCode");
        assert_eq!(normalise_event_name("AddPermission20150331v2"), "AddPermission");
        assert_eq!(normalise_event_name("GetFunction20150331"), "GetFunction");
        assert_eq!(normalise_event_name("CreateUser"), "CreateUser");
        assert_eq!(normalise_event_name("v2"), "v2");
        assert_eq!(normalise_event_name(""), "");
    }

    #[test]
    fn classify_known_calls() {
        let cases = [
            ("cloudtrail.amazonaws.com", "StopLogging", Some(Tactic::DefenseEvasion)),
            ("iam.amazonaws.com", "CreateLoginProfile", Some(Tactic::Persistence)),
            ("iam.amazonaws.com", "UpdateLoginProfile", Some(Tactic::PrivilegeEscalation)),
            ("secretsmanager.amazonaws.com", "GetSecretValue", Some(Tactic::SecretsRead)),
            ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", Some(Tactic::Persistence)),
            ("sts.amazonaws.com", "AssumeRole", Some(Tactic::RoleAssumption)),
            ("ec2.amazonaws.com", "DescribeInstances", Some(Tactic::Discovery)),
            ("s3.amazonaws.com", "PutObject", None),
        ];
        for (source, name, expected) in cases {
            assert_eq!(classify(source, name), expected, "{source} {name}");
        }
    }

    #[test]
    fn same_name_other_service_not_confused() {
        assert_eq!(classify("iam.amazonaws.com", "DeleteFlowLogs"), None);
    }
}
