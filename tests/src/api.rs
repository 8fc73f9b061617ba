//! A real `bonnie-api` beside a [`Cluster`], and a client that speaks to it as Roundcube
//! does: HTTP/1.1 over TCP, Basic credentials, and requests signed with an HMAC-SHA256 that
//! this module computes itself (RFC 2104 over SHA-256), independently of the API's code.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    cluster::{Cluster, free_port},
    process::{self, ChildGuard},
};

/// RFC 2104 HMAC with SHA-256, as lowercase hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// An HTTP answer: status and body.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body, parsed as JSON (null if it is not).
    pub body: Value,
}

/// A client of one bonnie-api.
pub struct ApiClient {
    /// `address:port`.
    pub address: String,
    /// Its name.
    pub name: String,
    /// Its password.
    pub password: String,
    /// Its signing secret.
    pub secret: String,
}

/// An HTTP answer as it came: status, head (the lines after the status line) and body text.
#[derive(Debug)]
pub struct RawAnswer {
    /// The status code.
    pub status: u16,
    /// The header lines, as sent.
    pub head: String,
    /// The body, as text.
    pub body: String,
}

/// Writes `request` (whole, in one write) to `address` and reads until the server closes the
/// connection: the answer, or `None` when the server closed it without one.
pub fn exchange(address: &str, request: &[u8]) -> Option<RawAnswer> {
    let mut stream = connect(address);
    stream.write_all(request).unwrap();
    read_answer(&mut stream)
}

/// A connection to `address` for raw HTTP, with generous read and write timeouts (a test
/// waits on the server, never on a clock).
pub fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connecting to bonnie-api");
    let generous = Some(Duration::from_secs(60));
    stream.set_read_timeout(generous).unwrap();
    stream.set_write_timeout(generous).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads from `stream` until the server closes it: the answer, or `None` when there was none.
pub fn read_answer(stream: &mut TcpStream) -> Option<RawAnswer> {
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let head = head.split_once("\r\n").map(|(_, h)| h).unwrap_or_default();
    Some(RawAnswer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

impl ApiClient {
    /// The client `bonnie api-client add <name>` made, from what it printed (without an
    /// address yet).
    pub fn from_added(name: &str, printed: &str) -> Option<Self> {
        let field = |label: &str| {
            printed
                .lines()
                .find_map(|l| l.strip_prefix(label))
                .map(|v| v.trim().to_string())
        };
        Some(Self {
            address: String::new(),
            name: name.to_string(),
            password: field("password:")?,
            secret: field("secret:")?,
        })
    }

    /// Sends raw bytes as one POST, with these extra header lines.
    pub fn post(&self, path: &str, headers: &[(&str, String)], body: &[u8]) -> Answer {
        let mut stream = TcpStream::connect(&self.address).expect("connecting to bonnie-api");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        // One write: headers and body in one segment, as HTTP clients send small requests.
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        stream.set_nodelay(true).unwrap();
        stream.write_all(&bytes).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_str(body).unwrap_or(Value::Null),
        }
    }

    fn basic(&self) -> (&'static str, String) {
        let credentials = format!("{}:{}", self.name, self.password);
        (
            "Authorization",
            format!(
                "Basic {}",
                bonnie_core::b64::encode_base64(credentials.as_bytes())
            ),
        )
    }

    /// A JSON-RPC call for `user`, signed with `key`: the whole answer.
    fn signed(&self, key: &[u8], user: &str, method: &str, params: Value) -> Answer {
        let body =
            json!({ "jsonrpc": "2.0", "method": method, "params": params, "id": 1 }).to_string();
        let sign = hmac_sha256_hex(key, format!("{user}:{body}").as_bytes());
        self.post(
            "/api/rpc",
            &[
                self.basic(),
                ("X-Request-User", user.to_string()),
                ("X-Request-Sign", sign),
            ],
            body.as_bytes(),
        )
    }

    /// `body` (any bytes: a batch, a notification, garbage) posted for `user`, signed.
    pub fn post_signed(&self, user: &str, body: &[u8]) -> Answer {
        let mut message = format!("{user}:").into_bytes();
        message.extend_from_slice(body);
        let sign = hmac_sha256_hex(self.secret.as_bytes(), &message);
        self.post(
            "/api/rpc",
            &[
                self.basic(),
                ("X-Request-User", user.to_string()),
                ("X-Request-Sign", sign),
            ],
            body,
        )
    }

    /// The `Authorization` header line of this client's Basic credentials.
    pub fn authorization(&self) -> String {
        let (name, value) = self.basic();
        format!("{name}: {value}")
    }

    /// A signed JSON-RPC call for `user`: the whole answer.
    pub fn call_raw(&self, user: &str, method: &str, params: Value) -> Answer {
        self.signed(self.secret.as_bytes(), user, method, params)
    }

    /// A signed call that must succeed: its result.
    pub fn call(&self, user: &str, method: &str, params: Value) -> Value {
        let answer = self.call_raw(user, method, params);
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(answer.body.get("error").is_none(), "{method}: {answer:?}");
        answer.body["result"].clone()
    }

    /// A call with a body signed wrongly (by another secret).
    pub fn call_badly_signed(&self, user: &str, method: &str, params: Value) -> Answer {
        self.signed(b"not the secret", user, method, params)
    }
}

impl Cluster {
    /// Adds `[api]` to the configuration (a free port, clients file, audit log and admin
    /// clients under the cluster's folder); its port.
    pub fn configure_api(&self, admin_clients: &[&str]) -> u16 {
        self.configure_api_with(admin_clients, "")
    }

    /// Like [`Cluster::configure_api`], with `extra` keys (`key = value` lines) in `[api]`.
    pub fn configure_api_with(&self, admin_clients: &[&str], extra: &str) -> u16 {
        let port = free_port();
        let admins: Vec<String> = admin_clients.iter().map(|a| format!("{a:?}")).collect();
        let mut config = std::fs::read_to_string(self.config()).expect("reading the configuration");
        assert!(!config.contains("\n[api]\n"), "[api] is configured already");
        config.push_str("\n[api]\n");
        let defaults = [
            ("listen", format!("\"127.0.0.1:{port}\"")),
            ("clients", "\"var/api-clients.json\"".to_string()),
            ("audit_log", "\"var/api-audit.log\"".to_string()),
            ("admin_clients", format!("[{}]", admins.join(", "))),
        ];
        // A key in `extra` replaces its default.
        for (key, value) in defaults {
            let given = extra
                .lines()
                .any(|l| l.split('=').next().is_some_and(|k| k.trim() == key));
            if !given {
                config.push_str(&format!("{key} = {value}\n"));
            }
        }
        config.push_str(extra);
        std::fs::write(self.config(), config).expect("writing the configuration");
        port
    }

    /// Configures `[api]`, makes a client with `bonnie api-client add`, starts `bonnie-api`
    /// (logging to `api.log`) and waits until it accepts connections.
    pub fn start_api(&self, admin_clients: &[&str]) -> (ChildGuard, ApiClient) {
        let (api, client, _) = self.start_api_with_admins(admin_clients);
        (api, client)
    }

    /// Like [`Cluster::start_api`], also making a client for each of `admin_clients`
    /// (returned in that order).
    pub fn start_api_with_admins(
        &self,
        admin_clients: &[&str],
    ) -> (ChildGuard, ApiClient, Vec<ApiClient>) {
        let port = self.configure_api(admin_clients);
        let address = format!("127.0.0.1:{port}");
        let with_address = |client: ApiClient| ApiClient {
            address: address.clone(),
            ..client
        };
        let client = with_address(self.add_api_client("roundcube"));
        let admins = admin_clients
            .iter()
            .map(|name| with_address(self.add_api_client(name)))
            .collect();
        (self.run_api(port), client, admins)
    }

    /// `bonnie api-client add <name>`: the credentials it printed.
    pub fn add_api_client(&self, name: &str) -> ApiClient {
        let output = self.bonnie(&["api-client", "add", name]);
        assert!(
            process::succeeded(&output.status),
            "{}",
            process::describe(&output)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        ApiClient::from_added(name, &text).unwrap_or_else(|| panic!("no credentials in: {text}"))
    }

    /// Starts `bonnie-api` as configured (logging to `api.log`), first a broker for its audit
    /// records if none was started, and waits until `port` accepts connections.
    pub fn run_api(&self, port: u16) -> ChildGuard {
        self.run_api_with_env(port, &[])
    }

    /// Like [`Cluster::run_api`], with these environment variables set.
    pub fn run_api_with_env(&self, port: u16, env: &[(&str, &str)]) -> ChildGuard {
        self.ensure_broker();
        let log = self.path().join("api.log").to_string_lossy().into_owned();
        let mut command = self.command("bonnie-api", &["--log-file", &log]);
        command.envs(env.iter().copied());
        let api = ChildGuard::spawn("bonnie-api", &mut command);
        process::wait_until("bonnie-api to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        api
    }

    /// Makes a self-signed certificate for localhost and 127.0.0.1 with openssl: `cert.pem`
    /// and `key.pem` in the cluster's folder.
    pub fn make_tls_certificate(&self) {
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
            ])
            .arg(self.path().join("key.pem"))
            .arg("-out")
            .arg(self.path().join("cert.pem"))
            .output()
            .expect("openssl (scripts/test installs it)");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    }

    /// The API's audit log, one JSON object a line.
    pub fn api_audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path().join("var/api-audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
            .collect()
    }
}

/// The revision numbers of a `<type>.changelog` answer, in its order.
pub fn revs(changelog: &Value) -> Vec<i64> {
    changelog["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("not a changelog: {changelog}"))
        .iter()
        .map(|c| c["rev"].as_i64().expect("a revision number"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
