//! Verification of Discord's interaction signatures. On the HTTP interactions endpoint,
//! the signature is the only proof that an interaction comes from Discord.
//!
//! Discord signs each request with the application's Ed25519 key: `X-Signature-Ed25519`
//! is the hex signature of `X-Signature-Timestamp` followed by the body, checked against
//! the public key from the application's General Information page (`DISCORD_PUBLIC_KEY`).
//! [`verify_request`] checks the headers first and reads the body only when they are well
//! formed, so a forged request costs no more than its headers and at most
//! [`MAX_BODY_BYTES`] of body. Discord rejects an endpoint that accepts a bad signature,
//! and probes for it when the endpoint is saved. This module does not parse the body.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ed25519_dalek::{Signature, VerifyingKey};
use tracing::{debug, warn};

/// The header with the hex signature.
pub const SIGNATURE_HEADER: &str = "x-signature-ed25519";

/// The header with the request's Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "x-signature-timestamp";

/// The maximum age of a request, in seconds, so that a captured request cannot be
/// replayed later. Discord documents no window, so this is the five minutes Slack uses
/// for its signed requests. Discord sends an interaction within seconds of its timestamp.
pub const MAX_AGE_SECONDS: i64 = 5 * 60;

/// How far in the future a timestamp may be, in seconds, to allow for clock skew.
pub const MAX_FUTURE_SECONDS: i64 = 30;

/// The largest body read, in bytes. An interaction is a few kilobytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The application's public key.
#[derive(Clone, Debug)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses the key as Discord shows it: 64 hex digits.
    pub fn from_hex(hex: &str) -> anyhow::Result<PublicKey> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.trim().as_bytes())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| anyhow::anyhow!("DISCORD_PUBLIC_KEY is not 64 hex digits: copy the Public Key from the application's General Information page"))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| anyhow::anyhow!("DISCORD_PUBLIC_KEY is not a valid Ed25519 public key: copy the Public Key from the application's General Information page"))?;
        Ok(PublicKey(key))
    }
}

/// The reason a request was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Signature-Ed25519 header is missing")]
    MissingSignature,
    #[error("the X-Signature-Timestamp header is missing")]
    MissingTimestamp,
    #[error("a signature header appears more than once")]
    RepeatedHeader,
    #[error("the timestamp is not a whole number of seconds")]
    InvalidTimestamp,
    #[error("the timestamp is more than {MAX_AGE_SECONDS} seconds old")]
    Stale,
    #[error("the timestamp is more than {MAX_FUTURE_SECONDS} seconds in the future")]
    Future,
    #[error("the signature is not 128 hex digits")]
    MalformedSignature,
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    #[error("the body could not be read")]
    UnreadableBody,
    #[error("the signature does not match the timestamp and body")]
    Mismatch,
}

impl SignatureError {
    /// Returns a short label for logs.
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

/// The signature headers of a request, checked for form and age.
#[derive(Debug)]
pub struct SignedHeaders {
    timestamp: String,
    signature: Signature,
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

    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(signature.as_bytes())
        .map_err(|_| SignatureError::MalformedSignature)?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| SignatureError::MalformedSignature)?;
    Ok(SignedHeaders {
        timestamp: timestamp.to_string(),
        signature: Signature::from_bytes(&bytes),
    })
}

fn single_header<'a>(headers: &'a HeaderMap, name: &str, missing: SignatureError) -> Result<&'a str, SignatureError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(missing)?;
    if values.next().is_some() {
        return Err(SignatureError::RepeatedHeader);
    }
    let value = value.to_str().map(str::trim).map_err(|_| match missing {
        SignatureError::MissingTimestamp => SignatureError::InvalidTimestamp,
        _ => SignatureError::MalformedSignature,
    })?;
    if value.is_empty() {
        return Err(missing);
    }
    Ok(value)
}

/// Checks that `signed` is the signature of its timestamp followed by `body` under `key`.
/// `verify_strict` also rejects signatures that a small-order key or a non-canonical
/// encoding would let an attacker forge.
pub fn check_body(key: &PublicKey, signed: &SignedHeaders, body: &[u8]) -> Result<(), SignatureError> {
    let mut message = Vec::with_capacity(signed.timestamp.len() + body.len());
    message.extend_from_slice(signed.timestamp.as_bytes());
    message.extend_from_slice(body);
    key.0
        .verify_strict(&message, &signed.signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// Verifies a whole request: headers, then a body of at most [`MAX_BODY_BYTES`], then the
/// signature. Returns the body on success.
pub async fn verify_request(key: &PublicKey, headers: &HeaderMap, body: Body, now: i64) -> Result<Bytes, SignatureError> {
    let signed = check_headers(headers, now)?;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(SignatureError::BodyTooLarge);
    }
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|error| {
        let too_large = std::error::Error::source(&error).is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large { SignatureError::BodyTooLarge } else { SignatureError::UnreadableBody }
    })?;
    check_body(key, &signed, &body)?;
    Ok(body)
}

/// State of the verifying middleware: the key and a count of rejections, so that a flood
/// of forged requests logs one warning per [`REJECTION_LOG_EVERY`] rejections.
#[derive(Debug)]
pub struct Verifier {
    key: PublicKey,
    rejected: AtomicU64,
}

/// The number of rejections per logged warning. The rejections in between are logged at
/// `debug`.
const REJECTION_LOG_EVERY: u64 = 100;

impl Verifier {
    /// Creates a verifier for `key`.
    pub fn new(key: PublicKey) -> Arc<Verifier> {
        Arc::new(Verifier {
            key,
            rejected: AtomicU64::new(0),
        })
    }

    /// Returns how many requests were rejected since start.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// Axum middleware that responds 401 to any request whose signature does not verify, and
/// passes the others on with their body buffered.
pub async fn require_signature(State(verifier): State<Arc<Verifier>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match verify_request(&verifier.key, &parts.headers, body, crate::slack::signature::unix_now()).await {
        Ok(body) => next.run(Request::from_parts(parts, Body::from(body))).await,
        Err(error) => {
            let count = verifier.rejected.fetch_add(1, Ordering::Relaxed) + 1;
            crate::metrics::record_rejected_request("discord", error.label());
            if count % REJECTION_LOG_EVERY == 1 {
                warn!(path = %parts.uri.path(), reason = error.label(), rejected_total = count, "rejected an interaction without a valid Discord signature");
            } else {
                debug!(path = %parts.uri.path(), reason = error.label(), rejected_total = count, "rejected an interaction without a valid Discord signature");
            }
            (StatusCode::UNAUTHORIZED, "invalid request signature\n").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const NOW: i64 = 1_700_000_000;

    fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn public_key() -> PublicKey {
        PublicKey::from_hex(&data_encoding::HEXLOWER.encode(signing_key().verifying_key().as_bytes())).unwrap()
    }

    fn headers(signature: &str, timestamp: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
        headers
    }

    fn sign(timestamp: &str, body: &[u8]) -> String {
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        data_encoding::HEXLOWER.encode(&signing_key().sign(&message).to_bytes())
    }

    fn verify(signature: &str, timestamp: &str, body: &[u8]) -> Result<(), SignatureError> {
        let signed = check_headers(&headers(signature, timestamp), NOW)?;
        check_body(&public_key(), &signed, body)
    }

    #[test]
    fn signed_request_verifies() {
        let timestamp = NOW.to_string();
        assert_eq!(verify(&sign(&timestamp, b"{}"), &timestamp, b"{}"), Ok(()));
        assert_eq!(verify(&sign(&timestamp, b"{}").to_uppercase(), &timestamp, b"{}"), Ok(()));
    }

    #[test]
    fn each_defect_has_its_error() {
        let timestamp = NOW.to_string();
        let good = sign(&timestamp, b"{}");
        let old = (NOW - MAX_AGE_SECONDS - 1).to_string();
        let cases = [
            (good.clone(), timestamp.clone(), b"{ }".to_vec(), SignatureError::Mismatch),
            (good[..126].to_string(), timestamp.clone(), b"{}".to_vec(), SignatureError::MalformedSignature),
            ("zz".repeat(64), timestamp.clone(), b"{}".to_vec(), SignatureError::MalformedSignature),
            (sign(&old, b"{}"), old, b"{}".to_vec(), SignatureError::Stale),
            (good.clone(), "17e8".to_string(), b"{}".to_vec(), SignatureError::InvalidTimestamp),
        ];
        for (signature, timestamp, body, expected) in cases {
            assert_eq!(verify(&signature, &timestamp, &body), Err(expected), "{signature} {timestamp}");
        }
    }

    #[test]
    fn public_key_errors_name_the_variable() {
        for bad in ["", "abc", &"g".repeat(64)] {
            let error = PublicKey::from_hex(bad).unwrap_err().to_string();
            assert!(error.contains("DISCORD_PUBLIC_KEY"), "{error}");
        }
    }
}
