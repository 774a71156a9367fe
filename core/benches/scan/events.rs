//! Writes invented CloudTrail log files: `{"Records":[…]}` on one line, as CloudTrail
//! delivers them to S3, with the fields and nesting of real management and data events.
//!
//! The events vary the way a real trail does: IAM users and role sessions with their own
//! keys, AWS services calling on a principal's behalf, S3 data events, failed calls, large
//! `responseElements`, and policy documents as escaped JSON strings. The searched key makes
//! routine CI calls throughout and a burst of reconnaissance from new addresses after it
//! leaks. A key audit role names it, and other keys, in `requestParameters`, so a plain
//! substring match finds more records than the `userIdentity.accessKeyId` filter.

use std::fmt::Write;

use chrono::DateTime;
use memchr::memmem;

use super::random::{ALPHANUMERIC, BASE64, HEX_LOWER, HEX_UPPER, Rng};
use super::world::{AGENTS_SCANNER, Account, RoleKind, User, World, session_at};

/// Appends formatted text to a `String`, which cannot fail.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// When the searched key leaks: from this offset into the trail, for two hours, an
/// attacker uses it from new addresses in `us-east-1`.
const LEAK_OFFSET_SECONDS: i64 = 14 * 3600;
const LEAK_SECONDS: i64 = 2 * 3600;

/// The share of its account's events that the searched key makes in routine use, and
/// while the attacker uses it.
const TARGET_SHARE: f64 = 0.006;
const TARGET_SHARE_DURING_LEAK: f64 = 0.05;

/// Counts of what the generator wrote, which the benchmark checks each tool against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub events: u64,
    /// Events whose `userIdentity.accessKeyId` is the searched key.
    pub matches: u64,
    /// Events that contain the searched key somewhere else only.
    pub mentions: u64,
}

/// One log file to write: one account, one region, one five-minute delivery.
pub struct LogFile<'w> {
    pub world: &'w World,
    pub account: usize,
    pub region: &'static str,
    /// The start of the five minutes, in seconds since the Unix epoch.
    pub start: i64,
    /// The start of the whole trail, from which the leak is timed.
    pub trail_start: i64,
    pub events: usize,
}

/// The principal behind one event.
enum Actor<'w> {
    User {
        user: &'w User,
        access_key_id: &'w str,
        source_ip: &'w str,
        agent: &'static str,
    },
    Session {
        role_arn: String,
        role_name: &'w str,
        role_id: &'w str,
        kind: RoleKind,
        session: super::world::Session,
        agent: &'static str,
    },
    /// An AWS service calling on a principal's behalf, such as S3 calling KMS.
    Service { host: &'static str },
}

/// The API calls the corpus contains.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    S3GetObject,
    S3PutObject,
    S3ListBuckets,
    Ec2DescribeInstances,
    Ec2RunInstances,
    KmsDecrypt,
    KmsGenerateDataKey,
    StsAssumeRole,
    StsGetCallerIdentity,
    IamGetUser,
    IamListUsers,
    IamCreateUser,
    IamGetAccessKeyLastUsed,
    IamPutRolePolicy,
    SecretsManagerGetSecretValue,
    SsmGetParameter,
    LogsCreateLogStream,
    DynamoDbDescribeTable,
    EcrGetAuthorizationToken,
    LambdaGetFunction,
    CloudWatchGetMetricData,
}

impl Call {
    fn event_source(self) -> &'static str {
        match self {
            Call::S3GetObject | Call::S3PutObject | Call::S3ListBuckets => "s3.amazonaws.com",
            Call::Ec2DescribeInstances | Call::Ec2RunInstances => "ec2.amazonaws.com",
            Call::KmsDecrypt | Call::KmsGenerateDataKey => "kms.amazonaws.com",
            Call::StsAssumeRole | Call::StsGetCallerIdentity => "sts.amazonaws.com",
            Call::IamGetUser
            | Call::IamListUsers
            | Call::IamCreateUser
            | Call::IamGetAccessKeyLastUsed
            | Call::IamPutRolePolicy => "iam.amazonaws.com",
            Call::SecretsManagerGetSecretValue => "secretsmanager.amazonaws.com",
            Call::SsmGetParameter => "ssm.amazonaws.com",
            Call::LogsCreateLogStream => "logs.amazonaws.com",
            Call::DynamoDbDescribeTable => "dynamodb.amazonaws.com",
            Call::EcrGetAuthorizationToken => "ecr.amazonaws.com",
            Call::LambdaGetFunction => "lambda.amazonaws.com",
            Call::CloudWatchGetMetricData => "monitoring.amazonaws.com",
        }
    }

    fn event_name(self) -> &'static str {
        match self {
            Call::S3GetObject => "GetObject",
            Call::S3PutObject => "PutObject",
            Call::S3ListBuckets => "ListBuckets",
            Call::Ec2DescribeInstances => "DescribeInstances",
            Call::Ec2RunInstances => "RunInstances",
            Call::KmsDecrypt => "Decrypt",
            Call::KmsGenerateDataKey => "GenerateDataKey",
            Call::StsAssumeRole => "AssumeRole",
            Call::StsGetCallerIdentity => "GetCallerIdentity",
            Call::IamGetUser => "GetUser",
            Call::IamListUsers => "ListUsers",
            Call::IamCreateUser => "CreateUser",
            Call::IamGetAccessKeyLastUsed => "GetAccessKeyLastUsed",
            Call::IamPutRolePolicy => "PutRolePolicy",
            Call::SecretsManagerGetSecretValue => "GetSecretValue",
            Call::SsmGetParameter => "GetParameter",
            Call::LogsCreateLogStream => "CreateLogStream",
            Call::DynamoDbDescribeTable => "DescribeTable",
            Call::EcrGetAuthorizationToken => "GetAuthorizationToken",
            Call::LambdaGetFunction => "GetFunction20150331v2",
            Call::CloudWatchGetMetricData => "GetMetricData",
        }
    }

    fn read_only(self) -> bool {
        !matches!(
            self,
            Call::S3PutObject
                | Call::Ec2RunInstances
                | Call::IamCreateUser
                | Call::IamPutRolePolicy
                | Call::LogsCreateLogStream
        )
    }

    fn is_data_event(self) -> bool {
        matches!(self, Call::S3GetObject | Call::S3PutObject)
    }

    /// Returns the host name the client sent, as in `tlsDetails.clientProvidedHostHeader`.
    fn host(self, region: &str) -> String {
        match self {
            Call::IamGetUser
            | Call::IamListUsers
            | Call::IamCreateUser
            | Call::IamGetAccessKeyLastUsed
            | Call::IamPutRolePolicy => "iam.amazonaws.com".into(),
            Call::S3ListBuckets => "s3.amazonaws.com".into(),
            _ => {
                let service = self.event_source().trim_end_matches(".amazonaws.com");
                format!("{service}.{region}.amazonaws.com")
            }
        }
    }
}

const SERVICE_CALLS: &[(Call, u32)] = &[
    (Call::KmsDecrypt, 50),
    (Call::KmsGenerateDataKey, 20),
    (Call::StsAssumeRole, 30),
];

const INSTANCE_CALLS: &[(Call, u32)] = &[
    (Call::S3GetObject, 30),
    (Call::S3PutObject, 15),
    (Call::DynamoDbDescribeTable, 10),
    (Call::SsmGetParameter, 15),
    (Call::SecretsManagerGetSecretValue, 8),
    (Call::KmsDecrypt, 10),
    (Call::LogsCreateLogStream, 5),
    (Call::CloudWatchGetMetricData, 5),
    (Call::Ec2DescribeInstances, 5),
];

const LAMBDA_CALLS: &[(Call, u32)] = &[
    (Call::S3GetObject, 25),
    (Call::S3PutObject, 20),
    (Call::DynamoDbDescribeTable, 15),
    (Call::KmsDecrypt, 15),
    (Call::SsmGetParameter, 10),
    (Call::LogsCreateLogStream, 10),
    (Call::SecretsManagerGetSecretValue, 5),
];

const PEOPLE_CALLS: &[(Call, u32)] = &[
    (Call::Ec2DescribeInstances, 20),
    (Call::S3ListBuckets, 10),
    (Call::CloudWatchGetMetricData, 20),
    (Call::LambdaGetFunction, 10),
    (Call::IamGetUser, 5),
    (Call::IamListUsers, 5),
    (Call::DynamoDbDescribeTable, 10),
    (Call::S3GetObject, 10),
    (Call::StsGetCallerIdentity, 5),
    (Call::Ec2RunInstances, 2),
    (Call::IamPutRolePolicy, 1),
];

const PIPELINE_CALLS: &[(Call, u32)] = &[
    (Call::S3PutObject, 20),
    (Call::EcrGetAuthorizationToken, 20),
    (Call::LambdaGetFunction, 20),
    (Call::StsGetCallerIdentity, 20),
    (Call::IamPutRolePolicy, 2),
    (Call::Ec2RunInstances, 3),
];

const KEY_AUDIT_CALLS: &[(Call, u32)] = &[
    (Call::IamGetAccessKeyLastUsed, 80),
    (Call::IamListUsers, 20),
];

const USER_CALLS: &[(Call, u32)] = &[
    (Call::S3GetObject, 30),
    (Call::S3PutObject, 25),
    (Call::CloudWatchGetMetricData, 15),
    (Call::S3ListBuckets, 10),
    (Call::StsGetCallerIdentity, 10),
    (Call::Ec2DescribeInstances, 5),
    (Call::SsmGetParameter, 5),
];

const TARGET_ROUTINE_CALLS: &[(Call, u32)] = &[
    (Call::S3PutObject, 35),
    (Call::S3GetObject, 20),
    (Call::EcrGetAuthorizationToken, 15),
    (Call::StsGetCallerIdentity, 15),
    (Call::LambdaGetFunction, 15),
];

const TARGET_ATTACKER_CALLS: &[(Call, u32)] = &[
    (Call::StsGetCallerIdentity, 10),
    (Call::IamListUsers, 15),
    (Call::S3ListBuckets, 15),
    (Call::SecretsManagerGetSecretValue, 20),
    (Call::IamCreateUser, 10),
    (Call::Ec2DescribeInstances, 15),
    (Call::IamGetUser, 10),
    (Call::S3GetObject, 5),
];

/// A failed call's error code and message.
struct Failure {
    code: &'static str,
    message: String,
}

/// Everything one event's JSON is written from.
struct EventInput<'w> {
    actor: Actor<'w>,
    call: Call,
    time: i64,
    failure: Option<Failure>,
    from_target: bool,
}

/// Appends one log file's JSON to `out` and counts its events into `tally`.
pub fn write_log_file(file: &LogFile<'_>, rng: &mut Rng, out: &mut String, tally: &mut Tally) {
    let mut times: Vec<i64> = (0..file.events)
        .map(|_| file.start + rng.below(300) as i64)
        .collect();
    times.sort_unstable();
    let target_key = file.world.target_access_key_id();
    let finder = memmem::Finder::new(target_key.as_bytes());

    out.push_str(r#"{"Records":["#);
    for (index, &time) in times.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let input = choose_event(file, time, rng);
        let event_start = out.len();
        write_event(out, file, &input, rng);

        tally.events += 1;
        if input.from_target {
            tally.matches += 1;
        } else if finder.find(&out.as_bytes()[event_start..]).is_some() {
            tally.mentions += 1;
        }
    }
    out.push_str("]}");
}

/// Decides who calls what at `time`.
fn choose_event<'w>(file: &LogFile<'w>, time: i64, rng: &mut Rng) -> EventInput<'w> {
    let world = file.world;
    let account = &world.accounts[file.account];
    let since_start = time - file.trail_start;
    let leaking = (LEAK_OFFSET_SECONDS..LEAK_OFFSET_SECONDS + LEAK_SECONDS).contains(&since_start)
        && file.region == "us-east-1";

    if file.account == world.target_account {
        let share = if leaking {
            TARGET_SHARE_DURING_LEAK
        } else {
            TARGET_SHARE
        };
        if rng.chance(share) {
            return target_event(world, time, leaking && rng.chance(0.8), rng);
        }
    }

    let draw = rng.below(100);
    let (actor, calls) = if draw < 55 {
        session_actor(world, account, time, rng)
    } else if draw < 80 {
        // The searched key's owner makes only the calls `target_event` writes.
        let first = usize::from(file.account == world.target_account);
        let user = rng.pick(&account.users[first..]);
        (user_actor(user, rng), USER_CALLS)
    } else {
        let host = *rng.pick(&[
            "s3.amazonaws.com",
            "lambda.amazonaws.com",
            "ec2.amazonaws.com",
        ]);
        (Actor::Service { host }, SERVICE_CALLS)
    };
    let call = *rng.weighted(calls);
    let failure = match actor {
        Actor::Service { .. } => None,
        _ if rng.chance(0.02) => Some(failure_for(call, &actor_arn(&actor, account.id), rng)),
        _ => None,
    };
    EventInput {
        actor,
        call,
        time,
        failure,
        from_target: false,
    }
}

/// Builds an event signed with the searched key: routine CI use, or the attacker's.
fn target_event<'w>(world: &'w World, time: i64, attacker: bool, rng: &mut Rng) -> EventInput<'w> {
    let user = world.target_user();
    let (actor, calls) = if attacker {
        let actor = Actor::User {
            user,
            access_key_id: &user.access_key_ids[0],
            source_ip: rng.pick(&world.attacker_ips).as_str(),
            agent: rng.pick::<&str>(AGENTS_SCANNER),
        };
        (actor, TARGET_ATTACKER_CALLS)
    } else {
        (user_actor(user, rng), TARGET_ROUTINE_CALLS)
    };
    let call = *rng.weighted(calls);
    let account_id = world.accounts[world.target_account].id;
    let failure = (attacker && rng.chance(0.3))
        .then(|| failure_for(call, &actor_arn(&actor, account_id), rng));
    EventInput {
        actor,
        call,
        time,
        failure,
        from_target: true,
    }
}

fn user_actor<'w>(user: &'w User, rng: &mut Rng) -> Actor<'w> {
    Actor::User {
        user,
        access_key_id: rng.pick(&user.access_key_ids).as_str(),
        source_ip: rng.pick(&user.source_ips).as_str(),
        agent: rng.pick::<&str>(user.agents),
    }
}

fn session_actor<'w>(
    world: &'w World,
    account: &'w Account,
    time: i64,
    rng: &mut Rng,
) -> (Actor<'w>, &'static [(Call, u32)]) {
    let weights: Vec<(usize, u32)> = account
        .roles
        .iter()
        .enumerate()
        .map(|(index, role)| (index, role.weight))
        .collect();
    let role = &account.roles[*rng.weighted(&weights)];
    let session = session_at(world, role, time, rng);
    let calls = match role.kind {
        RoleKind::Instance => INSTANCE_CALLS,
        RoleKind::Lambda => LAMBDA_CALLS,
        RoleKind::SingleSignOn => PEOPLE_CALLS,
        RoleKind::Pipeline => PIPELINE_CALLS,
        RoleKind::KeyAudit => KEY_AUDIT_CALLS,
    };
    let agent = *rng.pick(session.agents);
    let actor = Actor::Session {
        role_arn: format!("arn:aws:iam::{}:role/{}", account.id, role.path_and_name),
        role_name: role.name(),
        role_id: &role.role_id,
        kind: role.kind,
        session,
        agent,
    };
    (actor, calls)
}

fn actor_arn(actor: &Actor<'_>, account_id: &str) -> String {
    match actor {
        Actor::User { user, .. } => format!("arn:aws:iam::{account_id}:user/{}", user.name),
        Actor::Session {
            role_name, session, ..
        } => format!(
            "arn:aws:sts::{account_id}:assumed-role/{role_name}/{}",
            session.name
        ),
        Actor::Service { host } => (*host).to_string(),
    }
}

fn failure_for(call: Call, arn: &str, rng: &mut Rng) -> Failure {
    let service = call.event_source().split('.').next().unwrap_or("aws");
    match call.event_source() {
        "ec2.amazonaws.com" => Failure {
            code: "Client.UnauthorizedOperation",
            message: format!(
                "You are not authorized to perform this operation. User: {arn} is not authorized to perform: ec2:{} because no identity-based policy allows the ec2:{} action. Encoded authorization failure message: {}",
                call.event_name(),
                call.event_name(),
                rng.chars(ALPHANUMERIC, 180)
            ),
        },
        _ if rng.chance(0.2) => Failure {
            code: "ThrottlingException",
            message: "Rate exceeded".into(),
        },
        _ => Failure {
            code: "AccessDenied",
            message: format!(
                "User: {arn} is not authorized to perform: {service}:{} because no identity-based policy allows the {service}:{} action",
                call.event_name(),
                call.event_name()
            ),
        },
    }
}

fn push_time(out: &mut String, seconds: i64) {
    let time = DateTime::from_timestamp(seconds, 0).unwrap_or_default();
    put!(out, "{}", time.format("%Y-%m-%dT%H:%M:%SZ"));
}

/// Writes one event, its members in the order CloudTrail writes them.
fn write_event(out: &mut String, file: &LogFile<'_>, input: &EventInput<'_>, rng: &mut Rng) {
    let account_id = file.world.accounts[file.account].id;
    let call = input.call;
    let version = if call.is_data_event() { "1.10" } else { "1.09" };
    put!(out, r#"{{"eventVersion":"{version}","userIdentity":"#);
    write_identity(out, &input.actor, account_id);
    out.push_str(r#","eventTime":""#);
    push_time(out, input.time);
    put!(
        out,
        r#"","eventSource":"{}","eventName":"{}","awsRegion":"{}","#,
        call.event_source(),
        call.event_name(),
        file.region
    );

    let (source_ip, agent) = match &input.actor {
        Actor::User {
            source_ip, agent, ..
        } => (*source_ip, *agent),
        Actor::Session { session, agent, .. } => (session.source_ip.as_str(), *agent),
        Actor::Service { host } => (*host, *host),
    };
    put!(
        out,
        r#""sourceIPAddress":"{source_ip}","userAgent":"{agent}","#
    );
    if let Some(failure) = &input.failure {
        out.push_str(r#""errorCode":"#);
        push_json_string(out, failure.code);
        out.push_str(r#","errorMessage":"#);
        push_json_string(out, &failure.message);
        out.push(',');
    }

    let body = CallBody::new(call, file, &input.actor, input.time, rng);
    put!(out, r#""requestParameters":{},"#, body.request);
    let response = match &input.failure {
        Some(_) => "null",
        None => body.response.as_str(),
    };
    put!(out, r#""responseElements":{response},"#);
    if let Some(additional) = &body.additional {
        put!(out, r#""additionalEventData":{additional},"#);
    }
    write_envelope_tail(out, file, input, &body, rng);
}

/// Writes the members after `responseElements`, and closes the event.
fn write_envelope_tail(
    out: &mut String,
    file: &LogFile<'_>,
    input: &EventInput<'_>,
    body: &CallBody,
    rng: &mut Rng,
) {
    let call = input.call;
    let account_id = file.world.accounts[file.account].id;

    out.push_str(r#""requestID":""#);
    if call.event_source() == "s3.amazonaws.com" {
        rng.push_chars(out, HEX_UPPER, 16);
    } else {
        rng.push_uuid(out);
    }
    out.push_str(r#"","eventID":""#);
    rng.push_uuid(out);
    put!(out, r#"","readOnly":{},"#, call.read_only());

    if let Some(resources) = &body.resources {
        put!(out, r#""resources":{resources},"#);
    }

    let category = if call.is_data_event() {
        "Data"
    } else {
        "Management"
    };
    put!(
        out,
        r#""eventType":"AwsApiCall","managementEvent":{},"recipientAccountId":"{account_id}","#,
        !call.is_data_event()
    );

    // Calls an AWS service makes on a principal's behalf carry no TLS details.
    if let Actor::Service { .. } = input.actor {
        out.push_str(r#""sharedEventID":""#);
        rng.push_uuid(out);
        put!(out, r#"","eventCategory":"{category}"}}"#);
        return;
    }
    put!(
        out,
        r#""eventCategory":"{category}","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{}"}}}}"#,
        body.host
    );
}

fn write_identity(out: &mut String, actor: &Actor<'_>, account_id: &str) {
    match actor {
        Actor::User {
            user,
            access_key_id,
            ..
        } => put!(
            out,
            r#"{{"type":"IAMUser","principalId":"{}","arn":"arn:aws:iam::{account_id}:user/{}","accountId":"{account_id}","accessKeyId":"{access_key_id}","userName":"{}"}}"#,
            user.principal_id,
            user.name,
            user.name
        ),
        Actor::Session {
            role_arn,
            role_name,
            role_id,
            kind,
            session,
            ..
        } => {
            put!(
                out,
                r#"{{"type":"AssumedRole","principalId":"{role_id}:{}","arn":"arn:aws:sts::{account_id}:assumed-role/{role_name}/{}","accountId":"{account_id}","accessKeyId":"{}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"{role_id}","arn":"{role_arn}","accountId":"{account_id}","userName":"{role_name}"}},"#,
                session.name,
                session.name,
                session.access_key_id
            );
            if *kind == RoleKind::Pipeline {
                put!(
                    out,
                    r#""webIdFederationData":{{"federatedProvider":"arn:aws:iam::{account_id}:oidc-provider/token.actions.githubusercontent.com","attributes":{{}}}},"#
                );
            } else {
                out.push_str(r#""webIdFederationData":{},"#);
            }
            out.push_str(r#""attributes":{"creationDate":""#);
            push_time(out, session.created);
            let mfa = *kind == RoleKind::SingleSignOn;
            put!(out, r#"","mfaAuthenticated":"{mfa}"}}"#);
            if *kind == RoleKind::Instance {
                out.push_str(r#","ec2RoleDelivery":"2.0""#);
            }
            out.push_str("}}");
        }
        Actor::Service { host } => {
            put!(out, r#"{{"type":"AWSService","invokedBy":"{host}"}}"#);
        }
    }
}

/// Appends `text` as a JSON string, escaped.
fn push_json_string(out: &mut String, text: &str) {
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

/// The call-specific parts of an event, each already JSON.
struct CallBody {
    request: String,
    response: String,
    additional: Option<String>,
    resources: Option<String>,
    host: String,
}

impl CallBody {
    fn new(call: Call, file: &LogFile<'_>, actor: &Actor<'_>, time: i64, rng: &mut Rng) -> Self {
        let mut body = CallBody {
            request: "null".into(),
            response: "null".into(),
            additional: None,
            resources: None,
            host: call.host(file.region),
        };
        let account_id = file.world.accounts[file.account].id;
        let region = file.region;
        match call {
            Call::S3GetObject | Call::S3PutObject => body.fill_s3_object(call, file, rng),
            Call::S3ListBuckets => body.request = r#"{"Host":"s3.amazonaws.com"}"#.into(),
            Call::Ec2DescribeInstances => body.fill_describe_instances(rng),
            Call::Ec2RunInstances => body.fill_run_instances(account_id, region, time, rng),
            Call::KmsDecrypt | Call::KmsGenerateDataKey => {
                body.fill_kms(call, account_id, region, rng);
            }
            Call::StsAssumeRole => body.fill_assume_role(account_id, actor, time, rng),
            Call::IamGetUser | Call::IamCreateUser => {
                let name = format!("svc-{}", rng.chars(HEX_LOWER, 6));
                body.request = format!(r#"{{"userName":"{name}"}}"#);
                if call == Call::IamCreateUser {
                    body.response = format!(
                        r#"{{"user":{{"path":"/","userName":"{name}","userId":"AIDA{}","arn":"arn:aws:iam::{account_id}:user/{name}","createDate":"Mar 3, 2025, 2:14:09 PM"}}}}"#,
                        rng.chars(super::random::BASE32, 17)
                    );
                }
            }
            Call::IamListUsers => body.request = r#"{"maxItems":100}"#.into(),
            Call::IamGetAccessKeyLastUsed => body.fill_key_audit(file.world, rng),
            Call::IamPutRolePolicy => body.fill_put_role_policy(account_id, rng),
            Call::SecretsManagerGetSecretValue => {
                let name = rng.pick(&["prod/orders/db", "prod/stripe/api", "ci/github-token"]);
                body.request = format!(
                    r#"{{"secretId":"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}-{}"}}"#,
                    rng.chars(ALPHANUMERIC, 6)
                );
            }
            Call::SsmGetParameter => {
                let name = rng.pick(&[
                    "/app/orders/feature-flags",
                    "/app/web/api-url",
                    "/shared/ami-id",
                ]);
                body.request = format!(r#"{{"name":"{name}","withDecryption":true}}"#);
            }
            Call::LogsCreateLogStream => body.fill_log_stream(time, rng),
            Call::DynamoDbDescribeTable => {
                let table = rng.pick(&["orders", "sessions", "inventory", "audit-events"]);
                body.request = format!(r#"{{"tableName":"{table}"}}"#);
            }
            Call::EcrGetAuthorizationToken => {
                body.request = format!(r#"{{"registryIds":["{account_id}"]}}"#);
            }
            Call::LambdaGetFunction => {
                let name = rng.pick(&["orders-processor", "thumbnail-resizer", "invoice-mailer"]);
                body.request = format!(r#"{{"functionName":"{name}"}}"#);
            }
            Call::CloudWatchGetMetricData => body.fill_metric_data(time, rng),
            Call::StsGetCallerIdentity => {}
        }
        body
    }

    fn fill_s3_object(&mut self, call: Call, file: &LogFile<'_>, rng: &mut Rng) {
        let account_id = file.world.accounts[file.account].id;
        let bucket_kind = rng.pick(&["artifacts", "orders-archive", "static-assets", "data-lake"]);
        let bucket = format!("{bucket_kind}-{account_id}-{}", file.region);
        let key = match *bucket_kind {
            "artifacts" => format!(
                "builds/{}/app-{}.zip",
                rng.chars(HEX_LOWER, 12),
                rng.below(900)
            ),
            "static-assets" => format!("images/{}.webp", rng.chars(HEX_LOWER, 20)),
            _ => {
                let mut key = String::from("raw/year=2025/month=03/");
                rng.push_uuid(&mut key);
                key.push_str(".json");
                key
            }
        };
        self.host = format!("{bucket}.s3.{}.amazonaws.com", file.region);
        self.request = format!(
            r#"{{"bucketName":"{bucket}","Host":"{}","key":"{key}"{}}}"#,
            self.host,
            if call == Call::S3PutObject {
                r#","x-amz-server-side-encryption":"aws:kms""#
            } else {
                ""
            }
        );
        if call == Call::S3PutObject {
            self.response = r#"{"x-amz-server-side-encryption":"aws:kms","x-amz-server-side-encryption-bucket-key-enabled":"true"}"#.into();
        }
        let (bytes_in, bytes_out) = match call {
            Call::S3PutObject => (rng.below(5_000_000), 0),
            _ => (0, rng.below(2_000_000)),
        };
        self.additional = Some(format!(
            r#"{{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":{bytes_in},"AuthenticationMethod":"AuthHeader","x-amz-id-2":"{}","bytesTransferredOut":{bytes_out}}}"#,
            rng.chars(BASE64, 76)
        ));
        self.resources = Some(format!(
            r#"[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::{bucket}/{key}"}},{{"accountId":"{account_id}","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::{bucket}"}}]"#
        ));
    }

    fn fill_describe_instances(&mut self, rng: &mut Rng) {
        self.request = if rng.chance(0.5) {
            format!(
                r#"{{"instancesSet":{{"items":[{{"instanceId":"i-0{}"}}]}},"filterSet":{{}},"includeAllInstances":false}}"#,
                rng.chars(HEX_LOWER, 16)
            )
        } else {
            r#"{"instancesSet":{},"filterSet":{"items":[{"name":"tag:Environment","valueSet":{"items":[{"value":"production"}]}},{"name":"instance-state-name","valueSet":{"items":[{"value":"running"}]}}]}}"#.into()
        };
    }

    fn fill_run_instances(&mut self, account_id: &str, region: &str, time: i64, rng: &mut Rng) {
        let instance = format!("i-0{}", rng.chars(HEX_LOWER, 16));
        let subnet = format!("subnet-0{}", rng.chars(HEX_LOWER, 16));
        let group = format!("sg-0{}", rng.chars(HEX_LOWER, 16));
        let mut reservation = String::new();
        rng.push_uuid(&mut reservation);
        self.request = format!(
            r#"{{"instancesSet":{{"items":[{{"imageId":"ami-0{}","minCount":1,"maxCount":1}}]}},"instanceType":"m7i.large","blockDeviceMapping":{{}},"monitoring":{{"enabled":false}},"subnetId":"{subnet}","disableApiTermination":false,"disableApiStop":false,"clientToken":"{reservation}","tagSpecificationSet":{{"items":[{{"resourceType":"instance","tags":[{{"key":"Name","value":"batch-{}"}}]}}]}}}}"#,
            rng.chars(HEX_LOWER, 16),
            rng.below(1000)
        );
        let mut response = String::new();
        put!(
            response,
            r#"{{"requestId":"{reservation}","reservationId":"r-0{}","ownerId":"{account_id}","groupSet":{{}},"instancesSet":{{"items":[{{"instanceId":"{instance}","imageId":"ami-0{}","currentInstanceBootMode":"uefi","instanceState":{{"code":0,"name":"pending"}},"privateDnsName":"ip-10-0-{}-{}.{region}.compute.internal","amiLaunchIndex":0,"productCodes":{{}},"instanceType":"m7i.large","launchTime":"#,
            rng.chars(HEX_LOWER, 16),
            rng.chars(HEX_LOWER, 16),
            rng.below(255),
            rng.below(255)
        );
        put!(response, "{time}000");
        put!(
            response,
            r#","placement":{{"availabilityZone":"{region}a","tenancy":"default"}},"monitoring":{{"state":"disabled"}},"subnetId":"{subnet}","vpcId":"vpc-0{}","privateIpAddress":"10.0.{}.{}","stateReason":{{"code":"pending","message":"pending"}},"architecture":"x86_64","rootDeviceType":"ebs","rootDeviceName":"/dev/xvda","blockDeviceMapping":{{}},"virtualizationType":"hvm","hypervisor":"xen","tagSet":{{"items":[{{"key":"Name","value":"batch"}}]}},"groupSet":{{"items":[{{"groupId":"{group}","groupName":"batch-workers"}}]}},"sourceDestCheck":true,"networkInterfaceSet":{{"items":[{{"networkInterfaceId":"eni-0{}","subnetId":"{subnet}","ownerId":"{account_id}","status":"in-use","privateIpAddress":"10.0.3.17","sourceDestCheck":true,"interfaceType":"interface","groupSet":{{"items":[{{"groupId":"{group}","groupName":"batch-workers"}}]}},"attachment":{{"attachmentId":"eni-attach-0{}","deviceIndex":0,"networkCardIndex":0,"status":"attaching","deleteOnTermination":true}}}}]}},"ebsOptimized":true,"enaSupport":true,"cpuOptions":{{"coreCount":1,"threadsPerCore":2}},"capacityReservationSpecification":{{"capacityReservationPreference":"open"}},"enclaveOptions":{{"enabled":false}},"metadataOptions":{{"state":"pending","httpTokens":"required","httpPutResponseHopLimit":2,"httpEndpoint":"enabled"}},"maintenanceOptions":{{"autoRecovery":"default"}}}}]}}}}"#,
            rng.chars(HEX_LOWER, 8),
            rng.below(255),
            rng.below(255),
            rng.chars(HEX_LOWER, 16),
            rng.chars(HEX_LOWER, 16)
        );
        self.response = response;
    }

    fn fill_kms(&mut self, call: Call, account_id: &str, region: &str, rng: &mut Rng) {
        let mut key_id = String::new();
        rng.push_uuid(&mut key_id);
        let key_arn = format!("arn:aws:kms:{region}:{account_id}:key/{key_id}");
        let context = format!(
            r#"{{"aws:s3:arn":"arn:aws:s3:::orders-archive-{account_id}-{region}/raw/{}"}}"#,
            rng.chars(HEX_LOWER, 24)
        );
        self.request = if call == Call::KmsDecrypt {
            format!(
                r#"{{"encryptionContext":{context},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}}"#
            )
        } else {
            format!(r#"{{"keyId":"{key_arn}","encryptionContext":{context},"keySpec":"AES_256"}}"#)
        };
        self.resources = Some(format!(
            r#"[{{"accountId":"{account_id}","type":"AWS::KMS::Key","ARN":"{key_arn}"}}]"#
        ));
    }

    fn fill_assume_role(&mut self, account_id: &str, actor: &Actor<'_>, time: i64, rng: &mut Rng) {
        // EC2 assumes instance roles for instances and Lambda execution roles for
        // functions, and the session is named after the caller.
        let (role, session) = match actor {
            Actor::Service { host } if host.starts_with("ec2") => {
                let role = *rng.pick(&["web-frontend-ec2", "batch-worker-ec2"]);
                (role, format!("i-0{}", rng.chars(HEX_LOWER, 16)))
            }
            Actor::Service { host } if host.starts_with("s3") => {
                ("s3-replication", "s3-replication".to_string())
            }
            _ => {
                let role = *rng.pick(&["orders-processor", "thumbnail-resizer", "invoice-mailer"]);
                (role, role.to_string())
            }
        };
        let role_id = format!("AROA{}", rng.chars(super::random::BASE32, 17));
        self.request = format!(
            r#"{{"roleArn":"arn:aws:iam::{account_id}:role/{role}","roleSessionName":"{session}","durationSeconds":3600}}"#
        );
        let expiration = DateTime::from_timestamp(time + 3600, 0).unwrap_or_default();
        self.response = format!(
            r#"{{"credentials":{{"accessKeyId":"ASIA{}","sessionToken":"IQoJb3JpZ2luX2VjE{}","expiration":"{}"}},"assumedRoleUser":{{"assumedRoleId":"{role_id}:{session}","arn":"arn:aws:sts::{account_id}:assumed-role/{role}/{session}"}}}}"#,
            rng.chars(super::random::BASE32, 16),
            rng.chars(BASE64, 380),
            expiration.format("%b %-d, %Y, %-I:%M:%S %p")
        );
    }

    /// Writes a key audit request for one key's last use. The searched key is one of them.
    fn fill_key_audit(&mut self, world: &World, rng: &mut Rng) {
        let key = if rng.chance(0.1) {
            world.target_access_key_id()
        } else {
            rng.pick(&world.all_access_key_ids).as_str()
        };
        self.request = format!(r#"{{"accessKeyId":"{key}"}}"#);
    }

    fn fill_put_role_policy(&mut self, account_id: &str, rng: &mut Rng) {
        let bucket = format!("artifacts-{account_id}");
        let document = format!(
            "{{\n    \"Version\": \"2012-10-17\",\n    \"Statement\": [\n        {{\n            \"Effect\": \"Allow\",\n            \"Action\": [\"s3:GetObject\", \"s3:PutObject\"],\n            \"Resource\": \"arn:aws:s3:::{bucket}/*\"\n        }}\n    ]\n}}"
        );
        let mut request = format!(
            r#"{{"roleName":"orders-processor","policyName":"artifacts-{}","policyDocument":"#,
            rng.chars(HEX_LOWER, 4)
        );
        push_json_string(&mut request, &document);
        request.push('}');
        self.request = request;
    }

    fn fill_log_stream(&mut self, time: i64, rng: &mut Rng) {
        let function = rng.pick(&["orders-processor", "thumbnail-resizer", "invoice-mailer"]);
        let day = DateTime::from_timestamp(time, 0).unwrap_or_default();
        self.request = format!(
            r#"{{"logGroupName":"/aws/lambda/{function}","logStreamName":"{}/[$LATEST]{}"}}"#,
            day.format("%Y/%m/%d"),
            rng.chars(HEX_LOWER, 32)
        );
    }

    fn fill_metric_data(&mut self, time: i64, rng: &mut Rng) {
        let mut request = String::from(r#"{"metricDataQueries":["#);
        let queries = 1 + rng.below(4);
        for index in 0..queries {
            if index > 0 {
                request.push(',');
            }
            let metric = rng.pick(&["CPUUtilization", "NetworkIn", "Invocations", "Errors"]);
            put!(
                request,
                r#"{{"id":"m{index}","metricStat":{{"metric":{{"namespace":"AWS/EC2","metricName":"{metric}","dimensions":[{{"name":"AutoScalingGroupName","value":"web-frontend"}}]}},"period":60,"stat":"Average"}},"returnData":true}}"#
            );
        }
        let end = DateTime::from_timestamp(time, 0).unwrap_or_default();
        let start = DateTime::from_timestamp(time - 3 * 3600, 0).unwrap_or_default();
        put!(
            request,
            r#"],"startTime":"{}","endTime":"{}"}}"#,
            start.format("%b %-d, %Y, %-I:%M:%S %p"),
            end.format("%b %-d, %Y, %-I:%M:%S %p")
        );
        self.request = request;
    }
}
