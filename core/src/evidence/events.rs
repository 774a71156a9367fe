//! The shared CloudTrail event set of one investigation: the query that fetches it, the
//! investigated window, and the partition into the key's own calls, its history before
//! the window, and the calls of sessions minted from the key.
//!
//! Evidence sources fetch events once per investigation and build an `EventSet` here;
//! every step then filters this one set.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::cloudtrail::Event;
use crate::evidence::EvidenceError;
use crate::key::AccessKeyId;
use crate::report::MintedSession;

/// How many rounds of "sessions minted by sessions" to follow before stopping. Role
/// chaining deeper than this is rare and each round is another scan of the evidence.
pub const MAX_MINTING_DEPTH: usize = 4;

/// A time range, start inclusive, end inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First instant in the window.
    pub start: DateTime<Utc>,
    /// Last instant in the window.
    pub end: DateTime<Utc>,
}

impl Window {
    /// Creates the window of `length` that ends at `end`.
    pub fn ending_at(end: DateTime<Utc>, length: Duration) -> Window {
        Window {
            start: end - length,
            end,
        }
    }

    /// Returns true when `time` falls inside the window.
    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        self.start <= time && time <= self.end
    }

    /// Returns the window's length.
    pub fn length(&self) -> Duration {
        self.end - self.start
    }
}

/// The CloudTrail fetch of one investigation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventQuery {
    /// The key under investigation.
    pub key: AccessKeyId,
    /// The owner's ARN, to include the owner's calls with other credentials.
    pub owner_arn: Option<String>,
    /// The investigated window. `None` lets the source choose: a snapshot ends the window
    /// at the key's last recorded call, a live source at the current time.
    pub window: Option<Window>,
    /// The window's length when the source chooses its end.
    pub window_length: Duration,
    /// How far before the window to read the key's history, which "new" is measured against.
    pub history: Duration,
}

impl EventQuery {
    /// Creates a query for `key` with the default 24-hour window and 14 days of history.
    pub fn new(key: AccessKeyId) -> EventQuery {
        EventQuery {
            key,
            owner_arn: None,
            window: None,
            window_length: Duration::hours(24),
            history: Duration::days(14),
        }
    }
}

/// The events of one investigation, sorted by time.
#[derive(Clone, Debug)]
pub struct EventSet {
    /// The key under investigation.
    pub key: AccessKeyId,
    /// The investigated window.
    pub window: Window,
    /// Start of the history read before the window.
    pub history_start: DateTime<Utc>,
    /// Every event read: the key's calls, its sessions' calls and the owner's calls, from
    /// `history_start` to the window's end, oldest first, without duplicates.
    pub events: Vec<Event>,
    /// Temporary keys minted from the key, directly or through other minted sessions.
    pub minted: Vec<MintedSession>,
    /// Records the readers could not parse.
    pub skipped_records: usize,
    /// How many scans or queries of the event store were run to build this set.
    pub scans: u32,
    /// Origin of the events, such as `12 CloudTrail files` or `log group aws-cloudtrail-logs`.
    pub source: String,
    /// Errors from the parts of the event store that could not be read, such as one region
    /// of the `LookupEvents` fallback. The set lacks the events stored there.
    pub failures: Vec<EvidenceError>,
}

impl EventSet {
    /// Builds the set from events that a source fetched: sorts, removes duplicates, finds
    /// the window when the query left it open, follows minted sessions, and drops events
    /// outside the history and window.
    pub fn build(query: &EventQuery, mut events: Vec<Event>, default_end: DateTime<Utc>) -> EventSet {
        events.sort_by_key(|e| e.event_time);
        dedupe_by_event_id(&mut events);

        let minted = minted_sessions(&events, query.key.as_str());
        let window = query.window.unwrap_or_else(|| {
            let mut keys: HashSet<&str> = minted.iter().map(|m| m.key_id.as_str()).collect();
            keys.insert(query.key.as_str());
            let end = last_time_of_keys(&events, &keys).unwrap_or(default_end);
            Window::ending_at(end, query.window_length)
        });
        let history_start = window.start - query.history;
        events.retain(|e| history_start <= e.event_time && e.event_time <= window.end);
        let minted = minted.into_iter().filter(|m| m.time <= window.end).collect();
        EventSet {
            key: query.key.clone(),
            window,
            history_start,
            events,
            minted,
            skipped_records: 0,
            scans: 0,
            source: String::new(),
            failures: Vec::new(),
        }
    }

    /// Returns the same events with the window widened to `length`, ending where it ends
    /// now. Events older than `history_start` were never fetched, so a window reaching
    /// further back starts at `history_start`.
    pub fn rewindow(&self, length: Duration) -> EventSet {
        let start = (self.window.end - length).max(self.history_start);
        EventSet {
            window: Window { start, end: self.window.end },
            ..self.clone()
        }
    }

    /// Returns the key's own calls inside the window, oldest first.
    pub fn key_calls(&self) -> impl Iterator<Item = &Event> {
        let key = self.key.as_str();
        self.events
            .iter()
            .filter(move |e| e.access_key_id() == Some(key) && self.window.contains(e.event_time))
    }

    /// Returns the key's own calls before the window, oldest first.
    pub fn history_calls(&self) -> impl Iterator<Item = &Event> {
        let key = self.key.as_str();
        self.events
            .iter()
            .filter(move |e| e.access_key_id() == Some(key) && e.event_time < self.window.start)
    }

    /// Returns the calls made inside the window with sessions minted from the key.
    pub fn session_calls(&self) -> impl Iterator<Item = &Event> {
        let minted: HashSet<&str> = self.minted.iter().map(|m| m.key_id.as_str()).collect();
        self.events.iter().filter(move |e| {
            e.access_key_id().is_some_and(|k| minted.contains(k))
                && self.window.contains(e.event_time)
        })
    }

    /// Returns the key's calls and its sessions' calls inside the window, oldest first.
    pub fn key_and_session_calls(&self) -> impl Iterator<Item = &Event> {
        let mut keys: HashSet<&str> = self.minted.iter().map(|m| m.key_id.as_str()).collect();
        keys.insert(self.key.as_str());
        self.events.iter().filter(move |e| {
            e.access_key_id().is_some_and(|k| keys.contains(k))
                && self.window.contains(e.event_time)
        })
    }

    /// Returns the call that minted the key itself, for a temporary key.
    pub fn minting_event(&self) -> Option<&Event> {
        let key = self.key.as_str();
        self.events
            .iter()
            .find(|e| e.minted_access_key_id() == Some(key))
    }

    /// Returns the key IDs a source must read to build this set: the key and every
    /// session minted from it.
    pub fn key_ids(&self) -> BTreeSet<String> {
        let mut keys: BTreeSet<String> = self.minted.iter().map(|m| m.key_id.clone()).collect();
        keys.insert(self.key.to_string());
        keys
    }
}

/// Removes events whose CloudTrail event ID appeared earlier (the same event read from two
/// exports). Events without an ID are kept.
fn dedupe_by_event_id(events: &mut Vec<Event>) {
    let mut seen = HashSet::new();
    events.retain(|e| match e.event_id.as_deref() {
        Some(id) if !id.is_empty() => seen.insert(id.to_string()),
        _ => true,
    });
}

/// Returns the time of the last event that names one of the keys: made with it, or
/// minting it.
fn last_time_of_keys(events: &[Event], keys: &HashSet<&str>) -> Option<DateTime<Utc>> {
    let names = |key: Option<&str>| key.is_some_and(|k| keys.contains(k));
    events
        .iter()
        .rev()
        .find(|e| names(e.access_key_id()) || names(e.minted_access_key_id()))
        .map(|e| e.event_time)
}

/// Finds the temporary keys minted by `root`, then by those keys, up to
/// `MAX_MINTING_DEPTH` rounds, oldest first.
pub fn minted_sessions(events: &[Event], root: &str) -> Vec<MintedSession> {
    let mut parents: HashSet<String> = HashSet::from([root.to_string()]);
    let mut minted: Vec<MintedSession> = Vec::new();

    for _ in 0..MAX_MINTING_DEPTH {
        let mut found = Vec::new();
        for event in events {
            let Some(parent) = event.access_key_id() else {
                continue;
            };
            if !parents.contains(parent) {
                continue;
            }
            let Some(child) = event.minted_access_key_id() else {
                continue;
            };
            if child == root || minted.iter().any(|m| m.key_id == child) {
                continue;
            }
            found.push(MintedSession {
                key_id: child.to_string(),
                call: event.call_name(),
                time: event.event_time,
                parent_key_id: Some(parent.to_string()),
                role_arn: event.request_string("roleArn").map(str::to_string),
                event_id: event.event_id.clone(),
            });
        }
        if found.is_empty() {
            break;
        }
        for session in found {
            parents.insert(session.key_id.clone());
            if !minted.iter().any(|m| m.key_id == session.key_id) {
                minted.push(session);
            }
        }
    }

    minted.sort_by_key(|m| m.time);
    minted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudtrail::read_bytes;

    fn events(json: &str) -> Vec<Event> {
        read_bytes(json.as_bytes()).events
    }

    const CHAIN: &str = r#"[
      {"eventTime":"2024-05-01T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"GetSessionToken","eventID":"e1",
       "userIdentity":{"type":"IAMUser","accessKeyId":"AKIAAAAAAAAAAAAAAAAA","arn":"arn:aws:iam::111122223333:user/alice"},
       "responseElements":{"credentials":{"accessKeyId":"ASIABBBBBBBBBBBBBBBB"}}},
      {"eventTime":"2024-05-01T10:05:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","eventID":"e2",
       "userIdentity":{"type":"IAMUser","accessKeyId":"ASIABBBBBBBBBBBBBBBB"},
       "requestParameters":{"roleArn":"arn:aws:iam::444455556666:role/ops"},
       "responseElements":{"credentials":{"accessKeyId":"ASIACCCCCCCCCCCCCCCC"}}},
      {"eventTime":"2024-05-01T10:06:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"e3",
       "userIdentity":{"type":"AssumedRole","accessKeyId":"ASIACCCCCCCCCCCCCCCC"}},
      {"eventTime":"2024-05-01T10:06:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"e3",
       "userIdentity":{"type":"AssumedRole","accessKeyId":"ASIACCCCCCCCCCCCCCCC"}},
      {"eventTime":"2024-05-01T10:07:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"e4",
       "userIdentity":{"type":"IAMUser","accessKeyId":"AKIAZZZZZZZZZZZZZZZZ"}}
    ]"#;

    #[test]
    fn minted_sessions_follow_chain() {
        let minted = minted_sessions(&events(CHAIN), "AKIAAAAAAAAAAAAAAAAA");
        let ids: Vec<&str> = minted.iter().map(|m| m.key_id.as_str()).collect();
        assert_eq!(ids, ["ASIABBBBBBBBBBBBBBBB", "ASIACCCCCCCCCCCCCCCC"]);
        assert_eq!(minted[1].role_arn.as_deref(), Some("arn:aws:iam::444455556666:role/ops"));
        assert_eq!(minted[0].call, "sts:GetSessionToken");
    }

    #[test]
    fn build_dedupes_and_partitions() {
        let key: AccessKeyId = "AKIAAAAAAAAAAAAAAAAA".parse().unwrap();
        let query = EventQuery::new(key);
        let set = EventSet::build(&query, events(CHAIN), Utc::now());
        assert_eq!(set.events.len(), 3, "duplicate e3 removed, the 10:07 call is after the window");
        assert_eq!(set.key_calls().count(), 1);
        assert_eq!(set.session_calls().count(), 2);
        assert_eq!(set.key_and_session_calls().count(), 3);
        // The window ends at the last recorded call of the key or its sessions when the
        // query leaves it open.
        assert_eq!(set.window.end.to_rfc3339(), "2024-05-01T10:06:00+00:00");
    }

    #[test]
    fn build_separates_history() {
        let json = r#"[
          {"eventTime":"2024-04-20T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets",
           "userIdentity":{"type":"IAMUser","accessKeyId":"AKIAAAAAAAAAAAAAAAAA"}},
          {"eventTime":"2024-05-01T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser",
           "userIdentity":{"type":"IAMUser","accessKeyId":"AKIAAAAAAAAAAAAAAAAA"}},
          {"eventTime":"2024-01-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets",
           "userIdentity":{"type":"IAMUser","accessKeyId":"AKIAAAAAAAAAAAAAAAAA"}}
        ]"#;
        let key: AccessKeyId = "AKIAAAAAAAAAAAAAAAAA".parse().unwrap();
        let set = EventSet::build(&EventQuery::new(key), events(json), Utc::now());
        assert_eq!(set.key_calls().count(), 1);
        assert_eq!(set.history_calls().count(), 1, "the January call is older than 14 days of history");
    }

    #[test]
    fn minting_event_found_for_temporary_key() {
        let key: AccessKeyId = "ASIACCCCCCCCCCCCCCCC".parse().unwrap();
        let set = EventSet::build(&EventQuery::new(key), events(CHAIN), Utc::now());
        let minting = set.minting_event().expect("minting event");
        assert_eq!(minting.event_id.as_deref(), Some("e2"));
    }
}
