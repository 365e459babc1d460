"""Every check test runs in learning mode unless it sets nbgrader's or the course's grading variable itself.

Every mistake a check names during these tests must be one it declares (``check.mistakes``, or
``COMMON_MISTAKES``), with a message of that title; and when all of tests/checks runs and passes, every
declared mistake must have been named by some test (the teacher's guide lists no mistake that never occurs).
"""

import re
from pathlib import Path

import pytest

from nst_helpers import checks
from nst_helpers.checks import engine

NAMED: set[tuple[str, str]] = set()   # (id, title) of every mistake named in this session, titles as declared
DESELECTED: list = []


@pytest.fixture(autouse=True)
def learning_mode(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("NST_GRADING", raising=False)


def declared_as(result) -> tuple[str, str] | None:
    """The declared (id, title) that a failed check's result is an instance of, or None."""
    check = getattr(checks, f"check_{result.name}", None)
    declared = getattr(check, "mistakes", ()) + engine.COMMON_MISTAKES.listed()
    for mistake, title in declared:
        pattern = ".*".join(re.escape(part) for part in title.split("…"))
        if mistake == result.mistake and re.match(rf"❌ {re.escape(result.name)}: {pattern} — ", result.message, re.S):
            return mistake, title
    return None


@pytest.fixture(autouse=True)
def named_mistakes_are_declared(monkeypatch):
    failed = []
    finish = engine.finish

    def watched(result, *args, **kwargs):
        if not result.passed:
            failed.append(result)
        return finish(result, *args, **kwargs)
    monkeypatch.setattr(engine, "finish", watched)
    yield
    for result in failed:
        pair = declared_as(result)
        assert pair, f"check_{result.name} does not declare the mistake it named: {result.message}"
        NAMED.add(pair)


def pytest_deselected(items):
    DESELECTED.extend(items)


def pytest_sessionfinish(session, exitstatus):
    here = Path(__file__).parent
    ran = {item.path for item in session.items if item.path.parent == here}
    whole = ran == set(here.glob("test_*.py")) and not any(item.path.parent == here for item in DESELECTED)
    if exitstatus != 0 or not whole or session.config.option.collectonly:
        return   # only a full, passing run of tests/checks says which mistakes no test names
    declared = {pair for name in checks.__all__ if name.startswith("check_") for pair in getattr(checks, name).mistakes}
    never = sorted((declared | set(engine.COMMON_MISTAKES.listed())) - NAMED)
    if never:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line("checks declare mistakes that no test names: " + "; ".join(
            f"{title} ({mistake})" for mistake, title in never), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
