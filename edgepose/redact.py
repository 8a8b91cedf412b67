"""Secrets in source addresses: ``rtsp://user:password@host/path?access_token=...`` never reaches a log line, an
error message, a file name or an image id.

    redact("cannot open 'rtsp://admin:pw@cam/live?token=x'")  # "cannot open 'rtsp://***@cam/live?***'"
    address("rtsp://admin:pw@cam:554/live?token=x")            # "cam:554/live" (for file names and ids)
"""

from __future__ import annotations

import re

# scheme://[userinfo@]rest[?query][#fragment]; userinfo is everything up to the last '@' before the first '/'.
# A query ends at a space, a quote or the end, less any punctuation of the sentence around it ("URL: reason").
_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/\s]*@)?(?P<rest>[^\s?#'\"]*)"
    r"(?P<query>[?#][^\s'\"]*?)?(?=[:;,.)\]]*(?:[\s'\"]|$))"
)
MASK = "***"


def _masked(match: re.Match) -> str:
    user = f"{MASK}@" if match["user"] else ""
    query = f"{match['query'][0]}{MASK}" if match["query"] else ""
    return f"{match['scheme']}{user}{match['rest']}{query}"


def redact(text: object) -> str:
    """``text`` (a URL, a path or a whole message) with every URL's user:password and query/fragment masked."""
    return _URL.sub(_masked, str(text))


def address(url: str) -> str:
    """A URL without its scheme, user:password, query and fragment: ``host[:port]/path`` (for names and ids)."""
    match = _URL.match(url)
    return match["rest"] if match else url
