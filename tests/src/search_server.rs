//! An Elasticsearch-compatible server for tests: `osmem-server` from PyPI (OpenSearch API,
//! in memory, offline), installed by scripts/test into `.venv`, started on a free port; or a
//! real server named by `BONNIE_TEST_ES_URL`. A small HTTP client talks to it.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::{cluster::free_port, paths, process};

/// A running search server.
pub struct SearchServer {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    child: Option<process::ChildGuard>,
}

/// The osmem-server binary: `$BONNIE_OSMEM_SERVER`, else the one in the repository's `.venv`.
pub fn osmem_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BONNIE_OSMEM_SERVER") {
        return PathBuf::from(path);
    }
    let lib = paths::repo_root().join(".venv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|versions| {
        versions
            .filter_map(Result::ok)
            .map(|v| v.path().join("site-packages/osmem_server/bin/osmem-server"))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!("osmem-server is not installed in {}: run scripts/test, which installs it (pip install osmem-server)", lib.display())
    })
}

impl SearchServer {
    /// Starts osmem-server on a free port and waits until it answers.
    pub fn start() -> Self {
        let port = free_port();
        let server = Self {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(spawn_osmem(port)),
        };
        server.wait_until_answering();
        server
    }

    /// Kills the server (SIGKILL). osmem-server keeps everything in memory: all it held is
    /// gone with it.
    pub fn kill(&mut self) {
        // Dropping the guard kills the process and waits for it.
        self.child = None;
    }

    /// Starts a fresh, empty osmem-server on the port of the one killed, and waits until it
    /// answers.
    pub fn start_again(&mut self) {
        let port: u16 = self
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a URL that ends with the port");
        self.child = Some(spawn_osmem(port));
        self.wait_until_answering();
    }

    fn wait_until_answering(&self) {
        process::wait_until("osmem-server to answer", || {
            self.try_request("GET", "/", None)
                .is_some_and(|(s, _)| s == 200)
        });
    }

    /// The real server named by `BONNIE_TEST_ES_URL` (`http://host:port`, no TLS).
    pub fn external() -> Self {
        let url = std::env::var("BONNIE_TEST_ES_URL")
            .expect("BONNIE_TEST_ES_URL names the Elasticsearch 8 to test against");
        Self {
            url: url.trim_end_matches('/').to_string(),
            child: None,
        }
    }

    /// Sends a request; the status and the JSON answer.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.try_request(method, path, body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer from {}", self.url))
    }

    fn try_request(&self, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
        let authority = self.url.strip_prefix("http://")?;
        let mut stream = TcpStream::connect(authority).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let text = String::from_utf8_lossy(&response);
        let (head, rest) = text.split_once("\r\n\r\n")?;
        let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
        let payload = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        Some((
            status,
            serde_json::from_str(&payload).unwrap_or(Value::Null),
        ))
    }

    /// Makes everything written so far searchable.
    pub fn refresh(&self) {
        self.request("POST", "/_refresh", None);
    }
}

fn spawn_osmem(port: u16) -> process::ChildGuard {
    process::ChildGuard::spawn(
        "osmem-server",
        Command::new(osmem_binary())
            .args(["--addr", &format!("127.0.0.1:{port}"), "--no-stdin-watch"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
