"""The exercise checks of notebooks 00-02: a wrong implementation for every mistake they name."""

import pytest
import torch

from nst_helpers import VGGFeatures, checks, losses
from nst_helpers.vgg import CAFFE_MEAN_BGR, layer_names

MEAN_BGR = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)


@pytest.fixture(autouse=True)
def learning_mode(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("NST_GRADING", raising=False)


def named(check, fn):
    result = check(fn, graded=False)
    assert not result.passed
    return result.mistake


# --- notebook 00: Caffe preprocessing -----------------------------------------------------------


def test_the_reference_preprocessing_is_what_the_vgg_extractor_does():
    image = torch.rand(2, 3, 5, 4, generator=torch.Generator().manual_seed(1))
    net = VGGFeatures(["conv1_1"], device="cpu")
    assert torch.allclose(checks.caffe_preprocess(image), net.preprocess(image), atol=1e-4)
    assert checks.check_caffe_preprocess(checks.caffe_preprocess, graded=False).passed


def test_an_index_based_preprocessing_passes():
    def with_indices(image):
        return image[:, [2, 1, 0]] * 255.0 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    assert checks.check_caffe_preprocess(with_indices, graded=False).passed


@pytest.mark.parametrize("mistake, fn", [
    ("not_bgr", lambda x: x * 255 - MEAN_BGR.flip(1)),
    ("not_bgr", lambda x: x * 255 - MEAN_BGR),
    ("mean_wrong_order", lambda x: x.flip(1) * 255 - MEAN_BGR.flip(1)),
    ("mean_not_subtracted", lambda x: x.flip(1) * 255),
    ("not_scaled", lambda x: x.flip(1) - MEAN_BGR),
    ("not_scaled", lambda x: x.flip(1) - MEAN_BGR / 255),
    ("mean_before_scale", lambda x: (x.flip(1) - MEAN_BGR) * 255),
    ("flipped_wrong_dim", lambda x: x.flip(3) * 255 - MEAN_BGR),
    ("flipped_wrong_dim", lambda x: x.flip(2) * 255 - MEAN_BGR),
    ("torchvision_recipe", lambda x: (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
     / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)),
    ("wrong_shape", lambda x: (x.flip(1) * 255 - MEAN_BGR)[0]),
    ("wrong_dtype", lambda x: (x.flip(1) * 255 - MEAN_BGR).double()),
    ("not_finite", lambda x: x.flip(1) * 255 - MEAN_BGR + float("nan")),
    ("not_finite", lambda x: x.flip(1) * 255 / (x - x)),
    ("not_differentiable", lambda x: torch.from_numpy(x.detach().flip(1).numpy() * 255) - MEAN_BGR),
    ("wrong_values", lambda x: x.flip(1) * 250 - MEAN_BGR),
    ("returned_none", lambda x: None),
])
def test_preprocessing_mistakes_are_named(mistake, fn):
    assert named(checks.check_caffe_preprocess, fn) == mistake


def test_preprocessing_that_changes_its_input_is_named():
    def in_place(image):
        image.mul_(255)
        return image.flip(1) - MEAN_BGR
    assert named(checks.check_caffe_preprocess, in_place) == "modifies_input"


def test_preprocessing_not_written_is_named():
    def stub(image):
        raise NotImplementedError()
    assert named(checks.check_caffe_preprocess, stub) == "not_implemented"


# --- notebook 00: receptive fields ------------------------------------------------------------------


def test_receptive_fields_reference_matches_the_gradient_of_one_unit():
    """Independent measurement: the input pixels that reach the centre unit of a layer (random weights)."""
    for layer, size in [("conv2_1", 10), ("conv3_1", 24), ("pool3", 52)]:
        net = VGGFeatures([layer], weights="random", pooling="avg", device="cpu")
        for module in net.body:
            if isinstance(module, torch.nn.Conv2d):
                module.weight.data.abs_()   # positive weights: no cancellation, every path counts
                module.bias.data.fill_(1.0)  # and every ReLU passes
        image = torch.rand(1, 3, 96, 96, requires_grad=True)
        out = net(image)[layer]
        out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
        rows = (image.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero()
        assert int(rows.max() - rows.min() + 1) == size == checks.receptive_fields(layer_names())[layer]


def test_receptive_field_reference_values():
    fields = checks.receptive_fields(layer_names())
    assert (fields["conv1_1"], fields["pool1"], fields["conv5_1"], fields["pool5"]) == (3, 6, 156, 268)
    assert checks.check_receptive_fields(checks.receptive_fields, graded=False).passed


def _walk(names, start=1, conv=lambda step: 2 * step, pool=lambda field, step: (field + step, 2 * step),
          relu=lambda step: 0):
    field, step, out = start, 1, {}
    for name in names:
        if name.startswith("conv"):
            field += conv(step)
        elif name.startswith("relu"):
            field += relu(step)
        else:
            field, step = pool(field, step)
        out[name] = field
    return out


@pytest.mark.parametrize("mistake, fn", [
    ("step_not_doubled", lambda names: _walk(names, pool=lambda f, s: (f + s, s))),
    ("conv_ignores_step", lambda names: _walk(names, conv=lambda s: 2)),
    ("pool_adds_nothing", lambda names: _walk(names, pool=lambda f, s: (f, 2 * s))),
    ("pool_order", lambda names: _walk(names, pool=lambda f, s: (f + 2 * s, 2 * s))),
    ("pool_order", lambda names: _walk(names, pool=lambda f, s: (f + 2 * s, 2 * s))),
    ("starts_at_zero", lambda names: _walk(names, start=0)),
    ("relu_grows", lambda names: _walk(names, relu=lambda s: 2 * s)),
    ("wrong_keys", lambda names: {n: v for n, v in _walk(names).items() if not n.startswith("relu")}),
    ("wrong_values", lambda names: {n: v + (n == names[-1]) for n, v in _walk(names).items()}),
    ("not_finite", lambda names: {n: float("nan") for n in names}),
    ("returned_none", lambda names: None),
])
def test_receptive_field_mistakes_are_named(mistake, fn):
    assert named(checks.check_receptive_fields, fn) == mistake


# --- notebook 01: the feature-inversion loop --------------------------------------------------------


def good_loop(net, layer, photo, steps, seed=0):
    with torch.no_grad():
        target = net(photo)[layer]
    x = torch.rand(photo.shape, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], max_iter=steps)

    def closure():
        loss = losses.content_loss(1.0, net(x)[layer], target)
        optimizer.zero_grad()           # after the forward pass is fine too
        loss.backward()
        return loss
    optimizer.step(closure)
    return x.detach()


def loop(start="noise", target_inside=False, zero_grad=True, optimise="pixels", step=True, returns="x",
         target_from="photo", divide_by=None):
    """A reconstruction loop with one planted mistake."""
    def fn(net, layer, photo, steps, seed=0):
        with torch.no_grad():
            target = net(photo if target_from == "photo" else torch.zeros_like(photo))[layer]
        noise = torch.rand(photo.shape, generator=torch.Generator().manual_seed(seed))
        x = (photo.clone() if start == "photo" else noise).requires_grad_(True)
        if optimise == "network":
            net.requires_grad_(True)
        params = list(net.parameters()) if optimise == "network" else [x]
        optimizer = torch.optim.LBFGS(params, max_iter=steps)

        def closure():
            if zero_grad:
                optimizer.zero_grad()
            goal = net(photo)[layer].detach() if target_inside else target
            loss = losses.content_loss(1.0, net(x)[layer], goal)
            if divide_by is not None:
                loss = loss / divide_by
            loss.backward()
            return loss
        if step:
            optimizer.step(closure)
        return {"x": x.detach(), "photo": photo, "loss": closure().detach(), "none": None}[returns]
    return fn


def test_a_correct_loop_passes_and_the_reference_passes():
    assert checks.check_reconstruct(good_loop, graded=False).passed
    assert checks.check_reconstruct(checks.reconstruct, graded=False).passed


@pytest.mark.parametrize("mistake, fn", [
    ("targets_recomputed", loop(target_inside=True)),
    ("gradients_not_zeroed", loop(zero_grad=False)),
    ("network_changed", loop(optimise="network")),
    ("starts_from_photo", loop(start="photo")),
    ("image_unchanged", loop(step=False)),
    ("wrong_shape", loop(returns="loss")),
    ("returned_none", loop(returns="none")),
    ("not_finite", loop(divide_by=0.0)),
])
def test_loop_mistakes_are_named(mistake, fn):
    assert named(checks.check_reconstruct, fn) == mistake


def test_a_loop_with_a_target_not_from_the_photo_is_named():
    assert named(checks.check_reconstruct, loop(target_from="zeros")) == "target_not_from_photo"


def test_a_loop_that_returns_the_photo_is_named():
    def cheat(net, layer, photo, steps, seed=0):
        good_loop(net, layer, photo, 2, seed)
        return photo
    assert named(checks.check_reconstruct, cheat) == "returns_photo"


def test_a_loop_that_stops_too_early_is_named():
    def too_short(net, layer, photo, steps, seed=0):
        return good_loop(net, layer, photo, 1, seed)
    assert named(checks.check_reconstruct, too_short) == "not_converged"


def test_a_loop_whose_pixels_never_require_gradients_is_named():
    def frozen(net, layer, photo, steps, seed=0):
        x = torch.rand(photo.shape, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            net(photo)
            net(x)
        return x
    assert named(checks.check_reconstruct, frozen) == "pixels_not_optimised"


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
