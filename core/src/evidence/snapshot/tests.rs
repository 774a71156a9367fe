//! Snapshots built in temporary folders from invented evidence, read through the
//! `Evidence` trait, and one built from the AWS CLI's published example outputs.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::*;
use crate::evidence::{FindingSource, KeyLocationKind, KeyStatus, PolicyAttachment};

const KEY: &str = "AKIAQWERTYUIOPASDFGH";
const OTHER_KEY: &str = "AKIAPOIUYTREWQLKJHGF";
const SESSION_KEY: &str = "ASIAZXCVBNMLKJHGFDSA";
const ACCOUNT: &str = "111122223333";
const OWNER_ARN: &str = "arn:aws:iam::111122223333:user/dana";
const SECRET_VALUE: &str = "Zm9vYmFyYmF6cXV4c2VjcmV0dmFsdWUxMjM0NTY3";

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn gzip(content: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(content.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

fn key() -> AccessKeyId {
    KEY.parse().unwrap()
}

fn subject(owner: Option<&str>) -> Subject {
    Subject {
        key: key(),
        account_id: Some(ACCOUNT.to_string()),
        owner_name: owner.map(str::to_string),
        owner_arn: owner.map(|_| OWNER_ARN.to_string()),
    }
}

/// Builds one CloudTrail record of a call dana made with `key_id`.
fn record(
    event_id: &str,
    time: &str,
    name: &str,
    key_id: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut record = json!({
        "eventVersion": "1.08", "eventTime": time, "eventSource": "s3.amazonaws.com", "eventName": name,
        "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.10", "userAgent": "aws-cli/2.15.0",
        "eventID": event_id, "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEDANA", "arn": OWNER_ARN,
                         "accountId": ACCOUNT, "accessKeyId": key_id, "userName": "dana"}
    });
    if let (Some(target), Some(fields)) = (record.as_object_mut(), extra.as_object()) {
        target.extend(fields.clone());
    }
    record
}

fn trail_file(records: &[serde_json::Value]) -> String {
    json!({"Records": records}).to_string()
}

/// Builds a trail file with the key's calls, including a GetSessionToken call that mints
/// `SESSION_KEY`, and a call by another key.
fn minting_trail() -> String {
    trail_file(&[
        record(
            "ev-1",
            "2024-05-01T10:00:00Z",
            "ListBuckets",
            KEY,
            json!({}),
        ),
        record(
            "ev-2",
            "2024-05-01T10:05:00Z",
            "GetSessionToken",
            KEY,
            json!({
                "eventSource": "sts.amazonaws.com",
                "responseElements": {"credentials": {"accessKeyId": SESSION_KEY, "expiration": "May 1, 2024, 10:05:00 PM"}}
            }),
        ),
        record(
            "ev-3",
            "2024-05-01T10:06:00Z",
            "ListBuckets",
            OTHER_KEY,
            json!({
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/erin",
                                 "accountId": ACCOUNT, "accessKeyId": OTHER_KEY, "userName": "erin"}
            }),
        ),
    ])
}

/// Builds JSON lines with the session's own calls, which never mention the key.
fn session_lines() -> String {
    let session_call = |id: &str, time: &str, name: &str| {
        let mut call = record(
            id,
            time,
            name,
            SESSION_KEY,
            json!({"eventSource": "iam.amazonaws.com"}),
        );
        call["userIdentity"]["arn"] = json!("arn:aws:sts::111122223333:federated-user/dana");
        call["userIdentity"]["type"] = json!("FederatedUser");
        call.to_string()
    };
    [
        session_call("ev-10", "2024-05-01T10:10:00Z", "CreateUser"),
        session_call("ev-11", "2024-05-01T10:11:00Z", "CreateAccessKey"),
    ]
    .join("\n")
}

fn authorization_details() -> serde_json::Value {
    let encoded_inline = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3A*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D";
    json!({
        "UserDetailList": [{
            "UserName": "dana", "UserId": "AIDAEXAMPLEDANA", "Arn": OWNER_ARN, "CreateDate": "2023-01-01T00:00:00Z",
            "GroupList": ["deployers", "auditors"],
            "Tags": [{"Key": "team", "Value": "platform"}],
            "UserPolicyList": [{"PolicyName": "dana-s3", "PolicyDocument": encoded_inline}],
            "AttachedManagedPolicies": [{"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
            "PermissionsBoundary": {"PermissionsBoundaryType": "Policy",
                                    "PermissionsBoundaryArn": "arn:aws:iam::111122223333:policy/boundary"}
        }, {
            "UserName": "erin", "Arn": "arn:aws:iam::111122223333:user/erin", "GroupList": []
        }],
        "GroupDetailList": [{
            "GroupName": "deployers", "Arn": "arn:aws:iam::111122223333:group/deployers",
            "GroupPolicyList": [{"PolicyName": "pass-role", "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]}}],
            "AttachedManagedPolicies": [{"PolicyName": "deploy", "PolicyArn": "arn:aws:iam::111122223333:policy/deploy"}]
        }, {
            "GroupName": "auditors", "GroupPolicyList": [],
            "AttachedManagedPolicies": {"PolicyName": "SecurityAudit", "PolicyArn": "arn:aws:iam::aws:policy/SecurityAudit"}
        }],
        "RoleDetailList": [],
        "Policies": [{
            "PolicyName": "deploy", "Arn": "arn:aws:iam::111122223333:policy/deploy", "DefaultVersionId": "v2",
            "PolicyVersionList": [
                {"VersionId": "v1", "IsDefaultVersion": false, "Document": {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}},
                {"VersionId": "v2", "IsDefaultVersion": true,
                 "Document": "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22lambda%3A*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D"}
            ]
        }, {
            "PolicyName": "boundary", "Arn": "arn:aws:iam::111122223333:policy/boundary", "DefaultVersionId": "v1",
            "PolicyVersionList": [{"VersionId": "v1", "Document": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}]
        }]
    })
}

const CREDENTIAL_REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated
dana,arn:aws:iam::111122223333:user/dana,2023-01-01T00:00:00+00:00,true,2024-04-30T08:00:00+00:00,2023-01-01T00:00:00+00:00,N/A,true,true,2023-02-01T00:00:00+00:00,2024-05-01T10:05:00+00:00,eu-west-1,sts,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
erin,arn:aws:iam::111122223333:user/erin,2023-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2023-03-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
";

fn guardduty_findings() -> serde_json::Value {
    let finding = |id: &str, key_id: Option<&str>, user: &str, severity: f64| {
        let mut details =
            json!({"UserName": user, "PrincipalId": "AIDAEXAMPLE", "UserType": "IAMUser"});
        if let Some(key_id) = key_id {
            details["AccessKeyId"] = json!(key_id);
        }
        json!({"Id": id, "Type": "UnauthorizedAccess:IAMUser/MaliciousIPCaller", "Title": format!("finding {id}"),
               "Severity": severity, "AccountId": ACCOUNT, "Region": "eu-west-1", "CreatedAt": "2024-05-01T11:00:00Z",
               "Resource": {"ResourceType": "AccessKey", "AccessKeyDetails": details},
               "Service": {"EventFirstSeen": "2024-05-01T10:00:00Z", "EventLastSeen": "2024-05-01T10:30:00Z",
                           "Action": {"ActionType": "AWS_API_CALL", "AwsApiCallAction": {
                               "Api": "ListBuckets", "RemoteIpDetails": {"IpAddressV4": "203.0.113.10"}}}}})
    };
    json!({"Findings": [
        finding("gd-key", Some(KEY), "dana", 8.0),
        finding("gd-owner", None, "dana", 5.0),
        finding("gd-other", Some(OTHER_KEY), "erin", 2.0),
    ]})
}

fn security_hub_event() -> String {
    let asff = |id: &str, key_id: &str| {
        json!({
            "SchemaVersion": "2018-10-08", "Id": id, "ProductArn": "arn:aws:securityhub:eu-west-1::product/aws/guardduty",
            "AwsAccountId": ACCOUNT, "Types": ["TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller"],
            "Title": format!("finding {id}"), "Severity": {"Label": "HIGH"}, "CreatedAt": "2024-05-01T11:00:00Z",
            "Resources": [{"Type": "AwsIamAccessKey", "Id": format!("AWS::IAM::AccessKey:{key_id}"),
                           "Details": {"AwsIamAccessKey": {"PrincipalName": "someone"}}}]
        })
    };
    json!({"version": "0", "detail-type": "Security Hub Findings - Imported", "source": "aws.securityhub",
           "detail": {"findings": [asff("sh-key", KEY), asff("sh-other", OTHER_KEY)]}})
    .to_string()
}

/// Writes a snapshot with every kind of file in the recommended layout.
fn full_snapshot(dir: &Path) {
    write(
        dir,
        "metadata.json",
        json!({"account_id": ACCOUNT, "collected_at": "2024-05-02T00:00:00Z",
        "key_id": KEY, "source": "test export"})
        .to_string(),
    );
    write(
        dir,
        "cloudtrail/111122223333_CloudTrail_eu-west-1_20240501T1000Z.json.gz",
        gzip(&minting_trail()),
    );
    write(dir, "cloudtrail/session.jsonl", session_lines());

    write(
        dir,
        "iam/authorization-details.json",
        authorization_details().to_string(),
    );
    write(
        dir,
        "iam/credential-report.json",
        json!({"Content": data_encoding::BASE64.encode(CREDENTIAL_REPORT.as_bytes()),
        "ReportFormat": "text/csv", "GeneratedTime": "2024-05-02T00:00:00Z"})
        .to_string(),
    );
    write(dir, "iam/access-keys/dana.json", json!({"AccessKeyMetadata": [
        {"UserName": "dana", "AccessKeyId": KEY, "Status": "Active", "CreateDate": "2023-02-01T00:00:00Z"}]}).to_string());
    write(dir, "iam/access-key-last-used/AKIAQWERTYUIOPASDFGH.json", json!({"UserName": "dana",
        "AccessKeyLastUsed": {"LastUsedDate": "2024-05-01T10:05:00Z", "ServiceName": "sts", "Region": "eu-west-1"}}).to_string());
    write(dir, "iam/mfa-devices/dana.json", json!({"MFADevices": [
        {"UserName": "dana", "SerialNumber": "arn:aws:iam::111122223333:mfa/dana", "EnableDate": "2023-01-02T00:00:00Z"}]}).to_string());
    write(
        dir,
        "iam/mfa-devices/erin.json",
        json!({"MFADevices": []}).to_string(),
    );
    write(
        dir,
        "iam/login-profiles/dana.json",
        json!({"LoginProfile": {"UserName": "dana",
        "CreateDate": "2023-01-01T00:00:00Z", "PasswordResetRequired": false}})
        .to_string(),
    );

    write(
        dir,
        "guardduty/findings.json",
        guardduty_findings().to_string(),
    );
    write(dir, "securityhub/imported.json", security_hub_event());
    write(dir, "health/events.json", json!({"events": [
        {"arn": "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_1",
         "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED", "startTime": 1714557600.0},
        {"arn": "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/AWS_EC2_OPERATIONAL_ISSUE_2",
         "eventTypeCode": "AWS_EC2_OPERATIONAL_ISSUE", "startTime": 1714557600.0}]}).to_string());
    write(dir, "health/entities.json", json!({"entities": [
        {"eventArn": "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_1",
         "entityValue": KEY, "awsAccountId": ACCOUNT}]}).to_string());
    write(dir, "access-analyzer/findings.json", json!({"findings": [
        {"id": "aa-1", "principal": {"AWS": "444455556666"}, "action": ["s3:GetObject"], "resource": "arn:aws:s3:::reports",
         "isPublic": false, "resourceType": "AWS::S3::Bucket", "status": "ACTIVE", "resourceOwnerAccount": ACCOUNT,
         "createdAt": "2024-05-01T10:20:00Z"},
        {"id": "aa-2", "resource": "arn:aws:s3:::old", "resourceType": "AWS::S3::Bucket", "status": "ARCHIVED",
         "resourceOwnerAccount": ACCOUNT}]}).to_string());

    write(dir, "storage/lambda.json", json!({"Functions": [
        {"FunctionName": "nightly-export", "Environment": {"Variables": {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET_VALUE}}},
        {"FunctionName": "unrelated", "Environment": {"Variables": {"MODE": "fast"}}}]}).to_string());
    write(
        dir,
        "storage/secrets.json",
        json!({"SecretList": [
        {"Name": "ci/dana-deploy-key", "Description": "deploy credentials"},
        {"Name": "ci/other", "Description": "nothing to see"}]})
        .to_string(),
    );
}

fn open(dir: &Path) -> Snapshot {
    let snapshot = Snapshot::open(dir).expect("snapshot opens");
    println!("inventory: {}", snapshot.inventory().summary());
    for ignored in &snapshot.inventory().ignored {
        println!("ignored {}: {}", ignored.path, ignored.reason);
    }
    snapshot
}

#[test]
fn open_recognises_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    full_snapshot(dir.path());
    let snapshot = open(dir.path());
    let inventory = snapshot.inventory();

    let expected = [
        (FileKind::Metadata, 1, 1),
        (FileKind::CloudTrail, 2, 0),
        (FileKind::AuthorizationDetails, 1, 6),
        (FileKind::CredentialReport, 1, 2),
        (FileKind::AccessKeys, 1, 1),
        (FileKind::AccessKeyLastUsed, 1, 1),
        (FileKind::MfaDevices, 2, 1),
        (FileKind::LoginProfile, 1, 1),
        (FileKind::GuardDuty, 1, 3),
        (FileKind::SecurityHub, 1, 2),
        (FileKind::Health, 2, 3),
        (FileKind::AccessAnalyzer, 1, 2),
        (FileKind::Storage, 2, 4),
    ];
    for (kind, files, records) in expected {
        assert_eq!(inventory.files_of(kind), files, "files of {kind}");
        assert_eq!(inventory.records_of(kind), records, "records of {kind}");
    }
    assert!(
        inventory.ignored.is_empty(),
        "ignored: {:?}",
        inventory.ignored
    );
    assert_eq!(inventory.cloudtrail_files, 2);
    assert!(inventory.cloudtrail_bytes > 0);
    assert_eq!(
        snapshot.metadata().unwrap().account_id.as_deref(),
        Some(ACCOUNT)
    );
    assert_eq!(
        snapshot.describe(),
        format!("snapshot {}", dir.path().display())
    );
}

#[test]
fn open_sniffs_content_not_folders() {
    let source = tempfile::tempdir().unwrap();
    full_snapshot(source.path());
    let flat = tempfile::tempdir().unwrap();

    // Every file moves to one folder under a name that says nothing of its kind, except
    // the files whose name carries the user or key they are about.
    let mut index = 0;
    for entry in walk_files(source.path()) {
        let relative = entry
            .strip_prefix(source.path())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let keeps_name =
            relative.contains("mfa-devices/erin") || relative.contains("access-key-last-used");
        let name = if keeps_name {
            format!("deep/er/{}", relative)
        } else {
            index += 1;
            let extension = if relative.ends_with(".gz") {
                "gz"
            } else {
                "txt"
            };
            format!("export/{index:02}.{extension}")
        };
        write(flat.path(), &name, std::fs::read(&entry).unwrap());
    }

    let reference = open(source.path());
    let snapshot = open(flat.path());
    assert_eq!(snapshot.inventory().files, reference.inventory().files);
    assert_eq!(snapshot.inventory().records, reference.inventory().records);
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn open_missing_folder_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("incident-42");
    let error = Snapshot::open(&missing).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("incident-42"), "message: {message}");
    assert!(message.contains("no such folder"), "message: {message}");
}

#[test]
fn corrupt_file_noted_and_rest_read() {
    let dir = tempfile::tempdir().unwrap();
    full_snapshot(dir.path());
    write(
        dir.path(),
        "guardduty/broken.json",
        "{\"Findings\": [{\"Id\": ",
    );
    write(
        dir.path(),
        "cloudtrail/truncated.json.gz",
        &gzip(&minting_trail())[..20],
    );
    write(dir.path(), "notes.md", "# not evidence");
    write(
        dir.path(),
        "iam/caller.json",
        json!({"UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": OWNER_ARN}).to_string(),
    );
    let snapshot = open(dir.path());
    let ignored = &snapshot.inventory().ignored;

    let reason = |path: &str| {
        ignored
            .iter()
            .find(|i| i.path == path)
            .map(|i| i.reason.clone())
            .unwrap_or_else(|| panic!("{path} not listed as ignored: {ignored:?}"))
    };
    assert!(reason("guardduty/broken.json").starts_with("invalid JSON"));
    assert!(
        reason("cloudtrail/truncated.json.gz").contains("gzip")
            || reason("cloudtrail/truncated.json.gz").contains("unreadable")
    );
    assert!(reason("notes.md").contains("not a .json"));
    assert!(reason("iam/caller.json").contains("top-level fields: UserId, Account, Arn"));
    assert_eq!(
        snapshot.inventory().records_of(FileKind::GuardDuty),
        3,
        "the good GuardDuty file is still read"
    );
}

#[tokio::test]
async fn unread_files_named_in_events() {
    let dir = tempfile::tempdir().unwrap();
    full_snapshot(dir.path());
    write(
        dir.path(),
        "cloudtrail/truncated.json.gz",
        &gzip(&minting_trail())[..20],
    );
    write(dir.path(), "notes.md", "# not evidence");
    let snapshot = open(dir.path());

    let set = snapshot.events(&EventQuery::new(key())).await.unwrap();
    let failures: Vec<String> = set.failures.iter().map(ToString::to_string).collect();
    assert!(
        failures.iter().any(|f| f.starts_with("cannot read cloudtrail/truncated.json.gz: ")),
        "the unreadable CloudTrail file is named: {failures:?}"
    );
    assert!(
        !failures.iter().any(|f| f.contains("notes.md")),
        "a file that is not evidence is not a gap: {failures:?}"
    );
    assert!(set.key_calls().count() > 0, "the readable files are still read");
}

#[tokio::test]
async fn bare_cloudtrail_folder() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "one.json", minting_trail());
    write(dir.path(), "two.json.gz", gzip(&session_lines()));
    let snapshot = open(dir.path());
    assert_eq!(snapshot.inventory().cloudtrail_files, 2);

    let set = snapshot
        .events(&EventQuery::new(key()))
        .await
        .expect("events");
    assert_eq!(set.key_calls().count(), 2);
    assert_eq!(set.session_calls().count(), 2);

    assert!(matches!(
        snapshot.access_key(&key()).await,
        Err(EvidenceError::NotAvailable { .. })
    ));
    assert!(matches!(
        snapshot.user("dana").await,
        Err(EvidenceError::NotAvailable { .. })
    ));
    assert!(matches!(
        snapshot.credential_report().await,
        Err(EvidenceError::NotAvailable { .. })
    ));
    assert!(matches!(
        snapshot.guardduty_findings(&subject(None)).await,
        Err(EvidenceError::NotAvailable { .. })
    ));
    assert!(matches!(
        snapshot.key_locations(&subject(None)).await,
        Err(EvidenceError::NotAvailable { .. })
    ));

    let account = snapshot.resolve_account(&key()).await.unwrap();
    assert_eq!(
        account.account_id.as_deref(),
        Some(ACCOUNT),
        "from the key's CloudTrail events"
    );
    assert_eq!(account.source, AccountSource::Snapshot);
    assert_eq!(account.access.as_deref(), Some("snapshot"));
    assert!(account.credentials_available);
}

#[tokio::test]
async fn events_not_available_without_cloudtrail() {
    let snapshot = Snapshot::from_files("empty", vec![]).unwrap();
    let error = snapshot.events(&EventQuery::new(key())).await.unwrap_err();
    assert!(
        matches!(error, EvidenceError::NotAvailable { .. }),
        "error: {error}"
    );
}

#[tokio::test]
async fn events_follow_minted_session_into_other_file() {
    let dir = tempfile::tempdir().unwrap();
    full_snapshot(dir.path());
    let snapshot = open(dir.path());

    let set = snapshot
        .events(&EventQuery::new(key()))
        .await
        .expect("events");
    let names: Vec<String> = set
        .key_and_session_calls()
        .map(|e| e.event_name.clone())
        .collect();
    println!(
        "events: {names:?}, scans {}, source {}",
        set.scans, set.source
    );
    assert_eq!(
        names,
        [
            "ListBuckets",
            "GetSessionToken",
            "CreateUser",
            "CreateAccessKey"
        ]
    );
    assert_eq!(set.minted.len(), 1);
    assert_eq!(set.minted[0].key_id, SESSION_KEY);
    assert_eq!(
        set.scans, 2,
        "one scan for the key, one for the minted session"
    );
    assert!(
        !set.events
            .iter()
            .any(|e| e.access_key_id() == Some(OTHER_KEY)),
        "another key's call was not read"
    );
    assert_eq!(set.source, snapshot.inventory().cloudtrail_summary());
    assert!(set.source.starts_with("2 CloudTrail files, "));
}

#[tokio::test]
async fn events_include_owner_calls_by_arn() {
    let dir = tempfile::tempdir().unwrap();
    let console_call = record(
        "ev-20",
        "2024-05-01T09:00:00Z",
        "ConsoleLogin",
        "",
        json!({"eventSource": "signin.amazonaws.com"}),
    );
    write(dir.path(), "a.json", trail_file(&[console_call]));
    write(dir.path(), "b.json", minting_trail());
    let snapshot = open(dir.path());

    let mut query = EventQuery::new(key());
    let without_owner = snapshot.events(&query).await.unwrap();
    assert!(
        !without_owner
            .events
            .iter()
            .any(|e| e.event_name == "ConsoleLogin")
    );
    query.owner_arn = Some(OWNER_ARN.to_string());
    let with_owner = snapshot.events(&query).await.unwrap();
    assert!(
        with_owner
            .events
            .iter()
            .any(|e| e.event_name == "ConsoleLogin")
    );
}

#[tokio::test]
async fn events_count_skipped_records_and_window_end() {
    let dir = tempfile::tempdir().unwrap();
    let good = record(
        "ev-30",
        "2024-05-01T10:00:00Z",
        "ListBuckets",
        KEY,
        json!({}),
    )
    .to_string();
    let broken = format!(
        "{{\"eventVersion\": \"1.08\", \"eventTime\": [], \"userIdentity\": {{\"accessKeyId\": \"{KEY}\"}}}}"
    );
    write(dir.path(), "lines.jsonl", format!("{good}\n{broken}\n"));
    write(
        dir.path(),
        "metadata.json",
        json!({"collected_at": "2024-05-03T00:00:00Z"}).to_string(),
    );
    let snapshot = open(dir.path());

    let set = snapshot.events(&EventQuery::new(key())).await.unwrap();
    assert_eq!(set.key_calls().count(), 1);
    assert_eq!(
        set.skipped_records, 1,
        "the record without a usable time is skipped"
    );
    let failures: Vec<String> = set.failures.iter().map(ToString::to_string).collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].starts_with("cannot read lines.jsonl: 1 record skipped, the first: "),
        "the partly read file is named: {failures:?}"
    );
    assert_eq!(
        set.window.end.to_rfc3339(),
        "2024-05-01T10:00:00+00:00",
        "the key's last call ends the window"
    );

    let unknown: AccessKeyId = OTHER_KEY.parse().unwrap();
    let empty = snapshot.events(&EventQuery::new(unknown)).await.unwrap();
    assert_eq!(
        empty.window.end.to_rfc3339(),
        "2024-05-03T00:00:00+00:00",
        "collected_at ends the window"
    );
}

#[tokio::test]
async fn access_key_found_missing_or_not_available() {
    let dir = tempfile::tempdir().unwrap();
    full_snapshot(dir.path());
    let snapshot = open(dir.path());

    let record = snapshot
        .access_key(&key())
        .await
        .unwrap()
        .expect("key record");
    assert_eq!(record.user_name, "dana");
    assert_eq!(record.status, KeyStatus::Active);
    assert_eq!(
        record.created.unwrap().to_rfc3339(),
        "2023-02-01T00:00:00+00:00"
    );
    let last_used = record.last_used.expect("last used");
    assert_eq!(last_used.service.as_deref(), Some("sts"));
    assert_eq!(last_used.region.as_deref(), Some("eu-west-1"));

    let other: AccessKeyId = OTHER_KEY.parse().unwrap();
    assert_eq!(
        snapshot.access_key(&other).await.unwrap(),
        None,
        "IAM records exist, this key is not among them"
    );

    let bare = Snapshot::from_files(
        "bare",
        vec![("trail.json".into(), minting_trail().into_bytes())],
    )
    .unwrap();
    let error = bare.access_key(&key()).await.unwrap_err();
    assert!(
        matches!(error, EvidenceError::NotAvailable { .. }),
        "error: {error}"
    );
}

#[tokio::test]
async fn user_resolves_group_and_managed_policies() {
    let dir = tempfile::tempdir().unwrap();
    full_snapshot(dir.path());
    let snapshot = open(dir.path());

    let user = snapshot.user("dana").await.unwrap().expect("user dana");
    let policies: Vec<(String, PolicyAttachment)> = user
        .policies
        .iter()
        .map(|p| (p.name.clone(), p.attachment.clone()))
        .collect();
    println!("policies: {policies:#?}");
    let deployers = "deployers".to_string();
    assert_eq!(
        policies,
        vec![
            ("dana-s3".to_string(), PolicyAttachment::Inline),
            ("ReadOnlyAccess".to_string(), PolicyAttachment::Managed),
            ("boundary".to_string(), PolicyAttachment::Boundary),
            (
                "pass-role".to_string(),
                PolicyAttachment::GroupInline {
                    group: deployers.clone()
                }
            ),
            (
                "deploy".to_string(),
                PolicyAttachment::GroupManaged { group: deployers }
            ),
            (
                "SecurityAudit".to_string(),
                PolicyAttachment::GroupManaged {
                    group: "auditors".to_string()
                }
            ),
        ]
    );

    let document = |name: &str| {
        user.policies
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .document
            .clone()
    };
    assert_eq!(
        document("dana-s3").unwrap()["Statement"][0]["Action"],
        "s3:*",
        "URL-encoded inline document"
    );
    assert_eq!(
        document("deploy").unwrap()["Statement"][0]["Action"],
        "lambda:*",
        "default version v2, URL-encoded"
    );
    assert_eq!(
        document("pass-role").unwrap()["Statement"][0]["Action"],
        "iam:PassRole"
    );
    assert_eq!(
        document("ReadOnlyAccess"),
        None,
        "AWS managed policy not in the export"
    );

    assert_eq!(user.arn.as_deref(), Some(OWNER_ARN));
    assert_eq!(user.groups, ["deployers", "auditors"]);
    assert_eq!(user.tags, [("team".to_string(), "platform".to_string())]);
    assert_eq!(user.console_password, Some(true));
    assert_eq!(user.mfa_devices.as_ref().map(Vec::len), Some(1));
    assert_eq!(user.access_keys.len(), 1);
    assert_eq!(user.access_keys[0].key_id, KEY);

    let erin = snapshot.user("erin").await.unwrap().expect("user erin");
    assert_eq!(
        erin.mfa_devices,
        Some(Vec::new()),
        "empty device list named by its file"
    );
    assert_eq!(
        erin.console_password,
        Some(false),
        "from the credential report"
    );

    assert_eq!(snapshot.user("nobody").await.unwrap(), None);
    let report = snapshot.credential_report().await.unwrap();
    assert_eq!(report.len(), 2);
    assert_eq!(report[0].mfa_active, Some(true));
}

#[tokio::test]
async fn credential_report_as_csv_file() {
    let files = vec![
        (
            "iam/credential-report.csv".to_string(),
            CREDENTIAL_REPORT.as_bytes().to_vec(),
        ),
        (
            "exports/buckets.csv".to_string(),
            b"bucket,region\nreports,eu-west-1\n".to_vec(),
        ),
    ];
    let snapshot = Snapshot::from_files("csv", files).unwrap();
    let report = snapshot.credential_report().await.unwrap();
    assert_eq!(
        report.iter().map(|r| r.user.as_str()).collect::<Vec<_>>(),
        ["dana", "erin"]
    );
    let ignored = &snapshot.inventory().ignored;
    assert_eq!(ignored.len(), 1);
    assert!(
        ignored[0].reason.contains("not an IAM credential report"),
        "reason: {}",
        ignored[0].reason
    );

    let dana = snapshot
        .user("dana")
        .await
        .unwrap()
        .expect("dana from the report alone");
    assert_eq!(dana.arn.as_deref(), Some(OWNER_ARN));
    assert_eq!(dana.console_password, Some(true));
    assert_eq!(
        dana.mfa_devices.as_ref().map(Vec::len),
        Some(1),
        "MFA active, device unknown"
    );
}

#[tokio::test]
async fn findings_filtered_to_subject() {
    let dir = tempfile::tempdir().unwrap();
    full_snapshot(dir.path());
    let snapshot = open(dir.path());

    let ids =
        |findings: Vec<SecurityFinding>| findings.into_iter().map(|f| f.id).collect::<Vec<_>>();
    let by_key = snapshot.guardduty_findings(&subject(None)).await.unwrap().found;
    assert_eq!(by_key[0].severity, "HIGH");
    assert_eq!(by_key[0].source, FindingSource::GuardDuty);
    assert_eq!(ids(by_key), ["gd-key"]);
    let with_owner = snapshot
        .guardduty_findings(&subject(Some("dana")))
        .await
        .unwrap()
        .found;
    assert_eq!(ids(with_owner), ["gd-key", "gd-owner"]);

    let hub = snapshot
        .security_hub_findings(&subject(Some("dana")))
        .await
        .unwrap()
        .found;
    assert_eq!(ids(hub), ["sh-key"]);

    let health = snapshot.health_events(&subject(None)).await.unwrap();
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].event_type_code, "AWS_RISK_CREDENTIALS_EXPOSED");
    assert_eq!(health[0].affected_entities, [KEY]);

    let analyzer = snapshot
        .access_analyzer_findings(&subject(None))
        .await
        .unwrap()
        .found;
    assert_eq!(
        analyzer.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        ["aa-1"],
        "archived finding left out"
    );
}

#[tokio::test]
async fn findings_empty_list_differs_from_absent() {
    let files = vec![
        (
            "guardduty/findings.json".to_string(),
            br#"{"Findings": []}"#.to_vec(),
        ),
        (
            "health/events.json".to_string(),
            br#"{"events": []}"#.to_vec(),
        ),
    ];
    let snapshot = Snapshot::from_files("demo", files).unwrap();
    assert_eq!(
        snapshot.guardduty_findings(&subject(None)).await.unwrap().found,
        Vec::new()
    );
    assert_eq!(
        snapshot.health_events(&subject(None)).await.unwrap(),
        Vec::new()
    );
    let error = snapshot
        .security_hub_findings(&subject(None))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Security Hub export is not available: add aws securityhub get-findings output to the snapshot as securityhub/*.json"
    );
    assert_eq!(snapshot.describe(), "snapshot demo");
}

#[tokio::test]
async fn key_location_by_environment_value() {
    let dir = tempfile::tempdir().unwrap();
    full_snapshot(dir.path());
    let snapshot = open(dir.path());

    let locations = snapshot
        .key_locations(&subject(Some("dana")))
        .await
        .unwrap()
        .found;
    println!("locations: {locations:#?}");
    assert_eq!(locations.len(), 2);
    let lambda = locations
        .iter()
        .find(|l| l.kind == KeyLocationKind::LambdaEnvironment)
        .unwrap();
    assert_eq!(lambda.name, "nightly-export");
    assert_eq!(lambda.matched_by, "environment variable AWS_ACCESS_KEY_ID");
    let secret = locations
        .iter()
        .find(|l| l.kind == KeyLocationKind::SecretsManagerSecret)
        .unwrap();
    assert_eq!(secret.name, "ci/dana-deploy-key");
    assert_eq!(secret.matched_by, "name");

    let debug_output = format!("{locations:?}");
    assert!(
        !debug_output.contains(KEY),
        "no value in matched_by: {debug_output}"
    );
    assert!(!debug_output.contains(SECRET_VALUE));
    assert!(
        !format!("{:?}", snapshot.contents.storage).contains(SECRET_VALUE),
        "secret value not kept"
    );

    let without_owner = snapshot.key_locations(&subject(None)).await.unwrap().found;
    assert_eq!(
        without_owner.len(),
        1,
        "only the value matches without an owner name"
    );
}

#[tokio::test]
async fn resolve_account_prefers_metadata_then_iam() {
    let dir = tempfile::tempdir().unwrap();
    full_snapshot(dir.path());
    let snapshot = open(dir.path());
    let account = snapshot.resolve_account(&key()).await.unwrap();
    assert_eq!(account.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(account.source, AccountSource::Snapshot);
    assert!(account.decoded_account_id.is_some());
    assert!(
        account
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("metadata"),
        "note: {:?}",
        account.note
    );

    std::fs::remove_file(dir.path().join("metadata.json")).unwrap();
    let without_metadata = open(dir.path()).resolve_account(&key()).await.unwrap();
    assert_eq!(without_metadata.account_id.as_deref(), Some(ACCOUNT));
    assert!(without_metadata.note.unwrap().contains("IAM records"));

    let empty = Snapshot::from_files("empty", vec![]).unwrap();
    let decoded = empty.resolve_account(&key()).await.unwrap();
    assert_eq!(decoded.source, AccountSource::KeyDecoding);
    assert_eq!(decoded.account_id, decoded.decoded_account_id);
    let anonymised: AccessKeyId = "AKIA1JMTHE9ZMZMWG0MG".parse().unwrap();
    let unknown = empty.resolve_account(&anonymised).await.unwrap();
    assert_eq!(unknown.source, AccountSource::Unknown);
    assert_eq!(unknown.account_id, None);
}

#[tokio::test]
async fn from_files_matches_open() {
    let dir = tempfile::tempdir().unwrap();
    full_snapshot(dir.path());
    let files: Vec<(String, Vec<u8>)> = walk_files(dir.path())
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(dir.path())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    let memory = Snapshot::from_files("demo incident", files).unwrap();
    let disk = open(dir.path());
    assert_eq!(memory.inventory(), disk.inventory());

    let set = memory.events(&EventQuery::new(key())).await.unwrap();
    assert_eq!(set.session_calls().count(), 2);
}

/// Loads the AWS CLI's published example outputs as one snapshot.
#[tokio::test]
async fn corpus_awscli_examples() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/awscli-examples");
    if !dir.is_dir() {
        println!("skipped: {} is absent", dir.display());
        return;
    }
    let snapshot = open(&dir);
    let inventory = snapshot.inventory();

    assert_eq!(
        inventory.files_of(FileKind::CloudTrail),
        1,
        "lookup-events output"
    );
    assert_eq!(inventory.records_of(FileKind::GuardDuty), 1);
    assert_eq!(inventory.records_of(FileKind::SecurityHub), 1);
    assert_eq!(inventory.files_of(FileKind::Health), 3);
    assert_eq!(inventory.records_of(FileKind::AccessKeys), 2);
    assert_eq!(inventory.records_of(FileKind::MfaDevices), 4);
    assert_eq!(inventory.files_of(FileKind::AuthorizationDetails), 1);
    let ignored = |name: &str| {
        inventory
            .ignored
            .iter()
            .find(|i| i.path == name)
            .map(|i| i.reason.as_str())
    };
    assert!(
        ignored("iam_get-credential-report.output1.json")
            .unwrap()
            .contains("Content")
    );
    assert!(
        ignored("iam_get-access-key-last-used.output1.json")
            .unwrap()
            .contains("names no access key")
    );
    assert!(
        ignored("securityhub_get-findings.output2.txt")
            .unwrap()
            .starts_with("invalid JSON")
    );
    assert!(
        ignored("cloudtrail_lookup-events.rst")
            .unwrap()
            .contains("not a .json")
    );

    let example_key: AccessKeyId = "AKIAIOSFODNN7EXAMPLE".parse().unwrap();
    let record = snapshot
        .access_key(&example_key)
        .await
        .unwrap()
        .expect("Bob's key");
    assert_eq!(record.user_name, "Bob");
    assert_eq!(record.status, KeyStatus::Active);

    let bob = snapshot.user("Bob").await.unwrap().expect("Bob");
    assert_eq!(bob.groups, ["Admins"]);
    assert_eq!(bob.mfa_devices.as_ref().map(Vec::len), Some(4));
    assert!(
        bob.policies.iter().any(
            |p| p.name == "DenyBillingAndIAMPolicy" && p.attachment == PolicyAttachment::Inline
        )
    );
    // The published sample writes the group's one managed policy as a bare object.
    assert!(bob.policies.iter().any(|p| p.name == "AdministratorAccess"
        && p.attachment
            == PolicyAttachment::GroupManaged {
                group: "Admins".into()
            }));

    let finding_key: AccessKeyId = "ASIASZ4SI7REEEXAMPLE".parse().unwrap();
    let finding_subject = Subject {
        key: finding_key,
        account_id: None,
        owner_name: None,
        owner_arn: None,
    };
    let findings = snapshot.guardduty_findings(&finding_subject).await.unwrap().found;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].finding_type, "Recon:IAMUser/UserPermissions");
    assert_eq!(findings[0].severity, "MEDIUM");
    assert_eq!(findings[0].api_call.as_deref(), Some("ListPolicyVersions"));

    let set = snapshot
        .events(&EventQuery::new(example_key))
        .await
        .unwrap();
    assert_eq!(
        set.events.len(),
        0,
        "the lookup-events sample is a console sign-in without a key"
    );
    assert_eq!(set.scans, 1);
}

fn corpus_dir(name: &str) -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    println!("skipped: {} is absent", dir.display());
    None
}

/// Loads other people's recordings: Cloud Custodian's placebo and EventBridge samples,
/// forwarder test events, and a SIEM's raw GuardDuty findings.
#[tokio::test]
async fn corpus_recorded_exports() {
    if let Some(dir) = corpus_dir("c7n") {
        let snapshot = open(&dir);
        let inventory = snapshot.inventory();
        assert_eq!(
            inventory.records_of(FileKind::CredentialReport),
            21,
            "placebo GetCredentialReport"
        );
        assert_eq!(
            inventory.records_of(FileKind::GuardDuty),
            1,
            "EventBridge GuardDuty Finding"
        );
        assert_eq!(inventory.files_of(FileKind::SecurityHub), 3);
        assert_eq!(
            inventory.records_of(FileKind::Health),
            1,
            "placebo DescribeAffectedEntities"
        );
        let error = inventory
            .ignored
            .iter()
            .find(|i| i.path.contains("unused_keys"))
            .expect("error recording ignored");
        assert!(
            error.reason.contains("ReportNotPresent"),
            "reason: {}",
            error.reason
        );

        let recorded_key: AccessKeyId = "AKIAIPRJCJL6BOF6DPMA".parse().unwrap();
        let recorded = Subject {
            key: recorded_key,
            account_id: None,
            owner_name: None,
            owner_arn: None,
        };
        let findings = snapshot.security_hub_findings(&recorded).await.unwrap().found;
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, "MEDIUM", "from Normalized 50");
        assert_eq!(findings[0].user_names, ["user-b1"]);
    }

    if let Some(dir) = corpus_dir("slack-forwarding/notify-slack") {
        let snapshot = open(&dir);
        let inventory = snapshot.inventory();
        assert_eq!(inventory.records_of(FileKind::GuardDuty), 3);
        assert_eq!(inventory.records_of(FileKind::Health), 1);
        assert_eq!(
            inventory.cloudtrail_files, 0,
            "an SNS Records list is not CloudTrail"
        );
    }

    if let Some(dir) = corpus_dir("sekoia") {
        let snapshot = open(&dir);
        assert_eq!(
            snapshot.inventory().records_of(FileKind::GuardDuty),
            3,
            "camelCase raw findings"
        );
        assert_eq!(snapshot.inventory().cloudtrail_files, 15);
    }
}

/// Scans the published CloudTrail samples for one key of a Stratus Red Team detonation.
#[tokio::test]
async fn corpus_cloudtrail_scan() {
    let Some(dir) = corpus_dir("cloudtrail") else {
        return;
    };
    let snapshot = open(&dir);
    assert!(snapshot.inventory().cloudtrail_files >= 50);
    let digest = snapshot
        .inventory()
        .ignored
        .iter()
        .find(|i| i.path.ends_with("digest-json.log"));
    assert!(digest.is_some_and(|d| d.reason.contains("digest")));

    let key: AccessKeyId = "AKIAW9X2Q2U25SK79UCX".parse().unwrap();
    let set = snapshot
        .events(&EventQuery::new(key.clone()))
        .await
        .unwrap();
    println!(
        "source {}, skipped {}, window {:?}",
        set.source, set.skipped_records, set.window
    );
    let calls = set
        .events
        .iter()
        .filter(|e| e.access_key_id() == Some(key.as_str()))
        .count();
    assert_eq!(
        calls, 56,
        "every call of the key in aws.execution.ssm-send-command.json"
    );
    assert!(
        !set.source.contains("not readable"),
        "source: {}",
        set.source
    );
}

/// Returns a `keycheck-evidence.json` as `keycheck snapshot collect` writes it for `KEY`:
/// the key record is Active, Security Hub found `sh-collected`, GuardDuty failed with its error,
/// and the CloudTrail window ends at 10:30, before the key's last call in `minting_trail`.
fn collected_file() -> String {
    json!({
        "keycheck_evidence": 1,
        "key_id": KEY,
        "collected_at": "2024-05-01T12:00:00Z",
        "cloudtrail": {
            "window": {"start": "2024-04-30T10:30:00Z", "end": "2024-05-01T10:30:00Z"},
            "history_start": "2024-04-16T10:30:00Z",
            "skipped_records": 2,
            "source": "log group aws-cloudtrail-logs"
        },
        "account": {"account_id": ACCOUNT, "source": "sts", "decoded_account_id": null,
                    "credentials_available": true, "access": "keycheck's own credentials", "note": null},
        "access_key": {"key_id": KEY, "user_name": "dana", "status": "Active", "created": "2023-02-01T00:00:00Z",
                       "last_used": {"date": "2024-05-01T10:05:00Z", "service": "sts", "region": "eu-west-1"}},
        "users": [{"user_name": "dana", "arn": OWNER_ARN, "user_id": "AIDAEXAMPLEDANA", "created": null,
                   "console_password": true, "mfa_devices": [], "groups": [],
                   "policies": [{"name": "admin", "arn": null, "attachment": {"kind": "inline"},
                                 "document": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                                              "Condition": {"StringEquals": {"aws:eventVersion": "x"}}}]}}],
                   "access_keys": [], "tags": []}],
        "users_not_found": ["ghost"],
        "credential_report": [{"user": "dana", "arn": OWNER_ARN, "password_enabled": true, "mfa_active": false,
                               "access_key_1_active": true, "access_key_2_active": false}],
        "security_hub": [{"source": "SecurityHub", "id": "sh-collected", "finding_type": "TTPs", "title": "collected",
                          "severity": "HIGH", "first_seen": null, "last_seen": null, "account_id": ACCOUNT,
                          "region": "eu-west-1", "key_ids": [KEY], "user_names": [], "source_ips": [], "api_call": null}],
        "guardduty": null,
        "health": [],
        "access_analyzer": [],
        "key_locations": [],
        "unavailable": {
            "guardduty": "guardduty:ListDetectors failed for eu-west-1: access denied (needs guardduty:ListDetectors)"
        }
    })
    .to_string()
}

/// Writes the collected file with AWS CLI exports that disagree with it.
fn collected_snapshot(dir: &Path) -> Snapshot {
    write(dir, "keycheck-evidence.json", collected_file());
    write(dir, "cloudtrail/trail.json", minting_trail());
    write(
        dir,
        "iam/access-keys/dana.json",
        json!({"AccessKeyMetadata": [{"UserName": "dana", "AccessKeyId": KEY, "Status": "Inactive"}]}).to_string(),
    );
    write(dir, "securityhub/imported.json", security_hub_event());
    Snapshot::open(dir).unwrap()
}

#[test]
fn collected_file_recognised_by_content() {
    let dir = tempfile::tempdir().unwrap();
    // Named unlike the convention, and with `eventVersion` in its first kilobytes (in a
    // policy condition), which must not make it a CloudTrail file.
    let text = collected_file();
    assert!(text.starts_with(r#"{"keycheck_evidence":1"#), "{text}");
    assert!(text[..text.len().min(4096)].contains("eventVersion"), "{text}");
    write(dir.path(), "evidence/saved.json", text);
    let snapshot = Snapshot::open(dir.path()).unwrap();

    let inventory = snapshot.inventory();
    assert!(inventory.ignored.is_empty(), "{:?}", inventory.ignored);
    assert_eq!(inventory.files_of(FileKind::CollectedEvidence), 1, "{inventory:?}");
    assert_eq!(inventory.cloudtrail_files, 0, "{inventory:?}");
    let collected = snapshot.collected().expect("the collected evidence");
    assert_eq!(collected.key_id, key());
}

#[tokio::test]
async fn collected_file_takes_priority_over_exports() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = collected_snapshot(dir.path());

    let record = snapshot.access_key(&key()).await.unwrap().expect("the key record");
    assert_eq!(record.status, KeyStatus::Active, "the collected record, not the Inactive export");
    let findings = snapshot.security_hub_findings(&subject(Some("dana"))).await.unwrap().found;
    let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["sh-collected"], "the collected list, as the trait returned it live");
    let account = snapshot.resolve_account(&key()).await.unwrap();
    assert_eq!(account.source, AccountSource::Sts, "step 0's live answer");
    assert_eq!(snapshot.credential_report().await.unwrap()[0].mfa_active, Some(false));
}

#[tokio::test]
async fn collected_users_found_and_missing() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = collected_snapshot(dir.path());

    let dana = snapshot.user("dana").await.unwrap().expect("dana's record");
    assert_eq!(dana.policies[0].name, "admin");
    assert_eq!(snapshot.user("ghost").await.unwrap(), None, "collected as not found in IAM");
}

#[tokio::test]
async fn collected_failure_keeps_original_reason() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = collected_snapshot(dir.path());

    let error = snapshot.guardduty_findings(&subject(Some("dana"))).await.unwrap_err();
    let EvidenceError::NotAvailable { what, .. } = &error else {
        panic!("a failed collection is not available, not {error:?}");
    };
    assert!(what.starts_with("GuardDuty (keycheck snapshot collect at 2024-05-01 12:00 UTC: "), "{what}");
    assert!(what.contains("access denied (needs guardduty:ListDetectors)"), "{what}");
}

#[tokio::test]
async fn collected_failure_gives_way_to_export() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "guardduty/findings.json", guardduty_findings().to_string());
    let snapshot = collected_snapshot(dir.path());

    let findings = snapshot.guardduty_findings(&subject(Some("dana"))).await.unwrap().found;
    let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["gd-key", "gd-owner"], "the export added after the failed collection");
}

#[tokio::test]
async fn collected_window_ends_offline_window() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = collected_snapshot(dir.path());

    let set = snapshot.events(&EventQuery::new(key())).await.unwrap();
    assert_eq!(set.window.end.to_rfc3339(), "2024-05-01T10:30:00+00:00", "the collection's window end");
    assert_eq!(set.skipped_records, 2, "the records the live read skipped");

    let mut fixed = EventQuery::new(key());
    fixed.window = Some(crate::evidence::Window::ending_at(
        "2024-05-01T10:05:30Z".parse().unwrap(),
        chrono::Duration::hours(1),
    ));
    let set = snapshot.events(&fixed).await.unwrap();
    assert_eq!(set.window, fixed.window.unwrap(), "--end wins over the collection's window");
}

#[tokio::test]
async fn collected_answers_only_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = collected_snapshot(dir.path());
    let other: AccessKeyId = OTHER_KEY.parse().unwrap();
    let other_subject = Subject { key: other.clone(), ..subject(None) };

    let findings = snapshot.security_hub_findings(&other_subject).await.unwrap().found;
    let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["sh-other"], "another key is answered from the exports");
    let record = snapshot.access_key(&other).await.unwrap();
    assert_eq!(record, None, "the key list export does not list the other key");
    let set = snapshot.events(&EventQuery::new(other)).await.unwrap();
    assert_eq!(set.skipped_records, 0, "the collection's skipped records belong to its key");
    assert!(snapshot.user("dana").await.unwrap().is_some(), "user records belong to the account");
}

#[test]
fn collected_file_of_other_version_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let newer = collected_file().replacen("\"keycheck_evidence\":1", "\"keycheck_evidence\":2", 1);
    assert_ne!(newer, collected_file(), "the version field was rewritten");
    write(dir.path(), "keycheck-evidence.json", newer);
    let snapshot = Snapshot::open(dir.path()).unwrap();

    assert!(snapshot.collected().is_none());
    let ignored = &snapshot.inventory().ignored;
    assert_eq!(ignored.len(), 1, "{ignored:?}");
    assert!(ignored[0].reason.contains("format version 2"), "{:?}", ignored[0]);
}

#[test]
fn second_collected_file_ignored() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a/keycheck-evidence.json", collected_file());
    write(dir.path(), "b/keycheck-evidence.json", collected_file());
    let snapshot = Snapshot::open(dir.path()).unwrap();

    let ignored = &snapshot.inventory().ignored;
    assert_eq!(ignored.len(), 1, "{ignored:?}");
    assert_eq!(ignored[0].path, "b/keycheck-evidence.json");
    assert!(ignored[0].reason.contains("second keycheck evidence file"), "{:?}", ignored[0]);
}

#[tokio::test]
async fn only_unreadable_files_named_not_requested() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "trail.json.gz", &gzip(&minting_trail())[..20]);
    let snapshot = open(dir.path());

    let error = snapshot.events(&EventQuery::new(key())).await.unwrap_err().to_string();
    assert!(error.contains("none of the 1 files that could hold it was readable, for example trail.json.gz"), "{error}");
    assert!(!error.contains("add CloudTrail log files"), "{error}");
}
