"""Every check test runs in learning mode unless it sets nbgrader's or the course's grading variable itself."""

import pytest


@pytest.fixture(autouse=True)
def learning_mode(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("NST_GRADING", raising=False)
