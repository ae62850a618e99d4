"""What the dashboard's buttons do: the campaign lifecycle exactly as the CLI and the API
carry it out (``workers.control``), answered in a sentence for the page."""

from __future__ import annotations

from collections.abc import Callable

from config.settings import Settings
from workers import control


def _message(do: Callable[[Settings, int], control.Outcome]) -> Callable[[Settings, int], str]:
    def run(settings: Settings, campaign_id: int) -> str:
        return do(settings, campaign_id).message

    return run


ACTIONS: dict[str, Callable[[Settings, int], str]] = {
    "start": _message(control.start),
    "pause": _message(control.pause),
    "resume": _message(control.resume),
    "cancel": _message(control.cancel),
}
