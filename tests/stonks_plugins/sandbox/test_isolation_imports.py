"""The sandbox must work inside a plugin's child process, where Django is not set up: it
imports nothing from Django (nor Celery), only the standard library and the project's error
types."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_sandbox_imports_no_django() -> None:
    code = (
        "import sys; import stonks_plugins.sandbox.boundary, stonks_plugins.sandbox.circuit, "
        "stonks_plugins.sandbox.metrics, stonks_plugins.sandbox.resources, "
        "stonks_plugins.sandbox.timeouts; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery')); "
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
