//! The methods: `<type>.created|lastmodified|changelog|get|diff|rawdata` for Kolab object
//! types, `mail.changelog` for one message's audit trail, `freebusy.get`, `system.keygen`, and
//! `trace.find` (a message's way through Postfix into its folder, for admin clients only),
//! `dlp.incidents` (the DLP handler's incidents, for admin clients only), `restore.start`
//! and `restore.status` (a restore into live Cyrus, for admin clients only:
//! [`crate::restore`]), and
//! `discovery.search` and `discovery.show` (e-discovery's review, for e-discovery clients only:
//! [`crate::discovery`]). An object the request user may not read answers `false`, exactly
//! like one that does not exist.

use bonnie_core::time;
use bonnie_discovery::query::Context;
use bonnie_model::objects::{self, Change, Op};
use bonnie_plugin_api::storage::StorageClient;
use serde_json::{Value, json};

use crate::{
    access,
    rpc::{Params, RpcError},
    xml,
};

/// The Kolab object types the API serves.
pub const OBJECT_TYPES: [&str; 5] = ["event", "task", "note", "contact", "file"];

/// Who asks.
pub struct Caller<'a> {
    /// The storage the workers archive into.
    pub storage: &'a StorageClient,
    /// The client's name.
    pub client: &'a str,
    /// `X-Request-User`, signed.
    pub user: Option<&'a str>,
    /// Whether the client may read everything.
    pub admin: bool,
    /// Whether the client has the e-discovery role (`discovery.*`).
    pub ediscovery: bool,
    /// `[discovery]`: the zone and local domains queries are read in.
    pub discovery: &'a Context,
    /// `restore.*`'s jobs, when this service restores into Cyrus.
    pub restores: Option<&'a crate::restore::Restores>,
}

/// Runs a method.
pub fn call(caller: &Caller<'_>, method: &str, params: &Params) -> Result<Value, RpcError> {
    let (kind, action) = method.split_once('.').unwrap_or((method, ""));
    if kind.starts_with('_') || action.starts_with('_') {
        return Err(RpcError::method_not_found(method));
    }
    match (kind, action) {
        ("system", "keygen") => keygen(params),
        ("mail", "changelog") => mail_changelog(caller, params),
        ("freebusy", "get") => freebusy(caller, params),
        ("trace", "find") => trace_find(caller, params),
        ("dlp", "incidents") => dlp_incidents(caller, params),
        ("restore", "start" | "status") => match caller.restores {
            Some(restores) if action == "start" => restores.start(caller, params),
            Some(restores) => restores.status(caller, params),
            None => Err(RpcError::method_not_found(method)),
        },
        ("discovery", "search") => crate::discovery::search(caller, params),
        ("discovery", "show") => crate::discovery::show(caller, params),
        (kind, action) if OBJECT_TYPES.contains(&kind) => {
            let object = Object::find(caller, kind, params, action)?;
            let Some(object) = object else {
                return Ok(Value::Bool(false));
            };
            match action {
                "changelog" => object.changelog(),
                "created" => object.summary(object.changes.first()),
                "lastmodified" => {
                    object.summary(object.changes.iter().rev().find(|c| c.op != Op::Delete))
                }
                "get" => object.get(params.revision("rev")?),
                "rawdata" => object.rawdata(params.revision("rev")?),
                "diff" => object.diff(
                    params.revision("rev1")?,
                    params.revision("rev2")?,
                    params.optional_text("instance")?,
                ),
                _ => Err(RpcError::method_not_found(method)),
            }
        }
        _ => Err(RpcError::method_not_found(method)),
    }
}

/// Whether `method` is one this service runs: what the metrics name a call by (any other
/// name counts as `unknown`, so that a client cannot make series).
pub fn is_method(method: &str) -> bool {
    let (kind, action) = method.split_once('.').unwrap_or((method, ""));
    matches!(
        method,
        "system.keygen"
            | "mail.changelog"
            | "freebusy.get"
            | "trace.find"
            | "dlp.incidents"
            | "restore.start"
            | "restore.status"
            | "discovery.search"
            | "discovery.show"
    ) || (OBJECT_TYPES.contains(&kind) && object_params(action).is_some())
}

/// The parameters each object method takes.
fn object_params(action: &str) -> Option<&'static [&'static str]> {
    Some(match action {
        "created" | "lastmodified" | "changelog" => &["uid", "mailbox", "msguid"],
        "get" | "rawdata" => &["uid", "rev", "mailbox", "msguid"],
        "diff" => &["uid", "rev1", "rev2", "mailbox", "msguid", "instance"],
        _ => return None,
    })
}

/// What a message event did, in the original Bonnie's vocabulary that libkolab.js labels
/// (`RECEIVE`, `APPEND`, `MOVE`, `DELETE`, `READ`, `FLAGSET`, `FLAGCLEAR`). A copy is an
/// append to its folder; `\Deleted` set (MessageTrash) is a `FLAGSET` of that flag, the
/// expunge after it the `DELETE`.
fn mail_op(event: &str) -> &'static str {
    match event {
        "MessageNew" => "RECEIVE",
        "MessageAppend" | "MessageCopy" | "vnd.cmu.MessageCopy" => "APPEND",
        "MessageMove" | "vnd.cmu.MessageMove" => "MOVE",
        "MessageRead" => "READ",
        "FlagsSet" | "MessageTrash" => "FLAGSET",
        "FlagsClear" => "FLAGCLEAR",
        "MessageExpunge" | "MessageExpire" => "DELETE",
        _ => "UNKNOWN",
    }
}

/// An object change in that vocabulary: a new version replacing the old one is an `APPEND`
/// (the original Bonnie skipped the deletion that went with it), and so is a copy into
/// another folder.
fn object_op(op: Op) -> &'static str {
    match op {
        Op::Append | Op::Update | Op::Copy => "APPEND",
        Op::Move => "MOVE",
        Op::Delete => "DELETE",
    }
}

/// `mail.changelog(uid = null, mailbox, msguid)`: one message's audit trail.
fn mail_changelog(caller: &Caller<'_>, params: &Params) -> Result<Value, RpcError> {
    params.only(&["uid", "mailbox", "msguid"])?;
    let mailbox = params.text("mailbox")?;
    let msguid = match params.0.get("msguid") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| RpcError::invalid_params("Invalid params: msguid must be a message UID"))?;
    let user = caller.user.filter(|_| !caller.admin);
    if caller.user.is_none() && !caller.admin {
        return Err(RpcError::invalid_request(
            "Invalid Request: mail.changelog needs X-Request-User",
        ));
    }
    let path = access::folder_path(caller.user, mailbox);
    if let Some(user) = user
        && !access::can_read(caller.storage, user, &path)?
    {
        return Ok(Value::Bool(false));
    }
    let mut trail = bonnie_model::mail_history::trail(caller.storage, &path, msguid)?;
    let wire = bonnie_imap::utf7::encode(&path);
    if trail.is_empty() && wire != path {
        // A path archived as the notification gave it, in modified UTF-7.
        trail = bonnie_model::mail_history::trail(caller.storage, &wire, msguid)?;
    }
    if trail.is_empty() {
        return Ok(Value::Bool(false));
    }
    let mut changes = Vec::new();
    let mut last_rev = i64::MIN;
    // Looked up once per login, not once per entry: a trail can hold many thousands.
    let mut names: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    for entry in &trail {
        let who = match entry.login.as_deref() {
            Some(login) => match names.get(login) {
                Some(name) => name.clone(),
                None => {
                    let name = objects::display_user(caller.storage, login)?;
                    names.insert(login, name.clone());
                    name
                }
            },
            None => "unknown".to_string(),
        };
        let op = mail_op(&entry.event);
        let mut change = json!({
            // libkolab.js keys its table's rows by rev; strictly increasing like an object's.
            "rev": entry.time_ms.max(last_rev + 1),
            "op": op,
            "date": time::format_rfc3339_s(entry.time_ms),
            "user": who,
            "mailbox": access::folder_name(caller.user, &access::utf8_name(&entry.folder)),
            "msguid": entry.uid,
        });
        last_rev = change["rev"].as_i64().unwrap_or(last_rev);
        // libkolab.js shows `op: flags` for FLAGSET and FLAGCLEAR, as text.
        let flags = if entry.event == "MessageTrash" && entry.flags.is_empty() {
            "\\Deleted".to_string()
        } else {
            entry.flags.join(" ")
        };
        if !flags.is_empty() && (op == "FLAGSET" || op == "FLAGCLEAR") {
            change["flags"] = json!(flags);
        }
        changes.push(change);
    }
    Ok(json!({
        "uid": params.optional_text("uid")?,
        "mailbox": mailbox,
        "msguid": msguid,
        "changes": changes,
    }))
}

/// The longest free/busy range one call may ask for.
const MAX_FREEBUSY_DAYS: i64 = 400;

fn date_param(params: &Params, name: &str) -> Result<Option<i64>, RpcError> {
    params
        .optional_text(name)?
        .map(|text| {
            time::parse_rfc3339_ms(text).ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "Invalid params: {name} must be a date-time like 2026-12-01T00:00:00Z"
                ))
            })
        })
        .transpose()
}

/// `freebusy.get(user, start, end, as_of?)`: when `user` is busy in [start, end), as known
/// now or as it was known at `as_of`. Free/busy is open to every authenticated user, as in
/// Kolab; it tells when, never what.
fn freebusy(caller: &Caller<'_>, params: &Params) -> Result<Value, RpcError> {
    params.only(&["user", "start", "end", "as_of"])?;
    if caller.user.is_none() && !caller.admin {
        return Err(RpcError::invalid_request(
            "Invalid Request: freebusy.get needs X-Request-User",
        ));
    }
    let user = params.text("user")?;
    let missing =
        |name: &str| RpcError::invalid_params(format!("Invalid params: {name} is required"));
    let start = date_param(params, "start")?.ok_or_else(|| missing("start"))?;
    let end = date_param(params, "end")?.ok_or_else(|| missing("end"))?;
    let as_of = date_param(params, "as_of")?;
    if end <= start || end - start > MAX_FREEBUSY_DAYS * 86_400_000 {
        return Err(RpcError::invalid_params(format!(
            "Invalid params: end must follow start, at most {MAX_FREEBUSY_DAYS} days later"
        )));
    }
    let busy = bonnie_calendar::freebusy(caller.storage, user, start, end, as_of)?;
    Ok(bonnie_calendar::to_json(user, start, end, as_of, &busy))
}

/// `system.keygen(salt?)`: a fresh key and when it expires (two hours).
/// `trace.find {query, since}`: what `bonnie trace --json <query> --since <since>` prints.
/// Only for admin clients: a trace names senders, recipients and clients of every user.
fn trace_find(caller: &Caller<'_>, params: &Params) -> Result<Value, RpcError> {
    if !caller.admin {
        return Err(RpcError::forbidden(
            "Forbidden: trace.find is for the clients in [api] admin_clients",
        ));
    }
    params.only(&["query", "since"])?;
    let query = params.text("query")?;
    let since = params
        .optional_text("since")?
        .map(crate::trace::parse_since)
        .transpose()
        .map_err(|e| RpcError::invalid_params(format!("Invalid params: {e:#}")))?;
    let found = crate::trace::find(caller.storage, query, since)
        .map_err(|e| RpcError::internal(format!("{e:#}")))?;
    Ok(Value::Array(
        found.iter().map(crate::trace::Found::to_json).collect(),
    ))
}

/// `dlp.incidents {since, until, rule, user}`: what `bonnie dlp incidents --json` prints, the
/// DLP handler's incidents oldest first. Only for admin clients: incidents name every user's
/// messages and folders.
fn dlp_incidents(caller: &Caller<'_>, params: &Params) -> Result<Value, RpcError> {
    if !caller.admin {
        return Err(RpcError::forbidden(
            "Forbidden: dlp.incidents is for the clients in [api] admin_clients",
        ));
    }
    params.only(&["since", "until", "rule", "user"])?;
    let instant = |key: &str| -> Result<Option<i64>, RpcError> {
        params
            .optional_text(key)?
            .map(crate::trace::parse_since)
            .transpose()
            .map(|t| t.map(|t| t.as_millisecond()))
            .map_err(|e| RpcError::invalid_params(format!("Invalid params: {key}: {e:#}")))
    };
    let filter = bonnie_model::dlp_incidents::Filter {
        since_ms: instant("since")?,
        until_ms: instant("until")?,
        rule: params.optional_text("rule")?.map(str::to_string),
        user: params.optional_text("user")?.map(str::to_string),
    };
    bonnie_model::dlp_incidents::query(caller.storage, &filter)
        .map(Value::Array)
        .map_err(|e| RpcError::internal(format!("cannot read the DLP incidents: {e}")))
}

fn keygen(params: &Params) -> Result<Value, RpcError> {
    params.only(&["salt"])?;
    params.optional_text("salt")?;
    let key = crate::clients::random_hex(32).map_err(|e| RpcError::internal(e.to_string()))?;
    let expires = time::format_rfc3339_s(time::now_ms() + 2 * 3600 * 1000);
    Ok(json!({ "key": key, "expires": expires }))
}

/// The revisions `user` may see: those held by a folder they may read now (see docs/api.md,
/// "Who sees which revision").
fn readable_changes(
    storage: &StorageClient,
    user: &str,
    changes: Vec<Change>,
) -> Result<Vec<Change>, RpcError> {
    let mut readable: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    let mut kept = Vec::with_capacity(changes.len());
    for change in changes {
        let may = match readable.get(&change.folder) {
            Some(may) => *may,
            None => {
                let path = access::utf8_name(&change.folder);
                let may = access::can_read(storage, user, &path)?;
                readable.insert(change.folder.clone(), may);
                may
            }
        };
        if may {
            kept.push(change);
        }
    }
    Ok(kept)
}

/// An object the caller may read, with its changelog.
struct Object<'a> {
    caller: &'a Caller<'a>,
    uid: String,
    mailbox: String,
    changes: Vec<Change>,
}

impl<'a> Object<'a> {
    /// The object named by the parameters, if it exists and the caller may read it through
    /// the folder it names.
    fn find(
        caller: &'a Caller<'a>,
        kind: &str,
        params: &Params,
        action: &str,
    ) -> Result<Option<Self>, RpcError> {
        let Some(known) = object_params(action) else {
            return Err(RpcError::method_not_found(&format!("{kind}.{action}")));
        };
        params.only(known)?;
        let uid = params.text("uid")?;
        let mailbox = params.text("mailbox")?;
        params.optional_text("msguid").or_else(|_| {
            // Roundcube sends the message UID as a number.
            match params.0.get("msguid") {
                Some(Value::Number(_)) => Ok(None),
                _ => Err(RpcError::invalid_params(
                    "Invalid params: msguid must be a message UID",
                )),
            }
        })?;
        if caller.user.is_none() && !caller.admin {
            return Err(RpcError::invalid_request(
                "Invalid Request: object methods need X-Request-User",
            ));
        }
        let path = access::folder_path(caller.user, mailbox);
        let mut facts = objects::facts(caller.storage, kind, uid)?;
        // The object that was in the named folder, not every object with that UID.
        let Some(identity) =
            objects::identity_through(&facts, |folder| access::same_folder(folder, &path))
        else {
            return Ok(None);
        };
        facts.retain(|f| f.identity == identity);
        let user = match (caller.admin, caller.user) {
            (true, _) => None,
            (false, Some(user)) => Some(user),
            (false, None) => return Ok(None),
        };
        if let Some(user) = user
            && !access::can_read(caller.storage, user, &path)?
        {
            return Ok(None);
        }
        let mut changes = objects::changelog(facts);
        if let Some(user) = user {
            changes = readable_changes(caller.storage, user, changes)?;
        }
        Ok(Some(Self {
            caller,
            uid: uid.to_string(),
            mailbox: mailbox.to_string(),
            changes,
        }))
    }

    fn user(&self, change: &Change) -> Result<String, RpcError> {
        match &change.login {
            Some(login) => Ok(objects::display_user(self.caller.storage, login)?),
            None => Ok("unknown".to_string()),
        }
    }

    fn entry(&self, change: &Change) -> Result<Value, RpcError> {
        Ok(json!({
            "rev": change.rev,
            "op": object_op(change.op),
            "date": time::format_rfc3339_s(change.time_ms),
            "user": self.user(change)?,
            "mailbox": access::folder_name(self.caller.user, &access::utf8_name(&change.folder)),
        }))
    }

    fn changelog(&self) -> Result<Value, RpcError> {
        let changes = self
            .changes
            .iter()
            .map(|c| self.entry(c))
            .collect::<Result<Vec<Value>, RpcError>>()?;
        Ok(json!({ "uid": self.uid, "changes": changes }))
    }

    /// `{uid, rev, date, user, mailbox}` of one change.
    fn summary(&self, change: Option<&Change>) -> Result<Value, RpcError> {
        let Some(change) = change else {
            return Ok(Value::Bool(false));
        };
        let mut entry = self.entry(change)?;
        entry["uid"] = json!(self.uid);
        if let Some(map) = entry.as_object_mut() {
            map.remove("op");
        }
        Ok(entry)
    }

    fn revision(&self, rev: i64) -> Option<&Change> {
        self.changes.iter().find(|c| c.rev == rev)
    }

    /// The message of a revision, byte for byte.
    fn message(&self, change: &Change) -> Result<Vec<u8>, RpcError> {
        let digest = change.digest.as_deref().ok_or_else(|| {
            RpcError::internal(format!(
                "revision {} has no payload (it was archived without a collector)",
                change.rev
            ))
        })?;
        self.caller.storage.get_payload(digest)?.ok_or_else(|| {
            RpcError::internal(format!(
                "the payload {digest} of revision {} is not in the storage",
                change.rev
            ))
        })
    }

    fn xml(&self, change: &Change) -> Result<Vec<u8>, RpcError> {
        let message = self.message(change)?;
        bonnie_calendar::object_xml(&message)
            .map_err(|e| RpcError::internal(format!("revision {}: {e}", change.rev)))
    }

    fn get(&self, rev: i64) -> Result<Value, RpcError> {
        let Some(change) = self.revision(rev) else {
            return Ok(Value::Bool(false));
        };
        let xml = self.xml(change)?;
        Ok(json!({
            "uid": self.uid,
            "rev": rev,
            "xml": String::from_utf8_lossy(&xml),
            "mailbox": self.mailbox,
        }))
    }

    fn rawdata(&self, rev: i64) -> Result<Value, RpcError> {
        let Some(change) = self.revision(rev) else {
            return Ok(Value::Bool(false));
        };
        Ok(json!(String::from_utf8_lossy(&self.message(change)?)))
    }

    fn diff(&self, rev1: i64, rev2: i64, instance: Option<&str>) -> Result<Value, RpcError> {
        if rev1 >= rev2 {
            return Err(RpcError::invalid_params(
                "Invalid params: rev1 must be older than rev2",
            ));
        }
        let (Some(old), Some(new)) = (self.revision(rev1), self.revision(rev2)) else {
            return Ok(Value::Bool(false));
        };
        let changes = xml::diff(&self.xml(old)?, &self.xml(new)?, instance).map_err(|e| {
            RpcError::internal(format!(
                "revisions {rev1} and {rev2} cannot be compared: {e}"
            ))
        })?;
        let mut result = json!({ "uid": self.uid, "rev": rev2, "changes": changes });
        if let Some(instance) = instance {
            result["instance"] = json!(instance);
        }
        Ok(result)
    }
}
