"""The README's opening figure and the tool that makes it (tools/make_hero.py)."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from course_tools import load_tool

ROOT = Path(__file__).resolve().parent.parent
hero = load_tool("make_hero")


def test_the_readme_opens_with_the_committed_figure_and_says_how_to_make_it():
    readme = (ROOT / "README.md").read_text().splitlines()
    opening = "\n".join(readme[:6])
    assert "](docs/hero.png)" in opening and "tools/make_hero.py" in opening
    path = ROOT / "docs" / "hero.png"
    assert path.stat().st_size <= 300 * 1024
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 3 * 256 and image.height >= 256


def test_the_panels_share_one_height_and_the_file_fits_the_limit(tmp_path):
    panels = [torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    image = hero.compose(panels, ["photo\na", "painting\nb", "result\nc"], height=90)
    assert image.height > 90 and image.width > 3 * 90 * 60 / 40
    size = hero.save_small_png(image, tmp_path / "hero.png", max_kb=300)
    assert size == (tmp_path / "hero.png").stat().st_size <= 300 * 1024


def test_a_figure_that_cannot_fit_is_refused_and_nothing_is_written(tmp_path):
    noise = hero.compose([torch.rand(1, 3, 200, 300, generator=torch.Generator().manual_seed(0))], ["x\ny"], 400)
    with pytest.raises(SystemExit, match="more than 1 kB: use a smaller --height"):
        hero.save_small_png(noise, tmp_path / "hero.png", max_kb=1)
    assert not (tmp_path / "hero.png").exists()


@pytest.mark.parametrize("argv, message", [(["--photo", "starry_night"], "not a shipped photo"),
                                           (["--painting", "the_scream"], "not a shipped painting")])
def test_names_that_are_not_shipped_are_refused_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit):
        hero.main(argv)
    assert message in capsys.readouterr().err
