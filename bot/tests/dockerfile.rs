//! Checks deploy/Dockerfile by reading it, since no Docker engine runs the tests. It must
//! build the same binary as the README and CI: the same package, with the same
//! `--release` and `--locked` choice. The image must run as a non-root user and contain no
//! secret, and the build context must include every workspace member.

use std::path::PathBuf;

/// What a cargo command builds, as far as it decides which binary comes out.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Build {
    package: Option<String>,
    release: bool,
    locked: bool,
}

/// A cargo command found in a file, with where it was found.
#[derive(Debug)]
struct Found {
    source: String,
    command: String,
    build: Build,
}

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = repository_root().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Returns the package name in `<directory>/Cargo.toml`, for `cargo install --path`.
fn package_at(directory: &str) -> Option<String> {
    let manifest =
        std::fs::read_to_string(repository_root().join(directory).join("Cargo.toml")).ok()?;
    let value: toml::Table = toml::from_str(&manifest).ok()?;
    Some(value.get("package")?.get("name")?.as_str()?.to_string())
}

/// Parses a `cargo build`, `cargo install` or `cargo chef cook` command line. Returns
/// `None` for any other command.
fn parse_cargo(command: &str) -> Option<Build> {
    let tokens: Vec<&str> = command
        .split_whitespace()
        .map(|token| token.trim_matches(|c| c == '\'' || c == '"'))
        .take_while(|token| *token != "--")
        .collect();
    let (mut release, flags) = match tokens.as_slice() {
        ["cargo", "build", flags @ ..] => (false, flags),
        // `cargo install` builds with the release profile unless given --debug.
        ["cargo", "install", flags @ ..] => (true, flags),
        ["cargo", "chef", "cook", flags @ ..] => (false, flags),
        _ => return None,
    };

    let mut package = None;
    let mut locked = false;
    let mut index = 0;
    while index < flags.len() {
        let flag = flags[index];
        let next = flags.get(index + 1).map(|value| value.to_string());
        match flag {
            "-p" | "--package" => {
                package = next;
                index += 1;
            }
            "--path" => {
                package = next.as_deref().and_then(package_at);
                index += 1;
            }
            "--profile" => {
                release = next.as_deref() == Some("release");
                index += 1;
            }
            "-r" | "--release" => release = true,
            "--debug" => release = false,
            "--locked" | "--frozen" => locked = true,
            _ => {
                if let Some(name) = flag.strip_prefix("--package=") {
                    package = Some(name.to_string());
                } else if let Some(profile) = flag.strip_prefix("--profile=") {
                    release = profile == "release";
                }
            }
        }
        index += 1;
    }
    Some(Build {
        package,
        release,
        locked,
    })
}

/// Joins lines ending in a backslash with the next, as a shell does, and returns each
/// logical line with the number of its first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (index, line) in text.lines().enumerate() {
        if current.is_empty() {
            start = index + 1;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                lines.push((start, std::mem::take(&mut current)));
            }
        }
    }
    if !current.is_empty() {
        lines.push((start, current));
    }
    lines
}

/// Finds the cargo build commands of shell text: every `&&`- or `;`-separated command
/// of every logical line, after a `RUN` or a `$ ` prompt if present.
fn find_builds(source: &str, text: &str, first_line: usize) -> Vec<Found> {
    let mut found = Vec::new();
    for (number, line) in logical_lines(text) {
        let line = line.trim();
        let line = line.strip_prefix("RUN ").unwrap_or(line);
        let line = line.strip_prefix("$ ").unwrap_or(line);
        for command in line.split("&&").flat_map(|part| part.split(';')) {
            let command = command.trim();
            if let Some(build) = parse_cargo(command) {
                found.push(Found {
                    source: format!("{source}:{}", first_line + number - 1),
                    command: command.to_string(),
                    build,
                });
            }
        }
    }
    found
}

/// Returns the text of the README's shell code blocks, each with the line number where
/// its text starts. Code blocks of other languages are skipped whole.
fn shell_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    // Inside a code block: `Some(Some(..))` collects a shell block, `Some(None)` skips another.
    let mut current: Option<Option<(usize, String)>> = None;
    for (index, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut current, fence) {
            (None, Some(info)) => {
                let is_shell = ["", "sh", "bash", "shell", "console"].contains(&info.trim());
                current = Some(is_shell.then(|| (index + 2, String::new())));
            }
            (Some(block), Some(_)) => {
                blocks.extend(block.take());
                current = None;
            }
            (Some(Some((_, text))), None) => {
                text.push_str(line);
                text.push('\n');
            }
            (Some(None), None) | (None, None) => {}
        }
    }
    blocks
}

fn dockerfile_builds() -> Vec<Found> {
    find_builds("deploy/Dockerfile", &read("deploy/Dockerfile"), 1)
}

fn documented_builds() -> Vec<Found> {
    let mut found = Vec::new();
    for (first_line, block) in shell_blocks(&read("README.md")) {
        found.extend(find_builds("README.md", &block, first_line));
    }
    found.extend(find_builds(".ci/run", &read(".ci/run"), 1));
    found
}

fn describe(found: &[Found]) -> String {
    found
        .iter()
        .map(|f| format!("  {}: {} => {:?}", f.source, f.command, f.build))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Returns the instructions of the Dockerfile's last stage, which is the image that ships.
fn final_stage(dockerfile: &str) -> Vec<String> {
    let lines: Vec<String> = logical_lines(dockerfile)
        .into_iter()
        .map(|(_, line)| line.trim().to_string())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let start = lines
        .iter()
        .rposition(|line| line.to_ascii_uppercase().starts_with("FROM "))
        .expect("a FROM instruction");
    lines[start..].to_vec()
}

#[test]
fn dockerfile_builds_keycheck_once() {
    let builds: Vec<Found> = dockerfile_builds()
        .into_iter()
        .filter(|f| f.command.starts_with("cargo build"))
        .collect();

    assert_eq!(
        builds.len(),
        1,
        "expected one `cargo build` in deploy/Dockerfile, found:\n{}",
        describe(&builds)
    );
    assert_eq!(
        builds[0].build.package.as_deref(),
        Some("keycheck"),
        "{}",
        describe(&builds)
    );
}

#[test]
fn dependency_layer_uses_same_flags() {
    let builds = dockerfile_builds();
    let binary = builds
        .iter()
        .find(|f| f.command.starts_with("cargo build"))
        .expect("a `cargo build` in deploy/Dockerfile");

    for cook in builds
        .iter()
        .filter(|f| f.command.starts_with("cargo chef cook"))
    {
        assert_eq!(
            cook.build,
            binary.build,
            "the cached dependency layer is built with other flags than the binary, so it is never reused:\n{}",
            describe(&builds)
        );
    }
}

#[test]
fn dockerfile_matches_readme_build() {
    let docker = dockerfile_builds()
        .into_iter()
        .find(|f| f.command.starts_with("cargo build"))
        .expect("a `cargo build` in deploy/Dockerfile");
    let documented: Vec<Found> = documented_builds()
        .into_iter()
        .filter(|f| f.build.package.as_deref() == Some("keycheck"))
        .collect();

    assert!(
        !documented.is_empty(),
        "README.md and .ci/run have no `cargo build` or `cargo install` of package keycheck to compare with \
         deploy/Dockerfile ({}: {}); add the release build to the README: `{}`",
        docker.source,
        docker.command,
        docker
            .command
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    );
    for found in &documented {
        assert_eq!(
            found.build, docker.build,
            "deploy/Dockerfile and {} build different binaries:\n  Dockerfile: {} => {:?}\n  {}: {} => {:?}",
            found.source, docker.command, docker.build, found.source, found.command, found.build
        );
    }
}

#[test]
fn image_runs_serve_as_non_root() {
    let stage = final_stage(&read("deploy/Dockerfile"));
    let find = |instruction: &str| {
        stage
            .iter()
            .rfind(|line| line.to_ascii_uppercase().starts_with(instruction))
            .unwrap_or_else(|| {
                panic!(
                    "the final stage has no {instruction}:\n{}",
                    stage.join("\n")
                )
            })
    };

    let user = find("USER ");
    let user = user[5..].trim();
    assert!(
        !user.is_empty() && !user.starts_with("root") && !user.starts_with("0:") && user != "0",
        "the image runs as {user:?}"
    );
    let entrypoint = find("ENTRYPOINT ");
    assert!(entrypoint.contains("keycheck"), "{entrypoint}");
    assert!(entrypoint.contains("serve"), "{entrypoint}");
    let healthcheck = find("HEALTHCHECK ");
    assert!(healthcheck.contains("healthcheck"), "{healthcheck}");
}

#[test]
fn dockerfile_bakes_in_no_secret() {
    let secret_words = [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "DATABASE_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SESSION",
    ];
    for (number, line) in logical_lines(&read("deploy/Dockerfile")) {
        let line = line.trim();
        let upper = line.to_ascii_uppercase();
        if !(upper.starts_with("ENV ") || upper.starts_with("ARG ")) {
            continue;
        }
        for word in secret_words {
            assert!(
                !upper.contains(word),
                "deploy/Dockerfile:{number} sets {word} in the image: {line}"
            );
        }
    }
}

#[test]
fn build_context_holds_workspace() {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml is TOML");
    let members = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace members");
    let ignore = read("deploy/Dockerfile.dockerignore");
    let included: Vec<&str> = ignore
        .lines()
        .filter_map(|line| line.trim().strip_prefix('!'))
        .collect();

    let mut needed: Vec<String> = members
        .iter()
        .map(|m| format!("{}/", m.as_str().unwrap()))
        .collect();
    needed.extend(["Cargo.toml", "Cargo.lock", "templates/"].map(String::from));
    for path in needed {
        assert!(
            included.contains(&path.as_str()),
            "deploy/Dockerfile.dockerignore leaves {path} out of the build context; add `!{path}`"
        );
    }
}

#[test]
fn cargo_command_parsing() {
    let cases = [
        (
            "cargo build --release --locked -p keycheck",
            Some(("keycheck", true, true)),
        ),
        (
            "cargo build --package=keycheck",
            Some(("keycheck", false, false)),
        ),
        (
            "cargo build --profile release --frozen --package keycheck",
            Some(("keycheck", true, true)),
        ),
        (
            "cargo install --path bot --locked",
            Some(("keycheck", true, true)),
        ),
        (
            "cargo install --path bot --debug",
            Some(("keycheck", false, false)),
        ),
        (
            "cargo chef cook --release -p keycheck --recipe-path recipe.json",
            Some(("keycheck", true, false)),
        ),
    ];
    for (command, expected) in cases {
        let build = parse_cargo(command).unwrap_or_else(|| panic!("{command} not parsed"));
        let expected = expected.unwrap();
        assert_eq!(build.package.as_deref(), Some(expected.0), "{command}");
        assert_eq!(build.release, expected.1, "{command}: release");
        assert_eq!(build.locked, expected.2, "{command}: locked");
    }
    assert_eq!(
        parse_cargo("cargo run -p keycheck -- investigate --demo"),
        None
    );
    assert_eq!(parse_cargo("cargo test --workspace --locked"), None);
}

#[test]
fn continued_lines_joined() {
    let lines = logical_lines("RUN cargo build \\\n    --release \\\n    -p keycheck\nUSER 1\n");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0].0, 1);
    assert_eq!(lines[1].0, 4);
    let build = parse_cargo(lines[0].1.trim().strip_prefix("RUN ").unwrap()).unwrap();
    assert_eq!(build.package.as_deref(), Some("keycheck"));
    assert!(build.release);
}

#[test]
fn shell_blocks_skip_other_languages() {
    let markdown = "# t\n\n```toml\n[a]\n```\n\n```sh\ncargo build -p keycheck\n```\n";
    let blocks = shell_blocks(markdown);
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert_eq!(blocks[0].0, 8);
    assert!(blocks[0].1.starts_with("cargo build"));
}
