//! Goroutine dumps: how many goroutines and in what state, stacks shared by
//! suspiciously many, lock waits long enough to suggest a deadlock, and,
//! with two SIGUSR1 dumps, lock waits that did not move between them.
//!
//! The dumps are read as stored (debug socket text, or the SIGUSR1 stack
//! files) and parsed again here, so bundles from any version get findings.
//! The daemon's load is read from the dump itself: every shim containerd
//! talks to has one ttrpc client goroutine (started by `ttrpc.NewClient`),
//! in 1.x and 2.x alike. An idle containerd runs a few dozen goroutines and
//! each shim adds a handful, so ten times that (and at least a thousand), or
//! hundreds sharing one stack, are far from normal.

use super::goroutine_dump::{self, Dump, Group, LONG_WAIT_MINUTES};
use super::{Finding, Input, Severity};

/// Goroutines an idle containerd runs, about.
const IDLE: usize = 50;
/// Goroutines each shim connection adds, about.
const PER_SHIM: usize = 10;
/// How far above the expected count is "far above".
const FAR_ABOVE: usize = 10;
/// Fewer goroutines than this are never too many.
const FLOOR: usize = 1000;
/// The function that starts one goroutine per shim connection.
const SHIM_CLIENT: &str = "github.com/containerd/ttrpc.NewClient";
/// One stack shared by more goroutines than this looks like a leak.
const LEAK_GROUP: usize = 500;

pub fn analyze(input: &Input) -> Vec<Finding> {
    let mut findings = Vec::new();
    let socket = input.bytes_of_kind("debug-goroutines", ".txt");
    let signalled = input.bytes_of_kind("signal-dump", ".log");

    // Judge the socket's dump when there is one, else the latest SIGUSR1 one.
    let latest = socket.first().or(signalled.last());
    if let Some((file, data)) = latest {
        let dump = goroutine_dump::parse(&String::from_utf8_lossy(data));
        findings.extend(judge(&dump, file));
    }
    if let [(_, first), .., (file, last)] = signalled.as_slice() {
        let first = goroutine_dump::parse(&String::from_utf8_lossy(first));
        let last = goroutine_dump::parse(&String::from_utf8_lossy(last));
        findings.extend(stuck(&first, &last, file));
    }
    findings
}

fn judge(dump: &Dump, file: &str) -> Vec<Finding> {
    let summary = goroutine_dump::summarize(dump);
    let mut states: Vec<(&String, &usize)> = summary.by_state.iter().collect();
    states.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let states: Vec<String> = states.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let shims = dump
        .goroutines
        .iter()
        .filter(|g| g.created_by.as_deref() == Some(SHIM_CLIENT))
        .count();
    let expected = IDLE + PER_SHIM * shims;
    let mut findings = vec![Finding {
        severity: Severity::Info,
        analyzer: "goroutines".into(),
        title: format!(
            "containerd runs {} goroutines ({} distinct stacks)",
            summary.total, summary.distinct_stacks
        ),
        evidence: format!(
            "by state: {}; {shims} shim connection(s)",
            states.join(", ")
        ),
        file: Some(file.to_string()),
        action: "Nothing to do by itself; the groups of identical stacks are in the \
                 summary.json beside the dump."
            .into(),
    }];

    if summary.total > (FAR_ABOVE * expected).max(FLOOR) {
        findings.push(Finding {
            severity: Severity::Warning,
            analyzer: "goroutines".into(),
            title: format!(
                "{} goroutines is far above normal for {shims} shim(s) (about {expected})",
                summary.total
            ),
            evidence: biggest(&summary.groups),
            file: Some(file.to_string()),
            action: "A goroutine leak or a pile-up behind a blocked call: look at where the \
                     largest groups wait."
                .into(),
        });
    } else if let Some(group) = summary.groups.first().filter(|g| g.count > LEAK_GROUP) {
        findings.push(Finding {
            severity: Severity::Warning,
            analyzer: "goroutines".into(),
            title: format!("{} goroutines share one stack", group.count),
            evidence: describe(group),
            file: Some(file.to_string()),
            action: "So many identical goroutines suggest a leak or requests piling up \
                     behind one slow call; see where they wait."
                .into(),
        });
    }

    for group in &summary.long_blocked {
        findings.push(Finding {
            severity: Severity::Warning,
            analyzer: "goroutines".into(),
            title: format!(
                "{} goroutine(s) blocked for {}+ minutes in {}: possible deadlock",
                group.count,
                group.max_wait_minutes.unwrap_or(LONG_WAIT_MINUTES),
                group.waits_in.as_deref().unwrap_or("an unknown function")
            ),
            evidence: describe(group),
            file: Some(file.to_string()),
            action: "Goroutines waiting this long for a lock usually wait on one that is \
                     never released: find who holds it (the same lock in other stacks) and \
                     attach this dump to a containerd bug report."
                .into(),
        });
    }
    findings
}

fn stuck(first: &Dump, last: &Dump, file: &str) -> Vec<Finding> {
    goroutine_dump::unmoved(first, last)
        .iter()
        .filter(|group| {
            group
                .states
                .keys()
                .any(|state| goroutine_dump::lock_like_state(state))
        })
        .map(|group| Finding {
            severity: Severity::Warning,
            analyzer: "goroutines".into(),
            title: format!(
                "{} goroutine(s) did not move between the two dumps, waiting in {}",
                group.count,
                group.waits_in.as_deref().unwrap_or("an unknown function")
            ),
            evidence: describe(group),
            file: Some(file.to_string()),
            action: "A lock wait that does not move between dumps seconds apart is stuck; \
                     look for the goroutine holding the lock."
                .into(),
        })
        .collect()
}

fn describe(group: &Group) -> String {
    let states: Vec<String> = group
        .states
        .iter()
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    let top: Vec<&str> = group
        .frames
        .iter()
        .take(4)
        .map(|f| f.function.as_str())
        .collect();
    format!(
        "{} goroutine(s) [{}], e.g. goroutine {}; stack: {}",
        group.count,
        states.join(", "),
        group
            .ids
            .first()
            .map(u64::to_string)
            .unwrap_or_else(|| "?".into()),
        top.join(" ← ")
    )
}

fn biggest(groups: &[Group]) -> String {
    let parts: Vec<String> = groups
        .iter()
        .take(3)
        .map(|g| {
            format!(
                "{} in {}",
                g.count,
                g.waits_in.as_deref().unwrap_or("an unknown function")
            )
        })
        .collect();
    format!("largest groups: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::Entries;
    use crate::bundle::manifest::{CollectorRecord, Status};

    fn record(kind: &str, files: &[&str]) -> CollectorRecord {
        CollectorRecord {
            name: format!("profiles.{kind}"),
            kind: kind.into(),
            status: Status::Ok,
            duration_ms: 1,
            reason: None,
            error: None,
            files: files.iter().map(|f| f.to_string()).collect(),
            redactions: 0,
            cuts: Vec::new(),
        }
    }

    const STUCK: &str = "goroutine 1 [chan receive]:
main.main()
\tmain.go:1 +0x1

goroutine 20 [sync.Mutex.Lock, 37 minutes]:
sync.runtime_SemacquireMutex(0x1)
\truntime/sema.go:77 +0x25
sync.(*Mutex).Lock(...)
\tsync/mutex.go:90
example.com/store.(*Store).Put(0xc0)
\tstore.go:12 +0x3a
";

    #[test]
    fn a_long_lock_wait_is_a_possible_deadlock_naming_its_function() {
        let mut entries = Entries::default();
        entries.insert("g/goroutines.txt", STUCK.as_bytes().to_vec());
        let records = [record("debug-goroutines", &["g/goroutines.txt"])];
        let findings = analyze(&Input {
            entries: &entries,
            collectors: &records,
        });
        assert_eq!(
            findings[0].title,
            "containerd runs 2 goroutines (2 distinct stacks)"
        );
        let deadlock = &findings[1];
        assert_eq!(deadlock.severity, Severity::Warning);
        assert_eq!(
            deadlock.title,
            "1 goroutine(s) blocked for 37+ minutes in example.com/store.(*Store).Put: \
             possible deadlock"
        );
        assert_eq!(deadlock.file.as_deref(), Some("g/goroutines.txt"));
    }

    #[test]
    fn goroutines_far_above_the_load_are_flagged() {
        let idle = "goroutine 1 [select]:\nmain.loop()\n\tmain.go:1 +0x1\n\n";
        let shim = "goroutine 2 [IO wait]:\nttrpc.read()\n\tc.go:1 +0x1\n\
                    created by github.com/containerd/ttrpc.NewClient in goroutine 1\n\tc.go:2\n\n";
        let count = |shims: usize, idles: usize| {
            let text = shim.repeat(shims) + &idle.repeat(idles);
            let mut entries = Entries::default();
            entries.insert("g/goroutines.txt", text.into_bytes());
            let records = [record("debug-goroutines", &["g/goroutines.txt"])];
            analyze(&Input {
                entries: &entries,
                collectors: &records,
            })
            .into_iter()
            .filter(|f| f.title.contains("far above normal"))
            .count()
        };
        assert_eq!(count(0, 900), 0);
        assert_eq!(count(0, 1200), 1);
        // 100 shims make about 1050 normal: 1200 is fine, 12000 is not.
        assert_eq!(count(100, 1100), 0);
        assert_eq!(count(100, 12000), 1);
    }

    #[test]
    fn lock_waits_that_did_not_move_between_signal_dumps_are_flagged() {
        let second = STUCK.replace("37 minutes", "38 minutes");
        let mut entries = Entries::default();
        entries.insert("s/stacks-1.log", STUCK.as_bytes().to_vec());
        entries.insert("s/stacks-2.log", second.into_bytes());
        let records = [record("signal-dump", &["s/stacks-1.log", "s/stacks-2.log"])];
        let findings = analyze(&Input {
            entries: &entries,
            collectors: &records,
        });
        let titles: Vec<&str> = findings.iter().map(|f| f.title.as_str()).collect();
        assert!(
            titles.contains(
                &"1 goroutine(s) did not move between the two dumps, waiting in \
                  example.com/store.(*Store).Put"
            ),
            "{titles:?}"
        );
    }
}
