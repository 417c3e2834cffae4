//! The size budget (`--max-size`): what goes into the archive when not
//! everything fits.
//!
//! Collectors finish in any order, so the archive cannot decide entry by
//! entry as they arrive without risking a large low-priority log crowding out
//! a small high-priority one. Instead entries are staged in an unnamed spool
//! file beside the bundle and, when the run ends, written highest priority
//! first (arrival order within a priority) while the compressed archive stays
//! under the budget; whatever does not fit is dropped and reported.
//!
//! The compressed size of an entry is known only once written, so the check
//! is conservative: an entry is admitted when the archive so far, plus the
//! entry compressed on its own at the fastest level (which compresses no
//! better than the archive's level), plus slack for buffers, stays under the
//! budget less a reserve for the report files written last.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::manifest::Cut;

/// Bytes the compressor and the file buffer may hold unflushed.
const SLACK: u64 = 128 * 1024;

/// Per-entry tar header and padding.
const ENTRY_OVERHEAD: u64 = 1024;

/// Entries waiting for the end of the run.
pub struct Spool {
    max: u64,
    priorities: HashMap<String, u8>,
    file: File,
    end: u64,
    staged: Vec<Staged>,
    /// Entries left out, by collector.
    pub dropped: Vec<(String, Cut)>,
}

/// One staged entry.
pub struct Staged {
    pub collector: String,
    pub path: String,
    pub priority: u8,
    offset: u64,
    len: u64,
}

impl Spool {
    /// A spool in `dir` for a bundle of at most `max` bytes; `priorities`
    /// maps collector names to their priority (higher is kept first).
    pub fn new(
        dir: &std::path::Path,
        max: u64,
        priorities: HashMap<String, u8>,
    ) -> std::io::Result<Self> {
        Ok(Spool {
            max,
            priorities,
            file: tempfile::tempfile_in(dir)?,
            end: 0,
            staged: Vec::new(),
            dropped: Vec::new(),
        })
    }

    /// Keeps an entry until [`Spool::drain`].
    pub fn stage(&mut self, collector: &str, path: &str, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(data, self.end)?;
        let priority = self.priorities.get(collector).copied().unwrap_or(50);
        self.staged.push(Staged {
            collector: collector.to_string(),
            path: path.to_string(),
            priority,
            offset: self.end,
            len: data.len() as u64,
        });
        self.end += data.len() as u64;
        Ok(())
    }

    /// Hands every staged entry to `write`, highest priority first, while it
    /// fits; `written` tells the archive's size so far. Entries that do not
    /// fit are recorded in `dropped`.
    pub fn drain(
        &mut self,
        mut written: impl FnMut() -> u64,
        mut write: impl FnMut(&Staged, &[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut staged = std::mem::take(&mut self.staged);
        // Stable: arrival order stays within one priority.
        staged.sort_by_key(|entry| std::cmp::Reverse(entry.priority));
        let reserve = (self.max / 10).min(1024 * 1024);
        let limit = self.max.saturating_sub(reserve);
        for entry in &staged {
            let mut data = vec![0u8; entry.len as usize];
            self.file.read_exact_at(&mut data, entry.offset)?;
            let now = written() + SLACK + ENTRY_OVERHEAD;
            // Most entries fit even uncompressed; estimate only when not.
            let fits =
                now + entry.len + entry.len / 100 <= limit || now + compressed_len(&data) <= limit;
            if fits {
                write(entry, &data)?;
            } else {
                self.dropped.push((
                    entry.collector.clone(),
                    Cut {
                        path: entry.path.clone(),
                        original_bytes: entry.len,
                        kept_bytes: 0,
                        reason: format!(
                            "dropped to keep the bundle under --max-size {} (priority {})",
                            format_size(self.max),
                            entry.priority
                        ),
                    },
                ));
            }
        }
        Ok(())
    }
}

/// The size of `data` compressed on its own at the fastest level.
fn compressed_len(data: &[u8]) -> u64 {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    let _ = gz.write_all(data);
    gz.finish()
        .map(|out| out.len() as u64)
        .unwrap_or(data.len() as u64)
}

/// Formats a byte count in binary units (`100 MiB`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Parses a size such as `100MiB`, `2M`, `512k` or `1048576`; units are
/// powers of 1024 whether written `M`, `MB` or `MiB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 100MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("{text:?} has an unknown unit (use K, M, G or T)")),
    };
    number
        .checked_mul(1u64 << shift)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text:?} is not a usable size"))
}

/// The free space of the filesystem holding `dir`, for unprivileged users.
pub fn free_space(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidInput, err))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid NUL-terminated string and `stat` points to
    // writable memory of the right type; statvfs fills it on success.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail * stat.f_frsize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_sizes() {
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert_eq!(format_size(100 << 20), "100 MiB");
        assert_eq!(format_size(1536), "1.5 KiB");
    }

    #[test]
    fn drops_the_lowest_priority_first() {
        let dir = tempfile::tempdir().unwrap();
        let priorities = HashMap::from([("high".to_string(), 90), ("low".to_string(), 10)]);
        let mut spool = Spool::new(dir.path(), 1024 * 1024, priorities).unwrap();
        // xorshift output does not compress, so both entries cannot fit.
        let mut state = 0x9e3779b97f4a7c15u64;
        let noise: Vec<u8> = (0..700_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        spool.stage("low", "low.bin", &noise).unwrap();
        spool.stage("high", "high.bin", &noise).unwrap();
        let total = std::cell::Cell::new(0u64);
        let mut order = Vec::new();
        spool
            .drain(
                || total.get(),
                |entry, data| {
                    total.set(total.get() + data.len() as u64);
                    order.push(entry.path.clone());
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(order, vec!["high.bin"]);
        assert_eq!(spool.dropped.len(), 1);
        assert_eq!(spool.dropped[0].0, "low");
        assert_eq!(spool.dropped[0].1.kept_bytes, 0);
    }
}
