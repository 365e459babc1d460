"""Fast style transfer (nst_helpers.fast): the network, its files, the training loop and the commands, at tiny sizes.

None of these tests needs the shipped networks to be any good: quality is judged in BENCHMARKS.md.
"""

import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from nst_helpers import cli
from nst_helpers.fast import (ConditionalInstanceNorm, TransformNet, load_network, network_from_file,
                              save_network, shipped, style_vector, stylize_fast, train)
from nst_helpers.fast import cli as fast_cli
from nst_helpers.fast.data import CropSampler
from nst_helpers.fast.store import read_file

TINY = dict(steps=3, batch=2, crop=32, scale=(32, 48), style_size=32, width=4, blocks=1,
            photos=("coins", "camera"), best_window=2, content_layers=("relu2_1",),
            style_layers=("relu1_1", "relu2_1"))  # a shallow VGG: the plumbing, in a fraction of the time


def _net(n_styles=1, norm="instance", seed=0, names=None):
    torch.manual_seed(seed)
    net = TransformNet(width=4, blocks=1, n_styles=n_styles, norm=norm, names=names)
    with torch.no_grad():  # scales and shifts that differ per style, as after training
        for module in net.modules():
            if isinstance(module, ConditionalInstanceNorm):
                module.gamma.uniform_(0.5, 1.5)
                module.beta.uniform_(-0.5, 0.5)
    return net.eval()


@pytest.mark.parametrize("size", [(37, 51), (5, 7), (64, 48), (1, 1)])
def test_any_size_in_and_out(size):
    image = torch.rand(2, 3, *size)
    out = _net()(image)
    assert out.shape == image.shape
    assert 0 <= out.min() and out.max() <= 1


def test_one_hot_blend_is_that_style_and_blends_lie_between():
    net = _net(n_styles=3, names=["a", "b", "c"])
    photo = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        by_index = [net(photo, k) for k in range(3)]
        assert torch.equal(net(photo, [0.0, 1.0, 0.0]), by_index[1])
        assert torch.equal(net(photo, "c"), by_index[2])
        assert not torch.allclose(by_index[0], by_index[1])
        half = net(photo, [1.0, 1.0, 0.0])  # weights are divided by their sum
        assert torch.allclose(half, net(photo, [0.5, 0.5, 0.0]))
        assert not torch.allclose(half, by_index[0]) and not torch.allclose(half, by_index[1])
    # The scales and shifts themselves mix linearly.
    norm = net.down[0].norm
    vector = style_vector(net, [0.25, 0.75, 0.0])
    assert torch.allclose(vector @ norm.gamma, 0.25 * norm.gamma[0] + 0.75 * norm.gamma[1])


@pytest.mark.parametrize("style, message", [(3, "out of range"), ("d", "no style 'd'"),
                                            ([1.0, -1.0, 0.0], ">= 0"), ([1.0, 0.0], "3 blend weights")])
def test_bad_style_vectors_say_what_is_wrong(style, message):
    with pytest.raises(ValueError, match=message):
        style_vector(_net(n_styles=3, names=["a", "b", "c"]), style)


def test_instance_norm_ignores_the_rest_of_the_batch_batch_norm_does_not():
    photos = torch.rand(2, 3, 16, 16)
    other = torch.cat([photos[:1], torch.rand(1, 3, 16, 16) * 0.2])
    for norm, independent in (("instance", True), ("batch", False)):
        net = _net(norm=norm).train()
        with torch.no_grad():
            same = torch.allclose(net(photos)[0], net(other)[0], atol=1e-6)
        assert same is independent, norm


def test_network_file_round_trip(tmp_path):
    net = _net(n_styles=2, names=["x", "y"])
    path = save_network(net, tmp_path / "net.pt", info={"note": "test"})
    loaded = network_from_file(path)
    photo = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert torch.equal(loaded(photo, "y"), net(photo, "y"))
    assert loaded.names == ["x", "y"] and loaded.info == {"note": "test"}
    assert not list(tmp_path.glob("*.part"))


class _Planted:
    """An object whose unpickling would create a file: proof that loading runs no code."""
    target = None

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def _bad_files(tmp_path):
    good = save_network(_net(), tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:300])
    text = tmp_path / "text.pt"
    text.write_text("not a network at all\n")
    _Planted.target = str(tmp_path / "code_ran")
    planted = tmp_path / "planted.pt"
    torch.save({"format": "nst_helpers.fast/1", "config": _Planted(), "state": {}}, planted)
    foreign = tmp_path / "foreign.pt"
    torch.save({"conv.weight": torch.zeros(3)}, foreign)
    wrong_shapes = tmp_path / "wrong_shapes.pt"
    save_network(_net(), wrong_shapes, state={k: v[..., :1] if v.dim() else v
                                               for k, v in _net().state_dict().items()})
    not_finite = tmp_path / "nan.pt"
    save_network(_net(), not_finite, state={k: v * float("nan") for k, v in _net().state_dict().items()})
    return [truncated, text, planted, foreign, wrong_shapes, not_finite]


def test_damaged_or_foreign_files_get_one_line_and_run_no_code(tmp_path):
    for path in _bad_files(tmp_path):
        with pytest.raises(ValueError) as info:
            load_network(path)
        assert "\n" not in str(info.value) and path.name in str(info.value), path.name
    assert not (tmp_path / "code_ran").exists()
    with zipfile.ZipFile(tmp_path / "planted.pt") as archive:  # the file does hold a pickled call
        assert any(b"touch" in archive.read(n) for n in archive.namelist() if n.endswith(".pkl"))


@pytest.fixture(scope="module")
def random_vgg():
    """Untrained VGG-19 with the loss layers: the plumbing of training, without the cost of real weights."""
    from nst_helpers.vgg import VGGFeatures

    torch.manual_seed(0)
    return VGGFeatures(TINY["content_layers"] + TINY["style_layers"], weights="random")


def _train(tmp_path, vgg, name="ck.pt", **overrides):
    return train(["starry_night", "great_wave"], checkpoint=tmp_path / name, extractor=vgg,
                 progress=False, **{**TINY, **overrides})


def test_training_resumes_exactly_and_is_deterministic(tmp_path, random_vgg):
    whole = _train(tmp_path, random_vgg, "whole.pt", steps=3)
    _train(tmp_path, random_vgg, "split.pt", steps=2)   # a separate run: equal first steps = deterministic
    resumed = _train(tmp_path, random_vgg, "split.pt", steps=3)
    assert len(whole.history) == 3
    assert [h["total"] for h in resumed.history] == [h["total"] for h in whole.history]
    for a, b in zip(whole.net.state_dict().values(), resumed.net.state_dict().values()):
        assert torch.equal(a, b)
    saved = read_file(tmp_path / "split.pt")
    assert len(saved["training"]["history"]) == 3
    assert network_from_file(tmp_path / "split.pt").names == ["starry_night", "great_wave"]
    other_seed = _train(tmp_path, random_vgg, "seed1.pt", steps=1, seed=1)
    assert other_seed.history[0]["total"] != whole.history[0]["total"]


def test_training_moves_the_weights_and_ctrl_c_keeps_the_best(tmp_path, random_vgg):
    def stop(step, net, history):
        raise KeyboardInterrupt

    before = TransformNet(4, 1, 2).state_dict()
    result = _train(tmp_path, random_vgg, steps=10, callback=stop, callback_every=3)
    assert result.interrupted and len(result.history) == 3
    assert result.best_loss == min(sum(h["total"] for h in result.history[i:i + 2]) / 2 for i in range(2))
    stored = network_from_file(tmp_path / "ck.pt").state_dict()
    assert all(torch.equal(stored[k], v) for k, v in result.net.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in result.net.state_dict().items() if "conv" in k)


def test_the_progress_bar_shows_the_loss_without_a_warning(tmp_path, random_vgg, capsys):
    # float() of the loss that still required grad warned once per session, in every notebook that trained
    result = train(["starry_night"], extractor=random_vgg, progress=True, **{**TINY, "steps": 1})
    assert len(result.history) == 1 and f"loss={result.history[0]['total']:.3g}" in capsys.readouterr().err


def test_crop_sampler_is_seeded_and_in_range():
    photos = [torch.rand(1, 3, 40, 60), torch.rand(1, 3, 50, 33)]
    a, b = CropSampler(photos, 32, (32, 64), seed=5), CropSampler(photos, 32, (32, 64), seed=5)
    first = a.batch(3)
    assert first.shape == (3, 3, 32, 32) and torch.equal(first, b.batch(3))
    assert not torch.equal(a.batch(3), first)


@pytest.fixture
def fake_shipped(tmp_path, monkeypatch):
    """A tiny two-style network installed as the shipped one."""
    path = save_network(_net(n_styles=2, names=["starry_night", "great_wave"]), tmp_path / "paintings.pt")
    digest = shipped._sha256(path)
    monkeypatch.setattr(shipped, "SHIPPED", {"paintings.pt": (digest, ("starry_night", "great_wave"))})
    monkeypatch.setattr(shipped, "shipped_path", lambda file: tmp_path / file)
    monkeypatch.setattr(shipped, "_CACHE", {})
    return path


def test_stylize_fast_by_name_and_blend(fake_shipped):
    photo = torch.rand(1, 3, 30, 45)
    one = stylize_fast(photo, "great_wave", size=None)
    assert one.shape == photo.shape
    blend = stylize_fast(photo, ["starry_night", "great_wave"], blend=[0.0, 1.0], size=None)
    assert torch.equal(blend, one)
    assert stylize_fast(photo, "great_wave", size=20).shape[-2:] == (13, 20)
    with pytest.raises(ValueError, match="no shipped network for the style 'swirls'.*starry_night, great_wave"):
        stylize_fast(photo, "swirls")


def test_damaged_shipped_file_is_refused(fake_shipped):
    fake_shipped.write_bytes(fake_shipped.read_bytes()[:-1] + b"x")
    with pytest.raises(ValueError, match="damaged"):
        load_network("starry_night")


def test_shipped_files_match_their_hashes():
    folder = shipped.shipped_path("x").parent
    on_disk = {path.name for path in folder.glob("*.pt")} if folder.is_dir() else set()
    assert on_disk == set(shipped.SHIPPED)  # every network file is registered with its hash, and none is missing
    for file, (digest, styles) in shipped.SHIPPED.items():
        assert shipped._sha256(shipped.shipped_path(file)) == digest
        net = load_network(file)
        assert net.names == list(styles) if styles else net.n_styles == 1
        if styles:
            assert load_network(styles[0]) is net


def test_cli_fast_unknown_style_and_bad_network(tmp_path, capsys, fake_shipped):
    out = tmp_path / "out.png"
    assert cli.main(["chelsea", "swirls", "-o", str(out), "--fast", "--size", "32"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "swirls" in err and "starry_night, great_wave" in err and not out.exists()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    assert cli.main(["chelsea", "-o", str(out), "--fast", "--network", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bad.pt" in err and not out.exists()
    assert cli.main(["chelsea", "-o", str(out), "--fast"]) == 2
    assert "--network" in capsys.readouterr().err


def test_cli_fast_writes_the_picture(tmp_path, capsys, fake_shipped):
    out = tmp_path / "out.png"
    assert cli.main(["chelsea", "great_wave", "-o", str(out), "--fast", "--size", "40", "-q"]) == 0
    mine = save_network(_net(), tmp_path / "mine.pt")
    out2 = tmp_path / "mine.png"
    assert cli.main(["chelsea", "-o", str(out2), "--fast", "--network", str(mine), "--size", "40"]) == 0
    assert out.is_file() and out2.is_file() and "saved" in capsys.readouterr().out


def test_train_command_trains_and_resumes(tmp_path, capsys):
    net_file = tmp_path / "my_style.pt"
    base = ["starry_night", "-o", str(net_file), "--crop", "32", "--style-size", "32", "--batch", "1",
            "--width", "4", "--blocks", "1", "-q"]
    assert fast_cli.train_main(base + ["--steps", "2"]) == 0
    assert fast_cli.train_main(base + ["--steps", "3"]) == 0
    assert len(read_file(net_file)["training"]["history"]) == 3
    assert network_from_file(net_file).names == ["starry_night"]
    assert fast_cli.train_main(["starry_night", "-o", str(tmp_path / "x.png")]) == 2
    assert fast_cli.train_main(base + ["--crop", "30"]) == 2
    err = capsys.readouterr().err
    assert "multiple of 16" in err and ".pt" in err
    assert fast_cli.train_main(["no_such_painting.jpg", "-o", str(tmp_path / "y.pt"), "-q"]) == 1
    assert "\n" not in capsys.readouterr().err.strip()


def test_pickled_objects_are_not_network_files(tmp_path):
    path = tmp_path / "plain.pt"
    path.write_bytes(pickle.dumps({"format": "nst_helpers.fast/1"}))
    with pytest.raises(ValueError, match="not a network file"):
        read_file(path)


def test_train_command_ctrl_c_keeps_the_best(tmp_path, capsys, monkeypatch):
    from nst_helpers.fast import training

    def interrupted_train(styles, checkpoint, **kwargs):  # what train returns after Ctrl-C at step 2
        net = _net()
        save_network(net, checkpoint)
        return training.TrainResult(net, [{"total": 1.0}, {"total": 0.5}], 0.75, interrupted=True)

    monkeypatch.setattr(training, "train", interrupted_train)
    out = tmp_path / "net.pt"
    assert fast_cli.train_main(["starry_night", "-o", str(out), "-q"]) == 130
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "interrupted after 2 steps" in err and out.is_file()


def _tool():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "tools" / "train_fast_networks.py"
    spec = importlib.util.spec_from_file_location("train_fast_networks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_training_tool_ships_the_recipe_of_train_settings():
    from nst_helpers.fast import TrainSettings

    shipped_recipe = _tool().SHIPPED
    defaults = TrainSettings()
    assert {k: v for k, v in shipped_recipe.items() if k not in ("steps", "seed")} == \
        {k: getattr(defaults, k) for k in shipped_recipe if k not in ("steps", "seed")}
    assert shipped_recipe["norm"] == "instance" and shipped_recipe["style_weight"] == defaults.style_weight


@pytest.mark.parametrize("half", [False, True])
def test_the_training_tool_ships_a_checkpoint_without_its_training_state(tmp_path, random_vgg, capsys, half):
    result = _train(tmp_path, random_vgg)
    out = tmp_path / "shipped.pt"
    assert _tool().main(["-o", str(tmp_path / "ck.pt"), "--ship", str(out)] + (["--half"] * half)) == 0
    assert f'"shipped.pt": ("{shipped._sha256(out)}"' in capsys.readouterr().out   # the entry for SHIPPED
    payload = read_file(out)
    assert "training" not in payload
    dtypes = {v.dtype for v in payload["state"].values() if v.is_floating_point()}
    assert dtypes == ({torch.float16} if half else {torch.float32})
    net = load_network(out)
    photo = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        same = net(photo, 1), result.net(photo, 1)
    assert (same[0] - same[1]).abs().max() < (2e-3 if half else 1e-6)    # float16 weights: close, not equal
    assert net.names == ["starry_night", "great_wave"]
