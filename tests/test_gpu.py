"""The CUDA path: the same result as the CPU in fp32, bf16 at no cost in quality, repeatable runs.

These tests need a CUDA GPU; elsewhere they are skipped (CI never needs one).  ``benchmarks/gpu_check.sh`` runs
them together with the GPU benchmark.
"""

import pytest
import torch

from nst_helpers import objective
from nst_helpers.transfer import stylize

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

RUN = dict(size=128, steps=30, stop_tolerance=0.0, coarse_to_fine=False, progress=False, preview=False)


@pytest.fixture
def exact_cuda(monkeypatch):
    """fp32 on CUDA as exact as the CPU's: no TF32 shortcuts, deterministic convolution kernels."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)


def test_cuda_fp32_matches_the_cpu(exact_cuda):
    cpu = stylize("chelsea", "swirls", device="cpu", precision="fp32", **RUN)
    gpu = stylize("chelsea", "swirls", device="cuda", precision="fp32", **RUN)
    # The first evaluation is the same computation: equal up to rounding.
    for term in ("total", "content", "style", "tv"):
        assert gpu.history[0][term] == pytest.approx(cpu.history[0][term], rel=1e-4, abs=1e-6), term
    # Thirty L-BFGS steps amplify rounding differences; the pictures and their losses stay close.
    cpu_loss = objective.evaluate_loss(cpu.image, "chelsea", "swirls", device="cpu")["total"]
    gpu_loss = objective.evaluate_loss(gpu.image, "chelsea", "swirls", device="cpu")["total"]
    assert gpu_loss == pytest.approx(cpu_loss, rel=0.02)
    assert (gpu.image - cpu.image).abs().mean() < 0.02


def test_cuda_bf16_costs_no_quality():
    fp32 = stylize("chelsea", "swirls", device="cuda", precision="fp32", **RUN)
    bf16 = stylize("chelsea", "swirls", device="cuda", precision="bf16", **RUN)
    fp32_loss = objective.evaluate_loss(fp32.image, "chelsea", "swirls", device="cpu")["total"]
    bf16_loss = objective.evaluate_loss(bf16.image, "chelsea", "swirls", device="cpu")["total"]
    assert fp32.history[0]["total"] > 3 * fp32_loss           # the run did something
    assert bf16_loss <= 1.02 * fp32_loss, (bf16_loss, fp32_loss)


def test_cuda_runs_repeat(exact_cuda):
    first = stylize("chelsea", "swirls", device="cuda", init="noise", seed=1, **RUN)
    second = stylize("chelsea", "swirls", device="cuda", init="noise", seed=1, **RUN)
    assert torch.equal(first.image, second.image)
    assert first.precision == second.precision


def test_auto_precision_on_cuda_measures_and_says_why():
    bf16, why = transfer.choose_precision("auto", torch.device("cuda"))
    assert why.startswith("bf16" if bf16 else "fp32") and ("probe" in why or "no bf16" in why)
