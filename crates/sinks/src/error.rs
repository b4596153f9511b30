//! What can go wrong delivering a secret. Each message says what failed and what to do about
//! it, and none holds a secret: the file sink never quotes a file's content, and messages from
//! AWS pass through [`scrub`] before they are kept.

use std::fmt;
use std::io;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SinkError {
    #[error(
        "could not print the secret of key {key_name} to standard output: {source}; make it \
         writable (or name another sink) and regenerate the key"
    )]
    Stdout { key_name: String, source: io::Error },

    #[error("could not {action} {}: {source}; check the path and its permissions", path.display())]
    File {
        action: FileAction,
        path: PathBuf,
        source: io::Error,
    },

    #[error("{} already holds a different secret; move it away or name another path", path.display())]
    DifferentSecret { path: PathBuf },

    #[error("{} is {what}, not a regular file; name a file for the secret", path.display())]
    NotAFile { path: PathBuf, what: &'static str },

    #[error(
        "this keyward was built without the {sink} sink; use a build with the `{sink}` feature \
         (on by default) or name another sink"
    )]
    NotBuilt { sink: &'static str },

    #[error(
        "no AWS region is configured for the {sink} sink; set AWS_REGION (or a region in the AWS \
         profile in use)"
    )]
    NoRegion { sink: &'static str },

    #[error("could not start the runtime for AWS calls: {source}")]
    Runtime { source: io::Error },

    #[error(
        "the {sink} delivery to {target} stopped unexpectedly, so the secret may or may not be \
         stored; look at {target}, and regenerate the key if the secret is not there"
    )]
    Interrupted { sink: &'static str, target: String },

    /// An AWS call failed (boxed: it is the largest variant, and errors travel by value).
    #[error("{0}")]
    Aws(Box<AwsFailure>),
}

/// A failed AWS call: what was called on what, AWS's code and message (scrubbed of the
/// secret), and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{service} {operation} on {target} failed: {message}; {hint}")]
pub struct AwsFailure {
    pub service: &'static str,
    pub operation: &'static str,
    pub target: String,
    pub code: Option<String>,
    pub message: String,
    pub hint: String,
}

impl From<AwsFailure> for SinkError {
    fn from(failure: AwsFailure) -> Self {
        SinkError::Aws(Box::new(failure))
    }
}

/// The file operation that failed, as the message words it: "could not <action> <path>".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileAction {
    Inspect,
    Read,
    CreateDirectory,
    WriteTemporary,
    Replace,
    SetMode,
}

impl fmt::Display for FileAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileAction::Inspect => "inspect",
            FileAction::Read => "read",
            FileAction::CreateDirectory => "create the directory",
            FileAction::WriteTemporary => "write a temporary file in",
            FileAction::Replace => "move the new secret into place at",
            FileAction::SetMode => "set mode 0600 on",
        })
    }
}

/// `text` with every occurrence of `secret` replaced: for messages that come from elsewhere
/// (AWS) and could, in some validation error, echo what they were sent.
#[cfg_attr(
    not(any(feature = "aws-secretsmanager", feature = "aws-ssm")),
    allow(dead_code)
)]
pub(crate) fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_every_copy_of_the_secret() {
        let secret = "kw_live_AbCdEfGhIjKlMnOpQrStUvWxYz012345abcdef";
        let text = format!("Value '{secret}' at 'value' failed; again: {secret}.");
        let scrubbed = scrub(&text, secret);
        assert!(!scrubbed.contains(secret));
        assert_eq!(
            scrubbed,
            "Value '<redacted>' at 'value' failed; again: <redacted>."
        );
        assert_eq!(scrub("no secret here", ""), "no secret here");
    }
}
