//! The sender: a thread that looks for due outbox entries every poll interval, claims each
//! (a `put_if` that moves its next attempt to the end of the claim, so no other sender sees
//! it due meanwhile, and one whose sender died is due again after it), delivers it, and marks
//! it sent, or due again after a doubled backoff, or failed after its last attempt. A failure
//! is logged every time, a final one as an error: no alert is dropped unseen.

use std::{
    fmt::Display,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use bonnie_dlp::Action;
use bonnie_plugin_api::{
    LogLevel, PluginError,
    storage::{RecordQuery, StorageClient},
};
use serde_json::{Value, json};

use crate::{
    AlertSettings, COLLECTION, EntryState,
    channels::{Channels, Undelivered},
    outbox::{now_ms, record},
};

/// Where the sender logs: the DLP plugin passes the host's log callback
/// ([`bonnie_plugin_api::Host::log`]), since a plugin's own `tracing` output would be lost.
pub type AlertLog = Arc<dyn Fn(LogLevel, &str, &[(&str, &dyn Display)]) + Send + Sync>;

/// Entries looked at per pass; the rest wait for the next one.
const BATCH: u32 = 100;

/// The longest pause between two looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// The background sender of one worker; stopped and joined on drop (or by [`Sender::stop`]).
pub struct Sender {
    /// Set to stop this sender alone (the host's flag is only read: setting it would stop
    /// the host).
    halt: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The sender's two reasons to stop: the host's stopping flag and its own.
struct Stop {
    host: Arc<AtomicBool>,
    halt: Arc<AtomicBool>,
}

impl Stop {
    fn now(&self) -> bool {
        self.host.load(Ordering::SeqCst) || self.halt.load(Ordering::SeqCst)
    }
}

/// What one sender needs on its thread.
struct Worker {
    storage: StorageClient,
    settings: AlertSettings,
    channels: Channels,
    log: AlertLog,
    /// This sender's name in the claims it writes.
    id: String,
}

/// A name for this sender, unique on the host and, with the time, across hosts.
fn sender_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        now_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Sender {
    /// Starts the sender on `storage` with `settings`, logging through `log`. Settings are
    /// checked first: an unusable one is a config error naming its key. It runs until `stop`
    /// is set (the host's stopping flag) or it is dropped.
    pub fn spawn(
        storage: StorageClient,
        settings: AlertSettings,
        stop: Arc<AtomicBool>,
        log: AlertLog,
    ) -> Result<Self, PluginError> {
        let channels = Channels::new(&settings).map_err(|e| PluginError::config(e.to_string()))?;
        let worker = Worker {
            storage,
            settings,
            channels,
            log,
            id: sender_id(),
        };
        let halt = Arc::new(AtomicBool::new(false));
        let flags = Stop {
            host: stop,
            halt: halt.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("dlp-alerts".to_string())
            .spawn(move || worker.run(&flags))
            .map_err(|e| {
                PluginError::transient(format!("cannot start the DLP alert sender: {e}"))
            })?;
        Ok(Self {
            halt,
            thread: Some(thread),
        })
    }

    /// Stops the sender after the alert it is sending, if any, and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.halt.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.halt();
    }
}

impl Worker {
    fn run(&self, stop: &Stop) {
        let interval = Duration::from_millis(self.settings.poll_interval_ms);
        while !stop.now() {
            if let Err(e) = self.pass(stop) {
                (self.log)(
                    LogLevel::Warn,
                    "The DLP alert outbox cannot be read; trying again.",
                    &[("error", &e)],
                );
            }
            let mut waited = Duration::ZERO;
            while waited < interval && !stop.now() {
                let step = STOP_CHECK.min(interval - waited);
                std::thread::park_timeout(step);
                waited += step;
            }
        }
    }

    /// Sends what is due now.
    fn pass(&self, stop: &Stop) -> Result<(), PluginError> {
        let now = now_ms();
        let query = RecordQuery {
            collection: COLLECTION.to_string(),
            index: Some(("state".to_string(), EntryState::Pending.name().to_string())),
            to_ms: Some(now.saturating_add(1)),
            limit: BATCH,
            ..RecordQuery::default()
        };
        for found in self.storage.query(&query)? {
            if stop.now() {
                break;
            }
            let key = found.key.to_string();
            let body = match found.json() {
                Ok(body) => body,
                Err(e) => {
                    (self.log)(
                        LogLevel::Error,
                        "A DLP outbox entry is not JSON; it is left as it is.",
                        &[("entry", &key), ("error", &e)],
                    );
                    continue;
                }
            };
            if body["state"] != EntryState::Pending.name()
                || body["next_attempt_ms"].as_i64().is_some_and(|t| t > now)
            {
                continue;
            }
            self.attempt(&key, found.body.as_str(), body)?;
        }
        Ok(())
    }

    /// Claims, delivers and records entry `key`, stored as `stored` (`body` parsed).
    fn attempt(&self, key: &str, stored: &str, mut body: Value) -> Result<(), PluginError> {
        let now = now_ms();
        let attempts = body["attempts"].as_u64().unwrap_or(0) as u32 + 1;
        body["attempts"] = json!(attempts);
        body["next_attempt_ms"] = json!(now.saturating_add(self.settings.claim_ms as i64));
        body["claim"] = json!({ "by": self.id, "until_ms": body["next_attempt_ms"] });
        let claimed = record(key, &body);
        if !self.storage.put_if(claimed.clone(), Some(stored))? {
            // Another sender took it first.
            return Ok(());
        }
        let outcome = match serde_json::from_value::<Action>(body["action"].clone()) {
            Ok(action) => self.channels.deliver(key, &action, &body["incident"]),
            Err(e) => Err(Undelivered {
                reason: format!("the entry's action cannot be read: {e}"),
                permanent: true,
            }),
        };
        let claimed_body = claimed.body.to_string();
        if let Some(entry) = body.as_object_mut() {
            entry.remove("claim");
        }
        let now = now_ms();
        let level;
        let message;
        match &outcome {
            Ok(()) => {
                body["state"] = json!(EntryState::Sent.name());
                body["sent_ms"] = json!(now);
                level = LogLevel::Info;
                message = "A DLP alert was sent.";
            }
            Err(undelivered)
                if undelivered.permanent || attempts >= self.settings.retry.max_attempts =>
            {
                body["state"] = json!(EntryState::Failed.name());
                body["failed_ms"] = json!(now);
                body["last_error"] = json!(undelivered.reason);
                level = LogLevel::Error;
                message = "A DLP alert could not be sent and is given up; it stays in the outbox as failed.";
            }
            Err(undelivered) => {
                let wait = self.settings.retry.backoff(attempts);
                body["next_attempt_ms"] = json!(now.saturating_add(wait.as_millis() as i64));
                body["last_error"] = json!(undelivered.reason);
                level = LogLevel::Warn;
                message = "A DLP alert could not be sent; it will be tried again.";
            }
        }
        let error = outcome.as_ref().err().map_or("", |u| u.reason.as_str());
        (self.log)(
            level,
            message,
            &[("entry", &key), ("attempts", &attempts), ("error", &error)],
        );
        if !self
            .storage
            .put_if(record(key, &body), Some(&claimed_body))?
        {
            // The claim ran out and another sender took the entry over: its outcome counts.
            (self.log)(
                LogLevel::Warn,
                "A DLP alert's claim ran out while it was being sent; another sender has it now.",
                &[("entry", &key)],
            );
        }
        Ok(())
    }
}
