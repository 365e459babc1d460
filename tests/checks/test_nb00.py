"""Tests of notebook 00's checks (checks/nb00_images_and_vgg.py)."""

import pytest
import torch

from nst_helpers import VGGFeatures, checks
from nst_helpers.vgg import CAFFE_MEAN_BGR, layer_names

MEAN_BGR = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)


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
    ("torchvision_recipe", lambda x: ((x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                                      / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)).flip(1)),
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
