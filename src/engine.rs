//! Running collectors.
//!
//! Every collector is its own tokio task under the earlier of its spec's
//! timeout and the run's deadline, so one that hangs costs its own deadline
//! and never the bundle. A collector that fails, panics or times out becomes
//! a [`CollectorRecord`]; nothing a collector does stops the others. When the
//! operator interrupts the run, the collectors still running are cancelled
//! and recorded as interrupted, and the caller finishes the bundle with what
//! is there.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

use crate::bundle::manifest::{CollectorRecord, Status};
use crate::bundle::{Output, Sink};
use crate::kinds::{Context, Outcome};
use crate::source::error_chain;
use crate::spec::Spec;

/// What the collectors did.
pub struct RunResult {
    /// One record per spec, in the order the specs were given.
    pub records: Vec<CollectorRecord>,
    /// Set when the run was cut short, with the reason.
    pub interrupted: Option<String>,
}

struct Running {
    spec: Spec,
    started: Instant,
    output: Output,
}

/// What the engine tells an observer (the progress display) as collectors
/// start and end.
#[derive(Debug, Clone)]
pub enum Event {
    Started { name: String },
    Ended { name: String, status: Status },
}

/// Where events go; sending never blocks and a gone receiver is ignored.
pub type Events = std::sync::mpsc::Sender<Event>;

/// Runs `specs` concurrently until all end or `stop` resolves.
///
/// `deadline` bounds every collector; `stop` yields the reason for cutting
/// the run short (a signal, typically).
pub async fn run(
    specs: Vec<Spec>,
    ctx: Arc<Context>,
    sink: &Sink,
    deadline: Instant,
    stop: impl Future<Output = String>,
) -> RunResult {
    run_with_events(specs, ctx, sink, deadline, stop, None).await
}

/// Like [`run`], telling `events` when each collector starts and ends.
pub async fn run_with_events(
    specs: Vec<Spec>,
    ctx: Arc<Context>,
    sink: &Sink,
    deadline: Instant,
    stop: impl Future<Output = String>,
    events: Option<Events>,
) -> RunResult {
    let tell = |event: Event| {
        if let Some(events) = &events {
            let _ = events.send(event);
        }
    };
    let order: Vec<String> = specs.iter().map(|spec| spec.name.clone()).collect();
    let mut tasks = JoinSet::new();
    let mut running = HashMap::new();
    for spec in specs {
        let output = sink.output(&spec.name, &spec.output);
        let started = Instant::now();
        let limit = spec
            .timeout
            .min(deadline.saturating_duration_since(started));
        let task = attempt(spec.clone(), ctx.clone(), output.clone(), limit);
        let span = info_span!("collector", name = %spec.name, kind = spec.kind.name());
        let handle = tasks.spawn(task.instrument(span));
        tell(Event::Started {
            name: spec.name.clone(),
        });
        running.insert(
            handle.id(),
            Running {
                spec,
                started,
                output,
            },
        );
    }

    let mut done = HashMap::new();
    let mut interrupted = None;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            next = tasks.join_next_with_id() => {
                let Some(joined) = next else { break };
                let (id, record) = match joined {
                    Ok((id, record)) => (id, record),
                    Err(err) => {
                        let id = err.id();
                        let what = running.get(&id).expect("every task is tracked");
                        (id, panicked(what, err))
                    }
                };
                running.remove(&id);
                tell(Event::Ended {
                    name: record.name.clone(),
                    status: record.status,
                });
                done.insert(record.name.clone(), record);
            }
            reason = &mut stop => {
                warn!(%reason, "run interrupted; finishing the bundle with what is collected");
                interrupted = Some(reason);
                tasks.abort_all();
                // Wait for the aborted tasks so no collector writes late.
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }

    for what in running.into_values() {
        tell(Event::Ended {
            name: what.spec.name.clone(),
            status: Status::Interrupted,
        });
        done.insert(what.spec.name.clone(), cut_short(&what));
    }
    let records = order
        .iter()
        .map(|name| done.remove(name).expect("every collector has a record"))
        .collect();
    RunResult {
        records,
        interrupted,
    }
}

/// One collector under its deadline, turned into a record.
async fn attempt(
    spec: Spec,
    ctx: Arc<Context>,
    output: Output,
    limit: Duration,
) -> CollectorRecord {
    info!("collector started");
    let started = Instant::now();
    let result = tokio::time::timeout(limit, spec.kind.collect(&ctx, &spec, &output)).await;
    let mut record = record(&spec, started, &output);
    match result {
        Ok(Ok(Outcome::Done)) => {}
        Ok(Ok(Outcome::Skipped(reason))) => {
            record.status = Status::Skipped;
            record.reason = Some(reason);
        }
        Ok(Ok(Outcome::TimedOut(error))) => {
            record.status = Status::TimedOut;
            record.error = Some(error);
        }
        Ok(Err(err)) => {
            record.status = Status::Failed;
            record.error = Some(error_chain(&err));
        }
        Err(_) => {
            record.status = Status::TimedOut;
            record.error = Some(if limit < spec.timeout {
                format!(
                    "stopped by the run's deadline after {}",
                    humantime::format_duration(round_ms(limit))
                )
            } else {
                format!(
                    "no result within its timeout of {}",
                    humantime::format_duration(spec.timeout)
                )
            });
        }
    }
    match record.status {
        Status::Ok | Status::Skipped => {
            info!(
                status = record.status.word(),
                ms = record.duration_ms,
                "collector ended"
            )
        }
        _ => warn!(
            status = record.status.word(),
            ms = record.duration_ms,
            error = record.error.as_deref().unwrap_or(""),
            "collector did not succeed"
        ),
    }
    record
}

fn record(spec: &Spec, started: Instant, output: &Output) -> CollectorRecord {
    CollectorRecord {
        name: spec.name.clone(),
        kind: spec.kind.name().to_string(),
        status: Status::Ok,
        duration_ms: started.elapsed().as_millis() as u64,
        reason: None,
        error: None,
        files: output.written(),
        redactions: output.redactions(),
        cuts: output.cuts(),
    }
}

fn panicked(what: &Running, err: tokio::task::JoinError) -> CollectorRecord {
    let mut record = record(&what.spec, what.started, &what.output);
    record.status = Status::Failed;
    let message = match err.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into()),
        Err(err) => err.to_string(),
    };
    warn!(collector = %what.spec.name, %message, "collector panicked");
    record.error = Some(format!("collector panicked: {message}"));
    record
}

fn cut_short(what: &Running) -> CollectorRecord {
    let mut record = record(&what.spec, what.started, &what.output);
    record.status = Status::Interrupted;
    record.error = Some("still running when the run was interrupted".into());
    record
}

fn round_ms(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_millis() as u64)
}
