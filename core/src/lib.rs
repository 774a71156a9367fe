//! keycheck-core: the investigation playbook for a leaked AWS access key, the readers for
//! the evidence it runs on, the diagnosis, containment and the chat-neutral rendering.
//!
//! Nothing here knows about Slack or Discord; the `keycheck` binary adapts this crate to
//! each chat platform and to the command line.

pub mod alert;
pub mod approval;
pub mod cloudtrail;
pub mod demo;
pub mod diagnosis;
pub mod evidence;
pub mod geo;
pub mod key;
pub mod playbook;
pub mod redact;
pub mod remediation;
pub mod render;
pub mod report;
pub mod store;
pub mod policy;
pub mod tactics;

pub use key::{AccessKeyId, KeyKind};
