"""Smoke test of the benchmarks: every one at a tiny size, through scripts/bench.

`scripts/bench all` starts one embedded Postgres and gives each benchmark fresh databases
in it (one initdb instead of four), so the whole thing stays well under a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TITLES = ("== seed-500:", "== scale-100k:", "== queue-core:", "== idle:")


@pytest.mark.timeout(300)   # the first run may install the `bench` extra
def test_every_benchmark_runs_at_a_tiny_size_and_accounts_for_every_post() -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY")}
    env["PYTHON"] = sys.executable
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [str(ROOT / "scripts" / "bench"), "all", "--size", "0.001", "--runs", "1",
         "--workers", "1,2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280, check=False)
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out[-4000:]}\n{done.stderr[-4000:]}"
    for title in TITLES:
        assert title in out, f"no {title} table in:\n{out[-4000:]}"
    assert out.count("| metric |") == len(TITLES)
    assert out.count("RESULT: correct") == len(TITLES)
    assert "MISMATCH" not in out
