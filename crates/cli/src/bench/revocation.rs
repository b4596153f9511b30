//! `keyward bench revocation`: how long a revocation made through one `keyward serve` (or
//! issuer) takes to be refused by another that shares its store.
//!
//! For each round: a key is made through `--endpoint` (the issuing side), verified through
//! `--verifier` until that side holds it in its cache, revoked through the issuing side, and then
//! verified through the verifier every `--poll-ms` until it answers 401. The delay is counted
//! from just before the revoke call is sent (so it includes that call: an upper bound) to the
//! first 401. The key's secret is only ever in this process's memory.

use std::time::{Duration, Instant};

use clap::Args;
use keyward_core::key::CreateKeyRequest;

use crate::connect::Connection;
use crate::error::CliError;

#[derive(Debug, Args)]
pub struct RevocationArgs {
    #[command(flatten)]
    connection: Connection,
    /// The other side's base URL: a `keyward serve` (or issuer) on the same store, whose
    /// `POST /v1/verify` is open.
    #[arg(long, value_name = "URL")]
    verifier: String,
    /// Revocations to time.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    revocations: u32,
    /// Pause between two verifications while waiting for the 401, in milliseconds.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// Give up on a round after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

/// The status `POST /v1/verify` answers for `token` on `base`.
fn verify_status(agent: &ureq::Agent, base: &str, token: &str) -> Result<u16, CliError> {
    let body = serde_json::json!({ "key": token });
    let url = format!("{}/v1/verify", base.trim_end_matches('/'));
    match agent.post(&url).send_json(&body) {
        Ok(r) => Ok(r.status().as_u16()),
        Err(ureq::Error::StatusCode(code)) => Ok(code),
        Err(e) => Err(CliError::Input(format!("{url}: {e}"))),
    }
}

pub fn run(args: &RevocationArgs) -> Result<(), CliError> {
    let client = args.connection.client()?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let run_id = keyward_core::id::new_id("rev").map_err(|e| CliError::Input(e.to_string()))?;
    let pause = Duration::from_millis(args.poll_ms);
    let timeout = Duration::from_secs(args.timeout_secs);
    let mut delays = Vec::new();
    for round in 0..args.revocations {
        let request: CreateKeyRequest = serde_json::from_value(serde_json::json!({
            "name": format!("bench-revocation-{run_id}-{round}"),
            "scopes": ["read"],
        }))
        .map_err(|e| CliError::Input(e.to_string()))?;
        let made = client.create_key(&request, None)?;
        let secret = made
            .secret
            .ok_or_else(|| CliError::Input("the key was made without a secret".into()))?;
        // Held in the verifier's cache: answered 200 several times over.
        let mut held = 0;
        let started = Instant::now();
        while held < 3 {
            match verify_status(&agent, &args.verifier, &secret)? {
                200 => held += 1,
                _ if started.elapsed() > timeout => {
                    return Err(CliError::Input(format!(
                        "{} never accepted the new key: is it on the same store?",
                        args.verifier
                    )));
                }
                _ => std::thread::sleep(pause),
            }
        }
        let revoked_at = Instant::now();
        client.revoke_key(&made.key.id, None)?;
        let delay = loop {
            match verify_status(&agent, &args.verifier, &secret)? {
                401 => break revoked_at.elapsed(),
                _ if revoked_at.elapsed() > timeout => {
                    return Err(CliError::Input(format!(
                        "{} still accepted a revoked key after {} s",
                        args.verifier, args.timeout_secs
                    )));
                }
                _ => std::thread::sleep(pause),
            }
        };
        println!(
            "revocation {:>3}: refused after {:>7.1} ms",
            round + 1,
            ms(delay)
        );
        delays.push(delay);
    }
    delays.sort();
    let median = delays[delays.len() / 2];
    let max = delays[delays.len() - 1];
    println!(
        "{} revocations: median {:.1} ms, max {:.1} ms (from before the revoke call to the first 401 on {})",
        delays.len(),
        ms(median),
        ms(max),
        args.verifier
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
