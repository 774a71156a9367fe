//! Investigations and their deduplication: a second command or alert for the same access
//! key in the same scope joins the running or recent investigation instead of starting
//! another.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::codec::{Columns, DbTime, StoreRow, clean, clean_opt, saturating_sub, stored_time};
use super::{Store, StoreError, query_failed};
use crate::approval::{Platform, UnknownName, random_token};
use crate::diagnosis::{Severity, Verdict};
use crate::key::AccessKeyId;

const TABLE: &str = "investigations";

/// The columns that [`record_from_row`] reads, in one literal so queries can `concat!` it.
macro_rules! investigation_columns {
    () => {
        "id, key_id, scope, origin, status, verdict, severity, channel, root_message, thread, \
         started_at, updated_at, finished_at"
    };
}

const INSERT_INVESTIGATION: &str = "INSERT INTO investigations \
     (id, key_id, scope, origin, status, verdict, severity, channel, root_message, thread, \
      started_at, updated_at, finished_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

/// Points the claim of a key and scope at a new investigation, unless the current one
/// changed after the cutoff `$5`. The row count is 1 when the claim was taken.
const CLAIM: &str = "INSERT INTO investigation_claims (key_id, scope, investigation_id, active_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (key_id, scope) DO UPDATE \
     SET investigation_id = excluded.investigation_id, active_at = excluded.active_at \
     WHERE investigation_claims.active_at <= $5";

const SELECT_CLAIMED: &str = concat!(
    "SELECT ",
    investigation_columns!(),
    " FROM investigations WHERE id = \
     (SELECT investigation_id FROM investigation_claims WHERE key_id = $1 AND scope = $2)"
);

const SELECT_BY_ID: &str = concat!(
    "SELECT ",
    investigation_columns!(),
    " FROM investigations WHERE id = $1"
);

const UPDATE: &str = "UPDATE investigations SET \
     status = COALESCE($2, status), \
     verdict = COALESCE($3, verdict), \
     severity = COALESCE($4, severity), \
     channel = COALESCE($5, channel), \
     root_message = COALESCE($6, root_message), \
     thread = COALESCE($7, thread), \
     finished_at = COALESCE($8, finished_at), \
     updated_at = $9 \
     WHERE id = $1";

const RELEASE_CLAIM: &str = "DELETE FROM investigation_claims WHERE investigation_id = $1";

const TOUCH_CLAIM: &str = "UPDATE investigation_claims SET active_at = $2 \
     WHERE investigation_id = $1 AND active_at < $2";

/// Area in which a second investigation of the same key joins the first: a Slack
/// workspace and channel, or a whole Discord guild.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    pub platform: Platform,
    /// Slack team (workspace) ID or Discord guild ID.
    pub workspace: String,
    /// The channel within the workspace, or `None` for the whole workspace or guild.
    pub channel: Option<String>,
}

impl Scope {
    /// Returns the scope of one channel in a workspace.
    pub fn channel(platform: Platform, workspace: &str, channel: &str) -> Scope {
        Scope {
            platform,
            workspace: workspace.to_string(),
            channel: Some(channel.to_string()),
        }
    }

    /// Returns the scope of a whole workspace or guild.
    pub fn workspace(platform: Platform, workspace: &str) -> Scope {
        Scope {
            platform,
            workspace: workspace.to_string(),
            channel: None,
        }
    }
}

/// Formats the scope as stored: `slack:T0123/C0456`, or `discord:81384788765712384` for a
/// whole guild.
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.workspace)?;
        if let Some(channel) = &self.channel {
            write!(f, "/{channel}")?;
        }
        Ok(())
    }
}

impl FromStr for Scope {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || UnknownName {
            what: "investigation scope",
            name: text.to_string(),
        };
        let (platform, place) = text.split_once(':').ok_or_else(invalid)?;
        let platform: Platform = platform.parse().map_err(|_| invalid())?;
        let scope = match place.split_once('/') {
            Some((workspace, channel)) => Scope::channel(platform, workspace, channel),
            None => Scope::workspace(platform, place),
        };
        Ok(scope)
    }
}

/// Whether an investigation is still running its playbook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvestigationStatus {
    Running,
    Finished,
}

impl InvestigationStatus {
    /// Returns the name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            InvestigationStatus::Running => "running",
            InvestigationStatus::Finished => "finished",
        }
    }
}

impl FromStr for InvestigationStatus {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "running" => Ok(InvestigationStatus::Running),
            "finished" => Ok(InvestigationStatus::Finished),
            _ => Err(UnknownName {
                what: "investigation status",
                name: text.to_string(),
            }),
        }
    }
}

/// One investigation of an access key, with the chat messages that show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvestigationRecord {
    /// Random ID, 22 URL-safe characters.
    pub id: String,
    pub key_id: AccessKeyId,
    pub scope: Scope,
    /// Trigger of the investigation, such as `command` or `alert`.
    pub origin: String,
    pub status: InvestigationStatus,
    pub verdict: Option<Verdict>,
    pub severity: Option<Severity>,
    /// The channel the root message was posted in.
    pub channel: Option<String>,
    /// Slack `ts` or Discord message ID of the root message.
    pub root_message: Option<String>,
    /// Slack `thread_ts` or Discord thread ID that contains the step replies.
    pub thread: Option<String>,
    pub started_at: DateTime<Utc>,
    /// Time of the last change through [`Store::update_investigation`].
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl InvestigationRecord {
    /// Builds a running investigation with a fresh random ID and no chat messages yet.
    pub fn start(
        key_id: AccessKeyId,
        scope: Scope,
        origin: &str,
        at: DateTime<Utc>,
    ) -> InvestigationRecord {
        InvestigationRecord {
            id: random_token(),
            key_id,
            scope,
            origin: origin.to_string(),
            status: InvestigationStatus::Running,
            verdict: None,
            severity: None,
            channel: None,
            root_message: None,
            thread: None,
            started_at: at,
            updated_at: at,
            finished_at: None,
        }
    }
}

/// Changes to an investigation. Fields left `None` keep their stored value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvestigationUpdate {
    /// The new status. `Finished` also sets the finish time.
    pub status: Option<InvestigationStatus>,
    pub verdict: Option<Verdict>,
    pub severity: Option<Severity>,
    pub channel: Option<String>,
    pub root_message: Option<String>,
    pub thread: Option<String>,
}

/// The result of [`Store::claim_investigation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvestigationClaim {
    /// No investigation of the key was current in the scope, so this one was stored and
    /// should run.
    New(InvestigationRecord),
    /// An investigation of the key started or was updated within the window, so the
    /// caller links to it instead of starting another.
    Existing(InvestigationRecord),
}

impl InvestigationClaim {
    /// Returns the investigation to show, new or existing.
    pub fn record(&self) -> &InvestigationRecord {
        match self {
            InvestigationClaim::New(record) | InvestigationClaim::Existing(record) => record,
        }
    }

    /// Returns whether the claimed investigation is the new one.
    pub fn is_new(&self) -> bool {
        matches!(self, InvestigationClaim::New(_))
    }
}

/// Runs the claim of `$record` inside the open transaction `$tx` and commits it when
/// the claim was taken. Written as a macro so one body serves both backends'
/// transaction types.
macro_rules! claim_in_transaction {
    ($tx:ident, $record:expr, $cutoff:expr, $target:expr) => {{
        let failed = || query_failed("claim_investigation", $target);
        let record = $record;
        sqlx::query(INSERT_INVESTIGATION)
            .bind(&record.id)
            .bind(record.key_id.as_str())
            .bind(record.scope.to_string())
            .bind(&record.origin)
            .bind(record.status.as_str())
            .bind(record.verdict.map(verdict_name))
            .bind(record.severity.map(severity_name))
            .bind(&record.channel)
            .bind(&record.root_message)
            .bind(&record.thread)
            .bind(DbTime::new(record.started_at))
            .bind(DbTime::new(record.updated_at))
            .bind(DbTime::opt(record.finished_at))
            .execute(&mut *$tx)
            .await
            .map_err(failed())?;

        let claimed = sqlx::query(CLAIM)
            .bind(record.key_id.as_str())
            .bind(record.scope.to_string())
            .bind(&record.id)
            .bind(DbTime::new(record.started_at))
            .bind(DbTime::new($cutoff))
            .execute(&mut *$tx)
            .await
            .map_err(failed())?
            .rows_affected()
            == 1;

        let row = if claimed {
            sqlx::query(SELECT_BY_ID)
                .bind(&record.id)
                .fetch_one(&mut *$tx)
                .await
        } else {
            sqlx::query(SELECT_CLAIMED)
                .bind(record.key_id.as_str())
                .bind(record.scope.to_string())
                .fetch_one(&mut *$tx)
                .await
        }
        .map_err(failed())?;
        let stored = record_from_row(&row)?;

        if claimed {
            $tx.commit().await.map_err(failed())?;
            InvestigationClaim::New(stored)
        } else {
            // Drops the unused new investigation.
            $tx.rollback().await.map_err(failed())?;
            InvestigationClaim::Existing(stored)
        }
    }};
}

impl Store {
    /// Stores `record` as the current investigation of its access key in its scope,
    /// unless another one is current, and returns whichever is.
    ///
    /// An investigation stays current until `window` has passed since it last changed
    /// (started, or updated through [`Store::update_investigation`]). The claim is one
    /// transaction, so two replicas that race for the same key get one `New` and one
    /// `Existing` with the same investigation. `record.started_at` is the time of the
    /// claim.
    pub async fn claim_investigation(
        &self,
        record: InvestigationRecord,
        window: Duration,
    ) -> Result<InvestigationClaim, StoreError> {
        let record = cleaned(record);
        let cutoff = saturating_sub(record.started_at, window);
        let target = format!("{} in {}", record.key_id, record.scope);

        let claim = match &self.pool {
            super::Pool::Sqlite(pool) => {
                // IMMEDIATE takes the write lock before the first statement. A deferred
                // transaction that read first could fail with SQLITE_BUSY_SNAPSHOT when
                // another replica writes, an error the busy timeout does not retry.
                let mut tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(query_failed("claim_investigation", &target))?;
                claim_in_transaction!(tx, &record, cutoff, &target)
            }
            super::Pool::Postgres(pool) => {
                let mut tx = pool
                    .begin()
                    .await
                    .map_err(query_failed("claim_investigation", &target))?;
                claim_in_transaction!(tx, &record, cutoff, &target)
            }
        };
        Ok(claim)
    }

    /// Applies `update` to investigation `id` at `at`, and keeps it current for its
    /// dedupe window from `at`. Returns false when no investigation has that ID.
    pub async fn update_investigation(
        &self,
        id: &str,
        update: &InvestigationUpdate,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let target = format!("investigation {id}");
        let finished_at = (update.status == Some(InvestigationStatus::Finished)).then_some(at);

        let updated = with_pool!(self, pool => sqlx::query(UPDATE)
            .bind(id)
            .bind(update.status.map(InvestigationStatus::as_str))
            .bind(update.verdict.map(verdict_name))
            .bind(update.severity.map(severity_name))
            .bind(clean_opt("channel", update.channel.as_deref()))
            .bind(clean_opt("root_message", update.root_message.as_deref()))
            .bind(clean_opt("thread", update.thread.as_deref()))
            .bind(DbTime::opt(finished_at))
            .bind(DbTime::new(at))
            .execute(pool)
            .await
            .map_err(query_failed("update_investigation", &target))?
            .rows_affected()
            == 1);
        if !updated {
            return Ok(false);
        }

        with_pool!(self, pool => {
            sqlx::query(TOUCH_CLAIM)
                .bind(id)
                .bind(DbTime::new(at))
                .execute(pool)
                .await
                .map_err(query_failed("update_investigation", &target))?;
        });
        Ok(true)
    }

    /// Ends the claim that investigation `id` holds on its access key and scope, so the
    /// next claim for them starts a new investigation at once instead of after the
    /// window. Use it when an investigation gave up before posting anything to link to.
    /// The investigation itself stays stored. Returns false when it held no claim, for
    /// instance because a newer investigation had already taken it over.
    pub async fn release_investigation(&self, id: &str) -> Result<bool, StoreError> {
        let released = with_pool!(self, pool => sqlx::query(RELEASE_CLAIM)
            .bind(id)
            .execute(pool)
            .await
            .map_err(query_failed("release_investigation", format!("investigation {id}")))?
            .rows_affected()
            > 0);
        Ok(released)
    }

    /// Returns investigation `id`, or `None` when there is none.
    pub async fn investigation(&self, id: &str) -> Result<Option<InvestigationRecord>, StoreError> {
        let row = with_pool!(self, pool => sqlx::query(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(query_failed("investigation", format!("investigation {id}")))?
            .map(|row| record_from_row(&row))
            .transpose()?);
        Ok(row)
    }
}

/// Returns `record` as it will be stored: texts redacted, times truncated.
fn cleaned(record: InvestigationRecord) -> InvestigationRecord {
    InvestigationRecord {
        origin: clean("origin", &record.origin),
        channel: clean_opt("channel", record.channel.as_deref()),
        root_message: clean_opt("root_message", record.root_message.as_deref()),
        thread: clean_opt("thread", record.thread.as_deref()),
        started_at: stored_time(record.started_at),
        updated_at: stored_time(record.updated_at),
        finished_at: record.finished_at.map(stored_time),
        ..record
    }
}

fn record_from_row<R: StoreRow>(row: &R) -> Result<InvestigationRecord, StoreError> {
    let columns = Columns::new(row, TABLE);
    Ok(InvestigationRecord {
        id: columns.text("id")?,
        key_id: columns.parsed("key_id")?,
        scope: columns.parsed("scope")?,
        origin: columns.text("origin")?,
        status: columns.parsed("status")?,
        verdict: columns.opt_mapped("verdict", parse_verdict)?,
        severity: columns.opt_mapped("severity", parse_severity)?,
        channel: columns.opt_text("channel")?,
        root_message: columns.opt_text("root_message")?,
        thread: columns.opt_text("thread")?,
        started_at: columns.time("started_at")?,
        updated_at: columns.time("updated_at")?,
        finished_at: columns.opt_time("finished_at")?,
    })
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Compromised => "compromised",
        Verdict::Suspicious => "suspicious",
        Verdict::NoEvidence => "no_evidence",
        Verdict::Inconclusive => "inconclusive",
    }
}

fn parse_verdict(name: &str) -> Option<Verdict> {
    [
        Verdict::Compromised,
        Verdict::Suspicious,
        Verdict::NoEvidence,
        Verdict::Inconclusive,
    ]
    .into_iter()
    .find(|verdict| verdict_name(*verdict) == name)
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

fn parse_severity(name: &str) -> Option<Severity> {
    [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ]
    .into_iter()
    .find(|severity| severity_name(*severity) == name)
}
