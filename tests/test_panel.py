"""The stylize panel of notebook 05, without a browser: what the widgets' values make it run."""

import datetime
import io

import pytest
import torch
from PIL import Image

from nst_helpers import examples, panel
from nst_helpers.transfer import Result, Settings


def png_bytes(colour, size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="png")
    return buffer.getvalue()


def upload(chooser, name, data):
    """What the browser sends when a learner picks a file."""
    chooser.upload.value = ({"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
                             "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)},)


@pytest.fixture
def calls(monkeypatch):
    """Replace stylize by a recorder that returns the content image (fast; the real run is tested below)."""
    recorded = []

    def fake_stylize(content, style, **kwargs):
        recorded.append(dict(content=content, style=style, **kwargs))
        callback = kwargs.get("callback")
        for step in range(1, kwargs["steps"] + 1):
            if callback:
                callback(step, content, {"total": 1.0 / step, "content": 0.1, "style": 1.0 / step, "tv": 0.01})
        return Result(image=content, history=[{}] * kwargs["steps"], seconds=0.1, settings=Settings())

    monkeypatch.setattr(panel, "stylize", fake_stylize)
    return recorded


def test_default_run_uses_the_chosen_examples_and_the_slider_values(calls):
    p = panel.StylePanel(content="coffee", style="mosaic", size=64, steps=10, style_weight=10)
    result = p.run()
    (call,) = calls
    assert torch.equal(call["content"], examples.load("coffee", size=64))
    assert torch.equal(call["style"], examples.load("mosaic", size=64))
    assert (call["size"], call["steps"], call["style_weight"], call["progress"]) == (64, 10, 10, False)
    assert p.result is result
    assert "content: coffee · style: mosaic · 64 px, 10 steps" in p.describe()
    assert p.result_image.layout.display == "" and p.preview.layout.display == "none"


def test_slider_values_are_used(calls):
    p = panel.StylePanel(size=64, steps=10)
    p.size.value, p.steps.value, p.style_weight.value = 96, 20, 100
    p.style.dropdown.value = "waves"
    p.run()
    call = calls[-1]
    assert (call["size"], call["steps"], call["style_weight"]) == (96, 20, 100)
    assert max(call["content"].shape[-2:]) == 96
    assert torch.equal(call["style"], examples.load("waves", size=96))


def test_an_upload_is_used_and_the_dropdown_says_so(calls):
    p = panel.StylePanel(content="coffee", size=64, steps=10)
    upload(p.content, "red.png", png_bytes((255, 0, 0)))
    assert p.content.dropdown.value == panel.UPLOAD
    assert p.content.dropdown.label == "uploaded: red.png"      # not "coffee" any more
    assert p.content.clear_button.disabled is False
    p.run()
    content = calls[-1]["content"]
    assert content.shape == (1, 3, 48, 64)                       # 40×30 scaled to a long side of 64
    assert torch.allclose(content[0, :, 10, 10], torch.tensor([1.0, 0.0, 0.0]))
    assert "content: your upload red.png" in p.describe()


def test_clear_forgets_the_upload_and_goes_back_to_the_example(calls):
    p = panel.StylePanel(content="coffee", style="mosaic", size=64, steps=10)
    p.content.dropdown.value = "chelsea"
    upload(p.content, "red.png", png_bytes((255, 0, 0)))
    upload(p.style, "blue.png", png_bytes((0, 0, 255)))
    p.content.clear_button.click()
    assert p.content.uploaded() is None and p.content.upload.value == ()
    assert p.content.dropdown.value == "chelsea" and p.content.dropdown.options == tuple(p.content.names)
    assert p.content.clear_button.disabled is True
    p.run()
    assert torch.equal(calls[-1]["content"], examples.load("chelsea", size=64))
    assert torch.allclose(calls[-1]["style"][0, :, 5, 5], torch.tensor([0.0, 0.0, 1.0]))  # the style upload stays


def test_choosing_an_example_while_an_upload_is_there_uses_the_example(calls):
    p = panel.StylePanel(content="coffee", size=64, steps=10)
    upload(p.content, "red.png", png_bytes((255, 0, 0)))
    p.content.dropdown.value = "astronaut"
    p.run()
    assert torch.equal(calls[-1]["content"], examples.load("astronaut", size=64))
    p.content.dropdown.value = panel.UPLOAD                          # and back to the upload
    p.run()
    assert calls[-1]["content"].shape == (1, 3, 48, 64)


def test_a_click_shows_a_live_preview_and_an_upscaled_result(calls):
    p = panel.StylePanel(size=64, steps=10, display_size=384)
    frames = []
    p.preview.observe(lambda change: frames.append(change["new"]), names="value")
    p.run_button.click()
    assert calls[-1]["progress"] is True and calls[-1]["callback"] is not None
    assert len(frames) == 10 and len(set(frames)) == 10              # redrawn at every step (every = 10 // 10)
    assert p.preview.layout.display == ""
    shown = Image.open(io.BytesIO(p.result_image.value))
    assert max(shown.size) == 384                                   # 64 px result, not a thumbnail
    assert "64×" in p.download.value and "base64," in p.download.value


def test_a_bad_upload_gives_a_one_line_message_on_click(calls, capsys):
    p = panel.StylePanel(size=64, steps=10)
    upload(p.content, "notes.png", b"this is not an image")
    p.run_button.click()                  # outside a kernel the status Output prints to stdout
    assert calls == []
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("❌") and "not an image" in lines[0]
    assert p.result is None and p.result_image.layout.display == "none"


def test_display_png_scales_small_images_up_and_leaves_big_ones():
    small = Image.open(io.BytesIO(panel.display_png(torch.rand(1, 3, 48, 64), min_side=384)))
    big = Image.open(io.BytesIO(panel.display_png(torch.rand(1, 3, 300, 500), min_side=384)))
    assert small.size == (384, 288) and big.size == (500, 300)


def test_save_writes_the_last_result(calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = panel.StylePanel(size=64, steps=10)
    assert p.save() is None
    p.run()
    p.file_name.value = "mine.png"
    assert p.save().name == "mine.png" and (tmp_path / "mine.png").stat().st_size > 0



@pytest.mark.parametrize("name, words", [("mine", ".png, .jpg or .jpeg"), ("mine.webp", ".png, .jpg or .jpeg"),
                                         ("missing_folder_is_a_file/x.png", "cannot write")])
def test_a_bad_save_name_is_said_in_the_panel(calls, tmp_path, monkeypatch, capsys, name, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "missing_folder_is_a_file").write_text("a file\n")
    p = panel.StylePanel(size=64, steps=10)
    p.run()
    capsys.readouterr()
    p.file_name.value = name
    p.save_button.click()                 # outside a kernel the status Output prints to stdout
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("❌") and words in lines[0], lines
    assert sorted(path.name for path in tmp_path.iterdir()) == ["missing_folder_is_a_file"]


def test_the_save_as_name_is_escaped_in_the_download_link(calls):
    p = panel.StylePanel(size=64, steps=10)
    p.file_name.value = 'x" onclick="alert(1)<b>.png'
    p.run()
    assert "<b>" not in p.download.value and 'onclick="' not in p.download.value
    assert 'download="x&quot; onclick=&quot;alert(1)&lt;b&gt;.png"' in p.download.value
