#!/usr/bin/env python3
"""Create or update the service's Azure Container Instance (stdlib only; needs `az`).

    python3 deploy/aci_deploy.py --resource-group RG --name healthguard-staging \\
        --image myacr.azurecr.io/healthguard-vision:123 --dns-label healthguard-staging \\
        --location westeurope [--cpu 1 --memory 1.5] [--dry-run]

Writes the container group as an ACI YAML file (JSON is YAML) and runs
`az container create --file`: unlike the plain flags, the file carries liveness and
readiness probes (deploy/probe.py inside the image) and secure environment variables.

Settings come from this process's environment, by the service's own variable names:
the plain ones (DEBUG, ALLOWED_HOSTS, LOG_LEVEL...) as ordinary container variables,
the secret ones (SECRET_KEY, DATABASE_URL, METRICS_TOKEN...) as secure values, which
Azure never shows back. In Azure Pipelines map them from a variable group in the step's
`env:`; a secret that the group does not define arrives as the literal text
"$(NAME)" and is skipped. Registry credentials: ACR_USERNAME / ACR_PASSWORD.

Prints the service URL (PUBLIC_URL when set, else the container group's own http
address) and, under Azure Pipelines, sets it as the output variable `appUrl`.
--dry-run prints the file with every secret masked instead of deploying.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

PORT = 8000
PLAIN = (
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "CORS_ALLOWED_ORIGINS",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "WEB_CONCURRENCY",
    "RUN_MIGRATIONS",
    "HEALTHGUARD_MODEL_DIR",
    "DB_CONN_MAX_AGE",
    "DB_CONNECT_TIMEOUT",
    "DB_TCP_USER_TIMEOUT_MS",
    "SECURE_COOKIES",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "MAX_UPLOAD_BYTES",
    "THROTTLE_ANON_PREDICT",
    "THROTTLE_USER_PREDICT",
    "THROTTLE_LOGIN",
    "CLAMD_ADDRESS",
    "CLAMD_TIMEOUT",
    "AUDITLOG_RETENTION_DAYS",
    "OTEL_PYTHON_DJANGO_EXCLUDED_URLS",
    "DJANGO_SUPERUSER_USERNAME",
    "DJANGO_SUPERUSER_EMAIL",
)
SECRET = (
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "METRICS_TOKEN",
    "OWNER_HASH_KEY",
    "AUDITLOG_CHAIN_KEY",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "DJANGO_SUPERUSER_PASSWORD",
)
_MASK = "***"
_UNDEFINED_MACRO = re.compile(r"^\$\([A-Za-z0-9_.]+\)$")


def env_value(name: str, environ: dict[str, str]) -> str | None:
    value = environ.get(name)
    if value is None or value == "" or _UNDEFINED_MACRO.match(value):
        return None
    return value


def container_group(args: argparse.Namespace, environ: dict[str, str]) -> dict[str, Any]:
    fqdn = f"{args.dns_label}.{args.location}.azurecontainer.io"
    variables: list[dict[str, str]] = [{"name": "PORT", "value": str(PORT)}]
    for name in PLAIN:
        value = env_value(name, environ)
        if name == "ALLOWED_HOSTS" and value is None:
            value = fqdn  # the public name the smoke test and the users call
        if value is not None:
            variables.append({"name": name, "value": value})
    for name in SECRET:
        value = env_value(name, environ)
        if value is not None:
            variables.append({"name": name, "secureValue": value})
    missing = [n for n in ("SECRET_KEY", "DATABASE_URL") if env_value(n, environ) is None]
    if missing:
        raise SystemExit(f"aci_deploy: {', '.join(missing)} must be set (secret variables)")

    def probe(path: str, initial_delay: int, period: int) -> dict[str, Any]:
        return {
            "exec": {"command": ["python", "/app/deploy/probe.py", path]},
            "initialDelaySeconds": initial_delay,
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
            "successThreshold": 1,
        }

    group: dict[str, Any] = {
        "apiVersion": "2021-10-01",
        "name": args.name,
        "location": args.location,
        "type": "Microsoft.ContainerInstance/containerGroups",
        "tags": {"app": "healthguard-vision", "image": args.image},
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Always",
            "ipAddress": {
                "type": "Public",
                "dnsNameLabel": args.dns_label,
                "ports": [{"protocol": "TCP", "port": PORT}],
            },
            "containers": [
                {
                    "name": "api",
                    "properties": {
                        "image": args.image,
                        "ports": [{"protocol": "TCP", "port": PORT}],
                        "resources": {"requests": {"cpu": args.cpu, "memoryInGB": args.memory}},
                        "environmentVariables": variables,
                        # Liveness restarts a hung process; readiness keeps traffic away
                        # while the database or the model is not there.
                        "livenessProbe": probe("/health/live", 30, 30),
                        "readinessProbe": probe("/health/ready", 10, 15),
                    },
                }
            ],
        },
    }
    username = env_value("ACR_USERNAME", environ)
    password = env_value("ACR_PASSWORD", environ)
    if username and password:
        server = args.image.split("/", 1)[0]
        group["properties"]["imageRegistryCredentials"] = [
            {"server": server, "username": username, "password": password}
        ]
    return group


def masked(group: dict[str, Any]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(group))
    for container in copy["properties"]["containers"]:
        for variable in container["properties"]["environmentVariables"]:
            if "secureValue" in variable:
                variable["secureValue"] = _MASK
    for credentials in copy["properties"].get("imageRegistryCredentials", []):
        credentials["password"] = _MASK
    return copy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Deploy the service to an Azure Container Instance"
    )
    parser.add_argument("--resource-group", required=True)
    parser.add_argument("--name", required=True, help="container group name")
    parser.add_argument("--image", required=True, help="registry/repository:tag")
    parser.add_argument("--dns-label", required=True)
    parser.add_argument("--location", required=True)
    parser.add_argument("--cpu", type=float, default=1.0)
    parser.add_argument("--memory", type=float, default=1.5, help="GB")
    parser.add_argument("--dry-run", action="store_true", help="print the file, deploy nothing")
    args = parser.parse_args(argv)

    group = container_group(args, dict(os.environ))
    # Behind a TLS front (Application Gateway, Front Door) users and smoke tests go
    # through its https URL; otherwise straight to the container group's own name.
    url = env_value("PUBLIC_URL", dict(os.environ)) or (
        f"http://{args.dns_label}.{args.location}.azurecontainer.io:{PORT}"
    )
    if args.dry_run:
        print(json.dumps(masked(group), indent=2))
        print(f"would deploy {args.image} as {args.name}: {url}", file=sys.stderr)
        return 0

    # The file holds secrets: private to this user, and removed whatever happens.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as spec:
        json.dump(group, spec)
    try:
        command = ["az", "container", "create", "--resource-group", args.resource_group]
        command += ["--file", spec.name, "--output", "none"]
        subprocess.run(command, check=True)  # noqa: S603  (fixed argv, no shell)
    finally:
        os.unlink(spec.name)
    print(f"deployed {args.image} as {args.name}: {url}")
    if os.environ.get("TF_BUILD"):
        print(f"##vso[task.setvariable variable=appUrl;isOutput=true]{url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
