//! A small blocking WebDriver client for the console's browser tests: `chromedriver` (Debian's
//! `chromium-driver`) driving a headless `chromium`, over the W3C WebDriver protocol (JSON over
//! HTTP, with the `ureq` the other end-to-end tests use). Only what the tests need.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C key under which an element reference travels.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The browser and driver binaries, when both are installed.
pub fn installed() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| {
        names
            .iter()
            .map(|n| Path::new("/usr/bin").join(n))
            .find(|p| p.exists())
    };
    Some((
        find(&["chromium", "chromium-browser", "google-chrome"])?,
        find(&["chromedriver"])?,
    ))
}

/// One headless browser session; the driver stops when this is dropped.
#[derive(Debug)]
pub struct Browser {
    driver: String,
    session: String,
    child: Child,
}

/// An element found on the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts `chromedriver` on a free port and a headless `chromium` session.
    pub fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9515);
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let driver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{driver}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut browser = Browser {
            driver,
            session: String::new(),
            child,
        };
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.to_string_lossy(),
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,960",
                             "--force-device-scale-factor=1"]
                }
            }}})),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"))
    }

    /// One command; a WebDriver error comes back as its text.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = if path == "/session" {
            format!("{}{path}", self.driver)
        } else {
            format!("{}/session/{}{path}", self.driver, self.session)
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = match (method, body) {
            ("GET", _) => agent.get(&url).call(),
            ("DELETE", _) => agent.delete(&url).call(),
            (_, body) => agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        }
        .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(error) = value["value"]["error"].as_str() {
            return Err(format!("{error}: {}", value["value"]["message"]));
        }
        Ok(value["value"].clone())
    }

    /// Runs `command` (a path under the element, e.g. `text`) on the element `css` finds,
    /// finding it again while the page it was found on is being replaced (a form just posted).
    fn on_element(&self, css: &str, method: &str, command: &str, body: Option<Value>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let el = self.find(css);
            match self.try_call(
                method,
                &format!("/element/{}/{command}", el.0),
                body.clone(),
            ) {
                Ok(v) => return v,
                Err(e) if e.starts_with("stale element") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("webdriver {command} on {css}: {e}"),
            }
        }
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn source(&self) -> String {
        self.call("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching `css`, waiting up to 5 s for it.
    pub fn find(&self, css: &str) -> Element {
        self.wait_for(css, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no element {css} on {}", self.url()))
    }

    pub fn wait_for(&self, css: &str, timeout: Duration) -> Option<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.call(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            );
            if let Some(first) = found.as_array().and_then(|a| a.first()) {
                return Some(Element(
                    first[ELEMENT].as_str().unwrap_or_default().to_owned(),
                ));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn count(&self, css: &str) -> usize {
        self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .map_or(0, Vec::len)
    }

    pub fn click(&self, css: &str) {
        self.on_element(css, "POST", "click", None);
    }

    /// Clicks what leads to another page (a link, a form's submit) and waits until that page
    /// has replaced this one.
    pub fn click_to_page(&self, css: &str) {
        self.execute("window.__keywardOldPage = true;");
        self.click(css);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.execute(
            "return window.__keywardOldPage === true && document.readyState !== 'loading';",
        ) == Value::Bool(true)
        {
            assert!(
                Instant::now() < deadline,
                "no new page after clicking {css}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        while self.execute("return document.readyState;") != json!("complete") {
            assert!(
                Instant::now() < deadline,
                "the page after {css} did not load"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clears the field and types `text` into it.
    pub fn fill(&self, css: &str, text: &str) {
        self.on_element(css, "POST", "clear", None);
        if !text.is_empty() {
            self.on_element(css, "POST", "value", Some(json!({ "text": text })));
        }
    }

    pub fn text(&self, css: &str) -> String {
        self.on_element(css, "GET", "text", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn enabled(&self, css: &str) -> bool {
        self.on_element(css, "GET", "enabled", None) == Value::Bool(true)
    }

    pub fn displayed(&self, css: &str) -> bool {
        self.on_element(css, "GET", "displayed", None) == Value::Bool(true)
    }

    /// Runs `script` in the page and answers what it returns.
    pub fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Presses a key in the focused element (`\u{E00C}` is Escape).
    pub fn press(&self, key: &str) {
        self.call(
            "POST",
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                    {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}
                ]}]}),
            ),
        );
    }

    /// Resizes the window (a taller one shows a whole page in a screenshot).
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        );
    }

    /// A mouse click at a point of the viewport (on whatever is there: a dialog's backdrop).
    pub fn click_at(&self, x: i64, y: i64) {
        self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "pointer", "id": "mouse",
                "parameters": {"pointerType": "mouse"}, "actions": [
                {"type": "pointerMove", "x": x, "y": y, "origin": "viewport"},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerUp", "button": 0}
            ]}]})),
        );
    }

    pub fn cookies(&self) -> Vec<Value> {
        self.call("GET", "/cookie", None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn delete_cookies(&self) {
        self.call("DELETE", "/cookie", None);
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let encoded = self.call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("a screenshot that is not base64: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&format!("{}/session/{}", self.driver, self.session)).call();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
