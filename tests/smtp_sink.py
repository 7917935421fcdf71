"""A local SMTP server (aiosmtpd) the email tests, the browser journey and the launch benchmark send to."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller

from config.embedded import free_port


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it accepts and can refuse (451) some recipients."""

    refuse_first: set[str] = field(default_factory=set)
    refuse_always: set[str] = field(default_factory=set)
    # What was accepted, as sent: parsed only when asked for (``messages``), so that a
    # benchmark's processor time is not spent on the sink's parsing while it is timed.
    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    sessions: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    lock: threading.RLock = field(default_factory=threading.RLock)
    refuse_mailbox: set[str] = field(default_factory=set)
    # Seconds each message takes to be accepted, as a real server's do.
    delay: float = 0.0
    _parsed: list[tuple[list[str], EmailMessage]] = field(default_factory=list, repr=False)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address in self.refuse_mailbox:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            for recipient in envelope.rcpt_tos:
                if recipient in self.refuse_always or (recipient in self.refuse_first and not self.refused[recipient]):
                    self.refused[recipient] += 1
                    return "451 4.3.0 Mailbox busy, try again later"
            self.received.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    @property
    def messages(self) -> list[tuple[list[str], EmailMessage]]:
        """Every accepted message with its recipients, in the order accepted."""
        with self.lock:
            for recipients, content in self.received[len(self._parsed) :]:
                message = cast(EmailMessage, email.message_from_bytes(content, policy=email.policy.default))
                self._parsed.append((recipients, message))
            return list(self._parsed)

    def count(self) -> int:
        """How many messages were accepted (nothing parsed)."""
        with self.lock:
            return len(self.received)

    def delivered(self) -> Counter[str]:
        """How many messages each recipient was sent."""
        with self.lock:
            return Counter(recipient for recipients, _ in self.messages for recipient in recipients)

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [message for recipients, message in self.messages if address in recipients]


def smtp_sink_start(inbox: Inbox) -> Controller:
    """Serve ``inbox`` on a free port of 127.0.0.1 (``controller.port``) until ``controller.stop()``."""
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[Callable[..., Inbox]]:
    controllers: list[Controller] = []

    def start(**options: Any) -> Inbox:
        inbox = Inbox(**options)
        controller = smtp_sink_start(inbox)
        controllers.append(controller)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = controller.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_TIMEOUT = 5
        return inbox

    yield start
    for controller in controllers:
        controller.stop()
