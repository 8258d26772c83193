"""Sign-ups handled off the request, one at a time, in a thread of their own.

The form's answer must not tell whether an address is subscribed: not by its
words, not by its status, not by its time. So the request only checks the form
and queues it; the lookup, the database change and the mail all happen here,
for every sign-up alike, and the relay's answer (or its silence) is logged,
never shown.

A person who signs up twice, or a stranger who signs someone up again and
again, does not flood the address: within ``RESEND_SECONDS`` of a confirmation
mail the link already sent stands (it works for 48 hours), and no other goes.
So nobody can use the form to lock an address's owner out either.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: A confirmation mail to the same address goes at most this often.
RESEND_SECONDS = 600


class ResendWindow:
    """At most one mail an address per ``RESEND_SECONDS``: ``first`` says whether one
    may go now, and notes it. Only the window is kept, so a long-running serve holds
    the addresses of the last ``RESEND_SECONDS``, not of every request ever. Used
    from the sign-ups thread alone."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.sent: dict[str, float] = {}  # address (casefolded) -> when

    def first(self, address: str) -> bool:
        now = self.clock()
        self.sent = {k: t for k, t in self.sent.items() if now - t < RESEND_SECONDS}
        key = address.casefold()
        if key in self.sent:
            return False
        self.sent[key] = now
        return True


@dataclass(frozen=True)
class SignUp:
    address: str
    name: str
    tags: tuple[str, ...]
    cadence: str = "weekly"


class SignUps:
    """A queue of sign-ups and the thread that handles them with ``handle``; other
    mail a request sets off (a welcome, a fresh link) goes through it too, as
    jobs, so that no answer waits for the relay."""

    def __init__(self, handle: Callable[[SignUp], None]) -> None:
        self._handle = handle
        self._queue: queue.Queue[SignUp | Callable[[], None] | None] = queue.Queue(maxsize=1000)
        self._thread = threading.Thread(target=self._run, name="sign-ups", daemon=True)
        self._thread.start()

    def submit(self, signup: SignUp | Callable[[], None]) -> bool:
        """Queue ``signup`` (or a job); ``False`` when the queue is full (the caller
        answers 503)."""
        try:
            self._queue.put_nowait(signup)
        except queue.Full:
            return False
        return True

    def wait(self) -> None:
        """Until every sign-up queued so far is handled (tests, and shutdown)."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def _run(self) -> None:
        while (signup := self._queue.get()) is not None:
            try:
                if isinstance(signup, SignUp):
                    self._handle(signup)
                else:
                    signup()
            except Exception:  # one bad sign-up never stops the others
                log.exception("sign-up of an address could not be handled")
            finally:
                self._queue.task_done()
        self._queue.task_done()
