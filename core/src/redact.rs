//! Removal of secrets from any text keycheck posts to chat or writes to a log: secret
//! access keys, AWS session tokens, Slack and Discord tokens, chat webhook URLs, and the
//! values of fields named like `SecretAccessKey`, `SessionToken` or `token`.
//!
//! Access key IDs stay: they identify a key but do not grant access, and every report is
//! about one. This module recognises secrets by their shape and by the field names next
//! to them. It cannot recognise a secret that has neither, such as a password typed into
//! prose.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// Length of a secret access key.
const SECRET_KEY_LEN: usize = 40;

/// Distance in bytes within which the word "secret" or an access key ID marks a
/// 40-character token as a secret access key, before or after it.
const CONTEXT_WINDOW: usize = 64;

/// Shortest AWS session token recognised by its prefix alone. Real tokens are several
/// hundred characters long, and the bare prefixes also appear in documentation.
const MIN_SESSION_TOKEN_LEN: usize = 40;

/// Line widths of wrapped base64 blocks (PEM wraps at 64, MIME at 76). A 40-character
/// line right after such a line is the tail of the block, not a secret access key.
const WRAPPED_BASE64_LINE: Range<usize> = 60..81;

/// Upper bound on redaction passes. A later pass finds more only next to a placeholder
/// of the pass before, which can make a neighbouring token whole or put the word
/// "secret" near it. Each extra pass needs another secret chained to the last.
const MAX_PASSES: usize = 4;

/// The kind of a redacted secret. Its placeholder replaces it in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// A secret access key, or the value of a field such as `SecretAccessKey`.
    SecretAccessKey,
    /// An AWS session token, or the value of a field such as `SessionToken`.
    SessionToken,
    /// The value of a field named exactly `token`, such as a Slack verification token
    /// or the `Token` of EC2 instance metadata credentials.
    Token,
    /// A Slack API token: `xoxb-`, `xoxp-`, `xapp-`, `xoxe-` and the other `xox` kinds.
    SlackToken,
    /// A Slack incoming-webhook or workflow URL, which lets anyone post to a channel.
    SlackWebhookUrl,
    /// A Discord bot token: user ID, timestamp and HMAC, separated by dots.
    DiscordBotToken,
    /// A Discord webhook URL, which lets anyone post to a channel.
    DiscordWebhookUrl,
}

impl SecretKind {
    /// Returns the text that replaces a secret of this kind.
    pub fn placeholder(self) -> &'static str {
        match self {
            SecretKind::SecretAccessKey => "[redacted secret access key]",
            SecretKind::SessionToken => "[redacted session token]",
            SecretKind::Token => "[redacted token]",
            SecretKind::SlackToken => "[redacted slack token]",
            SecretKind::SlackWebhookUrl => "[redacted slack webhook url]",
            SecretKind::DiscordBotToken => "[redacted discord bot token]",
            SecretKind::DiscordWebhookUrl => "[redacted discord webhook url]",
        }
    }
}

/// A secret found in a text: where it is and what kind it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretMatch {
    /// Byte range of the secret in the text, on character boundaries.
    pub range: Range<usize>,
    /// The kind of secret in the range.
    pub kind: SecretKind,
}

/// Replaces every secret in `text` with a placeholder such as `[redacted secret access
/// key]`, and borrows `text` unchanged when it contains none.
///
/// The result contains no secret that [`find_secrets`] recognises, and redacting it
/// again changes nothing, unless the input needs more than four passes. That takes a
/// chain of secrets in which each one hides the next.
pub fn redact(text: &str) -> Cow<'_, str> {
    let matches = find_secrets(text);
    if matches.is_empty() {
        return Cow::Borrowed(text);
    }

    // A placeholder can turn its neighbour into a secret by the rules of the next
    // pass, so repeat until a pass finds nothing.
    let mut redacted = replace_matches(text, &matches);
    for _ in 1..MAX_PASSES {
        let matches = find_secrets(&redacted);
        if matches.is_empty() {
            break;
        }
        redacted = replace_matches(&redacted, &matches);
    }
    Cow::Owned(redacted)
}

/// Returns true when `text` contains any secret that [`redact`] would replace.
pub fn contains_secret(text: &str) -> bool {
    !find_secrets(text).is_empty()
}

/// Returns true when `text` contains a secret access key, either by its shape or as the
/// value of a field such as `SecretAccessKey` or `aws_secret_access_key`.
pub fn contains_secret_access_key(text: &str) -> bool {
    find_secrets(text)
        .iter()
        .any(|found| found.kind == SecretKind::SecretAccessKey)
}

/// Finds every secret in `text`, in order, with overlapping matches merged into one.
///
/// The work is linear in the length of `text`.
pub fn find_secrets(text: &str) -> Vec<SecretMatch> {
    let mut found = Vec::new();
    find_field_values(text, &mut found);
    find_token_shapes(text, &mut found);
    find_secret_access_keys(text, &mut found);
    merge_overlaps(found)
}

/// Builds the text with each match replaced by its placeholder. The matches must be
/// sorted and must not overlap.
fn replace_matches(text: &str, matches: &[SecretMatch]) -> String {
    let mut redacted = String::with_capacity(text.len());
    let mut copied_to = 0;
    for found in matches {
        redacted.push_str(&text[copied_to..found.range.start]);
        redacted.push_str(found.kind.placeholder());
        copied_to = found.range.end;
    }
    redacted.push_str(&text[copied_to..]);
    redacted
}

/// Sorts matches and merges overlapping ones, keeping the kind of the one that starts
/// first, so that no part of a secret survives between two placeholders.
fn merge_overlaps(mut found: Vec<SecretMatch>) -> Vec<SecretMatch> {
    found.sort_by_key(|m| (m.range.start, std::cmp::Reverse(m.range.end)));
    let mut merged: Vec<SecretMatch> = Vec::with_capacity(found.len());
    for next in found {
        if let Some(last) = merged.last_mut()
            && next.range.start < last.range.end
        {
            last.range.end = last.range.end.max(next.range.end);
            continue;
        }
        merged.push(next);
    }
    merged
}

// ---------------------------------------------------------------------------------------
// Field values
// ---------------------------------------------------------------------------------------

/// The characters a secret field value may contain: base64, base64url, URL escapes, and
/// `\/`, which some JSON encoders write for `/`. Spaces and `[` are excluded, so a
/// placeholder is never taken for a value.
const VALUE: &str = r#"((?:\\/|[A-Za-z0-9+/=_.%~-])+)"#;

/// An optional quote around a field name or value: `"`, `\"` inside a JSON string, `'`,
/// or Slack's `&quot;`.
const QUOTE: &str = r#"(?:\\?"|'|&quot;)?"#;

/// Fields whose value is a secret, in JSON, YAML, INI, environment, URL query and XML
/// form: `"SecretAccessKey": "…"`, `aws_secret_access_key = …`,
/// `AWS_SESSION_TOKEN=…`, `X-Amz-Security-Token=…`, `<SessionToken>…`.
static SECRET_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r"(?i)(?:(secret[_-]?access[_-]?key|secret[_-]?key)|session[_-]?token|security[_-]?token){QUOTE}(?:[ \t]*[:=][ \t]*|>){QUOTE}{VALUE}"
    );
    Regex::new(&pattern).expect("secret field pattern is valid")
});

/// A field named exactly `token`: quoted, as in `"token": "…"` or `"Token" : "…"`, or a
/// form or query parameter, as in `&token=…` or a form body `"token=…&team_id=…"`.
static TOKEN_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r#"(?i)(?:(?:\\?"|'|&quot;)token(?:\\?"|'|&quot;)[ \t]*[:=][ \t]*{QUOTE}|(?:^|[?&\s"'])token=){VALUE}"#
    );
    Regex::new(&pattern).expect("token field pattern is valid")
});

/// Values that are JSON or Python literals, not secrets. Replacing one would also turn
/// valid JSON into invalid JSON.
const LITERAL_VALUES: [&str; 6] = ["null", "true", "false", "None", "True", "False"];

fn find_field_values(text: &str, found: &mut Vec<SecretMatch>) {
    for captures in SECRET_FIELD.captures_iter(text) {
        let Some(value) = captures.get(2) else {
            continue;
        };
        if LITERAL_VALUES.contains(&value.as_str()) {
            continue;
        }
        let kind = if captures.get(1).is_some() {
            SecretKind::SecretAccessKey
        } else {
            SecretKind::SessionToken
        };
        found.push(SecretMatch {
            range: value.range(),
            kind,
        });
    }

    for captures in TOKEN_FIELD.captures_iter(text) {
        let Some(value) = captures.get(1) else {
            continue;
        };
        if LITERAL_VALUES.contains(&value.as_str()) {
            continue;
        }
        found.push(SecretMatch {
            range: value.range(),
            kind: SecretKind::Token,
        });
    }
}

// ---------------------------------------------------------------------------------------
// Tokens recognised by their shape
// ---------------------------------------------------------------------------------------

/// AWS session tokens, by the base64 prefixes that STS session tokens of the known
/// formats start with: `IQoJb3JpZ2lu`, `FwoGZXIvYXdz`, `FQoGZXIvYXdz` and `AQoDYXdz`.
static SESSION_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz|AQoDYXdz)(?:\\/|[A-Za-z0-9+/=%])+")
        .expect("session token pattern is valid")
});

/// Slack tokens: `xoxb-`, `xoxp-`, `xoxa-`, `xoxe-`, `xoxs-`, `xoxr-`, rotated tokens
/// such as `xoxe.xoxp-1-…`, and app-level `xapp-` tokens.
static SLACK_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:xox[a-z](?:\.xox[a-z])?|xapp)-[0-9A-Za-z][0-9A-Za-z-]{8,}")
        .expect("slack token pattern is valid")
});

static SLACK_WEBHOOK_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"https?://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+",
    )
    .expect("slack webhook pattern is valid")
});

static DISCORD_WEBHOOK_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"https?://(?:(?:canary|ptb)\.)?discord(?:app)?\.com/api(?:/v[0-9]+)?/webhooks/[0-9]+/[A-Za-z0-9_-]+",
    )
    .expect("discord webhook pattern is valid")
});

/// Discord bot tokens: the bot's user ID in base64, a timestamp of 6 or 7 characters,
/// and an HMAC of 27 to 38 characters, joined by dots. The user ID is a snowflake of 17
/// to 20 digits, so its base64 has 23 to 27 characters and starts with `M`, `N` or `O`.
static DISCORD_BOT_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[MNO][A-Za-z0-9_-]{22,26}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,38}")
        .expect("discord token pattern is valid")
});

fn find_token_shapes(text: &str, found: &mut Vec<SecretMatch>) {
    let bytes = text.as_bytes();

    for token in SESSION_TOKEN.find_iter(text) {
        let joined = token.start() > 0 && is_base64(bytes[token.start() - 1]);
        if joined || token.len() < MIN_SESSION_TOKEN_LEN {
            continue;
        }
        found.push(SecretMatch {
            range: token.range(),
            kind: SecretKind::SessionToken,
        });
    }

    for token in SLACK_TOKEN.find_iter(text) {
        if token.start() > 0 && bytes[token.start() - 1].is_ascii_alphanumeric() {
            continue;
        }
        found.push(SecretMatch {
            range: token.range(),
            kind: SecretKind::SlackToken,
        });
    }

    for token in DISCORD_BOT_TOKEN.find_iter(text) {
        let is_token_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        let joined_before = token.start() > 0
            && (is_token_byte(bytes[token.start() - 1]) || bytes[token.start() - 1] == b'.');
        let joined_after = bytes.get(token.end()).is_some_and(|&b| is_token_byte(b));
        if joined_before || joined_after {
            continue;
        }
        found.push(SecretMatch {
            range: token.range(),
            kind: SecretKind::DiscordBotToken,
        });
    }

    for (pattern, kind) in [
        (&*SLACK_WEBHOOK_URL, SecretKind::SlackWebhookUrl),
        (&*DISCORD_WEBHOOK_URL, SecretKind::DiscordWebhookUrl),
    ] {
        for url in pattern.find_iter(text) {
            found.push(SecretMatch {
                range: url.range(),
                kind,
            });
        }
    }
}

// ---------------------------------------------------------------------------------------
// Secret access keys
// ---------------------------------------------------------------------------------------

/// Words and identifiers near which a 40-character token is taken for a secret access
/// key even when it is not a whole token: "secret" (which also covers `SecretAccessKey`
/// and `aws_secret_access_key`) and access key IDs.
static SECRET_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i:secret)|(?:AKIA|ASIA)[A-Z0-9]{16}").expect("context pattern is valid")
});

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// The boundary directly before or after a run of base64 characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edge {
    /// The start or end of the text.
    End,
    /// A line break, written out or as the JSON escape `\n` or `\r`.
    LineBreak,
    /// Another JSON escape, such as `\"` or `\t`.
    Escape,
    /// Any other byte.
    Byte(u8),
}

/// A maximal run of base64 characters, where `\/` counts as one `/`.
#[derive(Clone, Debug)]
struct Base64Run {
    range: Range<usize>,
    /// Characters in the run, with each `\/` counted once.
    chars: usize,
    before: Edge,
    after: Edge,
}

/// Scans `text` for runs of exactly 40 base64 characters and keeps those that are
/// secret access keys, in one pass.
fn find_secret_access_keys(text: &str, found: &mut Vec<SecretMatch>) {
    let bytes = text.as_bytes();
    let context: Vec<Range<usize>> = SECRET_CONTEXT.find_iter(text).map(|m| m.range()).collect();

    let mut previous: Option<Base64Run> = None;
    let mut escape_end = None;
    let mut i = 0;
    while i < bytes.len() {
        if starts_base64_char(bytes, i) {
            let run = scan_run(bytes, i, escape_end == Some(i));
            i = run.range.end;
            if run.chars == SECRET_KEY_LEN
                && is_secret_access_key(bytes, &run, previous.as_ref(), &context)
            {
                found.push(SecretMatch {
                    range: run.range.clone(),
                    kind: SecretKind::SecretAccessKey,
                });
            }
            previous = Some(run);
        } else if bytes[i] == b'\\' {
            // A JSON escape such as \n or \": skip both bytes, so the letter after the
            // backslash does not join the run that follows.
            i += 2;
            escape_end = Some(i);
        } else {
            i += 1;
        }
    }
}

fn starts_base64_char(bytes: &[u8], i: usize) -> bool {
    is_base64(bytes[i]) || (bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'/'))
}

/// Reads the base64 run that starts at `start`. `after_escape` is true when the scanner
/// has just skipped a JSON escape that ends at `start`.
fn scan_run(bytes: &[u8], start: usize, after_escape: bool) -> Base64Run {
    let mut end = start;
    let mut chars = 0;
    loop {
        if end < bytes.len() && is_base64(bytes[end]) {
            end += 1;
        } else if end + 1 < bytes.len() && bytes[end] == b'\\' && bytes[end + 1] == b'/' {
            end += 2;
        } else {
            break;
        }
        chars += 1;
    }

    let before = if start == 0 {
        Edge::End
    } else if after_escape {
        match bytes[start - 1] {
            b'n' | b'r' => Edge::LineBreak,
            _ => Edge::Escape,
        }
    } else {
        match bytes[start - 1] {
            b'\n' | b'\r' => Edge::LineBreak,
            b => Edge::Byte(b),
        }
    };
    let after = match bytes.get(end) {
        None => Edge::End,
        Some(b'\n' | b'\r') => Edge::LineBreak,
        Some(b'\\') => match bytes.get(end + 1) {
            Some(b'n' | b'r') => Edge::LineBreak,
            _ => Edge::Escape,
        },
        Some(&b) => Edge::Byte(b),
    };

    Base64Run {
        range: start..end,
        chars,
        before,
        after,
    }
}

/// Decides whether a run of 40 base64 characters is a secret access key.
///
/// The run must contain a lowercase letter, which no access key ID does. It must not be
/// a lowercase hex digest: SHA-1 digests and git commit IDs are 40 hex characters, while
/// a random secret key is all hex with a probability of 4^-40. It must not be part of a
/// longer token. Then it is a secret key when "secret" or an access key ID is near, or
/// when it is a whole token that does not read as a camel-case word.
fn is_secret_access_key(
    bytes: &[u8],
    run: &Base64Run,
    previous: Option<&Base64Run>,
    context: &[Range<usize>],
) -> bool {
    let token: Vec<u8> = bytes[run.range.clone()]
        .iter()
        .copied()
        .filter(|&b| b != b'\\')
        .collect();

    if !token.iter().any(u8::is_ascii_lowercase) {
        return false;
    }
    if token
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return false;
    }
    if is_joined(bytes, run) || ends_wrapped_base64(bytes, run, previous) {
        return false;
    }

    if has_context(run, context) {
        return true;
    }
    is_whole_token(run) && !is_camel_case_word(&token)
}

/// Returns true when the run continues a longer token: base64 padding after it, or a
/// `-`, `_` or `.` that joins it to more letters or digits (UUIDs, base64url data,
/// identifiers, host names, JWT segments).
fn is_joined(bytes: &[u8], run: &Base64Run) -> bool {
    let joins = |b: u8| b == b'-' || b == b'_' || b == b'.';

    if let Edge::Byte(b) = run.after {
        if b == b'=' {
            return true;
        }
        let beyond = bytes.get(run.range.end + 1);
        if joins(b) && beyond.is_some_and(u8::is_ascii_alphanumeric) {
            return true;
        }
    }
    if let Edge::Byte(b) = run.before {
        let beyond = run.range.start.checked_sub(2).map(|i| bytes[i]);
        if joins(b) && beyond.is_some_and(|c| c.is_ascii_alphanumeric()) {
            return true;
        }
    }
    false
}

/// Returns true when the run is the last line of a wrapped base64 block: it starts a
/// line directly below a whole line of base64 as wide as PEM or MIME wrapping.
fn ends_wrapped_base64(bytes: &[u8], run: &Base64Run, previous: Option<&Base64Run>) -> bool {
    let Some(previous) = previous else {
        return false;
    };
    let previous_is_whole_line =
        matches!(previous.before, Edge::End | Edge::LineBreak) && previous.after == Edge::LineBreak;
    if run.before != Edge::LineBreak
        || !previous_is_whole_line
        || !WRAPPED_BASE64_LINE.contains(&previous.chars)
    {
        return false;
    }

    // Only a line break, written out or escaped, may separate the two runs.
    let between = &bytes[previous.range.end..run.range.start];
    between.len() <= 4
        && between
            .iter()
            .all(|b| matches!(b, b'\n' | b'\r' | b'\\' | b'n' | b'r'))
}

fn has_context(run: &Base64Run, context: &[Range<usize>]) -> bool {
    let window_start = run
        .range
        .start
        .saturating_sub(CONTEXT_WINDOW + SECRET_KEY_LEN);
    let first = context.partition_point(|m| m.start < window_start);
    context[first..]
        .iter()
        .take_while(|m| m.start <= run.range.end + CONTEXT_WINDOW)
        .any(|m| {
            let ends_before = m.end <= run.range.start && run.range.start - m.end <= CONTEXT_WINDOW;
            let starts_after =
                m.start >= run.range.end && m.start - run.range.end <= CONTEXT_WINDOW;
            ends_before || starts_after
        })
}

/// Returns true when the run is a whole token, delimited by whitespace, quotes,
/// brackets, list punctuation or chat formatting. A `=`, `:` or `@` before it attaches
/// it to a name, such as an ARN prefix, and that name did not contain "secret".
fn is_whole_token(run: &Base64Run) -> bool {
    let opens = match run.before {
        Edge::End | Edge::LineBreak | Edge::Escape => true,
        Edge::Byte(b) => {
            b.is_ascii_whitespace() || !b.is_ascii() || b"\"'`([{<>|,;*_~".contains(&b)
        }
    };
    let closes = match run.after {
        Edge::End | Edge::LineBreak | Edge::Escape => true,
        Edge::Byte(b) => {
            b.is_ascii_whitespace() || !b.is_ascii() || b"\"'`)]}<>|,;.*_~!?&".contains(&b)
        }
    };
    opens && closes
}

/// Returns true for letters-only tokens without two capitals in a row, such as
/// `GeneratedFindingInstanceAvailabilityZone` in GuardDuty sample findings. A random
/// secret key has this shape with a probability below 10^-9.
fn is_camel_case_word(token: &[u8]) -> bool {
    token.iter().all(u8::is_ascii_alphabetic)
        && !token
            .windows(2)
            .any(|pair| pair[0].is_ascii_uppercase() && pair[1].is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documentation example of a secret access key.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    /// 40 base64 characters with the mix of a random secret key.
    const RANDOM_40: &str = "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";
    const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJGMEQCIDyJl0YXcz4EXAMPLEKEYhvd3Ew1d5j0Oa0mTQKMKQ6QZAiBpG4mVtZl2nuNLnRe9yOBSgCKZsTXq0HEXAMPLESESSIONTOKENEXAMPLE";

    /// Redacts `input` and checks that the result contains none of `removed` and each of
    /// `placeholders`.
    fn assert_redacts(input: &str, removed: &[&str], placeholders: &[&str]) {
        let redacted = redact(input);
        for secret in removed {
            assert!(
                !redacted.contains(secret),
                "input:\n{input}\noutput:\n{redacted}\nstill contains {secret:?}"
            );
        }
        for placeholder in placeholders {
            assert!(
                redacted.contains(placeholder),
                "input:\n{input}\noutput:\n{redacted}\nlacks {placeholder:?}"
            );
        }
    }

    fn assert_unchanged(input: &str) {
        let found = find_secrets(input);
        assert!(
            found.is_empty(),
            "input:\n{input}\nwrongly matched: {:?}",
            found
                .iter()
                .map(|m| (&input[m.range.clone()], m.kind))
                .collect::<Vec<_>>()
        );
        assert!(matches!(redact(input), Cow::Borrowed(_)), "input:\n{input}");
    }

    #[test]
    fn secret_key_alone_is_redacted() {
        for input in [
            SECRET.to_string(),
            format!("here it is: {SECRET}"),
            format!("`{SECRET}`"),
            format!("*{SECRET}*."),
            format!("_{SECRET}_"),
            format!("(\"{SECRET}\")"),
            format!("“{SECRET}”"),
        ] {
            assert_redacts(&input, &[SECRET], &["[redacted secret access key]"]);
        }
    }

    #[test]
    fn secret_key_next_to_key_id_is_redacted() {
        let lowercase_only = "abcdefghijklmnopqrstuvwxyzabcdefghijklmn";
        for input in [
            format!("{KEY_ID} {SECRET}"),
            format!("{KEY_ID},{SECRET}"),
            format!("Access key ID,Secret access key\n{KEY_ID},{SECRET}\n"),
            format!("{KEY_ID}:{lowercase_only}"),
        ] {
            let redacted = redact(&input);
            assert!(redacted.contains(KEY_ID), "key ID removed from {input:?}");
            assert!(!redacted.contains(SECRET), "{redacted}");
            assert!(!redacted.contains(lowercase_only), "{redacted}");
        }
    }

    #[test]
    fn secret_key_after_keyword_is_redacted() {
        for input in [
            format!("aws_secret_access_key = {SECRET}"),
            format!("aws_secret_access_key={SECRET}"),
            format!("export AWS_SECRET_ACCESS_KEY={SECRET}"),
            format!("SecretAccessKey: {SECRET}"),
            format!("--secret={SECRET}"),
            format!("secret:{SECRET}"),
            format!("{{\"name\": \"AWS_SECRET_ACCESS_KEY\", \"value\": \"{SECRET}\"}}"),
        ] {
            assert_redacts(&input, &[SECRET], &["[redacted secret access key]"]);
        }
    }

    #[test]
    fn secret_key_json_field_forms_are_redacted() {
        let placeholder_value = "REDACTED_EXPIRED_SECRET_ACCESS_KEY";
        for input in [
            format!("{{\"SecretAccessKey\": \"{SECRET}\"}}"),
            format!("{{\"SecretAccessKey\" : \"{placeholder_value}\"}}"),
            "{\"secretAccessKey\":\"short\"}".to_string(),
            format!(
                "{{\"Credentials\":{{\"AccessKeyId\":\"{KEY_ID}\",\"SecretAccessKey\":\"x{SECRET}\"}}}}"
            ),
            format!("\"{{\\\"SecretAccessKey\\\":\\\"{SECRET}\\\"}}\""),
            format!("&quot;SecretAccessKey&quot;: &quot;{placeholder_value}&quot;"),
            format!("{{'SecretAccessKey': '{placeholder_value}'}}"),
            format!("<SecretAccessKey>{placeholder_value}</SecretAccessKey>"),
            format!("secret_key: {placeholder_value}"),
        ] {
            let redacted = redact(&input);
            assert!(!redacted.contains(SECRET), "{redacted}");
            assert!(!redacted.contains(placeholder_value), "{redacted}");
            assert!(!redacted.contains("short"), "{redacted}");
            assert!(
                redacted.contains("[redacted secret access key]"),
                "{redacted}"
            );
        }
    }

    #[test]
    fn json_field_redaction_keeps_json_valid() {
        let input = format!(
            r#"{{"AccessKeyId": "{KEY_ID}", "SecretAccessKey": "{SECRET}", "SessionToken": "{SESSION_TOKEN}", "SecretKey": null}}"#
        );
        let redacted = redact(&input);
        let value: serde_json::Value =
            serde_json::from_str(&redacted).unwrap_or_else(|error| panic!("{error}: {redacted}"));
        assert_eq!(value["AccessKeyId"], KEY_ID);
        assert_eq!(value["SecretAccessKey"], "[redacted secret access key]");
        assert_eq!(value["SessionToken"], "[redacted session token]");
        assert_eq!(value["SecretKey"], serde_json::Value::Null);
    }

    #[test]
    fn json_escaped_secret_key_is_redacted() {
        // Inside a JSON string a line break is `\n`, so the letter n touches the secret.
        let escaped_newline = format!(r#"{{"Message": "key:\n{SECRET}\nend"}}"#);
        assert_redacts(
            &escaped_newline,
            &[SECRET],
            &["[redacted secret access key]"],
        );

        // Some JSON encoders write `/` as `\/`.
        let escaped_slash = SECRET.replace('/', "\\/");
        let input = format!(r#"{{"text": "{escaped_slash}"}}"#);
        assert_redacts(
            &input,
            &[&escaped_slash, "wJalr"],
            &["[redacted secret access key]"],
        );
    }

    #[test]
    fn session_tokens_are_redacted() {
        let older =
            "FwoGZXIvYXdzEBYaDHhBTEXAMPLEKEYgKsAE3ZtnT8K5GEXAMPLEEXAMPLEEXAMPLE+Tc6FHvS/EXAMPLEz";
        for (input, token) in [
            (SESSION_TOKEN.to_string(), SESSION_TOKEN),
            (format!("token {older} end"), older),
            (format!("aws_session_token = {older}"), older),
            ("{\"sessionToken\": \"opaque-value-123\"}".to_string(), "opaque-value-123"),
            (format!("{{\"SessionToken\":\"{SESSION_TOKEN}\"}}"), SESSION_TOKEN),
            (format!("AWS_SESSION_TOKEN={older}"), older),
            (
                "https://bucket.s3.amazonaws.com/x?X-Amz-Security-Token=IQoJb3JpZ2luX2Vj%2F%2Fabc%3D&X-Amz-Signature=1".to_string(),
                "IQoJb3JpZ2luX2Vj%2F%2Fabc%3D",
            ),
        ] {
            assert_redacts(&input, &[token], &["[redacted session token]"]);
        }
    }

    #[test]
    fn session_token_prefix_alone_is_kept() {
        // The bare prefix appears in documentation and detection rules.
        assert_unchanged("tokens start with IQoJb3JpZ2lu or FwoGZXIvYXdzE");
    }

    #[test]
    fn token_fields_are_redacted() {
        for (input, value) in [
            ("{\"Token\" : \"TOKEN-VALUE\"}", "TOKEN-VALUE"),
            (
                "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1",
                "xyzz0WbapA4vBCDEFasx0q6G",
            ),
            ("{'token': 'abc123'}", "abc123"),
        ] {
            assert_redacts(input, &[value], &["[redacted token]"]);
        }
        assert_unchanged("{\"NextToken\": \"eyJOZXh0VG9rZW4iOiBudWxsfQ==\"}");
        assert_unchanged("nextToken=abc&pageToken=def");
    }

    #[test]
    fn slack_tokens_are_redacted() {
        for token in [
            "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
            "xoxp-1234567890-1234567890-1234567890-0123456789abcdef0123456789abcdef",
            "xapp-1-A0123456789-1234567890123-0123456789abcdef0123456789abcdef",
            "xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAtMTIzNDU2Nzg5MA",
            "xoxe-1-My0xLTEyMzQ1Njc4OTAtMTIzNDU2Nzg5MA",
        ] {
            let input = format!("SLACK_BOT_TOKEN={token} and more");
            assert_redacts(&input, &[token], &["[redacted slack token]"]);
        }
        assert_unchanged("see the xoxb- prefix in the docs");
    }

    #[test]
    fn webhook_urls_are_redacted() {
        let slack = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
        assert_redacts(
            &format!("url: {slack}"),
            &["XXXXXXXXXXXX"],
            &["[redacted slack webhook url]"],
        );
        let discord = "https://discord.com/api/webhooks/123456789012345678/abcDEF_ghi-JKL";
        assert_redacts(
            &format!("<{discord}>"),
            &["abcDEF_ghi"],
            &["[redacted discord webhook url]"],
        );
    }

    #[test]
    fn discord_bot_tokens_are_redacted() {
        for token in [
            "MTA4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB",
            "NzkyNzE1NDU0MTk2MDg4ODQy.X-hvzA.Ovy4MCQywSkoMRRclStW4xAYK7I",
        ] {
            let input = format!("Authorization: Bot {token}");
            assert_redacts(&input, &[token], &["[redacted discord bot token]"]);
        }
    }

    #[test]
    fn key_ids_arns_and_ids_are_kept() {
        let inputs = [
            KEY_ID,
            "ASIAY34FZKBOKMUTVV7A and AKIAI44QH8DHBEXAMPLE",
            "AWS::IAM::AccessKey:AKIAIPRJCJL6BOF6DPMA",
            "arn:aws:iam::123456789012:user/division_abc/subdivision_xyz/Bob",
            // The run after the last colon has exactly 40 characters.
            "arn:aws:iam::123456789012:role/ReallyLongRoleNameThatHasFortyChar1",
            "arn:aws:sts::123456789012:assumed-role/my-role/my-session-name",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db/Password-AbCdEf",
            "654ccbc0-ba0d-486a-9076-dbf7274677a7",
            "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
            "GuardDuty finding 1ab92989eaf0e742df4a014d5example",
            "AROAJIKPFTA72SWU4L7T4:my-session-name",
            "\"GeneratedFindingInstanceAvailabilityZone\"",
            "The secret access key is shown only once, when the key is created.",
        ];
        for input in inputs {
            assert_unchanged(input);
        }
    }

    #[test]
    fn sha1_digests_are_kept() {
        // NOTE: a 40-character lowercase hex token is never taken for a secret access
        // key, even next to the word "secret": commit IDs are far more common in chat.
        for input in [
            "fixed in 07c4fe366b49c4dde816d674f4941134fc432673",
            "aws/aws-cli@07c4fe366b49c4dde816d674f4941134fc432673:awscli/examples",
            "secret rotation landed in df800e9e94d0860e0d8fbfebd9bc5b9b2d50367d",
            "sha1=da39a3ee5e6b4b0d3255bfef95601890afd80709",
        ] {
            assert_unchanged(input);
        }
    }

    #[test]
    fn base64_image_data_is_kept() {
        // A data URI is one long run.
        let data_uri = format!(
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk{}AAAAAElFTkSuQmCC",
            "Ab1".repeat(30)
        );
        assert_unchanged(&data_uri);

        // A MIME-wrapped block whose last line has exactly 40 characters.
        let line = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPj/Dw";
        let wrapped_76 = format!(
            "{line}AbCdEfGhIj\n{line}AbCdEfGhIj\nQmCCiVBORw0KGgoAAAANSUhEUgAAAAEAAAAB/xyz\n"
        );
        let widths: Vec<usize> = wrapped_76.lines().map(str::len).collect();
        assert_eq!(widths, [76, 76, 40]);
        assert_unchanged(&wrapped_76);

        // The same inside a JSON string, with escaped line breaks.
        let escaped = wrapped_76.replace('\n', "\\n");
        assert_unchanged(&format!("{{\"image\": \"{escaped}\"}}"));
    }

    #[test]
    fn base64url_and_dotted_tokens_are_kept() {
        assert_redacts(RANDOM_40, &[RANDOM_40], &["[redacted secret access key]"]);
        for input in [
            // 40 characters between - and _ inside base64url data.
            "-rbKyzIKC72UBP5DAchNYeHhBShD9heqssLqgNrpO_abc".to_string(),
            format!("x.{RANDOM_40}.y"),
            format!("prefix_{RANDOM_40}"),
            format!("{RANDOM_40}-suffix"),
            format!("{RANDOM_40}=="),
            format!("{RANDOM_40}B"),
            RANDOM_40[1..].to_string(),
        ] {
            assert_unchanged(&input);
        }
    }

    #[test]
    fn secret_key_after_token_line_is_redacted() {
        // A session token is one long line, not a wrapped block, so the secret on the
        // next line is still found.
        let input = format!("{SESSION_TOKEN}\n{SECRET}\n");
        assert_redacts(
            &input,
            &[SECRET, SESSION_TOKEN],
            &["[redacted secret access key]"],
        );
    }

    #[test]
    fn contains_secret_reports_each_kind() {
        assert!(contains_secret(SECRET));
        assert!(contains_secret_access_key(&format!("{KEY_ID} {SECRET}")));
        assert!(contains_secret_access_key("\"SecretAccessKey\": \"abc\""));
        assert!(!contains_secret_access_key(SESSION_TOKEN));
        assert!(contains_secret(SESSION_TOKEN));
        assert!(!contains_secret(KEY_ID));
        assert!(!contains_secret("[redacted secret access key]"));
    }

    #[test]
    fn redacted_placeholders_are_stable() {
        let input = format!(
            "aws_secret_access_key = {SECRET}\naws_session_token = {SESSION_TOKEN}\n\"SecretAccessKey\": \"{SECRET}\"\ntoken=abc"
        );
        let once = redact(&input).into_owned();
        assert!(!once.contains(SECRET), "{once}");
        assert_eq!(redact(&once), once);
        assert!(matches!(redact(&once), Cow::Borrowed(_)));
    }

    /// Secrets in each file of the shared corpus, by kind, worked out by reading the
    /// files. Every other file must give no match at all.
    ///
    /// NOTE: `slack/bolt-python_block_actions_raw_body.txt` contains a verification token
    /// inside a URL-encoded form body (`%22token%22%3A+%22…`), which is not decoded and
    /// so not found. keycheck never logs raw request bodies.
    const CORPUS_SECRETS: &[(&str, &[(SecretKind, usize)])] = &[
        (
            "cloudtrail/awsdocs/awsdocs-cloudtrail-event-reference-user-identity.md",
            &[(SecretKind::SessionToken, 1)],
        ),
        (
            "cloudtrail/elastic-integrations/test-assume-role-aws-service-json.log",
            &[(SecretKind::SessionToken, 1)],
        ),
        (
            "cloudtrail/elastic-integrations/test-assume-role-email-session-json.log",
            &[(SecretKind::SessionToken, 1)],
        ),
        (
            "cloudtrail/otrf/SDAWS-200914011940.yaml",
            &[
                (SecretKind::SecretAccessKey, 1),
                (SecretKind::SessionToken, 1),
                (SecretKind::Token, 1),
            ],
        ),
        (
            "cloudtrail/stratus/aws.credential-access.ec2-get-password-data.json",
            &[(SecretKind::SessionToken, 2)],
        ),
        (
            "cloudtrail/stratus/aws.defense-evasion.organizations-leave.json",
            &[(SecretKind::SessionToken, 2)],
        ),
        (
            "cloudtrail/stratus/aws.discovery.ec2-download-user-data.json",
            &[(SecretKind::SessionToken, 2)],
        ),
        (
            "cloudtrail/stratus/aws.execution.ec2-launch-unusual-instances.json",
            &[(SecretKind::SessionToken, 2)],
        ),
        (
            "sekoia/aws-cloudtrail__event_s3.raw.json",
            &[(SecretKind::SessionToken, 1)],
        ),
        (
            "sekoia/aws-cloudtrail__event_sts.raw.json",
            &[(SecretKind::SessionToken, 1)],
        ),
        (
            "slack/bolt-python_block_actions_payload.json",
            &[(SecretKind::Token, 1)],
        ),
        (
            "slack/slack-docs_slash_command_payload.decoded.json",
            &[(SecretKind::Token, 1)],
        ),
        (
            "slack/slack-docs_slash_command_raw_body.txt",
            &[(SecretKind::Token, 1)],
        ),
        (
            "slack/slack_signing_test_vector.json",
            &[(SecretKind::Token, 1)],
        ),
    ];

    fn corpus_files(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
        for entry in entries {
            let path = entry.expect("corpus entry is readable").path();
            if path.is_dir() {
                corpus_files(&path, files);
            } else {
                files.push(path);
            }
        }
    }

    #[test]
    fn corpus_secrets_match_expected() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
        if !corpus.is_dir() {
            println!(
                "corpus not found at {}: skipping the corpus test",
                corpus.display()
            );
            return;
        }
        let mut files = Vec::new();
        corpus_files(&corpus, &mut files);
        files.sort();

        let mut failures = Vec::new();
        for path in &files {
            let relative = path
                .strip_prefix(&corpus)
                .expect("file is under the corpus");
            let relative = relative.to_string_lossy().replace('\\', "/");
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let found = find_secrets(&text);
            let mut counts: Vec<(SecretKind, usize)> = Vec::new();
            for secret in &found {
                match counts.iter_mut().find(|(kind, _)| *kind == secret.kind) {
                    Some((_, count)) => *count += 1,
                    None => counts.push((secret.kind, 1)),
                }
            }
            counts.sort_by_key(|(kind, _)| format!("{kind:?}"));

            let expected = CORPUS_SECRETS
                .iter()
                .find(|(file, _)| *file == relative)
                .map_or(&[][..], |(_, kinds)| *kinds);
            if counts != expected {
                let matched: Vec<(SecretKind, String)> = found
                    .iter()
                    .map(|m| (m.kind, text[m.range.clone()].chars().take(40).collect()))
                    .collect();
                failures.push(format!(
                    "{relative}: expected {expected:?}, found {matched:?}"
                ));
            }
        }
        for (file, _) in CORPUS_SECRETS {
            if !corpus.join(file).is_file() {
                failures.push(format!(
                    "{file}: listed in CORPUS_SECRETS but not in the corpus"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} corpus failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    /// A small deterministic generator (xorshift64*), so the property test needs no
    /// extra dependency and fails the same way on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    #[test]
    fn redact_is_idempotent_on_generated_text() {
        let fragments = [
            SECRET,
            KEY_ID,
            SESSION_TOKEN,
            RANDOM_40,
            "abcdefghijklmnopqrstuvwxyzabcdefghijklmn",
            "07c4fe366b49c4dde816d674f4941134fc432673",
            "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
            "MTA4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB",
            "https://hooks.slack.com/services/T0/B0/XXXX",
            "\"SecretAccessKey\": \"",
            "aws_secret_access_key = ",
            "\"token\": \"",
            "token=",
            "secret",
            "[redacted secret access key]",
            "\\n",
            "\\/",
            "\\\"",
            "\n",
            " ",
            "\"",
            "=",
            ".",
            "-",
            "_",
            ":",
            ",",
            "&quot;",
            "é",
            "+/",
            "A",
            "z",
            "9",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for case in 0..3000 {
            let pieces = 1 + (rng.next() % 12) as usize;
            let input: String = (0..pieces).map(|_| rng.pick(&fragments)).collect();
            let once = redact(&input).into_owned();
            let twice = redact(&once).into_owned();
            assert_eq!(twice, once, "case {case}: input {input:?}");

            // Glued to other fragments the secret is part of a longer token, but
            // between spaces it must always go.
            let alone = format!(" {SECRET} ");
            if input.contains(&alone) {
                assert!(
                    !once.contains(&alone),
                    "case {case}: input {input:?} output {once:?}"
                );
            }
        }
    }

    #[test]
    fn redact_never_panics_on_arbitrary_bytes() {
        let mut rng = Rng(42);
        for _ in 0..2000 {
            let len = (rng.next() % 200) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| (rng.next() % 256) as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = redact(&text);
        }
        for text in ["\\", "a\\", "\\/", "é\\", "\\é"] {
            let _ = redact(text);
        }
    }

    #[test]
    fn redact_is_linear_on_long_input() {
        // 400 KB of near-misses: 40-character runs joined by '=' and tokens cut short.
        let chunk = format!("{RANDOM_40}= secret xoxb- IQoJb3JpZ2lu token= ");
        let input = chunk.repeat(400_000 / chunk.len());
        let started = std::time::Instant::now();
        let _ = redact(&input);
        let elapsed = started.elapsed();
        assert!(elapsed.as_secs() < 5, "took {elapsed:?}");
    }
}
