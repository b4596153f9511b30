//! The console in a real headless Chromium (Debian's `chromium` and `chromium-driver`, over
//! WebDriver) against `keyward serve`: sign in; create a key through the dialog (invalid fields
//! show their errors, Create stays disabled until valid); the copy-once dialog shows the secret
//! exactly once and it verifies; deactivate, regenerate with a grace, edit with the warning,
//! revoke and delete through their confirmations; filter and search the table; the account's
//! pages; a form posted without its CSRF token is refused; a key that is not admin cannot sign
//! in; the secret is in no page after the dialog and never in the server's log.
//!
//! With `KEYWARD_WRITE_SCREENSHOTS=1` it writes a screenshot of each page to docs/console/.
//! Skipped, saying why, where chromium or chromedriver is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::path::Path;
use std::time::Duration;

use keyward_e2e::Server;
use keyward_e2e::webdriver::{Browser, installed};
use serde_json::json;

fn verifies(admin: &keyward_e2e::Client, secret: &str) -> bool {
    admin
        .verify(secret, json!({"source_ip": "10.1.2.3"}))
        .json()["valid"]
        == true
}

fn shoot(browser: &Browser, name: &str) {
    shoot_sized(browser, name, 960);
}

/// A screenshot `height` pixels tall; a shown secret is masked first (no token in docs/, where
/// secret scanners look).
fn shoot_sized(browser: &Browser, name: &str, height: u32) {
    if std::env::var("KEYWARD_WRITE_SCREENSHOTS").as_deref() == Ok("1") {
        browser.execute(
            "const s = document.getElementById('secret'); if (s) { const t = s.textContent; s.textContent = t.slice(0, 12) + '•'.repeat(30) + t.slice(-4); }",
        );
        browser.resize(1280, height);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), browser.screenshot()).unwrap();
        browser.resize(1280, 960);
    }
}

fn key_id_of(url: &str) -> String {
    url.split("/console/keys/")
        .nth(1)
        .unwrap()
        .split(['?', '#'])
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn the_console_manages_keys_in_a_real_browser() {
    let Some((chromium, chromedriver)) = installed() else {
        // The test command installs them: in CI their absence is a failure, not a skip.
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "chromium and chromedriver are missing in CI"
        );
        eprintln!(
            "skipped: chromium and chromedriver are not installed (./scripts/test installs Debian's chromium and chromium-driver)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("serve.log");
    let server = Server::start(&tmp.path().join("data"), &log, &[]);
    let root = server.root_key().unwrap();
    let admin = server.client().with_key(&root);
    let base = server.base.clone();
    let (_, reader) = admin.create_key(&json!({"name": "reader", "scopes": ["read"]}));
    let mut secrets = vec![reader.clone()];
    let browser = Browser::start(&chromium, &chromedriver);

    // Signed out, every page leads to sign-in; a key that is not admin is refused.
    browser.goto(&format!("{base}/console/keys"));
    assert!(
        browser.url().contains("/console/sign-in"),
        "{}",
        browser.url()
    );
    shoot(&browser, "sign-in");
    browser.fill("#api_key", &reader);
    browser.click_to_page("button[type=submit]");
    assert!(
        browser.text("[role=alert]").contains("may not manage keys"),
        "{}",
        browser.source()
    );
    browser.fill("#api_key", &root);
    browser.click_to_page("button[type=submit]");
    browser.find("h1");
    assert!(
        browser.url().ends_with("/console/keys"),
        "{}",
        browser.url()
    );
    // The browser holds a session, never the key: HttpOnly, SameSite=Strict.
    let session = browser
        .cookies()
        .into_iter()
        .find(|c| c["name"] == "keyward_session")
        .expect("a session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    let cookie = session["value"].as_str().unwrap().to_owned();
    // It holds the account, the key's id, the time and how its secret starts and ends: no
    // more (the key, sealed or not, is not in it).
    let (payload, _) = cookie.split_once('.').unwrap();
    let bytes: Vec<u8> = (0..payload.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&payload[i..i + 2], 16).unwrap())
        .collect();
    let fields: Vec<String> = String::from_utf8(bytes)
        .unwrap()
        .split('\n')
        .map(str::to_owned)
        .collect();
    let root_key = admin.get("/v1/keys?q=root").json()["items"][0].clone();
    assert_eq!(fields.len(), 4, "{fields:?}");
    assert_eq!(fields[1], root_key["id"].as_str().unwrap());
    assert!(fields[2].parse::<i64>().is_ok());
    assert_eq!(
        fields[3],
        format!(
            "{}…{}",
            root_key["start"].as_str().unwrap(),
            root_key["last4"].as_str().unwrap()
        )
    );
    assert!(!fields.iter().any(|f| f.contains(&root[12..root.len() - 4])));
    assert_eq!(browser.execute("return document.cookie;"), json!(""));

    // The create dialog: Create stays disabled until the form is valid; the server's errors
    // show beside their fields and the dialog stays open.
    browser.click("[data-open=create-dialog]");
    assert!(browser.displayed("#create-dialog"));
    assert!(!browser.enabled("#create-dialog [type=submit]"));
    browser.fill("#name", "ci-nightly");
    assert!(
        !browser.enabled("#create-dialog [type=submit]"),
        "no scope yet"
    );
    browser.fill("#scopes", "nope:x");
    browser.fill("#rate_limit_per_minute", "700");
    assert!(
        !browser.enabled("#create-dialog [type=submit]"),
        "rate limit out of range"
    );
    browser.fill("#rate_limit_per_minute", "120");
    browser.fill("#allowed_cidrs", "0.0.0.0/0");
    assert!(
        browser.displayed("[data-wildcard]"),
        "the wildcard warning shows"
    );
    browser.fill("#allowed_cidrs", "10.0.0.0/8");
    assert!(!browser.displayed("[data-wildcard]"));
    assert!(browser.enabled("#create-dialog [type=submit]"));
    // A click on the backdrop (the page's corner, outside the dialog) does not close it.
    browser.click_at(5, 5);
    assert!(browser.displayed("#create-dialog"));
    shoot(&browser, "create-dialog");
    browser.click_to_page("#create-dialog [type=submit]");
    assert!(
        browser.displayed("#create-dialog"),
        "shown again with the error"
    );
    let error = browser.text("#scopes-error");
    assert!(error.contains("unknown resource type 'nope'"), "{error}");
    assert_eq!(
        browser.execute("return document.getElementById('name').value;"),
        json!("ci-nightly"),
        "what was typed is kept"
    );
    shoot(&browser, "create-errors");
    browser.fill("#scopes", "read, agents");
    browser.click_to_page("#create-dialog [type=submit]");

    // The copy-once dialog: the secret, exactly once, and it verifies; copy turns to a check
    // for about two seconds.
    let secret = browser.text("#secret");
    assert!(
        secret.starts_with("kw_live_") && secret.len() == 46,
        "{secret}"
    );
    secrets.push(secret.clone());
    assert!(verifies(&admin, &secret));
    assert_eq!(browser.source().matches(&secret).count(), 1);
    browser.click("[data-copy]");
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while browser.text("[data-copy] [data-icon]") != "✓" {
        assert!(
            std::time::Instant::now() < deadline,
            "the icon did not turn to a check"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(browser.text("#copy-status"), "Copied");
    shoot(&browser, "copy-once");
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(browser.text("[data-copy] [data-icon]"), "⧉");
    // Escape does not dismiss it: it must be acknowledged.
    browser.press("\u{E00C}");
    assert!(browser.displayed("#secret-dialog"));
    browser.click_to_page("#secret-dialog a.button");
    browser.find("#settings-title");
    let id = key_id_of(&browser.url());
    assert!(!browser.url().contains(&secret));
    assert!(!browser.source().contains(&secret), "no secret after Done");
    assert!(browser.text("[role=status]").contains("Key created"));
    shoot_sized(&browser, "key", 1500);

    // Deactivate and activate again.
    browser.click_to_page("form[action$='/active'] button");
    assert!(browser.text("[role=status]").contains("deactivated"));
    assert!(browser.text("h1").contains("Inactive"));
    assert!(!verifies(&admin, &secret));
    browser.click_to_page("form[action$='/active'] button");
    assert!(browser.text("[role=status]").contains("activated"));
    assert!(verifies(&admin, &secret));

    // Regenerate with a grace of an hour: a new secret, once; both verify.
    browser.click("[data-open=regenerate-dialog]");
    assert!(browser.displayed("#regenerate-dialog"));
    shoot(&browser, "regenerate-dialog");
    browser.click("#regenerate-dialog input[value='3600']");
    browser.click_to_page("#regenerate-dialog [type=submit]");
    let rotated = browser.text("#secret");
    assert_ne!(rotated, secret);
    secrets.push(rotated.clone());
    assert!(
        browser
            .text("#secret-dialog")
            .contains("previous secret keeps working")
    );
    assert!(verifies(&admin, &rotated) && verifies(&admin, &secret));
    browser.click_to_page("#secret-dialog a.button");
    assert!(browser.text("[role=status]").contains("New secret"));
    assert!(!browser.source().contains(&rotated));

    // Editing the scopes asks first; saving anyway updates the key.
    browser.fill("#scopes", "read");
    browser.click("form[data-confirm-changes] [type=submit]");
    assert!(browser.displayed("#risky-dialog"));
    shoot(&browser, "edit-warning");
    browser.click_to_page("#risky-dialog [data-confirm]");
    assert!(browser.text("[role=status]").contains("Key updated"));
    let live = admin.get(&format!("/v1/keys/{id}")).json();
    assert_eq!(live["scopes"].as_array().unwrap().len(), 1);
    assert_eq!(live["rate_limit_per_minute"], 120);

    // Usage by day and the audit trail.
    assert!(browser.count("svg.chart rect") >= 30);
    assert!(browser.text("#trail-title ~ table").contains("key.created"));

    // Filter and search: made through the API, one deactivated.
    for name in ["alpha-svc", "beta-svc"] {
        let (_, s) = admin.create_key(&json!({"name": name, "scopes": ["read"]}));
        secrets.push(s);
    }
    let beta = admin.get("/v1/keys?q=beta").json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin.patch(&format!("/v1/keys/{beta}"), &json!({"active": false}), None);
    browser.goto(&format!("{base}/console/keys"));
    shoot(&browser, "keys");
    let table = browser.text("table");
    assert!(
        table.contains("alpha-svc") && !table.contains("beta-svc"),
        "active by default"
    );
    assert!(table.contains("Never") && table.contains("/min"));
    browser.fill("#q", "alpha");
    browser.click_to_page("form[role=search] [type=submit]");
    browser.find("table");
    assert_eq!(browser.count("tbody tr"), 1);
    browser.goto(&format!("{base}/console/keys?status=inactive"));
    assert!(browser.text("table").contains("beta-svc"));
    assert_eq!(browser.count("tbody tr"), 1);
    browser.goto(&format!("{base}/console/keys?q=nothing-like-this"));
    assert!(browser.text(".empty").contains("No keys match"));
    shoot(&browser, "keys-empty");

    // A form posted without its CSRF token (or another session's) is refused, and changes
    // nothing.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    for body in ["", "_csrf=0000"] {
        let refused = agent
            .post(&format!("{base}/console/keys/{id}/revoke"))
            .header("Cookie", &format!("keyward_session={cookie}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(body)
            .unwrap();
        assert_eq!(refused.status(), 403);
    }
    assert_eq!(
        admin.get(&format!("/v1/keys/{id}")).json()["status"],
        "active"
    );

    // Revoke, then delete, through their confirmations.
    browser.goto(&format!("{base}/console/keys/{id}"));
    browser.click("[data-open=revoke-dialog]");
    assert!(browser.text("#revoke-dialog").contains("permanent"));
    shoot(&browser, "revoke-dialog");
    browser.click_to_page("#revoke-dialog [type=submit]");
    assert!(browser.text("[role=status]").contains("revoked"));
    assert!(browser.text("h1").contains("Revoked"));
    assert!(!verifies(&admin, &rotated));
    browser.click("[data-open=delete-dialog]");
    assert!(browser.text("#delete-dialog").contains("loses access"));
    browser.click_to_page("#delete-dialog [type=submit]");
    assert!(browser.text("[role=status]").contains("Key deleted"));
    assert_eq!(admin.get(&format!("/v1/keys/{id}")).status, 404);

    // The account's pages. Usage is counted in memory and flushed every 10 s: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while admin.get("/v1/usage").json()["days"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(std::time::Instant::now() < deadline, "no usage recorded");
        std::thread::sleep(Duration::from_millis(500));
    }
    browser.goto(&format!("{base}/console/usage"));
    assert!(browser.count("svg.chart") == 1);
    let legend = browser.text("figcaption");
    assert!(
        !legend.contains("Valid 0") && !legend.contains("Denied 0"),
        "{legend}"
    );
    shoot(&browser, "usage");
    browser.goto(&format!("{base}/console/audit"));
    assert!(browser.text("table").contains("key.revoked"));
    shoot(&browser, "audit");
    browser.goto(&format!("{base}/console/groups"));
    browser.fill("#group-name", "platform-team");
    browser.click_to_page("form[action='groups'] [type=submit]");
    assert!(
        browser
            .text("[role=status]")
            .contains("Sharing group created")
    );
    assert!(browser.text("table").contains("platform-team"));
    shoot(&browser, "groups");
    browser.goto(&format!("{base}/console/presets"));
    assert!(browser.text("table").contains("deploy"));
    shoot(&browser, "presets");
    browser.goto(&format!("{base}/console/quick-start"));
    assert!(
        browser
            .text("pre")
            .contains(&format!("curl -s {base}/v1/verify"))
    );
    shoot(&browser, "quick-start");

    // The signed-in key may edit its own description: only what changed is sent, so the
    // untouched scopes and ranges (which a key may not change on itself) are left alone.
    let root_id = admin.get("/v1/keys?q=root").json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    browser.goto(&format!("{base}/console/keys/{root_id}"));
    browser.fill("#description", "The first admin key");
    browser.click_to_page("form[data-confirm-changes] [type=submit]");
    assert!(
        browser.text("[role=status]").contains("Key updated"),
        "{}",
        browser.source()
    );
    assert_eq!(
        admin.get(&format!("/v1/keys/{root_id}")).json()["description"],
        "The first admin key"
    );

    // No page the console serves, nor the server's log, holds a secret once shown.
    for page in ["keys?status=all", "audit", "usage"] {
        browser.goto(&format!("{base}/console/{page}"));
        let source = browser.source();
        for s in &secrets {
            assert!(!source.contains(s.as_str()), "a secret on /console/{page}");
        }
    }

    // Sign out: the session is gone.
    browser.goto(&format!("{base}/console/keys"));
    browser.click_to_page("form[action='sign-out'] button");
    browser.find("#api_key");
    assert!(browser.url().contains("/console/sign-in"));
    browser.goto(&format!("{base}/console/keys"));
    assert!(browser.url().contains("/console/sign-in"));
    drop(browser);
    let stopped = server.stop();
    for s in secrets.iter().chain([&root]) {
        assert!(
            !stopped.log.contains(s.as_str()),
            "a secret in the server's log"
        );
    }
}
