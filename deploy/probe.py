#!/usr/bin/env python3
"""Container health probe: GET a path on this container's own server (stdlib only).

    python deploy/probe.py [/health/live]

Used by the image's HEALTHCHECK and by the Azure Container Instances liveness and
readiness probes. Exits 0 when the server answers 200 within 4 seconds, else 1.
Sends the first ALLOWED_HOSTS entry as the Host header, so that Django's host check
accepts the probe whatever the public host name is, and X-Forwarded-Proto: https, so
that a service behind a TLS proxy does not redirect its own probe.
"""

from __future__ import annotations

import http.client
import os
import sys


def probe_host(allowed_hosts: str) -> str:
    first = allowed_hosts.split(",")[0].strip()
    # "*" allows any host; ".example.org" allows example.org and its subdomains.
    return first.lstrip("*").lstrip(".") or "localhost"


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/health/live"
    port = int(os.environ.get("PORT", "8000"))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        headers = {
            "Host": probe_host(os.environ.get("ALLOWED_HOSTS", "")),
            # As the TLS-terminating proxy would say: with SECURE_SSL_REDIRECT and
            # SECURE_PROXY_SSL_HEADER on, Django answers instead of redirecting.
            "X-Forwarded-Proto": "https",
        }
        conn.request("GET", path, headers=headers)
        status = conn.getresponse().status
    except OSError as exc:
        print(f"probe {path}: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    if status != 200:
        print(f"probe {path}: status {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
