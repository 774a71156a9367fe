//! Counts of the AWS calls one live evidence source made, by operation and outcome.
//!
//! `CallRecorder` is an SDK interceptor registered on every client keycheck builds, so it
//! records each call as the SDK made it, retries included. The counts feed the
//! benchmark's "AWS calls per investigation" and the check that every operation called
//! is in `OPERATIONS`. A process-wide [`CallObserver`], such as the bot's metrics
//! registry, receives the same calls as they happen, from the same interceptor.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::error::{self, code_kind};
use super::operations;
use crate::evidence::AwsErrorKind;

/// The outcome of one AWS call, after the SDK's retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call succeeded.
    Ok,
    /// AWS throttled the last attempt.
    Throttled,
    /// The call failed for another reason: denied, not found, timed out, unreachable.
    Error,
}

/// The calls of one operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationCalls {
    /// The service name the SDK records, such as `IAM` or `CloudWatch Logs`.
    pub sdk_service: String,
    /// The operation, such as `ListAccessKeys`.
    pub operation: String,
    /// The IAM action from `OPERATIONS`, or `None` when the list lacks the operation.
    pub action: Option<&'static str>,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls whose last attempt AWS throttled.
    pub throttled: u64,
    /// Calls that failed otherwise.
    pub errors: u64,
    /// HTTP attempts, retries included.
    pub attempts: u64,
    /// HTTP attempts that AWS throttled, whether the SDK retried them or not.
    pub throttled_attempts: u64,
}

impl OperationCalls {
    /// Returns the number of calls, whatever their outcome.
    pub fn calls(&self) -> u64 {
        self.ok + self.throttled + self.errors
    }
}

/// The AWS operation of one call, as the call recorder records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallName<'a> {
    /// The service name the SDK records, such as `IAM` or `CloudWatch Logs`.
    pub sdk_service: &'a str,
    /// The operation, such as `ListAccessKeys`.
    pub operation: &'a str,
    /// The IAM action from `OPERATIONS`, such as `iam:ListAccessKeys`, or `None` when the
    /// list lacks the operation.
    pub action: Option<&'static str>,
}

/// Receives every AWS call that any live evidence source or remediator of the process
/// makes, as the calls happen. Register one with [`set_call_observer`].
pub trait CallObserver: Send + Sync {
    /// Records one HTTP attempt of `call`. `throttled` is true when AWS throttled it.
    fn attempt(&self, call: &CallName<'_>, throttled: bool);
    /// Records the outcome of `call` after the SDK's retries.
    fn finished(&self, call: &CallName<'_>, outcome: CallOutcome);
}

static OBSERVER: OnceLock<Box<dyn CallObserver>> = OnceLock::new();

/// Registers `observer` to receive every AWS call the process makes from now on, in
/// addition to the counts of each source's [`AwsCallStats`]. Returns false, and drops
/// `observer`, when an observer was registered before, because the first one stays.
pub fn set_call_observer(observer: Box<dyn CallObserver>) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Shared counts of AWS calls. Clones share the same counts.
#[derive(Clone, Debug, Default)]
pub struct AwsCallStats {
    counts: Arc<Mutex<BTreeMap<(String, String), OperationCalls>>>,
}

impl AwsCallStats {
    /// Returns the calls of every operation called so far, ordered by service and operation.
    pub fn operations(&self) -> Vec<OperationCalls> {
        self.lock().values().cloned().collect()
    }

    /// Returns the number of AWS calls made so far, retries not counted.
    pub fn total_calls(&self) -> u64 {
        self.lock().values().map(OperationCalls::calls).sum()
    }

    /// Returns the calls of one operation, by IAM action (`logs:StartQuery`).
    pub fn calls_of(&self, action: &str) -> u64 {
        self.lock()
            .values()
            .filter(|calls| calls.action == Some(action))
            .map(OperationCalls::calls)
            .sum()
    }

    /// Returns the operations called that `OPERATIONS` lacks, as `Service:Operation`.
    pub fn unlisted(&self) -> Vec<String> {
        self.lock()
            .values()
            .filter(|calls| calls.action.is_none())
            .map(|calls| format!("{}:{}", calls.sdk_service, calls.operation))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), OperationCalls>> {
        // A panic while the lock is held leaves plain counters behind, still usable.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Updates the counts of `metadata`'s operation and returns its IAM action.
    fn entry(&self, metadata: &Metadata, update: impl FnOnce(&mut OperationCalls)) -> Option<&'static str> {
        let mut counts = self.lock();
        let key = (metadata.service().to_string(), metadata.name().to_string());
        let calls = counts.entry(key).or_insert_with(|| OperationCalls {
            sdk_service: metadata.service().to_string(),
            operation: metadata.name().to_string(),
            action: operations::find(metadata.service(), metadata.name()).map(|op| op.action),
            ..OperationCalls::default()
        });
        update(calls);
        calls.action
    }

    pub(crate) fn record_attempt(&self, metadata: &Metadata, throttled: bool) {
        let action = self.entry(metadata, |calls| {
            calls.attempts += 1;
            if throttled {
                calls.throttled_attempts += 1;
            }
        });
        if let Some(observer) = OBSERVER.get() {
            observer.attempt(&call_name(metadata, action), throttled);
        }
    }

    pub(crate) fn record_outcome(&self, metadata: &Metadata, outcome: CallOutcome) {
        let action = self.entry(metadata, |calls| match outcome {
            CallOutcome::Ok => calls.ok += 1,
            CallOutcome::Throttled => calls.throttled += 1,
            CallOutcome::Error => calls.errors += 1,
        });
        if let Some(observer) = OBSERVER.get() {
            observer.finished(&call_name(metadata, action), outcome);
        }
    }
}

fn call_name<'a>(metadata: &'a Metadata, action: Option<&'static str>) -> CallName<'a> {
    CallName {
        sdk_service: metadata.service(),
        operation: metadata.name(),
        action,
    }
}

/// The interceptor that records every call into an `AwsCallStats`.
#[derive(Debug)]
pub(crate) struct CallRecorder {
    stats: AwsCallStats,
}

impl CallRecorder {
    pub(crate) fn new(stats: AwsCallStats) -> CallRecorder {
        CallRecorder { stats }
    }
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "keycheck::CallRecorder"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            let throttled = context.response().is_some_and(response_throttled);
            self.stats.record_attempt(metadata, throttled);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => CallOutcome::Ok,
            _ => failed_outcome(context),
        };
        self.stats.record_outcome(metadata, outcome);
        Ok(())
    }
}

/// Classifies a failed call from its last HTTP response. The typed error is erased at this
/// point, so the error code is read from the response as the protocol writes it.
fn failed_outcome(context: &FinalizerInterceptorContextRef<'_>) -> CallOutcome {
    match context.response() {
        Some(response) if response_throttled(response) => CallOutcome::Throttled,
        _ => CallOutcome::Error,
    }
}

/// Returns whether AWS throttled the request of `response`: HTTP 429, or an error
/// response whose error code is a throttling code.
fn response_throttled(response: &HttpResponse) -> bool {
    let status = response.status().as_u16();
    if status == 429 {
        return true;
    }
    if status < 400 {
        return false;
    }
    let header = response.headers().get("x-amzn-errortype");
    let code = error::response_error_code(header, response.body().bytes().unwrap_or_default());
    matches!(code.as_deref().and_then(code_kind), Some(AwsErrorKind::Throttled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_flag_unlisted_operations() {
        let stats = AwsCallStats::default();
        let listed = Metadata::new("ListAccessKeys", "IAM");
        let unlisted = Metadata::new("DeleteUser", "IAM");
        stats.record_attempt(&listed, false);
        stats.record_outcome(&listed, CallOutcome::Ok);
        stats.record_attempt(&unlisted, true);
        stats.record_attempt(&unlisted, true);
        stats.record_outcome(&unlisted, CallOutcome::Throttled);

        assert_eq!(stats.unlisted(), ["IAM:DeleteUser"]);
        assert_eq!(stats.total_calls(), 2);
        assert_eq!(stats.calls_of("iam:ListAccessKeys"), 1);
        let deletes = stats
            .operations()
            .into_iter()
            .find(|c| c.operation == "DeleteUser")
            .unwrap();
        assert_eq!((deletes.throttled, deletes.attempts), (1, 2));
        assert_eq!(deletes.throttled_attempts, 2);
    }
}
