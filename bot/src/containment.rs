//! Containment from chat, for every chat adapter: offers the recommended actions of a
//! diagnosis as pending actions, decides each button click with the approval policy, runs
//! an approved action at most once, and writes every decision to the audit log.
//!
//! This module uses no chat platform's types and formats no message. An adapter uses it in three
//! places:
//!
//! 1. When an investigation finishes, [`Containment::offer`] stores one pending action per
//!    recommended action that can be planned, plus Dismiss, and returns them. The adapter
//!    shows one button per [`OfferedAction`] whose value is the action ID and nothing else,
//!    and lists the [`UnavailableAction`]s with their reasons.
//! 2. On a click, the adapter builds an [`approval::Click`] (who, their groups or roles,
//!    where, which button) and calls [`Containment::click`] with the button's value. It
//!    shows the returned [`ClickReply`]: an approval request with the plan and Approve /
//!    Reject buttons, the result of an execution, a rejection or dismissal note in the
//!    thread, or a refusal to the clicker alone.
//! 3. When a reply carries a [`PostCheck`], the adapter spawns
//!    [`Containment::run_post_check`] and posts the report's `summary()` in the thread.
//!
//! Every state lives in the store, so a click may reach any replica, including one that
//! restarted after the offer. Of two simultaneous clicks, the store's compare-and-set lets
//! exactly one change the action, and only the click that moved it to `executing` calls
//! AWS.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use keycheck_core::AccessKeyId;
use keycheck_core::approval::{
    self, ActionId, ActionKind, ActionState, Actor, ChatChannel, Click, Decision, PendingAction,
    Refusal, StateChange,
};
use keycheck_core::evidence::live::LiveConfig;
use keycheck_core::playbook::Outcome;
use keycheck_core::remediation::{self, ContainConfig, Plan, PostCheckReport, Remediator, Target};
use keycheck_core::store::{AuditEntry, AuditEvent, InvestigationRecord, Scope, Store};
use tracing::{error, info, warn};

use crate::serve::EvidenceFactory;
use crate::user_error::internal_error;

/// The plan text stored for a Dismiss action, which changes nothing in AWS.
const DISMISS_PLAN: &str = r#"{"action":"dismiss"}"#;

/// The maximum number of characters of an unknown button value that the audit log keeps.
const MAX_AUDITED_VALUE: usize = 64;

/// Builds the [`Remediator`] of an investigation.
pub trait RemediatorFactory: Send + Sync {
    /// Returns the remediator for investigation `investigation_id`, whose ID names the
    /// sessions of any role it assumes.
    fn open(&self, investigation_id: &str) -> anyhow::Result<Remediator>;
}

/// Remediators with keycheck's own AWS credentials from the default chain, and the roles
/// and containment settings of the configuration.
pub struct LiveRemediators {
    /// The `[aws]` table.
    pub aws: LiveConfig,
    /// The `[contain]` table.
    pub contain: ContainConfig,
}

impl RemediatorFactory for LiveRemediators {
    fn open(&self, investigation_id: &str) -> anyhow::Result<Remediator> {
        Remediator::new(self.aws.clone(), self.contain.clone(), investigation_id)
            .context("cannot build the remediator from the [aws] and [contain] tables")
    }
}

/// Returns the button label of an action kind, the same on every platform.
pub fn label(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Deactivate => "Deactivate",
        ActionKind::Rotate => "Rotate",
        ActionKind::RevokeSessions => "Revoke sessions",
        ActionKind::Quarantine => "Quarantine",
        ActionKind::Dismiss => "Dismiss",
    }
}

/// An action offered under a diagnosis: one button.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedAction {
    /// The opaque ID, which is the button's value.
    pub id: ActionId,
    pub kind: ActionKind,
    /// The button's label, such as `Revoke sessions`.
    pub label: &'static str,
}

/// A recommended action that is not offered, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnavailableAction {
    pub kind: ActionKind,
    /// The reason it cannot run, in a sentence for chat, such as the user already having
    /// two keys.
    pub reason: String,
}

/// The actions offered under one diagnosis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// The buttons to show, in the diagnosis's order, Dismiss last. Empty when nothing
    /// could be offered.
    pub actions: Vec<OfferedAction>,
    /// The recommended actions that cannot run on this key.
    pub unavailable: Vec<UnavailableAction>,
}

/// The result of a click, for the adapter to show.
#[derive(Clone, Debug)]
pub enum ClickReply {
    /// Post the approval request in the thread, with Approve and Reject buttons whose
    /// value is the action ID.
    Requested(ApprovalRequest),
    /// The action ran. Post the result in the thread.
    Executed(Execution),
    /// The action ran and failed, or could not start. Post the error in the thread.
    Failed(ExecutionFailure),
    /// The request was rejected: post a note in the thread, and close the approval
    /// request's buttons.
    Rejected { action: PendingAction, by: Actor },
    /// The offer was dismissed: post a note in the thread and remove the buttons. `closed`
    /// lists the other offered actions dismissed with it.
    Dismissed {
        action: PendingAction,
        by: Actor,
        closed: Vec<ActionKind>,
    },
    /// The click changed nothing. Show [`Refusal::message`] to the clicker alone.
    Refused(Refusal),
}

/// An approval request to post.
#[derive(Clone, Debug)]
pub struct ApprovalRequest {
    /// The action as stored after the request: requester and deadline set.
    pub action: PendingAction,
    /// The plan that an approval runs, one sentence a line, as [`Plan::describe`]
    /// returns it.
    pub plan: Vec<String>,
    /// Whether the approver must be someone other than the requester.
    pub two_person_rule: bool,
}

/// An action that ran.
#[derive(Clone, Debug)]
pub struct Execution {
    /// The action as it was approved.
    pub action: PendingAction,
    /// The user whose click ran it.
    pub approved_by: Actor,
    /// The changes, with the AWS request IDs. For a rotation it names the new access key
    /// ID and the secret's ARN, never the secret.
    pub outcome: remediation::Outcome,
    /// The check to run later, after a deactivation.
    pub post_check: Option<PostCheck>,
}

/// An action that failed.
#[derive(Clone, Debug)]
pub struct ExecutionFailure {
    /// The action as it was approved.
    pub action: PendingAction,
    /// The user whose click ran it.
    pub approved_by: Actor,
    /// The error text for the thread: the remediation error, which names what failed,
    /// what was changed before and what to do, or `internal error (ref …)` for a failure
    /// inside keycheck.
    pub error: String,
}

/// The post-deactivation check of one action, due at a time.
///
/// NOTE: the due time lives only in the task that waits for it, so a bot restarted
/// before then never runs the check. Run `keycheck investigate` on the key instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostCheck {
    pub action_id: ActionId,
    pub investigation_id: String,
    pub key_id: AccessKeyId,
    /// When the key became inactive.
    pub deactivated_at: DateTime<Utc>,
    /// When to run the check: the deactivation plus `contain.post_check_delay`.
    pub due_at: DateTime<Utc>,
}

/// The containment service of one chat adapter.
pub struct Containment {
    store: Store,
    policy: approval::ApprovalPolicy,
    remediators: Arc<dyn RemediatorFactory>,
    evidence: Arc<dyn EvidenceFactory>,
    post_check_delay: Duration,
    bot: Actor,
}

impl Containment {
    /// Creates the service. `policy` contains the adapter's own requester and approver IDs.
    /// `bot` is the adapter's bot user, which the audit log records as the actor of offers
    /// and executions.
    pub fn new(
        store: Store,
        policy: approval::ApprovalPolicy,
        remediators: Arc<dyn RemediatorFactory>,
        evidence: Arc<dyn EvidenceFactory>,
        post_check_delay: Duration,
        bot: Actor,
    ) -> Containment {
        Containment {
            store,
            policy,
            remediators,
            evidence,
            post_check_delay,
            bot,
        }
    }

    /// Returns the approval policy.
    pub fn policy(&self) -> &approval::ApprovalPolicy {
        &self.policy
    }

    /// Returns the store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Offers the recommended actions of `outcome` in `channel`: plans each one against
    /// IAM, stores those that can run as pending actions, adds Dismiss when any could, and
    /// writes an `offered` audit entry per action. Planning changes nothing in AWS.
    ///
    /// Fails when the store fails or no remediator can be built.
    pub async fn offer(&self, outcome: &Outcome, channel: &ChatChannel) -> anyhow::Result<Offer> {
        let kinds = recommended_kinds(outcome);
        if kinds.is_empty() {
            return Ok(Offer::default());
        }
        let investigation_id = &outcome.investigation.id;
        self.ensure_investigation(outcome, channel).await?;

        let target = match Target::from_outcome(outcome) {
            Ok(target) => target,
            Err(error) => {
                let reason = error.to_string();
                info!(investigation_id, %reason, "no containment action offered: the target is unknown");
                let unavailable = kinds
                    .into_iter()
                    .map(|kind| UnavailableAction {
                        kind,
                        reason: reason.clone(),
                    })
                    .collect();
                return Ok(Offer {
                    actions: Vec::new(),
                    unavailable,
                });
            }
        };

        let mut offer = self.plan_offers(outcome, &target, kinds, channel).await?;
        if !offer.actions.is_empty() {
            let principal = target
                .owner
                .as_ref()
                .map(|owner| owner.arn())
                .unwrap_or_default();
            let dismiss = self
                .store_offer(
                    outcome,
                    ActionKind::Dismiss,
                    &principal,
                    DISMISS_PLAN,
                    channel,
                )
                .await?;
            offer.actions.push(dismiss);
        }
        Ok(offer)
    }

    /// Plans each action of `kinds` on `target` and stores those that change something.
    async fn plan_offers(
        &self,
        outcome: &Outcome,
        target: &Target,
        kinds: Vec<ActionKind>,
        channel: &ChatChannel,
    ) -> anyhow::Result<Offer> {
        let investigation_id = &outcome.investigation.id;
        let remediator = self.remediators.open(investigation_id)?;
        let mut offer = Offer::default();
        for kind in kinds {
            match remediator.plan(kind, target).await {
                Ok(plan) if plan.changes_nothing() => offer.unavailable.push(UnavailableAction {
                    kind,
                    reason: plan.describe().join(" "),
                }),
                Ok(plan) => {
                    let action = self
                        .store_offer(outcome, kind, &plan.principal(), &plan.to_json(), channel)
                        .await?;
                    offer.actions.push(action);
                }
                Err(error) => {
                    info!(investigation_id, action = %kind, error = %error, "containment action not offered");
                    offer.unavailable.push(UnavailableAction {
                        kind,
                        reason: error.to_string(),
                    });
                }
            }
        }
        Ok(offer)
    }

    /// Stores one offered action and records it in the audit log.
    async fn store_offer(
        &self,
        outcome: &Outcome,
        kind: ActionKind,
        principal: &str,
        plan: &str,
        channel: &ChatChannel,
    ) -> anyhow::Result<OfferedAction> {
        let action = PendingAction::offer(
            &outcome.investigation.id,
            kind,
            outcome.investigation.key.clone(),
            principal,
            plan,
            channel.clone(),
            Utc::now(),
        );
        let action = self
            .store
            .create_action(&action)
            .await
            .with_context(|| format!("cannot store the offered {kind} action"))?;
        let detail = format!(
            "{} offered in {}",
            offered_detail(&action),
            describe_channel(channel)
        );
        self.audit(
            AuditEvent::Offered,
            Some(&action),
            &self.bot,
            detail,
            None,
            None,
        )
        .await?;
        info!(action_id = %action.id, action = %kind, key_id = %action.key_id, "containment action offered");
        Ok(OfferedAction {
            id: action.id,
            kind,
            label: label(kind),
        })
    }

    /// Ensures the store contains the investigation, which every pending action refers to.
    ///
    /// The chat adapters store each investigation when they claim it. The exception is a
    /// run over an earlier claim that never posted, because that claim still names the
    /// earlier investigation. For such a run this claims the channel's scope, with a zero
    /// window so that the claim is always taken.
    async fn ensure_investigation(
        &self,
        outcome: &Outcome,
        channel: &ChatChannel,
    ) -> anyhow::Result<()> {
        let investigation = &outcome.investigation;
        if self.store.investigation(&investigation.id).await?.is_some() {
            return Ok(());
        }
        let scope = Scope::channel(channel.platform, &channel.workspace, &channel.channel);
        let mut record =
            InvestigationRecord::start(investigation.key.clone(), scope, "containment", Utc::now());
        record.id = investigation.id.clone();
        record.channel = Some(channel.channel.clone());
        self.store
            .claim_investigation(record, Duration::ZERO)
            .await
            .context("cannot store the investigation that offers containment actions")?;
        Ok(())
    }

    /// Decides a click on a button whose value is `button_value`, applies the decision,
    /// and returns what to show. An approved action runs before this returns, so the
    /// caller runs this in a task of its own, after acknowledging the click.
    ///
    /// Every call writes at least one audit entry, refusals included. Fails only when the
    /// store fails before anything ran, or the audit log cannot record an approval.
    pub async fn click(&self, button_value: &str, click: &Click) -> anyhow::Result<ClickReply> {
        let now = Utc::now();
        let Some(id) = ActionId::parse(button_value) else {
            return self
                .refuse(None, button_value, click, Refusal::UnknownAction)
                .await;
        };
        let Some(action) = self.store.action(&id).await? else {
            return self
                .refuse(None, button_value, click, Refusal::UnknownAction)
                .await;
        };

        match approval::decide(click, Some(&action), &self.policy, now) {
            Decision::Refuse(refusal) => self.refuse_and_expire(action, click, refusal, now).await,
            Decision::Request { expires_at } => self.request(action, click, expires_at, now).await,
            Decision::Execute { from } => self.approve(action, click, from, now).await,
            Decision::Reject => self.reject(action, click, now).await,
            Decision::Dismiss => self.dismiss(action, click, now).await,
        }
    }

    async fn request(
        &self,
        action: PendingAction,
        click: &Click,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<ClickReply> {
        let change = StateChange {
            expires_at: Some(expires_at),
            ..StateChange::new(ActionState::Offered, ActionState::Requested)
        };
        let Some(action) = self.apply(&action, change, click, now).await? else {
            return self.refuse_lost_race(&action.id, click).await;
        };

        let plan = plan_lines(&action);
        let detail = format!(
            "{} requested; approval needed by {} UTC; plan: {}",
            offered_detail(&action),
            expires_at.format("%Y-%m-%d %H:%M:%S"),
            plan.join(" ")
        );
        self.audit(
            AuditEvent::Requested,
            Some(&action),
            &click.actor,
            detail,
            None,
            None,
        )
        .await?;
        info!(action_id = %action.id, action = %action.kind, key_id = %action.key_id, user_id = %click.actor.user_id, "containment action requested");
        Ok(ClickReply::Requested(ApprovalRequest {
            action,
            plan,
            two_person_rule: self.policy.two_person_rule,
        }))
    }

    async fn approve(
        &self,
        action: PendingAction,
        click: &Click,
        from: ActionState,
        now: DateTime<Utc>,
    ) -> anyhow::Result<ClickReply> {
        let change = StateChange::new(from, ActionState::Approved);
        let Some(action) = self.apply(&action, change, click, now).await? else {
            return self.refuse_lost_race(&action.id, click).await;
        };

        let approval_mode = match from {
            ActionState::Offered => "approved in one click (two-person rule off)",
            _ => "approved",
        };
        let requester = action
            .requested_by
            .as_ref()
            .map_or("-", |actor| actor.user_id.as_str());
        let detail = format!(
            "{} {approval_mode}; requested by {requester}",
            offered_detail(&action)
        );
        self.audit(
            AuditEvent::Approved,
            Some(&action),
            &click.actor,
            detail,
            None,
            None,
        )
        .await?;
        info!(action_id = %action.id, action = %action.kind, key_id = %action.key_id, user_id = %click.actor.user_id, "containment action approved");
        self.execute(action, click).await
    }

    /// Runs an approved action, if this call is the one that moves it to `executing`.
    ///
    /// NOTE: a bot that stops while the action runs leaves it `executing` for good, with
    /// an `executing` audit entry and no result; nothing retries it.
    async fn execute(&self, action: PendingAction, click: &Click) -> anyhow::Result<ClickReply> {
        let running = StateChange::new(ActionState::Approved, ActionState::Executing);
        if !self
            .store
            .transition(&action.id, running, &self.bot, Utc::now())
            .await?
        {
            let refusal = Refusal::Closed {
                state: ActionState::Executing,
            };
            return self
                .refuse(Some(&action), action.id.as_str(), click, refusal)
                .await;
        }
        let plan = Plan::from_json(&action.plan);
        let detail = format!("{} executing", offered_detail(&action));
        self.audit(
            AuditEvent::Executing,
            Some(&action),
            &self.bot,
            detail,
            None,
            None,
        )
        .await?;

        let result = match plan {
            Ok(plan) => self.run_plan(&action, &plan).await,
            Err(error) => Err(Failure::Internal(
                anyhow::Error::new(error).context("the stored plan cannot be read"),
            )),
        };
        match result {
            Ok(outcome) => Ok(self.record_success(action, &click.actor, outcome).await),
            Err(failure) => Ok(self.record_failure(action, &click.actor, failure).await),
        }
    }

    async fn run_plan(
        &self,
        action: &PendingAction,
        plan: &Plan,
    ) -> Result<remediation::Outcome, Failure> {
        let remediator = self
            .remediators
            .open(&action.investigation_id)
            .map_err(Failure::Internal)?;
        remediator.execute(plan).await.map_err(Failure::Remediation)
    }

    /// Records a successful execution. AWS has changed by now, so a store failure is
    /// logged and the result is still returned for the thread.
    async fn record_success(
        &self,
        action: PendingAction,
        approver: &Actor,
        outcome: remediation::Outcome,
    ) -> ClickReply {
        let done = StateChange::new(ActionState::Executing, ActionState::Done);
        if let Err(error) = self
            .store
            .transition(&action.id, done, &self.bot, Utc::now())
            .await
        {
            error!(action_id = %action.id, error = %error, "the action ran but cannot be marked done; fix the store");
        }
        let detail = format!(
            "{} executed: {}",
            offered_detail(&action),
            outcome.describe().join("; ")
        );
        if let Err(error) = self
            .audit(
                AuditEvent::Executed,
                Some(&action),
                &self.bot,
                detail,
                outcome.request_ids(),
                Some("ok".to_string()),
            )
            .await
        {
            error!(action_id = %action.id, error = format!("{error:#}"), "the action ran but its audit entry was not written");
        }
        info!(action_id = %action.id, action = %action.kind, key_id = %action.key_id, request_ids = outcome.request_ids().as_deref().unwrap_or("none"), "containment action executed");

        let post_check = outcome.deactivated_at.map(|deactivated_at| PostCheck {
            action_id: action.id.clone(),
            investigation_id: action.investigation_id.clone(),
            key_id: action.key_id.clone(),
            deactivated_at,
            due_at: chrono::Duration::from_std(self.post_check_delay)
                .ok()
                .and_then(|delay| deactivated_at.checked_add_signed(delay))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        });
        ClickReply::Executed(Execution {
            action,
            approved_by: approver.clone(),
            outcome,
            post_check,
        })
    }

    async fn record_failure(
        &self,
        action: PendingAction,
        approver: &Actor,
        failure: Failure,
    ) -> ClickReply {
        let failed = StateChange::new(ActionState::Executing, ActionState::Failed);
        if let Err(error) = self
            .store
            .transition(&action.id, failed, &self.bot, Utc::now())
            .await
        {
            error!(action_id = %action.id, error = %error, "the failed action cannot be marked failed; fix the store");
        }
        let (shown, detail, request_id, code) = match &failure {
            Failure::Remediation(error) => (
                error.to_string(),
                error.to_string(),
                error.request_id().map(str::to_string),
                error.code(),
            ),
            Failure::Internal(error) => (
                internal_error(error, "a containment action could not start"),
                format!("{error:#}"),
                None,
                "internal_error".to_string(),
            ),
        };
        let detail = format!("{} failed: {detail}", offered_detail(&action));
        if let Err(error) = self
            .audit(
                AuditEvent::Failed,
                Some(&action),
                &self.bot,
                detail,
                request_id,
                Some(code.clone()),
            )
            .await
        {
            error!(action_id = %action.id, error = format!("{error:#}"), "the failure of an action was not written to the audit log");
        }
        warn!(action_id = %action.id, action = %action.kind, key_id = %action.key_id, code = %code, "containment action failed");
        ClickReply::Failed(ExecutionFailure {
            action,
            approved_by: approver.clone(),
            error: shown,
        })
    }

    async fn reject(
        &self,
        action: PendingAction,
        click: &Click,
        now: DateTime<Utc>,
    ) -> anyhow::Result<ClickReply> {
        let change = StateChange::new(ActionState::Requested, ActionState::Rejected);
        let Some(action) = self.apply(&action, change, click, now).await? else {
            return self.refuse_lost_race(&action.id, click).await;
        };
        let detail = format!(
            "{} rejected; nothing was changed in AWS",
            offered_detail(&action)
        );
        self.audit(
            AuditEvent::Rejected,
            Some(&action),
            &click.actor,
            detail,
            None,
            None,
        )
        .await?;
        info!(action_id = %action.id, action = %action.kind, key_id = %action.key_id, user_id = %click.actor.user_id, "containment action rejected");
        Ok(ClickReply::Rejected {
            action,
            by: click.actor.clone(),
        })
    }

    /// Dismisses the Dismiss action and every other action of the investigation that is
    /// still only offered in the same channel. Requested actions stay open for their
    /// approvers.
    async fn dismiss(
        &self,
        action: PendingAction,
        click: &Click,
        now: DateTime<Utc>,
    ) -> anyhow::Result<ClickReply> {
        let change = StateChange::new(ActionState::Offered, ActionState::Dismissed);
        let Some(action) = self.apply(&action, change, click, now).await? else {
            return self.refuse_lost_race(&action.id, click).await;
        };
        self.audit(
            AuditEvent::Dismissed,
            Some(&action),
            &click.actor,
            format!("{} clicked", offered_detail(&action)),
            None,
            None,
        )
        .await?;

        let mut closed = Vec::new();
        let siblings = self
            .store
            .actions_for_investigation(&action.investigation_id)
            .await?;
        for sibling in siblings {
            let open = sibling.state == ActionState::Offered && sibling.channel == action.channel;
            if !open || sibling.id == action.id {
                continue;
            }
            if self.apply(&sibling, change, click, now).await?.is_none() {
                continue;
            }
            let detail = format!("{} dismissed with the offer", offered_detail(&sibling));
            self.audit(
                AuditEvent::Dismissed,
                Some(&sibling),
                &click.actor,
                detail,
                None,
                None,
            )
            .await?;
            closed.push(sibling.kind);
        }
        info!(action_id = %action.id, key_id = %action.key_id, user_id = %click.actor.user_id, closed = closed.len(), "containment offer dismissed");
        Ok(ClickReply::Dismissed {
            action,
            by: click.actor.clone(),
            closed,
        })
    }

    /// Applies `change` to `action` as `click`'s user. Returns the action as stored after
    /// the change, or `None` when another click changed it first.
    async fn apply(
        &self,
        action: &PendingAction,
        change: StateChange,
        click: &Click,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<PendingAction>> {
        if !self
            .store
            .transition(&action.id, change, &click.actor, now)
            .await?
        {
            return Ok(None);
        }
        let stored = self
            .store
            .action(&action.id)
            .await?
            .with_context(|| format!("action {} disappeared from the store", action.id))?;
        Ok(Some(stored))
    }

    /// Refuses a click whose state change another click made first, with the reason the
    /// action's new state gives.
    async fn refuse_lost_race(&self, id: &ActionId, click: &Click) -> anyhow::Result<ClickReply> {
        let now = Utc::now();
        let current = self.store.action(id).await?;
        let refusal = match approval::decide(click, current.as_ref(), &self.policy, now) {
            Decision::Refuse(refusal) => refusal,
            _ => Refusal::Closed {
                state: current
                    .as_ref()
                    .map_or(ActionState::Offered, |action| action.state),
            },
        };
        self.refuse(current.as_ref(), id.as_str(), click, refusal)
            .await
    }

    /// Refuses a click on an existing action, first expiring the action when the refusal
    /// is its passed deadline.
    async fn refuse_and_expire(
        &self,
        action: PendingAction,
        click: &Click,
        refusal: Refusal,
        now: DateTime<Utc>,
    ) -> anyhow::Result<ClickReply> {
        let expiry = Decision::Refuse(refusal.clone()).state_change();
        if let Some(change) = expiry
            && self
                .store
                .transition(&action.id, change, &self.bot, now)
                .await?
        {
            let detail = format!(
                "{} expired: nobody approved it before the deadline",
                offered_detail(&action)
            );
            self.audit(
                AuditEvent::Expired,
                Some(&action),
                &self.bot,
                detail,
                None,
                None,
            )
            .await?;
            info!(action_id = %action.id, key_id = %action.key_id, "containment action expired");
        }
        self.refuse(Some(&action), action.id.as_str(), click, refusal)
            .await
    }

    /// Writes the refusal of `click` to the audit log and returns it. `value` is the
    /// button's value, recorded when it names no action.
    async fn refuse(
        &self,
        action: Option<&PendingAction>,
        value: &str,
        click: &Click,
        refusal: Refusal,
    ) -> anyhow::Result<ClickReply> {
        let clicked = match action {
            Some(action) => format!("{:?} click on {}", click.button, offered_detail(action)),
            None => {
                let truncated: String = value.chars().take(MAX_AUDITED_VALUE).collect();
                format!("{:?} click on unknown action {truncated:?}", click.button)
            }
        };
        let detail = format!(
            "{clicked} from {}: {}: {}",
            describe_channel(&click.channel),
            refusal.code(),
            refusal.message()
        );
        self.audit(
            AuditEvent::Refused,
            action,
            &click.actor,
            detail,
            None,
            Some(refusal.code().to_string()),
        )
        .await?;
        info!(action_id = action.map_or("-", |action| action.id.as_str()), user_id = %click.actor.user_id, reason = refusal.code(), "click refused");
        Ok(ClickReply::Refused(refusal))
    }

    async fn audit(
        &self,
        event: AuditEvent,
        action: Option<&PendingAction>,
        actor: &Actor,
        detail: String,
        aws_request_id: Option<String>,
        result: Option<String>,
    ) -> anyhow::Result<()> {
        let entry = AuditEntry {
            at: Utc::now(),
            investigation_id: action.map(|action| action.investigation_id.clone()),
            action_id: action.map(|action| action.id.clone()),
            key_id: action.map(|action| action.key_id.clone()),
            actor: actor.clone(),
            event,
            detail,
            aws_request_id,
            result,
        };
        self.store
            .append_audit(&entry)
            .await
            .with_context(|| format!("cannot write the {event} entry to the audit log"))?;
        crate::metrics::record_containment_event(action.map(|action| action.kind), event);
        Ok(())
    }

    /// Waits until `check` is due, then reads CloudTrail from the deactivation on and
    /// returns a report of whether the key or a session issued with it was used since.
    ///
    /// Fails when the evidence source cannot be built or cannot read CloudTrail.
    pub async fn run_post_check(&self, check: &PostCheck) -> anyhow::Result<PostCheckReport> {
        let wait = (check.due_at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        tokio::time::sleep(wait).await;

        let evidence = self.evidence.open(&check.investigation_id)?;
        // The sessions found by the investigation are not passed, because the check also
        // reads the 36 hours before the deactivation, which contain the call that issued
        // every session still valid.
        let report = remediation::check_after_deactivation(
            &*evidence,
            &check.key_id,
            &[],
            check.deactivated_at,
            Utc::now(),
        )
        .await
        .with_context(|| {
            format!(
                "the post-deactivation check of {} cannot read CloudTrail",
                check.key_id
            )
        })?;
        info!(action_id = %check.action_id, key_id = %check.key_id, verdict = ?report.verdict, "post-deactivation check finished");
        Ok(report)
    }
}

/// The reason an approved action did not run to the end.
enum Failure {
    /// AWS rejected a call or a precondition no longer held. Its text is for the approver.
    Remediation(remediation::RemediationError),
    /// keycheck itself failed, such as a stored plan it cannot read.
    Internal(anyhow::Error),
}

/// Returns the kinds of the diagnosis's recommended actions that keycheck can run, once
/// each, in the diagnosis's order.
fn recommended_kinds(outcome: &Outcome) -> Vec<ActionKind> {
    let mut kinds = Vec::new();
    for recommended in &outcome.diagnosis.actions {
        let Some(kind) = ActionKind::for_recommendation(recommended.kind) else {
            continue;
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

/// Returns the plan of a stored action, one sentence a line, as the approval request
/// shows it.
pub fn plan_lines(action: &PendingAction) -> Vec<String> {
    if action.kind == ActionKind::Dismiss {
        return vec!["Close the offer. Nothing changes in AWS.".to_string()];
    }
    match Plan::from_json(&action.plan) {
        Ok(plan) => plan.describe(),
        Err(error) => vec![format!(
            "The stored plan cannot be read ({error}), so approving it will fail. Run /keycheck again for a fresh plan."
        )],
    }
}

/// Names an action for the audit log: `deactivate AKIA… (arn:aws:iam::…:user/…)`.
fn offered_detail(action: &PendingAction) -> String {
    match action.principal.as_str() {
        "" => format!("{} {}", action.kind, action.key_id),
        principal => format!("{} {} ({principal})", action.kind, action.key_id),
    }
}

/// Names a channel for the audit log: `slack T0123/C0456`.
fn describe_channel(channel: &ChatChannel) -> String {
    format!(
        "{} {}/{}",
        channel.platform, channel.workspace, channel.channel
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct() {
        let kinds = [
            ActionKind::Deactivate,
            ActionKind::Rotate,
            ActionKind::RevokeSessions,
            ActionKind::Quarantine,
            ActionKind::Dismiss,
        ];
        let mut labels: Vec<&str> = kinds.iter().map(|kind| label(*kind)).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), kinds.len());
    }

    #[test]
    fn dismiss_plan_describes_no_change() {
        let action = PendingAction::offer(
            "kc-1",
            ActionKind::Dismiss,
            "AKIAIOSFODNN7EXAMPLE".parse().unwrap(),
            "",
            DISMISS_PLAN,
            ChatChannel {
                platform: approval::Platform::Slack,
                workspace: "T1".to_string(),
                channel: "C1".to_string(),
            },
            Utc::now(),
        );
        assert_eq!(
            plan_lines(&action),
            ["Close the offer. Nothing changes in AWS."]
        );
        assert_eq!(offered_detail(&action), "dismiss AKIAIOSFODNN7EXAMPLE");
    }
}
