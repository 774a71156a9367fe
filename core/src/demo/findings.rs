//! The detector output of the demonstration incident: GuardDuty findings, the Kali Linux
//! finding imported into Security Hub next to two control findings, the AWS Health event
//! that reported the exposed key, and IAM Access Analyzer findings.
//!
//! GuardDuty's first and last seen times and counts are taken from the CloudTrail records,
//! so the two always agree.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::Phase;
use super::ids;
use super::incident::shared_bucket_policy;
use super::story::{
    self, ACCOUNT, ATTACKER_ACCOUNT, BACKUPS_BUCKET, BOB, CI_DEPLOY, HOME_REGION, PRODUCTION_ACCOUNT, User, iso_millis,
};
use super::trail::Record;

/// The region GuardDuty reported from: IAM and global STS calls are recorded there.
const GUARDDUTY_REGION: &str = "us-east-1";

/// Returns GuardDuty's `RemoteIpDetails` for the attacker's address. The ASN is from the
/// RFC 5398 documentation range.
fn attacker_ip_details() -> Value {
    json!({
        "IpAddressV4": story::ATTACKER_IP,
        "Organization": {
            "Asn": "64501",
            "AsnOrg": "EXAMPLE-HOSTING-AS",
            "Isp": "Example Hosting",
            "Org": "Example Hosting",
        },
        "Country": {"CountryName": "Netherlands"},
        "City": {"CityName": "Amsterdam"},
        "GeoLocation": {"Lat": 52.3676, "Lon": 4.9041},
    })
}

fn detector_id() -> String {
    ids::hex("guardduty/detector", 32)
}

/// The content of one GuardDuty finding, apart from the fields every finding shares.
struct Detection {
    finding_type: &'static str,
    title: String,
    description: String,
    severity: f64,
    /// The calls the finding is about.
    calls: Vec<Record>,
    /// The API call GuardDuty shows as the finding's action.
    api: &'static str,
    service_name: &'static str,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
}

/// Returns the GuardDuty findings that the leaked key's calls raised.
fn detections(records: &[Record]) -> Vec<Detection> {
    let leaked = CI_DEPLOY.access_key();
    let with_kali = records
        .iter()
        .filter(|r| r.access_key_id() == Some(leaked.as_str()) && r.user_agent() == story::KALI_AGENT);
    let in_phase = |phase: Phase| {
        records
            .iter()
            .filter(move |r| r.phase == phase)
            .cloned()
            .collect::<Vec<_>>()
    };
    let user = CI_DEPLOY.name;

    vec![
        Detection {
            finding_type: "PenTest:IAMUser/KaliLinux",
            title: "API GetCallerIdentity was invoked from a Kali Linux computer.".to_string(),
            description: format!(
                "The access key of IAM user {user} called AWS APIs from a machine running Kali Linux, a distribution built for penetration testing."
            ),
            severity: 5.0,
            calls: with_kali.cloned().collect(),
            api: "GetCallerIdentity",
            service_name: "sts.amazonaws.com",
            created: story::incident_at(9, 38, 27) + Duration::milliseconds(611),
            updated: story::incident_at(10, 17, 41) + Duration::milliseconds(208),
        },
        Detection {
            finding_type: "Discovery:IAMUser/AnomalousBehavior",
            title: format!("User {user} is calling APIs commonly used in discovery tactics."),
            description: format!(
                "IAM user {user} listed users, roles and the account's authorization details, which it had not done before; the calls came from an address and a user agent it had not used."
            ),
            severity: 2.0,
            calls: in_phase(Phase::Recon),
            api: "GetAccountAuthorizationDetails",
            service_name: "iam.amazonaws.com",
            created: story::incident_at(9, 52, 13) + Duration::milliseconds(402),
            updated: story::incident_at(9, 52, 13) + Duration::milliseconds(402),
        },
        Detection {
            finding_type: "Persistence:IAMUser/AnomalousBehavior",
            title: format!("User {user} is calling APIs commonly used in persistence tactics."),
            description: format!(
                "IAM user {user} created an IAM user, gave it an access key and a console password, and attached a policy to it, which it had not done before."
            ),
            severity: 5.0,
            calls: in_phase(Phase::Escalation),
            api: "CreateAccessKey",
            service_name: "iam.amazonaws.com",
            created: story::incident_at(9, 58, 40) + Duration::milliseconds(119),
            updated: story::incident_at(9, 58, 40) + Duration::milliseconds(119),
        },
    ]
}

fn finding_id(finding_type: &str) -> String {
    ids::hex(&format!("guardduty/finding/{finding_type}"), 32)
}

fn finding_arn(finding_type: &str) -> String {
    format!(
        "arn:aws:guardduty:{GUARDDUTY_REGION}:{ACCOUNT}:detector/{}/finding/{}",
        detector_id(),
        finding_id(finding_type)
    )
}

/// First seen, last seen and count of a finding's calls.
fn seen(calls: &[Record]) -> (DateTime<Utc>, DateTime<Utc>, usize) {
    let first = calls
        .iter()
        .map(|r| r.time)
        .min()
        .expect("a finding is about at least one call");
    let last = calls
        .iter()
        .map(|r| r.time)
        .max()
        .expect("a finding is about at least one call");
    (first, last, calls.len())
}

/// `aws guardduty get-findings` output.
fn guardduty(detections: &[Detection]) -> Value {
    let findings: Vec<Value> = detections.iter().map(guardduty_finding).collect();
    json!({"Findings": findings})
}

fn guardduty_finding(detection: &Detection) -> Value {
    let (first, last, count) = seen(&detection.calls);
    // GuardDuty writes AdditionalInfo.Value as a JSON document inside a string.
    let additional_info = json!({"userAgent": {"fullUserAgent": story::KALI_AGENT}}).to_string();
    json!({
        "AccountId": ACCOUNT,
        "Arn": finding_arn(detection.finding_type),
        "CreatedAt": iso_millis(detection.created),
        "Description": detection.description,
        "Id": finding_id(detection.finding_type),
        "Partition": "aws",
        "Region": GUARDDUTY_REGION,
        "Resource": {
            "AccessKeyDetails": {
                "AccessKeyId": CI_DEPLOY.access_key(),
                "PrincipalId": CI_DEPLOY.user_id(),
                "UserName": CI_DEPLOY.name,
                "UserType": "IAMUser",
            },
            "ResourceType": "AccessKey",
        },
        "SchemaVersion": "2.0",
        "Service": {
            "Action": {
                "ActionType": "AWS_API_CALL",
                "AwsApiCallAction": {
                    "Api": detection.api,
                    "CallerType": "Remote IP",
                    "RemoteIpDetails": attacker_ip_details(),
                    "ServiceName": detection.service_name,
                    "AffectedResources": {},
                },
            },
            "Archived": false,
            "Count": count,
            "DetectorId": detector_id(),
            "EventFirstSeen": story::iso(first),
            "EventLastSeen": story::iso(last),
            "ResourceRole": "TARGET",
            "ServiceName": "guardduty",
            "AdditionalInfo": {"Value": additional_info, "Type": "default"},
        },
        "Severity": detection.severity,
        "Title": detection.title,
        "Type": detection.finding_type,
        "UpdatedAt": iso_millis(detection.updated),
    })
}

/// Security Hub's severity label for a GuardDuty score.
fn severity_label(score: f64) -> &'static str {
    if score >= 7.0 {
        "HIGH"
    } else if score >= 4.0 {
        "MEDIUM"
    } else {
        "LOW"
    }
}

/// Returns a GuardDuty finding as Security Hub imports it (ASFF), with GuardDuty's details
/// flattened into `ProductFields`.
fn imported_guardduty(detection: &Detection) -> Value {
    let (first, last, count) = seen(&detection.calls);
    let arn = finding_arn(detection.finding_type);
    let label = severity_label(detection.severity);
    let asff_type = format!("TTPs/Discovery/{}", detection.finding_type.replace('/', "-"));
    let prefix = "aws/guardduty/service";
    let product_fields = json!({
        format!("{prefix}/action/actionType"): "AWS_API_CALL",
        format!("{prefix}/action/awsApiCallAction/api"): detection.api,
        format!("{prefix}/action/awsApiCallAction/callerType"): "Remote IP",
        format!("{prefix}/action/awsApiCallAction/serviceName"): detection.service_name,
        format!("{prefix}/action/awsApiCallAction/remoteIpDetails/ipAddressV4"): story::ATTACKER_IP,
        format!("{prefix}/action/awsApiCallAction/remoteIpDetails/organization/asn"): "64501",
        format!("{prefix}/action/awsApiCallAction/remoteIpDetails/country/countryName"): "Netherlands",
        format!("{prefix}/archived"): "false",
        format!("{prefix}/count"): count.to_string(),
        format!("{prefix}/detectorId"): detector_id(),
        format!("{prefix}/eventFirstSeen"): story::iso(first),
        format!("{prefix}/eventLastSeen"): story::iso(last),
        format!("{prefix}/resourceRole"): "TARGET",
        "aws/securityhub/FindingId": format!("arn:aws:securityhub:{GUARDDUTY_REGION}::product/aws/guardduty/{arn}"),
        "aws/securityhub/ProductName": "GuardDuty",
        "aws/securityhub/CompanyName": "Amazon",
    });
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": arn,
        "ProductArn": format!("arn:aws:securityhub:{GUARDDUTY_REGION}::product/aws/guardduty"),
        "ProductName": "GuardDuty",
        "CompanyName": "Amazon",
        "Region": GUARDDUTY_REGION,
        "GeneratorId": format!("arn:aws:guardduty:{GUARDDUTY_REGION}:{ACCOUNT}:detector/{}", detector_id()),
        "AwsAccountId": ACCOUNT,
        "Types": [asff_type],
        "FirstObservedAt": iso_millis(first),
        "LastObservedAt": iso_millis(last),
        "CreatedAt": iso_millis(detection.created),
        "UpdatedAt": iso_millis(detection.updated),
        "Severity": {"Product": detection.severity, "Label": label, "Normalized": (detection.severity * 10.0) as u32},
        "Title": detection.title,
        "Description": detection.description,
        "ProductFields": product_fields,
        "Resources": [{
            "Type": "AwsIamAccessKey",
            "Id": format!("AWS::IAM::AccessKey:{}", CI_DEPLOY.access_key()),
            "Partition": "aws",
            "Region": GUARDDUTY_REGION,
            "Details": {"AwsIamAccessKey": {
                "PrincipalId": CI_DEPLOY.user_id(),
                "PrincipalType": "IAMUser",
                "PrincipalName": CI_DEPLOY.name,
            }},
        }],
        "WorkflowState": "NEW",
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
        "FindingProviderFields": {
            "Severity": {"Label": label, "Original": detection.severity.to_string()},
            "Types": [asff_type],
        },
        "Sample": false,
    })
}

/// A failed Security Hub control about one IAM user.
struct ControlCheck {
    control: &'static str,
    title: &'static str,
    description: &'static str,
    user: User,
    user_created: DateTime<Utc>,
    first_observed: DateTime<Utc>,
}

fn control_finding(check: &ControlCheck) -> Value {
    let control = check.control;
    let id = format!(
        "arn:aws:securityhub:{HOME_REGION}:{ACCOUNT}:security-control/{control}/finding/{}",
        ids::uuid(&format!("securityhub/{control}/{}", check.user.name))
    );
    let last_observed = story::incident_at(6, 12, 33) + Duration::milliseconds(904);
    let config_rule = format!(
        "securityhub-{}-{}",
        control.to_ascii_lowercase().replace('.', "-"),
        ids::hex(control, 8)
    );
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": id,
        "ProductArn": format!("arn:aws:securityhub:{HOME_REGION}::product/aws/securityhub"),
        "ProductName": "Security Hub",
        "CompanyName": "AWS",
        "Region": HOME_REGION,
        "GeneratorId": format!("security-control/{control}"),
        "AwsAccountId": ACCOUNT,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundational-Security-Best-Practices"],
        "FirstObservedAt": iso_millis(check.first_observed),
        "LastObservedAt": iso_millis(last_observed),
        "CreatedAt": iso_millis(check.first_observed),
        "UpdatedAt": iso_millis(last_observed),
        "Severity": {"Label": "MEDIUM", "Normalized": 40, "Original": "MEDIUM"},
        "Title": check.title,
        "Description": check.description,
        "Remediation": {"Recommendation": {
            "Text": "For information on how to correct this issue, consult the AWS Security Hub controls documentation.",
            "Url": format!("https://docs.aws.amazon.com/console/securityhub/{control}/remediation"),
        }},
        "ProductFields": {
            "RelatedAWSResources:0/name": config_rule,
            "RelatedAWSResources:0/type": "AWS::Config::ConfigRule",
            "aws/securityhub/ProductName": "Security Hub",
            "aws/securityhub/CompanyName": "AWS",
        },
        "Resources": [{
            "Type": "AwsIamUser",
            "Id": check.user.arn(),
            "Partition": "aws",
            "Region": HOME_REGION,
            "Details": {"AwsIamUser": {
                "UserName": check.user.name,
                "UserId": check.user.user_id(),
                "Path": "/",
                "CreateDate": iso_millis(check.user_created),
            }},
        }],
        "Compliance": {
            "Status": "FAILED",
            "SecurityControlId": control,
            "AssociatedStandards": [{"StandardsId": "standards/aws-foundational-security-best-practices/v/1.0.0"}],
        },
        "WorkflowState": "NEW",
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
    })
}

/// `aws securityhub get-findings` output: the imported Kali Linux finding, the key
/// rotation control failing for the leaked key's user, and the MFA control failing for
/// the developer (which does not concern the key).
fn security_hub(detections: &[Detection]) -> Value {
    let rotation = ControlCheck {
        control: "IAM.3",
        title: "IAM users' access keys should be rotated every 90 days or less",
        description: "Checks whether each active access key of an IAM user was created or rotated within the last 90 days.",
        user: CI_DEPLOY,
        user_created: story::ci_deploy_created(),
        first_observed: story::leaked_key_created() + Duration::days(91),
    };
    let mfa = ControlCheck {
        control: "IAM.5",
        title: "MFA should be enabled for all IAM users that have a console password",
        description: "Checks whether every IAM user with a console password has an MFA device.",
        user: BOB,
        user_created: story::day_at(-450, 10, 2, 17),
        first_observed: story::day_at(-449, 2, 4, 51),
    };
    json!({"Findings": [imported_guardduty(&detections[0]), control_finding(&rotation), control_finding(&mfa)]})
}

/// Returns the AWS Health event that reported the key as exposed, as EventBridge delivers it.
fn health() -> Value {
    let reported = story::exposure_reported();
    let key = CI_DEPLOY.access_key();
    let event_arn = format!(
        "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_{}",
        ids::hex("health/event", 16).to_ascii_uppercase()
    );
    let description = format!(
        "The access key {key} of IAM user {user} in account {ACCOUNT}, together with its secret access key, is publicly available at {url}.\n\nAnyone who has seen it can call AWS with it. Deactivate or delete the key, check the account's CloudTrail events for calls you did not make, and replace the key wherever it is used.",
        user = CI_DEPLOY.name,
        url = story::LEAK_URL,
    );
    json!({
        "version": "0",
        "id": ids::uuid("health/eventbridge"),
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": ACCOUNT,
        "time": story::iso(reported),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventArn": event_arn,
            "service": "RISK",
            "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
            "eventTypeCategory": "issue",
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "startTime": reported.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            "lastUpdatedTime": reported.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            "statusCode": "open",
            "eventRegion": "global",
            "eventDescription": [{"language": "en_US", "latestDescription": description}],
            "affectedEntities": [{"entityValue": key}],
        },
    })
}

/// Formats a time as `aws accessanalyzer` output writes it: microseconds and `+00:00`.
fn analyzer_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// `aws accessanalyzer list-findings` output: the backups bucket newly shared with the
/// attacker's account (active), and the registry shared with the production account
/// (archived as intended).
fn access_analyzer() -> Value {
    let shared = story::bucket_shared() + Duration::seconds(221) + Duration::milliseconds(347);
    let registry = story::day_at(-380, 14, 2, 51) + Duration::milliseconds(90);
    let statement = &shared_bucket_policy()["Statement"][0];
    json!({"findings": [
        {
            "id": ids::uuid("access-analyzer/backups"),
            "principal": {"AWS": ATTACKER_ACCOUNT},
            "action": statement["Action"],
            "resource": format!("arn:aws:s3:::{BACKUPS_BUCKET}"),
            "isPublic": false,
            "resourceType": "AWS::S3::Bucket",
            "condition": {},
            "createdAt": analyzer_time(shared),
            "analyzedAt": analyzer_time(shared),
            "updatedAt": analyzer_time(shared),
            "status": "ACTIVE",
            "resourceOwnerAccount": ACCOUNT,
            "sources": [{"type": "POLICY"}],
        },
        {
            "id": ids::uuid("access-analyzer/registry"),
            "principal": {"AWS": PRODUCTION_ACCOUNT},
            "action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "resource": format!("arn:aws:ecr:{HOME_REGION}:{ACCOUNT}:repository/{}", story::SERVICE),
            "isPublic": false,
            "resourceType": "AWS::ECR::Repository",
            "condition": {},
            "createdAt": analyzer_time(registry),
            "analyzedAt": analyzer_time(story::incident_at(8, 0, 12)),
            "updatedAt": analyzer_time(registry + Duration::days(1)),
            "status": "ARCHIVED",
            "resourceOwnerAccount": ACCOUNT,
        },
    ]})
}

/// Returns the finding files, each a path inside the snapshot and its JSON.
pub(super) fn files(records: &[Record]) -> Vec<(String, Value)> {
    let detections = detections(records);
    vec![
        ("guardduty/findings.json".to_string(), guardduty(&detections)),
        ("securityhub/findings.json".to_string(), security_hub(&detections)),
        ("health/events.json".to_string(), health()),
        ("access-analyzer/findings.json".to_string(), access_analyzer()),
    ]
}
