//! What an incident's actions become. Alerts (syslog, webhook, e-mail) go to the durable
//! outbox of bonnie-dlp-actions, keyed `<job id>/<hit n>/<action n>` so that a job handled
//! again sends nothing twice; the alert sender thread delivers them. IMAP actions (a keyword,
//! a quarantine folder) are the collector's `DLPACTION`: the record asks for them once
//! (`dlp_imap_actions`) and the collector's answer (`dlp_imap_results`, or its error in
//! `collector_errors`) becomes their outcome. No action's failure fails the record: each
//! action's `outcome` says what became of it.

use bonnie_dlp::Action;
use bonnie_dlp_actions::Outbox;
use bonnie_model::record::Object;
use serde_json::{Value, json};

/// The collector command that sets keywords and moves messages.
pub const DLPACTION: &str = "DLPACTION";
/// The record's field naming the IMAP actions the collector is asked for.
pub const REQUEST_FIELD: &str = "dlp_imap_actions";
/// The record's field the collector answers in.
pub const RESULTS_FIELD: &str = "dlp_imap_results";

fn is_imap(action: &Value) -> bool {
    matches!(
        action.get("type").and_then(Value::as_str),
        Some("keyword" | "quarantine")
    )
}

fn actions_mut(incident: &mut Value) -> impl Iterator<Item = &mut Value> {
    incident
        .get_mut("actions")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// Puts each alert action of `incidents` in the outbox with `event` (the incident as the
/// derived record tells it, masked) and sets its outcome: `queued` with its `outbox` key, or
/// `failed` with the reason.
pub fn queue_alerts(
    outbox: &Outbox,
    job: &str,
    incidents: &mut [Value],
    derived: impl Fn(&Value) -> Value,
) {
    for incident in incidents.iter_mut() {
        let n = incident.get("n").and_then(Value::as_u64).unwrap_or(0);
        let told = derived(incident);
        for (m, entry) in actions_mut(incident).enumerate() {
            let Ok(action) = serde_json::from_value::<Action>(strip_outcome(entry)) else {
                continue;
            };
            if !matches!(
                action,
                Action::Syslog {} | Action::Webhook { .. } | Action::Email { .. }
            ) {
                continue;
            }
            let key = format!("{job}/{n}/{m}");
            let outcome = match outbox.enqueue(&key, &action, &told) {
                Ok(_) => json!({ "outcome": "queued", "outbox": key }),
                Err(e) => json!({ "outcome": "failed", "error": e.message.to_string() }),
            };
            merge(entry, outcome);
        }
    }
}

fn strip_outcome(entry: &Value) -> Value {
    let mut action = entry.clone();
    if let Some(object) = action.as_object_mut() {
        for key in ["outcome", "outbox", "error", "result"] {
            object.remove(key);
        }
    }
    action
}

fn merge(entry: &mut Value, outcome: Value) {
    if let (Some(entry), Value::Object(outcome)) = (entry.as_object_mut(), outcome) {
        entry.extend(outcome);
    }
}

/// True if `folder` (the record's path, `shared/quarantine@example.org`) is the quarantine
/// folder a rule names (`shared/quarantine`).
fn is_folder(folder: &str, quarantine: &str) -> bool {
    folder == quarantine
        || folder
            .strip_prefix(quarantine)
            .is_some_and(|rest| rest.starts_with('@'))
}

/// The IMAP actions the incidents ask for, each once: every keyword, and the first
/// quarantine folder (a message is moved once, and not when it is in that folder already,
/// `folder` being the event's). The others' outcome says why they are not.
pub fn imap_request(incidents: &mut [Value], folder: Option<&str>) -> Vec<Value> {
    let mut request: Vec<Value> = Vec::new();
    let mut quarantine: Option<String> = None;
    for incident in incidents.iter_mut() {
        for entry in actions_mut(incident).filter(|a| is_imap(a)) {
            let action = strip_outcome(entry);
            let target = action.get("folder").and_then(Value::as_str);
            if let (Some(target), Some(folder)) = (target, folder)
                && is_folder(folder, target)
            {
                merge(
                    entry,
                    json!({ "outcome": "not performed", "error": format!("the message is in {target} already") }),
                );
                continue;
            }
            match (target, &quarantine) {
                (Some(folder), Some(first)) if folder != first => {
                    merge(
                        entry,
                        json!({ "outcome": "not performed", "error": format!("the message is quarantined in {first}") }),
                    );
                    continue;
                }
                (Some(folder), None) => quarantine = Some(folder.to_string()),
                _ => {}
            }
            if !request.contains(&action) {
                request.push(action);
            }
            merge(entry, json!({ "outcome": "requested" }));
        }
    }
    request
}

/// Whether the collector has answered the record's IMAP actions.
pub fn answered(record: &Object) -> bool {
    record.contains_key(RESULTS_FIELD)
        || record
            .get("collector_errors")
            .and_then(|e| e.get(DLPACTION))
            .is_some()
}

/// Sets the requested IMAP actions' outcomes from the collector's answer: the result in the
/// place of the same action in the request (`done` with it, or `failed` with its `error`), or
/// the collector's error for the whole command.
pub fn imap_outcomes(record: &Object, incidents: &mut [Value]) {
    let list = |field: &str| -> Vec<Value> {
        record
            .get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (request, results) = (list(REQUEST_FIELD), list(RESULTS_FIELD));
    let error = record
        .get("collector_errors")
        .and_then(|e| e.get(DLPACTION))
        .cloned();
    for incident in incidents.iter_mut() {
        for entry in actions_mut(incident).filter(|a| is_imap(a)) {
            if entry.get("outcome").and_then(Value::as_str) != Some("requested") {
                continue;
            }
            let action = strip_outcome(entry);
            let result = request
                .iter()
                .position(|asked| *asked == action)
                .and_then(|i| results.get(i));
            let outcome = match (result, &error) {
                (Some(result), _) if result.get("error").is_some() => {
                    json!({ "outcome": "failed", "error": result["error"], "result": result })
                }
                (Some(result), _) => json!({ "outcome": "done", "result": result }),
                (None, Some(error)) => json!({ "outcome": "failed", "error": error }),
                (None, None) => {
                    json!({ "outcome": "failed", "error": "the collector did not answer this action" })
                }
            };
            merge(entry, outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(n: usize, actions: Value) -> Value {
        json!({ "n": n, "rule": "r", "actions": actions })
    }

    #[test]
    fn keywords_are_asked_once_and_a_message_goes_to_one_quarantine() {
        let mut incidents = vec![
            incident(
                0,
                json!([{ "type": "keyword", "name": "$DLP" }, { "type": "quarantine", "folder": "shared/q1" }]),
            ),
            incident(
                1,
                json!([{ "type": "keyword", "name": "$DLP" }, { "type": "quarantine", "folder": "shared/q2" }, { "type": "incident" }]),
            ),
        ];
        let request = imap_request(&mut incidents, Some("user/john.doe@example.org"));
        assert_eq!(
            request,
            [
                json!({ "type": "keyword", "name": "$DLP" }),
                json!({ "type": "quarantine", "folder": "shared/q1" })
            ]
        );
        assert_eq!(incidents[1]["actions"][1]["outcome"], "not performed");
        assert_eq!(incidents[1]["actions"][0]["outcome"], "requested");
        assert!(incidents[1]["actions"][2].get("outcome").is_none());
        // In quarantine already: the keyword again (it holds), no move.
        let mut again = vec![incident(
            0,
            json!([{ "type": "keyword", "name": "$DLP" }, { "type": "quarantine", "folder": "shared/q1" }]),
        )];
        let request_again = imap_request(&mut again, Some("shared/q1@example.org"));
        assert_eq!(
            request_again,
            [json!({ "type": "keyword", "name": "$DLP" })]
        );
        assert_eq!(again[0]["actions"][1]["outcome"], "not performed");

        let mut record = Object::new();
        record.insert(REQUEST_FIELD.to_string(), Value::Array(request));
        record.insert(
            RESULTS_FIELD.to_string(),
            json!([{ "type": "keyword", "name": "$DLP", "ok": true }, { "type": "quarantine", "error": "no such folder" }]),
        );
        assert!(answered(&record));
        imap_outcomes(&record, &mut incidents);
        assert_eq!(incidents[0]["actions"][0]["outcome"], "done");
        assert_eq!(incidents[0]["actions"][0]["result"]["ok"], true);
        assert_eq!(incidents[1]["actions"][0]["outcome"], "done");
        assert_eq!(incidents[0]["actions"][1]["outcome"], "failed");
        assert_eq!(incidents[0]["actions"][1]["error"], "no such folder");
    }
}
