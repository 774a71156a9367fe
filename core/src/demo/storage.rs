//! The copies of the demonstration's leaked key outside the CI runner: a Secrets Manager
//! secret whose description and tags name its user, and the environment of a Lambda
//! function. Rotating the key breaks both unless they are updated.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::ids;
use super::incident::{DATABASE_SECRET, PAYMENTS_SECRET, REGISTRY_SECRET, STORED_KEY_SECRET};
use super::story::{self, ACCOUNT, CI_DEPLOY, HOME_REGION};

/// The Lambda function that has the key in its environment.
pub(super) const KEY_FUNCTION: &str = "nightly-cost-report";
/// The environment variable that contains the key ID. Lambda reserves `AWS_ACCESS_KEY_ID`
/// for the function's own role credentials, so a copied key goes under another name.
pub(super) const KEY_VARIABLE: &str = "REPORT_AWS_ACCESS_KEY_ID";

/// Formats a time as `aws secretsmanager` output writes it: microseconds and `+00:00`.
fn secrets_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// One secret of the listing.
struct Secret {
    name: &'static str,
    description: String,
    tags: Vec<(&'static str, &'static str)>,
    created: DateTime<Utc>,
    last_changed: DateTime<Utc>,
}

fn secrets() -> Vec<Secret> {
    vec![
        Secret {
            name: STORED_KEY_SECRET,
            description: format!(
                "Access key of IAM user {} for runners that cannot use the instance role",
                CI_DEPLOY.name
            ),
            tags: vec![("team", "platform"), ("iam-user", CI_DEPLOY.name)],
            created: story::leaked_key_created() + Duration::minutes(3) + Duration::seconds(21),
            last_changed: story::leaked_key_created() + Duration::minutes(3) + Duration::seconds(21),
        },
        Secret {
            name: REGISTRY_SECRET,
            description: "Token for the third-party container registry mirror".to_string(),
            tags: vec![("team", "platform")],
            created: story::day_at(-300, 16, 4, 9),
            last_changed: story::day_at(-30, 9, 12, 40),
        },
        Secret {
            name: DATABASE_SECRET,
            description: "Connection string of the staging database, used by migrations".to_string(),
            tags: vec![("team", "platform"), ("environment", "staging")],
            created: story::day_at(-380, 11, 47, 33),
            last_changed: story::day_at(-90, 10, 0, 2),
        },
        Secret {
            name: PAYMENTS_SECRET,
            description: "Payment provider API key".to_string(),
            tags: vec![("team", "payments"), ("environment", "production")],
            created: story::day_at(-500, 13, 30, 0),
            last_changed: story::day_at(-60, 13, 30, 0),
        },
    ]
}

/// `aws secretsmanager list-secrets` output in the home region, as exported after the
/// attacker read three of the secrets.
fn secret_list() -> Value {
    let read_today = [STORED_KEY_SECRET, REGISTRY_SECRET, DATABASE_SECRET];
    let list: Vec<Value> = secrets()
        .into_iter()
        .map(|secret| {
            // Secrets Manager records the last access as a date, at midnight UTC.
            let last_accessed = if read_today.contains(&secret.name) {
                story::incident_at(0, 0, 0)
            } else {
                story::day_at(-1, 0, 0, 0)
            };
            let tags: Vec<Value> = secret
                .tags
                .iter()
                .map(|(key, value)| json!({"Key": key, "Value": value}))
                .collect();
            json!({
                "ARN": story::secret_arn(secret.name),
                "Name": secret.name,
                "Description": secret.description,
                "LastChangedDate": secrets_time(secret.last_changed),
                "LastAccessedDate": secrets_time(last_accessed),
                "Tags": tags,
                "SecretVersionsToStages": {ids::uuid(&format!("secret-version/{}", secret.name)): ["AWSCURRENT"]},
                "CreatedDate": secrets_time(secret.created),
            })
        })
        .collect();
    json!({"SecretList": list})
}

/// `aws lambda list-functions` output in the home region.
///
/// NOTE: the function's environment would also contain the secret access key. The listing
/// leaves it out, because the demonstration writes no secret values.
fn function_list() -> Value {
    let function = |name: &str| format!("arn:aws:lambda:{HOME_REGION}:{ACCOUNT}:function:{name}");
    let role = |name: &str| format!("arn:aws:iam::{ACCOUNT}:role/service-role/{name}");
    let modified = |time: DateTime<Utc>| time.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    json!({"Functions": [
        {
            "FunctionName": KEY_FUNCTION,
            "FunctionArn": function(KEY_FUNCTION),
            "Runtime": "python3.12",
            "Role": role("nightly-cost-report-role"),
            "Handler": "report.handler",
            "CodeSize": 48213,
            "Description": "Posts the previous day's AWS costs to the platform channel",
            "Timeout": 120,
            "MemorySize": 256,
            "LastModified": modified(story::day_at(-115, 8, 14, 3)),
            "CodeSha256": ids::base64("lambda/nightly-cost-report", 32),
            "Version": "$LATEST",
            "Environment": {"Variables": {
                KEY_VARIABLE: CI_DEPLOY.access_key(),
                "REPORT_CHANNEL": "#platform-costs",
                "COST_EXPLORER_REGION": "us-east-1",
            }},
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": ids::uuid("lambda/nightly-cost-report/revision"),
            "PackageType": "Zip",
            "Architectures": ["arm64"],
            "EphemeralStorage": {"Size": 512},
        },
        {
            "FunctionName": "image-scan-notifier",
            "FunctionArn": function("image-scan-notifier"),
            "Runtime": "nodejs20.x",
            "Role": role("image-scan-notifier-role"),
            "Handler": "index.handler",
            "CodeSize": 2841,
            "Description": "Forwards ECR image scan results to chat",
            "Timeout": 30,
            "MemorySize": 128,
            "LastModified": modified(story::day_at(-210, 15, 2, 44)),
            "CodeSha256": ids::base64("lambda/image-scan-notifier", 32),
            "Version": "$LATEST",
            "Environment": {"Variables": {"CHANNEL": "#platform-alerts"}},
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": ids::uuid("lambda/image-scan-notifier/revision"),
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": 512},
        },
    ]})
}

/// Returns the storage files, each a path inside the snapshot and its JSON.
pub(super) fn files() -> Vec<(String, Value)> {
    vec![
        ("storage/secrets.json".to_string(), secret_list()),
        ("storage/lambda-functions.json".to_string(), function_list()),
    ]
}
