//! `keycheck contain ACTION KEY` and `keycheck audit`: contain a leaked key from the
//! terminal and read the audit log.
//!
//! `contain` reads the key's account, owner and sessions through the live evidence source,
//! prints the plan, prompts for confirmation on a terminal (unless `--yes`), executes, and
//! prints the outcome. Every step from the request on is appended to the audit log of the
//! configured store: requested, approved or rejected, then executed or failed, with the AWS
//! request IDs. `--dry-run` prints the plan, changes nothing and writes nothing.
//!
//! The person at the terminal both requests and approves; the two-person rule of chat
//! does not apply here, because whoever runs this has the AWS credentials anyway.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::{Args, ValueEnum};
use keycheck_core::AccessKeyId;
use keycheck_core::approval::{ActionKind, Actor, Platform};
use keycheck_core::evidence::live::LiveEvidence;
use keycheck_core::key::parse_key_input;
use keycheck_core::playbook::new_investigation_id;
use keycheck_core::remediation::{Outcome, Plan, RemediationError, Remediator, Target};
use keycheck_core::store::{AuditEntry, AuditEvent, Store, display_url};

use crate::config::Config;

/// Arguments of `keycheck contain`.
#[derive(Debug, Args)]
pub struct ContainArgs {
    /// The containment action.
    #[arg(value_enum)]
    pub action: ContainAction,

    /// The access key ID (AKIA… or ASIA…).
    pub key: String,

    /// Print the plan and change nothing. Nothing is written to the audit log.
    #[arg(long)]
    pub dry_run: bool,

    /// Execute the plan without asking for confirmation. Needed when standard input is
    /// not a terminal.
    #[arg(long)]
    pub yes: bool,

    /// Investigation ID to record the action under, such as kc-0123456789. Rotation tags
    /// the new secret with it. Default: a new ID.
    #[arg(long)]
    pub investigation: Option<String>,
}

/// A containment action on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ContainAction {
    /// Set the access key to Inactive, and no other key of its user.
    Deactivate,
    /// Create a new key for the user, store its secret in Secrets Manager, deactivate the old key.
    Rotate,
    /// Deny the sessions issued with the key (or the temporary key's own) through an inline policy.
    RevokeSessions,
    /// Attach the quarantine policy to the key's user or role.
    Quarantine,
}

impl ContainAction {
    fn kind(self) -> ActionKind {
        match self {
            ContainAction::Deactivate => ActionKind::Deactivate,
            ContainAction::Rotate => ActionKind::Rotate,
            ContainAction::RevokeSessions => ActionKind::RevokeSessions,
            ContainAction::Quarantine => ActionKind::Quarantine,
        }
    }
}

/// Arguments of `keycheck audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Show only the entries about this access key ID.
    #[arg(long)]
    pub key: Option<String>,

    /// Print one JSON object a line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `keycheck contain`.
pub async fn run(args: ContainArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let key = match parse_key(&args.key) {
        Ok(key) => key,
        Err(message) => {
            eprintln!("keycheck: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    let kind = args.action.kind();
    let investigation_id = args
        .investigation
        .clone()
        .unwrap_or_else(new_investigation_id);
    let will_execute = !args.dry_run;
    if will_execute && !args.yes && !std::io::stdin().is_terminal() {
        eprintln!(
            "keycheck: standard input is not a terminal, so keycheck cannot ask for confirmation: pass --yes to execute the plan, or --dry-run to only print it"
        );
        return Ok(ExitCode::from(2));
    }

    // The store opens first, so that nothing changes in AWS unless it can be recorded.
    let store = match will_execute {
        true => Some(open_store(config).await?),
        false => None,
    };
    let audit = store.as_ref().map(|store| AuditLog {
        store,
        investigation_id: &investigation_id,
        key: &key,
        actor: local_actor(),
    });

    let remediator = Remediator::new(
        config.aws.clone(),
        config.contain.clone(),
        &investigation_id,
    )
    .context("invalid [aws] or [contain] configuration")?;
    let evidence = LiveEvidence::new(config.aws.clone(), &investigation_id)
        .context("invalid [aws] configuration")?;
    let read_sessions = kind == ActionKind::RevokeSessions;
    let planned = match Target::resolve(
        &evidence,
        &key,
        &investigation_id,
        read_sessions,
        Utc::now(),
    )
    .await
    {
        Ok(target) => remediator.plan(kind, &target).await,
        Err(error) => Err(error),
    };
    let plan = match planned {
        Ok(plan) => plan,
        Err(error) => {
            if let Some(audit) = &audit {
                audit
                    .append(AuditEvent::Requested, &format!("{kind} {key}"), None, None)
                    .await?;
                audit.failed(&error).await?;
            }
            eprintln!("keycheck: cannot {}: {error}", action_words(kind));
            return Ok(ExitCode::FAILURE);
        }
    };

    let mut stdout = std::io::stdout().lock();
    print_plan(&mut stdout, &plan)?;
    let Some(audit) = audit else {
        writeln!(stdout, "Dry run: nothing was changed.")?;
        return Ok(ExitCode::SUCCESS);
    };

    audit
        .append(AuditEvent::Requested, &plan_detail(&plan), None, None)
        .await?;
    if !plan.changes_nothing() && !args.yes && !confirm()? {
        audit
            .append(
                AuditEvent::Rejected,
                "declined at the confirmation prompt",
                None,
                None,
            )
            .await?;
        writeln!(stdout, "Nothing was changed.")?;
        return Ok(ExitCode::FAILURE);
    }
    let approval = if plan.changes_nothing() {
        "not confirmed, because the plan changes nothing"
    } else if args.yes {
        "approved with --yes"
    } else {
        "confirmed at the terminal"
    };
    audit
        .append(AuditEvent::Approved, approval, None, None)
        .await?;

    match remediator.execute(&plan).await {
        // The result is shown before it is recorded, so that a failing store cannot hide
        // what changed in AWS.
        Ok(outcome) => {
            print_outcome(&mut stdout, &outcome)?;
            audit.executed(&outcome).await?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("keycheck: {} failed: {error}", action_words(kind));
            audit.failed(&error).await?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Runs `keycheck audit`.
pub async fn run_audit(args: AuditArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let key = match args.key.as_deref().map(parse_key).transpose() {
        Ok(key) => key,
        Err(message) => {
            eprintln!("keycheck: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    // Opening a SQLite store creates it, so a mistyped path or another working folder
    // would show an empty log instead of the one the bot writes.
    if let Some(path) = keycheck_core::store::sqlite_file(&config.store.database_url)
        && !path.exists()
    {
        anyhow::bail!(
            "no audit log at {}: keycheck writes it on the first containment action. Run audit from the folder the bot uses, or pass --config with its store.database_url",
            path.display()
        );
    }
    let store = open_store(config).await?;
    let entries = store
        .audit(key.as_ref())
        .await
        .context("cannot read the audit log")?;

    let mut stdout = std::io::stdout().lock();
    if args.json {
        for entry in &entries {
            writeln!(stdout, "{}", serde_json::to_string(entry)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        let url = store.url();
        match &key {
            Some(key) => writeln!(stdout, "The audit log at {url} has no entry for {key}.")?,
            None => writeln!(stdout, "The audit log at {url} is empty.")?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    for entry in &entries {
        writeln!(stdout, "{}", audit_line(entry))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_key(text: &str) -> Result<AccessKeyId, String> {
    let input = parse_key_input(text).map_err(|error| error.to_string())?;
    if input.secret_pasted {
        eprintln!(
            "keycheck: a secret access key was given next to the key ID; it was not stored or echoed. Treat it as exposed."
        );
    }
    Ok(input.key)
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = &config.store.database_url;
    Store::open(url).await.with_context(|| {
        format!(
            "store.database_url = {:?}: cannot open the audit log",
            display_url(url)
        )
    })
}

/// Returns the person at the terminal, by the login name of the environment.
fn local_actor() -> Actor {
    let name = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|variable| {
            std::env::var(variable)
                .ok()
                .filter(|value| !value.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string());
    Actor {
        platform: Platform::Cli,
        user_id: name.clone(),
        display_name: name,
    }
}

/// Prompts on standard error and reads the reply from standard input.
fn confirm() -> anyhow::Result<bool> {
    eprint!("Execute this plan? Type yes to continue: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the reply from standard input")?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn action_words(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Deactivate => "deactivate",
        ActionKind::Rotate => "rotate",
        ActionKind::RevokeSessions => "revoke sessions",
        ActionKind::Quarantine => "quarantine",
        ActionKind::Dismiss => "dismiss",
    }
}

fn print_plan(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    writeln!(
        out,
        "Plan: {} {} (investigation {})",
        action_words(plan.kind()),
        plan.key_id(),
        plan.investigation_id()
    )?;
    for line in plan.describe() {
        writeln!(out, "  - {line}")?;
    }
    Ok(())
}

fn print_outcome(out: &mut impl Write, outcome: &Outcome) -> std::io::Result<()> {
    writeln!(
        out,
        "Done: {} {}",
        action_words(outcome.kind),
        outcome.key_id
    )?;
    for line in outcome.describe() {
        writeln!(out, "  - {line}")?;
    }
    if let (Some(key_id), Some(arn)) = (&outcome.new_key_id, &outcome.secret_arn) {
        writeln!(
            out,
            "The new key {key_id} is in Secrets Manager secret {arn}; read it there with `aws secretsmanager get-secret-value --secret-id {arn}`."
        )?;
    }
    Ok(())
}

/// Returns the audit detail of a plan: the action, then the plan's sentences.
fn plan_detail(plan: &Plan) -> String {
    format!(
        "{} {}: {}",
        plan.kind(),
        plan.key_id(),
        plan.describe().join(" ")
    )
}

fn audit_line(entry: &AuditEntry) -> String {
    let key = entry
        .key_id
        .as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string);
    let mut line = format!(
        "{}  {:<9}  {}  {}:{}",
        entry.at.format("%Y-%m-%dT%H:%M:%SZ"),
        entry.event.as_str(),
        key,
        entry.actor.platform,
        entry.actor.user_id
    );
    if let Some(investigation_id) = &entry.investigation_id {
        line.push_str(&format!("  investigation {investigation_id}"));
    }
    if let Some(result) = &entry.result {
        line.push_str(&format!("  result {result}"));
    }
    if let Some(request_id) = &entry.aws_request_id {
        line.push_str(&format!("  request {request_id}"));
    }
    line.push_str(&format!("\n    {}", entry.detail));
    line
}

/// Appends this run's entries to the audit log.
struct AuditLog<'a> {
    store: &'a Store,
    investigation_id: &'a str,
    key: &'a AccessKeyId,
    actor: Actor,
}

impl AuditLog<'_> {
    async fn append(
        &self,
        event: AuditEvent,
        detail: &str,
        aws_request_id: Option<String>,
        result: Option<String>,
    ) -> anyhow::Result<()> {
        let entry = AuditEntry {
            at: Utc::now(),
            investigation_id: Some(self.investigation_id.to_string()),
            action_id: None,
            key_id: Some(self.key.clone()),
            actor: self.actor.clone(),
            event,
            detail: detail.to_string(),
            aws_request_id,
            result,
        };
        self.store
            .append_audit(&entry)
            .await
            .with_context(|| format!("cannot write the {event} entry to the audit log"))
    }

    async fn executed(&self, outcome: &Outcome) -> anyhow::Result<()> {
        let detail = outcome.describe().join("; ");
        self.append(
            AuditEvent::Executed,
            &detail,
            outcome.request_ids(),
            Some("ok".to_string()),
        )
        .await
    }

    async fn failed(&self, error: &RemediationError) -> anyhow::Result<()> {
        self.append(
            AuditEvent::Failed,
            &error.to_string(),
            error.request_id().map(str::to_string),
            Some(error.code()),
        )
        .await
    }
}
