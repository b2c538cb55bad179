"""Run by test_telemetry.py in a fresh process: set Django up (which configures Azure
Monitor only when APPLICATIONINSIGHTS_CONNECTION_STRING is set), make one request, and
print what was configured, the request span, and every attempt to reach a non-loopback
address (all blocked: this test never uses the network)."""

import ipaddress
import json
import socket
import sys
from typing import Any

attempts = []


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        attempts.append(("connect", str(address)))
        raise OSError("network blocked in test")
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        attempts.append(("connect_ex", str(address)))
        return 111
    return _connect_ex(self, address)


def getaddrinfo(host, *a, **k):
    if host is not None and not _is_loopback(str(host)):
        try:
            ipaddress.ip_address(str(host))
        except ValueError:
            attempts.append(("dns", str(host)))
            raise socket.gaierror("name resolution blocked in test")
    return _getaddrinfo(host, *a, **k)


socket.socket.connect = connect  # type: ignore[method-assign]
socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = getaddrinfo


def main() -> None:
    import logging

    import django

    django.setup()
    from django.test import Client

    from ops import telemetry

    result: dict = {
        "enabled": telemetry.telemetry_enabled(),
        "azure_imported": "azure.monitor.opentelemetry" in sys.modules,
    }
    if telemetry.telemetry_enabled():
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider: Any = trace.get_tracer_provider()  # the SDK's, set by the distro
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        Client().get("/health/live", HTTP_X_REQUEST_ID="otel-request-0000")
        Client().get("/api/results", HTTP_X_REQUEST_ID="otel-request-0001")
        result["spans"] = [
            {"name": s.name, "attributes": dict(s.attributes or {})}
            for s in memory.get_finished_spans()
        ]
        processors = provider._active_span_processor._span_processors
        result["exporters"] = [
            type(getattr(p, "span_exporter", None) or getattr(p, "_exporter", None)).__name__
            for p in processors
        ]
        result["root_handlers"] = [
            [type(h).__name__, [type(f).__name__ for f in h.filters]]
            for h in logging.getLogger().handlers
        ]
    else:
        Client().get("/health/live", HTTP_X_REQUEST_ID="otel-request-0001")
    result["attempts"] = attempts
    print("RESULT" + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
