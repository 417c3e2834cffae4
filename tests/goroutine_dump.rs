//! The goroutine dump parser on dumps taken from the test bed's daemons
//! (debug socket and SIGUSR1 files of containerd 1.6, 1.7 and 2.1), and on
//! random and damaged input: whatever it is fed, it returns, and counts
//! exactly the goroutines whose headers survive.

use proptest::prelude::*;
use rctr_diag::analyze::goroutine_dump::{parse, summarize};

const FIXTURES: &[(&str, &str)] = &[
    (
        "debug-socket-1.6.txt",
        include_str!("fixtures/goroutines/debug-socket-1.6.txt"),
    ),
    (
        "debug-socket-1.7.txt",
        include_str!("fixtures/goroutines/debug-socket-1.7.txt"),
    ),
    (
        "debug-socket-2.1.txt",
        include_str!("fixtures/goroutines/debug-socket-2.1.txt"),
    ),
    (
        "sigusr1-1.6.log",
        include_str!("fixtures/goroutines/sigusr1-1.6.log"),
    ),
    (
        "sigusr1-1.7.log",
        include_str!("fixtures/goroutines/sigusr1-1.7.log"),
    ),
    (
        "sigusr1-2.1.log",
        include_str!("fixtures/goroutines/sigusr1-2.1.log"),
    ),
];

fn headers(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("goroutine ") && l.ends_with("]:"))
        .count()
}

#[test]
fn real_dumps_parse_completely() {
    for (name, text) in FIXTURES {
        let dump = parse(text);
        assert_eq!(dump.goroutines.len(), headers(text), "{name}");
        assert_eq!(dump.stray_lines, 0, "{name}");
        for g in &dump.goroutines {
            assert!(
                !g.frames.is_empty(),
                "{name}: goroutine {} has no frames",
                g.id
            );
            assert!(
                g.frames.iter().all(|f| !f.location.contains("+0x")),
                "{name}: offsets are stripped"
            );
            assert!(
                g.frames.iter().all(|f| !f.function.ends_with(')')),
                "{name}: arguments are stripped in {:?}",
                g.frames
            );
        }
        let summary = summarize(&dump);
        assert_eq!(summary.total, headers(text));
        assert_eq!(summary.by_state.values().sum::<usize>(), summary.total);
        // Every dump holds the goroutine serving it or the signal handler.
        assert!(summary.by_state.contains_key("running"), "{name}");
        // containerd's main goroutine waits on a channel in every version.
        let main = dump
            .goroutines
            .iter()
            .find(|g| g.id == 1)
            .expect("goroutine 1");
        assert_eq!(main.state, "chan receive", "{name}");
        assert!(
            main.frames.iter().any(|f| f.function == "main.main"),
            "{name}"
        );
    }
}

#[test]
fn a_dump_cut_anywhere_still_parses() {
    for (name, text) in FIXTURES {
        for cut in (0..text.len()).step_by(97) {
            if !text.is_char_boundary(cut) {
                continue;
            }
            let part = &text[..cut];
            let dump = parse(part);
            // A header cut before its bracket is not a goroutine yet.
            let started = part
                .lines()
                .filter(|l| {
                    l.strip_prefix("goroutine ")
                        .and_then(|r| r.split_once(' '))
                        .is_some_and(|(id, r)| id.parse::<u64>().is_ok() && r.contains('['))
                })
                .count();
            assert_eq!(dump.goroutines.len(), started, "{name} cut at {cut}");
        }
    }
}

fn header() -> impl Strategy<Value = String> {
    (
        0u64..1_000_000,
        "[a-zA-Z .()]{0,20}",
        proptest::option::of(0u64..10_000),
        any::<bool>(),
    )
        .prop_map(|(id, state, minutes, locked)| {
            let mut inner = state;
            if let Some(m) = minutes {
                inner.push_str(&format!(", {m} minutes"));
            }
            if locked {
                inner.push_str(", locked to thread");
            }
            format!("goroutine {id} [{inner}]:")
        })
}

fn frame() -> impl Strategy<Value = String> {
    ("[a-z/.()*]{1,20}", "[a-z/.]{1,12}", 0u32..5000)
        .prop_map(|(f, file, line)| format!("{f}(0xc000, {{0x1}})\n\t{file}.go:{line} +0x1f"))
}

fn goroutine() -> impl Strategy<Value = String> {
    (header(), proptest::collection::vec(frame(), 0..40))
        .prop_map(|(h, frames)| format!("{h}\n{}\n", frames.join("\n")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC{0,2000}") {
        let dump = parse(&text);
        let summary = summarize(&dump);
        prop_assert_eq!(summary.total, dump.goroutines.len());
    }

    #[test]
    fn never_panics_on_dump_like_noise(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("goroutine ".to_string()),
                Just("[".to_string()),
                Just("]:".to_string()),
                Just("\n".to_string()),
                Just("\t".to_string()),
                Just("(".to_string()),
                Just(")".to_string()),
                Just(" +0x".to_string()),
                Just("created by ".to_string()),
                Just(", 3 minutes".to_string()),
                "[0-9]{1,3}",
                "\\PC{0,5}",
            ],
            0..300,
        )
    ) {
        let text = parts.concat();
        let summary = summarize(&parse(&text));
        prop_assert_eq!(summary.by_state.values().sum::<usize>(), summary.total);
    }

    #[test]
    fn counts_every_well_formed_goroutine(gs in proptest::collection::vec(goroutine(), 0..12)) {
        let text = gs.join("\n");
        let dump = parse(&text);
        prop_assert_eq!(dump.goroutines.len(), gs.len());
        let summary = summarize(&dump);
        prop_assert_eq!(summary.total, gs.len());
        let grouped: usize = summary.groups.iter().map(|g| g.count).sum();
        prop_assert!(grouped <= gs.len());
    }
}
