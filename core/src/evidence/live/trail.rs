//! CloudTrail read live, once per investigation.
//!
//! The events come from the CloudWatch Logs log groups that receive the trail: one Logs
//! Insights query, or one `FilterLogEvents` pass, over every log group, from the start of
//! the key's history to the end of the window. When that finds sessions minted from the
//! key, one more query reads the calls of all of them at once, for at most
//! `MAX_MINTING_DEPTH` rounds. Each query or pass counts as one scan in `EventSet::scans`,
//! because Logs Insights bills every scan by the gigabyte.
//!
//! Every event returned is checked again here before it is kept. AWS returns near-misses,
//! and emulators ignore the filters altogether: moto 5.2.5 applies neither the JSON
//! filter pattern of `FilterLogEvents` nor the `filter` command of a Logs Insights query.
//!
//! When no log group holds the trail, CloudTrail `LookupEvents` is the fallback: management
//! events of the last 90 days, one lookup per key and region.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_sdk_cloudwatchlogs::types::{QueryStatus, ResultField};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::future::try_join_all;
use tracing::{debug, info, warn};

use super::LiveEvidence;
use super::clients::Clients;
use super::config::{LogGroupArn, QueryMode};
use super::error::{aws_error, failure, is_kind};
use super::operations::*;
use super::regional::{combine, each_region};
use crate::cloudtrail::{Event, read_bytes};
use crate::evidence::events::{EventQuery, EventSet, MAX_MINTING_DEPTH, Window, minted_sessions};
use crate::evidence::{AwsErrorKind, EvidenceError};
use crate::report::MintedSession;

/// The maximum number of rows one Logs Insights query returns, set by the query's `limit`.
const INSIGHTS_LIMIT: usize = 10_000;

/// How many Logs Insights queries one round may run to read past `INSIGHTS_LIMIT` rows,
/// each starting where the one before ended.
const MAX_INSIGHTS_CONTINUATIONS: u32 = 10;

/// The maximum number of log groups in one `StartQuery` request.
const MAX_GROUPS_PER_QUERY: usize = 50;

/// The maximum length of a `FilterLogEvents` filter pattern, in characters.
const MAX_FILTER_PATTERN: usize = 1024;

/// Pages read per `FilterLogEvents` pass or `LookupEvents` lookup before stopping. A
/// guard against a token that never ends, far above any investigation's volume.
const MAX_PAGES: usize = 10_000;

/// Pages of `DescribeLogGroups` read when looking for CloudTrail log groups by name.
const MAX_LOG_GROUP_PAGES: usize = 20;

/// How far back `LookupEvents` reaches.
const LOOKUP_EVENTS_REACH: chrono::Duration = chrono::Duration::days(90);

/// Time added after the window's end when querying CloudWatch Logs. CloudTrail delivers
/// events minutes after they happen, and a log event's timestamp may be its delivery
/// time, so an event at the end of the window can carry a later timestamp.
const DELIVERY_SLACK: chrono::Duration = chrono::Duration::minutes(15);

/// First and longest wait between `GetQueryResults` polls.
const QUERY_POLL: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(2));

/// A log group that receives CloudTrail, and where it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct LogGroup {
    pub account: String,
    pub region: String,
    pub name: String,
}

/// The search terms of one CloudTrail read: calls made with some keys, and in the first
/// round also the call that minted the key and the owner's calls with other credentials.
#[derive(Clone, Debug)]
pub(super) struct Terms {
    pub key_ids: Vec<String>,
    pub minted_key: Option<String>,
    pub owner_arn: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Terms {
    /// Returns true when the event is one this read looks for. Applied to every event an
    /// API returns, whatever filter was sent.
    fn matches(&self, event: &Event) -> bool {
        let by_key = event
            .access_key_id()
            .is_some_and(|key| self.key_ids.iter().any(|k| k == key));
        let mints_key = self
            .minted_key
            .as_deref()
            .is_some_and(|key| event.minted_access_key_id() == Some(key));
        let by_owner = self
            .owner_arn
            .as_deref()
            .is_some_and(|arn| event.principal_arn() == Some(arn));
        by_key || mints_key || by_owner
    }

    /// Returns the owner's ARN when it is safe to quote in a query (IAM ARNs never contain
    /// quotes or backslashes, so one that does is not used).
    fn quotable_owner(&self) -> Option<&str> {
        let arn = self.owner_arn.as_deref()?;
        if arn.contains(['\'', '"', '\\']) {
            warn!(
                owner_arn = arn,
                "owner ARN with quotes left out of the CloudTrail query"
            );
            return None;
        }
        Some(arn)
    }
}

/// Events one read returned, after the re-check.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub events: Vec<Event>,
    pub skipped: usize,
    pub scans: u32,
    /// True when a limit stopped the read before the end of its time range.
    pub truncated: bool,
    /// The errors of the regions the read failed in while other regions responded.
    pub failures: Vec<EvidenceError>,
}

impl Batch {
    fn absorb(&mut self, other: Batch) {
        self.events.extend(other.events);
        self.skipped += other.skipped;
        self.scans += other.scans;
        self.truncated |= other.truncated;
        self.failures.extend(other.failures);
    }

    /// Parses CloudTrail events from messages (CloudWatch Logs messages, `LookupEvents`
    /// strings) and keeps those `terms` look for.
    fn parse<'a>(&mut self, messages: impl IntoIterator<Item = &'a str>, terms: &Terms) {
        let mut dropped = 0;
        for message in messages {
            let outcome = read_bytes(message.as_bytes());
            self.skipped += outcome.skipped.len();
            for event in outcome.events {
                if terms.matches(&event) {
                    self.events.push(event);
                } else {
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            debug!(
                dropped,
                "CloudTrail events returned that name neither the key nor its sessions or owner"
            );
        }
    }
}

/// Returns the investigation's CloudTrail events.
pub(super) async fn events(
    live: &LiveEvidence,
    query: &EventQuery,
) -> Result<EventSet, EvidenceError> {
    let window = query
        .window
        .unwrap_or_else(|| Window::ending_at(Utc::now(), query.window_length));
    let fixed = EventQuery {
        window: Some(window),
        ..query.clone()
    };
    let first = Terms {
        key_ids: vec![query.key.to_string()],
        minted_key: Some(query.key.to_string()),
        owner_arn: query.owner_arn.clone(),
        start: window.start - query.history,
        end: window.end,
    };

    let _reading = live.trail_reading();
    let account = live.target_account().await?;
    let (batch, source) = fetch(live, &account, first).await?;

    let mut set = EventSet::build(&fixed, batch.events, window.end);
    set.scans = batch.scans;
    set.skipped_records = batch.skipped;
    set.source = source;
    set.failures = batch.failures;
    for event in set.key_and_session_calls() {
        if let Some(region) = &event.aws_region {
            live.note_region(region);
        }
    }
    info!(
        key_id = %query.key,
        events = set.events.len(),
        minted = set.minted.len(),
        scans = set.scans,
        source = %set.source,
        "CloudTrail events fetched"
    );
    Ok(set)
}

/// Reads from the log groups, or from `LookupEvents` when none receives the trail, and
/// returns the events with a description of where they came from.
async fn fetch(
    live: &LiveEvidence,
    account: &str,
    first: Terms,
) -> Result<(Batch, String), EvidenceError> {
    let fallback = live.config().lookup_events_fallback;
    let why_lookup = match find_log_groups(live, account).await {
        Ok(groups) if !groups.is_empty() => match read_log_groups(live, &groups, first.clone())
            .await
        {
            Err(error) if fallback && is_kind(&error, AwsErrorKind::NotFound) => error.to_string(),
            Err(error) => return Err(error),
            Ok(batch) => {
                let source = log_groups_source(live.config().query, &groups, &batch);
                return Ok((batch, source));
            }
        },
        Ok(_) => "no CloudWatch Logs log group receives CloudTrail".to_string(),
        Err(error) if fallback => error.to_string(),
        Err(error) => return Err(error),
    };
    if !fallback {
        return Err(EvidenceError::NotAvailable {
            what: "CloudTrail in CloudWatch Logs".to_string(),
            hint: format!(
                "{why_lookup}: list the log groups under aws.log_groups, or set aws.lookup_events_fallback = true"
            ),
        });
    }

    warn!(reason = %why_lookup, "reading CloudTrail LookupEvents instead of CloudWatch Logs");
    let regions = live.relevant_regions().await?;
    let batch =
        follow_sessions(first, |terms| lookup_events(live, account, &regions, terms)).await?;
    let mut source = format!(
        "CloudTrail LookupEvents in {}: management events only",
        regions.join(", ")
    );
    if batch.truncated {
        source.push_str(", truncated");
    }
    Ok((batch, source))
}

/// Runs the first read, then one read per round of newly minted sessions.
async fn follow_sessions<F, Fut>(first: Terms, mut read: F) -> Result<Batch, EvidenceError>
where
    F: FnMut(Terms) -> Fut,
    Fut: Future<Output = Result<Batch, EvidenceError>>,
{
    let root = first.key_ids[0].clone();
    let end = first.end;
    let mut searched: BTreeSet<String> = BTreeSet::from([root.clone()]);
    let mut collected = Batch::default();
    let mut terms = first;

    for round in 0..=MAX_MINTING_DEPTH {
        collected.absorb(read(terms.clone()).await?);

        let new_sessions: Vec<MintedSession> = minted_sessions(&collected.events, &root)
            .into_iter()
            .filter(|session| searched.insert(session.key_id.clone()))
            .collect();
        if new_sessions.is_empty() {
            break;
        }
        if round == MAX_MINTING_DEPTH {
            warn!(
                unread = new_sessions.len(),
                "sessions minted deeper than the follow-up limit; their calls are not read"
            );
            break;
        }
        terms = Terms {
            key_ids: new_sessions.iter().map(|s| s.key_id.clone()).collect(),
            minted_key: None,
            owner_arn: None,
            start: new_sessions
                .iter()
                .map(|s| s.time)
                .min()
                .unwrap_or(terms.start),
            end,
        };
    }
    Ok(collected)
}

/// Returns the log groups to read: the configured ones, else those the trails name, else
/// those whose name contains `cloudtrail`.
async fn find_log_groups(
    live: &LiveEvidence,
    account: &str,
) -> Result<Vec<LogGroup>, EvidenceError> {
    let home = live.access.home_region().await?;
    if !live.config().log_groups.is_empty() {
        return Ok(configured_log_groups(
            &live.config().log_groups,
            account,
            &home,
        ));
    }

    let clients = live.access.clients(account, &home).await?;
    match trail_log_groups(&clients, account).await {
        Ok(groups) if !groups.is_empty() => return Ok(groups),
        Ok(_) => debug!("no trail sends CloudTrail to CloudWatch Logs"),
        Err(error) => {
            warn!(%error, "trails not described; looking for CloudTrail log groups by name")
        }
    }
    named_log_groups(&clients, account, &home).await
}

fn configured_log_groups(entries: &[String], account: &str, home: &str) -> Vec<LogGroup> {
    entries
        .iter()
        .map(|entry| match LogGroupArn::parse(entry) {
            Some(arn) => LogGroup {
                account: arn.account,
                region: arn.region,
                name: arn.name,
            },
            None => LogGroup {
                account: account.to_string(),
                region: home.to_string(),
                name: entry.clone(),
            },
        })
        .collect()
}

async fn trail_log_groups(
    clients: &Clients,
    account: &str,
) -> Result<Vec<LogGroup>, EvidenceError> {
    let output = clients
        .cloudtrail()
        .describe_trails()
        .include_shadow_trails(true)
        .send()
        .await
        .map_err(|error| aws_error(&CLOUDTRAIL_DESCRIBE_TRAILS, account, &error))?;
    let groups: BTreeSet<LogGroup> = output
        .trail_list
        .unwrap_or_default()
        .iter()
        .filter_map(|trail| LogGroupArn::parse(trail.cloud_watch_logs_log_group_arn.as_deref()?))
        .map(|arn| LogGroup {
            account: arn.account,
            region: arn.region,
            name: arn.name,
        })
        .collect();
    Ok(groups.into_iter().collect())
}

async fn named_log_groups(
    clients: &Clients,
    account: &str,
    region: &str,
) -> Result<Vec<LogGroup>, EvidenceError> {
    let mut pages = clients.logs().describe_log_groups().into_paginator().send();
    let mut groups = Vec::new();
    for _ in 0..MAX_LOG_GROUP_PAGES {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|error| aws_error(&LOGS_DESCRIBE_LOG_GROUPS, account, &error))?;
        for group in page.log_groups.unwrap_or_default() {
            let Some(name) = group.log_group_name else {
                continue;
            };
            if name.to_ascii_lowercase().contains("cloudtrail") {
                groups.push(LogGroup {
                    account: account.to_string(),
                    region: region.to_string(),
                    name,
                });
            }
        }
    }
    Ok(groups)
}

/// Reads the log groups with the configured query mode, following minted sessions.
async fn read_log_groups(
    live: &LiveEvidence,
    groups: &[LogGroup],
    first: Terms,
) -> Result<Batch, EvidenceError> {
    let mut by_place: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for group in groups {
        by_place
            .entry((group.account.clone(), group.region.clone()))
            .or_default()
            .push(group.name.clone());
    }
    let mut places = Vec::new();
    for ((account, region), names) in by_place {
        let clients = live.access.clients(&account, &region).await?;
        places.push((clients, names));
    }

    let mode = live.config().query;
    let wait = live.config().query_timeout;
    let places = &places;
    follow_sessions(first, |terms| async move {
        let reads = places.iter().map(|(clients, names)| {
            let terms = terms.clone();
            async move {
                match mode {
                    QueryMode::LogsInsights => insights_read(clients, names, &terms, wait).await,
                    QueryMode::FilterLogEvents => filter_read(clients, names, &terms).await,
                }
            }
        });
        let mut batch = Batch::default();
        for read in try_join_all(reads).await? {
            batch.absorb(read);
        }
        Ok(batch)
    })
    .await
}

fn log_groups_source(mode: QueryMode, groups: &[LogGroup], batch: &Batch) -> String {
    let names: Vec<String> = groups
        .iter()
        .map(|g| format!("{} ({})", g.name, g.region))
        .collect();
    let how = match mode {
        QueryMode::LogsInsights => "CloudWatch Logs Insights",
        QueryMode::FilterLogEvents => "CloudWatch Logs FilterLogEvents",
    };
    let noun = if groups.len() == 1 {
        "log group"
    } else {
        "log groups"
    };
    let mut source = format!("{how} on {noun} {}", names.join(", "));
    if batch.truncated {
        source.push_str(", truncated: narrow the window");
    }
    source
}

/// Builds the Logs Insights query for `terms`.
pub(super) fn insights_query(terms: &Terms) -> String {
    let mut conditions: Vec<String> = terms
        .key_ids
        .iter()
        .map(|key| format!("userIdentity.accessKeyId = '{key}'"))
        .collect();
    if let Some(key) = &terms.minted_key {
        conditions.push(format!(
            "responseElements.credentials.accessKeyId = '{key}'"
        ));
    }
    if let Some(arn) = terms.quotable_owner() {
        conditions.push(format!("userIdentity.arn = '{arn}'"));
    }
    format!(
        "fields @timestamp, @message\n| filter {}\n| sort @timestamp asc\n| limit {INSIGHTS_LIMIT}",
        conditions.join(" or ")
    )
}

/// Runs the Logs Insights query over `names`, continuing from the last row's time while a
/// query returns `INSIGHTS_LIMIT` rows.
async fn insights_read(
    clients: &Clients,
    names: &[String],
    terms: &Terms,
    wait: Duration,
) -> Result<Batch, EvidenceError> {
    let text = insights_query(terms);
    let end = terms.end + DELIVERY_SLACK;
    let mut batch = Batch::default();
    for chunk in names.chunks(MAX_GROUPS_PER_QUERY) {
        let mut start = terms.start;
        loop {
            let rows = run_insights_query(clients, chunk, &text, start, end, wait).await?;
            batch.scans += 1;
            let messages = rows.iter().filter_map(|row| field_value(row, "@message"));
            batch.parse(messages, terms);
            if rows.len() < INSIGHTS_LIMIT {
                break;
            }
            let next = rows
                .last()
                .and_then(|row| field_value(row, "@timestamp"))
                .and_then(insights_time);
            match next {
                // StartQuery takes whole seconds, so only a later second makes progress.
                Some(next)
                    if next.timestamp() > start.timestamp()
                        && batch.scans < MAX_INSIGHTS_CONTINUATIONS =>
                {
                    start = next;
                }
                _ => {
                    warn!(log_groups = ?chunk, "Logs Insights results hit the row limit; later events are not read");
                    batch.truncated = true;
                    break;
                }
            }
        }
    }
    Ok(batch)
}

fn field_value<'a>(row: &'a [ResultField], name: &str) -> Option<&'a str> {
    row.iter()
        .find(|f| f.field.as_deref() == Some(name))?
        .value
        .as_deref()
}

/// Reads a Logs Insights `@timestamp` value, such as `2024-05-01 10:00:00.000`, as UTC.
fn insights_time(text: &str) -> Option<DateTime<Utc>> {
    let time = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    Some(time.and_utc())
}

/// Starts one query and polls it until it completes, stopping it when the wait runs out.
async fn run_insights_query(
    clients: &Clients,
    names: &[String],
    text: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    wait: Duration,
) -> Result<Vec<Vec<ResultField>>, EvidenceError> {
    let logs = clients.logs();
    let target = names.join(", ");
    let started = logs
        .start_query()
        .set_log_group_names(Some(names.to_vec()))
        .start_time(start.timestamp())
        .end_time(end.timestamp())
        .query_string(text)
        .send()
        .await
        .map_err(|error| aws_error(&LOGS_START_QUERY, &target, &error))?;
    let Some(query_id) = started.query_id else {
        return Err(failure(
            &LOGS_START_QUERY,
            &target,
            AwsErrorKind::Other,
            "the response held no query ID",
        ));
    };
    debug!(query_id, log_groups = %target, "Logs Insights query started");

    let deadline = Instant::now() + wait;
    let mut delay = QUERY_POLL.0;
    loop {
        let output = logs
            .get_query_results()
            .query_id(&query_id)
            .send()
            .await
            .map_err(|error| aws_error(&LOGS_GET_QUERY_RESULTS, &query_id, &error))?;
        match output.status {
            Some(QueryStatus::Complete) => {
                let rows = output.results.unwrap_or_default();
                return remaining_rows(clients, &query_id, rows, output.next_token).await;
            }
            Some(QueryStatus::Running | QueryStatus::Scheduled) | None => {}
            Some(status) => {
                return Err(failure(
                    &LOGS_GET_QUERY_RESULTS,
                    &query_id,
                    AwsErrorKind::Other,
                    format!("the Logs Insights query ended {}", status.as_str()),
                ));
            }
        }
        if Instant::now() + delay > deadline {
            stop_query(clients, &query_id).await;
            return Err(failure(
                &LOGS_GET_QUERY_RESULTS,
                &query_id,
                AwsErrorKind::Timeout,
                format!(
                    "the Logs Insights query did not finish within {}",
                    humantime::format_duration(wait)
                ),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(QUERY_POLL.1);
    }
}

/// Reads the pages of a completed query after the first. CloudWatch Logs may page query
/// results with `nextToken` (added with its 100,000-row query limit), so every page is read.
async fn remaining_rows(
    clients: &Clients,
    query_id: &str,
    mut rows: Vec<Vec<ResultField>>,
    mut next_token: Option<String>,
) -> Result<Vec<Vec<ResultField>>, EvidenceError> {
    while let Some(token) = next_token.filter(|t| !t.is_empty()) {
        let output = clients
            .logs()
            .get_query_results()
            .query_id(query_id)
            .next_token(token)
            .send()
            .await
            .map_err(|error| aws_error(&LOGS_GET_QUERY_RESULTS, query_id, &error))?;
        rows.extend(output.results.unwrap_or_default());
        next_token = output.next_token;
    }
    Ok(rows)
}

/// Stops a query keycheck no longer waits for, so that it stops scanning (and billing).
/// A failure only costs the rest of the scan, so it is logged and otherwise ignored.
async fn stop_query(clients: &Clients, query_id: &str) {
    if let Err(error) = clients.logs().stop_query().query_id(query_id).send().await {
        let error = aws_error(&LOGS_STOP_QUERY, query_id, &error);
        warn!(query_id, %error, "Logs Insights query not stopped");
    }
}

/// Builds the `FilterLogEvents` patterns for `terms`: one, or several when one would pass
/// the pattern length limit.
pub(super) fn filter_patterns(terms: &Terms) -> Vec<String> {
    let mut conditions: Vec<String> = terms
        .key_ids
        .iter()
        .map(|key| format!("($.userIdentity.accessKeyId = \"{key}\")"))
        .collect();
    if let Some(key) = &terms.minted_key {
        conditions.push(format!(
            "($.responseElements.credentials.accessKeyId = \"{key}\")"
        ));
    }
    if let Some(arn) = terms.quotable_owner() {
        conditions.push(format!("($.userIdentity.arn = \"{arn}\")"));
    }

    // The length of `{ a || b }`, counting a separator after every condition.
    let length = |parts: &[String]| {
        "{  }".len() + parts.iter().map(|p| p.len() + " || ".len()).sum::<usize>()
    };
    let mut patterns = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for condition in conditions {
        current.push(condition);
        if current.len() > 1 && length(&current) > MAX_FILTER_PATTERN {
            let last = current.pop().expect("just pushed");
            patterns.push(format!("{{ {} }}", current.join(" || ")));
            current = vec![last];
        }
    }
    if !current.is_empty() {
        patterns.push(format!("{{ {} }}", current.join(" || ")));
    }
    patterns
}

/// Reads every log group with `FilterLogEvents`, one pass per pattern, each log group
/// paginated to the end.
async fn filter_read(
    clients: &Clients,
    names: &[String],
    terms: &Terms,
) -> Result<Batch, EvidenceError> {
    let start = terms.start.timestamp_millis();
    let end = (terms.end + DELIVERY_SLACK).timestamp_millis();
    let mut batch = Batch::default();
    for pattern in filter_patterns(terms) {
        let passes = names
            .iter()
            .map(|name| filter_group(clients, name, &pattern, start, end));
        for messages in try_join_all(passes).await? {
            batch.parse(messages.iter().map(String::as_str), terms);
        }
        batch.scans += 1;
    }
    Ok(batch)
}

async fn filter_group(
    clients: &Clients,
    name: &str,
    pattern: &str,
    start: i64,
    end: i64,
) -> Result<Vec<String>, EvidenceError> {
    let mut pages = clients
        .logs()
        .filter_log_events()
        .log_group_name(name)
        .filter_pattern(pattern)
        .start_time(start)
        .end_time(end)
        .into_paginator()
        .send();
    let mut messages = Vec::new();
    for _ in 0..MAX_PAGES {
        let Some(page) = pages.next().await else {
            return Ok(messages);
        };
        let page = page.map_err(|error| aws_error(&LOGS_FILTER_LOG_EVENTS, name, &error))?;
        messages.extend(
            page.events
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| e.message),
        );
    }
    warn!(
        log_group = name,
        pages = MAX_PAGES,
        "FilterLogEvents stopped at the page limit"
    );
    Ok(messages)
}

/// Reads `LookupEvents` in every region at once: one lookup per key, and one for the
/// owner's user name when the owner is an IAM user.
///
/// NOTE: `LookupEvents` matches `userIdentity.accessKeyId` only, so the call that minted a
/// temporary key is found only when the owner lookup covers its caller.
async fn lookup_events(
    live: &LiveEvidence,
    account: &str,
    regions: &[String],
    terms: Terms,
) -> Result<Batch, EvidenceError> {
    let start = terms.start.max(Utc::now() - LOOKUP_EVENTS_REACH);
    let mut attributes: Vec<LookupAttribute> = Vec::new();
    for key in &terms.key_ids {
        attributes.push(lookup_attribute(LookupAttributeKey::AccessKeyId, key)?);
    }
    if let Some(user) = terms.owner_arn.as_deref().and_then(iam_user_name) {
        attributes.push(lookup_attribute(LookupAttributeKey::Username, user)?);
    }

    let terms = &terms;
    let attributes = &attributes;
    let results = each_region(
        live,
        account,
        regions,
        &CLOUDTRAIL_LOOKUP_EVENTS,
        |clients, region| async move {
            let mut batch = Batch::default();
            // One lookup at a time per region: LookupEvents allows 2 requests a second.
            for attribute in attributes {
                let (messages, truncated) =
                    lookup(&clients, attribute, start, terms.end, &region).await?;
                batch.parse(messages.iter().map(String::as_str), terms);
                batch.scans += 1;
                batch.truncated |= truncated;
            }
            Ok(vec![batch])
        },
    )
    .await;

    let search = combine("CloudTrail LookupEvents", results)?;
    let mut batch = Batch::default();
    for regional in search.found {
        batch.absorb(regional);
    }
    batch.failures.extend(search.failures);
    Ok(batch)
}

fn lookup_attribute(
    key: LookupAttributeKey,
    value: &str,
) -> Result<LookupAttribute, EvidenceError> {
    LookupAttribute::builder()
        .attribute_key(key)
        .attribute_value(value)
        .build()
        .map_err(|error| {
            failure(
                &CLOUDTRAIL_LOOKUP_EVENTS,
                value,
                AwsErrorKind::Other,
                error.to_string(),
            )
        })
}

/// Returns the user name of an IAM user ARN (`arn:aws:iam::111122223333:user/path/alice`).
fn iam_user_name(arn: &str) -> Option<&str> {
    let resource = arn.split(':').nth(5)?;
    let path = resource.strip_prefix("user/")?;
    path.rsplit('/').next().filter(|name| !name.is_empty())
}

/// Pages through one lookup and returns the event JSON strings, and whether the page
/// limit stopped it.
async fn lookup(
    clients: &Clients,
    attribute: &LookupAttribute,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    region: &str,
) -> Result<(Vec<String>, bool), EvidenceError> {
    let target = format!(
        "{} {} in {region}",
        attribute.attribute_key.as_str(),
        attribute.attribute_value
    );
    let mut pages = clients
        .cloudtrail()
        .lookup_events()
        .lookup_attributes(attribute.clone())
        .start_time(aws_smithy_types::DateTime::from_secs(start.timestamp()))
        .end_time(aws_smithy_types::DateTime::from_secs(end.timestamp()))
        .max_results(50)
        .into_paginator()
        .send();
    let mut messages = Vec::new();
    for _ in 0..MAX_PAGES {
        let Some(page) = pages.next().await else {
            return Ok((messages, false));
        };
        let page = page.map_err(|error| aws_error(&CLOUDTRAIL_LOOKUP_EVENTS, &target, &error))?;
        messages.extend(
            page.events
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| e.cloud_trail_event),
        );
    }
    warn!(lookup = %target, pages = MAX_PAGES, "LookupEvents stopped at the page limit");
    Ok((messages, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AKIAQWERTYUIOPASDFGH";

    fn first_terms(owner: Option<&str>) -> Terms {
        Terms {
            key_ids: vec![KEY.to_string()],
            minted_key: Some(KEY.to_string()),
            owner_arn: owner.map(str::to_string),
            start: "2024-04-17T10:00:00Z".parse().unwrap(),
            end: "2024-05-01T10:00:00Z".parse().unwrap(),
        }
    }

    fn event(json: &str) -> Event {
        read_bytes(json.as_bytes()).events.remove(0)
    }

    #[test]
    fn insights_query_names_key_owner_and_limit() {
        let query = insights_query(&first_terms(Some("arn:aws:iam::111122223333:user/alice")));
        assert_eq!(
            query,
            "fields @timestamp, @message\n\
             | filter userIdentity.accessKeyId = 'AKIAQWERTYUIOPASDFGH' \
             or responseElements.credentials.accessKeyId = 'AKIAQWERTYUIOPASDFGH' \
             or userIdentity.arn = 'arn:aws:iam::111122223333:user/alice'\n\
             | sort @timestamp asc\n\
             | limit 10000"
        );
    }

    #[test]
    fn owner_with_quote_left_out() {
        let query = insights_query(&first_terms(Some("arn:aws:iam::1:user/a'b")));
        assert!(!query.contains("userIdentity.arn"), "{query}");
    }

    #[test]
    fn filter_pattern_matches_brief_form() {
        let patterns = filter_patterns(&first_terms(None));
        assert_eq!(
            patterns,
            [
                "{ ($.userIdentity.accessKeyId = \"AKIAQWERTYUIOPASDFGH\") || ($.responseElements.credentials.accessKeyId = \"AKIAQWERTYUIOPASDFGH\") }"
            ]
        );
    }

    #[test]
    fn filter_patterns_split_at_length_limit() {
        let mut terms = first_terms(None);
        terms.minted_key = None;
        terms.key_ids = (0..40)
            .map(|i| format!("ASIAAAAAAAAAAAAAAA{i:02}"))
            .collect();
        let patterns = filter_patterns(&terms);
        assert!(patterns.len() > 1);
        for pattern in &patterns {
            assert!(
                pattern.len() <= MAX_FILTER_PATTERN,
                "{} characters",
                pattern.len()
            );
        }
        let named: usize = patterns
            .iter()
            .map(|p| p.matches("accessKeyId").count())
            .sum();
        assert_eq!(named, 40, "every key is in one pattern");
    }

    #[test]
    fn terms_recheck_drops_near_misses() {
        let terms = first_terms(Some("arn:aws:iam::111122223333:user/alice"));
        let own = event(
            r#"{"eventTime":"2024-05-01T09:00:00Z","eventName":"ListBuckets","eventSource":"s3.amazonaws.com",
            "userIdentity":{"type":"IAMUser","accessKeyId":"AKIAQWERTYUIOPASDFGH"}}"#,
        );
        let near = event(
            r#"{"eventTime":"2024-05-01T09:00:00Z","eventName":"ListBuckets","eventSource":"s3.amazonaws.com",
            "userIdentity":{"type":"IAMUser","accessKeyId":"AKIAQWERTYUIOPASDFGX"},
            "requestParameters":{"note":"AKIAQWERTYUIOPASDFGH"}}"#,
        );
        let owner = event(
            r#"{"eventTime":"2024-05-01T09:00:00Z","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com",
            "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"}}"#,
        );
        assert!(terms.matches(&own));
        assert!(
            !terms.matches(&near),
            "a key ID in the request is not the caller's key"
        );
        assert!(terms.matches(&owner));
    }

    #[test]
    fn insights_time_reads_timestamp_field() {
        let time = insights_time("2024-05-01 10:00:01.250").unwrap();
        assert_eq!(time.to_rfc3339(), "2024-05-01T10:00:01.250+00:00");
    }

    #[test]
    fn iam_user_name_of_arns() {
        assert_eq!(
            iam_user_name("arn:aws:iam::111122223333:user/ci/alice"),
            Some("alice")
        );
        assert_eq!(
            iam_user_name("arn:aws:sts::111122223333:assumed-role/r/s"),
            None
        );
    }

    #[test]
    fn configured_names_and_arns() {
        let groups = configured_log_groups(
            &[
                "trail".to_string(),
                "arn:aws:logs:eu-west-1:444455556666:log-group:org:*".to_string(),
            ],
            "111122223333",
            "us-east-1",
        );
        assert_eq!(groups[0].account, "111122223333");
        assert_eq!(groups[0].region, "us-east-1");
        assert_eq!(
            (
                groups[1].account.as_str(),
                groups[1].region.as_str(),
                groups[1].name.as_str()
            ),
            ("444455556666", "eu-west-1", "org")
        );
    }
}
