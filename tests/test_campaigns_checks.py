"""Each content check, on real definitions and a real (SQLite) audience."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import insert

from campaigns import checks
from campaigns.db import session_scope
from campaigns.definition import load_definition
from campaigns.models import Contact, ContactList, Suppression
from campaigns.preflight import preflight
from campaigns.pricing import BUILT_IN, PriceTable

PRICES = PriceTable(BUILT_IN)


def _seed(url: str, contacts: list[tuple[str, dict[str, Any]]], name: str = "customers") -> None:
    with session_scope(url) as session:
        lst = ContactList(name=name)
        session.add(lst)
        session.flush()
        if not contacts:
            return
        session.execute(
            insert(Contact), [{"list_id": lst.id, "phone": p, "fields": f} for p, f in contacts]
        )


def _defn(channel: str = "sms", **message: Any) -> Any:
    extra = message.pop("_top", {})
    body = message.pop("body", "Hi {first_name}. Reply STOP to opt out")
    return load_definition(
        {
            "name": "c",
            "channel": channel,
            "audience": {"lists": ["customers"]},
            "message": {"body": body, **message},
            **extra,
        }
    )


def _findings(url: str, defn: Any, **kw: Any) -> dict[str, checks.Finding]:
    with session_scope(url) as session:
        result = preflight(session, defn, PRICES, **kw)
    return {f.check: f for f in result.findings}


PEOPLE = [("+12015550100", {"first_name": "Ann"}), ("+12015550101", {"first_name": "Bob"})]


def test_a_clean_message_has_no_findings(sqlite_url: str) -> None:
    _seed(sqlite_url, PEOPLE)
    assert _findings(sqlite_url, _defn()) == {}


def test_opt_out_only_for_marketing(sqlite_url: str) -> None:
    _seed(sqlite_url, PEOPLE)
    found = _findings(sqlite_url, _defn(body="Hi {first_name}, 20% off"))
    assert found["opt_out"].level == "warning"
    assert found["opt_out"].field == "message.body"
    transactional = _defn(body="Your parcel is on its way", _top={"purpose": "transactional"})
    assert "opt_out" not in _findings(sqlite_url, transactional)
    # Any of the usual wordings will do.
    assert "opt_out" not in _findings(sqlite_url, _defn(body="Hi. Text STOP to unsubscribe"))


def test_lookalike_characters_that_force_ucs2(sqlite_url: str) -> None:
    _seed(sqlite_url, PEOPLE)
    found = _findings(sqlite_url, _defn(body="Hi {first_name} \u2014 it\u2019s on. Reply STOP"))
    finding = found["lookalike"]
    assert "U+2014" in finding.message and "U+2019" in finding.message
    assert "'-'" in finding.message and '"\'"' in finding.message
    # A character outside GSM-7 without a stand-in (Cyrillic) is not a lookalike problem.
    assert "lookalike" not in _findings(sqlite_url, _defn(body="Привет {first_name}. STOP"))


def test_more_than_six_parts(sqlite_url: str) -> None:
    _seed(sqlite_url, PEOPLE)
    found = _findings(sqlite_url, _defn(body="{first_name} " + "x" * 920 + " STOP"))
    assert found["parts"].level == "error"
    assert "2 of 2 messages" in found["parts"].message
    # Exactly six parts is fine.
    assert "parts" not in _findings(sqlite_url, _defn(body="x" * (918 - 5) + " STOP"))


def test_more_than_six_parts_for_an_empty_audience(sqlite_url: str) -> None:
    _seed(sqlite_url, [])
    assert "parts" in _findings(sqlite_url, _defn(body="x" * 1000 + " STOP"))


def test_urls(sqlite_url: str) -> None:
    _seed(sqlite_url, PEOPLE)
    for body in (
        "Sale at https://shop.example/x STOP",
        "see clarion.example/news STOP",
        "www.shop.example STOP",
    ):
        assert _findings(sqlite_url, _defn(body=body))["urls"].level == "warning", body
    assert "urls" not in _findings(sqlite_url, _defn(body="20% off. e.g. this. Reply STOP"))


def test_empty_rendered_body(sqlite_url: str) -> None:
    _seed(sqlite_url, [("+12015550100", {"note": " "}), ("+12015550101", {"note": "Hi"})])
    found = _findings(
        sqlite_url, _defn(body="{note}", defaults={"note": " "}, _top={"purpose": "transactional"})
    )
    assert found["empty_body"].level == "error"
    assert "1 of 2 recipients" in found["empty_body"].message


def test_placeholder_no_recipient_has_is_an_error(sqlite_url: str) -> None:
    _seed(sqlite_url, PEOPLE)
    found = _findings(sqlite_url, _defn(body="Code {promo_code}. Reply STOP"))
    assert found["placeholder_missing_all"].level == "error"
    assert "promo_code" in found["placeholder_missing_all"].field


def test_placeholder_some_lack_is_a_warning_with_the_count(sqlite_url: str) -> None:
    _seed(sqlite_url, [*PEOPLE, ("+12015550102", {}), ("+12015550103", {"first_name": " "})])
    found = _findings(sqlite_url, _defn())
    assert found["placeholder_missing_some"].level == "warning"
    assert "2 of 4 recipients" in found["placeholder_missing_some"].message
    # ...unless defaults covers it.
    assert _findings(sqlite_url, _defn(defaults={"first_name": "there"})) == {}


def test_suppressed_recipients_do_not_count_for_placeholders(sqlite_url: str) -> None:
    _seed(sqlite_url, [*PEOPLE, ("+12015550102", {})])
    with session_scope(sqlite_url) as session:
        session.add(Suppression(phone="+12015550102", reason="STOP"))
    assert _findings(sqlite_url, _defn()) == {}


def test_sender_id_rejected_by_country(sqlite_url: str) -> None:
    _seed(sqlite_url, [*PEOPLE, ("+447400123456", {"first_name": "Cy"})])
    found = _findings(sqlite_url, _defn(**{"from": "Clarion"}))
    assert found["sender_id"].field == "message.from"
    assert "US (2)" in found["sender_id"].message and "GB" not in found["sender_id"].message
    assert "sender_id" not in _findings(sqlite_url, _defn(**{"from": "+12015550999"}))


def test_levels_come_from_configuration_and_the_definition(sqlite_url: str) -> None:
    _seed(sqlite_url, PEOPLE)
    body = "Hi {first_name}, see https://x.example/a"
    found = _findings(sqlite_url, _defn(body=body), configured_levels="urls=error,opt_out=off")
    assert found["urls"].level == "error" and "opt_out" not in found
    mine = _defn(body=body, _top={"checks": {"urls": "off"}})
    found = _findings(sqlite_url, mine, configured_levels="urls=error")
    assert "urls" not in found and found["opt_out"].level == "warning"
    with pytest.raises(checks.ConfigError, match="CLARION_CHECKS: unknown check 'url'"):
        checks.parse_levels("url=off")


class _Langs:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> list[str]:
        self.calls += 1
        return ["en-us", "en-gb", "de-de"]


def test_voice_lang_is_checked_against_a_cached_list() -> None:
    fetch = _Langs()
    now = [1000.0]
    langs = checks.cached_voice_langs("acct-a", fetch, 60, now=lambda: now[0])
    assert checks.voice_lang_problems(_defn("voice", lang="de-de"), langs) == []
    problem = checks.voice_lang_problems(_defn("voice", lang="xx-yy"), langs)
    assert problem[0][:2] == ("voice_lang", "message.lang")
    checks.cached_voice_langs("acct-a", fetch, 60, now=lambda: now[0] + 30)
    assert fetch.calls == 1  # cached
    now[0] += 61
    checks.cached_voice_langs("acct-a", fetch, 60, now=lambda: now[0])
    assert fetch.calls == 2  # expired, read again


@pytest.fixture
def media() -> Iterator[str]:
    """A loopback server: /ok.jpg (small jpeg), /big.gif (300 kB), /html.jpg (text/html),
    /missing.jpg (404)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            files = {
                "/ok.jpg": ("image/jpeg", b"\xff\xd8" + b"0" * 1000),
                "/big.gif": ("image/gif", b"GIF89a" + b"0" * 300_000),
                "/html.jpg": ("text/html", b"<html></html>"),
            }
            if self.path not in files:
                self.send_response(404)
                self.end_headers()
                return
            kind, data = files[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.end_headers()  # no Content-Length: the size is counted from the bytes
            self.wfile.write(data)
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_media_file(media: str) -> None:
    assert checks.media_problem(f"{media}/ok.jpg") is None
    assert "jpg and gif" in (checks.media_problem(f"{media}/ok.png") or "")
    assert "larger than 250 kB" in (checks.media_problem(f"{media}/big.gif") or "")
    assert "text/html" in (checks.media_problem(f"{media}/html.jpg") or "")
    assert "HTTP 404" in (checks.media_problem(f"{media}/missing.jpg") or "")
    assert "not reachable" in (checks.media_problem("http://127.0.0.1:9/x.jpg", timeout=2) or "")


def test_definition_keys_for_checks_budget_and_canary_name_the_field() -> None:
    from campaigns.definition import DefinitionError

    base = {"name": "c", "channel": "sms", "audience": {"lists": ["x"]}, "message": {"body": "b"}}
    with pytest.raises(DefinitionError) as bad:
        load_definition(
            {
                **base,
                "checks": {"url": "off"},
                "budget": {"run": "-5"},
                "canary": {"first": "150%", "max_failure_rate": "half"},
            }
        )
    errors = "\n".join(bad.value.errors)
    assert "checks: unknown check 'url'" in errors
    assert "budget.run: input should be greater than 0" in errors
    assert "canary.first:" in errors and "canary.max_failure_rate: not a share" in errors
    good = load_definition({**base, "canary": {"first": "2%"}, "budget": {"campaign": 10}})
    assert good.canary is not None and good.canary.slice_size(1000) == 20
    assert good.canary.max_failure_rate == 0.05


def test_numeric_field_values_count_as_present(db_url: str) -> None:
    _seed(db_url, [("+12015550100", {"visits": 3}), ("+12015550101", {"visits": 0})])
    defn = _defn(body="Visits: {visits}. Reply STOP", _top={"purpose": "transactional"})
    with session_scope(db_url) as session:
        result = preflight(session, defn, PRICES, sample=2)
    assert result.findings == []
    assert [m.body for m in result.preview.messages] == [
        "Visits: 3. Reply STOP",
        "Visits: 0. Reply STOP",
    ]
