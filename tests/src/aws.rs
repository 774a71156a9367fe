//! AWS SDK clients for tests: pointed at a loopback endpoint (the emulator or the proxy in
//! front of it) with static test credentials, so that no test reads the real environment's
//! credentials or reaches AWS or an instance metadata address.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;

/// The region every test client and seeded resource uses.
pub const REGION: &str = "us-east-1";

/// The access key ID of the static test credentials. The emulator accepts any value.
pub const TEST_ACCESS_KEY_ID: &str = "testing";

/// The secret access key of the static test credentials.
pub const TEST_SECRET_ACCESS_KEY: &str = "testing";

/// The account the emulator puts every resource in.
pub const ACCOUNT_ID: &str = "123456789012";

/// Returns the static test credentials.
pub fn test_credentials() -> Credentials {
    Credentials::new(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, None, None, "keycheck-tests")
}

/// Builds an SDK configuration for `endpoint` without reading the environment, profiles
/// or the instance metadata service.
///
/// # Panics
///
/// Panics when `endpoint` is not a loopback `http://` URL, so that a test never reaches a
/// real AWS endpoint or another host by mistake.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    assert_loopback(endpoint);
    crate::install_crypto_provider();
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(test_credentials()))
        .endpoint_url(endpoint)
        .build()
}

/// Panics unless `endpoint` is `http://127.x.y.z:PORT…` or `http://localhost:PORT…`.
pub fn assert_loopback(endpoint: &str) {
    let host = endpoint
        .strip_prefix("http://")
        .and_then(|rest| rest.split([':', '/']).next())
        .unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    assert!(loopback, "test endpoint {endpoint:?} is not a loopback http:// URL");
}

/// SDK clients for seeding and inspecting the emulator.
#[derive(Clone, Debug)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub security_hub: aws_sdk_securityhub::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl Clients {
    /// Creates clients for `endpoint` (see [`sdk_config`]).
    pub fn new(endpoint: &str) -> Clients {
        let config = sdk_config(endpoint);
        Clients {
            iam: aws_sdk_iam::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            security_hub: aws_sdk_securityhub::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints_accepted() {
        assert_loopback("http://127.0.0.1:5000");
        assert_loopback("http://127.0.0.1:5000/path");
        assert_loopback("http://localhost:8080");
    }

    #[test]
    #[should_panic(expected = "not a loopback")]
    fn remote_endpoint_rejected() {
        assert_loopback("https://iam.amazonaws.com");
    }

    #[test]
    #[should_panic(expected = "not a loopback")]
    fn metadata_address_rejected() {
        assert_loopback("http://169.254.169.254/latest");
    }
}
