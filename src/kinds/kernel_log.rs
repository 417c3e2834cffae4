//! `kernel-log`: the kernel's message buffer, newest part kept.
//!
//! `dmesg` is asked first since it formats timestamps as wall-clock time.
//! Where it is not installed or may not read the buffer, `/dev/kmsg` is read
//! directly, non-blocking, so reading stops at the last record instead of
//! waiting for new ones. Neither being readable (an unprivileged container)
//! is a skip with the reason. OOM kills and hung tasks in this log are what
//! the `kernel` analyzer looks for.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

use serde::Deserialize;

use super::exec;
use super::limit::{self, DEFAULT_LOG_MAX_BYTES};
use super::{CollectError, Context, Outcome};
use crate::bundle::Output;
use crate::spec::Spec;

/// `kernel-log` parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelLogParams {
    pub max_bytes: Option<u64>,
}

pub async fn collect(ctx: &Context, spec: &Spec, out: &Output) -> Result<Outcome, CollectError> {
    let params: KernelLogParams = super::decode_params(&spec.params).expect("checked when loaded");
    let max = params.max_bytes.unwrap_or(DEFAULT_LOG_MAX_BYTES);

    let argv: Vec<String> = ["dmesg", "--time-format", "iso"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let why_not = match exec::run(&argv, spec.timeout.mul_f64(0.5), max).await {
        Ok(result) if result.exit_code == Some(0) => {
            let size = result.stdout_bytes;
            limit::put_capped(out, None, result.stdout, size, max, ctx.redact).await?;
            return Ok(Outcome::Done);
        }
        Ok(result) => format!(
            "dmesg failed: {}",
            String::from_utf8_lossy(&result.stderr).trim()
        ),
        Err(exec::Start::NotFound(_)) => "dmesg is not installed".to_string(),
        Err(exec::Start::Failed(err)) => format!("cannot run dmesg: {err}"),
    };

    let read = tokio::task::spawn_blocking(move || read_kmsg(max))
        .await
        .expect("reading /dev/kmsg does not panic");
    match read {
        Ok((text, size)) => {
            limit::put_capped(out, None, text, size, max, ctx.redact).await?;
            Ok(Outcome::Done)
        }
        Err(err) => Ok(Outcome::Skipped(format!(
            "{why_not}, and /dev/kmsg cannot be read: {err}"
        ))),
    }
}

/// Reads every record in `/dev/kmsg` without waiting for new ones, as
/// `[seconds] message` lines; keeps about the newest `max` bytes.
fn read_kmsg(max: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let mut kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")?;
    let mut text = Vec::new();
    let mut total = 0u64;
    let mut record = vec![0u8; 8192];
    loop {
        match kmsg.read(&mut record) {
            Ok(0) => break,
            Ok(n) => {
                let line = format_record(&record[..n]);
                total += line.len() as u64;
                text.extend_from_slice(line.as_bytes());
                if text.len() as u64 > max.saturating_mul(2) {
                    let (kept, _) = limit::keep_newest(std::mem::take(&mut text), max);
                    text = kept;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
            // A record overwritten while reading; the next read goes on.
            Err(err) if err.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(err) => return Err(err),
        }
    }
    Ok((text, total))
}

/// `pri,seq,usec,flags;message` → `[seconds] message`.
fn format_record(record: &[u8]) -> String {
    let text = String::from_utf8_lossy(record);
    let Some((head, body)) = text.split_once(';') else {
        return format!("{}\n", text.trim_end());
    };
    let usec: u64 = head
        .split(',')
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // Continuation lines (starting with a space) hold key=value context.
    let message = body.lines().next().unwrap_or("");
    format!(
        "[{:>5}.{:06}] {message}\n",
        usec / 1_000_000,
        usec % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_a_kmsg_record() {
        let line = format_record(b"6,1234,5000123,-;eth0: link up\n SUBSYSTEM=net\n");
        assert_eq!(line, "[    5.000123] eth0: link up\n");
    }
}
