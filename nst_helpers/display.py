"""Pictures and progress: loss curves, result grids, a live preview for notebooks, progress bars."""

from __future__ import annotations

import io

import torch

from .images import show_images

__all__ = ["in_notebook", "progress_bar", "LivePreview", "plot_history", "show_result"]

LOSS_COLOURS = {"total": "black", "content": "tab:blue", "style": "tab:orange", "tv": "tab:green"}


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, Colab, nbclient), False in a terminal."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress_bar(total: int, desc: str = "stylize"):
    """A tqdm bar: a widget in notebooks, text in a terminal."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=True)


def _history_of(result_or_history) -> list[dict[str, float]]:
    return result_or_history.history if hasattr(result_or_history, "history") else list(result_or_history)


def plot_history(result_or_history, ax=None, log: bool = True, title: str | None = "Loss per step", show=None):
    """Loss curves (total, content, style, tv) of a ``Result`` or a history list, one line per term (notebook 05).

    Draws into ``ax`` when given; else makes a figure and shows it.  Terms that stay at 0 are left out.
    """
    import matplotlib.pyplot as plt

    history = _history_of(result_or_history)
    if not history:
        raise ValueError("the history is empty: run stylize first")
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    steps = range(1, len(history) + 1)
    for key, colour in LOSS_COLOURS.items():
        values = [entry[key] for entry in history]
        if any(v > 0 for v in values):
            if log:  # a term that starts at 0 (content, from the photo) would stretch a log axis to 1e-9
                values = [v if v > 1e-3 * max(values) else float("nan") for v in values]
            ax.plot(steps, values, label=key, color=colour, linewidth=2 if key == "total" else 1.2)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step (loss evaluation)")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    ax.grid(True, alpha=0.3)
    if own and show is not False:
        fig.tight_layout()
        plt.show()
    return None if own else ax


def show_result(content: torch.Tensor, style: torch.Tensor, result, size: float = 4.0) -> None:
    """Content, style and result side by side, with the run's time and steps in the title (notebook 05)."""
    steps = len(result.history)
    note = " (interrupted)" if result.interrupted else ""
    show_images([content, style, result.image],
                titles=["content", "style", f"result: {steps} steps, {result.seconds:.0f} s{note}"], size=size)


class LivePreview:
    """A callback for ``stylize`` that redraws the current image and the loss curves in place.

    In a notebook it keeps ONE output and updates it every ``every`` steps; elsewhere it does nothing.
    Use: ``stylize(..., callback=LivePreview(every=10))``; ``stylize`` makes one itself in notebooks.
    """

    def __init__(self, every: int = 20, total: int | None = None, widget=None):
        self.every = max(1, int(every))
        self.total = total
        self.history: list[dict[str, float]] = []
        self.handle = None
        self.widget = widget  # an ipywidgets.Image to draw into instead of a cell output (the stylize panel)
        self.enabled = widget is not None or in_notebook()

    def __call__(self, step: int, image: torch.Tensor, losses: dict[str, float]) -> None:
        self.history.append(losses)
        if not self.enabled or (step % self.every and step != self.total):
            return
        png = self._render(image)
        if self.widget is not None:
            self.widget.value = png
            return
        from IPython.display import Image, display

        if self.handle is None:
            self.handle = display(Image(data=png), display_id=True)
        else:
            self.handle.update(Image(data=png))

    def _render(self, image: torch.Tensor) -> bytes:
        buffer = io.BytesIO()
        self._figure(image).savefig(buffer, format="png")
        return buffer.getvalue()

    def _figure(self, image: torch.Tensor):
        from matplotlib.figure import Figure

        from .images import to_pil

        # constrained layout keeps the image's title inside the picture (tight_layout cut it off at the top)
        fig = Figure(figsize=(8, 3.2), dpi=80, layout="constrained")
        ax_image, ax_loss = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
        ax_image.imshow(to_pil(image.detach().float().cpu()))
        ax_image.axis("off")
        ax_image.set_title(f"step {len(self.history)}" + (f" of {self.total}" if self.total else ""))
        plot_history(self.history, ax=ax_loss, title=None)
        return fig
