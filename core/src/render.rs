//! The handlebars registry: templates embedded at build time from `templates/`, optionally
//! overridden from a folder, rendered in strict mode, with errors returned to the caller.
//!
//! Templates receive view structs with ready-formatted fields (built in `view`); logic in a
//! template stops at `if` and `each`. Each output family has its own escaping: none for
//! the terminal and Markdown, Slack's `&`/`<`/`>` escaping for Slack, JSON string escaping
//! for JSON.

pub mod view;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use handlebars::{Handlebars, handlebars_helper};

pub use view::{DiagnosisView, ReportView, StepView};

/// An output family; each has its own escaping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Plain text for a terminal.
    Terminal,
    /// GitHub-flavoured Markdown for tickets.
    Markdown,
    /// JSON for machines.
    Json,
    /// Slack Block Kit JSON with mrkdwn text.
    Slack,
    /// Discord message JSON with Markdown text.
    Discord,
}

impl Family {
    fn folder(self) -> &'static str {
        match self {
            Family::Terminal => "terminal",
            Family::Markdown => "markdown",
            Family::Json => "json",
            Family::Slack => "slack",
            Family::Discord => "discord",
        }
    }

    fn from_folder(folder: &str) -> Option<Family> {
        [Family::Terminal, Family::Markdown, Family::Json, Family::Slack, Family::Discord]
            .into_iter()
            .find(|f| f.folder() == folder)
    }
}

/// A template keycheck ships, as `(family, name, source)`.
type Embedded = (Family, &'static str, &'static str);

macro_rules! embed {
    ($family:expr, $folder:literal, $name:literal) => {
        (
            $family,
            $name,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../templates/", $folder, "/", $name, ".hbs")),
        )
    };
}

/// Every built-in template.
const EMBEDDED: &[Embedded] = &[
    embed!(Family::Terminal, "terminal", "header"),
    embed!(Family::Terminal, "terminal", "step"),
    embed!(Family::Terminal, "terminal", "diagnosis"),
    embed!(Family::Terminal, "terminal", "report"),
    embed!(Family::Markdown, "markdown", "step"),
    embed!(Family::Markdown, "markdown", "diagnosis"),
    embed!(Family::Markdown, "markdown", "report"),
    embed!(Family::Json, "json", "report"),
    embed!(Family::Slack, "slack", "root"),
    embed!(Family::Slack, "slack", "step"),
    embed!(Family::Slack, "slack", "diagnosis"),
    embed!(Family::Slack, "slack", "notice"),
    embed!(Family::Slack, "slack", "help"),
    embed!(Family::Slack, "slack", "approval"),
    embed!(Family::Slack, "slack", "action_result"),
    embed!(Family::Discord, "discord", "root"),
    embed!(Family::Discord, "discord", "step"),
    embed!(Family::Discord, "discord", "diagnosis"),
    embed!(Family::Discord, "discord", "notice"),
    embed!(Family::Discord, "discord", "approval"),
    embed!(Family::Discord, "discord", "action_result"),
];

/// Error loading or rendering a template.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read template folder {path}: {source}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "template {path} does not replace a built-in template: expected one of {expected}"
    )]
    UnknownTemplate { path: PathBuf, expected: String },
    #[error("template {name} is invalid: {message}")]
    Invalid { name: String, message: String },
    #[error("template {name} failed to render: {message}")]
    Render { name: String, message: String },
}

/// Renders views through the embedded (or overriding) templates.
pub struct Renderer {
    registries: BTreeMap<Family, Handlebars<'static>>,
}

impl Renderer {
    /// Creates a renderer with the built-in templates only.
    pub fn new() -> Renderer {
        Renderer::with_overrides(None).expect("built-in templates are valid; a test checks them")
    }

    /// Creates a renderer whose templates come from `folder` where it has them
    /// (`slack/step.hbs` replaces the built-in `slack/step`), and are built in otherwise.
    pub fn with_overrides(folder: Option<&Path>) -> Result<Renderer, RenderError> {
        let mut sources: BTreeMap<(Family, String), (String, String)> = EMBEDDED
            .iter()
            .map(|(family, name, source)| {
                ((*family, name.to_string()), (format!("{}/{name}", family.folder()), source.to_string()))
            })
            .collect();
        if let Some(folder) = folder {
            for (key, value) in read_overrides(folder, &sources)? {
                sources.insert(key, value);
            }
        }

        let mut registries = BTreeMap::new();
        for ((family, name), (label, source)) in sources {
            let registry = registries.entry(family).or_insert_with(|| registry_for(family));
            registry
                .register_template_string(&name, source)
                .map_err(|e| RenderError::Invalid {
                    name: label.clone(),
                    message: e.to_string(),
                })?;
        }
        Ok(Renderer { registries })
    }

    /// Renders template `name` of `family` with `view`.
    pub fn render<T: serde::Serialize>(&self, family: Family, name: &str, view: &T) -> Result<String, RenderError> {
        let label = format!("{}/{name}", family.folder());
        let registry = self.registries.get(&family).ok_or_else(|| RenderError::Render {
            name: label.clone(),
            message: "no templates of this family are loaded".to_string(),
        })?;
        registry.render(name, view).map_err(|e| RenderError::Render {
            name: label,
            message: e.to_string(),
        })
    }

    /// Returns true when a template `name` of `family` exists.
    pub fn has_template(&self, family: Family, name: &str) -> bool {
        self.registries.get(&family).is_some_and(|r| r.has_template(name))
    }
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

/// Escapes `&`, `<` and `>`, the three characters Slack's mrkdwn treats as control characters.
pub fn escape_slack(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

handlebars_helper!(json_helper: |value: Json| serde_json::to_string_pretty(value).unwrap_or_default());
handlebars_helper!(json_string: |value: str| serde_json::to_string(value).unwrap_or_default());

fn registry_for(family: Family) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    match family {
        Family::Terminal | Family::Markdown | Family::Discord => {
            registry.register_escape_fn(handlebars::no_escape)
        }
        Family::Slack => registry.register_escape_fn(escape_slack),
        Family::Json => registry.register_escape_fn(handlebars::no_escape),
    }
    registry.register_helper("json", Box::new(json_helper));
    registry.register_helper("json_string", Box::new(json_string));
    registry
}

/// Reads override templates from `folder`; each must replace a known template.
fn read_overrides(
    folder: &Path,
    known: &BTreeMap<(Family, String), (String, String)>,
) -> Result<Vec<((Family, String), (String, String))>, RenderError> {
    let folder_error = |source| RenderError::Folder {
        path: folder.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for family_entry in std::fs::read_dir(folder).map_err(folder_error)? {
        let family_entry = family_entry.map_err(folder_error)?;
        let family_path = family_entry.path();
        if !family_path.is_dir() {
            continue;
        }
        let folder_name = family_entry.file_name().to_string_lossy().to_string();
        for entry in std::fs::read_dir(&family_path).map_err(folder_error)? {
            let path = entry.map_err(folder_error)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("hbs") {
                continue;
            }
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let key = Family::from_folder(&folder_name).map(|f| (f, name.clone()));
            let Some(key) = key.filter(|k| known.contains_key(k)) else {
                let expected: Vec<&str> = known.values().map(|(label, _)| label.as_str()).collect();
                return Err(RenderError::UnknownTemplate {
                    path,
                    expected: expected.join(", "),
                });
            };
            let source = std::fs::read_to_string(&path).map_err(|source| RenderError::Folder {
                path: path.clone(),
                source,
            })?;
            found.push((key, (format!("{folder_name}/{name}"), source)));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_compile() {
        let renderer = Renderer::with_overrides(None).expect("built-in templates compile");
        for (family, name, _) in EMBEDDED {
            assert!(renderer.has_template(*family, name), "{family:?}/{name}");
        }
    }

    #[test]
    fn override_replaces_built_in() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir(folder.path().join("terminal")).unwrap();
        std::fs::write(folder.path().join("terminal/header.hbs"), "custom {{key_id}}").unwrap();
        let renderer = Renderer::with_overrides(Some(folder.path())).unwrap();
        let text = renderer
            .render(Family::Terminal, "header", &serde_json::json!({"key_id": "AKIAIOSFODNN7EXAMPLE"}))
            .unwrap();
        assert_eq!(text, "custom AKIAIOSFODNN7EXAMPLE");
    }

    #[test]
    fn override_with_unknown_name_rejected() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir(folder.path().join("terminal")).unwrap();
        std::fs::write(folder.path().join("terminal/haeder.hbs"), "x").unwrap();
        let error = Renderer::with_overrides(Some(folder.path())).err().expect("rejected");
        let message = error.to_string();
        assert!(message.contains("haeder.hbs"), "{message}");
        assert!(message.contains("terminal/header"), "{message}");
    }

    #[test]
    fn invalid_override_reports_template() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir(folder.path().join("markdown")).unwrap();
        std::fs::write(folder.path().join("markdown/step.hbs"), "{{#each findings}} unclosed").unwrap();
        let error = Renderer::with_overrides(Some(folder.path())).err().expect("rejected");
        assert!(error.to_string().contains("markdown/step"), "{error}");
    }

    #[test]
    fn strict_mode_reports_missing_field() {
        let renderer = Renderer::new();
        let error = renderer
            .render(Family::Terminal, "header", &serde_json::json!({"key_id": "AKIAIOSFODNN7EXAMPLE"}))
            .unwrap_err();
        assert!(error.to_string().contains("terminal/header"), "{error}");
    }

    #[test]
    fn slack_escaping_applies_to_fields() {
        assert_eq!(escape_slack("<a & b>"), "&lt;a &amp; b&gt;");
    }
}
