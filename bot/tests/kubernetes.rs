//! Checks the manifests in deploy/kubernetes/ against the code. The keycheck.toml in the
//! ConfigMap must load, and the bot must listen on the port that the probes and the Service
//! use. The tokens and the database URL must come from the Secret, never from a literal.

use std::path::PathBuf;

use keycheck_bot::config::Config;

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/kubernetes")
        .join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Returns the text of the YAML block scalar under `key:`, without its indentation.
fn block_scalar(yaml: &str, key: &str) -> String {
    let mut lines = yaml.lines();
    let header = format!("{key}: |");
    let key_indent = lines
        .by_ref()
        .find_map(|line| (line.trim() == header).then(|| line.len() - line.trim_start().len()))
        .unwrap_or_else(|| panic!("no `{header}` block in:\n{yaml}"));

    let mut text = String::new();
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        if !line.trim().is_empty() && indent <= key_indent {
            break;
        }
        text.push_str(line.get(key_indent + 2..).unwrap_or(""));
        text.push('\n');
    }
    text
}

fn shipped_config() -> Config {
    let toml = block_scalar(&read("configmap.yaml"), "keycheck.toml");
    toml.parse().unwrap_or_else(|error| {
        panic!(
            "the ConfigMap's keycheck.toml does not load: {error:#}\n--- keycheck.toml ---\n{toml}"
        )
    })
}

#[test]
fn configmap_config_loads() {
    let config = shipped_config();

    assert!(
        config.slack.listen().ip().is_unspecified(),
        "the kubelet's probes need every interface, not {}",
        config.slack.listen()
    );
}

#[test]
fn configmap_database_url_has_no_password() {
    let url = shipped_config().store.database_url;

    assert!(
        url.starts_with("postgres://"),
        "two replicas must share PostgreSQL, not {url}"
    );
    let authority = url["postgres://".len()..]
        .split('/')
        .next()
        .unwrap_or_default();
    let user_info = authority
        .rsplit_once('@')
        .map(|(user_info, _)| user_info)
        .unwrap_or_default();
    assert!(
        !user_info.contains(':'),
        "the ConfigMap's database URL contains a password: {user_info}"
    );
}

#[test]
fn probes_reach_listen_port() {
    let port = shipped_config().slack.listen().port();
    let deployment = read("deployment.yaml");

    assert!(
        deployment.contains(&format!("containerPort: {port}")),
        "deployment.yaml has no containerPort {port}"
    );
    assert_eq!(
        deployment.matches("path: /healthz").count(),
        2,
        "readiness and liveness probes on /healthz"
    );
    let network_policy = read("networkpolicy.yaml");
    assert!(
        network_policy.contains(&format!("port: {port}")),
        "networkpolicy.yaml does not admit port {port}"
    );
}

#[test]
fn secrets_come_from_secret() {
    let deployment = read("deployment.yaml");
    let lines: Vec<&str> = deployment.lines().map(str::trim).collect();

    for name in [
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "DISCORD_TOKEN",
        "PGPASSWORD",
    ] {
        let position = lines
            .iter()
            .position(|line| *line == format!("- name: {name}"))
            .unwrap_or_else(|| panic!("deployment.yaml does not set {name}"));
        assert_eq!(
            lines[position + 1],
            "valueFrom:",
            "{name} must come from a Secret"
        );
        assert_eq!(
            lines[position + 2],
            "secretKeyRef:",
            "{name} must come from a Secret"
        );
    }
}

#[test]
fn metrics_port_consistent_across_manifests() {
    let config = shipped_config();
    let listen: std::net::SocketAddr = config
        .metrics
        .listen
        .as_deref()
        .expect("the ConfigMap sets metrics.listen, so /metrics stays off the Slack port")
        .parse()
        .expect("metrics.listen loads as a socket address");
    assert!(listen.ip().is_unspecified(), "Prometheus scrapes from other pods, not {listen}");
    assert_ne!(listen.port(), config.slack.listen().port(), "metrics need a port of their own");
    let port = listen.port();

    let deployment = read("deployment.yaml");
    assert!(
        deployment.contains(&format!("containerPort: {port}")),
        "deployment.yaml has no containerPort {port}"
    );
    assert!(
        deployment.contains(&format!("prometheus.io/port: \"{port}\"")),
        "the scrape annotation names another port than {port}"
    );
    assert!(deployment.contains("prometheus.io/path: /metrics"));
    let service = read("service.yaml");
    assert!(service.contains(&format!("port: {port}")), "service.yaml does not expose {port}");
    assert!(service.contains("targetPort: metrics"), "service.yaml does not target the metrics port");
    let network_policy = read("networkpolicy.yaml");
    assert!(
        network_policy.contains(&format!("port: {port}")),
        "networkpolicy.yaml does not admit port {port}"
    );
}
