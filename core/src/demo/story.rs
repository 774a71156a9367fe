//! The facts of the demonstration incident that every generated file shares: the
//! accounts, the IAM users and their keys, the addresses and user agents of each actor,
//! and the clock of the incident day.
//!
//! Every account ID follows the AWS documentation style, every address is in an RFC 5737
//! documentation range, every domain is under example.com, and the ASNs are from the
//! RFC 5398 documentation range.

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};

use super::ids;

/// The account that owns the leaked key: the build account of a small company.
pub(super) const ACCOUNT: &str = "111122223333";
/// The production account, whose `deploy-from-ci` role the leaked key may assume.
pub(super) const PRODUCTION_ACCOUNT: &str = "444455556666";
/// A third account of the same organisation, whose `OrganizationAccountAccessRole` the
/// attacker fails to assume.
pub(super) const SHARED_SERVICES_ACCOUNT: &str = "777788889999";
/// The attacker's own account, granted read access to the backups bucket.
pub(super) const ATTACKER_ACCOUNT: &str = "999988887777";

/// The region the company deploys to and keeps its secrets in.
pub(super) const HOME_REGION: &str = "eu-west-1";

/// The self-hosted CI runner's NAT address.
pub(super) const RUNNER_IP: &str = "198.51.100.23";
/// The office NAT address that the engineers work from.
pub(super) const OFFICE_IP: &str = "198.51.100.40";
/// The attacker's first address, a rented virtual server.
pub(super) const ATTACKER_IP: &str = "203.0.113.77";
/// The address the attacker's session credentials are used from.
pub(super) const SESSION_IP: &str = "192.0.2.146";

/// The CI runner's AWS CLI. Version 2 appends `command/…` per call; the runner's wrapper
/// script disables that, so every call carries this one user agent.
pub(super) const RUNNER_AGENT: &str =
    "aws-cli/2.15.30 Python/3.11.8 Linux/5.15.0-1057-aws exe/x86_64.ubuntu.22 prompt/off";
/// The attacker's AWS CLI, installed from Kali Linux packages: the kernel and platform
/// strings are what GuardDuty's `PenTest:IAMUser/KaliLinux` finding type looks for.
pub(super) const KALI_AGENT: &str =
    "aws-cli/2.13.25 Python/3.11.5 Linux/6.5.0-kali3-amd64 source/x86_64.kali.2023 prompt/off";
/// The attacker's Python tooling that uses the session credentials.
pub(super) const TOOL_AGENT: &str = "Boto3/1.35.54 md/Botocore#1.35.54 ua/2.0 os/linux#6.5.0-kali3-amd64 md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.54";
/// The administrator's laptop.
pub(super) const ADMIN_AGENT: &str = "aws-cli/2.17.20 Python/3.11.9 Darwin/23.6.0 exe/x86_64 prompt/off";
/// The developer's laptop.
pub(super) const DEVELOPER_AGENT: &str = "aws-cli/2.16.4 Python/3.11.8 Windows/10 exe/AMD64 prompt/off";

/// The public repository the key was pushed to.
pub(super) const LEAK_URL: &str = "https://code.example.com/acme/web-deploy/blob/6c1f2e9/.env.ci";

/// The ECS cluster and service the runner redeploys every hour.
pub(super) const CLUSTER: &str = "web-staging";
pub(super) const SERVICE: &str = "web";

/// The bucket the attacker shares with their own account.
pub(super) const BACKUPS_BUCKET: &str = "db-backups.example.com";
/// The CloudTrail trail the attacker tries to stop.
pub(super) const TRAIL_NAME: &str = "management-events";
/// The role in the production account that the leaked key's policy lets it assume.
pub(super) const DEPLOY_ROLE: &str = "deploy-from-ci";
/// The role name the attacker tries in the shared services account.
pub(super) const ORGANIZATION_ROLE: &str = "OrganizationAccountAccessRole";
/// The user the attacker creates for persistence.
pub(super) const BACKDOOR_USER: &str = "support-backup";

/// An IAM user of the story's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct User {
    pub name: &'static str,
    /// Tells apart the users' IDs and keys inside the account.
    variant: u8,
}

/// The CI deploy user that owns the leaked key: no MFA, no console password.
pub(super) const CI_DEPLOY: User = User {
    name: "ci-deploy",
    variant: 1,
};
/// The administrator: console password and MFA.
pub(super) const ALICE: User = User {
    name: "alice",
    variant: 2,
};
/// A developer: console password, no MFA.
pub(super) const BOB: User = User {
    name: "bob",
    variant: 3,
};
/// The user the attacker creates.
pub(super) const BACKDOOR: User = User {
    name: BACKDOOR_USER,
    variant: 4,
};

impl User {
    /// Returns the user's ARN.
    pub fn arn(self) -> String {
        format!("arn:aws:iam::{ACCOUNT}:user/{}", self.name)
    }

    /// Returns the user's unique ID (`AIDA…`).
    pub fn user_id(self) -> String {
        ids::principal_id("AIDA", ACCOUNT, self.variant)
    }

    /// Returns the user's one access key.
    pub fn access_key(self) -> String {
        ids::access_key_id("AKIA", ACCOUNT, self.variant)
    }
}

/// Returns the session key that `sts:GetSessionToken` returns to the attacker.
pub(super) fn session_key() -> String {
    ids::access_key_id("ASIA", ACCOUNT, 9)
}

/// Returns the key of the role session the attacker opens in the production account.
pub(super) fn role_session_key() -> String {
    ids::access_key_id("ASIA", PRODUCTION_ACCOUNT, 9)
}

/// Returns the ARN of the production account's deploy role.
pub(super) fn deploy_role_arn() -> String {
    format!("arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{DEPLOY_ROLE}")
}

/// Returns the unique ID of the production account's deploy role (`AROA…`).
pub(super) fn deploy_role_id() -> String {
    ids::principal_id("AROA", PRODUCTION_ACCOUNT, 5)
}

/// Returns the ARN of the shared services account's organization role.
pub(super) fn organization_role_arn() -> String {
    format!("arn:aws:iam::{SHARED_SERVICES_ACCOUNT}:role/{ORGANIZATION_ROLE}")
}

/// Returns the ARN of a Secrets Manager secret in the home region, with the six random
/// characters Secrets Manager appends to the name.
pub(super) fn secret_arn(name: &str) -> String {
    let suffix = ids::alphanumeric(&format!("secret/{name}"), 6);
    format!("arn:aws:secretsmanager:{HOME_REGION}:{ACCOUNT}:secret:{name}-{suffix}")
}

/// Returns the incident day.
fn incident_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 11, 14).expect("valid incident date")
}

/// Returns a time of the incident day, in UTC.
///
/// # Panics
///
/// Panics when the time is not a valid time of day: the times are constants of the story.
pub(super) fn incident_at(hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    incident_day()
        .and_hms_opt(hour, minute, second)
        .expect("valid time of day")
        .and_utc()
}

/// Returns a time `days` before the incident day (negative) or after it, in UTC.
pub(super) fn day_at(days: i64, hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
    incident_at(hour, minute, second) + Duration::days(days)
}

/// When the leaked key and its user were created, months before the incident.
pub(super) fn ci_deploy_created() -> DateTime<Utc> {
    day_at(-164, 14, 20, 51)
}

/// When the leaked key was created.
pub(super) fn leaked_key_created() -> DateTime<Utc> {
    day_at(-164, 14, 22, 10)
}

/// When the runner's history starts: 14 full days before the incident day.
pub(super) fn history_start() -> DateTime<Utc> {
    day_at(-14, 0, 0, 0)
}

/// When AWS Health reported the key as exposed.
pub(super) fn exposure_reported() -> DateTime<Utc> {
    incident_at(9, 19, 44)
}

/// When the attacker created the backdoor user.
pub(super) fn backdoor_created() -> DateTime<Utc> {
    incident_at(9, 41, 3)
}

/// When the attacker created the backdoor user's access key.
pub(super) fn backdoor_key_created() -> DateTime<Utc> {
    incident_at(9, 41, 37)
}

/// When the attacker gave the backdoor user a console password.
pub(super) fn backdoor_login_profile_created() -> DateTime<Utc> {
    incident_at(9, 42, 2)
}

/// When the attacker minted the session key with `GetSessionToken`.
pub(super) fn session_minted() -> DateTime<Utc> {
    incident_at(9, 52, 30)
}

/// When the session assumed the production deploy role.
pub(super) fn role_assumed() -> DateTime<Utc> {
    incident_at(10, 5, 40)
}

/// When the attacker wrote the bucket policy that shares the backups.
pub(super) fn bucket_shared() -> DateTime<Utc> {
    incident_at(9, 57, 31)
}

/// When the responder exported the evidence that makes up the snapshot.
pub(super) fn collected_at() -> DateTime<Utc> {
    incident_at(11, 30, 0)
}

/// Formats a time as CloudTrail's `eventTime`, IAM's CLI output and most JSON write it:
/// `2024-11-14T09:41:03Z`.
pub(super) fn iso(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Formats a time with milliseconds, as GuardDuty and Security Hub write it.
pub(super) fn iso_millis(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Formats a time as AWS CLI version 2 writes most timestamps: `2024-11-14T09:41:03+00:00`.
pub(super) fn cli_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Formats a time as CloudTrail writes dates inside `responseElements`:
/// `Nov 14, 2024, 9:41:03 AM`.
pub(super) fn response_time(time: DateTime<Utc>) -> String {
    time.format("%b %-d, %Y, %-I:%M:%S %p").to_string()
}
