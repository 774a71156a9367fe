//! Pending containment actions and their state changes. Each change is a compare-and-set
//! on the stored state, so of two simultaneous clicks, even on two replicas, exactly one
//! proceeds.

use chrono::{DateTime, Utc};

use super::codec::{Columns, DbTime, StoreRow, clean};
use super::{Store, StoreError, query_failed};
use crate::approval::{
    ActionId, ActionState, Actor, ChatChannel, PendingAction, Platform, StateChange,
};

const TABLE: &str = "pending_actions";

/// The columns that [`action_from_row`] reads, in one literal so queries can `concat!` it.
macro_rules! action_columns {
    () => {
        "id, investigation_id, kind, key_id, principal, plan, platform, workspace, channel, \
         state, created_at, updated_at, expires_at, requested_by_id, requested_by_name, \
         requested_at, decided_by_id, decided_by_name, decided_at, closed_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO pending_actions (",
    action_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20)"
);

const SELECT_BY_ID: &str = concat!(
    "SELECT ",
    action_columns!(),
    " FROM pending_actions WHERE id = $1"
);

const SELECT_BY_INVESTIGATION: &str = concat!(
    "SELECT ",
    action_columns!(),
    " FROM pending_actions WHERE investigation_id = $1 ORDER BY created_at, id"
);

/// The compare-and-set: it changes the row only while the state is still `$2`, and for
/// approvals only before the deadline (`$13` = 1), for expiry only after it (`$13` = 2).
/// A NULL parameter keeps the stored value.
const TRANSITION: &str = "UPDATE pending_actions SET \
     state = $3, \
     updated_at = $4, \
     requested_by_id = COALESCE($5, requested_by_id), \
     requested_by_name = COALESCE($6, requested_by_name), \
     requested_at = COALESCE($7, requested_at), \
     decided_by_id = COALESCE($8, decided_by_id), \
     decided_by_name = COALESCE($9, decided_by_name), \
     decided_at = COALESCE($10, decided_at), \
     expires_at = COALESCE($11, expires_at), \
     closed_at = COALESCE($12, closed_at) \
     WHERE id = $1 AND state = $2 AND ( \
         $13 = 0 \
         OR ($13 = 1 AND (expires_at IS NULL OR expires_at > $4)) \
         OR ($13 = 2 AND expires_at <= $4))";

const EXPIRE_OVERDUE: &str = "UPDATE pending_actions \
     SET state = 'expired', updated_at = $1, closed_at = $1 \
     WHERE state = 'requested' AND expires_at <= $1 \
     RETURNING id";

/// How a state change depends on the approval deadline, as `$13` of [`TRANSITION`].
#[derive(Clone, Copy)]
enum DeadlineRule {
    Ignore = 0,
    Before = 1,
    After = 2,
}

impl Store {
    /// Stores a new action and returns it as stored: texts redacted, times truncated to
    /// microseconds. The action is stored in whatever state it has, normally
    /// [`ActionState::Offered`].
    ///
    /// Fails when an action with the same ID exists, or when its investigation does not.
    pub async fn create_action(&self, action: &PendingAction) -> Result<PendingAction, StoreError> {
        let target = format!("action {}", action.id);
        let requested_by = action.requested_by.as_ref();
        let decided_by = action.decided_by.as_ref();

        let stored = with_pool!(self, pool => {
            sqlx::query(INSERT)
                .bind(action.id.as_str())
                .bind(&action.investigation_id)
                .bind(action.kind.as_str())
                .bind(action.key_id.as_str())
                .bind(clean("principal", &action.principal))
                .bind(clean("plan", &action.plan))
                .bind(action.channel.platform.as_str())
                .bind(clean("workspace", &action.channel.workspace))
                .bind(clean("channel", &action.channel.channel))
                .bind(action.state.as_str())
                .bind(DbTime::new(action.created_at))
                .bind(DbTime::new(action.updated_at))
                .bind(DbTime::opt(action.expires_at))
                .bind(requested_by.map(|actor| clean("requested_by_id", &actor.user_id)))
                .bind(requested_by.map(|actor| clean("requested_by_name", &actor.display_name)))
                .bind(DbTime::opt(action.requested_at))
                .bind(decided_by.map(|actor| clean("decided_by_id", &actor.user_id)))
                .bind(decided_by.map(|actor| clean("decided_by_name", &actor.display_name)))
                .bind(DbTime::opt(action.decided_at))
                .bind(DbTime::opt(action.closed_at))
                .execute(pool)
                .await
                .map_err(query_failed("create_action", &target))?;
            sqlx::query(SELECT_BY_ID)
                .bind(action.id.as_str())
                .fetch_one(pool)
                .await
                .map_err(query_failed("create_action", &target))
                .and_then(|row| action_from_row(&row))?
        });
        Ok(stored)
    }

    /// Returns action `id`, or `None` when there is none.
    pub async fn action(&self, id: &ActionId) -> Result<Option<PendingAction>, StoreError> {
        let action = with_pool!(self, pool => sqlx::query(SELECT_BY_ID)
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
            .map_err(query_failed("action", format!("action {id}")))?
            .map(|row| action_from_row(&row))
            .transpose()?);
        Ok(action)
    }

    /// Returns the actions of an investigation, oldest first.
    pub async fn actions_for_investigation(
        &self,
        investigation_id: &str,
    ) -> Result<Vec<PendingAction>, StoreError> {
        let actions = with_pool!(self, pool => sqlx::query(SELECT_BY_INVESTIGATION)
            .bind(investigation_id)
            .fetch_all(pool)
            .await
            .map_err(query_failed("actions_for_investigation", format!("investigation {investigation_id}")))?
            .iter()
            .map(action_from_row)
            .collect::<Result<Vec<_>, _>>()?);
        Ok(actions)
    }

    /// Changes action `id` from `change.from` to `change.to` at `at`, by `actor`, if it is
    /// still in `change.from`. Returns true for the one caller whose change applied, and
    /// false when the action is in another state, does not exist, or fails the deadline
    /// check.
    ///
    /// Approval (to [`ActionState::Approved`] from requested) applies only before the
    /// deadline, and expiry only at or after it. The actor is recorded as the requester
    /// when the action becomes requested, as the approver, rejecter or dismisser when it
    /// becomes approved, rejected or dismissed, and as both for one-click approval.
    ///
    /// Fails with [`StoreError::InvalidTransition`] for a change the state machine does
    /// not have, or a request without a deadline.
    pub async fn transition(
        &self,
        id: &ActionId,
        change: StateChange,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let StateChange {
            from,
            to,
            expires_at,
        } = change;
        let invalid = |reason| StoreError::InvalidTransition {
            id: id.clone(),
            from,
            to,
            reason,
        };
        if !from.can_become(to) {
            return Err(invalid("the approval state machine has no such transition"));
        }
        if to == ActionState::Requested && expires_at.is_none() {
            return Err(invalid("a request needs an approval deadline"));
        }

        let records_requester = to == ActionState::Requested
            || (from, to) == (ActionState::Offered, ActionState::Approved);
        let records_decider = matches!(
            to,
            ActionState::Approved | ActionState::Rejected | ActionState::Dismissed
        );
        let requester = records_requester.then_some(actor);
        let decider = records_decider.then_some(actor);
        let deadline_rule = match (from, to) {
            (ActionState::Requested, ActionState::Approved) => DeadlineRule::Before,
            (_, ActionState::Expired) => DeadlineRule::After,
            _ => DeadlineRule::Ignore,
        };
        let target = format!("action {id} ({from} to {to})");

        let applied = with_pool!(self, pool => sqlx::query(TRANSITION)
            .bind(id.as_str())
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(DbTime::new(at))
            .bind(requester.map(|actor| clean("requested_by_id", &actor.user_id)))
            .bind(requester.map(|actor| clean("requested_by_name", &actor.display_name)))
            .bind(DbTime::opt(requester.map(|_| at)))
            .bind(decider.map(|actor| clean("decided_by_id", &actor.user_id)))
            .bind(decider.map(|actor| clean("decided_by_name", &actor.display_name)))
            .bind(DbTime::opt(decider.map(|_| at)))
            .bind(DbTime::opt(expires_at))
            .bind(DbTime::opt(to.is_final().then_some(at)))
            .bind(deadline_rule as i64)
            .execute(pool)
            .await
            .map_err(query_failed("transition", &target))?
            .rows_affected()
            == 1);
        Ok(applied)
    }

    /// Expires every requested action whose deadline passed at or before `at`, and
    /// returns their IDs so the caller can record and announce each one.
    pub async fn expire_overdue(&self, at: DateTime<Utc>) -> Result<Vec<ActionId>, StoreError> {
        let expired = with_pool!(self, pool => sqlx::query(EXPIRE_OVERDUE)
            .bind(DbTime::new(at))
            .fetch_all(pool)
            .await
            .map_err(query_failed("expire_overdue", "requested actions"))?
            .iter()
            .map(|row| Columns::new(row, TABLE).parsed("id"))
            .collect::<Result<Vec<ActionId>, _>>()?);
        Ok(expired)
    }
}

fn action_from_row<R: StoreRow>(row: &R) -> Result<PendingAction, StoreError> {
    let columns = Columns::new(row, TABLE);
    let platform: Platform = columns.parsed("platform")?;
    let actor = |id_column, name_column| -> Result<Option<Actor>, StoreError> {
        let Some(user_id) = columns.opt_text(id_column)? else {
            return Ok(None);
        };
        Ok(Some(Actor {
            platform,
            user_id,
            display_name: columns.opt_text(name_column)?.unwrap_or_default(),
        }))
    };

    Ok(PendingAction {
        id: columns.parsed("id")?,
        investigation_id: columns.text("investigation_id")?,
        kind: columns.parsed("kind")?,
        key_id: columns.parsed("key_id")?,
        principal: columns.text("principal")?,
        plan: columns.text("plan")?,
        channel: ChatChannel {
            platform,
            workspace: columns.text("workspace")?,
            channel: columns.text("channel")?,
        },
        state: columns.parsed("state")?,
        created_at: columns.time("created_at")?,
        updated_at: columns.time("updated_at")?,
        expires_at: columns.opt_time("expires_at")?,
        requested_by: actor("requested_by_id", "requested_by_name")?,
        requested_at: columns.opt_time("requested_at")?,
        decided_by: actor("decided_by_id", "decided_by_name")?,
        decided_at: columns.opt_time("decided_at")?,
        closed_at: columns.opt_time("closed_at")?,
    })
}
