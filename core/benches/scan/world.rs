//! The invented organisation whose trail the benchmark corpus records: its accounts, IAM
//! users with their access keys, roles whose sessions get a new temporary key every hour,
//! and the one access key the benchmark searches for.
//!
//! All names, account IDs and keys are made up from the seed. Addresses come from the
//! documentation ranges of RFC 5737 and RFC 3849.

use super::random::{BASE32, HEX_LOWER, Rng};

/// The regions every account's trail logs, each with its share of the traffic.
pub const REGIONS: &[(&str, f64)] = &[("us-east-1", 1.3), ("eu-west-1", 0.7)];

/// The AWS Organizations ID in the S3 key prefix of an organisation trail.
pub const ORGANIZATION_ID: &str = "o-k3ybench01";

const ACCOUNT_IDS: &[(&str, f64)] = &[
    ("210987654321", 1.6),
    ("345678901234", 0.9),
    ("456789012345", 0.5),
];

const USERS_PER_ACCOUNT: usize = 40;

const FIRST_NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yasmin",
];

const SERVICE_USERS: &[&str] = &[
    "backup-agent",
    "datadog-integration",
    "legacy-etl",
    "s3-uploader",
    "grafana-reader",
    "terraform-state",
];

/// The user that owns the searched key, a CI deployment user.
const TARGET_USER: &str = "ci-deploy";

/// The purpose of a role, which decides its session names and calls.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// An EC2 instance profile. Sessions are named after the instance.
    Instance,
    /// A Lambda execution role. Sessions are named after the function.
    Lambda,
    /// An IAM Identity Center permission set used by people.
    SingleSignOn,
    /// A CI pipeline assuming the role through OIDC.
    Pipeline,
    /// A security tool that calls `GetAccessKeyLastUsed` for every key, which puts other
    /// users' key IDs, the searched one included, into `requestParameters`.
    KeyAudit,
}

const ROLES: &[(&str, RoleKind, u32)] = &[
    ("web-frontend-ec2", RoleKind::Instance, 30),
    ("batch-worker-ec2", RoleKind::Instance, 20),
    ("orders-processor", RoleKind::Lambda, 25),
    ("thumbnail-resizer", RoleKind::Lambda, 12),
    ("invoice-mailer", RoleKind::Lambda, 6),
    (
        "aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_5c1f0e3b9a7d2e44",
        RoleKind::SingleSignOn,
        8,
    ),
    (
        "aws-reserved/sso.amazonaws.com/AWSReservedSSO_ReadOnlyAccess_a83b27c4d05f6e19",
        RoleKind::SingleSignOn,
        10,
    ),
    ("github-actions-deploy", RoleKind::Pipeline, 8),
    ("security-key-audit", RoleKind::KeyAudit, 2),
];

const PEOPLE_EMAILS: &[&str] = &[
    "alice@example.com",
    "bob@example.com",
    "carol@example.net",
    "dave@example.org",
    "erin@example.com",
];

/// User agents as CloudTrail records them, one family per kind of caller.
pub const AGENTS_CLI: &[&str] = &[
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.1.0-18-amd64 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#debian.12 md/prompt#off md/command#s3.cp",
    "aws-cli/2.13.4 Python/3.11.4 Darwin/23.1.0 exe/x86_64 prompt/off command/sts.get-caller-identity",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.15.0-1056-aws md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
];
pub const AGENTS_SDK: &[&str] = &[
    "aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/s3#1.53.0",
    "aws-sdk-java/2.25.16 Linux/5.10.210-201.852.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
    "aws-sdk-js/3.540.0 ua/2.0 os/linux#5.10.210-221.855.amzn2.x86_64 lang/js md/nodejs#20.11.1 api/dynamodb#3.540.0 exec-env/AWS_Lambda_nodejs20.x",
];
pub const AGENTS_TERRAFORM: &[&str] = &[
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0 ua/2.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/sts#1.28.5",
];
pub const AGENTS_CONSOLE: &[&str] = &[
    "AWS Internal",
    "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.660 Linux/5.10.210-179.855.amzn2int.x86_64 OpenJDK_64-Bit_Server_VM/25.402-b08 java/1.8.0_402 vendor/Oracle_Corporation cfg/retry-mode/standard]",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
];
pub const AGENTS_SCANNER: &[&str] = &[
    "python-requests/2.31.0",
    "Boto3/1.26.0 Python/3.8.10 Linux/5.4.0-150-generic Botocore/1.29.0",
];

/// One account of the organisation.
pub struct Account {
    pub id: &'static str,
    /// The account's share of the organisation's traffic.
    pub weight: f64,
    pub users: Vec<User>,
    pub roles: Vec<Role>,
}

/// An IAM user with one or two long-term access keys.
pub struct User {
    pub name: String,
    pub principal_id: String,
    pub access_key_ids: Vec<String>,
    pub source_ips: Vec<String>,
    pub agents: &'static [&'static str],
}

/// An IAM role whose sessions make calls.
pub struct Role {
    /// The role name with its path, as in `role/…` of the ARN.
    pub path_and_name: &'static str,
    pub role_id: String,
    pub kind: RoleKind,
    /// The role's share of its account's session traffic.
    pub weight: u32,
    /// A number unique in the organisation, so sessions of different roles differ.
    pub number: u64,
}

impl Role {
    /// Returns the role name without its path.
    pub fn name(&self) -> &str {
        self.path_and_name
            .rsplit('/')
            .next()
            .unwrap_or(self.path_and_name)
    }
}

/// The organisation, fixed by the seed.
pub struct World {
    pub seed: u64,
    pub accounts: Vec<Account>,
    /// The index of the account of the searched key's owner, who is its first user.
    pub target_account: usize,
    /// Every long-term access key ID, for the key audit's `GetAccessKeyLastUsed` calls.
    pub all_access_key_ids: Vec<String>,
    /// Addresses the searched key is used from after the leak.
    pub attacker_ips: Vec<String>,
}

impl World {
    /// Builds the organisation from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::derive(seed, &[0x0077_6f72_6c64]);
        let mut accounts = Vec::new();
        let mut role_number = 0;
        for &(id, weight) in ACCOUNT_IDS {
            let users = build_users(&mut rng, accounts.is_empty());
            let roles = build_roles(&mut rng, &mut role_number);
            accounts.push(Account {
                id,
                weight,
                users,
                roles,
            });
        }

        let all_access_key_ids = accounts
            .iter()
            .flat_map(|account| &account.users)
            .flat_map(|user| user.access_key_ids.iter().cloned())
            .collect();
        World {
            seed,
            accounts,
            target_account: 0,
            all_access_key_ids,
            attacker_ips: vec!["203.0.113.66".into(), "2001:db8:4f2c::17".into()],
        }
    }

    /// Returns the user that owns the searched key.
    pub fn target_user(&self) -> &User {
        &self.accounts[self.target_account].users[0]
    }

    /// Returns the access key ID the benchmark searches for.
    pub fn target_access_key_id(&self) -> &str {
        &self.target_user().access_key_ids[0]
    }
}

/// Builds an account's IAM users. In the first account, the first user is the owner of
/// the searched key.
fn build_users(rng: &mut Rng, with_target: bool) -> Vec<User> {
    let mut users = Vec::with_capacity(USERS_PER_ACCOUNT);
    if with_target {
        users.push(User {
            name: TARGET_USER.into(),
            principal_id: format!("AIDA{}", rng.chars(BASE32, 17)),
            access_key_ids: vec![format!("AKIA{}", rng.chars(BASE32, 16))],
            source_ips: vec!["192.0.2.10".into(), "192.0.2.11".into()],
            agents: AGENTS_TERRAFORM,
        });
    }
    while users.len() < USERS_PER_ACCOUNT {
        let number = users.len();
        let name = if number < SERVICE_USERS.len() {
            SERVICE_USERS[number].to_string()
        } else {
            format!("{}.{}", rng.pick(FIRST_NAMES), rng.chars(HEX_LOWER, 4))
        };
        let key_count = if rng.chance(0.2) { 2 } else { 1 };
        let agents = if number < SERVICE_USERS.len() {
            AGENTS_SDK
        } else {
            AGENTS_CLI
        };
        users.push(User {
            name,
            principal_id: format!("AIDA{}", rng.chars(BASE32, 17)),
            access_key_ids: (0..key_count)
                .map(|_| format!("AKIA{}", rng.chars(BASE32, 16)))
                .collect(),
            source_ips: vec![format!("203.0.113.{}", 1 + rng.below(60))],
            agents,
        });
    }
    users
}

fn build_roles(rng: &mut Rng, role_number: &mut u64) -> Vec<Role> {
    ROLES
        .iter()
        .map(|&(path_and_name, kind, weight)| {
            *role_number += 1;
            Role {
                path_and_name,
                role_id: format!("AROA{}", rng.chars(BASE32, 17)),
                kind,
                weight,
                number: *role_number,
            }
        })
        .collect()
}

/// One session of a role: the temporary key and the session name, both fixed by the role
/// and the hour, because sessions here last an hour.
pub struct Session {
    pub access_key_id: String,
    pub name: String,
    /// When the session was created, in seconds since the Unix epoch.
    pub created: i64,
    pub source_ip: String,
    pub agents: &'static [&'static str],
}

const SESSION_SECONDS: i64 = 3600;

/// Returns the session of `role` in use at `time` (seconds since the Unix epoch). Roles
/// with many parallel callers (instances, functions) have several sessions an hour, picked
/// by `rng`.
pub fn session_at(world: &World, role: &Role, time: i64, rng: &mut Rng) -> Session {
    let parallel = match role.kind {
        RoleKind::Instance => 6,
        RoleKind::Lambda => 4,
        RoleKind::SingleSignOn => PEOPLE_EMAILS.len() as u64,
        RoleKind::Pipeline | RoleKind::KeyAudit => 1,
    };
    let slot = rng.below(parallel);
    let hour = time.div_euclid(SESSION_SECONDS);
    let mut session_rng = Rng::derive(world.seed, &[role.number, hour as u64, slot]);

    let access_key_id = format!("ASIA{}", session_rng.chars(BASE32, 16));
    let created = hour * SESSION_SECONDS - session_rng.below(300) as i64;
    let (name, agents) = match role.kind {
        RoleKind::Instance => (
            format!("i-0{}", session_rng.chars(HEX_LOWER, 16)),
            AGENTS_SDK,
        ),
        RoleKind::Lambda => (role.name().to_string(), AGENTS_SDK),
        RoleKind::SingleSignOn => (PEOPLE_EMAILS[slot as usize].to_string(), AGENTS_CONSOLE),
        RoleKind::Pipeline => (format!("GitHubActions-{}", hour % 9973), AGENTS_TERRAFORM),
        RoleKind::KeyAudit => ("key-audit".to_string(), AGENTS_SDK),
    };
    let source_ip = if session_rng.chance(0.15) {
        format!("2001:db8:{:x}::{:x}", 0x100 + slot, role.number)
    } else {
        format!("198.51.100.{}", 1 + (role.number * 7 + slot) % 250)
    };
    Session {
        access_key_id,
        name,
        created,
        source_ip,
        agents,
    }
}
