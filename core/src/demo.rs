//! The built-in demonstration incident behind `keycheck investigate --demo`: a leaked CI
//! deploy key and what an attacker did with it, written out as the files of a snapshot
//! folder, so that keycheck can show a whole investigation on a machine without AWS.
//!
//! The story is fictional and written by this module; nothing is copied from real
//! exports. The files are generated deterministically (fixed dates, no randomness, no
//! clock), so two calls return the same bytes. This module is not a test fixture
//! library: tests of other modules should build their own small inputs.
//!
//! The story, in UTC. On 2024-06-03 the platform team creates IAM user `ci-deploy`
//! (no console password, no MFA) with an inline policy that allows the deployment and
//! also `iam:*`, `s3:*`, the `ci/*` secrets and a role in the production account. For
//! the 14 days before the incident, and on the incident day until the export, the CI
//! runner (198.51.100.23, one AWS CLI user agent, eu-west-1) redeploys the staging
//! service at seven minutes past every hour with four calls. On 2024-11-14:
//!
//! - 09:12 the key is pushed to a public repository; 09:19 AWS Health reports it
//!   (`AWS_RISK_CREDENTIALS_EXPOSED`).
//! - 09:31–09:34 reconnaissance from 203.0.113.77 with a Kali Linux AWS CLI: caller
//!   identity, users, roles, authorization details, buckets, secrets, and instances in
//!   five regions (13 calls).
//! - 09:35:10–09:36:22 a burst of 16 denied calls across twelve services.
//! - 09:41–09:42 user `support-backup` created, AdministratorAccess attached, an access
//!   key and a console password created for it; 09:43 the new key is tried.
//! - 09:46–09:48 three `ci/deploy/*` secrets read (one of them contains the leaked key),
//!   a production secret denied, a parameter decrypted.
//! - 09:52 `GetSessionToken` mints a session key valid for 12 hours.
//! - 09:57 the backups bucket is shared with account 999988887777; Access Analyzer
//!   reports it at 10:01.
//! - 10:05–10:09 the session key, used from 192.0.2.146, assumes `deploy-from-ci` in
//!   production account 444455556666, looks around there, and is denied
//!   `OrganizationAccountAccessRole` in account 777788889999.
//! - 10:11 `cloudtrail:StopLogging` is denied.
//! - 11:12–11:26 the administrator looks at the key and exports the evidence; the
//!   snapshot is taken at 11:30.

mod findings;
mod iam;
mod ids;
mod incident;
mod routine;
mod storage;
mod story;
mod trail;

use serde_json::{Value, json};

use crate::evidence::EvidenceError;
use crate::evidence::snapshot::Snapshot;
use crate::key::AccessKeyId;

/// The label the demonstration snapshot is opened with, shown where reports name their
/// evidence source.
pub const LABEL: &str = "built-in demonstration incident";

/// Returns the leaked access key of the demonstration incident, which belongs to IAM user
/// `ci-deploy` in account `account_id()`.
pub fn key() -> AccessKeyId {
    story::CI_DEPLOY
        .access_key()
        .parse()
        .expect("the demonstration key ID is valid")
}

/// Returns the account of the demonstration incident, which the key ID decodes to.
pub fn account_id() -> &'static str {
    story::ACCOUNT
}

/// Returns the files of the demonstration snapshot in path order, each a path relative to
/// the snapshot folder and its bytes.
///
/// The files are `metadata.json`, CloudTrail log files under `cloudtrail/`, IAM exports
/// under `iam/`, findings under `guardduty/`, `securityhub/`, `health/` and
/// `access-analyzer/`, and key storage listings under `storage/`.
pub fn files() -> Vec<(String, Vec<u8>)> {
    let records = records();

    let mut files = vec![("metadata.json".to_string(), pretty(&metadata()))];
    files.extend(trail::log_files(&records));
    let documents = iam::files()
        .into_iter()
        .chain(findings::files(&records))
        .chain(storage::files());
    files.extend(documents.map(|(path, value)| (path, pretty(&value))));
    files.push((
        "iam/credential-report.csv".to_string(),
        iam::credential_report().into_bytes(),
    ));

    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// Opens the demonstration incident as a snapshot, the same evidence source that
/// `--snapshot DIR` reads from a folder.
pub fn snapshot() -> Result<Snapshot, EvidenceError> {
    Snapshot::from_files(LABEL, files())
}

/// The part of the story a CloudTrail record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Phase {
    /// The CI runner's hourly deployment with the key, before and during the incident.
    Runner,
    /// The developer's weekday checks with their own key.
    Developer,
    /// The administrator's look at the key and the exports, after the alert.
    Responder,
    /// The attacker's first calls with the key.
    Recon,
    /// The attacker's enumeration of services the key may not use.
    DeniedBurst,
    /// The backdoor user, its policy, key and console password.
    Escalation,
    /// The attacker's calls with the backdoor user's key.
    BackdoorUse,
    /// Secrets and parameters read with the key.
    SecretsRead,
    /// `GetSessionToken` with the key.
    SessionMinted,
    /// The backups bucket's new policy.
    ExternalSharing,
    /// Calls with the minted session key, recorded in the key's account.
    SessionUse,
    /// The production account's copy of the session's `AssumeRole`.
    RoleAccountCopy,
    /// Calls with the production role session, recorded in the production account.
    OtherAccount,
    /// The attempt to stop CloudTrail.
    DefenseEvasion,
}

/// Returns every CloudTrail record of the story, oldest first.
fn records() -> Vec<trail::Record> {
    let mut records = routine::runner();
    records.extend(routine::developer());
    records.extend(routine::responder());
    records.extend(incident::records());
    records.sort_by_key(|r| r.time);
    records
}

/// keycheck's own `metadata.json` for the snapshot.
fn metadata() -> Value {
    json!({
        "account_id": story::ACCOUNT,
        "collected_at": story::iso(story::collected_at()),
        "key_id": story::CI_DEPLOY.access_key(),
        "source": "keycheck built-in demonstration incident (fictional data generated by keycheck)",
    })
}

/// Writes JSON as the AWS CLI does: indented, with a final line break.
fn pretty(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON values serialize");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests;
