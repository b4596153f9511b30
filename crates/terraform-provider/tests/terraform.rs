//! The provider under the real `terraform`, loaded with `dev_overrides`, against a `keyward
//! serve`: plan, apply, an empty second plan, an in-place change, drift after an API edit,
//! `terraform import`, a rotation by raising `generation`, a key deleted outside Terraform,
//! and destroy. Secrets land in a 0600 file and in Secrets Manager (moto); after every step the
//! state file and the saved plan are searched for every secret and for the admin key, and hold
//! none. Skipped, saying why, where `terraform` or moto is absent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed check panics

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use keyward_e2e::{Server, moto_call};
use serde_json::{Value, json};

struct Terraform {
    dir: PathBuf,
    cli_config: PathBuf,
    endpoint: String,
    admin_key: String,
    moto: String,
}

impl Terraform {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("terraform")
            .args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("KEYWARD_ENDPOINT", &self.endpoint)
            .env("KEYWARD_API_KEY", &self.admin_key)
            .env("AWS_ENDPOINT_URL", &self.moto)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .env_remove("TF_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs and expects `code`, answering the output.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "terraform {}:\n{text}",
            args.join(" ")
        );
        text
    }

    /// `plan -out`, answering the plan's exit code (0 nothing to do, 2 changes) and output.
    fn plan(&self, code: i32) -> String {
        self.expect(
            code,
            &[
                "plan",
                "-input=false",
                "-no-color",
                "-detailed-exitcode",
                "-out=tfplan",
            ],
        )
    }

    fn apply_plan(&self) -> String {
        self.expect(
            0,
            &[
                "apply",
                "-input=false",
                "-no-color",
                "-auto-approve",
                "tfplan",
            ],
        )
    }

    fn write(&self, main_tf: &str) {
        std::fs::write(self.dir.join("main.tf"), main_tf).unwrap();
    }

    /// The state file and the saved plan (as `terraform show -json` reads it, and its raw
    /// bytes) hold none of `secrets`.
    fn assert_no_secret(&self, secrets: &[String], step: &str) {
        let mut haystacks = vec![(
            "terraform.tfstate",
            std::fs::read(self.dir.join("terraform.tfstate")).unwrap_or_default(),
        )];
        if self.dir.join("tfplan").exists() {
            haystacks.push(("tfplan", std::fs::read(self.dir.join("tfplan")).unwrap()));
            let shown = self.expect(0, &["show", "-json", "-no-color", "tfplan"]);
            assert!(shown.contains("\"resource_changes\""), "{shown}");
            haystacks.push(("terraform show -json tfplan", shown.into_bytes()));
        }
        for (name, bytes) in &haystacks {
            for secret in secrets.iter().chain([&self.admin_key]) {
                assert!(
                    !keyward_e2e::contains_bytes(bytes, secret.as_bytes()),
                    "{step}: a secret is in {name}"
                );
            }
            assert!(!holds_token(bytes), "{step}: a token is in {name}");
        }
    }

    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("terraform.tfstate")).unwrap()).unwrap()
    }

    /// The state's attributes of `address` (`keyward_api_key.ci`).
    fn attributes(&self, address: &str) -> Value {
        let (kind, name) = address.split_once('.').unwrap();
        self.state()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == kind && r["name"] == name && r["mode"] == "managed")
            .map(|r| r["instances"][0]["attributes"].clone())
            .unwrap_or(Value::Null)
    }
}

/// `text` with every run of spaces made one (Terraform aligns the `=` of a block).
fn squeezed(text: &str) -> String {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `bytes` hold a whole token (`kw_live_` and 38 base62 characters, the scanners'
/// pattern); a key's `start` is the prefix and 4 of them.
fn holds_token(bytes: &[u8]) -> bool {
    bytes.windows(8 + 39).any(|w| {
        w.starts_with(b"kw_live_")
            && w[8..46].iter().all(u8::is_ascii_alphanumeric)
            && !w[46].is_ascii_alphanumeric()
    })
}

const PLATFORM: &str = "keyward_sharing_group.platform.name";
const BOTH: &str = "keyward_sharing_group.platform.name, keyward_sharing_group.ops.name";

/// The test's configuration: `ci_scopes` and `ci_groups` are HCL list items.
fn config(run: &str, ci_scopes: &str, ci_groups: &str, ci_generation: u32, extra: &str) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    keyward = {{ source = "keyward/keyward" }}
  }}
}}

provider "keyward" {{}}

resource "keyward_sharing_group" "platform" {{
  name        = "platform-team"
  description = "Owns what CI creates"
}}

resource "keyward_sharing_group" "ops" {{
  name = "ops"
}}

resource "keyward_preset" "runner" {{
  name   = "ci-runner"
  scopes = ["agent:executor", "project:viewer"]
}}

resource "keyward_api_key" "ci" {{
  name                  = "ci-nightly"
  description           = "Nightly evals from CI"
  preset                = keyward_preset.runner.name
  scopes                = [{ci_scopes}]
  workspaces            = ["ws_1"]
  groups                = [{ci_groups}]
  allowed_cidrs         = ["10.0.0.0/8"]
  rate_limit_per_minute = 120
  expires_at            = "2030-06-30T00:00:00Z"
  metadata              = {{ team = "platform" }}
  generation            = {ci_generation}
  grace_period_seconds  = 3600
  secret = {{
    sink = "file"
    path = "${{path.module}}/secrets/ci-nightly.key"
  }}
}}

resource "keyward_api_key" "deploy" {{
  name   = "deploy-bot"
  scopes = ["agent:editor"]
  secret = {{
    sink      = "aws-secretsmanager"
    secret_id = "keyward/tf-{run}"
  }}
}}

data "keyward_api_key" "ci" {{
  name = keyward_api_key.ci.name
}}

data "keyward_presets" "all" {{
  depends_on = [keyward_preset.runner]
}}

output "ci_requests" {{
  value = data.keyward_api_key.ci.request_count
}}

output "presets" {{
  value = length(data.keyward_presets.all.presets)
}}
{extra}"#
    )
}

fn verifies(admin: &keyward_e2e::Client, secret: &str) -> bool {
    admin
        .verify(secret, json!({"source_ip": "10.1.2.3"}))
        .json()["valid"]
        == true
}

fn secrets_manager(moto: &str, id: &str) -> String {
    moto_call(
        moto,
        "secretsmanager",
        "secretsmanager.GetSecretValue",
        &json!({"SecretId": id}),
    )["SecretString"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_terraform-provider-keyward"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Run by hand, the binary says what it is and stops; it never listens.
#[test]
fn the_provider_refuses_to_run_outside_terraform() {
    let out = Command::new(env!("CARGO_BIN_EXE_terraform-provider-keyward"))
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on the protocol's channel");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plugin for Terraform"), "{err}");
}

/// The worked example next to the stack module (infra/examples/keys) is valid against the
/// provider's real schema, and formatted.
#[test]
fn the_infra_example_validates_against_the_schema() {
    if Command::new("terraform").arg("version").output().is_err() {
        eprintln!(
            "skipped: terraform is not on the PATH (CONVENTIONS.md says where it comes from)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/examples/keys/main.tf");
    std::fs::copy(&example, tmp.path().join("main.tf")).unwrap();
    let cli_config = tmp.path().join("cli.tfrc");
    write_cli_config(&cli_config);
    let tf = Terraform {
        dir: tmp.path().to_path_buf(),
        cli_config,
        endpoint: "http://127.0.0.1:9".into(),
        admin_key: "unused".into(),
        moto: "http://127.0.0.1:9".into(),
    };
    tf.expect(0, &["fmt", "-check", "-no-color"]);
    let out = tf.expect(0, &["validate", "-no-color"]);
    assert!(out.contains("The configuration is valid"), "{out}");
}

/// A CLI configuration loading the provider built beside this test, without a registry.
fn write_cli_config(path: &Path) {
    std::fs::write(
        path,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"registry.terraform.io/keyward/keyward\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            provider_dir().display()
        ),
    )
    .unwrap();
}

#[test]
fn terraform_manages_keys_with_no_secret_in_state_or_plan() {
    if Command::new("terraform").arg("version").output().is_err() {
        eprintln!(
            "skipped: terraform is not on the PATH (CONVENTIONS.md says where it comes from)"
        );
        return;
    }
    let Ok(moto) = std::env::var("KEYWARD_TEST_MOTO_ENDPOINT") else {
        eprintln!("skipped: KEYWARD_TEST_MOTO_ENDPOINT is not set (./scripts/test starts moto)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &tmp.path().join("serve.log"), &[]);
    let root = server.root_key().unwrap();
    let admin = server.client().with_key(&root);
    let dir = tmp.path().join("tf");
    std::fs::create_dir_all(&dir).unwrap();
    let cli_config = tmp.path().join("cli.tfrc");
    write_cli_config(&cli_config);
    let tf = Terraform {
        dir: dir.clone(),
        cli_config,
        endpoint: server.base.clone(),
        admin_key: root.clone(),
        moto: moto.clone(),
    };
    let run = std::process::id().to_string();
    let sm_id = format!("keyward/tf-{run}");
    let mut secrets: Vec<String> = Vec::new();

    // 0. Invalid settings are refused before anything is made, in the API's own words and at
    //    their attribute.
    let bad = config(&run, r#""nope:x""#, PLATFORM, 1, "")
        .replace("rate_limit_per_minute = 120", "rate_limit_per_minute = 0")
        .replace(r#"sink = "file""#, r#"sink = "stdout""#);
    tf.write(&bad);
    let refused = tf.expect(1, &["plan", "-input=false", "-no-color"]);
    for expected in [
        "Invalid scopes[0]",
        "Invalid rate_limit_per_minute",
        "no stdout sink",
        "with keyward_api_key.ci",
    ] {
        assert!(
            refused.contains(expected),
            "{expected} missing from:\n{refused}"
        );
    }
    assert!(
        admin.get("/v1/groups").json()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // 1. A first plan creates all four, and holds no secret.
    tf.write(&config(&run, r#""read:projects/*""#, PLATFORM, 1, ""));
    let shown = tf.plan(2);
    assert!(
        shown.contains("Plan: 5 to add, 0 to change, 0 to destroy"),
        "{shown}"
    );
    assert!(
        shown.contains("keyward_api_key.ci will be created"),
        "{shown}"
    );
    tf.assert_no_secret(&secrets, "first plan");

    // 2. Apply: the secrets land in a 0600 file and in Secrets Manager, and verify.
    tf.apply_plan();
    let file = dir.join("secrets/ci-nightly.key");
    let ci_secret = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let deploy_secret = secrets_manager(&moto, &sm_id);
    assert!(verifies(&admin, &ci_secret));
    assert!(verifies(&admin, &deploy_secret));
    secrets.extend([ci_secret.clone(), deploy_secret.clone()]);
    tf.assert_no_secret(&secrets, "apply");
    let ci = tf.attributes("keyward_api_key.ci");
    let ci_id = ci["id"].as_str().unwrap().to_owned();
    assert!(ci_secret.starts_with(ci["start"].as_str().unwrap()));
    assert!(ci_secret.ends_with(ci["last4"].as_str().unwrap()));
    let live = admin.get(&format!("/v1/keys/{ci_id}")).json();
    assert_eq!(live["managed_by"], "terraform");
    assert_eq!(live["applied_version"], live["version"]);
    let scopes: Vec<&str> = live["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scope"].as_str().unwrap())
        .collect();
    assert_eq!(
        scopes,
        ["agent:executor", "project:viewer", "read:projects/*"]
    );
    assert_eq!(live["rate_limit_per_minute"], 120);
    assert_eq!(live["groups"].as_array().unwrap().len(), 1);

    // 3. Nothing to do: the second plan answers 0.
    tf.plan(0);
    tf.assert_no_secret(&secrets, "second plan");

    // 4. A scope and a group added in the configuration are an update in place.
    tf.write(&config(&run, r#""read:projects/*", "agents""#, BOTH, 1, ""));
    let shown = tf.plan(2);
    assert!(
        shown.contains("keyward_api_key.ci will be updated in-place"),
        "{shown}"
    );
    assert!(
        shown.contains("Plan: 0 to add, 1 to change, 0 to destroy"),
        "{shown}"
    );
    tf.apply_plan();
    let live = admin.get(&format!("/v1/keys/{ci_id}")).json();
    assert_eq!(live["id"], ci_id.as_str());
    let ops_id = tf.attributes("keyward_sharing_group.ops")["id"].clone();
    assert!(
        live["groups"].as_array().unwrap().contains(&ops_id),
        "{live}"
    );
    assert_eq!(live["groups"].as_array().unwrap().len(), 2);
    assert!(
        live["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["scope"] == "agents")
    );
    assert!(verifies(&admin, &ci_secret), "an update keeps the secret");
    tf.plan(0);
    tf.assert_no_secret(&secrets, "in-place update");

    // 5. Drift: an edit through the API shows in the plan (the refreshed value against the
    //    configuration's), and apply restores the config.
    let edited = admin.patch(
        &format!("/v1/keys/{ci_id}"),
        &json!({"rate_limit_per_minute": 30}),
        None,
    );
    assert_eq!(edited.status, 200, "{}", edited.text);
    let shown = tf.plan(2);
    assert!(
        squeezed(&shown).contains("rate_limit_per_minute = 30 -> 120"),
        "{shown}"
    );
    tf.apply_plan();
    let live = admin.get(&format!("/v1/keys/{ci_id}")).json();
    assert_eq!(live["rate_limit_per_minute"], 120);
    assert_eq!(live["applied_version"], live["version"]);
    tf.plan(0);

    // 6. Import: a key made through the API is taken over (managed_by becomes terraform at
    //    the next apply); a key spec files manage is refused.
    let (by_hand_id, by_hand_secret) =
        admin.create_key(&json!({"name": "by-hand", "scopes": ["read"]}));
    secrets.push(by_hand_secret.clone());
    let imported = r#"
resource "keyward_api_key" "by_hand" {
  name       = "by-hand"
  scopes     = ["read"]
  on_destroy = "delete"
  secret = {
    sink = "file"
    path = "${path.module}/secrets/by-hand.key"
  }
}
"#;
    tf.write(&config(
        &run,
        r#""read:projects/*", "agents""#,
        BOTH,
        1,
        imported,
    ));
    tf.expect(
        0,
        &[
            "import",
            "-input=false",
            "-no-color",
            "keyward_api_key.by_hand",
            &by_hand_id,
        ],
    );
    let shown = tf.plan(2);
    assert!(
        shown.contains("keyward_api_key.by_hand will be updated in-place"),
        "{shown}"
    );
    assert!(shown.contains("\"terraform\""), "{shown}");
    tf.apply_plan();
    let live = admin.get(&format!("/v1/keys/{by_hand_id}")).json();
    assert_eq!(live["managed_by"], "terraform");
    assert!(verifies(&admin, &by_hand_secret), "import keeps the secret");
    tf.plan(0);
    tf.assert_no_secret(&secrets, "import");
    let spec_key = admin.post(
        "/v1/keys",
        &json!({"name": "from-git", "scopes": ["read"], "managed_by": "spec"}),
    );
    assert_eq!(spec_key.status, 201, "{}", spec_key.text);
    let spec_id = spec_key.json()["key"]["id"].as_str().unwrap().to_owned();
    secrets.push(spec_key.json()["secret"].as_str().unwrap().to_owned());
    let spec_block = r#"
resource "keyward_api_key" "spec" {
  name   = "from-git"
  scopes = ["read"]
}
"#;
    tf.write(&config(
        &run,
        r#""read:projects/*", "agents""#,
        BOTH,
        1,
        &format!("{imported}{spec_block}"),
    ));
    let refused = tf.expect(
        1,
        &[
            "import",
            "-input=false",
            "-no-color",
            "keyward_api_key.spec",
            &spec_id,
        ],
    );
    assert!(
        refused.contains("managed by spec files (keyward apply)"),
        "{refused}"
    );
    assert!(tf.attributes("keyward_api_key.spec").is_null());

    // 6b. `active = false` deactivates in place (its secret stops verifying); removing it
    //     reactivates.
    let deactivated = imported.replace(
        r#"on_destroy = "delete""#,
        "on_destroy = \"delete\"\n  active     = false",
    );
    tf.write(&config(
        &run,
        r#""read:projects/*", "agents""#,
        BOTH,
        1,
        &deactivated,
    ));
    let shown = tf.plan(2);
    assert!(
        shown.contains("active") && shown.contains("true -> false"),
        "{shown}"
    );
    tf.apply_plan();
    assert_eq!(
        admin.get(&format!("/v1/keys/{by_hand_id}")).json()["status"],
        "inactive"
    );
    assert!(!verifies(&admin, &by_hand_secret));
    tf.plan(0);
    tf.write(&config(
        &run,
        r#""read:projects/*", "agents""#,
        BOTH,
        1,
        imported,
    ));
    let shown = tf.plan(2);
    assert!(shown.contains("false -> true"), "{shown}");
    tf.apply_plan();
    assert!(verifies(&admin, &by_hand_secret));

    // 7. Rotation: raising generation regenerates into the file; both secrets verify in the
    //    grace, and state holds only the new start and last4.
    tf.write(&config(
        &run,
        r#""read:projects/*", "agents""#,
        BOTH,
        2,
        imported,
    ));
    let shown = tf.plan(2);
    assert!(
        shown.contains("generation") && shown.contains("1 -> 2"),
        "{shown}"
    );
    tf.apply_plan();
    let rotated = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_ne!(rotated, ci_secret);
    secrets.push(rotated.clone());
    assert!(verifies(&admin, &rotated));
    assert!(
        verifies(&admin, &ci_secret),
        "the old secret keeps its grace"
    );
    let ci = tf.attributes("keyward_api_key.ci");
    assert!(rotated.ends_with(ci["last4"].as_str().unwrap()));
    assert_eq!(ci["generation"], 2);
    assert!(ci["previous_secret_expires_at"].is_string());
    tf.plan(0);
    tf.assert_no_secret(&secrets, "rotation");

    // 8. A key revoked outside Terraform is gone: the plan makes it again, into a new
    //    version of its secret.
    let deploy_id = tf.attributes("keyward_api_key.deploy")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = admin.post(&format!("/v1/keys/{deploy_id}/revoke"), &json!({}));
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let shown = tf.plan(2);
    assert!(
        shown.contains("keyward_api_key.deploy will be created"),
        "{shown}"
    );
    tf.apply_plan();
    let again = secrets_manager(&moto, &sm_id);
    assert_ne!(again, deploy_secret);
    assert!(verifies(&admin, &again));
    secrets.push(again);
    tf.assert_no_secret(&secrets, "re-create");

    // 9. Destroy revokes the keys (or deletes, as asked) and removes the group and the preset.
    tf.expect(
        0,
        &["destroy", "-input=false", "-no-color", "-auto-approve"],
    );
    assert_eq!(
        admin.get(&format!("/v1/keys/{ci_id}")).json()["status"],
        "revoked"
    );
    // on_destroy = "delete" removes the record too.
    assert_eq!(admin.get(&format!("/v1/keys/{by_hand_id}")).status, 404);
    assert!(!verifies(&admin, &rotated));
    let groups = admin.get("/v1/groups").json();
    assert!(groups["items"].as_array().unwrap().is_empty(), "{groups}");
    tf.assert_no_secret(&secrets, "destroy");
    let log = std::fs::read_to_string(tmp.path().join("serve.log")).unwrap();
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret in the server's log"
        );
    }
}

/// With the API down, a plan fails at once with a message naming the endpoint, and changes
/// nothing in the state.
#[test]
fn an_unreachable_api_is_a_clear_error() {
    if Command::new("terraform").arg("version").output().is_err() {
        eprintln!(
            "skipped: terraform is not on the PATH (CONVENTIONS.md says where it comes from)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &tmp.path().join("serve.log"), &[]);
    let root = server.root_key().unwrap();
    let dir = tmp.path().join("tf");
    std::fs::create_dir_all(&dir).unwrap();
    let cli_config = tmp.path().join("cli.tfrc");
    write_cli_config(&cli_config);
    let tf = Terraform {
        dir,
        cli_config,
        endpoint: server.base.clone(),
        admin_key: root,
        moto: "http://127.0.0.1:9".into(),
    };
    tf.write(
        r#"terraform {
  required_providers {
    keyward = { source = "keyward/keyward" }
  }
}

provider "keyward" {}

resource "keyward_sharing_group" "team" {
  name = "team"
}
"#,
    );
    tf.expect(0, &["apply", "-input=false", "-no-color", "-auto-approve"]);
    let before = std::fs::read(tf.dir.join("terraform.tfstate")).unwrap();
    server.stop();
    let started = std::time::Instant::now();
    let out = tf.expect(1, &["plan", "-input=false", "-no-color"]);
    assert!(out.contains("keyward API: reading sharing group"), "{out}");
    assert!(out.contains(&tf.endpoint), "{out}");
    eprintln!(
        "plan with the API down failed after {:?}",
        started.elapsed()
    );
    assert_eq!(
        std::fs::read(tf.dir.join("terraform.tfstate")).unwrap(),
        before
    );
}
