//! Output caps shared by the generic kinds (`file`, `glob`, `exec`,
//! `journal`): every text they write is redacted, then cut to its
//! `max_bytes` keeping the newest part, and both are noted for the manifest.
//!
//! Redaction comes before the cut so a credential is never split by the cut
//! into a piece the patterns no longer recognise.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::CollectError;
use crate::bundle::Output;
use crate::bundle::manifest::Cut;
use crate::bundle::redact;

/// The cap of a copied file or a command's stream unless its spec says.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;

/// The cap of a journal or log unless its spec says.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// Files that say they are empty (`/proc`, `/sys`) are read up to this much.
const UNSIZED_READ_LIMIT: u64 = 64 * 1024 * 1024;

/// Keeps the newest (last) `max` bytes of `data`, starting at a line; returns
/// whether anything was cut.
pub fn keep_newest(data: Vec<u8>, max: u64) -> (Vec<u8>, bool) {
    let max = max as usize;
    if data.len() <= max {
        return (data, false);
    }
    let start = data.len() - max;
    // Start after the first line break in the kept part, so no line is torn.
    let start = match data[start..].iter().position(|&b| b == b'\n') {
        Some(at) if at + 1 < max => start + at + 1,
        _ => start,
    };
    (data[start..].to_vec(), true)
}

/// Reads the newest part of a file: at most `max` bytes from its end plus
/// one line before, and its total size.
pub fn read_tail(path: &Path, max: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut data = Vec::new();
    if size > max {
        // A little extra so the first kept line can be completed.
        let from = size - max - 1;
        file.seek(SeekFrom::Start(from))?;
        file.take(max + 1).read_to_end(&mut data)?;
        return Ok((data, size));
    }
    let limit = if size == 0 {
        UNSIZED_READ_LIMIT
    } else {
        max + 1
    };
    file.take(limit).read_to_end(&mut data)?;
    let total = size.max(data.len() as u64);
    Ok((data, total))
}

/// Redacts (when asked) and caps `data`, then writes it to `name` inside the
/// output folder, or to the output file when `name` is `None`.
///
/// `original` is the size of the source when more was there than `data`
/// holds.
pub async fn put_capped(
    out: &Output,
    name: Option<&str>,
    data: Vec<u8>,
    original: u64,
    max: u64,
    redacting: bool,
) -> Result<(), CollectError> {
    let data = if redacting {
        let (data, count) = redact::redact_bytes(data);
        out.add_redactions(count as usize);
        data
    } else {
        data
    };
    let before = (data.len() as u64).max(original);
    let (data, _) = keep_newest(data, max);
    let kept = data.len() as u64;
    let path = name
        .map(|n| format!("{}{n}", out.base()))
        .unwrap_or_else(|| out.base().to_string());
    if kept < before {
        out.note_cut(Cut {
            path,
            original_bytes: before,
            kept_bytes: kept,
            reason: format!("kept the newest {kept} bytes (max_bytes = {max})"),
        });
    }
    match name {
        Some(name) => out.put_in(name, data).await?,
        None => out.put(data).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_whole_lines() {
        let data = b"line one\nline two\nline three\n".to_vec();
        let (kept, cut) = keep_newest(data.clone(), 16);
        assert!(cut);
        assert_eq!(kept, b"line three\n");
        assert_eq!(keep_newest(data.clone(), 100), (data, false));
    }

    #[test]
    fn reads_the_tail_of_a_large_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let (data, total) = read_tail(&path, 100).unwrap();
        assert_eq!(total, text.len() as u64);
        let (kept, _) = keep_newest(data, 100);
        let kept = String::from_utf8(kept).unwrap();
        assert!(
            kept.starts_with("line 9") && kept.ends_with("line 999\n"),
            "{kept}"
        );
    }
}
