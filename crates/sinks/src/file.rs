//! The `file` sink: the secret, and a newline, in a file only its owner can read.
//!
//! - Never world-readable, even briefly: the secret is written to a temporary file created
//!   with mode 0600 in the same directory, fsynced, then renamed over the path (a rename within
//!   one directory is atomic, so a reader sees the old file or the whole new one). Missing
//!   parent directories are created with mode 0700.
//! - A rerun is harmless: a file already holding this secret is left as it is (its mode
//!   tightened to 0600 if it was looser).
//! - Nothing else is lost: an existing file is overwritten only when it holds the secret being
//!   replaced (it parses as a token with the `start` and `last4` of [`Delivery::replaces`]);
//!   anything else is refused and left untouched. A path that did not exist is claimed with a
//!   rename that refuses to replace, so a file that appears meanwhile is judged, not clobbered.
//! - Errors name the path and never quote what a file holds.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use keyward_core::token::{MAX_TOKEN_LEN, Token};

use crate::{Delivery, FileAction, Fingerprint, Receipt, SinkError};

/// The most of an existing file that is read to judge it: a token with room for whitespace.
/// A longer file holds something else, so it is refused without reading the rest.
const MAX_EXISTING_LEN: u64 = (MAX_TOKEN_LEN as u64) * 4;

pub(crate) fn deliver(path: &Path, delivery: &Delivery<'_>) -> Result<Receipt, SinkError> {
    match inspect(path, delivery)? {
        Existing::Same { mode } => keep(path, mode),
        Existing::Different => Err(SinkError::DifferentSecret {
            path: path.to_owned(),
        }),
        Existing::Absent => write(path, delivery, None),
        Existing::Replaced(old) => write(path, delivery, Some(old)),
    }
}

/// Whether a delivery to `path` would be refused, checked before anything is made: the path
/// must be absent or hold the secret `replaces` names (a regeneration).
pub(crate) fn check(path: &Path, replaces: Option<Fingerprint<'_>>) -> Result<(), SinkError> {
    // A secret no file can hold (a token never contains a NUL), so only absence or the
    // replaced secret pass.
    let probe = Delivery {
        key_id: "",
        key_name: "",
        secret: "\0",
        replaces,
    };
    match inspect(path, &probe)? {
        Existing::Absent | Existing::Replaced(_) => Ok(()),
        Existing::Same { .. } | Existing::Different => Err(SinkError::DifferentSecret {
            path: path.to_owned(),
        }),
    }
}

/// What the path holds now.
enum Existing<'a> {
    Absent,
    /// This very secret (a rerun), with the file's permission bits.
    Same {
        mode: u32,
    },
    /// The secret this delivery replaces.
    Replaced(Fingerprint<'a>),
    /// Anything else: another secret, another content, or too much to be a secret.
    Different,
}

fn inspect<'a>(path: &Path, delivery: &Delivery<'a>) -> Result<Existing<'a>, SinkError> {
    let io_error = |action| {
        move |source| SinkError::File {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(e) => return Err(io_error(FileAction::Inspect)(e)),
    };
    let kind = meta.file_type();
    // A symbolic link is refused rather than followed or replaced: the rename would swap the
    // link for a file, and following it would write where the spec does not say.
    let not_a_file = if kind.is_symlink() {
        Some("a symbolic link")
    } else if kind.is_dir() {
        Some("a directory")
    } else if !kind.is_file() {
        Some("a special file")
    } else {
        None
    };
    if let Some(what) = not_a_file {
        return Err(SinkError::NotAFile {
            path: path.to_owned(),
            what,
        });
    }

    let mut held = Vec::new();
    fs::File::open(path)
        .and_then(|file| file.take(MAX_EXISTING_LEN + 1).read_to_end(&mut held))
        .map_err(io_error(FileAction::Read))?;
    let held = match std::str::from_utf8(&held) {
        Ok(text) if (text.len() as u64) <= MAX_EXISTING_LEN => text.trim(),
        _ => return Ok(Existing::Different),
    };
    if held == delivery.secret {
        return Ok(Existing::Same {
            mode: mode_of(&meta),
        });
    }
    match delivery.replaces {
        Some(old) if holds(held, &old) => Ok(Existing::Replaced(old)),
        _ => Ok(Existing::Different),
    }
}

/// Whether `held` is a token with `old`'s start and last 4 characters.
fn holds(held: &str, old: &Fingerprint<'_>) -> bool {
    Token::parse(held).is_ok_and(|token| token.start() == old.start && token.last4() == old.last4)
}

/// A rerun: the file already holds the secret. Only a loose mode is corrected.
fn keep(path: &Path, mode: u32) -> Result<Receipt, SinkError> {
    let shown = path.display();
    if mode & 0o077 == 0 {
        return Ok(Receipt {
            description: format!("{shown} already holds this secret; left as it is"),
        });
    }
    set_owner_only(path).map_err(|source| SinkError::File {
        action: FileAction::SetMode,
        path: path.to_owned(),
        source,
    })?;
    Ok(Receipt {
        description: format!(
            "{shown} already holds this secret; its mode was {mode:04o}, now 0600"
        ),
    })
}

/// Writes the secret to a new 0600 file and renames it to `path`: over the file holding
/// `replacing`, or, when the path was free, only if it still is.
fn write(
    path: &Path,
    delivery: &Delivery<'_>,
    replacing: Option<Fingerprint<'_>>,
) -> Result<Receipt, SinkError> {
    let Some(name) = path.file_name() else {
        return Err(SinkError::NotAFile {
            path: path.to_owned(),
            what: "a directory name",
        });
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let created = create_dirs(&dir)?;

    let temp_error = |source| SinkError::File {
        action: FileAction::WriteTemporary,
        path: dir.clone(),
        source,
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut temp = owner_only_temp(&mut tempfile::Builder::new())
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(temp_error)?;
    temp.write_all(delivery.secret.as_bytes())
        .and_then(|()| temp.write_all(b"\n"))
        .and_then(|()| temp.as_file().sync_all())
        .map_err(temp_error)?;

    let replace_error = |source| SinkError::File {
        action: FileAction::Replace,
        path: path.to_owned(),
        source,
    };
    let replaced = match replacing {
        Some(old) => {
            temp.persist(path).map_err(|e| replace_error(e.error))?;
            Some(old)
        }
        None => match temp.persist_noclobber(path) {
            Ok(_) => None,
            // The path was taken since it was inspected: judge what is there now.
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                match inspect(path, delivery)? {
                    Existing::Same { mode } => return keep(path, mode),
                    Existing::Replaced(old) => {
                        e.file.persist(path).map_err(|e| replace_error(e.error))?;
                        Some(old)
                    }
                    Existing::Absent | Existing::Different => {
                        return Err(SinkError::DifferentSecret {
                            path: path.to_owned(),
                        });
                    }
                }
            }
            Err(e) => return Err(replace_error(e.error)),
        },
    };
    // The rename is durable once the directory is synced. The secret is already in place
    // either way, so a failure here (some file systems refuse to sync a directory) is not
    // reported as a failed delivery.
    let _ = fs::File::open(&dir).and_then(|d| d.sync_all());

    let mut description = format!("written to {} (mode 0600)", path.display());
    if let Some(old) = replaced {
        description.push_str(&format!(", replacing the secret {old}"));
    }
    if let Some(top) = created {
        description.push_str(&format!(", in new directory {} (mode 0700)", top.display()));
    }
    Ok(Receipt { description })
}

/// Creates `dir` and its missing parents with mode 0700; answers the topmost one it created.
fn create_dirs(dir: &Path) -> Result<Option<PathBuf>, SinkError> {
    let mut top = None;
    for ancestor in dir.ancestors() {
        if ancestor.as_os_str().is_empty() || ancestor.exists() {
            break;
        }
        top = Some(ancestor.to_owned());
    }
    if top.is_none() {
        return Ok(None);
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    owner_only_dir(&mut builder)
        .create(dir)
        .map_err(|source| SinkError::File {
            action: FileAction::CreateDirectory,
            path: dir.to_owned(),
            source,
        })?;
    Ok(top)
}

#[cfg(unix)]
fn owner_only_temp<'a, 'b>(
    builder: &'b mut tempfile::Builder<'a, 'a>,
) -> &'b mut tempfile::Builder<'a, 'a> {
    use std::os::unix::fs::PermissionsExt;
    builder.permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn owner_only_temp<'a, 'b>(
    builder: &'b mut tempfile::Builder<'a, 'a>,
) -> &'b mut tempfile::Builder<'a, 'a> {
    builder
}

#[cfg(unix)]
fn owner_only_dir(builder: &mut fs::DirBuilder) -> &mut fs::DirBuilder {
    use std::os::unix::fs::DirBuilderExt;
    builder.mode(0o700)
}

#[cfg(not(unix))]
fn owner_only_dir(builder: &mut fs::DirBuilder) -> &mut fs::DirBuilder {
    builder
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn mode_of(_: &fs::Metadata) -> u32 {
    0o600
}

#[cfg(unix)]
fn set_owner_only(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_owner_only(_: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

    use std::os::unix::fs::PermissionsExt;

    use keyward_core::token::Prefix;

    use super::*;

    fn token() -> Token {
        Token::generate(&Prefix::live()).unwrap()
    }

    fn delivery<'a>(secret: &'a Token, replaces: Option<Fingerprint<'a>>) -> Delivery<'a> {
        Delivery {
            key_id: "key_1",
            key_name: "ci-nightly",
            secret: secret.expose(),
            replaces,
        }
    }

    struct Print {
        start: String,
        last4: String,
    }

    impl Print {
        fn of(token: &Token) -> Self {
            Print {
                start: token.start(),
                last4: token.last4(),
            }
        }
        fn fingerprint(&self) -> Fingerprint<'_> {
            Fingerprint {
                start: &self.start,
                last4: &self.last4,
            }
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Every entry of `dir`, so a test sees a temporary file left behind.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_new_file_holds_the_secret_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci.key");
        let secret = token();
        let receipt = deliver(&path, &delivery(&secret, None)).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", secret.expose())
        );
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            receipt.description,
            format!("written to {} (mode 0600)", path.display())
        );
        assert_eq!(entries(dir.path()), ["ci.key"], "no temporary file is left");
    }

    #[test]
    fn missing_parent_directories_are_created_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/team/ci.key");
        let secret = token();
        let receipt = deliver(&path, &delivery(&secret, None)).unwrap();
        assert_eq!(mode(&dir.path().join("secrets")), 0o700);
        assert_eq!(mode(&dir.path().join("secrets/team")), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert!(
            receipt.description.contains(&format!(
                "in new directory {} (mode 0700)",
                dir.path().join("secrets").display()
            )),
            "{receipt}"
        );
    }

    #[test]
    fn a_rerun_with_the_same_secret_changes_nothing_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci.key");
        let secret = token();
        deliver(&path, &delivery(&secret, None)).unwrap();
        let before = fs::metadata(&path).unwrap();
        let receipt = deliver(&path, &delivery(&secret, None)).unwrap();
        assert!(
            receipt.description.contains("already holds this secret"),
            "{receipt}"
        );
        let after = fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(before.ino(), after.ino(), "the file was not rewritten");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", secret.expose())
        );
    }

    #[test]
    fn a_rerun_tightens_a_loose_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci.key");
        let secret = token();
        fs::write(&path, secret.expose()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let receipt = deliver(&path, &delivery(&secret, None)).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert!(
            receipt.description.contains("was 0644, now 0600"),
            "{receipt}"
        );
    }

    #[test]
    fn a_regeneration_overwrites_the_secret_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci.key");
        let old = token();
        deliver(&path, &delivery(&old, None)).unwrap();
        let new = token();
        let print = Print::of(&old);
        let receipt = deliver(&path, &delivery(&new, Some(print.fingerprint()))).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", new.expose())
        );
        assert_eq!(mode(&path), 0o600);
        assert!(
            receipt.description.ends_with(&format!(
                "replacing the secret {}…{}",
                print.start, print.last4
            )),
            "{receipt}"
        );
        assert!(!receipt.description.contains(old.expose()));
        assert_eq!(entries(dir.path()), ["ci.key"]);
    }

    #[test]
    fn the_check_before_a_key_is_made_passes_only_what_delivery_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci.key");
        assert!(check(&path, None).is_ok(), "absent");
        let old = token();
        fs::write(&path, format!("{}\n", old.expose())).unwrap();
        let print = Print::of(&old);
        assert!(
            check(&path, Some(print.fingerprint())).is_ok(),
            "the replaced secret"
        );
        let unrelated = Print::of(&token());
        for replaces in [None, Some(unrelated.fingerprint())] {
            let err = check(&path, replaces).unwrap_err();
            assert!(matches!(err, SinkError::DifferentSecret { .. }), "{err:?}");
        }
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", old.expose())
        );
    }

    #[test]
    fn a_different_secret_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci.key");
        let other = token();
        fs::write(&path, format!("{}\n", other.expose())).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let new = token();
        let unrelated = Print::of(&token());
        for replaces in [None, Some(unrelated.fingerprint())] {
            let err = deliver(&path, &delivery(&new, replaces)).unwrap_err();
            assert!(matches!(err, SinkError::DifferentSecret { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "{} already holds a different secret; move it away or name another path",
                    path.display()
                )
            );
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                format!("{}\n", other.expose())
            );
            assert_eq!(mode(&path), 0o640, "not even the mode changes");
            assert_eq!(entries(dir.path()), ["ci.key"], "no temporary file is left");
        }
    }

    #[test]
    fn content_that_is_not_a_token_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let new = token();
        let old = Print::of(&token());
        // Looks like the old secret by its ends but is not a token (bad checksum), a token
        // inside other text, binary data, and a long file.
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "tampered",
                format!("{}{}{}", old.start, "A".repeat(30), old.last4).into_bytes(),
            ),
            (
                "env",
                format!("KEY={}AAAA{}\n", old.start, old.last4).into_bytes(),
            ),
            ("binary", vec![0xff, 0xfe, 0x00, 0x01]),
            ("long", vec![b'a'; 10_000]),
        ];
        for (name, content) in cases {
            let path = dir.path().join(name);
            fs::write(&path, &content).unwrap();
            let err = deliver(&path, &delivery(&new, Some(old.fingerprint()))).unwrap_err();
            assert!(
                matches!(err, SinkError::DifferentSecret { .. }),
                "{name}: {err:?}"
            );
            assert_eq!(fs::read(&path).unwrap(), content, "{name} is untouched");
        }
    }

    #[test]
    fn a_directory_or_a_symlink_at_the_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = token();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let err = deliver(&sub, &delivery(&secret, None)).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a directory, not a regular file"),
            "{err}"
        );

        let target = dir.path().join("real.key");
        fs::write(&target, secret.expose()).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = deliver(&link, &delivery(&secret, None)).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn no_error_message_holds_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let new = token();
        let held = token();
        let old = Print::of(&held);
        let mut errors = Vec::new();

        let taken = dir.path().join("taken.key");
        fs::write(&taken, held.expose()).unwrap();
        errors.push(deliver(&taken, &delivery(&new, None)).unwrap_err());
        let other = token();
        let other_path = dir.path().join("other.key");
        fs::write(&other_path, other.expose()).unwrap();
        errors.push(deliver(&other_path, &delivery(&new, Some(old.fingerprint()))).unwrap_err());
        // A parent that is a file: the directory cannot be created.
        let blocker = dir.path().join("blocker");
        fs::write(&blocker, held.expose()).unwrap();
        errors.push(deliver(&blocker.join("ci.key"), &delivery(&new, None)).unwrap_err());
        // A directory that refuses writes (root ignores modes, so only check when it refuses).
        let locked = dir.path().join("locked");
        fs::create_dir(&locked).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();
        if let Err(err) = deliver(&locked.join("ci.key"), &delivery(&new, None)) {
            errors.push(err);
        }
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();

        assert!(errors.len() >= 3);
        for err in &errors {
            for text in [err.to_string(), format!("{err:?}")] {
                for secret in [&new, &held, &other] {
                    assert!(!text.contains(secret.expose()), "{text}");
                }
            }
        }
        assert!(
            errors[2].to_string().starts_with(&format!(
                "could not inspect {}: Not a directory",
                blocker.join("ci.key").display()
            )),
            "{}",
            errors[2]
        );
    }

    #[test]
    fn an_empty_path_is_refused() {
        let secret = token();
        let err = deliver(Path::new(""), &delivery(&secret, None)).unwrap_err();
        assert!(matches!(err, SinkError::NotAFile { .. }), "{err:?}");
    }
}
