"""Configuration: a TOML file in the platform's user config dir, plus environment.

Order of precedence, on purpose: command-line flags > environment > config file >
defaults. Credentials are the exception: they come from the environment
(``ASCENDEX_API_KEY``, ``ASCENDEX_API_SECRET``) or the config file, never from flags
(flags show in ``ps``). A config file that group or others can read is refused, the
way ssh refuses a private key with loose permissions.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal



import platformdirs

from ..net.endpoints import build_url, check_url
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

APP_NAME = "blotter"
ENV_KEY = "ASCENDEX_API_KEY"
ENV_SECRET = "ASCENDEX_API_SECRET"


class ConfigError(Exception):
    """One line saying what is wrong and what to do. Never contains a secret."""


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_config_path() -> Path:
    return config_dir() / "config.toml"


def default_journal_path() -> Path:
    return data_dir() / "journal.sqlite3"


class FileConfig(BaseModel):
    """The config file's keys. Unknown keys are an error (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = Field(None, description="API key (or env ASCENDEX_API_KEY).")
    api_secret: SecretStr | None = Field(None, description="API secret (or env ASCENDEX_API_SECRET).")
    secret_encoding: Literal["base64", "raw"] | None = Field(None, description="HMAC key form: base64 (default) or raw.")
    url: str | None = Field(None, description="Full WebSocket URL of the private stream.")
    env: Literal["mainnet", "testnet"] | None = Field(None, description="Build the URL for this environment.")
    account_group: int | None = Field(None, ge=0, description="Account group of the API key (with env).")
    ca_file: str | None = Field(None, description="Extra CA certificates (PEM) to trust for wss://.")
    theme: str | None = Field(None, description="Theme name (blotter --list-themes).")
    read_only: bool | None = Field(None, description="Disable every cancel key.")
    request_timeout: float | None = Field(None, gt=0, description="Seconds before an unconfirmed request shows TIMEOUT.")
    stale_after: float | None = Field(None, gt=0, description="Seconds without data before the table is marked STALE.")
    final_linger: float | None = Field(None, ge=0, description="Seconds final orders stay visible (dimmed).")
    journal: str | None = Field(None, description="Path of the audit journal (SQLite).")
    no_journal: bool | None = Field(None, description="Do not write the audit journal.")
    cancel_on_hangup: bool | None = Field(None, description="Cancel all open orders on SIGHUP/SIGTERM.")
    keymap: dict[str, str] = Field(default_factory=dict, description="binding id = key, e.g. cancel_order = \"delete\".")


def check_permissions(path: Path) -> None:
    """Refuse a config file readable or writable by group or others."""
    if sys.platform == "win32":
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"config file {path} is accessible by others (mode {stat.S_IMODE(mode):03o}); "
            f"it may hold your API secret: run  chmod 600 {path}"
        )


def load_file(path: Path | None, explicit: bool) -> FileConfig:
    """Read the config file. A missing default file is fine; a missing explicit one is not."""
    path = path or default_config_path()
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist; check --config")
        return FileConfig()
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a file; check --config")
    check_permissions(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        return FileConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        if err.get("type") == "extra_forbidden":
            valid = ", ".join(k for k in FileConfig.model_fields)
            raise ConfigError(f"config file {path}: unknown key {loc!r}; valid keys: {valid}") from None
        raise ConfigError(f"config file {path}: {loc}: {err.get('msg')}") from None


def credentials(file: FileConfig, environ: dict[str, str] | None = None) -> tuple[SecretStr, SecretStr]:
    """API key and secret: environment first, then the config file."""
    environ = os.environ if environ is None else environ
    key = environ.get(ENV_KEY) or (file.api_key.get_secret_value() if file.api_key else "")
    secret = environ.get(ENV_SECRET) or (file.api_secret.get_secret_value() if file.api_secret else "")
    missing = [name for name, value in ((ENV_KEY, key), (ENV_SECRET, secret)) if not value.strip()]
    if missing:
        raise ConfigError(
            f"missing credentials: set {' and '.join(missing)} in the environment "
            f"or api_key/api_secret in {default_config_path()} (mode 600)"
        )
    return SecretStr(key.strip()), SecretStr(secret.strip())


class UserError(Exception):
    """Shown as one line: ``blotter: <message>``."""


# -- settings ------------------------------------------------------------------------
def _opt(args: argparse.Namespace, name: str, file_value: Any = None, default: Any = None) -> Any:
    value = getattr(args, name, None)
    if value is not None and value is not False:
        return value
    if file_value is not None:
        return file_value
    return default


def resolve_url(args: argparse.Namespace, file: FileConfig) -> str:
    url = getattr(args, "url", None)
    env = getattr(args, "env", None)
    group = getattr(args, "account_group", None)
    if url and env:
        raise UserError("give either --url or --env/--account-group, not both")
    if not url and env is None:
        url = file.url
        env = file.env
        if group is None:
            group = file.account_group
    if url:
        return check_url(url)
    if env is not None:
        if group is None:
            raise UserError(f"--env {env} needs --account-group N (your API key's account group)")
        return check_url(build_url(env, group))
    raise UserError("no exchange given: use --url URL, or --env mainnet|testnet --account-group N (or url/env in the config file)")


def load_config(args: argparse.Namespace) -> FileConfig:
    path = getattr(args, "config", None)
    return load_file(path, explicit=path is not None)


def desk_settings(args: argparse.Namespace, file: FileConfig, url: str | None = None, key: Any = None, secret: Any = None):
    from ..desk import DeskSettings

    if key is None or secret is None:
        key, secret = credentials(file)
    return DeskSettings(
        url=url or resolve_url(args, file),
        api_key=key,
        api_secret=secret,
        secret_encoding=_opt(args, "secret_encoding", file.secret_encoding, "base64"),
        auth_mode=_opt(args, "auth_mode", None, "headers"),
        ca_file=_opt(args, "ca_file", file.ca_file),
        request_timeout=_opt(args, "timeout", file.request_timeout, 5.0),
        stale_after=_opt(args, "stale_after", file.stale_after, 10.0),
        read_only=bool(_opt(args, "read_only", file.read_only, False)),
        cancel_on_hangup=bool(_opt(args, "cancel_on_hangup", file.cancel_on_hangup, False)),
    )


def open_journal(args: argparse.Namespace, file: FileConfig, warn: list[str], key: Any = None, secret: Any = None):
    """The audit journal, or None when turned off. A journal that cannot be opened
    degrades to a warning (the caller shows it), never a crash."""
    if getattr(args, "no_journal", False) or file.no_journal:
        return None
    from ..journal import Journal, JournalError

    path = Path(_opt(args, "journal", file.journal, None) or default_journal_path())
    try:
        return Journal.open(path, mask=[key], redact=[secret])
    except JournalError as exc:
        warn.append(f"journal disabled: {exc}")
        return None


def ui_settings(args: argparse.Namespace, file: FileConfig):
    from ..ui.app import UiSettings
    from ..ui.themes import load_theme

    theme = _opt(args, "theme", file.theme, "dark")
    load_theme(theme, user_dir=_user_themes_dir())  # fail early, one line, before the screen opens
    kwargs: dict[str, Any] = {"theme": theme, "keymap": dict(file.keymap), "theme_dir": _user_themes_dir()}
    linger = _opt(args, "final_linger", file.final_linger, None)
    if linger is not None:
        kwargs["final_linger"] = linger
    if os.environ.get("NO_COLOR"):
        kwargs["no_color"] = True
    return UiSettings(**kwargs)


def _user_themes_dir() -> Path:
    return config_dir() / "themes"
