//! Go goroutine dumps as text: the parser and the summary built from it.
//!
//! The same text comes from the debug socket (`/debug/pprof/goroutine?debug=2`)
//! and from the file containerd writes on SIGUSR1, in every containerd
//! version: blocks of `goroutine N [state, M minutes]:` followed by pairs of a
//! function line and a tab-indented `file:line +0xoff` line, ending with an
//! optional `created by ...` pair. Dumps arrive truncated, interleaved with log
//! lines, or from Go versions that add header fields, so the parser never
//! fails: it keeps what it recognises, counts what it does not, and leaves the
//! judgement to the summary. Stacks are compared without argument values and
//! program counter offsets, which differ between goroutines doing the same
//! thing.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// How many groups a summary keeps, largest first.
const TOP_GROUPS: usize = 20;
/// How many goroutine ids a group lists.
const GROUP_IDS: usize = 10;
/// Waits at least this long in a lock-like state look like a deadlock.
pub const LONG_WAIT_MINUTES: u64 = 5;

/// One goroutine of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goroutine {
    pub id: u64,
    /// The wait reason or run state: `select`, `IO wait`, `semacquire`, ...
    pub state: String,
    /// How long it has been blocked, when Go says (one minute or more).
    pub wait_minutes: Option<u64>,
    pub locked_to_thread: bool,
    /// Innermost call first.
    pub frames: Vec<Frame>,
    /// The function that started it, without arguments.
    pub created_by: Option<String>,
}

/// One call of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    /// The function, without its argument values.
    pub function: String,
    /// `file:line`, without the program counter offset; empty if missing.
    pub location: String,
}

/// A parsed dump.
#[derive(Debug, Default)]
pub struct Dump {
    pub goroutines: Vec<Goroutine>,
    /// Lines that belonged to no goroutine (log lines, garbage).
    pub stray_lines: usize,
}

/// Parses a goroutine dump; never fails, whatever the input.
pub fn parse(text: &str) -> Dump {
    let mut dump = Dump::default();
    let mut current: Option<Goroutine> = None;
    let mut pending: Option<String> = None;

    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(header) = parse_header(line) {
            finish(&mut dump, current.take(), pending.take());
            current = Some(header);
            continue;
        }
        let Some(g) = current.as_mut() else {
            if !line.trim().is_empty() {
                dump.stray_lines += 1;
            }
            continue;
        };
        if line.trim().is_empty() {
            finish(&mut dump, current.take(), pending.take());
        } else if let Some(location) = line.strip_prefix('\t') {
            let location = strip_offset(location.trim());
            match pending.take() {
                Some(function) => push_call(g, function, location),
                None => dump.stray_lines += 1,
            }
        } else if line.starts_with("...") {
            // "...additional frames elided..." and the like.
            if let Some(function) = pending.take() {
                push_call(g, function, String::new());
            }
        } else {
            if let Some(function) = pending.take() {
                push_call(g, function, String::new());
            }
            pending = Some(line.trim().to_string());
        }
    }
    finish(&mut dump, current, pending);
    dump
}

fn finish(dump: &mut Dump, goroutine: Option<Goroutine>, pending: Option<String>) {
    if let Some(mut g) = goroutine {
        if let Some(function) = pending {
            push_call(&mut g, function, String::new());
        }
        dump.goroutines.push(g);
    }
}

fn push_call(g: &mut Goroutine, function: String, location: String) {
    if let Some(creator) = function.strip_prefix("created by ") {
        // Go 1.21 and newer add " in goroutine N".
        let creator = creator.split(" in goroutine ").next().unwrap_or(creator);
        g.created_by = Some(strip_args(creator).to_string());
    } else {
        g.frames.push(Frame {
            function: strip_args(&function).to_string(),
            location,
        });
    }
}

/// Reads `goroutine 12 [chan receive, 3 minutes, locked to thread]:`; newer Go
/// may put fields between the id and the bracket, a cut file may lose the end.
fn parse_header(line: &str) -> Option<Goroutine> {
    let rest = line.strip_prefix("goroutine ")?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let id = rest[..digits].parse().ok()?;
    let open = rest.find('[')?;
    let inner = &rest[open + 1..];
    let inner = match inner.rfind(']') {
        Some(close) => &inner[..close],
        None => inner,
    };
    let mut fields = inner.split(", ");
    let state = fields.next().unwrap_or("").trim().to_string();
    let mut goroutine = Goroutine {
        id,
        state: if state.is_empty() {
            "unknown".into()
        } else {
            state
        },
        wait_minutes: None,
        locked_to_thread: false,
        frames: Vec::new(),
        created_by: None,
    };
    for field in fields {
        let field = field.trim();
        if field == "locked to thread" {
            goroutine.locked_to_thread = true;
        } else if let Some(n) = field
            .strip_suffix(" minutes")
            .or_else(|| field.strip_suffix(" minute"))
        {
            goroutine.wait_minutes = n.trim().parse().ok();
        }
    }
    Some(goroutine)
}

/// `runtime/proc.go:398 +0x1b` → `runtime/proc.go:398`.
fn strip_offset(location: &str) -> String {
    match location.rfind(" +0x") {
        Some(at) => location[..at].to_string(),
        None => location.to_string(),
    }
}

/// `net.(*conn).Read(0xc0, {0x1, 0x2})` → `net.(*conn).Read`.
fn strip_args(call: &str) -> &str {
    let call = call.trim();
    if !call.ends_with(')') {
        return call;
    }
    let mut depth = 0usize;
    for (at, c) in call.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let head = &call[..at];
                    // A receiver such as `(*FD)` is part of the name; a call
                    // always follows a name character.
                    return if head.is_empty() || head.ends_with('.') {
                        call
                    } else {
                        head
                    };
                }
            }
            _ => {}
        }
    }
    call
}

impl Goroutine {
    /// Tells whether the goroutine waits on a lock or a channel send, where
    /// a long wait suggests a deadlock rather than an idle loop.
    pub fn lock_like(&self) -> bool {
        lock_like_state(&self.state)
    }

    /// The first frame outside the Go runtime and `sync`: where the program
    /// itself waits.
    pub fn waits_in(&self) -> Option<&str> {
        self.frames
            .iter()
            .map(|f| f.function.as_str())
            .find(|f| !is_runtime(f))
            .or_else(|| self.frames.first().map(|f| f.function.as_str()))
    }
}

/// Tells whether a goroutine state is a wait on a lock or a channel send.
pub fn lock_like_state(state: &str) -> bool {
    [
        "semacquire",
        "sync.Mutex",
        "sync.RWMutex",
        "sync.WaitGroup",
        "chan send",
    ]
    .iter()
    .any(|prefix| state.starts_with(prefix))
}

fn is_runtime(function: &str) -> bool {
    ["runtime.", "sync.", "internal/", "sync/atomic."]
        .iter()
        .any(|prefix| function.starts_with(prefix))
}

/// Goroutines with identical stacks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub count: usize,
    /// State → how many of the group are in it.
    pub states: BTreeMap<String, usize>,
    /// The longest wait among them, in minutes.
    pub max_wait_minutes: Option<u64>,
    /// Where the program itself waits (first frame outside runtime and sync).
    pub waits_in: Option<String>,
    pub created_by: Option<String>,
    /// The first few goroutine ids.
    pub ids: Vec<u64>,
    /// The shared stack, innermost call first.
    pub frames: Vec<Frame>,
}

/// What a dump shows at a glance; `total` counts every goroutine parsed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub by_state: BTreeMap<String, usize>,
    /// How many distinct stacks there are.
    pub distinct_stacks: usize,
    /// The largest groups, largest first.
    pub groups: Vec<Group>,
    /// Groups in a lock-like state for at least [`LONG_WAIT_MINUTES`].
    pub long_blocked: Vec<Group>,
    pub stray_lines: usize,
}

/// Summarizes a parsed dump.
pub fn summarize(dump: &Dump) -> Summary {
    let mut by_state = BTreeMap::new();
    for g in &dump.goroutines {
        *by_state.entry(g.state.clone()).or_insert(0) += 1;
    }
    let groups = group(dump.goroutines.iter());
    let long_blocked = group(
        dump.goroutines
            .iter()
            .filter(|g| g.lock_like() && g.wait_minutes.unwrap_or(0) >= LONG_WAIT_MINUTES),
    );
    Summary {
        total: dump.goroutines.len(),
        by_state,
        distinct_stacks: groups.len(),
        groups: groups.into_iter().take(TOP_GROUPS).collect(),
        long_blocked,
        stray_lines: dump.stray_lines,
    }
}

/// Groups goroutines by stack, largest group first (then longest wait).
pub fn group<'a>(goroutines: impl Iterator<Item = &'a Goroutine>) -> Vec<Group> {
    let mut index: HashMap<&[Frame], usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for g in goroutines {
        let at = *index.entry(g.frames.as_slice()).or_insert_with(|| {
            groups.push(Group {
                count: 0,
                states: BTreeMap::new(),
                max_wait_minutes: None,
                waits_in: g.waits_in().map(str::to_string),
                created_by: g.created_by.clone(),
                ids: Vec::new(),
                frames: g.frames.clone(),
            });
            groups.len() - 1
        });
        let group = &mut groups[at];
        group.count += 1;
        *group.states.entry(g.state.clone()).or_insert(0) += 1;
        group.max_wait_minutes = group.max_wait_minutes.max(g.wait_minutes);
        if group.ids.len() < GROUP_IDS {
            group.ids.push(g.id);
        }
    }
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.max_wait_minutes.cmp(&a.max_wait_minutes))
    });
    groups
}

/// Goroutines that are in the same state with the same stack in both dumps,
/// grouped: with dumps seconds apart, a lock-like one is stuck.
pub fn unmoved(first: &Dump, second: &Dump) -> Vec<Group> {
    let before: HashMap<u64, &Goroutine> = first.goroutines.iter().map(|g| (g.id, g)).collect();
    let still = second.goroutines.iter().filter(|g| {
        before
            .get(&g.id)
            .is_some_and(|old| old.state == g.state && old.frames == g.frames)
    });
    group(still)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "goroutine 1 [chan receive, 37 minutes]:
main.main()
\t/src/main.go:10 +0x1d

goroutine 7 [semacquire, 41 minutes, locked to thread]:
sync.runtime_SemacquireMutex(0xc000123, 0x0, 0x1)
\truntime/sema.go:77 +0x25
sync.(*Mutex).lockSlow(0xc000120)
\tsync/mutex.go:171 +0x165
github.com/containerd/containerd/v2/core/metadata.(*DB).Update(0xc0, {0x1, 0x2})
\tgithub.com/containerd/containerd/v2/core/metadata/db.go:300 +0x3a
created by google.golang.org/grpc.(*Server).serveStreams.func1 in goroutine 40
\tgoogle.golang.org/grpc/server.go:1020 +0x16a

goroutine 8 [semacquire, 40 minutes]:
sync.runtime_SemacquireMutex(0xc000999, 0x0, 0x1)
\truntime/sema.go:77 +0x99
sync.(*Mutex).lockSlow(0xc000120)
\tsync/mutex.go:171 +0x165
github.com/containerd/containerd/v2/core/metadata.(*DB).Update(0xc0, {0x1, 0x2})
\tgithub.com/containerd/containerd/v2/core/metadata/db.go:300 +0x3a
created by google.golang.org/grpc.(*Server).serveStreams.func1 in goroutine 40
\tgoogle.golang.org/grpc/server.go:1020 +0x16a

goroutine 9 [select]:
";

    #[test]
    fn parses_states_waits_and_stacks() {
        let dump = parse(DUMP);
        assert_eq!(dump.goroutines.len(), 4);
        let g7 = &dump.goroutines[1];
        assert_eq!(g7.id, 7);
        assert_eq!(g7.state, "semacquire");
        assert_eq!(g7.wait_minutes, Some(41));
        assert!(g7.locked_to_thread);
        assert_eq!(g7.frames.len(), 3);
        assert_eq!(g7.frames[1].function, "sync.(*Mutex).lockSlow");
        assert_eq!(g7.frames[0].location, "runtime/sema.go:77");
        assert_eq!(
            g7.created_by.as_deref(),
            Some("google.golang.org/grpc.(*Server).serveStreams.func1")
        );
        assert_eq!(
            g7.waits_in(),
            Some("github.com/containerd/containerd/v2/core/metadata.(*DB).Update")
        );
        assert_eq!(dump.goroutines[3].state, "select");
        assert!(dump.goroutines[3].frames.is_empty());
    }

    #[test]
    fn groups_identical_stacks_and_flags_long_lock_waits() {
        let summary = summarize(&parse(DUMP));
        assert_eq!(summary.total, 4);
        assert_eq!(summary.by_state["semacquire"], 2);
        assert_eq!(summary.groups[0].count, 2);
        assert_eq!(summary.groups[0].ids, vec![7, 8]);
        assert_eq!(summary.groups[0].max_wait_minutes, Some(41));
        assert_eq!(summary.long_blocked.len(), 1);
        assert_eq!(summary.long_blocked[0].count, 2);
    }

    #[test]
    fn finds_goroutines_that_did_not_move() {
        let first = parse(DUMP);
        let second = parse(&DUMP.replace("goroutine 8 [semacquire, 40", "goroutine 8 [running"));
        let still = unmoved(&first, &second);
        let ids: Vec<u64> = still.iter().flat_map(|g| g.ids.clone()).collect();
        assert!(ids.contains(&7) && ids.contains(&1) && !ids.contains(&8));
    }

    #[test]
    fn strips_arguments_but_keeps_receivers() {
        assert_eq!(
            strip_args("net.(*conn).Read(0xc0, {0x1})"),
            "net.(*conn).Read"
        );
        assert_eq!(strip_args("main.main()"), "main.main");
        assert_eq!(strip_args("pkg.F(...)"), "pkg.F");
        assert_eq!(strip_args("(((("), "((((");
        assert_eq!(strip_args("()"), "()");
    }

    #[test]
    fn keeps_very_long_stacks_whole() {
        let mut text = String::from("goroutine 1 [running]:\n");
        for i in 0..100_000 {
            text.push_str(&format!("pkg.f{i}(0x1)\n\tpkg/f.go:{i} +0x1\n"));
        }
        text.push_str("...additional frames elided...\n");
        let dump = parse(&text);
        assert_eq!(dump.goroutines[0].frames.len(), 100_000);
        assert_eq!(dump.stray_lines, 0);
        assert_eq!(summarize(&dump).groups[0].frames.len(), 100_000);
    }

    #[test]
    fn survives_truncation_and_odd_headers() {
        let dump = parse("goroutine 5 gp=0x1 m=nil [sync.Mutex.Lock, 3 minutes]:\nfoo.Bar(\n");
        assert_eq!(dump.goroutines.len(), 1);
        assert_eq!(dump.goroutines[0].state, "sync.Mutex.Lock");
        assert_eq!(dump.goroutines[0].wait_minutes, Some(3));
        let cut = parse("goroutine 6 [IO wa");
        assert_eq!(cut.goroutines[0].state, "IO wa");
        assert_eq!(parse("goroutine x [running]:\n").goroutines.len(), 0);
    }
}
