//! The collector's side of the broker protocol: announce the host, the commands served and
//! the free credit (`READY`, repeated as the heartbeat); run each `COLLECT` on a pool thread;
//! answer `DONE` with the updated notification, `POSTPONE` when Cyrus or LDAP could not be
//! reached (the broker retries with back-off) or `FAIL`, as soon as the job is finished. The
//! collector holds a second job per thread, so that no thread waits a round trip to the broker
//! for its next one. When the broker falls silent the socket is made anew, so a restarted
//! broker needs no restart of the collector. A panic on a pool thread fails that job only; a
//! collector whose pool is gone exits with an error.

use std::{
    io::{ErrorKind, Read as _, Write as _},
    os::{fd::AsRawFd as _, unix::net::UnixStream},
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::bail;

use bonnie_core::{
    config::CollectorConfig,
    daemon,
    protocol::{CollectorMsg, ToCollector},
    transport,
};
use crossbeam_channel::{Receiver, Sender, unbounded};
use tracing::{debug, error, info, warn};

use crate::{commands, failure::Failure, metrics::CollectorMetrics};

/// A job for a pool thread.
struct Task {
    id: String,
    commands: Vec<String>,
    notification: Vec<u8>,
}

/// Jobs the collector holds per pool thread: the one running and the next, which waits here
/// instead of a round trip to the broker after each job. With one per thread the threads sat
/// idle most of the payload benchmark's run (4 threads, 240 messages/s, each collected in about
/// a millisecond).
const JOBS_PER_THREAD: usize = 2;

/// A finished job.
struct Finished {
    id: String,
    result: Result<Vec<u8>, Failure>,
}

/// Runs until `shutdown` is set; jobs in flight are finished and reported first. Commands and
/// jobs are counted in `metrics`.
pub fn run(
    config: &CollectorConfig,
    shutdown: &AtomicBool,
    metrics: Arc<CollectorMetrics>,
) -> anyhow::Result<()> {
    let (tasks_tx, tasks_rx) = unbounded::<Task>();
    let (done_tx, done_rx) = unbounded::<Finished>();
    // A byte on this socket pair wakes the loop below as soon as a job is finished.
    let (wake_rx, wake_tx) = UnixStream::pair()?;
    wake_rx.set_nonblocking(true)?;
    wake_tx.set_nonblocking(true)?;
    let config = Arc::new(config.clone());
    let mut pool = Vec::new();
    for n in 0..config.threads {
        let (tasks, config, metrics) = (tasks_rx.clone(), config.clone(), metrics.clone());
        let done = Done {
            results: done_tx.clone(),
            wake: wake_tx.try_clone()?,
        };
        pool.push(
            std::thread::Builder::new()
                .name(format!("collect-{n}"))
                .spawn(move || {
                    work(&tasks, &done, &|task| {
                        commands::collect(&config, &metrics, &task.notification, &task.commands)
                    })
                })?,
        );
    }
    drop((tasks_rx, done_tx, wake_tx));
    let context = transport::context();
    // The collector's key is for its host: the broker gives it that host's jobs only.
    let keys = bonnie_core::keys::client_keys(&config.curve, bonnie_core::keys::Role::Collector)
        .map_err(|e| anyhow::anyhow!("cannot read the collector's CURVE keys: {e}"))?;
    let mut generation = 0;
    let mut busy = 0usize;
    info!(broker = %config.broker_address, host = %config.host_name(), commands = ?config.commands,
        threads = config.threads, "Collector running.");
    bonnie_core::systemd::ready("collecting for the broker");
    while !(shutdown.load(Ordering::Relaxed) && busy == 0) {
        bonnie_core::systemd::watchdog();
        generation += 1;
        let identity = format!(
            "Collector-{}-{}-{generation}",
            config.host_name(),
            std::process::id()
        );
        let socket = match transport::dealer_with(
            &context,
            &config.broker_address,
            identity.as_bytes(),
            Duration::from_secs(2),
            keys.as_ref(),
        ) {
            Ok(socket) => socket,
            Err(e) => {
                warn!(error = %e, "Cannot create the socket to the broker.");
                std::thread::sleep(Duration::from_millis(config.heartbeat_ms));
                continue;
            }
        };
        let pool = Pool {
            threads: &pool,
            tasks: &tasks_tx,
            done: &done_rx,
            wake: &wake_rx,
            metrics: &metrics,
        };
        serve(&config, &socket, &pool, &mut busy, shutdown)?;
    }
    bonnie_core::systemd::stopping();
    drop(tasks_tx);
    for thread in pool {
        let _ = thread.join();
    }
    info!("Collector stopped.");
    Ok(())
}

/// Where a pool thread hands its finished jobs: the channel, and the socket that wakes the
/// loop talking to the broker.
struct Done {
    results: Sender<Finished>,
    wake: UnixStream,
}

impl Done {
    /// Hands over a finished job; false once the loop is gone.
    fn send(&self, finished: Finished) -> bool {
        if self.results.send(finished).is_err() {
            return false;
        }
        // A full socket already holds a wake-up the loop has not read.
        let _ = (&self.wake).write(&[1]);
        true
    }
}

/// Serves tasks until the task channel closes. A panic while collecting (hostile input that
/// a parser did not survive) fails that job for good and the thread takes the next one.
fn work(tasks: &Receiver<Task>, done: &Done, collect: &dyn Fn(&Task) -> Result<Vec<u8>, Failure>) {
    for task in tasks {
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| collect(&task))).unwrap_or_else(|panic| {
            let message = daemon::panic_message(&*panic);
            error!(job = %task.id, error = %message, "Collecting a job panicked; the job fails.");
            Err(Failure::permanent(format!(
                "the collector panicked on this job: {message}"
            )))
        });
        debug!(job = %task.id, commands = ?task.commands, ms = started.elapsed().as_millis() as u64, "Collected.");
        if !done.send(Finished {
            id: task.id,
            result,
        }) {
            return;
        }
    }
}

/// The pool threads and their channels.
struct Pool<'a> {
    threads: &'a [JoinHandle<()>],
    tasks: &'a Sender<Task>,
    done: &'a Receiver<Finished>,
    /// Readable when a job was finished.
    wake: &'a UnixStream,
    metrics: &'a CollectorMetrics,
}

impl Pool<'_> {
    /// Threads still serving.
    fn alive(&self) -> usize {
        self.threads.iter().filter(|t| !t.is_finished()).count()
    }
}

/// One connection to the broker, until it falls silent or the collector stops; an error when
/// no pool thread is left to run jobs.
fn serve(
    config: &CollectorConfig,
    socket: &transport::Socket,
    pool: &Pool<'_>,
    busy: &mut usize,
    shutdown: &AtomicBool,
) -> anyhow::Result<()> {
    let Pool {
        tasks,
        done,
        wake,
        metrics,
        ..
    } = pool;
    let heartbeat = Duration::from_millis(config.heartbeat_ms);
    let silence = heartbeat * config.heartbeat_liveness;
    let mut last_heard = Instant::now();
    let mut next_ready = Instant::now();
    loop {
        bonnie_core::systemd::watchdog();
        let stopping = shutdown.load(Ordering::Relaxed);
        if stopping && *busy == 0 {
            return Ok(());
        }
        let alive = pool.alive();
        if alive == 0 {
            bail!(
                "every collector pool thread has ended ({busy} jobs were in flight); the collector cannot serve"
            );
        }
        if Instant::now() >= next_ready {
            let ready = CollectorMsg::Ready {
                host: config.host_name(),
                commands: config.commands.clone(),
                credit: credit(alive, *busy, stopping),
            };
            let _ = transport::send(socket, &ready.frames());
            next_ready = Instant::now() + heartbeat;
        }
        if last_heard.elapsed() > silence {
            warn!(
                silent_ms = last_heard.elapsed().as_millis() as u64,
                "The broker is silent; making a new socket."
            );
            return Ok(());
        }
        let readable = transport::poll_with_fds(
            &[socket],
            &[wake.as_raw_fd()],
            next_ready.saturating_duration_since(Instant::now()),
        )
        .unwrap_or_default();
        if readable.get(1) == Some(&true) {
            drain(wake);
        }
        if readable.first() == Some(&true) {
            while let Ok(Some(frames)) = transport::try_recv(socket) {
                last_heard = Instant::now();
                match ToCollector::parse(&frames) {
                    Ok(ToCollector::Collect {
                        id,
                        commands,
                        notification,
                    }) => {
                        *busy += 1;
                        if tasks
                            .send(Task {
                                id,
                                commands,
                                notification,
                            })
                            .is_err()
                        {
                            bail!(
                                "every collector pool thread has ended; the collector cannot serve"
                            );
                        }
                    }
                    Ok(ToCollector::Heartbeat) => {}
                    Err(e) => warn!(error = %e, "Ignored a message from the broker."),
                }
            }
        }
        while let Ok(finished) = done.try_recv() {
            *busy = busy.saturating_sub(1);
            let message = match finished.result {
                Ok(notification) => {
                    metrics.done.inc();
                    CollectorMsg::Done {
                        id: finished.id,
                        notification,
                    }
                }
                Err(Failure::Transient(reason)) => {
                    metrics.postponed.inc();
                    warn!(job = %finished.id, reason = %reason, "Job could not be collected now; the broker retries it later.");
                    CollectorMsg::Postpone {
                        id: finished.id,
                        reason,
                    }
                }
                Err(Failure::Permanent(reason)) => {
                    metrics.failed.inc();
                    error!(job = %finished.id, reason = %reason, "Job cannot be collected; it fails.");
                    CollectorMsg::Fail {
                        id: finished.id,
                        reason,
                    }
                }
            };
            if let Err(e) = transport::send(socket, &message.frames()) {
                warn!(error = %e, "Cannot report to the broker; the job will time out there and run again.");
            }
            // Announce the freed credit now rather than at the next heartbeat.
            next_ready = Instant::now();
        }
    }
}

/// The jobs the collector can take now: none while it stops, else what its live threads
/// hold ([`JOBS_PER_THREAD`] each) less the jobs it has.
fn credit(alive: usize, busy: usize, stopping: bool) -> u32 {
    if stopping {
        return 0;
    }
    (alive * JOBS_PER_THREAD).saturating_sub(busy) as u32
}

/// Reads the wake-up bytes that are there.
fn drain(mut wake: &UnixStream) {
    let mut bytes = [0u8; 256];
    loop {
        match wake.read(&mut bytes) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> Task {
        Task {
            id: id.to_string(),
            commands: vec!["FETCH".to_string()],
            notification: id.as_bytes().to_vec(),
        }
    }

    /// A pool thread's end of the finished jobs, and the loop's.
    fn done() -> (Done, Receiver<Finished>, UnixStream) {
        let (done_tx, done_rx) = unbounded();
        let (wake_rx, wake_tx) = UnixStream::pair().unwrap();
        wake_rx.set_nonblocking(true).unwrap();
        let done = Done {
            results: done_tx,
            wake: wake_tx,
        };
        (done, done_rx, wake_rx)
    }

    #[test]
    fn a_finished_job_wakes_the_loop_that_reports_it() {
        let (tasks_tx, tasks_rx) = unbounded();
        let (done, done_rx, mut wake) = done();
        tasks_tx.send(task("a")).unwrap();
        drop(tasks_tx);
        let mut byte = [0u8; 1];
        assert!(wake.read(&mut byte).is_err(), "nothing to report yet");
        work(&tasks_rx, &done, &|task| Ok(task.notification.clone()));
        assert_eq!(wake.read(&mut byte).unwrap(), 1);
        assert_eq!(done_rx.try_iter().count(), 1);
    }

    #[test]
    fn a_collector_holds_the_next_job_of_each_thread_and_none_while_stopping() {
        assert_eq!(credit(4, 0, false), 8);
        assert_eq!(credit(4, 5, false), 3);
        assert_eq!(
            credit(3, 8, false),
            0,
            "a thread that ended takes its jobs' room"
        );
        assert_eq!(credit(4, 0, true), 0);
    }

    #[test]
    fn a_panic_fails_only_its_job_and_the_thread_serves_the_next() {
        let (tasks_tx, tasks_rx) = unbounded();
        let (done, done_rx, _wake) = done();
        for id in ["hostile", "fine"] {
            tasks_tx.send(task(id)).unwrap();
        }
        drop(tasks_tx);
        // The thread's own panic message goes to the default hook; the job gets it as reason.
        work(&tasks_rx, &done, &|task| {
            if task.id == "hostile" {
                panic!("byte index 1 is not a char boundary");
            }
            Ok(task.notification.clone())
        });
        let finished: Vec<Finished> = done_rx.try_iter().collect();
        assert_eq!(finished.len(), 2);
        match &finished[0].result {
            Err(Failure::Permanent(reason)) => {
                assert!(reason.contains("panicked"), "{reason}");
                assert!(reason.contains("not a char boundary"), "{reason}");
            }
            other => panic!("expected a permanent failure, got {other:?}"),
        }
        assert_eq!(finished[1].id, "fine");
        assert_eq!(finished[1].result, Ok(b"fine".to_vec()));
    }
}
