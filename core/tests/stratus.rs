//! Acceptance test over the Stratus Red Team detonation logs: every access key found in the
//! folder is investigated with the whole folder as one snapshot.
//!
//! Each file contains the CloudTrail records of one attack technique, named by the file. For
//! each key the test checks that the activity step lists exactly the key's own calls,
//! source addresses, user agents and regions, and that the diagnosis files the technique's
//! tell-tale calls under the expected heading. The expected calls, addresses and agents
//! are counted here from the JSON with `serde_json`, not with keycheck's readers.
//!
//! The folder is read from `../shared/corpus` beside the repository. Where it is absent, the
//! test prints a notice and passes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keycheck_core::diagnosis::Diagnosis;
use keycheck_core::evidence::Evidence;
use keycheck_core::evidence::snapshot::Snapshot;
use keycheck_core::geo::Geo;
use keycheck_core::playbook::{self, Investigation, Origin, Outcome, PlaybookConfig};
use keycheck_core::report::{ActivityFacts, StepData, StepId};
use serde_json::Value;

/// Claims expected under one diagnosis heading.
struct Under {
    heading: &'static str,
    /// Each entry must match a different claim of the section: either the whole claim
    /// text, or the text before the claim's `: target, …` list.
    claims: &'static [&'static str],
}

/// One key of the corpus, the technique file it appears in, and what the diagnosis must
/// name.
struct Row {
    key: &'static str,
    /// The technique file, without `.json`.
    file: &'static str,
    expected: &'static [Under],
}

const ROLE_ASSUMPTION: &str = "Cross-account activity and role assumption";
const DENIED_BURSTS: &str = "Denied-call bursts (enumeration)";

/// Every key that signs a call in the Stratus folder. The ConsoleLogin record of
/// `aws.initial-access.console-login-without-mfa` carries no access key, so it has no row.
const ROWS: &[Row] = &[
    Row {
        key: "AKIAWOGXN38MFN92ING5",
        file: "aws.credential-access.ec2-get-password-data",
        // The key assumes the role, and the session it minted makes the denied calls.
        expected: &[
            Under {
                heading: ROLE_ASSUMPTION,
                claims: &[
                    "AssumeRole arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role in the same account: denied",
                    "AssumeRole arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role in the same account: denied",
                    "AssumeRole arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role in the same account: succeeded",
                    "AssumeRole arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role in the same account: succeeded",
                ],
            },
            Under {
                heading: DENIED_BURSTS,
                claims: &["32 denied calls in 11 seconds: ec2:GetPasswordData ×30, sts:AssumeRole ×2 (made with ASIANQQHHS551LWULIWD, minted from this key)"],
            },
            Under {
                heading: "Credential access",
                claims: &["ec2:GetPasswordData ×30 (30 failed)"],
            },
        ],
    },
    Row {
        key: "ASIANQQHHS551LWULIWD",
        file: "aws.credential-access.ec2-get-password-data",
        expected: &[
            Under {
                heading: DENIED_BURSTS,
                claims: &["30 denied calls in 5 seconds: ec2:GetPasswordData ×30"],
            },
            Under {
                heading: "Credential access",
                claims: &["ec2:GetPasswordData ×30 (30 failed)"],
            },
        ],
    },
    Row {
        key: "AKIA1JMTHE9ZMZMWG0MG",
        file: "aws.credential-access.secretsmanager-retrieve-secrets",
        expected: &[Under {
            heading: "Secrets read",
            claims: &["secretsmanager:GetSecretValue ×20"],
        }],
    },
    Row {
        key: "AKIAFBJ48BV9CGRBRKGM",
        file: "aws.defense-evasion.cloudtrail-delete",
        expected: &[Under {
            heading: "Defense evasion",
            claims: &["cloudtrail:DeleteTrail ×1"],
        }],
    },
    Row {
        key: "AKIA2I0BSXU5LNRWIN0K",
        file: "aws.defense-evasion.cloudtrail-event-selectors",
        expected: &[Under {
            heading: "Defense evasion",
            claims: &["cloudtrail:PutEventSelectors ×1"],
        }],
    },
    Row {
        key: "AKIAGGWFBBHBE7D3M9WI",
        file: "aws.defense-evasion.cloudtrail-stop",
        expected: &[Under {
            heading: "Defense evasion",
            claims: &["cloudtrail:StopLogging ×1"],
        }],
    },
    Row {
        key: "AKIADT99GZBZR7NVDT0D",
        file: "aws.defense-evasion.dns-delete-logs",
        expected: &[Under {
            heading: "Defense evasion",
            claims: &["route53resolver:DeleteResolverQueryLogConfig ×1"],
        }],
    },
    Row {
        key: "AKIADVISM0T50G52IF0D",
        file: "aws.defense-evasion.organizations-leave",
        expected: &[
            Under {
                heading: ROLE_ASSUMPTION,
                claims: &[
                    "AssumeRole arn:aws:iam::307578594326:role/stratus-red-team-leave-org-role in the same account: succeeded",
                    "AssumeRole arn:aws:iam::307578594326:role/stratus-red-team-leave-org-role in the same account: succeeded",
                ],
            },
            Under {
                heading: "Defense evasion",
                claims: &["organizations:LeaveOrganization ×1 (1 failed)"],
            },
        ],
    },
    Row {
        key: "ASIA36EV31F1RB3OA8IG",
        file: "aws.defense-evasion.organizations-leave",
        expected: &[Under {
            heading: "Defense evasion",
            claims: &["organizations:LeaveOrganization ×1 (1 failed)"],
        }],
    },
    Row {
        key: "AKIA5Q8Z0GHOBYSEN9D6",
        file: "aws.defense-evasion.vpc-remove-flow-logs",
        expected: &[Under {
            heading: "Defense evasion",
            claims: &["ec2:DeleteFlowLogs ×1"],
        }],
    },
    Row {
        key: "AKIAMJ2320ZAXACWCPJI",
        file: "aws.discovery.ec2-download-user-data",
        expected: &[
            Under {
                heading: ROLE_ASSUMPTION,
                claims: &[
                    "AssumeRole arn:aws:iam::321848314756:role/stratus-red-team-get-usr-data-role in the same account: denied",
                    "AssumeRole arn:aws:iam::321848314756:role/stratus-red-team-get-usr-data-role in the same account: denied",
                    "AssumeRole arn:aws:iam::321848314756:role/stratus-red-team-get-usr-data-role in the same account: succeeded",
                    "AssumeRole arn:aws:iam::321848314756:role/stratus-red-team-get-usr-data-role in the same account: succeeded",
                ],
            },
            Under {
                heading: DENIED_BURSTS,
                claims: &["17 denied calls in 7 seconds: ec2:DescribeInstanceAttribute ×15, sts:AssumeRole ×2 (made with ASIA4URVX2JM5MT0ZGK8, minted from this key)"],
            },
        ],
    },
    Row {
        key: "ASIA4URVX2JM5MT0ZGK8",
        file: "aws.discovery.ec2-download-user-data",
        expected: &[Under {
            heading: DENIED_BURSTS,
            claims: &["15 denied calls in 4 seconds: ec2:DescribeInstanceAttribute ×15"],
        }],
    },
    Row {
        key: "AKIAR7ISFR69YWROPYAN",
        file: "aws.execution.ec2-launch-unusual-instances",
        expected: &[
            Under {
                heading: ROLE_ASSUMPTION,
                claims: &[
                    "AssumeRole arn:aws:iam::900138736586:role/stratus-red-team-ec2lui-role-idtzskbvtd in the same account: succeeded",
                    "AssumeRole arn:aws:iam::900138736586:role/stratus-red-team-ec2lui-role-idtzskbvtd in the same account: succeeded",
                ],
            },
            Under {
                heading: "Execution on workloads",
                claims: &["ec2:RunInstances ×1 (1 failed)"],
            },
        ],
    },
    Row {
        key: "ASIA9F6MXE9HSYOXYQOS",
        file: "aws.execution.ec2-launch-unusual-instances",
        expected: &[Under {
            heading: "Execution on workloads",
            claims: &["ec2:RunInstances ×1 (1 failed)"],
        }],
    },
    Row {
        key: "AKIAZI86ACIZ2J9CV86Z",
        file: "aws.execution.ec2-user-data",
        expected: &[Under {
            heading: "Execution on workloads",
            claims: &["ec2:ModifyInstanceAttribute ×1"],
        }],
    },
    Row {
        key: "AKIAW9X2Q2U25SK79UCX",
        file: "aws.execution.ssm-send-command",
        expected: &[Under {
            heading: "Execution on workloads",
            claims: &["ssm:SendCommand ×1"],
        }],
    },
    Row {
        key: "AKIA4HNRH6OJUWNZ893Z",
        file: "aws.execution.ssm-start-session",
        expected: &[Under {
            heading: "Execution on workloads",
            claims: &["ssm:StartSession ×3"],
        }],
    },
    Row {
        key: "AKIAXW7UJ577KFYIAHIM",
        file: "aws.exfiltration.ec2-security-group-open-port-22-ingress",
        expected: &[Under {
            heading: "Exfiltration and external sharing",
            claims: &["ec2:AuthorizeSecurityGroupIngress ×1"],
        }],
    },
    Row {
        key: "AKIA40XZ2OQU8R4QKTAC",
        file: "aws.exfiltration.ec2-share-ami",
        expected: &[Under {
            heading: "Exfiltration and external sharing",
            claims: &["ec2:ModifyImageAttribute ×1"],
        }],
    },
    Row {
        key: "AKIAYLJU0B35TFSNKCS2",
        file: "aws.exfiltration.ec2-share-ebs-snapshot",
        expected: &[Under {
            heading: "Exfiltration and external sharing",
            claims: &["ec2:ModifySnapshotAttribute ×1"],
        }],
    },
    Row {
        key: "AKIAIYTVC64GTXUFCS2X",
        file: "aws.exfiltration.rds-share-snapshot",
        expected: &[Under {
            heading: "Exfiltration and external sharing",
            claims: &["rds:ModifyDBSnapshotAttribute ×1"],
        }],
    },
    Row {
        key: "ASIA6FTSFH98XNF7DFZB",
        file: "aws.impact.bedrock-invoke-model",
        expected: &[Under {
            heading: "Impact",
            claims: &[
                "bedrock:InvokeModel ×1",
                "bedrock:PutFoundationModelEntitlement ×1",
                "bedrock:CreateFoundationModelAgreement ×1",
                "bedrock:PutUseCaseForModelAccess ×1",
            ],
        }],
    },
    Row {
        key: "AKIAGM9ZC9KUL0AYEVUM",
        file: "aws.lateral-movement.ec2-instance-connect",
        expected: &[Under {
            heading: "Lateral movement",
            claims: &["ec2-instance-connect:SendSSHPublicKey ×3"],
        }],
    },
    Row {
        key: "ASIA2HJRQF0DHNYEE9N1",
        file: "aws.lateral-movement.ec2-serial-console-send-ssh-public-key",
        expected: &[Under {
            heading: "Lateral movement",
            claims: &[
                "ec2-instance-connect:SendSerialConsoleSSHPublicKey ×3",
                "ec2:EnableSerialConsoleAccess ×1",
            ],
        }],
    },
    Row {
        key: "AKIAMUV7B57OZM0RV05D",
        file: "aws.persistence.iam-backdoor-role",
        expected: &[Under {
            heading: "Persistence",
            claims: &["iam:UpdateAssumeRolePolicy ×1"],
        }],
    },
    Row {
        key: "AKIA30BEZSJBVKOFKZW0",
        file: "aws.persistence.iam-backdoor-user",
        expected: &[Under {
            heading: "Persistence",
            claims: &["iam:CreateAccessKey ×1"],
        }],
    },
    Row {
        key: "AKIA0W5KI69TY8X86BGT",
        file: "aws.persistence.iam-create-backdoor-role",
        expected: &[
            Under {
                heading: "Persistence",
                claims: &["iam:CreateRole ×1"],
            },
            Under {
                heading: "Privilege escalation",
                claims: &["iam:AttachRolePolicy ×1"],
            },
        ],
    },
    Row {
        key: "AKIAE18PGYHCY2CYMTFK",
        file: "aws.persistence.iam-create-user-login-profile",
        expected: &[Under {
            heading: "Persistence",
            claims: &["iam:CreateLoginProfile ×1"],
        }],
    },
    Row {
        key: "AKIAYALJGCQ7J893JO5I",
        file: "aws.persistence.lambda-backdoor-function",
        expected: &[Under {
            heading: "Persistence",
            claims: &["lambda:AddPermission20150331v2 ×1"],
        }],
    },
    Row {
        key: "AKIAUBN5AMJF3I0EG996",
        file: "aws.persistence.lambda-layer-extension",
        expected: &[Under {
            heading: "Persistence",
            claims: &["lambda:UpdateFunctionConfiguration20150331v2 ×1"],
        }],
    },
    Row {
        key: "AKIAKHYV6FI4F4CJQMDV",
        file: "aws.persistence.lambda-overwrite-code",
        expected: &[Under {
            heading: "Persistence",
            claims: &["lambda:UpdateFunctionCode20150331v2 ×1"],
        }],
    },
    Row {
        key: "AKIA3SBEM4QSKES6Z5F9",
        file: "aws.persistence.rolesanywhere-create-trust-anchor",
        expected: &[Under {
            heading: "Persistence",
            claims: &["rolesanywhere:CreateTrustAnchor ×1", "rolesanywhere:CreateProfile ×1"],
        }],
    },
    Row {
        key: "AKIAV1MIS7NGMDMR83FC",
        file: "aws.privilege-escalation.iam-update-user-login-profile",
        expected: &[Under {
            heading: "Privilege escalation",
            claims: &["iam:UpdateLoginProfile ×1"],
        }],
    },
];

/// Calls of one operation, counted from the JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    count: usize,
    failed: usize,
    denied: usize,
}

/// What the corpus records for one access key, counted from the JSON.
#[derive(Debug, Default)]
struct KeyCalls {
    /// Technique files that contain calls signed with the key.
    files: BTreeSet<String>,
    /// Calls by `service:Operation`.
    calls: BTreeMap<String, Tally>,
    sources: BTreeMap<String, usize>,
    user_agents: BTreeMap<String, usize>,
    regions: BTreeMap<String, usize>,
    /// Temporary keys that the key's successful calls returned.
    minted: BTreeSet<String>,
}

impl KeyCalls {
    fn total(&self) -> usize {
        self.calls.values().map(|t| t.count).sum()
    }
}

/// Error codes of calls denied for lack of permission, as they appear in this corpus.
const DENIED_CODES: &[&str] = &["AccessDenied", "AccessDeniedException", "Client.UnauthorizedOperation"];

fn stratus_folder() -> Option<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/cloudtrail/stratus");
    if folder.is_dir() {
        return Some(folder);
    }
    println!("skipping: Stratus corpus folder {} is absent", folder.display());
    None
}

fn text<'a>(record: &'a Value, pointer: &str) -> Option<&'a str> {
    record.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Reads every technique file as a JSON array of records and counts each key's calls.
fn count_calls(folder: &Path) -> BTreeMap<String, KeyCalls> {
    let mut keys: BTreeMap<String, KeyCalls> = BTreeMap::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", folder.display()))
        .map(|entry| entry.expect("readable folder entry").path())
        .collect();
    paths.sort();

    for path in paths {
        let technique = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 file name").to_string();
        let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        let records: Vec<Value> = serde_json::from_slice(&bytes)
            .unwrap_or_else(|error| panic!("{} is not a JSON array: {error}", path.display()));
        for record in &records {
            let Some(key) = text(record, "/userIdentity/accessKeyId") else { continue };
            let entry = keys.entry(key.to_string()).or_default();
            entry.files.insert(technique.clone());

            let source = text(record, "/eventSource").expect("eventSource");
            let service = source.strip_suffix(".amazonaws.com").unwrap_or(source);
            let call = format!("{service}:{}", text(record, "/eventName").expect("eventName"));
            let error = text(record, "/errorCode");
            let tally = entry.calls.entry(call).or_default();
            tally.count += 1;
            tally.failed += usize::from(error.is_some());
            tally.denied += usize::from(error.is_some_and(|code| DENIED_CODES.contains(&code)));

            if let Some(ip) = text(record, "/sourceIPAddress") {
                *entry.sources.entry(ip.to_string()).or_default() += 1;
            }
            if let Some(agent) = text(record, "/userAgent") {
                *entry.user_agents.entry(agent.to_string()).or_default() += 1;
            }
            if let Some(region) = text(record, "/awsRegion") {
                *entry.regions.entry(region.to_string()).or_default() += 1;
            }
            if error.is_none()
                && let Some(minted) = text(record, "/responseElements/credentials/accessKeyId")
            {
                entry.minted.insert(minted.to_string());
            }
        }
    }
    keys
}

async fn investigate(evidence: &Arc<dyn Evidence>, key: &str) -> Outcome {
    let key = key.parse().unwrap_or_else(|error| panic!("{key} does not parse as a key ID: {error}"));
    playbook::run_to_end(
        Investigation::new(key, Origin::Cli),
        Arc::clone(evidence),
        Arc::new(Geo::none()),
        PlaybookConfig::default(),
        |_| {},
    )
    .await
}

fn activity_of(outcome: &Outcome) -> Option<&ActivityFacts> {
    outcome.reports.iter().find_map(|report| match &report.data {
        StepData::Activity(facts) => Some(facts),
        _ => None,
    })
}

/// Returns what the activity step and the diagnosis reported, for a failure message.
fn describe(outcome: &Outcome) -> String {
    let mut lines = Vec::new();
    if let Some(report) = outcome.reports.iter().find(|r| r.step == StepId::Activity) {
        lines.push(format!("  activity ({}): {}", report.status.label(), report.summary));
    }
    if let Some(activity) = activity_of(outcome) {
        for call in &activity.calls {
            lines.push(format!(
                "    call {} ×{} ({} failed, {} denied)",
                call.call, call.count, call.errors, call.denied
            ));
        }
        for source in &activity.sources {
            lines.push(format!("    source {} ×{}", source.source, source.count));
        }
        for agent in &activity.user_agents {
            lines.push(format!("    user agent {} ×{}", agent.value, agent.count));
        }
        for call in &activity.session_calls {
            lines.push(format!("    session call {} by {:?}", call.call, call.key_id));
        }
    }
    lines.push(format!("  diagnosis: {}", outcome.diagnosis.summary));
    for section in &outcome.diagnosis.sections {
        lines.push(format!("    [{}]", section.heading));
        for claim in &section.claims {
            lines.push(format!("      - {}", claim.text));
        }
    }
    lines.join("\n")
}

/// Returns true when `claim` is `expected`, or is `expected` followed by a target list.
fn claim_matches(claim: &str, expected: &str) -> bool {
    claim == expected || claim.strip_prefix(expected).is_some_and(|rest| rest.starts_with(": "))
}

/// Checks that the activity step lists exactly the key's own calls, sources, user agents
/// and regions, and only its minted sessions' calls as session calls.
fn check_activity(row: &Row, counted: &BTreeMap<String, KeyCalls>, outcome: &Outcome, failures: &mut Vec<String>) {
    let expected = &counted[row.key];
    let Some(activity) = activity_of(outcome) else {
        failures.push("the activity step returned no activity data".to_string());
        return;
    };

    let calls: BTreeMap<String, Tally> = activity
        .calls
        .iter()
        .map(|c| {
            let tally = Tally {
                count: c.count,
                failed: c.errors,
                denied: c.denied,
            };
            (c.call.clone(), tally)
        })
        .collect();
    if calls != expected.calls {
        failures.push(format!("calls: expected {:?}, got {calls:?}", expected.calls));
    }
    if activity.total_calls != expected.total() {
        failures.push(format!("total calls: expected {}, got {}", expected.total(), activity.total_calls));
    }

    let sources: BTreeMap<String, usize> = activity.sources.iter().map(|s| (s.source.clone(), s.count)).collect();
    if sources != expected.sources {
        failures.push(format!("source IPs: expected {:?}, got {sources:?}", expected.sources));
    }
    let agents: BTreeMap<String, usize> = activity.user_agents.iter().map(|a| (a.value.clone(), a.count)).collect();
    if agents != expected.user_agents {
        failures.push(format!("user agents: expected {:?}, got {agents:?}", expected.user_agents));
    }
    let regions: BTreeMap<String, usize> = activity.regions.iter().map(|r| (r.value.clone(), r.count)).collect();
    if regions != expected.regions {
        failures.push(format!("regions: expected {:?}, got {regions:?}", expected.regions));
    }

    let foreign: Vec<String> = activity
        .timeline
        .iter()
        .filter(|brief| brief.key_id.as_deref() != Some(row.key))
        .map(|brief| format!("{} by {:?}", brief.call, brief.key_id))
        .collect();
    if !foreign.is_empty() {
        failures.push(format!("timeline holds calls of other keys: {foreign:?}"));
    }
    if activity.timeline.len() != expected.total() {
        failures.push(format!(
            "timeline: expected {} calls, got {}",
            expected.total(),
            activity.timeline.len()
        ));
    }

    let minted: BTreeSet<String> = activity.minted_sessions.iter().map(|m| m.key_id.clone()).collect();
    if minted != expected.minted {
        failures.push(format!("minted sessions: expected {:?}, got {minted:?}", expected.minted));
    }
    let expected_session_calls: usize = expected
        .minted
        .iter()
        .filter_map(|key| counted.get(key))
        .map(KeyCalls::total)
        .sum();
    if activity.session_calls.len() != expected_session_calls {
        failures.push(format!(
            "session calls: expected {expected_session_calls}, got {}",
            activity.session_calls.len()
        ));
    }
    let unrelated: Vec<String> = activity
        .session_calls
        .iter()
        .filter(|brief| !brief.key_id.as_ref().is_some_and(|key| expected.minted.contains(key)))
        .map(|brief| format!("{} by {:?}", brief.call, brief.key_id))
        .collect();
    if !unrelated.is_empty() {
        failures.push(format!("session calls not made with a session of the key: {unrelated:?}"));
    }
}

/// Checks that each expected claim appears, once per entry, under its heading.
fn check_diagnosis(row: &Row, diagnosis: &Diagnosis, failures: &mut Vec<String>) {
    for under in row.expected {
        let Some(section) = diagnosis.sections.iter().find(|s| s.heading == under.heading) else {
            failures.push(format!("no diagnosis section {:?}", under.heading));
            continue;
        };
        let mut used = vec![false; section.claims.len()];
        for expected in under.claims {
            let found = section
                .claims
                .iter()
                .enumerate()
                .position(|(index, claim)| !used[index] && claim_matches(&claim.text, expected));
            match found {
                Some(index) => used[index] = true,
                None => failures.push(format!("{:?} does not claim {expected:?}", under.heading)),
            }
        }
    }
}

#[tokio::test]
async fn stratus_keys_diagnosed_by_technique() {
    let Some(folder) = stratus_folder() else { return };
    let counted = count_calls(&folder);

    let listed: BTreeSet<&str> = ROWS.iter().map(|row| row.key).collect();
    let found: BTreeSet<&str> = counted.keys().map(String::as_str).collect();
    assert_eq!(listed.len(), ROWS.len(), "a key has two rows in the table");
    assert_eq!(listed, found, "the table must have one row per key in {}", folder.display());

    let snapshot = Snapshot::open(&folder).unwrap_or_else(|error| panic!("{}: {error}", folder.display()));
    let evidence: Arc<dyn Evidence> = Arc::new(snapshot);

    let mut report = Vec::new();
    for row in ROWS {
        let files: Vec<&str> = counted[row.key].files.iter().map(String::as_str).collect();
        let mut failures = Vec::new();
        if files != [row.file] {
            failures.push(format!("the key's calls are in {files:?}, not only in {}", row.file));
        }
        let outcome = investigate(&evidence, row.key).await;
        check_activity(row, &counted, &outcome, &mut failures);
        check_diagnosis(row, &outcome.diagnosis, &mut failures);
        if failures.is_empty() {
            continue;
        }
        report.push(format!(
            "{} ({}):\n  - {}\n{}",
            row.key,
            row.file,
            failures.join("\n  - "),
            describe(&outcome)
        ));
    }
    assert!(
        report.is_empty(),
        "ran `investigate KEY` on snapshot {} for {} keys; {} failed:\n\n{}",
        folder.display(),
        ROWS.len(),
        report.len(),
        report.join("\n\n")
    );
}
