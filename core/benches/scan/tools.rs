//! One timed pass over the corpus per tool: keycheck's scanner in this process, and jq
//! and DuckDB (through Python) as child processes, each counting the events whose
//! `userIdentity.accessKeyId` is the searched key.

use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use keycheck_core::cloudtrail::{Shape, scan_bytes};

/// One tool's pass over the corpus.
pub struct Pass {
    pub tool: String,
    pub seconds: f64,
    /// Matching events, or `None` for a pass that only reads.
    pub matches: Option<u64>,
}

/// The reason a tool did not run.
pub enum Unavailable {
    /// The tool is not installed. The text is the command that installs it.
    Missing(String),
    /// The tool ran and failed. The text describes the failure.
    Failed(String),
}

/// Pins this process to core 0 with `taskset`, so that it and the child processes, which
/// inherit the affinity, share one core. Returns how the run is pinned, for the report.
pub fn pin_to_core_zero() -> String {
    let pid = std::process::id().to_string();
    let pinned = Command::new("taskset")
        .args(["-p", "-c", "0", &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if pinned {
        "every pass pinned to core 0 with taskset".into()
    } else {
        "not pinned (taskset missing or refused): passes are single-threaded".into()
    }
}

/// Reads every file and does nothing else: the floor under any tool that reads files.
pub fn read_only(paths: &[PathBuf]) -> io::Result<Pass> {
    let started = Instant::now();
    let mut total = 0usize;
    for path in paths {
        total += std::hint::black_box(std::fs::read(path)?).len();
    }
    std::hint::black_box(total);
    Ok(Pass {
        tool: "read files only (std::fs::read)".into(),
        seconds: started.elapsed().as_secs_f64(),
        matches: None,
    })
}

/// Counts from keycheck's pass besides the matches.
pub struct KeycheckCounts {
    pub matches: u64,
    /// Records `scan_bytes` parsed because they contain the key anywhere.
    pub parsed: u64,
    pub skipped: u64,
}

/// Runs keycheck's scan as the snapshot evidence source does, on one thread: read a file,
/// `scan_bytes` it for the key, keep the events whose `userIdentity.accessKeyId` is the
/// key. Works the same on gzip files, which `scan_bytes` decompresses.
pub fn keycheck(paths: &[PathBuf], key: &str) -> io::Result<(Pass, KeycheckCounts)> {
    let needle = key.as_bytes();
    let mut counts = KeycheckCounts {
        matches: 0,
        parsed: 0,
        skipped: 0,
    };

    let started = Instant::now();
    for path in paths {
        let bytes = std::fs::read(path)?;
        let outcome = scan_bytes(&bytes, &[needle]);
        if outcome.shape != Shape::S3LogFile {
            let message = format!(
                "{} read as {:?}, expected an S3 log file",
                path.display(),
                outcome.shape
            );
            return Err(io::Error::other(message));
        }
        counts.parsed += outcome.events.len() as u64;
        counts.skipped += outcome.skipped.len() as u64;
        counts.matches += outcome
            .events
            .iter()
            .filter(|event| event.access_key_id() == Some(key))
            .count() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();

    let pass = Pass {
        tool: "keycheck scan_bytes + key check".into(),
        seconds,
        matches: Some(counts.matches),
    };
    Ok((pass, counts))
}

/// Starts `program` pinned to core 0 when `taskset` exists, else plain.
fn pinned_command(program: &str) -> Command {
    if Command::new("taskset").arg("--version").output().is_ok() {
        let mut command = Command::new("taskset");
        command.args(["-c", "0", program]);
        command
    } else {
        Command::new(program)
    }
}

/// Returns jq's version, or how to install it.
fn jq_version() -> Result<String, Unavailable> {
    let missing = || Unavailable::Missing("jq: apt-get install jq".into());
    let output = Command::new("jq")
        .arg("--version")
        .output()
        .map_err(|_| missing())?;
    if !output.status.success() {
        return Err(missing());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Runs `jq -c --arg key KEY '.Records[] | select(.userIdentity.accessKeyId == $key)'`
/// over the files, timing the whole process and counting the events it prints, one per
/// line.
pub fn jq(root: &Path, relative_paths: &[&str], key: &str) -> Result<Pass, Unavailable> {
    let version = jq_version()?;
    let mut command = pinned_command("jq");
    command
        .args(["-c", "--arg", "key", key])
        .arg(".Records[] | select(.userIdentity.accessKeyId == $key)")
        .args(relative_paths)
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());

    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|error| Unavailable::Failed(format!("jq did not start: {error}")))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    let mut matches = 0;
    let mut line = Vec::new();
    while reader
        .read_until(b'\n', &mut line)
        .map_err(|error| Unavailable::Failed(format!("reading jq's output failed: {error}")))?
        > 0
    {
        matches += 1;
        line.clear();
    }
    let status = child
        .wait()
        .map_err(|error| Unavailable::Failed(format!("waiting for jq failed: {error}")))?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(Unavailable::Failed(format!("jq exited with {status}")));
    }

    Ok(Pass {
        tool: version,
        seconds,
        matches: Some(matches),
    })
}

/// The source of the schema that the DuckDB query reads the files with.
#[derive(Clone, Copy)]
pub enum DuckDbSchema {
    /// `columns=` names the one field the filter reads, so nothing else is converted, and
    /// `records=true` declares each file one object. Without `records=true`, DuckDB 2.0.1
    /// took about six times as long on this corpus.
    Given,
    /// DuckDB samples the files to infer every field, as a query without `columns=` does.
    Inferred,
}

/// The Python program that runs the DuckDB query. It reads the file paths from standard
/// input and prints one JSON line. Exit status 3 means the module is missing.
const DUCKDB_SCRIPT: &str = r#"
import json, sys, time

files = [line for line in sys.stdin.read().splitlines() if line]
try:
    import duckdb
except ImportError:
    sys.exit(3)

key, schema = sys.argv[1], sys.argv[2]
file_list = "[" + ",".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
options = ""
if schema == "given":
    options = ", records=true, columns={'Records': 'STRUCT(userIdentity STRUCT(accessKeyId VARCHAR))[]'}"
query = (
    "SELECT count(*) FROM (SELECT unnest(Records) AS r "
    f"FROM read_json({file_list}, format='auto'{options})) "
    "WHERE r.userIdentity.accessKeyId = $key"
)
con = duckdb.connect()
con.execute("SET threads TO 1")
con.execute("SET enable_progress_bar = false")
started = time.perf_counter()
matches = con.execute(query, {"key": key}).fetchone()[0]
seconds = time.perf_counter() - started
print(json.dumps({"matches": matches, "seconds": seconds, "version": duckdb.__version__}))
"#;

/// Runs the DuckDB query through Python's `duckdb` module with one thread, and returns
/// the query's own time, which leaves out starting Python and importing the module.
pub fn duckdb(
    root: &Path,
    relative_paths: &[&str],
    key: &str,
    schema: DuckDbSchema,
) -> Result<Pass, Unavailable> {
    let schema_name = match schema {
        DuckDbSchema::Given => "given",
        DuckDbSchema::Inferred => "inferred",
    };
    let mut child = pinned_command("python3")
        .args(["-c", DUCKDB_SCRIPT, key, schema_name])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|_| Unavailable::Missing("python3 with duckdb: pip install duckdb".into()))?;

    // The exit status explains a failed write better than the write error does, so it is
    // checked first.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = stdin.write_all(relative_paths.join("\n").as_bytes());
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|error| Unavailable::Failed(format!("waiting for python3 failed: {error}")))?;

    if output.status.code() == Some(3) {
        return Err(Unavailable::Missing(
            "Python module duckdb: pip install duckdb".into(),
        ));
    }
    if let Err(error) = written {
        let message = format!("writing the file list to python3 failed: {error}");
        return Err(Unavailable::Failed(message));
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Unavailable::Failed(format!(
            "duckdb query failed ({}): {}",
            output.status,
            stderr.trim()
        )));
    }
    parse_duckdb_output(&output.stdout, schema)
}

fn parse_duckdb_output(stdout: &[u8], schema: DuckDbSchema) -> Result<Pass, Unavailable> {
    let invalid = || {
        Unavailable::Failed(format!(
            "unexpected output from the duckdb script: {}",
            String::from_utf8_lossy(stdout).trim()
        ))
    };
    let text = String::from_utf8_lossy(stdout);
    let last_line = text.lines().rfind(|line| !line.trim().is_empty());
    let result: serde_json::Value = last_line
        .and_then(|line| serde_json::from_str(line).ok())
        .ok_or_else(invalid)?;
    let (Some(matches), Some(seconds), Some(version)) = (
        result["matches"].as_u64(),
        result["seconds"].as_f64(),
        result["version"].as_str(),
    ) else {
        return Err(invalid());
    };
    let schema_label = match schema {
        DuckDbSchema::Given => "columns given",
        DuckDbSchema::Inferred => "schema inferred",
    };
    Ok(Pass {
        tool: format!("duckdb {version}, {schema_label}"),
        seconds,
        matches: Some(matches),
    })
}
