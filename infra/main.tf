# keyward in one AWS account: the single table, the four functions (issuer, authorizer,
# rotator, aggregator) with a role each, the pepper's secret, the management API with a
# sample route behind the authorizer (HTTP API or REST API), the aggregator's stream mapping,
# the rotator's schedule and its Secrets Manager permission. README.md describes every input
# and output, what lands in the state, and what moto could not check.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  functions  = ["issuer", "authorizer", "rotator", "aggregator"]
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  table_name = coalesce(var.table_name, var.name)

  # cargo lambda's layout (target/lambda/<function>/bootstrap.zip), or one path per function.
  zips = {
    for f in local.functions : f => lookup(
      var.lambda_zips, f,
      var.lambda_zip_dir == null ? null : "${var.lambda_zip_dir}/${f}/bootstrap.zip",
    )
  }

  function_defaults = {
    issuer     = { memory_size = 512, timeout = 29 } # API Gateway waits 29 s at most
    authorizer = { memory_size = 256, timeout = 10 } # a decision needs the store within 5 s
    rotator    = { memory_size = 256, timeout = 300 }
    aggregator = { memory_size = 256, timeout = 60 }
  }
  function_settings = {
    for f in local.functions : f => {
      memory_size          = coalesce(try(var.functions[f].memory_size, null), local.function_defaults[f].memory_size)
      timeout              = coalesce(try(var.functions[f].timeout, null), local.function_defaults[f].timeout)
      reserved_concurrency = try(coalesce(var.functions[f].reserved_concurrency, -1), -1)
    }
  }

  # The pepper: a secret the module creates, an existing secret, or an existing SecureString.
  create_pepper_secret = var.pepper_secret_arn == null && var.pepper_parameter_name == null
  pepper_secret_arn    = local.create_pepper_secret ? aws_secretsmanager_secret.pepper[0].arn : var.pepper_secret_arn
  pepper_parameter_arn = var.pepper_parameter_name == null ? null : "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${trimprefix(var.pepper_parameter_name, "/")}"
  pepper_environment = (
    local.pepper_secret_arn != null
    ? { KEYWARD_PEPPER_SECRET = local.pepper_secret_arn }
    : { KEYWARD_PEPPER_PARAMETER = var.pepper_parameter_name }
  )

  rotation_secret_prefix = coalesce(var.rotation_secret_prefix, "${var.name}/")
  rotation_secret_arns   = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${local.rotation_secret_prefix}*"
  event_bus_arn          = var.create_event_bus ? aws_cloudwatch_event_bus.this[0].arn : var.event_bus_arn

  store = { KEYWARD_STORE = "dynamodb://${local.table_name}" }
  # The revocation bound, end to end: the functions follow changes within a second (or the
  # whole bound, if shorter), and API Gateway may keep the authorizer's answers for the rest.
  engine_bound_ms = min(var.revocation_bound_ms, 1000)
  authorizer_ttl  = var.cache_safe_answers ? floor((var.revocation_bound_ms - local.engine_bound_ms) / 1000) : 0
  deployment = {
    KEYWARD_PREFIX              = var.token_prefix
    KEYWARD_ACCOUNT             = var.account
    KEYWARD_REVOCATION_BOUND_MS = tostring(local.engine_bound_ms)
  }
  route_policy = (
    var.route_policy_file != null
    ? { KEYWARD_ROUTE_POLICY_FILE = var.route_policy_file }
    : { KEYWARD_ROUTE_POLICY = jsonencode(jsondecode(var.route_policy)) }
  )
  # The module's own settings come last: var.environment cannot replace them.
  environment = {
    issuer = merge(var.environment, local.store, local.deployment, local.pepper_environment, {
      KEYWARD_MANAGEMENT_RATE_LIMIT = tostring(var.management_rate_limit)
      KEYWARD_VERIFY_ACCESS         = var.verify_access
    })
    authorizer = merge(var.environment, local.store, local.deployment, local.pepper_environment, local.route_policy, {
      # The HTTP API authorizer below is configured for simple responses.
      KEYWARD_HTTP_API_RESPONSE  = "simple"
      KEYWARD_CACHE_SAFE_ANSWERS = var.cache_safe_answers ? "on" : "off"
    })
    rotator = merge(var.environment, local.store, local.deployment, local.pepper_environment, {
      KEYWARD_EXPIRY_WARNING_HOURS = tostring(var.expiry_warning_hours)
      KEYWARD_ROTATION_GRACE_HOURS = tostring(var.rotation_grace_hours)
      }, local.event_bus_arn == null ? {} : {
      KEYWARD_EVENT_BUS = local.event_bus_arn
    })
    # The aggregator needs no pepper: it only rolls usage records up.
    aggregator = merge(var.environment, local.store)
  }

  http            = var.create_api && var.api_type == "http"
  rest            = var.create_api && var.api_type == "rest"
  api_access_logs = var.create_api && coalesce(var.api_access_logs, var.api_type == "http")
}

# --- the table (crates/store/src/dynamodb/table.rs, docs/dynamodb.md) ----------------------

resource "aws_dynamodb_table" "this" {
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  stream_enabled              = true
  stream_view_type            = "NEW_AND_OLD_IMAGES"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "gsi1pk"
    type = "S"
  }
  attribute {
    name = "gsi1sk"
    type = "S"
  }
  attribute {
    name = "gsi2pk"
    type = "S"
  }
  attribute {
    name = "gsi2sk"
    type = "S"
  }

  # An account's keys in name order.
  global_secondary_index {
    name            = "gsi1"
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "ALL"
  }

  # A workspace's keys in name order (records are then read by BatchGetItem).
  global_secondary_index {
    name            = "gsi2"
    hash_key        = "gsi2pk"
    range_key       = "gsi2sk"
    projection_type = "KEYS_ONLY"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn # null: the AWS managed key aws/dynamodb
  }

  tags = var.tags
}

# --- the pepper ---------------------------------------------------------------------------

resource "aws_secretsmanager_secret" "pepper" {
  #checkov:skip=CKV2_AWS_57:The pepper keys every stored hash; rotating it would invalidate every API key, so it must never rotate automatically.
  count = local.create_pepper_secret ? 1 : 0

  name                    = "${var.name}-pepper"
  description             = "keyward's pepper: the HMAC key of every stored API key hash (hex, at least 64 digits). Never rotate it."
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.pepper_recovery_window_days
  tags                    = var.tags

  lifecycle {
    precondition {
      condition     = !startswith("${var.name}-pepper", local.rotation_secret_prefix)
      error_message = "rotation_secret_prefix must not cover the pepper secret (${var.name}-pepper): the rotator may write the secrets under it."
    }
  }
}

# 64 hex digits (256 bits) from Secrets Manager, opened only for this run: the value is written
# through a write-only attribute and is in neither the plan nor the state.
ephemeral "aws_secretsmanager_random_password" "pepper" {
  count = local.create_pepper_secret && var.generate_pepper ? 1 : 0

  password_length            = 64
  exclude_uppercase          = true
  exclude_punctuation        = true
  exclude_characters         = "ghijklmnopqrstuvwxyz"
  include_space              = false
  require_each_included_type = false
}

resource "aws_secretsmanager_secret_version" "pepper" {
  count = local.create_pepper_secret && var.generate_pepper ? 1 : 0

  secret_id        = aws_secretsmanager_secret.pepper[0].id
  secret_string_wo = ephemeral.aws_secretsmanager_random_password.pepper[0].random_password
  # Written once. Never raise it: a new pepper makes every existing key unverifiable.
  secret_string_wo_version = 1
}

# --- dead-letter queues -------------------------------------------------------------------

# aggregator: stream batches that still fail after their retries (the on-failure destination
# receives the batch's shard and sequence numbers, not the records); rotator: scheduled sweeps
# that failed every asynchronous attempt.
resource "aws_sqs_queue" "dlq" {
  for_each = toset(["aggregator", "rotator"])

  name                      = "${var.name}-${each.key}-dlq"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn
  tags                      = var.tags
}

# --- optional EventBridge bus for expiry warnings -----------------------------------------

resource "aws_cloudwatch_event_bus" "this" {
  count = var.create_event_bus ? 1 : 0

  name = "${var.name}-events"
  tags = var.tags
}

# --- the functions' roles (least privilege, one per function) -----------------------------

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = toset(local.functions)

  name               = "${var.name}-${each.key}"
  description        = "keyward ${each.key} function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

locals {
  table_arns = [aws_dynamodb_table.this.arn, "${aws_dynamodb_table.this.arn}/index/*"]

  # Every call the DynamoDB adapter makes (transactions are authorized item by item as
  # PutItem, UpdateItem, DeleteItem and ConditionCheckItem).
  store_read_write = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]

  logs_statement = {
    for f in local.functions : f => {
      sid       = "Logs"
      actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      resources = ["${aws_cloudwatch_log_group.function[f].arn}:*"]
    }
  }
  pepper_statements = concat(
    local.pepper_secret_arn == null ? [] : [{
      sid       = "ReadPepperSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.pepper_secret_arn]
    }],
    local.pepper_parameter_arn == null ? [] : [{
      sid       = "ReadPepperParameter"
      actions   = ["ssm:GetParameter"]
      resources = [local.pepper_parameter_arn]
    }],
  )
  kms_decrypt = var.kms_key_arn == null ? [] : [{
    sid       = "DecryptWithTheDeploymentKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }]
  kms_encrypt = var.kms_key_arn == null ? [] : [{
    sid       = "EncryptWithTheDeploymentKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]
  }]

  policies = {
    issuer = concat([local.logs_statement["issuer"], {
      sid       = "Store"
      actions   = local.store_read_write
      resources = local.table_arns
    }], local.pepper_statements, local.kms_decrypt)

    # Verification reads records and the change feed, leases rate-limit blocks and flushes
    # usage records: no index, no delete.
    authorizer = concat([local.logs_statement["authorizer"], {
      sid       = "Store"
      actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"]
      resources = [aws_dynamodb_table.this.arn]
    }], local.pepper_statements, local.kms_decrypt)

    rotator = concat([local.logs_statement["rotator"], {
      sid       = "Store"
      actions   = local.store_read_write
      resources = local.table_arns
      }, {
      sid       = "RotateOptedInSecrets"
      actions   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"]
      resources = [local.rotation_secret_arns]
      }, {
      sid       = "DeadLetters"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.dlq["rotator"].arn]
      }], local.event_bus_arn == null ? [] : [{
      sid       = "ExpiryWarnings"
      actions   = ["events:PutEvents"]
      resources = [local.event_bus_arn]
    }], local.pepper_statements, local.kms_encrypt)

    # Roll-ups are transactions of conditional updates only (crates/store/src/dynamodb/
    # usage.rs); the stream is read by the mapping with this role, and batches that keep
    # failing go to the queue.
    aggregator = concat([local.logs_statement["aggregator"], {
      sid       = "Store"
      actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"]
      resources = [aws_dynamodb_table.this.arn]
      }, {
      sid       = "ReadTheStream"
      actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
      resources = ["${aws_dynamodb_table.this.arn}/stream/*"]
      }, {
      sid       = "DeadLetters"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.dlq["aggregator"].arn]
    }], local.kms_encrypt)
  }
}

data "aws_iam_policy_document" "function" {
  for_each = local.policies

  dynamic "statement" {
    for_each = each.value
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = toset(local.functions)

  name   = "keyward-${each.key}"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}

# --- the functions ------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "function" {
  for_each = toset(local.functions)

  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_50:X-Ray tracing is not wired into the functions; their JSON logs carry the request id.
  #checkov:skip=CKV_AWS_117:The functions reach only AWS endpoints (DynamoDB, Secrets Manager, SSM, EventBridge); a VPC would add NAT or endpoints and cold-start cost for nothing.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile the operator owns; the packages are built by `cargo lambda` from the locked workspace.
  for_each = toset(local.functions)

  function_name                  = "${var.name}-${each.key}"
  description                    = "keyward ${each.key}"
  role                           = aws_iam_role.function[each.key].arn
  filename                       = local.zips[each.key]
  source_code_hash               = filebase64sha256(local.zips[each.key])
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = ["arm64"]
  memory_size                    = local.function_settings[each.key].memory_size
  timeout                        = local.function_settings[each.key].timeout
  reserved_concurrent_executions = local.function_settings[each.key].reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = local.environment[each.key]
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.function[each.key].name
    application_log_level = var.log_level
    system_log_level      = "INFO"
  }

  dynamic "dead_letter_config" {
    for_each = each.key == "rotator" ? [aws_sqs_queue.dlq["rotator"].arn] : []
    content {
      target_arn = dead_letter_config.value
    }
  }

  tags = var.tags

  # The role must hold its policy before the function first runs (and the mapping validates
  # the role's stream permissions when it is created).
  depends_on = [aws_iam_role_policy.function]
}

# --- the aggregator's stream mapping ------------------------------------------------------

resource "aws_lambda_event_source_mapping" "aggregator" {
  event_source_arn                   = aws_dynamodb_table.this.stream_arn
  function_name                      = aws_lambda_function.this["aggregator"].arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = var.aggregator_batch_size
  maximum_batching_window_in_seconds = 1
  maximum_retry_attempts             = var.aggregator_max_retries
  bisect_batch_on_function_error     = true
  function_response_types            = ["ReportBatchItemFailures"]

  # Only inserts of usage records (docs/usage-and-limits.md); every other change to the
  # table never invokes the aggregator.
  filter_criteria {
    filter {
      pattern = jsonencode({
        eventName = ["INSERT"]
        dynamodb = {
          Keys = {
            pk = { S = [{ prefix = "USAGE#RECORDS#" }] }
          }
        }
      })
    }
  }

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.dlq["aggregator"].arn
    }
  }

  depends_on = [aws_iam_role_policy.function]
}

# --- the rotator: schedule and Secrets Manager --------------------------------------------

resource "aws_cloudwatch_event_rule" "rotator" {
  name                = "${var.name}-rotator-sweep"
  description         = "keyward's rotation sweep: ends graces, marks expired keys, warns of expiring ones"
  schedule_expression = var.rotation_schedule
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "rotator" {
  rule      = aws_cloudwatch_event_rule.rotator.name
  target_id = "rotator"
  arn       = aws_lambda_function.this["rotator"].arn
}

resource "aws_lambda_permission" "rotator_schedule" {
  statement_id  = "AllowSweepSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["rotator"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.rotator.arn
}

# Secrets Manager may invoke the rotator for this account's opted-in secrets only
# (docs/rotation.md: a SourceAccount, so no other account's secret of the same name can ask).
resource "aws_lambda_permission" "rotator_secrets_manager" {
  statement_id   = "AllowSecretsManagerRotation"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["rotator"].function_name
  principal      = "secretsmanager.amazonaws.com"
  source_account = local.account_id
  source_arn     = local.rotation_secret_arns
}

# --- the authorizer, for this API and for any other ----------------------------------------

data "aws_iam_policy_document" "apigateway_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

# A team with its own API sets this role as its authorizer's credentials (REST:
# authorizer_credentials; HTTP API: authorizer_credentials_arn) instead of adding a Lambda
# permission for its API. Passing it needs iam:PassRole in this account.
resource "aws_iam_role" "authorizer_invoke" {
  name               = "${var.name}-authorizer-invoke"
  description        = "Lets API Gateway invoke keyward's authorizer"
  assume_role_policy = data.aws_iam_policy_document.apigateway_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "authorizer_invoke" {
  name = "invoke-keyward-authorizer"
  role = aws_iam_role.authorizer_invoke.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "InvokeTheAuthorizer"
      Effect   = "Allow"
      Action   = "lambda:InvokeFunction"
      Resource = aws_lambda_function.this["authorizer"].arn
    }]
  })
}

resource "aws_cloudwatch_log_group" "api" {
  count = local.api_access_logs ? 1 : 0

  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

locals {
  access_log_format = jsonencode({
    requestId      = "$context.requestId"
    ip             = "$context.identity.sourceIp"
    requestTime    = "$context.requestTime"
    httpMethod     = "$context.httpMethod"
    path           = "$context.path"
    status         = "$context.status"
    responseLength = "$context.responseLength"
    keyId          = "$context.authorizer.key_id"
    code           = "$context.authorizer.code"
    authorizer     = "$context.authorizer.error"
    integration    = "$context.integrationErrorMessage"
  })
}
