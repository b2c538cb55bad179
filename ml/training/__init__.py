"""Training and evaluation of the shipped models (needs requirements-train.txt)."""
