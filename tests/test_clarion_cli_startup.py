"""clarion.cli starts without the heavy libraries: a command imports what it needs, so
`clarion --help` answers at once (its time is measured by bench/cli_startup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_campaign_start_freezes_the_modules_it_loads(tmp_path: Path) -> None:
    """`campaign start` imports its modules with the collector off, then freezes them:
    later collections (the checks stream the whole audience) leave them out, and the
    collector is on again for the command's own work."""
    probe = (
        "import gc, sys\n"
        "from clarion.cli import app\n"
        "assert gc.get_freeze_count() == 0\n"
        "try:\n"
        "    app(['campaign', 'start', '999999'])\n"
        "except BaseException:\n"
        "    pass\n"
        "print('control' if 'workers.control' in sys.modules else 'not loaded',"
        " gc.isenabled(), gc.get_freeze_count() > 0)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    env["CLARION_DATABASE_URL"] = f"sqlite:///{tmp_path / 'clarion.db'}"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.strip().splitlines()[-1] == "control True True"
