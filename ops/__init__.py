"""The operations ground floor: request ids, request logging, metrics, telemetry.

Imports nothing from `healthguard/`, `predictions/` or `ml/`; the app imports it (to
count and annotate), and the project package wires it up (middleware, logging filter,
the /metrics route, telemetry at start-up).
"""
