//! Keys as code end to end: the real `keyward validate`, `plan`, `apply` and `import` against
//! a `keyward serve` on each store. A directory of specs is applied; applied again it changes
//! nothing; a scope changed in git is updated in place; a raised `generation` regenerates the
//! secret into its 0600 file; an edit through the API is drift that apply restores; a deleted
//! spec is revoked by `--prune` while a key the specs do not manage is untouched; a stale saved
//! plan is refused; invalid specs are all reported and nothing is applied; no secret is ever
//! in a plan.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use keyward_e2e::{Backend, Server, keyward_bin, moto_call};
use serde_json::{Value, json};

keyward_e2e::on_both_stores!(specs_apply_plan_drift_prune_and_stale_plans);

/// Runs `keyward <args>` against `server` with the admin key in the environment.
fn keyward(server: &Server, key: &str, args: &[&str]) -> Output {
    Command::new(keyward_bin())
        .args(args)
        .env("KEYWARD_ENDPOINT", &server.base)
        .env("KEYWARD_API_KEY", key)
        .env_remove("KEYWARD_API_KEY_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const KEYS: &str = "\
# yaml-language-server: $schema=../schemas/keyward-spec.schema.json
kind: ApiKey
name: ci-nightly
description: Nightly evals from CI
preset: ci-runner
scopes: [{action: read, resource: \"projects/*\"}]
workspaces: [ws_1]
groups: [platform-team]
allowed_cidrs: [10.0.0.0/8]
rate_limit_per_minute: 120
expires_at: 2030-06-30T00:00:00Z
metadata: {team: platform}
secret: {sink: file, path: secrets/ci-nightly.key}
---
kind: ApiKey
name: deploy-bot
scopes: [agent:editor]
generation: 1
secret: {sink: file, path: secrets/deploy-bot.key}
";

const SHARED: &str = "\
kind: SharingGroup
name: platform-team
description: Owns what CI creates
---
kind: Preset
name: ci-runner
scopes: [agent:executor, project:viewer]
---
kind: RoutePolicy
name: agents-api
routes:
  - {method: GET, path: \"/agents/{agent_id}\", action: read, resource: \"agents/{agent_id}\"}
";

fn key_by_name(admin: &keyward_e2e::Client, name: &str) -> Value {
    let listing = admin.get("/v1/keys?status=all&limit=200").json();
    listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name && k["status"] != "revoked")
        .cloned()
        .unwrap_or(Value::Null)
}

fn verifies(admin: &keyward_e2e::Client, secret: &str) -> bool {
    admin
        .verify(secret, json!({"source_ip": "10.1.2.3"}))
        .json()["valid"]
        == true
}

fn specs_apply_plan_drift_prune_and_stale_plans(backend: &Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("data"),
        &tmp.path().join("serve.log"),
        &backend.serve_args(),
    );
    let root = server.root_key().unwrap();
    let admin = server.client().with_key(&root);
    let specs = tmp.path().join("specs");
    write(&specs.join("keys.yaml"), KEYS);
    write(&specs.join("shared/team.yaml"), SHARED);
    let dir = specs.to_str().unwrap();
    let run = |args: &[&str]| keyward(&server, &root, args);

    // A key nobody's specs manage.
    let (by_hand_id, _) = admin.create_key(&json!({"name": "by-hand", "scopes": ["read"]}));

    // validate: offline, counts by kind.
    let out = run(&["validate", dir]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("4 document(s)") || text(&out).contains("5 document(s)"),
        "{}",
        text(&out)
    );

    // plan: creates, exit 2 with --detailed-exitcode; the saved plan holds no secret.
    let plan_file = tmp.path().join("first.plan.json");
    let out = run(&[
        "plan",
        dir,
        "--detailed-exitcode",
        "--out",
        plan_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let shown = text(&out);
    for line in [
        "+ create sharing group \"platform-team\"",
        "+ create preset \"ci-runner\"",
        "+ create key \"ci-nightly\"",
        "+ create key \"deploy-bot\"",
        "Plan: 4 to create",
    ] {
        assert!(shown.contains(line), "{line} missing from:\n{shown}");
    }

    // apply without a terminal and without --auto-approve refuses and changes nothing.
    let out = run(&["apply", dir]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--auto-approve"), "{}", text(&out));
    assert_eq!(key_by_name(&admin, "ci-nightly"), Value::Null);

    // apply the saved plan: everything is made, secrets land in 0600 files.
    let out = run(&[
        "apply",
        "--plan",
        plan_file.to_str().unwrap(),
        "--auto-approve",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let secret_file = specs.join("secrets/ci-nightly.key");
    let secret = std::fs::read_to_string(&secret_file)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(
        std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(verifies(&admin, &secret));
    assert!(
        !text(&out).contains(&secret),
        "no secret on stdout for a file sink"
    );
    assert!(
        !std::fs::read_to_string(&plan_file)
            .unwrap()
            .contains("kw_live_")
    );
    let ci = key_by_name(&admin, "ci-nightly");
    assert_eq!(ci["managed_by"], "spec");
    assert_eq!(ci["applied_version"], ci["version"]);
    let scopes: Vec<&str> = ci["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scope"].as_str().unwrap())
        .collect();
    assert_eq!(
        scopes,
        ["agent:executor", "project:viewer", "read:projects/*"]
    );
    assert_eq!(ci["groups"].as_array().unwrap().len(), 1);
    assert_eq!(ci["rate_limit_per_minute"], 120);

    // The same plan again is stale (the names are taken now): refused as a whole.
    let out = run(&[
        "apply",
        "--plan",
        plan_file.to_str().unwrap(),
        "--auto-approve",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("stale"), "{}", text(&out));

    // Applied again: no changes.
    let out = run(&["plan", dir, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("No changes"), "{}", text(&out));
    let out = run(&["apply", dir, "--auto-approve"]);
    assert!(
        out.status.success() && text(&out).contains("No changes"),
        "{}",
        text(&out)
    );

    // A scope changed in git: updated in place, old -> new; --json says the same.
    write(
        &specs.join("keys.yaml"),
        &KEYS.replace("scopes: [agent:editor]", "scopes: [agent:viewer]"),
    );
    let out = run(&["plan", dir, "--json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["summary"]["update"], 1, "{plan}");
    assert_eq!(plan["actions"][0]["action"], "update_key");
    assert_eq!(plan["actions"][0]["changes"][0]["field"], "scopes");
    let out = run(&["apply", dir, "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("~ scopes: [\"agent:editor\"] -> [\"agent:viewer\"]"),
        "{}",
        text(&out)
    );
    let bot = key_by_name(&admin, "deploy-bot");
    assert_eq!(bot["scopes"][0]["scope"], "agent:viewer");

    // generation raised: a new secret into the same file (it held the old one), with grace.
    let bot_file = specs.join("secrets/deploy-bot.key");
    let old = std::fs::read_to_string(&bot_file)
        .unwrap()
        .trim()
        .to_owned();
    let raised = KEYS
        .replace("scopes: [agent:editor]", "scopes: [agent:viewer]")
        .replace("generation: 1", "generation: 2\ngrace_period_seconds: 3600");
    write(&specs.join("keys.yaml"), &raised);
    let out = run(&["apply", dir, "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("generation: 1 -> 2"), "{}", text(&out));
    let new = std::fs::read_to_string(&bot_file)
        .unwrap()
        .trim()
        .to_owned();
    assert_ne!(new, old);
    assert!(
        verifies(&admin, &new) && verifies(&admin, &old),
        "both verify within the grace"
    );
    assert_eq!(key_by_name(&admin, "deploy-bot")["generation"], 2);

    // An edit through the API is drift; apply restores it.
    let ci = key_by_name(&admin, "ci-nightly");
    let edited = admin.patch(
        &format!("/v1/keys/{}", ci["id"].as_str().unwrap()),
        &json!({"rate_limit_per_minute": 7}),
        None,
    );
    assert_eq!(edited.status, 200);
    let out = run(&["plan", dir, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2));
    let shown = text(&out);
    assert!(
        shown.contains("Drift") && shown.contains("restores rate_limit_per_minute"),
        "{shown}"
    );
    assert!(
        shown.contains("~ rate_limit_per_minute: 7 -> 120"),
        "{shown}"
    );
    let stale_plan = tmp.path().join("drift.plan.json");
    let out = run(&["plan", dir, "--out", stale_plan.to_str().unwrap()]);
    assert!(out.status.success());
    // ...but the key changes again before the saved plan is applied: refused, nothing done.
    admin.patch(
        &format!("/v1/keys/{}", ci["id"].as_str().unwrap()),
        &json!({"rate_limit_per_minute": 8}),
        None,
    );
    let out = run(&[
        "apply",
        "--plan",
        stale_plan.to_str().unwrap(),
        "--auto-approve",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("changed since the plan"),
        "{}",
        text(&out)
    );
    assert_eq!(
        key_by_name(&admin, "ci-nightly")["rate_limit_per_minute"],
        8
    );
    // A fresh saved plan restores it, touching nothing else (the expiry stays).
    let fresh = tmp.path().join("fresh.plan.json");
    let out = run(&["plan", dir, "--out", fresh.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["apply", "--plan", fresh.to_str().unwrap(), "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        key_by_name(&admin, "ci-nightly")["expires_at"],
        "2030-06-30T00:00:00Z"
    );
    let ci = key_by_name(&admin, "ci-nightly");
    assert_eq!(
        (
            ci["rate_limit_per_minute"].clone(),
            ci["applied_version"].clone()
        ),
        (json!(120), ci["version"].clone())
    );

    // A spec deleted and --prune: revoked; the unmanaged key is untouched.
    write(
        &specs.join("keys.yaml"),
        raised.split("---").next().unwrap(),
    );
    let out = run(&["plan", dir, "--prune"]);
    assert!(
        text(&out).contains("- revoke key \"deploy-bot\""),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("by-hand"), "{}", text(&out));
    let out = run(&["apply", dir, "--prune", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!verifies(&admin, &new));
    assert_eq!(
        admin.get(&format!("/v1/keys/{by_hand_id}")).json()["status"],
        "active"
    );

    // A file sink that holds something else refuses the apply before anything is made.
    write(
        &specs.join("taken.yaml"),
        "kind: ApiKey\nname: taken\nscopes: [read]\nsecret: {sink: file, path: secrets/taken.key}\n",
    );
    std::fs::write(specs.join("secrets/taken.key"), "someone else's\n").unwrap();
    let out = run(&["apply", dir, "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("nothing was applied"), "{}", text(&out));
    assert_eq!(key_by_name(&admin, "taken"), Value::Null);
    std::fs::remove_file(specs.join("taken.yaml")).unwrap();

    // The pruned key's spec comes back: a new key takes the freed name, and its secret
    // replaces the revoked key's in the same file.
    write(&specs.join("keys.yaml"), &raised);
    let out = run(&["apply", dir, "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    let again = std::fs::read_to_string(&bot_file)
        .unwrap()
        .trim()
        .to_owned();
    assert_ne!(again, new);
    assert!(verifies(&admin, &again));
    assert_eq!(key_by_name(&admin, "deploy-bot")["generation"], 2);

    // A spec naming the unmanaged key is refused without --adopt.
    write(
        &specs.join("adopt.yaml"),
        "kind: ApiKey\nname: by-hand\nscopes: [read]\n",
    );
    let out = run(&["plan", dir]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--adopt"), "{}", text(&out));
    let out = run(&["apply", dir, "--adopt", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        admin.get(&format!("/v1/keys/{by_hand_id}")).json()["managed_by"],
        "spec"
    );
    std::fs::remove_file(specs.join("adopt.yaml")).unwrap();

    // Invalid specs: every error reported with file:line:col, nothing applied.
    write(
        &specs.join("broken.yaml"),
        "kind: ApiKey\nname: broken\nscopes: [agent:admin]\nrate_limit_per_minute: 0\nallowed_cidrs: [nope]\nsecret: {sink: stdout}\n",
    );
    let before = admin.get("/v1/keys?status=all&limit=200").json();
    let out = run(&["apply", dir, "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let shown = text(&out);
    assert!(shown.contains("3 errors in the specs"), "{shown}");
    assert!(
        shown.contains("broken.yaml:3:10:") && shown.contains("owner"),
        "{shown}"
    );
    assert!(shown.contains("broken.yaml:4:24:"), "{shown}");
    assert!(shown.contains("broken.yaml:5:17:"), "{shown}");
    assert_eq!(admin.get("/v1/keys?status=all&limit=200").json(), before);
    std::fs::remove_file(specs.join("broken.yaml")).unwrap();

    // import writes specs that validate as written and plan to nothing after --adopt.
    let imported = tmp.path().join("imported");
    let out = run(&["import", "--out", imported.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the admin key this import runs with"),
        "{}",
        text(&out)
    );
    let out = run(&["validate", imported.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&[
        "plan",
        imported.to_str().unwrap(),
        "--adopt",
        "--detailed-exitcode",
        "--json",
    ]);
    let plan: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    // Only adoptions (the root key and nothing else unmanaged remain): no setting changes.
    for action in plan["actions"].as_array().unwrap() {
        assert_eq!(action["adopt"], true, "{action}");
        assert_eq!(action["changes"], json!([]), "{action}");
    }
    let everything = std::fs::read_dir(&imported)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(
        !everything.contains(&secret) && !everything.contains("kw_live_"),
        "no secret in imported files"
    );
}

/// `apply` delivers secrets to AWS Secrets Manager and SSM Parameter Store (moto), and a
/// regeneration writes a new version; nothing of either reaches apply's output.
#[test]
fn secrets_reach_secrets_manager_and_ssm() {
    let Ok(moto) = std::env::var("KEYWARD_TEST_MOTO_ENDPOINT") else {
        eprintln!("skipped: KEYWARD_TEST_MOTO_ENDPOINT is not set (./scripts/test starts moto)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &tmp.path().join("serve.log"), &[]);
    let root = server.root_key().unwrap();
    let admin = server.client().with_key(&root);
    let run_id = format!("{}", std::process::id());
    let specs = tmp.path().join("specs");
    let body = |generation: u32| {
        format!(
            "kind: ApiKey\nname: sm\nscopes: [read]\ngeneration: {generation}\nsecret: {{sink: aws-secretsmanager, secret_id: keyward/e2e-{run_id}}}\n---\nkind: ApiKey\nname: ssm\nscopes: [read]\ngeneration: {generation}\nsecret: {{sink: aws-ssm, parameter: /keyward/e2e-{run_id}}}\n"
        )
    };
    let apply = || {
        Command::new(keyward_bin())
            .args(["apply", specs.to_str().unwrap(), "--auto-approve"])
            .env("KEYWARD_ENDPOINT", &server.base)
            .env("KEYWARD_API_KEY", &root)
            .env("AWS_ENDPOINT_URL", &moto)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let read_back = || {
        let sm = moto_call(
            &moto,
            "secretsmanager",
            "secretsmanager.GetSecretValue",
            &json!({"SecretId": format!("keyward/e2e-{run_id}")}),
        )["SecretString"]
            .as_str()
            .unwrap()
            .to_owned();
        let ssm = moto_call(
            &moto,
            "ssm",
            "AmazonSSM.GetParameter",
            &json!({"Name": format!("/keyward/e2e-{run_id}"), "WithDecryption": true}),
        );
        assert_eq!(ssm["Parameter"]["Type"], "SecureString");
        (sm, ssm["Parameter"]["Value"].as_str().unwrap().to_owned())
    };

    write(&specs.join("aws.yaml"), &body(1));
    let out = apply();
    assert!(out.status.success(), "{}", text(&out));
    let (sm, ssm) = read_back();
    assert!(verifies(&admin, &sm) && verifies(&admin, &ssm));
    assert!(!text(&out).contains(&sm) && !text(&out).contains(&ssm));

    write(&specs.join("aws.yaml"), &body(2));
    let out = apply();
    assert!(out.status.success(), "{}", text(&out));
    let (sm2, ssm2) = read_back();
    assert_ne!((&sm2, &ssm2), (&sm, &ssm));
    assert!(verifies(&admin, &sm2) && verifies(&admin, &ssm2));
    assert!(!verifies(&admin, &sm), "no grace: the old secret stopped");
}

/// On a terminal, apply shows the plan and asks; anything but `yes` changes nothing. The
/// terminal is a real pseudo-terminal, from util-linux's `script`.
#[test]
fn apply_asks_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &tmp.path().join("serve.log"), &[]);
    let root = server.root_key().unwrap();
    let admin = server.client().with_key(&root);
    let specs = tmp.path().join("specs");
    write(
        &specs.join("k.yaml"),
        "kind: ApiKey\nname: asked\nscopes: [read]\nsecret: {sink: file, path: asked.key}\n",
    );
    let on_terminal = |answer: &str| {
        let command = format!("{} apply {}", keyward_bin().display(), specs.display());
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("KEYWARD_ENDPOINT", &server.base)
            .env("KEYWARD_API_KEY", &root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            format!("{answer}\n").as_bytes(),
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_terminal("no");
    assert!(shown.contains("Only 'yes' will be accepted"), "{shown}");
    assert!(
        shown.contains("Apply cancelled; nothing was changed"),
        "{shown}"
    );
    assert_eq!(key_by_name(&admin, "asked"), Value::Null);
    let shown = on_terminal("yes");
    assert!(shown.contains("Apply complete"), "{shown}");
    assert_eq!(key_by_name(&admin, "asked")["managed_by"], "spec");
    assert!(specs.join("asked.key").exists());
}
