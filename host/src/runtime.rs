//! Runs jobs: one puller thread per input, a pool of threads running the handler chain, and a
//! writer thread that stores processed jobs in batches (storage, then outputs) before
//! reporting each job's outcome to its input. Stops on request after finishing jobs in flight.
//! A panic in the host's own code fails the job (or batch) it was working on and the thread
//! goes on; a worker whose handler threads or writer have all died exits with an error.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Condvar, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use abi_stable::std_types::{RResult, RString, RVec};
use bonnie_core::{config::WorkerConfig, daemon::panic_message};
use bonnie_plugin_api::{
    ItemStatus, JobOutcome, NextJob, OutputItem, PluginError,
    input::{JobOutcome_NE, NextJob_NE},
    output::ItemStatus_NE,
};
use crossbeam_channel::{Receiver, RecvTimeoutError, bounded, unbounded};
use tracing::{debug, error, info, warn};

use crate::{
    metrics::WorkerMetrics,
    pipeline::{self, ChainResult},
    start::Started,
};

/// How long an input's `next_job` may block before the puller checks for shutdown.
const POLL_MS: u32 = 100;

/// How many more jobs the host may take: released when a job's outcome is reported.
struct Credit {
    free: Mutex<usize>,
    changed: Condvar,
    capacity: usize,
}

impl Credit {
    fn new(capacity: usize) -> Self {
        Self {
            free: Mutex::new(capacity),
            changed: Condvar::new(),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes one unit, waiting for it; false if `stop` was set meanwhile.
    fn acquire(&self, stop: &AtomicBool) -> bool {
        let mut free = self.lock();
        while *free == 0 {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            free = self
                .changed
                .wait_timeout(free, Duration::from_millis(u64::from(POLL_MS)))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        *free -= 1;
        true
    }

    fn release(&self) {
        *self.lock() += 1;
        self.changed.notify_all();
    }

    fn in_flight(&self) -> usize {
        self.capacity - *self.lock()
    }
}

/// A job that went through the handlers and waits to be written.
struct Processed {
    input: usize,
    item: OutputItem,
}

struct Runtime<'a> {
    started: &'a Started,
    credit: Credit,
    /// Jobs by outcome (also logged when the worker stops) and the writers' latency.
    metrics: &'a WorkerMetrics,
    /// Stop taking jobs (a signal arrived, or every input finished).
    stop_taking: AtomicBool,
    finished_inputs: AtomicUsize,
    /// Handler threads that ended by a panic.
    dead_handlers: AtomicUsize,
    /// Set if the writer thread ended by a panic.
    dead_writer: AtomicBool,
}

/// Counts its thread as dead when dropped by a panic unwinding it.
struct DeathWatch<'a>(&'a dyn Fn());

impl Drop for DeathWatch<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            (self.0)();
        }
    }
}

/// Runs `f`, turning a panic into its message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| panic_message(&*panic))
}

/// Runs until `shutdown` is set (by a signal) or every input has finished, then finishes the
/// jobs in flight and returns.
pub fn run(
    mut started: Started,
    config: &WorkerConfig,
    shutdown: &AtomicBool,
    metrics: &WorkerMetrics,
) -> anyhow::Result<()> {
    let threads = config.thread_count();
    let capacity = config.queue_capacity().max(threads);
    started.inputs.retain(|slot| match slot.input.start(capacity as u32).into_result() {
        Ok(()) => true,
        Err(e) => {
            error!(plugin = %slot.name, error = %e, "Input failed to start taking jobs; skipped.");
            false
        }
    });
    if started.inputs.is_empty() {
        anyhow::bail!("no input started taking jobs; see the log above");
    }
    let started = &started;
    let rt = Runtime {
        started,
        credit: Credit::new(capacity),
        metrics,
        stop_taking: AtomicBool::new(false),
        finished_inputs: AtomicUsize::new(0),
        dead_handlers: AtomicUsize::new(0),
        dead_writer: AtomicBool::new(false),
    };
    info!(
        threads,
        capacity,
        inputs = started.inputs.len(),
        handlers = started.handlers.len(),
        outputs = started.outputs.len(),
        "Worker running."
    );

    let (jobs_tx, jobs_rx) = bounded::<(usize, bonnie_plugin_api::Job)>(capacity);
    let (write_tx, write_rx) = unbounded::<Processed>();
    let ended = std::thread::scope(|scope| {
        let mut spawned = Vec::new();
        for index in 0..started.inputs.len() {
            let jobs_tx = jobs_tx.clone();
            let rt = &rt;
            spawned.push(
                std::thread::Builder::new()
                    .name(format!("input-{}", started.inputs[index].name))
                    .spawn_scoped(scope, move || rt.pull(index, &jobs_tx))
                    .expect("spawning a thread at start-up"),
            );
        }
        drop(jobs_tx);
        for n in 0..threads {
            let (jobs_rx, write_tx, rt) = (jobs_rx.clone(), write_tx.clone(), &rt);
            spawned.push(
                std::thread::Builder::new()
                    .name(format!("handler-{n}"))
                    .spawn_scoped(scope, move || {
                        let _watch = DeathWatch(&|| {
                            rt.dead_handlers.fetch_add(1, Ordering::Relaxed);
                        });
                        rt.handle_jobs(&jobs_rx, &write_tx)
                    })
                    .expect("spawning a thread at start-up"),
            );
        }
        drop(write_tx);
        let rt = &rt;
        spawned.push(
            std::thread::Builder::new()
                .name("writer".to_string())
                .spawn_scoped(scope, move || {
                    let _watch = DeathWatch(&|| rt.dead_writer.store(true, Ordering::Relaxed));
                    rt.write_batches(&write_rx, config)
                })
                .expect("spawning a thread at start-up"),
        );

        // Plugins loaded and started, inputs taking jobs, every thread running.
        bonnie_core::systemd::ready("running jobs");
        let ended = rt.wait_for_end(shutdown, threads);
        // Joined here, so that a thread that died does not panic the scope.
        for thread in spawned {
            let _ = thread.join();
        }
        ended
    });
    let c = &metrics.jobs;
    info!(
        done = c.done.get(),
        collect = c.collect.get(),
        postponed = c.postponed.get(),
        rejected = c.rejected.get(),
        failed = c.failed.get(),
        "Worker stopped."
    );
    ended.map_err(anyhow::Error::msg)
}

impl Runtime<'_> {
    /// Waits for a shutdown request or for every input to finish, then stops the inputs and
    /// waits for the jobs in flight. An error when the worker can no longer run jobs (every
    /// handler thread, or the writer, died); the jobs it held then time out at their source
    /// and run again elsewhere.
    fn wait_for_end(&self, shutdown: &AtomicBool, threads: usize) -> Result<(), String> {
        let mut broken = None;
        loop {
            bonnie_core::systemd::watchdog();
            if shutdown.load(Ordering::Relaxed) {
                bonnie_core::systemd::stopping();
                info!(
                    in_flight = self.credit.in_flight(),
                    "Stopping: finishing the jobs in flight."
                );
                break;
            }
            if self.finished_inputs.load(Ordering::Relaxed) == self.started.inputs.len()
                && self.credit.in_flight() == 0
            {
                info!("Every input has finished.");
                break;
            }
            let dead = self.dead_handlers.load(Ordering::Relaxed);
            if dead >= threads || self.dead_writer.load(Ordering::Relaxed) {
                let reason = format!(
                    "the worker can no longer run jobs: {dead} of {threads} handler threads died{}",
                    if self.dead_writer.load(Ordering::Relaxed) {
                        ", and the writer thread died"
                    } else {
                        ""
                    }
                );
                error!(in_flight = self.credit.in_flight(), "{reason}; stopping.");
                broken = Some(reason);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop_taking.store(true, Ordering::Relaxed);
        for slot in &self.started.inputs {
            if let Err(e) = slot.input.stop().into_result() {
                warn!(plugin = %slot.name, error = %e, "Input failed to stop cleanly.");
            }
        }
        if let Some(reason) = broken {
            // Jobs held by a dead thread would never finish: waiting for them would hang.
            return Err(reason);
        }
        while self.credit.in_flight() > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Takes jobs from one input while there is credit.
    fn pull(
        &self,
        index: usize,
        jobs: &crossbeam_channel::Sender<(usize, bonnie_plugin_api::Job)>,
    ) {
        let slot = &self.started.inputs[index];
        let mut backoff = Duration::from_millis(100);
        while self.credit.acquire(&self.stop_taking) {
            if self.stop_taking.load(Ordering::Relaxed) {
                self.credit.release();
                break;
            }
            let next = slot
                .input
                .next_job(POLL_MS)
                .into_result()
                .map(NextJob_NE::into_enum);
            match next {
                Ok(Ok(NextJob::Job(job))) => {
                    backoff = Duration::from_millis(100);
                    debug!(plugin = %slot.name, job = %job.id, "Job taken.");
                    if jobs.send((index, job)).is_err() {
                        self.credit.release();
                        break;
                    }
                }
                Ok(Ok(NextJob::Idle)) => self.credit.release(),
                Ok(Ok(NextJob::Finished)) => {
                    self.credit.release();
                    info!(plugin = %slot.name, "Input has no more jobs.");
                    self.finished_inputs.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(_) => {
                    self.credit.release();
                    warn!(plugin = %slot.name, "Input returned a value this host does not know; ignored.");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    self.credit.release();
                    warn!(plugin = %slot.name, error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "Input failed to give a job.");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Runs the handler chain on jobs until the job channel closes.
    fn handle_jobs(
        &self,
        jobs: &Receiver<(usize, bonnie_plugin_api::Job)>,
        writes: &crossbeam_channel::Sender<Processed>,
    ) {
        for (input, job) in jobs {
            let chain = guarded(|| pipeline::run(&self.started.handlers, &job)).unwrap_or_else(
                |panic| {
                    error!(job = %job.id, error = %panic, "Running the handler chain panicked; the job fails.");
                    ChainResult::Outcome(JobOutcome::Failed {
                        reason: format!("the worker panicked running the handler chain: {panic}")
                            .into(),
                    })
                },
            );
            match chain {
                ChainResult::Record(record) => {
                    let item = OutputItem {
                        job_id: job.id,
                        record: record.into(),
                        extra: RString::new(),
                    };
                    if let Err(unsent) = writes.send(Processed { input, item }) {
                        let Processed { input, item } = unsent.into_inner();
                        self.complete(input, &item.job_id, postpone("the worker is stopping"));
                    }
                }
                ChainResult::Outcome(outcome) => self.complete(input, &job.id, outcome),
            }
        }
    }

    /// Writes processed jobs in batches until every handler thread has ended.
    fn write_batches(&self, writes: &Receiver<Processed>, config: &WorkerConfig) {
        let wait = Duration::from_millis(config.batch_wait_ms);
        while let Ok(first) = writes.recv() {
            let mut batch = vec![first];
            let deadline = Instant::now() + wait;
            while batch.len() < config.batch_size {
                match writes.recv_deadline(deadline) {
                    Ok(next) => batch.push(next),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            self.write_batch(batch);
        }
    }

    /// Writes a batch and reports every job's outcome. A panic while writing fails the whole
    /// batch: which of its items were kept is not known.
    fn write_batch(&self, batch: Vec<Processed>) {
        let outcomes = guarded(|| self.write_items(&batch)).unwrap_or_else(|panic| {
            error!(items = batch.len(), error = %panic, "Writing a batch panicked; its jobs fail.");
            let reason = format!("the worker panicked writing the job's batch: {panic}");
            vec![
                Some(JobOutcome::Failed {
                    reason: reason.into()
                });
                batch.len()
            ]
        });
        for (processed, outcome) in batch.into_iter().zip(outcomes) {
            self.complete(
                processed.input,
                &processed.item.job_id,
                outcome.unwrap_or(JobOutcome::Done),
            );
        }
    }

    /// Storage first, then each output with the items still in good standing; each item's
    /// outcome, `None` for stored everywhere.
    fn write_items(&self, batch: &[Processed]) -> Vec<Option<JobOutcome>> {
        let mut outcomes: Vec<Option<JobOutcome>> = vec![None; batch.len()];
        if let Some((name, storage)) = &self.started.storage {
            let items: RVec<OutputItem> = batch.iter().map(|p| p.item.clone()).collect();
            let started = Instant::now();
            let result = storage.append_log(items);
            self.metrics
                .writer("storage", name)
                .observe(started.elapsed().as_secs_f64());
            apply(
                "storage",
                name,
                result,
                &mut outcomes,
                &(0..batch.len()).collect::<Vec<_>>(),
            );
        }
        for slot in &self.started.outputs {
            let pending: Vec<usize> = (0..batch.len())
                .filter(|&i| outcomes[i].is_none())
                .collect();
            if pending.is_empty() {
                break;
            }
            let items: RVec<OutputItem> = pending.iter().map(|&i| batch[i].item.clone()).collect();
            let started = Instant::now();
            let result = slot.output.write(items);
            self.metrics
                .writer("output", &slot.name)
                .observe(started.elapsed().as_secs_f64());
            apply("output", &slot.name, result, &mut outcomes, &pending);
        }
        outcomes
    }

    /// Reports a job's outcome to its input and frees its credit.
    fn complete(&self, input: usize, job_id: &RString, outcome: JobOutcome) {
        let slot = &self.started.inputs[input];
        let c = &self.metrics.jobs;
        match &outcome {
            JobOutcome::Done => {
                c.done.inc();
                debug!(job = %job_id, "Job done.");
            }
            JobOutcome::Collect { commands, .. } => {
                c.collect.inc();
                debug!(job = %job_id, commands = ?commands, "Job needs the collector.");
            }
            JobOutcome::Postpone { reason } => {
                c.postponed.inc();
                info!(job = %job_id, reason = %reason, "Job postponed.");
            }
            JobOutcome::Rejected { reason } => {
                c.rejected.inc();
                warn!(job = %job_id, reason = %reason, "Job rejected.");
            }
            JobOutcome::Failed { reason } => {
                c.failed.inc();
                error!(job = %job_id, reason = %reason, "Job failed.");
            }
            _ => {}
        }
        if let Err(e) = slot
            .input
            .complete(job_id.as_rstr(), JobOutcome_NE::new(outcome))
            .into_result()
        {
            error!(plugin = %slot.name, job = %job_id, error = %e, "Input failed to take a job's outcome.");
        }
        self.credit.release();
    }
}

fn postpone(reason: &str) -> JobOutcome {
    JobOutcome::Postpone {
        reason: reason.into(),
    }
}

/// Folds one writer's per-item statuses into the batch's outcomes; `positions` maps the
/// writer's items onto the batch.
fn apply(
    role: &str,
    name: &str,
    result: RResult<RVec<ItemStatus_NE>, PluginError>,
    outcomes: &mut [Option<JobOutcome>],
    positions: &[usize],
) {
    let statuses = match result.into_result() {
        Ok(statuses) if statuses.len() == positions.len() => statuses,
        Ok(statuses) => {
            let reason = format!(
                "{role} {name} returned {} statuses for {} items",
                statuses.len(),
                positions.len()
            );
            error!(plugin = name, "{reason}");
            for &i in positions {
                outcomes[i] = Some(JobOutcome::Failed {
                    reason: reason.as_str().into(),
                });
            }
            return;
        }
        Err(e) => {
            warn!(plugin = name, error = %e, items = positions.len(), "Writing a batch failed.");
            let reason = format!("{role} {name}: {}", e.message);
            for &i in positions {
                outcomes[i] = Some(match e.kind() {
                    Some(bonnie_plugin_api::ErrorKind::Rejected) => JobOutcome::Rejected {
                        reason: reason.as_str().into(),
                    },
                    _ => postpone(&reason),
                });
            }
            return;
        }
    };
    for (status, &i) in statuses.into_iter().zip(positions) {
        outcomes[i] = match status.into_enum() {
            Ok(ItemStatus::Stored) => None,
            Ok(ItemStatus::Retry { reason }) => Some(postpone(&format!("{role} {name}: {reason}"))),
            Ok(ItemStatus::Rejected { reason }) => Some(JobOutcome::Rejected {
                reason: format!("{role} {name}: {reason}").into(),
            }),
            _ => Some(JobOutcome::Failed {
                reason: format!("{role} {name} returned a status this host does not know").into(),
            }),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_the_thread_goes_on() {
        let hostile = guarded(|| -> usize { panic!("byte index 1 is not a char boundary") });
        assert_eq!(
            hostile,
            Err("byte index 1 is not a char boundary".to_string())
        );
        assert_eq!(guarded(|| 7), Ok(7));
    }

    #[test]
    fn a_thread_is_counted_dead_only_when_a_panic_ends_it() {
        let dead = AtomicUsize::new(0);
        let count = || {
            dead.fetch_add(1, Ordering::Relaxed);
        };
        std::thread::scope(|scope| {
            let ended = scope.spawn(|| {
                let _watch = DeathWatch(&count);
            });
            let died = scope.spawn(|| {
                let _watch = DeathWatch(&count);
                panic!("a host bug");
            });
            assert!(ended.join().is_ok());
            assert!(died.join().is_err());
        });
        assert_eq!(dead.load(Ordering::Relaxed), 1);
    }
}
