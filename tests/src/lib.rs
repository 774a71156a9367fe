//! The end-to-end test harness of keycheck. It starts the moto AWS emulator on a loopback
//! port, builds SDK clients with static test credentials, puts a fault-injecting proxy in
//! front of the emulator, and seeds the leaked-key incident. Its helpers print what a
//! failing test sent and received.
//!
//! Everything here talks only to loopback addresses; `aws::assert_loopback` enforces it
//! for every endpoint the harness builds a client or proxy for.

pub mod aws;
pub mod critical_path;
pub mod discord_api;
pub mod live;
pub mod moto;
pub mod outcome;
pub mod proxy;
pub mod seed;
pub mod slack_api;

/// Installs rustls's ring crypto provider for the process. The AWS SDK links aws-lc-rs
/// and other crates link ring, and rustls panics at first use unless one is chosen.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
