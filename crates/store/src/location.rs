//! Where a deployment keeps its keys: `sqlite` (the embedded database in the data directory) or
//! `dynamodb://TABLE[?endpoint=URL&region=REGION]`.

use crate::dynamodb::DynamoLocation;

/// The file name of the embedded database inside the data directory.
pub const SQLITE_FILE: &str = "keyward.db";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// SQLite in the data directory.
    Sqlite,
    Dynamo(DynamoLocation),
}

impl StoreLocation {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "sqlite" {
            Ok(Self::Sqlite)
        } else if s.starts_with("dynamodb://") {
            DynamoLocation::parse(s).map(Self::Dynamo)
        } else {
            Err("use 'sqlite' or 'dynamodb://TABLE[?endpoint=URL&region=REGION]'".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_name_one_of_the_two_stores() {
        assert_eq!(StoreLocation::parse("sqlite"), Ok(StoreLocation::Sqlite));
        assert!(matches!(
            StoreLocation::parse("dynamodb://keys"),
            Ok(StoreLocation::Dynamo(_))
        ));
        assert!(StoreLocation::parse("s3://x").is_err());
        assert!(StoreLocation::parse("dynamodb://").is_err());
    }
}
