"""Loss curves, result grids and the live preview."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from nst_helpers import display  # noqa: E402
from nst_helpers.transfer import Result, Settings  # noqa: E402

HISTORY = [{"total": 10.0 / k, "content": 0.0 if k == 1 else 0.5, "style": 9.0 / k, "tv": 0.1} for k in range(1, 11)]


def test_plot_history_draws_each_term_into_an_axis():
    fig, ax = plt.subplots()
    display.plot_history(HISTORY, ax=ax)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["total", "content", "style", "tv"]
    assert ax.get_yscale() == "log"
    total = ax.get_lines()[0].get_ydata()
    assert list(total) == [h["total"] for h in HISTORY]
    # The content term starts at 0 (from the photo): left out of the log plot instead of stretching it.
    content = ax.get_lines()[1].get_ydata()
    assert math.isnan(content[0]) and content[1] == 0.5
    plt.close(fig)


def test_plot_history_accepts_a_result_and_rejects_an_empty_history(monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(1))
    result = Result(image=torch.zeros(1, 3, 4, 4), history=HISTORY, seconds=1.0, settings=Settings())
    assert display.plot_history(result) is None and shown == [1]
    with pytest.raises(ValueError, match="empty"):
        display.plot_history([])


def test_show_result_titles(monkeypatch):
    captured = {}
    monkeypatch.setattr(display, "show_images", lambda images, titles, size: captured.update(titles=titles))
    result = Result(image=torch.zeros(1, 3, 4, 4), history=HISTORY, seconds=12.3, settings=Settings(),
                    interrupted=True)
    display.show_result(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), result)
    assert captured["titles"][:2] == ["content", "style"]
    assert "10 steps" in captured["titles"][2] and "interrupted" in captured["titles"][2]


def test_live_preview_is_silent_outside_a_notebook(monkeypatch):
    monkeypatch.setattr(display, "in_notebook", lambda: False)
    preview = display.LivePreview(every=1)
    preview(1, torch.rand(1, 3, 8, 8), HISTORY[0])
    assert preview.handle is None and len(preview.history) == 1


def test_live_preview_updates_one_output_in_place(monkeypatch):
    import IPython.display

    shown, updates = [], []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    def fake_display(obj, display_id=False):
        shown.append(obj)
        return Handle()

    monkeypatch.setattr(display, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", fake_display)
    preview = display.LivePreview(every=3, total=10)
    for step, losses in enumerate(HISTORY, start=1):
        preview(step, torch.rand(1, 3, 16, 16), losses)
    assert len(shown) == 1                       # one output ...
    assert len(updates) == 3                     # ... redrawn at steps 6, 9 and the last one (10)
    assert updates[-1].data[:8] == b"\x89PNG\r\n\x1a\n"


def test_in_notebook_is_false_here():
    assert display.in_notebook() is False


@pytest.mark.parametrize("shape", [(1, 3, 60, 90), (1, 3, 90, 60)], ids=["landscape", "portrait"])
def test_live_preview_title_lies_inside_the_picture(shape):
    """The "step N of M" title used to be cut off at the top of the PNG."""
    preview = display.LivePreview(every=1, total=100)
    preview.history = HISTORY[:5]
    fig = preview._figure(torch.rand(shape))
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the same renderer savefig uses for the PNG
    canvas.draw()
    renderer = canvas.get_renderer()
    title = fig.axes[0].title
    assert title.get_text() == "step 5 of 100"
    box = title.get_window_extent(renderer)
    assert 0 <= box.y0 and box.y1 <= fig.bbox.y1 and 0 <= box.x0 and box.x1 <= fig.bbox.x1


def test_live_preview_draws_into_an_image_widget(monkeypatch):
    monkeypatch.setattr(display, "in_notebook", lambda: False)  # a widget target works anywhere

    class FakeImage:
        value = b""

    target = FakeImage()
    preview = display.LivePreview(every=2, total=5, widget=target)
    frames = []
    for step, losses in enumerate(HISTORY[:5], start=1):
        preview(step, torch.rand(1, 3, 16, 16), losses)
        frames.append(target.value)
    assert preview.handle is None
    assert frames[0] == b"" and frames[1][:8] == b"\x89PNG\r\n\x1a\n"
    assert frames[2] == frames[1] and frames[3] != frames[1] and frames[4] != frames[3]  # steps 2, 4 and 5 (the last)
