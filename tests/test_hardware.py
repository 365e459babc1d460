"""The hardware choices (hardware.py): the precision and memory-format probes, the memory estimate and the checks
before any work."""

import pytest
import torch

from messages import one_line
from nst_helpers import hardware, inputs, losses
from nst_helpers.settings import Settings
from nst_helpers.transfer import stylize

SMALL = dict(size=48, progress=False, preview=False)
RUN = dict(size=32, steps=2, weights="random", progress=False, preview=False)


@pytest.fixture
def probe(monkeypatch):
    """A fake probe timer: seconds[(bf16, side)] per call; records the calls; a fresh cache."""
    monkeypatch.setattr(hardware, "_PRECISION_CHOICES", {})
    monkeypatch.setattr(hardware, "_FORMAT_CHOICES", {})
    fake = {"seconds": {}, "calls": []}

    def seconds(device, bf16, side, channels_last=False):   # both layouts equally fast unless told
        fake["calls"].append((bf16, side) + (("channels_last",) if channels_last else ()))
        kind = "tiny" if side == 16 else "probe"
        return fake["seconds"].get((bf16, kind, "channels_last" if channels_last else "nchw"),
                                   fake["seconds"].get((bf16, kind)))

    monkeypatch.setattr(hardware, "_probe_seconds", seconds)
    return fake


def test_explicit_precision_is_not_measured(probe):
    cpu = torch.device("cpu")
    assert hardware.choose_precision("bf16", cpu) == (True, "bf16, as asked")
    assert hardware.choose_precision("fp32", cpu) == (False, "fp32, as asked")
    assert probe["calls"] == []
    with pytest.raises(ValueError, match="precision"):
        Settings(precision="fp16")


@pytest.mark.parametrize("bf16_seconds, chosen", [(0.5e-3, True), (0.9e-3, False), (1.5e-3, False)])
def test_auto_precision_follows_the_probe(probe, bf16_seconds, chosen):
    probe["seconds"] = {(False, "tiny"): 1e-4, (True, "tiny"): 1e-4, (False, "probe"): 1e-3,
                        (True, "probe"): bf16_seconds}
    bf16, why = hardware.choose_precision("auto", torch.device("cpu"))
    assert bf16 is chosen
    assert why.startswith("bf16" if chosen else "fp32") and f"{1e-3 / bf16_seconds:.2f}x" in why


def test_auto_precision_bails_out_before_timing_emulated_bf16(probe):
    probe["seconds"] = {(False, "tiny"): 1e-4, (True, "tiny"): 0.015, (False, "probe"): 1e-3, (True, "probe"): 1.0}
    bf16, why = hardware.choose_precision("auto", torch.device("cpu"))
    assert not bf16 and "150x slower" in why
    assert all(side == 16 for _, side in probe["calls"])      # nothing bigger was run in bf16 (or at all)


def test_auto_precision_is_measured_once_per_device_and_restores_threads(probe):
    probe["seconds"] = {(False, "tiny"): 1e-4, (True, "tiny"): 1e-4, (False, "probe"): 1e-3, (True, "probe"): 4e-4}
    threads = torch.get_num_threads()
    first = hardware.choose_precision("auto", torch.device("cpu"))
    calls = len(probe["calls"])
    assert hardware.choose_precision("auto", torch.device("cpu")) == first and len(probe["calls"]) == calls
    assert hardware.choose_precision("auto", torch.device("cpu"))[0] is True
    assert torch.get_num_threads() == threads


def test_auto_precision_falls_back_to_fp32_when_bf16_fails(monkeypatch):
    monkeypatch.setattr(hardware, "_PRECISION_CHOICES", {})
    real = hardware._probe_seconds

    def no_bf16(device, bf16, side):
        if bf16:
            raise RuntimeError("no bf16 kernels\nhere")
        return real(device, bf16, side)

    monkeypatch.setattr(hardware, "_probe_seconds", no_bf16)
    bf16, why = hardware.choose_precision("auto", torch.device("cpu"))
    assert not bf16 and why == "fp32: bf16 failed (no bf16 kernels here)"


def test_result_says_which_precision_and_why(probe, photo, painting):
    probe["seconds"] = {(False, "tiny"): 1e-4, (True, "tiny"): 1e-4, (False, "probe"): 1e-3, (True, "probe"): 2e-3}
    result = stylize(photo, painting, steps=2, **SMALL)
    assert result.precision.startswith("fp32: the probe ran 0.50x")
    assert stylize(photo, painting, steps=2, precision="bf16", **SMALL).precision == "bf16, as asked"


def test_probe_times_real_convolutions():
    cpu = torch.device("cpu")
    assert 0 < hardware._probe_seconds(cpu, False, 16) < 10
    assert 0 < hardware._probe_seconds(cpu, True, 16) < 10
    assert 0 < hardware._probe_seconds(cpu, False, 16, channels_last=True) < 10


# --- memory format ---------------------------------------------------------------------------------

def test_explicit_memory_format_is_not_measured(probe):
    cpu = torch.device("cpu")
    assert hardware.choose_memory_format("channels_last", cpu, False) == (True, "channels_last, as asked")
    assert hardware.choose_memory_format("nchw", cpu, True) == (False, "nchw, as asked")
    assert probe["calls"] == []


@pytest.mark.parametrize("bf16", [False, True])
@pytest.mark.parametrize("channels_last_seconds, chosen", [(0.7e-3, True), (0.95e-3, False), (1.3e-3, False)])
def test_auto_memory_format_follows_the_probe_in_the_runs_precision(probe, bf16, channels_last_seconds, chosen):
    probe["seconds"] = {(bf16, "probe", "nchw"): 1e-3, (bf16, "probe", "channels_last"): channels_last_seconds}
    threads = torch.get_num_threads()
    channels_last, why = hardware.choose_memory_format("auto", torch.device("cpu"), bf16)
    assert channels_last is chosen and torch.get_num_threads() == threads
    assert why.startswith("channels_last:" if chosen else "nchw:")
    assert f"in {'bf16' if bf16 else 'fp32'}" in why and f"{1e-3 / channels_last_seconds:.2f}x" in why
    assert {call[0] for call in probe["calls"]} == {bf16}                  # timed in the run's precision only
    assert {len(call) for call in probe["calls"]} == {2, 3}                # ... in both layouts


def test_auto_memory_format_is_measured_once_per_device_and_precision(probe):
    probe["seconds"] = {(False, "probe"): 1e-3, (True, "probe"): 1e-3, (True, "probe", "channels_last"): 5e-4}
    cpu = torch.device("cpu")
    first = hardware.choose_memory_format("auto", cpu, False)
    calls = len(probe["calls"])
    assert hardware.choose_memory_format("auto", cpu, False) == first and len(probe["calls"]) == calls
    assert hardware.choose_memory_format("auto", cpu, True)[0] is True and len(probe["calls"]) > calls
    assert first[0] is False


def test_auto_memory_format_falls_back_to_nchw_when_channels_last_fails(monkeypatch):
    monkeypatch.setattr(hardware, "_FORMAT_CHOICES", {})
    real = hardware._probe_seconds

    def no_channels_last(device, bf16, side, channels_last=False):
        if channels_last:
            raise RuntimeError("no channels_last\nkernels")
        return real(device, bf16, side)

    monkeypatch.setattr(hardware, "_probe_seconds", no_channels_last)
    assert hardware.choose_memory_format("auto", torch.device("cpu"), False) == \
        (False, "nchw: channels_last failed (no channels_last kernels)")


def test_the_real_probe_picks_a_layout_and_says_why(monkeypatch, photo, painting):
    # Which layout wins depends on the CPU: only that one is picked, with its measurement, once per process.
    monkeypatch.setattr(hardware, "_FORMAT_CHOICES", {})
    result = stylize(photo, painting, steps=1, precision="fp32", **SMALL)
    assert result.memory_format.split(":")[0] in ("nchw", "channels_last")
    assert "as fast in channels_last as in NCHW" in result.memory_format and " ms)" in result.memory_format
    monkeypatch.setattr(hardware, "_probe_seconds", lambda *args, **kwargs: pytest.fail("measured twice"))
    assert stylize(photo, painting, steps=1, precision="fp32", **SMALL).memory_format == result.memory_format
    assert stylize(photo, painting, steps=1, memory_format="nchw", precision="fp32",
                   **SMALL).memory_format == "nchw, as asked"


@pytest.mark.parametrize("scale", [60, 1e6])
def test_a_huge_style_scale_is_refused_before_any_work(monkeypatch, scale):
    monkeypatch.setattr(hardware, "available_memory_gb", lambda device=None: 2.0)
    monkeypatch.setattr(inputs, "load_any", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(MemoryError) as err:
        stylize("chelsea", "swirls", size=64, style_scale=scale, steps=1, progress=False, preview=False)
    text = str(err.value)
    largest = hardware.largest_size_that_fits(2.0)
    assert "\n" not in text and f"style_scale={scale:g}" in text and f"style_scale={largest / 64:.2f}" in text
    hardware.check_memory(Settings(size=64, style_scale=float(f"{largest / 64:.2f}")))  # the advice fits


# --- runaway sizes -------------------------------------------------------------------------------

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
    text = one_line(err)
    largest = hardware.largest_size_that_fits(2.0)
    assert f"size={largest}" in text and "4096" in text and "2.0 GB" in text
    assert hardware.estimate_memory_gb(largest, largest) <= 2.0 + hardware.BASE_MEMORY_GB
    assert hardware.estimate_memory_gb(largest + 16, largest + 16) > 2.0 + hardware.BASE_MEMORY_GB
    with pytest.raises(MemoryError):      # a large style image needs memory too
        stylize("chelsea", "swirls", **{**RUN, "style_size": 4096})


def test_a_size_that_fits_is_not_refused(monkeypatch):
    _machine_with(monkeypatch, 2.0)
    hardware.check_memory(Settings(size=hardware.largest_size_that_fits(2.0)))
    _machine_with(monkeypatch, None)      # unknown: no check
    hardware.check_memory(Settings(size=100_000))


def test_available_memory_is_known_here():
    available = hardware.available_memory_gb("cpu")
    assert available is None or 0 < available < 1e5


def test_probe_includes_the_style_loss_gram_matrix_in_fp32(monkeypatch):
    """The probe times what a run does: the Gram matrix (fp32, also under bf16 autocast) is part of its backward."""
    seen = []

    def gram(features, normalize=True):
        seen.append((features.dtype, features.is_contiguous(memory_format=torch.channels_last)))
        return losses.gram_matrix(features, normalize)

    monkeypatch.setattr(hardware, "gram_matrix", gram)
    hardware._probe_seconds(torch.device("cpu"), True, 16, channels_last=True)
    assert seen == [(torch.float32, True)]
