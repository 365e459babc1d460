import hashlib
import io
import socket
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from nst_helpers import examples, images, patterns
from nst_helpers.images import load_image

PAINTINGS = ["starry_night", "great_wave", "composition_vii", "water_lilies"]
OFFLINE = ["chelsea", "astronaut", "coffee", "grace_hopper", *PAINTINGS, "swirls", "mosaic", "waves"]


@pytest.fixture(autouse=True)
def no_real_network(monkeypatch, tmp_path):
    """Only 127.0.0.1 may be contacted, and downloads go to a fresh cache folder."""
    real_create_connection = socket.create_connection

    def guarded(address, *args, **kwargs):
        if address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to reach the network: {address}")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(examples, "_warned", set())


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_names():
    assert examples.names(online=False) == OFFLINE
    online = examples.names(online=True)
    assert online == ["the_scream"] and not set(online) & set(OFFLINE)
    assert examples.names() == OFFLINE + online  # offline ones first
    assert examples.names(kind="photo") == OFFLINE[:4]
    assert examples.names(kind="painting", online=False) == PAINTINGS
    assert examples.names(kind="painting") == PAINTINGS + ["the_scream"]
    assert examples.names(kind="pattern") == ["swirls", "mosaic", "waves"]
    assert examples.names(kind="style") == PAINTINGS + ["swirls", "mosaic", "waves", "the_scream"]  # paintings first
    with pytest.raises(ValueError, match="kind must be"):
        examples.names(kind="paintings")


@pytest.mark.parametrize("name", PAINTINGS)
def test_shipped_paintings_load_offline_and_are_small(name):
    """Shipped paintings come from the package's data: no network (the autouse fixture forbids it), no cache."""
    import importlib.resources

    path = importlib.resources.files("nst_helpers") / "data" / "paintings" / f"{name}.jpg"
    assert path.is_file() and path.stat().st_size < 400_000
    with Image.open(path) as image:
        assert image.format == "JPEG" and max(image.size) <= 1024 and image.mode == "RGB"
    t = examples.load(name)
    assert max(t.shape[-2:]) == max(Image.open(path).size) and float(t.std()) > 0.1
    credit = examples.credit(name)
    assert "public domain" in credit["licence"] and "reproduction" in credit["source"]


def test_shipped_paintings_stay_well_under_one_and_a_half_megabytes():
    import importlib.resources

    folder = importlib.resources.files("nst_helpers") / "data" / "paintings"
    assert sum((folder / f"{name}.jpg").stat().st_size for name in PAINTINGS) < 1_200_000


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_examples_load(name):
    t = examples.load(name)
    assert t.dtype == torch.float32 and t.dim() == 4 and t.shape[:2] == (1, 3)
    assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    assert float(t.std()) > 0.1  # a real picture, not a flat colour
    small = examples.load(name, size=128)
    assert max(small.shape[2:]) == 128
    assert abs(small.shape[3] / small.shape[2] - t.shape[3] / t.shape[2]) < 0.02


def test_known_photo_sizes():
    assert tuple(examples.load("chelsea").shape) == (1, 3, 300, 451)
    assert tuple(examples.load("coffee").shape) == (1, 3, 400, 600)
    assert tuple(examples.load("astronaut").shape) == (1, 3, 512, 512)
    assert tuple(examples.load("grace_hopper").shape) == (1, 3, 600, 512)


def test_photos_do_not_use_skimage_fetchers(monkeypatch):
    import skimage.data._fetchers as fetchers

    def forbidden(*args, **kwargs):
        raise AssertionError("skimage's fetcher was used")

    monkeypatch.setattr(fetchers, "_fetch", forbidden)
    for name in ("chelsea", "astronaut", "coffee"):
        examples.load(name)


@pytest.mark.parametrize("name", ["swirls", "mosaic", "waves"])
def test_styles_are_deterministic_colourful_and_textured(name):
    generator = patterns.GENERATORS[name]
    first = generator()
    assert first.shape == (512, 512, 3) and first.dtype == np.uint8
    generator.cache_clear()
    assert np.array_equal(generator(), first)  # regenerated from scratch: same pixels
    hsv = np.asarray(Image.fromarray(first).convert("HSV"), dtype=np.float32)
    assert hsv[..., 1].mean() > 60  # bold colour, not grey
    gray = first.astype(np.float32).mean(-1)
    local_detail = np.abs(np.diff(gray, axis=1)).mean() + np.abs(np.diff(gray, axis=0)).mean()
    assert local_detail > 4  # strokes and edges, not a flat gradient
    assert not first.flags.writeable  # the cached array is protected


def test_styles_differ_from_each_other():
    a, b, c = (examples.load(n) for n in ("swirls", "mosaic", "waves"))
    assert (a - b).abs().mean() > 0.1 and (b - c).abs().mean() > 0.1 and (a - c).abs().mean() > 0.1


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError) as err:
        examples.load("mona_lisa")
    message = str(err.value)
    assert "\n" not in message and "mona_lisa" in message and "chelsea" in message and "starry_night" in message
    with pytest.raises(ValueError):
        examples.credit("mona_lisa")


def test_credits():
    for name in examples.names():
        credit = examples.credit(name)
        assert set(credit) == {"title", "author", "licence", "source"}
        assert all(isinstance(v, str) and v for v in credit.values())
    assert examples.credit("astronaut")["author"] == "NASA"
    assert "van Gogh" in examples.credit("starry_night")["author"]
    assert "public domain" in examples.credit("starry_night")["licence"]
    assert "Tretyakov" in examples.credit("composition_vii")["source"]
    for name in examples.names(kind="pattern"):
        assert "pattern" in examples.credit(name)["title"].lower()  # patterns are never called paintings
    for name in examples.names(online=True):
        assert examples.DOWNLOADS[name]["url"].startswith("https://upload.wikimedia.org/")


def test_download_caches_and_verifies(http_files, monkeypatch, tmp_path):
    painting = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
    data = png_bytes(painting)
    http_files.files["/scream.png"] = data
    entry = dict(examples.DOWNLOADS["the_scream"], url=http_files.url("/scream.png"),
                 sha256=hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(examples.DOWNLOADS, "the_scream", entry)

    t = examples.load("the_scream", fallback=False)
    assert torch.allclose(t, load_image(painting))
    cached = tmp_path / "cache" / "the_scream.png"
    assert cached.read_bytes() == data
    assert [p.name for p in cached.parent.iterdir()] == ["the_scream.png"]  # no temp file left
    assert http_files.hits["/scream.png"] == 1

    resized = examples.load("the_scream", size=15)  # served from the cache
    assert tuple(resized.shape) == (1, 3, 10, 15) and http_files.hits["/scream.png"] == 1

    cached.write_bytes(b"corrupted")  # a broken cache file is downloaded again
    examples.load("the_scream")
    assert http_files.hits["/scream.png"] == 2 and cached.read_bytes() == data


def test_download_with_wrong_checksum_or_not_an_image(http_files, monkeypatch, tmp_path):
    http_files.files["/p.png"] = png_bytes(np.zeros((4, 4, 3), np.uint8))
    http_files.files["/page.html"] = b"<html>not found</html>"
    for path, sha in (("/p.png", "0" * 64), ("/page.html", None)):
        entry = dict(examples.DOWNLOADS["the_scream"], url=http_files.url(path), sha256=sha)
        monkeypatch.setitem(examples.DOWNLOADS, "the_scream", entry)
        with pytest.raises(ValueError) as err:
            examples.load("the_scream", fallback=False)
        assert "\n" not in str(err.value)
        assert not (tmp_path / "cache" / "the_scream.png").exists()


def test_offline_fallback_prints_one_line_once(monkeypatch, capsys):
    entry = dict(examples.DOWNLOADS["the_scream"], url="http://127.0.0.1:9/the_scream.jpg")
    monkeypatch.setitem(examples.DOWNLOADS, "the_scream", entry)
    t = examples.load("the_scream", size=64)
    assert torch.equal(t, examples.load("starry_night", size=64))
    first = capsys.readouterr()
    assert first.err == ""
    lines = first.out.strip().splitlines()
    assert len(lines) == 1 and "the_scream" in lines[0] and "starry_night" in lines[0]
    examples.load("the_scream", size=64)
    assert capsys.readouterr().out == ""  # said once only
    with pytest.raises(ConnectionError) as err:
        examples.load("the_scream", fallback=False)
    assert "\n" not in str(err.value)


def test_download_sends_a_user_agent(http_files, monkeypatch):
    seen = []
    real_urlopen = urllib.request.urlopen

    def spy(request, *args, **kwargs):
        seen.append(request.get_header("User-agent"))
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", spy)
    http_files.files["/x.png"] = png_bytes(np.zeros((2, 2, 3), np.uint8))
    images.load_image(http_files.url("/x.png"))
    assert seen and seen[0].startswith("nst-helpers")
