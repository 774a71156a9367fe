//! The append-only audit log: who requested, approved, rejected or ran which action,
//! which clicks were refused, and what AWS returned.
//!
//! The store has no method that changes or deletes an entry, and database triggers
//! reject `UPDATE` and `DELETE` on the table from any client (and `TRUNCATE` on
//! PostgreSQL).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::codec::{Columns, DbTime, StoreRow, clean, clean_opt};
use super::{Store, StoreError, query_failed};
use crate::approval::{ActionId, Actor, UnknownName};
use crate::key::AccessKeyId;

const TABLE: &str = "audit_log";

const INSERT: &str = "INSERT INTO audit_log \
     (at, investigation_id, action_id, key_id, actor_platform, actor_id, actor_name, event, \
      detail, aws_request_id, result) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

macro_rules! audit_columns {
    () => {
        "at, investigation_id, action_id, key_id, actor_platform, actor_id, actor_name, event, \
         detail, aws_request_id, result"
    };
}

const SELECT_ALL: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit_log ORDER BY at, seq"
);

const SELECT_FOR_KEY: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit_log WHERE key_id = $1 ORDER BY at, seq"
);

/// Kind of event that an audit entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    /// Actions were offered under a diagnosis.
    Offered,
    /// A requester asked for approval.
    Requested,
    /// An approver approved.
    Approved,
    /// An approver or the requester rejected.
    Rejected,
    /// A click was refused, for the reason in the detail.
    Refused,
    /// Someone dismissed the offer.
    Dismissed,
    /// The approval deadline passed.
    Expired,
    /// The action started running against AWS.
    Executing,
    /// The action ran and succeeded.
    Executed,
    /// The action ran and failed.
    Failed,
}

impl AuditEvent {
    const ALL: [AuditEvent; 10] = [
        AuditEvent::Offered,
        AuditEvent::Requested,
        AuditEvent::Approved,
        AuditEvent::Rejected,
        AuditEvent::Refused,
        AuditEvent::Dismissed,
        AuditEvent::Expired,
        AuditEvent::Executing,
        AuditEvent::Executed,
        AuditEvent::Failed,
    ];

    /// Returns the name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Offered => "offered",
            AuditEvent::Requested => "requested",
            AuditEvent::Approved => "approved",
            AuditEvent::Rejected => "rejected",
            AuditEvent::Refused => "refused",
            AuditEvent::Dismissed => "dismissed",
            AuditEvent::Expired => "expired",
            AuditEvent::Executing => "executing",
            AuditEvent::Executed => "executed",
            AuditEvent::Failed => "failed",
        }
    }
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditEvent {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        AuditEvent::ALL
            .into_iter()
            .find(|event| event.as_str() == text)
            .ok_or_else(|| UnknownName {
                what: "audit event",
                name: text.to_string(),
            })
    }
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub investigation_id: Option<String>,
    /// The action the entry is about. A refused click on an unknown ID has none, and its
    /// detail contains the value the button carried.
    pub action_id: Option<ActionId>,
    pub key_id: Option<AccessKeyId>,
    /// User who clicked or ran the command, or keycheck itself for expiry and execution.
    pub actor: Actor,
    pub event: AuditEvent,
    /// Description of the event: the refusal's reason, the plan that ran, the error.
    pub detail: String,
    /// The request ID AWS returned for the call that made the change.
    pub aws_request_id: Option<String>,
    /// The outcome, such as `ok` or the AWS error code.
    pub result: Option<String>,
}

impl Store {
    /// Appends `entry` to the audit log. Texts are redacted before they are written.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let target = format!("{} event", entry.event);
        with_pool!(self, pool => {
            sqlx::query(INSERT)
                .bind(DbTime::new(entry.at))
                .bind(&entry.investigation_id)
                .bind(entry.action_id.as_ref().map(ActionId::as_str))
                .bind(entry.key_id.as_ref().map(AccessKeyId::as_str))
                .bind(entry.actor.platform.as_str())
                .bind(clean("actor_id", &entry.actor.user_id))
                .bind(clean("actor_name", &entry.actor.display_name))
                .bind(entry.event.as_str())
                .bind(clean("detail", &entry.detail))
                .bind(clean_opt("aws_request_id", entry.aws_request_id.as_deref()))
                .bind(clean_opt("result", entry.result.as_deref()))
                .execute(pool)
                .await
                .map_err(query_failed("append_audit", &target))?;
        });
        Ok(())
    }

    /// Returns the audit log, oldest entry first, for one access key or for all. Entries
    /// with the same time keep the order they were appended in.
    pub async fn audit(&self, key_id: Option<&AccessKeyId>) -> Result<Vec<AuditEntry>, StoreError> {
        let target =
            key_id.map_or_else(|| "all keys".to_string(), |key_id| format!("key {key_id}"));
        let entries = with_pool!(self, pool => {
            let query = match key_id {
                Some(key_id) => sqlx::query(SELECT_FOR_KEY).bind(key_id.as_str()),
                None => sqlx::query(SELECT_ALL),
            };
            query
                .fetch_all(pool)
                .await
                .map_err(query_failed("audit", &target))?
                .iter()
                .map(entry_from_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(entries)
    }
}

fn entry_from_row<R: StoreRow>(row: &R) -> Result<AuditEntry, StoreError> {
    let columns = Columns::new(row, TABLE);
    Ok(AuditEntry {
        at: columns.time("at")?,
        investigation_id: columns.opt_text("investigation_id")?,
        action_id: columns.opt_parsed("action_id")?,
        key_id: columns.opt_parsed("key_id")?,
        actor: Actor {
            platform: columns.parsed("actor_platform")?,
            user_id: columns.text("actor_id")?,
            display_name: columns.text("actor_name")?,
        },
        event: columns.parsed("event")?,
        detail: columns.text("detail")?,
        aws_request_id: columns.opt_text("aws_request_id")?,
        result: columns.opt_text("result")?,
    })
}
