import io
import os
import socket
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from messages import one_line
from nst_helpers import download, images
from nst_helpers.images import load_image, save_image, show_images, to_pil


def png_bytes(image, **params):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def gradient_rgb(width=40, height=30):
    """An RGB image whose pixels are all different, so flips and rotations show."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return np.stack([x, y, 255 - x], -1).round().astype(np.uint8)


def assert_image_tensor(t, height, width):
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert tuple(t.shape) == (1, 3, height, width)
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0


def assert_one_line(err):
    message = str(err.value)
    assert message and "\n" not in message, message


# --------------------------------------------------------------------- modes

def test_rgb_pil_values_exact():
    array = gradient_rgb()
    t = load_image(Image.fromarray(array))
    assert_image_tensor(t, 30, 40)
    np.testing.assert_allclose(t[0].permute(1, 2, 0).numpy() * 255, array, atol=1e-3)


def test_grayscale_L_becomes_three_equal_channels():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    t = load_image(Image.fromarray(gray, mode="L"))
    assert_image_tensor(t, 3, 4)
    for c in range(3):
        np.testing.assert_allclose(t[0, c].numpy() * 255, gray, atol=1e-3)


def test_LA_and_RGBA_are_composited_on_white():
    la = Image.new("LA", (2, 1))
    la.putpixel((0, 0), (0, 0))      # fully transparent black -> white
    la.putpixel((1, 0), (0, 255))    # opaque black stays black
    t = load_image(la)
    assert torch.allclose(t[0, :, 0, 0], torch.ones(3))
    assert torch.allclose(t[0, :, 0, 1], torch.zeros(3))

    rgba = Image.new("RGBA", (3, 1))
    rgba.putpixel((0, 0), (255, 0, 0, 0))      # transparent red -> white
    rgba.putpixel((1, 0), (255, 0, 0, 255))    # opaque red
    rgba.putpixel((2, 0), (0, 0, 255, 128))    # half blue over white
    t = load_image(png_bytes(rgba))
    assert torch.allclose(t[0, :, 0, 0], torch.ones(3))
    assert torch.allclose(t[0, :, 0, 1], torch.tensor([1.0, 0.0, 0.0]))
    expected_half = 1 - 128 / 255
    assert torch.allclose(t[0, :, 0, 2], torch.tensor([expected_half, expected_half, 1.0]), atol=2 / 255)


def test_palette_and_palette_with_transparency():
    p = Image.new("P", (2, 1))
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    p.putpixel((0, 0), 0)
    p.putpixel((1, 0), 1)
    t = load_image(p)
    assert torch.allclose(t[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(t[0, :, 0, 1], torch.tensor([0.0, 1.0, 0.0]))
    # index 0 transparent (saved as a PNG tRNS chunk): red becomes white
    t = load_image(png_bytes(p, transparency=0))
    assert torch.allclose(t[0, :, 0, 0], torch.ones(3))
    assert torch.allclose(t[0, :, 0, 1], torch.tensor([0.0, 1.0, 0.0]))


def test_cmyk():
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # no cyan, full magenta+yellow = red
    t = load_image(cmyk)
    assert_image_tensor(t, 2, 2)
    assert torch.allclose(t[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]), atol=1 / 255)


def test_16_bit_and_32_bit_grayscale():
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    i16 = Image.fromarray(values)
    assert i16.mode.startswith("I;16")
    t = load_image(png_bytes(i16))  # survives a PNG round trip too
    np.testing.assert_allclose(t[0, 0, 0].numpy(), [0.0, 128 / 255, 1.0], atol=1 / 255)
    assert torch.equal(t[0, 0], t[0, 2])
    i32 = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32), mode="I")
    np.testing.assert_allclose(load_image(i32)[0, 1, 0].numpy(), [0, 100 / 255, 1.0], atol=1e-6)
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    np.testing.assert_allclose(load_image(f)[0, 0, 0].numpy(), [0, 128 / 255, 1.0], atol=1e-6)


def test_exif_orientation_is_applied():
    array = gradient_rgb(40, 20)  # wide
    image = Image.fromarray(array)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    t = load_image(buffer.getvalue())
    assert_image_tensor(t, 40, 20)  # now tall
    expected = np.asarray(image.transpose(Image.Transpose.ROTATE_270), dtype=np.float32)  # 90 degrees clockwise
    got = t[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(got - expected).mean() < 6  # JPEG is lossy; a wrong rotation differs by ~100


# --------------------------------------------------------------------- sources and sizes

def test_path_str_bytes_pil_ndarray_tensor_agree(tmp_path):
    array = gradient_rgb()
    path = tmp_path / "g.png"
    Image.fromarray(array).save(path)
    reference = load_image(path)
    with Image.open(path) as opened:
        pil = opened.copy()
    for source in (str(path), path.read_bytes(), pil, array, array.astype(np.float32) / 255,
                   reference, reference[0]):
        assert torch.allclose(load_image(source), reference, atol=1e-6), type(source)


def test_float_arrays_in_0_255_are_read_as_such(tmp_path):
    array = gradient_rgb()
    path = tmp_path / "g.png"
    Image.fromarray(array).save(path)
    reference = load_image(path)
    with Image.open(path) as opened:
        as_float = np.asarray(opened).astype(float)          # 0-255 floats, as a learner makes them
    assert float(as_float.max()) > 1
    assert torch.allclose(load_image(as_float), reference, atol=1e-6)
    assert torch.allclose(load_image(as_float.astype(np.float32)), reference, atol=1e-6)


@pytest.mark.parametrize("low, high", [(-3.0, 1.0), (0.0, 300.0), (-1.0, 255.0)])
def test_float_arrays_outside_both_ranges_are_refused(low, high):
    array = np.linspace(low, high, 12).reshape(3, 4)
    with pytest.raises(ValueError, match="values run from") as info:
        load_image(array)
    assert "\n" not in str(info.value) and "0-255" in str(info.value)


def test_ndarray_gray_and_rgba():
    gray = np.full((4, 5), 0.25, dtype=np.float64)
    t = load_image(gray)
    assert_image_tensor(t, 4, 5)
    assert torch.allclose(t, torch.full_like(t, 0.25))
    rgba = np.zeros((2, 2, 4), np.uint8)  # transparent black -> white
    assert torch.allclose(load_image(rgba), torch.ones(1, 3, 2, 2))


@pytest.mark.parametrize("size", [16, 64, 100])
def test_size_sets_long_side_and_keeps_aspect(size):
    t = load_image(Image.fromarray(gradient_rgb(60, 30)), size=size)
    assert_image_tensor(t, round(size / 2), size)
    t = load_image(gradient_rgb(30, 60), size=size)  # tall, through the ndarray path
    assert_image_tensor(t, size, round(size / 2))


def test_resize_is_antialiased():
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    t = load_image(Image.fromarray(checker), size=8)
    assert abs(float(t.mean()) - 0.5) < 0.02 and float(t.std()) < 0.05  # averaged to grey, no aliasing


@pytest.mark.parametrize("max_pixels", [1, 100, 999, 1200])
def test_max_pixels_caps_area(max_pixels):
    t = load_image(Image.fromarray(gradient_rgb(40, 30)), max_pixels=max_pixels)
    h, w = t.shape[2:]
    assert h * w <= max_pixels
    if max_pixels >= 1200:
        assert (h, w) == (30, 40)  # already small enough: unchanged
    elif max_pixels >= 100:
        assert abs(w / h - 4 / 3) < 0.2 and h * w > 0.8 * max_pixels


def test_size_and_max_pixels_together():
    t = load_image(gradient_rgb(40, 20), size=200, max_pixels=5000)
    h, w = t.shape[2:]
    assert h * w <= 5000 and abs(w / h - 2) < 0.05


def test_tensor_pass_through():
    x = torch.rand(1, 3, 10, 20)
    assert torch.equal(load_image(x), x)
    assert tuple(load_image(x, size=40).shape) == (1, 3, 20, 40)


# --------------------------------------------------------------------- errors

def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_image(tmp_path / "nope.jpg")
    assert_one_line(err)
    assert "nope.jpg" in str(err.value)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, I am text\nwith two lines\n")
    with pytest.raises(ValueError, match="not an image") as err:
        load_image(path)
    assert_one_line(err)


def test_truncated_image(tmp_path):
    data = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(data, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    with pytest.raises(ValueError, match="truncated") as err:
        load_image(path)
    assert_one_line(err)
    with pytest.raises(ValueError, match="truncated|decoded"):
        load_image(png_bytes(Image.fromarray(gradient_rgb()))[:-40])


def test_decompression_bomb_is_an_error_not_a_warning(monkeypatch):
    data = png_bytes(Image.new("RGB", (50, 50)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warning above 1000, PIL's error above 2000
    for source in (data, png_bytes(Image.new("RGB", (40, 40)))):  # error-level and warning-level sizes
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match="decompression bomb") as err:
                load_image(source)
        assert_one_line(err)


def test_zero_size():
    for source in (Image.new("RGB", (0, 5)), np.zeros((0, 4, 3), np.uint8), torch.zeros(1, 3, 0, 4)):
        with pytest.raises(ValueError, match="zero size") as err:
            load_image(source)
        assert_one_line(err)


@pytest.mark.parametrize("kwargs", [dict(size=0), dict(size=-3), dict(size=2.5), dict(size="256"), dict(size=True),
                                    dict(max_pixels=0)])
def test_bad_size_arguments(kwargs):
    with pytest.raises(ValueError) as err:
        load_image(np.zeros((4, 4, 3), np.uint8), **kwargs)
    assert_one_line(err)


@pytest.mark.parametrize("source", [np.zeros((4, 4, 2)), np.zeros((4, 4), np.int64), np.full((2, 2), np.nan),
                                    torch.zeros(2, 3, 4, 4), torch.zeros(1, 1, 4, 4)])
def test_bad_arrays_and_tensors(source):
    with pytest.raises(ValueError) as err:
        load_image(source)
    assert_one_line(err)


def test_bad_type():
    with pytest.raises(TypeError) as err:
        load_image(12345)
    assert_one_line(err)


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "file:///etc/passwd", "data://x"])
def test_unsupported_url_scheme(url):
    with pytest.raises(ValueError, match="scheme") as err:
        load_image(url)
    assert_one_line(err)


def test_download_from_local_server(http_files):
    http_files.files["/g.png"] = png_bytes(Image.fromarray(gradient_rgb()))
    assert torch.allclose(load_image(http_files.url("/g.png")), load_image(gradient_rgb()))


def test_download_failures(http_files, monkeypatch):
    with pytest.raises(ConnectionError, match="404") as err:
        load_image(http_files.url("/missing.png"))
    assert_one_line(err)
    with pytest.raises(ConnectionError) as err:
        load_image("http://127.0.0.1:9/unreachable.png")
    assert_one_line(err)
    http_files.files["/big.png"] = b"x" * 2000
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1000)
    monkeypatch.setattr(download.download_bytes, "__defaults__", (1000, download.DOWNLOAD_TIMEOUT_S))
    with pytest.raises(ValueError, match="larger than") as err:
        load_image(http_files.url("/big.png"))
    assert_one_line(err)


@pytest.fixture
def trickling_server():
    """A server on 127.0.0.1 that promises 1000 bytes and sends one every 0.1 s; it stops by itself after 20 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    stop = threading.Event()

    def serve():
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n")
            started = time.monotonic()
            while not stop.is_set() and time.monotonic() - started < 20:
                try:
                    connection.sendall(b"x")
                except OSError:
                    return
                stop.wait(0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow.png"
    stop.set()
    listener.close()
    thread.join(timeout=5)


def test_a_trickling_download_ends_at_the_deadline(trickling_server, monkeypatch):
    monkeypatch.setattr(download, "DOWNLOAD_DEADLINE_S", 1.0)  # each byte comes well within the per-read timeout
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="took more than 1 s") as err:
        load_image(trickling_server)
    assert time.monotonic() - started < 5
    assert_one_line(err)


# --------------------------------------------------------------------- to_pil and save

def test_to_pil_clamps_and_rounds():
    t = torch.tensor([[[[-0.5, 0.0, 0.499 / 255, 0.501 / 255, 1.0, 7.0]]]]).expand(1, 3, 1, 6)
    pil = to_pil(t)
    assert pil.mode == "RGB" and pil.size == (6, 1)
    assert np.asarray(pil)[0, :, 0].tolist() == [0, 0, 0, 1, 255, 255]
    assert to_pil(t[0]).size == (6, 1)
    with pytest.raises(ValueError):
        to_pil(torch.zeros(2, 3, 4, 4))


def test_save_png_round_trip_and_jpeg(tmp_path):
    t = load_image(gradient_rgb())
    path = save_image(t, tmp_path / "sub" / "out.png")
    assert path == tmp_path / "sub" / "out.png" and path.is_file()
    assert torch.equal(load_image(path), t)  # PNG is lossless on 8-bit values
    jpg = save_image(t, str(tmp_path / "out.JPEG"))
    with Image.open(jpg) as opened:
        assert opened.format == "JPEG"
    assert (load_image(jpg) - t).abs().mean() < 0.02
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out.JPEG", "out.png", "sub"]  # no temp files


def test_save_unknown_extension_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"\.png") as err:
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "out.gif")
    assert_one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_no_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old contents")
    original_save = Image.Image.save

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half an image")  # a half-written file ...
        raise OSError("disk full")           # ... then the failure

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(torch.rand(1, 3, 4, 4), target)
    assert target.read_bytes() == b"old contents"  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # and no temp file is left
    with pytest.raises(OSError):
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "new.png")
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    monkeypatch.setattr(Image.Image, "save", original_save)
    save_image(torch.rand(1, 3, 4, 4), target)
    with Image.open(target) as opened:
        assert opened.size == (4, 4)


# --------------------------------------------------------------------- show

def test_show_images_grid(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert show_images([torch.rand(1, 3, 8, 8)]) is None  # shown, not returned: no double display
        fig = show_images([torch.rand(1, 3, 8, 8), torch.rand(2, 3, 8, 6), torch.rand(3, 5, 5)],
                          titles=["a", "b", "c", "d"], ncols=3, show=False)
    assert shown == [True]
    axes = fig.get_axes()
    assert len(axes) == 6  # 2 rows x 3 columns
    assert [ax.get_title() for ax in axes[:4]] == ["a", "b", "c", "d"]
    assert sum(bool(ax.get_images()) for ax in axes) == 4
    assert all(not ax.axison for ax in axes)
    plt.close(fig)
    with pytest.raises(ValueError):
        show_images([torch.rand(1, 3, 4, 4)], titles=["a", "b"], show=False)


def test_saved_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_image(torch.rand(1, 3, 4, 4), tmp_path / "out.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_uint8_tensors_are_scaled_like_uint8_arrays():
    array = (np.arange(4 * 5 * 3).reshape(4, 5, 3) * 3).astype(np.uint8)
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    expected = load_image(array)
    assert torch.equal(load_image(tensor), expected)
    assert torch.equal(load_image(tensor.unsqueeze(0)), expected)
    assert 0 < float(expected.max()) < 1


def test_save_image_names_the_path_not_a_temporary_file(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder")
    with pytest.raises(OSError) as err:
        save_image(torch.zeros(1, 3, 4, 4), a_file / "sub" / "out.png")
    assert str(a_file / "sub" / "out.png") in one_line(err) and ".tmp" not in str(err.value)
