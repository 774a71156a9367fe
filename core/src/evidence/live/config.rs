//! Settings of the live evidence source: where the AWS credentials come from, which role
//! to assume in each account, where CloudTrail lives, and the limits on every AWS call.
//!
//! The bot reads this as the `[aws]` table of its TOML file, so errors name fields as
//! `aws.<field>`. Secrets never appear here: credentials come from the AWS default chain
//! (environment, profile, SSO, instance role) or a named profile.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The name of the TOML table that contains these settings, used in error messages.
pub const CONFIG_TABLE: &str = "aws";

/// Settings of the live evidence source.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// Home region: where STS, IAM and the CloudTrail lookups are called, and the first of
    /// the regions searched for findings. Default: the region of the environment or
    /// profile (`AWS_REGION`, `region =` in `~/.aws/config`).
    #[serde(default)]
    pub region: Option<String>,
    /// Named profile from `~/.aws/config` for keycheck's own credentials. Default: the
    /// default credential chain.
    #[serde(default)]
    pub profile: Option<String>,
    /// The role keycheck assumes in each account, by 12-digit account ID. An account
    /// without an entry is reachable only when it is keycheck's own account.
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountAccess>,
    /// CloudWatch Logs log groups that receive CloudTrail, as names in the investigated
    /// account's home region or as log group ARNs (`arn:aws:logs:REGION:ACCOUNT:log-group:NAME`).
    /// Default: the log groups of the trails (`cloudtrail:DescribeTrails`), else every log
    /// group whose name contains `cloudtrail`.
    #[serde(default)]
    pub log_groups: Vec<String>,
    /// Regions searched for GuardDuty, Security Hub and Access Analyzer findings, CloudTrail
    /// `LookupEvents` and stored copies of the key. Default: the home region plus every
    /// region the key was seen in (its last-used record and its CloudTrail events).
    #[serde(default)]
    pub regions: Vec<String>,
    /// The method that reads CloudTrail events from CloudWatch Logs.
    #[serde(default)]
    pub query: QueryMode,
    /// Whether to read CloudTrail `LookupEvents` (management events of the last 90 days)
    /// when no log group receives the trail.
    #[serde(default = "enabled")]
    pub lookup_events_fallback: bool,
    /// Maximum time for one HTTP attempt of an AWS call, such as `10s`.
    #[serde(
        default = "default_call_timeout",
        deserialize_with = "duration_text",
        serialize_with = "duration_to_text"
    )]
    #[schemars(with = "String")]
    pub call_timeout: Duration,
    /// Maximum time for one AWS call including its retries, such as `30s`.
    #[serde(
        default = "default_operation_timeout",
        deserialize_with = "duration_text",
        serialize_with = "duration_to_text"
    )]
    #[schemars(with = "String")]
    pub operation_timeout: Duration,
    /// Maximum attempts per AWS call, the first included. The SDK's standard retry
    /// strategy spaces them with exponential backoff and jitter.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Maximum time to wait for a CloudWatch Logs Insights query, or for the IAM
    /// credential report to be generated, such as `100s`. Keep it below the playbook's step
    /// timeout, or the step times out first.
    #[serde(
        default = "default_query_timeout",
        deserialize_with = "duration_text",
        serialize_with = "duration_to_text"
    )]
    #[schemars(with = "String")]
    pub query_timeout: Duration,
    /// Maximum time for all calls to one regional service in one region, such as `60s`.
    #[serde(
        default = "default_region_timeout",
        deserialize_with = "duration_text",
        serialize_with = "duration_to_text"
    )]
    #[schemars(with = "String")]
    pub region_timeout: Duration,
    /// Endpoint that every AWS client calls instead of AWS, such as
    /// `http://127.0.0.1:5000` for a local emulator.
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

/// The role keycheck assumes to reach one account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountAccess {
    /// The role keycheck assumes there, as `arn:aws:iam::ACCOUNT:role/NAME`. The session
    /// is named `keycheck-<investigation id>`, so CloudTrail ties keycheck's calls to the
    /// investigation.
    pub role_arn: String,
    /// The external ID the role's trust policy requires, if any.
    #[serde(default)]
    pub external_id: Option<String>,
}

/// The method that reads CloudTrail events from CloudWatch Logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueryMode {
    /// One CloudWatch Logs Insights query over every log group (billed per GB scanned).
    #[default]
    LogsInsights,
    /// One `FilterLogEvents` pass over each log group with a filter pattern.
    FilterLogEvents,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            region: None,
            profile: None,
            accounts: BTreeMap::new(),
            log_groups: Vec::new(),
            regions: Vec::new(),
            query: QueryMode::default(),
            lookup_events_fallback: true,
            call_timeout: default_call_timeout(),
            operation_timeout: default_operation_timeout(),
            max_attempts: default_max_attempts(),
            query_timeout: default_query_timeout(),
            region_timeout: default_region_timeout(),
            endpoint_url: None,
        }
    }
}

/// A setting that is invalid, with the field it is in and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {CONFIG_TABLE}.{field}: {problem}")]
pub struct ConfigError {
    /// The field, such as `region` or `accounts.111122223333.role_arn`.
    pub field: String,
    /// The problem, and the value to write instead.
    pub problem: String,
}

impl LiveConfig {
    /// Checks every setting and returns the first invalid one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(region) = &self.region {
            check_region("region", region)?;
        }
        for (index, region) in self.regions.iter().enumerate() {
            check_region(&format!("regions[{index}]"), region)?;
        }
        if self.profile.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(invalid(
                "profile",
                "empty profile name: remove the line to use the default credential chain",
            ));
        }
        for (account, access) in &self.accounts {
            check_account(account, access)?;
        }
        for (index, group) in self.log_groups.iter().enumerate() {
            check_log_group(&format!("log_groups[{index}]"), group)?;
        }
        self.check_limits()?;
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(
                "endpoint_url",
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        }
        Ok(())
    }

    fn check_limits(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("call_timeout", self.call_timeout),
            ("operation_timeout", self.operation_timeout),
            ("query_timeout", self.query_timeout),
            ("region_timeout", self.region_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(field, "must be longer than zero, such as \"30s\""));
            }
        }
        if self.operation_timeout < self.call_timeout {
            return Err(invalid(
                "operation_timeout",
                format!(
                    "{} is shorter than call_timeout ({}), so no attempt could use its full time",
                    humantime::format_duration(self.operation_timeout),
                    humantime::format_duration(self.call_timeout)
                ),
            ));
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err(invalid(
                "max_attempts",
                format!("{} is not between 1 and 10", self.max_attempts),
            ));
        }
        Ok(())
    }
}

fn invalid(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// Returns true for a region name such as `us-east-1` or `us-gov-west-1`: lowercase
/// words joined by hyphens, ending in a number.
pub(crate) fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

fn check_region(field: &str, region: &str) -> Result<(), ConfigError> {
    if is_region_name(region) {
        return Ok(());
    }
    Err(invalid(
        field,
        format!("{region:?} is not an AWS region name such as \"us-east-1\""),
    ))
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

fn check_account(account: &str, access: &AccountAccess) -> Result<(), ConfigError> {
    if !is_account_id(account) {
        return Err(invalid(
            &format!("accounts.{account}"),
            "the table name must be a 12-digit account ID, such as [aws.accounts.\"111122223333\"]",
        ));
    }
    let field = format!("accounts.{account}.role_arn");
    let Some(role_account) = role_arn_account(&access.role_arn) else {
        return Err(invalid(
            &field,
            format!(
                "{:?} is not a role ARN such as \"arn:aws:iam::{account}:role/keycheck\"",
                access.role_arn
            ),
        ));
    };
    if role_account != account {
        return Err(invalid(
            &field,
            format!(
                "the role is in account {role_account}, but it must be in account {account}, which it gives access to"
            ),
        ));
    }
    if let Some(external_id) = &access.external_id {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c);
        if !(2..=1224).contains(&external_id.len()) || !external_id.chars().all(allowed) {
            return Err(invalid(
                &format!("accounts.{account}.external_id"),
                "must be 2 to 1224 characters of letters, digits and +=,.@:/-_",
            ));
        }
    }
    Ok(())
}

/// Returns the account of a role ARN such as `arn:aws:iam::111122223333:role/path/name`.
fn role_arn_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return None;
    };
    let is_role = *prefix == "arn"
        && partition.starts_with("aws")
        && *service == "iam"
        && region.is_empty()
        && is_account_id(account)
        && resource
            .strip_prefix("role/")
            .is_some_and(|name| !name.is_empty());
    is_role.then_some(*account)
}

fn check_log_group(field: &str, group: &str) -> Result<(), ConfigError> {
    if group.starts_with("arn:") {
        if LogGroupArn::parse(group).is_none() {
            return Err(invalid(
                field,
                format!(
                    "{group:?} is not a log group ARN such as \"arn:aws:logs:us-east-1:111122223333:log-group:aws-cloudtrail-logs\""
                ),
            ));
        }
        return Ok(());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-/.#".contains(c);
    if group.is_empty() || group.len() > 512 || !group.chars().all(allowed) {
        return Err(invalid(
            field,
            format!(
                "{group:?} is not a log group name (1 to 512 characters of letters, digits and _-/.#)"
            ),
        ));
    }
    Ok(())
}

/// The parts of a log group ARN, as CloudTrail's `CloudWatchLogsLogGroupArn` or a setting
/// writes it: `arn:aws:logs:us-east-1:111122223333:log-group:NAME`, optionally ending `:*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogGroupArn {
    pub region: String,
    pub account: String,
    pub name: String,
}

impl LogGroupArn {
    pub(crate) fn parse(arn: &str) -> Option<LogGroupArn> {
        let parts: Vec<&str> = arn.splitn(7, ':').collect();
        let [prefix, partition, service, region, account, kind, name] = parts.as_slice() else {
            return None;
        };
        let name = name.strip_suffix(":*").unwrap_or(name);
        let valid = *prefix == "arn"
            && partition.starts_with("aws")
            && *service == "logs"
            && is_region_name(region)
            && is_account_id(account)
            && *kind == "log-group"
            && !name.is_empty();
        valid.then(|| LogGroupArn {
            region: region.to_string(),
            account: account.to_string(),
            name: name.to_string(),
        })
    }
}

fn enabled() -> bool {
    true
}

fn default_call_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_operation_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_attempts() -> u32 {
    3
}

fn default_query_timeout() -> Duration {
    Duration::from_secs(100)
}

fn default_region_timeout() -> Duration {
    Duration::from_secs(60)
}

/// Reads a duration written as text, such as `30s`, `2m` or `1m 30s`.
fn duration_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|error| {
        serde::de::Error::custom(format!(
            "{text:?} is not a duration such as \"30s\" or \"2m\": {error}"
        ))
    })
}

/// Writes a duration as `duration_text` reads it, such as `30s` or `1m 40s`.
fn duration_to_text<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_duration(*duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<LiveConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_table_takes_defaults() {
        let config = parse("{}").unwrap();
        assert_eq!(config, LiveConfig::default());
        assert!(config.lookup_events_fallback);
        assert_eq!(config.query, QueryMode::LogsInsights);
        assert_eq!(config.operation_timeout, Duration::from_secs(30));
        config.validate().unwrap();
    }

    #[test]
    fn full_table_parses() {
        let config = parse(
            r#"{"region": "eu-west-1", "profile": "security",
                "accounts": {"111122223333": {"role_arn": "arn:aws:iam::111122223333:role/keycheck", "external_id": "kc-ext"}},
                "log_groups": ["aws-cloudtrail-logs", "arn:aws:logs:us-east-1:444455556666:log-group:org-trail:*"],
                "regions": ["eu-west-1", "us-east-1"], "query": "filter_log_events",
                "lookup_events_fallback": false, "call_timeout": "5s", "operation_timeout": "1m",
                "max_attempts": 5, "query_timeout": "90s", "region_timeout": "2m",
                "endpoint_url": "http://127.0.0.1:5000"}"#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.query, QueryMode::FilterLogEvents);
        assert_eq!(config.operation_timeout, Duration::from_secs(60));
        assert_eq!(
            config.accounts["111122223333"].external_id.as_deref(),
            Some("kc-ext")
        );
    }

    #[test]
    fn unknown_field_rejected() {
        let error = parse(r#"{"regoin": "eu-west-1"}"#).unwrap_err();
        assert!(error.contains("unknown field `regoin`"), "{error}");
    }

    #[test]
    fn bad_duration_names_value() {
        let error = parse(r#"{"call_timeout": "ten seconds"}"#).unwrap_err();
        assert!(
            error.contains("\"ten seconds\" is not a duration"),
            "{error}"
        );
    }

    #[test]
    fn validation_names_field() {
        let cases: &[(&str, &str)] = &[
            (r#"{"region": "useast1"}"#, "aws.region"),
            (r#"{"regions": ["us-east-1", "EU"]}"#, "aws.regions[1]"),
            (
                r#"{"accounts": {"1111": {"role_arn": "arn:aws:iam::111122223333:role/k"}}}"#,
                "aws.accounts.1111",
            ),
            (
                r#"{"accounts": {"111122223333": {"role_arn": "arn:aws:iam::444455556666:role/k"}}}"#,
                "aws.accounts.111122223333.role_arn",
            ),
            (
                r#"{"accounts": {"111122223333": {"role_arn": "arn:aws:iam::111122223333:user/k"}}}"#,
                "aws.accounts.111122223333.role_arn",
            ),
            (
                r#"{"accounts": {"111122223333": {"role_arn": "arn:aws:iam::111122223333:role/k", "external_id": "x"}}}"#,
                "aws.accounts.111122223333.external_id",
            ),
            (r#"{"log_groups": ["has space"]}"#, "aws.log_groups[0]"),
            (
                r#"{"log_groups": ["arn:aws:logs:us-east-1:1:log-group:x"]}"#,
                "aws.log_groups[0]",
            ),
            (r#"{"call_timeout": "0s"}"#, "aws.call_timeout"),
            (
                r#"{"call_timeout": "40s", "operation_timeout": "30s"}"#,
                "aws.operation_timeout",
            ),
            (r#"{"max_attempts": 0}"#, "aws.max_attempts"),
            (r#"{"endpoint_url": "127.0.0.1:5000"}"#, "aws.endpoint_url"),
            (r#"{"profile": " "}"#, "aws.profile"),
        ];
        for (json, field) in cases {
            let config = parse(json).unwrap_or_else(|e| panic!("{json} does not parse: {e}"));
            let error = config.validate().expect_err(json).to_string();
            assert!(
                error.starts_with(&format!("invalid {field}:")),
                "{json} gave {error}"
            );
        }
    }

    #[test]
    fn log_group_arn_parts() {
        let arn = LogGroupArn::parse(
            "arn:aws:logs:us-east-1:111122223333:log-group:CloudTrail/Default:*",
        )
        .unwrap();
        assert_eq!(arn.region, "us-east-1");
        assert_eq!(arn.account, "111122223333");
        assert_eq!(arn.name, "CloudTrail/Default");
        assert!(LogGroupArn::parse("arn:aws:logs:us-east-1:111122223333:metric:x").is_none());
    }

    #[test]
    fn region_names() {
        for region in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
        ] {
            assert!(is_region_name(region), "{region}");
        }
        for text in ["us-east", "US-EAST-1", "useast1", "", "us--1", "aws-global"] {
            assert!(!is_region_name(text), "{text}");
        }
    }
}
