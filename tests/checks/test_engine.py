"""Tests of the checks' engine (checks/engine.py): independence from global state, learning and grading mode."""

import threading

import pytest
import torch

from nst_helpers import checks, losses
from nst_helpers.checks import engine


def gram_plus_one(features, normalize=True):
    """A wrong gram_matrix: every entry 1 too large."""
    return losses.gram_matrix(features, normalize) + 1.0


# --- independence from global state --------------------------------------------------------------


def test_checks_ignore_global_state():
    first = checks.check_gram_matrix(gram_plus_one).message
    torch.manual_seed(1234)
    torch.randn(10)
    with torch.no_grad():  # a notebook may call the check in a no_grad block
        second = checks.check_gram_matrix(gram_plus_one).message
        assert checks.check_tv_loss(losses.tv_loss)
    assert first == second


def test_checks_do_not_touch_the_global_seed():
    torch.manual_seed(7)
    expected = torch.randn(3)
    torch.manual_seed(7)
    checks.check_style_loss(losses.style_loss)
    assert torch.equal(torch.randn(3), expected)


def test_rel_error():
    x = torch.tensor([1.0, 2.0])
    assert checks.rel_error(x, x) == 0.0
    assert checks.rel_error(x, torch.tensor([1.0, 2.5])) == pytest.approx(0.5 / 4.5)


# --- the tables of mistakes --------------------------------------------------------------------

TABLE = engine.Mistakes({"wrong_scale": ("off by {factor:.3g} times ({where}…)", "divide by {what}."),
                         "wrong_scale/small": ("too small", "multiply."),
                         "literal": ("keeps {{braces}}", "write {{name: size}}.")})


def test_a_table_makes_the_mistake_with_its_values_filled_in():
    mistake = TABLE("wrong_scale", factor=2.0 / 3, where="item 1", what="C*H*W")
    assert (mistake.mistake, mistake.title, mistake.advice) == ("wrong_scale", "off by 0.667 times (item 1…)",
                                                                "divide by C*H*W.")
    assert TABLE("wrong_scale/small").mistake == "wrong_scale"          # another wording of the same mistake
    assert TABLE("wrong_scale/small", advice="other {x}").advice == "other {x}"
    assert (TABLE("literal").title, TABLE("literal").advice) == ("keeps {braces}", "write {name: size}.")
    with pytest.raises(KeyError):
        TABLE("not_in_the_table")


def test_a_table_lists_its_titles_with_dots_for_values():
    assert TABLE.listed() == (("wrong_scale", "off by … times (…)"), ("wrong_scale", "too small"),
                              ("literal", "keeps {braces}"))
    assert TABLE.only("literal").listed() == (("literal", "keeps {braces}"),)
    with pytest.raises(AssertionError, match="literal"):
        TABLE | {"literal": ("again", "no.")}


def test_reports_gathers_tables_and_helpers_but_not_the_common_mistakes():
    @engine.reports(TABLE.only("literal"), engine.COMMON_MISTAKES)
    def helper():
        pass

    @engine.reports(TABLE.only("wrong_scale"), helper, engine.to_tensor)
    def check():
        pass
    assert helper.mistakes == (("literal", "keeps {braces}"),)
    assert check.mistakes[:2] == (("wrong_scale", "off by … times (…)"), ("literal", "keeps {braces}"))
    assert ("wrong_device", "returns a tensor on …, but the inputs are on …") in check.mistakes
    assert ("returned_none", "returns None") not in check.mistakes


# --- learning mode falls back to the reference, grading mode raises ---------------------------

def _notebook_namespace(source: str) -> dict:
    """Run ``source`` as a notebook cell would: its functions' __globals__ is the returned dict."""
    namespace: dict = {"__name__": "__main__"}
    exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


STUB = "def gram_matrix(features, normalize=True):\n    raise NotImplementedError()\n"


def test_failed_check_swaps_in_the_reference_and_says_so(monkeypatch, capsys):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("NST_GRADING", raising=False)
    namespace = _notebook_namespace(STUB)
    result = checks.check_gram_matrix(namespace["gram_matrix"])
    assert not result and result.mistake == "not_implemented"
    assert namespace["gram_matrix"].__wrapped__ is losses.gram_matrix
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and "reference" in out[1]


LEARNERS_GRAM = """
import torch

def gram_matrix(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = torch.bmm(flat, flat.transpose(1, 2))
    return gram / (c * h * w) if normalize else gram
"""


def test_passed_check_keeps_the_learners_function(monkeypatch):
    monkeypatch.setenv("NST_GRADING", "1")
    namespace = _notebook_namespace(LEARNERS_GRAM)
    mine = namespace["gram_matrix"]
    assert checks.check_gram_matrix(mine)
    assert namespace["gram_matrix"] is mine


@pytest.mark.parametrize("env", [("NBGRADER_EXECUTION", "autograde"), ("NST_GRADING", "1")])
def test_grading_mode_raises_after_the_fallback(monkeypatch, env):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("NST_GRADING", raising=False)
    monkeypatch.setenv(*env)
    namespace = _notebook_namespace(STUB)
    with pytest.raises(checks.ExerciseFailed, match="not written yet"):
        checks.check_gram_matrix(namespace["gram_matrix"])
    assert namespace["gram_matrix"].__wrapped__ is losses.gram_matrix


def test_the_stand_in_does_not_pass_as_your_work(monkeypatch, capsys):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("NST_GRADING", raising=False)
    namespace = _notebook_namespace(STUB)
    checks.check_gram_matrix(namespace["gram_matrix"])
    again = checks.check_gram_matrix(namespace["gram_matrix"])       # re-run of the check cell alone
    assert not again and again.mistake == "still_the_reference"


def test_functions_in_modules_are_never_swapped(monkeypatch):
    monkeypatch.delenv("NST_GRADING", raising=False)
    namespace = _notebook_namespace(STUB)
    namespace["__name__"] = "some_module"
    stub = namespace["gram_matrix"]
    checks.check_gram_matrix(stub)
    assert namespace["gram_matrix"] is stub


def test_ungraded_check_only_reports(monkeypatch):
    monkeypatch.setenv("NST_GRADING", "1")
    namespace = _notebook_namespace(STUB)
    stub = namespace["gram_matrix"]
    assert not checks.check_gram_matrix(stub, graded=False)
    assert namespace["gram_matrix"] is stub


# --- a result on another device, a function that never returns ------------------------------------------

def content_on_meta(w, current, original):
    return losses.content_loss(w, current, original).to("meta")


def content_never_returns(w, current, original):
    while True:
        pass


def test_a_result_on_another_device_is_named():
    result = checks.check_content_loss(content_on_meta, graded=False)
    assert not result and result.mistake == "wrong_device" and "meta" in result.message


def test_a_function_that_never_returns_is_stopped(monkeypatch):
    monkeypatch.setattr(engine, "CHECK_TIME_LIMIT_S", 0.5)
    result = checks.check_content_loss(content_never_returns, graded=False)
    assert not result and result.mistake == "too_slow" and "0.5 s" in result.message


def test_a_function_that_never_returns_is_stopped_outside_the_main_thread_too(monkeypatch):
    monkeypatch.setattr(engine, "CHECK_TIME_LIMIT_S", 0.5)
    results = []
    worker = threading.Thread(target=lambda: results.append(checks.check_content_loss(content_never_returns,
                                                                                       graded=False)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert results and results[0].mistake == "too_slow"


# --- non-finite results -------------------------------------------------------------------------

def _spoil(reference, where):
    def spoiled(*args):
        value = reference(*args)
        if where == "all":
            return value * float("nan")
        value = value.clone()
        value.view(-1)[0] = float("inf") if where == "inf" else float("nan")
        return value
    return spoiled


@pytest.mark.parametrize("where", ["all", "one-nan", "inf"])
@pytest.mark.parametrize("name", ["content_loss", "gram_matrix", "style_loss", "tv_loss"])
def test_checks_fail_non_finite_results(name, where, capsys):
    result = getattr(checks, f"check_{name}")(_spoil(getattr(losses, name), where), graded=False)
    assert not result.passed and result.mistake == "not_finite"
    assert "NaN" in result.message and "\n" not in result.message


def test_rel_error_of_non_finite_values_is_infinite():
    x = torch.ones(3)
    assert checks.rel_error(x * float("nan"), x) == float("inf")
    assert checks.rel_error(torch.tensor([1.0, float("inf")]), x[:2]) == float("inf")
    assert checks.rel_error(x, x) == 0
