//! The Slack app manifest: the scopes, slash command, event subscriptions, interactivity
//! and Socket Mode setting the bot needs. `keycheck slack-manifest` prints it, and
//! `deploy/slack-app-manifest.yaml` is the same text (a test compares them).

/// The bot token scopes, each with the reason keycheck needs it.
pub const BOT_SCOPES: [(&str, &str); 6] = [
    ("commands", "receive /keycheck"),
    ("chat:write", "post the root message, the step replies and the diagnosis, and update the root message"),
    ("chat:write.public", "post in public channels without being invited first"),
    ("channels:history", "read messages of watched public channels for alerts"),
    ("groups:history", "read messages of watched private channels for alerts"),
    ("usergroups:read", "check membership of slack.allowed_user_groups and of the user groups in slack.approvals"),
];

/// Returns the manifest as YAML. With `request_base_url` (such as
/// `https://keycheck.example.com`), the manifest is for the HTTP Events API and names the
/// request URLs; without it, it is for Socket Mode.
pub fn manifest(request_base_url: Option<&str>) -> String {
    let base = request_base_url.map(|url| url.trim_end_matches('/'));
    let mut yaml = String::new();
    yaml.push_str("# Slack app manifest for keycheck, printed by `keycheck slack-manifest`.\n");
    yaml.push_str("# Create the app at https://api.slack.com/apps with \"From an app manifest\".\n");

    yaml.push_str("display_information:\n");
    yaml.push_str("  name: keycheck\n");
    yaml.push_str("  description: Investigate and contain a leaked AWS access key\n");
    yaml.push_str("  background_color: \"#1d3557\"\n");

    yaml.push_str("features:\n");
    yaml.push_str("  bot_user:\n");
    yaml.push_str("    display_name: keycheck\n");
    yaml.push_str("    always_online: true\n");
    yaml.push_str("  slash_commands:\n");
    yaml.push_str("    - command: /keycheck\n");
    yaml.push_str("      description: Investigate an AWS access key ID\n");
    yaml.push_str("      usage_hint: \"AKIA… [--window 7d] | help\"\n");
    yaml.push_str("      should_escape: false\n");
    if let Some(base) = base {
        yaml.push_str(&format!("      url: {base}/slack/commands\n"));
    }

    yaml.push_str("oauth_config:\n");
    yaml.push_str("  scopes:\n");
    yaml.push_str("    bot:\n");
    for (scope, reason) in BOT_SCOPES {
        yaml.push_str(&format!("      - {scope} # {reason}\n"));
    }

    yaml.push_str("settings:\n");
    yaml.push_str("  event_subscriptions:\n");
    if let Some(base) = base {
        yaml.push_str(&format!("    request_url: {base}/slack/events\n"));
    }
    yaml.push_str("    bot_events:\n");
    yaml.push_str("      - message.channels\n");
    yaml.push_str("      - message.groups\n");
    yaml.push_str("  interactivity:\n");
    yaml.push_str("    is_enabled: true\n");
    if let Some(base) = base {
        yaml.push_str(&format!("    request_url: {base}/slack/interactions\n"));
    }
    yaml.push_str("  org_deploy_enabled: false\n");
    yaml.push_str(&format!("  socket_mode_enabled: {}\n", base.is_none()));
    yaml.push_str("  token_rotation_enabled: false\n");
    yaml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_manifest_matches_output() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/slack-app-manifest.yaml");
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(
            committed,
            manifest(None),
            "{} differs from `keycheck slack-manifest`: regenerate it with `keycheck slack-manifest > deploy/slack-app-manifest.yaml`",
            path.display()
        );
    }

    #[test]
    fn http_manifest_names_request_urls() {
        let yaml = manifest(Some("https://keycheck.example.com/"));
        assert!(yaml.contains("url: https://keycheck.example.com/slack/commands"), "{yaml}");
        assert!(yaml.contains("request_url: https://keycheck.example.com/slack/events"), "{yaml}");
        assert!(yaml.contains("request_url: https://keycheck.example.com/slack/interactions"), "{yaml}");
        assert!(yaml.contains("socket_mode_enabled: false"), "{yaml}");
    }

    #[test]
    fn socket_manifest_has_scopes_and_events() {
        let yaml = manifest(None);
        for expected in [
            "- commands",
            "- chat:write ",
            "- channels:history",
            "- groups:history",
            "- usergroups:read",
            "- message.channels",
            "- message.groups",
            "socket_mode_enabled: true",
            "command: /keycheck",
        ] {
            assert!(yaml.contains(expected), "{expected} missing:\n{yaml}");
        }
        assert!(!yaml.contains("request_url"), "{yaml}");
    }
}
