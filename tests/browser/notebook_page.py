"""Driving one notebook in JupyterLab's page as a learner does: open, wait for the kernel, Run All, save."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SCREENSHOTS: list[Path] = []       # listed at the end of the test run
RUN_TIMEOUT_S = 900          # one notebook in quick mode on a slow shared CPU
WIDGET_REPR = re.compile(r"\b(IntSlider|FloatLogSlider|Dropdown|FileUpload|VBox|HBox|Button|Output)\(")


class NotebookPage:
    def __init__(self, lab, browser, name: str):
        self.lab, self.name = lab, name
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.console_errors: list[str] = []
        self.page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    # --- opening and running -------------------------------------------------------------------------
    def open(self) -> None:
        self.page.goto(f"{self.lab.url}/lab/tree/{self.name}?reset&token={self.lab.token}")
        self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
        self.wait_for_idle(timeout_s=180)

    def kernel_status(self) -> str | None:
        """"idle" when both the server and the page say the notebook's kernel is idle."""
        dialog = self.page.locator(".jp-Dialog", has_text="Select Kernel")
        if dialog.count():                                   # the default kernel is what we want
            dialog.locator("button", has_text="Select").click()
        indicator = self.page.locator(".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator")
        page_state = indicator.first.get_attribute("data-status") if indicator.count() else None
        server_state = self.lab.kernel_state(self.name)
        return "idle" if page_state == server_state == "idle" else f"{server_state} (page: {page_state})"

    def wait_for_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.kernel_status() != "idle":
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: kernel not idle after {timeout_s:.0f} s "
                                     f"(status {self.kernel_status()!r})")
            time.sleep(0.5)

    def menu(self, menu: str, item: str) -> None:
        self.page.locator("#jp-menu-panel .lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
        self.page.locator(".lm-Menu .lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()

    def prompts(self) -> list[str]:
        return [text.strip() for text in
                self.page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()]

    def run_all(self) -> float:
        """Run > Run All Cells; wait until every code cell has a number and the kernel is idle. Returns seconds."""
        self.menu("Edit", "Clear Outputs of All Cells")   # the committed outputs' numbers must not count
        self.page.wait_for_function("""() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
                                           .every(p => !/\\d/.test(p.textContent))""", timeout=30_000)
        start = time.monotonic()
        self.menu("Run", "Run All Cells")
        deadline = start + RUN_TIMEOUT_S
        while True:
            time.sleep(1)
            prompts = self.prompts()
            done = prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
            if done and self.kernel_status() == "idle":
                break
            errors = self.page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
            if self.kernel_status() == "idle" and errors.count() and "[*]:" not in prompts:
                break                                    # stopped at an error: the caller's asserts say where
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: Run All not finished after {RUN_TIMEOUT_S} s; prompts {prompts}")
        return time.monotonic() - start

    def save(self) -> dict:
        """File > Save Notebook; returns the saved file as JSON."""
        self.menu("File", "Save Notebook")
        dirty = self.page.locator(".jp-mod-current.jp-mod-dirty, .lm-TabBar-tab.jp-mod-current.jp-mod-dirty")
        deadline = time.monotonic() + 30
        while dirty.count() and time.monotonic() < deadline:
            time.sleep(0.3)
        return json.loads((self.lab.workdir / self.name).read_text(encoding="utf-8"))

    # --- what the page shows -------------------------------------------------------------------------
    def stderr_texts(self) -> list[str]:
        return self.page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()

    def output_text(self) -> str:
        return "\n".join(self.page.locator(".jp-OutputArea-output").all_inner_texts())

    def figures(self) -> list[dict]:
        """Every <img> in a cell output outside widgets: whether it loaded, and its size."""
        return self.page.eval_on_selector_all(
            ".jp-OutputArea-output img",
            """imgs => imgs.filter(i => !i.closest('.jupyter-widgets')).map(i => ({
                   complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
                   mime: i.closest('[data-mime-type]') ? i.closest('[data-mime-type]').dataset.mimeType : null}))""")

    def math(self) -> dict:
        """Rendered maths (MathJax containers, MathJax errors) and raw TeX left in rendered markdown."""
        return self.page.eval_on_selector_all(
            ".jp-MarkdownCell .jp-RenderedMarkdown",
            r"""cells => {
                let rendered = 0, errors = 0; const raw = [];
                for (const cell of cells) {
                    rendered += cell.querySelectorAll('mjx-container').length;
                    errors += cell.querySelectorAll('mjx-merror, [data-mjx-error]').length;
                    const copy = cell.cloneNode(true);
                    copy.querySelectorAll('code, pre, mjx-container, script').forEach(e => e.remove());
                    const text = copy.textContent;
                    const found = text.match(/\$\$|\\\(|\\\[|\$[^$\s][^$]*\\[a-zA-Z]+[^$]*\$/);
                    if (found) raw.push(text.slice(Math.max(0, found.index - 40), found.index + 60));
                }
                return {rendered, errors, raw};
            }""")

    def wait_for_math(self, expected: int, timeout_s: float = 60) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            math = self.math()
            if (math["rendered"] >= expected and not math["raw"]) or time.monotonic() > deadline:
                return math
            time.sleep(0.5)

    def screenshot_last_figure(self, path: Path) -> Path:
        images = self.page.locator(".jp-OutputArea-output img")
        last = images.nth(images.count() - 1)
        last.scroll_into_view_if_needed()
        last.screenshot(path=str(path))
        return path

    def close(self) -> None:
        self.context.close()


def count_math(notebook: dict) -> int:
    """How many $…$ / $$…$$ spans the markdown cells hold (roughly: each pair of delimiters)."""
    total = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            text = re.sub(r"`[^`]*`", "", "".join(cell["source"]))
            total += len(re.findall(r"\$\$.+?\$\$|\$[^$\n]+?\$", text, flags=re.S))
    return total
