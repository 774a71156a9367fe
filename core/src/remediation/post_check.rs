//! The check after a deactivation: did the key, or a session issued with it, make calls
//! after the key became inactive?
//!
//! A deactivated key fails every request, but sessions issued with it before keep working
//! until they expire, so an attacker who minted sessions is not stopped. The chat bot is
//! meant to run [`check_after_deactivation`] `contain.post_check_delay` after a
//! deactivation and post the report in the investigation's thread. This module reads and
//! judges, and when to run it is the caller's business.
//!
//! NOTE: CloudTrail delivers an event minutes after the call, with no guaranteed delay, so
//! calls from the last minutes before the check may be missing from it.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::target::{MAX_SESSION_LIFETIME, TargetSession};
use crate::evidence::{EventQuery, EventSet, Evidence, EvidenceError, Window};
use crate::key::AccessKeyId;

/// The judgement of the calls made after the deactivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostCheckVerdict {
    /// CloudTrail shows no call of the key or its sessions since the deactivation.
    Quiet,
    /// The key was tried after the deactivation, and every such call failed.
    KeyRejected,
    /// A session issued with the key made calls that succeeded after the deactivation.
    SessionsActive,
    /// The key itself made calls that succeeded after the deactivation.
    KeyStillWorks,
}

/// The result of the post-deactivation check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostCheckReport {
    pub key_id: AccessKeyId,
    /// When the key became inactive.
    pub deactivated_at: DateTime<Utc>,
    /// The end of the checked window.
    pub checked_at: DateTime<Utc>,
    pub verdict: PostCheckVerdict,
    /// Calls signed with the key since the deactivation.
    pub key_calls: usize,
    /// Of those, the calls that succeeded.
    pub key_calls_succeeded: usize,
    /// Calls signed with sessions issued with the key since the deactivation.
    pub session_calls: usize,
    /// Of those, the calls that succeeded.
    pub session_calls_succeeded: usize,
    /// The sessions that made calls since the deactivation.
    pub sessions_used: Vec<String>,
    /// The source addresses of those calls, sorted.
    pub source_ips: Vec<String>,
    /// The time of the last such call.
    pub last_call: Option<DateTime<Utc>>,
    /// The origin of the events, such as `log group aws-cloudtrail-logs`.
    pub events_source: String,
}

impl PostCheckReport {
    /// Describes the result in one or two sentences, for chat.
    pub fn summary(&self) -> String {
        let since = format!(
            "since its deactivation at {}",
            self.deactivated_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        let from = match self.source_ips.is_empty() {
            true => String::new(),
            false => format!(" from {}", self.source_ips.join(", ")),
        };
        let last = self
            .last_call
            .map(|time| format!(", the last at {}", time.format("%H:%M:%S UTC")))
            .unwrap_or_default();
        match self.verdict {
            PostCheckVerdict::Quiet => format!(
                "CloudTrail shows no call of {} or its sessions {since}, up to {} ({}). CloudTrail delivers events minutes after the call, so the last minutes may be missing.",
                self.key_id,
                self.checked_at.format("%H:%M:%S UTC"),
                self.events_source
            ),
            PostCheckVerdict::KeyRejected => format!(
                "{} was tried {} times {since}{from}{last}, and every call failed: the deactivation holds, and whoever has the key is still trying.",
                self.key_id, self.key_calls
            ),
            PostCheckVerdict::SessionsActive => format!(
                "Sessions {} issued with {} made {} successful calls {since}{from}{last}: revoke these sessions, because deactivating the key does not end them.",
                self.sessions_used.join(", "),
                self.key_id,
                self.session_calls_succeeded
            ),
            PostCheckVerdict::KeyStillWorks => format!(
                "{} made {} successful calls {since}{from}{last}: check whether the key is active again. Calls in the first seconds after a deactivation can succeed while IAM applies the change.",
                self.key_id, self.key_calls_succeeded
            ),
        }
    }
}

/// Judges the events of the key and its sessions made at or after `deactivated_at`.
///
/// `sessions` are the sessions the investigation found. Sessions that `events` shows the
/// key issued count too, because the key may have issued more before its deactivation.
pub fn assess(
    key: &AccessKeyId,
    sessions: &[String],
    deactivated_at: DateTime<Utc>,
    checked_at: DateTime<Utc>,
    events: &EventSet,
) -> PostCheckReport {
    let mut session_keys: HashSet<&str> = sessions.iter().map(String::as_str).collect();
    session_keys.extend(events.minted.iter().map(|session| session.key_id.as_str()));

    let mut report = PostCheckReport {
        key_id: key.clone(),
        deactivated_at,
        checked_at,
        verdict: PostCheckVerdict::Quiet,
        key_calls: 0,
        key_calls_succeeded: 0,
        session_calls: 0,
        session_calls_succeeded: 0,
        sessions_used: Vec::new(),
        source_ips: Vec::new(),
        last_call: None,
        events_source: events.source.clone(),
    };
    let mut sessions_used = BTreeSet::new();
    let mut source_ips = BTreeSet::new();

    for event in &events.events {
        let Some(signer) = event.access_key_id() else {
            continue;
        };
        if event.event_time < deactivated_at {
            continue;
        }
        let succeeded = !event.is_error();
        if signer == key.as_str() {
            report.key_calls += 1;
            report.key_calls_succeeded += usize::from(succeeded);
        } else if session_keys.contains(signer) {
            report.session_calls += 1;
            report.session_calls_succeeded += usize::from(succeeded);
            sessions_used.insert(signer.to_string());
        } else {
            continue;
        }
        if let Some(source) = &event.source_ip_address {
            source_ips.insert(source.as_str().to_string());
        }
        report.last_call = report.last_call.max(Some(event.event_time));
    }

    report.sessions_used = sessions_used.into_iter().collect();
    report.source_ips = source_ips.into_iter().collect();
    report.verdict = if report.key_calls_succeeded > 0 {
        PostCheckVerdict::KeyStillWorks
    } else if report.session_calls_succeeded > 0 {
        PostCheckVerdict::SessionsActive
    } else if report.key_calls + report.session_calls > 0 {
        PostCheckVerdict::KeyRejected
    } else {
        PostCheckVerdict::Quiet
    };
    report
}

/// Reads the CloudTrail events from `deactivated_at` to `now` through `evidence` and judges
/// them with [`assess`].
///
/// The fetch also reads the [`MAX_SESSION_LIFETIME`] before the deactivation, because the
/// evidence source finds a session's calls through the call that issued it, and any session
/// issued that long ago may still be valid.
///
/// Fails when the evidence source cannot read CloudTrail.
pub async fn check_after_deactivation(
    evidence: &dyn Evidence,
    key: &AccessKeyId,
    sessions: &[TargetSession],
    deactivated_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<PostCheckReport, EvidenceError> {
    let window = Window {
        start: deactivated_at,
        end: now.max(deactivated_at),
    };
    let query = EventQuery {
        key: key.clone(),
        owner_arn: None,
        window: Some(window),
        window_length: window.length(),
        history: MAX_SESSION_LIFETIME,
    };
    let events = evidence.events(&query).await?;
    let session_ids: Vec<String> = sessions
        .iter()
        .map(|session| session.key_id.clone())
        .collect();
    Ok(assess(
        key,
        &session_ids,
        deactivated_at,
        window.end,
        &events,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudtrail::read_bytes;

    const KEY: &str = "AKIAAAAAAAAAAAAAAAAA";

    fn event(time: &str, key_id: &str, error: Option<&str>, minted: Option<&str>) -> String {
        let error = error
            .map(|code| format!(r#","errorCode":"{code}""#))
            .unwrap_or_default();
        let (name, response) = match minted {
            Some(minted) => (
                "GetSessionToken",
                format!(r#","responseElements":{{"credentials":{{"accessKeyId":"{minted}"}}}}"#),
            ),
            None => ("ListBuckets", String::new()),
        };
        format!(
            r#"{{"eventTime":"{time}","eventSource":"sts.amazonaws.com","eventName":"{name}","sourceIPAddress":"203.0.113.77",
               "userIdentity":{{"type":"IAMUser","accessKeyId":"{key_id}"}}{error}{response}}}"#
        )
    }

    fn assess_events(lines: &[String], sessions: &[&str]) -> PostCheckReport {
        let key: AccessKeyId = KEY.parse().unwrap();
        let deactivated: DateTime<Utc> = "2026-05-01T12:00:00Z".parse().unwrap();
        let checked: DateTime<Utc> = "2026-05-01T12:30:00Z".parse().unwrap();
        let json = format!("[{}]", lines.join(","));
        let query = EventQuery {
            key: key.clone(),
            owner_arn: None,
            window: Some(Window {
                start: deactivated,
                end: checked,
            }),
            window_length: checked - deactivated,
            history: MAX_SESSION_LIFETIME,
        };
        let set = EventSet::build(&query, read_bytes(json.as_bytes()).events, checked);
        let sessions: Vec<String> = sessions.iter().map(|s| s.to_string()).collect();
        assess(&key, &sessions, deactivated, checked, &set)
    }

    #[test]
    fn nothing_after_deactivation_is_quiet() {
        let report = assess_events(&[event("2026-05-01T11:59:00Z", KEY, None, None)], &[]);
        assert_eq!(report.verdict, PostCheckVerdict::Quiet);
        assert_eq!(report.key_calls, 0);
        assert!(
            report.summary().contains("no call of AKIAAAAAAAAAAAAAAAAA"),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn failed_key_calls_are_rejected() {
        let report = assess_events(
            &[
                event(
                    "2026-05-01T12:05:00Z",
                    KEY,
                    Some("InvalidClientTokenId"),
                    None,
                ),
                event(
                    "2026-05-01T12:06:00Z",
                    KEY,
                    Some("InvalidClientTokenId"),
                    None,
                ),
            ],
            &[],
        );
        assert_eq!(report.verdict, PostCheckVerdict::KeyRejected);
        assert_eq!(report.key_calls, 2);
        assert_eq!(report.key_calls_succeeded, 0);
        assert_eq!(report.source_ips, ["203.0.113.77"]);
        assert!(
            report.summary().contains("every call failed"),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn session_minted_before_is_followed() {
        // The session was issued before the deactivation, was not known to the
        // investigation, and is used after it.
        let report = assess_events(
            &[
                event(
                    "2026-05-01T11:50:00Z",
                    KEY,
                    None,
                    Some("ASIABBBBBBBBBBBBBBBB"),
                ),
                event("2026-05-01T12:10:00Z", "ASIABBBBBBBBBBBBBBBB", None, None),
                event("2026-05-01T12:11:00Z", "ASIAZZZZZZZZZZZZZZZZ", None, None),
            ],
            &[],
        );
        assert_eq!(report.verdict, PostCheckVerdict::SessionsActive);
        assert_eq!(
            report.session_calls, 1,
            "the unrelated session does not count"
        );
        assert_eq!(report.sessions_used, ["ASIABBBBBBBBBBBBBBBB"]);
        assert_eq!(report.last_call, "2026-05-01T12:10:00Z".parse().ok());
        assert!(
            report.summary().contains("revoke these sessions"),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn known_session_counts_without_minting_event() {
        let report = assess_events(
            &[event(
                "2026-05-01T12:10:00Z",
                "ASIACCCCCCCCCCCCCCCC",
                None,
                None,
            )],
            &["ASIACCCCCCCCCCCCCCCC"],
        );
        assert_eq!(report.verdict, PostCheckVerdict::SessionsActive);
    }

    #[test]
    fn successful_key_call_flags_key() {
        let report = assess_events(
            &[
                event("2026-05-01T12:10:00Z", "ASIACCCCCCCCCCCCCCCC", None, None),
                event("2026-05-01T12:20:00Z", KEY, None, None),
            ],
            &["ASIACCCCCCCCCCCCCCCC"],
        );
        assert_eq!(report.verdict, PostCheckVerdict::KeyStillWorks);
        assert!(
            report
                .summary()
                .contains("check whether the key is active again"),
            "{}",
            report.summary()
        );
    }
}
