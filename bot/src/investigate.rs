//! `keycheck investigate`: run the playbook on a key and print the threaded report, with
//! progress while steps run.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use keycheck_core::evidence::Evidence;
use keycheck_core::evidence::snapshot::Snapshot;
use keycheck_core::evidence::Window;
use keycheck_core::geo::Geo;
use keycheck_core::key::parse_key_input;
use keycheck_core::playbook::{self, Investigation, Origin, PlaybookConfig, Progress};
use keycheck_core::render::view::HeaderView;
use keycheck_core::render::{Family, Renderer, ReportView, StepView};
use keycheck_core::report::StepId;
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
    let evidence = match open_evidence(&args) {
        Ok(evidence) => evidence,
        Err(error) => {
            eprintln!("keycheck: {error:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let geo = Arc::new(Geo::open(&config.geo).context("cannot open the geolocation databases")?);
    let templates = args.templates.as_deref().or(config.templates.as_deref());
    let renderer = Renderer::with_overrides(templates)?;

    let mut investigation = Investigation::new(key, Origin::Cli);
    let window_length = args.window.unwrap_or_else(|| config.playbook.window());
    investigation.window_length = chrono::Duration::from_std(window_length).context("--window is too long")?;
    if let Some(end) = args.end {
        investigation.window = Some(Window::ending_at(end, investigation.window_length));
    }
    let playbook_config = PlaybookConfig {
        step_timeout: config.playbook.step_timeout(),
        history: chrono::Duration::from_std(config.playbook.history()).context("playbook.history is too long")?,
        widen_to: config
            .playbook
            .widen_to()
            .map(chrono::Duration::from_std)
            .transpose()
            .context("playbook.widen_to is too long")?,
    };

    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let mut stdout = std::io::stdout().lock();
    if args.format == Format::Terminal {
        let header = HeaderView::new(&investigation, &evidence.describe());
        writeln!(stdout, "{}", renderer.render(Family::Terminal, "header", &header)?)?;
    }

    let mut progress = ProgressLine::new(show_progress);
    let mut render_error = None;
    let outcome = playbook::run_to_end(investigation, evidence, geo, playbook_config, |message| {
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
    Ok(ExitCode::SUCCESS)
}

fn resolve_key(args: &InvestigateArgs) -> Result<AccessKeyId, String> {
    let Some(text) = args.key.as_deref() else {
        if args.demo {
            return Ok(demo::key());
        }
        return Err("no access key ID given: run `keycheck investigate AKIA…`, or `keycheck investigate --demo`".to_string());
    };
    let input = parse_key_input(text).map_err(|e| e.to_string())?;
    if input.secret_pasted {
        eprintln!(
            "keycheck: a secret access key was pasted next to the key ID; it was not stored or echoed. Treat it as exposed."
        );
    }
    Ok(input.key)
}

fn open_evidence(args: &InvestigateArgs) -> anyhow::Result<Arc<dyn Evidence>> {
    if args.demo {
        return Ok(Arc::new(demo::snapshot()?));
    }
    if let Some(folder) = &args.snapshot {
        return Ok(Arc::new(Snapshot::open(folder)?));
    }
    anyhow::bail!(
        "live investigation against AWS is not available in this build yet: pass --snapshot DIR with exported evidence, or --demo"
    )
}

/// Writes the demonstration incident as a snapshot folder.
pub fn write_demo(out: &Path) -> anyhow::Result<ExitCode> {
    if out.exists() && out.read_dir().map(|mut d| d.next().is_some()).unwrap_or(true) {
        anyhow::bail!("{} exists and is not empty: pass a new folder to --out", out.display());
    }
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
