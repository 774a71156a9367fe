//! Approval of the containment actions offered under a diagnosis: who may request an
//! action, who may approve or reject it, when a request expires, and what a button click
//! decides.
//!
//! [`decide`] is a pure function of the click, the stored action, the policy and the
//! time. It changes nothing. The chat adapter applies the decision's
//! [`StateChange`] with `Store::transition`, whose compare-and-set lets exactly one of two
//! simultaneous clicks proceed, and only then runs the action or posts the refusal. This
//! module neither stores actions nor runs them.
//!
//! An action moves through these states:
//!
//! ```text
//! offered ──request──> requested ──approve──> approved ──> executing ──> done | failed
//!    │                     ├──reject──> rejected
//!    │                     └──deadline──> expired
//!    ├──approve (one-click approval, two-person rule off)──> approved
//!    └──dismiss──> dismissed
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::key::AccessKeyId;

/// Default time an approver has to approve a requested action.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(30 * 60);

/// Number of random bytes in an action ID (128 bits).
const ACTION_ID_BYTES: usize = 16;

/// Chat platform, or the command line, on which a user acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Slack,
    Discord,
    /// The `keycheck` command line; the user ID is the local account name.
    Cli,
}

impl Platform {
    /// Returns the name stored in the database and written to logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Discord => "discord",
            Platform::Cli => "cli",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "slack" => Ok(Platform::Slack),
            "discord" => Ok(Platform::Discord),
            "cli" => Ok(Platform::Cli),
            _ => Err(UnknownName::new("platform", text)),
        }
    }
}

/// A name that matches no variant of one of this module's enums, such as a state read
/// from a database written by a newer keycheck.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    /// The kind of name, such as `action state`.
    pub what: &'static str,
    /// The text that matched no variant.
    pub name: String,
}

impl UnknownName {
    fn new(what: &'static str, name: &str) -> Self {
        UnknownName {
            what,
            name: name.to_string(),
        }
    }
}

/// The person who clicked, requested, approved or ran something.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// Platform of the user ID.
    pub platform: Platform,
    /// The platform's user ID, such as Slack's `U012AB3CD` or a Discord snowflake. For
    /// actions keycheck takes on its own, such as expiring an overdue request, the bot's
    /// own user ID.
    pub user_id: String,
    /// The name shown for the user when the event happened; it may have changed since.
    pub display_name: String,
}

impl Actor {
    /// Returns whether both actors are the same user on the same platform. Display names
    /// do not count because users can change them.
    pub fn is_same_user(&self, other: &Actor) -> bool {
        self.platform == other.platform && self.user_id == other.user_id
    }
}

/// A channel on one chat platform: where an action's buttons were posted, or where a
/// click came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatChannel {
    pub platform: Platform,
    /// Slack team (workspace) ID or Discord guild ID.
    pub workspace: String,
    /// Slack channel ID, or the Discord channel or thread ID that contains the buttons.
    pub channel: String,
}

/// The opaque ID that a button carries: 128 random bits, base64url-encoded without
/// padding (22 characters). Guessing one is infeasible, so a button value forged from
/// another workspace matches no action. The store maps the ID to its action.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActionId(String);

impl ActionId {
    /// Length of an action ID in characters.
    pub const LEN: usize = 22;

    /// Generates a new random action ID.
    ///
    /// # Panics
    ///
    /// Panics when the operating system's random number generator fails, because an ID
    /// from any weaker source could be guessed.
    pub fn generate() -> ActionId {
        ActionId(random_token())
    }

    /// Parses the ID a button carried. Returns `None` unless `text` has the shape of an
    /// ID that [`ActionId::generate`] makes.
    pub fn parse(text: &str) -> Option<ActionId> {
        let valid = text.len() == Self::LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| ActionId(text.to_string()))
    }

    /// Returns the ID as text, which is what a button's value carries.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ActionId {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ActionId::parse(text).ok_or_else(|| UnknownName::new("action ID", text))
    }
}

impl TryFrom<String> for ActionId {
    type Error = UnknownName;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        ActionId::parse(&text).ok_or_else(|| UnknownName::new("action ID", &text))
    }
}

impl From<ActionId> for String {
    fn from(id: ActionId) -> String {
        id.0
    }
}

/// Returns 128 random bits from the operating system, base64url-encoded without padding.
///
/// # Panics
///
/// Panics when the operating system's random number generator fails.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; ACTION_ID_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    data_encoding::BASE64URL_NOPAD.encode(&bytes)
}

/// Kind of containment action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Set the access key to Inactive.
    Deactivate,
    /// Create a new access key for the owner, store its secret in Secrets Manager and
    /// deactivate the old key.
    Rotate,
    /// Deny every session that was issued before now, through an inline policy.
    RevokeSessions,
    /// Attach the quarantine policy to the key's owner.
    Quarantine,
    /// Close the offer without changing anything in AWS.
    Dismiss,
}

impl ActionKind {
    /// Returns the kind of button for an action that the diagnosis recommends, or `None`
    /// for a step that only a human can take.
    pub fn for_recommendation(kind: crate::diagnosis::ActionKind) -> Option<ActionKind> {
        use crate::diagnosis::ActionKind as Recommended;
        match kind {
            Recommended::Deactivate => Some(ActionKind::Deactivate),
            Recommended::Rotate => Some(ActionKind::Rotate),
            Recommended::RevokeSessions => Some(ActionKind::RevokeSessions),
            Recommended::Quarantine => Some(ActionKind::Quarantine),
            Recommended::Manual => None,
        }
    }

    /// Returns the name stored in the database and written to logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Deactivate => "deactivate",
            ActionKind::Rotate => "rotate",
            ActionKind::RevokeSessions => "revoke_sessions",
            ActionKind::Quarantine => "quarantine",
            ActionKind::Dismiss => "dismiss",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionKind {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "deactivate" => Ok(ActionKind::Deactivate),
            "rotate" => Ok(ActionKind::Rotate),
            "revoke_sessions" => Ok(ActionKind::RevokeSessions),
            "quarantine" => Ok(ActionKind::Quarantine),
            "dismiss" => Ok(ActionKind::Dismiss),
            _ => Err(UnknownName::new("action kind", text)),
        }
    }
}

/// The state of a pending action; the module documentation shows the transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Offered under the diagnosis and not clicked yet.
    Offered,
    /// A requester asked for it; it waits for an approver until it expires.
    Requested,
    /// An approver approved it; it is about to run.
    Approved,
    /// It is running against AWS.
    Executing,
    /// It ran and succeeded.
    Done,
    /// It ran and failed.
    Failed,
    /// An approver or the requester rejected it.
    Rejected,
    /// Its approval deadline passed without an approval.
    Expired,
    /// Someone dismissed the offer.
    Dismissed,
}

impl ActionState {
    /// Every state, in the order the module documentation lists them.
    pub const ALL: [ActionState; 9] = [
        ActionState::Offered,
        ActionState::Requested,
        ActionState::Approved,
        ActionState::Executing,
        ActionState::Done,
        ActionState::Failed,
        ActionState::Rejected,
        ActionState::Expired,
        ActionState::Dismissed,
    ];

    /// Returns the name stored in the database and written to logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Offered => "offered",
            ActionState::Requested => "requested",
            ActionState::Approved => "approved",
            ActionState::Executing => "executing",
            ActionState::Done => "done",
            ActionState::Failed => "failed",
            ActionState::Rejected => "rejected",
            ActionState::Expired => "expired",
            ActionState::Dismissed => "dismissed",
        }
    }

    /// Returns whether the state is final: no click or run changes it again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ActionState::Done
                | ActionState::Failed
                | ActionState::Rejected
                | ActionState::Expired
                | ActionState::Dismissed
        )
    }

    /// Returns whether the state machine has an edge from `self` to `to`.
    pub fn can_become(self, to: ActionState) -> bool {
        use ActionState::*;
        matches!(
            (self, to),
            (Offered, Requested)
                | (Offered, Approved)
                | (Offered, Dismissed)
                | (Requested, Approved)
                | (Requested, Rejected)
                | (Requested, Expired)
                | (Approved, Executing)
                | (Executing, Done)
                | (Executing, Failed)
        )
    }
}

impl fmt::Display for ActionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionState {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ActionState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| UnknownName::new("action state", text))
    }
}

/// A containment action offered in chat, with everything needed to decide a click on it
/// and to run it. The store persists it, keyed by its ID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAction {
    pub id: ActionId,
    /// The investigation whose diagnosis offered the action.
    pub investigation_id: String,
    pub kind: ActionKind,
    /// The access key the action is about.
    pub key_id: AccessKeyId,
    /// The principal the action changes: the IAM user or role ARN that owns the key.
    pub principal: String,
    /// JSON text describing what the action will change, as shown to the approver.
    pub plan: String,
    /// Channel that contains the action's buttons. Clicks from any other channel are
    /// refused.
    pub channel: ChatChannel,
    pub state: ActionState,
    pub created_at: DateTime<Utc>,
    /// Time of the last state change.
    pub updated_at: DateTime<Utc>,
    /// Deadline for approval, set when the action is requested. `None` while offered:
    /// offers do not expire, because the executing code checks its preconditions again.
    pub expires_at: Option<DateTime<Utc>>,
    /// User who requested the action, or who approved it in one click.
    pub requested_by: Option<Actor>,
    pub requested_at: Option<DateTime<Utc>>,
    /// User who approved, rejected or dismissed the action.
    pub decided_by: Option<Actor>,
    pub decided_at: Option<DateTime<Utc>>,
    /// When the action reached a final state.
    pub closed_at: Option<DateTime<Utc>>,
}

impl PendingAction {
    /// Builds a new action in state offered, with a fresh random ID.
    pub fn offer(
        investigation_id: &str,
        kind: ActionKind,
        key_id: AccessKeyId,
        principal: &str,
        plan: &str,
        channel: ChatChannel,
        at: DateTime<Utc>,
    ) -> PendingAction {
        PendingAction {
            id: ActionId::generate(),
            investigation_id: investigation_id.to_string(),
            kind,
            key_id,
            principal: principal.to_string(),
            plan: plan.to_string(),
            channel,
            state: ActionState::Offered,
            created_at: at,
            updated_at: at,
            expires_at: None,
            requested_by: None,
            requested_at: None,
            decided_by: None,
            decided_at: None,
            closed_at: None,
        }
    }

    /// Returns whether the approval deadline has passed at `now`.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|deadline| now >= deadline)
    }
}

/// Rules for requesting and approving containment actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// User IDs and group or role IDs (Slack user groups, Discord roles) whose members may
    /// request actions. With an empty list, no one may.
    pub requesters: Vec<String>,
    /// User IDs and group or role IDs whose members may approve or reject requested
    /// actions. With an empty list, no one may.
    pub approvers: Vec<String>,
    /// Whether the approver must be a different person from the requester. When off, an
    /// approver's click on an offered action runs it at once (one-click approval).
    pub two_person_rule: bool,
    /// Time an approver has to approve a requested action.
    pub expiry: Duration,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        ApprovalPolicy {
            requesters: Vec::new(),
            approvers: Vec::new(),
            two_person_rule: true,
            expiry: DEFAULT_EXPIRY,
        }
    }
}

impl ApprovalPolicy {
    /// Returns whether the clicking user, or one of their groups or roles, is a requester.
    pub fn is_requester(&self, click: &Click) -> bool {
        matches_any(&self.requesters, click)
    }

    /// Returns whether the clicking user, or one of their groups or roles, is an approver.
    pub fn is_approver(&self, click: &Click) -> bool {
        matches_any(&self.approvers, click)
    }

    /// Returns the approval deadline for an action requested at `now`. An expiry too
    /// large for a timestamp is capped at the largest one.
    fn deadline(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        TimeDelta::from_std(self.expiry)
            .ok()
            .and_then(|expiry| now.checked_add_signed(expiry))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

fn matches_any(principals: &[String], click: &Click) -> bool {
    principals
        .iter()
        .any(|principal| *principal == click.actor.user_id || click.groups.contains(principal))
}

/// The button a user clicked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Button {
    /// One of the action buttons under the diagnosis (Deactivate, Rotate, Revoke sessions,
    /// Quarantine, Dismiss).
    Request,
    /// Approve, on an approval request.
    Approve,
    /// Reject, on an approval request.
    Reject,
}

/// A button click as the chat adapter received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Click {
    pub actor: Actor,
    /// IDs of the clicking user's groups or roles: Slack user groups, Discord roles.
    pub groups: Vec<String>,
    /// Channel the click came from.
    pub channel: ChatChannel,
    pub button: Button,
}

/// Outcome of a click. Apply [`Decision::state_change`] with `Store::transition`
/// before acting; when that returns false, another click won the race and this one must
/// do nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Record the click as a request and post the approval request with the plan.
    Request { expires_at: DateTime<Utc> },
    /// Run the action. `from` is `requested`, or `offered` for one-click approval.
    Execute { from: ActionState },
    /// Close the request without running it.
    Reject,
    /// Close the offer without running anything.
    Dismiss,
    /// Change nothing in AWS and tell the user why, word for word.
    Refuse(Refusal),
}

impl Decision {
    /// Returns the compare-and-set to apply to the action's state, if the decision
    /// changes it. A refusal for an overdue request expires the action.
    pub fn state_change(&self) -> Option<StateChange> {
        use ActionState::*;
        match self {
            Decision::Request { expires_at } => Some(StateChange {
                from: Offered,
                to: Requested,
                expires_at: Some(*expires_at),
            }),
            Decision::Execute { from } => Some(StateChange::new(*from, Approved)),
            Decision::Reject => Some(StateChange::new(Requested, Rejected)),
            Decision::Dismiss => Some(StateChange::new(Offered, Dismissed)),
            Decision::Refuse(Refusal::Expired { .. }) => Some(StateChange::new(Requested, Expired)),
            Decision::Refuse(_) => None,
        }
    }
}

/// A compare-and-set on an action's state: it applies only while the action is still in
/// `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    pub from: ActionState,
    pub to: ActionState,
    /// New approval deadline; set when the action becomes requested.
    pub expires_at: Option<DateTime<Utc>>,
}

impl StateChange {
    /// Builds a change that leaves the deadline as it is.
    pub fn new(from: ActionState, to: ActionState) -> StateChange {
        StateChange {
            from,
            to,
            expires_at: None,
        }
    }
}

/// Reason a click changes nothing. [`Refusal::message`] is posted to the user as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The user is neither listed as a requester nor in a requester group.
    NotRequester,
    /// The user is neither listed as an approver nor in an approver group.
    NotApprover,
    /// The requester tried to approve their own request under the two-person rule.
    OwnRequest,
    /// The approval deadline passed before this click.
    Expired { expired_at: DateTime<Utc> },
    /// Approval was already requested; a second request click changes nothing.
    AlreadyRequested,
    /// Approve or Reject on an action that was not requested yet.
    NotRequested,
    /// The action was already approved, ran, or was closed; the click changes nothing.
    Closed { state: ActionState },
    /// The button's action ID matches no stored action.
    UnknownAction,
    /// The click came from another channel or workspace than the action's buttons.
    WrongChannel,
}

impl Refusal {
    /// Returns a stable name for logs and the audit log, such as `not_approver`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotRequester => "not_requester",
            Refusal::NotApprover => "not_approver",
            Refusal::OwnRequest => "own_request",
            Refusal::Expired { .. } => "expired",
            Refusal::AlreadyRequested => "already_requested",
            Refusal::NotRequested => "not_requested",
            Refusal::Closed { .. } => "closed",
            Refusal::UnknownAction => "unknown_action",
            Refusal::WrongChannel => "wrong_channel",
        }
    }

    /// Returns the message shown to the user who clicked.
    pub fn message(&self) -> String {
        match self {
            Refusal::NotRequester => {
                "You are not allowed to request containment actions. Ask a keycheck requester to click the button.".to_string()
            }
            Refusal::NotApprover => {
                "You are not allowed to approve or reject containment actions. Ask a keycheck approver.".to_string()
            }
            Refusal::OwnRequest => {
                "You requested this action, so another approver must approve it: the two-person rule is on.".to_string()
            }
            Refusal::Expired { expired_at } => format!(
                "This approval request expired at {} UTC and nothing was changed. Run /keycheck again for a fresh diagnosis and new buttons.",
                expired_at.format("%Y-%m-%d %H:%M")
            ),
            Refusal::AlreadyRequested => {
                "Approval for this action was already requested. An approver can approve or reject it in the thread.".to_string()
            }
            Refusal::NotRequested => {
                "Nobody has requested this action yet. Click its button under the diagnosis first.".to_string()
            }
            Refusal::Closed { state } => closed_message(*state).to_string(),
            Refusal::UnknownAction => {
                "keycheck has no record of this button's action, so nothing was changed. Run /keycheck again for new buttons.".to_string()
            }
            Refusal::WrongChannel => {
                "This button belongs to an action offered in another channel or workspace, so it cannot be used here.".to_string()
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

fn closed_message(state: ActionState) -> &'static str {
    match state {
        ActionState::Approved | ActionState::Executing => {
            "This action was already approved and is running. This click changed nothing."
        }
        ActionState::Done => "This action already ran. This click changed nothing.",
        ActionState::Failed => {
            "This action already ran and failed, and the thread shows the error. This click changed nothing."
        }
        ActionState::Rejected => "This action was rejected. This click changed nothing.",
        ActionState::Expired => {
            "This approval request expired and nothing was changed. Run /keycheck again for new buttons."
        }
        ActionState::Dismissed => "This action was dismissed. This click changed nothing.",
        ActionState::Offered | ActionState::Requested => "This action is still open.",
    }
}

/// Decides what a click on an action's button does.
///
/// `action` is what the store contains for the button's action ID, or `None` when it
/// contains nothing. The checks run in this order: the action exists, the click comes
/// from the action's channel, the action is still open, and then the button's own rules.
/// Request needs a requester, or an approver when the two-person rule is off, which runs
/// the action at once. Approve needs an approver, a deadline not yet passed and, under the
/// two-person rule, someone other than the requester. Reject needs an approver or the
/// requester. A Request click on a Dismiss action dismisses the offer for a requester or
/// an approver.
pub fn decide(
    click: &Click,
    action: Option<&PendingAction>,
    policy: &ApprovalPolicy,
    now: DateTime<Utc>,
) -> Decision {
    let Some(action) = action else {
        return Decision::Refuse(Refusal::UnknownAction);
    };
    if click.channel != action.channel {
        return Decision::Refuse(Refusal::WrongChannel);
    }
    if !matches!(action.state, ActionState::Offered | ActionState::Requested) {
        return Decision::Refuse(Refusal::Closed {
            state: action.state,
        });
    }

    match click.button {
        Button::Request => decide_request(click, action, policy, now),
        Button::Approve => decide_approve(click, action, policy, now),
        Button::Reject => decide_reject(click, action, policy, now),
    }
}

fn decide_request(
    click: &Click,
    action: &PendingAction,
    policy: &ApprovalPolicy,
    now: DateTime<Utc>,
) -> Decision {
    if action.state == ActionState::Requested {
        return Decision::Refuse(Refusal::AlreadyRequested);
    }

    let requester = policy.is_requester(click);
    let approver = policy.is_approver(click);
    if action.kind == ActionKind::Dismiss {
        if requester || approver {
            return Decision::Dismiss;
        }
        return Decision::Refuse(Refusal::NotRequester);
    }
    if approver && !policy.two_person_rule {
        return Decision::Execute {
            from: ActionState::Offered,
        };
    }
    if !requester {
        return Decision::Refuse(Refusal::NotRequester);
    }
    Decision::Request {
        expires_at: policy.deadline(now),
    }
}

fn decide_approve(
    click: &Click,
    action: &PendingAction,
    policy: &ApprovalPolicy,
    now: DateTime<Utc>,
) -> Decision {
    if action.state == ActionState::Offered {
        return Decision::Refuse(Refusal::NotRequested);
    }
    if !policy.is_approver(click) {
        return Decision::Refuse(Refusal::NotApprover);
    }
    if let Some(refusal) = overdue(action, now) {
        return Decision::Refuse(refusal);
    }

    if policy.two_person_rule {
        // The store records the requester with every request. A requested action
        // without one cannot prove two persons, so it is refused like an own request.
        let own = action
            .requested_by
            .as_ref()
            .is_none_or(|requester| requester.is_same_user(&click.actor));
        if own {
            return Decision::Refuse(Refusal::OwnRequest);
        }
    }
    Decision::Execute {
        from: ActionState::Requested,
    }
}

fn decide_reject(
    click: &Click,
    action: &PendingAction,
    policy: &ApprovalPolicy,
    now: DateTime<Utc>,
) -> Decision {
    if action.state == ActionState::Offered {
        return Decision::Refuse(Refusal::NotRequested);
    }
    let own = action
        .requested_by
        .as_ref()
        .is_some_and(|requester| requester.is_same_user(&click.actor));
    if !own && !policy.is_approver(click) {
        return Decision::Refuse(Refusal::NotApprover);
    }
    if let Some(refusal) = overdue(action, now) {
        return Decision::Refuse(refusal);
    }
    Decision::Reject
}

fn overdue(action: &PendingAction, now: DateTime<Utc>) -> Option<Refusal> {
    let expired_at = action.expires_at.filter(|_| action.is_overdue(now))?;
    Some(Refusal::Expired { expired_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::TimeZone;

    const REQUESTER: &str = "U0REQUEST";
    const APPROVER: &str = "U0APPROVE";
    const SECOND_APPROVER: &str = "U0APPROVE2";
    const OUTSIDER: &str = "U0OUTSIDE";
    const APPROVER_GROUP: &str = "S0APPROVERS";
    const REQUESTER_GROUP: &str = "S0RESPONDERS";

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 9, minute, 0).unwrap()
    }

    fn channel() -> ChatChannel {
        ChatChannel {
            platform: Platform::Slack,
            workspace: "T0WORK".to_string(),
            channel: "C0INCIDENT".to_string(),
        }
    }

    fn actor(user_id: &str) -> Actor {
        Actor {
            platform: Platform::Slack,
            user_id: user_id.to_string(),
            display_name: format!("name of {user_id}"),
        }
    }

    fn policy() -> ApprovalPolicy {
        ApprovalPolicy {
            requesters: vec![REQUESTER.to_string(), REQUESTER_GROUP.to_string()],
            approvers: vec![
                APPROVER.to_string(),
                SECOND_APPROVER.to_string(),
                APPROVER_GROUP.to_string(),
            ],
            ..ApprovalPolicy::default()
        }
    }

    fn one_click() -> ApprovalPolicy {
        ApprovalPolicy {
            two_person_rule: false,
            ..policy()
        }
    }

    fn offered(kind: ActionKind) -> PendingAction {
        PendingAction::offer(
            "inv-1",
            kind,
            "AKIAIOSFODNN7EXAMPLE".parse().unwrap(),
            "arn:aws:iam::123456789012:user/deploy",
            r#"{"update_access_key":{"status":"Inactive"}}"#,
            channel(),
            at(0),
        )
    }

    /// Returns an action that `requester` requested at minute 1, with its deadline at
    /// minute 31.
    fn requested_by(requester: &str) -> PendingAction {
        PendingAction {
            state: ActionState::Requested,
            requested_by: Some(actor(requester)),
            requested_at: Some(at(1)),
            expires_at: Some(at(31)),
            ..offered(ActionKind::Deactivate)
        }
    }

    fn in_state(state: ActionState) -> PendingAction {
        PendingAction {
            state,
            ..requested_by(REQUESTER)
        }
    }

    fn click(user_id: &str, button: Button) -> Click {
        Click {
            actor: actor(user_id),
            groups: Vec::new(),
            channel: channel(),
            button,
        }
    }

    fn click_in_group(user_id: &str, group: &str, button: Button) -> Click {
        Click {
            groups: vec![group.to_string()],
            ..click(user_id, button)
        }
    }

    fn refused(refusal: Refusal) -> Decision {
        Decision::Refuse(refusal)
    }

    struct Case {
        name: &'static str,
        click: Click,
        action: Option<PendingAction>,
        policy: ApprovalPolicy,
        now: DateTime<Utc>,
        expected: Decision,
    }

    fn case(
        name: &'static str,
        click: Click,
        action: Option<PendingAction>,
        expected: Decision,
    ) -> Case {
        Case {
            name,
            click,
            action,
            policy: policy(),
            now: at(10),
            expected,
        }
    }

    fn cases() -> Vec<Case> {
        let other_channel = Click {
            channel: ChatChannel {
                channel: "C0OTHER".to_string(),
                ..channel()
            },
            ..click(APPROVER, Button::Approve)
        };
        let other_workspace = Click {
            channel: ChatChannel {
                workspace: "T0ELSEWHERE".to_string(),
                ..channel()
            },
            ..click(REQUESTER, Button::Request)
        };
        let other_platform = Click {
            channel: ChatChannel {
                platform: Platform::Discord,
                ..channel()
            },
            ..click(APPROVER, Button::Approve)
        };
        let requested_without_requester = PendingAction {
            requested_by: None,
            ..requested_by(REQUESTER)
        };

        vec![
            // Allowed paths.
            case(
                "requester requests",
                click(REQUESTER, Button::Request),
                Some(offered(ActionKind::Deactivate)),
                Decision::Request { expires_at: at(40) },
            ),
            case(
                "requester group member requests",
                click_in_group(OUTSIDER, REQUESTER_GROUP, Button::Request),
                Some(offered(ActionKind::Rotate)),
                Decision::Request { expires_at: at(40) },
            ),
            case(
                "approver who is also listed as requester only requests under two-person rule",
                click_in_group(APPROVER, REQUESTER_GROUP, Button::Request),
                Some(offered(ActionKind::Quarantine)),
                Decision::Request { expires_at: at(40) },
            ),
            case(
                "other approver approves",
                click(APPROVER, Button::Approve),
                Some(requested_by(REQUESTER)),
                Decision::Execute {
                    from: ActionState::Requested,
                },
            ),
            case(
                "approver group member approves",
                click_in_group(OUTSIDER, APPROVER_GROUP, Button::Approve),
                Some(requested_by(REQUESTER)),
                Decision::Execute {
                    from: ActionState::Requested,
                },
            ),
            case(
                "second approver approves first approver's request",
                click(SECOND_APPROVER, Button::Approve),
                Some(requested_by(APPROVER)),
                Decision::Execute {
                    from: ActionState::Requested,
                },
            ),
            case(
                "approve one minute before deadline",
                click(APPROVER, Button::Approve),
                Some(requested_by(REQUESTER)),
                Decision::Execute {
                    from: ActionState::Requested,
                },
            )
            .at(at(30)),
            case(
                "approver rejects",
                click(APPROVER, Button::Reject),
                Some(requested_by(REQUESTER)),
                Decision::Reject,
            ),
            case(
                "requester withdraws own request",
                click(REQUESTER, Button::Reject),
                Some(requested_by(REQUESTER)),
                Decision::Reject,
            ),
            case(
                "requester dismisses offer",
                click(REQUESTER, Button::Request),
                Some(offered(ActionKind::Dismiss)),
                Decision::Dismiss,
            ),
            case(
                "approver dismisses offer",
                click(APPROVER, Button::Request),
                Some(offered(ActionKind::Dismiss)),
                Decision::Dismiss,
            ),
            case(
                "one-click approval by approver",
                click(APPROVER, Button::Request),
                Some(offered(ActionKind::Deactivate)),
                Decision::Execute {
                    from: ActionState::Offered,
                },
            )
            .with_policy(one_click()),
            case(
                "one-click approval by approver group member",
                click_in_group(OUTSIDER, APPROVER_GROUP, Button::Request),
                Some(offered(ActionKind::RevokeSessions)),
                Decision::Execute {
                    from: ActionState::Offered,
                },
            )
            .with_policy(one_click()),
            case(
                "requester without approval rights still requests without two-person rule",
                click(REQUESTER, Button::Request),
                Some(offered(ActionKind::Deactivate)),
                Decision::Request { expires_at: at(40) },
            )
            .with_policy(one_click()),
            case(
                "requester approver approves own request without two-person rule",
                click_in_group(REQUESTER, APPROVER_GROUP, Button::Approve),
                Some(requested_by(REQUESTER)),
                Decision::Execute {
                    from: ActionState::Requested,
                },
            )
            .with_policy(one_click()),
            // Refusals.
            case(
                "outsider requests",
                click(OUTSIDER, Button::Request),
                Some(offered(ActionKind::Deactivate)),
                refused(Refusal::NotRequester),
            ),
            case(
                "outsider dismisses",
                click(OUTSIDER, Button::Request),
                Some(offered(ActionKind::Dismiss)),
                refused(Refusal::NotRequester),
            ),
            case(
                "approver alone cannot request under two-person rule",
                click(APPROVER, Button::Request),
                Some(offered(ActionKind::Deactivate)),
                refused(Refusal::NotRequester),
            ),
            case(
                "requester approves",
                click(REQUESTER, Button::Approve),
                Some(requested_by(APPROVER)),
                refused(Refusal::NotApprover),
            ),
            case(
                "outsider approves",
                click(OUTSIDER, Button::Approve),
                Some(requested_by(REQUESTER)),
                refused(Refusal::NotApprover),
            ),
            case(
                "outsider rejects",
                click(OUTSIDER, Button::Reject),
                Some(requested_by(REQUESTER)),
                refused(Refusal::NotApprover),
            ),
            case(
                "approver approves own request",
                click(APPROVER, Button::Approve),
                Some(requested_by(APPROVER)),
                refused(Refusal::OwnRequest),
            ),
            case(
                "requester in approver group approves own request",
                click_in_group(REQUESTER, APPROVER_GROUP, Button::Approve),
                Some(requested_by(REQUESTER)),
                refused(Refusal::OwnRequest),
            ),
            case(
                "approve without recorded requester",
                click(APPROVER, Button::Approve),
                Some(requested_without_requester),
                refused(Refusal::OwnRequest),
            ),
            case(
                "approve at deadline",
                click(APPROVER, Button::Approve),
                Some(requested_by(REQUESTER)),
                refused(Refusal::Expired { expired_at: at(31) }),
            )
            .at(at(31)),
            case(
                "reject after deadline",
                click(APPROVER, Button::Reject),
                Some(requested_by(REQUESTER)),
                refused(Refusal::Expired { expired_at: at(31) }),
            )
            .at(at(45)),
            case(
                "second request click",
                click(REQUESTER, Button::Request),
                Some(requested_by(REQUESTER)),
                refused(Refusal::AlreadyRequested),
            ),
            case(
                "approve before request",
                click(APPROVER, Button::Approve),
                Some(offered(ActionKind::Deactivate)),
                refused(Refusal::NotRequested),
            ),
            case(
                "reject before request",
                click(APPROVER, Button::Reject),
                Some(offered(ActionKind::Deactivate)),
                refused(Refusal::NotRequested),
            ),
            case(
                "approve done action",
                click(APPROVER, Button::Approve),
                Some(in_state(ActionState::Done)),
                refused(Refusal::Closed {
                    state: ActionState::Done,
                }),
            ),
            case(
                "approve approved action",
                click(SECOND_APPROVER, Button::Approve),
                Some(in_state(ActionState::Approved)),
                refused(Refusal::Closed {
                    state: ActionState::Approved,
                }),
            ),
            case(
                "approve executing action",
                click(SECOND_APPROVER, Button::Approve),
                Some(in_state(ActionState::Executing)),
                refused(Refusal::Closed {
                    state: ActionState::Executing,
                }),
            ),
            case(
                "approve failed action",
                click(APPROVER, Button::Approve),
                Some(in_state(ActionState::Failed)),
                refused(Refusal::Closed {
                    state: ActionState::Failed,
                }),
            ),
            case(
                "approve rejected action",
                click(APPROVER, Button::Approve),
                Some(in_state(ActionState::Rejected)),
                refused(Refusal::Closed {
                    state: ActionState::Rejected,
                }),
            ),
            case(
                "approve expired action",
                click(APPROVER, Button::Approve),
                Some(in_state(ActionState::Expired)),
                refused(Refusal::Closed {
                    state: ActionState::Expired,
                }),
            ),
            case(
                "request dismissed action",
                click(REQUESTER, Button::Request),
                Some(in_state(ActionState::Dismissed)),
                refused(Refusal::Closed {
                    state: ActionState::Dismissed,
                }),
            ),
            case(
                "reject done action",
                click(APPROVER, Button::Reject),
                Some(in_state(ActionState::Done)),
                refused(Refusal::Closed {
                    state: ActionState::Done,
                }),
            ),
            case(
                "unknown action ID",
                click(APPROVER, Button::Approve),
                None,
                refused(Refusal::UnknownAction),
            ),
            case(
                "click from other channel",
                other_channel,
                Some(requested_by(REQUESTER)),
                refused(Refusal::WrongChannel),
            ),
            case(
                "click from other workspace",
                other_workspace,
                Some(offered(ActionKind::Deactivate)),
                refused(Refusal::WrongChannel),
            ),
            case(
                "click from other platform",
                other_platform,
                Some(requested_by(REQUESTER)),
                refused(Refusal::WrongChannel),
            ),
            case(
                "one-click refused for outsider",
                click(OUTSIDER, Button::Request),
                Some(offered(ActionKind::Deactivate)),
                refused(Refusal::NotRequester),
            )
            .with_policy(one_click()),
            case(
                "one-click does not reopen done action",
                click(APPROVER, Button::Request),
                Some(in_state(ActionState::Done)),
                refused(Refusal::Closed {
                    state: ActionState::Done,
                }),
            )
            .with_policy(one_click()),
        ]
    }

    impl Case {
        fn at(self, now: DateTime<Utc>) -> Case {
            Case { now, ..self }
        }

        fn with_policy(self, policy: ApprovalPolicy) -> Case {
            Case { policy, ..self }
        }
    }

    #[test]
    fn decide_table() {
        let mut failures = Vec::new();
        for case in cases() {
            let decision = decide(&case.click, case.action.as_ref(), &case.policy, case.now);
            if decision != case.expected {
                failures.push(format!(
                    "{}:\n  click: {:?}\n  action state: {:?}\n  expected: {:?}\n  decided: {:?}",
                    case.name,
                    case.click,
                    case.action.as_ref().map(|action| action.state),
                    case.expected,
                    decision
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn decide_table_covers_every_refusal() {
        let codes: Vec<&str> = cases()
            .iter()
            .filter_map(|case| match &case.expected {
                Decision::Refuse(refusal) => Some(refusal.code()),
                _ => None,
            })
            .collect();
        let every = [
            Refusal::NotRequester,
            Refusal::NotApprover,
            Refusal::OwnRequest,
            Refusal::Expired { expired_at: at(0) },
            Refusal::AlreadyRequested,
            Refusal::NotRequested,
            Refusal::Closed {
                state: ActionState::Done,
            },
            Refusal::UnknownAction,
            Refusal::WrongChannel,
        ];
        for refusal in every {
            assert!(
                codes.contains(&refusal.code()),
                "no case refuses with {}",
                refusal.code()
            );
        }
    }

    #[test]
    fn decide_second_approve_after_execute_changes_nothing() {
        let first = decide(
            &click(APPROVER, Button::Approve),
            Some(&requested_by(REQUESTER)),
            &policy(),
            at(10),
        );
        assert_eq!(
            first.state_change(),
            Some(StateChange::new(
                ActionState::Requested,
                ActionState::Approved
            ))
        );

        let after = in_state(ActionState::Approved);
        let second = decide(
            &click(SECOND_APPROVER, Button::Approve),
            Some(&after),
            &policy(),
            at(10),
        );
        assert_eq!(second.state_change(), None);
    }

    #[test]
    fn state_change_of_each_decision() {
        use ActionState::*;
        let request = Decision::Request { expires_at: at(40) };
        assert_eq!(
            request.state_change(),
            Some(StateChange {
                from: Offered,
                to: Requested,
                expires_at: Some(at(40)),
            })
        );
        let one_click = Decision::Execute { from: Offered };
        assert_eq!(
            one_click.state_change(),
            Some(StateChange::new(Offered, Approved))
        );
        assert_eq!(
            Decision::Reject.state_change(),
            Some(StateChange::new(Requested, Rejected))
        );
        assert_eq!(
            Decision::Dismiss.state_change(),
            Some(StateChange::new(Offered, Dismissed))
        );
        let expired = refused(Refusal::Expired { expired_at: at(31) });
        assert_eq!(
            expired.state_change(),
            Some(StateChange::new(Requested, Expired))
        );
        assert_eq!(refused(Refusal::NotApprover).state_change(), None);
    }

    #[test]
    fn state_changes_follow_state_machine() {
        for decision in [
            Decision::Request { expires_at: at(1) },
            Decision::Execute {
                from: ActionState::Offered,
            },
            Decision::Execute {
                from: ActionState::Requested,
            },
            Decision::Reject,
            Decision::Dismiss,
            refused(Refusal::Expired { expired_at: at(1) }),
        ] {
            let change = decision.state_change().unwrap();
            assert!(
                change.from.can_become(change.to),
                "{decision:?} makes an invalid change"
            );
        }
    }

    #[test]
    fn final_states_have_no_exit() {
        for from in ActionState::ALL
            .into_iter()
            .filter(|state| state.is_final())
        {
            for to in ActionState::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn deadline_uses_policy_expiry() {
        let policy = ApprovalPolicy {
            expiry: Duration::from_secs(5 * 60),
            ..policy()
        };
        let decision = decide(
            &click(REQUESTER, Button::Request),
            Some(&offered(ActionKind::Rotate)),
            &policy,
            at(10),
        );
        assert_eq!(decision, Decision::Request { expires_at: at(15) });
    }

    #[test]
    fn deadline_saturates_for_huge_expiry() {
        let policy = ApprovalPolicy {
            expiry: Duration::MAX,
            ..policy()
        };
        assert_eq!(policy.deadline(at(0)), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn default_policy() {
        let policy = ApprovalPolicy::default();
        assert!(policy.two_person_rule);
        assert_eq!(policy.expiry, Duration::from_secs(1800));
        assert!(policy.requesters.is_empty());
        assert!(policy.approvers.is_empty());
    }

    #[test]
    fn refusal_messages_are_sentences() {
        let every = [
            Refusal::NotRequester,
            Refusal::NotApprover,
            Refusal::OwnRequest,
            Refusal::Expired { expired_at: at(31) },
            Refusal::AlreadyRequested,
            Refusal::NotRequested,
            Refusal::UnknownAction,
            Refusal::WrongChannel,
        ];
        let closed = ActionState::ALL.map(|state| Refusal::Closed { state });
        for refusal in every.iter().chain(closed.iter()) {
            let message = refusal.message();
            assert!(message.ends_with('.'), "{message}");
            assert!(!crate::redact::contains_secret(&message), "{message}");
        }
        assert!(
            Refusal::Expired { expired_at: at(31) }
                .message()
                .contains("2025-03-14 09:31 UTC")
        );
    }

    #[test]
    fn action_id_generate_parse() {
        let id = ActionId::generate();
        assert_eq!(id.as_str().len(), ActionId::LEN);
        assert_eq!(ActionId::parse(id.as_str()), Some(id.clone()));
        assert_ne!(ActionId::generate(), id);
    }

    #[test]
    fn action_id_parse_rejects_other_shapes() {
        for text in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAAAAAAAA/",
            "AAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAA AAAAAAAAAAA",
        ] {
            assert_eq!(ActionId::parse(text), None, "{text:?}");
        }
        assert!(ActionId::parse("AZaz09-_AZaz09-_AZaz09").is_some());
    }

    #[test]
    fn action_kind_for_recommendation() {
        use crate::diagnosis::ActionKind as Recommended;
        assert_eq!(
            ActionKind::for_recommendation(Recommended::Deactivate),
            Some(ActionKind::Deactivate)
        );
        assert_eq!(
            ActionKind::for_recommendation(Recommended::Rotate),
            Some(ActionKind::Rotate)
        );
        assert_eq!(
            ActionKind::for_recommendation(Recommended::RevokeSessions),
            Some(ActionKind::RevokeSessions)
        );
        assert_eq!(
            ActionKind::for_recommendation(Recommended::Quarantine),
            Some(ActionKind::Quarantine)
        );
        assert_eq!(ActionKind::for_recommendation(Recommended::Manual), None);
    }

    #[test]
    fn names_round_trip() {
        for state in ActionState::ALL {
            assert_eq!(state.as_str().parse::<ActionState>(), Ok(state));
        }
        for kind in [
            ActionKind::Deactivate,
            ActionKind::Rotate,
            ActionKind::RevokeSessions,
            ActionKind::Quarantine,
            ActionKind::Dismiss,
        ] {
            assert_eq!(kind.as_str().parse::<ActionKind>(), Ok(kind));
        }
        for platform in [Platform::Slack, Platform::Discord, Platform::Cli] {
            assert_eq!(platform.as_str().parse::<Platform>(), Ok(platform));
        }
        assert!("approve".parse::<ActionState>().is_err());
    }
}
