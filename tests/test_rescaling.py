"""Gatys et al.'s rescaled VGG-19 (notebook 02): unit mean activations, the same function up to channel factors."""

import pytest
import torch

from nst_helpers import examples, rescaling, vgg

CPU = "cpu"
LAYERS = ["conv1_1", "relu1_2", "conv2_1", "relu2_1", "relu3_1"]


def pictures(size=48):
    """Two real images (a photo and a painting) as one (2, 3, size, size) batch."""
    return torch.cat([torch.nn.functional.interpolate(examples.load(name, size=size), size=(size, size),
                                                      mode="bilinear", antialias=True)
                      for name in ("chelsea", "starry_night")])


@pytest.fixture(scope="module")
def caffe():
    return vgg.VGGFeatures(LAYERS, weights="caffe", device=CPU)


@pytest.fixture(scope="module")
def rescaled(caffe):
    return rescaling.rescale_to_unit_mean(caffe, pictures())


def test_every_filter_has_mean_activation_one_on_the_calibration_images(rescaled):
    net, factors = rescaled
    means = rescaling.mean_activations(net, pictures())
    assert set(means) == {"conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"} == set(factors)
    for name, mean in means.items():
        alive = factors[name] != 1          # a filter that never fires keeps the factor 1 and a mean of 0
        assert alive.sum() > 0.5 * len(mean), name
        torch.testing.assert_close(mean[alive], torch.ones(int(alive.sum())), rtol=1e-3, atol=1e-3)


def test_the_next_layer_gets_back_its_input_so_every_output_is_the_original_over_its_factor(caffe, rescaled):
    net, factors = rescaled
    other = examples.load("coffee", size=40)          # not one of the calibration images
    with torch.no_grad():
        before, after = caffe(other), net(other)
    for name in LAYERS:
        factor = factors["conv" + name[4:] if name.startswith("relu") else name].view(1, -1, 1, 1)
        torch.testing.assert_close(after[name] * factor, before[name], rtol=1e-3, atol=1e-3 * float(before[name].abs().max()))
    # the factors differ between channels by orders of magnitude, so this is not the original network
    assert float(factors["conv2_1"].max() / factors["conv2_1"][factors["conv2_1"] != 1].min()) > 10


def test_dividing_without_multiplying_back_would_change_the_next_layer(caffe, rescaled):
    """What the test above rules out: the factors do not cancel unless the next layer undoes them."""
    net, factors = rescaled
    naive = vgg.VGGFeatures(LAYERS, weights="caffe", device=CPU)
    with torch.no_grad():
        for name, module in naive.body.named_children():
            if name in factors:
                module.weight /= factors[name].view(-1, 1, 1, 1)
                module.bias /= factors[name]
        other = examples.load("coffee", size=40)
        relative = ((naive(other)["conv2_1"] * factors["conv2_1"].view(1, -1, 1, 1) - caffe(other)["conv2_1"]).norm()
                    / caffe(other)["conv2_1"].norm())
    assert relative > 0.1


def test_the_original_network_is_left_as_it_was(caffe, rescaled):
    fresh = vgg.VGGFeatures(LAYERS, weights="caffe", device=CPU)
    for (name, a), b in zip(caffe.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("images", [torch.rand(3, 32, 32), torch.rand(1, 1, 32, 32), "chelsea"])
def test_bad_calibration_images_get_a_one_line_error(caffe, images):
    with pytest.raises(ValueError, match="calibration images") as excinfo:
        rescaling.rescale_to_unit_mean(caffe, images)
    assert "\n" not in str(excinfo.value)


def test_a_network_that_is_not_vgg_features_is_refused():
    with pytest.raises(ValueError, match="VGGFeatures"):
        rescaling.rescale_to_unit_mean(torch.nn.Conv2d(3, 3, 3), torch.rand(1, 3, 8, 8))
