//! The collector's side of the broker protocol: announce the host, the commands served and
//! the free credit (`READY`, repeated as the heartbeat); run each `COLLECT` on a pool thread;
//! answer `DONE` with the updated notification (or `FAIL`). When the broker falls silent the
//! socket is made anew, so a restarted broker needs no restart of the collector.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bonnie_core::{
    config::CollectorConfig,
    protocol::{CollectorMsg, ToCollector},
    transport,
};
use crossbeam_channel::{Receiver, Sender, unbounded};
use tracing::{debug, info, warn};

use crate::commands;

/// A job for a pool thread.
struct Task {
    id: String,
    commands: Vec<String>,
    notification: Vec<u8>,
}

/// A finished job.
struct Finished {
    id: String,
    result: Result<Vec<u8>, String>,
}

/// Runs until `shutdown` is set; jobs in flight are finished and reported first.
pub fn run(config: &CollectorConfig, shutdown: &AtomicBool) -> anyhow::Result<()> {
    let (tasks_tx, tasks_rx) = unbounded::<Task>();
    let (done_tx, done_rx) = unbounded::<Finished>();
    let config = Arc::new(config.clone());
    let mut pool = Vec::new();
    for n in 0..config.threads {
        let (tasks, done, config) = (tasks_rx.clone(), done_tx.clone(), config.clone());
        pool.push(
            std::thread::Builder::new()
                .name(format!("collect-{n}"))
                .spawn(move || work(&tasks, &done, &config))?,
        );
    }
    drop(done_tx);
    let context = transport::context();
    let mut generation = 0;
    let mut busy = 0usize;
    info!(broker = %config.broker_address, host = %config.host_name(), commands = ?config.commands,
        threads = config.threads, "Collector running.");
    while !(shutdown.load(Ordering::Relaxed) && busy == 0) {
        generation += 1;
        let identity = format!(
            "Collector-{}-{}-{generation}",
            config.host_name(),
            std::process::id()
        );
        let socket = match transport::dealer(
            &context,
            &config.broker_address,
            identity.as_bytes(),
            Duration::from_secs(2),
        ) {
            Ok(socket) => socket,
            Err(e) => {
                warn!(error = %e, "Cannot create the socket to the broker.");
                std::thread::sleep(Duration::from_millis(config.heartbeat_ms));
                continue;
            }
        };
        serve(&config, &socket, &tasks_tx, &done_rx, &mut busy, shutdown);
    }
    drop(tasks_tx);
    for thread in pool {
        let _ = thread.join();
    }
    info!("Collector stopped.");
    Ok(())
}

fn work(tasks: &Receiver<Task>, done: &Sender<Finished>, config: &CollectorConfig) {
    for task in tasks {
        let started = Instant::now();
        let result = commands::collect(config, &task.notification, &task.commands);
        debug!(job = %task.id, commands = ?task.commands, ms = started.elapsed().as_millis() as u64, "Collected.");
        if done
            .send(Finished {
                id: task.id,
                result,
            })
            .is_err()
        {
            return;
        }
    }
}

/// One connection to the broker, until it falls silent or the collector stops.
fn serve(
    config: &CollectorConfig,
    socket: &transport::Socket,
    tasks: &Sender<Task>,
    done: &Receiver<Finished>,
    busy: &mut usize,
    shutdown: &AtomicBool,
) {
    let heartbeat = Duration::from_millis(config.heartbeat_ms);
    let silence = heartbeat * config.heartbeat_liveness;
    let mut last_heard = Instant::now();
    let mut next_ready = Instant::now();
    loop {
        let stopping = shutdown.load(Ordering::Relaxed);
        if stopping && *busy == 0 {
            return;
        }
        if Instant::now() >= next_ready {
            let credit = if stopping {
                0
            } else {
                config.threads.saturating_sub(*busy) as u32
            };
            let ready = CollectorMsg::Ready {
                host: config.host_name(),
                commands: config.commands.clone(),
                credit,
            };
            let _ = transport::send(socket, &ready.frames());
            next_ready = Instant::now() + heartbeat;
        }
        if last_heard.elapsed() > silence {
            warn!(
                silent_ms = last_heard.elapsed().as_millis() as u64,
                "The broker is silent; making a new socket."
            );
            return;
        }
        // Finished jobs are picked up at least every 10 ms.
        if let Ok([true]) = transport::poll(&[socket], Duration::from_millis(10)).as_deref() {
            while let Ok(Some(frames)) = transport::try_recv(socket) {
                last_heard = Instant::now();
                match ToCollector::parse(&frames) {
                    Ok(ToCollector::Collect {
                        id,
                        commands,
                        notification,
                    }) => {
                        *busy += 1;
                        let _ = tasks.send(Task {
                            id,
                            commands,
                            notification,
                        });
                    }
                    Ok(ToCollector::Heartbeat) => {}
                    Err(e) => warn!(error = %e, "Ignored a message from the broker."),
                }
            }
        }
        while let Ok(finished) = done.try_recv() {
            *busy = busy.saturating_sub(1);
            let message = match finished.result {
                Ok(notification) => CollectorMsg::Done {
                    id: finished.id,
                    notification,
                },
                Err(reason) => {
                    warn!(job = %finished.id, reason = %reason, "Job could not be collected.");
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
