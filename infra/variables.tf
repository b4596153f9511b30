# Inputs of the keyward module. Every one is described in README.md; the names of the
# KEYWARD_* settings they become are those of crates/service/src/config.rs.

# --- naming -------------------------------------------------------------------------------

variable "name" {
  description = "Prefix of every resource name (functions, roles, queues, the API, log groups) and the default table name."
  type        = string
  default     = "keyward"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,39}$", var.name))
    error_message = "name must start with a letter and hold at most 40 letters, digits and '-' (role names add up to 24 characters)."
  }
}

variable "table_name" {
  description = "Name of the DynamoDB table; null uses var.name."
  type        = string
  default     = null

  validation {
    condition     = var.table_name == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", var.table_name))
    error_message = "table_name must be 3 to 255 characters of letters, digits, '_', '-' and '.'."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

# --- function packages --------------------------------------------------------------------

variable "lambda_zip_dir" {
  description = "Directory laid out as `cargo lambda build --release --arm64 --output-format zip` leaves it (target/lambda): <dir>/<function>/bootstrap.zip for issuer, authorizer, rotator and aggregator. Entries of lambda_zips take precedence."
  type        = string
  default     = null

  validation {
    condition     = var.lambda_zip_dir != null || length(var.lambda_zips) == 4
    error_message = "Set lambda_zip_dir (target/lambda after `cargo lambda build --release --arm64 --output-format zip`), or give lambda_zips a path for each of issuer, authorizer, rotator and aggregator."
  }
}

variable "lambda_zips" {
  description = "Path of each function's zip by function name (issuer, authorizer, rotator, aggregator); overrides lambda_zip_dir for the functions it names."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.lambda_zips) : contains(["issuer", "authorizer", "rotator", "aggregator"], k)])
    error_message = "lambda_zips keys must be among issuer, authorizer, rotator and aggregator."
  }
}

variable "functions" {
  description = "Per-function overrides: memory_size (MB), timeout (s) and reserved_concurrency (null: unreserved), keyed by issuer, authorizer, rotator or aggregator."
  type = map(object({
    memory_size          = optional(number)
    timeout              = optional(number)
    reserved_concurrency = optional(number)
  }))
  default = {}

  validation {
    condition     = alltrue([for k in keys(var.functions) : contains(["issuer", "authorizer", "rotator", "aggregator"], k)])
    error_message = "functions keys must be among issuer, authorizer, rotator and aggregator."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group the module creates (the four functions' and the HTTP API's access log), in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "log_level" {
  description = "AWS_LAMBDA_LOG_LEVEL of the functions (their logs are JSON)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for what the module creates (the table, the pepper secret, the queues, the log groups, the functions' environment), and granted kms:Decrypt to the functions that read the pepper. null: AWS managed keys. The key policy must let CloudWatch Logs use it."
  type        = string
  default     = null
}

# --- deployment settings (KEYWARD_*) ------------------------------------------------------

variable "token_prefix" {
  description = "KEYWARD_PREFIX: the prefix of every token this deployment issues and accepts."
  type        = string
  default     = "kw_live"

  validation {
    condition     = can(regex("^[a-z0-9]+(_[a-z0-9]+)?$", var.token_prefix))
    error_message = "token_prefix is lowercase letters and digits with at most one inner '_' (for example kw_live)."
  }
}

variable "account" {
  description = "KEYWARD_ACCOUNT: the account keys are issued in."
  type        = string
  default     = "default"
}

variable "revocation_bound_ms" {
  description = "The longest a revocation, deactivation or scope change takes to take effect, end to end. The functions follow changes within min(this, 1000) ms (KEYWARD_REVOCATION_BOUND_MS); with cache_safe_answers, API Gateway's authorizer cache keeps answers for the whole seconds left (5000: 4 s; 1000: no cache)."
  type        = number
  default     = 5000

  validation {
    condition     = var.revocation_bound_ms >= 100 && var.revocation_bound_ms <= 3601000
    error_message = "revocation_bound_ms is 100 to 3601000 (API Gateway caches an answer for at most 3600 s)."
  }
}

variable "cache_safe_answers" {
  description = "KEYWARD_CACHE_SAFE_ANSWERS: the authorizer answers so that API Gateway may cache them (a REST policy for every route; an HTTP API answer keyed by route, path and address), and the authorizer's result TTL follows revocation_bound_ms. false: TTL 0, every request invokes the authorizer."
  type        = bool
  default     = true
}

variable "management_rate_limit" {
  description = "KEYWARD_MANAGEMENT_RATE_LIMIT: management API calls each admin key may make per UTC minute (1 to 1000000)."
  type        = number
  default     = 6000

  validation {
    condition     = var.management_rate_limit >= 1 && var.management_rate_limit <= 1000000
    error_message = "management_rate_limit must be 1 to 1000000."
  }
}

variable "verify_access" {
  description = "KEYWARD_VERIFY_ACCESS: who may call POST /v1/verify, `open` or `verifier-key`."
  type        = string
  default     = "open"

  validation {
    condition     = contains(["open", "verifier-key"], var.verify_access)
    error_message = "verify_access must be open or verifier-key."
  }
}

variable "route_policy" {
  description = "KEYWARD_ROUTE_POLICY of the authorizer: the route policy as JSON ({\"routes\": [...]} or a RoutePolicy spec document). The default protects the sample route. Lambda environments are limited to 4 KB: use route_policy_file for a larger one."
  type        = string
  default     = "{\"routes\":[{\"method\":\"GET\",\"path\":\"/sample/{rest+}\",\"action\":\"read\",\"resource\":\"sample/{rest}\"}]}"

  validation {
    condition     = can(jsondecode(var.route_policy))
    error_message = "route_policy must be JSON."
  }
}

variable "route_policy_file" {
  description = "KEYWARD_ROUTE_POLICY_FILE of the authorizer: a route policy file inside the authorizer's package (for example /var/task/routes.json); when set, it is used instead of route_policy."
  type        = string
  default     = null
}

variable "expiry_warning_hours" {
  description = "KEYWARD_EXPIRY_WARNING_HOURS of the rotator: how long before a key expires it is reported (1 to 8760)."
  type        = number
  default     = 168

  validation {
    condition     = var.expiry_warning_hours >= 1 && var.expiry_warning_hours <= 8760
    error_message = "expiry_warning_hours must be 1 to 8760."
  }
}

variable "rotation_grace_hours" {
  description = "KEYWARD_ROTATION_GRACE_HOURS of the rotator: how long the secret a Secrets Manager rotation replaces keeps verifying (1 to 168)."
  type        = number
  default     = 24

  validation {
    condition     = var.rotation_grace_hours >= 1 && var.rotation_grace_hours <= 168
    error_message = "rotation_grace_hours must be 1 to 168."
  }
}

variable "environment" {
  description = "More environment variables for every function (for example KEYWARD_STALE_IF_ERROR_MS). They cannot carry the pepper."
  type        = map(string)
  default     = {}

  validation {
    condition     = !contains(keys(var.environment), "KEYWARD_PEPPER")
    error_message = "The pepper never goes into a plain environment value: use the pepper secret or parameter."
  }
}

# --- the pepper ---------------------------------------------------------------------------

variable "pepper_secret_arn" {
  description = "ARN of an existing Secrets Manager secret whose SecretString is the pepper (hex, at least 64 digits). null (with pepper_parameter_name null): the module creates the secret."
  type        = string
  default     = null
}

variable "pepper_parameter_name" {
  description = "Name of an existing SSM SecureString parameter holding the pepper (hex), used instead of a secret."
  type        = string
  default     = null

  validation {
    condition     = var.pepper_parameter_name == null || var.pepper_secret_arn == null
    error_message = "Name the pepper by pepper_secret_arn or by pepper_parameter_name, not both."
  }
}

variable "generate_pepper" {
  description = "When the module creates the pepper secret: whether it also writes a generated value (64 hex digits from Secrets Manager's GetRandomPassword, written with a write-only attribute, so it is in neither the plan nor the state). false: the operator puts the value (see README)."
  type        = bool
  default     = true
}

variable "pepper_recovery_window_days" {
  description = "Recovery window of the created pepper secret when it is destroyed (0 deletes it at once; 7 to 30 lets it be restored, and keeps its name taken meanwhile)."
  type        = number
  default     = 30

  validation {
    condition     = var.pepper_recovery_window_days == 0 || (var.pepper_recovery_window_days >= 7 && var.pepper_recovery_window_days <= 30)
    error_message = "pepper_recovery_window_days must be 0 or 7 to 30."
  }
}

# --- the table ----------------------------------------------------------------------------

variable "deletion_protection" {
  description = "Deletion protection of the table (turn it off before destroying the stack)."
  type        = bool
  default     = true
}

# --- the API ------------------------------------------------------------------------------

variable "create_api" {
  description = "Whether to create an API Gateway API for the management API and the sample route. false: only the functions and the table (attach the authorizer to your own API with the outputs)."
  type        = bool
  default     = true
}

variable "api_type" {
  description = "`http` (API Gateway HTTP API, payload 2.0, simple authorizer responses) or `rest` (REST API with a REQUEST authorizer)."
  type        = string
  default     = "http"

  validation {
    condition     = contains(["http", "rest"], var.api_type)
    error_message = "api_type must be http or rest."
  }
}

variable "rest_stage_name" {
  description = "Stage name of the REST API (an HTTP API uses its $default stage)."
  type        = string
  default     = "live"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.rest_stage_name)) && var.rest_stage_name != "v1"
    error_message = "rest_stage_name is letters, digits, '-' and '_', and not v1 (the management API's own first path segment)."
  }
}

variable "authorizer_identity_sources" {
  description = "Identity sources of the authorizer, in HTTP API syntax; requests without them are refused (401) without invoking it. The REST authorizer uses the same headers."
  type        = list(string)
  default     = ["$request.header.x-api-key"]

  validation {
    condition     = length(var.authorizer_identity_sources) > 0 && alltrue([for s in var.authorizer_identity_sources : can(regex("^\\$request\\.header\\.[A-Za-z0-9-]+$", s))])
    error_message = "Give at least one identity source, each $request.header.<name>."
  }
}

variable "sample_route" {
  description = "Whether to create the protected sample route GET /sample/{proxy+} behind the authorizer."
  type        = bool
  default     = true
}

variable "sample_upstream_url" {
  description = "HTTP API only: where the sample route forwards an authorized request. null: the API's own /healthz (so the route answers without another service)."
  type        = string
  default     = null
}

variable "api_access_logs" {
  description = "Access logging of the stage to a log group the module creates. null: on for an HTTP API, off for a REST API, which can log only once the account's API Gateway CloudWatch role is set (aws_api_gateway_account); then set it to true."
  type        = bool
  default     = null
}

# --- usage aggregation --------------------------------------------------------------------

variable "aggregator_batch_size" {
  description = "Largest batch of stream records given to one aggregator invocation."
  type        = number
  default     = 100

  validation {
    condition     = var.aggregator_batch_size >= 1 && var.aggregator_batch_size <= 10000
    error_message = "aggregator_batch_size must be 1 to 10000."
  }
}

variable "aggregator_max_retries" {
  description = "Retries of a failing stream batch before its records go to the dead-letter queue (0 to 10000)."
  type        = number
  default     = 5

  validation {
    condition     = var.aggregator_max_retries >= 0 && var.aggregator_max_retries <= 10000
    error_message = "aggregator_max_retries must be 0 to 10000."
  }
}

# --- rotation -----------------------------------------------------------------------------

variable "rotation_schedule" {
  description = "EventBridge schedule of the rotator's sweep."
  type        = string
  default     = "rate(5 minutes)"
}

variable "rotation_secret_prefix" {
  description = "Name prefix of the Secrets Manager secrets that hold keys opting in to rotation: the rotator may read, write and restage only these, and only they may invoke it for rotation. null: \"<name>/\" (the keys-as-code examples name such secrets keyward/<key name>). The pepper secret (<name>-pepper) is outside it."
  type        = string
  default     = null
}

variable "create_event_bus" {
  description = "Create an EventBridge bus (<name>-events) for the rotator's expiry warnings."
  type        = bool
  default     = false
}

variable "event_bus_arn" {
  description = "ARN of an existing EventBridge bus for the rotator's expiry warnings (instead of create_event_bus). Neither: warnings go to the log only."
  type        = string
  default     = null

  validation {
    condition     = var.event_bus_arn == null || !var.create_event_bus
    error_message = "Set create_event_bus or event_bus_arn, not both."
  }
}
