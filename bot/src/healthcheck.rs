//! `keycheck healthcheck`: sends `GET /healthz` to a running `keycheck serve` and exits 0
//! when it responds with 2xx, for container health checks in images without a shell or curl.
//!
//! It is a plain HTTP/1.1 client over a loopback TCP connection, without the async
//! runtime, because it runs every few seconds inside the container and must stay cheap.
//! Kubernetes does not need it: its probes call `/healthz` themselves.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::config::Config;

/// Arguments of `keycheck healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Address of the bot's HTTP listener, such as 127.0.0.1:3000. Default: `slack.listen`
    /// from the configuration, with 0.0.0.0 or :: replaced by the loopback address.
    #[arg(long)]
    pub address: Option<SocketAddr>,

    /// How long to wait for the connection and for the response, such as 3s.
    #[arg(long, default_value = "3s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}: write a duration such as 3s or 500ms"))
}

/// Runs `keycheck healthcheck`: exit code 0 when healthy, 1 when not.
pub fn run(args: &HealthcheckArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let address = args
        .address
        .unwrap_or_else(|| loopback_for(config.slack.listen()));
    match probe(address, args.timeout) {
        Ok(status) if (200..300).contains(&status) => {
            println!("healthy: GET http://{address}/healthz returned {status}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(status) => {
            eprintln!("keycheck: unhealthy: GET http://{address}/healthz returned {status}");
            Ok(ExitCode::FAILURE)
        }
        Err(message) => {
            eprintln!("keycheck: unhealthy: GET http://{address}/healthz failed: {message}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Returns the address to connect to for a listener bound to `listen`: a listener on every
/// interface (0.0.0.0 or ::) is reached through the loopback address of the same family.
fn loopback_for(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Sends `GET /healthz` to `address` and returns the HTTP status code.
fn probe(address: SocketAddr, timeout: Duration) -> Result<u16, String> {
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|e| format!("cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;

    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;

    // Only the status line is needed, and 1 KiB is plenty for it. The bound keeps a
    // misbehaving listener from making the probe buffer without end.
    let mut head = Vec::new();
    stream
        .take(1024)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    parse_status(&head)
}

/// Parses the status code from the start of an HTTP/1.x response, such as
/// `HTTP/1.1 200 OK`.
fn parse_status(head: &[u8]) -> Result<u16, String> {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|code| code.parse::<u16>().ok());
    match status {
        Some(status) if version.starts_with("HTTP/1.") => Ok(status),
        _ => Err(format!(
            "not an HTTP/1.x answer: {:?}",
            line.chars().take(80).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// Starts a one-shot listener on a free loopback port that reads the request and
    /// writes `response`, and returns its address.
    fn serve_once(response: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(response.as_bytes());
        });
        address
    }

    #[test]
    fn probe_returns_status_code() {
        let ok = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        assert_eq!(probe(ok, Duration::from_secs(3)), Ok(200));

        let unavailable =
            serve_once("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(probe(unavailable, Duration::from_secs(3)), Ok(503));
    }

    #[test]
    fn probe_fails_when_nothing_listens() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let message = probe(address, Duration::from_secs(3)).unwrap_err();
        assert!(message.starts_with("cannot connect"), "{message}");
    }

    #[test]
    fn status_line_parsing() {
        assert_eq!(parse_status(b"HTTP/1.0 204 No Content\r\n\r\n"), Ok(204));
        assert!(parse_status(b"SSH-2.0-OpenSSH_9.6\r\n").is_err());
        assert!(parse_status(b"").is_err());
        assert!(parse_status(b"HTTP/1.1 abc\r\n").is_err());
    }

    #[test]
    fn unspecified_listen_maps_to_loopback() {
        let cases = [
            ("0.0.0.0:3000", "127.0.0.1:3000"),
            ("[::]:3000", "[::1]:3000"),
            ("10.0.0.5:8080", "10.0.0.5:8080"),
        ];
        for (listen, expected) in cases {
            assert_eq!(
                loopback_for(listen.parse().unwrap()).to_string(),
                expected,
                "{listen}"
            );
        }
    }
}
