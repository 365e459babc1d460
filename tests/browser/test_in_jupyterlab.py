"""Every notebook run in JupyterLab in Chromium through the page, the panels of 05 and 07 driven, a student copy.

Run with ``pytest -m browser`` (quick mode; see conftest.py for what it needs).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from notebook_page import NOTEBOOKS, ROOT, SCREENSHOTS, WIDGET_REPR, NotebookPage, count_math

PANEL_NOTEBOOK = "05_style_transfer.ipynb"
FAST_PANEL_NOTEBOOK = "07_fast_style_transfer.ipynb"
KEPT = (PANEL_NOTEBOOK, FAST_PANEL_NOTEBOOK)   # their pages stay open for the panel tests after the runs


@pytest.fixture(scope="module")
def kept_pages():
    """The page of the panel's notebook, kept open (with its kernel) for the panel test after it."""
    pages = {}
    yield pages
    for page in pages.values():
        page.close()


def run_in_lab(lab, browser, name: str) -> tuple[NotebookPage, float]:
    notebook = NotebookPage(lab, browser, name)
    notebook.open()
    seconds = notebook.run_all()
    print(f"{name}: Run All took {seconds:.0f} s")
    return notebook, seconds


def assert_ran_cleanly(notebook: NotebookPage, source: dict) -> None:
    name = notebook.name
    prompts = notebook.prompts()
    code_cells = sum(cell["cell_type"] == "code" for cell in source["cells"])
    assert len(prompts) == code_cells, f"{name}: {len(prompts)} code cells in the page, {code_cells} in the file"
    not_run = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
    assert not not_run, f"{name}: code cells {not_run} did not run (prompts {[prompts[i] for i in not_run]})"
    stderr = notebook.stderr_texts()
    assert not stderr, f"{name}: error or stderr output in the page: {stderr[0][:300]!r}"
    text = notebook.output_text()
    assert "Error displaying widget" not in text and not WIDGET_REPR.search(text), \
        f"{name}: a widget shown as text, not as a widget"
    assert not notebook.console_errors, f"{name}: JavaScript errors: {notebook.console_errors[:2]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(path, lab, browser, screenshots, kept_pages):
    source = json.loads(path.read_text(encoding="utf-8"))
    notebook, _ = run_in_lab(lab, browser, path.name)
    try:
        assert_ran_cleanly(notebook, source)

        figures = notebook.figures()
        expected = sum("image/png" in output.get("data", {}) for cell in source["cells"]
                       if cell["cell_type"] == "code" for output in cell.get("outputs", []))
        assert len(figures) >= expected, f"{path.name}: {len(figures)} figures in the page, {expected} committed"
        broken = [f for f in figures if not f["complete"] or f["width"] == 0]
        assert not broken, f"{path.name}: figures that did not load: {broken}"

        math = notebook.wait_for_math(expected=count_math(source))
        assert not math["raw"], f"{path.name}: LaTeX not rendered: {math['raw'][0]!r}"
        assert math["errors"] == 0, f"{path.name}: {math['errors']} MathJax errors"
        assert math["rendered"] >= count_math(source), f"{path.name}: {math['rendered']} formulas rendered"

        if figures:
            shot = notebook.screenshot_last_figure(screenshots / f"{path.stem}_last_figure.png")
            SCREENSHOTS.append(shot)

        saved = notebook.save()
        codes = [cell for cell in saved["cells"] if cell["cell_type"] == "code"]
        assert all(cell["execution_count"] for cell in codes), f"{path.name}: saved with unrun cells"
        bad = [output for cell in codes for output in cell["outputs"]
               if output["output_type"] == "error" or output.get("name") == "stderr"]
        assert not bad, f"{path.name}: saved with error/stderr outputs: {bad[0]}"
    except BaseException:
        notebook.close()
        raise
    if path.name in KEPT:
        kept_pages[path.name] = notebook
    else:
        notebook.close()
        lab.shut_down_kernels(keep=KEPT)


def drag_slider(page, slider, pixels: float) -> None:
    handle = slider.locator(".noUi-handle")
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + pixels, y, steps=8)
    page.mouse.up()


@pytest.mark.skipif(not (ROOT / "notebooks" / PANEL_NOTEBOOK).exists(), reason="no notebook 05")
def test_panel_of_05_driven_by_clicks(lab, browser, screenshots, kept_pages, tmp_path):
    notebook = kept_pages.get(PANEL_NOTEBOOK)
    if notebook is None:                       # run on its own (-k panel)
        notebook, _ = run_in_lab(lab, browser, PANEL_NOTEBOOK)
        kept_pages[PANEL_NOTEBOOK] = notebook
    drive_panel(notebook, screenshots, tmp_path)


def drive_panel(notebook: NotebookPage, screenshots, tmp_path) -> None:
    """What a learner does with the panel: pick, upload, drag, Run, look, Clear."""
    from nst_helpers import examples, save_image

    page = notebook.page
    cell = page.locator(".jp-CodeCell").filter(has=page.locator(".widget-upload"))
    assert cell.count() == 1, "the panel (a FileUpload widget) is not rendered as a widget"
    cell.scroll_into_view_if_needed()

    # 1. a style from the dropdown
    content_menu, style_menu = cell.locator(".widget-dropdown select").nth(0), cell.locator(".widget-dropdown select").nth(1)
    style_menu.select_option(label="waves")
    first_content = content_menu.evaluate("el => el.selectedOptions[0].textContent")   # the notebook's choice

    # 2. a photo through the upload button and the file chooser, as a click does
    photo = save_image(examples.load("astronaut", size=160), tmp_path / "my_photo.png")
    with page.expect_file_chooser() as chooser:
        cell.locator(".widget-upload").first.click()
    chooser.value.set_files(str(photo))
    page.wait_for_function("el => el.selectedOptions[0].textContent.includes('my_photo.png')",
                           arg=content_menu.element_handle(), timeout=30_000)
    shown = content_menu.evaluate("el => el.selectedOptions[0].textContent").replace("\xa0", " ")
    assert shown == "uploaded: my_photo.png"

    # 3. the steps slider, dragged to the right
    steps_slider = cell.locator(".widget-slider").filter(has_text="steps")
    before = int(steps_slider.locator(".widget-readout").inner_text())
    drag_slider(page, steps_slider, 8)
    page.wait_for_timeout(500)
    steps = int(steps_slider.locator(".widget-readout").inner_text())
    print(f"steps slider dragged from {before} to {steps}")
    assert steps > before, f"the steps slider did not move ({before} → {steps})"

    # 4. Run: the live preview is redrawn in place, then the result appears, scaled up
    cell_outputs = cell.locator(".jp-Cell-outputArea").first   # (the panel's own Output widget is nested inside)
    outputs_before = cell_outputs.evaluate("area => area.children.length")
    cell.locator("button").filter(has_text=re.compile(r"^\s*Run\s*$")).click()
    preview, result = cell.locator("img.widget-image").nth(0), cell.locator("img.widget-image").nth(1)
    result.wait_for(state="hidden", timeout=60_000)   # the headless run's result goes away when a new run starts
    frames, most_images = [], 0
    deadline = time.monotonic() + 600
    while not result.is_visible():
        if preview.is_visible():
            frames.append(preview.screenshot())
            most_images = max(most_images, cell.locator("img.widget-image").count())
        assert time.monotonic() < deadline, "no result 600 s after Run"
        page.wait_for_timeout(300)
    print(f"run: {len(frames)} preview screenshots, {len(set(frames))} different")
    assert len(set(frames)) >= 2, f"the live preview did not change during the run ({len(frames)} screenshots)"
    assert most_images == 2, f"{most_images} pictures in the panel: the preview should redraw one, not add more"
    outputs_after = cell_outputs.evaluate("area => area.children.length")
    assert outputs_after == outputs_before, f"the cell's outputs went from {outputs_before} to {outputs_after}"
    size = result.evaluate("img => [img.naturalWidth, img.naturalHeight, img.clientWidth]")
    assert max(size[:2]) >= 384 and size[2] >= 256, f"the result is shown as a thumbnail: {size}"
    assert size[2] <= 1.5 * size[0], f"the result is stretched to the page's width: {size}"
    status = cell.locator(".widget-output").inner_text()
    assert "your upload my_photo.png" in status and "style: waves" in status and f"{steps} steps" in status, status
    assert not notebook.stderr_texts(), notebook.stderr_texts()[:1]
    shot = screenshots / "05_panel_after_run.png"
    page.set_viewport_size({"width": 1400, "height": 2400})     # the whole panel, not what fits in the window
    cell.scroll_into_view_if_needed()
    cell.screenshot(path=str(shot))
    SCREENSHOTS.append(shot)

    # 5. Clear: the upload is forgotten, the dropdown shows the notebook's own photo again
    cell.locator("button").filter(has_text="Clear").first.click()
    page.wait_for_function("([el, name]) => el.selectedOptions[0].textContent === name",
                           arg=[content_menu.element_handle(), first_content], timeout=30_000)
    assert "uploaded" not in " ".join(content_menu.locator("option").all_inner_texts())


@pytest.mark.skipif(not (ROOT / "notebooks" / FAST_PANEL_NOTEBOOK).exists(), reason="no notebook 07")
def test_fast_panel_of_07_follows_the_slider(lab, browser, screenshots, kept_pages):
    """The blend slider of 07's panel, dragged: the picture is repainted at once, no button to press."""
    notebook = kept_pages.get(FAST_PANEL_NOTEBOOK)
    if notebook is None:
        notebook, _ = run_in_lab(lab, browser, FAST_PANEL_NOTEBOOK)
        kept_pages[FAST_PANEL_NOTEBOOK] = notebook
    page = notebook.page
    cell = page.locator(".jp-CodeCell").filter(has=page.locator(".widget-slider", has_text="A → B"))
    assert cell.count() == 1, "the fast panel (its A → B slider) is not rendered as a widget"
    cell.scroll_into_view_if_needed()
    image, status = cell.locator("img.widget-image").first, cell.locator(".widget-output").first
    first_image, first_status = image.get_attribute("src"), status.inner_text()
    slider = cell.locator(".widget-slider").filter(has_text="A → B")
    drag_slider(page, slider, 40)
    page.wait_for_function("([el, old]) => el.getAttribute('src') !== old",
                           arg=[image.element_handle(), first_image], timeout=30_000)
    blend = float(slider.locator(".widget-readout").inner_text())
    expected = f"{blend:.2f} great_wave" if blend < 1 else "· great_wave ·"
    # The drag passes through other values on its way (continuous_update): wait for the last one's picture.
    page.wait_for_function("([el, text]) => el.innerText.includes(text)", arg=[status.element_handle(), expected],
                           timeout=30_000)
    line = status.inner_text()
    print(f"fast panel: {first_status.strip()!r} -> {line.strip()!r}")
    assert expected in line and line != first_status, line
    assert re.search(r"\b\d+ ms", line) and int(re.search(r"(\d+) ms", line).group(1)) < 1000, line
    assert not notebook.stderr_texts(), notebook.stderr_texts()[:1]
    shot = screenshots / "07_fast_panel_after_drag.png"
    cell.screenshot(path=str(shot))
    SCREENSHOTS.append(shot)


def student_notebook(tmp_dir):
    """A solution notebook with an exercise, or a small one made here when no notebook has one yet."""
    for path in NOTEBOOKS:
        if "### BEGIN SOLUTION" in path.read_text(encoding="utf-8"):
            return path
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("A stub and its check."),
        nbformat.v4.new_code_cell("from nst_helpers import checks"),
        nbformat.v4.new_code_cell("def gram_matrix(features, normalize=True):\n    ### BEGIN SOLUTION\n"
                                  "    from nst_helpers.losses import gram_matrix as g\n"
                                  "    return g(features, normalize)\n    ### END SOLUTION",
                                  metadata={"nbgrader": {"grade": False, "grade_id": "99-gram", "locked": False,
                                                         "schema_version": 3, "solution": True, "task": False}}),
        nbformat.v4.new_code_cell("checks.check_gram_matrix(gram_matrix)"),
        nbformat.v4.new_code_cell("print('after the check:', gram_matrix.__name__)"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_dir / "99_fixture.ipynb"
    nbformat.write(notebook, path)
    return path


def test_student_copy_runs_with_stubs(lab, browser, tmp_path):
    solution = student_notebook(tmp_path)
    out = lab.workdir / "student"
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_student_version.py"), "--out", str(out),
                    str(solution)], check=True, cwd=ROOT, capture_output=True, text=True, timeout=120)
    copy = json.loads((out / solution.name).read_text(encoding="utf-8"))
    assert "NotImplementedError" in json.dumps(copy), "the student copy has no stub"
    notebook, _ = run_in_lab(lab, browser, f"student/{solution.name}")
    try:
        assert_ran_cleanly(notebook, copy)            # every cell ran: the check stood in for the stub
        lines = [line for line in notebook.output_text().splitlines() if line.startswith("❌")]
        assert lines, "no check message for the stub"
        assert all("not written yet" in line for line in lines[:1]), lines[:1]
    finally:
        notebook.close()
        lab.shut_down_kernels(keep=KEPT)
