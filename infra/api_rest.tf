# api_type = "rest": a regional REST API on stage var.rest_stage_name.
#
#   ANY /v1/{proxy+}       -> issuer (Lambda proxy; the issuer takes the stage off the path)
#   /console, /console/*   -> issuer (the web console)
#   GET /healthz, /readyz  -> issuer
#   GET /sample/{proxy+}   -> authorizer (REQUEST, cache-safe), then a mock answering 200 with the
#                             key's id and account from the authorizer's context
#
# Every Deny becomes the ACCESS_DENIED gateway response (403); its body carries the
# authorizer's `code` and `retry_after`, so a RATE_LIMITED caller learns why and when to retry.
# A gateway response cannot choose its status by the context (its templates are not VTL), so a
# real 429 needs API Gateway usage plans (docs/usage-and-limits.md#answers).

locals {
  # $request.header.x-api-key -> method.request.header.x-api-key
  rest_identity_source = join(",", [for s in var.authorizer_identity_sources : replace(s, "$request.header.", "method.request.header.")])
}

resource "aws_api_gateway_rest_api" "rest" {
  count = local.rest ? 1 : 0

  name        = var.name
  description = "keyward: the management API and a sample route behind the keyward authorizer"
  endpoint_configuration {
    types = ["REGIONAL"]
  }
  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "v1" {
  count = local.rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  parent_id   = aws_api_gateway_rest_api.rest[0].root_resource_id
  path_part   = "v1"
}

resource "aws_api_gateway_resource" "v1_proxy" {
  count = local.rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  parent_id   = aws_api_gateway_resource.v1[0].id
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_resource" "console" {
  count = local.rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  parent_id   = aws_api_gateway_rest_api.rest[0].root_resource_id
  path_part   = "console"
}

resource "aws_api_gateway_resource" "console_proxy" {
  count = local.rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  parent_id   = aws_api_gateway_resource.console[0].id
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_resource" "probe" {
  for_each = local.rest ? toset(["healthz", "readyz"]) : toset([])

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  parent_id   = aws_api_gateway_rest_api.rest[0].root_resource_id
  path_part   = each.key
}

locals {
  # Method -> resource id and HTTP method, for the issuer's routes.
  rest_issuer_methods = local.rest ? {
    v1            = { resource_id = aws_api_gateway_resource.v1_proxy[0].id, http_method = "ANY" }
    console       = { resource_id = aws_api_gateway_resource.console[0].id, http_method = "GET" }
    console_pages = { resource_id = aws_api_gateway_resource.console_proxy[0].id, http_method = "ANY" }
    healthz       = { resource_id = aws_api_gateway_resource.probe["healthz"].id, http_method = "GET" }
    readyz        = { resource_id = aws_api_gateway_resource.probe["readyz"].id, http_method = "GET" }
  } : {}
}

resource "aws_api_gateway_method" "issuer" {
  #checkov:skip=CKV_AWS_59:The management API authenticates every call itself (an admin key, or the key in the body of /v1/verify), the console by its own sign-in; /healthz and /readyz are public probes.
  #checkov:skip=CKV2_AWS_53:The issuer parses and checks every request body itself and answers problem documents with per-field errors.
  for_each = local.rest_issuer_methods

  rest_api_id   = aws_api_gateway_rest_api.rest[0].id
  resource_id   = each.value.resource_id
  http_method   = each.value.http_method
  authorization = "NONE"
}

resource "aws_api_gateway_integration" "issuer" {
  for_each = local.rest_issuer_methods

  rest_api_id             = aws_api_gateway_rest_api.rest[0].id
  resource_id             = each.value.resource_id
  http_method             = aws_api_gateway_method.issuer[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = aws_lambda_function.this["issuer"].invoke_arn
}

resource "aws_api_gateway_authorizer" "keyward" {
  count = local.rest ? 1 : 0

  rest_api_id    = aws_api_gateway_rest_api.rest[0].id
  name           = "keyward"
  type           = "REQUEST"
  authorizer_uri = aws_lambda_function.this["authorizer"].invoke_arn
  # With cache-safe answers a policy covers every route for the key; the address is in the
  # cache key for keys limited to some.
  identity_source = var.cache_safe_answers ? "${local.rest_identity_source},context.identity.sourceIp" : local.rest_identity_source
  # The revocation bound less the functions' own (main.tf).
  authorizer_result_ttl_in_seconds = local.authorizer_ttl
}

resource "aws_api_gateway_gateway_response" "access_denied" {
  count = local.rest ? 1 : 0

  rest_api_id   = aws_api_gateway_rest_api.rest[0].id
  response_type = "ACCESS_DENIED"
  status_code   = "403"
  response_templates = {
    "application/json" = "{\"code\": \"$context.authorizer.code\", \"retry_after\": \"$context.authorizer.retry_after\", \"message\": $context.error.messageString}"
  }
}

resource "aws_api_gateway_resource" "sample" {
  count = local.rest && var.sample_route ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  parent_id   = aws_api_gateway_rest_api.rest[0].root_resource_id
  path_part   = "sample"
}

resource "aws_api_gateway_resource" "sample_proxy" {
  count = local.rest && var.sample_route ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  parent_id   = aws_api_gateway_resource.sample[0].id
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_method" "sample" {
  #checkov:skip=CKV2_AWS_53:A GET without a body, answered by a mock.
  count = local.rest && var.sample_route ? 1 : 0

  rest_api_id   = aws_api_gateway_rest_api.rest[0].id
  resource_id   = aws_api_gateway_resource.sample_proxy[0].id
  http_method   = "GET"
  authorization = "CUSTOM"
  authorizer_id = aws_api_gateway_authorizer.keyward[0].id
}

resource "aws_api_gateway_integration" "sample" {
  count = local.rest && var.sample_route ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  resource_id = aws_api_gateway_resource.sample_proxy[0].id
  http_method = aws_api_gateway_method.sample[0].http_method
  type        = "MOCK"
  request_templates = {
    "application/json" = "{\"statusCode\": 200}"
  }
}

resource "aws_api_gateway_method_response" "sample" {
  count = local.rest && var.sample_route ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  resource_id = aws_api_gateway_resource.sample_proxy[0].id
  http_method = aws_api_gateway_method.sample[0].http_method
  status_code = "200"
}

resource "aws_api_gateway_integration_response" "sample" {
  count = local.rest && var.sample_route ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  resource_id = aws_api_gateway_resource.sample_proxy[0].id
  http_method = aws_api_gateway_method.sample[0].http_method
  status_code = aws_api_gateway_method_response.sample[0].status_code
  response_templates = {
    "application/json" = "{\"ok\": true, \"key_id\": \"$context.authorizer.key_id\", \"account\": \"$context.authorizer.account\"}"
  }

  depends_on = [aws_api_gateway_integration.sample]
}

resource "aws_api_gateway_deployment" "rest" {
  count = local.rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id

  # A new deployment whenever a route, integration, authorizer or response changes: what is
  # hashed is the configuration, never attributes the service fills in on read.
  triggers = {
    redeployment = sha1(jsonencode({
      resources = [for r in concat(aws_api_gateway_resource.v1_proxy, aws_api_gateway_resource.console_proxy, values(aws_api_gateway_resource.probe), aws_api_gateway_resource.sample_proxy) : r.id]
      issuer    = { for k, i in aws_api_gateway_integration.issuer : k => [i.id, i.uri] }
      authorizer = [for a in aws_api_gateway_authorizer.keyward : [
        a.id, a.authorizer_uri, a.identity_source, a.authorizer_result_ttl_in_seconds,
      ]]
      access_denied = [for g in aws_api_gateway_gateway_response.access_denied : [g.status_code, g.response_templates]]
      sample = [for i in aws_api_gateway_integration.sample : [
        i.id, i.request_templates, aws_api_gateway_method.sample[0].authorizer_id,
        aws_api_gateway_integration_response.sample[0].response_templates,
      ]]
    }))
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [
    aws_api_gateway_integration.issuer,
    aws_api_gateway_integration.sample,
    aws_api_gateway_integration_response.sample,
    aws_api_gateway_gateway_response.access_denied,
  ]
}

resource "aws_api_gateway_stage" "rest" {
  #checkov:skip=CKV_AWS_120:Caching would replay answers past a revocation; keyward's own cache keeps verification cheap.
  #checkov:skip=CKV_AWS_73:X-Ray tracing is not wired into the functions.
  #checkov:skip=CKV2_AWS_29:A WAF web ACL is the operator's choice and cost; attach one to the stage ARN (output api_stage_arn).
  #checkov:skip=CKV2_AWS_51:Callers authenticate with API keys, not client certificates.
  #checkov:skip=CKV2_AWS_4:Execution logging needs the account's API Gateway CloudWatch role; access logs (var.api_access_logs) record every request once that role is set.
  count = local.rest ? 1 : 0

  rest_api_id   = aws_api_gateway_rest_api.rest[0].id
  deployment_id = aws_api_gateway_deployment.rest[0].id
  stage_name    = var.rest_stage_name

  dynamic "access_log_settings" {
    for_each = local.api_access_logs ? [aws_cloudwatch_log_group.api[0].arn] : []
    content {
      destination_arn = access_log_settings.value
      format          = local.access_log_format
    }
  }

  tags = var.tags
}

resource "aws_lambda_permission" "rest_issuer" {
  count = local.rest ? 1 : 0

  statement_id  = "AllowRestApiIssuer"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["issuer"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.rest[0].execution_arn}/*/*"
}

resource "aws_lambda_permission" "rest_authorizer" {
  count = local.rest ? 1 : 0

  statement_id  = "AllowRestApiAuthorizer"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["authorizer"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.rest[0].execution_arn}/authorizers/${aws_api_gateway_authorizer.keyward[0].id}"
}
