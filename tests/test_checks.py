"""Every mistake the exercise checks name: a small wrong implementation for each, and the check must name it."""

import inspect
import threading

import pytest
import torch

from nst_helpers import checks, losses

# --- gram_matrix: the reference, a correct loop, and wrong versions ------------------------


def gram_loop(features, normalize=True):
    n, c, h, w = features.shape
    grams = []
    for i in range(n):
        flat = features[i].reshape(c, h * w)
        grams.append(flat @ flat.t())
    gram = torch.stack(grams)
    return gram / (c * h * w) if normalize else gram


def gram_return_in_loop(features, normalize=True):  # the lesson's bug
    n, c, h, w = features.shape
    gram = torch.zeros(n, c, c)
    for i in range(n):
        flat = features[i].reshape(c, h * w)
        gram[i] = flat @ flat.t()
        if normalize:
            gram = gram / (c * h * w)
        return gram


def gram_no_batch_dim(features, normalize=True):
    n, c, h, w = features.shape
    flat = features[0].reshape(c, h * w)
    return flat @ flat.t() / (c * h * w)


def gram_normalize_in_loop(features, normalize=True):
    n, c, h, w = features.shape
    gram = torch.zeros(n, c, c)
    for i in range(n):
        flat = features[i].reshape(c, h * w)
        gram[i] = flat @ flat.t()
        if normalize:
            gram = gram / (c * h * w)
    return gram


def _gram_divided_by(divisor):
    def gram(features, normalize=True):
        n, c, h, w = features.shape
        flat = features.reshape(n, c, h * w)
        result = flat @ flat.transpose(1, 2)
        return result / divisor(c, h, w) if normalize else result
    return gram


def gram_always_normalized(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def gram_transposed(features, normalize=True):
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat.transpose(1, 2) @ flat / (c * h * w)


def gram_detached(features, normalize=True):
    return losses.gram_matrix(features.detach(), normalize)


def gram_numpy(features, normalize=True):
    return losses.gram_matrix(features, normalize).detach().numpy()


def gram_in_place(features, normalize=True):
    features /= 1.0 + features.abs()  # changes the caller's tensor
    return losses.gram_matrix(features * 0 + features, normalize)


def gram_double(features, normalize=True):
    return losses.gram_matrix(features.double(), normalize)


def gram_none(features, normalize=True):
    losses.gram_matrix(features, normalize)


def gram_stub(features, normalize=True):
    raise NotImplementedError()


def gram_plus_one(features, normalize=True):
    return losses.gram_matrix(features, normalize) + 1.0


def gram_list(features, normalize=True):
    return ["not", "a", "tensor"]


@pytest.mark.parametrize("fn, mistake", [
    (gram_return_in_loop, "first_item_only"),
    (gram_no_batch_dim, "first_item_only"),
    (gram_normalize_in_loop, "normalized_in_loop"),
    (_gram_divided_by(lambda c, h, w: 1), "not_normalized"),
    (_gram_divided_by(lambda c, h, w: h * w), "normalized_by_hw"),
    (_gram_divided_by(lambda c, h, w: c), "normalized_by_c"),
    (_gram_divided_by(lambda c, h, w: (c * h * w) ** 2), "normalized_twice"),
    (_gram_divided_by(lambda c, h, w: 7.0), "wrong_scale"),
    (gram_always_normalized, "ignores_normalize_false"),
    (gram_transposed, "wrong_shape"),
    (gram_detached, "not_differentiable"),
    (gram_numpy, "not_differentiable"),
    (gram_in_place, "modifies_input"),
    (gram_double, "wrong_dtype"),
    (gram_none, "returned_none"),
    (gram_stub, "not_implemented"),
    (gram_plus_one, "wrong_values"),
    (gram_list, "not_a_tensor"),
])
def test_gram_mistakes_are_named(fn, mistake, capsys):
    result = checks.check_gram_matrix(fn)
    assert not result and result.mistake == mistake
    out = capsys.readouterr()
    assert out.out.startswith("❌ gram_matrix: ") and out.err == ""


def test_reference_passes_silently_on_stderr(capsys):
    for name in ["content_loss", "gram_matrix", "style_loss", "tv_loss"]:
        result = getattr(checks, f"check_{name}")(getattr(losses, name))
        assert result and result.passed and result.mistake is None and result.notes == ()
        assert isinstance(result, checks.CheckResult)
    out = capsys.readouterr()
    assert out.err == "" and out.out.count("✅") == 4 and "cases checked" in out.out


def test_correct_loop_gets_the_vectorise_note(capsys):
    result = checks.check_gram_matrix(gram_loop)
    assert result.passed and result.notes == ("python_loop",)
    assert "vectorise" in capsys.readouterr().out


def test_transposed_gram_explains_ftf():
    assert "F^T F" in checks.check_gram_matrix(gram_transposed).message


# --- content_loss -------------------------------------------------------------------------


def content_no_weight(w, current, original):
    return (current - original).pow(2).sum()


def content_mean(w, current, original):
    return w * (current - original).pow(2).mean()


def content_abs(w, current, original):
    return w * (current - original).abs().sum()


def content_norm(w, current, original):
    return w * torch.norm(current - original)


def content_item(w, current, original):
    return w * (current - original).pow(2).sum().item()


def content_per_item(w, current, original):
    return w * (current - original).pow(2).sum(dim=(1, 2, 3))


@pytest.mark.parametrize("fn, mistake", [
    (content_no_weight, "missing_weight"), (content_mean, "mean_instead_of_sum"),
    (content_abs, "not_squared"), (content_norm, "not_squared"), (content_item, "not_differentiable"),
    (content_per_item, "wrong_shape"),
])
def test_content_mistakes_are_named(fn, mistake):
    result = checks.check_content_loss(fn)
    assert not result and result.mistake == mistake


# --- style_loss -----------------------------------------------------------------------------


def style_no_weights(feats, layers, targets, weights):
    return sum((losses.gram_matrix(feats[layer]) - t).pow(2).sum() for layer, t in zip(layers, targets))


def style_first_layer(feats, layers, targets, weights):
    for i, layer in enumerate(layers):
        return weights[i] * (losses.gram_matrix(feats[layer]) - targets[i]).pow(2).sum()


def style_abs(feats, layers, targets, weights):
    return sum(w * (losses.gram_matrix(feats[layer]) - t).abs().sum()
               for layer, t, w in zip(layers, targets, weights))


def style_mean(feats, layers, targets, weights):
    return sum(w * (losses.gram_matrix(feats[layer]) - t).pow(2).mean()
               for layer, t, w in zip(layers, targets, weights))


def style_target_by_layer(feats, layers, targets, weights):
    total = 0
    for i, layer in enumerate(layers):
        target = targets[layer] if isinstance(layer, int) else targets[i]
        total = total + weights[i] * (losses.gram_matrix(feats[layer]) - target).pow(2).sum()
    return total


def style_no_target(feats, layers, targets, weights):
    return sum(w * losses.gram_matrix(feats[layer]).pow(2).sum() for layer, w in zip(layers, weights))


def style_typo(feats, layers, targets, weights):
    loss = 0
    for i, layer in enumerate(layers):
        loss = loss + weights[i] * (losses.gram_matrix(feats[layer]) - targets[i]).pow(2).sum()
    return los  # noqa: F821 - the bug under test


@pytest.mark.parametrize("fn, mistake", [
    (style_no_weights, "missing_layer_weights"), (style_first_layer, "first_layer_only"),
    (style_abs, "not_squared"), (style_mean, "mean_instead_of_sum"),
    (style_target_by_layer, "wrong_target"), (style_no_target, "wrong_target"), (style_typo, "exception"),
])
def test_style_mistakes_are_named(fn, mistake):
    result = checks.check_style_loss(fn)
    assert not result and result.mistake == mistake


def test_style_loop_over_layers_is_fine():
    assert checks.check_style_loss(losses.style_loss).notes == ()


# --- tv_loss ----------------------------------------------------------------------------------


def tv_lesson_typo(img, tv_weight):  # the lesson's bug
    loss = tv_weight * ((img[:, :, 1:, :] - img[:, :, :-1, :]).pow(2).sum()
                        + (img[:, :, :, 1:] - img[:, :, :, :-1]).pow(2).sum())
    return los  # noqa: F821 - the bug under test


def tv_vertical_only(img, tv_weight):
    return tv_weight * (img[:, :, 1:, :] - img[:, :, :-1, :]).pow(2).sum()


def tv_no_weight(img, tv_weight):
    return losses.tv_loss(img, 1.0)


def tv_l1(img, tv_weight):
    return tv_weight * ((img[:, :, 1:, :] - img[:, :, :-1, :]).abs().sum()
                        + (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().sum())


def tv_mean(img, tv_weight):
    return tv_weight * ((img[:, :, 1:, :] - img[:, :, :-1, :]).pow(2).mean()
                        + (img[:, :, :, 1:] - img[:, :, :, :-1]).pow(2).mean())


def tv_first_item(img, tv_weight):
    return losses.tv_loss(img[:1], tv_weight)


def tv_loop(img, tv_weight):
    n, c, h, w = img.shape
    total = 0
    for i in range(h - 1):
        total = total + (img[:, :, i + 1, :] - img[:, :, i, :]).pow(2).sum()
    for j in range(w - 1):
        total = total + (img[:, :, :, j + 1] - img[:, :, :, j]).pow(2).sum()
    return tv_weight * total


def tv_half_detached(img, tv_weight):
    vertical = (img[:, :, 1:, :] - img[:, :, :-1, :]).pow(2).sum()
    horizontal = (img.data[:, :, :, 1:] - img.data[:, :, :, :-1]).pow(2).sum()
    return tv_weight * (vertical + horizontal)


@pytest.mark.parametrize("fn, mistake", [
    (tv_lesson_typo, "exception"), (tv_vertical_only, "one_direction"), (tv_no_weight, "missing_weight"),
    (tv_l1, "not_squared"), (tv_mean, "mean_instead_of_sum"), (tv_first_item, "first_item_only"),
    (tv_half_detached, "not_differentiable"),
])
def test_tv_mistakes_are_named(fn, mistake):
    result = checks.check_tv_loss(fn)
    assert not result and result.mistake == mistake


def test_tv_exception_message_shows_type_and_line():
    message = checks.check_tv_loss(tv_lesson_typo).message
    assert "NameError: name 'los' is not defined" in message and "return los" in message


def test_tv_loop_gets_the_vectorise_note():
    result = checks.check_tv_loss(tv_loop)
    assert result.passed and "python_loop" in result.notes and "vectorise" in result.message


def test_half_detached_names_the_culprit():
    assert ".data" in checks.check_tv_loss(tv_half_detached).message


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


def test_passed_check_keeps_the_learners_function(monkeypatch):
    monkeypatch.setenv("NST_GRADING", "1")
    namespace = _notebook_namespace("import torch\n" + inspect.getsource(losses.gram_matrix))  # your own copy
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


# --- the checks cannot be fooled by changes in place, other devices or functions that never return ---------

def style_changes_its_weights(feats, layers, targets, weights):
    loss = losses.style_loss(feats, layers, targets, weights)
    weights[0] = 0.0                      # the result is right, but the caller's list is changed
    return loss


def content_on_meta(w, current, original):
    return losses.content_loss(w, current, original).to("meta")


def content_never_returns(w, current, original):
    while True:
        pass


def test_a_change_to_the_weights_list_is_named_not_a_gradient_problem():
    result = checks.check_style_loss(style_changes_its_weights, graded=False)
    assert not result and result.mistake == "modifies_input"


def test_a_result_on_another_device_is_named():
    result = checks.check_content_loss(content_on_meta, graded=False)
    assert not result and result.mistake == "wrong_device" and "meta" in result.message


def test_a_function_that_never_returns_is_stopped(monkeypatch):
    monkeypatch.setattr(checks, "CHECK_TIME_LIMIT_S", 0.5, raising=False)
    result = checks.check_content_loss(content_never_returns, graded=False)
    assert not result and result.mistake == "too_slow" and "0.5 s" in result.message


def test_a_function_that_never_returns_is_stopped_outside_the_main_thread_too(monkeypatch):
    monkeypatch.setattr(checks, "CHECK_TIME_LIMIT_S", 0.5, raising=False)
    results = []
    worker = threading.Thread(target=lambda: results.append(checks.check_content_loss(content_never_returns,
                                                                                       graded=False)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert results and results[0].mistake == "too_slow"
