//! A seeded pseudo-random generator for the benchmark corpus, so that every run writes
//! the same bytes and a cached corpus stays valid until the generator changes.

/// SplitMix64: one 64-bit state, good enough for test data and not for anything that
/// needs unpredictability.
#[derive(Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl Rng {
    /// Starts a sequence from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Starts a sequence of its own for one item, such as one log file, from the corpus seed
    /// and the item's coordinates.
    pub fn derive(seed: u64, parts: &[u64]) -> Self {
        let mut rng = Self::new(seed);
        for &part in parts {
            rng.state ^= part.wrapping_mul(GOLDEN_GAMMA);
            rng.next_u64();
        }
        Self::new(rng.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..bound`. `bound` must not be zero.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Returns an index into a slice of length `len`.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Returns a number uniformly distributed in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Returns `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Picks one item of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// Picks one item of a non-empty slice of `(item, weight)` pairs, in proportion to
    /// the weights.
    pub fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|(_, weight)| weight).sum();
        let mut ticket = self.below(u64::from(total)) as u32;
        for (item, weight) in items {
            if ticket < *weight {
                return item;
            }
            ticket -= weight;
        }
        &items[items.len() - 1].0
    }

    /// Appends `len` characters drawn from `alphabet`, which must be ASCII.
    pub fn push_chars(&mut self, out: &mut String, alphabet: &[u8], len: usize) {
        for _ in 0..len {
            out.push(char::from(*self.pick(alphabet)));
        }
    }

    /// Returns `len` characters drawn from `alphabet`, which must be ASCII.
    pub fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        let mut out = String::with_capacity(len);
        self.push_chars(&mut out, alphabet, len);
        out
    }

    /// Appends a random version 4 UUID in its lowercase hyphenated form.
    pub fn push_uuid(&mut self, out: &mut String) {
        let high = self.next_u64();
        let low = self.next_u64();
        let hex = format!("{high:016x}{low:016x}");
        out.push_str(&hex[0..8]);
        out.push('-');
        out.push_str(&hex[8..12]);
        out.push_str("-4");
        out.push_str(&hex[13..16]);
        out.push('-');
        out.push(char::from(b"89ab"[(low >> 62) as usize]));
        out.push_str(&hex[17..20]);
        out.push('-');
        out.push_str(&hex[20..32]);
    }
}

/// The alphabet of access key IDs and principal IDs after their four-letter prefix.
pub const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub const HEX_LOWER: &[u8] = b"0123456789abcdef";
pub const HEX_UPPER: &[u8] = b"0123456789ABCDEF";
pub const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
