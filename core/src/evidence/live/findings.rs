//! Security Hub, GuardDuty and IAM Access Analyzer findings read live, in every relevant
//! region at once.
//!
//! The request filters name the key and its owner, so AWS returns few findings. Each
//! finding returned is checked again with `SecurityFinding::names`, because moto 5.2.5
//! ignores Security Hub filters, and a filter on the owner also returns findings about the
//! owner's other keys. SDK records are written as the JSON the AWS CLI prints and read by the
//! snapshot's parsers, so live and offline findings are read by the same code.
//!
//! The requests of one region (one per filter, detector or analyzer) run concurrently, and
//! each is a separate source. When one fails, the findings of the others are returned with
//! that failure in `Search::failures`.

use std::collections::HashSet;

use futures::future::join_all;

use aws_sdk_accessanalyzer::types::{AnalyzerStatus, Criterion, FindingSummary, Type};
use aws_sdk_guardduty::types::{Condition, FindingCriteria};
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, StringFilter, StringFilterComparison,
};
use serde_json::{Map, Value, json};

use super::LiveEvidence;
use super::clients::Clients;
use super::error::{aws_error, failure};
use super::operations::*;
use super::regional::{Labelled, combine, each_relevant_region, per_source};
use crate::evidence::snapshot::finding::{parse_access_analyzer, parse_asff, parse_guardduty};
use crate::evidence::{AnalyzerFinding, AwsErrorKind, EvidenceError, Search, SecurityFinding, Subject};

/// Pages of findings read per request and region. Findings are filtered by key or owner,
/// so even one page is more than an investigation usually gets.
const MAX_FINDING_PAGES: usize = 10;

/// The maximum number of finding IDs in one GuardDuty `GetFindings` request.
const GUARDDUTY_BATCH: usize = 50;

/// Returns the Security Hub findings that name the key or its owner.
pub(super) async fn security_hub(
    live: &LiveEvidence,
    subject: &Subject,
) -> Result<Search<SecurityFinding>, EvidenceError> {
    let account = live.subject_account(subject).await?;
    let filters = security_hub_filters(subject);

    let filters = &filters;
    let per_region = each_relevant_region(
        live,
        &account,
        &SECURITYHUB_GET_FINDINGS,
        |clients, region| async move {
            let requests = filters.iter().enumerate().map(|(index, filter)| {
                let (clients, region) = (&clients, &region);
                async move {
                    let label = format!("{region}, filter {}", index + 1);
                    (label, security_hub_page_set(clients, filter, region).await)
                }
            });
            Ok(join_all(requests).await)
        },
    )
    .await?;
    let search = combine("Security Hub findings", per_source(per_region))?;
    Ok(naming(search, subject))
}

/// Builds the Security Hub filters: one on resource IDs (the key, and the owner's ARN when
/// known), and one per access-key name field for the owner (user name and principal name).
/// Without the owner's ARN, one more filter on the IAM user's name finds the findings about
/// the owner's user resource. Security Hub joins different fields with AND and values of
/// one field with OR, which is why these are separate requests.
pub(super) fn security_hub_filters(subject: &Subject) -> Vec<AwsSecurityFindingFilters> {
    let string_filter = |comparison: StringFilterComparison, value: &str| {
        StringFilter::builder()
            .comparison(comparison)
            .value(value)
            .build()
    };
    let active = string_filter(StringFilterComparison::Equals, "ACTIVE");

    let mut by_resource = AwsSecurityFindingFilters::builder()
        .record_state(active.clone())
        .resource_id(string_filter(
            StringFilterComparison::Contains,
            subject.key.as_str(),
        ));
    if let Some(arn) = &subject.owner_arn {
        by_resource = by_resource.resource_id(string_filter(StringFilterComparison::Equals, arn));
    }
    let mut filters = vec![by_resource.build()];

    if let Some(owner) = &subject.owner_name {
        // Security Hub deprecated the user name field for the principal name, but older
        // findings still fill only the user name, so both are asked for.
        #[allow(deprecated)]
        filters.push(
            AwsSecurityFindingFilters::builder()
                .record_state(active.clone())
                .resource_aws_iam_access_key_user_name(string_filter(
                    StringFilterComparison::Equals,
                    owner,
                ))
                .build(),
        );
        filters.push(
            AwsSecurityFindingFilters::builder()
                .record_state(active.clone())
                .resource_aws_iam_access_key_principal_name(string_filter(
                    StringFilterComparison::Equals,
                    owner,
                ))
                .build(),
        );
        if subject.owner_arn.is_none() {
            filters.push(
                AwsSecurityFindingFilters::builder()
                    .record_state(active)
                    .resource_aws_iam_user_user_name(string_filter(StringFilterComparison::Equals, owner))
                    .build(),
            );
        }
    }
    filters
}

async fn security_hub_page_set(
    clients: &Clients,
    filter: &AwsSecurityFindingFilters,
    region: &str,
) -> Result<Vec<SecurityFinding>, EvidenceError> {
    let mut pages = clients
        .securityhub()
        .get_findings()
        .filters(filter.clone())
        .max_results(100)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    for _ in 0..MAX_FINDING_PAGES {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|error| aws_error(&SECURITYHUB_GET_FINDINGS, region, &error))?;
        let findings: Vec<Value> = page
            .findings
            .unwrap_or_default()
            .iter()
            .map(asff_json)
            .collect();
        found.extend(parse_asff(&Value::Array(findings)));
    }
    Ok(found)
}

/// Returns the GuardDuty findings that name the key or its owner.
pub(super) async fn guardduty(
    live: &LiveEvidence,
    subject: &Subject,
) -> Result<Search<SecurityFinding>, EvidenceError> {
    let account = live.subject_account(subject).await?;
    let criteria = guardduty_criteria(subject);

    let criteria = &criteria;
    let per_region = each_relevant_region(
        live,
        &account,
        &GUARDDUTY_LIST_FINDINGS,
        |clients, region| async move {
            guardduty_region(&clients, criteria, &region)
                .await
                .map_err(|error| findings_api_missing(error, &region))
        },
    )
    .await?;
    let sources = per_source(per_region)
        .into_iter()
        .map(|(label, result)| {
            let result = result.map_err(|error| findings_api_missing(error, &label));
            (label, result)
        })
        .collect();
    Ok(naming(combine("GuardDuty findings", sources)?, subject))
}

/// Builds the GuardDuty criteria: one on the access key ID, one on the owner's user name.
/// GuardDuty joins the fields of one criterion with AND, so these are separate requests.
pub(super) fn guardduty_criteria(subject: &Subject) -> Vec<FindingCriteria> {
    let equals = |value: &str| Condition::builder().equals(value).build();
    let mut criteria = vec![
        FindingCriteria::builder()
            .criterion(
                "resource.accessKeyDetails.accessKeyId",
                equals(subject.key.as_str()),
            )
            .build(),
    ];
    if let Some(owner) = &subject.owner_name {
        criteria.push(
            FindingCriteria::builder()
                .criterion("resource.accessKeyDetails.userName", equals(owner))
                .build(),
        );
    }
    criteria
}

/// Searches every detector of a region with every criterion, concurrently. Fails when the
/// detectors cannot be listed, but a failed search of one detector is a separate source.
async fn guardduty_region(
    clients: &Clients,
    criteria: &[FindingCriteria],
    region: &str,
) -> Result<Vec<Labelled<SecurityFinding>>, EvidenceError> {
    let guardduty = clients.guardduty();
    let detectors: Vec<String> = guardduty
        .list_detectors()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|error| aws_error(&GUARDDUTY_LIST_DETECTORS, region, &error))?;
    if detectors.is_empty() {
        return Err(failure(
            &GUARDDUTY_LIST_DETECTORS,
            region,
            AwsErrorKind::NotEnabled,
            "no GuardDuty detector",
        ));
    }

    let searches = detectors
        .iter()
        .map(|detector| guardduty_detector(clients, detector, criteria, region));
    Ok(join_all(searches).await.into_iter().flatten().collect())
}

/// Lists the finding IDs of one detector for every criterion concurrently, then reads the
/// listed findings in concurrent batches. A criterion whose listing failed is returned as
/// a separate failed source beside the findings read.
async fn guardduty_detector(
    clients: &Clients,
    detector: &str,
    criteria: &[FindingCriteria],
    region: &str,
) -> Vec<Labelled<SecurityFinding>> {
    let listings = join_all(
        criteria
            .iter()
            .map(|criterion| guardduty_finding_ids(clients, detector, criterion)),
    )
    .await;

    let mut sources: Vec<Labelled<SecurityFinding>> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut listed = false;
    for (index, listing) in listings.into_iter().enumerate() {
        match listing {
            Ok(found) => {
                listed = true;
                for id in found {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
            Err(error) => {
                let label = format!("{region}, detector {detector}, criterion {}", index + 1);
                sources.push((label, Err(error)));
            }
        }
    }
    if !listed {
        return sources;
    }

    let batches = ids
        .chunks(GUARDDUTY_BATCH)
        .map(|batch| guardduty_details(clients, detector, batch));
    let found: Result<Vec<Vec<SecurityFinding>>, EvidenceError> = join_all(batches).await.into_iter().collect();
    let label = format!("{region}, detector {detector}");
    sources.push((label, found.map(|batches| batches.into_iter().flatten().collect())));
    sources
}

/// Reads one batch of GuardDuty findings by ID.
async fn guardduty_details(
    clients: &Clients,
    detector: &str,
    ids: &[String],
) -> Result<Vec<SecurityFinding>, EvidenceError> {
    let output = clients
        .guardduty()
        .get_findings()
        .detector_id(detector)
        .set_finding_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|error| aws_error(&GUARDDUTY_GET_FINDINGS, detector, &error))?;
    let findings: Vec<Value> = output
        .findings
        .unwrap_or_default()
        .iter()
        .map(guardduty_json)
        .collect();
    Ok(parse_guardduty(&Value::Array(findings)))
}

async fn guardduty_finding_ids(
    clients: &Clients,
    detector: &str,
    criterion: &FindingCriteria,
) -> Result<Vec<String>, EvidenceError> {
    let mut pages = clients
        .guardduty()
        .list_findings()
        .detector_id(detector)
        .finding_criteria(criterion.clone())
        .max_results(50)
        .into_paginator()
        .send();
    let mut ids = Vec::new();
    for _ in 0..MAX_FINDING_PAGES {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|error| aws_error(&GUARDDUTY_LIST_FINDINGS, detector, &error))?;
        ids.extend(page.finding_ids.unwrap_or_default());
    }
    Ok(ids)
}

/// Turns a "not found" from a findings API into "not enabled", because an endpoint that
/// returns 404 for a findings call does not serve findings. moto 5.2.5 implements GuardDuty
/// detectors but returns 404 for `ListFindings`. The converted error's target is `source`,
/// such as the region.
fn findings_api_missing(error: EvidenceError, source: &str) -> EvidenceError {
    let EvidenceError::Aws {
        operation,
        permission,
        reason,
        kind: AwsErrorKind::NotFound,
        ..
    } = error
    else {
        return error;
    };
    EvidenceError::Aws {
        operation,
        permission,
        target: source.to_string(),
        kind: AwsErrorKind::NotEnabled,
        reason: format!("the endpoint does not serve this API: {reason}"),
    }
}

/// Returns the active IAM Access Analyzer findings of the account.
pub(super) async fn access_analyzer(
    live: &LiveEvidence,
    subject: &Subject,
) -> Result<Search<AnalyzerFinding>, EvidenceError> {
    let account = live.subject_account(subject).await?;

    let owner_account = account.as_str();
    let per_region = each_relevant_region(
        live,
        &account,
        &ACCESS_ANALYZER_LIST_FINDINGS,
        |clients, region| async move {
            analyzer_region(&clients, owner_account, &region)
                .await
                .map_err(|error| findings_api_missing(error, &region))
        },
    )
    .await?;
    let sources = per_source(per_region)
        .into_iter()
        .map(|(label, result)| {
            let result = result.map_err(|error| findings_api_missing(error, &label));
            (label, result)
        })
        .collect();

    let mut seen = HashSet::new();
    let mut search = combine("IAM Access Analyzer findings", sources)?;
    search.found.retain(|f| seen.insert(f.id.clone()));
    Ok(search)
}

/// Lists the external-access analyzers of a region and reads the active findings of each,
/// concurrently. Fails when the analyzers cannot be listed, but each analyzer is a
/// separate source.
async fn analyzer_region(
    clients: &Clients,
    account: &str,
    region: &str,
) -> Result<Vec<Labelled<AnalyzerFinding>>, EvidenceError> {
    let analyzer = clients.access_analyzer();
    let analyzers: Vec<_> = analyzer
        .list_analyzers()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|error| aws_error(&ACCESS_ANALYZER_LIST_ANALYZERS, region, &error))?;
    // Only external-access analyzers report resources shared outside the account; the
    // unused-access and internal-access kinds report something else.
    let external: Vec<String> = analyzers
        .into_iter()
        .filter(|a| {
            matches!(a.r#type, Type::Account | Type::Organization)
                && a.status == AnalyzerStatus::Active
        })
        .map(|a| a.arn)
        .collect();
    if external.is_empty() {
        return Err(failure(
            &ACCESS_ANALYZER_LIST_ANALYZERS,
            region,
            AwsErrorKind::NotEnabled,
            "no active external-access analyzer",
        ));
    }

    let searches = external.into_iter().map(|arn| async move {
        let found = analyzer_findings(clients, &arn, account).await;
        (format!("{region}, analyzer {arn}"), found)
    });
    Ok(join_all(searches).await)
}

/// Reads the active findings of one analyzer about resources of `account`.
async fn analyzer_findings(
    clients: &Clients,
    arn: &str,
    account: &str,
) -> Result<Vec<AnalyzerFinding>, EvidenceError> {
    let mut pages = clients
        .access_analyzer()
        .list_findings()
        .analyzer_arn(arn)
        .filter("status", Criterion::builder().eq("ACTIVE").build())
        .into_paginator()
        .send();
    let mut found = Vec::new();
    for _ in 0..MAX_FINDING_PAGES {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|error| aws_error(&ACCESS_ANALYZER_LIST_FINDINGS, arn, &error))?;
        let findings: Vec<Value> = page.findings.iter().map(analyzer_json).collect();
        let parsed = parse_access_analyzer(&json!({ "findings": findings }));
        found.extend(
            parsed
                .into_iter()
                .filter(|(owner, _)| owner.as_deref().is_none_or(|o| o == account))
                .map(|(_, finding)| finding),
        );
    }
    Ok(found)
}

/// Keeps the findings that name the subject, without duplicates (the same finding from
/// two requests, or from two regions through Security Hub's aggregation), oldest first.
fn naming(mut search: Search<SecurityFinding>, subject: &Subject) -> Search<SecurityFinding> {
    let mut seen = HashSet::new();
    search.found.retain(|f| f.names(subject) && seen.insert(f.id.clone()));
    search.found.sort_by_key(|f| f.first_seen);
    search
}

/// Adds `value` under `name` when there is one.
fn put(object: &mut Map<String, Value>, name: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        object.insert(name.to_string(), value.into());
    }
}

/// Writes a Security Hub finding as the ASFF JSON `parse_asff` reads.
fn asff_json(finding: &AwsSecurityFinding) -> Value {
    let mut object = Map::new();
    object.insert(
        "ProductArn".into(),
        finding.product_arn.clone().unwrap_or_default().into(),
    );
    object.insert(
        "AwsAccountId".into(),
        finding.aws_account_id.clone().unwrap_or_default().into(),
    );
    put(&mut object, "Id", finding.id.clone());
    put(&mut object, "Types", finding.types.clone());
    put(&mut object, "Title", finding.title.clone());
    put(&mut object, "Region", finding.region.clone());
    put(
        &mut object,
        "FirstObservedAt",
        finding.first_observed_at.clone(),
    );
    put(
        &mut object,
        "LastObservedAt",
        finding.last_observed_at.clone(),
    );
    put(&mut object, "CreatedAt", finding.created_at.clone());
    put(&mut object, "UpdatedAt", finding.updated_at.clone());
    if let Some(severity) = &finding.severity {
        let mut fields = Map::new();
        put(
            &mut fields,
            "Label",
            severity.label.as_ref().map(|l| l.as_str().to_string()),
        );
        put(&mut fields, "Normalized", severity.normalized);
        object.insert("Severity".into(), Value::Object(fields));
    }
    if let Some(fields) = &finding.product_fields {
        object.insert("ProductFields".into(), json!(fields));
    }
    let resources: Vec<Value> = finding
        .resources
        .iter()
        .flatten()
        .map(asff_resource_json)
        .collect();
    object.insert("Resources".into(), Value::Array(resources));
    Value::Object(object)
}

fn asff_resource_json(resource: &aws_sdk_securityhub::types::Resource) -> Value {
    let mut object = Map::new();
    put(&mut object, "Type", resource.r#type.clone());
    put(&mut object, "Id", resource.id.clone());
    put(&mut object, "Region", resource.region.clone());
    let mut details = Map::new();
    if let Some(key) = resource
        .details
        .as_ref()
        .and_then(|d| d.aws_iam_access_key.as_ref())
    {
        let mut fields = Map::new();
        put(&mut fields, "AccessKeyId", key.access_key_id.clone());
        #[allow(deprecated)]
        put(&mut fields, "UserName", key.user_name.clone());
        put(&mut fields, "PrincipalName", key.principal_name.clone());
        details.insert("AwsIamAccessKey".into(), Value::Object(fields));
    }
    if let Some(user) = resource
        .details
        .as_ref()
        .and_then(|d| d.aws_iam_user.as_ref())
    {
        details.insert("AwsIamUser".into(), json!({ "UserName": user.user_name }));
    }
    object.insert("Details".into(), Value::Object(details));
    Value::Object(object)
}

/// Writes a GuardDuty finding as the JSON `parse_guardduty` reads.
fn guardduty_json(finding: &aws_sdk_guardduty::types::Finding) -> Value {
    let mut object = Map::new();
    put(&mut object, "Id", finding.id.clone());
    put(&mut object, "Type", finding.r#type.clone());
    put(&mut object, "Title", finding.title.clone());
    put(&mut object, "Severity", finding.severity);
    put(&mut object, "AccountId", finding.account_id.clone());
    put(&mut object, "Region", finding.region.clone());
    put(&mut object, "CreatedAt", finding.created_at.clone());
    put(&mut object, "UpdatedAt", finding.updated_at.clone());

    let mut resource = Map::new();
    if let Some(resource_in) = &finding.resource {
        put(
            &mut resource,
            "ResourceType",
            resource_in.resource_type.clone(),
        );
        if let Some(key) = &resource_in.access_key_details {
            resource.insert(
                "AccessKeyDetails".into(),
                json!({ "AccessKeyId": key.access_key_id, "UserName": key.user_name, "PrincipalId": key.principal_id }),
            );
        }
    }
    object.insert("Resource".into(), Value::Object(resource));

    let mut service = Map::new();
    if let Some(service_in) = &finding.service {
        put(
            &mut service,
            "EventFirstSeen",
            service_in.event_first_seen.clone(),
        );
        put(
            &mut service,
            "EventLastSeen",
            service_in.event_last_seen.clone(),
        );
        if let Some(call) = service_in
            .action
            .as_ref()
            .and_then(|a| a.aws_api_call_action.as_ref())
        {
            let address = call.remote_ip_details.as_ref();
            let api_call = json!({
                "Api": call.api,
                "RemoteIpDetails": {
                    "IpAddressV4": address.and_then(|a| a.ip_address_v4.clone()),
                    "IpAddressV6": address.and_then(|a| a.ip_address_v6.clone()),
                },
            });
            service.insert("Action".into(), json!({ "AwsApiCallAction": api_call }));
        }
    }
    object.insert("Service".into(), Value::Object(service));
    Value::Object(object)
}

/// Writes an Access Analyzer finding summary as the JSON `parse_access_analyzer` reads.
fn analyzer_json(finding: &FindingSummary) -> Value {
    json!({
        "id": finding.id,
        "principal": finding.principal,
        "action": finding.action,
        "resource": finding.resource,
        "isPublic": finding.is_public,
        "resourceType": finding.resource_type.as_str(),
        "status": finding.status.as_str(),
        "createdAt": super::utc(&finding.created_at).map(|t| t.to_rfc3339()),
        "resourceOwnerAccount": finding.resource_owner_account,
    })
}
