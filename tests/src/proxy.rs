//! A fault-injecting, delaying HTTP proxy for AWS calls, listening on a free loopback port
//! and forwarding to the emulator.
//!
//! Each request is identified as `service:Operation`, the IAM action style, such as
//! `iam:ListMFADevices`. The service comes from the SigV4 credential scope. The operation
//! comes from `X-Amz-Target` (JSON protocols), the `Action` form parameter (query
//! protocols: IAM, STS), or the method and path in [`REST_OPERATIONS`] (REST protocols).
//! Rules fail a matching operation with AccessDenied or throttling in that protocol's
//! error shape, or hold it longer than any client timeout. A fixed delay can be put on
//! every call, and every call is recorded with what was sent and what came back.
//!
//! It is not a general proxy: it forwards to one upstream, over plain HTTP, and reads whole
//! bodies into memory.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::Response;
use tokio::sync::watch;

/// How long [`Fault::hang`] delays a call: far longer than any client timeout a test sets,
/// and still short enough that a forgotten hang ends.
pub const DEFAULT_HANG: Duration = Duration::from_secs(300);

/// How many characters of a request or response body a recorded call keeps.
const EXCERPT_CHARS: usize = 400;

/// REST operations by `(signing service, method, path pattern)`, for the services whose
/// operation is in neither a header nor the body. `{}` matches one path segment. A request
/// not listed here is recorded as `service:METHOD /path`.
pub const REST_OPERATIONS: &[(&str, &str, &str, &str)] = &[
    ("securityhub", "POST", "/findings", "GetFindings"),
    ("securityhub", "POST", "/findings/import", "BatchImportFindings"),
    ("securityhub", "GET", "/accounts", "DescribeHub"),
    ("securityhub", "POST", "/accounts", "EnableSecurityHub"),
    ("guardduty", "GET", "/detector", "ListDetectors"),
    ("guardduty", "POST", "/detector", "CreateDetector"),
    ("guardduty", "GET", "/detector/{}", "GetDetector"),
    ("guardduty", "POST", "/detector/{}/findings", "ListFindings"),
    ("guardduty", "POST", "/detector/{}/findings/get", "GetFindings"),
    ("access-analyzer", "GET", "/analyzer", "ListAnalyzers"),
    ("access-analyzer", "GET", "/analyzer/{}", "GetAnalyzer"),
    ("access-analyzer", "POST", "/finding", "ListFindings"),
    ("access-analyzer", "GET", "/finding/{}", "GetFinding"),
    ("access-analyzer", "POST", "/findingv2", "ListFindingsV2"),
    ("access-analyzer", "GET", "/findingv2/{}", "GetFindingV2"),
    ("lambda", "GET", "/2015-03-31/functions", "ListFunctions"),
    ("lambda", "GET", "/2015-03-31/functions/{}", "GetFunction"),
    ("lambda", "GET", "/2015-03-31/functions/{}/configuration", "GetFunctionConfiguration"),
];

/// What a rule does to a matching call instead of forwarding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Returns access denied: `AccessDenied` (query protocols) or `AccessDeniedException`.
    AccessDenied,
    /// Returns throttling: `Throttling` (query protocols) or `ThrottlingException`.
    Throttling,
    /// Holds the call without a response for this long, then returns 503.
    Hang(Duration),
    /// Returns this HTTP status and JSON body without forwarding, for an API the emulator
    /// does not implement.
    Respond { status: u16, body: &'static str },
}

impl Fault {
    /// Returns a hang of [`DEFAULT_HANG`].
    pub fn hang() -> Fault {
        Fault::Hang(DEFAULT_HANG)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::AccessDenied => f.write_str("access denied"),
            Fault::Throttling => f.write_str("throttling"),
            Fault::Hang(duration) => write!(f, "hang {} s", duration.as_secs()),
            Fault::Respond { status, .. } => write!(f, "fixed response {status}"),
        }
    }
}

/// A fault for every call of one operation, or of every operation of a service.
#[derive(Clone, Debug)]
pub struct Rule {
    /// `service:Operation`, or `service:*` for every operation of the service.
    pub operation: String,
    /// What the proxy returns instead of forwarding.
    pub fault: Fault,
    /// How many more calls the rule applies to; `None` for every call.
    pub remaining: Option<usize>,
}

impl Rule {
    /// Creates a rule that applies `fault` to every call of `operation`.
    pub fn new(operation: impl Into<String>, fault: Fault) -> Rule {
        Rule {
            operation: operation.into(),
            fault,
            remaining: None,
        }
    }

    /// Limits the rule to the next `count` matching calls.
    pub fn times(mut self, count: usize) -> Rule {
        self.remaining = Some(count);
        self
    }

    fn matches(&self, operation: &str) -> bool {
        if self.remaining == Some(0) {
            return false;
        }
        match self.operation.strip_suffix('*') {
            Some(prefix) => operation.starts_with(prefix),
            None => self.operation == operation,
        }
    }
}

/// The wire protocol of a call, which decides the shape of an injected error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `Action=…` form bodies and XML responses (IAM, STS).
    Query,
    /// `X-Amz-Target` and JSON bodies (CloudWatch Logs, Secrets Manager, SSM, …).
    Json,
    /// Method and path name the operation, JSON bodies (Security Hub, GuardDuty, …).
    RestJson,
}

/// One call the proxy received.
#[derive(Clone, Debug)]
pub struct Call {
    /// The operation as `service:Operation`.
    pub operation: String,
    /// The call's wire protocol.
    pub protocol: Protocol,
    /// The region of the SigV4 credential scope.
    pub region: Option<String>,
    /// The fault injected, when a rule matched.
    pub fault: Option<Fault>,
    /// The HTTP status returned to the client; `None` while the call is in progress.
    pub status: Option<u16>,
    /// When the call arrived, from the proxy's start.
    pub started: Duration,
    /// When the response left, from the proxy's start; `None` while in progress.
    pub finished: Option<Duration>,
    /// How long the emulator took to respond, when the call was forwarded.
    pub upstream: Option<Duration>,
    /// The start of the request: method, path and body.
    pub request: String,
    /// The start of the response body, or why forwarding failed.
    pub response: String,
}

impl Call {
    /// Returns true when the call was forwarded and the emulator returned 2xx.
    pub fn succeeded(&self) -> bool {
        self.fault.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status.map_or("pending".to_string(), |s| s.to_string());
        let fault = self.fault.as_ref().map(|f| format!(" [{f}]")).unwrap_or_default();
        write!(
            f,
            "{:>7.3}s {} -> {status}{fault}\n    sent: {}\n    got:  {}",
            self.started.as_secs_f64(),
            self.operation,
            self.request,
            self.response
        )
    }
}

/// Writes a numbered list of calls, for failure messages.
pub fn format_calls(calls: &[Call]) -> String {
    let mut text = String::new();
    for (index, call) in calls.iter().enumerate() {
        text.push_str(&format!("#{index:<3} {call}\n"));
    }
    text
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    delay: Mutex<Duration>,
    calls: Mutex<Vec<Call>>,
    epoch: Instant,
    shutdown: watch::Receiver<bool>,
}

/// A running proxy. Dropping it stops the listener and releases hung calls.
pub struct Proxy {
    address: SocketAddr,
    state: Arc<ProxyState>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on a free loopback port that forwards to `upstream`, a loopback URL
    /// such as the emulator's endpoint. Must run inside a Tokio runtime, which serves the
    /// proxy until it is dropped.
    pub async fn start(upstream: &str) -> std::io::Result<Proxy> {
        crate::aws::assert_loopback(upstream);
        crate::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_string(),
            client,
            rules: Mutex::new(Vec::new()),
            delay: Mutex::new(Duration::ZERO),
            calls: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            shutdown: shutdown_receiver,
        });
        let router = Router::new().fallback(handle).with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                eprintln!("test proxy stopped: {error}");
            }
        });
        Ok(Proxy {
            address,
            state,
            shutdown,
            server,
        })
    }

    /// Returns the proxy's base URL, such as `http://127.0.0.1:41235`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Adds a rule. Rules are tried in the order added; the first match applies.
    pub fn add_rule(&self, rule: Rule) {
        lock(&self.state.rules).push(rule);
    }

    /// Answers every call of `operation` (`service:Operation` or `service:*`) with `fault`.
    pub fn fail(&self, operation: &str, fault: Fault) {
        self.add_rule(Rule::new(operation, fault));
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        lock(&self.state.rules).clear();
    }

    /// Delays every call by `delay` before it is forwarded or a rule applies.
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.state.delay) = delay;
    }

    /// Returns every call received so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state.calls).clone()
    }

    /// Returns the calls received so far and clears the record.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *lock(&self.state.calls))
    }

    /// Returns the operations received so far, in arrival order, with repeats.
    pub fn operations(&self) -> Vec<String> {
        lock(&self.state.calls).iter().map(|c| c.operation.clone()).collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.server.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock leaves the data usable for the report.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn handle(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => return plain(StatusCode::BAD_REQUEST, format!("cannot read request body: {error}")),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let (operation, protocol) = identify(&parts.method, parts.uri.path(), &parts.headers, &body);

    let fault = {
        let mut rules = lock(&state.rules);
        rules.iter_mut().find(|r| r.matches(&operation)).map(|rule| {
            if let Some(remaining) = &mut rule.remaining {
                *remaining -= 1;
            }
            rule.fault.clone()
        })
    };
    let index = {
        let mut calls = lock(&state.calls);
        calls.push(Call {
            operation: operation.clone(),
            protocol,
            region: signing_scope(&parts.headers).map(|(region, _)| region),
            fault: fault.clone(),
            status: None,
            started: state.epoch.elapsed(),
            finished: None,
            upstream: None,
            request: excerpt(&format!("{} {path} {}", parts.method, String::from_utf8_lossy(&body))),
            response: String::new(),
        });
        calls.len() - 1
    };

    let delay = *lock(&state.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let (response, upstream) = match &fault {
        Some(Fault::Hang(duration)) => (hang(&state, *duration).await, None),
        Some(Fault::Respond { status, body }) => (fixed_response(*status, body), None),
        Some(fault) => (error_response(fault, protocol, &operation), None),
        None => {
            let started = Instant::now();
            let response = forward(&state, parts.method, &path, &parts.headers, body).await;
            (response, Some(started.elapsed()))
        }
    };

    let (response, body_text) = buffer(response).await;
    let mut calls = lock(&state.calls);
    let call = &mut calls[index];
    call.status = Some(response.status().as_u16());
    call.finished = Some(state.epoch.elapsed());
    call.upstream = upstream;
    call.response = excerpt(&body_text);
    response
}

/// Identifies a call as `service:Operation` and its protocol.
pub fn identify(method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> (String, Protocol) {
    let service = signing_scope(headers).map_or_else(|| "unknown".to_string(), |(_, service)| service);

    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let operation = target.rsplit('.').next().unwrap_or(target);
        return (format!("{service}:{operation}"), Protocol::Json);
    }
    if let Some(action) = form_action(body) {
        return (format!("{service}:{action}"), Protocol::Query);
    }
    let operation = rest_operation(&service, method.as_str(), path)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{method} {path}"));
    (format!("{service}:{operation}"), Protocol::RestJson)
}

/// Returns the region and service of the SigV4 credential scope:
/// `Credential=AKID/20240101/us-east-1/iam/aws4_request` gives `(us-east-1, iam)`.
fn signing_scope(headers: &HeaderMap) -> Option<(String, String)> {
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    Some((parts.get(2)?.to_string(), parts.get(3)?.to_string()))
}

fn form_action(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "Action").then(|| value.to_string())
    })
}

fn rest_operation(service: &str, method: &str, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    REST_OPERATIONS.iter().find_map(|(s, m, pattern, operation)| {
        if *s != service || *m != method {
            return None;
        }
        let expected: Vec<&str> = pattern.split('/').collect();
        let same_shape = expected.len() == segments.len()
            && expected.iter().zip(&segments).all(|(e, s)| *e == "{}" || e == s);
        same_shape.then_some(*operation)
    })
}

async fn hang(state: &ProxyState, duration: Duration) -> Response {
    let mut shutdown = state.shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = shutdown.wait_for(|stopped| *stopped) => {}
    }
    plain(StatusCode::SERVICE_UNAVAILABLE, "test proxy: hung call released".to_string())
}

/// Builds the error a real service returns for `fault`, in the protocol's shape.
pub fn error_response(fault: &Fault, protocol: Protocol, operation: &str) -> Response {
    let (code, json_code, status, message) = match fault {
        Fault::AccessDenied => (
            "AccessDenied",
            "AccessDeniedException",
            StatusCode::FORBIDDEN,
            format!(
                "User: arn:aws:iam::{}:user/keycheck-test is not authorized to perform: {operation} because no identity-based policy allows the {operation} action",
                crate::aws::ACCOUNT_ID
            ),
        ),
        Fault::Throttling => (
            "Throttling",
            "ThrottlingException",
            StatusCode::BAD_REQUEST,
            "Rate exceeded".to_string(),
        ),
        Fault::Hang(_) | Fault::Respond { .. } => unreachable!("{fault} is not an error response"),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    match protocol {
        Protocol::Query => {
            let body = format!(
                "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            );
            with_body(status, "text/xml", body, &request_id, None)
        }
        Protocol::Json | Protocol::RestJson => {
            // JSON-protocol services return 400 for both. REST services return 403 for
            // access denied and 429 for throttling.
            let status = match (protocol, fault) {
                (Protocol::Json, _) => StatusCode::BAD_REQUEST,
                (_, Fault::Throttling) => StatusCode::TOO_MANY_REQUESTS,
                _ => status,
            };
            let body = serde_json::json!({ "__type": json_code, "message": message, "Message": message }).to_string();
            with_body(status, "application/x-amz-json-1.1", body, &request_id, Some(json_code))
        }
    }
}

fn with_body(status: StatusCode, content_type: &str, body: String, request_id: &str, error_type: Option<&str>) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header("x-amzn-requestid", request_id);
    if let Some(error_type) = error_type {
        builder = builder.header("x-amzn-errortype", error_type);
    }
    builder.body(Body::from(body)).expect("valid response parts")
}

fn fixed_response(status: u16, body: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    with_body(status, "application/json", body.to_string(), "test-proxy", None)
}

fn plain(status: StatusCode, text: String) -> Response {
    with_body(status, "text/plain", text, "test-proxy", None)
}

async fn forward(state: &ProxyState, method: Method, path: &str, headers: &HeaderMap, body: axum::body::Bytes) -> Response {
    let url = format!("{}{path}", state.upstream);
    let mut request = state.client.request(method, &url).body(body);
    for (name, value) in headers {
        if is_hop_by_hop(name) || name == header::HOST || name == header::CONTENT_LENGTH {
            continue;
        }
        request = request.header(name, value);
    }
    let upstream = match request.send().await {
        Ok(response) => response,
        Err(error) => return plain(StatusCode::BAD_GATEWAY, format!("test proxy: upstream {url} failed: {error}")),
    };

    let status = upstream.status();
    let mut response_headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if is_hop_by_hop(name) || name == header::CONTENT_LENGTH {
            continue;
        }
        response_headers.append(name.clone(), value.clone());
    }
    let bytes = match upstream.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => return plain(StatusCode::BAD_GATEWAY, format!("test proxy: reading {url} failed: {error}")),
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    response
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "te" | "trailer" | "upgrade"
    )
}

/// Reads a response body so that its start can be recorded, and rebuilds the response.
async fn buffer(response: Response) -> (Response, String) {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (Response::from_parts(parts, Body::from(bytes)), text)
}

fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &flat[..end]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn signed(service: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        headers
    }

    #[test]
    fn identify_query_action() {
        let (operation, protocol) = identify(&Method::POST, "/", &signed("iam"), b"Action=ListMFADevices&Version=2010-05-08&UserName=alice");
        assert_eq!(operation, "iam:ListMFADevices");
        assert_eq!(protocol, Protocol::Query);
    }

    #[test]
    fn identify_json_target() {
        let mut headers = signed("logs");
        headers.insert("x-amz-target", HeaderValue::from_static("Logs_20140328.FilterLogEvents"));
        let (operation, protocol) = identify(&Method::POST, "/", &headers, b"{}");
        assert_eq!(operation, "logs:FilterLogEvents");
        assert_eq!(protocol, Protocol::Json);
    }

    #[test]
    fn identify_rest_path() {
        let headers = signed("guardduty");
        let (operation, _) = identify(&Method::POST, "/detector/abc123/findings/get", &headers, b"{}");
        assert_eq!(operation, "guardduty:GetFindings");
        let (operation, protocol) = identify(&Method::GET, "/detector", &headers, b"");
        assert_eq!(operation, "guardduty:ListDetectors");
        assert_eq!(protocol, Protocol::RestJson);
    }

    #[test]
    fn identify_unknown_rest_path_names_it() {
        let (operation, _) = identify(&Method::GET, "/something/else", &signed("securityhub"), b"");
        assert_eq!(operation, "securityhub:GET /something/else");
    }

    #[test]
    fn rule_wildcard_and_count() {
        let mut rule = Rule::new("logs:*", Fault::Throttling).times(1);
        assert!(rule.matches("logs:StartQuery"));
        assert!(!rule.matches("iam:GetUser"));
        rule.remaining = Some(0);
        assert!(!rule.matches("logs:StartQuery"));
    }
}
