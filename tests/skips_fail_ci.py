"""pytest plugin: where CI (or LAGWATCH_FORBID_SKIPS) is set, a skipped test fails the run.

A test skips on a developer's machine when a tool it needs is missing; in CI the same gap is a broken setup,
and a green run with skips would claim coverage that never ran. -ra's summary names each skip and its reason.
"""

from __future__ import annotations

import os
import sys

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not (os.environ.get("CI") or os.environ.get("LAGWATCH_FORBID_SKIPS")):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped and exitstatus == pytest.ExitCode.OK:
        print(f"\n{skipped} test(s) skipped where every test must run (CI): failing the run", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
