//! One HTTP request to `POST /api/rpc` once its body is in: the client's credentials, the
//! signature, the JSON-RPC call or batch, the answers, and the audit lines that record them.
//! Nothing is answered unless its audit line was written (fail closed), and a call that
//! panics fails its request with 500 while the service goes on.

use std::{
    collections::HashMap,
    fs::File,
    io::Write,
    panic::AssertUnwindSafe,
    path::Path,
    sync::{Mutex, PoisonError},
    time::Instant,
};

use anyhow::Context;
use bonnie_plugin_api::storage::StorageClient;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    auth,
    clients::{Client, Clients},
    methods::{self, Caller},
    rpc::{self, Body, Parsed, RpcError},
};

/// TEST HOOK, not a feature: when this environment variable names a method, bonnie-api panics
/// in every call of that method, so the tests can prove that a panicking call fails its
/// request with 500 and the API keeps serving. Read once at start; never set it in a
/// deployment.
pub const TEST_PANIC_METHOD_VAR: &str = "BONNIE_API_TEST_PANIC_METHOD";

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The JSON body; none for 204 (a request of notifications only).
    pub body: Option<Value>,
    /// Whether it asks for Basic credentials.
    pub challenge: bool,
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            challenge: false,
        }
    }

    /// An error answer: `{"error": code, "message": message}`.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::json(status, json!({ "error": code, "message": message.into() }))
    }

    /// 503: the audit log cannot be written, so nothing is served.
    fn audit_down() -> Self {
        Self::error(
            503,
            "unavailable",
            "the audit log cannot be written; no call is served until it can",
        )
    }
}

/// What a request brings besides its body.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    /// The HTTP method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// `Authorization`.
    pub authorization: Option<String>,
    /// `X-Request-User`.
    pub user: Option<String>,
    /// `X-Request-Sign`.
    pub signature: Option<String>,
    /// The peer's address, for the audit log.
    pub peer: String,
}

/// The audit log could not be written.
#[derive(Debug)]
struct AuditDown;

/// The API: storage, clients, audit log.
pub struct Service {
    storage: StorageClient,
    clients: Clients,
    admin_clients: Vec<String>,
    audit: Mutex<File>,
    max_batch: usize,
    /// SHA-256 of each client's password once argon2 accepted it: argon2 is meant to be slow
    /// (tens of milliseconds), too slow to run on every request of a busy webmail.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    /// See [`TEST_PANIC_METHOD_VAR`].
    test_panic_method: Option<String>,
}

impl Service {
    /// The service over `storage`, with the clients file read and the audit log opened;
    /// batches hold at most `max_batch` calls.
    pub fn new(
        storage: StorageClient,
        clients: Clients,
        admin_clients: Vec<String>,
        audit_log: &Path,
        max_batch: usize,
    ) -> anyhow::Result<Self> {
        if let Some(dir) = audit_log.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let audit = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(audit_log)
            .with_context(|| format!("opening the audit log {}", audit_log.display()))?;
        let test_panic_method = std::env::var(TEST_PANIC_METHOD_VAR).ok();
        if let Some(method) = &test_panic_method {
            tracing::warn!(variable = TEST_PANIC_METHOD_VAR, method = %method, "Test hook set: every call of this method panics.");
        }
        Ok(Self {
            storage,
            clients,
            admin_clients,
            audit: Mutex::new(audit),
            max_batch,
            verified: Mutex::new(HashMap::new()),
            test_panic_method,
        })
    }

    /// The answer to a request that is refused before its body is read (wrong path or method,
    /// body too large or too slow): `status` with `code` and `message`, audited.
    pub fn refuse(&self, peer: &str, status: u16, code: &str, message: &str) -> Answer {
        match self.audit(json!({ "peer": peer, "status": status, "error": code })) {
            Ok(()) => Answer::error(status, code, message),
            Err(AuditDown) => Answer::audit_down(),
        }
    }

    /// The refusal of a request that is not `POST /api/rpc`, if it is not.
    pub fn check_route(&self, incoming: &Incoming) -> Option<Answer> {
        if !incoming.path.ends_with("/api/rpc") {
            return Some(self.refuse(&incoming.peer, 404, "not_found", "POST /api/rpc"));
        }
        if incoming.method != "POST" {
            return Some(self.refuse(&incoming.peer, 405, "method_not_allowed", "POST /api/rpc"));
        }
        None
    }

    /// Answers one request with its whole body. A panic anywhere in it is caught: the
    /// request fails with 500 (audited and logged), and the service stays usable.
    pub fn handle(&self, incoming: &Incoming, body: &[u8]) -> Answer {
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.answer(incoming, body))) {
            Ok(answer) => answer,
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                tracing::error!(peer = %incoming.peer, panic = %message, "A request panicked; it is answered 500 and bonnie-api keeps serving.");
                let line = json!({ "peer": incoming.peer, "status": 500, "panic": message });
                match self.audit(line) {
                    Ok(()) => Answer::error(500, "internal", "the server failed on this request"),
                    Err(AuditDown) => Answer::audit_down(),
                }
            }
        }
    }

    fn answer(&self, incoming: &Incoming, body: &[u8]) -> Answer {
        if let Some(refused) = self.check_route(incoming) {
            return refused;
        }
        let credentials = incoming.authorization.as_deref().and_then(auth::basic);
        let client = credentials
            .as_ref()
            .and_then(|(name, password)| Some((name, self.authenticate(name, password)?)));
        let Some((name, client)) = client else {
            let line = json!({
                "client": credentials.as_ref().map(|(n, _)| n),
                "peer": incoming.peer,
                "status": 401,
            });
            if self.audit(line).is_err() {
                return Answer::audit_down();
            }
            return Answer {
                status: 401,
                body: Some(json!({ "error": "unauthorized", "message": "Invalid credentials" })),
                challenge: true,
            };
        };
        let user = incoming.user.as_deref().unwrap_or_default();
        let signed = incoming
            .signature
            .as_deref()
            .is_some_and(|s| auth::verify(&client.secret, user, body, s));
        let caller = Caller {
            storage: &self.storage,
            client: name,
            user: incoming.user.as_deref().filter(|u| !u.is_empty()),
            admin: self.admin_clients.iter().any(|a| a == name),
        };
        let call = |parsed: Parsed| self.call(&caller, incoming, signed, parsed);
        let answers = match rpc::parse_body(body, self.max_batch) {
            Body::Single(parsed) => call(parsed),
            Body::Batch(items) => items
                .into_iter()
                .map(call)
                .collect::<Result<Vec<_>, _>>()
                .map(|answers| {
                    let answers: Vec<Value> = answers.into_iter().flatten().collect();
                    (!answers.is_empty()).then_some(Value::Array(answers))
                }),
        };
        match answers {
            Err(AuditDown) => Answer::audit_down(),
            Ok(None) => Answer {
                status: 204,
                body: None,
                challenge: false,
            },
            Ok(Some(body)) => Answer::json(200, body),
        }
    }

    /// Runs one call and writes its audit line: its answer (none for a notification), or
    /// [`AuditDown`] when the line could not be written.
    fn call(
        &self,
        caller: &Caller<'_>,
        incoming: &Incoming,
        signed: bool,
        parsed: Parsed,
    ) -> Result<Option<Value>, AuditDown> {
        let started = Instant::now();
        let (id, method, result) = match parsed {
            Err((id, e)) => (Some(id), None, Err(e)),
            Ok(request) if !signed => (
                request.id,
                None,
                Err(RpcError::invalid_request("Invalid Request Signature")),
            ),
            Ok(request) => {
                if self.test_panic_method.as_deref() == Some(request.method.as_str()) {
                    panic!(
                        "test hook {TEST_PANIC_METHOD_VAR}: {} panics",
                        request.method
                    );
                }
                let result = methods::call(caller, &request.method, &request.params);
                (request.id, Some((request.method, request.params)), result)
            }
        };
        self.audit(json!({
            "client": caller.client,
            "user": incoming.user,
            "peer": incoming.peer,
            "method": method.as_ref().map(|(m, _)| m),
            "params": method.as_ref().map(|(_, p)| Value::Object(p.0.clone())),
            "notification": id.is_none().then_some(true),
            "error": result.as_ref().err().map(|e| e.code),
            "found": result.as_ref().ok().map(|v| v != &Value::Bool(false)),
            "ms": (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        }))?;
        if let Err(e) = &result {
            tracing::info!(client = %caller.client, user = %incoming.user.as_deref().unwrap_or_default(), code = e.code, error = %e.message, "API call refused.");
        }
        Ok(id.map(|id| rpc::response(&id, result)))
    }

    /// The client, if the password is its own: checked against the argon2 hash once, then
    /// against the remembered SHA-256 (compared in constant time).
    fn authenticate(&self, name: &str, password: &str) -> Option<&Client> {
        let client = self.clients.clients.get(name)?;
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        let remembered = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied();
        if let Some(known) = remembered {
            let same = known
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            return same.then_some(client);
        }
        let client = self.clients.authenticate(name, password)?;
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), digest);
        Some(client)
    }

    /// Appends one line to the audit log; an error (logged) when it cannot be written, and
    /// then the request must not be served.
    fn audit(&self, mut line: Value) -> Result<(), AuditDown> {
        if let Value::Object(fields) = &mut line {
            fields.retain(|_, v| !v.is_null());
        }
        line["time"] = json!(bonnie_core::time::format_rfc3339_ms(
            bonnie_core::time::now_ms()
        ));
        let mut text = line.to_string();
        text.push('\n');
        // A panic elsewhere cannot leave the file half-changed: a poisoned lock is still good.
        let mut file = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(text.as_bytes()).map_err(|e| {
            tracing::error!(error = %e, "Cannot write the audit log; the request is refused with 503.");
            AuditDown
        })
    }
}

/// The message a panic carried.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
