//! `restore.start` and `restore.status`: `bonnie restore` for admin clients (a helpdesk tool's
//! "restore my deleted folder"). `restore.start {user, folder | message, recursive?, as_of?,
//! into?, dry_run?}` takes the snapshot (so that a folder or message the archive does not know
//! is answered at once), keeps the restore's audit record (`restore`, outcome `requested`) in
//! the broker's verifiable log, and runs the restore on a thread of its own
//! ([`bonnie_restore::run`], as the command line runs it), answering `{job}`;
//! `restore.status {job}` answers its state (`running`, `done`, `failed`), its counts, each
//! folder and the messages not restored. Each folder restored and the end are audit records
//! too, as the command line's. Jobs live as long as the process; at most
//! [`MAX_RUNNING`] run at once. Only for the clients in `[api] admin_clients` (-32001): a
//! restore writes into any user's mailbox.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use bonnie_core::{
    Config,
    protocol::AuditRecord,
    time::{format_rfc3339_ms, now_ms},
};
use bonnie_discovery::query::{self, Context};
use bonnie_plugin_api::storage::StorageClient;
use bonnie_restore::{
    plan::Destination,
    run::{self as restoring, Journal, Options, RunState},
    snapshot::{Selector, snapshot},
};
use serde_json::{Value, json};

use crate::{
    audit::{self, AuditLedger},
    methods::Caller,
    rpc::{Params, RpcError},
};

/// Restores running at once, at most: each holds an IMAP connection and appends at up to
/// [`RATE`] messages a second.
pub const MAX_RUNNING: usize = 4;

/// Messages appended a second by a restore of the API (`bonnie restore`'s default `--rate`).
pub const RATE: f64 = 100.0;

/// One restore started by a client.
#[derive(Debug, Clone)]
struct Job {
    /// `running`, `done` or `failed`.
    state: &'static str,
    /// Whether it changes nothing.
    dry_run: bool,
    /// Messages the snapshot has, and how many of them were handled so far.
    messages: u64,
    handled: u64,
    /// The restore's state as it stands.
    run: RunState,
    /// Why it failed.
    error: Option<String>,
}

/// The restores this process runs.
pub struct Restores {
    storage: Arc<StorageClient>,
    /// `[collector]`'s IMAP settings, which the restore connects with.
    config: Config,
    ledger: Arc<dyn AuditLedger>,
    jobs: Mutex<HashMap<String, Arc<Mutex<Job>>>>,
}

impl Restores {
    /// Restores from `storage` into the Cyrus of `config`'s `[collector]`, audited in `ledger`.
    pub fn new(storage: Arc<StorageClient>, config: Config, ledger: Arc<dyn AuditLedger>) -> Self {
        Self {
            storage,
            config,
            ledger,
            jobs: Mutex::new(HashMap::new()),
        }
    }

    /// `restore.start`.
    pub fn start(&self, caller: &Caller<'_>, params: &Params) -> Result<Value, RpcError> {
        admin_only(caller, "restore.start")?;
        params.only(&[
            "user",
            "folder",
            "recursive",
            "message",
            "as_of",
            "into",
            "dry_run",
        ])?;
        let user = params.text("user")?.to_string();
        let recursive = flag(params, "recursive")?;
        let dry_run = flag(params, "dry_run")?;
        let selector = match (
            params.optional_text("folder")?,
            params.optional_text("message")?,
        ) {
            (Some(folder), None) => Selector::Folder {
                name: folder.trim_matches('/').to_string(),
                recursive,
            },
            (None, Some(message)) if !recursive => Selector::Message(message.to_string()),
            _ => {
                return Err(RpcError::invalid_params(
                    "Invalid params: name a folder (with recursive or not) or a message",
                ));
            }
        };
        let as_of = moment(params.optional_text("as_of")?, caller.discovery)?;
        let into = params.optional_text("into")?;
        let running = self.running();
        if running >= MAX_RUNNING {
            return Err(RpcError::internal(format!(
                "{running} restores are running, as many as may at once; try again when one is done"
            )));
        }
        let snapshot = snapshot(&self.storage, &user, &selector, as_of).map_err(|e| match e {
            bonnie_restore::RestoreError::NotFound(what) => {
                RpcError::invalid_params(format!("Invalid params: {what}"))
            }
            other => RpcError::internal(format!("cannot take the snapshot of {user}: {other}")),
        })?;
        // Held by the restore's thread until it ends; refused while another restore, this
        // service's or `bonnie restore`'s, writes into the mailbox.
        let lock = match dry_run {
            true => None,
            false => Some(
                restoring::lock_mailbox(&self.config, &user).map_err(|e| match e {
                    bonnie_core::run_lock::RunLockError::Held { .. } => {
                        RpcError::busy(e.to_string())
                    }
                    e => RpcError::internal(e.to_string()),
                })?,
            ),
        };
        let id = audit::action_id("restore");
        let state = restoring::start(
            &snapshot,
            &Destination::parse(into),
            RunState {
                run: id.clone(),
                user: user.clone(),
                as_of_ms: snapshot.as_of_ms,
                started_ms: now_ms(),
                ..RunState::default()
            },
        );
        let audited = Audited {
            ledger: Arc::clone(&self.ledger),
            client: caller.client.to_string(),
            user: caller.user.unwrap_or_default().to_string(),
        };
        let requested = json!({
            "run": id, "user": user, "folder": params.optional_text("folder")?,
            "recursive": recursive, "message": params.optional_text("message")?,
            "as_of": format_rfc3339_ms(snapshot.as_of_ms), "into": into, "dry_run": dry_run,
        });
        if !dry_run {
            audited
                .keep(
                    "restore",
                    requested,
                    snapshot.message_count() as u64,
                    "requested",
                )
                .map_err(|e| {
                    RpcError::internal(format!("the restore's audit record was not kept: {e:#}"))
                })?;
        }
        let job = Arc::new(Mutex::new(Job {
            state: "running",
            dry_run,
            messages: snapshot.message_count() as u64,
            handled: 0,
            run: state.clone(),
            error: None,
        }));
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), Arc::clone(&job));
        let storage = Arc::clone(&self.storage);
        let config = self.config.clone();
        let thread = std::thread::Builder::new()
            .name("bonnie-api-restore".to_string())
            .spawn(move || {
                let _lock = lock;
                let mut state = state;
                let mut journal = JobJournal {
                    job: Arc::clone(&job),
                    audited,
                };
                let options = Options {
                    dry_run,
                    rate: RATE,
                };
                let outcome = restoring::imap_pool(&config).and_then(|pool| {
                    restoring::execute(&storage, pool, &snapshot, &mut state, options, &mut journal)
                });
                state.finished_ms = Some(now_ms());
                let ended = outcome.and_then(|()| {
                    if dry_run {
                        return Ok(());
                    }
                    let counts = json!({
                        "run": state.run, "user": state.user,
                        "as_of": format_rfc3339_ms(state.as_of_ms),
                        "appended": state.appended(), "present": state.present(),
                        "refused": state.refused.len(), "bytes": state.bytes,
                    });
                    journal.audited.keep("restore", counts, state.appended(), "ok")
                });
                let mut job = job.lock().unwrap_or_else(PoisonError::into_inner);
                job.run = state;
                match ended {
                    Ok(()) => job.state = "done",
                    Err(e) => {
                        tracing::warn!(job = %job.run.run, error = %format!("{e:#}"), "A restore of the API failed.");
                        job.state = "failed";
                        job.error = Some(format!("{e:#}"));
                    }
                }
            });
        if let Err(e) = thread {
            self.jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            return Err(RpcError::internal(format!(
                "cannot start the restore's thread: {e}"
            )));
        }
        Ok(json!({ "job": id }))
    }

    /// `restore.status`.
    pub fn status(&self, caller: &Caller<'_>, params: &Params) -> Result<Value, RpcError> {
        admin_only(caller, "restore.status")?;
        params.only(&["job"])?;
        let id = params.text("job")?;
        let job = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned();
        let Some(job) = job else {
            return Ok(Value::Bool(false));
        };
        let job = job.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let run = &job.run;
        Ok(json!({
            "job": run.run,
            "state": job.state,
            "dry_run": job.dry_run,
            "user": run.user,
            "as_of": format_rfc3339_ms(run.as_of_ms),
            "started": format_rfc3339_ms(run.started_ms),
            "finished": run.finished_ms.map(format_rfc3339_ms),
            "messages": job.messages,
            "handled": job.handled,
            "appended": run.appended(),
            "present": run.present(),
            "bytes": run.bytes,
            "folders": run.folders.iter().map(|f| json!({
                "source": f.source, "target": f.target, "created": f.created,
                "messages": f.messages, "appended": f.appended.len(), "present": f.present,
                "superseded": f.superseded, "flags_left_off": f.flags_left_off.len(),
                "done": f.done,
            })).collect::<Vec<_>>(),
            "errors": run.refused,
            "error": job.error,
        }))
    }

    /// Restores running now.
    fn running(&self) -> usize {
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.values()
            .filter(|j| j.lock().unwrap_or_else(PoisonError::into_inner).state == "running")
            .count()
    }
}

/// -32001 for a client not in `[api] admin_clients`, before a parameter is read.
fn admin_only(caller: &Caller<'_>, method: &str) -> Result<(), RpcError> {
    if caller.admin {
        Ok(())
    } else {
        Err(RpcError::forbidden(format!(
            "Forbidden: {method} is for the clients in [api] admin_clients"
        )))
    }
}

/// An optional true/false parameter (absent or null: false).
fn flag(params: &Params, name: &str) -> Result<bool, RpcError> {
    match params.0.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(RpcError::invalid_params(format!(
            "Invalid params: {name} must be true or false"
        ))),
    }
}

/// The moment `as_of` names, as `bonnie restore --as-of` reads it (in `[discovery]
/// time_zone` without an offset).
fn moment(as_of: Option<&str>, context: &Context) -> Result<Option<i64>, RpcError> {
    as_of
        .map(|t| {
            query::instant(t, &context.zone).ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "Invalid params: as_of {t:?}: write a date (2026-11-28) or a time (2026-11-28T10:00, 2026-11-28T10:00:00+01:00)"
                ))
            })
        })
        .transpose()
}

/// Audit records of a client's restore, in the broker's verifiable log.
struct Audited {
    ledger: Arc<dyn AuditLedger>,
    client: String,
    user: String,
}

impl Audited {
    /// Keeps the record of `action` with `params`, `count` and `outcome`.
    fn keep(&self, action: &str, params: Value, count: u64, outcome: &str) -> anyhow::Result<()> {
        let record = AuditRecord {
            id: audit::action_id("api"),
            time: format_rfc3339_ms(now_ms()),
            source: "api".to_string(),
            user: self.user.clone(),
            client: Some(self.client.clone()),
            peer: None,
            action: action.to_string(),
            params,
            count: Some(count),
            outcome: outcome.to_string(),
            error: None,
        };
        self.ledger.keep(&record).map(|_| ())
    }
}

/// What a job keeps of its restore: the state in the job, the steps in the audit log.
struct JobJournal {
    job: Arc<Mutex<Job>>,
    audited: Audited,
}

impl Journal for JobJournal {
    fn keep(&mut self, state: &RunState) -> anyhow::Result<()> {
        self.job.lock().unwrap_or_else(PoisonError::into_inner).run = state.clone();
        Ok(())
    }

    fn step(&mut self, action: &str, params: Value, count: u64) -> anyhow::Result<()> {
        self.audited.keep(action, params, count, "ok")
    }

    fn advanced(&mut self) {
        self.job
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .handled += 1;
    }
}
