//! Handler plugin `sessions`: Login and Logout, kept as sessions with their duration. Each notification becomes the
//! normalized record, with its user and folder resolved through the storage.

use bonnie_model::{ArchiveHandler, Events};

/// The events this handler takes, by their exact names.
const EVENTS: &[&str] = &["Login", "Logout"];

/// The handler, as the export below builds it.
fn new_sessions(
    host: bonnie_plugin_api::Host,
) -> Result<ArchiveHandler, bonnie_plugin_api::PluginError> {
    ArchiveHandler::new(host, Events::Named(EVENTS))
}

bonnie_plugin_api::export_handler! {
    name: "sessions",
    description: "Login and Logout, kept as sessions with their duration.",
    new: new_sessions,
}

#[cfg(test)]
mod tests {
    use bonnie_plugin_api::{prelude::*, testing::TestHost};
    use serde_json::{Value, json};

    fn event(name: &str, timestamp: &str) -> String {
        json!({
            "event": name,
            "timestamp": timestamp,
            "service": "imap",
            "user": "john.doe@example.org",
            "vnd.cmu.sessionId": "cyrus-1-2-3",
        })
        .to_string()
    }

    fn done(outcome: HandlerOutcome) -> Value {
        match outcome {
            HandlerOutcome::Done { notification } => serde_json::from_str(&notification).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    /// In plugin-api's test host: the in-memory storage's put_if carries the session view.
    #[test]
    fn a_logout_gets_its_sessions_duration_and_one_before_its_login_waits() {
        let host = TestHost::new("sessions");
        let handler = host.handler(crate::new_sessions).unwrap();
        assert_eq!(handler.events().unwrap(), ["Login", "Logout"]);

        let early = event("Logout", "2026-11-28T17:00:00.000Z");
        let other = TestHost::new("sessions");
        let waiting = other.handler(crate::new_sessions).unwrap();
        let outcome = waiting
            .handle(&early.replace("cyrus-1-2-3", "never"))
            .unwrap();
        assert!(
            matches!(outcome, HandlerOutcome::Postpone { .. }),
            "{outcome:?}"
        );

        done(
            handler
                .handle(&event("Login", "2026-11-28T17:13:21.544Z"))
                .unwrap(),
        );
        let logout = done(
            handler
                .handle(&event("Logout", "2026-11-28T17:14:00.294Z"))
                .unwrap(),
        );
        assert_eq!(logout["login_time"], "2026-11-28T17:13:21.544Z", "{logout}");
        assert!(
            logout.get("duration").is_some_and(|d| !d.is_null()),
            "{logout}"
        );
    }
}
