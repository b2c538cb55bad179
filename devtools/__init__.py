"""Development-only helpers shared by tests/, bench/ and scripts/ (not in the image).

live.py       gunicorn as production runs it, in a subprocess, on a database of its own
multipart.py  multipart/form-data bodies built by hand (bytes sent verbatim)
"""
