//! Writing the `.tar.gz`.
//!
//! The archive goes to a temporary file (mode 0600) in the destination folder
//! and is renamed into place only once complete, so a reader never sees half
//! a bundle and a failed run leaves nothing behind. Every file lands under one
//! top folder named like the bundle, so unpacking never litters. Small text
//! entries are also kept in memory for the analyzers.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use std::collections::HashMap;

use super::Entries;
use super::budget::Spool;
use super::manifest::{Cut, FileRecord};

/// Entries up to this size with a text extension are kept for analysis.
pub(super) const KEEP_LIMIT: usize = 8 * 1024 * 1024;

/// Where the bundle will be written.
#[derive(Debug, Clone)]
pub struct Target {
    pub dir: PathBuf,
    pub file_name: String,
}

impl Target {
    /// The final path of the bundle.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.file_name)
    }

    /// The top folder inside the archive.
    pub fn root(&self) -> &str {
        self.file_name
            .strip_suffix(".tar.gz")
            .or_else(|| self.file_name.strip_suffix(".tgz"))
            .unwrap_or(&self.file_name)
    }
}

/// The bundle could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("output folder {0} does not exist")]
    NoDir(PathBuf),
    #[error("output path {0} is not a folder")]
    NotDir(PathBuf),
    #[error("cannot create the bundle in {dir}")]
    Create {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the bundle {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot move the finished bundle to {path}")]
    Persist {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Decides the bundle's folder and file name from `--output`.
///
/// An existing folder, or no flag (the current folder), gets the default
/// name; a path ending in `.tar.gz` or `.tgz` is taken as the file to write,
/// and its folder must exist.
pub fn resolve_target(output: Option<&Path>, default_name: &str) -> Result<Target, BundleError> {
    let output = output.unwrap_or(Path::new("."));
    let name = output.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let is_file = name.ends_with(".tar.gz") || name.ends_with(".tgz");
    if is_file && !output.is_dir() {
        let dir = match output.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        check_dir(&dir)?;
        return Ok(Target {
            dir,
            file_name: name.to_string(),
        });
    }
    check_dir(output)?;
    Ok(Target {
        dir: output.to_path_buf(),
        file_name: default_name.to_string(),
    })
}

fn check_dir(dir: &Path) -> Result<(), BundleError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(BundleError::NotDir(dir.to_path_buf())),
        Err(_) => Err(BundleError::NoDir(dir.to_path_buf())),
    }
}

/// An archive being written.
pub struct BundleWriter {
    target: Target,
    temp: tempfile::NamedTempFile,
    tar: tar::Builder<GzEncoder<BufWriter<File>>>,
    mtime: u64,
    files: Vec<FileRecord>,
    kept: Entries,
    spool: Option<Spool>,
    dropped: Vec<(String, Cut)>,
}

impl BundleWriter {
    /// Creates the temporary archive next to where the bundle will go.
    ///
    /// This is the first thing a run does, so an unwritable destination is
    /// reported before anything is collected.
    pub fn create(target: Target, mtime: u64) -> Result<Self, BundleError> {
        let create_err = |source| BundleError::Create {
            dir: target.dir.clone(),
            source,
        };
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", target.file_name))
            .suffix(".partial")
            .tempfile_in(&target.dir)
            .map_err(create_err)?;
        let file = temp.as_file().try_clone().map_err(create_err)?;
        let gz = GzEncoder::new(BufWriter::new(file), Compression::default());
        Ok(Self {
            target,
            temp,
            tar: tar::Builder::new(gz),
            mtime,
            files: Vec::new(),
            kept: Entries::default(),
            spool: None,
            dropped: Vec::new(),
        })
    }

    /// Holds collector entries until [`BundleWriter::commit_staged`], which
    /// writes them highest priority first while the archive stays under
    /// `max` bytes; `priorities` maps collector names to their priority.
    pub fn set_budget(
        &mut self,
        max: u64,
        priorities: HashMap<String, u8>,
    ) -> Result<(), BundleError> {
        let spool = Spool::new(&self.target.dir, max, priorities).map_err(|source| {
            BundleError::Create {
                dir: self.target.dir.clone(),
                source,
            }
        })?;
        self.spool = Some(spool);
        Ok(())
    }

    /// Adds a collector's entry: staged under a budget, else written now.
    pub fn stage(&mut self, collector: &str, path: &str, data: &[u8]) -> Result<(), BundleError> {
        match self.spool.as_mut() {
            Some(spool) => spool
                .stage(collector, path, data)
                .map_err(|source| write_err(&self.target, source)),
            None => self.add(collector, path, data),
        }
    }

    /// Writes the staged entries that fit the budget; see [`Spool::drain`].
    pub fn commit_staged(&mut self) -> Result<(), BundleError> {
        let Some(mut spool) = self.spool.take() else {
            return Ok(());
        };
        let file = self.temp.as_file().try_clone();
        let file = file.map_err(|source| write_err(&self.target, source))?;
        let written = || file.metadata().map(|meta| meta.len()).unwrap_or(0);
        let mut failure = None;
        spool
            .drain(written, |entry, data| {
                self.add(&entry.collector, &entry.path, data)
                    .map_err(|err| {
                        let io = std::io::Error::other(err.to_string());
                        failure = Some(err);
                        io
                    })
            })
            .map_err(|source| write_err(&self.target, source))
            .map_err(|err| failure.take().unwrap_or(err))?;
        self.dropped = std::mem::take(&mut spool.dropped);
        Ok(())
    }

    /// Entries left out to fit the budget, with the collector that wrote each.
    pub fn dropped(&self) -> &[(String, Cut)] {
        &self.dropped
    }

    /// Adds one file under the bundle's top folder.
    pub fn add(&mut self, collector: &str, path: &str, data: &[u8]) -> Result<(), BundleError> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        let full = format!("{}/{path}", self.target.root());
        self.tar
            .append_data(&mut header, &full, data)
            .map_err(|source| self.write_err(source))?;

        self.files.push(FileRecord {
            path: path.to_string(),
            size: data.len() as u64,
            sha256: sha256_hex(data),
            collector: collector.to_string(),
        });
        if data.len() <= KEEP_LIMIT && is_text_path(path) {
            self.kept.insert(path, data.to_vec());
        }
        Ok(())
    }

    /// The files written so far.
    pub fn files(&self) -> &[FileRecord] {
        &self.files
    }

    /// The small text entries written so far, for the analyzers.
    pub fn entries(&self) -> &Entries {
        &self.kept
    }

    /// Closes the archive and renames it into place; returns its path.
    pub fn finish(self) -> Result<PathBuf, BundleError> {
        let gz = self
            .tar
            .into_inner()
            .map_err(|e| write_err(&self.target, e))?;
        let mut buffered = gz.finish().map_err(|e| write_err(&self.target, e))?;
        buffered.flush().map_err(|e| write_err(&self.target, e))?;
        self.temp
            .as_file()
            .sync_all()
            .map_err(|e| write_err(&self.target, e))?;

        // Two runs in the same second pick the same name; the later one
        // takes the next free numbered name rather than fail.
        let mut temp = self.temp;
        let mut path = self.target.path();
        for n in 2.. {
            match temp.persist_noclobber(&path) {
                Ok(_) => break,
                Err(err) if err.error.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => {
                    temp = err.file;
                    let name = format!("{}-{n}.tar.gz", self.target.root());
                    path = self.target.dir.join(name);
                }
                Err(err) => {
                    return Err(BundleError::Persist {
                        path,
                        source: err.error,
                    });
                }
            }
        }
        if let Ok(dir) = File::open(&self.target.dir) {
            // Makes the rename durable; a failure here loses nothing written.
            let _ = dir.sync_all();
        }
        Ok(path)
    }

    fn write_err(&self, source: std::io::Error) -> BundleError {
        write_err(&self.target, source)
    }
}

fn write_err(target: &Target, source: std::io::Error) -> BundleError {
    BundleError::Write {
        path: target.path(),
        source,
    }
}

pub(super) fn is_text_path(path: &str) -> bool {
    [".json", ".jsonl", ".md", ".txt", ".log", ".toml"]
        .iter()
        .any(|ext| path.ends_with(ext))
}

/// The lowercase hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn writes_entries_under_a_top_folder_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let target = resolve_target(Some(dir.path()), "b-1.tar.gz").unwrap();
        let mut writer = BundleWriter::create(target, 0).unwrap();
        writer.add("t", "a/one.json", b"{}").unwrap();
        let path = writer.finish().unwrap();

        assert_eq!(path, dir.path().join("b-1.tar.gz"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "only the bundle remains");

        let gz = flate2::read::GzDecoder::new(File::open(&path).unwrap());
        let mut archive = tar::Archive::new(gz);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str().unwrap(), "b-1/a/one.json");
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        assert_eq!(text, "{}");
    }

    #[test]
    fn same_name_twice_keeps_both_bundles() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for _ in 0..2 {
            let target = resolve_target(Some(dir.path()), "b.tar.gz").unwrap();
            paths.push(BundleWriter::create(target, 0).unwrap().finish().unwrap());
        }
        assert_eq!(paths[0], dir.path().join("b.tar.gz"));
        assert_eq!(paths[1], dir.path().join("b-2.tar.gz"));
    }

    #[test]
    fn dropped_writer_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = resolve_target(Some(dir.path()), "b.tar.gz").unwrap();
        let writer = BundleWriter::create(target, 0).unwrap();
        drop(writer);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn file_output_path_and_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.tar.gz");
        let target = resolve_target(Some(&file), "default.tar.gz").unwrap();
        assert_eq!(target.path(), file);
        assert_eq!(target.root(), "mine");

        let missing = dir.path().join("nope");
        let err = resolve_target(Some(&missing), "x.tar.gz").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("output folder {} does not exist", missing.display())
        );
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
