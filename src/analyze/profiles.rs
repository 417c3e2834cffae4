//! The debug socket's profiles: whether there are any, the top CPU and heap
//! consumers, and containerd's resident memory against its Go heap.
//!
//! Top lists are informational: they say where the time and memory go, not
//! that anything is wrong. The memory comparison points a reader at the
//! right tool: a heap close to the RSS is explained by the heap profile, a
//! heap far below it means memory outside Go's heap (stacks, cgo, pages not
//! yet returned to the kernel). The top lists are read from the `top.json`
//! the profile collectors write beside each profile: the bundle keeps only
//! text files in memory for analyzers, and the profiles are binary.

use serde_json::Value;

use super::pprof_data::Top;
use super::{Finding, Input, Severity};
use crate::bundle::manifest::Status;
use crate::kinds::{CpuTop, HeapTop, Kind};

/// How many functions a finding names.
const NAMED: usize = 5;
/// A heap in use above this is a lot for containerd.
const BIG_HEAP: i64 = 2 << 30;

pub fn analyze(input: &Input) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(socket_off(input));
    let heap = input.json_of_kind::<HeapTop>("debug-heap");
    if let Some((file, top)) = &heap {
        findings.push(heap_top(file, &top.inuse_space));
    }
    if let Some((file, top)) = input.json_of_kind::<CpuTop>("debug-cpu-profile") {
        findings.push(cpu_top(&file, &top.cpu));
    }
    findings.extend(memory(
        input,
        heap.as_ref().map(|(_, top)| &top.inuse_space),
    ));
    findings
}

/// One note when the debug collectors were skipped for want of a socket.
fn socket_off(input: &Input) -> Option<Finding> {
    let record = input.collectors.iter().find(|record| {
        Kind::from_name(&record.kind).is_some_and(Kind::uses_debug_socket)
            && record.status == Status::Skipped
            && record
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("debug socket is not enabled"))
    })?;
    Some(Finding {
        severity: Severity::Info,
        analyzer: "profiles".into(),
        title: "containerd's debug socket is off: no pprof profiles in this bundle".into(),
        // Indented so the config lines stay inside the summary's list item.
        evidence: record
            .reason
            .clone()
            .unwrap_or_default()
            .replace('\n', "\n    "),
        file: Some("manifest.json".into()),
        action: "Enable the debug socket with the config lines above and restart containerd \
                 for profiles next time; for a goroutine dump now, run again with \
                 --signal-dump (sends SIGUSR1 to containerd)."
            .into(),
    })
}

fn heap_top(file: &str, top: &Top) -> Finding {
    let names: Vec<String> = top
        .by_flat
        .iter()
        .filter(|e| e.flat > 0)
        .take(NAMED)
        .map(|e| format!("{} {}", e.function, bytes(e.flat)))
        .collect();
    Finding {
        severity: Severity::Info,
        analyzer: "profiles".into(),
        title: format!("heap in use: {} (sampled)", bytes(top.total)),
        evidence: format!("top allocation sites: {}", names.join(", ")),
        file: Some(file.to_string()),
        action: "The flame graph beside the profile shows the whole picture; \
                 `go tool pprof` opens the profile."
            .into(),
    }
}

fn cpu_top(file: &str, top: &Top) -> Finding {
    let names: Vec<String> = top
        .by_flat
        .iter()
        .filter(|e| e.flat > 0)
        .take(NAMED)
        .map(|e| format!("{} {}ms", e.function, e.flat / 1_000_000))
        .collect();
    let seconds = top.duration_nanos as f64 / 1e9;
    let busy = if top.duration_nanos > 0 {
        100.0 * top.total as f64 / top.duration_nanos as f64
    } else {
        0.0
    };
    Finding {
        severity: Severity::Info,
        analyzer: "profiles".into(),
        title: format!(
            "CPU: {}ms in {seconds:.1}s ({busy:.0}% of one core)",
            top.total / 1_000_000
        ),
        evidence: if names.is_empty() {
            "no samples: the daemon was idle".into()
        } else {
            format!("top functions (flat): {}", names.join(", "))
        },
        file: Some(file.to_string()),
        action: "The flame graph beside the profile shows where the time goes.".into(),
    }
}

/// containerd's RSS against its Go heap (expvar memstats when collected,
/// else the heap profile's sampled estimate).
fn memory(input: &Input, heap: Option<&Top>) -> Option<Finding> {
    let (file, process) = input.json_of_kind::<Value>("containerd-process")?;
    let rss = process.get("rss_bytes")?.as_i64()?;
    let vars = input
        .bytes_of_kind("debug-vars", "")
        .into_iter()
        .find_map(|(_, data)| serde_json::from_slice::<Value>(data).ok());
    let stats = vars.as_ref().and_then(|v| v.get("memstats"));
    let stat = |name: &str| stats.and_then(|s| s.get(name)).and_then(Value::as_i64);
    let (in_use, source) = match (stat("HeapInuse"), heap) {
        (Some(n), _) => (n, "memstats HeapInuse"),
        (None, Some(top)) => (top.total, "heap profile, sampled"),
        (None, None) => return None,
    };
    let mut evidence = format!(
        "RSS {}, Go heap in use {} ({source})",
        bytes(rss),
        bytes(in_use)
    );
    if let (Some(sys), Some(idle), Some(released)) =
        (stat("Sys"), stat("HeapIdle"), stat("HeapReleased"))
    {
        evidence.push_str(&format!(
            "; Go runtime holds {} from the OS, {} of it idle heap not yet returned",
            bytes(sys),
            bytes(idle - released)
        ));
    }
    let share = 100.0 * in_use as f64 / rss.max(1) as f64;
    let (severity, action) = if in_use > BIG_HEAP {
        (
            Severity::Warning,
            "containerd's heap is large: the heap profile's top allocation sites say what \
             holds it (many images, containers or leaked objects).",
        )
    } else if share < 30.0 {
        (
            Severity::Info,
            "Most of the RSS is outside Go's heap in use (goroutine stacks, idle pages not \
             yet returned, cgo); the heap profile will not explain it.",
        )
    } else {
        (
            Severity::Info,
            "The heap explains most of the RSS; its profile shows what holds it.",
        )
    };
    Some(Finding {
        severity,
        analyzer: "profiles".into(),
        title: format!("containerd memory: heap in use is {share:.0}% of RSS"),
        evidence,
        file: Some(file),
        action: action.into(),
    })
}

/// Formats a byte count with a binary unit.
fn bytes(n: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn formats_bytes_with_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }
}
