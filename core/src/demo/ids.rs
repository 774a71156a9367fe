//! Deterministic identifiers for the demonstration incident: access key IDs and IAM
//! unique IDs that decode to their account, and UUID-shaped or hexadecimal IDs derived
//! from a label, so that every run writes the same bytes without a random source.

/// The base32 alphabet of access key IDs (RFC 4648, uppercase).
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Marks every generated ID as made up. It comes before the last characters, so the short
/// form of a key (`AKIA…` and its last four characters) still differs between keys.
const MARKER: &str = "DEMO";

/// Builds a 20-character access key ID (`AKIA` or `ASIA`) that
/// `AccessKeyId::decode_account` decodes to `account`.
///
/// The 16 characters after the prefix are base32. Their first 45 bits are a set top bit
/// (as in the keys AWS issues today), the 40-bit account, and the 4-bit `variant` that
/// distinguishes the keys of one account. Then come `DEMO` and three characters derived
/// from the rest.
///
/// # Panics
///
/// Panics when `account` is not 12 digits or `variant` is above 15: both are constants of
/// the story, so that is a bug in it.
pub(super) fn access_key_id(prefix: &str, account: &str, variant: u8) -> String {
    unique_id(prefix, account, variant, 16)
}

/// Builds a 21-character IAM unique ID, such as an `AIDA` user ID or an `AROA` role ID,
/// whose first characters encode the account as `access_key_id` does.
pub(super) fn principal_id(prefix: &str, account: &str, variant: u8) -> String {
    unique_id(prefix, account, variant, 17)
}

fn unique_id(prefix: &str, account: &str, variant: u8, body_length: usize) -> String {
    assert!(variant < 16, "variant {variant} does not fit in 4 bits");
    let account_number: u64 = account.parse().expect("12-digit demonstration account");
    assert_eq!(account.len(), 12, "account {account} is not 12 digits");
    assert!(account_number < 1 << 40, "account {account} does not fit in 40 bits");

    let encoded = (1u64 << 44) | (account_number << 4) | u64::from(variant);
    let mut id = String::from(prefix);
    for index in 0..9 {
        let group = (encoded >> (40 - 5 * index)) & 31;
        id.push(char::from(BASE32[group as usize]));
    }
    id.push_str(MARKER);

    let mut hash = fnv1a(id.as_bytes());
    while id.len() < prefix.len() + body_length {
        id.push(char::from(BASE32[(hash & 31) as usize]));
        hash >>= 5;
    }
    id
}

/// Returns a UUID-shaped ID (version 4 layout) derived from `label`, as CloudTrail writes
/// event IDs and most services write request IDs.
pub(super) fn uuid(label: &str) -> String {
    let digits = hex(label, 32);
    let version = "4";
    let variant = ["8", "9", "a", "b"][usize::from(digits.as_bytes()[16] % 4)];
    format!(
        "{}-{}-{version}{}-{variant}{}-{}",
        &digits[..8],
        &digits[8..12],
        &digits[13..16],
        &digits[17..20],
        &digits[20..32]
    )
}

/// Returns `length` lowercase hexadecimal digits derived from `label`.
pub(super) fn hex(label: &str, length: usize) -> String {
    let mut digits = data_encoding::HEXLOWER.encode(&derived_bytes(label, length.div_ceil(2)));
    digits.truncate(length);
    digits
}

/// Returns `length` characters of `[A-Za-z0-9]` derived from `label`, as in the random
/// suffix of a Secrets Manager ARN or a CloudTrail log file name.
pub(super) fn alphanumeric(label: &str, length: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    derived_bytes(label, length)
        .into_iter()
        .map(|byte| char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]))
        .collect()
}

/// Returns the base64 encoding of `length` bytes derived from `label`, as Lambda writes a
/// function's `CodeSha256`.
pub(super) fn base64(label: &str, length: usize) -> String {
    data_encoding::BASE64.encode(&derived_bytes(label, length))
}

/// Returns `length` bytes derived from `label`: the hashes of the label followed by a
/// counter, eight bytes each.
fn derived_bytes(label: &str, length: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(length + 8);
    let mut round = 0u32;
    while bytes.len() < length {
        let mut seed = label.as_bytes().to_vec();
        seed.extend_from_slice(&round.to_be_bytes());
        bytes.extend_from_slice(&fnv1a(&seed).to_be_bytes());
        round += 1;
    }
    bytes.truncate(length);
    bytes
}

/// Hashes bytes with FNV-1a (64 bits), then mixes the result with the SplitMix64
/// finalizer, because plain FNV-1a of labels that differ only in their last byte differ
/// only in a few bits. Both are fixed algorithms, so the IDs never change between Rust
/// versions the way `DefaultHasher` output may.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{AccessKeyId, AccountDecoding, KeyKind};

    #[test]
    fn access_key_id_decodes_to_account() {
        for account in ["111122223333", "444455556666", "000000000001", "999988887777"] {
            for (prefix, kind) in [("AKIA", KeyKind::LongTerm), ("ASIA", KeyKind::Temporary)] {
                let text = access_key_id(prefix, account, 7);
                let key: AccessKeyId = text.parse().unwrap_or_else(|error| panic!("{text}: {error}"));
                assert_eq!(key.kind(), kind, "{text}");
                assert_eq!(
                    key.decode_account(),
                    AccountDecoding::Decoded {
                        account_id: account.to_string()
                    },
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn access_key_id_shape() {
        let id = access_key_id("AKIA", "111122223333", 0);
        assert_eq!(id.len(), 20, "{id}");
        assert_eq!(&id[13..17], "DEMO", "{id}");
        assert!(id[4..].bytes().all(|b| BASE32.contains(&b)), "{id}");
    }

    #[test]
    fn variants_give_distinct_short_forms() {
        let keys: Vec<AccessKeyId> = (0..16)
            .map(|v| access_key_id("AKIA", "111122223333", v).parse().expect("key ID"))
            .collect();
        let mut short: Vec<String> = keys.iter().map(AccessKeyId::short).collect();
        short.sort();
        short.dedup();
        assert_eq!(short.len(), 16, "{short:?}");
    }

    #[test]
    fn principal_id_length() {
        let id = principal_id("AIDA", "111122223333", 1);
        assert_eq!(id.len(), 21, "{id}");
        assert!(id.starts_with("AIDA"), "{id}");
    }

    #[test]
    fn uuid_shape_and_stability() {
        let id = uuid("event/1");
        assert_eq!(id.len(), 36, "{id}");
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert_eq!(&id[14..15], "4", "{id}");
        assert_eq!(id, uuid("event/1"));
        assert_ne!(id, uuid("event/2"));
    }

    #[test]
    fn alphanumeric_length_and_alphabet() {
        let text = alphanumeric("secret/ci", 6);
        assert_eq!(text.len(), 6);
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric()), "{text}");
    }
}
