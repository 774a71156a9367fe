//! CloudTrail events: the event model, and readers for every shape events arrive in (S3
//! log files, JSON arrays and lines, CloudWatch Logs payloads and CLI output, `LookupEvents`
//! results, EventBridge events), gzip or not.
//!
//! A bad record is counted and skipped with its reason, never fatal to the input. This
//! module reads what it is given. Fetching events from AWS is the evidence layer's job,
//! and deciding what the events mean is the playbook's.

mod event;
mod lenient;
mod read;
mod record;
mod scanner;
mod source_ip;

pub use event::{
    ACCESS_DENIED_ERROR_CODES, CREDENTIAL_MINTING_EVENTS, Event, IdentityType, SessionAttributes,
    SessionContext, SessionIssuer, UserIdentity,
};
pub use read::{ReadOutcome, Shape, SkippedRecord, read_bytes, read_path, scan_bytes};
pub use source_ip::{SourceIp, SourceIpKind};

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;
    use std::path::{Path, PathBuf};

    use super::*;

    /// The folders of real inputs, written by other people, that the reader must handle.
    const CORPUS_FOLDERS: &[&str] = &["cloudtrail", "sekoia"];

    /// Expected (shape, events read, records skipped) for every file in `CORPUS_FOLDERS`,
    /// worked out from the files themselves.
    const CORPUS_EXPECTED: &[(&str, Shape, usize, usize)] = &[
        // Documentation pages and metadata: no CloudTrail input.
        (
            "cloudtrail/awsdocs/awsdocs-cloudtrail-event-reference-aws-console-sign-in-events.md",
            Shape::Unrecognized,
            0,
            0,
        ),
        (
            "cloudtrail/awsdocs/awsdocs-cloudtrail-event-reference-user-identity.md",
            Shape::Unrecognized,
            0,
            0,
        ),
        (
            "cloudtrail/awsdocs/awsdocs-cloudtrail-log-file-examples.md",
            Shape::Unrecognized,
            0,
            0,
        ),
        (
            "cloudtrail/otrf/SDAWS-200914011940.yaml",
            Shape::Unrecognized,
            0,
            0,
        ),
        (
            "cloudtrail/otrf/SDAWS-2202181000.yaml",
            Shape::Unrecognized,
            0,
            0,
        ),
        (
            "cloudtrail/otrf/aws_s3_honeybucketlogs/AWS_S3_HoneyBucketLogs.csv",
            Shape::Unrecognized,
            0,
            0,
        ),
        // One record in {"Records":[…]}.
        (
            "cloudtrail/awsdocs/cloudtrail-event-reference-aws-console-sign-in-events.example01.json",
            Shape::S3LogFile,
            1,
            0,
        ),
        // Single sign-in events, each with an eventTime.
        (
            "cloudtrail/awsdocs/cloudtrail-event-reference-aws-console-sign-in-events.example02.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-event-reference-aws-console-sign-in-events.example03.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-event-reference-aws-console-sign-in-events.example04.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-event-reference-aws-console-sign-in-events.example05.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-event-reference-aws-console-sign-in-events.example06.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-event-reference-aws-console-sign-in-events.example07.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-event-reference-aws-console-sign-in-events.example08.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-event-reference-aws-console-sign-in-events.example09.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-event-reference-aws-console-sign-in-events.example10.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        // A userIdentity fragment with eventVersion but no eventTime.
        (
            "cloudtrail/awsdocs/cloudtrail-event-reference-user-identity.example01.json",
            Shape::SingleEvent,
            0,
            1,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-log-file-examples.example01.json",
            Shape::S3LogFile,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-log-file-examples.example02.json",
            Shape::S3LogFile,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-log-file-examples.example03.json",
            Shape::S3LogFile,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-log-file-examples.example04.json",
            Shape::S3LogFile,
            1,
            0,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-log-file-examples.example05.json",
            Shape::S3LogFile,
            1,
            0,
        ),
        // Its only record has a raw line break inside a string, which JSON forbids.
        (
            "cloudtrail/awsdocs/cloudtrail-log-file-examples.example06.txt",
            Shape::S3LogFile,
            0,
            1,
        ),
        (
            "cloudtrail/awsdocs/cloudtrail-log-file-examples.example07.json",
            Shape::S3LogFile,
            1,
            0,
        ),
        // Two Insights events: eventTime, no userIdentity.
        (
            "cloudtrail/awsdocs/cloudtrail-log-file-examples.example08.json",
            Shape::S3LogFile,
            2,
            0,
        ),
        (
            "cloudtrail/elastic-integrations/test-assume-role-aws-service-json.log",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "cloudtrail/elastic-integrations/test-assume-role-email-session-json.log",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "cloudtrail/elastic-integrations/test-cloudtrail-digest-json.log",
            Shape::Digest,
            0,
            0,
        ),
        (
            "cloudtrail/elastic-integrations/test-get-caller-identity-json.log",
            Shape::SingleEvent,
            1,
            0,
        ),
        // Stratus Red Team detonation logs: JSON arrays, every record with an eventTime.
        (
            "cloudtrail/stratus/aws.credential-access.ec2-get-password-data.json",
            Shape::JsonArray,
            34,
            0,
        ),
        (
            "cloudtrail/stratus/aws.credential-access.secretsmanager-retrieve-secrets.json",
            Shape::JsonArray,
            21,
            0,
        ),
        (
            "cloudtrail/stratus/aws.defense-evasion.cloudtrail-delete.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.defense-evasion.cloudtrail-event-selectors.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.defense-evasion.cloudtrail-stop.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.defense-evasion.dns-delete-logs.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.defense-evasion.organizations-leave.json",
            Shape::JsonArray,
            3,
            0,
        ),
        (
            "cloudtrail/stratus/aws.defense-evasion.vpc-remove-flow-logs.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.discovery.ec2-download-user-data.json",
            Shape::JsonArray,
            19,
            0,
        ),
        (
            "cloudtrail/stratus/aws.execution.ec2-launch-unusual-instances.json",
            Shape::JsonArray,
            3,
            0,
        ),
        (
            "cloudtrail/stratus/aws.execution.ec2-user-data.json",
            Shape::JsonArray,
            35,
            0,
        ),
        (
            "cloudtrail/stratus/aws.execution.ssm-send-command.json",
            Shape::JsonArray,
            56,
            0,
        ),
        (
            "cloudtrail/stratus/aws.execution.ssm-start-session.json",
            Shape::JsonArray,
            29,
            0,
        ),
        (
            "cloudtrail/stratus/aws.exfiltration.ec2-security-group-open-port-22-ingress.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.exfiltration.ec2-share-ami.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.exfiltration.ec2-share-ebs-snapshot.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.exfiltration.rds-share-snapshot.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.impact.bedrock-invoke-model.json",
            Shape::JsonArray,
            15,
            0,
        ),
        (
            "cloudtrail/stratus/aws.initial-access.console-login-without-mfa.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.lateral-movement.ec2-instance-connect.json",
            Shape::JsonArray,
            3,
            0,
        ),
        (
            "cloudtrail/stratus/aws.lateral-movement.ec2-serial-console-send-ssh-public-key.json",
            Shape::JsonArray,
            4,
            0,
        ),
        (
            "cloudtrail/stratus/aws.persistence.iam-backdoor-role.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.persistence.iam-backdoor-user.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.persistence.iam-create-backdoor-role.json",
            Shape::JsonArray,
            2,
            0,
        ),
        (
            "cloudtrail/stratus/aws.persistence.iam-create-user-login-profile.json",
            Shape::JsonArray,
            3,
            0,
        ),
        (
            "cloudtrail/stratus/aws.persistence.lambda-backdoor-function.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.persistence.lambda-layer-extension.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.persistence.lambda-overwrite-code.json",
            Shape::JsonArray,
            1,
            0,
        ),
        (
            "cloudtrail/stratus/aws.persistence.rolesanywhere-create-trust-anchor.json",
            Shape::JsonArray,
            2,
            0,
        ),
        (
            "cloudtrail/stratus/aws.privilege-escalation.iam-update-user-login-profile.json",
            Shape::JsonArray,
            1,
            0,
        ),
        // SEKOIA intake test messages: one event each, including an Insights event.
        (
            "sekoia/aws-cloudtrail__7602ff70-7e5f-42e9-86b2-36803df39183.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__event_cloudtrail.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__event_cluster_name.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__event_ec2-error.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__event_ec2.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__event_iam.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__event_lambda.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__event_rds.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__event_s3.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__event_signin.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__event_sts.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__invalid_characters.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__test_insight.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__test_service_event.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        (
            "sekoia/aws-cloudtrail__test_signin2.raw.json",
            Shape::SingleEvent,
            1,
            0,
        ),
        // GuardDuty findings in API form: JSON, but not CloudTrail.
        (
            "sekoia/aws-guardduty__event_accesskey_apicall.raw.json",
            Shape::Unrecognized,
            0,
            0,
        ),
        (
            "sekoia/aws-guardduty__event_instance_portprobe.raw.json",
            Shape::Unrecognized,
            0,
            0,
        ),
        (
            "sekoia/aws-guardduty__event_s3bucket_apicall.raw.json",
            Shape::Unrecognized,
            0,
            0,
        ),
    ];

    /// Returns the shared corpus folder, or `None` (with a notice) where it is absent.
    fn corpus_root() -> Option<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
        if root.is_dir() {
            return Some(root);
        }
        println!("skipping: corpus folder {} is absent", root.display());
        None
    }

    fn collect_files(folder: &Path, files: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(folder)
            .unwrap_or_else(|error| panic!("{}: {error}", folder.display()));
        for entry in entries {
            let path = entry.expect("readable folder entry").path();
            if path.is_dir() {
                collect_files(&path, files);
            } else {
                files.push(path);
            }
        }
    }

    /// Lists every corpus file under `CORPUS_FOLDERS`, keyed by its path relative to the
    /// root.
    fn corpus_files(root: &Path) -> BTreeMap<String, PathBuf> {
        let mut files = Vec::new();
        for folder in CORPUS_FOLDERS {
            collect_files(&root.join(folder), &mut files);
        }
        files
            .into_iter()
            .map(|path| {
                let relative = path
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                (relative, path)
            })
            .collect()
    }

    fn read_corpus_file(root: &Path, relative: &str) -> ReadOutcome {
        read_path(&root.join(relative)).unwrap_or_else(|error| panic!("{relative}: {error}"))
    }

    #[test]
    fn corpus_files_read_as_expected() {
        let Some(root) = corpus_root() else { return };
        let files = corpus_files(&root);
        let expected: BTreeMap<&str, (Shape, usize, usize)> = CORPUS_EXPECTED
            .iter()
            .map(|&(path, shape, events, skipped)| (path, (shape, events, skipped)))
            .collect();

        let unlisted: Vec<&String> = files
            .keys()
            .filter(|path| !expected.contains_key(path.as_str()))
            .collect();
        assert!(
            unlisted.is_empty(),
            "corpus files missing from CORPUS_EXPECTED: {unlisted:#?}"
        );
        let vanished: Vec<&&str> = expected
            .keys()
            .filter(|path| !files.contains_key(**path))
            .collect();
        assert!(
            vanished.is_empty(),
            "CORPUS_EXPECTED lists files that are gone: {vanished:#?}"
        );

        let mut mismatches = Vec::new();
        for (relative, path) in &files {
            let outcome = read_path(path).unwrap_or_else(|error| panic!("{relative}: {error}"));
            let actual = (outcome.shape, outcome.events.len(), outcome.skipped.len());
            if actual != expected[relative.as_str()] {
                mismatches.push(format!(
                    "{relative}: expected {:?}, got {actual:?}, skipped {:?}",
                    expected[relative.as_str()],
                    outcome.skipped
                ));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn corpus_scan_and_round_trip_match_read() {
        let Some(root) = corpus_root() else { return };
        for (relative, path) in corpus_files(&root) {
            let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{relative}: {error}"));
            let read = read_bytes(&bytes);

            let mut keys: Vec<&str> = read
                .events
                .iter()
                .filter_map(Event::access_key_id)
                .collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                // A key ID needs no JSON escaping, so it is in a record's bytes exactly when
                // it is in the serialized event (as the caller's key or a minted one).
                let expected: Vec<&Event> = read
                    .events
                    .iter()
                    .filter(|event| {
                        serde_json::to_string(event)
                            .expect("event serializes")
                            .contains(key)
                    })
                    .collect();
                let scanned = scan_bytes(&bytes, &[key.as_bytes()]);
                let ids = |events: &[&Event]| -> Vec<Option<String>> {
                    events.iter().map(|event| event.event_id.clone()).collect()
                };
                let actual: Vec<&Event> = scanned.events.iter().collect();
                assert_eq!(
                    ids(&actual),
                    ids(&expected),
                    "{relative}, needle {key}: event IDs"
                );
                assert!(
                    actual == expected,
                    "{relative}, needle {key}: events differ"
                );
            }

            let written = serde_json::to_string(&read.events).expect("events serialize");
            let again = read_bytes(written.as_bytes());
            assert!(
                again.events == read.events,
                "{relative}: events differ after a round trip"
            );
        }
    }

    #[test]
    fn corpus_event_facts() {
        let Some(root) = corpus_root() else { return };

        let login = read_corpus_file(
            &root,
            "cloudtrail/stratus/aws.initial-access.console-login-without-mfa.json",
        );
        assert_eq!(login.events[0].mfa_authenticated(), Some(false));
        assert_eq!(
            login.events[0].user_identity.identity_type,
            IdentityType::IamUser
        );
        assert_eq!(
            login.events[0]
                .source_ip_address
                .as_ref()
                .and_then(SourceIp::ip),
            Some(Ipv4Addr::new(225, 1, 0, 16).into())
        );

        let password_data = read_corpus_file(
            &root,
            "cloudtrail/stratus/aws.credential-access.ec2-get-password-data.json",
        );
        let denied = password_data
            .events
            .iter()
            .filter(|event| event.is_access_denied())
            .count();
        assert_eq!(
            denied, 32,
            "2 AccessDenied and 30 Client.UnauthorizedOperation"
        );
        let minted: Vec<&str> = password_data
            .events
            .iter()
            .filter_map(Event::minted_access_key_id)
            .collect();
        assert_eq!(minted, ["ASIA7RQR64ZW9JXKWPUO", "ASIANQQHHS551LWULIWD"]);

        let bedrock = read_corpus_file(
            &root,
            "cloudtrail/stratus/aws.impact.bedrock-invoke-model.json",
        );
        for event in &bedrock.events {
            assert_eq!(event.access_key_id(), Some("ASIA6FTSFH98XNF7DFZB"));
            assert_eq!(event.user_identity.identity_type, IdentityType::AssumedRole);
            let source_ip = event.source_ip_address.as_ref().expect("sourceIPAddress");
            assert_eq!(source_ip.raw, "035.249.253.232");
            assert_eq!(
                source_ip.kind,
                SourceIpKind::Ipv4(Ipv4Addr::new(35, 249, 253, 232))
            );
        }

        let internal = read_corpus_file(&root, "sekoia/aws-cloudtrail__event_ec2.raw.json");
        let event = &internal.events[0];
        assert_eq!(event.user_identity.identity_type, IdentityType::Root);
        assert_eq!(
            event.source_ip_address.as_ref().map(|ip| &ip.kind),
            Some(&SourceIpKind::AwsInternal)
        );
        assert_eq!(event.access_key_id(), Some("ASI00000000000000000"));
        assert_eq!(event.mfa_authenticated(), Some(true));
        assert!(event.is_console_session());

        let service = read_corpus_file(
            &root,
            "cloudtrail/elastic-integrations/test-assume-role-aws-service-json.log",
        );
        let event = &service.events[0];
        assert_eq!(event.user_identity.identity_type, IdentityType::AwsService);
        assert_eq!(
            event.source_ip_address.as_ref().map(|ip| &ip.kind),
            Some(&SourceIpKind::AwsServiceName("ec2.amazonaws.com".into()))
        );

        let fragment = read_corpus_file(
            &root,
            "cloudtrail/awsdocs/cloudtrail-event-reference-user-identity.example01.json",
        );
        assert_eq!(fragment.skipped[0].reason, "record 1: missing eventTime");
    }
}
