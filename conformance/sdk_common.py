"""What every conformance script shares: the server and app it is given in
the environment, and how a check reports (a failure names itself and ends
the script with status 1; tests/it/sdk_python.rs reads the output)."""

import os
import sys

BASE = os.environ["FACEHUB_BASE_URL"]
APP_ID = os.environ["FACEHUB_APP_ID"]
APP_SECRET = os.environ["FACEHUB_APP_SECRET"]


def check(cond, what, resp=None):
    if not cond:
        extra = f" (code={resp.code} msg={resp.msg})" if resp is not None else ""
        print(f"FAIL: {what}{extra}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")
