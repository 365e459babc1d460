"""The fast panel of notebook 07, without a browser: every change of a widget repaints the photo at once."""

import io

import pytest
import torch
from PIL import Image

from nst_helpers import examples
from nst_helpers.fast import ConditionalInstanceNorm, TransformNet, stylize_fast
from nst_helpers.fast.panel import FastPanel

from test_panel import png_bytes, upload

NAMES = ["starry_night", "great_wave", "composition_vii", "water_lilies"]


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    net = TransformNet(width=4, blocks=1, n_styles=4, names=NAMES)
    with torch.no_grad():  # styles that differ, as after training
        for module in net.modules():
            if isinstance(module, ConditionalInstanceNorm):
                module.gamma.uniform_(0.5, 1.5)
                module.beta.uniform_(-0.5, 0.5)
    return net.eval()


def test_paint_uses_the_photo_the_styles_and_the_blend(net):
    p = FastPanel(photo="coffee", first="starry_night", second="great_wave", blend=0.0, size=128, network=net)
    picture = p.paint()
    photo = examples.load("coffee", size=128)
    assert torch.equal(picture, stylize_fast(photo, "starry_night", network=net, size=None))
    assert p.weights() == [1.0, 0.0, 0.0, 0.0]
    assert "photo: coffee · starry_night · 128 px" in p.describe()
    shown = Image.open(io.BytesIO(p.image.value))
    assert max(shown.size) == 384                    # scaled up for the page, not a thumbnail


def test_moving_the_slider_repaints_with_the_blend(net):
    p = FastPanel(size=128, network=net)
    frames = []
    p.image.observe(lambda change: frames.append(change["new"]), names="value")
    p.blend.value = 0.25                              # a change repaints, no button
    assert p.weights() == [0.75, 0.25, 0.0, 0.0] and len(frames) == 1
    blended = stylize_fast(examples.load("coffee", size=128), ["starry_night", "great_wave"], network=net,
                           size=None, blend=[0.75, 0.25])
    assert torch.equal(p.picture, blended)
    assert "0.75 starry_night + 0.25 great_wave" in p.describe()
    p.second.value = "water_lilies"
    assert p.weights() == [0.75, 0.0, 0.0, 0.25] and len(frames) == 2
    p.blend.value = 1.0
    assert torch.equal(p.picture, stylize_fast(examples.load("coffee", size=128), "water_lilies", network=net,
                                               size=None))


def test_an_upload_is_painted_and_a_bad_one_is_one_line(net, capsys):
    p = FastPanel(size=128, network=net)
    upload(p.photo, "red.png", png_bytes((255, 0, 0)))
    assert p.picture.shape == (1, 3, 96, 128)          # 40 x 30 scaled to a long side of 128
    assert "photo: your upload red.png" in p.describe()
    capsys.readouterr()
    upload(p.photo, "notes.png", b"this is not an image")
    lines = capsys.readouterr().out.splitlines()
    assert lines and lines[-1].startswith("❌") and "not an image" in lines[-1]


def test_a_single_style_network_or_an_unknown_style_is_refused(net):
    single = TransformNet(width=4, blocks=1, names=["mine"]).eval()
    with pytest.raises(ValueError, match="two styles or more"):
        FastPanel(network=single)
    with pytest.raises(ValueError, match="no style 'mosaic'.*starry_night, great_wave"):
        FastPanel(second="mosaic", network=net)
