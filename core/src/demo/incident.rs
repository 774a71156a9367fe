//! The attacker's calls on the incident day, phase by phase. Reconnaissance is followed by
//! a burst of denied calls while enumerating services, then privilege escalation and
//! persistence through a new administrator user, and secrets read. A minted session moves
//! into the production account, a backups bucket is shared with the attacker's account,
//! and an attempt to stop CloudTrail fails.
//!
//! The key was pushed to a public repository at 09:12 UTC and AWS Health reported it at
//! 09:19; the first attacker call comes at 09:31.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::Phase;
use super::story::{
    self, ACCOUNT, ATTACKER_ACCOUNT, BACKDOOR, BACKUPS_BUCKET, CI_DEPLOY, HOME_REGION, PRODUCTION_ACCOUNT,
};
use super::trail::{Call, Caller, Record, call};

/// The inline policy of the user that owns the leaked key.
pub(super) const CI_DEPLOY_POLICY: &str = "ci-deploy-pipeline";
/// The AWS managed policy the attacker attaches to the backdoor user.
pub(super) const ADMINISTRATOR_ACCESS: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
/// The secret that contains a copy of the leaked key.
pub(super) const STORED_KEY_SECRET: &str = "ci/deploy/aws-credentials";
/// The secrets the attacker reads, and the one it is denied.
pub(super) const REGISTRY_SECRET: &str = "ci/deploy/registry-token";
pub(super) const DATABASE_SECRET: &str = "ci/deploy/database-url";
pub(super) const PAYMENTS_SECRET: &str = "prod/payments/api-key";
/// The parameter the attacker decrypts.
pub(super) const WEBHOOK_PARAMETER: &str = "/ci/deploy/slack-webhook-url";
/// The Windows build agent whose administrator password the attacker requests from EC2.
const BUILD_AGENT_INSTANCE: &str = "i-0f3a9c2d51e8b7a64";
/// The session name the attacker gives the production role session.
const ROLE_SESSION_NAME: &str = "ci-deploy";

/// Returns every attacker call, in no particular order.
pub(super) fn records() -> Vec<Record> {
    let attacker = Caller::user_key(CI_DEPLOY, CI_DEPLOY.access_key(), story::ATTACKER_IP, story::KALI_AGENT);
    let mut records = Vec::new();
    records.extend(recon(&attacker));
    records.extend(denied_burst(&attacker));
    records.extend(escalation(&attacker));
    records.extend(backdoor_use());
    records.extend(secrets_read(&attacker));
    records.extend(session_minted(&attacker));
    records.extend(external_sharing(&attacker));
    records.extend(session_use());
    records.extend(other_account());
    records.extend(defense_evasion(&attacker));
    records
}

fn at(minute: u32, second: u32) -> DateTime<Utc> {
    story::incident_at(9, minute, second)
}

fn record_all(calls: Vec<Call>, caller: &Caller, phase: Phase) -> Vec<Record> {
    calls.into_iter().map(|c| c.record(caller, phase)).collect()
}

/// Returns the reconnaissance: the caller's identity, IAM, buckets, secrets, instances in
/// five regions, then the key's own policy.
fn recon(attacker: &Caller) -> Vec<Record> {
    let mut calls = vec![
        call(at(31, 12), "sts", "GetCallerIdentity", "us-east-1"),
        call(at(31, 40), "iam", "ListUsers", "us-east-1"),
        call(at(31, 52), "iam", "ListRoles", "us-east-1"),
        call(at(32, 10), "iam", "GetAccountAuthorizationDetails", "us-east-1"),
        call(at(32, 44), "s3", "ListBuckets", "us-east-1")
            .request(json!({"Host": "s3.amazonaws.com"}))
            .additional(s3_request_data(0)),
        call(at(33, 5), "secretsmanager", "ListSecrets", "us-east-1"),
    ];
    let regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-1", "sa-east-1"];
    for (index, region) in (0u32..).zip(regions) {
        calls.push(
            call(at(33, 21 + 6 * index), "ec2", "DescribeInstances", region)
                .request(json!({"instancesSet": {}, "filterSet": {}})),
        );
    }
    calls.push(call(at(34, 2), "iam", "ListUserPolicies", "us-east-1").request(json!({"userName": CI_DEPLOY.name})));
    calls.push(
        call(at(34, 6), "iam", "GetUserPolicy", "us-east-1")
            .request(json!({"userName": CI_DEPLOY.name, "policyName": CI_DEPLOY_POLICY})),
    );
    record_all(calls, attacker, Phase::Recon)
}

/// One call of the denied burst: service, event name, IAM action, region, error code and
/// the resource the denial names (empty for actions without one).
struct Denied {
    service: &'static str,
    event_name: &'static str,
    action: &'static str,
    region: &'static str,
    code: &'static str,
    resource: &'static str,
}

/// The services an enumeration tool tries after the key's own policy: everything the
/// policy does not allow comes back denied, within about a minute.
const BURST: [Denied; 16] = [
    denied(
        "ec2",
        "GetPasswordData",
        "GetPasswordData",
        "us-east-1",
        "Client.UnauthorizedOperation",
        "instance",
    ),
    denied(
        "lambda",
        "ListFunctions20150331",
        "ListFunctions",
        "us-east-1",
        "AccessDeniedException",
        "*",
    ),
    denied(
        "lambda",
        "ListFunctions20150331",
        "ListFunctions",
        "us-west-2",
        "AccessDeniedException",
        "*",
    ),
    denied(
        "lambda",
        "ListFunctions20150331",
        "ListFunctions",
        "eu-west-1",
        "AccessDeniedException",
        "*",
    ),
    denied(
        "rds",
        "DescribeDBInstances",
        "DescribeDBInstances",
        "us-east-1",
        "AccessDenied",
        "db",
    ),
    denied(
        "rds",
        "DescribeDBInstances",
        "DescribeDBInstances",
        "eu-west-1",
        "AccessDenied",
        "db",
    ),
    denied(
        "dynamodb",
        "ListTables",
        "ListTables",
        "us-east-1",
        "AccessDeniedException",
        "table",
    ),
    denied(
        "dynamodb",
        "ListTables",
        "ListTables",
        "eu-west-1",
        "AccessDeniedException",
        "table",
    ),
    denied(
        "kms",
        "ListKeys",
        "ListKeys",
        "us-east-1",
        "AccessDeniedException",
        "key",
    ),
    denied(
        "organizations",
        "DescribeOrganization",
        "DescribeOrganization",
        "us-east-1",
        "AccessDeniedException",
        "",
    ),
    denied(
        "guardduty",
        "ListDetectors",
        "ListDetectors",
        "us-east-1",
        "AccessDeniedException",
        "detector",
    ),
    denied(
        "sns",
        "ListTopics",
        "ListTopics",
        "us-east-1",
        "AuthorizationError",
        "topic",
    ),
    denied("ses", "GetSendQuota", "GetSendQuota", "us-east-1", "AccessDenied", ""),
    denied(
        "logs",
        "DescribeLogGroups",
        "DescribeLogGroups",
        "us-east-1",
        "AccessDeniedException",
        "log-group",
    ),
    denied(
        "ssm",
        "DescribeParameters",
        "DescribeParameters",
        "eu-west-1",
        "AccessDeniedException",
        "",
    ),
    denied(
        "cloudtrail",
        "DescribeTrails",
        "DescribeTrails",
        "eu-west-1",
        "AccessDeniedException",
        "trail",
    ),
];

const fn denied(
    service: &'static str,
    event_name: &'static str,
    action: &'static str,
    region: &'static str,
    code: &'static str,
    resource: &'static str,
) -> Denied {
    Denied {
        service,
        event_name,
        action,
        region,
        code,
        resource,
    }
}

/// Returns the burst of denied calls, 09:35:10 to 09:36:22.
fn denied_burst(attacker: &Caller) -> Vec<Record> {
    let start = at(35, 10);
    let mut records = Vec::new();
    for (index, attempt) in (0i64..).zip(&BURST) {
        // Five seconds apart, every fourth call a little slower, as a tool's retries are.
        let time = start + Duration::seconds(index * 5 - index / 4);
        let resource = resource_arn(attempt);
        let message = attacker.denial(attempt.service, attempt.action, &resource);
        let mut attempt_call =
            call(time, attempt.service, attempt.event_name, attempt.region).error(attempt.code, message);
        if attempt.service == "ec2" {
            attempt_call = attempt_call.request(json!({"instanceId": BUILD_AGENT_INSTANCE}));
        }
        records.push(attempt_call.record(attacker, Phase::DeniedBurst));
    }
    records
}

/// Returns the resource a denial names: `*`, nothing, or a wildcard ARN of the service's
/// resource type in the region.
fn resource_arn(attempt: &Denied) -> String {
    let (service, region) = (attempt.service, attempt.region);
    match attempt.resource {
        "" | "*" => attempt.resource.to_string(),
        "instance" => format!("arn:aws:ec2:{region}:{ACCOUNT}:instance/{BUILD_AGENT_INSTANCE}"),
        "log-group" => format!("arn:aws:logs:{region}:{ACCOUNT}:log-group::log-stream:"),
        "topic" | "key" | "table" => format!("arn:aws:{service}:{region}:{ACCOUNT}:*"),
        kind => format!("arn:aws:{service}:{region}:{ACCOUNT}:{kind}:*"),
    }
}

/// Returns the creation of a user with AdministratorAccess, an access key and a console
/// password: persistence that survives rotating the leaked key.
fn escalation(attacker: &Caller) -> Vec<Record> {
    let user = BACKDOOR.name;
    let calls = vec![
        call(story::backdoor_created(), "iam", "CreateUser", "us-east-1")
            .request(json!({"userName": user}))
            .response(json!({"user": {
                "path": "/",
                "userName": user,
                "userId": BACKDOOR.user_id(),
                "arn": BACKDOOR.arn(),
                "createDate": story::response_time(story::backdoor_created()),
            }})),
        call(at(41, 19), "iam", "AttachUserPolicy", "us-east-1")
            .request(json!({"userName": user, "policyArn": ADMINISTRATOR_ACCESS})),
        // CloudTrail leaves the new secret access key out of the response.
        call(story::backdoor_key_created(), "iam", "CreateAccessKey", "us-east-1")
            .request(json!({"userName": user}))
            .response(json!({"accessKey": {
                "userName": user,
                "accessKeyId": BACKDOOR.access_key(),
                "status": "Active",
                "createDate": story::response_time(story::backdoor_key_created()),
            }})),
        // CloudTrail leaves the password out of the request.
        call(
            story::backdoor_login_profile_created(),
            "iam",
            "CreateLoginProfile",
            "us-east-1",
        )
        .request(json!({"userName": user, "passwordResetRequired": false}))
        .response(json!({"loginProfile": {
            "userName": user,
            "createDate": story::response_time(story::backdoor_login_profile_created()),
            "passwordResetRequired": false,
        }})),
    ];
    record_all(calls, attacker, Phase::Escalation)
}

/// Returns the attacker's check that the backdoor key works. These calls do not name the
/// leaked key, so an investigation of the leaked key does not find them.
fn backdoor_use() -> Vec<Record> {
    let backdoor = Caller::user_key(BACKDOOR, BACKDOOR.access_key(), story::ATTACKER_IP, story::KALI_AGENT);
    let calls = vec![
        call(at(43, 10), "sts", "GetCallerIdentity", "us-east-1"),
        call(at(43, 31), "iam", "ListAttachedUserPolicies", "us-east-1").request(json!({"userName": BACKDOOR.name})),
    ];
    record_all(calls, &backdoor, Phase::BackdoorUse)
}

/// Returns the reads of secrets in the home region: three read, one denied (outside
/// `ci/*`), and a decrypted parameter.
fn secrets_read(attacker: &Caller) -> Vec<Record> {
    let payments_arn = story::secret_arn(PAYMENTS_SECRET);
    let denial = attacker.denial("secretsmanager", "GetSecretValue", &payments_arn);
    let calls = vec![
        call(at(46, 2), "secretsmanager", "ListSecrets", HOME_REGION).request(json!({"maxResults": 100})),
        call(at(46, 40), "secretsmanager", "GetSecretValue", HOME_REGION)
            .request(json!({"secretId": STORED_KEY_SECRET})),
        call(at(47, 5), "secretsmanager", "GetSecretValue", HOME_REGION).request(json!({"secretId": REGISTRY_SECRET})),
        call(at(47, 29), "secretsmanager", "GetSecretValue", HOME_REGION).request(json!({"secretId": DATABASE_SECRET})),
        call(at(47, 58), "secretsmanager", "GetSecretValue", HOME_REGION)
            .request(json!({"secretId": PAYMENTS_SECRET}))
            .error("AccessDeniedException", denial),
        call(at(48, 33), "ssm", "GetParameter", HOME_REGION)
            .request(json!({"name": WEBHOOK_PARAMETER, "withDecryption": true})),
    ];
    record_all(calls, attacker, Phase::SecretsRead)
}

/// Returns the `GetSessionToken` call: session credentials for twelve hours, which survive
/// deactivating the leaked key. CloudTrail records the new key ID and the session token,
/// and the demonstration leaves the token out.
fn session_minted(attacker: &Caller) -> Vec<Record> {
    let minted = story::session_minted();
    let expiration = minted + Duration::hours(12);
    let minting = call(minted, "sts", "GetSessionToken", "us-east-1")
        .request(json!({"durationSeconds": 43200}))
        .response(json!({"credentials": {
            "accessKeyId": story::session_key(),
            "expiration": story::response_time(expiration),
        }}));
    vec![minting.record(attacker, Phase::SessionMinted)]
}

/// Returns the calls that give the backups bucket a policy letting the attacker's account
/// list and read it.
fn external_sharing(attacker: &Caller) -> Vec<Record> {
    let host = format!("s3.{HOME_REGION}.amazonaws.com");
    let bucket_arn = format!("arn:aws:s3:::{BACKUPS_BUCKET}");
    let calls = vec![
        call(at(57, 5), "s3", "GetBucketPolicy", HOME_REGION)
            .request(json!({"bucketName": BACKUPS_BUCKET, "Host": host, "policy": [""]}))
            .error("NoSuchBucketPolicy", "The bucket policy does not exist".to_string())
            .additional(s3_request_data(0)),
        call(story::bucket_shared(), "s3", "PutBucketPolicy", HOME_REGION)
            .request(json!({
                "bucketPolicy": shared_bucket_policy(),
                "bucketName": BACKUPS_BUCKET,
                "Host": host,
                "policy": [""],
            }))
            .additional(s3_request_data(312))
            .resources(json!([{"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": bucket_arn}])),
    ];
    record_all(calls, attacker, Phase::ExternalSharing)
}

/// Returns the bucket policy the attacker writes.
pub(super) fn shared_bucket_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReplicaRead",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ATTACKER_ACCOUNT}:root")},
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [format!("arn:aws:s3:::{BACKUPS_BUCKET}"), format!("arn:aws:s3:::{BACKUPS_BUCKET}/*")],
        }],
    })
}

/// `additionalEventData` of an S3 call signed with an access key.
fn s3_request_data(bytes_in: u32) -> Value {
    json!({
        "SignatureVersion": "SigV4",
        "CipherSuite": "TLS_AES_128_GCM_SHA256",
        "bytesTransferredIn": bytes_in,
        "AuthenticationMethod": "AuthHeader",
        "bytesTransferredOut": 0,
    })
}

/// Returns the minted session's calls from a second address. It assumes the production
/// deploy role (allowed by the leaked key's policy) and fails to assume the shared
/// services account's organization role.
///
/// The successful `AssumeRole` is recorded twice: once in the caller's account and once,
/// with the caller reduced to its account, in the role's account.
fn session_use() -> Vec<Record> {
    let session = Caller::user_session(
        CI_DEPLOY,
        story::session_key(),
        story::session_minted(),
        story::SESSION_IP,
        story::TOOL_AGENT,
    );
    let as_seen_by_role =
        Caller::from_other_account(CI_DEPLOY, story::SESSION_IP, story::TOOL_AGENT, PRODUCTION_ACCOUNT);

    let assumed = story::role_assumed();
    let role_arn = story::deploy_role_arn();
    let assume_role = call(assumed, "sts", "AssumeRole", "us-east-1")
        .request(json!({"roleArn": role_arn, "roleSessionName": ROLE_SESSION_NAME, "durationSeconds": 3600}))
        .response(json!({
            "credentials": {
                "accessKeyId": story::role_session_key(),
                "expiration": story::response_time(assumed + Duration::hours(1)),
            },
            "assumedRoleUser": {
                "assumedRoleId": format!("{}:{ROLE_SESSION_NAME}", story::deploy_role_id()),
                "arn": format!("arn:aws:sts::{PRODUCTION_ACCOUNT}:assumed-role/{}/{ROLE_SESSION_NAME}", story::DEPLOY_ROLE),
            },
        }))
        .resources(json!([{"accountId": PRODUCTION_ACCOUNT, "type": "AWS::IAM::Role", "ARN": role_arn}]))
        .shared(super::ids::uuid("shared/assume-deploy-role"));

    // A denied AssumeRole carries no request parameters; the message names the role.
    let organization_role = story::organization_role_arn();
    let denied_assume_role = call(story::incident_at(10, 9, 15), "sts", "AssumeRole", "us-east-1")
        .error("AccessDenied", session.denial("sts", "AssumeRole", &organization_role));

    vec![
        call(story::incident_at(10, 5, 11), "sts", "GetCallerIdentity", "us-east-1")
            .record(&session, Phase::SessionUse),
        assume_role.clone().record(&session, Phase::SessionUse),
        denied_assume_role.record(&session, Phase::SessionUse),
        assume_role.record(&as_seen_by_role, Phase::RoleAccountCopy),
    ]
}

/// Returns the role session's calls in the production account.
fn other_account() -> Vec<Record> {
    let role_session = Caller::deploy_role_session(
        ROLE_SESSION_NAME,
        story::role_session_key(),
        story::role_assumed(),
        story::SESSION_IP,
        story::TOOL_AGENT,
    );
    let denial = role_session.denial("secretsmanager", "ListSecrets", "");
    let at = |minute, second| story::incident_at(10, minute, second);
    let calls = vec![
        call(at(6, 2), "sts", "GetCallerIdentity", "us-east-1"),
        call(at(6, 30), "ecs", "ListClusters", HOME_REGION),
        call(at(6, 55), "ecr", "DescribeRepositories", HOME_REGION),
        call(at(7, 20), "s3", "ListBuckets", "us-east-1")
            .request(json!({"Host": "s3.amazonaws.com"}))
            .additional(s3_request_data(0)),
        call(at(7, 48), "secretsmanager", "ListSecrets", HOME_REGION).error("AccessDeniedException", denial),
    ];
    record_all(calls, &role_session, Phase::OtherAccount)
}

/// Returns `StopLogging` on the account's trail, denied because the key's policy does not
/// allow it.
fn defense_evasion(attacker: &Caller) -> Vec<Record> {
    let trail_arn = format!("arn:aws:cloudtrail:{HOME_REGION}:{ACCOUNT}:trail/{}", story::TRAIL_NAME);
    let denial = attacker.denial("cloudtrail", "StopLogging", &trail_arn);
    let stop = call(story::incident_at(10, 11, 58), "cloudtrail", "StopLogging", HOME_REGION)
        .request(json!({"name": story::TRAIL_NAME}))
        .error("AccessDeniedException", denial);
    vec![stop.record(attacker, Phase::DefenseEvasion)]
}
