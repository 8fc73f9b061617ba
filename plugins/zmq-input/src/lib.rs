//! Input plugin `zmq-input`: the worker's side of the broker protocol. A thread of its own
//! holds the two DEALER sockets (controller and worker), announces the host's credit, turns
//! `TAKE` into `GET`, hands `JOB`s to the host, and sends each outcome back. When the broker
//! falls silent for several heartbeats the sockets are made anew, so a restarted broker
//! needs no restart of the worker.

use std::{
    borrow::Cow,
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use bonnie_core::{
    ledger::LeafReport,
    protocol::{self, ControlMsg, DataReply, ToWorker},
    transport::{self, Context, Socket},
};
use bonnie_plugin_api::prelude::*;
use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::Deserialize;

/// `[plugins.zmq-input]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The broker's worker address. Default: `tcp://127.0.0.1:5560`.
    #[serde(default = "default_worker_address")]
    worker_address: String,
    /// The broker's controller address. Default: `tcp://127.0.0.1:5561`.
    #[serde(default = "default_controller_address")]
    controller_address: String,
    /// Heartbeat interval in milliseconds; keep it equal to the broker's. Default: 1000.
    #[serde(default = "default_heartbeat_ms")]
    heartbeat_ms: u64,
    /// Heartbeats the broker may miss before the sockets are made anew. Default: 3.
    #[serde(default = "default_liveness")]
    heartbeat_liveness: u32,
    /// Jobs to announce as credit; 0 means what the host can hold. Default: 0.
    #[serde(default)]
    credit: u32,
    /// CURVE on both sockets, as the broker's `[curve] enabled`. Default: true.
    #[serde(default = "default_curve")]
    curve: bool,
    /// This worker's key pair file (`bonnie keys generate worker <name>`), relative to the
    /// configuration's folder. Default: `keys/worker.key`.
    #[serde(default = "default_key")]
    key: String,
    /// The broker's public key file. Default: `keys/broker.pub`.
    #[serde(default = "default_broker_key")]
    broker_key: String,
}

fn default_curve() -> bool {
    true
}

fn default_key() -> String {
    "keys/worker.key".to_string()
}

fn default_broker_key() -> String {
    "keys/broker.pub".to_string()
}

fn default_worker_address() -> String {
    "tcp://127.0.0.1:5560".to_string()
}

fn default_controller_address() -> String {
    "tcp://127.0.0.1:5561".to_string()
}

fn default_heartbeat_ms() -> u64 {
    1000
}

fn default_liveness() -> u32 {
    3
}

/// State shared by the host's calls and the socket thread.
struct Shared {
    host: Host,
    settings: Settings,
    capacity: AtomicU32,
    /// The host asked to stop taking jobs.
    stopping: AtomicBool,
    /// The input is being dropped: send what is left and end the thread.
    exiting: AtomicBool,
}

/// The input.
pub struct ZmqInput {
    shared: Arc<Shared>,
    jobs: Receiver<Job>,
    jobs_tx: Sender<Job>,
    /// Outcomes go to the socket thread through this inproc socket.
    outcomes: Mutex<Option<Socket>>,
    context: Context,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The CURVE keys both sockets authenticate with, when `curve` is on.
    keys: Option<transport::ClientKeys>,
}

impl ZmqInput {
    /// Reads the settings; the sockets come up in `start`.
    pub fn new(host: Host) -> Result<Self, PluginError> {
        let settings: Settings = host.config()?;
        if settings.heartbeat_ms == 0 || settings.heartbeat_liveness == 0 {
            return Err(PluginError::config(
                "[plugins.zmq-input] heartbeat_ms and heartbeat_liveness must be at least 1",
            ));
        }
        let keys = if settings.curve {
            let keys = bonnie_core::keys::client_keys_from(
                &host.path(&settings.key),
                &host.path(&settings.broker_key),
            )
            .map_err(|e| {
                PluginError::config(format!(
                    "[plugins.zmq-input] cannot read the worker's CURVE keys: {e}"
                ))
            })?;
            Some(keys)
        } else {
            None
        };
        let (jobs_tx, jobs) = unbounded();
        let shared = Arc::new(Shared {
            host,
            settings,
            capacity: AtomicU32::new(0),
            stopping: AtomicBool::new(false),
            exiting: AtomicBool::new(false),
        });
        Ok(Self {
            shared,
            jobs,
            jobs_tx,
            outcomes: Mutex::new(None),
            context: transport::context(),
            thread: Mutex::new(None),
            keys,
        })
    }
}

impl ZmqInput {
    /// The leaf of job `job_id`'s log record as the storage holds it: a retried job whose first
    /// attempt was stored keeps that first record, which may differ from this attempt's (views
    /// it read changed since), so the digest is taken of what was kept, read back by job id.
    /// `None` when the storage cannot give log records back (one from before it could): the
    /// broker then logs the job as unattested. An error (a storage that is down) postpones the
    /// job: it runs again, its write changes nothing, and its leaf is read then.
    fn stored_leaf(&self, job_id: &str) -> Result<Option<LeafReport>, String> {
        let storage = match self.shared.host.storage() {
            Ok(storage) => storage,
            Err(_) => return Ok(None),
        };
        let cannot = |e: &dyn std::fmt::Display| {
            format!("cannot read back the stored log record for the ledger: {e}")
        };
        match storage.get("log", job_id) {
            Ok(Some(record)) => LeafReport::of_stored(job_id, record.body.as_str())
                .map(Some)
                .map_err(|e| cannot(&e)),
            Ok(None) => {
                self.shared.host.warn(
                    "The storage does not give the job's log record back: its leaf in the ledger is unattested.",
                    &[("job", &job_id)],
                );
                Ok(None)
            }
            Err(e) => Err(cannot(&e.message)),
        }
    }
}

impl Input for ZmqInput {
    fn start(&self, capacity: u32) -> Result<(), PluginError> {
        let credit = if self.shared.settings.credit > 0 {
            self.shared.settings.credit
        } else {
            capacity
        };
        self.shared.capacity.store(credit.max(1), Ordering::Relaxed);
        let (push, pull) = transport::inproc_pair(&self.context, "zmq-input-outcomes")
            .map_err(|e| PluginError::config(format!("cannot create the outcome channel: {e}")))?;
        *self.outcomes.lock().unwrap_or_else(|p| p.into_inner()) = Some(push);
        let (shared, context, jobs, keys) = (
            self.shared.clone(),
            self.context.clone(),
            self.jobs_tx.clone(),
            self.keys.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("zmq-input".to_string())
            .spawn(move || {
                Network {
                    shared,
                    context,
                    jobs,
                    outcomes: pull,
                    generation: 0,
                    keys,
                }
                .run()
            })
            .map_err(|e| PluginError::config(format!("cannot start the socket thread: {e}")))?;
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(())
    }

    fn next_job(&self, wait: Duration) -> Result<NextJob, PluginError> {
        if self.shared.stopping.load(Ordering::Relaxed) {
            return Ok(NextJob::Finished);
        }
        Ok(match self.jobs.recv_timeout(wait) {
            Ok(job) => NextJob::Job(job),
            Err(_) => NextJob::Idle,
        })
    }

    fn complete(&self, job_id: &str, outcome: JobOutcome) -> Result<(), PluginError> {
        let id = job_id.to_string();
        let message = match outcome {
            JobOutcome::Done => match self.stored_leaf(job_id) {
                Ok(leaf) => ControlMsg::Done {
                    id,
                    leaves: leaf.map(|leaf| vec![leaf]),
                },
                Err(reason) => ControlMsg::Postpone { id, reason },
            },
            JobOutcome::Collect {
                commands,
                notification,
            } => ControlMsg::Collect {
                id,
                commands: commands.iter().map(|c| c.to_string()).collect(),
                notification: notification.as_bytes().to_vec(),
            },
            JobOutcome::Postpone { reason } => ControlMsg::Postpone {
                id,
                reason: reason.into_string(),
            },
            JobOutcome::Rejected { reason } => ControlMsg::Fail {
                id,
                reason: format!("rejected: {reason}"),
            },
            JobOutcome::Failed { reason } => ControlMsg::Fail {
                id,
                reason: reason.into_string(),
            },
            _ => ControlMsg::Fail {
                id,
                reason: "an outcome this input does not know".to_string(),
            },
        };
        let guard = self.outcomes.lock().unwrap_or_else(|p| p.into_inner());
        let socket = guard
            .as_ref()
            .ok_or_else(|| PluginError::transient("the input was not started"))?;
        socket.send_multipart(message.frames(), 0).map_err(|e| {
            PluginError::transient(format!("cannot pass the outcome to the socket thread: {e}"))
        })
    }

    fn stop(&self) -> Result<(), PluginError> {
        self.shared.stopping.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for ZmqInput {
    fn drop(&mut self) {
        self.shared.exiting.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

/// The socket thread.
struct Network {
    shared: Arc<Shared>,
    context: Context,
    jobs: Sender<Job>,
    outcomes: Socket,
    generation: u32,
    keys: Option<transport::ClientKeys>,
}

/// One connection to the broker: both sockets, and what was taken on it.
struct Session {
    control: Socket,
    data: Socket,
    /// Jobs the broker told us to take and whose `JOB` has not come yet.
    requested: HashSet<String>,
}

impl Network {
    fn host(&self) -> &Host {
        &self.shared.host
    }

    fn connect(&mut self) -> Result<Session, transport::Error> {
        self.generation += 1;
        let identity = format!(
            "Worker-{}-{}-{}",
            bonnie_core::config::system_host_name(),
            std::process::id(),
            self.generation
        );
        let settings = &self.shared.settings;
        // Outcomes waiting to go out when the socket closes are worth a short wait.
        let linger = Duration::from_millis(settings.heartbeat_ms);
        let control = transport::dealer_with(
            &self.context,
            &settings.controller_address,
            identity.as_bytes(),
            linger,
            self.keys.as_ref(),
        )?;
        let data = transport::dealer_with(
            &self.context,
            &settings.worker_address,
            identity.as_bytes(),
            linger,
            self.keys.as_ref(),
        )?;
        Ok(Session {
            control,
            data,
            requested: HashSet::new(),
        })
    }

    fn run(mut self) {
        // Jobs handed to the host and not completed yet.
        let mut held: HashSet<String> = HashSet::new();
        while !self.shared.exiting.load(Ordering::Relaxed) {
            let session = match self.connect() {
                Ok(session) => session,
                Err(e) => {
                    self.host()
                        .error("Cannot create the sockets to the broker.", &[("error", &e)]);
                    std::thread::sleep(Duration::from_millis(self.shared.settings.heartbeat_ms));
                    continue;
                }
            };
            self.host().info(
                "Connecting to the broker.",
                &[
                    ("controller", &self.shared.settings.controller_address),
                    ("worker", &self.shared.settings.worker_address),
                ],
            );
            self.serve(session, &mut held);
        }
    }

    fn credit(&self, session: &Session, held: &HashSet<String>) -> u32 {
        if self.shared.stopping.load(Ordering::Relaxed) {
            return 0;
        }
        let capacity = self.shared.capacity.load(Ordering::Relaxed) as usize;
        capacity.saturating_sub(held.len() + session.requested.len()) as u32
    }

    /// Serves one session until the broker falls silent or the input is dropped.
    fn serve(&mut self, mut session: Session, held: &mut HashSet<String>) {
        let heartbeat = Duration::from_millis(self.shared.settings.heartbeat_ms);
        let silence = heartbeat * self.shared.settings.heartbeat_liveness;
        let mut last_heard = Instant::now();
        let mut next_ready = Instant::now();
        loop {
            if self.shared.exiting.load(Ordering::Relaxed) {
                self.forward_outcomes(&session, held);
                return;
            }
            if Instant::now() >= next_ready {
                // READY doubles as the heartbeat; it restates the credit.
                let ready = ControlMsg::Ready {
                    credit: self.credit(&session, held),
                };
                let _ = transport::send(&session.control, &ready.frames());
                next_ready = Instant::now() + heartbeat;
            }
            if last_heard.elapsed() > silence {
                self.host().warn(
                    "The broker is silent; making new sockets.",
                    &[("silent_ms", &last_heard.elapsed().as_millis())],
                );
                return;
            }
            let wait = next_ready
                .saturating_duration_since(Instant::now())
                .min(heartbeat / 2);
            let readable =
                match transport::poll(&[&session.control, &session.data, &self.outcomes], wait) {
                    Ok(readable) => readable,
                    Err(_) => continue,
                };
            if readable[0] {
                while let Ok(Some(frames)) = transport::try_recv(&session.control) {
                    last_heard = Instant::now();
                    match ToWorker::parse(&frames) {
                        Ok(ToWorker::Take { id }) => {
                            let _ = transport::send(&session.data, &protocol::get_frames(&id));
                            session.requested.insert(id);
                        }
                        Ok(ToWorker::Heartbeat) => {}
                        Err(e) => self
                            .host()
                            .warn("Ignored a message from the broker.", &[("error", &e)]),
                    }
                }
            }
            if readable[1] {
                while let Ok(Some(frames)) = transport::try_recv(&session.data) {
                    last_heard = Instant::now();
                    self.on_data(&mut session, held, &frames);
                }
            }
            if readable[2] {
                self.forward_outcomes(&session, held);
            }
        }
    }

    fn on_data(&self, session: &mut Session, held: &mut HashSet<String>, frames: &[Vec<u8>]) {
        match DataReply::parse(frames) {
            Ok(DataReply::Job {
                id,
                notification,
                meta,
            }) => {
                session.requested.remove(&id);
                let text = bonnie_core::notification::decode(&notification);
                if matches!(text, Cow::Owned(_)) {
                    self.host().warn(
                        "The notification is not valid UTF-8; archived decoded, flagged, with its bytes.",
                        &[("job", &id), ("bytes", &notification.len())],
                    );
                }
                let mut job = Job::new(id.clone(), text.into_owned());
                let has_meta = meta.is_some();
                if let Some(meta) = meta {
                    job.meta = meta.into();
                }
                // Only a notification a collector wrote may hold what collectors add; one
                // from anywhere else (a dealer, or whoever forged it) loses those fields.
                if has_meta
                    && !job.collected()
                    && let Some((kept, dropped)) =
                        bonnie_core::notification::without_collector_fields(&job.notification)
                {
                    self.host().warn(
                        "A notification brought fields only a collector writes; they were dropped.",
                        &[("job", &id), ("fields", &dropped.join(","))],
                    );
                    job.notification = kept.into();
                }
                held.insert(id);
                if self.jobs.send(job).is_err() {}
            }
            Ok(DataReply::NoJob { id }) => {
                session.requested.remove(&id);
            }
            Err(e) => self
                .host()
                .warn("Ignored a message from the broker.", &[("error", &e)]),
        }
    }

    /// Sends the outcomes the host reported to the broker.
    fn forward_outcomes(&self, session: &Session, held: &mut HashSet<String>) {
        while let Ok(Some(frames)) = transport::try_recv(&self.outcomes) {
            if let Ok(
                ControlMsg::Done { id, .. }
                | ControlMsg::Postpone { id, .. }
                | ControlMsg::Collect { id, .. }
                | ControlMsg::Fail { id, .. },
            ) = ControlMsg::parse(&frames)
            {
                held.remove(&id);
            }
            if let Err(e) = transport::send(&session.control, &frames) {
                self.host().warn(
                    "Cannot send an outcome to the broker; it will time out and run again.",
                    &[("error", &e)],
                );
            }
        }
    }
}

bonnie_plugin_api::export_input! {
    name: "zmq-input",
    description: "Jobs from bonnie-broker over ZeroMQ, with outcomes reported back.",
    new: ZmqInput::new,
}
