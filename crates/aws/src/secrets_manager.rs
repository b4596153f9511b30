//! The [`SecretVault`] of Secrets Manager rotation, on AWS Secrets Manager (feature
//! `secretsmanager`): the four calls the protocol needs, errors mapped once.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
use keyward_service::secret_rotation::{CURRENT, PENDING, SecretVault, VaultError, Version};

/// Secrets Manager, through one client.
#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: Client,
}

impl SecretsManager {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn failed<E: ProvideErrorMetadata + std::error::Error + 'static>(
    what: &str,
    e: aws_sdk_secretsmanager::error::SdkError<E>,
) -> VaultError {
    if e.code() == Some("ResourceNotFoundException") {
        VaultError::NotFound
    } else {
        VaultError::Failed(format!("{what}: {}", DisplayErrorContext(e)))
    }
}

#[async_trait]
impl SecretVault for SecretsManager {
    async fn value(
        &self,
        secret_id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Option<String>, VaultError> {
        match self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .set_version_id(version_id.map(str::to_owned))
            .set_version_stage(stage.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => Ok(out.secret_string),
            Err(e) => match failed("reading the secret", e) {
                VaultError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn put_pending(
        &self,
        secret_id: &str,
        version_id: &str,
        value: &str,
        rotation_token: Option<&str>,
    ) -> Result<(), VaultError> {
        self.client
            .put_secret_value()
            .secret_id(secret_id)
            .client_request_token(version_id)
            .secret_string(value)
            .version_stages(PENDING)
            .set_rotation_token(rotation_token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| failed("storing the pending version", e))?;
        Ok(())
    }

    async fn versions(&self, secret_id: &str) -> Result<Vec<Version>, VaultError> {
        let out = self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| failed("describing the secret", e))?;
        let versions = out
            .version_ids_to_stages
            .unwrap_or_default()
            .into_iter()
            .map(|(id, stages)| Version { id, stages })
            .collect();
        Ok(versions)
    }

    async fn promote(
        &self,
        secret_id: &str,
        version_id: &str,
        from: &str,
    ) -> Result<(), VaultError> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(CURRENT)
            .move_to_version_id(version_id)
            .remove_from_version_id(from)
            .send()
            .await
            .map_err(|e| failed("moving AWSCURRENT", e))?;
        Ok(())
    }
}
