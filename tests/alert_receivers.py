"""A real SMTP server (aiosmtpd) and a real webhook receiver, for the alert tests: the
``smtp`` and ``hooks`` fixtures (registered for the whole suite in ``tests/conftest.py``), what
each received, and the values they share with the tests."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller

HOOK_TOKEN = "hook-token-Zq81-never-logged"
SETTLE = 30.0
"""Seconds a test waits for the alert thread to finish (it normally takes milliseconds)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """aiosmtpd handler: every message the SMTP server accepted, parsed, with its raw bytes."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(bytes(envelope.original_content or envelope.content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        return [cast(EmailMessage, message_from_bytes(r, policy=policy.default)) for r in self.raw]

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def bodies(self) -> list[str]:
        return [m.get_content() for m in self.messages]


class Hooks:
    """What the webhook receiver got: path, headers and raw body of every POST. While
    ``hold`` is clear, a request is answered only once it is set."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.arrived = threading.Event()
        self.hold = threading.Event()
        self.hold.set()

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def hooks() -> Iterator[tuple[Hooks, str]]:
    got = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            got.arrived.set()
            got.hold.wait(SETTLE)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got, f"http://127.0.0.1:{server.server_address[1]}/hooks/stonks?token={HOOK_TOKEN}"
    finally:
        got.hold.set()
        server.shutdown()
        server.server_close()
