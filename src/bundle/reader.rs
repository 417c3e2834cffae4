//! Reading a bundle back: the `.tar.gz` into [`Entries`] and its manifest.
//!
//! This is what lets `rctr-diag inspect` re-run the analyzers offline, on a
//! bundle from another machine or an older version. What cannot be read at
//! all (not a gzip, not a tar, cut short, no manifest, a newer major format)
//! is an error naming the file. What can be read but does not match its
//! manifest (a file whose sha256 differs, a listed file that is absent) is
//! returned as [`Problem`]s beside the contents, so the rest stays usable.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::manifest::{FORMAT_VERSION, Manifest};
use super::writer::{KEEP_LIMIT, is_text_path};
use super::{Entries, sha256_hex};

/// The bundle cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open bundle {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a bundle: it is not a gzip-compressed tar archive")]
    NotGzip { path: PathBuf },
    #[error("bundle {path} is truncated or corrupt")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an rctr-diag bundle: {why}")]
    Foreign { path: PathBuf, why: String },
    #[error("manifest.json of bundle {path} cannot be read")]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "bundle {path} has format version {found}, newer than the {supported} this rctr-diag \
         reads; use a newer rctr-diag"
    )]
    Newer {
        path: PathBuf,
        found: u64,
        supported: u32,
    },
}

/// Something in a readable bundle that does not match its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file's sha256 differs from the manifest's.
    Mismatch { path: String },
    /// The manifest lists the file but the archive does not hold it.
    Missing { path: String },
}

/// A bundle read back.
pub struct BundleContents {
    pub manifest: Manifest,
    /// The text entries the analyzers read, as the writer kept them.
    pub entries: Entries,
    pub problems: Vec<Problem>,
}

/// One file of the archive as read: its sha256 and, for text, its bytes.
struct FileRead {
    sha256: String,
    kept: Option<Vec<u8>>,
}

/// Reads the bundle at `path`.
pub fn read(path: &Path) -> Result<BundleContents, ReadError> {
    let file = std::fs::File::open(path).map_err(|source| ReadError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut magic = [0u8; 2];
    let is_gzip = (&file).read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    if !is_gzip {
        return Err(ReadError::NotGzip {
            path: path.to_path_buf(),
        });
    }
    let file = std::fs::File::open(path).map_err(|source| ReadError::Open {
        path: path.to_path_buf(),
        source,
    })?;

    let files = read_files(path, file)?;
    let foreign = |why: &str| ReadError::Foreign {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let Some(manifest) = files.get("manifest.json").and_then(|f| f.kept.as_ref()) else {
        return Err(foreign("it holds no manifest.json under a top folder"));
    };

    // The version decides how the rest is read, so it is looked at first.
    let value: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|source| ReadError::Manifest {
            path: path.to_path_buf(),
            source,
        })?;
    let Some(found) = value.get("format_version").and_then(|v| v.as_u64()) else {
        return Err(foreign("its manifest.json has no format_version"));
    };
    if found > u64::from(FORMAT_VERSION) {
        return Err(ReadError::Newer {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    let manifest: Manifest =
        serde_json::from_value(value).map_err(|source| ReadError::Manifest {
            path: path.to_path_buf(),
            source,
        })?;

    let mut problems = Vec::new();
    for record in &manifest.files {
        match files.get(&record.path) {
            None => problems.push(Problem::Missing {
                path: record.path.clone(),
            }),
            Some(read) if read.sha256 != record.sha256 => problems.push(Problem::Mismatch {
                path: record.path.clone(),
            }),
            Some(_) => {}
        }
    }
    let mut entries = Entries::default();
    for (name, read) in files {
        if let Some(data) = read.kept {
            entries.insert(&name, data);
        }
    }
    Ok(BundleContents {
        manifest,
        entries,
        problems,
    })
}

/// Every regular file of the archive by its path under the top folder.
fn read_files(path: &Path, file: std::fs::File) -> Result<BTreeMap<String, FileRead>, ReadError> {
    let corrupt = |source| ReadError::Corrupt {
        path: path.to_path_buf(),
        source,
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut files = BTreeMap::new();
    let mut top: Option<String> = None;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let full = entry
            .path()
            .map_err(corrupt)?
            .to_string_lossy()
            .into_owned();
        let Some((first, rest)) = full.split_once('/') else {
            return Err(ReadError::Foreign {
                path: path.to_path_buf(),
                why: format!("{full} is not under a top folder"),
            });
        };
        if top.get_or_insert_with(|| first.to_string()) != first {
            return Err(ReadError::Foreign {
                path: path.to_path_buf(),
                why: format!("it has more than one top folder ({first})"),
            });
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(corrupt)?;
        let kept = (data.len() <= KEEP_LIMIT && is_text_path(rest)).then(|| data.clone());
        files.insert(
            rest.to_string(),
            FileRead {
                sha256: sha256_hex(&data),
                kept,
            },
        );
    }
    // A gzip stream cut short can still yield whole entries; reading to the
    // end of the compressed stream tells.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(corrupt)?;
    if files.is_empty() {
        return Err(ReadError::Foreign {
            path: path.to_path_buf(),
            why: "the archive holds no file".into(),
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{BundleWriter, resolve_target};

    fn write_bundle(dir: &Path, manifest: &str) -> PathBuf {
        let target = resolve_target(Some(dir), "b.tar.gz").unwrap();
        let mut writer = BundleWriter::create(target, 0).unwrap();
        writer.add("t", "a/one.json", b"{}").unwrap();
        writer
            .add("report", "manifest.json", manifest.as_bytes())
            .unwrap();
        writer.finish().unwrap()
    }

    #[test]
    fn refuses_a_newer_format_and_a_foreign_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_bundle(dir.path(), r#"{"format_version": 99}"#);
        let err = read(&path).err().unwrap().to_string();
        assert!(err.contains("format version 99"), "{err}");

        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, "hello").unwrap();
        let err = read(&plain).err().unwrap().to_string();
        assert!(
            err.contains("plain.txt") && err.contains("not a gzip"),
            "{err}"
        );
    }
}
