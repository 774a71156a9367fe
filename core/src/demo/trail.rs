//! CloudTrail records of the demonstration incident: who calls (`Caller`), what they call
//! (`Call`), the record CloudTrail writes for it (`Record`), and the log files that hold
//! the records.
//!
//! Records carry CloudTrail's fields in CloudTrail's order. They leave out secret access
//! keys, as CloudTrail does. They also leave out session tokens, which CloudTrail records
//! in full, because a token has no place in a repository.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::Phase;
use super::ids;
use super::story::{self, ACCOUNT, User};

/// One CloudTrail record, serialized with CloudTrail's field names.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Record {
    event_version: &'static str,
    user_identity: Value,
    event_time: String,
    event_source: String,
    event_name: &'static str,
    aws_region: &'static str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'static str,
    user_agent: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
    /// Written as `null` when absent, as CloudTrail does.
    request_parameters: Option<Value>,
    /// Written as `null` when absent, as CloudTrail does.
    response_elements: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_event_data: Option<Value>,
    #[serde(rename = "requestID")]
    request_id: String,
    #[serde(rename = "eventID")]
    event_id: String,
    read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Value>,
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'static str,
    #[serde(rename = "sharedEventID", skip_serializing_if = "Option::is_none")]
    shared_event_id: Option<String>,
    event_category: &'static str,
    tls_details: Value,

    /// The event time, for sorting and grouping into files.
    #[serde(skip)]
    pub time: DateTime<Utc>,
    /// The part of the story the record belongs to, for the tests.
    #[serde(skip)]
    pub phase: Phase,
}

impl Record {
    /// Returns the access key ID in `userIdentity`, if any.
    pub fn access_key_id(&self) -> Option<&str> {
        self.user_identity.get("accessKeyId")?.as_str()
    }

    /// Returns the user agent.
    pub fn user_agent(&self) -> &str {
        self.user_agent
    }

    /// Returns the error code, for a failed call.
    #[cfg(test)]
    pub fn error_code(&self) -> Option<&str> {
        self.error_code
    }
}

/// The principal that makes a call: its `userIdentity` element, address and user agent.
#[derive(Clone, Debug)]
pub(super) struct Caller {
    identity: Value,
    /// The ARN that denial messages name.
    arn: String,
    source_ip: &'static str,
    user_agent: &'static str,
    /// The account whose trail records the call.
    recipient: &'static str,
}

impl Caller {
    /// Creates an IAM user calling with one of its long-term keys.
    pub fn user_key(user: User, key: String, source_ip: &'static str, user_agent: &'static str) -> Caller {
        Caller {
            identity: json!({
                "type": "IAMUser",
                "principalId": user.user_id(),
                "arn": user.arn(),
                "accountId": ACCOUNT,
                "accessKeyId": key,
                "userName": user.name,
            }),
            arn: user.arn(),
            source_ip,
            user_agent,
            recipient: ACCOUNT,
        }
    }

    /// Creates an IAM user calling with session credentials from `sts:GetSessionToken`,
    /// which CloudTrail records as the user with a session context and no session issuer.
    pub fn user_session(
        user: User,
        key: String,
        issued: DateTime<Utc>,
        source_ip: &'static str,
        user_agent: &'static str,
    ) -> Caller {
        Caller {
            identity: json!({
                "type": "IAMUser",
                "principalId": user.user_id(),
                "arn": user.arn(),
                "accountId": ACCOUNT,
                "accessKeyId": key,
                "userName": user.name,
                "sessionContext": {
                    "attributes": {"creationDate": story::iso(issued), "mfaAuthenticated": "false"}
                },
            }),
            arn: user.arn(),
            source_ip,
            user_agent,
            recipient: ACCOUNT,
        }
    }

    /// Creates a session of the production deploy role, recorded in the production account.
    pub fn deploy_role_session(
        session_name: &str,
        key: String,
        issued: DateTime<Utc>,
        source_ip: &'static str,
        user_agent: &'static str,
    ) -> Caller {
        let arn = format!(
            "arn:aws:sts::{}:assumed-role/{}/{session_name}",
            story::PRODUCTION_ACCOUNT,
            story::DEPLOY_ROLE
        );
        Caller {
            identity: json!({
                "type": "AssumedRole",
                "principalId": format!("{}:{session_name}", story::deploy_role_id()),
                "arn": arn,
                "accountId": story::PRODUCTION_ACCOUNT,
                "accessKeyId": key,
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": story::deploy_role_id(),
                        "arn": story::deploy_role_arn(),
                        "accountId": story::PRODUCTION_ACCOUNT,
                        "userName": story::DEPLOY_ROLE,
                    },
                    "attributes": {"creationDate": story::iso(issued), "mfaAuthenticated": "false"},
                },
            }),
            arn,
            source_ip,
            user_agent,
            recipient: story::PRODUCTION_ACCOUNT,
        }
    }

    /// Creates a user of the story's account as the account that owns the assumed role
    /// records it, with only the caller's account and principal ID.
    pub fn from_other_account(
        user: User,
        source_ip: &'static str,
        user_agent: &'static str,
        recipient: &'static str,
    ) -> Caller {
        Caller {
            identity: json!({"type": "AWSAccount", "principalId": user.user_id(), "accountId": ACCOUNT}),
            arn: user.arn(),
            source_ip,
            user_agent,
            recipient,
        }
    }

    /// Returns the message an identity-based denial gives this caller, in the wording the
    /// service's API family uses. An empty `resource` is for actions that take none.
    pub fn denial(&self, service: &str, action: &str, resource: &str) -> String {
        let on_resource = if resource.is_empty() {
            String::new()
        } else {
            format!(" on resource: {resource}")
        };
        let message = format!(
            "User: {} is not authorized to perform: {service}:{action}{on_resource} because no identity-based policy allows the {service}:{action} action",
            self.arn
        );
        match service {
            "ec2" => format!("You are not authorized to perform this operation. {message}"),
            // STS names only the role, as the cross-account step relies on.
            "sts" => format!(
                "User: {} is not authorized to perform: sts:{action} on resource: {resource}",
                self.arn
            ),
            _ => message,
        }
    }
}

/// One API call, to be recorded for a caller.
#[derive(Clone, Debug)]
pub(super) struct Call {
    time: DateTime<Utc>,
    service: &'static str,
    name: &'static str,
    region: &'static str,
    request: Option<Value>,
    response: Option<Value>,
    error: Option<(&'static str, String)>,
    additional: Option<Value>,
    resources: Option<Value>,
    shared_event_id: Option<String>,
}

/// Starts a call of `service:name` in `region` at `time`.
pub(super) fn call(time: DateTime<Utc>, service: &'static str, name: &'static str, region: &'static str) -> Call {
    Call {
        time,
        service,
        name,
        region,
        request: None,
        response: None,
        error: None,
        additional: None,
        resources: None,
        shared_event_id: None,
    }
}

impl Call {
    /// Sets `requestParameters`.
    pub fn request(mut self, parameters: Value) -> Call {
        self.request = Some(parameters);
        self
    }

    /// Sets `responseElements`.
    pub fn response(mut self, elements: Value) -> Call {
        self.response = Some(elements);
        self
    }

    /// Makes the call fail with `code` and `message`.
    pub fn error(mut self, code: &'static str, message: String) -> Call {
        self.error = Some((code, message));
        self
    }

    /// Sets `additionalEventData`.
    pub fn additional(mut self, data: Value) -> Call {
        self.additional = Some(data);
        self
    }

    /// Sets `resources`.
    pub fn resources(mut self, resources: Value) -> Call {
        self.resources = Some(resources);
        self
    }

    /// Sets `sharedEventID`, which the copies of a cross-account event share.
    pub fn shared(mut self, shared_event_id: String) -> Call {
        self.shared_event_id = Some(shared_event_id);
        self
    }

    /// Records the call as `caller` made it.
    pub fn record(self, caller: &Caller, phase: Phase) -> Record {
        let event_time = story::iso(self.time);
        let label = format!(
            "{event_time}/{}/{}/{}/{}",
            self.service, self.name, self.region, caller.recipient
        );
        let host = host_header(self.service, self.region);
        let (error_code, error_message) = match self.error {
            Some((code, message)) => (Some(code), Some(message)),
            None => (None, None),
        };
        Record {
            event_version: if self.service == "sts" { "1.08" } else { "1.09" },
            user_identity: caller.identity.clone(),
            event_time,
            event_source: format!("{}.amazonaws.com", self.service),
            event_name: self.name,
            aws_region: self.region,
            source_ip_address: caller.source_ip,
            user_agent: caller.user_agent,
            error_code,
            error_message,
            request_parameters: self.request,
            response_elements: self.response,
            additional_event_data: self.additional,
            request_id: request_id(self.service, &label),
            event_id: ids::uuid(&format!("event/{label}")),
            read_only: is_read_only(self.name),
            resources: self.resources,
            event_type: "AwsApiCall",
            management_event: true,
            recipient_account_id: caller.recipient,
            shared_event_id: self.shared_event_id,
            event_category: "Management",
            tls_details: json!({
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": host,
            }),
            time: self.time,
            phase,
        }
    }
}

/// Returns whether CloudTrail marks a call read-only: reads, and the STS calls that only
/// return credentials.
fn is_read_only(name: &str) -> bool {
    ["Get", "List", "Describe", "Lookup", "AssumeRole"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Returns the host a client sends the call to: the global endpoints of IAM, and of STS
/// and S3 in us-east-1, else the regional endpoint.
fn host_header(service: &str, region: &str) -> String {
    match (service, region) {
        ("iam", _) | ("sts" | "s3", "us-east-1") => format!("{service}.amazonaws.com"),
        _ => format!("{service}.{region}.amazonaws.com"),
    }
}

/// Returns a request ID in the service's format: 16 uppercase hexadecimal digits for S3,
/// a UUID elsewhere.
fn request_id(service: &str, label: &str) -> String {
    if service == "s3" {
        return ids::hex(&format!("request/{label}"), 16).to_ascii_uppercase();
    }
    ids::uuid(&format!("request/{label}"))
}

/// One CloudTrail log file: its path inside the snapshot and its records.
#[derive(Serialize)]
struct LogFile<'a> {
    #[serde(rename = "Records")]
    records: Vec<&'a Record>,
}

/// Packs records into CloudTrail log files, one per account, region and day, named as
/// CloudTrail names its S3 objects (`111122223333_CloudTrail_eu-west-1_20241114T0000Z_….json`).
///
/// CloudTrail delivers a file about every five minutes per region; one file per day keeps
/// the demonstration at a few dozen files.
pub(super) fn log_files(records: &[Record]) -> Vec<(String, Vec<u8>)> {
    let mut files: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for record in records {
        let day = record.time.format("%Y%m%d");
        let stem = format!(
            "{}_CloudTrail_{}_{day}T0000Z",
            record.recipient_account_id, record.aws_region
        );
        files.entry(stem).or_default().push(record);
    }

    files
        .into_iter()
        .map(|(stem, mut records)| {
            records.sort_by_key(|r| r.time);
            let suffix = ids::alphanumeric(&format!("log/{stem}"), 16);
            let bytes = serde_json::to_vec(&LogFile { records }).expect("CloudTrail records serialize");
            (format!("cloudtrail/{stem}_{suffix}.json"), bytes)
        })
        .collect()
}
