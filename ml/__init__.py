"""HealthGuard Vision machine-learning package: image checks, model runtime, risk rules.

Plain Python: nothing here imports Django.
"""
