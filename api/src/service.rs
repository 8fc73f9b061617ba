//! One HTTP request to `POST /api/rpc`: the client's credentials, the body, the signature,
//! the JSON-RPC call, its answer, and the audit line that records it.

use std::{
    collections::HashMap,
    fs::File,
    io::{Read, Write},
    path::Path,
    sync::Mutex,
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
    rpc::{self, RpcError},
};

/// An HTTP answer.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
    /// Whether it asks for Basic credentials.
    pub challenge: bool,
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            challenge: false,
        }
    }
}

/// What a request brings.
pub struct Incoming<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// `X-Request-User`.
    pub user: Option<&'a str>,
    /// `X-Request-Sign`.
    pub signature: Option<&'a str>,
    /// The peer's address, for the audit log.
    pub peer: String,
}

/// The API: storage, clients, audit log.
pub struct Service {
    storage: StorageClient,
    clients: Clients,
    admin_clients: Vec<String>,
    audit: Mutex<File>,
    max_body: usize,
    /// SHA-256 of each client's password once argon2 accepted it: argon2 is meant to be slow
    /// (tens of milliseconds), too slow to run on every request of a busy webmail.
    verified: Mutex<HashMap<String, [u8; 32]>>,
}

impl Service {
    /// The service over `storage`, with the clients file read and the audit log opened.
    pub fn new(
        storage: StorageClient,
        clients: Clients,
        admin_clients: Vec<String>,
        audit_log: &Path,
        max_body: usize,
    ) -> anyhow::Result<Self> {
        if let Some(dir) = audit_log.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let audit = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(audit_log)
            .with_context(|| format!("opening the audit log {}", audit_log.display()))?;
        Ok(Self {
            storage,
            clients,
            admin_clients,
            audit: Mutex::new(audit),
            max_body,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Answers one request; `body` is read only once the client is known.
    pub fn handle(&self, incoming: &Incoming<'_>, body: &mut dyn Read) -> Answer {
        let started = Instant::now();
        if !incoming.path.ends_with("/api/rpc") {
            return Answer::json(
                404,
                json!({ "error": "not_found", "message": "POST /api/rpc" }),
            );
        }
        if incoming.method != "POST" {
            return Answer::json(
                405,
                json!({ "error": "method_not_allowed", "message": "POST /api/rpc" }),
            );
        }
        let credentials = incoming.authorization.and_then(auth::basic);
        let client = credentials
            .as_ref()
            .and_then(|(name, password)| Some((name, self.authenticate(name, password)?)));
        let Some((name, client)) = client else {
            self.audit(json!({
                "client": credentials.as_ref().map(|(n, _)| n),
                "peer": incoming.peer,
                "status": 401,
            }));
            return Answer {
                status: 401,
                body: json!({ "error": "unauthorized", "message": "Invalid credentials" }),
                challenge: true,
            };
        };
        let mut bytes = Vec::new();
        if let Err(e) = body.take(self.max_body as u64 + 1).read_to_end(&mut bytes) {
            return Answer::json(
                400,
                json!({ "error": "bad_request", "message": e.to_string() }),
            );
        }
        if bytes.len() > self.max_body {
            return Answer::json(
                413,
                json!({ "error": "too_large", "message": format!("bodies are limited to {} bytes", self.max_body) }),
            );
        }
        let user = incoming.user.unwrap_or_default();
        let signed = incoming
            .signature
            .is_some_and(|s| auth::verify(&client.secret, user, &bytes, s));
        let (id, method, result) = match rpc::parse(&bytes) {
            Err((id, e)) => (id, None, Err(e)),
            Ok(_) if !signed => (
                Value::Null,
                None,
                Err(RpcError::invalid_request("Invalid Request Signature")),
            ),
            Ok(request) => {
                let caller = Caller {
                    storage: &self.storage,
                    client: name,
                    user: incoming.user.filter(|u| !u.is_empty()),
                    admin: self.admin_clients.iter().any(|a| a == name),
                };
                let result = methods::call(&caller, &request.method, &request.params);
                (request.id, Some((request.method, request.params)), result)
            }
        };
        self.audit(json!({
            "client": name,
            "user": incoming.user,
            "peer": incoming.peer,
            "method": method.as_ref().map(|(m, _)| m),
            "params": method.as_ref().map(|(_, p)| Value::Object(p.0.clone())),
            "error": result.as_ref().err().map(|e| e.code),
            "found": result.as_ref().ok().map(|v| v != &Value::Bool(false)),
            "ms": (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        }));
        if let Err(e) = &result {
            tracing::info!(client = %name, user = %user, code = e.code, error = %e.message, "API call refused.");
        }
        Answer::json(200, rpc::response(&id, result))
    }

    /// The client, if the password is its own: checked against the argon2 hash once, then
    /// against the remembered SHA-256 (compared in constant time).
    fn authenticate(&self, name: &str, password: &str) -> Option<&Client> {
        let client = self.clients.clients.get(name)?;
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        let remembered = self.verified.lock().ok().and_then(|v| v.get(name).copied());
        if let Some(known) = remembered {
            let same = known
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            return same.then_some(client);
        }
        let client = self.clients.authenticate(name, password)?;
        if let Ok(mut verified) = self.verified.lock() {
            verified.insert(name.to_string(), digest);
        }
        Some(client)
    }

    fn audit(&self, mut line: Value) {
        line["time"] = json!(bonnie_core::time::format_rfc3339_ms(
            bonnie_core::time::now_ms()
        ));
        let mut text = line.to_string();
        text.push('\n');
        let written = self
            .audit
            .lock()
            .map_err(|_| std::io::Error::other("the audit log lock is poisoned"))
            .and_then(|mut file| file.write_all(text.as_bytes()));
        if let Err(e) = written {
            tracing::error!(error = %e, "Cannot write the audit log.");
        }
    }
}
