//! Step 0 live: the account that owns the key, from `sts:GetAccessKeyInfo` with the key
//! ID's offline decoding as the fallback, and the credentials that reach that account.

use tracing::{info, warn};

use super::LiveEvidence;
use super::error::aws_error;
use super::operations::STS_GET_ACCESS_KEY_INFO;
use crate::evidence::{AccountInfo, AccountSource, EvidenceError};
use crate::key::{AccessKeyId, AccountDecoding};

pub(super) async fn resolve(
    live: &LiveEvidence,
    key: &AccessKeyId,
) -> Result<AccountInfo, EvidenceError> {
    let decoded = match key.decode_account() {
        AccountDecoding::Decoded { account_id } => Some(account_id),
        AccountDecoding::NotBase32 => None,
    };

    // The two calls are independent, so they run concurrently.
    let (owning_account, caller) = tokio::join!(account_from_sts(live, key), live.access.caller());

    let mut notes = Vec::new();
    let (account_id, source) = match owning_account {
        Ok(account) => (Some(account), AccountSource::Sts),
        Err(error) => {
            warn!(key_id = %key, %error, "sts:GetAccessKeyInfo failed, decoding the key ID instead");
            match &decoded {
                Some(account) => {
                    notes.push(format!(
                        "{error}; the account is decoded from the key ID instead"
                    ));
                    (Some(account.clone()), AccountSource::KeyDecoding)
                }
                None => {
                    notes.push(error.to_string());
                    (None, AccountSource::Unknown)
                }
            }
        }
    };

    // keycheck's own identity is the base of every later call: without it, step 0 fails.
    let caller = caller?;
    let target = account_id.clone().unwrap_or_else(|| {
        notes.push(format!(
            "the owning account is unknown, so keycheck reads its own account {}",
            caller.account
        ));
        caller.account.clone()
    });
    *live.target.lock().unwrap_or_else(|p| p.into_inner()) = Some(target.clone());

    let (credentials_available, access) = match live.access.account(&target).await {
        Ok(credentials) => (true, Some(credentials.description)),
        Err(EvidenceError::NotAvailable { hint, .. }) => {
            notes.push(hint);
            (false, None)
        }
        Err(error) => {
            notes.push(format!("keycheck cannot reach account {target}: {error}"));
            (false, None)
        }
    };
    info!(key_id = %key, account_id = %target, credentials_available, "account resolved");

    Ok(AccountInfo {
        account_id,
        source,
        decoded_account_id: decoded,
        credentials_available,
        access,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    })
}

/// Asks STS which account owns the key. Any credentials may ask, about any key.
async fn account_from_sts(live: &LiveEvidence, key: &AccessKeyId) -> Result<String, EvidenceError> {
    let clients = live.access.base_clients().await?;
    let output = clients
        .sts()
        .get_access_key_info()
        .access_key_id(key.as_str())
        .send()
        .await
        .map_err(|error| aws_error(&STS_GET_ACCESS_KEY_INFO, key.as_str(), &error))?;
    output.account.filter(|a| !a.is_empty()).ok_or_else(|| {
        super::error::failure(
            &STS_GET_ACCESS_KEY_INFO,
            key.as_str(),
            crate::evidence::AwsErrorKind::Other,
            "the response named no account",
        )
    })
}
