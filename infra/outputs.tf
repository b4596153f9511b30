# What an operator needs after apply. No output holds a secret: the pepper's value is in
# neither the plan nor the state, and the first admin key is printed by the bootstrap, once.

locals {
  # The base URL clients use (KEYWARD_ENDPOINT): no trailing slash, the stage included for REST.
  api_url = (
    local.http ? trimsuffix(aws_apigatewayv2_stage.http[0].invoke_url, "/") :
    local.rest ? trimsuffix(aws_api_gateway_stage.rest[0].invoke_url, "/") :
    null
  )
}

output "api_type" {
  description = "The kind of API created: http, rest, or null when create_api is false."
  value       = var.create_api ? var.api_type : null
}

output "api_id" {
  description = "Id of the API Gateway API (HTTP or REST)."
  value       = local.http ? aws_apigatewayv2_api.http[0].id : local.rest ? aws_api_gateway_rest_api.rest[0].id : null
}

output "api_stage_arn" {
  description = "ARN of the API's stage (to attach a WAF web ACL, for example)."
  value       = local.http ? aws_apigatewayv2_stage.http[0].arn : local.rest ? aws_api_gateway_stage.rest[0].arn : null
}

output "management_api_url" {
  description = "Base URL of the management API: KEYWARD_ENDPOINT for `keyward keys ...`; the API is under /v1 and its OpenAPI document at /v1/openapi.json."
  value       = local.api_url
}

output "openapi_url" {
  description = "URL of the management API's OpenAPI document."
  value       = local.api_url == null ? null : "${local.api_url}/v1/openapi.json"
}

output "protected_sample_url" {
  description = "A URL of the sample route behind the authorizer (GET, with X-API-Key)."
  value       = local.api_url == null || !var.sample_route ? null : "${local.api_url}/sample/hello"
}

output "authorizer_function_arn" {
  description = "ARN of the authorizer function, to attach it to another API."
  value       = aws_lambda_function.this["authorizer"].arn
}

output "authorizer_invoke_arn" {
  description = "Invoke ARN of the authorizer: the authorizer_uri of an API Gateway authorizer."
  value       = aws_lambda_function.this["authorizer"].invoke_arn
}

output "authorizer_invoke_role_arn" {
  description = "ARN of a role API Gateway assumes to invoke the authorizer: the credentials of an authorizer on another API in this account."
  value       = aws_iam_role.authorizer_invoke.arn
}

output "rotator_function_arn" {
  description = "ARN of the rotator: the rotation function of Secrets Manager secrets holding opted-in keys (named under rotation_secret_prefix)."
  value       = aws_lambda_function.this["rotator"].arn
}

output "rotation_secret_prefix" {
  description = "Name prefix of the secrets the rotator may rotate."
  value       = local.rotation_secret_prefix
}

output "table_name" {
  description = "Name of the DynamoDB table (KEYWARD_STORE is dynamodb://<this>)."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "ARN of the DynamoDB table."
  value       = aws_dynamodb_table.this.arn
}

output "table_stream_arn" {
  description = "ARN of the table's stream (NEW_AND_OLD_IMAGES)."
  value       = aws_dynamodb_table.this.stream_arn
}

output "pepper_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the pepper (null when it is an SSM parameter). Its ARN only: never the value."
  value       = local.pepper_secret_arn
}

output "pepper_parameter_name" {
  description = "Name of the SSM parameter holding the pepper, when one was given."
  value       = var.pepper_parameter_name
}

output "function_names" {
  description = "Names of the four functions, by role: issuer, authorizer, rotator, aggregator."
  value       = { for f in local.functions : f => aws_lambda_function.this[f].function_name }
}

output "function_role_arns" {
  description = "ARNs of the functions' execution roles, by function."
  value       = { for f in local.functions : f => aws_iam_role.function[f].arn }
}

output "dead_letter_queue_urls" {
  description = "URLs of the dead-letter queues: aggregator (stream batches that kept failing) and rotator (failed sweeps)."
  value       = { for k, q in aws_sqs_queue.dlq : k => q.url }
}

output "event_bus_arn" {
  description = "ARN of the EventBridge bus receiving expiry warnings, if any."
  value       = local.event_bus_arn
}
