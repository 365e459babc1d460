"""Hardware choices of a run (notebook 05): the precision and memory format the VGG runs in, and whether a run fits.

    bf16, why = choose_precision("auto", device)    # measured once per device and process
    channels_last, why = choose_memory_format("auto", device, bf16)   # likewise, in the chosen precision
    check_memory(opts)                              # MemoryError (one line) before any work, when it cannot fit
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .losses import gram_matrix
from .setting_errors import TooLargeError
from .settings import MIN_SIZE, Settings
from .vgg import default_device

__all__ = ["choose_precision", "choose_memory_format", "estimate_memory_gb", "available_memory_gb",
           "largest_size_that_fits", "check_memory"]

# Peak memory of a run (BENCHMARKS.md, peak RSS by size, fp32 on a CPU): about 0.9 GB for Python, torch and the
# weights, plus about 2.6 GB per million pixels of the result, the activations kept for the backward pass.
BASE_MEMORY_GB = 0.9
MEMORY_GB_PER_MEGAPIXEL = 2.6
PROBE_MARGIN = 1.2     # "auto" picks bf16 only where the probe runs at least this much faster in it
_PRECISION_CHOICES: dict[str, tuple[bool, str]] = {}   # device -> (bf16?, why), measured once per process
FORMAT_MARGIN = 1.1    # "auto" picks channels_last only where the probe runs at least this much faster in it
_FORMAT_CHOICES: dict[tuple[str, bool], tuple[bool, str]] = {}   # (device, bf16?) -> (channels_last?, why)


def choose_precision(precision: str, device: torch.device) -> tuple[bool, str]:
    """(bf16?, why).  "auto" times a small probe forward + backward in both precisions on first use (notebook 05)
    per device (tens of milliseconds) and keeps the answer for the process: two convolutions as in the VGG, then
    the Gram matrix of the result in fp32, as in the style loss.

    Why measure: the same bf16 instructions are 2x faster than fp32 on one CPU, 1.6x slower on another and
    ~150x slower where they are emulated (BENCHMARKS.md); no flag tells these apart reliably.
    """
    if precision != "auto":
        return precision == "bf16", f"{precision}, as asked"
    key = str(device)
    if key not in _PRECISION_CHOICES:
        _PRECISION_CHOICES[key] = _probe_precision(device)
    return _PRECISION_CHOICES[key]


def _probe_precision(device: torch.device) -> tuple[bool, str]:
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return False, "fp32: this GPU has no bf16"

    def fastest(bf16: bool, side: int, repeats: int) -> float:   # the minimum: other work only adds time
        return min(_probe_seconds(device, bf16, side) for _ in range(repeats))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)     # one core: the ratio is the same, and other programs' load disturbs it less
    try:
        fastest(False, 16, 1), fastest(True, 16, 1)                # warm-up (first calls set up kernels)
        tiny_fp32, tiny_bf16 = fastest(False, 16, 2), fastest(True, 16, 2)
        if tiny_bf16 > 5 * tiny_fp32:                               # emulated: don't time anything bigger
            return False, f"fp32: bf16 was {tiny_bf16 / tiny_fp32:.0f}x slower on a tiny convolution"
        side = 32 if device.type == "cpu" else 128
        fp32, bf16 = _race(lambda: _probe_seconds(device, False, side), lambda: _probe_seconds(device, True, side))
    except RuntimeError as err:                                     # e.g. no bf16 kernels on this device
        return False, f"fp32: bf16 failed ({' '.join(str(err).split())[:80]})"
    finally:
        torch.set_num_threads(threads)
    speed = fp32 / bf16
    chosen = "bf16" if speed >= PROBE_MARGIN else "fp32"
    return chosen == "bf16", f"{chosen}: the probe ran {speed:.2f}x as fast in bf16 as in fp32 " \
                             f"({bf16 * 1e3:.1f} vs {fp32 * 1e3:.1f} ms)"


def choose_memory_format(memory_format: str, device: torch.device, bf16: bool) -> tuple[bool, str]:
    """(channels_last?, why).  "auto" times the probe of ``choose_precision`` in the precision the run uses
    (``bf16``), with its input and weights in NCHW and in ``torch.channels_last``, on first use per device and
    precision (notebook 05), and keeps the answer for the process.

    Why measure: where oneDNN's bf16 kernels run, channels_last made a whole evaluation about 1.8x faster; in fp32
    on an AVX2-only CPU the VGG alone was about 10 % slower (BENCHMARKS.md).  The probe's Gram matrix counts too:
    in channels_last its gradient comes back in that layout (``losses.gram_matrix``).  channels_last is chosen only where it is
    clearly faster (FORMAT_MARGIN); otherwise NCHW, PyTorch's default.
    """
    if memory_format != "auto":
        return memory_format == "channels_last", f"{memory_format}, as asked"
    key = (str(device), bool(bf16))
    if key not in _FORMAT_CHOICES:
        _FORMAT_CHOICES[key] = _probe_memory_format(device, bool(bf16))
    return _FORMAT_CHOICES[key]


def _probe_memory_format(device: torch.device, bf16: bool) -> tuple[bool, str]:
    side = 32 if device.type == "cpu" else 128
    precision = "bf16" if bf16 else "fp32"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)     # as in _probe_precision
    try:
        nchw, channels_last = _race(lambda: _probe_seconds(device, bf16, side, False),
                                    lambda: _probe_seconds(device, bf16, side, True), warm_up=True)
    except RuntimeError as err:                                     # e.g. a device without channels_last kernels
        return False, f"nchw: channels_last failed ({' '.join(str(err).split())[:80]})"
    finally:
        torch.set_num_threads(threads)
    speed = nchw / channels_last
    chosen = "channels_last" if speed >= FORMAT_MARGIN else "nchw"
    return chosen == "channels_last", f"{chosen}: the probe in {precision} ran {speed:.2f}x as fast in " \
                                      f"channels_last as in NCHW ({channels_last * 1e3:.1f} vs {nchw * 1e3:.1f} ms)"


def _race(first, second, rounds: int = 4, warm_up: bool = False) -> tuple[float, float]:
    """The fastest of ``rounds`` timings of each of two probes, taken in turn so that other programs' load hits
    both alike (the minimum: other work only adds time)."""
    if warm_up:                                                     # first calls set up kernels
        first(), second()
    a = b = float("inf")
    for _ in range(rounds):
        a, b = min(a, first()), min(b, second())
    return a, b


def _probe_seconds(device: torch.device, bf16: bool, side: int, channels_last: bool = False) -> float:
    """Seconds for two 3x3 convolutions (64 channels, side x side pixels) and the Gram matrix of their ReLU in
    fp32 (as the style loss computes it), forward and backward."""
    generator = torch.Generator().manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(1, 64, side, side, generator=generator).to(device, memory_format=layout).requires_grad_(True)
    weight = (torch.randn(64, 64, 3, 3, generator=generator) * 0.05).to(device, memory_format=layout)
    # On the CPU (one thread, see _probe_precision) count the CPU time of this thread: time spent waiting
    # while other programs run does not count.  Elsewhere, wall time after the device has finished.
    clock = time.thread_time if device.type == "cpu" else time.perf_counter
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    started = clock()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        y = F.conv2d(F.relu(F.conv2d(x, weight, padding=1)), weight, padding=1)
    gram_matrix(F.relu(y).float()).square().sum().backward()
    sync()
    return clock() - started


def estimate_memory_gb(height: int, width: int) -> float:
    """Peak memory of a run whose result is ``height`` x ``width`` pixels, in GB (2**30 bytes) (notebook 05).

    A straight line through the peaks measured on a CPU in fp32 (BENCHMARKS.md: 1.37 GB at 512 x 341,
    4.93 GB at 1536 x 1022): BASE_MEMORY_GB for Python, torch and the weights, plus
    MEMORY_GB_PER_MEGAPIXEL for every million pixels, the activations that the backward pass needs.
    """
    return BASE_MEMORY_GB + MEMORY_GB_PER_MEGAPIXEL * height * width / 1e6


def available_memory_gb(device: torch.device | str | None = None) -> float | None:
    """Memory a run can still use on ``device``, in GB; None when unknown (then nothing is checked) (notebook 05).

    CUDA: the GPU's free memory.  CPU on Linux: MemAvailable, lowered by a cgroup limit (containers) or
    an address-space limit (``ulimit -v``) when there is one.  Elsewhere: None.
    """
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        try:
            return torch.cuda.mem_get_info(device)[0] / 2**30
        except (RuntimeError, AssertionError):  # no usable GPU: the run itself will say so
            return None
    if device.type != "cpu":
        return None
    try:
        free = [_kib_line("/proc/meminfo", "MemAvailable:") * 1024]
    except (OSError, ValueError, IndexError):
        return None
    try:
        limit, used = (Path("/sys/fs/cgroup/memory.max").read_text().strip(),
                       Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit.isdigit():
            free.append(int(limit) - int(used))
    except (OSError, ValueError):
        pass
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            free.append(soft - _kib_line("/proc/self/status", "VmSize:") * 1024)
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return max(0.0, min(free)) / 2**30


def _kib_line(path: str, key: str) -> int:
    line = next(line for line in Path(path).read_text().splitlines() if line.startswith(key))
    return int(line.split()[1])


def largest_size_that_fits(available_gb: float) -> int:
    """The largest size (long side, a multiple of 16) of a square result that fits in ``available_gb`` (notebook 05)."""
    side = math.sqrt(max(0.0, available_gb) / MEMORY_GB_PER_MEGAPIXEL * 1e6)
    return max(MIN_SIZE, int(side) // 16 * 16)


def check_memory(opts: Settings) -> None:
    """Raise MemoryError (one line, with the largest size that fits) when a run of ``opts`` would not fit (notebook 05).

    The image's aspect ratio is not known before it is loaded, so this assumes a square of the larger of
    ``size`` and the style's side (``style_size``, or ``style_scale`` times ``size``): a bound from above.
    Python, torch and the weights are already loaded, so only the growing part of ``estimate_memory_gb`` is
    compared with what is available.
    """
    available = available_memory_gb(opts.device)
    if available is None:
        return
    style_name = "style_size" if opts.style_size else "style_scale"  # the style's side, however it was set
    name, side = max(("size", opts.size), (style_name, opts.style_long_side), key=lambda pair: pair[1])
    needed = estimate_memory_gb(side, side) - BASE_MEMORY_GB
    if needed > available:
        largest = largest_size_that_fits(available)
        asked, fits, what = (f"{opts.style_scale:g}", f"{largest / opts.size:.2f}", f" (a {side} px style image)") \
            if name == "style_scale" else (side, largest, "")
        raise TooLargeError(lambda n: f"{n(name, asked)}{what} needs about {needed:.1f} GB of memory for a square "
                            f"image but {available:.1f} GB are available: use {n(name, fits)} or less")
