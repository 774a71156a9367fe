//! Measures how fast keycheck finds one access key's events in CloudTrail log files, next
//! to jq and DuckDB doing the same filter on the same files, all on one core.
//!
//! Run with `cargo bench -p keycheck-core --bench scan`, and add `-- --gzip` to measure
//! gzip files as well. The first run writes a corpus of at least 1 GiB under
//! `target/bench-data/`. jq (`apt-get install jq`) and the Python `duckdb` module
//! (`pip install duckdb`) are optional: without them only keycheck's numbers print.
//!
//! This is a benchmark, not a test: it asserts only that every tool counts the same
//! events, and exits non-zero when one does not.

#[path = "scan/corpus.rs"]
mod corpus;
#[path = "scan/events.rs"]
mod events;
#[path = "scan/random.rs"]
mod random;
#[path = "scan/tools.rs"]
mod tools;
#[path = "scan/world.rs"]
mod world;

use std::path::{Path, PathBuf};

use tools::{DuckDbSchema, Pass, Unavailable};

/// keycheck's passes are repeated this many times and the median is reported, because one
/// pass takes about a second and is the noisiest row. jq and DuckDB run once each.
const KEYCHECK_PASSES: usize = 3;

/// Throughput targets: keycheck at least this many times jq's, and above DuckDB's.
const TARGET_OVER_JQ: f64 = 10.0;
const TARGET_OVER_DUCKDB: f64 = 1.0;

fn main() {
    let with_gzip = parse_arguments();
    let pinning = tools::pin_to_core_zero();

    let data_dir = target_dir().join("bench-data");
    let corpus = corpus::load_or_generate(&data_dir)
        .unwrap_or_else(|error| fail(&format!("corpus generation failed: {error}")));
    print_header(&corpus, &pinning);

    let paths: Vec<PathBuf> = corpus.paths().collect();
    let relative: Vec<&str> = corpus.files.iter().map(|f| f.relative.as_str()).collect();
    let key = corpus.target_access_key_id.as_str();
    let mut report = Report::new(corpus.bytes, corpus.tally.events, corpus.tally.matches);

    // An untimed read fills the page cache, so every timed pass reads from memory.
    let read_all = || tools::read_only(&paths).unwrap_or_else(|error| fail(&error.to_string()));
    read_all();
    report.add_pass(read_all());
    report.add_pass(keycheck_median(&paths, key, &corpus));
    report.add_tool(tools::jq(&corpus.root, &relative, key));
    report.add_tool(tools::duckdb(
        &corpus.root,
        &relative,
        key,
        DuckDbSchema::Given,
    ));
    report.add_tool(tools::duckdb(
        &corpus.root,
        &relative,
        key,
        DuckDbSchema::Inferred,
    ));
    report.print();
    report.print_ratios();

    println!();
    println!(
        "gzip files are a separate case: the time goes to decompression, and every tool \
         must inflate the whole file before it can filter."
    );
    let mut ok = report.mismatches.is_empty();
    if with_gzip {
        ok &= measure_gzip(&corpus, key);
    } else {
        println!("measure it with: cargo bench -p keycheck-core --bench scan -- --gzip");
    }
    if !ok {
        fail("a tool failed or counted a different number of matching events");
    }
}

/// Returns whether `--gzip` was given. Cargo passes `--bench` to every benchmark, and
/// other arguments are ignored with a notice.
fn parse_arguments() -> bool {
    let mut with_gzip = false;
    for argument in std::env::args().skip(1) {
        match argument.as_str() {
            "--gzip" => with_gzip = true,
            "--bench" => {}
            other => println!("ignoring argument {other}: the only option is --gzip"),
        }
    }
    with_gzip
}

/// Returns the Cargo target folder: the benchmark runs from `target/release/deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|error| fail(&error.to_string()));
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| fail(&format!("no target folder above {}", exe.display())))
}

fn fail(message: &str) -> ! {
    eprintln!("scan benchmark failed: {message}");
    std::process::exit(1);
}

fn print_header(corpus: &corpus::Corpus, pinning: &str) {
    let (cpu, cores) = machine();
    println!();
    println!("CloudTrail scan for one access key, one core");
    println!(
        "machine: {cpu}, {cores} cores, load average {}",
        load_average()
    );
    println!(
        "corpus: {} ({} files, {} bytes = {:.2} GB, {} events, uncompressed S3 log files)",
        corpus.root.display(),
        corpus.files.len(),
        group(corpus.bytes),
        corpus.bytes as f64 / 1e9,
        group(corpus.tally.events),
    );
    println!(
        "key: {} in userIdentity.accessKeyId of {} events, and elsewhere only in {} more",
        corpus.target_access_key_id,
        group(corpus.tally.matches),
        group(corpus.tally.mentions)
    );
    println!("{pinning}; an untimed read of every file fills the page cache first");
    println!();
}

/// Returns the CPU model from `/proc/cpuinfo` and the number of cores this process may use.
fn machine() -> (String, usize) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(
            || "unknown CPU".to_string(),
            |(_, model)| model.trim().to_string(),
        );
    let cores = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    (model, cores)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs keycheck's pass `KEYCHECK_PASSES` times and returns the median, after checking
/// its counts against the generator's.
fn keycheck_median(paths: &[PathBuf], key: &str, corpus: &corpus::Corpus) -> Pass {
    let mut passes = Vec::with_capacity(KEYCHECK_PASSES);
    for _ in 0..KEYCHECK_PASSES {
        let (pass, counts) =
            tools::keycheck(paths, key).unwrap_or_else(|error| fail(&error.to_string()));
        let expected_parsed = corpus.tally.matches + corpus.tally.mentions;
        if counts.skipped > 0 || counts.parsed != expected_parsed {
            fail(&format!(
                "scan_bytes parsed {} records and skipped {}, expected {expected_parsed} and 0",
                counts.parsed, counts.skipped
            ));
        }
        passes.push(pass);
    }
    let times: Vec<String> = passes.iter().map(|p| format!("{:.3}", p.seconds)).collect();
    println!(
        "keycheck passes: {} s; the table shows the median",
        times.join(", ")
    );
    passes.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    passes.swap_remove(KEYCHECK_PASSES / 2)
}

/// Measures keycheck and DuckDB on gzip copies of the corpus. Returns `false` when a tool
/// counted differently.
fn measure_gzip(corpus: &corpus::Corpus, key: &str) -> bool {
    let (root, relative) =
        corpus::gzip_copies(corpus).unwrap_or_else(|error| fail(&error.to_string()));
    let paths: Vec<PathBuf> = relative.iter().map(|path| root.join(path)).collect();
    let relative: Vec<&str> = relative.iter().map(String::as_str).collect();
    let compressed: u64 = paths
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|metadata| metadata.len())
        .sum();
    println!();
    println!(
        "gzip: {} bytes compressed; MB/s below counts the {} uncompressed bytes",
        group(compressed),
        group(corpus.bytes)
    );

    tools::read_only(&paths).unwrap_or_else(|error| fail(&error.to_string()));
    let mut report = Report::new(corpus.bytes, corpus.tally.events, corpus.tally.matches);
    let keycheck = tools::keycheck(&paths, key)
        .map(|(pass, _)| pass)
        .map_err(|error| Unavailable::Failed(error.to_string()));
    report.add_tool(keycheck);
    report.add_tool(tools::duckdb(&root, &relative, key, DuckDbSchema::Given));
    report.print();
    report.print_ratios();
    println!("(jq reads no gzip: it would need a second process to decompress)");
    report.mismatches.is_empty()
}

/// The passes over one corpus, and the counts that differ from the generator's.
struct Report {
    bytes: u64,
    events: u64,
    expected_matches: u64,
    passes: Vec<Pass>,
    mismatches: Vec<String>,
}

impl Report {
    fn new(bytes: u64, events: u64, expected_matches: u64) -> Self {
        Report {
            bytes,
            events,
            expected_matches,
            passes: Vec::new(),
            mismatches: Vec::new(),
        }
    }

    /// Keeps a pass, noting a mismatch when it counted other than the generator.
    fn add_pass(&mut self, pass: Pass) {
        if let Some(found) = pass.matches
            && found != self.expected_matches
        {
            self.mismatches.push(format!(
                "{} counted {found} events, the corpus has {}",
                pass.tool, self.expected_matches
            ));
        }
        self.passes.push(pass);
    }

    /// Keeps a tool's pass, or prints why it did not run. A tool that failed counts as a
    /// mismatch, and a missing one does not.
    fn add_tool(&mut self, result: Result<Pass, Unavailable>) {
        match result {
            Ok(pass) => self.add_pass(pass),
            Err(Unavailable::Missing(install)) => println!("skipped, not installed: {install}"),
            Err(Unavailable::Failed(message)) => {
                println!("failed: {message}");
                self.mismatches.push(message);
            }
        }
    }

    fn print(&self) {
        println!(
            "{:<40} {:>9} {:>13} {:>9} {:>9}",
            "tool", "seconds", "events/s", "MB/s", "matches"
        );
        for pass in &self.passes {
            let matches = pass.matches.map_or_else(|| "-".to_string(), group);
            println!(
                "{:<40} {:>9.2} {:>13} {:>9.0} {:>9}",
                pass.tool,
                pass.seconds,
                group((self.events as f64 / pass.seconds) as u64),
                self.bytes as f64 / 1e6 / pass.seconds,
                matches
            );
        }
        for mismatch in &self.mismatches {
            println!("MISMATCH: {mismatch}");
        }
        println!("MB = 10^6 bytes of CloudTrail JSON; events/s counts every event in the files");
    }

    /// Prints keycheck's throughput over each other tool's, and whether the targets hold.
    fn print_ratios(&self) {
        let Some(keycheck) = self.passes.iter().find(|p| p.tool.starts_with("keycheck")) else {
            return;
        };
        println!();
        for other in &self.passes {
            let ratio = other.seconds / keycheck.seconds;
            let (target, met) = if other.tool.starts_with("jq") {
                ("at least 10x", ratio >= TARGET_OVER_JQ)
            } else if other.tool.starts_with("duckdb") {
                ("above 1x", ratio > TARGET_OVER_DUCKDB)
            } else {
                continue;
            };
            let verdict = if met { "met" } else { "NOT met" };
            println!(
                "keycheck / {:<31} {ratio:>7.1}x  (target {target}: {verdict})",
                other.tool
            );
        }
    }
}

/// Formats a count with thousands separators: `1,234,567`.
fn group(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
