//! AWS managed policies that keycheck recognizes by ARN or name: stand-ins for a few whose
//! documents are missing, and the AWS quarantine policy for exposed keys.

use serde_json::{Value, json};

use super::PolicyInput;

/// Name of the policy that AWS attaches to an IAM user whose access key it found exposed.
/// Later versions append `V2` and `V3` (AWS Managed Policy Reference).
const QUARANTINE_POLICY: &str = "AWSCompromisedKeyQuarantine";

/// Returns a document with the same `Allow` statements as a few AWS managed policies,
/// for when the evidence names the policy by ARN but lacks its document.
///
/// The statements copy the default versions in the AWS Managed Policy Reference:
/// AdministratorAccess, PowerUserAccess v12 (edited 2026-02-12) and IAMFullAccess v2
/// (edited 2019-06-21). AWS edits managed policies, so a fetched document is better.
pub(super) fn stand_in_document(arn: &str) -> Option<Value> {
    let name = aws_managed_name(arn)?;
    let document = match name {
        "AdministratorAccess" => json!({
            "Statement": [{ "Effect": "Allow", "Action": "*", "Resource": "*" }]
        }),
        "PowerUserAccess" => json!({
            "Statement": [
                {
                    "Effect": "Allow",
                    "NotAction": ["iam:*", "organizations:*", "account:*"],
                    "Resource": "*"
                },
                {
                    "Effect": "Allow",
                    "Action": [
                        "account:GetAccountInformation",
                        "account:GetGovCloudAccountInformation",
                        "account:GetPrimaryEmail",
                        "account:ListRegions",
                        "iam:CreateServiceLinkedRole",
                        "iam:DeleteServiceLinkedRole",
                        "iam:ListRoles",
                        "organizations:DescribeEffectivePolicy",
                        "organizations:DescribeOrganization"
                    ],
                    "Resource": "*"
                }
            ]
        }),
        "IAMFullAccess" => json!({
            "Statement": [{
                "Effect": "Allow",
                "Action": [
                    "iam:*",
                    "organizations:DescribeAccount",
                    "organizations:DescribeOrganization",
                    "organizations:DescribeOrganizationalUnit",
                    "organizations:DescribePolicy",
                    "organizations:ListChildren",
                    "organizations:ListParents",
                    "organizations:ListPoliciesForTarget",
                    "organizations:ListRoots",
                    "organizations:ListPolicies",
                    "organizations:ListTargetsForPolicy"
                ],
                "Resource": "*"
            }]
        }),
        _ => return None,
    };
    Some(document)
}

/// Returns the name of an AWS managed policy at the root path
/// (`arn:<partition>:iam::aws:policy/<name>`), in any partition.
fn aws_managed_name(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let ("arn", Some(_partition), Some("iam"), Some(""), Some("aws"), Some(resource)) = (
        parts.next()?,
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    resource
        .strip_prefix("policy/")
        .filter(|name| !name.contains('/'))
}

/// Returns the quarantine policy name when this policy is one: by ARN when there is one,
/// so a customer policy that copies the name does not count, else by name.
pub(super) fn quarantine_name<'a>(policy: &PolicyInput<'a>) -> Option<&'a str> {
    let name = match policy.arn {
        Some(arn) => aws_managed_name(arn)?,
        None => policy.name,
    };
    quarantine_version(name).map(|_| name)
}

/// Returns the version of an `AWSCompromisedKeyQuarantine` policy name: 1 for the
/// unsuffixed name, N for `…VN`.
pub(super) fn quarantine_version(name: &str) -> Option<u32> {
    let suffix = name.strip_prefix(QUARANTINE_POLICY)?;
    if suffix.is_empty() {
        return Some(1);
    }
    suffix.strip_prefix('V')?.parse().ok()
}
