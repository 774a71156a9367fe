//! The one error type whose text reaches chat word for word.
//!
//! A chat handler returns `UserError` for what the person who typed the command can fix
//! (a malformed key ID, a command run where it is not allowed). Every other error is
//! logged with its whole chain and shown in chat only as `internal error (ref …)`, so that
//! no internal detail, path or secret reaches a channel.

use std::fmt;

/// A problem the person in chat can fix, with the text that tells them how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserError(pub String);

impl UserError {
    /// Creates a user error with `text`, which is shown as it is.
    pub fn new(text: impl Into<String>) -> UserError {
        UserError(text.into())
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Logs `error` with its chain under a new reference and returns the chat text for it:
/// `internal error (ref …)`.
pub fn internal_error(error: &anyhow::Error, context: &str) -> String {
    let reference = format!("err-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    tracing::error!(reference = %reference, error = format!("{error:#}"), "{context}");
    format!("internal error (ref {reference})")
}
