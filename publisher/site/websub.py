"""WebSub (W3C Recommendation): tell the hub which feeds changed so subscribers get pushes."""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request

log = logging.getLogger(__name__)


def ping_hub(hub: str, feed_urls: list[str], timeout: float = 10.0) -> int:
    """POST ``hub.mode=publish`` for each changed feed; failures are warnings, never fatal.

    A hub being down must not fail a build whose files are already written;
    the next build pings again for whatever it changes.
    """
    ok = 0
    for url in feed_urls:
        body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": url}).encode()
        request = urllib.request.Request(
            hub, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )

        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
            ok += 1
        except (urllib.error.URLError, OSError) as exc:
            log.warning("warning: WebSub hub %s did not accept %s: %s", hub, url, exc)
    return ok
