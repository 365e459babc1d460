"""Settings are checked when they are made: one line naming the setting, a close name suggested."""

import pytest

from messages import one_line
from nst_helpers import vgg
from nst_helpers.settings import Settings


def test_sizes_below_16_are_refused_with_the_smallest():
    for field in ("size", "style_size"):
        with pytest.raises(ValueError) as err:
            Settings(**{field: 8})
        assert f"{field} must be a whole number, at least 16" in one_line(err)


@pytest.mark.parametrize("bad, name", [
    (dict(steps=1.5), "steps"), (dict(steps="10"), "steps"), (dict(size=300.5), "size"),
    (dict(style_size=0), "style_size"), (dict(style_size=-3), "style_size"), (dict(style_size=2.5), "style_size"),
    (dict(learning_rate=-1), "learning_rate"), (dict(learning_rate=0), "learning_rate"),
    (dict(learning_rate=float("nan")), "learning_rate"),
    (dict(pooling="min"), "pooling"), (dict(init="nois"), "init"), (dict(weights="cafe"), "weights"),
    (dict(content_layers=("relu4_3x",)), "relu4_3x"), (dict(style_layers=("relu1_1", "conv6_1")), "conv6_1"),
    (dict(seed=2 ** 70), "seed"), (dict(seed=-1), "seed"), (dict(seed=0.5), "seed"),
    (dict(coarse_to_fine="yes"), "coarse_to_fine"), (dict(memory_format="NHWC"), "memory_format"),
    (dict(memory_format=None), "memory_format"),
])
def test_settings_refuse_bad_values_when_made(bad, name):
    with pytest.raises(ValueError) as err:
        Settings(**bad)
    assert name in one_line(err)


def test_settings_suggest_the_close_name():
    with pytest.raises(ValueError, match="did you mean 'caffe'"):
        Settings(weights="cafe")
    Settings(weights=str(vgg.caffe_weights_path()), seed=2 ** 64 - 1, learning_rate=0.5, init="image")


def test_memory_format_names():
    with pytest.raises(ValueError) as err:
        Settings(memory_format="channel_last")
    assert "did you mean 'channels_last'" in one_line(err) and "'nchw'" in one_line(err)
    assert Settings(memory_format="contiguous").memory_format == "nchw"      # PyTorch's name for it
    assert [Settings(memory_format=name).memory_format for name in ("auto", "nchw", "channels_last")] == \
        ["auto", "nchw", "channels_last"]
