"""Hostile and odd input: interrupts, non-finite numbers, damaged weights, runaway and tiny sizes, bad paths.

One test (or a few) per case of the hardening pass; each failed before the fix it guards.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_helpers import checks, cli, hardware, images, inputs, losses, objective, transfer, vgg
from nst_helpers.images import load_image, save_image
from nst_helpers.transfer import Settings, stylize

REPO = Path(__file__).resolve().parents[1]
SENTINEL = b"an older file that a failed run must not touch"
QUICK = ["--size", "32", "--steps", "2", "--weights", "random", "--quiet"]
RUN = dict(size=32, steps=2, weights="random", progress=False, preview=False)


def _lines(text: str) -> list[str]:
    return [line for line in text.replace("\r", "\n").splitlines() if line.strip()]


def _one_line(err) -> str:
    text = str(err.value)
    assert text and "\n" not in text, repr(text)
    return text


# --- 1. Ctrl-C before the first step: nothing written, the old file kept ------------------------------------

def _interrupt_the_first_step(monkeypatch):
    def interrupted(self, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(transfer.Objective, "__call__", interrupted)


def test_result_of_a_run_interrupted_before_its_first_step(monkeypatch, capsys):
    _interrupt_the_first_step(monkeypatch)
    result = stylize("chelsea", "swirls", **RUN)
    assert result.interrupted and result.history == []
    assert result.message == "interrupted before the first step finished"


@pytest.mark.parametrize("existing", [True, False], ids=["existing-out", "new-out"])
def test_cli_ctrl_c_before_the_first_step_writes_nothing(tmp_path, capsys, monkeypatch, existing):
    _interrupt_the_first_step(monkeypatch)
    out = tmp_path / "out.png"
    if existing:
        out.write_bytes(SENTINEL)
    assert cli.main(["chelsea", "swirls", "-o", str(out), *QUICK]) == 130
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 1 and "before the first step" in lines[0] and "nothing was saved" in lines[0]
    if existing:
        assert out.read_bytes() == SENTINEL
        assert f"{out} was left as it was" in lines[0]
    else:
        assert not out.exists()
    assert [path.name for path in tmp_path.iterdir()] == ["out.png"] * existing


# --- 2. Ctrl-C at any moment of the command: exit 130, one line --------------------------------------------

def _mapped(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _interrupt(argv, when, tmp_path):
    """Start the command, send SIGINT at ``when``, return (exit code, stderr lines, stdout).

    when: the name of one of torch's shared libraries (SIGINT as soon as the process has mapped it, so
    inside ``import torch``, which goes on for a while after) or "step" (once the progress bar shows a step).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    start = time.monotonic()
    if when != "step":
        while not _mapped(proc.pid, when) and time.monotonic() - start < 180 and proc.poll() is None:
            time.sleep(0.002)
    else:                      # the progress bar shows that steps are being made
        seen = b""
        while b"1/" not in seen and proc.poll() is None and time.monotonic() - start < 180:
            seen += os.read(proc.stderr.fileno(), 4096)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    if when == "step":
        err = seen + err
    return proc.returncode, _lines(err.decode()), out.decode()


COMMANDS = {
    "module": [sys.executable, "-m", "nst_helpers"],
    "script": [str(Path(sys.executable).with_name("nst-stylize"))],
}


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and sends POSIX signals")
@pytest.mark.parametrize("command, moments", [("module", ("libtorch_global_deps", "libtorch_python", "step")),
                                              ("script", ("libtorch_global_deps", "libtorch_python"))])
def test_ctrl_c_at_any_moment_exits_130_with_one_line(tmp_path, command, moments):
    # Moments that can be observed from outside, not delays, so that a slow or busy machine does not change
    # them.  (The first tens of milliseconds belong to Python's own start-up, before nst_helpers can act.)
    if not Path(COMMANDS[command][0]).exists():
        pytest.skip("the nst-stylize script is not installed next to this Python")
    out = tmp_path / "out.png"
    out.write_bytes(SENTINEL)
    argv = COMMANDS[command] + ["chelsea", "swirls", "-o", str(out), "--size", "32", "--steps", "100000",
                                "--weights", "random"]
    for when in [moment for moment in moments if moment != "step"]:
        code, lines, stdout = _interrupt(argv + ["--quiet"], when, tmp_path)
        assert code == 130 and len(lines) == 1 and lines[0].startswith("nst-stylize: interrupted"), (when, lines)
        assert out.read_bytes() == SENTINEL and stdout == ""
    if "step" not in moments:
        return
    code, lines, stdout = _interrupt(argv, "step", tmp_path)
    assert code == 130 and not any("Traceback" in line for line in lines)
    assert lines[-1].startswith("nst-stylize: interrupted after") and f"saved the best image so far to {out}" in lines[-1]
    assert Image.open(out).size == (32, 21)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.png"]


# --- 3. no silent wrong answers ----------------------------------------------------------------------------

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


def test_uint8_tensors_are_scaled_like_uint8_arrays():
    array = (np.arange(4 * 5 * 3).reshape(4, 5, 3) * 3).astype(np.uint8)
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    expected = load_image(array)
    assert torch.equal(load_image(tensor), expected)
    assert torch.equal(load_image(tensor.unsqueeze(0)), expected)
    assert 0 < float(expected.max()) < 1


def test_stylize_scales_a_uint8_tensor(capsys):
    gray = torch.full((1, 3, 24, 32), 128, dtype=torch.uint8)
    result = stylize(gray, gray, **{**RUN, "steps": 1, "optimizer": "adam", "learning_rate": 1e-4})
    assert abs(float(result.image.mean()) - 128 / 255) < 0.02


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("role", ["content", "style"])
def test_non_finite_pixels_are_refused_before_any_work(role, value, monkeypatch):
    monkeypatch.setattr(inputs, "_extractor", lambda *a, **k: pytest.fail("work started"))
    bad = torch.rand(1, 3, 24, 32)
    bad[0, 1, 5, 7] = value
    images_ = {"content": torch.rand(1, 3, 24, 32), "style": torch.rand(1, 3, 24, 32), role: bad}
    with pytest.raises(ValueError) as err:
        stylize(images_["content"], images_["style"], **RUN)
    text = _one_line(err)
    assert text.startswith(f"the {role} image") and "NaN or infinite" in text


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
        assert "SHA-256" in _one_line(err) and str(copy) in str(err.value)


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
        assert key in _one_line(err) and str(path) in str(err.value)


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
        assert str(path) in _one_line(err)


def test_saved_extractor_with_wrong_shapes_or_values(tmp_path):
    state = vgg.VGGFeatures("relu2_1", weights="random", device="cpu").state_dict()
    wrong = {**state, "body.conv2_1.weight": state["body.conv2_1.weight"][:, :, :2]}
    nan = {**state, "body.conv1_2.bias": state["body.conv1_2.bias"] * float("nan")}
    for number, (bad, key) in enumerate([(wrong, "conv2_1.weight"), (nan, "conv1_2.bias")]):
        path = _save(bad, tmp_path / f"state{number}.pt")
        with pytest.raises(ValueError) as err:
            vgg.VGGFeatures("relu2_1", weights=path, device="cpu")
        assert key in _one_line(err) and str(path) in str(err.value)


# --- 4. runaway sizes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("height, width, peak_gb", [(341, 512, 1.37), (681, 1024, 2.65), (1022, 1536, 4.93),
                                                    (1362, 2048, 8.00)])
def test_memory_estimate_follows_the_measured_peaks(height, width, peak_gb):
    # BENCHMARKS.md, peak RSS by size; the estimate is the fixed part plus a share per pixel
    assert hardware.estimate_memory_gb(height, width) == pytest.approx(peak_gb, rel=0.1)
    assert hardware.estimate_memory_gb(2 * height, width) > hardware.estimate_memory_gb(height, width)


def _machine_with(monkeypatch, available_gb):
    monkeypatch.setattr(hardware, "available_memory_gb", lambda device=None: available_gb)


def test_too_large_a_size_is_refused_before_any_work(monkeypatch):
    _machine_with(monkeypatch, 2.0)
    monkeypatch.setattr(inputs, "load_any", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(MemoryError) as err:
        stylize("chelsea", "swirls", **{**RUN, "size": 4096})
    text = _one_line(err)
    largest = hardware.largest_size_that_fits(2.0)
    assert f"size={largest}" in text and "4096" in text and "2.0 GB" in text
    assert hardware.estimate_memory_gb(largest, largest) <= 2.0 + hardware.BASE_MEMORY_GB
    assert hardware.estimate_memory_gb(largest + 16, largest + 16) > 2.0 + hardware.BASE_MEMORY_GB
    with pytest.raises(MemoryError):      # a large style image needs memory too
        stylize("chelsea", "swirls", **{**RUN, "style_size": 4096})


def test_a_size_that_fits_is_not_refused(monkeypatch):
    _machine_with(monkeypatch, 2.0)
    transfer.check_memory(Settings(size=hardware.largest_size_that_fits(2.0)))
    _machine_with(monkeypatch, None)      # unknown: no check
    transfer.check_memory(Settings(size=100_000))


def test_cli_refuses_a_runaway_size_up_front(tmp_path, capsys, monkeypatch):
    _machine_with(monkeypatch, 8.0)
    monkeypatch.setattr(inputs, "load_any", lambda *a, **k: pytest.fail("work started"))
    out = tmp_path / "out.png"
    assert cli.main(["chelsea", "swirls", "-o", str(out), "--size", "100000"]) == 2
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 1 and "--size" in lines[0] and f"{hardware.largest_size_that_fits(8.0)}" in lines[0]
    assert not out.exists()


def test_available_memory_is_known_here():
    available = hardware.available_memory_gb("cpu")
    assert available is None or 0 < available < 1e5


# --- 5. tiny sizes and extreme aspect ratios work ------------------------------------------------------

def test_smallest_sizes_and_a_thin_strip_work(tmp_path, capsys):
    strip = tmp_path / "strip.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (5, 4000, 3), dtype=np.uint8)).save(strip)
    for argv, size in [(["chelsea", "swirls", "--size", "16"], (16, 11)),
                       (["chelsea", "swirls", "--size", "48", "--style-size", "16"], (48, 32)),
                       ([str(strip), "swirls", "--size", "256"], (256, 1)),
                       (["swirls", str(strip), "--size", "32", "--style-size", "400"], (32, 32))]:
        out = tmp_path / "out.png"
        assert cli.main([*argv, "-o", str(out), "--steps", "2", "--weights", "random", "--quiet"]) == 0, argv
        assert Image.open(out).size == size
    assert capsys.readouterr().err == ""


def test_sizes_below_16_are_refused_with_the_smallest():
    for field in ("size", "style_size"):
        with pytest.raises(ValueError) as err:
            Settings(**{field: 8})
        assert f"{field} must be a whole number, at least 16" in _one_line(err)


# --- 6. an output path that cannot be written is found before the run -------------------------------------

def test_unwritable_output_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(transfer, "stylize", lambda *a, **k: pytest.fail("the run started"))
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder")
    paths = [a_file / "out.png"]
    if sys.platform == "linux":
        paths.append(Path("/proc/nst-out.png"))
    for out in paths:
        assert cli.main(["chelsea", "swirls", "-o", str(out), *QUICK]) == 2
        lines = _lines(capsys.readouterr().err)
        assert len(lines) == 1 and f"cannot write {str(out)!r}" in lines[0] and ".tmp" not in lines[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_save_image_names_the_path_not_a_temporary_file(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder")
    with pytest.raises(OSError) as err:
        save_image(torch.zeros(1, 3, 4, 4), a_file / "sub" / "out.png")
    assert str(a_file / "sub" / "out.png") in _one_line(err) and ".tmp" not in str(err.value)


# --- 7. settings checked when made ------------------------------------------------------------------------

@pytest.mark.parametrize("bad, name", [
    (dict(steps=1.5), "steps"), (dict(steps="10"), "steps"), (dict(size=300.5), "size"),
    (dict(style_size=0), "style_size"), (dict(style_size=-3), "style_size"), (dict(style_size=2.5), "style_size"),
    (dict(learning_rate=-1), "learning_rate"), (dict(learning_rate=0), "learning_rate"),
    (dict(learning_rate=float("nan")), "learning_rate"),
    (dict(pooling="min"), "pooling"), (dict(init="nois"), "init"), (dict(weights="cafe"), "weights"),
    (dict(content_layers=("relu4_3x",)), "relu4_3x"), (dict(style_layers=("relu1_1", "conv6_1")), "conv6_1"),
    (dict(seed=2 ** 70), "seed"), (dict(seed=-1), "seed"), (dict(seed=0.5), "seed"),
    (dict(coarse_to_fine="yes"), "coarse_to_fine"),
])
def test_settings_refuse_bad_values_when_made(bad, name):
    with pytest.raises(ValueError) as err:
        Settings(**bad)
    assert name in _one_line(err)


def test_settings_suggest_the_close_name():
    with pytest.raises(ValueError, match="did you mean 'caffe'"):
        Settings(weights="cafe")
    Settings(weights=str(vgg.caffe_weights_path()), seed=2 ** 64 - 1, learning_rate=0.5, init="image")


def test_cli_refuses_a_huge_seed(tmp_path, capsys):
    assert cli.main(["chelsea", "swirls", "-o", str(tmp_path / "out.png"), "--seed", str(2 ** 70)]) == 2
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 1 and "seed" in lines[0]


# --- 8. the edge rows and columns are stylised like the interior ------------------------------------------

@pytest.mark.parametrize("height, width", [(40, 56), (170, 256), (21, 32)])
def test_every_pixel_reaches_the_deepest_style_layer(height, width):
    # Without padding, the rows and columns beyond the last whole 16x16 cell never reach relu5_1 (after pool4):
    # their gradient from that layer is exactly zero and they keep the content's colours.
    opts = Settings(style_layers=("relu5_1",), content_layers=(), tv_weight=0, weights="random")
    extractor = vgg.VGGFeatures(["relu5_1"], weights="random", device="cpu")
    generator = torch.Generator().manual_seed(0)
    style = torch.rand(1, 3, 48, 48, generator=generator)
    x = torch.rand(1, 3, height, width, generator=generator).mul(0.8).add(0.1).requires_grad_(True)
    objective = transfer.Objective(opts, extractor, x.detach(), style)
    objective(x)[0].backward()
    strength = x.grad.abs().sum(1)[0]                     # (H, W)
    interior = strength[: height // 16 * 16, : width // 16 * 16].mean()
    for edge in (strength[-8:, :], strength[:, -8:]):     # the last 8 rows, the last 8 columns
        assert edge.mean() > 0.3 * interior


def test_padding_keeps_the_size_and_only_adds_rows_and_columns():
    image = torch.rand(1, 3, 21, 40)
    padded = objective.pad_to_multiple(image)
    assert padded.shape[-2:] == (32, 48)
    assert torch.equal(padded[..., :21, :40], image)
    tiny = torch.rand(1, 3, 1, 5)
    assert objective.pad_to_multiple(tiny).shape[-2:] == (16, 16)
    assert objective.pad_to_multiple(torch.rand(1, 3, 32, 16)).shape[-2:] == (32, 16)
