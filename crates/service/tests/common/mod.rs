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
