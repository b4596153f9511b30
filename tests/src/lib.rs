//! End-to-end harness: runs the real `keyward` binary as a separate process and talks to it
//! over HTTP, the way an operator or a CI job would.
//!
//! [`fuzz_checks`] holds what the fuzz targets in `fuzz/` assert, so that
//! `tests/fuzz_corpus.rs` replays their committed corpora in every `cargo test`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

pub mod fuzz_checks;
pub mod webdriver;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The `keyward` binary built beside these tests (`target/<profile>/keyward`).
pub fn keyward_bin() -> PathBuf {
    if let Ok(p) = std::env::var("KEYWARD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe.parent().and_then(Path::parent).map(Path::to_path_buf);
    let bin = profile_dir.unwrap_or_default().join("keyward");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p keyward-cli` (or set KEYWARD_BIN)",
        bin.display()
    );
    bin
}

/// Generates, for each named check `fn name(backend: &Backend)`, a test module per store:
/// `on_sqlite::name` and `on_dynamodb::name`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[test] fn $name() { super::$name(&$crate::Backend::sqlite()); } )* }
        mod on_dynamodb { $( #[test] fn $name() { super::$name(&$crate::Backend::dynamodb()); } )* }
    };
}

/// Which store a server runs on, as the `serve` arguments that select it.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    DynamoDb { location: String, table: String },
}

impl Backend {
    pub fn sqlite() -> Backend {
        Backend::Sqlite
    }

    /// A fresh table on the DynamoDB Local that `./scripts/test` started, created with
    /// `keyward store init` (so that command is exercised too).
    pub fn dynamodb() -> Backend {
        let endpoint = std::env::var("KEYWARD_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
            panic!("KEYWARD_TEST_DYNAMODB_ENDPOINT is not set: run ./scripts/test, which starts DynamoDB Local")
        });
        Backend::dynamodb_at(&endpoint)
    }

    /// A fresh table on the DynamoDB (Local) at `endpoint`.
    pub fn dynamodb_at(endpoint: &str) -> Backend {
        let table = format!("kw-e2e-{}", keyward_core::id::new_id("t").unwrap());
        let location = format!("dynamodb://{table}?endpoint={endpoint}");
        let out = Command::new(keyward_bin())
            .args(["store", "init", "--store", &location])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "store init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Backend::DynamoDb { location, table }
    }

    pub fn serve_args(&self) -> Vec<&str> {
        match self {
            Backend::Sqlite => vec![],
            Backend::DynamoDb { location, .. } => vec!["--store", location],
        }
    }
}

/// A running `keyward serve` on a free port, with its stdout lines and stderr log file.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub base: String,
    /// Everything printed on stdout up to "listening".
    pub stdout: Vec<String>,
    pub log_path: PathBuf,
}

/// What a finished server printed.
#[derive(Debug)]
pub struct Stopped {
    pub stdout: Vec<String>,
    pub log: String,
}

impl Server {
    /// Starts `keyward serve --data-dir <dir> --listen 127.0.0.1:0 <extra...>` and waits until
    /// it listens. The log goes to `<log_path>` (appended, so restarts accumulate).
    pub fn start(data_dir: &Path, log_path: &Path, extra: &[&str]) -> Server {
        Self::start_with_env(data_dir, log_path, extra, &[])
    }

    /// [`Server::start`] with more environment for the server alone.
    pub fn start_with_env(
        data_dir: &Path,
        log_path: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        let mut child = Command::new(keyward_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    let base = line
                        .strip_prefix("keyward: listening on ")
                        .map(str::to_owned);
                    lines.push(line);
                    if let Some(base) = base {
                        return Server {
                            child,
                            base,
                            stdout: lines,
                            log_path: log_path.to_path_buf(),
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(log_path).unwrap_or_default();
                    panic!("keyward serve did not start; stdout: {lines:?}\nlog:\n{log}");
                }
            }
        }
    }

    /// The root admin key printed on this start, if any.
    pub fn root_key(&self) -> Option<String> {
        self.stdout
            .iter()
            .position(|l| l.contains("Root admin key"))
            .and_then(|i| self.stdout.get(i + 1).cloned())
    }

    /// Stops the server with SIGTERM (a graceful shutdown) and collects what it printed.
    pub fn stop(mut self) -> Stopped {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let mut rest = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_string(&mut rest);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "keyward serve exited with {status}");
        let mut stdout = std::mem::take(&mut self.stdout);
        stdout.extend(rest.lines().map(str::to_owned));
        Stopped {
            stdout,
            log: std::fs::read_to_string(&self.log_path).unwrap_or_default(),
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response as the tests look at it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub etag: Option<String>,
    pub retry_after: Option<String>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The fields named in a problem document's `errors`.
    pub fn problem_fields(&self) -> Vec<String> {
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.text
        );
        self.json()["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A small HTTP client that never turns a status into an error.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    key: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        // Far above any answer keyward promises (5 s with the store down), so a hang fails the
        // test instead of stalling it.
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client {
            base: base.to_owned(),
            agent,
            key: None,
        }
    }

    /// The same client, authenticating with `key` as `X-API-Key`.
    pub fn with_key(&self, key: &str) -> Client {
        Client {
            key: Some(key.to_owned()),
            ..self.clone()
        }
    }

    /// `req` with this client's key, if it has one.
    fn keyed<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.key {
            Some(k) => req.header("X-API-Key", k),
            None => req,
        }
    }

    fn finish(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut resp = resp.unwrap();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let etag = header("etag");
        let retry_after = header("retry-after");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Reply {
            status,
            content_type,
            etag,
            retry_after,
            text,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        let req = self.keyed(self.agent.get(format!("{}{path}", self.base)));
        Self::finish(req.call())
    }

    /// GETs with extra headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.keyed(self.agent.get(format!("{}{path}", self.base)));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Self::finish(req.call())
    }

    pub fn delete(&self, path: &str) -> Reply {
        let req = self.keyed(self.agent.delete(format!("{}{path}", self.base)));
        Self::finish(req.call())
    }

    /// POSTs `body` as-is with `Content-Type: application/json`.
    pub fn post_raw(&self, path: &str, body: &str) -> Reply {
        let req = self
            .keyed(self.agent.post(format!("{}{path}", self.base)))
            .header("Content-Type", "application/json");
        Self::finish(req.send(body))
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, &body.to_string())
    }

    /// POSTs `body` as JSON with extra headers.
    pub fn post_with(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self
            .keyed(self.agent.post(format!("{}{path}", self.base)))
            .header("Content-Type", "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Self::finish(req.send(body))
    }

    /// PATCHes `body` as JSON, with `If-Match` when given.
    pub fn patch(&self, path: &str, body: &Value, if_match: Option<&str>) -> Reply {
        let mut req = self
            .keyed(self.agent.patch(format!("{}{path}", self.base)))
            .header("Content-Type", "application/json");
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        Self::finish(req.send(body.to_string()))
    }

    /// PUTs with no body.
    pub fn put(&self, path: &str) -> Reply {
        let req = self.keyed(self.agent.put(format!("{}{path}", self.base)));
        Self::finish(req.send_empty())
    }

    /// PUTs `body` as JSON.
    pub fn put_json(&self, path: &str, body: &Value) -> Reply {
        let req = self
            .keyed(self.agent.put(format!("{}{path}", self.base)))
            .header("Content-Type", "application/json");
        Self::finish(req.send(body.to_string()))
    }

    /// `POST /v1/keys` with `body`, which must create a key: its id and its secret.
    pub fn create_key(&self, body: &Value) -> (String, String) {
        let r = self.post("/v1/keys", body);
        assert_eq!(r.status, 201, "{}", r.text);
        let j = r.json();
        (
            j["key"]["id"].as_str().unwrap_or_default().to_owned(),
            j["secret"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// `POST /v1/verify` for `key`, with extra fields merged in.
    pub fn verify(&self, key: &str, extra: Value) -> Reply {
        let mut body = serde_json::json!({ "key": key });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.post("/v1/verify", &body)
    }
}

/// Waits, if needed, until the current UTC minute has at least `left` seconds to run: a test
/// whose requests must fall in one rate-limit window (or keep the lease it took) starts early in
/// a minute.
pub fn with_seconds_left_in_minute(left: i64) {
    let second = chrono::Utc::now().timestamp().rem_euclid(60);
    if 60 - second < left {
        let wait = u64::try_from((60 - second) * 1000 + 200).unwrap_or_default();
        std::thread::sleep(std::time::Duration::from_millis(wait));
    }
}

/// Every file under `dir`, recursively, as bytes.
pub fn read_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A DynamoDB Local of a test's own, which the test may pause (SIGSTOP) and resume, as a store
/// that hangs. It runs the jar `./scripts/test` installed (`KEYWARD_TEST_DYNAMODB_JAR_DIR`).
#[derive(Debug)]
pub struct PrivateDynamo {
    child: Child,
    pub endpoint: String,
}

impl PrivateDynamo {
    pub fn start() -> PrivateDynamo {
        let dir = std::env::var("KEYWARD_TEST_DYNAMODB_JAR_DIR").unwrap_or_else(|_| {
            panic!("KEYWARD_TEST_DYNAMODB_JAR_DIR is not set: run ./scripts/test, which installs DynamoDB Local")
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new("java")
            .current_dir(&dir)
            .args([
                "-Djava.library.path=./DynamoDBLocal_lib",
                "-jar",
                "DynamoDBLocal.jar",
            ])
            .args(["-inMemory", "-port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "DynamoDB Local did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        PrivateDynamo {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// Freezes the process: connections open, requests are never answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for PrivateDynamo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Calls an AWS JSON-protocol operation on moto (which checks no signature).
pub fn moto_call(endpoint: &str, service: &str, target: &str, body: &Value) -> Value {
    let mut response = ureq::post(endpoint)
        .header("X-Amz-Target", target)
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20261127/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .send(body.to_string())
        .unwrap();
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}
