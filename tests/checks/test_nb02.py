"""Tests of notebook 02's checks (checks/nb02_gram_matrix.py)."""

import pytest
import torch

from nst_helpers import checks, losses


def named(check, fn):
    result = check(fn, graded=False)
    assert not result.passed
    return result.mistake


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


# --- notebook 02: Gram distance ------------------------------------------------------------------


def _norm(g):
    return g.flatten(1).norm(dim=1)


def test_gram_distance_reference_on_hand_made_cases():
    a = torch.rand(1, 3, 4, 5)
    assert float(checks.gram_distance(a, a)) == pytest.approx(0.0, abs=1e-6)
    assert float(checks.gram_distance(a, torch.cat([a, a], dim=3))) == pytest.approx(0.0, abs=1e-6)  # tiled
    other = torch.zeros(1, 3, 4, 5)
    other[:, 0] = 1.0
    assert 0 < float(checks.gram_distance(a, other)) < 1
    assert checks.check_gram_distance(checks.gram_distance, graded=False).passed


def _gram_distance(normalize=True, combine=lambda d, a, b: d / (a + b), features=False):
    def fn(fa, fb):
        if features:
            return _norm(fa - fb) / (_norm(fa) + _norm(fb))
        ga, gb = losses.gram_matrix(fa, normalize), losses.gram_matrix(fb, normalize)
        return combine(_norm(ga - gb), _norm(ga), _norm(gb))
    return fn


@pytest.mark.parametrize("mistake, fn", [
    ("compares_positions", _gram_distance(features=True)),
    ("not_normalized", _gram_distance(normalize=False)),
    ("squared", _gram_distance(combine=lambda d, a, b: d ** 2 / (a ** 2 + b ** 2))),
    ("not_relative", _gram_distance(combine=lambda d, a, b: d)),
    ("one_sided", _gram_distance(combine=lambda d, a, b: d / b)),
    ("one_sided", _gram_distance(combine=lambda d, a, b: d / a)),
    ("wrong_shape", lambda fa, fb: checks.gram_distance(fa, fb).mean()),
    ("not_finite", _gram_distance(combine=lambda d, a, b: d / (a - a))),
    ("wrong_values", _gram_distance(combine=lambda d, a, b: d / (a + b) / 2)),
])
def test_gram_distance_mistakes_are_named(mistake, fn):
    assert named(checks.check_gram_distance, fn) == mistake


def test_a_failed_check_swaps_in_the_reference_and_raises_when_grading(monkeypatch):
    namespace = {"__name__": "__main__"}
    exec("def caffe_preprocess(image):\n    return image * 255\n", namespace)
    monkeypatch.setenv("NST_GRADING", "1")
    with pytest.raises(checks.ExerciseFailed):
        checks.check_caffe_preprocess(namespace["caffe_preprocess"])
    stand_in = namespace["caffe_preprocess"]
    image = torch.rand(1, 3, 2, 2)
    assert torch.equal(stand_in(image), checks.caffe_preprocess(image))
    monkeypatch.delenv("NST_GRADING")
    assert checks.check_caffe_preprocess(stand_in).mistake == "still_the_reference"
