"""An SMTP sink for the relay benchmark: aiosmtpd, offering PIPELINING as hosted relays
do (aiosmtpd reads pipelined commands either way, but does not announce it).

    python -m aiosmtpd -n -l 127.0.0.1:PORT -c relay_sink.PipeliningSink
"""

from __future__ import annotations


class Sink:
    """Accepts every message and keeps none."""

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        return "250 2.0.0 OK"


class PipeliningSink(Sink):
    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]  # noqa: N802
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]
