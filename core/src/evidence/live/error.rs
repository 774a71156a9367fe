//! The one place that turns AWS SDK errors into `EvidenceError::Aws`: the operation, the
//! IAM permission it needs, the value it was about, and the class of failure.
//!
//! The error codes are those the AWS services return. Throttling codes match the list the
//! SDK's own retry classifier uses (`aws_runtime::retries::classifiers::THROTTLING_ERRORS`),
//! so a call counted as throttled here is one the SDK already retried.

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::operations::Operation;
use crate::cloudtrail::ACCESS_DENIED_ERROR_CODES;
use crate::evidence::{AwsErrorKind, EvidenceError};

/// Error codes of requests that AWS throttled.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes of credentials that AWS rejected, reported as access denied because the
/// fix is the same: give keycheck working credentials with the permission.
const REJECTED_CREDENTIAL_CODES: &[&str] = &[
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
];

/// Error codes of a missing resource: a user, a policy, a log group.
const NOT_FOUND_CODES: &[&str] = &[
    "NoSuchEntity",
    "NoSuchEntityException",
    "ResourceNotFoundException",
    "ResourceNotFound",
    "NotFoundException",
    "TrailNotFoundException",
];

/// Error codes of a service that the account has not enabled or subscribed to, such as
/// Security Hub's `InvalidAccessException` ("Account … is not subscribed to AWS Security Hub").
const NOT_ENABLED_CODES: &[&str] = &[
    "InvalidAccessException",
    "SubscriptionRequiredException",
    "OptInRequired",
];

/// The reason given when the SDK found no credentials to sign a request with. The SDK's
/// own text lists every provider it tried, over many lines, in every step's report.
const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or configure [aws] profile";

/// Error codes of a request that timed out on the service side.
const TIMEOUT_CODES: &[&str] = &["RequestTimeout", "RequestTimeoutException"];

/// Returns the class of an AWS error code, or `None` for a code not listed here.
pub(crate) fn code_kind(code: &str) -> Option<AwsErrorKind> {
    let code = code.rsplit('.').next().unwrap_or(code);
    if THROTTLING_CODES.contains(&code) {
        Some(AwsErrorKind::Throttled)
    } else if ACCESS_DENIED_ERROR_CODES.contains(&code) || REJECTED_CREDENTIAL_CODES.contains(&code)
    {
        Some(AwsErrorKind::AccessDenied)
    } else if NOT_FOUND_CODES.contains(&code) {
        Some(AwsErrorKind::NotFound)
    } else if NOT_ENABLED_CODES.contains(&code) {
        Some(AwsErrorKind::NotEnabled)
    } else if TIMEOUT_CODES.contains(&code) {
        Some(AwsErrorKind::Timeout)
    } else {
        None
    }
}

/// Returns the class of an HTTP status that came without a known error code.
fn status_kind(status: u16) -> AwsErrorKind {
    match status {
        429 => AwsErrorKind::Throttled,
        401 | 403 => AwsErrorKind::AccessDenied,
        404 => AwsErrorKind::NotFound,
        408 | 504 => AwsErrorKind::Timeout,
        _ => AwsErrorKind::Other,
    }
}

/// Builds the `EvidenceError` of a failed call of `operation` about `target`, such as a
/// user name, key ID or log group.
pub(crate) fn aws_error<E>(
    operation: &Operation,
    target: &str,
    error: &SdkError<E, HttpResponse>,
) -> EvidenceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, reason) = classify(error);
    tracing::debug!(
        operation = %operation.id(),
        target,
        kind = ?kind,
        error = %DisplayErrorContext(error),
        "AWS call failed"
    );
    EvidenceError::Aws {
        operation: operation.id(),
        permission: operation.action.to_string(),
        target: target.to_string(),
        kind,
        reason,
    }
}

/// Builds the error of an operation that failed without an SDK error, such as a Logs
/// Insights query that ended `Failed` or a wait that ran out.
pub(crate) fn failure(
    operation: &Operation,
    target: &str,
    kind: AwsErrorKind,
    reason: impl Into<String>,
) -> EvidenceError {
    EvidenceError::Aws {
        operation: operation.id(),
        permission: operation.action.to_string(),
        target: target.to_string(),
        kind,
        reason: reason.into(),
    }
}

/// Returns true when an error is an AWS error of this kind.
pub(crate) fn is_kind(error: &EvidenceError, wanted: AwsErrorKind) -> bool {
    matches!(error, EvidenceError::Aws { kind, .. } if *kind == wanted)
}

/// Returns true when the SDK error means the resource does not exist.
pub(crate) fn is_not_found<E>(error: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify(error).0 == AwsErrorKind::NotFound
}

fn classify<E>(error: &SdkError<E, HttpResponse>) -> (AwsErrorKind, String)
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if credentials_not_loaded(error) {
        return (AwsErrorKind::Other, NO_CREDENTIALS.to_string());
    }
    match error {
        SdkError::TimeoutError(_) => (
            AwsErrorKind::Timeout,
            "timed out (the call or one attempt ran past its timeout)".to_string(),
        ),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => (
            AwsErrorKind::Timeout,
            "timed out connecting to AWS".to_string(),
        ),
        SdkError::DispatchFailure(_) => (
            AwsErrorKind::Other,
            format!(
                "no response from the endpoint: {}",
                DisplayErrorContext(error)
            ),
        ),
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => service_failure(error),
        _ => (AwsErrorKind::Other, DisplayErrorContext(error).to_string()),
    }
}

/// Returns true when the error, or an error it wraps, is the SDK's "credentials not
/// loaded": every provider of the credential chain came back empty.
fn credentials_not_loaded(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(CredentialsError::CredentialsNotLoaded(_)) = error.downcast_ref::<CredentialsError>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// Classifies an error that AWS returned, by its error code, else by its HTTP status.
fn service_failure<E>(error: &SdkError<E, HttpResponse>) -> (AwsErrorKind, String)
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    let code = error.code();
    let kind = code
        .and_then(code_kind)
        .or_else(|| status.map(status_kind))
        .unwrap_or(AwsErrorKind::Other);

    let label = match kind {
        AwsErrorKind::AccessDenied => "access denied",
        AwsErrorKind::Throttled => "throttled by AWS after the SDK's retries",
        AwsErrorKind::Timeout => "timed out",
        AwsErrorKind::NotFound => "not found",
        AwsErrorKind::NotEnabled => "the service is not enabled in this account and region",
        AwsErrorKind::Other => "failed",
    };
    let detail = match (code, error.message()) {
        (Some(code), Some(message)) => format!("{code}: {}", first_line(message)),
        (Some(code), None) => code.to_string(),
        (None, Some(message)) => first_line(message).to_string(),
        (None, None) => match status {
            Some(status) => format!("HTTP {status}"),
            None => DisplayErrorContext(error).to_string(),
        },
    };
    (kind, format!("{label} ({detail})"))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text).trim()
}

/// Reads the error code of a failed response as each AWS protocol writes it. REST JSON
/// services send the `x-amzn-ErrorType` header, AWS JSON services a `__type` field with an
/// optional `namespace#` prefix, and AWS Query services (IAM, STS) an XML `<Code>` element.
pub(crate) fn response_error_code(header: Option<&str>, body: &[u8]) -> Option<String> {
    if let Some(value) = header {
        let code = value.split(':').next().unwrap_or(value).trim();
        if !code.is_empty() {
            return Some(code.to_string());
        }
    }
    let text = std::str::from_utf8(body).ok()?;
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        let code = ["__type", "code", "Code"]
            .iter()
            .find_map(|name| json.get(*name)?.as_str())?;
        return Some(code.rsplit('#').next().unwrap_or(code).to_string());
    }
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        let cases = [
            ("AccessDenied", AwsErrorKind::AccessDenied),
            ("AccessDeniedException", AwsErrorKind::AccessDenied),
            ("Client.UnauthorizedOperation", AwsErrorKind::AccessDenied),
            ("ExpiredToken", AwsErrorKind::AccessDenied),
            ("Throttling", AwsErrorKind::Throttled),
            ("ThrottlingException", AwsErrorKind::Throttled),
            ("TooManyRequestsException", AwsErrorKind::Throttled),
            ("RequestLimitExceeded", AwsErrorKind::Throttled),
            ("NoSuchEntity", AwsErrorKind::NotFound),
            ("ResourceNotFoundException", AwsErrorKind::NotFound),
            ("InvalidAccessException", AwsErrorKind::NotEnabled),
            ("RequestTimeout", AwsErrorKind::Timeout),
        ];
        for (code, kind) in cases {
            assert_eq!(code_kind(code), Some(kind), "{code}");
        }
        assert_eq!(code_kind("ValidationException"), None);
    }

    #[test]
    fn missing_credentials_named_with_fix() {
        use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
        use aws_smithy_runtime_api::client::result::ConnectorError;

        let not_loaded = CredentialsError::not_loaded("no providers in chain provided credentials");
        let error: SdkError<GetCallerIdentityError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other(Box::new(not_loaded), None));
        let (kind, reason) = classify(&error);
        assert_eq!(kind, AwsErrorKind::Other);
        assert_eq!(reason, NO_CREDENTIALS);

        let refused = ConnectorError::io("connection refused".into());
        let error: SdkError<GetCallerIdentityError, HttpResponse> = SdkError::dispatch_failure(refused);
        let (_, reason) = classify(&error);
        assert!(reason.starts_with("no response from the endpoint"), "{reason}");
    }

    #[test]
    fn response_codes_by_protocol() {
        assert_eq!(
            response_error_code(Some("ThrottlingException:http://internal.amazon.com/"), b"")
                .as_deref(),
            Some("ThrottlingException")
        );
        assert_eq!(
            response_error_code(
                None,
                br#"{"__type":"com.amazonaws.logs#ResourceNotFoundException","message":"x"}"#
            )
            .as_deref(),
            Some("ResourceNotFoundException")
        );
        let xml = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert_eq!(
            response_error_code(None, xml).as_deref(),
            Some("Throttling")
        );
        assert_eq!(response_error_code(None, b"<html>404</html>"), None);
    }
}
