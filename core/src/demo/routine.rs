//! The account's ordinary activity: the CI runner's hourly deployment with the key that
//! later leaks, a developer's weekday checks, and the administrator's look at the key
//! after the alert. This is the history that the attacker's calls stand out against.

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use serde_json::json;

use super::Phase;
use super::story::{self, ALICE, BOB, CI_DEPLOY, CLUSTER, HOME_REGION, SERVICE};
use super::trail::{Caller, Record, call};

/// Minute past each hour at which the runner's scheduled pipeline starts.
const RUNNER_MINUTE: u32 = 7;

/// Returns the runner's calls: one pipeline run an hour from `story::history_start()`
/// until the last run before the snapshot was collected, four calls a run.
pub(super) fn runner() -> Vec<Record> {
    let runner = Caller::user_key(CI_DEPLOY, CI_DEPLOY.access_key(), story::RUNNER_IP, story::RUNNER_AGENT);
    let first = story::history_start() + Duration::minutes(i64::from(RUNNER_MINUTE));
    let mut records = Vec::new();

    let mut run = 0u32;
    loop {
        let start = first + Duration::hours(i64::from(run)) + Duration::seconds(queue_delay(run));
        if start >= story::collected_at() {
            break;
        }
        records.extend(pipeline_run(&runner, start, run));
        run += 1;
    }
    records
}

/// Seconds the run waited in the runner's queue, 4 to 14: enough to look like a real
/// scheduler, far too little to break the hourly rhythm.
fn queue_delay(run: u32) -> i64 {
    4 + i64::from(run * 7 % 11)
}

/// Returns one pipeline run: check the identity, log in to ECR, roll the service, and
/// wait for it.
fn pipeline_run(runner: &Caller, start: DateTime<Utc>, run: u32) -> Vec<Record> {
    let cluster_arn = format!("arn:aws:ecs:{HOME_REGION}:{}:cluster/{CLUSTER}", story::ACCOUNT);
    let service_arn = format!(
        "arn:aws:ecs:{HOME_REGION}:{}:service/{CLUSTER}/{SERVICE}",
        story::ACCOUNT
    );
    let task_definition = format!(
        "arn:aws:ecs:{HOME_REGION}:{}:task-definition/{SERVICE}:212",
        story::ACCOUNT
    );
    // ECS deployment IDs are 19 digits; each run starts a new deployment.
    let deployment_id = format!("ecs-svc/{}", 4_719_260_000_000_000_000u64 + u64::from(run) * 7_919);

    vec![
        call(start, "sts", "GetCallerIdentity", HOME_REGION).record(runner, Phase::Runner),
        call(
            start + Duration::seconds(3),
            "ecr",
            "GetAuthorizationToken",
            HOME_REGION,
        )
        .request(json!({"registryIds": [story::ACCOUNT]}))
        .record(runner, Phase::Runner),
        call(start + Duration::seconds(38), "ecs", "UpdateService", HOME_REGION)
            .request(json!({"cluster": CLUSTER, "service": SERVICE, "forceNewDeployment": true}))
            .response(json!({"service": {
                "serviceArn": service_arn,
                "serviceName": SERVICE,
                "clusterArn": cluster_arn,
                "status": "ACTIVE",
                "desiredCount": 2,
                "runningCount": 2,
                "launchType": "FARGATE",
                "taskDefinition": task_definition,
                "deployments": [{"id": deployment_id, "status": "PRIMARY", "rolloutState": "IN_PROGRESS"}],
            }}))
            .record(runner, Phase::Runner),
        call(start + Duration::seconds(70), "ecs", "DescribeServices", HOME_REGION)
            .request(json!({"cluster": CLUSTER, "services": [SERVICE]}))
            .record(runner, Phase::Runner),
    ]
}

/// Returns the developer's calls: a look at the staging service late each weekday
/// morning, with the developer's own key, from the office.
pub(super) fn developer() -> Vec<Record> {
    let developer = Caller::user_key(BOB, BOB.access_key(), story::OFFICE_IP, story::DEVELOPER_AGENT);
    let mut records = Vec::new();
    for day in -14..0 {
        let time = story::day_at(day, 10, 15, 0) + Duration::seconds(day.rem_euclid(5) * 9);
        if matches!(time.weekday(), Weekday::Sat | Weekday::Sun) {
            continue;
        }
        records.push(
            call(time, "ecs", "DescribeServices", HOME_REGION)
                .request(json!({"cluster": CLUSTER, "services": [SERVICE]}))
                .record(&developer, Phase::Developer),
        );
    }
    records
}

/// Returns the administrator's calls after the GuardDuty alert: a look at the key, then
/// the exports that became this snapshot.
pub(super) fn responder() -> Vec<Record> {
    let admin = Caller::user_key(ALICE, ALICE.access_key(), story::OFFICE_IP, story::ADMIN_AGENT);
    let leaked = CI_DEPLOY.access_key();
    vec![
        call(story::incident_at(11, 12, 5), "iam", "ListAccessKeys", "us-east-1")
            .request(json!({"userName": CI_DEPLOY.name}))
            .record(&admin, Phase::Responder),
        call(
            story::incident_at(11, 12, 30),
            "iam",
            "GetAccessKeyLastUsed",
            "us-east-1",
        )
        .request(json!({"accessKeyId": leaked}))
        .record(&admin, Phase::Responder),
        call(
            story::incident_at(11, 24, 50),
            "iam",
            "GenerateCredentialReport",
            "us-east-1",
        )
        .record(&admin, Phase::Responder),
        call(story::incident_at(11, 25, 2), "iam", "GetCredentialReport", "us-east-1").record(&admin, Phase::Responder),
        call(
            story::incident_at(11, 26, 10),
            "iam",
            "GetAccountAuthorizationDetails",
            "us-east-1",
        )
        .record(&admin, Phase::Responder),
    ]
}
