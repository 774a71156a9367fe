//! Reading alerts from parsed JSON: GuardDuty findings (EventBridge and API shapes),
//! Security Hub findings in ASFF, AWS Health events and API output, CloudTrail events,
//! and the envelopes that carry them (EventBridge, SNS, Lambda SNS and SQS records,
//! recorded API responses).
//!
//! The walk visits each value once and stops at [`MAX_DEPTH`] levels, so its work is
//! linear in the size of the document.

use serde_json::{Map, Value};

use super::AlertSource;
use super::facts::{
    Facts, FieldValue, guardduty_severity, is_principal_arn, is_region, normalized_severity,
    parse_time, severity_label, source_from_detail_type, strict_key_id,
};
use super::text;

/// Deepest nesting of JSON values that is walked. Real alerts nest about ten levels.
const MAX_DEPTH: usize = 48;

/// Most JSON documents read from inside JSON strings, one within the next: an
/// EventBridge event in an SNS message in an SQS body needs two.
pub(super) const MAX_EMBEDDED: usize = 3;

/// Region and account named by an EventBridge envelope, for a detail that omits them.
#[derive(Clone, Copy, Default)]
struct Envelope<'a> {
    region: Option<&'a str>,
    account: Option<&'a str>,
}

/// Collects the facts of every finding, event and key ID in `value`, in document
/// order. `embedded` counts the JSON documents this one sits inside.
pub(super) fn facts_from_value(value: &Value, embedded: usize, out: &mut Vec<Facts>) {
    walk(value, Envelope::default(), 0, embedded, out);
}

fn walk(
    value: &Value,
    envelope: Envelope<'_>,
    depth: usize,
    embedded: usize,
    out: &mut Vec<Facts>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(map) => walk_object(map, envelope, depth, embedded, out),
        Value::Array(items) => {
            for item in items {
                walk(item, envelope, depth + 1, embedded, out);
            }
        }
        Value::String(text) => walk_string(text, embedded, out),
        _ => {}
    }
}

fn walk_object(
    map: &Map<String, Value>,
    envelope: Envelope<'_>,
    depth: usize,
    embedded: usize,
    out: &mut Vec<Facts>,
) {
    if let Some(message) = sns_message(map) {
        read_embedded_text(message, embedded, out);
        return;
    }
    if let (Some(detail_type), Some(detail)) = (str_field(map, "detail-type"), map.get("detail")) {
        walk_eventbridge(map, detail_type, detail, depth, embedded, out);
        return;
    }

    if is_security_hub_finding(map) {
        out.push(security_hub_finding(map, envelope));
    } else if is_guardduty_finding(map) {
        out.push(guardduty_finding(map, envelope));
    } else if is_health_event(map) {
        out.push(health_event(map, envelope));
    } else if is_cloudtrail_event(map) {
        out.push(cloudtrail_event(map, envelope));
    } else {
        walk_unknown_object(map, envelope, depth, embedded, out);
    }
}

/// Reads a string value: a JSON document inside a string (an SNS message, a
/// `CloudTrailEvent` from `LookupEvents`, a CloudWatch Logs message) is read as text,
/// so that a truncated one still gives its key IDs. Any other string gives the key IDs
/// written in it.
fn walk_string(text: &str, embedded: usize, out: &mut Vec<Facts>) {
    if looks_like_json(text) {
        read_embedded_text(text, embedded, out);
        return;
    }
    let mut facts = Facts::new(None);
    facts.add_keys_in_text(text);
    if !facts.key_ids.is_empty() {
        out.push(facts);
    }
}

fn read_embedded_text(text: &str, embedded: usize, out: &mut Vec<Facts>) {
    if embedded >= MAX_EMBEDDED {
        let mut facts = Facts::new(None);
        facts.add_keys_in_text(text);
        if !facts.key_ids.is_empty() {
            out.push(facts);
        }
        return;
    }
    text::facts_from_text(text, embedded + 1, out);
}

fn looks_like_json(text: &str) -> bool {
    let trimmed = text.trim_start();
    trimmed.starts_with('{') || trimmed.starts_with('[')
}

/// Returns the message of an SNS notification, as delivered to HTTP and email
/// subscribers or inside a Lambda record's `Sns` object.
fn sns_message(map: &Map<String, Value>) -> Option<&str> {
    if str_field(map, "Type")? != "Notification" {
        return None;
    }
    str_field(map, "Message")
}

/// Reads an EventBridge event by its `detail-type`, with the envelope's region and
/// account as defaults. When the detail names no key, the envelope's `resources` may.
fn walk_eventbridge(
    map: &Map<String, Value>,
    detail_type: &str,
    detail: &Value,
    depth: usize,
    embedded: usize,
    out: &mut Vec<Facts>,
) {
    let envelope = Envelope {
        region: str_field(map, "region"),
        account: str_field(map, "account"),
    };
    let source = source_from_detail_type(detail_type);
    let first_new = out.len();

    match (source, detail.as_object()) {
        (Some(AlertSource::GuardDuty), Some(finding)) => {
            out.push(guardduty_finding(finding, envelope));
        }
        (Some(AlertSource::Health), Some(event)) => out.push(health_event(event, envelope)),
        // Security Hub events carry `detail.findings`, which the walk recognises;
        // other detail types (CloudTrail calls, custom events) are read by shape.
        _ => walk(detail, envelope, depth + 1, embedded, out),
    }

    if out[first_new..]
        .iter()
        .any(|facts| !facts.key_ids.is_empty())
    {
        return;
    }
    let mut listed = Facts::new(source);
    scan_keys(map.get("resources").unwrap_or(&Value::Null), &mut listed, 0);
    if listed.key_ids.is_empty() {
        return;
    }
    match out.get_mut(first_new) {
        Some(facts) => listed
            .key_ids
            .into_iter()
            .for_each(|key| facts.add_key(key)),
        None => {
            fill(&mut listed.region, envelope.region.filter(|r| is_region(r)));
            fill(&mut listed.account_id, envelope.account);
            out.push(listed);
        }
    }
}

// ---------------------------------------------------------------------------------------
// GuardDuty
// ---------------------------------------------------------------------------------------

/// Returns true for a GuardDuty finding in either spelling: camelCase in EventBridge
/// events and exports (`resource`, `service`, `type`), PascalCase in `GetFindings`
/// output.
fn is_guardduty_finding(map: &Map<String, Value>) -> bool {
    let has_object = |name| field(map, name).is_some_and(Value::is_object);
    str_field_ci(map, "type").is_some() && (has_object("resource") || has_object("service"))
}

fn guardduty_finding(map: &Map<String, Value>, envelope: Envelope<'_>) -> Facts {
    let mut facts = Facts::new(Some(AlertSource::GuardDuty));

    let access_key =
        field(map, "resource").and_then(|resource| field_of(resource, "accessKeyDetails"));
    if let Some(details) = access_key {
        if let Some(key) = str_of_ci(details, "accessKeyId") {
            facts.add_key_field(key);
        }
        fill(&mut facts.user_name, str_of_ci(details, "userName"));
        fill(&mut facts.principal_id, str_of_ci(details, "principalId"));
    }

    fill(
        &mut facts.account_id,
        str_field_ci(map, "accountId").or(envelope.account),
    );
    fill(&mut facts.finding_type, str_field_ci(map, "type"));
    fill(&mut facts.finding_id, str_field_ci(map, "id"));
    fill(&mut facts.title, str_field_ci(map, "title"));
    facts.severity = match field(map, "severity") {
        Some(Value::Number(score)) => score.as_f64().and_then(guardduty_severity),
        Some(Value::String(score)) => score.trim().parse().ok().and_then(guardduty_severity),
        _ => None,
    };
    fill(
        &mut facts.region,
        str_field_ci(map, "region").or(envelope.region),
    );

    if let Some(service) = field(map, "service") {
        facts.observe_first(time_of(service, "eventFirstSeen"));
        facts.observe_last(time_of(service, "eventLastSeen"));
        if let Some(action) = field_of(service, "action") {
            add_remote_ips(action, &mut facts, 0);
        }
    }

    if facts.key_ids.is_empty() {
        scan_keys_in_object(map, &mut facts);
    }
    facts
}

/// Adds the address of every `remoteIpDetails` under a GuardDuty or ASFF action:
/// API calls, network connections, port probes, Kubernetes and RDS logins.
fn add_remote_ips(value: &Value, facts: &mut Facts, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                if name.eq_ignore_ascii_case("remoteIpDetails") {
                    for address in ["ipAddressV4", "ipAddressV6"] {
                        if let Some(ip) = str_of_ci(child, address) {
                            facts.add_ip(ip);
                        }
                    }
                } else {
                    add_remote_ips(child, facts, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                add_remote_ips(item, facts, depth + 1);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Security Hub (ASFF)
// ---------------------------------------------------------------------------------------

/// Returns true for a finding in the AWS Security Finding Format: `SchemaVersion`
/// `2018-10-08`, or the `ProductArn` and `Resources` every ASFF finding has.
fn is_security_hub_finding(map: &Map<String, Value>) -> bool {
    let schema = str_field(map, "SchemaVersion").is_some_and(|v| v.starts_with("2018-"));
    schema || (map.contains_key("ProductArn") && map.contains_key("Resources"))
}

fn security_hub_finding(map: &Map<String, Value>, envelope: Envelope<'_>) -> Facts {
    let mut facts = Facts::new(Some(AlertSource::SecurityHub));

    fill(&mut facts.region, str_field(map, "Region"));
    for resource in array_field(map, "Resources") {
        read_asff_resource(resource, &mut facts);
    }

    fill(
        &mut facts.account_id,
        str_field(map, "AwsAccountId").or(envelope.account),
    );
    let types = array_field(map, "Types").first().or_else(|| {
        path(map, &["FindingProviderFields", "Types"])
            .and_then(Value::as_array)
            .and_then(|types| types.first())
    });
    fill(&mut facts.finding_type, types.and_then(Value::as_str));
    fill(&mut facts.finding_id, str_field(map, "Id"));
    fill(&mut facts.title, str_field(map, "Title"));
    facts.severity = asff_severity(map);
    fill(
        &mut facts.region,
        str_field(map, "ProductArn").and_then(region_of_arn),
    );
    fill(&mut facts.region, envelope.region.filter(|r| is_region(r)));

    let first = time_of_map(map, "FirstObservedAt").or_else(|| time_of_map(map, "CreatedAt"));
    let last = time_of_map(map, "LastObservedAt").or_else(|| time_of_map(map, "UpdatedAt"));
    facts.observe_first(first);
    facts.observe_last(last);

    for address in ["SourceIpV4", "SourceIpV6"] {
        if let Some(ip) = path(map, &["Network", address]).and_then(Value::as_str) {
            facts.add_ip(ip);
        }
    }
    if let Some(action) = map.get("Action") {
        add_remote_ips(action, &mut facts, 0);
    }
    if let Some(Value::Object(product_fields)) = map.get("ProductFields") {
        read_product_fields(product_fields, &mut facts);
    }

    if facts.key_ids.is_empty() {
        scan_keys_in_object(map, &mut facts);
    }
    facts
}

/// Reads one entry of an ASFF `Resources` array. An access key resource names the key
/// in `Details.AwsIamAccessKey.AccessKeyId` or in its `Id`
/// (`AWS::IAM::AccessKey:ASIA…`). A user or role resource has the principal's ARN as
/// its `Id`.
fn read_asff_resource(resource: &Value, facts: &mut Facts) {
    let resource_type = str_of(resource, "Type").unwrap_or_default();
    let id = str_of(resource, "Id").unwrap_or_default();
    let details = field_of(resource, "Details");

    if let Some(access_key) = details.and_then(|d| field_of(d, "AwsIamAccessKey")) {
        if let Some(key) = str_of(access_key, "AccessKeyId") {
            facts.add_key_field(key);
        }
        fill(&mut facts.user_name, str_of(access_key, "PrincipalName"));
        fill(&mut facts.user_name, str_of(access_key, "UserName"));
        fill(&mut facts.principal_id, str_of(access_key, "PrincipalId"));
        fill(&mut facts.account_id, str_of(access_key, "AccountId"));
    }

    let last_part = id.rsplit([':', '/']).next().unwrap_or_default();
    if resource_type == "AwsIamAccessKey" {
        facts.add_key_field(last_part);
    } else if let Some(key) = strict_key_id(last_part) {
        facts.add_key(key);
    }

    if matches!(resource_type, "AwsIamUser" | "AwsIamRole") && is_principal_arn(id) {
        fill(&mut facts.principal_arn, Some(id));
    }
    if let Some(user) = details.and_then(|d| field_of(d, "AwsIamUser")) {
        fill(&mut facts.user_name, str_of(user, "UserName"));
    }
    fill(&mut facts.region, str_of(resource, "Region"));
}

/// Reads the flattened `ProductFields` of a finding that GuardDuty sent to Security
/// Hub: remote addresses, first and last sighting, and key details where present.
fn read_product_fields(product_fields: &Map<String, Value>, facts: &mut Facts) {
    for (name, value) in product_fields {
        let Some(value) = value.as_str() else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        if name.ends_with("remoteipdetails/ipaddressv4")
            || name.ends_with("remoteipdetails/ipaddressv6")
        {
            facts.add_ip(value);
        } else if name.ends_with("accesskeydetails/accesskeyid") {
            facts.add_key_field(value);
        } else if name.ends_with("accesskeydetails/username") {
            fill(&mut facts.user_name, Some(value));
        } else if name.ends_with("eventfirstseen") {
            facts.observe_first(parse_time(FieldValue::Text(value)));
        } else if name.ends_with("eventlastseen") {
            facts.observe_last(parse_time(FieldValue::Text(value)));
        }
    }
}

/// Reads an ASFF severity: `Severity.Label`, the provider's label, the label Security
/// Hub adds to `ProductFields`, or the deprecated `Severity.Normalized` score.
fn asff_severity(map: &Map<String, Value>) -> Option<String> {
    let labels = [
        path(map, &["Severity", "Label"]),
        path(map, &["FindingProviderFields", "Severity", "Label"]),
        path(map, &["ProductFields", "aws/securityhub/SeverityLabel"]),
    ];
    let label = labels
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(severity_label);
    let normalized = || {
        path(map, &["Severity", "Normalized"])
            .and_then(Value::as_f64)
            .and_then(normalized_severity)
    };
    label.or_else(normalized).map(str::to_string)
}

// ---------------------------------------------------------------------------------------
// AWS Health
// ---------------------------------------------------------------------------------------

/// Returns true for an AWS Health event: the `detail` of an EventBridge event, an entry
/// of `describe-events` or `describe-event-details` output, or an entity of
/// `describe-affected-entities` output.
fn is_health_event(map: &Map<String, Value>) -> bool {
    let event_type = str_field(map, "eventTypeCode").is_some();
    let details_entry = map
        .get("event")
        .is_some_and(|event| str_of(event, "eventTypeCode").is_some());
    let entity = str_field(map, "entityValue").is_some()
        && str_field(map, "eventArn").is_some_and(|arn| arn.contains(":health:"));
    event_type || details_entry || entity
}

fn health_event(map: &Map<String, Value>, envelope: Envelope<'_>) -> Facts {
    let mut facts = Facts::new(Some(AlertSource::Health));
    let event = map.get("event").and_then(Value::as_object).unwrap_or(map);

    for entity in array_field(map, "affectedEntities") {
        if let Some(value) = str_of(entity, "entityValue") {
            facts.add_key_field(value);
        }
    }
    if let Some(value) = str_field(map, "entityValue") {
        facts.add_key_field(value);
    }

    fill(&mut facts.finding_type, str_field(event, "eventTypeCode"));
    let arn = str_field(event, "eventArn").or_else(|| str_field(event, "arn"));
    fill(&mut facts.finding_id, arn);
    fill(
        &mut facts.region,
        str_field(event, "region").filter(|r| is_region(r)),
    );
    fill(&mut facts.region, arn.and_then(region_of_arn));
    fill(&mut facts.region, envelope.region.filter(|r| is_region(r)));
    let account = str_field(map, "affectedAccount").or_else(|| str_field(map, "awsAccountId"));
    fill(&mut facts.account_id, account.or(envelope.account));

    facts.observe_first(time_of_map(event, "startTime"));
    let last = time_of_map(event, "lastUpdatedTime").or_else(|| time_of_map(event, "endTime"));
    facts.observe_last(last);

    // The notification text of AWS_RISK_CREDENTIALS_EXPOSED names the key as well.
    if facts.key_ids.is_empty() {
        scan_keys_in_object(map, &mut facts);
    }
    facts
}

// ---------------------------------------------------------------------------------------
// CloudTrail
// ---------------------------------------------------------------------------------------

fn is_cloudtrail_event(map: &Map<String, Value>) -> bool {
    map.contains_key("userIdentity")
        && (map.contains_key("eventVersion") || map.contains_key("eventName"))
}

/// Reads a CloudTrail event: the caller's access key and identity. The event is not a
/// finding, so the alert source stays [`AlertSource::Text`].
fn cloudtrail_event(map: &Map<String, Value>, envelope: Envelope<'_>) -> Facts {
    let mut facts = Facts::new(None);
    let identity = map.get("userIdentity");

    if let Some(key) = identity.and_then(|i| str_of(i, "accessKeyId")) {
        facts.add_key_field(key);
    }
    fill(
        &mut facts.user_name,
        identity.and_then(|i| str_of(i, "userName")),
    );
    let issuer =
        identity.and_then(|i| path_of(i, &["sessionContext", "sessionIssuer", "userName"]));
    fill(&mut facts.user_name, issuer.and_then(Value::as_str));
    fill(
        &mut facts.principal_id,
        identity.and_then(|i| str_of(i, "principalId")),
    );
    let arn = identity
        .and_then(|i| str_of(i, "arn"))
        .filter(|arn| is_principal_arn(arn));
    fill(&mut facts.principal_arn, arn);

    let account = str_field(map, "recipientAccountId")
        .or_else(|| identity.and_then(|i| str_of(i, "accountId")));
    fill(&mut facts.account_id, account.or(envelope.account));
    fill(
        &mut facts.region,
        str_field(map, "awsRegion").filter(|r| is_region(r)),
    );
    let time = time_of_map(map, "eventTime");
    facts.observe_first(time);
    facts.observe_last(time);
    if let Some(address) = str_field(map, "sourceIPAddress") {
        facts.add_ip(address);
    }

    if facts.key_ids.is_empty() {
        scan_keys_in_object(map, &mut facts);
    }
    facts
}

// ---------------------------------------------------------------------------------------
// Objects of unknown shape
// ---------------------------------------------------------------------------------------

/// Reads an object that is no known alert: API output such as `ListAccessKeys`, a
/// recorded response, or a wrapper around known shapes. Its own fields give key IDs
/// and the fields next to them, and its children are walked for known shapes.
fn walk_unknown_object(
    map: &Map<String, Value>,
    envelope: Envelope<'_>,
    depth: usize,
    embedded: usize,
    out: &mut Vec<Facts>,
) {
    let mut facts = Facts::new(None);
    for (name, value) in map {
        match value {
            Value::String(text) if !looks_like_json(text) => {
                if super::facts::is_key_field(&super::facts::normalised_field_name(name)) {
                    facts.add_key_field(text);
                }
                facts.add_keys_in_text(text);
                facts.apply_field(name, FieldValue::Text(text));
            }
            Value::Number(number) => {
                if let Some(number) = number.as_f64() {
                    facts.apply_field(name, FieldValue::Number(number));
                }
            }
            _ => {}
        }
    }
    if !facts.key_ids.is_empty() {
        out.push(facts);
    }

    for value in map.values() {
        match value {
            Value::Object(_) | Value::Array(_) => walk(value, envelope, depth + 1, embedded, out),
            Value::String(text) if looks_like_json(text) => walk_string(text, embedded, out),
            _ => {}
        }
    }
}

/// Adds the key IDs written anywhere in a finding's strings, for findings whose key
/// fields are empty or hold placeholders.
fn scan_keys_in_object(map: &Map<String, Value>, facts: &mut Facts) {
    for value in map.values() {
        scan_keys(value, facts, 1);
    }
}

fn scan_keys(value: &Value, facts: &mut Facts, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::String(text) => facts.add_keys_in_text(text),
        Value::Array(items) => items
            .iter()
            .for_each(|item| scan_keys(item, facts, depth + 1)),
        Value::Object(map) => map
            .values()
            .for_each(|item| scan_keys(item, facts, depth + 1)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Field access
// ---------------------------------------------------------------------------------------

fn fill(slot: &mut Option<String>, value: Option<&str>) {
    if slot.is_none()
        && let Some(value) = value.map(str::trim).filter(|v| !v.is_empty())
    {
        *slot = Some(value.to_string());
    }
}

/// Returns a field by its exact name, or else by a name that differs only in case
/// (GuardDuty's camelCase and PascalCase spellings).
fn field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

fn field_of<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    field(value.as_object()?, name)
}

fn str_field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    map.get(name)?.as_str()
}

fn str_field_ci<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    field(map, name)?.as_str()
}

fn str_of<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name)?.as_str()
}

fn str_of_ci<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    field_of(value, name)?.as_str()
}

fn path<'a>(map: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    let (first, rest) = names.split_first()?;
    path_of(map.get(*first)?, rest)
}

fn path_of<'a>(value: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().try_fold(value, |value, name| value.get(name))
}

fn array_field<'a>(map: &'a Map<String, Value>, name: &str) -> &'a [Value] {
    map.get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn time_of(value: &Value, name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    time_of_map(value.as_object()?, name)
}

fn time_of_map(map: &Map<String, Value>, name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    match field(map, name)? {
        Value::String(text) => parse_time(FieldValue::Text(text)),
        Value::Number(number) => parse_time(FieldValue::Number(number.as_f64()?)),
        _ => None,
    }
}

/// Returns the region of an ARN (`arn:aws:health:us-east-1::event/…`) when it has one.
fn region_of_arn(arn: &str) -> Option<&str> {
    let region = arn.split(':').nth(3)?;
    is_region(region).then_some(region)
}
