//! One job through the handler chain: the handlers subscribed to its event (and `*`) in the
//! configured order, each getting the notification as the previous one left it.

use std::time::Instant;

use abi_stable::std_types::{RResult, RString, RVec};
use bonnie_core::notification::event_name;
use bonnie_plugin_api::{
    ErrorKind, HandlerOutcome, Job, JobOutcome, PluginError,
    handler::{ALL_EVENTS, COLLECTOR_COMMANDS, HandlerBox},
};
use serde::de::IgnoredAny;

use crate::metrics::{Handled, HandlerMetrics};

/// A started handler and its subscriptions.
pub struct HandlerSlot {
    /// The plugin's name.
    pub name: String,
    /// The handler.
    pub handler: HandlerBox,
    /// Event names it subscribed to.
    pub events: Vec<String>,
    /// Its outcome counters and latency histogram.
    pub metrics: HandlerMetrics,
}

impl HandlerSlot {
    fn subscribes(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event || e == ALL_EVENTS)
    }
}

/// What the handler chain made of a job.
#[derive(Debug, PartialEq)]
pub enum ChainResult {
    /// Every handler is done: store and write this record.
    Record(String),
    /// Finished here, without storing: report this outcome to the input.
    Outcome(JobOutcome),
}

/// Runs the handler chain on one job, counting each handler's outcome and time.
pub fn run(handlers: &[HandlerSlot], job: &Job) -> ChainResult {
    let event = match event_name(job.notification.as_str()) {
        Ok(event) => event.into_owned(),
        Err(e) => return rejected(e.to_string()),
    };
    let mut current = job.clone();
    let mut commands: Vec<RString> = Vec::new();
    for slot in handlers.iter().filter(|slot| slot.subscribes(&event)) {
        let started = Instant::now();
        let step = step(slot, &mut current, &mut commands);
        let handled = match &step {
            Ok(handled) => *handled,
            Err(ChainResult::Outcome(JobOutcome::Postpone { .. })) => Handled::Postponed,
            Err(ChainResult::Outcome(JobOutcome::Rejected { .. })) => Handled::Rejected,
            Err(_) => Handled::Failed,
        };
        slot.metrics.observe(handled, started.elapsed());
        if let Err(end) = step {
            return end;
        }
    }
    if commands.is_empty() {
        ChainResult::Record(current.notification.into_string())
    } else {
        ChainResult::Outcome(JobOutcome::Collect {
            commands: RVec::from(commands),
            notification: current.notification,
        })
    }
}

/// One handler on the job as the previous ones left it: `Ok` when it hands the job on (its
/// notification in `current`, the collector commands it asks for added to `commands`), else
/// how the chain ends.
fn step(
    slot: &HandlerSlot,
    current: &mut Job,
    commands: &mut Vec<RString>,
) -> Result<Handled, ChainResult> {
    let outcome = match slot.handler.handle(current) {
        RResult::ROk(outcome) => outcome,
        RResult::RErr(e) => return Err(from_error(&slot.name, &e)),
    };
    let outcome = outcome.into_enum().map_err(|_| {
        failed(format!(
            "handler {} returned an outcome this host does not know; upgrade bonnie-worker",
            slot.name
        ))
    })?;
    match outcome {
        HandlerOutcome::Done { notification } => {
            check_json(&slot.name, &notification).map_err(failed)?;
            current.notification = notification;
            Ok(Handled::Done)
        }
        HandlerOutcome::NeedsCollector {
            commands: wanted,
            notification,
        } => {
            check_json(&slot.name, &notification).map_err(failed)?;
            for command in wanted {
                if !COLLECTOR_COMMANDS.contains(&command.as_str()) {
                    return Err(failed(format!(
                        "handler {} asked for the unknown collector command {command:?}",
                        slot.name
                    )));
                }
                if !commands.contains(&command) {
                    commands.push(command);
                }
            }
            current.notification = notification;
            Ok(Handled::Collect)
        }
        HandlerOutcome::Postpone { reason } => Err(ChainResult::Outcome(JobOutcome::Postpone {
            reason: format!("handler {}: {reason}", slot.name).into(),
        })),
        HandlerOutcome::Rejected { reason } => {
            Err(rejected(format!("handler {}: {reason}", slot.name)))
        }
        _ => Err(failed(format!(
            "handler {} returned an unsupported outcome",
            slot.name
        ))),
    }
}

/// A handler must hand back a JSON object; anything else fails the job, naming the handler.
fn check_json(handler: &str, notification: &str) -> Result<(), String> {
    let trimmed = notification.trim_start();
    if !trimmed.starts_with('{') {
        return Err(format!(
            "handler {handler} returned a notification that is not a JSON object"
        ));
    }
    serde_json::from_str::<IgnoredAny>(notification)
        .map(|_| ())
        .map_err(|e| {
            format!("handler {handler} returned a notification that is not valid JSON: {e}")
        })
}

fn from_error(handler: &str, e: &PluginError) -> ChainResult {
    let reason = format!("handler {handler}: {}", e.message);
    match e.kind() {
        Some(ErrorKind::Transient) => ChainResult::Outcome(JobOutcome::Postpone {
            reason: reason.into(),
        }),
        Some(ErrorKind::Rejected) => rejected(reason),
        Some(ErrorKind::Panicked) => failed(format!("handler {handler} panicked: {}", e.message)),
        _ => failed(format!(
            "handler {handler} failed ({}): {}",
            e.kind_name(),
            e.message
        )),
    }
}

fn rejected(reason: String) -> ChainResult {
    ChainResult::Outcome(JobOutcome::Rejected {
        reason: reason.into(),
    })
}

fn failed(reason: String) -> ChainResult {
    ChainResult::Outcome(JobOutcome::Failed {
        reason: reason.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_checks_name_the_handler() {
        assert!(check_json("h", r#"{"event":"Login"}"#).is_ok());
        assert!(check_json("h", "[1]").unwrap_err().contains("handler h"));
        assert!(
            check_json("h", "{\"a\":")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn a_notification_without_event_is_rejected() {
        let job = Job::new("1", "{\"no\":\"event\"}");
        match run(&[], &job) {
            ChainResult::Outcome(JobOutcome::Rejected { reason }) => {
                assert!(reason.contains("event"), "{reason}")
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn without_handlers_the_notification_is_the_record() {
        let job = Job::new("1", "{\"event\":\"Login\"}");
        assert_eq!(
            run(&[], &job),
            ChainResult::Record("{\"event\":\"Login\"}".to_string())
        );
    }
}
