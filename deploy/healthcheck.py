"""Container health check: GET /healthz on the node's own port; exit 0 only on HTTP 200.

Kept as a file (not an inline `python -c`) so its quoting survives the
Dockerfile; it uses the standard library only, as the slim image has no curl.
"""
import os
import sys
import urllib.request

port = os.environ.get("PREAU_PORT", "8080")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as e:  # any failure means unhealthy; say why in `docker inspect`
    print(f"unhealthy: {e}", file=sys.stderr)
    sys.exit(1)
