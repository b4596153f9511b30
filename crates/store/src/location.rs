//! Where a deployment keeps its keys: `sqlite` (the embedded database in the data directory) or
//! `dynamodb://TABLE[?endpoint=URL&region=REGION]`.
//!
//! A location only names the place. The AWS configuration (credentials, region, retries) is
//! loaded once in each process's `main` and the client handed to
//! [`DynamoStore::new`](crate::DynamoStore::new).

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

/// A parsed `dynamodb://` store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoLocation {
    pub table: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl DynamoLocation {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("dynamodb://")
            .ok_or_else(|| format!("'{url}' is not a dynamodb://TABLE location"))?;
        let (table, query) = rest.split_once('?').unwrap_or((rest, ""));
        let valid_table = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid_table {
            return Err(format!(
                "'{table}' is not a DynamoDB table name (3 to 255 of letters, digits, '_', '-', '.')"
            ));
        }
        let mut location = Self {
            table: table.to_owned(),
            endpoint: None,
            region: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", v)) if v.starts_with("http://") || v.starts_with("https://") => {
                    location.endpoint = Some(v.to_owned());
                }
                Some(("region", v)) if !v.is_empty() => location.region = Some(v.to_owned()),
                _ => {
                    return Err(format!(
                        "unknown or malformed option '{pair}'; use endpoint=http(s)://... or region=..."
                    ));
                }
            }
        }
        Ok(location)
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

    #[test]
    fn locations_parse_and_bad_ones_say_why() {
        assert_eq!(
            DynamoLocation::parse(
                "dynamodb://keys?endpoint=http://localhost:8000&region=eu-west-1"
            ),
            Ok(DynamoLocation {
                table: "keys".into(),
                endpoint: Some("http://localhost:8000".into()),
                region: Some("eu-west-1".into()),
            })
        );
        assert_eq!(
            DynamoLocation::parse("dynamodb://keyward")
                .unwrap()
                .endpoint,
            None
        );
        for bad in [
            "sqlite",
            "dynamodb://",
            "dynamodb://a",
            "dynamodb://t t",
            "dynamodb://tab?x=1",
            "dynamodb://tab?endpoint=ftp://x",
        ] {
            assert!(DynamoLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
