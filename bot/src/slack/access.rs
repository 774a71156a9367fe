//! Who may run `/keycheck` and where: the channels, users and user groups of `[slack]`.
//!
//! Channel and user lists are checked from the configuration alone. User groups need
//! `usergroups.users.list`, and [`GroupMembers`] caches members for [`GROUP_CACHE_TTL`],
//! so that a command or a button click does not wait on Slack every time.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::api::{ApiError, SlackApi};
use crate::config::SlackSettings;

/// How long the members of a user group are trusted before they are read again.
pub const GROUP_CACHE_TTL: Duration = Duration::from_secs(5 * 60);

/// How long group members are trusted for a containment click: not at all, so that a
/// person removed from an approver group cannot approve one more action. Clicks are rare,
/// so one Slack call per click and group costs little.
pub const APPROVAL_GROUP_CACHE_TTL: Duration = Duration::ZERO;

/// The decision that needs no Slack call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// The user may run the command here.
    Allowed,
    /// The user may not. The text gives the reason and where to go instead.
    Refused(String),
    /// The user is in no allowed list, but may be in an allowed user group.
    CheckGroups,
}

/// The access rules of the bot.
#[derive(Debug)]
pub struct AccessPolicy {
    channels: HashSet<String>,
    users: HashSet<String>,
    groups: Vec<String>,
    members: GroupMembers,
}

/// The members of Slack user groups, read with `usergroups.users.list` and cached for a
/// time to live, [`GROUP_CACHE_TTL`] unless created with another.
#[derive(Debug)]
pub struct GroupMembers {
    members: Mutex<HashMap<String, (HashSet<String>, Instant)>>,
    ttl: Duration,
}

impl Default for GroupMembers {
    fn default() -> Self {
        GroupMembers::with_ttl(GROUP_CACHE_TTL)
    }
}

impl GroupMembers {
    /// Creates an empty cache with the time to live [`GROUP_CACHE_TTL`].
    pub fn new() -> GroupMembers {
        GroupMembers::default()
    }

    /// Creates an empty cache whose entries are trusted for `ttl`. With a zero `ttl`,
    /// every lookup reads Slack.
    pub fn with_ttl(ttl: Duration) -> GroupMembers {
        GroupMembers {
            members: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// Returns whether `user` is a member of user group `group`, reading the members from
    /// Slack unless they are cached.
    pub async fn contains(&self, api: &SlackApi, group: &str, user: &str) -> Result<bool, ApiError> {
        let cached = {
            let members = self.members.lock().expect("group cache lock is never poisoned");
            members
                .get(group)
                .filter(|(_, fetched)| fetched.elapsed() < self.ttl)
                .map(|(users, _)| users.contains(user))
        };
        if let Some(is_member) = cached {
            return Ok(is_member);
        }
        let users: HashSet<String> = api.user_group_members(group).await?.into_iter().collect();
        let is_member = users.contains(user);
        let mut members = self.members.lock().expect("group cache lock is never poisoned");
        members.insert(group.to_string(), (users, Instant::now()));
        Ok(is_member)
    }

    /// Returns the user groups among `ids` that `user` is a member of. Entries that are
    /// not user group IDs (`S…`), such as user IDs, are skipped without a Slack call.
    pub async fn groups_of(&self, api: &SlackApi, user: &str, ids: &[String]) -> Result<Vec<String>, ApiError> {
        let mut groups = Vec::new();
        for id in ids.iter().filter(|id| id.starts_with('S')) {
            if !groups.contains(id) && self.contains(api, id, user).await? {
                groups.push(id.clone());
            }
        }
        Ok(groups)
    }
}

impl AccessPolicy {
    /// Creates the policy of `settings`.
    pub fn new(settings: &SlackSettings) -> AccessPolicy {
        AccessPolicy {
            channels: settings.allowed_channels.iter().cloned().collect(),
            users: settings.allowed_users.iter().cloned().collect(),
            groups: settings.allowed_user_groups.clone(),
            members: GroupMembers::new(),
        }
    }

    /// Decides from the configuration alone whether `user` may run `/keycheck` in `channel`.
    pub fn check(&self, user: &str, channel: &str) -> Access {
        if !self.channels.is_empty() && !self.channels.contains(channel) {
            let mut allowed: Vec<&String> = self.channels.iter().collect();
            allowed.sort();
            let list: Vec<String> = allowed.iter().map(|id| format!("<#{id}>")).collect();
            return Access::Refused(format!("/keycheck is not enabled in this channel; run it in {}", list.join(", ")));
        }
        let everyone = self.users.is_empty() && self.groups.is_empty();
        if everyone || self.users.contains(user) {
            return Access::Allowed;
        }
        if self.groups.is_empty() {
            return Access::Refused(refusal());
        }
        Access::CheckGroups
    }

    /// Returns whether `user` is a member of an allowed user group, reading members that
    /// are not cached from Slack.
    pub async fn in_allowed_group(&self, api: &SlackApi, user: &str) -> Result<bool, ApiError> {
        for group in &self.groups {
            if self.members.contains(api, group, user).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Returns the text of a refusal for a user in no allowed list or group.
pub fn refusal() -> String {
    "you are not allowed to run /keycheck: ask your Slack admin to add you to keycheck's allowed users or user groups".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> AccessPolicy {
        let config: crate::config::Config = text.parse().unwrap();
        AccessPolicy::new(&config.slack)
    }

    #[test]
    fn empty_lists_allow_everyone_everywhere() {
        assert_eq!(policy("").check("U1", "C1"), Access::Allowed);
    }

    #[test]
    fn channel_list_refuses_other_channels_and_names_allowed() {
        let policy = policy("[slack]\nallowed_channels = [\"C0SEC\"]\n");
        assert_eq!(policy.check("U1", "C0SEC"), Access::Allowed);
        let Access::Refused(text) = policy.check("U1", "C0RANDOM") else { panic!("allowed") };
        assert!(text.contains("<#C0SEC>"), "{text}");
    }

    #[test]
    fn user_list_refuses_others() {
        let policy = policy("[slack]\nallowed_users = [\"U0ALICE\"]\n");
        assert_eq!(policy.check("U0ALICE", "C1"), Access::Allowed);
        assert!(matches!(policy.check("U0MALLORY", "C1"), Access::Refused(_)));
    }

    #[test]
    fn groups_need_a_check() {
        let policy = policy("[slack]\nallowed_users = [\"U0ALICE\"]\nallowed_user_groups = [\"S0SEC\"]\n");
        assert_eq!(policy.check("U0ALICE", "C1"), Access::Allowed);
        assert_eq!(policy.check("U0BOB", "C1"), Access::CheckGroups);
    }
}
