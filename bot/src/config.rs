//! keycheck's configuration: one TOML file, plus environment variables for secrets.
//!
//! Every field is documented here; the configuration reference is generated from these
//! comments. Unknown fields are rejected so that a typo does not silently keep a default.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use keycheck_core::geo::GeoConfig;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Offline geolocation of source IP addresses.
    #[serde(default)]
    pub geo: GeoConfig,
    /// Settings of investigations.
    #[serde(default)]
    pub playbook: PlaybookSettings,
    /// Folder of handlebars templates that replace the built-in ones, with the same
    /// relative names (`terminal/step.hbs`, `slack/step.hbs`, …).
    pub templates: Option<PathBuf>,
}

/// Settings of investigations.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlaybookSettings {
    /// Length of the investigated window, such as `24h` or `7d`.
    pub window: String,
    /// How long one step may take before it is reported as timed out, such as `120s`.
    pub step_timeout: String,
    /// How far before the window the key's history is read, which "new" calls and
    /// addresses are measured against, such as `14d`.
    pub history: String,
    /// The window to widen to when nothing correlates in the requested one, such as `7d`,
    /// or `never`. Widening reuses the history already fetched, so it must not exceed
    /// `window` plus `history`.
    pub widen_to: String,
}

impl Default for PlaybookSettings {
    fn default() -> Self {
        PlaybookSettings {
            window: "24h".to_string(),
            step_timeout: "120s".to_string(),
            history: "14d".to_string(),
            widen_to: "7d".to_string(),
        }
    }
}

impl PlaybookSettings {
    /// Returns the window length.
    pub fn window(&self) -> Duration {
        parse_duration_field("playbook.window", &self.window).expect("validated on load")
    }

    /// Returns the step timeout.
    pub fn step_timeout(&self) -> Duration {
        parse_duration_field("playbook.step_timeout", &self.step_timeout).expect("validated on load")
    }

    /// Returns the history length.
    pub fn history(&self) -> Duration {
        parse_duration_field("playbook.history", &self.history).expect("validated on load")
    }

    /// Returns the window to widen to, or `None` when widening is off.
    pub fn widen_to(&self) -> Option<Duration> {
        if self.widen_to.as_str() == "never" {
            return None;
        }
        Some(parse_duration_field("playbook.widen_to", &self.widen_to).expect("validated on load"))
    }
}

fn parse_duration_field(field: &str, value: &str) -> anyhow::Result<Duration> {
    let duration = humantime::parse_duration(value)
        .with_context(|| format!("{field} = {value:?} is not a duration: write one such as 24h, 7d or 90s"))?;
    anyhow::ensure!(!duration.is_zero(), "{field} must be longer than zero");
    Ok(duration)
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        text.parse()
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }

    /// Checks every value that serde cannot check, naming the field and the fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        parse_duration_field("playbook.window", &self.playbook.window)?;
        parse_duration_field("playbook.step_timeout", &self.playbook.step_timeout)?;
        parse_duration_field("playbook.history", &self.playbook.history)?;
        if self.playbook.widen_to.as_str() != "never" {
            let widen_to = parse_duration_field("playbook.widen_to", &self.playbook.widen_to)?;
            anyhow::ensure!(
                widen_to <= self.playbook.window() + self.playbook.history(),
                "playbook.widen_to = {:?} reaches further back than playbook.window plus playbook.history, which is all that is fetched: lower it or raise playbook.history",
                self.playbook.widen_to
            );
        }
        Ok(())
    }
}

impl FromStr for Config {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_uses_defaults() {
        let config: Config = "".parse().unwrap();
        assert_eq!(config.playbook.window(), Duration::from_secs(24 * 3600));
        assert!(config.geo.country_db.is_none());
    }

    #[test]
    fn unknown_field_rejected_with_its_name() {
        let error = "[playbook]\nwindw = \"7d\"\n".parse::<Config>().unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("windw"), "{message}");
    }

    #[test]
    fn bad_duration_names_field_and_fix() {
        let error = "[playbook]\nwindow = \"seven days\"\n".parse::<Config>().unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("playbook.window"), "{message}");
        assert!(message.contains("24h"), "{message}");
    }
}
