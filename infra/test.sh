#!/usr/bin/env bash
# Proves the Terraform module with the real tools: `terraform fmt -check`, `init` (offline, from
# the local plugin mirror), `validate` of the module and of examples/basic, then `plan`,
# `apply` and `destroy` of examples/basic against a moto server it starts, for each API type
# asked for (default: http rest), with placeholder function zips (moto stores code, never runs
# it). After each apply it checks that the stack is there and that the generated pepper is in
# neither the plan nor the state; after each destroy, that nothing is left in the state.
# With CHECKOV set (the path of a checkov), it also runs `checkov -d infra --skip-download`.
#
#   infra/test.sh [http] [rest]
#
# Environment: MOTO_SERVER (default: .cache/venv/bin/moto_server, else moto_server on the PATH),
# TF_PLUGIN_MIRROR (the folder above registry.terraform.io; default: found with `find`),
# CHECKOV (optional). Everything it writes is under a temporary directory it removes; it stops
# the moto server it started. Without terraform or the provider mirror it says so and skips.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
apis=("$@")
[[ ${#apis[@]} -gt 0 ]] || apis=(http rest)

if ! command -v terraform >/dev/null 2>&1; then
  echo "infra/test.sh: terraform is not on the PATH: skipping the Terraform module's checks"
  exit 0
fi
mirror="${TF_PLUGIN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  provider=$(find / -path '*registry.terraform.io/hashicorp/aws*' -name 'terraform-provider-aws*' 2>/dev/null | head -n 1 || true)
  mirror="${provider%%/registry.terraform.io/*}"
fi
if [[ -z "$mirror" || ! -d "$mirror/registry.terraform.io/hashicorp/aws" ]]; then
  echo "infra/test.sh: no local mirror of the AWS provider: skipping the Terraform module's checks"
  exit 0
fi
moto_server="${MOTO_SERVER:-$repo/.cache/venv/bin/moto_server}"
[[ -x "$moto_server" ]] || moto_server=$(command -v moto_server || true)
if [[ -z "$moto_server" ]]; then
  echo "infra/test.sh: moto_server not found (pip install 'moto[server]'); set MOTO_SERVER" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/keyward-infra.XXXXXX")
moto_pid=""
cleanup() {
  if [[ -n "$moto_pid" ]]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

timings=()
timed() {
  local label=$1 start end
  shift
  start=$(date +%s%N)
  "$@"
  end=$(date +%s%N)
  timings+=("$(printf '%-16s %6d ms' "$label" $(((end - start) / 1000000)))")
}

cat >"$work/terraformrc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
EOF
export TF_CLI_CONFIG_FILE="$work/terraformrc" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1 TF_CLI_ARGS=-no-color

echo "== terraform fmt -check -recursive infra"
(cd "$here" && terraform fmt -check -recursive -diff)

# A copy outside the repository: .terraform/, plans and state never land in infra/.
mkdir -p "$work/infra"
(cd "$here" && tar --exclude=.terraform --exclude='*.tfstate*' --exclude=.terraform.lock.hcl -cf - .) | tar -xf - -C "$work/infra"

echo "== init and validate: the module"
(cd "$work/infra" && terraform init -backend=false -plugin-dir="$mirror" >/dev/null && terraform validate)

echo "== init and validate: examples/basic"
example="$work/infra/examples/basic"
cd "$example"
timed "init" terraform init -backend=false -plugin-dir="$mirror" >/dev/null
terraform validate

# Placeholder packages in cargo lambda's layout (<dir>/<function>/bootstrap.zip).
mkdir -p "$work/zips"
for f in issuer authorizer rotator aggregator; do
  mkdir -p "$work/zips/$f"
  printf '#!/bin/sh\necho placeholder\n' >"$work/zips/bootstrap"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1], "w").write(sys.argv[2], "bootstrap")' \
    "$work/zips/$f/bootstrap.zip" "$work/zips/bootstrap"
done

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$moto_server" -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 120); do
  curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/" && break
  sleep 0.5
done
curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/" || { echo "moto did not start" >&2; exit 1; }
echo "== moto on 127.0.0.1:$port"

# The pepper moto holds, read with the boto3 beside moto (when there is one).
moto_python="$(dirname "$moto_server")/python"
pepper_of() {
  [[ -x "$moto_python" ]] || return 0
  "$moto_python" - "$port" "$1" <<'EOF'
import sys, boto3
sm = boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
print(sm.get_secret_value(SecretId=sys.argv[2])["SecretString"])
EOF
}

for api in "${apis[@]}"; do
  echo "== $api API: plan, apply, destroy against moto"
  vars=(-var "moto_endpoint=http://127.0.0.1:$port" -var "lambda_zip_dir=$work/zips"
    -var "api_type=$api" -var "name=kwtf-$api" -var deletion_protection=false
    -var pepper_recovery_window_days=0)
  timed "plan ($api)" terraform plan -out="$work/$api.tfplan" "${vars[@]}" >"$work/plan-$api.log" ||
    { tail -n 60 "$work/plan-$api.log"; exit 1; }
  grep -E '^Plan:' "$work/plan-$api.log"
  timed "apply ($api)" terraform apply -auto-approve "$work/$api.tfplan" >"$work/apply-$api.log" ||
    { tail -n 60 "$work/apply-$api.log"; exit 1; }
  grep -E '^Apply complete' "$work/apply-$api.log"

  # The stack is there: table with its stream, the four functions, the API and its
  # authorizer, the stream mapping, the schedule.
  state=$(terraform state list)
  authorizer='aws_apigatewayv2_authorizer.keyward[0]'
  [[ "$api" == rest ]] && authorizer='aws_api_gateway_authorizer.keyward[0]'
  for r in 'aws_dynamodb_table.this' 'aws_lambda_function.this["issuer"]' \
    'aws_lambda_function.this["authorizer"]' 'aws_lambda_function.this["rotator"]' \
    'aws_lambda_function.this["aggregator"]' "$authorizer" \
    'aws_lambda_event_source_mapping.aggregator' 'aws_cloudwatch_event_rule.rotator' \
    'aws_lambda_permission.rotator_secrets_manager' 'aws_secretsmanager_secret_version.pepper[0]'; do
    grep -qxF "module.keyward.$r" <<<"$state" || { echo "missing after apply: $r" >&2; exit 1; }
  done
  # Read into a variable first: with pipefail, `... | grep -q` fails whenever grep stops early
  # and the writer gets SIGPIPE, so a match could read as a miss (and a leak as no leak).
  table=$(terraform state show -no-color module.keyward.aws_dynamodb_table.this)
  grep -q 'stream_view_type *= "NEW_AND_OLD_IMAGES"' <<<"$table" ||
    { echo "the table has no stream" >&2; exit 1; }
  url=$(terraform output -raw management_api_url)
  [[ "$url" == https://* ]] || { echo "no management API URL: '$url'" >&2; exit 1; }
  echo "management API: $url"

  # The generated pepper is in neither the saved plan nor the state.
  pepper=$(pepper_of "$(terraform output -raw pepper_secret_arn)")
  if [[ -n "$pepper" ]]; then
    [[ ${#pepper} -eq 64 && "$pepper" =~ ^[0-9a-f]+$ ]] || { echo "the pepper is not 64 hex digits" >&2; exit 1; }
    shown=$(terraform show -json "$work/$api.tfplan")
    if grep -qF "$pepper" terraform.tfstate "$work/$api.tfplan" || grep -qF "$pepper" <<<"$shown"; then
      echo "the pepper leaked into the plan or the state" >&2
      exit 1
    fi
    echo "pepper: 64 hex digits in Secrets Manager, in neither the plan nor the state"
  fi

  timed "destroy ($api)" terraform destroy -auto-approve "${vars[@]}" >"$work/destroy-$api.log" ||
    { tail -n 60 "$work/destroy-$api.log"; exit 1; }
  grep -E '^Destroy complete' "$work/destroy-$api.log"
  [[ -z "$(terraform state list)" ]] || { echo "resources left in the state after destroy" >&2; exit 1; }
done

if [[ -n "${CHECKOV:-}" ]]; then
  echo "== checkov -d infra --skip-download"
  cd "$work"
  rm -rf infra/.terraform infra/examples/basic/.terraform
  timed "checkov" "$CHECKOV" -d infra --skip-download --compact --quiet
fi

echo "== timings"
printf '%s\n' "${timings[@]}"
