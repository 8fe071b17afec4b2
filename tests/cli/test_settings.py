"""The one settings model and the command line around it: every option defined once,
checked where it comes from (flag, environment, config file), one line and exit 2
for anything wrong; the config file refused like ssh refuses a loose key."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from blotter.sim import DEMO_API_KEY, DEMO_API_SECRET, SimConfig
from tests.helpers import sim_in_thread

DEAD_URL = "ws://127.0.0.1:9/1/api/pro/v2/stream"


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASCENDEX_", "BLOTTER_"))}
    env.update(
        ASCENDEX_API_KEY=DEMO_API_KEY,
        ASCENDEX_API_SECRET=DEMO_API_SECRET,
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        HOME=str(tmp_path),
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def blotter(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 40,
    stdin: int | None = subprocess.DEVNULL,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blotter", *args],
        capture_output=True,
        text=True,
        env=env or env_for(tmp_path),
        timeout=timeout,
        stdin=stdin,
    )


def config_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    folder = tmp_path / "conf"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


# -- one model: precedence and --help ------------------------------------------------------
def test_flags_beat_environment_beat_file_beat_defaults(tmp_path, monkeypatch):
    from blotter.cli.settings import load
    from blotter.desk import DeskSettings
    from blotter.ui.settings import UiSettings

    cfg = config_file(tmp_path, 'request_timeout = 7\nstale_after = 8\nfinal_linger = 9\ntheme = "light"\n')
    environ = {"BLOTTER_STALE_AFTER": "3", "BLOTTER_FINAL_LINGER": "4", "BLOTTER_CONFIG": str(cfg)}
    s = load({"final_linger": 1.5}, environ)
    assert (s.request_timeout, s.stale_after, s.final_linger, s.theme) == (7, 3, 1.5, "light")
    defaults = load({}, {}, use_file=False)
    # The defaults are the lower layers' own, not restated copies.
    assert defaults.request_timeout == DeskSettings.model_fields["request_timeout"].default
    assert defaults.final_linger == UiSettings.model_fields["final_linger"].default
    assert defaults.stale_after == DeskSettings.model_fields["stale_after"].default


def test_help_documents_every_option(tmp_path):
    from blotter.cli.settings import Settings

    out = blotter(tmp_path, "--help").stdout
    flat = " ".join(out.split())
    for name, opts in Settings.options().items():
        assert (opts["flag"] or name) in flat, name
        if opts["env"]:
            assert opts["env"] in flat, name
    assert "default 5" in flat and "BLOTTER_REQUEST_TIMEOUT" in flat and "ASCENDEX_API_KEY" in flat


# -- bad values: one line naming the option and the range, exit 2 (issue 10 item 11) -----
BAD = ["-1", "0", "nan", "1e309"]


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize(
    "flag, env_var, key",
    [
        ("--timeout", "BLOTTER_REQUEST_TIMEOUT", "request_timeout"),
        ("--stale-after", "BLOTTER_STALE_AFTER", "stale_after"),
    ],
)
def test_bad_numbers_are_usage_errors_everywhere(tmp_path, flag, env_var, key, value):
    # --stale-after is a screen option: checked before the screen opens.
    base = (["orders"] if key == "request_timeout" else []) + ["--url", DEAD_URL, "--no-journal"]
    r = blotter(tmp_path, *base, flag, value)
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert flag in line and "must be a number > 0" in line
    r = blotter(tmp_path, *base, env=env_for(tmp_path, **{env_var: value}))
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert env_var in line and "> 0" in line
    toml_value = {"nan": "nan", "1e309": "inf"}.get(value, value)
    cfg = config_file(tmp_path, f"{key} = {toml_value}\n")
    r = blotter(tmp_path, *base, "--config", str(cfg))
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert f"config file {cfg}: {key}" in line and "> 0" in line


@pytest.mark.parametrize("value", ["-5", "nan", "1e309"])
def test_final_linger_out_of_range_is_a_usage_error(tmp_path, value):
    r = blotter(tmp_path, "--url", DEAD_URL, "--no-journal", "--final-linger", value)
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert "--final-linger" in line and "≥ 0" in line


def test_the_simulator_refuses_infinite_values(tmp_path):
    r = blotter(tmp_path, "sim", "--ack-delay", "1e309", timeout=20)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--ack-delay" in one_line(r.stderr) and "finite" in r.stderr


# -- read-only and cancel-on-hangup contradict (issue 10 item 7) ----------------------------
@pytest.mark.parametrize("how", ["flags", "env", "file"])
def test_read_only_with_cancel_on_hangup_is_refused(tmp_path, how):
    args = ["--url", DEAD_URL, "--no-journal"]
    env = env_for(tmp_path)
    if how == "flags":
        args += ["--read-only", "--cancel-on-hangup"]
    elif how == "env":
        env.update(BLOTTER_READ_ONLY="true", BLOTTER_CANCEL_ON_HANGUP="1")
    else:
        args += ["--config", str(config_file(tmp_path, "read_only = true\ncancel_on_hangup = true\n"))]
    r = blotter(tmp_path, *args, env=env, timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "contradict" in one_line(r.stderr)


# -- keymap checked (issue 11 item 4) ----------------------------------------------------------
@pytest.mark.parametrize(
    "entry, expect",
    [
        ('"blotter.cancle" = "delete"', "'blotter.cancle'"),
        ('"blotter.cancel" = "hyper+ctrl+notakey"', "'notakey'"),
        ('"blotter.cancel" = "banana+x"', "'banana'"),
        ('"blotter.cancel" = "q"', "q is already the key of 'blotter.quit'"),  # q would cancel, not quit
        ('"blotter.cancel" = "X"', "X is already the key of 'blotter.cancel_all'"),
        ('"blotter.cancel" = "ctrl+c"', "is reserved"),
    ],
)
def test_a_bad_keymap_entry_is_one_line_and_exit_2(tmp_path, entry, expect):
    cfg = config_file(tmp_path, f"[keymap]\n{entry}\n")
    r = blotter(tmp_path, "--url", DEAD_URL, "--no-journal", "--config", str(cfg), timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr
    line = one_line(r.stderr)
    assert expect in line and "[keymap]" in line
    if "cancle" in entry:
        assert "blotter --list-bindings" in line


def test_list_bindings_lists_every_id_the_keymap_accepts(tmp_path):
    from blotter.cli.settings import check_keymap

    r = blotter(tmp_path, "--list-bindings")
    assert r.returncode == 0, r.stderr
    ids = [line.split()[0] for line in r.stdout.splitlines()]
    assert {"blotter.cancel", "blotter.cancel_all", "blotter.quit", "orders.down", "quit.stay"} <= set(ids)
    mods = ["ctrl", "alt", "shift", "ctrl+alt", "ctrl+shift", "alt+shift"]
    free = [f"{m}+f{n}" for m in mods for n in range(1, 25)]
    check_keymap(dict(zip(ids, free, strict=False)))  # every listed id is accepted, with a real key of its own
    check_keymap({"blotter.cancel": "delete,question_mark", "blotter.help": "f1"})  # ? moved off help first
    check_keymap({"blotter.cancel": "q", "blotter.quit": "ctrl+x"})  # a swap: q is free once quit moved


# -- the config file (issue 12 item 20) ---------------------------------------------------------
def test_a_config_owned_by_someone_else_is_refused(tmp_path, monkeypatch):
    from blotter.cli.settings import ConfigError, read_file

    cfg = config_file(tmp_path, 'theme = "dark"\n')
    if os.geteuid() == 0:
        os.chown(cfg, 65534, 65534)
    else:
        monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
        monkeypatch.setattr(os, "getuid", lambda: os.getuid() + 1)
    with pytest.raises(ConfigError, match="owned by uid"):
        read_file(cfg, explicit=True)


def test_a_config_in_a_directory_others_can_write_is_refused(tmp_path):
    cfg = config_file(tmp_path, 'theme = "dark"\n')
    cfg.parent.chmod(0o777)
    r = blotter(tmp_path, "orders", "--url", DEAD_URL, "--no-journal", "--config", str(cfg))
    assert r.returncode == 2, r.stderr
    assert "writable by others" in one_line(r.stderr) and "chmod go-w" in r.stderr
    cfg.parent.chmod(0o1777)  # sticky (like /tmp): others cannot replace our file
    from blotter.cli.settings import read_file

    assert read_file(cfg, explicit=True) == {"theme": "dark"}


@pytest.mark.parametrize(
    "text",
    ["a = " + "[" * 50_000 + "]" * 50_000 + "\n", "a = " + "{b = " * 5000 + "1" + "}" * 5000 + "\n"],
    ids=["arrays", "tables"],
)
def test_a_deeply_nested_config_is_one_line(tmp_path, text):
    cfg = config_file(tmp_path, text)
    r = blotter(tmp_path, "orders", "--url", DEAD_URL, "--no-journal", "--config", str(cfg))
    assert r.returncode == 2, r.stderr
    assert "nests" in one_line(r.stderr)


def test_journal_command_takes_a_config_file(tmp_path):
    """``blotter journal --config PATH`` failed with an internal AttributeError (issue 12 item 18)."""
    cfg = config_file(tmp_path, f'journal = "{tmp_path / "j.sqlite3"}"\n')
    r = blotter(tmp_path, "journal", "--config", str(cfg))
    assert r.returncode in (0, 2), r.stderr
    assert "internal error" not in r.stderr and "AttributeError" not in r.stderr
    r2 = blotter(tmp_path, "journal", "--config", str(cfg), "--journal", str(tmp_path / "other.sqlite3"))
    assert "internal error" not in r2.stderr


# -- secrets (issue 12 item 3) ---------------------------------------------------------------------
def test_a_key_with_a_line_break_is_refused_and_never_echoed(tmp_path):
    key = DEMO_API_KEY[:16] + "\r\n" + DEMO_API_KEY[16:]
    with sim_in_thread(SimConfig(rate=0, ping_interval=0)) as sim:
        for where in ("env", "file"):
            env = env_for(tmp_path)
            args = ["orders", "--url", sim.url, "--no-journal"]
            if where == "env":
                env["ASCENDEX_API_KEY"] = key
            else:
                env.pop("ASCENDEX_API_KEY")
                cfg = config_file(tmp_path, f'api_key = "{key.encode("unicode_escape").decode()}"\n')
                args += ["--config", str(cfg)]
            r = blotter(tmp_path, *args, env=env)
            assert r.returncode == 2, r.stdout + r.stderr
            line = one_line(r.stderr)
            assert "api key" in line and "control character" in line
            for part in (DEMO_API_KEY[:16], DEMO_API_KEY[16:], DEMO_API_SECRET):
                assert part not in r.stdout + r.stderr


def test_core_dumps_are_off_at_start(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        pytest.skip("core dumps already impossible here")
    code = (
        "import resource, sys; from blotter.cli.main import main; main(['--list-themes']); "
        "sys.stderr.write(str(resource.getrlimit(resource.RLIMIT_CORE)[0]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env_for(tmp_path),
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (hard, hard)),
        timeout=30,
    )
    assert r.stderr.strip() == "0", r.stderr


# -- output: a closed pipe ends quietly (issue 10 item 12) --------------------------------------------
def test_a_closed_pipe_ends_quietly(tmp_path):
    with sim_in_thread(SimConfig(initial_orders=3000, rate=0, ping_interval=0)) as sim:
        cmd = f"{sys.executable} -m blotter orders --json --url {sim.url} --no-journal | head -1"
        r = subprocess.run(
            ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, env=env_for(tmp_path), timeout=60
        )
    assert r.stdout.count("\n") == 1 and '"order_id"' in r.stdout
    assert r.stderr == "", r.stderr
    # The command runs to its verdict whoever reads its output (a cancel-all must not be cut
    # short by `| head`): the exit code is the verdict's, not SIGPIPE's 141.
    assert r.returncode == 0


@pytest.mark.parametrize("args", [["--help"], ["cancel", "--help"], ["--list-bindings"]])
def test_help_to_a_reader_that_went_away_ends_quietly_with_141(tmp_path, args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before a byte is written
    try:
        r = subprocess.run(
            [sys.executable, "-m", "blotter", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env_for(tmp_path),
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert r.returncode == 141 and r.stderr == b"", r.stderr


# -- journals: the demo's own, the endpoint per session (issue 10 item 14) ----------------------------
def endpoints(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT endpoint FROM sessions")]


def test_the_journal_records_the_endpoint_of_each_session(tmp_path):
    journal = tmp_path / "j.sqlite3"
    with sim_in_thread(SimConfig(initial_orders=2, rate=0, ping_interval=0)) as sim:
        r = blotter(tmp_path, "orders", "--url", sim.url, "--journal", str(journal))
        assert r.returncode == 0, r.stderr
    assert endpoints(journal) == [sim.url]


def test_the_demo_never_writes_the_trader_s_journal(tmp_path):
    from tests.cli.test_pty import Terminal
    from tests.cli.test_pty import env_for as pty_env

    env = pty_env(tmp_path)
    term = Terminal(["demo", "--orders", "5", "--rate", "0"], env)
    try:
        term.wait_for(lambda t: "LIVE" in t, timeout=30)
        term.child.send("q")
        term.wait_for(lambda t: not term.child.isalive() or "Leave" in t or "leave" in t, timeout=15)
        if term.child.isalive():
            term.child.send("l")
        term.child.expect(__import__("pexpect").EOF, timeout=20)
    finally:
        term.close()
    data = tmp_path / "data" / "blotter"
    assert not (data / "journal.sqlite3").exists()
    demo = data / "demo-journal.sqlite3"
    assert demo.exists()
    assert [e.split(":")[:2] for e in endpoints(demo)] == [["ws", "//127.0.0.1"]]


# -- packaging (issue 10 item 15) ----------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]


def test_the_distribution_name_is_not_the_taken_one():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] != "blotter"  # taken on the package index by an unrelated project
    assert project["scripts"]["blotter"] == "blotter.cli.entry:main"


def test_make_demo_installs_only_what_the_demo_needs():
    demo = subprocess.run(["make", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout
    test = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout
    assert "pip install" in demo and "[test]" not in demo
    assert ".[test]" in test and "pytest" in test


def test_the_endpoint_is_one_choice_from_the_strongest_source(tmp_path):
    from blotter.cli.settings import ConfigError, load, resolve_url

    cfg = config_file(tmp_path, 'env = "mainnet"\naccount_group = 4\n')
    s = load({"url": DEAD_URL, "config": str(cfg)}, {})
    assert resolve_url(s) == DEAD_URL  # the flag's URL wins over the file's environment
    s = load({"config": str(cfg)}, {})
    assert resolve_url(s) == "wss://ascendex.com:443/4/api/pro/v2/stream"
    both = config_file(tmp_path, f'env = "mainnet"\naccount_group = 4\nurl = "{DEAD_URL}"\n')
    with pytest.raises(ConfigError, match="not both"):
        load({"config": str(both)}, {})


# -- the REST road's options (issue 13) -----------------------------------------------------------
@pytest.mark.parametrize(
    "url, expect",
    [
        ("http://example.com", "only loopback hosts may use http://"),
        ("https://user:pw@example.com", "credentials do not belong in the URL"),
        ("https://example.com/api/pro", "give the base only"),
        ("ftp://example.com", "must start with https://"),
    ],
)
def test_a_bad_rest_url_is_one_line_and_exit_2(tmp_path, url, expect):
    r = blotter(tmp_path, "orders", "--url", DEAD_URL, "--no-journal", "--rest-url", url)
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert expect in line and "pw" not in line


@pytest.mark.parametrize("value", ["-1", "nan", "1e309", "100000"])
def test_reconcile_every_out_of_range_is_a_usage_error(tmp_path, value):
    r = blotter(tmp_path, "orders", "--url", DEAD_URL, "--no-journal", "--reconcile-every", value)
    assert r.returncode == 2, r.stderr
    assert "--reconcile-every" in one_line(r.stderr)


def test_the_command_reaches_the_desks_thread_without_the_screen_rest_or_simulator_libraries(tmp_path):
    """What ``blotter`` imports before its desk's thread starts connecting (the theme and
    the settings checked, the journal opened): neither Textual (the screen), httpx and its
    backends (the REST road), nor the simulator. Each is tens of milliseconds by which
    the connection, and a big account's first complete table, would come later."""
    script = (
        "import os, sys\n"
        "import blotter.cli.main as main\n"
        "import blotter.desk as desk\n"
        "def started(self, *args, **kwargs):\n"
        "    names = ('textual', 'httpx', 'httpcore', 'anyio', 'blotter.sim', 'blotter.ui.app')\n"
        "    print('loaded:' + ','.join(n for n in names if n in sys.modules), flush=True)\n"
        "    os._exit(0)\n"
        "desk.Desk.start_thread = started\n"
        f"sys.exit(main.main(['--url', {DEAD_URL!r}, '--theme', 'light']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env_for(tmp_path), timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded:", done.stdout


def test_missing_credentials_name_the_config_file_that_was_given(tmp_path):
    from blotter.cli.settings import ConfigError, credentials, load

    given = tmp_path / "only_url.toml"
    given.write_text('url = "ws://127.0.0.1:9/1/api/pro/v2/stream"\n')
    given.chmod(0o600)
    settings = load({"config": str(given)}, environ={})
    with pytest.raises(ConfigError) as info:
        credentials(settings)
    assert f"api_key/api_secret in {given} (mode 600)" in str(info.value)
