//! The live progress display on a terminal.
//!
//! The engine only sends [`Event`]s into an unbounded channel, which never
//! blocks; this module's own thread turns them into an indicatif line
//! (collectors running with their elapsed time, done, failed) and redraws it
//! on a timer. A slow terminal therefore never slows the collectors. Log
//! lines written while the display is up go through [`LogWriter`], which
//! hides the display for the moment of the write so lines are not torn.
//! Without a terminal on stderr (a pipe, a file) or with `-q`, there is no
//! display at all, only log lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::bundle::manifest::Status;
use crate::engine::{Event, Events};

/// The display being shown, for [`LogWriter`].
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// How often the line is redrawn without events.
const REDRAW: Duration = Duration::from_millis(200);

/// A running display; [`Display::finish`] waits for it to clear.
pub struct Display {
    thread: JoinHandle<()>,
}

/// Starts the display for `total` collectors; returns where the engine
/// sends its events.
pub fn start(total: usize) -> (Events, Display) {
    let (tx, rx) = std::sync::mpsc::channel();
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} [{pos}/{len}] {msg}")
            .expect("the progress template is valid"),
    );
    *ACTIVE.lock().expect("progress lock") = Some(bar.clone());
    let thread = std::thread::spawn(move || show(bar, rx));
    (tx, Display { thread })
}

impl Display {
    /// Waits until every event sender is gone and the line is cleared.
    pub fn finish(self) {
        let _ = self.thread.join();
    }
}

fn show(bar: ProgressBar, rx: Receiver<Event>) {
    let mut running: BTreeMap<String, Instant> = BTreeMap::new();
    let mut counts = [0usize; 3]; // ok, skipped, failed or timed out
    loop {
        match rx.recv_timeout(REDRAW) {
            Ok(Event::Started { name }) => {
                running.insert(name, Instant::now());
            }
            Ok(Event::Ended { name, status }) => {
                let started = running.remove(&name);
                bar.inc(1);
                match status {
                    Status::Ok => counts[0] += 1,
                    Status::Skipped => counts[1] += 1,
                    _ => {
                        counts[2] += 1;
                        let took = started.map(|s| s.elapsed()).unwrap_or_default();
                        bar.println(format!(
                            "  {} {name} after {:.1}s",
                            status.word(),
                            took.as_secs_f64()
                        ));
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        bar.set_message(line(&running, counts));
        bar.tick();
    }
    *ACTIVE.lock().expect("progress lock") = None;
    bar.finish_and_clear();
}

/// The status line: counts, then the longest-running collectors.
fn line(running: &BTreeMap<String, Instant>, counts: [usize; 3]) -> String {
    let mut longest: Vec<(&String, Duration)> =
        running.iter().map(|(n, s)| (n, s.elapsed())).collect();
    longest.sort_by_key(|(_, took)| std::cmp::Reverse(*took));
    let shown: Vec<String> = longest
        .iter()
        .take(3)
        .map(|(name, took)| format!("{name} {:.1}s", took.as_secs_f64()))
        .collect();
    let more = running.len().saturating_sub(shown.len());
    let mut text = format!(
        "{} ok, {} skipped, {} failed; {} running",
        counts[0],
        counts[1],
        counts[2],
        running.len()
    );
    if !shown.is_empty() {
        text += &format!(": {}", shown.join(", "));
    }
    if more > 0 {
        text += &format!(" +{more}");
    }
    text
}

/// stderr for log lines, stepping around the display when one is shown.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let active = ACTIVE.lock().ok().and_then(|bar| bar.clone());
        match active {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Makes a [`LogWriter`], for `tracing_subscriber`'s `with_writer`.
pub fn log_writer() -> LogWriter {
    LogWriter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_names_the_longest_running_first() {
        let now = Instant::now();
        let mut running = BTreeMap::new();
        running.insert("a".to_string(), now);
        running.insert("b".to_string(), now - Duration::from_secs(5));
        let text = line(&running, [3, 1, 0]);
        assert!(
            text.starts_with("3 ok, 1 skipped, 0 failed; 2 running: b 5.0s, a "),
            "{text}"
        );
    }
}
