"""The W&B server as the lab sees it: the links to a run and a group on it, where it is (`WANDB_BASE_URL`), and
whether it answers, checked before anything waits on it (the tracker's mirror, `lab sync`). Imports no wandb."""

from __future__ import annotations

import os
import socket
import urllib.parse

from lab.errors import LabError

BASE_URL = "https://wandb.ai"
DEFAULT_SERVER = "https://api.wandb.ai"
CONNECT_TIMEOUT_S = 5.0


def run_url(entity: str | None, project: str, run_id: str) -> str | None:
    """The link to a W&B run; None where the entity is not known (a page then shows the run id alone)."""
    return f"{BASE_URL}/{entity}/{project}/runs/{run_id}" if entity else None


def group_url(entity: str | None, project: str, group: str) -> str | None:
    """The link to a W&B group's workspace; None where the entity is not known."""
    return f"{BASE_URL}/{entity}/{project}/groups/{group}/workspace" if entity else None


def default_entity() -> tuple[str | None, str]:
    """(the W&B entity this machine uses by default, where it came from) without a network call or importing
    wandb: `WANDB_ENTITY`, else the `entity` of the [default] section of W&B's settings file (`wandb login` and
    `wandb init` write it to $WANDB_CONFIG_DIR/settings, by default ~/.config/wandb/settings); (None, "") when
    neither names one. The API key in ~/.netrc names no entity: only the server knows whose key it is."""
    import configparser
    from pathlib import Path

    if os.environ.get("WANDB_ENTITY"):
        return os.environ["WANDB_ENTITY"], "WANDB_ENTITY"
    folder = os.environ.get("WANDB_CONFIG_DIR") or Path.home() / ".config" / "wandb"
    settings = configparser.ConfigParser()
    try:
        settings.read(Path(folder) / "settings")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None, ""
    entity = settings.get("default", "entity", fallback="").strip()
    return (entity, "W&B's settings file") if entity else (None, "")


def server_address() -> tuple[str, int]:
    """(host, port) of the W&B server: `WANDB_BASE_URL`, else api.wandb.ai over HTTPS."""
    url = urllib.parse.urlsplit(os.environ.get("WANDB_BASE_URL") or DEFAULT_SERVER)
    return url.hostname or "api.wandb.ai", url.port or (80 if url.scheme == "http" else 443)


def check_reachable(timeout: float = CONNECT_TIMEOUT_S) -> None:
    """LabError (one line) unless a TCP connection to the W&B server opens within `timeout` seconds."""
    host, port = server_address()
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise LabError(f"cannot reach the W&B server {host}:{port} ({reason}); everything stays pending, run "
                       "lab sync again when online") from None


def check_answering(timeout: float = CONNECT_TIMEOUT_S) -> None:
    """LabError (one line) unless the W&B server answers an HTTP request (any status) within `timeout` seconds:
    a server that accepts connections and never answers is as unreachable as one that refuses them."""
    import urllib.error
    import urllib.request

    url = os.environ.get("WANDB_BASE_URL") or DEFAULT_SERVER
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # it answered
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise LabError(f"cannot reach the W&B server {url} ({reason}); everything stays pending, run lab sync "
                       "again when online") from None
