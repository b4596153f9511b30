//! How a command reaches a deployment's management API: its URL, and the admin key, which
//! comes from the environment or a file and never from a flag (a flag's value shows in the
//! process list and in shell history). Every command that talks to the API flattens
//! [`Connection`] into its arguments.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use keyward_client::Client;

use crate::error::CliError;

/// The variable that holds the admin API key.
pub const API_KEY_ENV: &str = "KEYWARD_API_KEY";

/// The largest API key file read; a key is 46 characters.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Where the management API is, and where its admin key comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The management API's base URL: `keyward serve`'s, or the issuer's API Gateway stage URL
    /// (such as https://abc123.execute-api.eu-west-1.amazonaws.com/prod).
    #[arg(
        long,
        env = "KEYWARD_ENDPOINT",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub endpoint: String,

    /// A file holding the admin API key (a key with `admin` on `keys/**`; whitespace around it
    /// is ignored). Without it, the key is read from the KEYWARD_API_KEY environment variable.
    /// No flag takes the key itself: it would show in the process list and shell history.
    #[arg(long, env = "KEYWARD_API_KEY_FILE", value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
}

impl Connection {
    /// A client of the endpoint with the admin key, or a message saying what is missing.
    pub fn client(&self) -> Result<Client, CliError> {
        let key = api_key(self.api_key_file.as_deref(), std::env::var_os(API_KEY_ENV))?;
        Ok(Client::new(&self.endpoint, key)?)
    }
}

/// The key from `file` when one is named, else from the variable's value `env`.
fn api_key(file: Option<&Path>, env: Option<OsString>) -> Result<String, CliError> {
    if let Some(path) = file {
        return read_key_file(path);
    }
    match env {
        Some(value) => {
            let value = value.into_string().map_err(|_| {
                CliError::Input(format!(
                    "{API_KEY_ENV} is not valid text; set it to the API key"
                ))
            })?;
            let key = value.trim();
            if key.is_empty() {
                return Err(CliError::Input(format!(
                    "{API_KEY_ENV} is empty; set it to an admin API key, or pass --api-key-file PATH"
                )));
            }
            Ok(key.to_owned())
        }
        None => Err(CliError::Input(format!(
            "no admin API key: set {API_KEY_ENV}, or pass --api-key-file PATH (a file holding the key). The first `keyward serve` prints a root admin key once"
        ))),
    }
}

fn read_key_file(path: &Path) -> Result<String, CliError> {
    let io = |source| CliError::Io {
        action: "read the API key file",
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let shown = path.display();
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_KEY_FILE_BYTES {
        return Err(CliError::Input(format!(
            "the API key file {shown} is larger than {MAX_KEY_FILE_BYTES} bytes; it should hold only the key"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        CliError::Input(format!(
            "the API key file {shown} is not text; it should hold only the key"
        ))
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(CliError::Input(format!(
            "the API key file {shown} is empty"
        )));
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed check panics

    use super::*;

    #[test]
    fn the_key_comes_from_the_file_first_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "  kw_test_fromfile\n").unwrap();
        assert_eq!(
            api_key(Some(&file), Some("kw_test_fromenv".into())).unwrap(),
            "kw_test_fromfile"
        );
        assert_eq!(
            api_key(None, Some(" kw_test_fromenv ".into())).unwrap(),
            "kw_test_fromenv"
        );
    }

    #[test]
    fn a_missing_or_empty_key_says_where_to_put_one() {
        let e = api_key(None, None).unwrap_err().to_string();
        assert!(
            e.contains("KEYWARD_API_KEY") && e.contains("--api-key-file"),
            "{e}"
        );
        let e = api_key(None, Some("  ".into())).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = api_key(Some(&empty), None).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = api_key(Some(&dir.path().join("absent")), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("read the API key file"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, "k".repeat(5000)).unwrap();
        let e = api_key(Some(&big), None).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}
