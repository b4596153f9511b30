//! The `aws-secretsmanager` sink: the secret as a new version (`AWSCURRENT`) of a Secrets
//! Manager secret, the secret created when it does not exist yet.
//!
//! `PutSecretValue` comes first, since after the first delivery the secret exists; a
//! `ResourceNotFoundException` leads to `CreateSecret` (with a description and the tags
//! `keyward:key-id` and `keyward:managed-by`), and a `ResourceExistsException` there (another
//! process created it meanwhile) back to `PutSecretValue`. An ARN can only name an existing
//! secret, so a missing one is reported rather than created under a name that is an ARN.
//! The secret's encryption key is the account's default (`aws/secretsmanager`).

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::types::Tag;

use crate::aws::{Aws, description, failure, tags};
use crate::error::AwsFailure;
use crate::{Delivery, Receipt, SECRETS_MANAGER, SinkError};

const SERVICE: &str = "Secrets Manager";

pub(crate) fn deliver(
    aws: &Aws,
    secret_id: &str,
    delivery: &Delivery<'_>,
) -> Result<Receipt, SinkError> {
    aws.run(
        SECRETS_MANAGER,
        secret_id,
        store(&aws.secrets_manager, secret_id, delivery),
    )?
}

async fn store(
    client: &Client,
    secret_id: &str,
    delivery: &Delivery<'_>,
) -> Result<Receipt, SinkError> {
    match put(client, secret_id, delivery).await {
        Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => {}
        done => return done.map_err(|e| put_failure(secret_id, delivery, &e)),
    }
    if secret_id.starts_with("arn:") {
        return Err(AwsFailure {
            service: SERVICE,
            operation: "PutSecretValue",
            target: secret_id.to_owned(),
            code: Some("ResourceNotFoundException".to_owned()),
            message: "no secret has this ARN".to_owned(),
            hint: "create the secret first, or name it by a plain name (e.g. keyward/ci) so \
                   keyward creates it"
                .to_owned(),
        }
        .into());
    }
    let created = client
        .create_secret()
        .name(secret_id)
        .description(description(delivery))
        .secret_string(delivery.secret)
        .set_tags(Some(
            tags(delivery)
                .into_iter()
                .map(|(key, value)| Tag::builder().key(key).value(value).build())
                .collect(),
        ))
        .send()
        .await;
    match created {
        Ok(out) => Ok(Receipt {
            description: format!(
                "stored in new Secrets Manager secret {secret_id} (version {})",
                out.version_id().unwrap_or("unknown")
            ),
        }),
        Err(SdkError::ServiceError(e)) if e.err().is_resource_exists_exception() => {
            put(client, secret_id, delivery)
                .await
                .map_err(|e| put_failure(secret_id, delivery, &e))
        }
        Err(e) => Err(create_failure(secret_id, delivery, &e)),
    }
}

type PutError = SdkError<
    aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError,
    aws_sdk_secretsmanager::config::http::HttpResponse,
>;

/// A new version of an existing secret, staged `AWSCURRENT`.
async fn put(
    client: &Client,
    secret_id: &str,
    delivery: &Delivery<'_>,
) -> Result<Receipt, PutError> {
    let out = client
        .put_secret_value()
        .secret_id(secret_id)
        .secret_string(delivery.secret)
        .send()
        .await?;
    Ok(Receipt {
        description: format!(
            "stored in Secrets Manager secret {secret_id} (version {})",
            out.version_id().unwrap_or("unknown")
        ),
    })
}

fn put_failure(secret_id: &str, delivery: &Delivery<'_>, err: &PutError) -> SinkError {
    failure(
        SERVICE,
        "PutSecretValue",
        secret_id,
        "secretsmanager:PutSecretValue",
        delivery.secret,
        err,
    )
    .into()
}

fn create_failure(
    secret_id: &str,
    delivery: &Delivery<'_>,
    err: &SdkError<CreateSecretError, aws_sdk_secretsmanager::config::http::HttpResponse>,
) -> SinkError {
    failure(
        SERVICE,
        "CreateSecret",
        secret_id,
        "secretsmanager:CreateSecret and secretsmanager:TagResource",
        delivery.secret,
        err,
    )
    .into()
}
