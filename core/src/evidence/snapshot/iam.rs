//! The IAM records of a snapshot: users, groups and managed policies from
//! `get-account-authorization-details`, access keys from `list-access-keys` and
//! `get-access-key-last-used`, MFA devices, login profiles and the credential report.
//!
//! Files add to one `IamData` in any order. The records the playbook requests (a key, a
//! user with every policy that applies to it) are assembled on request, so a key listed in
//! one file and its last use in another end up in one record.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::json::{
    arn_account, arn_resource_name, field, items, tags, text, text_at, time, time_field,
};
use crate::evidence::{
    CredentialReportRow, KeyRecord, KeyStatus, LastUsed, MfaDevice, PolicyAttachment, PolicyRecord,
    UserRecord,
};
use crate::key::AccessKeyId;

/// Serial number written for an MFA device that only the credential report mentions.
const REPORT_ONLY_DEVICE: &str = "unknown device (the credential report says MFA is active)";

/// The snapshot's IAM records.
#[derive(Debug, Default)]
pub(super) struct IamData {
    /// `UserDetailList` entries by user name, kept as JSON and read when a user is asked for.
    users: BTreeMap<String, Value>,
    /// `GroupDetailList` entries by group name.
    groups: BTreeMap<String, Value>,
    /// Default-version documents of managed policies, by policy ARN.
    policy_documents: HashMap<String, Value>,
    /// Keys from `list-access-keys`, by access key ID.
    listed_keys: BTreeMap<String, KeyRecord>,
    /// `get-access-key-last-used` outputs by access key ID, with the user each names.
    last_used: BTreeMap<String, (Option<String>, LastUsed)>,
    /// True once any access key file was read, even one that lists no keys.
    has_key_files: bool,
    /// MFA devices by user name; an empty list means the user has none.
    mfa_devices: BTreeMap<String, Vec<MfaDevice>>,
    /// Users with a console password (a login profile).
    login_profiles: BTreeSet<String>,
    /// The credential report, when one was read.
    report: Option<Vec<ReportRow>>,
}

/// A credential report row with the access key columns that `CredentialReportRow` leaves out.
#[derive(Clone, Debug)]
struct ReportRow {
    row: CredentialReportRow,
    keys: [ReportKey; 2],
}

/// The credential report's columns for one access key slot.
#[derive(Clone, Debug)]
struct ReportKey {
    active: Option<bool>,
    /// When the key was created or last rotated; IAM writes the creation time here for a
    /// key that was never rotated, which is how a slot is matched to a listed key.
    last_rotated: Option<DateTime<Utc>>,
    last_used: LastUsed,
}

impl IamData {
    /// Adds `get-account-authorization-details` output and returns how many users, groups,
    /// roles and managed policies it held.
    pub(super) fn add_authorization_details(&mut self, value: &Value) -> usize {
        let mut records = 0;
        for user in items(field(value, "UserDetailList")) {
            if let Some(name) = text(user, "UserName") {
                self.users.insert(name, user.clone());
                records += 1;
            }
        }
        for group in items(field(value, "GroupDetailList")) {
            if let Some(name) = text(group, "GroupName") {
                self.groups.insert(name, group.clone());
                records += 1;
            }
        }
        records += items(field(value, "RoleDetailList")).count();
        for policy in items(field(value, "Policies")) {
            let Some(arn) = text(policy, "Arn") else {
                continue;
            };
            records += 1;
            if let Some(document) = default_version_document(policy) {
                self.policy_documents.insert(arn, document);
            }
        }
        records
    }

    /// Adds `get-credential-report` output: `{"Content": …}` with the CSV in base64 as the
    /// CLI writes it, or already decoded as SDK recordings hold it. Returns the row count.
    pub(super) fn add_credential_report_json(&mut self, value: &Value) -> Result<usize, String> {
        let Some(content) = text(value, "Content") else {
            return Err(
                "credential report output without its Content field, so it holds no rows".into(),
            );
        };
        let csv = if content.starts_with("user,") {
            content
        } else {
            let compact: String = content.split_whitespace().collect();
            let bytes = data_encoding::BASE64
                .decode(compact.as_bytes())
                .map_err(|error| format!("credential report Content is not base64: {error}"))?;
            String::from_utf8(bytes)
                .map_err(|_| "credential report Content is not UTF-8 text".to_string())?
        };
        self.add_credential_report_csv(&csv)
    }

    /// Adds the credential report as CSV and returns the row count.
    pub(super) fn add_credential_report_csv(&mut self, csv: &str) -> Result<usize, String> {
        let rows = parse_credential_report(csv)?;
        let count = rows.len();
        self.report.get_or_insert_with(Vec::new).extend(rows);
        Ok(count)
    }

    /// Adds `list-access-keys` output and returns how many keys it listed.
    pub(super) fn add_access_keys(&mut self, value: &Value) -> usize {
        self.has_key_files = true;
        let mut count = 0;
        for metadata in items(field(value, "AccessKeyMetadata")) {
            let (Some(key_id), Some(user_name)) =
                (text(metadata, "AccessKeyId"), text(metadata, "UserName"))
            else {
                continue;
            };
            let status = match text(metadata, "Status").as_deref() {
                Some("Active") => KeyStatus::Active,
                Some("Inactive") => KeyStatus::Inactive,
                _ => KeyStatus::Unknown,
            };
            let record = KeyRecord {
                key_id: key_id.clone(),
                user_name,
                status,
                created: time_field(metadata, "CreateDate"),
                last_used: None,
            };
            self.listed_keys.insert(key_id, record);
            count += 1;
        }
        count
    }

    /// Adds `get-access-key-last-used` output. The output does not name the key, so the key
    /// ID comes from an `AccessKeyId` field when the exporter added one, else from the file
    /// name (`iam/access-key-last-used/AKIA….json`).
    pub(super) fn add_last_used(
        &mut self,
        value: &Value,
        file_stem: Option<&str>,
    ) -> Result<usize, String> {
        let key_id = text(value, "AccessKeyId").or_else(|| {
            file_stem
                .and_then(|stem| stem.parse::<AccessKeyId>().ok())
                .map(String::from)
        });
        let Some(key_id) = key_id else {
            return Err("get-access-key-last-used output that names no access key: add an AccessKeyId field or name the file after the key, such as iam/access-key-last-used/AKIA….json".into());
        };
        let Some(last_used) = field(value, "AccessKeyLastUsed") else {
            return Err("get-access-key-last-used output without AccessKeyLastUsed".into());
        };
        let record = LastUsed {
            date: time_field(last_used, "LastUsedDate"),
            service: known(text(last_used, "ServiceName")),
            region: known(text(last_used, "Region")),
        };
        self.has_key_files = true;
        self.last_used
            .insert(key_id, (text(value, "UserName"), record));
        Ok(1)
    }

    /// Adds `list-mfa-devices` output. Devices name their user; an empty list does not, so
    /// it is credited to `user_hint` (the file name under `iam/mfa-devices/`).
    pub(super) fn add_mfa_devices(
        &mut self,
        value: &Value,
        user_hint: Option<&str>,
    ) -> Result<usize, String> {
        let devices: Vec<&Value> = items(field(value, "MFADevices")).collect();
        if devices.is_empty() {
            let Some(user) = user_hint else {
                return Err("empty MFA device list that names no user: name the file after the user, such as iam/mfa-devices/alice.json".into());
            };
            self.mfa_devices.entry(user.to_string()).or_default();
            return Ok(0);
        }
        for device in &devices {
            let Some(user) = text(device, "UserName").or_else(|| user_hint.map(str::to_string))
            else {
                return Err("MFA device without UserName in a file not named after a user".into());
            };
            let Some(serial) = text(device, "SerialNumber") else {
                continue;
            };
            let enabled = time_field(device, "EnableDate");
            self.mfa_devices
                .entry(user)
                .or_default()
                .push(MfaDevice { serial, enabled });
        }
        Ok(devices.len())
    }

    /// Adds `get-login-profile` output: the user has a console password.
    pub(super) fn add_login_profile(
        &mut self,
        value: &Value,
        user_hint: Option<&str>,
    ) -> Result<usize, String> {
        let user =
            text_at(value, &["LoginProfile", "UserName"]).or_else(|| user_hint.map(str::to_string));
        let Some(user) = user else {
            return Err("login profile without UserName in a file not named after a user".into());
        };
        self.login_profiles.insert(user);
        Ok(1)
    }

    /// Returns true when any IAM file was read.
    pub(super) fn has_any(&self) -> bool {
        !self.users.is_empty()
            || self.has_key_files
            || !self.mfa_devices.is_empty()
            || !self.login_profiles.is_empty()
            || self.report.is_some()
    }

    /// Returns true when any access key file (`list-access-keys`, `get-access-key-last-used`)
    /// was read, so that the snapshot can report a key as missing.
    pub(super) fn has_key_records(&self) -> bool {
        self.has_key_files
    }

    /// Returns the credential report rows, when the snapshot has a report.
    pub(super) fn credential_report(&self) -> Option<Vec<CredentialReportRow>> {
        let report = self.report.as_ref()?;
        Some(report.iter().map(|r| r.row.clone()).collect())
    }

    /// Returns the record of one access key, merged from every file that mentions it.
    pub(super) fn key_record(&self, key_id: &str) -> Option<KeyRecord> {
        let listed = self.listed_keys.get(key_id).cloned();
        let used = self.last_used.get(key_id);
        let mut record = match (listed, used) {
            (Some(record), _) => record,
            // get-access-key-last-used succeeds only for a key that exists, but does not
            // report whether it is active.
            (None, Some((Some(user_name), _))) => KeyRecord {
                key_id: key_id.to_string(),
                user_name: user_name.clone(),
                status: KeyStatus::Unknown,
                created: None,
                last_used: None,
            },
            _ => return None,
        };
        if let Some((_, last_used)) = used {
            record.last_used = Some(last_used.clone());
        }
        self.fill_from_report(&mut record);
        Some(record)
    }

    /// Fills a key's missing status and last use from the credential report slot whose
    /// `access_key_N_last_rotated` equals the key's creation time.
    fn fill_from_report(&self, record: &mut KeyRecord) {
        let Some(created) = record.created else {
            return;
        };
        let Some(row) = self.report_row(&record.user_name) else {
            return;
        };
        let Some(slot) = row.keys.iter().find(|k| k.last_rotated == Some(created)) else {
            return;
        };
        if record.status == KeyStatus::Unknown {
            record.status = match slot.active {
                Some(true) => KeyStatus::Active,
                Some(false) => KeyStatus::Inactive,
                None => KeyStatus::Unknown,
            };
        }
        if record.last_used.is_none() {
            record.last_used = Some(slot.last_used.clone());
        }
    }

    fn report_row(&self, user_name: &str) -> Option<&ReportRow> {
        self.report
            .as_ref()?
            .iter()
            .find(|r| r.row.user == user_name)
    }

    /// Returns the account of a key found in the IAM records: the account in its owner's
    /// ARN, else in any ARN of the export, since one export covers one account.
    pub(super) fn account_of_key(&self, key_id: &str) -> Option<String> {
        let owner = self.key_record(key_id)?.user_name;
        let owner_arn = self
            .users
            .get(&owner)
            .and_then(|user| text(user, "Arn"))
            .or_else(|| self.report_row(&owner).and_then(|r| r.row.arn.clone()));
        owner_arn
            .as_deref()
            .and_then(arn_account)
            .or_else(|| self.any_account())
    }

    fn any_account(&self) -> Option<String> {
        let user_arns = self.users.values().filter_map(|user| text(user, "Arn"));
        let report_arns = self
            .report
            .iter()
            .flatten()
            .filter_map(|r| r.row.arn.clone());
        user_arns
            .chain(report_arns)
            .find_map(|arn| arn_account(&arn))
    }

    /// Assembles a user from every IAM file: details and policies from the authorization
    /// details, MFA devices, login profile, credential report and access keys. Returns
    /// `None` when no file mentions the user.
    pub(super) fn user_record(&self, user_name: &str) -> Option<UserRecord> {
        let details = self.users.get(user_name);
        let report = self.report_row(user_name);
        let access_keys = self.keys_of(user_name);
        let devices = self.mfa_devices.get(user_name);
        let has_login_profile = self.login_profiles.contains(user_name);
        if details.is_none()
            && report.is_none()
            && access_keys.is_empty()
            && devices.is_none()
            && !has_login_profile
        {
            return None;
        }

        let mut user = UserRecord {
            user_name: user_name.to_string(),
            access_keys,
            ..UserRecord::default()
        };
        if let Some(details) = details {
            user.arn = text(details, "Arn");
            user.user_id = text(details, "UserId");
            user.created = time_field(details, "CreateDate");
            user.groups = items(field(details, "GroupList"))
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect();
            user.tags = tags(field(details, "Tags"));
            user.policies = self.policies_of(details, &user.groups);
        }
        if let Some(report) = report {
            user.arn = user.arn.or_else(|| report.row.arn.clone());
        }

        user.console_password = if has_login_profile {
            Some(true)
        } else {
            report.and_then(|r| r.row.password_enabled)
        };
        user.mfa_devices = match (devices, report.and_then(|r| r.row.mfa_active)) {
            (Some(devices), _) => Some(devices.clone()),
            (None, Some(false)) => Some(Vec::new()),
            (None, Some(true)) => Some(vec![MfaDevice {
                serial: REPORT_ONLY_DEVICE.to_string(),
                enabled: None,
            }]),
            (None, None) => None,
        };
        Some(user)
    }

    fn keys_of(&self, user_name: &str) -> Vec<KeyRecord> {
        let listed = self
            .listed_keys
            .values()
            .filter(|k| k.user_name == user_name)
            .map(|k| k.key_id.clone());
        let used = self
            .last_used
            .iter()
            .filter(|(_, (user, _))| user.as_deref() == Some(user_name))
            .map(|(key_id, _)| key_id.clone());
        let ids: BTreeSet<String> = listed.chain(used).collect();
        let mut keys: Vec<KeyRecord> = ids.iter().filter_map(|id| self.key_record(id)).collect();
        keys.sort_by_key(|k| k.created);
        keys
    }

    /// Lists the policies that apply to a user: inline, attached managed, the permissions
    /// boundary, then the inline and managed policies of each group.
    fn policies_of(&self, details: &Value, groups: &[String]) -> Vec<PolicyRecord> {
        let mut policies = Vec::new();
        for inline in items(field(details, "UserPolicyList")) {
            policies.push(self.inline_policy(inline, PolicyAttachment::Inline));
        }
        for attached in items(field(details, "AttachedManagedPolicies")) {
            policies.extend(self.managed_policy(attached, PolicyAttachment::Managed));
        }
        if let Some(arn) = text_at(details, &["PermissionsBoundary", "PermissionsBoundaryArn"]) {
            policies.push(PolicyRecord {
                name: arn_resource_name(&arn).unwrap_or_else(|| arn.clone()),
                document: self.policy_documents.get(&arn).cloned(),
                arn: Some(arn),
                attachment: PolicyAttachment::Boundary,
            });
        }

        for group_name in groups {
            let Some(group) = self.groups.get(group_name) else {
                continue;
            };
            for inline in items(field(group, "GroupPolicyList")) {
                let attachment = PolicyAttachment::GroupInline {
                    group: group_name.clone(),
                };
                policies.push(self.inline_policy(inline, attachment));
            }
            for attached in items(field(group, "AttachedManagedPolicies")) {
                let attachment = PolicyAttachment::GroupManaged {
                    group: group_name.clone(),
                };
                policies.extend(self.managed_policy(attached, attachment));
            }
        }
        policies
    }

    fn inline_policy(&self, inline: &Value, attachment: PolicyAttachment) -> PolicyRecord {
        PolicyRecord {
            name: text(inline, "PolicyName").unwrap_or_default(),
            arn: None,
            attachment,
            document: field(inline, "PolicyDocument").and_then(policy_document),
        }
    }

    fn managed_policy(
        &self,
        attached: &Value,
        attachment: PolicyAttachment,
    ) -> Option<PolicyRecord> {
        let arn = text(attached, "PolicyArn")?;
        Some(PolicyRecord {
            name: text(attached, "PolicyName")
                .or_else(|| arn_resource_name(&arn))
                .unwrap_or_default(),
            document: self.policy_documents.get(&arn).cloned(),
            arn: Some(arn),
            attachment,
        })
    }
}

/// Returns the document of a managed policy's default version from its
/// `PolicyVersionList`, chosen by `DefaultVersionId` or `IsDefaultVersion`.
fn default_version_document(policy: &Value) -> Option<Value> {
    let default_id = text(policy, "DefaultVersionId");
    let version = items(field(policy, "PolicyVersionList")).find(|version| {
        let is_default = field(version, "IsDefaultVersion").and_then(Value::as_bool) == Some(true);
        is_default || (default_id.is_some() && text(version, "VersionId") == default_id)
    })?;
    field(version, "Document").and_then(policy_document)
}

/// Decodes a policy document: a JSON object as the AWS CLI writes it, or a string that the
/// IAM API URL-encodes (RFC 3986) and some exports keep as it came.
pub(crate) fn policy_document(value: &Value) -> Option<Value> {
    match value {
        Value::Object(_) => Some(value.clone()),
        Value::String(encoded) => {
            let decoded = percent_encoding::percent_decode_str(encoded)
                .decode_utf8()
                .ok()?;
            serde_json::from_str(&decoded).ok()
        }
        _ => None,
    }
}

/// Parses the IAM credential report CSV into its rows, for sources that fetch the report
/// themselves, such as the live source.
pub(crate) fn credential_report_rows(csv: &str) -> Result<Vec<CredentialReportRow>, String> {
    let rows = parse_credential_report(csv)?;
    Ok(rows.into_iter().map(|r| r.row).collect())
}

/// Parses the IAM credential report CSV, whose header starts `user,arn,user_creation_time`.
/// AWS writes no quoted fields (user names and ARNs cannot contain commas).
fn parse_credential_report(csv: &str) -> Result<Vec<ReportRow>, String> {
    let mut lines = csv.lines().filter(|line| !line.trim().is_empty());
    let Some(header) = lines.next() else {
        return Err("empty credential report".into());
    };
    let columns: Vec<&str> = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(str::trim)
        .collect();
    if columns.first() != Some(&"user") || !columns.contains(&"arn") {
        return Err(format!(
            "not a credential report: the header starts {:?}",
            columns.iter().take(3).collect::<Vec<_>>()
        ));
    }

    let mut rows = Vec::new();
    for line in lines {
        let values: Vec<&str> = line.split(',').map(str::trim).collect();
        let cell = |name: &str| -> Option<&str> {
            let index = columns.iter().position(|c| *c == name)?;
            values.get(index).copied().filter(|v| !v.is_empty())
        };
        let Some(user) = cell("user") else {
            continue;
        };
        let slot = |n: u8| ReportKey {
            active: cell(&format!("access_key_{n}_active")).and_then(report_bool),
            last_rotated: cell(&format!("access_key_{n}_last_rotated")).and_then(report_time),
            last_used: LastUsed {
                date: cell(&format!("access_key_{n}_last_used_date")).and_then(report_time),
                service: known(
                    cell(&format!("access_key_{n}_last_used_service")).map(str::to_string),
                ),
                region: known(
                    cell(&format!("access_key_{n}_last_used_region")).map(str::to_string),
                ),
            },
        };
        let keys = [slot(1), slot(2)];
        rows.push(ReportRow {
            row: CredentialReportRow {
                user: user.to_string(),
                arn: cell("arn").map(str::to_string),
                password_enabled: cell("password_enabled").and_then(report_bool),
                mfa_active: cell("mfa_active").and_then(report_bool),
                access_key_1_active: keys[0].active,
                access_key_2_active: keys[1].active,
            },
            keys,
        });
    }
    Ok(rows)
}

/// Reads a credential report flag; `not_supported` (the root user's password columns) and
/// `N/A` are unknown.
fn report_bool(cell: &str) -> Option<bool> {
    match cell {
        "true" | "TRUE" => Some(true),
        "false" | "FALSE" => Some(false),
        _ => None,
    }
}

fn report_time(cell: &str) -> Option<DateTime<Utc>> {
    time(&Value::String(cell.to_string()))
}

/// Drops the `N/A` that IAM writes for a key never used.
fn known(value: Option<String>) -> Option<String> {
    value.filter(|v| v != "N/A" && v != "no_information")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated
<root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00+00:00,not_supported,N/A,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
dana,arn:aws:iam::111122223333:user/dana,2023-01-01T00:00:00+00:00,true,2024-04-30T08:00:00+00:00,2023-01-01T00:00:00+00:00,N/A,false,true,2023-02-01T00:00:00+00:00,2024-05-01T09:00:00+00:00,eu-west-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
";

    #[test]
    fn credential_report_rows() {
        let mut iam = IamData::default();
        let encoded = data_encoding::BASE64.encode(REPORT.as_bytes());
        let rows = iam
            .add_credential_report_json(&json!({"Content": encoded, "ReportFormat": "text/csv"}))
            .unwrap();
        assert_eq!(rows, 2);
        let report = iam.credential_report().unwrap();
        assert_eq!(report[0].user, "<root_account>");
        assert_eq!(report[0].password_enabled, None, "not_supported is unknown");
        assert_eq!(report[1].password_enabled, Some(true));
        assert_eq!(report[1].mfa_active, Some(false));
        assert_eq!(report[1].access_key_1_active, Some(true));
        assert_eq!(report[1].access_key_2_active, Some(false));
    }

    #[test]
    fn credential_report_without_content_rejected() {
        let mut iam = IamData::default();
        let result = iam.add_credential_report_json(
            &json!({"GeneratedTime": "2024-05-01T00:00:00Z", "ReportFormat": "text/csv"}),
        );
        assert!(result.unwrap_err().contains("Content"));
        assert!(!iam.has_any());
    }

    #[test]
    fn key_record_filled_from_report_slot() {
        let mut iam = IamData::default();
        iam.add_credential_report_csv(REPORT).unwrap();
        iam.add_access_keys(&json!({"AccessKeyMetadata": [{"UserName": "dana", "AccessKeyId": "AKIAQWERTYUIOPASDFGH",
            "Status": "Active", "CreateDate": "2023-02-01T00:00:00Z"}]}));
        let record = iam.key_record("AKIAQWERTYUIOPASDFGH").unwrap();
        let last_used = record.last_used.unwrap();
        assert_eq!(last_used.service.as_deref(), Some("s3"));
        assert_eq!(
            last_used.date.unwrap().to_rfc3339(),
            "2024-05-01T09:00:00+00:00"
        );
    }

    #[test]
    fn last_used_key_from_file_stem() {
        let mut iam = IamData::default();
        let output = json!({"UserName": "dana", "AccessKeyLastUsed": {"Region": "N/A", "ServiceName": "N/A"}});
        assert!(
            iam.add_last_used(&output, Some("dana-key")).is_err(),
            "stem is not a key ID"
        );
        iam.add_last_used(&output, Some("AKIAQWERTYUIOPASDFGH"))
            .unwrap();
        let record = iam.key_record("AKIAQWERTYUIOPASDFGH").unwrap();
        assert_eq!(record.user_name, "dana");
        assert_eq!(record.status, KeyStatus::Unknown);
        let last_used = record.last_used.unwrap();
        assert_eq!(
            last_used,
            LastUsed {
                date: None,
                service: None,
                region: None
            },
            "never used"
        );
    }

    #[test]
    fn policy_document_decodes_url_encoding() {
        let encoded = json!("%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D");
        assert_eq!(
            policy_document(&encoded),
            Some(json!({"Version": "2012-10-17", "Statement": []}))
        );
        assert_eq!(
            policy_document(&json!({"Statement": []})),
            Some(json!({"Statement": []}))
        );
        assert_eq!(policy_document(&json!("%7Bnot json")), None);
    }
}
