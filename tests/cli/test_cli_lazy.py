"""`ktrdr --help` stays light: it lists every command without importing any of their modules."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["fastapi", "sqlalchemy", "numpy", "pandas", "torch", "httpx", "rich", "pydantic", "uvicorn"]

PROBE = """
import sys
sys.argv = ["ktrdr", "--help"]
from ktrdr.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
loaded = sorted(m for m in {heavy!r} if m in sys.modules)
print("LOADED=" + ",".join(loaded), "EXIT=" + str(code))
"""


def test_help_imports_no_heavy_module_and_lists_every_command():
    probe = PROBE.format(heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    out = done.stdout
    assert "LOADED= EXIT=0" in out
    for command in ("serve", "up", "demo", "train", "backtest", "ops", "workers", "data", "models"):
        assert f"  {command} " in out
    assert "strategies" in out and "healthcheck" in out and "db" in out


def test_every_listed_command_resolves_to_a_click_command():
    import click

    from ktrdr.cli import COMMANDS, cli

    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command), name


def test_python_dash_m_ktrdr_is_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "ktrdr", "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.startswith("ktrdr, version ")
