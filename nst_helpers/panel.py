"""A small stylize panel for notebooks: pick or upload a photo and a style, set the weights, press Run.

    panel = StylePanel(size=128, steps=60)
    panel                       # shows the widgets
    result = panel.run()        # what the Run button does; also runs headless (uploads empty, sliders at rest)
"""

from __future__ import annotations

import base64
import html
import io

import ipywidgets as widgets

from . import examples
from .display import LivePreview
from .images import save_image, to_pil
from .inputs import load_any
from .transfer import Result, stylize

__all__ = ["ImageChooser", "StylePanel", "display_png"]

UPLOAD = "(upload)"  # the dropdown value that means "the uploaded file"


def display_png(image, min_side: int = 384) -> bytes:
    """PNG bytes of an image tensor, scaled up (bicubic) so that its long side is at least ``min_side``.

    Small results (64-128 px) would otherwise be thumbnails in the page; larger ones are left as they are.
    """
    picture = to_pil(image)
    scale = min_side / max(picture.size)
    if scale > 1:
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)),
                                 resample=3)  # PIL.Image.Resampling.BICUBIC
    buffer = io.BytesIO()
    picture.save(buffer, format="png")
    return buffer.getvalue()


class ImageChooser:
    """A dropdown of examples, an upload button and a Clear button for one image (the content or the style).

    An upload adds an "uploaded: <name>" entry to the dropdown and selects it, so the dropdown always says
    which image is used; Clear removes the upload and goes back to the example chosen before.
    """

    def __init__(self, label: str, names: list[str], value: str):
        self.names = list(names)
        self.dropdown = widgets.Dropdown(options=self.names, value=value, description=label)
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload…")
        self.clear_button = widgets.Button(description="Clear", icon="times", disabled=True,
                                           tooltip=f"forget the uploaded {label} image")
        self.last_example = value
        self.upload.observe(self._on_upload, names="value")
        self.dropdown.observe(self._on_choice, names="value")
        self.clear_button.on_click(self.clear)
        self.widget = widgets.HBox([self.dropdown, self.upload, self.clear_button])

    def uploaded(self) -> tuple[str, bytes] | None:
        """(file name, bytes) of the upload, or None."""
        if not self.upload.value:
            return None
        item = self.upload.value[0]
        return item["name"], bytes(item["content"])

    def source(self) -> tuple[str, object]:
        """(what to call it, what load_image takes): the upload's bytes when it is selected, else the example."""
        upload = self.uploaded()
        if self.dropdown.value == UPLOAD and upload is not None:
            return f"your upload {upload[0]}", upload[1]
        return self.dropdown.value, self.dropdown.value

    def load(self, size: int):
        source = self.source()[1]
        return load_any(source, size=size)

    def clear(self, button=None) -> None:
        self.upload.value = ()   # _on_upload puts the dropdown back on the example

    def _on_choice(self, change) -> None:
        if change["new"] != UPLOAD:
            self.last_example = change["new"]

    def _on_upload(self, change) -> None:
        upload, example = self.uploaded(), self.last_example
        if upload is None:
            self.dropdown.options = self.names   # (new options reset the value, and _on_choice sees that)
            self.last_example = self.dropdown.value = example
        else:
            self.dropdown.options = [(f"uploaded: {upload[0]}", UPLOAD)] + [(name, name) for name in self.names]
            self.last_example = example
            self.dropdown.value = UPLOAD
        self.clear_button.disabled = upload is None


class StylePanel:
    """Widgets around ``stylize``: content and style (example or upload), style weight, size, steps, Run, Save.

    A click on Run shows a live preview (the image and the loss curves, redrawn in place) and then the result,
    scaled up to at least ``display_size`` pixels so that small quick runs are not thumbnails.
    """

    def __init__(self, content: str = "coffee", style: str = "mosaic", size: int = 128, steps: int = 60,
                 style_weight: float = 10.0, display_size: int = 384, seed: int = 0):
        self.content = ImageChooser("content", examples.names(kind="photo"), content)
        self.style = ImageChooser("style", examples.names(kind="style"), style)
        self.style_weight = widgets.FloatLogSlider(value=style_weight, base=10, min=0, max=4, step=0.1,
                                                   description="style weight")
        self.size = widgets.IntSlider(value=size, min=64, max=512, step=32, description="size (px)")
        self.steps = widgets.IntSlider(value=steps, min=10, max=500, step=10, description="steps")
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="paint-brush")
        self.file_name = widgets.Text(value="stylized.png", description="save as")
        self.save_button = widgets.Button(description="Save", icon="save")
        self.status = widgets.Output()       # the settings line, the progress bar, messages
        # align_self: shown at their own size, not stretched to the width of the panel
        self.preview = widgets.Image(format="png", layout=widgets.Layout(display="none", align_self="flex-start"))
        self.result_image = widgets.Image(format="png", layout=widgets.Layout(display="none", align_self="flex-start"))
        self.download = widgets.HTML()
        self.display_size = display_size
        self.seed = seed
        self.result: Result | None = None
        self.run_button.on_click(self._clicked)
        self.save_button.on_click(self.save)
        self.widget = widgets.VBox([
            self.content.widget, self.style.widget, self.style_weight, self.size, self.steps,
            widgets.HBox([self.run_button, self.file_name, self.save_button]),
            self.status, self.preview, self.result_image, self.download,
        ])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def describe(self) -> str:
        """One line: what the next run will use."""
        return (f"content: {self.content.source()[0]} · style: {self.style.source()[0]} · {self.size.value} px, "
                f"{self.steps.value} steps, style weight {self.style_weight.value:.3g}")

    def run(self, live: bool = False) -> Result:
        """Stylize with the panel's current settings and show the result in the panel.

        live=True (a click on Run): a progress bar and a live preview; False (a script or test): quiet.
        """
        size, steps = self.size.value, self.steps.value
        content, style = self.content.load(size), self.style.load(size)
        self.status.outputs = ()             # the previous run's lines (clear_output is not handled everywhere)
        self.result_image.layout.display = "none"
        self.preview.layout.display = "" if live else "none"
        callback = LivePreview(every=max(1, steps // 10), total=steps, widget=self.preview) if live else None
        with self.status:
            print(self.describe())
            result = stylize(content, style, size=size, steps=steps, style_weight=self.style_weight.value,
                             seed=self.seed, progress=live, preview=False, callback=callback)
        self.result = result
        self.result_image.value = display_png(result.image, self.display_size)
        self.result_image.layout.display = ""
        png = to_pil(result.image)._repr_png_()
        name = html.escape(self.file_name.value, quote=True)  # a name is text, never markup
        self.download.value = (f'<a download="{name}" href="data:image/png;base64,'
                               f'{base64.b64encode(png).decode()}">⬇ download the result '
                               f'({name}, {result.image.shape[-1]}×{result.image.shape[-2]} px)</a>')
        return result

    def _clicked(self, button=None) -> None:
        """The Run button: like run(), but a bad upload gives a one-line message instead of a traceback."""
        try:
            self.run(live=True)
        except (ValueError, OSError) as err:
            with self.status:
                print(f"❌ {err}")

    def save(self, button=None):
        """Save the last result under the "save as" name (the Save button); a bad name is said in the panel."""
        if self.result is None:
            with self.status:
                print("Nothing to save yet: press Run first.")
            return None
        try:
            path = save_image(self.result.image, self.file_name.value)
        except (ValueError, OSError) as err:  # a button's callback would swallow it: say it where it is seen
            with self.status:
                print(f"❌ {err}")
            return None
        with self.status:
            print(f"saved {path.name}")
        return path
