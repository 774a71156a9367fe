//! Verification of Slack's request signatures, the only thing that tells a request from
//! Slack apart from a forged one in HTTP mode.
//!
//! Slack signs each request with `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}`
//! under the app's signing secret, in the `X-Slack-Signature` and
//! `X-Slack-Request-Timestamp` headers. [`verify_request`] checks the headers first and
//! reads the body only when they are well formed, so a forged request costs no more than
//! its headers and at most [`MAX_BODY_BYTES`] of body. This module does not parse the body.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::{debug, warn};

/// The header with the signature.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";

/// The header with the request's Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";

/// How old a request may be, in seconds. Slack's documentation recommends five minutes, so
/// that a captured request cannot be replayed later.
pub const MAX_AGE_SECONDS: i64 = 5 * 60;

/// How far in the future a timestamp may be, in seconds, to allow for clock skew between
/// Slack and this host. A later timestamp is rejected, because it would extend the replay
/// window beyond [`MAX_AGE_SECONDS`].
pub const MAX_FUTURE_SECONDS: i64 = 30;

/// The largest body read, in bytes. Slash commands are a few hundred bytes; a message event
/// with attachments and blocks stays well under this.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The signing secret. Its `Debug` output hides the value so that it never reaches a log.
#[derive(Clone)]
pub struct SigningSecret(ring::hmac::Key);

impl SigningSecret {
    /// Creates a signing secret from the value Slack shows on the app's "Basic Information" page.
    pub fn new(secret: &str) -> SigningSecret {
        SigningSecret(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()))
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(…)")
    }
}

/// Why a request was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Slack-Signature header is missing")]
    MissingSignature,
    #[error("the X-Slack-Request-Timestamp header is missing")]
    MissingTimestamp,
    #[error("a signature header appears more than once")]
    RepeatedHeader,
    #[error("the timestamp is not a whole number of seconds")]
    InvalidTimestamp,
    #[error("the timestamp is more than {MAX_AGE_SECONDS} seconds old")]
    Stale,
    #[error("the timestamp is more than {MAX_FUTURE_SECONDS} seconds in the future")]
    Future,
    #[error("the signature is not v0= followed by 64 hex digits")]
    MalformedSignature,
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    #[error("the body could not be read")]
    UnreadableBody,
    #[error("the signature does not match the body")]
    Mismatch,
}

impl SignatureError {
    /// Returns a short label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            SignatureError::MissingSignature => "missing_signature",
            SignatureError::MissingTimestamp => "missing_timestamp",
            SignatureError::RepeatedHeader => "repeated_header",
            SignatureError::InvalidTimestamp => "invalid_timestamp",
            SignatureError::Stale => "stale",
            SignatureError::Future => "future",
            SignatureError::MalformedSignature => "malformed_signature",
            SignatureError::BodyTooLarge => "body_too_large",
            SignatureError::UnreadableBody => "unreadable_body",
            SignatureError::Mismatch => "mismatch",
        }
    }
}

/// The parts of the signature headers, checked for form and age.
#[derive(Debug)]
pub struct SignedHeaders {
    timestamp: String,
    signature: [u8; 32],
}

/// Checks the signature headers of a request received at Unix time `now`, before its body
/// is read.
pub fn check_headers(headers: &HeaderMap, now: i64) -> Result<SignedHeaders, SignatureError> {
    let signature = single_header(headers, SIGNATURE_HEADER, SignatureError::MissingSignature)?;
    let timestamp = single_header(headers, TIMESTAMP_HEADER, SignatureError::MissingTimestamp)?;

    if timestamp.is_empty() || timestamp.len() > 12 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::InvalidTimestamp);
    }
    let seconds: i64 = timestamp.parse().map_err(|_| SignatureError::InvalidTimestamp)?;
    if now - seconds > MAX_AGE_SECONDS {
        return Err(SignatureError::Stale);
    }
    if seconds - now > MAX_FUTURE_SECONDS {
        return Err(SignatureError::Future);
    }

    let hex = signature.strip_prefix("v0=").ok_or(SignatureError::MalformedSignature)?;
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .map_err(|_| SignatureError::MalformedSignature)?;
    let signature: [u8; 32] = bytes.try_into().map_err(|_| SignatureError::MalformedSignature)?;
    Ok(SignedHeaders {
        timestamp: timestamp.to_string(),
        signature,
    })
}

fn single_header<'a>(headers: &'a HeaderMap, name: &str, missing: SignatureError) -> Result<&'a str, SignatureError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(missing)?;
    if values.next().is_some() {
        return Err(SignatureError::RepeatedHeader);
    }
    value.to_str().map(str::trim).map_err(|_| match missing {
        SignatureError::MissingTimestamp => SignatureError::InvalidTimestamp,
        _ => SignatureError::MalformedSignature,
    })
}

/// Checks, in constant time (`ring::hmac::verify`), that `signed` is the signature of
/// `body` under `secret`.
pub fn check_body(secret: &SigningSecret, signed: &SignedHeaders, body: &[u8]) -> Result<(), SignatureError> {
    ring::hmac::verify(&secret.0, &signing_input(&signed.timestamp, body), &signed.signature)
        .map_err(|_| SignatureError::Mismatch)
}

fn signing_input(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(timestamp.len() + body.len() + 4);
    input.extend_from_slice(b"v0:");
    input.extend_from_slice(timestamp.as_bytes());
    input.push(b':');
    input.extend_from_slice(body);
    input
}

/// Returns the `v0=` signature of `body` sent at `timestamp`, as Slack computes it.
pub fn sign(secret: &SigningSecret, timestamp: &str, body: &[u8]) -> String {
    let tag = ring::hmac::sign(&secret.0, &signing_input(timestamp, body));
    format!("v0={}", data_encoding::HEXLOWER.encode(tag.as_ref()))
}

/// Verifies a whole request: headers, then a body of at most [`MAX_BODY_BYTES`], then the
/// HMAC. Returns the body on success.
pub async fn verify_request(
    secret: &SigningSecret,
    headers: &HeaderMap,
    body: Body,
    now: i64,
) -> Result<Bytes, SignatureError> {
    let signed = check_headers(headers, now)?;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(SignatureError::BodyTooLarge);
    }
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|error| {
        let too_large = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large { SignatureError::BodyTooLarge } else { SignatureError::UnreadableBody }
    })?;
    check_body(secret, &signed, &body)?;
    Ok(body)
}

/// Returns the current Unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// State of the verifying middleware: the secret and a count of rejections, so that a
/// flood of forged requests logs one warning per [`REJECTION_LOG_EVERY`] rejections.
#[derive(Debug)]
pub struct Verifier {
    secret: SigningSecret,
    rejected: AtomicU64,
}

/// Every how many rejections a warning is logged; the others are logged at `debug`.
const REJECTION_LOG_EVERY: u64 = 100;

impl Verifier {
    /// Creates a verifier for `secret`.
    pub fn new(secret: SigningSecret) -> Arc<Verifier> {
        Arc::new(Verifier {
            secret,
            rejected: AtomicU64::new(0),
        })
    }

    /// Returns how many requests were rejected since start.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// Axum middleware that answers 401 to any request whose signature does not verify, and
/// passes the others on with their body buffered.
pub async fn require_signature(State(verifier): State<Arc<Verifier>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match verify_request(&verifier.secret, &parts.headers, body, unix_now()).await {
        Ok(body) => next.run(Request::from_parts(parts, Body::from(body))).await,
        Err(error) => {
            let count = verifier.rejected.fetch_add(1, Ordering::Relaxed) + 1;
            crate::metrics::record_rejected_request("slack", error.label());
            if count % REJECTION_LOG_EVERY == 1 {
                warn!(path = %parts.uri.path(), reason = error.label(), rejected_total = count, "rejected a request without a valid Slack signature");
            } else {
                debug!(path = %parts.uri.path(), reason = error.label(), rejected_total = count, "rejected a request without a valid Slack signature");
            }
            (StatusCode::UNAUTHORIZED, "invalid Slack signature\n").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "test-signing-secret";
    const NOW: i64 = 1_700_000_000;

    fn headers(signature: &str, timestamp: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
        headers
    }

    fn verify(signature: &str, timestamp: &str, body: &[u8]) -> Result<(), SignatureError> {
        let secret = SigningSecret::new(SECRET);
        let signed = check_headers(&headers(signature, timestamp), NOW)?;
        check_body(&secret, &signed, body)
    }

    #[test]
    fn signed_request_verifies() {
        let signature = sign(&SigningSecret::new(SECRET), &NOW.to_string(), b"a=b");
        assert_eq!(verify(&signature, &NOW.to_string(), b"a=b"), Ok(()));
    }

    #[test]
    fn uppercase_hex_verifies() {
        let signature = sign(&SigningSecret::new(SECRET), &NOW.to_string(), b"a=b");
        let upper = format!("v0={}", signature[3..].to_uppercase());
        assert_eq!(verify(&upper, &NOW.to_string(), b"a=b"), Ok(()));
    }

    #[test]
    fn each_defect_has_its_error() {
        let secret = SigningSecret::new(SECRET);
        let now = NOW.to_string();
        let good = sign(&secret, &now, b"a=b");
        let stale = (NOW - MAX_AGE_SECONDS - 1).to_string();
        let future = (NOW + MAX_FUTURE_SECONDS + 1).to_string();
        let cases: Vec<(String, String, &[u8], SignatureError)> = vec![
            (good.clone(), now.clone(), b"a=c", SignatureError::Mismatch),
            (sign(&secret, &stale, b"a=b"), stale, b"a=b", SignatureError::Stale),
            (sign(&secret, &future, b"a=b"), future, b"a=b", SignatureError::Future),
            (good.replace("v0=", "v1="), now.clone(), b"a=b", SignatureError::MalformedSignature),
            (good[..good.len() - 2].to_string(), now.clone(), b"a=b", SignatureError::MalformedSignature),
            (good.clone(), "12a".to_string(), b"a=b", SignatureError::InvalidTimestamp),
            (good.clone(), "-5".to_string(), b"a=b", SignatureError::InvalidTimestamp),
        ];
        for (signature, timestamp, body, expected) in cases {
            assert_eq!(verify(&signature, &timestamp, body), Err(expected), "{signature} {timestamp}");
        }
    }

    #[test]
    fn missing_headers_rejected() {
        assert_eq!(check_headers(&HeaderMap::new(), NOW).unwrap_err(), SignatureError::MissingSignature);
        let mut only_signature = HeaderMap::new();
        only_signature.insert(SIGNATURE_HEADER, "v0=00".parse().unwrap());
        assert_eq!(check_headers(&only_signature, NOW).unwrap_err(), SignatureError::MissingTimestamp);
    }

    #[test]
    fn secret_debug_hides_value() {
        assert!(!format!("{:?}", SigningSecret::new(SECRET)).contains(SECRET));
    }
}
