"""clarion.cli starts without the heavy libraries: a command imports what it needs, so
`clarion --help` answers at once (its time is measured by bench/cli_startup.py)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlalchemy", "celery", "kombu", "pydantic_settings", "httpx", "fastapi", "uvicorn")


def test_help_imports_no_heavy_library() -> None:
    probe = (
        "import sys\n"
        "from clarion.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('heavy:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert "Campaigns and their runs" in out
    assert out.strip().splitlines()[-1] == "heavy:"
