"""Downloading an image's bytes over http(s): a size limit, a time limit per answer and for the whole download.

``load_image(url)`` (notebook 00) and the example paintings (``examples``) fetch through ``download_bytes``;
every failure is a one-line error that says what to do.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 20      # seconds for any one answer of the server
DOWNLOAD_DEADLINE_S = 300    # seconds for a whole download (50 MB at about 170 kB/s)
USER_AGENT = "nst-helpers/0.1 (neural style transfer course; python urllib)"


def download_bytes(url: str, max_bytes: int = MAX_DOWNLOAD_BYTES, timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """The body of an http(s) URL; ConnectionError (one line) when it fails or takes more than DOWNLOAD_DEADLINE_S
    in all (``timeout``: for any one answer of the server), ValueError when it is larger than ``max_bytes``.

    Behind ``load_image`` of a URL (notebook 00) and the paintings ``examples`` fetches.
    """
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    deadline = DOWNLOAD_DEADLINE_S
    end, chunks, received, too_slow = time.monotonic() + deadline, [], 0, False
    try:
        with urllib.request.urlopen(request, timeout=min(timeout, deadline)) as response:
            while received <= max_bytes and not too_slow:
                chunk = response.read1(min(2**16, max_bytes + 1 - received))  # what has come, not a full block
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
                too_slow = time.monotonic() > end
    except urllib.error.HTTPError as err:
        raise ConnectionError(f"downloading {url} failed: HTTP {err.code} {err.reason}: check the URL") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ConnectionError(f"downloading {url} failed ({reason}): check the URL and your internet connection") from None
    if too_slow:
        raise ConnectionError(f"downloading {url} took more than {deadline:g} s (the server sends too slowly): "
                              "try again later, or download the image yourself")
    if received > max_bytes:
        raise ValueError(f"{url} is larger than {max_bytes // 2**20} MB: download a smaller version of the image")
    return b"".join(chunks)
