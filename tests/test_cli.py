"""The command line, end to end with the original (Caffe) VGG-19 weights, at tiny sizes."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from messages import screen_lines
from nst_helpers import cli, examples, hardware, inputs, transfer

REPO = Path(__file__).resolve().parents[1]  # so that -m nst_helpers works without an install
SENTINEL = b"an older file that a failed run must not touch"


def _stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _long_side(path) -> int:
    with Image.open(path) as image:
        image.load()
        return max(image.size)


@pytest.fixture
def photo_files(tmp_path):
    """A 60x40 content photo (PNG) and a 50x50 style image (JPEG), made here."""
    ys, xs = np.mgrid[0:40, 0:60]
    content = np.stack([xs * 4, ys * 6, (xs + ys) * 2], -1).clip(0, 255).astype(np.uint8)
    style = (np.indices((50, 50)).sum(0) // 5 % 2 * 200 + 20).astype(np.uint8)
    content_path, style_path = tmp_path / "photo.png", tmp_path / "style.jpg"
    Image.fromarray(content).save(content_path)
    Image.fromarray(np.stack([style, 255 - style, style // 2], -1)).save(style_path)
    return content_path, style_path


def test_subprocess_example_names_png(tmp_path):
    out = tmp_path / "cat.png"
    proc = subprocess.run([sys.executable, "-m", "nst_helpers", "chelsea", "swirls", "-o", str(out),
                           "--size", "48", "--steps", "3"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    line, = _stderr_lines(proc.stdout)  # exactly one line on stdout
    assert str(out) in line and "3 steps" in line and "48x" in line
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert max(image.size) == 48
        # chelsea is 451x300 (landscape): the long side is the width
        assert image.size == (48, round(300 * 48 / 451))


def test_a_shipped_painting_by_name_needs_no_network(tmp_path, monkeypatch, capsys, photo_files):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("a shipped painting tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "empty-cache"))
    out = tmp_path / "starry.png"
    code = cli.main([str(photo_files[0]), "starry_night", "-o", str(out), "--size", "32", "--steps", "2", "-q"])
    assert code == 0, capsys.readouterr().err
    assert _long_side(out) == 32 and not (tmp_path / "empty-cache").exists()


def test_in_process_quiet_jpeg(tmp_path, capsys):
    out = tmp_path / "sub" / "cat.jpeg"  # a missing folder is created
    code = cli.main(["chelsea", "waves", "-o", str(out), "--size", "32", "--steps", "2", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == "" and captured.err == ""
    with Image.open(out) as image:
        assert image.format == "JPEG"
        assert max(image.size) == 32


def test_file_inputs_and_options(tmp_path, photo_files, capsys):
    content, style = photo_files
    out = tmp_path / "result.png"
    code = cli.main([str(content), str(style), "-o", str(out), "--size", "32", "--steps", "3", "--optimizer", "adam",
                     "--init", "noise", "--pooling", "avg", "--seed", "1", "--style-size", "40",
                     "--content-weight", "2", "--style-weight", "10", "--tv-weight", "0", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "3 steps" in captured.out and "32x21 px" in captured.out
    with Image.open(out) as image:
        assert image.size == (32, round(40 * 32 / 60))
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 1  # an image, not a blank


def test_init_from_a_file(tmp_path, photo_files, capsys):
    content, style = photo_files
    out = tmp_path / "result.png"
    code = cli.main([str(content), str(style), "-o", str(out), "--size", "24", "--steps", "1", "--init", str(style),
                     "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert _long_side(out) == 24


def test_defaults_come_from_settings():
    args = cli.build_parser().parse_args([])
    defaults = transfer.Settings()
    for name in ("size", "steps", "content_weight", "style_weight", "tv_weight", "optimizer", "init", "pooling",
                 "seed", "device", "weights", "style_size", "precision", "memory_format", "coarse_to_fine",
                 "stop_tolerance", "stop_window"):
        assert getattr(args, name) == getattr(defaults, name), name
    # Every setting but the learning rate and the layer lists has an option.
    assert {f.name for f in dataclasses.fields(transfer.Settings)} - set(cli._settings(args)) == {
        "learning_rate", "content_layers", "style_layers"}


def test_precision_and_coarse_to_fine_reach_stylize(monkeypatch, tmp_path):
    seen = {}

    def fake_stylize(content, style, progress=True, **settings):
        seen.update(settings)
        raise RuntimeError("stop here")

    monkeypatch.setattr(transfer, "stylize", fake_stylize)
    code = cli.main(["chelsea", "swirls", "-o", str(tmp_path / "o.png"), "--size", "32", "--precision", "fp32",
                     "--coarse-to-fine", "--memory-format", "channels_last", "--quiet"])
    assert code == 1 and seen["precision"] == "fp32" and seen["coarse_to_fine"] is True
    assert seen["memory_format"] == "channels_last"
    cli.main(["chelsea", "swirls", "-o", str(tmp_path / "o.png"), "--size", "32", "--no-coarse-to-fine", "-q"])
    assert seen["coarse_to_fine"] is False


def test_help_explains_the_options(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for piece in ("--size", "pixels", "--steps", "--tv-weight", "--list-examples", "examples:", "-o",
                  "--memory-format", "channels_last"):
        assert piece in text


def test_list_examples(capsys):
    assert cli.main(["--list-examples"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    for name in examples.names():
        line, = [line for line in lines if line.split()[:1] == [name]]
        credit = examples.credit(name)
        assert credit["title"] in line and credit["author"] in line and credit["licence"] in line
    # the paintings come after a heading that says they need a download
    first_painting = lines.index(next(line for line in lines if line.split()[:1] == [examples.names(online=True)[0]]))
    assert "download" in lines[first_painting - 1].lower()
    assert not any("download" in line.lower() for line in lines[:first_painting - 1])


OUT = "{out}"  # replaced by the output path of each test
TINY = ["--size", "32", "--steps", "2"]
BAD_INPUTS = {  # name: (argv, exit code, a piece of the one-line message)
    "missing content": (["missing.jpg", "swirls", "-o", OUT, *TINY], 1, "missing.jpg"),
    "not an image": (["{text_file}", "swirls", "-o", OUT, *TINY], 1, "not an image"),
    "unknown example": (["chelsae", "swirls", "-o", OUT, *TINY], 1, "--list-examples"),
    "unknown weights": (["chelsea", "swirls", "-o", OUT, "--weights", "nowhere.pt", *TINY], 2, "nowhere.pt"),
    "bad extension": (["chelsea", "swirls", "-o", "{out_gif}", *TINY], 2, ".png"),
    "negative size": (["chelsea", "swirls", "-o", OUT, "--size", "-32"], 2, "--size"),
    "tiny size": (["chelsea", "swirls", "-o", OUT, "--size", "4"], 2, "size"),
    "zero steps": (["chelsea", "swirls", "-o", OUT, "--steps", "0"], 2, "--steps"),
    "zero style size": (["chelsea", "swirls", "-o", OUT, "--style-size", "0"], 2, "--style-size"),
    "negative weight": (["chelsea", "swirls", "-o", OUT, "--style-weight", "-1"], 2, "--style-weight"),
    "unknown optimizer": (["chelsea", "swirls", "-o", OUT, "--optimizer", "sgd"], 2, "sgd"),
    "unknown pooling": (["chelsea", "swirls", "-o", OUT, "--pooling", "min"], 2, "min"),
    "missing style": (["chelsea", "-o", OUT], 2, "STYLE"),
    "missing output": (["chelsea", "swirls"], 2, "--output"),
}


@pytest.mark.parametrize("existing", [False, True], ids=["new-out", "existing-out"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_and_no_output(tmp_path, capsys, case, existing):
    template, expected_code, fragment = BAD_INPUTS[case]
    out = tmp_path / "out.png"
    text_file = tmp_path / "notes.png"
    text_file.write_text("this is not an image\n")
    places = {"out": out, "text_file": text_file, "out_gif": tmp_path / "out.gif"}
    argv = [arg.format(**places) for arg in template]
    if existing:
        out.write_bytes(SENTINEL)
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == expected_code
    lines = _stderr_lines(captured.err)
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("nst-stylize: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    if existing:
        assert out.read_bytes() == SENTINEL
    else:
        assert not out.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["notes.png"] + ["out.png"] * existing)


def test_unknown_example_suggests_the_close_name(capsys):
    assert cli.main(["chelsae", "swirls", "-o", "never.png"]) == 1
    assert "did you mean 'chelsea'" in capsys.readouterr().err


def test_failure_inside_the_run_leaves_out_untouched(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")

    monkeypatch.setattr(transfer, "stylize", broken)
    out = tmp_path / "out.png"
    out.write_bytes(SENTINEL)
    assert cli.main(["chelsea", "swirls", "-o", str(out), "--size", "32", "--steps", "2"]) == 1
    lines = _stderr_lines(capsys.readouterr().err)
    assert lines == ["nst-stylize: error: CUDA out of memory. Tried to allocate 2 GiB"]
    assert out.read_bytes() == SENTINEL


def test_subprocess_error_has_no_traceback(tmp_path):
    out = tmp_path / "out.png"
    proc = subprocess.run([sys.executable, "-m", "nst_helpers", str(tmp_path / "missing.jpg"), "swirls",
                           "-o", str(out)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 1
    assert _stderr_lines(proc.stderr) == [line for line in _stderr_lines(proc.stderr)
                                          if line.startswith("nst-stylize: error: ")]
    assert len(_stderr_lines(proc.stderr)) == 1 and "missing.jpg" in proc.stderr
    assert not out.exists() and proc.stdout == ""


def test_ctrl_c_during_the_run_saves_the_best_image(tmp_path, capsys, monkeypatch):
    real_stylize = transfer.stylize
    seen = []

    def interrupt_at_step_2(step, image, losses):
        seen.append(step)
        if step == 2:
            raise KeyboardInterrupt

    def stylize_with_ctrl_c(*args, **kwargs):
        assert kwargs.get("callback") is None
        return real_stylize(*args, callback=interrupt_at_step_2, **kwargs)

    monkeypatch.setattr(transfer, "stylize", stylize_with_ctrl_c)
    out = tmp_path / "out.png"
    out.write_bytes(SENTINEL)
    code = cli.main(["chelsea", "swirls", "-o", str(out), "--size", "32", "--steps", "6", "--quiet"])
    captured = capsys.readouterr()
    assert code == 130
    assert seen == [1, 2]
    assert _stderr_lines(captured.err) == [
        f"nst-stylize: interrupted after 2 steps; saved the best image so far to {out}"]
    assert captured.out == ""
    assert _long_side(out) == 32  # replaced by a real image


def test_ctrl_c_before_the_run_saves_nothing(tmp_path, capsys, monkeypatch):
    def interrupted_load(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(transfer, "load_any", interrupted_load)
    out = tmp_path / "out.png"
    assert cli.main(["chelsea", "swirls", "-o", str(out)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not out.exists()


def test_output_folder_is_a_usage_error(tmp_path, capsys):
    folder = tmp_path / "looks_like.png"
    folder.mkdir()
    assert cli.main(["chelsea", "swirls", "-o", str(folder)]) == 2
    assert "folder" in capsys.readouterr().err
    assert folder.is_dir() and not any(folder.iterdir())


def test_output_says_precision_and_why_the_run_stopped(tmp_path, capsys):
    code = cli.main(["chelsea", "swirls", "-o", str(tmp_path / "o.png"), "--size", "32", "--steps", "30",
                     "--precision", "fp32", "--memory-format", "nchw", "--stop-tolerance", "0.99",
                     "--stop-window", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "VGG-19 in fp32, as asked; memory format nchw, as asked; stopped: the loss fell by less than 99.0% " \
           "over the last 2 steps (3 of at most 30 steps)" in out


@pytest.mark.parametrize("spelling", ["same", "other spelling", "symlink", "hard link"])
@pytest.mark.parametrize("role", ["content", "style", "mask", "init"])
def test_output_that_is_an_input_is_refused_before_any_work(tmp_path, photo_files, capsys, monkeypatch, role,
                                                            spelling):
    content, style = photo_files
    mask = tmp_path / "mask.png"
    Image.fromarray(np.full((40, 60), 255, np.uint8)).save(mask)
    init = tmp_path / "start.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(init)
    target = {"content": content, "style": style, "mask": mask, "init": init}[role]
    (tmp_path / "sub").mkdir()
    if spelling == "same":
        out = target
    elif spelling == "other spelling":
        out = tmp_path / "sub" / ".." / "." / target.name
    elif spelling == "symlink":
        out = tmp_path / "sub" / f"link{target.suffix}"
        out.symlink_to(target)
    else:
        out = tmp_path / "sub" / f"hard{target.suffix}"
        os.link(target, out)
    before = {path: path.read_bytes() for path in (content, style, mask, init)}
    monkeypatch.setattr(transfer, "stylize", lambda *a, **k: pytest.fail("the run must not start"))
    code = cli.main([str(content), str(style), "-o", str(out), "--masks", str(mask), "--init", str(init), *TINY])
    captured = capsys.readouterr()
    assert code == 2
    line, = _stderr_lines(captured.err)
    assert line.startswith("nst-stylize: error: ") and "same file" in line and target.name in line
    assert {path: path.read_bytes() for path in before} == before


def test_a_huge_style_scale_is_a_usage_error_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hardware, "available_memory_gb", lambda device=None: 2.0)
    monkeypatch.setattr(transfer, "load_any", lambda *a, **k: pytest.fail("work started"))
    out = tmp_path / "out.png"
    assert cli.main(["chelsea", "swirls", "-o", str(out), "--size", "64", "--style-scale", "60"]) == 2
    line, = _stderr_lines(capsys.readouterr().err)
    assert line.startswith("nst-stylize: error: --style-scale 60 ") and "GB" in line and not out.exists()


# --- hostile use of the command line: Ctrl-C, runaway sizes, tiny sizes, unwritable outputs, settings --

QUICK = ["--size", "32", "--steps", "2", "--weights", "random", "--quiet"]



@pytest.mark.parametrize("existing", [True, False], ids=["existing-out", "new-out"])
def test_cli_ctrl_c_before_the_first_step_writes_nothing(tmp_path, capsys, first_step_interrupted, existing):
    out = tmp_path / "out.png"
    if existing:
        out.write_bytes(SENTINEL)
    assert cli.main(["chelsea", "swirls", "-o", str(out), *QUICK]) == 130
    lines = screen_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "before the first step" in lines[0] and "nothing was saved" in lines[0]
    if existing:
        assert out.read_bytes() == SENTINEL
        assert f"{out} was left as it was" in lines[0]
    else:
        assert not out.exists()
    assert [path.name for path in tmp_path.iterdir()] == ["out.png"] * existing


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
    return proc.returncode, screen_lines(err.decode()), out.decode()


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


def test_cli_refuses_a_runaway_size_up_front(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hardware, "available_memory_gb", lambda device=None: 8.0)
    monkeypatch.setattr(inputs, "load_any", lambda *a, **k: pytest.fail("work started"))
    out = tmp_path / "out.png"
    assert cli.main(["chelsea", "swirls", "-o", str(out), "--size", "100000"]) == 2
    lines = screen_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "--size" in lines[0] and f"{hardware.largest_size_that_fits(8.0)}" in lines[0]
    assert not out.exists()


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


def test_unwritable_output_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(transfer, "stylize", lambda *a, **k: pytest.fail("the run started"))
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder")
    paths = [a_file / "out.png"]
    if sys.platform == "linux":
        paths.append(Path("/proc/nst-out.png"))
    for out in paths:
        assert cli.main(["chelsea", "swirls", "-o", str(out), *QUICK]) == 2
        lines = screen_lines(capsys.readouterr().err)
        assert len(lines) == 1 and f"cannot write {str(out)!r}" in lines[0] and ".tmp" not in lines[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_cli_refuses_a_huge_seed(tmp_path, capsys):
    assert cli.main(["chelsea", "swirls", "-o", str(tmp_path / "out.png"), "--seed", str(2 ** 70)]) == 2
    lines = screen_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "seed" in lines[0]
