//! IAM read live: the key's record, the owner with every policy that applies to it, and
//! the account's credential report.
//!
//! Policy documents come URL-encoded from IAM and are decoded by `policy::decode_document`.
//! Judging them (admin, escalation, the `AWSCompromisedKeyQuarantine*` policies) is the
//! `policy` module's job, so every attached policy is returned with its name and ARN.

use std::time::{Duration, Instant};

use aws_sdk_iam::types::{AccessKeyMetadata, ReportStateType, StatusType};
use futures::future::try_join_all;
use futures::stream::{self, StreamExt, TryStreamExt};
use futures::try_join;
use serde_json::Value;
use tracing::warn;

use super::LiveEvidence;
use super::error::{aws_error, failure, is_not_found};
use super::memo::Memo;
use super::operations::*;
use crate::evidence::snapshot::iam::credential_report_rows;
use crate::evidence::{
    AwsErrorKind, CredentialReportRow, EvidenceError, KeyRecord, KeyStatus, LastUsed, MfaDevice,
    PolicyAttachment, PolicyRecord, UserRecord,
};
use crate::key::{AccessKeyId, KeyKind};
use crate::policy::decode_document;

type Iam = aws_sdk_iam::Client;

/// The user name keycheck gives a key whose `GetAccessKeyLastUsed` names no user, as the
/// credential report names the root user.
const ROOT_USER: &str = "<root_account>";

/// Maximum policy documents of one list (the user's own policies, or its groups') fetched
/// concurrently. The value is an estimate kept small because IAM throttles requests per
/// account, and the SDK retries throttled calls.
const DOCUMENT_FETCHES: usize = 4;

/// IAM records that several evidence methods need, each read once per investigation.
/// `GetAccessKeyLastUsed` returns a key's owner and last use, which `access_key_owner`,
/// `access_key` and `user` all need. `ListAccessKeys` returns the key's status and the
/// owner's other keys, which `access_key` and `user` both need.
#[derive(Default)]
pub(super) struct Reads {
    last_use: Memo<Result<Option<LastUse>, EvidenceError>>,
    key_lists: Memo<Result<Vec<AccessKeyMetadata>, EvidenceError>>,
}

/// The owner and last use of a key that exists, as `GetAccessKeyLastUsed` returns them.
#[derive(Clone, Debug)]
struct LastUse {
    /// The owner's user name, which IAM omits for the root user's key.
    user_name: Option<String>,
    last_used: Option<LastUsed>,
}

/// Returns the name of the IAM user that owns a long-term key (`<root_account>` for the
/// root user's key), or `None` when IAM has no such key. Its one IAM call is shared with
/// `access_key`.
pub(super) async fn access_key_owner(
    live: &LiveEvidence,
    key: &AccessKeyId,
) -> Result<Option<String>, EvidenceError> {
    if key.kind() == KeyKind::Temporary {
        return Ok(None);
    }
    let found = investigated_last_use(live, key).await?;
    Ok(found.map(|found| found.user_name.unwrap_or_else(|| ROOT_USER.to_string())))
}

/// Returns the IAM record of a long-term key, or `None` when IAM has no such key.
pub(super) async fn access_key(
    live: &LiveEvidence,
    key: &AccessKeyId,
) -> Result<Option<KeyRecord>, EvidenceError> {
    if key.kind() == KeyKind::Temporary {
        // IAM keeps no record of temporary (ASIA) keys; CloudTrail names their principal.
        return Ok(None);
    }
    let Some(found) = investigated_last_use(live, key).await? else {
        return Ok(None);
    };
    let Some(user_name) = found.user_name else {
        // NOTE: IAM returns no user name only for a key it cannot tie to a user, which is
        // taken to be the root user's key. Its status is not listed anywhere
        // keycheck reads.
        return Ok(Some(KeyRecord {
            key_id: key.to_string(),
            user_name: ROOT_USER.to_string(),
            status: KeyStatus::Unknown,
            created: None,
            last_used: found.last_used,
        }));
    };

    let listed = list_access_keys(live, &user_name).await?;
    let metadata = listed
        .iter()
        .find(|k| k.access_key_id.as_deref() == Some(key.as_str()));
    Ok(Some(KeyRecord {
        key_id: key.to_string(),
        status: metadata.map_or(KeyStatus::Gone, |m| key_status(m.status.as_ref())),
        created: metadata
            .and_then(|m| m.create_date.as_ref())
            .and_then(super::utc),
        user_name,
        last_used: found.last_used,
    }))
}

/// Returns the last use of the key under investigation and notes its region, which the
/// regional searches then cover.
async fn investigated_last_use(
    live: &LiveEvidence,
    key: &AccessKeyId,
) -> Result<Option<LastUse>, EvidenceError> {
    let found = last_use(live, key.as_str()).await?;
    let region = found.as_ref().and_then(|f| f.last_used.as_ref()).and_then(|l| l.region.as_deref());
    if let Some(region) = region {
        live.note_region(region);
    }
    Ok(found)
}

/// Calls `GetAccessKeyLastUsed` once per key and investigation.
///
/// NOTE: IAM does not document its error for a deleted key. `NoSuchEntity`, which moto
/// returns, is read as "no such key", and any other error is reported as it is.
async fn last_use(live: &LiveEvidence, key_id: &str) -> Result<Option<LastUse>, EvidenceError> {
    let read = || async {
        let clients = live.home_clients().await?;
        match clients.iam().get_access_key_last_used().access_key_id(key_id).send().await {
            Ok(output) => Ok(Some(LastUse {
                last_used: output.access_key_last_used.as_ref().map(last_used_record),
                user_name: output.user_name,
            })),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(aws_error(&IAM_GET_ACCESS_KEY_LAST_USED, key_id, &error)),
        }
    };
    live.iam_reads.last_use.get_or_compute(key_id, read).await
}

/// Calls `ListAccessKeys` once per user and investigation.
async fn list_access_keys(
    live: &LiveEvidence,
    user_name: &str,
) -> Result<Vec<AccessKeyMetadata>, EvidenceError> {
    let read = || async {
        let clients = live.home_clients().await?;
        clients
            .iam()
            .list_access_keys()
            .user_name(user_name)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| aws_error(&IAM_LIST_ACCESS_KEYS, user_name, &error))
    };
    live.iam_reads.key_lists.get_or_compute(user_name, read).await
}

fn key_status(status: Option<&StatusType>) -> KeyStatus {
    match status {
        Some(StatusType::Active) => KeyStatus::Active,
        Some(StatusType::Inactive) => KeyStatus::Inactive,
        _ => KeyStatus::Unknown,
    }
}

fn last_used_record(last_used: &aws_sdk_iam::types::AccessKeyLastUsed) -> LastUsed {
    LastUsed {
        date: last_used.last_used_date.as_ref().and_then(super::utc),
        service: known(&last_used.service_name),
        region: known(&last_used.region),
    }
}

/// Returns a last-used field, or `None` for the `N/A` IAM writes when there is none.
fn known(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty() && value != "N/A").then(|| value.to_string())
}

/// Returns an IAM user with its MFA devices, console password, groups, tags, access keys
/// and every policy that applies to it, or `None` when there is no such user.
///
/// Every call that needs only the user name is sent concurrently, `GetUser` included. The
/// policy documents and the last use of each key follow in a second round. A managed
/// policy's version and a group's policies each add a round, so a group's managed policy
/// takes four. When the user does not exist, the other calls fail too, and `GetUser`'s
/// response decides.
pub(super) async fn user(
    live: &LiveEvidence,
    user_name: &str,
) -> Result<Option<UserRecord>, EvidenceError> {
    if user_name == ROOT_USER {
        return Ok(None);
    }
    let clients = live.home_clients().await?;
    let iam = clients.iam();

    let (record, access_keys) = tokio::join!(
        user_and_policies(iam, user_name),
        user_access_keys(live, user_name)
    );
    let Some(mut record) = record? else {
        return Ok(None);
    };
    record.access_keys = access_keys?;
    Ok(Some(record))
}

/// Reads the user with everything but its access keys.
async fn user_and_policies(iam: &Iam, user_name: &str) -> Result<Option<UserRecord>, EvidenceError> {
    let (user, mfa_devices, console_password, groups, tags, inline, managed) = tokio::join!(
        get_user(iam, user_name),
        mfa_devices(iam, user_name),
        has_login_profile(iam, user_name),
        groups_of(iam, user_name),
        user_tags(iam, user_name),
        user_inline_names(iam, user_name),
        user_managed(iam, user_name),
    );
    let Some(user) = user? else {
        return Ok(None);
    };
    let (mfa_devices, console_password, groups, tags) = (mfa_devices?, console_password?, groups?, tags?);
    let boundary = user
        .permissions_boundary
        .as_ref()
        .and_then(|b| b.permissions_boundary_arn.clone());
    let own = own_policies(inline?, managed?, boundary);
    let policies = policies_of(iam, user_name, own, &groups).await?;

    Ok(Some(UserRecord {
        user_name: user.user_name,
        arn: Some(user.arn),
        user_id: Some(user.user_id),
        created: super::utc(&user.create_date),
        console_password: Some(console_password),
        mfa_devices: Some(mfa_devices),
        groups,
        policies,
        access_keys: Vec::new(),
        tags,
    }))
}

async fn get_user(iam: &Iam, user_name: &str) -> Result<Option<aws_sdk_iam::types::User>, EvidenceError> {
    match iam.get_user().user_name(user_name).send().await {
        Ok(output) => Ok(output.user),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(aws_error(&IAM_GET_USER, user_name, &error)),
    }
}

async fn mfa_devices(iam: &Iam, user_name: &str) -> Result<Vec<MfaDevice>, EvidenceError> {
    let devices: Vec<_> = iam
        .list_mfa_devices()
        .user_name(user_name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|error| aws_error(&IAM_LIST_MFA_DEVICES, user_name, &error))?;
    Ok(devices
        .into_iter()
        .map(|device| MfaDevice {
            enabled: super::utc(&device.enable_date),
            serial: device.serial_number,
        })
        .collect())
}

/// Returns whether the user has a console password. IAM returns `NoSuchEntity` when not.
async fn has_login_profile(iam: &Iam, user_name: &str) -> Result<bool, EvidenceError> {
    match iam.get_login_profile().user_name(user_name).send().await {
        Ok(_) => Ok(true),
        Err(error) if is_not_found(&error) => Ok(false),
        Err(error) => Err(aws_error(&IAM_GET_LOGIN_PROFILE, user_name, &error)),
    }
}

async fn groups_of(iam: &Iam, user_name: &str) -> Result<Vec<String>, EvidenceError> {
    let groups: Vec<_> = iam
        .list_groups_for_user()
        .user_name(user_name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|error| aws_error(&IAM_LIST_GROUPS_FOR_USER, user_name, &error))?;
    Ok(groups.into_iter().map(|g| g.group_name).collect())
}

async fn user_tags(iam: &Iam, user_name: &str) -> Result<Vec<(String, String)>, EvidenceError> {
    let tags: Vec<_> = iam
        .list_user_tags()
        .user_name(user_name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|error| aws_error(&IAM_LIST_USER_TAGS, user_name, &error))?;
    Ok(tags.into_iter().map(|t| (t.key, t.value)).collect())
}

/// Returns the user's access keys, each with its last use, read concurrently. The calls
/// for the key under investigation are shared with `access_key`, so only the owner's
/// other keys cost a `GetAccessKeyLastUsed` call.
async fn user_access_keys(live: &LiveEvidence, user_name: &str) -> Result<Vec<KeyRecord>, EvidenceError> {
    let listed = list_access_keys(live, user_name).await?;
    let records = listed.into_iter().filter_map(|metadata| {
        let key_id = metadata.access_key_id?;
        Some(async move {
            let found = last_use(live, &key_id).await?;
            Ok::<_, EvidenceError>(KeyRecord {
                status: key_status(metadata.status.as_ref()),
                created: metadata.create_date.as_ref().and_then(super::utc),
                last_used: found.and_then(|f| f.last_used),
                user_name: user_name.to_string(),
                key_id,
            })
        })
    });
    let mut keys: Vec<KeyRecord> = try_join_all(records).await?;
    keys.sort_by_key(|k| k.created);
    Ok(keys)
}

/// A policy found attached before its document is fetched.
enum Attached {
    Inline {
        name: String,
        group: Option<String>,
    },
    Managed {
        name: String,
        arn: String,
        attachment: PolicyAttachment,
    },
}

/// Lists the user's own policies in the snapshot's order: inline, attached managed, then
/// the permissions boundary.
fn own_policies(inline: Vec<String>, managed: Vec<(String, String)>, boundary: Option<String>) -> Vec<Attached> {
    let mut attached: Vec<Attached> = inline
        .into_iter()
        .map(|name| Attached::Inline { name, group: None })
        .collect();
    attached.extend(managed.into_iter().map(|(name, arn)| Attached::Managed {
        name,
        arn,
        attachment: PolicyAttachment::Managed,
    }));
    if let Some(arn) = boundary {
        let name = arn.rsplit('/').next().unwrap_or(&arn).to_string();
        attached.push(Attached::Managed {
            name,
            arn,
            attachment: PolicyAttachment::Boundary,
        });
    }
    attached
}

/// Returns the policies that apply to a user with their documents, in the snapshot's
/// order: the user's own (`own`), then the inline and managed policies of each group.
/// The documents of the user's own policies are fetched while the groups' policies are
/// listed. Each managed document is fetched once, however many times it is attached.
async fn policies_of(
    iam: &Iam,
    user_name: &str,
    own: Vec<Attached>,
    groups: &[String],
) -> Result<Vec<PolicyRecord>, EvidenceError> {
    let managed: Memo<Result<Option<Value>, EvidenceError>> = Memo::default();
    let group_policies = async {
        let per_group = try_join_all(groups.iter().map(|group| group_policies(iam, group))).await?;
        with_documents(iam, user_name, per_group.into_iter().flatten().collect(), &managed).await
    };
    let (mut policies, group_policies) =
        try_join!(with_documents(iam, user_name, own, &managed), group_policies)?;
    policies.extend(group_policies);
    Ok(policies)
}

/// Fetches the documents of `attached`, up to `DOCUMENT_FETCHES` concurrently, keeping
/// their order.
async fn with_documents(
    iam: &Iam,
    user_name: &str,
    attached: Vec<Attached>,
    managed: &Memo<Result<Option<Value>, EvidenceError>>,
) -> Result<Vec<PolicyRecord>, EvidenceError> {
    stream::iter(attached)
        .map(|policy| async move {
            Ok(match policy {
                Attached::Inline { name, group: None } => PolicyRecord {
                    document: user_inline_document(iam, user_name, &name).await?,
                    name,
                    arn: None,
                    attachment: PolicyAttachment::Inline,
                },
                Attached::Inline {
                    name,
                    group: Some(group),
                } => PolicyRecord {
                    document: group_inline_document(iam, &group, &name).await?,
                    name,
                    arn: None,
                    attachment: PolicyAttachment::GroupInline { group },
                },
                Attached::Managed {
                    name,
                    arn,
                    attachment,
                } => PolicyRecord {
                    document: managed
                        .get_or_compute(&arn, || managed_document(iam, &arn))
                        .await?,
                    name,
                    arn: Some(arn),
                    attachment,
                },
            })
        })
        .buffered(DOCUMENT_FETCHES)
        .try_collect()
        .await
}

async fn user_inline_names(iam: &Iam, user_name: &str) -> Result<Vec<String>, EvidenceError> {
    iam.list_user_policies()
        .user_name(user_name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|error| aws_error(&IAM_LIST_USER_POLICIES, user_name, &error))
}

async fn user_managed(iam: &Iam, user_name: &str) -> Result<Vec<(String, String)>, EvidenceError> {
    let attached: Vec<_> = iam
        .list_attached_user_policies()
        .user_name(user_name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|error| aws_error(&IAM_LIST_ATTACHED_USER_POLICIES, user_name, &error))?;
    Ok(attached.into_iter().filter_map(name_and_arn).collect())
}

fn name_and_arn(policy: aws_sdk_iam::types::AttachedPolicy) -> Option<(String, String)> {
    let arn = policy.policy_arn?;
    let name = policy
        .policy_name
        .unwrap_or_else(|| arn.rsplit('/').next().unwrap_or(&arn).to_string());
    Some((name, arn))
}

async fn group_policies(iam: &Iam, group: &str) -> Result<Vec<Attached>, EvidenceError> {
    let inline = async {
        iam.list_group_policies()
            .group_name(group)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| aws_error(&IAM_LIST_GROUP_POLICIES, group, &error))
    };
    let managed = async {
        iam.list_attached_group_policies()
            .group_name(group)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|error| aws_error(&IAM_LIST_ATTACHED_GROUP_POLICIES, group, &error))
    };
    let (inline, managed): (Vec<String>, Vec<_>) = try_join!(inline, managed)?;

    let mut attached: Vec<Attached> = inline
        .into_iter()
        .map(|name| Attached::Inline {
            name,
            group: Some(group.to_string()),
        })
        .collect();
    attached.extend(
        managed
            .into_iter()
            .filter_map(name_and_arn)
            .map(|(name, arn)| Attached::Managed {
                name,
                arn,
                attachment: PolicyAttachment::GroupManaged {
                    group: group.to_string(),
                },
            }),
    );
    Ok(attached)
}

async fn user_inline_document(
    iam: &Iam,
    user_name: &str,
    policy: &str,
) -> Result<Option<Value>, EvidenceError> {
    let output = iam
        .get_user_policy()
        .user_name(user_name)
        .policy_name(policy)
        .send()
        .await
        .map_err(|error| {
            aws_error(
                &IAM_GET_USER_POLICY,
                &format!("{user_name}/{policy}"),
                &error,
            )
        })?;
    Ok(document(policy, &output.policy_document))
}

async fn group_inline_document(
    iam: &Iam,
    group: &str,
    policy: &str,
) -> Result<Option<Value>, EvidenceError> {
    let output = iam
        .get_group_policy()
        .group_name(group)
        .policy_name(policy)
        .send()
        .await
        .map_err(|error| aws_error(&IAM_GET_GROUP_POLICY, &format!("{group}/{policy}"), &error))?;
    Ok(document(policy, &output.policy_document))
}

/// Fetches the default version's document of a managed policy.
async fn managed_document(iam: &Iam, arn: &str) -> Result<Option<Value>, EvidenceError> {
    let policy = iam
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|error| aws_error(&IAM_GET_POLICY, arn, &error))?;
    let Some(version) = policy.policy.and_then(|p| p.default_version_id) else {
        warn!(policy_arn = arn, "managed policy without a default version");
        return Ok(None);
    };
    let output = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(&version)
        .send()
        .await
        .map_err(|error| aws_error(&IAM_GET_POLICY_VERSION, &format!("{arn} {version}"), &error))?;
    let text = output.policy_version.and_then(|v| v.document);
    Ok(text.and_then(|text| document(arn, &text)))
}

/// Decodes a policy document, logging one that does not decode so that its policy still
/// counts, without a document.
fn document(policy: &str, raw: &str) -> Option<Value> {
    match decode_document(raw) {
        Ok(document) => Some(document),
        Err(error) => {
            warn!(policy, %error, "policy document not decoded");
            None
        }
    }
}

/// How long to wait between `GenerateCredentialReport` calls at first and at most.
const REPORT_POLL: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(4));

/// Returns the account's IAM credential report, generating a fresh one and waiting for
/// it up to the query timeout.
pub(super) async fn credential_report(
    live: &LiveEvidence,
) -> Result<Vec<CredentialReportRow>, EvidenceError> {
    let clients = live.home_clients().await?;
    let iam = clients.iam();
    let wait = live.config().query_timeout;
    let deadline = Instant::now() + wait;
    let mut delay = REPORT_POLL.0;

    loop {
        let output = iam
            .generate_credential_report()
            .send()
            .await
            .map_err(|error| {
                aws_error(&IAM_GENERATE_CREDENTIAL_REPORT, "credential report", &error)
            })?;
        if output.state == Some(ReportStateType::Complete) {
            break;
        }
        if Instant::now() + delay > deadline {
            return Err(failure(
                &IAM_GENERATE_CREDENTIAL_REPORT,
                "credential report",
                AwsErrorKind::Timeout,
                format!(
                    "the report was not ready within {}",
                    humantime::format_duration(wait)
                ),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(REPORT_POLL.1);
    }

    let output = iam
        .get_credential_report()
        .send()
        .await
        .map_err(|error| aws_error(&IAM_GET_CREDENTIAL_REPORT, "credential report", &error))?;
    let content = output
        .content
        .map(|blob| blob.into_inner())
        .unwrap_or_default();
    let csv = String::from_utf8(content).map_err(|_| {
        failure(
            &IAM_GET_CREDENTIAL_REPORT,
            "credential report",
            AwsErrorKind::Other,
            "the report is not UTF-8 text",
        )
    })?;
    credential_report_rows(&csv).map_err(|reason| {
        failure(
            &IAM_GET_CREDENTIAL_REPORT,
            "credential report",
            AwsErrorKind::Other,
            reason,
        )
    })
}
