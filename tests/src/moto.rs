//! An S3-compatible server for tests: moto's (`moto_server` from PyPI: in memory, offline),
//! installed by scripts/test into `.venv`, started on a free port with one empty bucket and
//! killed when dropped. A small HTTP client lists, reads and alters the bucket's objects as
//! someone with access to the bucket could (moto does not check request signatures).

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use crate::{cluster::free_port, paths, process};

/// The access key id the tests configure (moto takes any).
pub const ACCESS_KEY_ID: &str = "bonnie-test";

/// A running moto S3 server with one bucket.
pub struct MotoServer {
    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket made at start.
    pub bucket: String,
    child: Option<process::ChildGuard>,
}

/// The moto_server binary: `$BONNIE_MOTO_SERVER`, else the one in the repository's `.venv`.
pub fn moto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BONNIE_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let path = paths::repo_root().join(".venv/bin/moto_server");
    assert!(
        path.exists(),
        "moto_server is not installed at {}: run scripts/test, which installs it (pip install 'moto[server]')",
        path.display()
    );
    path
}

/// The Authorization header of the harness's requests: moto takes a request without one as
/// anonymous (refused on a private bucket) and does not check the signature of one with it.
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=bonnie-test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

/// An HTTP answer: the status and the body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl MotoServer {
    /// Starts moto on a free port, waits until it answers, and makes the bucket `payloads`.
    pub fn start() -> Self {
        let port = free_port();
        let child = process::ChildGuard::spawn(
            "moto_server",
            Command::new(moto_binary())
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "payloads".to_string(),
            child: Some(child),
        };
        process::wait_until("moto_server to answer", || {
            server.try_request("GET", "/", &[]).is_some()
        });
        let made = server.request("PUT", &format!("/{}", server.bucket), &[]);
        assert_eq!(made.status, 200, "creating the bucket: {}", made.text());
        server
    }

    /// Kills the server (SIGKILL): its endpoint no longer answers, and all it held is gone.
    pub fn kill(&mut self) {
        // Dropping the guard kills the process and waits for it.
        self.child = None;
    }

    /// The TOML lines of a storage plugin's table that keep payloads in this server's
    /// bucket, the secret access key read from `secret_file` (relative to the configuration).
    pub fn store_keys(&self, secret_file: &str) -> String {
        format!(
            "payload_store = \"s3\"\ns3_endpoint = \"{}\"\ns3_bucket = \"{}\"\ns3_region = \"us-east-1\"\n\
             s3_access_key_id = \"{ACCESS_KEY_ID}\"\ns3_secret_access_key_file = \"{secret_file}\"\n\
             s3_allow_http = true\ns3_timeout_ms = 5000\n",
            self.endpoint, self.bucket
        )
    }

    /// The keys of every object in the bucket, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/{}?list-type=2", self.bucket);
            if let Some(key) = &after {
                path.push_str(&format!("&start-after={key}"));
            }
            let listed = self.request("GET", &path, &[]);
            assert_eq!(listed.status, 200, "listing the bucket: {}", listed.text());
            let text = listed.text();
            let page: Vec<String> = text
                .split("<Key>")
                .skip(1)
                .filter_map(|rest| rest.split_once("</Key>"))
                .map(|(key, _)| key.to_string())
                .collect();
            let truncated = text.contains("<IsTruncated>true</IsTruncated>");
            after = page.last().cloned();
            keys.extend(page);
            if !truncated {
                break;
            }
        }
        keys.sort();
        keys
    }

    /// The bytes of the object `key`, if there is one.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        let got = self.request("GET", &format!("/{}/{key}", self.bucket), &[]);
        match got.status {
            200 => Some(got.body),
            404 => None,
            status => panic!("reading object {key}: {status} {}", got.text()),
        }
    }

    /// Writes the object `key` (replacing it), as someone with access to the bucket could.
    pub fn put_object(&self, key: &str, bytes: &[u8]) {
        let put = self.request("PUT", &format!("/{}/{key}", self.bucket), bytes);
        assert_eq!(put.status, 200, "writing object {key}: {}", put.text());
    }

    fn request(&self, method: &str, path: &str, body: &[u8]) -> Answer {
        self.try_request(method, path, body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer from {}", self.endpoint))
    }

    fn try_request(&self, method: &str, path: &str, body: &[u8]) -> Option<Answer> {
        let authority = self.endpoint.strip_prefix("http://")?;
        let mut stream = TcpStream::connect(authority).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {AUTHORIZATION}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        let rest = &response[end + 4..];
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        Some(Answer { status, body })
    }
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The body of a chunked answer.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let rest = &body[line_end + 2..];
        match size {
            Some(size) if size > 0 && rest.len() >= size => {
                out.extend_from_slice(&rest[..size]);
                body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
            }
            _ => break,
        }
    }
    out
}
