"""Clarion's HTTP API (FastAPI): the same operations as the CLI, plus the webhooks
ClickSend pushes delivery receipts and inbound replies to.

Layering: this package may import ``campaigns``, ``clicksend``, ``workers``, ``scheduler``
and ``config``; nothing below it imports it. The CLI (``clarion``) mounts it.
"""
