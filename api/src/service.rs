//! One HTTP request to `POST /api/rpc` once its body is in: the client's credentials, the
//! signature, the JSON-RPC call or batch, the answers, and the audit lines and records that
//! record them. Nothing is answered unless its audit line was written and the broker kept its
//! audit record (fail closed: 503), and a call that
//! panics fails its request with 500 while the service goes on. Logins are bounded: failed
//! ones are throttled per client and address, passwords over [`MAX_PASSWORD_BYTES`] are
//! refused unhashed, and at most a few argon2 verifications run at once.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    panic::AssertUnwindSafe,
    path::Path,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bonnie_core::{Config, logging::clip, protocol::AuditRecord};
use bonnie_discovery::{config::DiscoveryConfig, query::Context};
use bonnie_plugin_api::storage::StorageClient;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    audit::{self, AuditDown, AuditLedger, AuditLog},
    auth,
    clients::{Client, Clients, Role},
    methods::{self, Caller},
    metrics::ApiMetrics,
    restore::Restores,
    rpc::{self, Body, Parsed, RpcError},
    throttle::{Policy, Throttle},
};

/// The longest password that is checked, in bytes: a longer one is refused without being
/// hashed (`bonnie api-client add` makes 32-character ones).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// How logins are limited.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Failed logins per client name and per address, and their back-off.
    pub policy: Policy,
    /// argon2 verifications run at once; a login beyond them is refused 429 at once.
    pub concurrent_checks: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            policy: Policy {
                free: 5,
                base: Duration::from_secs(1),
                max: Duration::from_secs(300),
                window: Duration::from_secs(600),
                capacity: 4096,
            },
            concurrent_checks: 2,
        }
    }
}

impl LoginLimits {
    /// The limits `[api]` sets: at most `threads - 1` verifications at once (at least one),
    /// so that a thread is always left for calls of clients already verified.
    pub fn from_config(api: &bonnie_core::config::ApiConfig) -> Self {
        let base = Duration::from_millis(api.login_backoff_ms);
        let max = Duration::from_millis(api.login_backoff_max_ms);
        Self {
            policy: Policy {
                free: api.max_login_failures,
                base,
                max,
                window: (max * 2).max(Duration::from_secs(600)),
                capacity: 4096,
            },
            concurrent_checks: api
                .max_password_checks
                .min(api.threads.saturating_sub(1))
                .max(1),
        }
    }
}

/// Why a login was refused.
enum LoginRefused {
    /// Unknown client, wrong or too long password.
    Unauthorized,
    /// Too many failures of the name or the address: refused for this long.
    Throttled(Duration),
    /// Every verification slot is taken.
    Busy,
}

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
    /// Seconds after which the client may try again (`Retry-After`), for 429.
    pub retry_after: Option<u64>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            challenge: false,
            retry_after: None,
        }
    }

    /// An error answer: `{"error": code, "message": message}`.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::json(status, json!({ "error": code, "message": message.into() }))
    }

    /// 503: the audit log cannot be written, or the broker did not keep the audit record, so
    /// nothing is served.
    fn audit_down() -> Self {
        Self::error(
            503,
            "unavailable",
            "the audit record cannot be written; no call is served until it can",
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

impl Incoming {
    /// The peer's IP address (unspecified when the peer is not an address).
    fn peer_ip(&self) -> IpAddr {
        self.peer
            .parse::<SocketAddr>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip())
    }
}

/// The API: storage, clients, audit log and the verifiable log's audit records.
pub struct Service {
    storage: Arc<StorageClient>,
    clients: Clients,
    admin_clients: Vec<String>,
    audit: AuditLog,
    ledger: Arc<dyn AuditLedger>,
    max_batch: usize,
    /// `restore.*`'s jobs, when restores into Cyrus are set up ([`Service::with_restores`]).
    restores: Option<Restores>,
    /// SHA-256 of each client's password once argon2 accepted it: argon2 is meant to be slow
    /// (tens of milliseconds), too slow to run on every request of a busy webmail. One entry
    /// per client of the clients file at most: its size is the file's.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    /// Failed logins.
    throttle: Throttle,
    /// argon2 verifications running, and how many may.
    checks: (AtomicUsize, usize),
    /// See [`TEST_PANIC_METHOD_VAR`].
    test_panic_method: Option<String>,
    /// Requests and calls counted.
    metrics: Arc<ApiMetrics>,
    /// `[discovery]`'s zone and local domains, for `discovery.*`.
    discovery: Context,
}

impl Service {
    /// The service over `storage`, with the clients file read, the audit log opened and each
    /// call's audit record kept in `ledger`; batches hold at most `max_batch` calls.
    pub fn new(
        storage: StorageClient,
        clients: Clients,
        admin_clients: Vec<String>,
        audit_log: &Path,
        ledger: Box<dyn AuditLedger>,
        max_batch: usize,
    ) -> anyhow::Result<Self> {
        let audit = AuditLog::open(audit_log)?;
        let test_panic_method = std::env::var(TEST_PANIC_METHOD_VAR).ok();
        if let Some(method) = &test_panic_method {
            tracing::warn!(variable = TEST_PANIC_METHOD_VAR, method = %method, "Test hook set: every call of this method panics.");
        }
        Ok(Self {
            storage: Arc::new(storage),
            clients,
            admin_clients,
            audit,
            ledger: Arc::from(ledger),
            max_batch,
            restores: None,
            verified: Mutex::new(HashMap::new()),
            throttle: Throttle::new(LoginLimits::default().policy),
            checks: (
                AtomicUsize::new(0),
                LoginLimits::default().concurrent_checks,
            ),
            test_panic_method,
            metrics: Arc::new(ApiMetrics::default()),
            discovery: DiscoveryConfig::default().context()?,
        })
    }

    /// Reads `discovery.*` queries in `context` (`[discovery]`) instead of its defaults (UTC,
    /// no local domains).
    pub fn with_discovery(mut self, context: Context) -> Self {
        self.discovery = context;
        self
    }

    /// Runs `restore.*` into the Cyrus of `config`'s `[collector]`, audited as the calls are.
    pub fn with_restores(mut self, config: Config) -> Self {
        let restores = Restores::new(Arc::clone(&self.storage), config, Arc::clone(&self.ledger));
        self.restores = Some(restores);
        self
    }

    /// Counts requests and calls in `metrics` (by default, in families no registry serves).
    pub fn with_metrics(mut self, metrics: Arc<ApiMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Where requests and calls are counted.
    pub fn metrics(&self) -> &ApiMetrics {
        &self.metrics
    }

    /// The service with these login limits instead of the defaults.
    pub fn with_login_limits(mut self, limits: LoginLimits) -> Self {
        self.throttle = Throttle::new(limits.policy);
        self.checks = (AtomicUsize::new(0), limits.concurrent_checks.max(1));
        self
    }

    /// Audits what went wrong on a connection outside any request that reached the service
    /// (a head too large or too slow, TLS that failed): `status` when hyper answered one.
    /// Nothing is left to refuse, so a log that cannot be written is only logged.
    pub fn audit_connection(&self, peer: &str, status: Option<u16>, error: &str) {
        let _ = self
            .audit
            .write(json!({ "peer": peer, "status": status, "error": error }));
    }

    /// The answer to a request that is refused before its body is read (wrong path or method,
    /// body too large or too slow): `status` with `code` and `message`, audited.
    pub fn refuse(&self, incoming: &Incoming, status: u16, code: &str, message: &str) -> Answer {
        let line = json!({
            "peer": incoming.peer,
            "http_method": incoming.method,
            "path": incoming.path,
            "status": status,
            "error": code,
        });
        match self.audit(line) {
            Ok(()) => Answer::error(status, code, message),
            Err(AuditDown) => Answer::audit_down(),
        }
    }

    /// The refusal of a request that is not `POST /api/rpc`, if it is not.
    pub fn check_route(&self, incoming: &Incoming) -> Option<Answer> {
        if !incoming.path.ends_with("/api/rpc") {
            return Some(self.refuse(incoming, 404, "not_found", "POST /api/rpc"));
        }
        if incoming.method != "POST" {
            return Some(self.refuse(incoming, 405, "method_not_allowed", "POST /api/rpc"));
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
        let login = match &credentials {
            Some((name, password)) => self
                .authenticate(name, password, incoming.peer_ip())
                .map(|client| (name, client)),
            None => Err(LoginRefused::Unauthorized),
        };
        let (name, client) = match login {
            Ok(login) => login,
            Err(refused) => return self.refuse_login(incoming, credentials.as_ref(), refused),
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
            ediscovery: client.role == Role::Ediscovery,
            discovery: &self.discovery,
            restores: self.restores.as_ref(),
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
                retry_after: None,
            },
            Ok(Some(body)) => Answer::json(200, body),
        }
    }

    /// Runs one call and writes its audit line and record: its answer (none for a
    /// notification), or [`AuditDown`] when either could not be written.
    fn call(
        &self,
        caller: &Caller<'_>,
        incoming: &Incoming,
        signed: bool,
        parsed: Parsed,
    ) -> Result<Option<Value>, AuditDown> {
        let started = Instant::now();
        let time = bonnie_core::time::format_rfc3339_ms(bonnie_core::time::now_ms());
        // What was asked, run or not: the audit record names a call refused for its signature
        // too, while the audit line names only calls that ran.
        let (id, asked, ran, result) = match parsed {
            Err((id, e)) => (Some(id), None, false, Err(e)),
            Ok(request) if !signed => (
                request.id,
                Some((request.method, request.params)),
                false,
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
                self.metrics
                    .called(&request.method, result.is_ok(), started.elapsed());
                (
                    request.id,
                    Some((request.method, request.params)),
                    true,
                    result,
                )
            }
        };
        let method = asked.as_ref().filter(|_| ran);
        self.audit(json!({
            "client": caller.client,
            "user": incoming.user,
            "peer": incoming.peer,
            "method": method.map(|(m, _)| m),
            "params": method.map(|(_, p)| Value::Object(p.0.clone())),
            "notification": id.is_none().then_some(true),
            "error": result.as_ref().err().map(|e| e.code),
            "found": result.as_ref().ok().map(|v| v != &Value::Bool(false)),
            "ms": (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        }))?;
        let record = AuditRecord {
            id: audit::action_id("api"),
            time,
            source: "api".to_string(),
            user: incoming.user.clone().unwrap_or_default(),
            client: Some(caller.client.to_string()),
            peer: Some(incoming.peer.clone()),
            action: asked
                .as_ref()
                .map_or("(not a JSON-RPC call)", |(m, _)| m.as_str())
                .to_string(),
            params: asked
                .as_ref()
                .map_or(Value::Null, |(_, p)| Value::Object(p.0.clone())),
            count: Some(items(&result)),
            outcome: if result.is_ok() { "ok" } else { "error" }.to_string(),
            error: result
                .as_ref()
                .err()
                .map(|e| format!("{}: {}", e.code, e.message)),
        };
        if let Err(e) = self.ledger.keep(&record) {
            tracing::error!(error = %format!("{e:#}"), client = %clip(caller.client), "The broker did not keep a call's audit record; the request is refused with 503.");
            return Err(AuditDown);
        }
        if let Err(e) = &result {
            tracing::info!(client = %clip(caller.client), user = %clip(incoming.user.as_deref().unwrap_or_default()),
                code = e.code, error = %clip(&e.message), "API call refused.");
        }
        Ok(id.map(|id| rpc::response(&id, result)))
    }

    /// The answer to a refused login, audited: 401 with a challenge, or 429 with when to try
    /// again.
    fn refuse_login(
        &self,
        incoming: &Incoming,
        credentials: Option<&(String, String)>,
        refused: LoginRefused,
    ) -> Answer {
        let (status, retry_after) = match refused {
            LoginRefused::Unauthorized => (401, None),
            LoginRefused::Throttled(left) => (429, Some(left.as_secs_f64().ceil().max(1.0) as u64)),
            LoginRefused::Busy => (429, Some(1)),
        };
        let line = json!({
            "client": credentials.map(|(n, _)| n),
            "peer": incoming.peer,
            "status": status,
            "retry_after": retry_after,
        });
        if self.audit(line).is_err() {
            return Answer::audit_down();
        }
        match retry_after {
            None => Answer {
                status,
                body: Some(json!({ "error": "unauthorized", "message": "Invalid credentials" })),
                challenge: true,
                retry_after: None,
            },
            Some(seconds) => {
                tracing::info!(client = %clip(credentials.map_or("", |(n, _)| n.as_str())), peer = %incoming.peer,
                    retry_after_s = seconds, "Login refused for too many failures or checks at once.");
                Answer {
                    retry_after: Some(seconds),
                    ..Answer::error(
                        429,
                        "too_many_requests",
                        format!(
                            "too many failed logins or logins at once; try again in {seconds} s"
                        ),
                    )
                }
            }
        }
    }

    /// The client, if the password is its own. A password already verified is recognised by
    /// its SHA-256 (compared in constant time), even while the name or address is throttled:
    /// Roundcube keeps working while someone floods its name. Anything else is refused while
    /// throttled, refused unhashed when too long, and checked against the argon2 hash only in
    /// one of the few verification slots; failures are counted for the name (a client's
    /// only) and the address.
    fn authenticate(
        &self,
        name: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<&Client, LoginRefused> {
        let known = self.clients.clients.get(name);
        let counted_name = known.map(|_| name);
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        let remembered = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied();
        if let (Some(client), Some(known_digest)) = (known, remembered)
            && known_digest
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        {
            return Ok(client);
        }
        if let Some(left) = self.throttle.refused_for(counted_name, address) {
            return Err(LoginRefused::Throttled(left));
        }
        let fail = || {
            self.throttle.failed(counted_name, address);
            Err(LoginRefused::Unauthorized)
        };
        if known.is_none() || remembered.is_some() || password.len() > MAX_PASSWORD_BYTES {
            return fail();
        }
        let Some(_slot) = CheckSlot::take(&self.checks) else {
            return Err(LoginRefused::Busy);
        };
        match self.clients.authenticate(name, password) {
            Some(client) => {
                self.verified
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name.to_string(), digest);
                self.throttle.succeeded(name, address);
                Ok(client)
            }
            None => fail(),
        }
    }

    /// Appends one line to the audit log; an error (logged) when it cannot be written, and
    /// then the request must not be served.
    fn audit(&self, line: Value) -> Result<(), AuditDown> {
        self.audit.write(line)
    }
}

/// How many archive items a call's answer holds: the changes of a changelog, the busy spans
/// of free/busy, the items of a `discovery.search` page, the traces of `trace.find`, none for
/// `false` (nothing found or not allowed), an error or a key, else one (a revision, a diff, a
/// summary, a `discovery.show` item).
fn items(result: &Result<Value, RpcError>) -> u64 {
    match result {
        Err(_) | Ok(Value::Bool(false) | Value::Null) => 0,
        // `trace.find`: one item per trace; `dlp.incidents`: one per incident.
        Ok(Value::Array(list)) => list.len() as u64,
        Ok(answer) => ["changes", "busy", "items"]
            .iter()
            .find_map(|list| answer[list].as_array())
            .map_or_else(
                || u64::from(answer.get("key").is_none()),
                |list| list.len() as u64,
            ),
    }
}

/// One of the argon2 verification slots, given back when dropped.
struct CheckSlot<'a>(&'a AtomicUsize);

impl<'a> CheckSlot<'a> {
    /// A free slot of `(running, most)`, if there is one.
    fn take((running, most): &'a (AtomicUsize, usize)) -> Option<Self> {
        running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < *most).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(running))
    }
}

impl Drop for CheckSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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

#[cfg(test)]
mod tests {
    use super::*;
    use bonnie_plugin_api::plugin::storage_box;
    use bonnie_sqlite_storage::SqliteStorage;

    /// A ledger that keeps every record, as a broker that is up does.
    struct Accepting;

    impl AuditLedger for Accepting {
        fn keep(&self, _: &AuditRecord) -> anyhow::Result<u64> {
            Ok(0)
        }
    }

    #[test]
    fn a_password_over_the_cap_is_refused_without_a_verification_slot() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(&dir.path().join("bonnie.db"), 5000).unwrap();
        let mut clients = Clients::load(&dir.path().join("clients.json")).unwrap();
        let made = clients.add("roundcube", Role::Groupware).unwrap();
        let service = Service::new(
            StorageClient::new(storage_box(storage)),
            clients,
            Vec::new(),
            &dir.path().join("audit.log"),
            Box::new(Accepting),
            10,
        )
        .unwrap();
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        // Every verification slot taken, as by a flood of logins in flight.
        service.checks.0.store(service.checks.1, Ordering::SeqCst);
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(
            service.authenticate("roundcube", &long, here),
            Err(LoginRefused::Unauthorized)
        ));
        assert!(matches!(
            service.authenticate("roundcube", "wrong", here),
            Err(LoginRefused::Busy)
        ));
        service.checks.0.store(0, Ordering::SeqCst);
        assert!(
            service
                .authenticate("roundcube", &made.password, here)
                .is_ok()
        );
        assert_eq!(
            service.checks.0.load(Ordering::SeqCst),
            0,
            "the slot is given back"
        );
        // Verified once, it is recognised without a slot.
        service.checks.0.store(service.checks.1, Ordering::SeqCst);
        assert!(
            service
                .authenticate("roundcube", &made.password, here)
                .is_ok()
        );
    }
}
