"""Definitions that used to be accepted at `campaign create` and only failed (or were
billed) after sending started: each is now refused, naming the field."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from campaigns.db import session_scope
from campaigns.models import Campaign, Contact, Run
from clarion.cli import app
from sandbox.server import SandboxHandle
from tests.sandbox_env import sandbox_env
from tests.seed import seed_list, us_numbers


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[SandboxHandle]:
    with sandbox_env(monkeypatch, sqlite_url) as handle:
        yield handle


@pytest.fixture
def media_server(tmp_path: Path) -> Iterator[str]:
    """Static files over real HTTP on loopback: the MMS media a campaign points at."""
    root = tmp_path / "media"
    root.mkdir()
    (root / "sale.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 2000)
    (root / "sale.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 2000)

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _create(tmp_path: Path, definition: dict[str, object]) -> tuple[int, str]:
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(definition))
    result = CliRunner().invoke(app, ["campaign", "create", str(path), "--json"])
    return result.exit_code, result.output


def _definition(channel: str, **message: object) -> dict[str, object]:
    return {
        "name": "guarded",
        "channel": channel,
        "audience": {"lists": ["customers"]},
        "message": {"body": "Hi {first_name}. Reply STOP to opt out", **message},
    }


def test_placeholder_no_contact_has_is_refused_at_create(
    sandbox: SandboxHandle, sqlite_url: str, tmp_path: Path
) -> None:
    seed_list(sqlite_url, "customers", us_numbers(5))
    code, output = _create(
        tmp_path, _definition("sms", body="Your code: {promo_code}. Reply STOP to opt out")
    )
    assert code == 1, output
    assert "promo_code" in output and "no recipient" in output


def test_sms_over_six_parts_is_refused_at_create(
    sandbox: SandboxHandle, sqlite_url: str, tmp_path: Path
) -> None:
    seed_list(sqlite_url, "customers", us_numbers(5))
    code, output = _create(tmp_path, _definition("sms", body="x" * 2000 + " Reply STOP"))
    assert code == 1, output
    assert "message.body" in output and "parts" in output


def test_unknown_voice_lang_is_refused_at_create(
    sandbox: SandboxHandle, sqlite_url: str, tmp_path: Path
) -> None:
    seed_list(sqlite_url, "customers", us_numbers(5))
    code, output = _create(tmp_path, _definition("voice", lang="xx-yy"))
    assert code == 1, output
    assert "message.lang" in output and "xx-yy" in output


def test_png_media_is_refused_at_create(
    sandbox: SandboxHandle, sqlite_url: str, tmp_path: Path, media_server: str
) -> None:
    seed_list(sqlite_url, "customers", us_numbers(5))
    code, output = _create(
        tmp_path,
        _definition("mms", media_file=f"{media_server}/sale.png", subject="Sale"),
    )
    assert code == 1, output
    assert "message.media_file" in output
    code, output = _create(
        tmp_path,
        _definition("mms", media_file=f"{media_server}/sale.jpg", subject="Sale"),
    )
    assert code == 0, output
    assert json.loads(output)["campaign_id"] >= 1


def test_start_checks_again_when_the_audience_lost_the_field(
    sandbox: SandboxHandle, sqlite_url: str, tmp_path: Path
) -> None:
    # Accepted at create (every contact had a promo code); by start nobody has one. Before,
    # the run sent nothing, failed every message and reported itself "completed".
    seed_list(sqlite_url, "customers", us_numbers(5), fields={"promo_code": "SPRING"})
    code, output = _create(
        tmp_path, _definition("sms", body="Code {promo_code}. Reply STOP to opt out")
    )
    assert code == 0, output
    campaign_id = json.loads(output)["campaign_id"]
    with session_scope(sqlite_url) as session:
        session.execute(update(Contact).values(fields={"first_name": "X"}))
    result = CliRunner().invoke(app, ["campaign", "start", str(campaign_id), "--json"])
    assert result.exit_code == 1, result.output
    assert "promo_code" in result.output and "no recipient" in result.output
    with session_scope(sqlite_url) as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 0
        assert session.get(Campaign, campaign_id).status == "draft"  # type: ignore[union-attr]
