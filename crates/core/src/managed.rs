//! What the server keeps for keys as code: who manages a key (`managed_by`), the generation of
//! its secret (`generation`), and the version the last apply left (`applied_version`). Never a
//! spec or a secret: `keyward plan` computes every plan from the live records.
//!
//! - **Drift** is a managed key whose `version` moved past its `applied_version`: someone
//!   changed it outside git (or outside Terraform).
//! - **An apply** is a write that names its manager: create, `PATCH` or regenerate with
//!   `managed_by` set. It records `applied_version` as the version the write produces, so the
//!   key is in step again.
//! - **Housekeeping** (a grace ending, an expiry marked or warned of) moves the version but is
//!   nobody's edit: a key that was in step stays in step.
//! - **Generation** starts at 1 and rises by one on every regeneration, or to the value a spec
//!   names; it never goes down, so raising it in git is a reviewed rotation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validation::FieldError;

/// The tool that manages a key; the API, the console and other tools leave it alone. `keyward
/// apply --prune` touches only `spec` keys, the Terraform provider only `terraform` ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// `keyward apply`, from spec files in git.
    Spec,
    /// The Terraform provider.
    Terraform,
}

impl Manager {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Spec => "spec",
            Self::Terraform => "terraform",
        }
    }
}

impl std::fmt::Display for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The generation of a key's first secret.
pub const FIRST_GENERATION: u64 = 1;
/// The largest generation a request may name (it fits every JSON number parser exactly).
pub const MAX_GENERATION: i64 = 1 << 53;

pub(crate) const fn first_generation() -> u64 {
    FIRST_GENERATION
}

/// A create's `generation` (absent: the first).
pub fn initial_generation(requested: Option<i64>) -> Result<u64, FieldError> {
    match requested {
        None => Ok(FIRST_GENERATION),
        Some(g @ 1..=MAX_GENERATION) => Ok(g.unsigned_abs()),
        Some(_) => Err(FieldError::new(
            "generation",
            format!("a whole number from 1 to {MAX_GENERATION}"),
        )),
    }
}

/// The generation a regeneration moves `current` to: the one requested, which must be higher,
/// or the next.
pub fn next_generation(current: u64, requested: Option<i64>) -> Result<u64, FieldError> {
    let Some(requested) = requested else {
        return Ok(current.saturating_add(1));
    };
    match u64::try_from(requested) {
        Ok(g) if g > current && requested <= MAX_GENERATION => Ok(g),
        _ => Err(FieldError::new(
            "generation",
            format!(
                "must rise above the key's generation {current} (at most {MAX_GENERATION}); \
                 leave it out to take the next"
            ),
        )),
    }
}

/// Whether a managed key changed outside its manager since the last apply.
pub fn drifted(version: u64, applied_version: Option<u64>, managed_by: Option<Manager>) -> bool {
    managed_by.is_some() && applied_version != Some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_only_rise() {
        assert_eq!(initial_generation(None), Ok(1));
        assert_eq!(initial_generation(Some(7)), Ok(7));
        assert!(initial_generation(Some(0)).is_err());
        assert_eq!(next_generation(3, None), Ok(4));
        assert_eq!(next_generation(3, Some(9)), Ok(9));
        for stale in [3, 2, -1] {
            let e = next_generation(3, Some(stale)).unwrap_err();
            assert!(e.message.contains("rise above the key's generation 3"));
        }
        assert!(next_generation(3, Some(MAX_GENERATION + 1)).is_err());
    }

    #[test]
    fn drift_is_a_managed_key_out_of_step() {
        assert!(!drifted(4, Some(4), Some(Manager::Spec)));
        assert!(drifted(5, Some(4), Some(Manager::Spec)));
        assert!(drifted(5, None, Some(Manager::Terraform)));
        assert!(!drifted(5, None, None), "an unmanaged key never drifts");
    }

    #[test]
    fn managers_read_as_the_spec_names_them() {
        let m: Manager = serde_json::from_str("\"terraform\"").unwrap();
        assert_eq!(m, Manager::Terraform);
        assert!(serde_json::from_str::<Manager>("\"Spec\"").is_err());
    }
}
