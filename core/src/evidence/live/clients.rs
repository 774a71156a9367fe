//! AWS clients of the live evidence source: one base configuration (credentials, retry and
//! timeout policy, endpoint), the credentials for each account, and one set of service
//! clients per account and region, each created on first use and then reused.
//!
//! Keycheck's own credentials reach its own account directly. Any other account needs a
//! role in the configuration, which is assumed with `sts:AssumeRole` under the session
//! name `keycheck-<investigation id>`. Every client carries the `CallRecorder`, and
//! nothing here logs or returns a secret access key or session token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_config::identity::IdentityCache;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use tokio::sync::OnceCell;
use tracing::info;

use super::config::LiveConfig;
use super::error::aws_error;
use super::operations::{STS_ASSUME_ROLE, STS_GET_CALLER_IDENTITY};
use super::stats::{AwsCallStats, CallRecorder};
use crate::evidence::EvidenceError;

/// How long before expiry assumed-role credentials are renewed.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Declares `Clients` with one lazily built client per service crate.
macro_rules! service_clients {
    ($($field:ident: $sdk:ident),* $(,)?) => {
        /// The service clients of one account and region, each built on first use.
        pub(crate) struct Clients {
            config: SdkConfig,
            interceptors: Vec<SharedInterceptor>,
            $($field: OnceLock<$sdk::Client>,)*
        }

        impl Clients {
            fn new(config: SdkConfig, interceptors: Vec<SharedInterceptor>) -> Clients {
                Clients { config, interceptors, $($field: OnceLock::new(),)* }
            }

            $(
                pub(crate) fn $field(&self) -> &$sdk::Client {
                    self.$field.get_or_init(|| {
                        let mut builder = $sdk::config::Builder::from(&self.config);
                        for interceptor in &self.interceptors {
                            builder.push_interceptor(interceptor.clone());
                        }
                        $sdk::Client::from_conf(builder.build())
                    })
                }
            )*
        }
    };
}

service_clients! {
    sts: aws_sdk_sts,
    iam: aws_sdk_iam,
    logs: aws_sdk_cloudwatchlogs,
    cloudtrail: aws_sdk_cloudtrail,
    securityhub: aws_sdk_securityhub,
    guardduty: aws_sdk_guardduty,
    access_analyzer: aws_sdk_accessanalyzer,
    secrets_manager: aws_sdk_secretsmanager,
    ssm: aws_sdk_ssm,
    lambda: aws_sdk_lambda,
    codebuild: aws_sdk_codebuild,
    ecs: aws_sdk_ecs,
}

/// The source of keycheck's own credentials.
pub(crate) enum BaseSource {
    /// `aws-config`'s default chain, with the configured profile and region, loaded on
    /// first use.
    DefaultChain,
    /// A configuration built by the caller, such as one with static test credentials.
    Prepared(SdkConfig),
}

/// Keycheck's own identity, from `sts:GetCallerIdentity`.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub account: String,
    pub arn: String,
}

/// The base configuration and the home region it resolved to.
struct Base {
    config: SdkConfig,
    home_region: String,
}

/// The credentials that reach one account.
#[derive(Clone, Debug)]
pub(crate) struct AccountCredentials {
    provider: SharedCredentialsProvider,
    /// The access path, for reports: `role arn:…` or `keycheck's own credentials (arn:…)`.
    pub description: String,
}

type AccountSlot = Arc<OnceCell<Result<AccountCredentials, EvidenceError>>>;

/// Credentials and clients for every account and region one investigation touches.
pub(crate) struct Access {
    config: LiveConfig,
    session_name: String,
    source: BaseSource,
    base: OnceCell<Result<Base, EvidenceError>>,
    caller: OnceCell<Result<Caller, EvidenceError>>,
    accounts: Mutex<HashMap<String, AccountSlot>>,
    clients: Mutex<HashMap<(String, String), Arc<Clients>>>,
    interceptors: Vec<SharedInterceptor>,
}

impl Access {
    /// Creates the access layer. `extra_interceptors` run on every client after the call
    /// recorder, such as a test's recorded responses.
    pub(crate) fn new(
        config: LiveConfig,
        investigation_id: &str,
        source: BaseSource,
        stats: AwsCallStats,
        extra_interceptors: Vec<SharedInterceptor>,
    ) -> Access {
        let mut interceptors = vec![SharedInterceptor::new(CallRecorder::new(stats))];
        interceptors.extend(extra_interceptors);
        Access {
            session_name: session_name(investigation_id),
            config,
            source,
            base: OnceCell::new(),
            caller: OnceCell::new(),
            accounts: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            interceptors,
        }
    }

    /// Returns the settings.
    pub(crate) fn config(&self) -> &LiveConfig {
        &self.config
    }

    async fn base(&self) -> Result<&Base, EvidenceError> {
        let base = self.base.get_or_init(|| self.load_base()).await;
        base.as_ref().map_err(Clone::clone)
    }

    async fn load_base(&self) -> Result<Base, EvidenceError> {
        let config = match &self.source {
            BaseSource::Prepared(config) => config.clone(),
            BaseSource::DefaultChain => load_default_chain(&self.config).await,
        };
        let Some(home_region) = config.region().map(|r| r.to_string()) else {
            return Err(EvidenceError::NotAvailable {
                what: "AWS region".to_string(),
                hint: "set aws.region in the configuration, or AWS_REGION in the environment"
                    .to_string(),
            });
        };
        Ok(Base {
            config,
            home_region,
        })
    }

    /// Returns the home region: the configured one, else the environment's.
    pub(crate) async fn home_region(&self) -> Result<String, EvidenceError> {
        Ok(self.base().await?.home_region.clone())
    }

    /// Returns clients with keycheck's own credentials in the home region.
    pub(crate) async fn base_clients(&self) -> Result<Arc<Clients>, EvidenceError> {
        let base = self.base().await?;
        let key = (String::new(), base.home_region.clone());
        Ok(self.cached_clients(key, || base.config.clone()))
    }

    /// Returns keycheck's own identity, asked once.
    pub(crate) async fn caller(&self) -> Result<Caller, EvidenceError> {
        let caller = self.caller.get_or_init(|| self.load_caller()).await;
        caller.clone()
    }

    async fn load_caller(&self) -> Result<Caller, EvidenceError> {
        let clients = self.base_clients().await?;
        let output = clients
            .sts()
            .get_caller_identity()
            .send()
            .await
            .map_err(|error| {
                aws_error(
                    &STS_GET_CALLER_IDENTITY,
                    "keycheck's own credentials",
                    &error,
                )
            })?;
        Ok(Caller {
            account: output.account.unwrap_or_default(),
            arn: output.arn.unwrap_or_default(),
        })
    }

    /// Returns how keycheck reaches `account`, assuming its role once if it has one.
    ///
    /// An account without a configured role is reachable only when it is keycheck's own
    /// account. Any other fails with `NotAvailable`, whose hint names the setting to add.
    pub(crate) async fn account(&self, account: &str) -> Result<AccountCredentials, EvidenceError> {
        let slot = {
            let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(accounts.entry(account.to_string()).or_default())
        };
        let credentials = slot.get_or_init(|| self.load_account(account)).await;
        credentials.clone()
    }

    async fn load_account(&self, account: &str) -> Result<AccountCredentials, EvidenceError> {
        let base = self.base().await?;
        if let Some(access) = self.config.accounts.get(account) {
            let role = Arc::new(RoleCredentials {
                sts: self.base_clients().await?.sts().clone(),
                role_arn: access.role_arn.clone(),
                external_id: access.external_id.clone(),
                session_name: self.session_name.clone(),
                cached: tokio::sync::Mutex::new(None),
            });
            role.credentials().await?;
            return Ok(AccountCredentials {
                provider: SharedCredentialsProvider::new(RoleProvider(role)),
                description: format!("role {}", access.role_arn),
            });
        }

        let caller = self.caller().await?;
        if caller.account != account {
            return Err(no_role_configured(account));
        }
        let Some(provider) = base.config.credentials_provider() else {
            return Err(EvidenceError::NotAvailable {
                what: "AWS credentials".to_string(),
                hint: "no credential provider is configured".to_string(),
            });
        };
        Ok(AccountCredentials {
            provider,
            description: format!("keycheck's own credentials ({})", caller.arn),
        })
    }

    /// Returns the clients of `account` in `region`, creating them on first use.
    pub(crate) async fn clients(
        &self,
        account: &str,
        region: &str,
    ) -> Result<Arc<Clients>, EvidenceError> {
        let credentials = self.account(account).await?;
        let base = self.base().await?;
        let key = (account.to_string(), region.to_string());
        Ok(self.cached_clients(key, || {
            base.config
                .to_builder()
                .region(Region::new(region.to_string()))
                .credentials_provider(credentials.provider.clone())
                .build()
        }))
    }

    fn cached_clients(
        &self,
        key: (String, String),
        config: impl FnOnce() -> SdkConfig,
    ) -> Arc<Clients> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let entry = clients
            .entry(key)
            .or_insert_with(|| Arc::new(Clients::new(config(), self.interceptors.clone())));
        Arc::clone(entry)
    }
}

/// Builds the error for an account keycheck has no way into.
pub(crate) fn no_role_configured(account: &str) -> EvidenceError {
    EvidenceError::NotAvailable {
        what: format!("AWS access to account {account}"),
        hint: format!(
            "no role configured for account {account}: add [aws.accounts.\"{account}\"] role_arn = \"arn:aws:iam::{account}:role/<role keycheck may assume>\""
        ),
    }
}

/// Returns the retry and timeout policy every client uses.
pub(crate) fn retry_and_timeouts(config: &LiveConfig) -> (RetryConfig, TimeoutConfig) {
    let retry = RetryConfig::standard().with_max_attempts(config.max_attempts);
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(config.operation_timeout)
        .operation_attempt_timeout(config.call_timeout)
        .build();
    (retry, timeouts)
}

async fn load_default_chain(config: &LiveConfig) -> SdkConfig {
    let (retry, timeouts) = retry_and_timeouts(config);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts)
        .identity_cache(IdentityCache::lazy().build());
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Builds a configuration that reads nothing from the environment: the given credentials,
/// the configured region (or `us-east-1`), endpoint, retry and timeout policy.
pub(crate) fn static_config(config: &LiveConfig, credentials: Credentials) -> SdkConfig {
    let (retry, timeouts) = retry_and_timeouts(config);
    let region = config
        .region
        .clone()
        .unwrap_or_else(|| "us-east-1".to_string());
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .identity_cache(IdentityCache::lazy().build())
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(url) = &config.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}

/// Returns the role session name for an investigation: `keycheck-<id>`, with characters
/// STS rejects replaced and cut to STS's 64-character limit.
fn session_name(investigation_id: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    let id: String = investigation_id
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    let mut name = format!("keycheck-{id}");
    name.truncate(64);
    name
}

/// Credentials of one role, assumed through keycheck's own STS client (so the call is
/// recorded) and renewed shortly before they expire.
#[derive(Debug)]
struct RoleCredentials {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    external_id: Option<String>,
    session_name: String,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl RoleCredentials {
    async fn credentials(&self) -> Result<Credentials, EvidenceError> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref()
            && credentials
                .expiry()
                .is_none_or(|expiry| expiry > SystemTime::now() + RENEW_BEFORE_EXPIRY)
        {
            return Ok(credentials.clone());
        }

        let output = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .set_external_id(self.external_id.clone())
            .send()
            .await
            .map_err(|error| aws_error(&STS_ASSUME_ROLE, &self.role_arn, &error))?;
        let Some(issued) = output.credentials else {
            return Err(super::error::failure(
                &STS_ASSUME_ROLE,
                &self.role_arn,
                crate::evidence::AwsErrorKind::Other,
                "the response held no credentials",
            ));
        };
        let expiry = SystemTime::try_from(issued.expiration).ok();
        let credentials = Credentials::new(
            issued.access_key_id,
            issued.secret_access_key,
            Some(issued.session_token),
            expiry,
            "keycheck-assume-role",
        );
        info!(role_arn = %self.role_arn, session = %self.session_name, "assumed role");
        *cached = Some(credentials.clone());
        Ok(credentials)
    }
}

#[derive(Debug)]
struct RoleProvider(Arc<RoleCredentials>);

impl ProvideCredentials for RoleProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0
                .credentials()
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_name_is_valid_for_sts() {
        assert_eq!(session_name("kc-0123456789"), "keycheck-kc-0123456789");
        assert_eq!(session_name("a b/c"), "keycheck-a-b-c");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }
}
