# api_type = "http": an HTTP API on its $default stage (auto-deployed: no deployment resource,
# which moto does not implement for HTTP APIs either).
#
#   ANY /v1/{proxy+}       -> issuer (payload 2.0; the management API authenticates its own admin keys)
#   /console, /console/*   -> issuer (the web console: its own sign-in and sessions)
#   GET /healthz, /readyz  -> issuer
#   GET /sample/{proxy+}   -> authorizer (REQUEST, payload 2.0, simple responses, cache-safe), then
#                             var.sample_upstream_url or this API's /healthz

resource "aws_apigatewayv2_api" "http" {
  count = local.http ? 1 : 0

  name          = var.name
  description   = "keyward: the management API and a sample route behind the keyward authorizer"
  protocol_type = "HTTP"
  tags          = var.tags
}

resource "aws_apigatewayv2_stage" "http" {
  count = local.http ? 1 : 0

  api_id      = aws_apigatewayv2_api.http[0].id
  name        = "$default"
  auto_deploy = true

  dynamic "access_log_settings" {
    for_each = local.api_access_logs ? [aws_cloudwatch_log_group.api[0].arn] : []
    content {
      destination_arn = access_log_settings.value
      format          = local.access_log_format
    }
  }

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "issuer" {
  count = local.http ? 1 : 0

  api_id                 = aws_apigatewayv2_api.http[0].id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.this["issuer"].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 29000
}

resource "aws_apigatewayv2_route" "issuer" {
  #checkov:skip=CKV_AWS_309:The management API authenticates every call itself (an admin key, or the key in the body of /v1/verify), the console by its own sign-in; /healthz and /readyz are public probes.
  for_each = local.http ? toset(["ANY /v1/{proxy+}", "GET /console", "ANY /console/{proxy+}", "GET /healthz", "GET /readyz"]) : toset([])

  api_id    = aws_apigatewayv2_api.http[0].id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.issuer[0].id}"
}

resource "aws_apigatewayv2_authorizer" "keyward" {
  count = local.http ? 1 : 0

  api_id                            = aws_apigatewayv2_api.http[0].id
  name                              = "keyward"
  authorizer_type                   = "REQUEST"
  authorizer_uri                    = aws_lambda_function.this["authorizer"].invoke_arn
  authorizer_payload_format_version = "2.0"
  enable_simple_responses           = true
  # With cache-safe answers, an answer is cached per key, route, path and address: the
  # authorizer refuses to allow a request whose identity sources miss one.
  identity_sources = concat(var.authorizer_identity_sources, var.cache_safe_answers ? ["$context.routeKey", "$context.path", "$context.identity.sourceIp"] : [])
  # The revocation bound less the functions' own (main.tf).
  authorizer_result_ttl_in_seconds = local.authorizer_ttl
}

resource "aws_apigatewayv2_integration" "sample" {
  count = local.http && var.sample_route ? 1 : 0

  api_id             = aws_apigatewayv2_api.http[0].id
  integration_type   = "HTTP_PROXY"
  integration_method = "GET"
  integration_uri    = coalesce(var.sample_upstream_url, "${aws_apigatewayv2_api.http[0].api_endpoint}/healthz")

  # The key stays here; the backend gets who called instead.
  request_parameters = {
    "remove:header.x-api-key"               = "''"
    "overwrite:header.x-keyward-key-id"     = "$context.authorizer.key_id"
    "overwrite:header.x-keyward-account"    = "$context.authorizer.account"
    "overwrite:header.x-keyward-principal"  = "$context.authorizer.principal"
    "overwrite:header.x-keyward-workspaces" = "$context.authorizer.workspaces"
    "overwrite:header.x-keyward-scopes"     = "$context.authorizer.scopes"
    "overwrite:header.x-keyward-groups"     = "$context.authorizer.groups"
  }
}

resource "aws_apigatewayv2_route" "sample" {
  count = local.http && var.sample_route ? 1 : 0

  api_id             = aws_apigatewayv2_api.http[0].id
  route_key          = "GET /sample/{proxy+}"
  authorization_type = "CUSTOM"
  authorizer_id      = aws_apigatewayv2_authorizer.keyward[0].id
  target             = "integrations/${aws_apigatewayv2_integration.sample[0].id}"
}

resource "aws_lambda_permission" "http_issuer" {
  count = local.http ? 1 : 0

  statement_id  = "AllowHttpApiIssuer"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["issuer"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http[0].execution_arn}/*/*"
}

resource "aws_lambda_permission" "http_authorizer" {
  count = local.http ? 1 : 0

  statement_id  = "AllowHttpApiAuthorizer"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["authorizer"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http[0].execution_arn}/authorizers/${aws_apigatewayv2_authorizer.keyward[0].id}"
}
