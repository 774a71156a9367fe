//! `docs/configuration.md` must equal what `keycheck config-reference` prints, which is
//! generated from the doc comments of the configuration structs. A doc comment or a field
//! changed without regenerating the file fails here, with the first line that differs.

use std::path::PathBuf;

const FIX: &str = "cargo run -p keycheck -- config-reference > docs/configuration.md";

#[test]
fn committed_reference_matches_generated() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}. Create it with `{FIX}`", path.display()));
    let generated = keycheck_bot::config_reference::markdown();
    if committed == generated {
        return;
    }

    let committed_lines: Vec<&str> = committed.lines().collect();
    let generated_lines: Vec<&str> = generated.lines().collect();
    let first = (0..committed_lines.len().max(generated_lines.len()))
        .find(|&i| committed_lines.get(i) != generated_lines.get(i))
        .unwrap_or(0);
    panic!(
        "docs/configuration.md is out of date: regenerate it with `{FIX}`.\n\
         First difference at line {}:\n  committed: {:?}\n  generated: {:?}",
        first + 1,
        committed_lines.get(first).copied().unwrap_or("<end of file>"),
        generated_lines.get(first).copied().unwrap_or("<end of file>"),
    );
}

#[test]
fn reference_covers_every_table() {
    let reference = keycheck_bot::config_reference::markdown();
    for heading in [
        "## `[aws]`",
        "## `[aws.accounts.\"<name>\"]`",
        "## `[slack]`",
        "## `[slack.approvals]`",
        "## `[discord]`",
        "## `[discord.approvals]`",
        "## `[metrics]`",
        "## `[store]`",
        "## `[playbook]`",
    ] {
        assert!(reference.contains(heading), "no {heading} in:\n{reference}");
    }
    for key in ["### `metrics.listen`", "### `slack.listen`", "### `aws.call_timeout`", "### `templates`"] {
        assert!(reference.contains(key), "no {key} in:\n{reference}");
    }
    assert!(reference.contains("String, default `\"10s\"`."), "durations show as text:\n{reference}");
}
