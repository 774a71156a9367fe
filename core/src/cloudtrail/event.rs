//! The CloudTrail event model: one record with CloudTrail's own field names, and helpers
//! for what the playbook reads from every event (the access key, the principal, whether
//! the call was denied or made with MFA, the credentials it minted).
//!
//! Reading records out of files and messages is the job of the `read` module. Values are
//! kept as CloudTrail wrote them: key IDs, ARNs and names stay plain strings, however odd,
//! because an event must never be rejected for an unusual value.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::lenient;
use super::source_ip::SourceIp;

/// Error codes that mean the caller lacked permission. A prefix before the last `.`
/// (`Client.UnauthorizedOperation`, `Server.UnauthorizedAccess`) is ignored when matching.
pub const ACCESS_DENIED_ERROR_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "UnauthorizedException",
    "AuthorizationError",
    "AuthorizationErrorException",
    "NotAuthorized",
    "NotAuthorizedException",
    "Forbidden",
    "ForbiddenException",
];

/// Event names whose response carries new temporary credentials in
/// `responseElements.credentials`.
pub const CREDENTIAL_MINTING_EVENTS: &[&str] = &[
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "AssumeRoot",
    "GetSessionToken",
    "GetFederationToken",
];

/// One CloudTrail event. Serializes with CloudTrail's field names, so a serialized event
/// reads back through `read_bytes` unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawEvent")]
pub struct Event {
    /// Version of the event format, such as `1.08`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_version: Option<String>,
    /// When the request was completed, in UTC.
    #[serde(serialize_with = "serialize_event_time")]
    pub event_time: DateTime<Utc>,
    /// The service host name, such as `iam.amazonaws.com`. Empty for Insights events,
    /// which carry it in `insightDetails`.
    pub event_source: String,
    /// The API action, such as `CreateUser`. Empty for Insights events.
    pub event_name: String,
    /// The region the request went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
    /// The caller's address, or the AWS service that called on its behalf.
    #[serde(rename = "sourceIPAddress", skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<SourceIp>,
    /// The caller's user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The principal that made the request. [`IdentityType::Missing`] when the record has
    /// no `userIdentity`.
    #[serde(skip_serializing_if = "UserIdentity::is_missing")]
    pub user_identity: UserIdentity,
    /// The error code when the request failed, such as `AccessDenied`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The error message when the request failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The request parameters, as CloudTrail recorded them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<Value>,
    /// The response elements, as CloudTrail recorded them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_elements: Option<Value>,
    /// Extra data about the request, such as `MFAUsed` for console sign-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Value>,
    /// CloudTrail's unique ID for this event.
    #[serde(rename = "eventID", skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The service's ID for the request.
    #[serde(rename = "requestID", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `AwsApiCall`, `AwsServiceEvent`, `AwsConsoleSignIn`, `AwsCloudTrailInsight`, ….
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Whether the operation only reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// The account that received the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<String>,
    /// Whether this is a management event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_event: Option<bool>,
    /// `Management`, `Data`, `Insight` or `NetworkActivity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_category: Option<String>,
    /// The ID shared by the copies of a cross-account event.
    #[serde(rename = "sharedEventID", skip_serializing_if = "Option::is_none")]
    pub shared_event_id: Option<String>,
    /// The VPC endpoint the request came through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_id: Option<String>,
    /// The account that owns that VPC endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_account_id: Option<String>,
    /// The resources the request touched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    /// The TLS version, cipher suite and host header of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_details: Option<Value>,
    /// `"true"` when the temporary credentials came from a console session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_credential_from_console: Option<String>,
    /// Details of an `AwsServiceEvent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_event_details: Option<Value>,
    /// Details of an Insights event: the unusual API rate or error rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insight_details: Option<Value>,
    /// Corrections CloudTrail added to an event after it was first delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addendum: Option<Value>,
    /// Details of a call from an edge device such as a Snowball.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge_device_details: Option<Value>,
    /// The API version, for services that record it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
}

/// The `userIdentity` element: who made the request and with which credentials.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// The kind of principal.
    #[serde(
        rename = "type",
        default = "IdentityType::untyped",
        deserialize_with = "identity_type_lenient",
        skip_serializing_if = "IdentityType::is_untyped"
    )]
    pub identity_type: IdentityType,
    /// The principal's unique ID (`AIDA…`, or `AROA…:session-name` for a role session).
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub principal_id: Option<String>,
    /// The principal's ARN.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub arn: Option<String>,
    /// The account that owns the principal.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub account_id: Option<String>,
    /// The access key ID that signed the request. Console sessions record it empty.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_key_id: Option<String>,
    /// The IAM user name, for IAM users and some root events.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_name: Option<String>,
    /// The AWS service that made the request on the principal's behalf.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub invoked_by: Option<String>,
    /// The external identity provider, for SAML and web identity federation.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub identity_provider: Option<String>,
    /// The session behind temporary credentials: its issuer, start and MFA state.
    #[serde(
        default,
        deserialize_with = "lenient::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub session_context: Option<SessionContext>,
    /// The IAM Identity Center user a request was made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<Value>,
    /// The ID of the IAM Identity Center bearer token credential.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub credential_id: Option<String>,
    /// The account of the resource a service-linked request acted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_scope_of: Option<Value>,
}

/// The `sessionContext` element of a temporary credential's identity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    /// When the session started and whether it was MFA-authenticated.
    #[serde(
        default,
        deserialize_with = "lenient::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub attributes: Option<SessionAttributes>,
    /// The role or user whose credentials the session came from.
    #[serde(
        default,
        deserialize_with = "lenient::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub session_issuer: Option<SessionIssuer>,
    /// The source identity set when the role was assumed.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_identity: Option<String>,
    /// The web identity provider's data, for `AssumeRoleWithWebIdentity` sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_id_federation_data: Option<Value>,
    /// The EC2 role delivery version (`1.0` or `2.0`, IMDSv1 or IMDSv2) of instance
    /// profile credentials.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub ec2_role_delivery: Option<String>,
    /// `"true"` for a session created by `sts:AssumeRoot`.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub assumed_root: Option<String>,
}

/// The `sessionContext.attributes` element.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes {
    /// When the session's credentials were issued, as written (`2024-01-01T00:00:00Z`).
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub creation_date: Option<String>,
    /// `"true"` or `"false"`, as written.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub mfa_authenticated: Option<String>,
}

/// The `sessionContext.sessionIssuer` element.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    /// `Role`, `IAMUser` or `Root`, as written.
    #[serde(
        rename = "type",
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub identity_type: Option<String>,
    /// The issuer's unique ID.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub principal_id: Option<String>,
    /// The issuer's ARN.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub arn: Option<String>,
    /// The account that owns the issuer.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub account_id: Option<String>,
    /// The role or user name of the issuer.
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_name: Option<String>,
}

/// The `userIdentity.type` of an event. Serializes to and from CloudTrail's strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum IdentityType {
    /// `IAMUser`.
    IamUser,
    /// `AssumedRole`: a role session.
    AssumedRole,
    /// `FederatedUser`: a session from `GetFederationToken`.
    FederatedUser,
    /// `Root`: the account's root user.
    Root,
    /// `AWSService`: an AWS service acting on its own.
    AwsService,
    /// `AWSAccount`: another account, or an anonymous caller.
    AwsAccount,
    /// `IdentityCenterUser`.
    IdentityCenterUser,
    /// `SAMLUser`.
    SamlUser,
    /// `WebIdentityUser`.
    WebIdentityUser,
    /// Any other text, kept as written. Empty when `userIdentity` has no `type`.
    Unknown(String),
    /// The event has no `userIdentity` element.
    #[default]
    Missing,
}

impl IdentityType {
    /// Reads CloudTrail's string for a principal kind, keeping unknown text.
    pub fn from_cloudtrail(text: &str) -> Self {
        match text {
            "IAMUser" => Self::IamUser,
            "AssumedRole" => Self::AssumedRole,
            "FederatedUser" => Self::FederatedUser,
            "Root" => Self::Root,
            "AWSService" => Self::AwsService,
            "AWSAccount" => Self::AwsAccount,
            "IdentityCenterUser" => Self::IdentityCenterUser,
            "SAMLUser" => Self::SamlUser,
            "WebIdentityUser" => Self::WebIdentityUser,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// Returns CloudTrail's string for this kind, or an empty string for
    /// [`IdentityType::Missing`].
    pub fn as_str(&self) -> &str {
        match self {
            Self::IamUser => "IAMUser",
            Self::AssumedRole => "AssumedRole",
            Self::FederatedUser => "FederatedUser",
            Self::Root => "Root",
            Self::AwsService => "AWSService",
            Self::AwsAccount => "AWSAccount",
            Self::IdentityCenterUser => "IdentityCenterUser",
            Self::SamlUser => "SAMLUser",
            Self::WebIdentityUser => "WebIdentityUser",
            Self::Unknown(text) => text,
            Self::Missing => "",
        }
    }

    fn untyped() -> Self {
        Self::Unknown(String::new())
    }

    fn is_untyped(&self) -> bool {
        matches!(self, Self::Unknown(text) if text.is_empty())
    }
}

impl fmt::Display for IdentityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for IdentityType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IdentityType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::from_cloudtrail(&text))
    }
}

fn identity_type_lenient<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<IdentityType, D::Error> {
    let text = lenient::string(deserializer)?;
    Ok(text.map_or_else(IdentityType::untyped, |text| {
        IdentityType::from_cloudtrail(&text)
    }))
}

impl UserIdentity {
    /// Returns `true` when the event had no `userIdentity` element.
    pub fn is_missing(&self) -> bool {
        self.identity_type == IdentityType::Missing
    }

    fn session_issuer(&self) -> Option<&SessionIssuer> {
        self.session_context.as_ref()?.session_issuer.as_ref()
    }
}

impl Event {
    /// Returns the access key ID that signed the request, if any. Console sessions record
    /// an empty string, which counts as none.
    pub fn access_key_id(&self) -> Option<&str> {
        non_empty(self.user_identity.access_key_id.as_deref())
    }

    /// Returns `true` when the request failed: it has an error code or message, or it is a
    /// console sign-in whose response is `Failure` (those carry no error code).
    pub fn is_error(&self) -> bool {
        non_empty(self.error_code.as_deref()).is_some()
            || non_empty(self.error_message.as_deref()).is_some()
            || self.response_string("ConsoleLogin") == Some("Failure")
    }

    /// Returns `true` when the request failed for lack of permission: its error code is one
    /// of [`ACCESS_DENIED_ERROR_CODES`], ignoring a `Client.` style prefix.
    pub fn is_access_denied(&self) -> bool {
        let Some(code) = non_empty(self.error_code.as_deref()) else {
            return false;
        };
        let code = code.rsplit('.').next().unwrap_or(code);
        ACCESS_DENIED_ERROR_CODES.contains(&code)
    }

    /// Returns whether the caller had authenticated with MFA: `additionalEventData.MFAUsed`
    /// for a console sign-in, otherwise `sessionContext.attributes.mfaAuthenticated`. `None`
    /// when the event records neither.
    pub fn mfa_authenticated(&self) -> Option<bool> {
        if self.event_name == "ConsoleLogin"
            && let Some(used) = self.additional_string("MFAUsed")
        {
            match used {
                "Yes" => return Some(true),
                "No" => return Some(false),
                _ => {}
            }
        }
        let attributes = self
            .user_identity
            .session_context
            .as_ref()?
            .attributes
            .as_ref()?;
        match attributes.mfa_authenticated.as_deref()? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// Returns the ARN of the principal that made the request.
    pub fn principal_arn(&self) -> Option<&str> {
        non_empty(self.user_identity.arn.as_deref())
    }

    /// Returns the IAM name behind the request: the user for `IAMUser`, the issuing role or
    /// user (`sessionIssuer.userName`) for `AssumedRole` and `FederatedUser`, otherwise
    /// `userIdentity.userName` when present.
    pub fn user_name(&self) -> Option<&str> {
        let identity = &self.user_identity;
        match identity.identity_type {
            IdentityType::AssumedRole | IdentityType::FederatedUser => {
                non_empty(identity.session_issuer()?.user_name.as_deref())
            }
            _ => non_empty(identity.user_name.as_deref()),
        }
    }

    /// Returns the access key ID of the temporary credentials this request created, for
    /// the calls in [`CREDENTIAL_MINTING_EVENTS`] that succeeded.
    pub fn minted_access_key_id(&self) -> Option<&str> {
        if !CREDENTIAL_MINTING_EVENTS.contains(&self.event_name.as_str()) {
            return None;
        }
        let key_id = self
            .response_elements
            .as_ref()?
            .get("credentials")?
            .get("accessKeyId")?
            .as_str();
        non_empty(key_id)
    }

    /// Returns a top-level string in `requestParameters`, such as `userName` or `roleArn`.
    pub fn request_string(&self, name: &str) -> Option<&str> {
        self.request_parameters.as_ref()?.get(name)?.as_str()
    }

    /// Returns a top-level string in `responseElements`.
    pub fn response_string(&self, name: &str) -> Option<&str> {
        self.response_elements.as_ref()?.get(name)?.as_str()
    }

    /// Returns a top-level string in `additionalEventData`.
    pub fn additional_string(&self, name: &str) -> Option<&str> {
        self.additional_event_data.as_ref()?.get(name)?.as_str()
    }

    /// Formats the call in IAM action style, such as `iam:CreateUser`, with `eventSource`
    /// up to `.amazonaws.com` as the service prefix. Without a source, only the event name.
    ///
    /// NOTE: a few services have an IAM action prefix that differs from their host name
    /// (`monitoring.amazonaws.com` is `cloudwatch:`), and this uses the host name.
    pub fn call_name(&self) -> String {
        let service = self
            .event_source
            .strip_suffix(".amazonaws.com")
            .unwrap_or(&self.event_source);
        if service.is_empty() {
            return self.event_name.clone();
        }
        format!("{service}:{}", self.event_name)
    }

    /// Returns `true` when temporary credentials from a console session signed the request.
    pub fn is_console_session(&self) -> bool {
        self.session_credential_from_console.as_deref() == Some("true")
    }
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.filter(|text| !text.is_empty())
}

fn serialize_event_time<S: Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// The reasons a record yields no event.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EventError {
    #[error("missing eventTime")]
    MissingEventTime,
    #[error("invalid eventTime {0:?}")]
    InvalidEventTime(String),
    #[error("an {0} notification, not a CloudTrail event")]
    Notification(String),
}

/// An event as it arrives, before `eventTime` is checked. Every field is lenient.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawEvent {
    #[serde(default, deserialize_with = "lenient::string")]
    event_version: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    event_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    event_source: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    event_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    aws_region: Option<String>,
    #[serde(
        rename = "sourceIPAddress",
        default,
        deserialize_with = "lenient::string"
    )]
    source_ip_address: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    user_agent: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    user_identity: Option<UserIdentity>,
    #[serde(default, deserialize_with = "lenient::string")]
    error_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    error_message: Option<String>,
    #[serde(default)]
    request_parameters: Option<Value>,
    #[serde(default)]
    response_elements: Option<Value>,
    #[serde(default)]
    additional_event_data: Option<Value>,
    #[serde(rename = "eventID", default, deserialize_with = "lenient::string")]
    event_id: Option<String>,
    #[serde(rename = "requestID", default, deserialize_with = "lenient::string")]
    request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    event_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    read_only: Option<bool>,
    #[serde(default, deserialize_with = "lenient::string")]
    recipient_account_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    management_event: Option<bool>,
    #[serde(default, deserialize_with = "lenient::string")]
    event_category: Option<String>,
    #[serde(
        rename = "sharedEventID",
        default,
        deserialize_with = "lenient::string"
    )]
    shared_event_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    vpc_endpoint_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    vpc_endpoint_account_id: Option<String>,
    #[serde(default)]
    resources: Option<Value>,
    #[serde(default)]
    tls_details: Option<Value>,
    #[serde(default, deserialize_with = "lenient::string")]
    session_credential_from_console: Option<String>,
    #[serde(default)]
    service_event_details: Option<Value>,
    #[serde(default)]
    insight_details: Option<Value>,
    #[serde(default)]
    addendum: Option<Value>,
    #[serde(default)]
    edge_device_details: Option<Value>,
    #[serde(default, deserialize_with = "lenient::string")]
    api_version: Option<String>,
}

impl TryFrom<RawEvent> for Event {
    type Error = EventError;

    fn try_from(raw: RawEvent) -> Result<Self, Self::Error> {
        let Some(time_text) = raw.event_time else {
            return Err(EventError::MissingEventTime);
        };
        let Some(event_time) = lenient::parse_event_time(&time_text) else {
            return Err(EventError::InvalidEventTime(time_text));
        };
        let event_source = raw.event_source.unwrap_or_default();
        // S3, SQS and SNS notifications also come as {"Records":[…]} with an eventTime,
        // but their eventSource is `aws:s3`, `aws:sqs`, …, never a host name.
        if event_source.starts_with("aws:") {
            return Err(EventError::Notification(event_source));
        }

        Ok(Self {
            event_version: raw.event_version,
            event_time,
            event_source,
            event_name: raw.event_name.unwrap_or_default(),
            aws_region: raw.aws_region,
            source_ip_address: raw.source_ip_address.map(SourceIp::new),
            user_agent: raw.user_agent,
            user_identity: raw.user_identity.unwrap_or_default(),
            error_code: raw.error_code,
            error_message: raw.error_message,
            request_parameters: raw.request_parameters,
            response_elements: raw.response_elements,
            additional_event_data: raw.additional_event_data,
            event_id: raw.event_id,
            request_id: raw.request_id,
            event_type: raw.event_type,
            read_only: raw.read_only,
            recipient_account_id: raw.recipient_account_id,
            management_event: raw.management_event,
            event_category: raw.event_category,
            shared_event_id: raw.shared_event_id,
            vpc_endpoint_id: raw.vpc_endpoint_id,
            vpc_endpoint_account_id: raw.vpc_endpoint_account_id,
            resources: raw.resources,
            tls_details: raw.tls_details,
            session_credential_from_console: raw.session_credential_from_console,
            service_event_details: raw.service_event_details,
            insight_details: raw.insight_details,
            addendum: raw.addendum,
            edge_device_details: raw.edge_device_details,
            api_version: raw.api_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudtrail::source_ip::SourceIpKind;
    use serde_json::json;

    fn event(value: Value) -> Event {
        match serde_json::from_value(value.clone()) {
            Ok(event) => event,
            Err(error) => panic!("{error} for {value}"),
        }
    }

    fn minimal(extra: Value) -> Value {
        let mut value = json!({
            "eventVersion": "1.08",
            "eventTime": "2024-01-02T03:04:05Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateUser",
        });
        let (Value::Object(base), Value::Object(extra)) = (&mut value, extra) else {
            panic!("objects expected");
        };
        base.extend(extra);
        value
    }

    #[test]
    fn identity_types_from_cloudtrail_strings() {
        let cases = [
            ("IAMUser", IdentityType::IamUser),
            ("AssumedRole", IdentityType::AssumedRole),
            ("FederatedUser", IdentityType::FederatedUser),
            ("Root", IdentityType::Root),
            ("AWSService", IdentityType::AwsService),
            ("AWSAccount", IdentityType::AwsAccount),
            ("IdentityCenterUser", IdentityType::IdentityCenterUser),
            ("SAMLUser", IdentityType::SamlUser),
            ("WebIdentityUser", IdentityType::WebIdentityUser),
            ("Directory", IdentityType::Unknown("Directory".into())),
        ];
        for (text, expected) in cases {
            let parsed = event(minimal(json!({"userIdentity": {"type": text}})));
            assert_eq!(parsed.user_identity.identity_type, expected, "{text}");
            let written = serde_json::to_value(&parsed).unwrap();
            assert_eq!(written["userIdentity"]["type"], text, "{text}");
        }
    }

    #[test]
    fn identity_missing_and_untyped() {
        let missing = event(minimal(json!({})));
        assert_eq!(missing.user_identity.identity_type, IdentityType::Missing);
        assert!(
            serde_json::to_value(&missing)
                .unwrap()
                .get("userIdentity")
                .is_none()
        );

        let null = event(minimal(json!({"userIdentity": null})));
        assert_eq!(null.user_identity.identity_type, IdentityType::Missing);

        let untyped = event(minimal(json!({"userIdentity": {"principalId": "x"}})));
        assert_eq!(
            untyped.user_identity.identity_type,
            IdentityType::Unknown(String::new())
        );
        assert_eq!(untyped.user_identity.principal_id.as_deref(), Some("x"));
    }

    #[test]
    fn missing_and_invalid_event_time() {
        let error = serde_json::from_value::<Event>(json!({"eventName": "X"})).unwrap_err();
        assert!(error.to_string().contains("missing eventTime"), "{error}");
        let error = serde_json::from_value::<Event>(json!({"eventTime": "soon"})).unwrap_err();
        assert!(
            error.to_string().contains(r#"invalid eventTime "soon""#),
            "{error}"
        );
    }

    #[test]
    fn notification_records_are_rejected() {
        let error = serde_json::from_value::<Event>(json!({
            "eventTime": "2024-01-02T03:04:05Z", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put"
        }))
        .unwrap_err();
        assert!(error.to_string().contains("aws:s3 notification"), "{error}");
    }

    #[test]
    fn odd_values_do_not_reject() {
        let parsed = event(minimal(json!({
            "eventVersion": 1.05,
            "readOnly": "true",
            "managementEvent": "yes",
            "userIdentity": {"type": "IAMUser", "accessKeyId": "", "sessionContext": "odd"},
            "sourceIPAddress": 12,
            "errorCode": {"nested": true},
        })));
        assert_eq!(parsed.event_version.as_deref(), Some("1.05"));
        assert_eq!(parsed.read_only, Some(true));
        assert_eq!(parsed.management_event, None);
        assert_eq!(parsed.user_identity.session_context, None);
        assert_eq!(parsed.access_key_id(), None);
        assert_eq!(parsed.source_ip_address.unwrap().kind, SourceIpKind::Other);
        assert_eq!(parsed.error_code.as_deref(), Some(r#"{"nested":true}"#));
    }

    #[test]
    fn access_key_id_non_empty_only() {
        let with_key = event(minimal(
            json!({"userIdentity": {"type": "IAMUser", "accessKeyId": "EXAMPLE_KEY_ID"}}),
        ));
        assert_eq!(with_key.access_key_id(), Some("EXAMPLE_KEY_ID"));
        let odd = event(minimal(
            json!({"userIdentity": {"type": "Root", "accessKeyId": "ASIA1111111111111"}}),
        ));
        assert_eq!(odd.access_key_id(), Some("ASIA1111111111111"));
        let empty = event(minimal(
            json!({"userIdentity": {"type": "IAMUser", "accessKeyId": ""}}),
        ));
        assert_eq!(empty.access_key_id(), None);
    }

    #[test]
    fn access_denied_codes() {
        for code in [
            "AccessDenied",
            "AccessDeniedException",
            "Client.UnauthorizedOperation",
            "UnauthorizedOperation",
            "Server.UnauthorizedAccess",
            "AuthorizationError",
        ] {
            let denied = event(minimal(json!({"errorCode": code})));
            assert!(denied.is_access_denied(), "{code}");
            assert!(denied.is_error(), "{code}");
        }
        let throttled = event(minimal(json!({"errorCode": "ThrottlingException"})));
        assert!(!throttled.is_access_denied());
        assert!(throttled.is_error());
        let ok = event(minimal(json!({})));
        assert!(!ok.is_access_denied());
        assert!(!ok.is_error());
    }

    #[test]
    fn console_login_failure_is_error() {
        let failed = event(minimal(json!({
            "eventName": "ConsoleLogin",
            "responseElements": {"ConsoleLogin": "Failure"},
        })));
        assert!(failed.is_error());
        assert!(!failed.is_access_denied());
        let message_only = event(minimal(json!({"errorMessage": "Failed authentication"})));
        assert!(message_only.is_error());
    }

    #[test]
    fn mfa_from_session_and_console_login() {
        let session = |flag: &str| {
            event(minimal(json!({"userIdentity": {"type": "AssumedRole",
                "sessionContext": {"attributes": {"mfaAuthenticated": flag}}}})))
        };
        assert_eq!(session("true").mfa_authenticated(), Some(true));
        assert_eq!(session("false").mfa_authenticated(), Some(false));
        assert_eq!(session("").mfa_authenticated(), None);
        assert_eq!(event(minimal(json!({}))).mfa_authenticated(), None);

        let login = |used: &str| {
            event(minimal(json!({"eventName": "ConsoleLogin",
                "additionalEventData": {"MFAUsed": used}})))
        };
        assert_eq!(login("Yes").mfa_authenticated(), Some(true));
        assert_eq!(login("No").mfa_authenticated(), Some(false));
    }

    #[test]
    fn principal_and_user_name() {
        let user = event(minimal(json!({"userIdentity": {"type": "IAMUser",
            "arn": "arn:aws:iam::123456789012:user/Alice", "userName": "Alice"}})));
        assert_eq!(
            user.principal_arn(),
            Some("arn:aws:iam::123456789012:user/Alice")
        );
        assert_eq!(user.user_name(), Some("Alice"));

        let role = event(minimal(json!({"userIdentity": {"type": "AssumedRole",
            "arn": "arn:aws:sts::123456789012:assumed-role/DevRole/Dev1",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "DevRole"}}}})));
        assert_eq!(role.user_name(), Some("DevRole"));

        let service = event(minimal(json!({"userIdentity": {"type": "AWSService",
            "invokedBy": "ec2.amazonaws.com"}})));
        assert_eq!(service.principal_arn(), None);
        assert_eq!(service.user_name(), None);
    }

    #[test]
    fn minted_access_key_id_for_sts_calls() {
        let response = json!({"credentials": {"accessKeyId": "ASIAEXAMPLEMINTED01"}});
        for name in [
            "AssumeRole",
            "GetSessionToken",
            "GetFederationToken",
            "AssumeRoleWithSAML",
        ] {
            let minted = event(minimal(json!({"eventSource": "sts.amazonaws.com",
                "eventName": name, "responseElements": response})));
            assert_eq!(
                minted.minted_access_key_id(),
                Some("ASIAEXAMPLEMINTED01"),
                "{name}"
            );
        }
        let other = event(minimal(json!({"responseElements": response})));
        assert_eq!(other.minted_access_key_id(), None);
        let denied = event(minimal(
            json!({"eventName": "AssumeRole", "responseElements": null}),
        ));
        assert_eq!(denied.minted_access_key_id(), None);
    }

    #[test]
    fn request_string_and_call_name() {
        let created = event(minimal(
            json!({"requestParameters": {"userName": "backdoor", "tags": []}}),
        ));
        assert_eq!(created.request_string("userName"), Some("backdoor"));
        assert_eq!(created.request_string("tags"), None);
        assert_eq!(created.request_string("absent"), None);
        assert_eq!(created.call_name(), "iam:CreateUser");

        let insight = event(json!({"eventTime": "2024-01-02T03:04:05Z"}));
        assert_eq!(insight.call_name(), "");
    }

    #[test]
    fn serialize_uses_cloudtrail_names() {
        let parsed = event(minimal(json!({
            "sourceIPAddress": "035.249.253.232",
            "eventID": "id-1", "requestID": "req-1", "sharedEventID": "shared-1",
            "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAEXAMPLE"},
        })));
        let written = serde_json::to_value(&parsed).unwrap();
        assert_eq!(written["sourceIPAddress"], "035.249.253.232");
        assert_eq!(written["eventID"], "id-1");
        assert_eq!(written["requestID"], "req-1");
        assert_eq!(written["sharedEventID"], "shared-1");
        assert_eq!(written["eventTime"], "2024-01-02T03:04:05Z");
        assert_eq!(written["userIdentity"]["accessKeyId"], "AKIAEXAMPLE");
        assert!(written.get("errorCode").is_none());
        let back: Event = serde_json::from_value(written).unwrap();
        assert_eq!(back, parsed);
    }
}
