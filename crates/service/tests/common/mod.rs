//! What the service's test files share.

/// Generates, for each `async fn name(store: Arc<dyn Store>)`, a test per store:
/// `on_sqlite::name` (in memory) and `on_dynamodb::name` (a fresh table named after `$table` on
/// the DynamoDB Local that `./scripts/test` starts).
#[macro_export]
macro_rules! on_both_stores {
    ($table:literal; $($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(std::sync::Arc::new(keyward_store::SqliteStore::in_memory().unwrap())).await;
                }
            )*
        }
        mod on_dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(std::sync::Arc::new(
                        keyward_store::conformance::dynamodb_local($table).await,
                    ))
                    .await;
                }
            )*
        }
    };
}

/// Waits, if needed, until the current UTC minute has `left` seconds to run (for checks that
/// hold within one rate-limit window).
#[allow(dead_code)] // not every test file that shares this module counts within a minute
pub async fn with_seconds_left(left: i64) {
    let second = chrono::Utc::now().timestamp().rem_euclid(60);
    if 60 - second < left {
        let wait = u64::try_from((60 - second) * 1000 + 100).unwrap_or(0);
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    }
}
