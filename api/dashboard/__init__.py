"""The dashboard: server-rendered pages (Jinja2) under ``/ui`` with a little plain
JavaScript that refreshes the live parts. No build step: the templates, the stylesheet and
the script ship inside the package.

``install(app)`` mounts it on the API app; the app's ``state.settings`` gives the database
and the tokens. Every page reads with indexed queries only (see ``views``).
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import delete, select

from api.auth import token_matches
from api.dashboard import actions, views
from api.dashboard.auth import COOKIE, session_ok, session_value
from api.dashboard.counts import ListCounts, RunCounts
from campaigns.contacts_csv import import_csv
from campaigns.contacts_import import CsvFormatError
from campaigns.db import session_scope
from campaigns.models import Campaign, Run, Suppression
from campaigns.optout import suppress
from campaigns.phones import InvalidPhone, normalise
from campaigns.runs import CampaignError
from config.settings import Settings

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/ui", include_in_schema=False)


def _number(value: Any) -> str:
    return f"{int(value or 0):,}"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M %Z").strip() if value else "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


templates.env.filters.update(number=_number, when=_when, duration=_duration)
templates.env.globals["chart_svg"] = views.chart_svg


class LoginRequired(Exception):
    def __init__(self, path: str) -> None:
        self.path = path


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def tokens_of(settings: Settings) -> list[str]:
    return settings.api_token_list()


def counts_of(request: Request) -> RunCounts:
    counts: RunCounts = request.app.state.run_counts
    return counts


def list_counts_of(request: Request) -> ListCounts:
    counts: ListCounts = request.app.state.list_counts
    return counts


def _guard(request: Request) -> Settings:
    settings = settings_of(request)
    if not session_ok(request.cookies.get(COOKIE), tokens_of(settings)):
        raise LoginRequired(request.url.path)
    return settings


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"nav": name.split(".")[0], "flash": request.query_params.get("flash"), **context},
    )


def _back(path: str, flash: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?flash={quote(flash)}", status_code=303)


# -- login ------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/ui/") -> HTMLResponse:
    return _page(request, "login.html", next=next, error=None)


@router.post("/login", response_model=None)
def login(
    request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = "/ui/"
) -> Response:
    tokens = tokens_of(settings_of(request))
    if not token_matches(token.strip(), tokens):
        error = (
            "token: not one of CLARION_API_TOKENS"
            if tokens
            else ("no API token is configured: set CLARION_API_TOKENS")
        )
        response = _page(request, "login.html", next=next, error=error)
        response.status_code = 401
        return response
    target = next if next.startswith("/ui") else "/ui/"
    redirect = RedirectResponse(target, status_code=303)
    redirect.set_cookie(
        COOKIE, session_value(token.strip()), httponly=True, samesite="strict", path="/ui"
    )
    return redirect


@router.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


# -- campaigns ----------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def campaigns_page(request: Request, page: int = 1) -> HTMLResponse:
    settings = _guard(request)
    page = max(page, 1)
    with session_scope(settings.database_url) as session:
        rows = views.campaign_rows(session, counts_of(request), offset=(page - 1) * views.PAGE)
        return _page(request, "campaigns.html", rows=rows, page=page)


@router.get("/campaigns-table", response_class=HTMLResponse)
def campaigns_table(request: Request, page: int = 1) -> HTMLResponse:
    settings = _guard(request)
    with session_scope(settings.database_url) as session:
        rows = views.campaign_rows(
            session, counts_of(request), offset=(max(page, 1) - 1) * views.PAGE
        )
        return _page(request, "_campaign_rows.html", rows=rows)


def _campaign(session: Any, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise HTTPException(404, f"campaign {campaign_id}: no such campaign")
    return campaign


def _live_context(request: Request, session: Any, campaign: Campaign) -> dict[str, Any]:
    run = views.latest_run(session, campaign.id)
    live = views.progress(session, counts_of(request), run) if run else None
    limiter = _limiter(settings_of(request))
    return {"campaign": campaign, "run": run, "live": live, "limiter": limiter}


def _limiter(settings: Settings) -> dict[str, float] | None:
    from workers.context import limiter_stats

    try:
        return limiter_stats(settings)
    except Exception:  # the page still shows without the limiter's state
        return None


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, campaign_id: int) -> HTMLResponse:
    settings = _guard(request)
    with session_scope(settings.database_url) as session:
        campaign = _campaign(session, campaign_id)
        context = _live_context(request, session, campaign)
        run = context["run"]
        return _page(
            request,
            "campaign.html",
            **context,
            runs=views.runs_of(session, campaign_id),
            sample=views.sample_message(session, campaign, run),
            failures=counts_of(request).failures(run.id, run.status) if run else [],
        )


@router.get("/campaigns/{campaign_id}/live", response_class=HTMLResponse)
def campaign_live(request: Request, campaign_id: int) -> HTMLResponse:
    settings = _guard(request)
    with session_scope(settings.database_url) as session:
        campaign = _campaign(session, campaign_id)
        return _page(request, "_live.html", **_live_context(request, session, campaign))


@router.post("/campaigns/{campaign_id}/{action}")
def campaign_action(request: Request, campaign_id: int, action: str) -> RedirectResponse:
    settings = _guard(request)
    do = actions.ACTIONS.get(action)
    if do is None:
        raise HTTPException(404, f"action: no such action {action!r}")
    try:
        flash = do(settings, campaign_id)
    except CampaignError as exc:
        flash = str(exc)
    with session_scope(settings.database_url) as session:
        for run_id in session.scalars(select(Run.id).where(Run.campaign_id == campaign_id)):
            counts_of(request).forget(run_id)
    return _back(f"/ui/campaigns/{campaign_id}", flash)


@router.get("/campaigns/{campaign_id}/runs/{run_id}/failures", response_class=HTMLResponse)
def failures_page(
    request: Request, campaign_id: int, run_id: int, reason: str | None = None, after: int = 0
) -> HTMLResponse:
    settings = _guard(request)
    with session_scope(settings.database_url) as session:
        campaign = _campaign(session, campaign_id)
        rows = views.failed_numbers(session, run_id, reason, after_id=after)
        return _page(
            request,
            "failures.html",
            campaign=campaign,
            run_id=run_id,
            reason=reason,
            rows=rows,
            after=after,
            next_after=rows[-1][0] if len(rows) == views.PAGE else None,
        )


# -- lists, suppressions, schedule, account ---------------------------------------------


@router.get("/lists", response_class=HTMLResponse)
def lists_page(request: Request) -> HTMLResponse:
    settings = _guard(request)
    with session_scope(settings.database_url) as session:
        lists = views.list_rows(session, list_counts_of(request))
        return _page(request, "lists.html", lists=lists, report=None, error=None)


@router.post("/lists/upload", response_class=HTMLResponse)
def lists_upload(request: Request, name: Annotated[str, Form()], file: UploadFile) -> HTMLResponse:
    settings = _guard(request)
    report, error = None, None
    with tempfile.NamedTemporaryFile(suffix=".csv") as tmp:
        while chunk := file.file.read(1 << 20):
            tmp.write(chunk)
        tmp.flush()
        try:
            report = import_csv(
                settings.database_url,
                Path(tmp.name),
                name.strip(),
                default_region=settings.default_region,
            )
        except (CsvFormatError, ValueError) as exc:
            error = f"{file.filename}: {exc}"
    list_counts_of(request).forget()  # the page after an import shows its new count
    with session_scope(settings.database_url) as session:
        lists = views.list_rows(session, list_counts_of(request))
        response = _page(request, "lists.html", lists=lists, report=report, error=error)
    if error:
        response.status_code = 400
    return response


@router.get("/suppressions", response_class=HTMLResponse)
def suppressions_page(request: Request, q: str = "", page: int = 1) -> HTMLResponse:
    settings = _guard(request)
    page = max(page, 1)
    with session_scope(settings.database_url) as session:
        rows, total = views.suppressions(session, q, offset=(page - 1) * views.PAGE)
        return _page(
            request, "suppressions.html", rows=rows, total=total, q=q, page=page, error=None
        )


@router.post("/suppressions/add", response_model=None)
def suppressions_add(
    request: Request,
    phone: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "added by hand",
) -> Response:
    settings = _guard(request)
    try:
        e164 = normalise(phone, settings.default_region)
    except InvalidPhone as exc:
        with session_scope(settings.database_url) as session:
            rows, total = views.suppressions(session, "")
            response = _page(
                request,
                "suppressions.html",
                rows=rows,
                total=total,
                q="",
                page=1,
                error=f"phone: {exc}",
            )
        response.status_code = 400
        return response
    with session_scope(settings.database_url) as session:
        suppress(session, [e164], reason.strip() or "added by hand")
    return _back("/ui/suppressions", f"{e164} suppressed")


@router.post("/suppressions/{suppression_id}/remove")
def suppressions_remove(request: Request, suppression_id: int) -> RedirectResponse:
    settings = _guard(request)
    with session_scope(settings.database_url) as session:
        phone = session.scalar(select(Suppression.phone).where(Suppression.id == suppression_id))
        session.execute(delete(Suppression).where(Suppression.id == suppression_id))
    return _back("/ui/suppressions", f"{phone} may be messaged again" if phone else "not found")


@router.get("/schedule", response_class=HTMLResponse)
def schedule_page(request: Request) -> HTMLResponse:
    settings = _guard(request)
    with session_scope(settings.database_url) as session:
        return _page(request, "schedule.html", items=views.schedule(session))


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request) -> HTMLResponse:
    from clicksend.errors import ClickSendError
    from workers.context import gated_client

    settings = _guard(request)
    account, error = None, None
    try:
        with gated_client(settings) as client:
            account = client.account()
    except ClickSendError as exc:
        error = str(exc)
    return _page(request, "account.html", account=account, error=error)


def install(app: FastAPI) -> None:
    """Mount the dashboard (pages, static files, the login redirect) on ``app``."""
    app.state.run_counts = RunCounts(app.state.settings.database_url)
    app.state.run_counts.warm()
    app.state.list_counts = ListCounts(app.state.settings.database_url)
    app.state.list_counts.warm()
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")
    app.include_router(router)

    @app.exception_handler(LoginRequired)
    def _login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/ui/login?next={quote(exc.path)}", status_code=303)

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)
