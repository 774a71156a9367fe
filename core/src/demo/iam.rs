//! The IAM exports of the demonstration incident, as the responder took them at 11:25 UTC
//! on the incident day: authorization details, the credential report, and per user the
//! access keys, MFA devices and login profile, with each key's last use.
//!
//! The attacker's backdoor user is in every export, because it existed by then.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};

use super::ids;
use super::incident::{ADMINISTRATOR_ACCESS, CI_DEPLOY_POLICY};
use super::story::{self, ACCOUNT, ALICE, BACKDOOR, BOB, CI_DEPLOY, HOME_REGION, User, cli_time};

/// The customer managed policy of the developers' group.
const DEVELOPER_POLICY: &str = "developer-access";

/// The exported facts about one user.
struct Profile {
    user: User,
    created: DateTime<Utc>,
    groups: &'static [&'static str],
    /// When the console password was set, for users with one.
    password_set: Option<DateTime<Utc>>,
    password_last_used: Option<DateTime<Utc>>,
    /// When the virtual MFA device was enabled, for users with one.
    mfa_enabled: Option<DateTime<Utc>>,
    key_created: DateTime<Utc>,
    /// When, in which region and with which service the key was last used.
    key_last_used: (DateTime<Utc>, &'static str, &'static str),
}

fn profiles() -> [Profile; 4] {
    [
        Profile {
            user: ALICE,
            created: story::day_at(-650, 9, 12, 44),
            groups: &["Admins"],
            password_set: Some(story::day_at(-201, 8, 3, 17)),
            password_last_used: Some(story::incident_at(11, 5, 40)),
            mfa_enabled: Some(story::day_at(-650, 9, 20, 2)),
            key_created: story::day_at(-73, 15, 40, 19),
            key_last_used: (story::incident_at(11, 26, 10), "us-east-1", "iam"),
        },
        Profile {
            user: BOB,
            created: story::day_at(-450, 10, 2, 17),
            groups: &["Developers"],
            password_set: Some(story::day_at(-450, 10, 2, 17)),
            password_last_used: Some(story::day_at(-1, 16, 40, 12)),
            mfa_enabled: None,
            key_created: story::day_at(-44, 8, 55, 31),
            key_last_used: (story::day_at(-1, 10, 15, 36), HOME_REGION, "ecs"),
        },
        Profile {
            user: CI_DEPLOY,
            created: story::ci_deploy_created(),
            groups: &[],
            password_set: None,
            password_last_used: None,
            mfa_enabled: None,
            key_created: story::leaked_key_created(),
            key_last_used: (story::incident_at(11, 8, 23), HOME_REGION, "ecs"),
        },
        Profile {
            user: BACKDOOR,
            created: story::backdoor_created(),
            groups: &[],
            password_set: Some(story::backdoor_login_profile_created()),
            password_last_used: None,
            mfa_enabled: None,
            key_created: story::backdoor_key_created(),
            key_last_used: (story::incident_at(9, 43, 31), "us-east-1", "iam"),
        },
    ]
}

/// Returns the IAM files, each a path inside the snapshot and its JSON or CSV.
pub(super) fn files() -> Vec<(String, Value)> {
    let profiles = profiles();
    let mut files = vec![(
        "iam/authorization-details.json".to_string(),
        authorization_details(&profiles),
    )];
    for profile in &profiles {
        let name = profile.user.name;
        files.push((format!("iam/access-keys/{name}.json"), access_keys(profile)));
        files.push((
            format!("iam/access-key-last-used/{}.json", profile.user.access_key()),
            last_used(profile),
        ));
        files.push((format!("iam/mfa-devices/{name}.json"), mfa_devices(profile)));
        if let Some(set) = profile.password_set {
            let login_profile = json!({"LoginProfile": {
                "UserName": name,
                "CreateDate": cli_time(set),
                "PasswordResetRequired": false,
            }});
            files.push((format!("iam/login-profiles/{name}.json"), login_profile));
        }
    }
    files
}

/// `aws iam get-access-key-last-used` rounds the time down to the minute.
fn to_minute(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(Duration::minutes(1))
        .expect("a minute divides any time")
}

fn access_keys(profile: &Profile) -> Value {
    json!({"AccessKeyMetadata": [{
        "UserName": profile.user.name,
        "AccessKeyId": profile.user.access_key(),
        "Status": "Active",
        "CreateDate": cli_time(profile.key_created),
    }]})
}

fn last_used(profile: &Profile) -> Value {
    let (time, region, service) = profile.key_last_used;
    json!({
        "UserName": profile.user.name,
        "AccessKeyLastUsed": {
            "LastUsedDate": cli_time(to_minute(time)),
            "ServiceName": service,
            "Region": region,
        },
    })
}

fn mfa_devices(profile: &Profile) -> Value {
    let devices: Vec<Value> = profile
        .mfa_enabled
        .map(|enabled| {
            json!({
                "UserName": profile.user.name,
                "SerialNumber": format!("arn:aws:iam::{ACCOUNT}:mfa/{}-phone", profile.user.name),
                "EnableDate": cli_time(enabled),
            })
        })
        .into_iter()
        .collect();
    json!({"MFADevices": devices})
}

/// `aws iam get-account-authorization-details`: users, groups, roles, and the managed
/// policies attached in the account with their documents.
fn authorization_details(profiles: &[Profile]) -> Value {
    let users: Vec<Value> = profiles.iter().map(user_detail).collect();
    json!({
        "UserDetailList": users,
        "GroupDetailList": [
            group_detail("Admins", 1, story::day_at(-650, 9, 10, 5), "AdministratorAccess", ADMINISTRATOR_ACCESS),
            group_detail("Developers", 2, story::day_at(-460, 13, 47, 51), DEVELOPER_POLICY, &developer_policy_arn()),
        ],
        "RoleDetailList": [task_execution_role(), task_role()],
        "Policies": [administrator_access(), developer_access()],
    })
}

fn user_detail(profile: &Profile) -> Value {
    let user = profile.user;
    let mut inline = Vec::new();
    let mut attached = Vec::new();
    let mut tags = Vec::new();
    if user == CI_DEPLOY {
        inline.push(json!({"PolicyName": CI_DEPLOY_POLICY, "PolicyDocument": ci_deploy_policy()}));
        tags.push(json!({"Key": "team", "Value": "platform"}));
        tags.push(json!({"Key": "purpose", "Value": "deploys web-staging from the CI runner"}));
    }
    if user == BACKDOOR {
        attached.push(json!({"PolicyName": "AdministratorAccess", "PolicyArn": ADMINISTRATOR_ACCESS}));
    }
    json!({
        "Path": "/",
        "UserName": user.name,
        "UserId": user.user_id(),
        "Arn": user.arn(),
        "CreateDate": cli_time(profile.created),
        "UserPolicyList": inline,
        "GroupList": profile.groups,
        "AttachedManagedPolicies": attached,
        "Tags": tags,
    })
}

/// Returns the leaked key's inline policy: what the pipeline needs, plus the `iam:*` and
/// `s3:*` that someone added to get a deployment through and never removed.
pub(super) fn ci_deploy_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PushImagesAndDeploy",
                "Effect": "Allow",
                "Action": [
                    "ecr:GetAuthorizationToken",
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:InitiateLayerUpload",
                    "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload",
                    "ecr:PutImage",
                    "ecr:DescribeRepositories",
                    "ecs:UpdateService",
                    "ecs:DescribeServices",
                    "ecs:RegisterTaskDefinition",
                    "ecs:DescribeTaskDefinition",
                    "ec2:Describe*",
                ],
                "Resource": "*",
            },
            {"Sid": "ManageTaskRoles", "Effect": "Allow", "Action": "iam:*", "Resource": "*"},
            {"Sid": "BuildArtifacts", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {
                "Sid": "ReadPipelineSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameter", "ssm:GetParameters"],
                "Resource": [
                    format!("arn:aws:secretsmanager:{HOME_REGION}:{ACCOUNT}:secret:ci/*"),
                    format!("arn:aws:ssm:{HOME_REGION}:{ACCOUNT}:parameter/ci/*"),
                ],
            },
            {"Sid": "FindPipelineSecrets", "Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"},
            {"Sid": "ReleaseToProduction", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": story::deploy_role_arn()},
        ],
    })
}

fn developer_policy_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy/{DEVELOPER_POLICY}")
}

fn group_detail(name: &str, variant: u8, created: DateTime<Utc>, policy_name: &str, policy_arn: &str) -> Value {
    json!({
        "Path": "/",
        "GroupName": name,
        "GroupId": ids::principal_id("AGPA", ACCOUNT, variant),
        "Arn": format!("arn:aws:iam::{ACCOUNT}:group/{name}"),
        "CreateDate": cli_time(created),
        "GroupPolicyList": [],
        "AttachedManagedPolicies": [{"PolicyName": policy_name, "PolicyArn": policy_arn}],
    })
}

fn ecs_tasks_trust() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    })
}

fn role_detail(name: &str, variant: u8, created: DateTime<Utc>, policy_name: &str, document: Value) -> Value {
    json!({
        "Path": "/",
        "RoleName": name,
        "RoleId": ids::principal_id("AROA", ACCOUNT, variant),
        "Arn": format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
        "CreateDate": cli_time(created),
        "AssumeRolePolicyDocument": ecs_tasks_trust(),
        "InstanceProfileList": [],
        "RolePolicyList": [{"PolicyName": policy_name, "PolicyDocument": document}],
        "AttachedManagedPolicies": [],
        "Tags": [],
        "RoleLastUsed": {"LastUsedDate": cli_time(story::incident_at(11, 8, 40)), "Region": HOME_REGION},
    })
}

fn task_execution_role() -> Value {
    let document = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }],
    });
    role_detail(
        "web-task-execution",
        1,
        story::day_at(-400, 11, 30, 2),
        "pull-images-and-write-logs",
        document,
    )
}

fn task_role() -> Value {
    let document = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": "arn:aws:s3:::assets.example.com/*",
        }],
    });
    role_detail(
        "web-task",
        2,
        story::day_at(-400, 11, 31, 40),
        "read-static-assets",
        document,
    )
}

fn managed_policy(
    name: &str,
    arn: String,
    id: String,
    attachments: u32,
    created: DateTime<Utc>,
    document: Value,
) -> Value {
    json!({
        "PolicyName": name,
        "PolicyId": id,
        "Arn": arn,
        "Path": "/",
        "DefaultVersionId": "v1",
        "AttachmentCount": attachments,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": true,
        "CreateDate": cli_time(created),
        "UpdateDate": cli_time(created),
        "PolicyVersionList": [{
            "Document": document,
            "VersionId": "v1",
            "IsDefaultVersion": true,
            "CreateDate": cli_time(created),
        }],
    })
}

/// AWS's AdministratorAccess: every action on every resource. The Admins group and the
/// backdoor user have it.
fn administrator_access() -> Value {
    let document = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let id = ids::principal_id("ANPA", "000000000000", 1);
    let created = story::day_at(-3569, 18, 39, 46);
    managed_policy(
        "AdministratorAccess",
        ADMINISTRATOR_ACCESS.to_string(),
        id,
        2,
        created,
        document,
    )
}

fn developer_access() -> Value {
    let document = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadServices",
                "Effect": "Allow",
                "Action": ["ecs:Describe*", "ecs:List*", "logs:Get*", "logs:FilterLogEvents", "cloudwatch:GetMetricData"],
                "Resource": "*",
            },
            {
                "Sid": "ReadArtifacts",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::artifacts.example.com", "arn:aws:s3:::artifacts.example.com/*"],
            },
        ],
    });
    let id = ids::principal_id("ANPA", ACCOUNT, 2);
    managed_policy(
        DEVELOPER_POLICY,
        developer_policy_arn(),
        id,
        1,
        story::day_at(-460, 13, 50, 12),
        document,
    )
}

/// The IAM credential report's columns, in AWS's order.
const REPORT_COLUMNS: [&str; 22] = [
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
];

/// Returns the IAM credential report as CSV, generated at 11:25 on the incident day. The
/// root user has MFA and no access keys; the second key slot and the certificates are
/// unused throughout.
pub(super) fn credential_report() -> String {
    let not_used = ["false", "N/A", "N/A", "N/A", "N/A"];
    let no_certificates = ["false", "N/A", "false", "N/A"];
    let report_time = |time: DateTime<Utc>| cli_time(time);

    let mut lines = vec![REPORT_COLUMNS.join(",")];
    let mut root = vec![
        "<root_account>".to_string(),
        format!("arn:aws:iam::{ACCOUNT}:root"),
        report_time(story::day_at(-1354, 8, 0, 0)),
        "not_supported".to_string(),
        report_time(story::day_at(-43, 7, 41, 19)),
        "not_supported".to_string(),
        "not_supported".to_string(),
        "true".to_string(),
    ];
    root.extend(
        not_used
            .iter()
            .chain(&not_used)
            .chain(&no_certificates)
            .map(|v| v.to_string()),
    );
    lines.push(root.join(","));

    for profile in profiles() {
        let (last_used, region, service) = profile.key_last_used;
        let optional = |time: Option<DateTime<Utc>>| time.map_or("N/A".to_string(), report_time);
        let mut row = vec![
            profile.user.name.to_string(),
            profile.user.arn(),
            report_time(profile.created),
            profile.password_set.is_some().to_string(),
            optional(profile.password_last_used),
            optional(profile.password_set),
            "N/A".to_string(),
            profile.mfa_enabled.is_some().to_string(),
            "true".to_string(),
            report_time(profile.key_created),
            report_time(to_minute(last_used)),
            region.to_string(),
            service.to_string(),
        ];
        row.extend(not_used.iter().chain(&no_certificates).map(|v| v.to_string()));
        lines.push(row.join(","));
    }
    lines.join("\n") + "\n"
}
