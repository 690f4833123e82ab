"""Is the Hugging Face hub there? One rule for data sets (seqlstm.data) and models (model_hub).

Left to themselves, the hub libraries retry an unreachable hub for about 25 s, logging every
attempt, before they fail. seqlstm asks first: with ``HF_HUB_OFFLINE`` (or
``HF_DATASETS_OFFLINE``) set, or when the hub does not answer one HEAD request within
``HUB_PROBE_TIMEOUT_S``, a hub id is read from the local Hugging Face cache only, which never
retries, and without a cached copy the caller fails at once with one line.

Which sources are hub ids is decided here too (``looks_local``), so that ``seqlstm.data.load``
and ``from_pretrained`` read ``owner/name`` the same way. This module imports neither torch nor
datasets: ``huggingface_hub.constants`` only, when asked.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

# Seconds the hub may take to answer before a hub id is read from the local cache only.
HUB_PROBE_TIMEOUT_S = 2.0

# The variables that put the hub libraries offline; datasets before 2.19 reads the second.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
# the values huggingface_hub reads as true
_TRUE = {"1", "ON", "YES", "TRUE"}


def looks_local(source: str) -> bool:
    """Whether a ``source`` that does not exist was meant as a path, not a hub id.

    Hub ids are ``name`` or ``owner/name``; a path is absolute, starts with ``.`` or ``~``,
    holds a backslash or more than one ``/``. An existing path always wins over a hub id
    (the callers check that first).
    """
    return source.startswith(("/", ".", "~")) or "\\" in source or source.count("/") > 1


def hub_endpoint() -> str:
    """The hub's URL (``HF_ENDPOINT``, as huggingface_hub read it at import)."""
    import huggingface_hub.constants

    return huggingface_hub.constants.ENDPOINT


def hub_reachable(endpoint: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether ``endpoint`` (the hub's URL) answers an HTTP HEAD request within ``timeout``
    seconds, through the proxies of the environment. Any HTTP status is an answer, and so is a
    TLS failure, which is left for the hub library to report; no connection is no answer."""
    answered: list[bool] = []

    def probe() -> None:
        try:
            request = urllib.request.Request(endpoint, method="HEAD")
            urllib.request.urlopen(request, timeout=timeout).close()
        except urllib.error.HTTPError:
            pass  # an error status is still an answer
        except urllib.error.URLError as error:
            if not isinstance(error.reason, ssl.SSLError):
                return
        except OSError:  # a timeout or reset after connecting
            return
        answered.append(True)

    # A thread, because name resolution (which can hang) ignores the socket timeout.
    thread = threading.Thread(target=probe, name="seqlstm-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(answered)


def _offline_switches() -> list[tuple[object, str]]:
    """(module, name) of each library's copy of an offline setting, read once at its import:
    huggingface_hub's HF_HUB_OFFLINE and, where datasets is imported, its HF_HUB_OFFLINE and
    HF_DATASETS_OFFLINE. datasets is not imported here: a process without it has no copy."""
    import huggingface_hub.constants

    modules = [huggingface_hub.constants]
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None:
        modules.append(datasets_config)
    return [
        (module, name) for module in modules for name in OFFLINE_VARIABLES if hasattr(module, name)
    ]


def offline_by_setting() -> bool:
    """Whether HF_HUB_OFFLINE or HF_DATASETS_OFFLINE puts the hub off: in the environment now,
    or in a hub library's copy of it (which a test or a caller may have set)."""
    if any(os.environ.get(name, "").strip().upper() in _TRUE for name in OFFLINE_VARIABLES):
        return True
    return any(bool(getattr(module, name)) for module, name in _offline_switches())


@contextmanager
def hub_offline_mode(offline: bool) -> Iterator[None]:
    """Inside the block, with ``offline``, the datasets and huggingface_hub libraries work as
    under ``HF_HUB_OFFLINE=1``: cache only, no request, no retry. Both read the variable when
    imported, so their copies of it are set here (process-wide), and restored after."""
    if not offline:
        yield
        return
    switches = _offline_switches()
    saved = [getattr(module, name) for module, name in switches]
    for module, name in switches:
        setattr(module, name, True)
    try:
        yield
    finally:
        for (module, name), value in zip(switches, saved, strict=True):
            setattr(module, name, value)
