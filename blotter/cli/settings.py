"""The one settings model: every option of the blotter, defined once.

Each option is a field of :class:`Settings`. Its default and help text are those of
the layer that uses it (:class:`~blotter.net.session.SessionSettings`,
:class:`~blotter.desk.DeskSettings`, :class:`~blotter.ui.settings.UiSettings`): the
field here is that field, with where the option comes from added (flag, environment
variable, config-file key). ``blotter --help`` is generated from these fields, and
the lower layers' settings are built from the one model, so nothing is restated.

Order of precedence (pydantic-settings sources): command-line flags > environment >
config file > defaults. Credentials are the exception: they come from the environment
(``ASCENDEX_API_KEY``, ``ASCENDEX_API_SECRET``) or the config file, never from flags
(flags show in ``ps``). Every bad value is one line naming the option, where it came
from and what is allowed. The config file is refused, the way ssh refuses a private
key, if others can read or write it or a directory above it, or if someone else owns it.
"""

from __future__ import annotations

import argparse
import math
import os
import stat
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import platformdirs
from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import Field, SecretStr, TypeAdapter, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from ..desk import DeskSettings
from ..net.endpoints import build_url, check_url, display_url
from ..net.rest import check_rest_url
from ..net.session import SessionSettings
from ..protocol.signing import mask_key
from ..ui.settings import UiSettings

APP_NAME = "blotter"
ENV_KEY = "ASCENDEX_API_KEY"
ENV_SECRET = "ASCENDEX_API_SECRET"
ENV_CONFIG = "BLOTTER_CONFIG"
MAX_CONFIG_BYTES = 1 << 20
"""A config file is a few hundred bytes; anything over 1 MB is refused unread."""
MAX_CONFIG_DEPTH = 8
"""Tables and arrays nested deeper than this are refused (the parser would recurse)."""


class ConfigError(Exception):
    """One line saying what is wrong and what to do. Never contains a secret."""


class UserError(Exception):
    """Shown as one line: ``blotter: <message>``."""


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_config_path() -> Path:
    return config_dir() / "config.toml"


def default_journal_path() -> Path:
    return data_dir() / "journal.sqlite3"


def demo_journal_path() -> Path:
    """The demo's own journal: a simulator session never goes into the trader's journal."""
    return data_dir() / "demo-journal.sqlite3"


def user_themes_dir() -> Path:
    return config_dir() / "themes"


# -- declaring options -------------------------------------------------------------
def option(
    source: type[Any] | None = None,
    name: str | None = None,
    *,
    flag: str | None = None,
    env: str | None | Literal[True] = True,
    file: bool = True,
    group: str = "connection",
    metavar: str | None = None,
    **field: Any,
) -> Any:
    """A field of :class:`Settings`.

    ``source.model_fields[name]`` (a lower layer's field) gives the default, the
    constraints and the help text, unless ``field`` gives them (an option that only
    the command line has). ``flag``: its command-line flag (None: none, e.g. secrets);
    ``env``: its environment variable (True: ``BLOTTER_<NAME>``, set by
    :class:`Settings`); ``file``: whether the config file may set it."""
    cli: dict[str, Any] = {"flag": flag, "env": env, "file": file, "group": group, "metavar": metavar}
    if source is None:
        return Field(json_schema_extra={"cli": cli}, **field)
    base = source.model_fields[name]
    info = FieldInfo.merge_field_infos(base, **field) if field else base._copy()
    info.json_schema_extra = {"cli": cli}
    return info


class Settings(BaseSettings):
    """Every option of ``blotter``. Field names are the config file's keys."""

    model_config = SettingsConfigDict(extra="forbid", allow_inf_nan=False, validate_default=False)

    # --- exchange connection ---------------------------------------------------------
    url: str | None = option(SessionSettings, "url", default=None, flag="--url", metavar="URL")
    env: Literal["mainnet", "testnet"] | None = option(
        flag="--env", default=None, description="Build the URL for this environment (with the account group)."
    )
    account_group: int | None = option(DeskSettings, "account_group", flag="--account-group", metavar="N")
    rest_url: str | None = option(DeskSettings, "rest_url", flag="--rest-url", metavar="URL")
    reconcile_every: float = option(DeskSettings, "reconcile_every", flag="--reconcile-every", metavar="SEC")
    rest_fallback_after: float = option(
        DeskSettings, "rest_fallback_after", flag="--rest-fallback-after", metavar="SEC"
    )
    api_key: SecretStr | None = option(SessionSettings, "api_key", default=None, env=ENV_KEY)
    api_secret: SecretStr | None = option(SessionSettings, "api_secret", default=None, env=ENV_SECRET)
    secret_encoding: Literal["base64", "raw"] = option(SessionSettings, "secret_encoding", flag="--secret-encoding")
    auth_mode: Literal["headers", "op"] = option(SessionSettings, "auth_mode", flag="--auth-mode")
    ca_file: str | None = option(SessionSettings, "ca_file", flag="--ca-file", metavar="PEM")
    request_timeout: float = option(DeskSettings, "request_timeout", flag="--timeout", metavar="SEC")
    journal: str | None = option(
        flag="--journal",
        metavar="PATH",
        default=None,
        description=f"Audit journal file (default {default_journal_path()}).",
    )
    no_journal: bool = option(flag="--no-journal", default=False, description="Do not write the audit journal.")
    config: str | None = option(
        flag="--config",
        metavar="PATH",
        env=ENV_CONFIG,
        file=False,
        default=None,
        description=f"Config file (default {default_config_path()}).",
    )

    # --- screen -------------------------------------------------------------------------
    theme: str = option(UiSettings, "theme", flag="--theme", metavar="NAME", group="screen")
    read_only: bool = option(DeskSettings, "read_only", flag="--read-only", group="screen")
    cancel_on_hangup: bool = option(DeskSettings, "cancel_on_hangup", flag="--cancel-on-hangup", group="screen")
    hangup_grace: float = option(DeskSettings, "hangup_grace", flag="--hangup-grace", metavar="SEC", group="screen")
    stale_after: float = option(DeskSettings, "stale_after", flag="--stale-after", metavar="SEC", group="screen")
    final_linger: float = option(UiSettings, "final_linger", flag="--final-linger", metavar="SEC", group="screen")
    keymap: dict[str, str] = option(UiSettings, "keymap", env=None, group="screen")

    @field_validator("api_key", "api_secret")
    @classmethod
    def _printable(cls, value: SecretStr | None) -> SecretStr | None:
        return check_credential(value)

    @classmethod
    def options(cls) -> dict[str, dict[str, Any]]:
        """field name -> where it comes from (flag, env, file, group, metavar)."""
        out = {}
        for name, info in cls.model_fields.items():
            cli = dict((info.json_schema_extra or {})["cli"])  # type: ignore[index, arg-type]
            if cli["env"] is True:
                cli["env"] = f"BLOTTER_{name.upper()}"
            out[name] = cli
        return out


def check_credential(value: SecretStr | None) -> SecretStr | None:
    """A credential with whitespace or control characters inside (a pasted CR/LF)
    would go into a header or an error message; refuse it without ever echoing it."""
    if value is None:
        return None
    text = value.get_secret_value().strip()
    if not text:
        return None
    if any(not (ch.isascii() and ch.isprintable()) or ch.isspace() for ch in text):
        raise ValueError(
            "contains a space, a control character or a non-ASCII character (a stray line break?); paste it again"
        )
    return SecretStr(text)


# -- reading each source, checking each value where it comes from -----------------------
def _where(name: str, source: str, path: Path | None = None) -> str:
    opts = Settings.options()[name]
    if source == "flag":
        return opts["flag"] or name
    if source == "environment":
        return str(opts["env"])
    return f"config file {path}: {name}"


def _choices(annotation: Any) -> list[str]:
    """The values of a ``Literal[...]`` (or ``Literal[...] | None``) annotation."""
    if get_origin(annotation) is Literal:
        return [str(v) for v in get_args(annotation)]
    return [v for a in get_args(annotation) for v in _choices(a)]


def allowed(info: FieldInfo) -> str:
    """What a field accepts, in words, from its type and constraints."""
    ann = info.annotation
    args = [a for a in get_args(ann) if a is not type(None)]
    choices = _choices(ann)
    if choices:
        return "one of: " + ", ".join(choices)
    kinds = {
        float: "a number",
        int: "a whole number",
        bool: "true or false",
        str: "text",
        dict[str, str]: 'a table of "binding id" = "key"',
    }
    base = next((kinds[a] for a in (args or [ann]) if a in kinds), "a value")
    bounds = []
    for m in info.metadata:
        for cls_, sign, attr in ((Gt, ">", "gt"), (Ge, "≥", "ge"), (Lt, "<", "lt"), (Le, "≤", "le")):
            if isinstance(m, cls_):
                bounds.append(f"{sign} {getattr(m, attr):g}")
        if isinstance(m, MinLen):
            bounds.append(f"at least {m.min_length} long")
    return base + (" " + " and ".join(bounds) if bounds else "")


def check_value(name: str, value: Any, where: str) -> Any:
    """``value`` for field ``name`` as the model will accept it, or a one-line
    :class:`ConfigError` naming ``where`` it came from and what is allowed."""
    info = Settings.model_fields[name]
    secret = name in ("api_key", "api_secret")
    try:
        checked = TypeAdapter(_annotated(info)).validate_python(value)
    except ValidationError:
        got = "" if secret else f" (got {_shown(value)})"
        raise ConfigError(f"{where}: must be {allowed(info)}{got}") from None
    if isinstance(checked, float) and not math.isfinite(checked):
        raise ConfigError(f"{where}: must be {allowed(info)} (got {_shown(value)})")
    if secret:
        try:
            checked = check_credential(checked)
        except ValueError as exc:
            raise ConfigError(f"{where}: the {name.replace('_', ' ')} {exc}") from None
    return checked


def _annotated(info: FieldInfo) -> Any:
    if not info.metadata:
        return info.annotation
    return Annotated[(info.annotation, *info.metadata)]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def flag_type(name: str):
    """argparse ``type=`` for the flag of field ``name``: checked like any other source."""
    flag = Settings.options()[name]["flag"]

    def convert(text: str) -> Any:
        try:
            return check_value(name, text, flag)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag}: ")) from None

    convert.__name__ = flag or name  # argparse names the type in some messages
    return convert


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for name, opts in Settings.options().items():
        var = opts["env"]
        if var and environ.get(var, "") != "":
            values[name] = check_value(name, environ[var], var)
    return values


def check_file_access(path: Path) -> None:
    """Refuse a config file that someone else could have written or can read: owned by
    another user, readable or writable by group or others, or in a directory (or a
    directory above) that others can write without the sticky bit. As ssh does."""
    if sys.platform == "win32":  # pragma: no cover
        return
    me = os.geteuid()
    st = path.stat()
    if st.st_uid not in (me, 0):
        raise ConfigError(
            f"config file {path} is owned by uid {st.st_uid}, not by you (uid {me}); "
            f"it may hold your API secret: use a file of your own (chown or copy it)"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"config file {path} is accessible by others (mode {mode:03o}); "
            f"it may hold your API secret: run  chmod 600 {path}"
        )
    for folder in path.resolve().parents:
        dst = folder.stat()
        dmode = stat.S_IMODE(dst.st_mode)
        if dst.st_uid not in (me, 0):
            raise ConfigError(
                f"config file {path}: directory {folder} belongs to uid {dst.st_uid}, who could replace the file; "
                "keep the config in a directory of your own"
            )
        if dmode & (stat.S_IWGRP | stat.S_IWOTH) and not dmode & stat.S_ISVTX:
            raise ConfigError(
                f"config file {path}: directory {folder} is writable by others (mode {dmode:03o}), "
                f"who could replace the file: run  chmod go-w {folder}"
            )


def _depth(text: str) -> int:
    """Deepest nesting of brackets and braces outside strings (a cheap upper bound)."""
    depth = deepest = 0
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl
            continue
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "\n":
            pass
        i += 1
    return deepest


def read_file(path: Path, explicit: bool) -> dict[str, Any]:
    """The config file's values, each checked. A missing default file is fine; a
    missing explicit one is not."""
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist; check --config")
        return {}
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a file; check --config")
    check_file_access(path)
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} is over {MAX_CONFIG_BYTES // 1024} KB; it is not a blotter config")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if _depth(text) > MAX_CONFIG_DEPTH:
        raise ConfigError(
            f"config file {path} nests tables or arrays more than {MAX_CONFIG_DEPTH} deep; it is not a blotter config"
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"config file {path} nests too deeply; it is not a blotter config") from None
    options = Settings.options()
    valid = [k for k, o in options.items() if o["file"]]
    values = {}
    for key, value in data.items():
        if key not in valid:
            raise ConfigError(f"config file {path}: unknown key {key!r}; valid keys: {', '.join(valid)}")
        values[key] = check_value(key, value, f"config file {path}: {key}")
    return values


class _Checked(PydanticBaseSettingsSource):
    """A source whose values were read and checked above (environment or file)."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.values = values

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


ENDPOINT = ("url", "env")


_last: list[Settings] = []


def load(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None, *, use_file: bool = True
) -> Settings:
    """The settings from flags > environment > config file > defaults.

    ``flags``: field name -> value given on the command line. The endpoint is one
    choice: the strongest source that names a URL or an environment decides it."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    env = read_environment(environ)
    file: dict[str, Any] = {}
    if use_file:
        given = flags.get("config") or env.get("config")
        path = Path(given).expanduser() if given else default_config_path()
        file = read_file(path, explicit=given is not None)
    layers = [flags, env, file]
    for i, layer in enumerate(layers):
        if any(k in layer for k in ENDPOINT):
            for lower in layers[i + 1 :]:
                for k in ENDPOINT:
                    lower.pop(k, None)
            break
    _refuse_contradictions(flags, env, file)
    sources = (InitSettingsSource(Settings, init_kwargs=flags), _Checked(Settings, env), _Checked(Settings, file))
    settings = Settings(_build_sources=(sources, flags))  # pydantic-settings' documented hook
    _last[:] = [settings]
    return settings


def _refuse_contradictions(*layers: dict[str, Any]) -> None:
    names = ("flag", "environment", "config file")
    merged: dict[str, tuple[Any, str]] = {}
    for layer, source in reversed(list(zip(layers, names, strict=True))):
        for k, v in layer.items():
            merged[k] = (v, source)
    ro, coh = merged.get("read_only"), merged.get("cancel_on_hangup")
    if ro and coh and ro[0] and coh[0]:
        opts = Settings.options()

        def said(name: str, source: str) -> str:
            o = opts[name]
            return {"flag": o["flag"], "environment": f"{o['env']}", "config file": f"{name} in the config file"}[
                source
            ]

        raise ConfigError(
            f"{said('read_only', ro[1])} and {said('cancel_on_hangup', coh[1])} contradict each other: "
            "a read-only blotter cannot cancel on hangup; drop one of them"
        )
    url, env = merged.get("url"), merged.get("env")
    if url and env and url[1] == env[1]:
        raise ConfigError(
            "give either a URL (--url, url) or an environment (--env, env) with its account group, not both"
        )


# -- the command line ------------------------------------------------------------------
def add_options(parser: argparse.ArgumentParser, group: str, title: str, names: Iterable[str] | None = None) -> None:
    """Add the flags of ``group``'s fields to ``parser``; help says default, env var and file key."""
    options = Settings.options()
    unflagged = []
    for name, info in Settings.model_fields.items():
        o = options[name]
        if o["group"] == group and not o["flag"] and (names is None or name in names):
            found = "; ".join(
                x for x in (f"env {o['env']}" if o["env"] else "", f"file: {name}" if o["file"] else "") if x
            )
            unflagged.append(f"{name} ({found}): {(info.description or '').rstrip('.')}")
    g = parser.add_argument_group(title, "no flag for: " + "; ".join(unflagged) if unflagged else None)
    for name, info in Settings.model_fields.items():
        o = options[name]
        if o["group"] != group or not o["flag"] or (names is not None and name not in names):
            continue
        help_text = (info.description or "").rstrip(".")
        where = []
        if info.annotation is not bool and info.default not in (None, PydanticUndefined):
            where.append(f"default {info.default:g}" if isinstance(info.default, float) else f"default {info.default}")
        if o["env"]:
            where.append(f"env {o['env']}")
        if o["file"]:
            where.append(f"file: {name}")
        if where:
            help_text += " (" + "; ".join(where) + ")"
        if info.annotation is bool:
            g.add_argument(o["flag"], dest=name, action="store_true", default=argparse.SUPPRESS, help=help_text)
        else:
            choices = _choices(info.annotation)
            metavar = o["metavar"] or ("{" + ",".join(choices) + "}" if choices else name.upper())
            g.add_argument(
                o["flag"], dest=name, metavar=metavar, type=flag_type(name), default=argparse.SUPPRESS, help=help_text
            )


def flags_of(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags in a parsed command line."""
    return {name: getattr(args, name) for name in Settings.model_fields if hasattr(args, name)}


def load_config(args: argparse.Namespace) -> Settings:
    """The settings for a parsed command line (flags > environment > file > defaults)."""
    return load(flags_of(args))


def credentials(settings: Settings) -> tuple[SecretStr, SecretStr]:
    """API key and secret: environment first, then the config file."""
    missing = [var for var, value in ((ENV_KEY, settings.api_key), (ENV_SECRET, settings.api_secret)) if value is None]
    if missing:
        raise ConfigError(
            f"missing credentials: set {' and '.join(missing)} in the environment "
            f"or api_key/api_secret in {Path(settings.config).expanduser() if settings.config else default_config_path()}"
            " (mode 600)"
        )
    assert settings.api_key is not None and settings.api_secret is not None
    return settings.api_key, settings.api_secret


def resolve_url(settings: Settings) -> str:
    if settings.url:
        return check_url(settings.url)
    if settings.env is not None:
        if settings.account_group is None:
            raise UserError(f"--env {settings.env} needs --account-group N (your API key's account group)")
        return check_url(build_url(settings.env, settings.account_group))
    raise UserError(
        "no exchange given: use --url URL, or --env mainnet|testnet --account-group N (or url/env in the config file)"
    )


def desk_settings(
    args: argparse.Namespace | None, settings: Settings, url: str | None = None, key: Any = None, secret: Any = None
) -> DeskSettings:
    """The desk's slice of the one model (``args`` is kept for callers; the model has the flags)."""
    if key is None or secret is None:
        key, secret = credentials(settings)
    values = {k: getattr(settings, k) for k in set(DeskSettings.model_fields) & set(Settings.model_fields)}
    values.update(url=url or resolve_url(settings), api_key=key, api_secret=secret)
    if settings.rest_url:
        values["rest_url"] = check_rest_url(settings.rest_url)  # a bad --rest-url: one line, exit 2
    return DeskSettings(**values)


def ui_settings(args: argparse.Namespace | None, settings: Settings) -> UiSettings:
    """The screen's slice of the one model; the theme and the keymap are checked here,
    before the screen opens (one line, exit 2)."""
    from ..ui.themes import load_theme

    load_theme(settings.theme, user_dir=user_themes_dir())
    check_keymap(settings.keymap)
    values = {k: getattr(settings, k) for k in set(UiSettings.model_fields) & set(Settings.model_fields)}
    return UiSettings(**values, theme_dir=user_themes_dir())


def open_journal(
    args: argparse.Namespace | None,
    settings: Settings,
    warn: list[str],
    key: Any = None,
    secret: Any = None,
    *,
    endpoint: str | None = None,
    default: Path | None = None,
):
    """The audit journal, or None when turned off. A journal that cannot be opened
    degrades to a warning (the caller shows it), never a crash. ``endpoint`` (shown
    without credentials) is recorded for the session."""
    if settings.no_journal:
        return None
    from ..journal import Journal, JournalError

    path = Path(settings.journal).expanduser() if settings.journal else (default or default_journal_path())
    if endpoint is None:
        try:
            endpoint = resolve_url(settings)
        except (UserError, ValueError):
            endpoint = None
    try:
        return Journal.open(path, mask=[key], redact=[secret], endpoint=display_url(endpoint) if endpoint else None)
    except JournalError as exc:
        warn.append(f"journal disabled: {exc}")
        return None


# -- keymap ------------------------------------------------------------------------------
_MODIFIERS = {"ctrl", "shift", "alt", "meta", "super", "hyper"}


def bindings() -> list[tuple[str, str, str]]:
    """Every binding of the screen: (id, default keys, what it does). Plain data from
    :mod:`blotter.ui.bindings`: no Textual, no app."""
    from ..ui.bindings import binding_ids as ui_binding_ids

    return [(binding_id, keys, description) for binding_id, (keys, description) in ui_binding_ids().items()]


def binding_ids() -> list[str]:
    return [b[0] for b in bindings()]


def key_error(key: str) -> str | None:
    """Why ``key`` (one key of a keymap entry, e.g. ``ctrl+x``) is not a key, or None."""
    from textual.keys import KEY_NAME_REPLACEMENTS, Keys, key_to_character

    *mods, name = key.split("+")
    bad = [m for m in mods if m not in _MODIFIERS]
    if bad:
        return f"{bad[0]!r} is not a modifier (use {', '.join(sorted(_MODIFIERS))})"
    if not name:
        return "no key after the modifiers"
    if len(name) == 1:
        return None if name.isprintable() and not name.isspace() else f"{name!r} is not a printable key"
    names = {k.value.rpartition("+")[2] for k in Keys} | set(KEY_NAME_REPLACEMENTS.values())
    names |= {
        "space",
        "enter",
        "tab",
        "escape",
        "backspace",
        "delete",
        "insert",
        "home",
        "end",
        "pageup",
        "pagedown",
        "up",
        "down",
        "left",
        "right",
    } | {f"f{i}" for i in range(1, 25)}
    if name in names or key_to_character(name) is not None:
        return None
    return f"{name!r} is not a key name Textual knows (e.g. delete, ctrl+x, f5, question_mark)"


def check_keymap(keymap: Mapping[str, str]) -> None:
    """Every ``[keymap]`` entry names a binding id that exists and keys that parse."""
    if not keymap:
        return
    ids = set(binding_ids())
    for binding_id, keys in keymap.items():
        if binding_id not in ids:
            raise ConfigError(
                f"[keymap] {binding_id!r}: no binding has this id; "
                "see the valid ids with  blotter --list-bindings  (or ? in the blotter)"
            )
        for key in [k.strip() for k in keys.split(",")]:
            why = key_error(key)
            if why:
                raise ConfigError(f"[keymap] {binding_id!r} = {keys!r}: {why if key else 'an empty key'}")
    _refuse_clashes(keymap)


_KEY_ALIASES = {"?": "question_mark", "/": "slash", "esc": "escape", "return": "enter", " ": "space"}
_RESERVED = {"ctrl+c": "Ctrl-C (the interrupt a trader presses to get out)", "ctrl+q": "Ctrl-Q (quit)"}
_TOGETHER = (("main screen", "orders table"), ("main screen", "positions pane"))
"""Scopes whose keys are in force at the same time (a dialog's keys are alone in theirs;
the orders table and the positions pane take turns, by focus)."""


def _refuse_clashes(keymap: Mapping[str, str]) -> None:
    """A key the keymap gives one binding must be neither a reserved key nor still the key
    of another binding in force at the same time: ``"blotter.cancel" = "q"`` would make q
    cancel the selected order where the trader expects the quit dialog."""
    from ..ui.bindings import SCOPES

    scope_of = {spec.id: scope for scope, group in SCOPES.items() for spec in group}
    described = {spec.id: spec.description for group in SCOPES.values() for spec in group}
    effective = {spec.id: keymap.get(spec.id, spec.key) for group in SCOPES.values() for spec in group}

    def keys_of(text: str) -> set[str]:
        return {_KEY_ALIASES.get(k.strip(), k.strip()) for k in text.split(",") if k.strip()}

    def together(a: str, b: str) -> bool:
        sa, sb = scope_of[a], scope_of[b]
        return sa == sb or (sa, sb) in _TOGETHER or (sb, sa) in _TOGETHER

    for binding_id, keys in keymap.items():
        for key in sorted(keys_of(keys)):
            if key.lower() in _RESERVED:
                raise ConfigError(
                    f"[keymap] {binding_id!r} = {keys!r}: {_RESERVED[key.lower()]} is reserved; choose another key"
                )
            for other, other_keys in effective.items():
                if other != binding_id and together(binding_id, other) and key in keys_of(other_keys):
                    raise ConfigError(
                        f"[keymap] {binding_id!r} = {keys!r}: {key} is already the key of {other!r} "
                        f"({described[other]}); give that one another key too, or choose a free key "
                        "(blotter --list-bindings)"
                    )


def masked(text: str, settings: Settings | None = None) -> str:
    """``text`` with the credentials replaced: the key masked, the secret removed
    (those of ``settings``, or of the settings loaded last)."""
    settings = settings or (_last[0] if _last else None)
    if settings is None:
        return text
    if settings.api_secret is not None and settings.api_secret.get_secret_value():
        text = text.replace(settings.api_secret.get_secret_value(), "[redacted]")
    if settings.api_key is not None and settings.api_key.get_secret_value():
        key = settings.api_key.get_secret_value()
        text = text.replace(key, mask_key(key))
    return text
