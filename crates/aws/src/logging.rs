//! A function's log, set up as `lambda_runtime`'s `init_default_subscriber` sets it up (to
//! standard output, without time or target, JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`, at the level
//! `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` names, else INFO), with a lighter filter.
//!
//! Its `EnvFilter` compiles `RUST_LOG`'s directives with regular expressions; the regex engine
//! it links was some 320 KiB of the authorizer's machine code. [`Targets`] takes the directives
//! people set on a function, `level` and `target=level` (`RUST_LOG=info,keyward_service=debug`),
//! with the same precedence: `RUST_LOG`'s valid directives when there are any, else the level
//! alone.
//! Span and field directives (`target[span{field=value}]=level`) are ignored, with a note on
//! standard error, as invalid ones were.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the function's log subscriber; logs a note if one was already installed.
pub fn init() {
    let level_name = non_empty("AWS_LAMBDA_LOG_LEVEL").or_else(|| non_empty("RUST_LOG"));
    let filter = filter(level_name.as_deref(), non_empty("RUST_LOG").as_deref());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(std::io::stdout);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if json {
        registry.with(layer.json()).try_init()
    } else {
        registry.with(layer).try_init()
    };
    if let Err(e) = installed {
        tracing::warn!("the log was set up already: {e}");
    }
}

/// The filter for `level_name` (Lambda's level, or `RUST_LOG` read as one) and the `RUST_LOG`
/// directives.
fn filter(level_name: Option<&str>, directives: Option<&str>) -> Targets {
    let mut targets = Targets::new();
    let mut any = false;
    for directive in directives.unwrap_or_default().split(',') {
        let directive = directive.trim();
        if directive.is_empty() {
            continue;
        }
        match directive.parse::<Targets>() {
            Ok(parsed) if !directive.contains(['[', '{']) => {
                any = true;
                if let Some(level) = parsed.default_level() {
                    targets = targets.with_default(level);
                }
                targets = targets.with_targets(parsed);
            }
            _ => eprintln!("ignoring `{directive}`: not a `level` or `target=level` directive"),
        }
    }
    if any {
        return targets;
    }
    let level = level_name
        .and_then(|name| name.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    targets.with_default(level)
}

fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn enabled(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn the_level_comes_from_lambda_then_rust_log_then_info() {
        let f = filter(Some("debug"), None);
        assert!(enabled(&f, "keyward_service", Level::DEBUG));
        assert!(!enabled(&f, "keyward_service", Level::TRACE));

        let f = filter(None, None);
        assert!(enabled(&f, "any", Level::INFO));
        assert!(!enabled(&f, "any", Level::DEBUG));

        // Not a level: INFO, as before.
        let f = filter(Some("loud"), None);
        assert!(enabled(&f, "any", Level::INFO) && !enabled(&f, "any", Level::DEBUG));
    }

    #[test]
    fn rust_log_directives_win_over_the_level_as_env_filter_had_them() {
        let f = filter(Some("error"), Some("warn,keyward_service=debug"));
        assert!(enabled(&f, "keyward_service::engine", Level::DEBUG));
        assert!(enabled(&f, "hyper", Level::WARN));
        assert!(!enabled(&f, "hyper", Level::INFO));

        // A target alone: only that target logs.
        let f = filter(Some("info"), Some("keyward_aws=trace"));
        assert!(enabled(&f, "keyward_aws", Level::TRACE));
        assert!(!enabled(&f, "hyper", Level::ERROR));

        // Span filters and nonsense are skipped; nothing valid left means the level applies.
        let f = filter(Some("debug"), Some("keyward[verify{id=1}]=trace,=="));
        assert!(enabled(&f, "keyward", Level::DEBUG) && !enabled(&f, "keyward", Level::TRACE));
    }
}
