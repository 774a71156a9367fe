//! The benchmark corpus on disk: at least 1 GiB of generated CloudTrail log files under
//! `target/bench-data/`, laid out as an organisation trail writes them to S3, one file per
//! account, region and five minutes.
//!
//! The corpus is generated once and reused while its manifest names the current
//! `CORPUS_VERSION` and every listed file is present with its size. Anything else
//! (missing, partial, older version) is deleted and generated again.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::DateTime;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use super::events::{LogFile, Tally, write_log_file};
use super::random::{ALPHANUMERIC, Rng};
use super::world::{ORGANIZATION_ID, REGIONS, World};

/// Bump when the generator's output changes, so that cached corpora are regenerated.
pub const CORPUS_VERSION: u32 = 2;

const SEED: u64 = 0x6b65_7963_6865_636b;

/// The corpus grows in five-minute steps until it contains at least this many bytes.
pub const MIN_CORPUS_BYTES: u64 = 1 << 30;

/// 2025-03-03T00:00:00Z, where the trail starts.
const TRAIL_START: i64 = 1_740_960_000;

/// CloudTrail delivers a log file about every five minutes per account and region.
const DELIVERY_SECONDS: i64 = 300;

/// The mean number of events in one file, before the account, region and hour of day
/// scale it.
const MEAN_EVENTS_PER_FILE: f64 = 420.0;

const MANIFEST: &str = "manifest.json";
const CORPUS_PREFIX: &str = "cloudtrail-v";

/// One file of the corpus.
pub struct CorpusFile {
    /// The path below the corpus root, `AWSLogs/…`.
    pub relative: String,
    pub bytes: u64,
}

/// A corpus ready on disk.
pub struct Corpus {
    pub root: PathBuf,
    pub files: Vec<CorpusFile>,
    pub bytes: u64,
    pub tally: Tally,
    pub target_access_key_id: String,
}

impl Corpus {
    pub fn paths(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.files.iter().map(|file| self.root.join(&file.relative))
    }
}

/// Returns the corpus under `data_dir`, generating it first when it is missing or stale.
pub fn load_or_generate(data_dir: &Path) -> io::Result<Corpus> {
    let root = data_dir.join(format!("{CORPUS_PREFIX}{CORPUS_VERSION}"));
    match load(&root) {
        Ok(corpus) => return Ok(corpus),
        Err(reason) => println!("generating the corpus in {}: {reason}", root.display()),
    }

    remove_stale(data_dir)?;
    let partial = data_dir.join(format!("{CORPUS_PREFIX}{CORPUS_VERSION}.partial"));
    let started = std::time::Instant::now();
    let corpus = generate(&partial)?;
    fs::rename(&partial, &root)?;
    println!(
        "generated {} files, {} bytes in {:.1} s",
        corpus.files.len(),
        corpus.bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(Corpus { root, ..corpus })
}

/// Reads the manifest and checks it against the files, returning why it cannot be used.
fn load(root: &Path) -> Result<Corpus, String> {
    let text = fs::read_to_string(root.join(MANIFEST)).map_err(|_| "no manifest".to_string())?;
    let manifest: Value =
        serde_json::from_str(&text).map_err(|error| format!("invalid manifest: {error}"))?;
    if manifest["version"] != json!(CORPUS_VERSION) {
        return Err(format!("manifest version {} is stale", manifest["version"]));
    }

    let files = files_from_manifest(&manifest)?;
    for file in &files {
        let path = root.join(&file.relative);
        let size = fs::metadata(&path).map(|metadata| metadata.len()).ok();
        if size != Some(file.bytes) {
            return Err(format!("{} is missing or changed", path.display()));
        }
    }
    let number = |name: &str| manifest[name].as_u64().unwrap_or_default();
    Ok(Corpus {
        root: root.to_path_buf(),
        bytes: files.iter().map(|file| file.bytes).sum(),
        files,
        tally: Tally {
            events: number("events"),
            matches: number("matches"),
            mentions: number("mentions"),
        },
        target_access_key_id: manifest["target_access_key_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

fn files_from_manifest(manifest: &Value) -> Result<Vec<CorpusFile>, String> {
    let entries = manifest["files"]
        .as_array()
        .ok_or("manifest lists no files")?;
    entries
        .iter()
        .map(|entry| match (entry[0].as_str(), entry[1].as_u64()) {
            (Some(relative), Some(bytes)) => Ok(CorpusFile {
                relative: relative.to_string(),
                bytes,
            }),
            _ => Err(format!("invalid manifest entry {entry}")),
        })
        .collect()
}

/// Deletes corpora of any version, and partial ones, so that old gigabytes do not pile up.
fn remove_stale(data_dir: &Path) -> io::Result<()> {
    fs::create_dir_all(data_dir)?;
    for entry in fs::read_dir(data_dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(CORPUS_PREFIX)
        {
            fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// Writes the corpus into `root`, the manifest last.
fn generate(root: &Path) -> io::Result<Corpus> {
    let world = World::new(SEED);
    let mut files = Vec::new();
    let mut bytes = 0;
    let mut tally = Tally::default();
    let mut content = String::new();

    let mut step: u64 = 0;
    while bytes < MIN_CORPUS_BYTES {
        let start = TRAIL_START + step as i64 * DELIVERY_SECONDS;
        for account in 0..world.accounts.len() {
            for (region_index, &(region, region_weight)) in REGIONS.iter().enumerate() {
                let mut rng = Rng::derive(SEED, &[step, account as u64, region_index as u64]);
                let weight = world.accounts[account].weight * region_weight;
                let log_file = LogFile {
                    world: &world,
                    account,
                    region,
                    start,
                    trail_start: TRAIL_START,
                    events: events_in_file(weight, start, &mut rng),
                };
                content.clear();
                write_log_file(&log_file, &mut rng, &mut content, &mut tally);

                let relative = log_file_path(world.accounts[account].id, region, start, &mut rng);
                let path = root.join(&relative);
                fs::create_dir_all(path.parent().unwrap_or(root))?;
                fs::write(&path, &content)?;
                bytes += content.len() as u64;
                files.push(CorpusFile {
                    relative,
                    bytes: content.len() as u64,
                });
            }
        }
        step += 1;
    }

    let corpus = Corpus {
        root: root.to_path_buf(),
        files,
        bytes,
        tally,
        target_access_key_id: world.target_access_key_id().to_string(),
    };
    write_manifest(&corpus)?;
    Ok(corpus)
}

/// Returns the number of events in one delivery. Busier accounts and regions write more,
/// and traffic peaks at 15:00 UTC and is lowest at 03:00 UTC.
fn events_in_file(weight: f64, start: i64, rng: &mut Rng) -> usize {
    let hour = (start.rem_euclid(86_400)) as f64 / 3600.0;
    let daily = 1.0 - 0.5 * (2.0 * std::f64::consts::PI * (hour - 3.0) / 24.0).cos();
    let jitter = 0.75 + 0.5 * rng.unit();
    (MEAN_EVENTS_PER_FILE * weight * daily * jitter).round() as usize
}

/// Returns the S3 key CloudTrail gives a log file, timed at delivery, without `.gz`
/// because the corpus is stored uncompressed:
/// `AWSLogs/o-…/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHMMZ_UNIQUE.json`.
fn log_file_path(account_id: &str, region: &str, start: i64, rng: &mut Rng) -> String {
    let delivered = DateTime::from_timestamp(start + DELIVERY_SECONDS, 0).unwrap_or_default();
    format!(
        "AWSLogs/{ORGANIZATION_ID}/{account_id}/CloudTrail/{region}/{}/{account_id}_CloudTrail_{region}_{}_{}.json",
        delivered.format("%Y/%m/%d"),
        delivered.format("%Y%m%dT%H%MZ"),
        rng.chars(ALPHANUMERIC, 16)
    )
}

fn write_manifest(corpus: &Corpus) -> io::Result<()> {
    let files: Vec<Value> = corpus
        .files
        .iter()
        .map(|file| json!([file.relative, file.bytes]))
        .collect();
    let manifest = json!({
        "version": CORPUS_VERSION,
        "target_access_key_id": corpus.target_access_key_id,
        "events": corpus.tally.events,
        "matches": corpus.tally.matches,
        "mentions": corpus.tally.mentions,
        "bytes": corpus.bytes,
        "files": files,
    });
    fs::write(corpus.root.join(MANIFEST), manifest.to_string())
}

/// Returns the folder of gzip copies of the corpus files (`.json.gz`, default compression
/// level) and their paths below it, writing them first when they are missing.
pub fn gzip_copies(corpus: &Corpus) -> io::Result<(PathBuf, Vec<String>)> {
    let root = corpus
        .root
        .with_file_name(format!("{CORPUS_PREFIX}{CORPUS_VERSION}-gzip"));
    let complete = root.join("complete");
    let relative: Vec<String> = corpus
        .files
        .iter()
        .map(|file| format!("{}.gz", file.relative))
        .collect();
    if complete.exists() && relative.iter().all(|path| root.join(path).exists()) {
        return Ok((root, relative));
    }

    println!("writing gzip copies of the corpus in {}", root.display());
    for (source, target) in corpus.paths().zip(&relative) {
        let target = root.join(target);
        fs::create_dir_all(target.parent().unwrap_or(&root))?;
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&fs::read(source)?)?;
        fs::write(&target, encoder.finish()?)?;
    }
    fs::write(&complete, b"")?;
    Ok((root, relative))
}
