//! The `aws-ssm` sink: the secret as an SSM Parameter Store `SecureString` (encrypted with the
//! account's default key, `aws/ssm`), created or overwritten by one `PutParameter`.
//!
//! SSM refuses tags on a `PutParameter` that overwrites, so the tags `keyward:key-id` and
//! `keyward:managed-by` follow with `AddTagsToResource` (which replaces same-named tags, so a
//! rerun is harmless). The secret is stored by then: a tagging failure is told in the receipt
//! rather than reported as a failed delivery, which would send the caller to regenerate a key
//! whose secret already arrived.

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterType, ResourceTypeForTagging, Tag};

use crate::aws::{Aws, description, failure, tags};
use crate::{Delivery, Receipt, SSM, SinkError};

const SERVICE: &str = "SSM";

pub(crate) fn deliver(
    aws: &Aws,
    parameter: &str,
    delivery: &Delivery<'_>,
) -> Result<Receipt, SinkError> {
    aws.run(SSM, parameter, store(&aws.ssm, parameter, delivery))?
}

async fn store(
    client: &Client,
    parameter: &str,
    delivery: &Delivery<'_>,
) -> Result<Receipt, SinkError> {
    let out = client
        .put_parameter()
        .name(parameter)
        .value(delivery.secret)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .description(description(delivery))
        .send()
        .await
        .map_err(|e| {
            failure(
                SERVICE,
                "PutParameter",
                parameter,
                "ssm:PutParameter (and kms:Encrypt with the parameter's key)",
                delivery.secret,
                &e,
            )
        })?;
    let mut description = format!(
        "stored in SSM parameter {parameter} (SecureString, version {})",
        out.version()
    );
    if let Err(problem) = add_tags(client, parameter, delivery).await {
        description.push_str(&format!(
            "; its tags keyward:key-id and keyward:managed-by were not set ({problem}): allow \
             ssm:AddTagsToResource to have them set on the next delivery"
        ));
    }
    Ok(Receipt { description })
}

/// Tags the parameter; an error answers a short, secret-free reason.
async fn add_tags(client: &Client, parameter: &str, delivery: &Delivery<'_>) -> Result<(), String> {
    let tags = tags(delivery)
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    client
        .add_tags_to_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id(parameter)
        .set_tags(Some(tags))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            failure(
                SERVICE,
                "AddTagsToResource",
                parameter,
                "ssm:AddTagsToResource",
                delivery.secret,
                &e,
            )
            .message
        })
}
