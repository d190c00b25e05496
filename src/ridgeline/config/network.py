"""Where the coordinator listens, what address trials call back on, and whether it speaks TLS.

Three settings: ``bind`` (the address to listen on), ``advertise`` (the host trials call) and
``tls``. Each may come from the ``coordinator:`` section of the user-level config file
(``paths.user_config_file()``), then from ``experiment create --bind/--advertise/--no-tls``
or ``optimize(bind=, advertise=, tls=)``, later sources overriding earlier ones. What is not
set is decided when the coordinator starts (``endpoint``): it binds the address the
scheduler's nodes route to (loopback for local trials), advertises the bound address (this
host's address when bound to all interfaces), and uses TLS whenever it is not on loopback.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ridgeline.errors import ConfigError

__all__ = [
    "SETTINGS",
    "Endpoint",
    "NetworkChoice",
    "endpoint",
    "is_loopback",
    "load_user_network",
    "resolve_network",
]

log = logging.getLogger("ridgeline")

SETTINGS = ("bind", "advertise", "tls")
LOOPBACK = "127.0.0.1"
WILDCARDS = ("0.0.0.0", "::")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_setting(name: str, value: Any, where: str) -> Any:
    """``value`` for setting ``name`` if valid, else a ConfigError naming both and ``where``
    the value came from."""
    if name == "tls":
        if not isinstance(value, bool):
            raise ConfigError(
                f"coordinator setting tls (from {where}) must be true or false, got {value!r}"
            )
        return value
    if name not in ("bind", "advertise"):
        raise ConfigError(
            f"unknown coordinator setting {name!r} (from {where}); use {', '.join(SETTINGS)}"
        )
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.startswith("[") and text.endswith("]"):
        text = text[1:-1]  # [::1], as written in URLs
    ok = isinstance(text, str) and (_is_ip(text) or bool(_HOSTNAME.match(text)))
    if ok and isinstance(text, str) and not _is_ip(text) and text.replace(".", "").isdigit():
        ok = False  # 300.1.2.3 is neither an address nor a host name
    if not ok:
        example = "10.0.0.5, 0.0.0.0 or node1.cluster" if name == "bind" else "10.0.0.5 or login1"
        raise ConfigError(
            f"coordinator setting {name} (from {where}) must be an IP address or host name "
            f"such as {example}, got {value!r}"
        )
    if name == "advertise" and text in WILDCARDS:
        raise ConfigError(
            f"coordinator setting advertise (from {where}) is {text!r}, which trials cannot "
            f"call; give the address or host name of this machine that the nodes reach"
        )
    return text


@dataclass(frozen=True)
class NetworkChoice:
    """The settings given so far (None: decide at start), and where each came from."""

    bind: str | None = None
    advertise: str | None = None
    tls: bool | None = None
    chosen_by: dict[str, str] = field(default_factory=dict)

    def over(self, values: Mapping[str, Any], where: str) -> NetworkChoice:
        """These settings with ``values`` (checked; None entries ignored) laid on top."""
        given = {k: check_setting(k, v, where) for k, v in values.items() if v is not None}
        merged = {k: getattr(self, k) for k in SETTINGS} | given
        sources = dict(self.chosen_by) | {k: where for k in given}
        return NetworkChoice(**merged, chosen_by=sources)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in SETTINGS} | {"chosen_by": dict(self.chosen_by)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> NetworkChoice:
        """The stored choice (checked again: the store is not trusted more than a file)."""
        if not data:
            return cls()
        sources = dict(data.get("chosen_by") or {})
        values = {k: data.get(k) for k in SETTINGS}
        choice = cls()
        for name, value in values.items():
            if value is not None:
                choice = choice.over({name: value}, sources.get(name, "the stored experiment"))
        return choice


def load_user_network(path: Path | None = None) -> tuple[dict[str, Any], str]:
    """The ``coordinator:`` settings of the user config file (unchecked values), and the
    file's name; an absent file or section gives none."""
    from ridgeline.config.yamlio import read_user_config  # lazy: ridgeline.config.yamlio loads yaml

    data, _, fatal, shown = read_user_config(path)
    if fatal:
        raise ConfigError(f"{shown}: {fatal[0]}")
    section = data.get("coordinator") if isinstance(data, dict) else None
    if section is None:
        return {}, shown
    if not isinstance(section, dict):
        raise ConfigError(
            f"{shown}: coordinator must be a mapping such as "
            f"coordinator: {{bind: 10.0.0.5, tls: true}}, got {section!r}"
        )
    unknown = sorted(str(k) for k in section if k not in SETTINGS)
    if unknown:
        raise ConfigError(
            f"{shown}: unknown coordinator setting {', '.join(unknown)}; use {', '.join(SETTINGS)}"
        )
    return dict(section), shown


def resolve_network(
    bind: str | None = None,
    advertise: str | None = None,
    tls: bool | None = None,
    where: str = "the command line",
    user_file: Path | None = None,
) -> NetworkChoice:
    """The user config file's ``coordinator:`` settings, overridden by those given here."""
    values, shown = load_user_network(user_file)
    choice = NetworkChoice().over(values, f"the ridgeline config file {shown}")
    return choice.over({"bind": bind, "advertise": advertise, "tls": tls}, where)


@dataclass(frozen=True)
class Endpoint:
    """Where a coordinator listens and how trials reach it."""

    bind: str
    advertise: str
    tls: bool

    def url(self, port: int) -> str:
        host = f"[{self.advertise}]" if ":" in self.advertise else self.advertise
        return f"{'https' if self.tls else 'http'}://{host}:{port}"


def endpoint(choice: NetworkChoice, default_host: str) -> Endpoint:
    """The settings with what was left open decided: ``default_host`` is the address the
    scheduler's nodes call back on (``Scheduler.callback_host``)."""
    bind = choice.bind or (LOOPBACK if is_loopback(default_host) else default_host)
    advertise = choice.advertise
    if advertise is None:
        advertise = bind if bind not in WILDCARDS else _this_host(default_host)
    tls = choice.tls if choice.tls is not None else not is_loopback(bind)
    if not tls and not is_loopback(bind):
        where = choice.chosen_by.get("tls", "the settings")
        log.warning(
            "The coordinator listens on %s without TLS (tls false, from %s): trial tokens and "
            "results cross the network in clear text",
            bind,
            where,
        )
    return Endpoint(bind, advertise, tls)


def _this_host(default_host: str) -> str:
    """This machine's address for trials, when bound to every interface."""
    if not is_loopback(default_host):
        return default_host
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return LOOPBACK
