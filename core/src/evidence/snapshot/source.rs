//! The files of a snapshot: finding them under a folder (or taking them from memory) and
//! reading their content, decompressed when it is gzip.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::debug;

use super::inventory::Inventory;

/// File name endings a snapshot reads; anything else is listed as ignored.
const READ_EXTENSIONS: [&str; 7] = [".json", ".json.gz", ".gz", ".jsonl", ".log", ".csv", ".txt"];

/// How much of a file's start (after decompression) is enough to recognise CloudTrail.
const HEAD_BYTES: u64 = 4096;

/// Largest CloudTrail file read at a scan, decompressed.
pub(super) const TRAIL_LIMIT: u64 = 1024 * 1024 * 1024;

/// Location of a file's bytes.
#[derive(Clone, Debug)]
pub(super) enum Origin {
    /// On disk, read again whenever it is needed.
    Disk(PathBuf),
    /// In memory, as given to `Snapshot::from_files`.
    Memory(Arc<[u8]>),
}

/// One file of a snapshot.
#[derive(Clone, Debug)]
pub(super) struct SourceFile {
    /// The path inside the snapshot, with `/` separators.
    pub label: String,
    pub origin: Origin,
    /// Size as stored, before decompression.
    pub size: u64,
}

impl SourceFile {
    /// Opens the file's content, decompressing gzip (recognised by its magic bytes, not
    /// its name).
    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        let mut raw: Box<dyn BufRead + Send> = match &self.origin {
            Origin::Disk(path) => Box::new(BufReader::new(File::open(path)?)),
            Origin::Memory(bytes) => Box::new(Cursor::new(Arc::clone(bytes))),
        };
        if raw.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
            return Ok(Box::new(flate2::bufread::MultiGzDecoder::new(raw)));
        }
        Ok(raw)
    }

    /// Reads the whole decompressed content, failing past `limit` bytes.
    pub(super) fn read(&self, limit: u64) -> Result<Vec<u8>, String> {
        let mut content = Vec::new();
        self.open()
            .and_then(|reader| reader.take(limit + 1).read_to_end(&mut content))
            .map_err(|error| read_error(&error))?;
        if content.len() as u64 > limit {
            return Err(format!(
                "larger than {} MiB decompressed",
                limit / (1024 * 1024)
            ));
        }
        Ok(content)
    }

    pub(super) fn head(&self) -> Result<Vec<u8>, String> {
        let mut head = Vec::new();
        self.open()
            .and_then(|reader| reader.take(HEAD_BYTES).read_to_end(&mut head))
            .map_err(|error| read_error(&error))?;
        Ok(head)
    }

    /// Returns the file name without its extensions: `alice` for `iam/mfa-devices/alice.json`.
    pub(super) fn stem(&self) -> Option<&str> {
        let name = Path::new(&self.label).file_name()?.to_str()?;
        let mut stem = name;
        for extension in [".gz", ".json", ".jsonl", ".txt", ".log"] {
            stem = stem.strip_suffix(extension).unwrap_or(stem);
        }
        (!stem.is_empty()).then_some(stem)
    }

    /// Returns the file stem when the file sits in a folder of that name, such as the user
    /// name of `iam/mfa-devices/alice.json` for `folder` = `mfa-devices`.
    pub(super) fn stem_in(&self, folder: &str) -> Option<&str> {
        let parent = Path::new(&self.label).parent()?.file_name()?.to_str()?;
        (parent == folder).then(|| self.stem()).flatten()
    }
}

fn read_error(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            format!("invalid gzip data: {error}")
        }
        _ => format!("unreadable: {error}"),
    }
}

/// Lists the files under `dir` in path order, skipping hidden files and folders and noting
/// in `inventory` the files whose extension the snapshot does not read.
pub(super) fn walk(dir: &Path, inventory: &mut Inventory) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let label_of = |path: &Path| relative_label(dir, path);
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) => {
                inventory.ignore(&label_of(&folder), format!("folder unreadable: {error}"));
                continue;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        // Folders are pushed in reverse so that they are visited in path order.
        for path in paths.iter().rev() {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                inventory.ignore(&label_of(path), "file name is not UTF-8");
                continue;
            };
            if name.starts_with('.') {
                debug!(file = %label_of(path), "hidden snapshot file skipped");
                continue;
            }
            // Symbolic links to folders are not followed, so a link cannot loop the walk.
            let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            match fs::metadata(path) {
                Ok(metadata) if metadata.is_dir() && !is_link => pending.push(path.clone()),
                Ok(metadata) if metadata.is_dir() => {
                    inventory.ignore(&label_of(path), "symbolic link to a folder, not followed");
                }
                Ok(metadata) if has_read_extension(name) => files.push(SourceFile {
                    label: label_of(path),
                    origin: Origin::Disk(path.clone()),
                    size: metadata.len(),
                }),
                Ok(_) => inventory.ignore(
                    &label_of(path),
                    "not a .json, .jsonl, .gz, .log, .csv or .txt file",
                ),
                Err(error) => inventory.ignore(&label_of(path), format!("unreadable: {error}")),
            }
        }
    }
    files.sort_by(|a, b| a.label.cmp(&b.label));
    files
}

fn relative_label(dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

pub(super) fn has_read_extension(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    READ_EXTENSIONS
        .iter()
        .any(|extension| name.ends_with(extension))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stem_and_folder() {
        let file = SourceFile {
            label: "iam/mfa-devices/alice.json.gz".into(),
            origin: Origin::Memory(Arc::from(&b""[..])),
            size: 0,
        };
        assert_eq!(file.stem(), Some("alice"));
        assert_eq!(file.stem_in("mfa-devices"), Some("alice"));
        assert_eq!(file.stem_in("login-profiles"), None);
    }
}
