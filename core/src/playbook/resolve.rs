//! Step 0: which account owns the key, is it long-term or temporary, and can keycheck
//! reach that account.

use crate::evidence::{AccountSource, Evidence};
use crate::key::{AccountDecoding, KeyKind};
use crate::playbook::{Investigation, evidence_failure};
use crate::report::{Finding, Status, StepData, StepId, StepReport};

pub(super) async fn run(investigation: &Investigation, evidence: &dyn Evidence) -> StepReport {
    let key = &investigation.key;
    let info = match evidence.resolve_account(key).await {
        Ok(info) => info,
        Err(error) => return evidence_failure(StepId::Resolve, &error),
    };

    let kind = match key.kind() {
        KeyKind::LongTerm => "long-term key (AKIA): valid until deactivated",
        KeyKind::Temporary => "temporary key (ASIA): a session from AWS STS, valid until it expires",
    };
    let mut findings = vec![Finding::new(Status::Ok, kind)];

    match key.decode_account() {
        AccountDecoding::NotBase32 => findings.push(Finding::new(
            Status::Ok,
            "the key ID contains 0, 1, 8 or 9, which AWS never issues (anonymised data?), so the account cannot be decoded from it",
        )),
        AccountDecoding::Decoded { account_id } => {
            if info.account_id.as_deref().is_some_and(|a| a != account_id) && info.source == AccountSource::Sts {
                findings.push(Finding::new(
                    Status::Warning,
                    format!("the key ID decodes to account {account_id}, but STS names another; trusting STS"),
                ));
            }
        }
    }
    if let Some(note) = &info.note {
        findings.push(Finding::new(Status::Warning, note.clone()));
    }

    let (status, summary) = match (&info.account_id, info.credentials_available) {
        (Some(account), true) => (
            Status::Ok,
            format!("account {account} ({}), {}", source_label(info.source), short_kind(key.kind())),
        ),
        (Some(account), false) => (
            Status::Warning,
            format!(
                "account {account} ({}), but keycheck has no role configured for it: add [aws.accounts.\"{account}\"] role_arn = \"…\" to the configuration to investigate live",
                source_label(info.source)
            ),
        ),
        (None, _) => (
            Status::Warning,
            format!("owning account unknown, {}", short_kind(key.kind())),
        ),
    };

    let mut report = StepReport::new(StepId::Resolve, status, summary, StepData::Resolve(info));
    report.findings = findings;
    report
}

fn source_label(source: AccountSource) -> &'static str {
    match source {
        AccountSource::Sts => "from sts:GetAccessKeyInfo",
        AccountSource::KeyDecoding => "decoded from the key ID",
        AccountSource::Snapshot => "from the snapshot's records",
        AccountSource::Unknown => "source unknown",
    }
}

fn short_kind(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::LongTerm => "long-term key",
        KeyKind::Temporary => "temporary key",
    }
}
