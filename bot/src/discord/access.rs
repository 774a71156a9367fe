//! The access rules of `/keycheck`: the channels, users and roles of `[discord]` that may
//! run it.
//!
//! An interaction carries the member's role IDs and the channel's parent, so every check
//! runs on the configuration and the interaction alone, with no call to Discord.

use std::collections::HashSet;

use crate::config::DiscordSettings;

use super::view::channel_mention;

/// The user who ran a command, and the channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invoker {
    /// The guild, or `None` in a direct message.
    pub guild_id: Option<u64>,
    /// The channel or thread the command was run in.
    pub channel_id: u64,
    /// The channel a thread belongs to, when the command was run in a thread.
    pub parent_channel_id: Option<u64>,
    /// The user's ID.
    pub user_id: u64,
    /// The member's role IDs in the guild.
    pub roles: Vec<u64>,
}

/// The access rules of the bot.
#[derive(Debug, Default)]
pub struct AccessPolicy {
    channels: HashSet<u64>,
    users: HashSet<u64>,
    roles: HashSet<u64>,
}

/// A check of `/keycheck`. It returns `None` when the user passes, or else the reason
/// shown to the user.
pub type Check = fn(&AccessPolicy, &Invoker) -> Option<String>;

/// The checks `/keycheck` runs, in this order, before it defers its response.
pub const CHECKS: [(&str, Check); 3] = [
    ("in a guild", in_guild),
    ("in an allowed channel", in_allowed_channel),
    ("by an allowed user or role", by_allowed_user),
];

impl AccessPolicy {
    /// Creates the policy of `settings`, whose IDs were validated on load.
    pub fn new(settings: &DiscordSettings) -> AccessPolicy {
        let ids = |list: &[String]| list.iter().filter_map(|id| id.parse().ok()).collect();
        AccessPolicy {
            channels: ids(&settings.allowed_channels),
            users: ids(&settings.allowed_users),
            roles: ids(&settings.allowed_roles),
        }
    }

    /// Runs [`CHECKS`] and returns the first rejection, with the check's name for the log.
    pub fn refusal(&self, invoker: &Invoker) -> Option<(&'static str, String)> {
        CHECKS
            .iter()
            .find_map(|(name, check)| check(self, invoker).map(|refusal| (*name, refusal)))
    }
}

fn in_guild(_policy: &AccessPolicy, invoker: &Invoker) -> Option<String> {
    invoker
        .guild_id
        .is_none()
        .then(|| "/keycheck runs in a server channel, not in direct messages: run it where your team can see the thread".to_string())
}

/// Checks the channel. A thread counts as its parent channel, so that `/keycheck` runs in
/// the threads of an allowed channel.
fn in_allowed_channel(policy: &AccessPolicy, invoker: &Invoker) -> Option<String> {
    if policy.channels.is_empty() {
        return None;
    }
    let allowed = policy.channels.contains(&invoker.channel_id)
        || invoker.parent_channel_id.is_some_and(|parent| policy.channels.contains(&parent));
    if allowed {
        return None;
    }
    let mut channels: Vec<u64> = policy.channels.iter().copied().collect();
    channels.sort_unstable();
    let list: Vec<String> = channels.into_iter().map(channel_mention).collect();
    Some(format!("/keycheck is not enabled in this channel. Run it in {}", list.join(", ")))
}

fn by_allowed_user(policy: &AccessPolicy, invoker: &Invoker) -> Option<String> {
    let everyone = policy.users.is_empty() && policy.roles.is_empty();
    let allowed = everyone
        || policy.users.contains(&invoker.user_id)
        || invoker.roles.iter().any(|role| policy.roles.contains(role));
    (!allowed).then(|| {
        "you are not allowed to run /keycheck: ask your Discord admin to add you or one of your roles to keycheck's allowed users or roles".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANNEL: u64 = 200_000_000_000_000_001;
    const THREAD: u64 = 200_000_000_000_000_009;

    fn policy(text: &str) -> AccessPolicy {
        let config: crate::config::Config = text.parse().unwrap();
        AccessPolicy::new(&config.discord)
    }

    fn invoker(user: u64, roles: &[u64]) -> Invoker {
        Invoker {
            guild_id: Some(1),
            channel_id: CHANNEL,
            parent_channel_id: None,
            user_id: user,
            roles: roles.to_vec(),
        }
    }

    #[test]
    fn empty_lists_allow_everyone_in_a_guild() {
        assert_eq!(policy("").refusal(&invoker(5, &[])), None);
        let direct = Invoker { guild_id: None, ..invoker(5, &[]) };
        assert_eq!(policy("").refusal(&direct).map(|(name, _)| name), Some("in a guild"));
    }

    #[test]
    fn channel_list_allows_its_threads() {
        let policy = policy(&format!("[discord]\nallowed_channels = [\"{CHANNEL}\"]\n"));
        let in_thread = Invoker {
            channel_id: THREAD,
            parent_channel_id: Some(CHANNEL),
            ..invoker(5, &[])
        };
        assert_eq!(policy.refusal(&in_thread), None);
        let elsewhere = Invoker { channel_id: THREAD, ..invoker(5, &[]) };
        let (_, text) = policy.refusal(&elsewhere).expect("rejected");
        assert!(text.contains(&format!("<#{CHANNEL}>")), "{text}");
    }

    #[test]
    fn user_or_role_needed_when_listed() {
        let policy = policy("[discord]\nallowed_users = [\"300000000000000001\"]\nallowed_roles = [\"400000000000000001\"]\n");
        assert_eq!(policy.refusal(&invoker(300_000_000_000_000_001, &[])), None);
        assert_eq!(policy.refusal(&invoker(7, &[400_000_000_000_000_001])), None);
        let (name, _) = policy.refusal(&invoker(7, &[9])).expect("rejected");
        assert_eq!(name, "by an allowed user or role");
    }
}
