//! `bonnie logins <user>`: the user's IMAP Logins as [`bonnie_api::logins`] reads them, each
//! from a webmail host with the browser's address and the Roundcube session behind it,
//! printed as text or JSON.

use std::sync::{Arc, atomic::AtomicBool};

use bonnie_core::Config;
use bonnie_plugin_api::storage::StorageClient;
use serde_json::{Value, json};

use crate::trace::parse_since;

/// Whose logins to show.
pub struct LoginsArgs<'a> {
    /// The IMAP user, as Cyrus names it.
    pub user: &'a str,
    /// Only logins at or after this: an RFC 3339 instant, a date, or a span such as `24h`.
    pub since: Option<&'a str>,
    /// JSON instead of text.
    pub json: bool,
}

/// Prints the IMAP Logins of `args.user`.
pub fn run(
    config: &Config,
    auditor: &crate::audit::Auditor<'_>,
    args: &LoginsArgs<'_>,
) -> anyhow::Result<()> {
    let since = args.since.map(parse_since).transpose()?;
    let settings = bonnie_api::logins::settings(&config.plugin_json("webmail"))?;
    let (_, storage) = bonnie_host::open_storage(config, Arc::new(AtomicBool::new(false)))?;
    let storage = StorageClient::new(storage);
    let logins = bonnie_api::logins::find(&storage, &settings, args.user, since)?;
    let params = json!({ "user": args.user, "since": args.since });
    auditor.read("logins", params, logins.len() as u64)?;
    let logins: Vec<Value> = logins.iter().map(|l| l.to_json()).collect();
    if args.json {
        println!("{}", Value::Array(logins));
        return Ok(());
    }
    if logins.is_empty() {
        println!("No IMAP Login found for {:?}.", args.user);
    }
    for login in &logins {
        println!("{}", render(login));
    }
    Ok(())
}

/// One login as a line (and a second for its webmail session).
fn render(login: &Value) -> String {
    let text = |value: &Value| value.as_str().unwrap_or("-").to_string();
    let mut out = format!(
        "{}  {} from {}  session {}",
        text(&login["time"]),
        text(&login["service"]),
        text(&login["client_ip"]),
        text(&login["session_id"])
    );
    if let Some(logout) = login["logout_time"].as_str() {
        out.push_str(&format!("  until {logout}"));
    }
    match &login["webmail"] {
        Value::Object(webmail) => out.push_str(&format!(
            "\n    webmail: browser {} in Roundcube session {}, logged in {} on {}",
            text(&webmail["browser_ip"]),
            text(&webmail["session"]),
            text(&webmail["time"]),
            text(&webmail["host"])
        )),
        _ if login["from_webmail"] == true => {
            out.push_str("\n    webmail: no webmail login found within the window")
        }
        _ => {}
    }
    out
}
