//! `keycheck investigate`: run the playbook on a key and print the threaded report, with
//! progress while steps run.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use keycheck_core::evidence::Evidence;
use keycheck_core::evidence::live::LiveEvidence;
use keycheck_core::evidence::snapshot::Snapshot;
use keycheck_core::evidence::Window;
use keycheck_core::geo::Geo;
use keycheck_core::key::parse_key_input;
use keycheck_core::playbook::{self, Investigation, Origin, Outcome, PlaybookConfig, Progress};
use keycheck_core::render::view::HeaderView;
use keycheck_core::render::{Family, Renderer, ReportView, StepView};
use keycheck_core::report::{Status, StepId};
use keycheck_core::diagnosis::Verdict;
use keycheck_core::{AccessKeyId, demo};

use crate::cli::{Format, InvestigateArgs};
use crate::config::Config;

/// Installs rustls's crypto provider. Two providers are linked (ring through
/// slack-morphism, aws-lc-rs through the AWS SDK), and rustls panics at first use unless
/// the process picks one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs `keycheck investigate`.
pub async fn run(args: InvestigateArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let key = match resolve_key(&args) {
        Ok(key) => key,
        Err(message) => {
            eprintln!("keycheck: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    // The investigation exists before the evidence source, because its ID names the
    // session of every role the live source assumes.
    let investigation = new_investigation(key, args.window, args.end, config)?;
    let evidence = match open_evidence(&args, config, &investigation.id) {
        Ok(evidence) => evidence,
        Err(error) => {
            eprintln!("keycheck: {error:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let live = !args.demo && args.snapshot.is_none();
    let geo = Arc::new(Geo::open(&config.geo).context("cannot open the geolocation databases")?);
    let templates = args.templates.as_deref().or(config.templates.as_deref());
    let renderer = Renderer::with_overrides(templates)?;
    let playbook_config = playbook_config(config)?;

    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let mut stdout = std::io::stdout().lock();
    if args.format == Format::Terminal {
        let header = HeaderView::new(&investigation, &evidence.describe());
        writeln!(stdout, "{}", renderer.render(Family::Terminal, "header", &header)?)?;
    }

    let mut progress = ProgressLine::new(show_progress);
    let mut render_error = None;
    let mut metrics = crate::metrics::track_investigation(&investigation.origin);
    let outcome = playbook::run_to_end(investigation, evidence, geo, playbook_config, |message| {
        metrics.observe(message);
        match message {
            Progress::Started(step) => progress.started(*step),
            Progress::Finished(report) => {
                progress.finished(report.step);
                if args.format == Format::Terminal {
                    match renderer.render(Family::Terminal, "step", &StepView::new(report)) {
                        Ok(text) => {
                            progress.clear();
                            let _ = writeln!(stdout, "{text}");
                        }
                        Err(error) => render_error = Some(error),
                    }
                }
                progress.show();
            }
            Progress::Widened(note) => {
                progress.clear();
                if args.format == Format::Terminal {
                    let _ = writeln!(stdout, " ~ {note}\n");
                }
            }
            Progress::Diagnosed(_) => progress.clear(),
        }
    })
    .await;
    if let Some(error) = render_error {
        return Err(error.into());
    }

    let view = ReportView::new(&outcome);
    let text = match args.format {
        Format::Terminal => renderer.render(Family::Terminal, "diagnosis", &view.diagnosis)?,
        Format::Markdown => renderer.render(Family::Markdown, "report", &view)?,
        Format::Json => renderer.render(Family::Json, "report", &outcome)?,
    };
    writeln!(stdout, "{}", text.trim_end())?;
    if live && let Some(hint) = live_access_hint(&outcome) {
        eprintln!("keycheck: {hint}");
        return Ok(ExitCode::FAILURE);
    }
    if outcome.diagnosis.verdict == Verdict::Inconclusive {
        return Ok(ExitCode::from(INCONCLUSIVE_EXIT));
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit status of an investigation whose verdict is inconclusive, so that a script can
/// tell "nothing found" from "nothing could be read".
const INCONCLUSIVE_EXIT: u8 = 3;

fn resolve_key(args: &InvestigateArgs) -> Result<AccessKeyId, String> {
    let Some(text) = args.key.as_deref() else {
        if args.demo {
            return Ok(demo::key());
        }
        return Err("no access key ID given: run `keycheck investigate AKIA…`, or `keycheck investigate --demo`".to_string());
    };
    parse_key(text)
}

/// Parses the key ID a person typed, warning on standard error when a secret access key
/// was pasted with it. The secret is never echoed.
pub(crate) fn parse_key(text: &str) -> Result<AccessKeyId, String> {
    let input = parse_key_input(text).map_err(|e| e.to_string())?;
    if input.secret_pasted {
        eprintln!(
            "keycheck: a secret access key was pasted next to the key ID; it was not stored or echoed. Treat it as exposed."
        );
    }
    Ok(input.key)
}

/// Creates the investigation of `key` from the command line, with the window set by
/// `--window` (else `playbook.window`) and `--end`.
pub(crate) fn new_investigation(
    key: AccessKeyId,
    window: Option<std::time::Duration>,
    end: Option<chrono::DateTime<chrono::Utc>>,
    config: &Config,
) -> anyhow::Result<Investigation> {
    let mut investigation = Investigation::new(key, Origin::Cli);
    let window_length = window.unwrap_or_else(|| config.playbook.window());
    investigation.window_length = chrono::Duration::from_std(window_length).context("--window is too long")?;
    if let Some(end) = end {
        investigation.window = Some(Window::ending_at(end, investigation.window_length));
    }
    Ok(investigation)
}

/// Returns the playbook's limits from the `[playbook]` table.
pub(crate) fn playbook_config(config: &Config) -> anyhow::Result<PlaybookConfig> {
    Ok(PlaybookConfig {
        step_timeout: config.playbook.step_timeout(),
        history: chrono::Duration::from_std(config.playbook.history()).context("playbook.history is too long")?,
        widen_to: config
            .playbook
            .widen_to()
            .map(chrono::Duration::from_std)
            .transpose()
            .context("playbook.widen_to is too long")?,
    })
}

fn open_evidence(args: &InvestigateArgs, config: &Config, investigation_id: &str) -> anyhow::Result<Arc<dyn Evidence>> {
    if args.demo {
        return Ok(Arc::new(demo::snapshot()?));
    }
    if let Some(folder) = &args.snapshot {
        return Ok(Arc::new(Snapshot::open(folder)?));
    }
    Ok(Arc::new(LiveEvidence::new(config.aws.clone(), investigation_id)?))
}

/// Returns what to do when a live investigation could not reach AWS at all, judged from
/// step 0, which makes the first AWS call: no credentials, no region, or no endpoint that
/// responds. Returns `None` when step 0 reached AWS.
pub(crate) fn live_access_hint(outcome: &Outcome) -> Option<String> {
    let resolve = outcome.reports.iter().find(|r| r.step == StepId::Resolve)?;
    if !matches!(resolve.status, Status::Error | Status::NotAvailable) {
        return None;
    }
    let text = match &resolve.failure {
        Some(failure) => failure.message.as_str(),
        None => resolve.summary.as_str(),
    };
    access_hint(text)
}

/// Returns what to do about an AWS error text that shows keycheck could not reach AWS,
/// or `None` for any other error.
pub(crate) fn access_hint(error: &str) -> Option<String> {
    let lower = error.to_ascii_lowercase();
    // The live evidence source writes these phrases; the report shows the whole error.
    if lower.contains("no aws credentials found") {
        return Some(
            "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) in the environment, or configure [aws] profile in the configuration file".to_string(),
        );
    }
    if lower.contains("aws region") {
        return Some("no AWS region set: configure [aws] region, or set AWS_REGION".to_string());
    }
    if lower.contains("no response from the endpoint") || lower.contains("timed out connecting") {
        return Some(
            "AWS did not answer: check the network, a proxy, or [aws] endpoint_url in the configuration file".to_string(),
        );
    }
    None
}

/// Fails unless `out` is missing or an empty folder, so that writing a snapshot never
/// mixes with or overwrites other files.
pub(crate) fn ensure_new_folder(out: &Path) -> anyhow::Result<()> {
    if out.exists() && out.read_dir().map(|mut d| d.next().is_some()).unwrap_or(true) {
        anyhow::bail!("{} exists and is not empty: pass a new folder to --out", out.display());
    }
    Ok(())
}

/// Writes the demonstration incident as a snapshot folder.
pub fn write_demo(out: &Path) -> anyhow::Result<ExitCode> {
    ensure_new_folder(out)?;
    for (name, bytes) in demo::files() {
        let path = out.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "wrote the demonstration incident to {}; investigate it with: keycheck investigate {} --snapshot {}",
        out.display(),
        demo::key(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A one-line progress display on standard error: which steps are still running.
struct ProgressLine {
    enabled: bool,
    running: BTreeSet<StepId>,
    finished: usize,
}

impl ProgressLine {
    fn new(enabled: bool) -> ProgressLine {
        ProgressLine {
            enabled,
            running: BTreeSet::new(),
            finished: 0,
        }
    }

    fn started(&mut self, step: StepId) {
        self.running.insert(step);
        self.show();
    }

    fn finished(&mut self, step: StepId) {
        self.running.remove(&step);
        self.finished += 1;
    }

    fn show(&self) {
        if !self.enabled || self.running.is_empty() {
            return;
        }
        let names: Vec<&str> = self.running.iter().map(|s| s.name()).collect();
        eprint!("\r\x1b[2K  … {}/{} steps done; running: {}", self.finished, StepId::ALL.len(), names.join(", "));
        let _ = std::io::stderr().flush();
    }

    fn clear(&self) {
        if self.enabled {
            eprint!("\r\x1b[2K");
        }
    }
}
