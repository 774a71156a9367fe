//! The access key ID type: validation of what a responder pastes, the long-term versus
//! temporary distinction, and offline decoding of the owning AWS account.
//!
//! This module only reads the ID itself. Whether the key exists, who owns it and whether
//! it is active are questions for the evidence layer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Length of every access key ID AWS issues today.
pub const KEY_ID_LEN: usize = 20;

/// Length of a secret access key.
const SECRET_KEY_LEN: usize = 40;

/// An access key ID: `AKIA` (long-term, an IAM user's or the root user's key) or `ASIA`
/// (temporary, minted by AWS STS), followed by 16 uppercase letters or digits.
///
/// Parsing normalises lowercase input to uppercase. The value is never a secret: key IDs
/// may be logged and posted.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccessKeyId(String);

/// Whether a key is a long-term IAM credential or a temporary STS credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// `AKIA`: an IAM user's (or the root user's) access key, valid until deactivated.
    LongTerm,
    /// `ASIA`: a session credential from AWS STS, valid until it expires.
    Temporary,
}

/// The result of decoding the owning account from the key ID alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccountDecoding {
    /// The 12-digit account ID encoded in the key ID.
    Decoded { account_id: String },
    /// The key ID contains characters outside the base32 alphabet (`0`, `1`, `8`, `9`),
    /// which AWS never issues; anonymised data sets produce such IDs.
    NotBase32,
}

/// Why a piece of text is not an access key ID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyIdError {
    #[error("no access key ID given: pass one like AKIAIOSFODNN7EXAMPLE")]
    Empty,
    #[error(
        "{shown} is {what} ({prefix} prefix), not an access key ID: pass the key ID that starts with AKIA or ASIA"
    )]
    OtherIdentifier {
        shown: String,
        prefix: String,
        what: &'static str,
    },
    #[error("{shown} does not start with AKIA or ASIA, so it is not an access key ID")]
    UnknownPrefix { shown: String },
    #[error(
        "{shown} has {len} characters, but an access key ID has {KEY_ID_LEN}: check that it was copied whole"
    )]
    WrongLength { shown: String, len: usize },
    #[error(
        "{shown} contains {character:?} at position {position}, but an access key ID has only the letters A–Z and the digits 0–9"
    )]
    InvalidCharacter {
        shown: String,
        character: char,
        position: usize,
    },
    #[error(
        "that looks like a secret access key (40 characters), not an access key ID; it was not stored or echoed: pass the key ID that starts with AKIA or ASIA, and treat the secret as exposed"
    )]
    SecretKeyGiven,
}

/// Unique-identifier prefixes that AWS uses for things other than access keys, and what
/// each identifies. Source: IAM User Guide, "IAM identifiers", unique ID prefixes.
const OTHER_PREFIXES: &[(&str, &str)] = &[
    ("ABIA", "an AWS STS service bearer token"),
    ("ACCA", "a context-specific credential"),
    ("AGPA", "an IAM user group ID"),
    ("AIDA", "an IAM user ID"),
    ("AIPA", "an EC2 instance profile ID"),
    ("ANPA", "a managed policy ID"),
    ("ANVA", "a managed policy version ID"),
    ("APKA", "a public key ID"),
    ("AROA", "an IAM role ID"),
    ("ASCA", "a certificate ID"),
];

impl AccessKeyId {
    /// Returns the key ID as uppercase text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns whether this is a long-term (`AKIA`) or temporary (`ASIA`) key.
    pub fn kind(&self) -> KeyKind {
        if self.0.starts_with("ASIA") {
            KeyKind::Temporary
        } else {
            KeyKind::LongTerm
        }
    }

    /// Decodes the owning AWS account from the key ID, without calling AWS.
    ///
    /// The 16 characters after the prefix are base32; the account ID sits in bits 1–40 of
    /// the first six decoded bytes. This format was worked out publicly by Aidan Steele
    /// (awsteele.com, 2020) and Tal Be'ery (2023); AWS does not document it, so the live
    /// `sts:GetAccessKeyInfo` answer wins over this one whenever both exist.
    pub fn decode_account(&self) -> AccountDecoding {
        let body = &self.0.as_bytes()[4..];
        let Ok(bytes) = data_encoding::BASE32_NOPAD.decode(body) else {
            return AccountDecoding::NotBase32;
        };
        let mut high = [0u8; 8];
        high[2..].copy_from_slice(&bytes[..6]);
        let bits = u64::from_be_bytes(high);
        let account = (bits & 0x7fff_ffff_ff80) >> 7;
        AccountDecoding::Decoded {
            account_id: format!("{account:012}"),
        }
    }

    /// Returns the key ID shortened for display where space is tight: `AKIA…K4VC`.
    pub fn short(&self) -> String {
        format!("{}…{}", &self.0[..4], &self.0[16..])
    }
}

impl fmt::Display for AccessKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccessKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessKeyId({})", self.0)
    }
}

impl FromStr for AccessKeyId {
    type Err = KeyIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyIdError::Empty);
        }
        if looks_like_secret_key(text) {
            return Err(KeyIdError::SecretKeyGiven);
        }

        // Show at most a short prefix of what was given: the input may be something
        // sensitive that was pasted by mistake.
        let shown = shown_prefix(text);
        let upper = text.to_ascii_uppercase();
        if let Some((position, character)) = upper
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_alphanumeric())
        {
            return Err(KeyIdError::InvalidCharacter {
                shown,
                character,
                position: position + 1,
            });
        }

        let prefix = upper.get(..4).unwrap_or(&upper);
        if let Some((_, what)) = OTHER_PREFIXES.iter().find(|(p, _)| *p == prefix) {
            return Err(KeyIdError::OtherIdentifier {
                shown,
                prefix: prefix.to_string(),
                what,
            });
        }
        if prefix != "AKIA" && prefix != "ASIA" {
            return Err(KeyIdError::UnknownPrefix { shown });
        }
        if upper.len() != KEY_ID_LEN {
            return Err(KeyIdError::WrongLength {
                shown,
                len: upper.chars().count(),
            });
        }
        Ok(AccessKeyId(upper))
    }
}

impl TryFrom<String> for AccessKeyId {
    type Error = KeyIdError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<AccessKeyId> for String {
    fn from(key: AccessKeyId) -> String {
        key.0
    }
}

/// What a responder pasted: the access key ID, and whether a secret access key came
/// with it. The secret itself is never kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInput {
    /// The access key ID found in the input.
    pub key: AccessKeyId,
    /// True when a 40-character secret access key was pasted next to the ID.
    pub secret_pasted: bool,
}

/// Parses chat or command-line input that should name one access key ID, such as
/// `AKIA…`, `akia…`, or `AKIA… wJalr…` and `AKIA…:wJalr…` (an ID with its secret pasted
/// next to it).
///
/// Returns the first token that parses as a key ID. When none does, returns the error
/// for the first token, so the message names what was wrong with it.
pub fn parse_key_input(input: &str) -> Result<KeyInput, KeyIdError> {
    let tokens: Vec<&str> = input
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '=' | '`' | '"' | '\''))
        .filter(|t| !t.is_empty())
        .collect();
    let secret_pasted = tokens.iter().any(|t| looks_like_secret_key(t));

    let mut first_error = None;
    for token in &tokens {
        if looks_like_secret_key(token) {
            continue;
        }
        match token.parse::<AccessKeyId>() {
            Ok(key) => return Ok(KeyInput { key, secret_pasted }),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or(if secret_pasted {
        KeyIdError::SecretKeyGiven
    } else {
        KeyIdError::Empty
    }))
}

/// Returns true when `text` has the shape of a secret access key: 40 characters of
/// base64 (`A–Z a–z 0–9 + /`) with at least one lowercase letter, which no key ID has.
pub fn looks_like_secret_key(text: &str) -> bool {
    text.len() == SECRET_KEY_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && text.bytes().any(|b| b.is_ascii_lowercase())
}

/// Returns the first characters of an input for an error message, so that a long paste
/// (which may be sensitive) is not repeated in full.
fn shown_prefix(text: &str) -> String {
    // No longer than a key ID, so that a secret pasted right after an ID stays hidden.
    const SHOWN: usize = KEY_ID_LEN;
    let mut shown: String = text.chars().take(SHOWN).collect();
    if text.chars().count() > SHOWN {
        shown.push('…');
    }
    format!("'{shown}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_long_term_and_temporary() {
        let long_term: AccessKeyId = "AKIAIOSFODNN7EXAMPLE".parse().unwrap();
        assert_eq!(long_term.kind(), KeyKind::LongTerm);
        let temporary: AccessKeyId = "ASIAY34FZKBOKMUTVV7A".parse().unwrap();
        assert_eq!(temporary.kind(), KeyKind::Temporary);
    }

    #[test]
    fn parse_normalises_lowercase_and_whitespace() {
        let key: AccessKeyId = "  akiaiosfodnn7example\n".parse().unwrap();
        assert_eq!(key.as_str(), "AKIAIOSFODNN7EXAMPLE");
    }

    #[test]
    fn parse_accepts_anonymised_digits() {
        // Anonymised data sets use 0, 1, 8 and 9, which AWS never issues.
        let key: AccessKeyId = "AKIA1JMTHE9ZMZMWG0MG".parse().unwrap();
        assert_eq!(key.decode_account(), AccountDecoding::NotBase32);
    }

    #[test]
    fn decode_account_matches_published_pair() {
        // Pair published by Aidan Steele (awsteele.com/blog/2020/09/26) and confirmed by
        // Tal Be'ery: this key belongs to account 609629065308.
        let key: AccessKeyId = "ASIAY34FZKBOKMUTVV7A".parse().unwrap();
        assert_eq!(
            key.decode_account(),
            AccountDecoding::Decoded {
                account_id: "609629065308".to_string()
            }
        );
    }

    #[test]
    fn decode_account_pads_to_twelve_digits() {
        let key: AccessKeyId = "AKIAAAAAAAAAAAAAAAAA".parse().unwrap();
        assert_eq!(
            key.decode_account(),
            AccountDecoding::Decoded {
                account_id: "000000000000".to_string()
            }
        );
    }

    #[test]
    fn parse_rejects_each_invalid_kind() {
        let cases: &[(&str, fn(&KeyIdError) -> bool)] = &[
            ("", |e| matches!(e, KeyIdError::Empty)),
            ("   ", |e| matches!(e, KeyIdError::Empty)),
            ("AKIAIOSFODNN7EXAMPL", |e| {
                matches!(e, KeyIdError::WrongLength { len: 19, .. })
            }),
            ("AKIAIOSFODNN7EXAMPLEX", |e| {
                matches!(e, KeyIdError::WrongLength { len: 21, .. })
            }),
            ("AKIAIOSFODNN7EXAMP-E", |e| {
                matches!(
                    e,
                    KeyIdError::InvalidCharacter {
                        character: '-',
                        position: 19,
                        ..
                    }
                )
            }),
            ("AKIAIOSFODNN7EXAMPLÉ", |e| {
                matches!(e, KeyIdError::InvalidCharacter { character: 'É', .. })
            }),
            ("AIDACKCEVSQ6C2EXAMPLE", |e| {
                matches!(e, KeyIdError::OtherIdentifier { what, .. } if what.contains("user ID"))
            }),
            ("AROAJ45Q7YFFAREXAMPLE", |e| {
                matches!(e, KeyIdError::OtherIdentifier { what, .. } if what.contains("role ID"))
            }),
            ("ANPAJ2UCCR6DPCEXAMPLE", |e| {
                matches!(e, KeyIdError::OtherIdentifier { what, .. } if what.contains("managed policy"))
            }),
            ("XKIAIOSFODNN7EXAMPLE", |e| {
                matches!(e, KeyIdError::UnknownPrefix { .. })
            }),
            ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", |e| {
                matches!(e, KeyIdError::SecretKeyGiven)
            }),
        ];
        for (input, expected) in cases {
            let error = input.parse::<AccessKeyId>().unwrap_err();
            assert!(expected(&error), "input {input:?} gave {error:?}");
        }
    }

    #[test]
    fn error_message_names_problem_and_fix() {
        let error = "AIDACKCEVSQ6C2EXAMPLE".parse::<AccessKeyId>().unwrap_err();
        let message = error.to_string();
        assert!(message.contains("an IAM user ID"), "{message}");
        assert!(message.contains("AKIA or ASIA"), "{message}");
    }

    #[test]
    fn error_message_truncates_long_input() {
        let long = "X".repeat(200);
        let message = long.parse::<AccessKeyId>().unwrap_err().to_string();
        assert!(message.len() < 150, "{message}");
    }

    #[test]
    fn secret_never_appears_in_error() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let message = secret.parse::<AccessKeyId>().unwrap_err().to_string();
        assert!(!message.contains(secret), "{message}");
        assert!(!message.contains("wJalr"), "{message}");
    }

    #[test]
    fn key_input_finds_id_next_to_secret() {
        let input = parse_key_input("AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
            .unwrap();
        assert_eq!(input.key.as_str(), "AKIAIOSFODNN7EXAMPLE");
        assert!(input.secret_pasted);
    }

    #[test]
    fn key_input_splits_id_from_secret_at_colon() {
        let pasted = "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let input = parse_key_input(pasted).unwrap();
        assert_eq!(input.key.as_str(), "AKIAIOSFODNN7EXAMPLE");
        assert!(input.secret_pasted);

        let input = parse_key_input("aws_access_key_id = 'AKIAIOSFODNN7EXAMPLE'").unwrap();
        assert_eq!(input.key.as_str(), "AKIAIOSFODNN7EXAMPLE");
        assert!(!input.secret_pasted);
    }

    #[test]
    fn secret_glued_to_id_not_shown() {
        let glued = "AKIAIOSFODNN7EXAMPLEwJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let message = glued.parse::<AccessKeyId>().unwrap_err().to_string();
        assert!(message.contains("AKIAIOSFODNN7EXAMPLE…"), "{message}");
        assert!(!message.contains("wJ"), "{message}");
    }

    #[test]
    fn key_input_without_secret() {
        let input = parse_key_input("`akiaiosfodnn7example`").unwrap();
        assert_eq!(input.key.as_str(), "AKIAIOSFODNN7EXAMPLE");
        assert!(!input.secret_pasted);
    }

    #[test]
    fn key_input_with_only_secret_rejected() {
        let error = parse_key_input("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").unwrap_err();
        assert_eq!(error, KeyIdError::SecretKeyGiven);
    }

    #[test]
    fn short_form_keeps_prefix_and_suffix() {
        let key: AccessKeyId = "AKIAIOSFODNN7EXAMPLE".parse().unwrap();
        assert_eq!(key.short(), "AKIA…MPLE");
    }

    #[test]
    fn serde_round_trip_validates() {
        let key: AccessKeyId = serde_json::from_str("\"akiaiosfodnn7example\"").unwrap();
        assert_eq!(serde_json::to_string(&key).unwrap(), "\"AKIAIOSFODNN7EXAMPLE\"");
        assert!(serde_json::from_str::<AccessKeyId>("\"AIDACKCEVSQ6C2EXAMPLE\"").is_err());
    }
}
