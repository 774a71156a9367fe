//! The leaked-key incident seeded into the emulator, with names unique to each call so
//! that tests sharing one emulator do not see each other's users, log groups or secrets.
//!
//! The scenario: an IAM user with a console password, no MFA device, an inline policy that
//! allows everything, and two access keys. The first key leaked. A CloudWatch Logs log
//! group contains the CloudTrail events of the last days. First comes the key's routine
//! history from the office. Then comes a burst from a new address: discovery, a new user
//! with a key, an AdministratorAccess attachment, a secret read, and a GetSessionToken.
//! The session it mints lists buckets, tries to assume a role in another account and reads
//! a parameter. Around these are near-misses that a text filter on the key ID would let
//! through: the owner's second key, another user's calls and session, calls that mention
//! the key only in their request parameters, and a record cut short. A Secrets Manager
//! secret and an SSM parameter name the user. A Security Hub finding names the key, and
//! another names a different key.
//!
//! [`Incident`] lists what was seeded, so tests compare the report with it exactly.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};

use crate::aws::{ACCOUNT_ID, Clients, REGION};

/// The account a session of the key tries to assume a role in.
pub const OTHER_ACCOUNT_ID: &str = "444455556666";

/// The address the key was used from before the leak (documentation range, never contacted).
pub const OFFICE_IP: &str = "198.51.100.23";

/// The address the leaked key is used from (documentation range, never contacted).
pub const ATTACKER_IP: &str = "203.0.113.77";

const OFFICE_AGENT: &str = "aws-cli/2.15.30 Python/3.11.6 Linux/6.5.0-1017-aws exe/x86_64.ubuntu.22 prompt/off command/s3.ls";
const ATTACKER_AGENT: &str = "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0-18-amd64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69";

/// Why seeding failed: the resource and the emulator's error.
#[derive(Debug, thiserror::Error)]
#[error("seeding {what} failed: {reason}")]
pub struct SeedError {
    /// The resource being created.
    pub what: String,
    /// The SDK error with its causes.
    pub reason: String,
}

fn failed<E: std::error::Error>(what: impl Into<String>) -> impl FnOnce(E) -> SeedError {
    let what = what.into();
    move |error| SeedError {
        what,
        reason: aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
    }
}

/// One CloudTrail event written to the log group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededEvent {
    /// The CloudTrail event ID.
    pub event_id: String,
    /// The call as `service:Operation`.
    pub call: String,
    /// The event time.
    pub time: DateTime<Utc>,
    /// The access key that made the call.
    pub key_id: String,
    /// Why the event is there, for failure messages.
    pub note: &'static str,
}

/// Everything seeded for one incident.
#[derive(Clone, Debug)]
pub struct Incident {
    /// The suffix that makes this incident's names unique.
    pub suffix: String,
    /// The owner of the leaked key.
    pub user_name: String,
    /// The owner's ARN.
    pub user_arn: String,
    /// The owner's inline policy that allows every action on every resource.
    pub admin_policy: String,
    /// The leaked access key.
    pub leaked_key: String,
    /// The owner's second access key.
    pub second_key: String,
    /// Another user of the account, whose calls are near-misses.
    pub other_user_name: String,
    /// The other user's access key.
    pub other_key: String,
    /// The temporary key that the leaked key minted with GetSessionToken.
    pub minted_key: String,
    /// A temporary key the other user minted, which must not be followed.
    pub other_minted_key: String,
    /// The user the attacker created.
    pub backdoor_user: String,
    /// The log group holding the CloudTrail events.
    pub log_group: String,
    /// The secret whose description names the owner.
    pub secret_name: String,
    /// The secret's ARN.
    pub secret_arn: String,
    /// A secret that names neither the owner nor the key.
    pub unrelated_secret_name: String,
    /// The SSM parameter whose name contains the owner's name.
    pub parameter_name: String,
    /// The Security Hub finding that names the leaked key.
    pub finding_id: String,
    /// The Security Hub finding that names the other user's key.
    pub unrelated_finding_id: String,
    /// The leaked key's calls before the window.
    pub history_calls: Vec<SeededEvent>,
    /// The leaked key's calls in the window, oldest first.
    pub key_calls: Vec<SeededEvent>,
    /// The minted session's calls, oldest first.
    pub session_calls: Vec<SeededEvent>,
    /// Events that are not the key's or its session's calls.
    pub near_misses: Vec<SeededEvent>,
    /// Log messages that are cut-short CloudTrail records, which readers count as skipped.
    pub unreadable_messages: usize,
}

impl Incident {
    /// Returns the event IDs of the key's calls in the window, sorted.
    pub fn key_call_ids(&self) -> Vec<String> {
        sorted_ids(&self.key_calls)
    }

    /// Returns the event IDs of the minted session's calls, sorted.
    pub fn session_call_ids(&self) -> Vec<String> {
        sorted_ids(&self.session_calls)
    }

    /// Returns every seeded event, for failure messages.
    pub fn describe_events(&self) -> String {
        let mut lines = Vec::new();
        for (kind, events) in [
            ("history", &self.history_calls),
            ("key", &self.key_calls),
            ("session", &self.session_calls),
            ("near-miss", &self.near_misses),
        ] {
            for event in events {
                lines.push(format!(
                    "  {kind:<9} {} {} {:<36} {} ({})",
                    event.time.format("%m-%d %H:%M:%S"),
                    event.key_id,
                    event.call,
                    event.event_id,
                    event.note
                ));
            }
        }
        format!(
            "incident {}: user {} leaked key {} (second key {}), minted {}, log group {}\n{}",
            self.suffix,
            self.user_name,
            self.leaked_key,
            self.second_key,
            self.minted_key,
            self.log_group,
            lines.join("\n")
        )
    }
}

fn sorted_ids(events: &[SeededEvent]) -> Vec<String> {
    let mut ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    ids.sort();
    ids
}

/// Returns a short random suffix for resource names: 8 lowercase hex digits.
pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Returns a random temporary access key ID (`ASIA` and 16 base32 characters).
pub fn random_temporary_key() -> String {
    let encoded = data_encoding::BASE32_NOPAD.encode(uuid::Uuid::new_v4().as_bytes());
    format!("ASIA{}", &encoded[..16])
}

/// Seeds a complete incident with fresh names; events are timed relative to now.
pub async fn seed_incident(clients: &Clients) -> Result<Incident, SeedError> {
    let suffix = unique_suffix();
    let now = Utc::now().duration_trunc(Duration::seconds(1)).expect("whole seconds");

    let owner = create_owner(clients, &suffix).await?;
    let other = create_user_with_key(clients, &format!("kc-{suffix}-analyst")).await?;
    let (secret_name, secret_arn, unrelated_secret_name) = create_secrets(clients, &suffix, &owner).await?;
    let parameter_name = create_parameter(clients, &owner).await?;
    let (finding_id, unrelated_finding_id) = import_findings(clients, &suffix, &owner, &other, now).await?;

    let mut incident = Incident {
        suffix: suffix.clone(),
        user_name: owner.user.name.clone(),
        user_arn: owner.user.arn.clone(),
        admin_policy: owner.admin_policy.clone(),
        leaked_key: owner.user.key.clone(),
        second_key: owner.second_key.clone(),
        other_user_name: other.name.clone(),
        other_key: other.key.clone(),
        minted_key: random_temporary_key(),
        other_minted_key: random_temporary_key(),
        backdoor_user: format!("kc-{suffix}-svc-backup"),
        log_group: format!("aws-cloudtrail-logs-{ACCOUNT_ID}-{suffix}"),
        secret_name,
        secret_arn,
        unrelated_secret_name,
        parameter_name,
        finding_id,
        unrelated_finding_id,
        history_calls: Vec::new(),
        key_calls: Vec::new(),
        session_calls: Vec::new(),
        near_misses: Vec::new(),
        unreadable_messages: 0,
    };
    let mut trail = Trail::default();
    write_story(&mut incident, &mut trail, &owner, &other, now);
    write_log_group(clients, &incident.log_group, &mut trail).await?;
    incident.unreadable_messages = trail.unreadable;
    Ok(incident)
}

/// An IAM user with one access key.
#[derive(Clone, Debug)]
struct SeededUser {
    name: String,
    arn: String,
    user_id: String,
    key: String,
}

struct Owner {
    user: SeededUser,
    second_key: String,
    admin_policy: String,
}

async fn create_user_with_key(clients: &Clients, name: &str) -> Result<SeededUser, SeedError> {
    let created = clients
        .iam
        .create_user()
        .user_name(name)
        .tags(tag("team", "platform"))
        .send()
        .await
        .map_err(failed(format!("IAM user {name}")))?;
    let user = created.user().expect("CreateUser returns the user");
    let key = create_key(clients, name).await?;
    Ok(SeededUser {
        name: name.to_string(),
        arn: user.arn().to_string(),
        user_id: user.user_id().to_string(),
        key,
    })
}

async fn create_key(clients: &Clients, user: &str) -> Result<String, SeedError> {
    let created = clients
        .iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .map_err(failed(format!("access key of {user}")))?;
    Ok(created.access_key().expect("CreateAccessKey returns the key").access_key_id().to_string())
}

fn tag(key: &str, value: &str) -> aws_sdk_iam::types::Tag {
    aws_sdk_iam::types::Tag::builder().key(key).value(value).build().expect("tag has key and value")
}

async fn create_owner(clients: &Clients, suffix: &str) -> Result<Owner, SeedError> {
    let user = create_user_with_key(clients, &format!("kc-{suffix}-deploy")).await?;
    let second_key = create_key(clients, &user.name).await?;

    let admin_policy = format!("kc-{suffix}-everything");
    let document = json!({
        "Version": "2012-10-17",
        "Statement": [{ "Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*" }]
    });
    clients
        .iam
        .put_user_policy()
        .user_name(&user.name)
        .policy_name(&admin_policy)
        .policy_document(document.to_string())
        .send()
        .await
        .map_err(failed(format!("inline policy of {}", user.name)))?;
    clients
        .iam
        .create_login_profile()
        .user_name(&user.name)
        .password("Correct-Horse-Battery-9")
        .send()
        .await
        .map_err(failed(format!("console password of {}", user.name)))?;
    Ok(Owner {
        user,
        second_key,
        admin_policy,
    })
}

async fn create_secrets(clients: &Clients, suffix: &str, owner: &Owner) -> Result<(String, String, String), SeedError> {
    let name = format!("ci/{suffix}/nightly-deploy");
    // The value names the key ID only; the secret access key is a made-up placeholder.
    let value = json!({ "aws_access_key_id": owner.user.key, "aws_secret_access_key": "placeholder-not-a-real-secret" });
    let created = clients
        .secrets
        .create_secret()
        .name(&name)
        .description(format!("Access key of IAM user {} for the nightly deploy job", owner.user.name))
        .secret_string(value.to_string())
        .send()
        .await
        .map_err(failed(format!("secret {name}")))?;
    let arn = created.arn().expect("CreateSecret returns the ARN").to_string();

    let unrelated = format!("ci/{suffix}/reporting-database");
    clients
        .secrets
        .create_secret()
        .name(&unrelated)
        .description("Password of the reporting database")
        .secret_string("placeholder-not-a-real-password")
        .send()
        .await
        .map_err(failed(format!("secret {unrelated}")))?;
    Ok((name, arn, unrelated))
}

async fn create_parameter(clients: &Clients, owner: &Owner) -> Result<String, SeedError> {
    let name = format!("/deploy/{}/aws-access-key-id", owner.user.name);
    clients
        .ssm
        .put_parameter()
        .name(&name)
        .description("Access key ID the deploy job signs with")
        .value(&owner.user.key)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .map_err(failed(format!("parameter {name}")))?;
    Ok(name)
}

async fn import_findings(
    clients: &Clients,
    suffix: &str,
    owner: &Owner,
    other: &SeededUser,
    now: DateTime<Utc>,
) -> Result<(String, String), SeedError> {
    let finding_id = format!("kc-{suffix}-exposed-key");
    let unrelated_id = format!("kc-{suffix}-other-key");
    let findings = [
        asff_finding(&finding_id, &owner.user.name, &owner.user.key, "HIGH", now - Duration::hours(2)),
        asff_finding(&unrelated_id, &other.name, &other.key, "MEDIUM", now - Duration::hours(5)),
    ];
    let mut request = clients.security_hub.batch_import_findings();
    for finding in findings {
        request = request.findings(finding);
    }
    let output = request.send().await.map_err(failed("Security Hub findings"))?;
    if output.failed_count() != Some(0) {
        return Err(SeedError {
            what: "Security Hub findings".to_string(),
            reason: format!("{:?}", output.failed_findings()),
        });
    }
    Ok((finding_id, unrelated_id))
}

fn asff_finding(
    id: &str,
    user: &str,
    key: &str,
    severity: &str,
    time: DateTime<Utc>,
) -> aws_sdk_securityhub::types::AwsSecurityFinding {
    use aws_sdk_securityhub::types::{
        AwsIamAccessKeyDetails, AwsSecurityFinding, Resource, ResourceDetails, Severity, SeverityLabel,
    };
    let timestamp = time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let resource = Resource::builder()
        .r#type("AwsIamAccessKey")
        .id(format!("AWS::IAM::AccessKey:{key}"))
        .partition(aws_sdk_securityhub::types::Partition::Aws)
        .region(REGION)
        .details(
            ResourceDetails::builder()
                .aws_iam_access_key(
                    AwsIamAccessKeyDetails::builder()
                        .principal_name(user)
                        .principal_type("IAMUser")
                        .status(aws_sdk_securityhub::types::AwsIamAccessKeyStatus::Active)
                        .build(),
                )
                .build(),
        )
        .build();
    AwsSecurityFinding::builder()
        .schema_version("2018-10-08")
        .id(id)
        .product_arn(format!("arn:aws:securityhub:{REGION}::product/aws/guardduty"))
        .generator_id("arn:aws:guardduty:us-east-1:123456789012:detector/kc-test")
        .aws_account_id(ACCOUNT_ID)
        .types("TTPs/Initial Access/UnauthorizedAccess:IAMUser-InstanceCredentialExfiltration.OutsideAWS")
        .created_at(&timestamp)
        .updated_at(&timestamp)
        .first_observed_at(&timestamp)
        .severity(Severity::builder().label(SeverityLabel::from(severity)).build())
        .title(format!("Credentials for {key} used from an unusual address"))
        .description(format!("API calls signed with access key {key} of {user} came from {ATTACKER_IP}."))
        .resources(resource)
        .build()
}

/// The log events of the incident, in the order they are written.
#[derive(Default)]
struct Trail {
    messages: Vec<(DateTime<Utc>, String)>,
    unreadable: usize,
}

/// Who signs a call, as CloudTrail's `userIdentity` records it.
struct Signer<'a> {
    user: &'a SeededUser,
    key: &'a str,
    /// The session's creation time, for temporary keys.
    session_created: Option<DateTime<Utc>>,
}

impl Signer<'_> {
    fn identity(&self) -> Value {
        let mut identity = json!({
            "type": "IAMUser",
            "principalId": self.user.user_id,
            "arn": self.user.arn,
            "accountId": ACCOUNT_ID,
            "accessKeyId": self.key,
            "userName": self.user.name,
        });
        if let Some(created) = self.session_created {
            identity["sessionContext"] = json!({
                "sessionIssuer": {},
                "webIdFederationData": {},
                "attributes": {
                    "creationDate": created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "mfaAuthenticated": "false"
                }
            });
        }
        identity
    }
}

/// One CloudTrail call to write.
struct CallSpec<'a> {
    source: &'a str,
    name: &'a str,
    at: DateTime<Utc>,
    ip: &'a str,
    agent: &'a str,
    request: Value,
    response: Value,
    error: Option<(&'a str, String)>,
    read_only: bool,
}

impl<'a> CallSpec<'a> {
    fn new(source: &'a str, name: &'a str, at: DateTime<Utc>) -> CallSpec<'a> {
        CallSpec {
            source,
            name,
            at,
            ip: ATTACKER_IP,
            agent: ATTACKER_AGENT,
            request: Value::Null,
            response: Value::Null,
            error: None,
            read_only: name.starts_with("Get") || name.starts_with("List") || name.starts_with("Describe"),
        }
    }

    fn from_office(mut self) -> Self {
        self.ip = OFFICE_IP;
        self.agent = OFFICE_AGENT;
        self
    }

    fn request(mut self, request: Value) -> Self {
        self.request = request;
        self
    }

    fn response(mut self, response: Value) -> Self {
        self.response = response;
        self
    }

    fn error(mut self, code: &'a str, message: String) -> Self {
        self.error = Some((code, message));
        self
    }
}

impl Trail {
    /// Writes a CloudTrail event and returns its record.
    fn call(&mut self, signer: &Signer, spec: CallSpec, note: &'static str) -> SeededEvent {
        let event_id = uuid::Uuid::new_v4().to_string();
        let mut event = json!({
            "eventVersion": "1.09",
            "userIdentity": signer.identity(),
            "eventTime": spec.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "eventSource": format!("{}.amazonaws.com", spec.source),
            "eventName": spec.name,
            "awsRegion": REGION,
            "sourceIPAddress": spec.ip,
            "userAgent": spec.agent,
            "requestParameters": spec.request,
            "responseElements": spec.response,
            "requestID": uuid::Uuid::new_v4().to_string(),
            "eventID": event_id,
            "readOnly": spec.read_only,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT_ID,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": format!("{}.amazonaws.com", spec.source)
            }
        });
        if let Some((code, message)) = &spec.error {
            event["errorCode"] = json!(code);
            event["errorMessage"] = json!(message);
        }
        self.messages.push((spec.at, event.to_string()));
        SeededEvent {
            event_id,
            call: format!("{}:{}", spec.source, spec.name),
            time: spec.at,
            key_id: signer.key.to_string(),
            note,
        }
    }

    /// Writes a log message that is not a complete CloudTrail event.
    fn unreadable(&mut self, at: DateTime<Utc>, message: String) {
        self.messages.push((at, message));
        self.unreadable += 1;
    }
}

/// Writes the incident's events, filling the incident's lists of what was written.
fn write_story(incident: &mut Incident, trail: &mut Trail, owner: &Owner, other: &SeededUser, now: DateTime<Utc>) {
    let key = Signer { user: &owner.user, key: &incident.leaked_key, session_created: None };
    let second = Signer { user: &owner.user, key: &owner.second_key, session_created: None };
    let analyst = Signer { user: other, key: &other.key, session_created: None };
    let leak = now - Duration::hours(3);
    let session = Signer { user: &owner.user, key: &incident.minted_key, session_created: Some(leak + Duration::minutes(40)) };
    let other_session = Signer { user: other, key: &incident.other_minted_key, session_created: Some(leak + Duration::minutes(20)) };
    let minute = |m: i64| leak + Duration::minutes(m);

    // Routine use from the office, before the window.
    let day = Duration::days(1);
    incident.history_calls = vec![
        trail.call(&key, CallSpec::new("s3", "ListBuckets", now - day * 3).from_office(), "routine, office"),
        trail.call(&key, CallSpec::new("sts", "GetCallerIdentity", now - day * 3 + Duration::minutes(4)).from_office(), "routine, office"),
        trail.call(&key, CallSpec::new("s3", "ListBuckets", now - day * 2).from_office(), "routine, office"),
    ];

    let mut calls = Vec::new();
    calls.push(trail.call(&key, CallSpec::new("sts", "GetCallerIdentity", minute(0)), "first use from the new address"));
    calls.push(trail.call(&key, CallSpec::new("iam", "ListUsers", minute(2)), "discovery"));
    calls.push(trail.call(
        &key,
        CallSpec::new("iam", "GetAccountAuthorizationDetails", minute(3)).request(json!({ "filter": ["User", "Role"] })),
        "discovery",
    ));
    calls.push(trail.call(
        &key,
        CallSpec::new("organizations", "ListAccounts", minute(5))
            .error("AccessDeniedException", "You don't have permissions to access this resource.".to_string()),
        "denied call",
    ));
    calls.push(trail.call(
        &key,
        CallSpec::new("iam", "CreateUser", minute(15))
            .request(json!({ "userName": incident.backdoor_user }))
            .response(json!({ "user": { "userName": incident.backdoor_user, "path": "/", "arn": format!("arn:aws:iam::{ACCOUNT_ID}:user/{}", incident.backdoor_user) } })),
        "persistence",
    ));
    calls.push(trail.call(
        &key,
        CallSpec::new("iam", "CreateAccessKey", minute(16))
            .request(json!({ "userName": incident.backdoor_user }))
            .response(json!({ "accessKey": { "userName": incident.backdoor_user, "accessKeyId": "AKIAQWERTYUIOPASDFGH", "status": "Active" } })),
        "persistence",
    ));
    calls.push(trail.call(
        &key,
        CallSpec::new("iam", "AttachUserPolicy", minute(18)).request(json!({
            "userName": incident.backdoor_user,
            "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"
        })),
        "privilege escalation",
    ));
    calls.push(trail.call(&key, CallSpec::new("secretsmanager", "ListSecrets", minute(25)), "discovery"));
    calls.push(trail.call(
        &key,
        CallSpec::new("secretsmanager", "GetSecretValue", minute(26)).request(json!({ "secretId": incident.secret_arn })),
        "secret read",
    ));
    calls.push(trail.call(
        &key,
        CallSpec::new("sts", "GetSessionToken", minute(40))
            .request(json!({ "durationSeconds": 43200 }))
            .response(json!({ "credentials": {
                "accessKeyId": incident.minted_key,
                "sessionToken": "placeholder-session-token",
                "expiration": (minute(40) + Duration::hours(12)).format("%b %-d, %Y, %-I:%M:%S %p").to_string()
            } })),
        "mints a session",
    ));
    incident.key_calls = calls;

    incident.session_calls = vec![
        trail.call(&session, CallSpec::new("s3", "ListBuckets", minute(50)), "session discovery"),
        trail.call(
            &session,
            CallSpec::new("sts", "AssumeRole", minute(55)).error(
                "AccessDenied",
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{OTHER_ACCOUNT_ID}:role/OrganizationAccountAccessRole",
                    owner.user.arn
                ),
            ),
            "denied cross-account move",
        ),
        trail.call(
            &session,
            CallSpec::new("ssm", "GetParameter", minute(60)).request(json!({ "name": "/prod/reporting/db-password", "withDecryption": true })),
            "parameter read",
        ),
    ];

    let mut misses = Vec::new();
    misses.push(trail.call(&second, CallSpec::new("s3", "ListBuckets", minute(10)).from_office(), "owner's second key"));
    misses.push(trail.call(&second, CallSpec::new("iam", "CreateUser", minute(20)).from_office().request(json!({ "userName": format!("kc-{}-intern", incident.suffix) })), "owner's second key"));
    misses.push(trail.call(&analyst, CallSpec::new("iam", "ListUsers", minute(12)).from_office(), "another user"));
    misses.push(trail.call(
        &analyst,
        CallSpec::new("iam", "GetAccessKeyLastUsed", minute(30)).from_office().request(json!({ "accessKeyId": incident.leaked_key })),
        "mentions the key in requestParameters",
    ));
    misses.push(trail.call(
        &analyst,
        CallSpec::new("cloudtrail", "LookupEvents", minute(31)).from_office().request(json!({
            "lookupAttributes": [{ "attributeKey": "AccessKeyId", "attributeValue": incident.leaked_key }],
            "maxResults": 50
        })),
        "mentions the key in requestParameters",
    ));
    misses.push(trail.call(
        &analyst,
        CallSpec::new("sts", "GetSessionToken", minute(20))
            .from_office()
            .response(json!({ "credentials": { "accessKeyId": incident.other_minted_key, "sessionToken": "placeholder-session-token" } })),
        "another user's session",
    ));
    misses.push(trail.call(&other_session, CallSpec::new("s3", "ListBuckets", minute(45)).from_office(), "another user's session"));
    incident.near_misses = misses;

    // A record cut short, as when a message exceeds the log event size limit: it names the
    // key but is no event, so readers must count it as skipped.
    let mut cut = json!({
        "eventVersion": "1.09",
        "userIdentity": key.identity(),
        "eventTime": minute(35).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutBucketPolicy",
    })
    .to_string();
    cut.truncate(cut.len() - 40);
    trail.unreadable(minute(35), cut);
}

async fn write_log_group(clients: &Clients, log_group: &str, trail: &mut Trail) -> Result<(), SeedError> {
    let stream = format!("{ACCOUNT_ID}_CloudTrail_{REGION}");
    clients
        .logs
        .create_log_group()
        .log_group_name(log_group)
        .send()
        .await
        .map_err(failed(format!("log group {log_group}")))?;
    clients
        .logs
        .create_log_stream()
        .log_group_name(log_group)
        .log_stream_name(&stream)
        .send()
        .await
        .map_err(failed(format!("log stream {stream}")))?;

    // PutLogEvents takes a batch in time order.
    trail.messages.sort_by_key(|(time, _)| *time);
    let mut request = clients.logs.put_log_events().log_group_name(log_group).log_stream_name(&stream);
    for (time, message) in &trail.messages {
        request = request.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(time.timestamp_millis())
                .message(message)
                .build()
                .expect("log event has timestamp and message"),
        );
    }
    let output = request.send().await.map_err(failed(format!("events of {log_group}")))?;
    if let Some(rejected) = output.rejected_log_events_info() {
        return Err(SeedError {
            what: format!("events of {log_group}"),
            reason: format!("the emulator rejected some events: {rejected:?}"),
        });
    }
    Ok(())
}
