"""tests/skips_fail_ci.py: a skip fails the run in CI and only there."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]

_SKIPPING = """
import pytest

def test_passes() -> None:
    pass

def test_needs_a_tool() -> None:
    pytest.skip("the tool is missing")
"""


@pytest.mark.parametrize(
    ("env", "code"),
    [({}, pytest.ExitCode.OK), ({"CI": "true"}, pytest.ExitCode.TESTS_FAILED)],
)
def test_a_skip_fails_the_run_only_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], code: pytest.ExitCode
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LAGWATCH_FORBID_SKIPS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(_SKIPPING)
    result = pytester.runpytest_subprocess("-p", "tests.skips_fail_ci", "-ra")
    assert result.ret == code
    result.assert_outcomes(passed=1, skipped=1)


def test_a_failure_keeps_its_own_exit_code_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile("def test_fails() -> None:\n    assert False\n")
    assert pytester.runpytest_subprocess("-p", "tests.skips_fail_ci").ret == pytest.ExitCode.TESTS_FAILED
