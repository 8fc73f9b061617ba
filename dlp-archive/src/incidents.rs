//! One rule hit as an incident of the record (see [`bonnie_model::dlp_incidents`] for where
//! incidents are kept and how they are read).

use bonnie_dlp::{Action, RuleHit};
use bonnie_model::record::Object;
use serde_json::{Value, json};

pub use bonnie_model::dlp_incidents::{COLLECTION, FIELD, Filter, derived, query, store};

/// One incident of the record: the hit, the message it is about (`uid`), and what became of
/// each of its actions (`outcome` beside the action's own keys).
pub fn incident(n: usize, uid: Option<u64>, hit: &RuleHit) -> Value {
    let mut body = match serde_json::to_value(hit) {
        Ok(Value::Object(body)) => body,
        _ => Object::new(),
    };
    body.insert("n".to_string(), json!(n));
    if let Some(uid) = uid {
        body.insert("uid".to_string(), json!(uid));
    }
    let actions: Vec<Value> = hit
        .actions
        .iter()
        .map(|action| {
            let mut entry = match serde_json::to_value(action) {
                Ok(Value::Object(entry)) => entry,
                _ => Object::new(),
            };
            if matches!(action, Action::Incident {}) {
                entry.insert("outcome".to_string(), json!("recorded"));
            }
            Value::Object(entry)
        })
        .collect();
    body.insert("actions".to_string(), Value::Array(actions));
    Value::Object(body)
}
