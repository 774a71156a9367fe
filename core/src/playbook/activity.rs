//! Step 2: what the key called in the window, from which addresses, countries, networks,
//! user agents and regions, and which of those are new for this key.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use crate::cloudtrail::Event;
use crate::evidence::EventSet;
use crate::geo::{Geo, Location, LocationCategory};
use crate::playbook::brief::{brief, evidence_item};
use crate::playbook::{StepContext, evidence_failure};
use crate::report::{
    ActivityFacts, Cadence, CallCount, DeniedBurst, Finding, SourceCount, Status, StepData,
    StepId, StepReport, ValueCount,
};

/// A run of at least this many denied calls counts as a burst.
pub const DENIED_BURST_MIN_CALLS: usize = 10;

/// Denied calls further apart than this belong to different bursts.
pub const DENIED_BURST_MAX_GAP: Duration = Duration::minutes(2);

/// Calls further apart than this start a new period of activity when judging cadence.
const ACTIVITY_GAP: Duration = Duration::minutes(5);

/// Periods of activity whose start times vary by less than this fraction of their mean
/// spacing (coefficient of variation) count as constant, as from a scheduler.
const CONSTANT_CADENCE_MAX_VARIATION: f64 = 0.35;

pub(super) async fn run(context: &StepContext) -> StepReport {
    let events = match context.events().await {
        Ok(events) => events,
        Err(error) => return evidence_failure(StepId::Activity, &error),
    };
    let facts = summarize(&events, &context.geo);
    let mut report = report(facts, &events);
    for error in &events.failures {
        report.findings.push(Finding::new(
            Status::Warning,
            format!("CloudTrail partly read, so calls recorded there are not listed: {error}"),
        ));
        report.gaps.push(format!("CloudTrail: {error}"));
        report.status = report.status.max(Status::Warning);
    }
    report
}

fn report(facts: ActivityFacts, events: &EventSet) -> StepReport {
    let mut findings = Vec::new();
    let range = format!(
        "{} to {}",
        facts.window_start.format("%Y-%m-%d %H:%M"),
        facts.window_end.format("%Y-%m-%d %H:%M UTC")
    );

    if facts.total_calls == 0 && facts.session_calls.is_empty() {
        let summary = match events.history_calls().last() {
            Some(last) => format!(
                "no calls from {range}; last call before the window at {}",
                last.event_time.format("%Y-%m-%d %H:%M UTC")
            ),
            None => format!("no calls recorded from {range} ({})", events.source),
        };
        return StepReport::new(StepId::Activity, Status::Ok, summary, StepData::Activity(facts));
    }

    new_source_findings(&facts, events, &mut findings);
    new_call_findings(&facts, &mut findings);
    burst_findings(&facts, events.key.as_str(), &mut findings);
    session_findings(&facts, &mut findings);
    pattern_findings(&facts, &mut findings);

    let status = if findings.iter().any(|f| f.level >= Status::Warning) {
        Status::Warning
    } else {
        Status::Ok
    };
    let new_sources = facts.sources.iter().filter(|s| s.new).count();
    let mut summary = format!(
        "{} ({} failed, {} denied) to {} from {} from {range}",
        count(facts.total_calls, "call"),
        facts.failed_calls,
        facts.denied_calls,
        count(facts.calls.len(), "operation"),
        count(facts.sources.len(), "source"),
    );
    if facts.history_available {
        summary.push_str(&format!(
            "; {} and {} new for this key",
            count(new_sources, "source"),
            count(facts.calls.iter().filter(|c| c.new).count(), "operation")
        ));
    }
    let mut report = StepReport::new(StepId::Activity, status, summary, StepData::Activity(facts));
    findings.sort_by(|a, b| b.level.cmp(&a.level));
    report.findings = findings;
    report
}

fn new_source_findings(facts: &ActivityFacts, events: &EventSet, findings: &mut Vec<Finding>) {
    if !facts.history_available {
        findings.push(Finding::new(
            Status::Ok,
            "no earlier activity of this key in the evidence, so no call, address or country can be called new",
        ));
        return;
    }
    for source in facts.sources.iter().filter(|s| s.new) {
        let first = events
            .key_calls()
            .find(|e| e.source_ip_address.as_ref().is_some_and(|s| s.raw == source.source));
        let level = if matches!(
            source.location.category,
            LocationCategory::AwsService | LocationCategory::AwsInternal
        ) {
            Status::Ok
        } else {
            Status::Warning
        };
        findings.push(
            Finding::new(
                level,
                format!(
                    "new source {} ({}): {} calls, first at {}",
                    source.source,
                    source.location.label(),
                    source.count,
                    source.first.format("%Y-%m-%d %H:%M:%S UTC")
                ),
            )
            .with_evidence(first.map(evidence_item)),
        );
    }
    let new_countries: Vec<&str> = facts
        .countries
        .iter()
        .filter(|c| c.new)
        .map(|c| c.value.as_str())
        .collect();
    if !new_countries.is_empty() {
        findings.push(Finding::new(
            Status::Warning,
            format!("new countries or networks: {}", new_countries.join(", ")),
        ));
    }
    let new_agents: Vec<&str> = facts
        .user_agents
        .iter()
        .filter(|u| u.new)
        .map(|u| u.value.as_str())
        .collect();
    if !new_agents.is_empty() {
        findings.push(Finding::new(
            Status::Warning,
            format!("new user agents: {}", new_agents.join("; ")),
        ));
    }
}

fn new_call_findings(facts: &ActivityFacts, findings: &mut Vec<Finding>) {
    if !facts.history_available {
        return;
    }
    let new_calls: Vec<String> = facts
        .calls
        .iter()
        .filter(|c| c.new)
        .map(|c| format!("{} ×{}", c.call, c.count))
        .collect();
    if !new_calls.is_empty() {
        findings.push(Finding::new(
            Status::Warning,
            format!("calls this key never made before: {}", new_calls.join(", ")),
        ));
    }
}

fn burst_findings(facts: &ActivityFacts, key: &str, findings: &mut Vec<Finding>) {
    for burst in &facts.denied_bursts {
        let calls: Vec<String> = burst
            .calls
            .iter()
            .map(|(call, count)| format!("{call} ×{count}"))
            .collect();
        let seconds = (burst.end - burst.start).num_seconds();
        findings.push(Finding::new(
            Status::Warning,
            format!(
                "{} denied calls within {seconds} seconds from {}: {}{}",
                burst.count,
                burst.start.format("%Y-%m-%d %H:%M:%S UTC"),
                calls.join(", "),
                burst_keys_note(burst, key)
            ),
        ));
    }
}

fn session_findings(facts: &ActivityFacts, findings: &mut Vec<Finding>) {
    if facts.minted_sessions.is_empty() {
        return;
    }
    let sessions: Vec<String> = facts
        .minted_sessions
        .iter()
        .map(|m| format!("{} ({})", m.key_id, m.call))
        .collect();
    findings.push(Finding::new(
        Status::Warning,
        format!(
            "minted {} temporary key(s): {}; {} calls made with them in the window",
            sessions.len(),
            sessions.join(", "),
            facts.session_calls.len()
        ),
    ));
}

fn pattern_findings(facts: &ActivityFacts, findings: &mut Vec<Finding>) {
    let gap = facts
        .median_gap_seconds
        .map(|s| format!(", median gap {}", human_seconds(s)))
        .unwrap_or_default();
    let text = match facts.cadence {
        Cadence::Constant => format!("calls arrive at regular intervals (automated){gap}"),
        Cadence::Intermittent => format!("calls arrive in bursts with pauses (manual or ad hoc){gap}"),
        Cadence::Unknown => format!("too few calls to judge their rhythm{gap}"),
    };
    findings.push(Finding::new(Status::Ok, text));
    if facts.sources.len() > 1 {
        let per_source: Vec<String> = facts
            .sources
            .iter()
            .filter(|s| s.cadence != Cadence::Unknown)
            .map(|s| format!("{} {}", s.source, cadence_word(s.cadence)))
            .collect();
        if !per_source.is_empty() {
            findings.push(Finding::new(Status::Ok, format!("by source: {}", per_source.join(", "))));
        }
    }
    if !facts.geolocation.is_empty() {
        findings.push(Finding::new(Status::Ok, facts.geolocation.clone()));
    }
}

/// Summarises the key's calls in the window against its history before the window.
pub(crate) fn summarize(events: &EventSet, geo: &Geo) -> ActivityFacts {
    let calls: Vec<&Event> = events.key_calls().collect();
    let history: Vec<&Event> = events.history_calls().collect();
    let history_available = !history.is_empty();
    let mut locations: HashMap<String, Location> = HashMap::new();
    let mut locate = |raw: &str| -> Location {
        locations
            .entry(raw.to_string())
            .or_insert_with(|| geo.lookup(raw))
            .clone()
    };

    let known_calls: HashSet<String> = history.iter().map(|e| call_key(e)).collect();
    let known_sources: HashSet<&str> = history.iter().filter_map(|e| source_of(e)).collect();
    let known_agents: HashSet<&str> = history.iter().filter_map(|e| e.user_agent.as_deref()).collect();
    let known_regions: HashSet<&str> = history.iter().filter_map(|e| e.aws_region.as_deref()).collect();
    let known_countries: HashSet<String> = known_sources
        .iter()
        .map(|s| country_key(&locate(s)))
        .collect();

    let is_new = |known: bool| history_available && !known;

    let mut by_call: BTreeMap<String, CallCount> = BTreeMap::new();
    let mut by_source: BTreeMap<String, SourceCount> = BTreeMap::new();
    let mut countries: BTreeMap<String, ValueCount> = BTreeMap::new();
    let mut agents: BTreeMap<String, ValueCount> = BTreeMap::new();
    let mut regions: BTreeMap<String, ValueCount> = BTreeMap::new();

    for event in &calls {
        let call = call_key(event);
        let entry = by_call.entry(call.clone()).or_insert_with(|| CallCount {
            new: is_new(known_calls.contains(&call)),
            call,
            count: 0,
            errors: 0,
            denied: 0,
            first: event.event_time,
            last: event.event_time,
        });
        entry.count += 1;
        entry.errors += usize::from(event.is_error());
        entry.denied += usize::from(event.is_access_denied());
        entry.last = event.event_time;

        if let Some(source) = source_of(event) {
            let location = locate(source);
            let country = country_key(&location);
            count_value(&mut countries, &country, is_new(known_countries.contains(&country)));
            let entry = by_source.entry(source.to_string()).or_insert_with(|| SourceCount {
                source: source.to_string(),
                location,
                count: 0,
                first: event.event_time,
                new: is_new(known_sources.contains(source)),
                cadence: Cadence::Unknown,
            });
            entry.count += 1;
        }
        if let Some(agent) = event.user_agent.as_deref() {
            count_value(&mut agents, agent, is_new(known_agents.contains(agent)));
        }
        if let Some(region) = event.aws_region.as_deref() {
            count_value(&mut regions, region, is_new(known_regions.contains(region)));
        }
    }

    for source in by_source.values_mut() {
        let times: Vec<DateTime<Utc>> = calls
            .iter()
            .filter(|e| source_of(e) == Some(source.source.as_str()))
            .map(|e| e.event_time)
            .collect();
        source.cadence = cadence(&times).0;
    }
    let times: Vec<DateTime<Utc>> = calls.iter().map(|e| e.event_time).collect();
    let (cadence, median_gap_seconds) = cadence(&times);
    let with_sessions: Vec<&Event> = events.key_and_session_calls().collect();

    ActivityFacts {
        window_start: events.window.start,
        window_end: events.window.end,
        history_available,
        history_start: history.first().map(|e| e.event_time),
        total_calls: calls.len(),
        failed_calls: calls.iter().filter(|e| e.is_error()).count(),
        denied_calls: calls.iter().filter(|e| e.is_access_denied()).count(),
        calls: sorted_by_count(by_call.into_values().collect(), |c| c.count),
        sources: sorted_by_count(by_source.into_values().collect(), |s| s.count),
        countries: sorted_by_count(countries.into_values().collect(), |c| c.count),
        user_agents: sorted_by_count(agents.into_values().collect(), |c| c.count),
        regions: sorted_by_count(regions.into_values().collect(), |c| c.count),
        cadence,
        median_gap_seconds,
        timeline: calls.iter().map(|e| brief(e)).collect(),
        denied_bursts: denied_bursts(&with_sessions),
        minted_sessions: events.minted.clone(),
        session_calls: events.session_calls().map(brief).collect(),
        geolocation: geo.status().summary(),
        skipped_records: events.skipped_records,
    }
}

fn call_key(event: &Event) -> String {
    event.call_name()
}

fn source_of(event: &Event) -> Option<&str> {
    event
        .source_ip_address
        .as_ref()
        .map(|s| s.raw.as_str())
        .filter(|s| !s.is_empty())
}

/// Returns the country code, or the kind of network for addresses that have no country.
pub(crate) fn country_key(location: &Location) -> String {
    match location.category {
        LocationCategory::Public => location
            .country_code
            .clone()
            .unwrap_or_else(|| "unknown country".to_string()),
        LocationCategory::AwsNetwork => "AWS network".to_string(),
        LocationCategory::AwsService | LocationCategory::AwsInternal => "AWS service".to_string(),
        LocationCategory::Private => "private network".to_string(),
        LocationCategory::Reserved => "reserved range".to_string(),
        LocationCategory::Unknown => "unknown (no geolocation)".to_string(),
    }
}

fn count_value(map: &mut BTreeMap<String, ValueCount>, value: &str, new: bool) {
    map.entry(value.to_string())
        .or_insert_with(|| ValueCount {
            value: value.to_string(),
            count: 0,
            new,
        })
        .count += 1;
}

fn sorted_by_count<T>(mut items: Vec<T>, count: impl Fn(&T) -> usize) -> Vec<T> {
    // A stable sort keeps the alphabetical order of equal counts from the BTreeMap.
    items.sort_by_key(|item| std::cmp::Reverse(count(item)));
    items
}

/// Judges whether calls come at a constant rhythm or intermittently, and returns the
/// median gap between consecutive calls in seconds.
pub(crate) fn cadence(times: &[DateTime<Utc>]) -> (Cadence, Option<f64>) {
    if times.len() < 3 {
        return (Cadence::Unknown, median_gap(times));
    }
    let median = median_gap(times);

    // Group calls into periods of activity, then look at how regularly the periods start.
    let mut period_starts = vec![times[0]];
    for pair in times.windows(2) {
        if pair[1] - pair[0] > ACTIVITY_GAP {
            period_starts.push(pair[1]);
        }
    }
    if period_starts.len() < 3 {
        return (Cadence::Intermittent, median);
    }
    let spacings: Vec<f64> = period_starts
        .windows(2)
        .map(|p| (p[1] - p[0]).num_seconds() as f64)
        .collect();
    let mean = spacings.iter().sum::<f64>() / spacings.len() as f64;
    let variance = spacings.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / spacings.len() as f64;
    let variation = if mean > 0.0 { variance.sqrt() / mean } else { 0.0 };
    if variation < CONSTANT_CADENCE_MAX_VARIATION {
        (Cadence::Constant, median)
    } else {
        (Cadence::Intermittent, median)
    }
}

fn median_gap(times: &[DateTime<Utc>]) -> Option<f64> {
    if times.len() < 2 {
        return None;
    }
    let mut gaps: Vec<f64> = times
        .windows(2)
        .map(|p| (p[1] - p[0]).num_milliseconds() as f64 / 1000.0)
        .collect();
    gaps.sort_by(|a, b| a.total_cmp(b));
    Some(gaps[gaps.len() / 2])
}

/// Finds runs of at least `DENIED_BURST_MIN_CALLS` denied calls, each within
/// `DENIED_BURST_MAX_GAP` of the previous one.
pub(crate) fn denied_bursts(events: &[&Event]) -> Vec<DeniedBurst> {
    let denied: Vec<&Event> = events.iter().copied().filter(|e| e.is_access_denied()).collect();
    let mut bursts = Vec::new();
    let mut start = 0;
    for index in 1..=denied.len() {
        let split = index == denied.len()
            || denied[index].event_time - denied[index - 1].event_time > DENIED_BURST_MAX_GAP;
        if !split {
            continue;
        }
        let run = &denied[start..index];
        if run.len() >= DENIED_BURST_MIN_CALLS {
            bursts.push(burst_of(run));
        }
        start = index;
    }
    bursts
}

fn burst_of(run: &[&Event]) -> DeniedBurst {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for event in run {
        *counts.entry(event.call_name()).or_default() += 1;
    }
    let mut calls: Vec<(String, usize)> = counts.into_iter().collect();
    calls.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    let keys: std::collections::BTreeSet<String> = run
        .iter()
        .filter_map(|e| e.access_key_id().map(str::to_string))
        .collect();
    DeniedBurst {
        start: run[0].event_time,
        end: run[run.len() - 1].event_time,
        count: run.len(),
        calls,
        keys: keys.into_iter().collect(),
    }
}

/// Returns a note naming the sessions that made a burst's calls, or nothing when the
/// investigated key made them all.
pub(crate) fn burst_keys_note(burst: &DeniedBurst, key: &str) -> String {
    let sessions: Vec<&str> = burst.keys.iter().map(String::as_str).filter(|k| *k != key).collect();
    if sessions.is_empty() {
        return String::new();
    }
    format!(" (made with {}, minted from this key)", sessions.join(", "))
}

/// Returns a short word for a cadence.
pub(crate) fn cadence_word(cadence: Cadence) -> &'static str {
    match cadence {
        Cadence::Constant => "constant (automated)",
        Cadence::Intermittent => "intermittent (manual)",
        Cadence::Unknown => "too few calls to tell",
    }
}

/// Formats a count with its noun: `1 call`, `4 calls`.
pub(crate) fn count(number: usize, noun: &str) -> String {
    if number == 1 { format!("1 {noun}") } else { format!("{number} {noun}s") }
}

/// Formats seconds as `45 s`, `12 min` or `3.5 h`.
pub(crate) fn human_seconds(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 5400.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    #[test]
    fn cadence_constant_for_scheduled_calls() {
        let times: Vec<_> = (0..12).map(|i| at(i * 60)).collect();
        assert_eq!(cadence(&times).0, Cadence::Constant);
    }

    #[test]
    fn cadence_intermittent_for_irregular_bursts() {
        let times = vec![at(0), at(1), at(2), at(40), at(41), at(300), at(301), at(302), at(900)];
        assert_eq!(cadence(&times).0, Cadence::Intermittent);
    }

    #[test]
    fn cadence_intermittent_for_one_burst() {
        let times: Vec<_> = (0..20).map(|i| at(0) + Duration::seconds(i)).collect();
        assert_eq!(cadence(&times).0, Cadence::Intermittent);
    }

    #[test]
    fn cadence_unknown_for_two_calls() {
        assert_eq!(cadence(&[at(0), at(10)]).0, Cadence::Unknown);
    }

    #[test]
    fn human_seconds_units() {
        assert_eq!(human_seconds(30.0), "30 s");
        assert_eq!(human_seconds(600.0), "10 min");
        assert_eq!(human_seconds(7200.0), "2.0 h");
    }
}
