"""The fast panel of notebook 07: a photo (example or upload), two styles and a blend slider, painted live.

    panel = FastPanel()          # the shipped four-painting network
    panel                        # shows the widgets; every change repaints at once (one forward pass)
    panel.paint()                # what a change does; also runs headless (uploads empty, sliders at rest)

Unlike the optimisation's panel (notebook 05) there is no Run button: one pass of the network takes a
fraction of a second, so the picture follows the slider.
"""

from __future__ import annotations

import time

import ipywidgets as widgets
import torch

from .. import examples
from ..panel import ImageChooser, display_png
from .shipped import load_network, styles_with_network, stylize_fast

__all__ = ["FastPanel"]


class FastPanel:
    """Widgets around ``stylize_fast``: a photo, style A, style B, the blend from A to B, and the size.

    network: a conditional network (its ``names`` are the styles offered), a network file, or None for
    the shipped one.  A bad upload is said in the panel in one line, never as a traceback.
    """

    def __init__(self, photo: str = "coffee", first: str = "starry_night", second: str = "great_wave",
                 blend: float = 0.0, size: int = 384, network=None, display_size: int = 384):
        self.net = load_network(network if network is not None else first)
        names = list(self.net.names or [])
        if len(names) < 2:
            raise ValueError("FastPanel needs a network that holds two styles or more, e.g. the shipped one "
                             f"({', '.join(styles_with_network()) or 'none shipped'})")
        for name in (first, second):
            if name not in names:
                raise ValueError(f"this network has no style {name!r}; its styles are: {', '.join(names)}")
        self.photo = ImageChooser("photo", examples.names(kind="photo"), photo)
        self.first = widgets.Dropdown(options=names, value=first, description="style A")
        self.second = widgets.Dropdown(options=names, value=second, description="style B")
        self.blend = widgets.FloatSlider(value=blend, min=0.0, max=1.0, step=0.05, description="A → B",
                                         continuous_update=True, readout_format=".2f")
        self.size = widgets.IntSlider(value=size, min=128, max=1024, step=64, description="size (px)",
                                      continuous_update=False)
        self.status = widgets.Output()
        self.image = widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start"))
        self.display_size = display_size
        self.picture: torch.Tensor | None = None
        self.seconds = 0.0
        self._photo_key = None
        self._photo = None
        for widget in (self.first, self.second, self.blend, self.size, self.photo.dropdown):
            widget.observe(self._changed, names="value")
        self.photo.upload.observe(self._changed, names="value")
        self.widget = widgets.VBox([self.photo.widget, self.first, self.second, self.blend, self.size,
                                    self.status, self.image])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def weights(self) -> list[float]:
        """The blend weights over the network's styles that the next picture uses."""
        w = [0.0] * self.net.n_styles
        names = list(self.net.names)
        w[names.index(self.first.value)] += 1.0 - self.blend.value
        w[names.index(self.second.value)] += self.blend.value
        return w

    def describe(self) -> str:
        """One line: what the picture shows and how long its pass took."""
        a, b, t = self.first.value, self.second.value, self.blend.value
        style = a if t == 0 or a == b else b if t == 1 else f"{1 - t:.2f} {a} + {t:.2f} {b}"
        return f"photo: {self.photo.source()[0]} · {style} · {self.size.value} px · {self.seconds * 1000:.0f} ms"

    def paint(self) -> torch.Tensor:
        """Repaint the photo with the current settings (what every change of a widget does)."""
        key = (*self.photo.source(), self.size.value)   # the source is a name or the upload's bytes
        if key != self._photo_key:   # loading and resizing the photo once per photo and size
            self._photo = self.photo.load(self.size.value)
            self._photo_key = key
        start = time.perf_counter()
        self.picture = stylize_fast(self._photo, list(self.net.names), network=self.net, size=None,
                                    blend=self.weights())
        self.seconds = time.perf_counter() - start
        self.image.value = display_png(self.picture, self.display_size)
        self.status.outputs = ()
        with self.status:
            print(self.describe())
        return self.picture

    def _changed(self, change=None) -> None:
        try:
            self.paint()
        except (ValueError, OSError) as err:
            self.status.outputs = ()
            with self.status:
                print(f"❌ {err}")
