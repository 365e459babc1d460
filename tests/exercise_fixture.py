"""A small notebook that follows the course's exercise convention (nbgrader metadata, tags, tooling comments).

Used by the tests of the student copy and of nbgrader: it runs in a few seconds, so the whole grading
pipeline is tested even where the course's own notebooks are not graded yet.
"""

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

NAME = "fx_exercises.ipynb"
POINTS = {"fx-gram-check": 2, "fx-tv-check": 3}
KEPT_TEXT = "reference table: 42 rows\n"


def _solution(grade_id, source):
    return new_code_cell(source, metadata={"nbgrader": {
        "grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": True, "task": False}})


def _check(grade_id, source):
    return new_code_cell(source, metadata={"nbgrader": {
        "grade": True, "grade_id": grade_id, "locked": True, "points": POINTS[grade_id], "schema_version": 3,
        "solution": False, "task": False}})


GRAM_SOLUTION = '''def gram_matrix(features, normalize=True):
    """(N, C, H, W) -> (N, C, C), divided by C*H*W when normalize."""
    ### BEGIN SOLUTION
    batch, channels, height, width = features.shape
    flat_features = features.reshape(batch, channels, height * width)
    gram = flat_features @ flat_features.transpose(1, 2)
    if normalize:
        gram = gram / (channels * height * width)
    return gram
    ### END SOLUTION'''

# The planted mistake of the tests: the Gram matrix is never normalised.
GRAM_UNNORMALISED = GRAM_SOLUTION.replace("gram = gram / (channels * height * width)", "pass")

TV_SOLUTION = '''def tv_loss(img, tv_weight):
    """tv_weight times the sum of squared differences between neighbouring pixels."""
    ### BEGIN SOLUTION
    down = (img[:, :, 1:, :] - img[:, :, :-1, :]).pow(2).sum()
    across = (img[:, :, :, 1:] - img[:, :, :, :-1]).pow(2).sum()
    return tv_weight * (down + across)
    ### END SOLUTION'''

DEMO = '''def gram_matrix_unnormalised(features, normalize=True):
    batch, channels, height, width = features.shape
    flat_features = features.reshape(batch, channels, height * width)
    return flat_features @ flat_features.transpose(1, 2)


checks.check_gram_matrix(gram_matrix_unnormalised, graded=False)'''


def notebook():
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [
        new_markdown_cell("# Fixture: two graded exercises"),
        new_code_cell("import torch\n\nfrom nst_helpers import checks  # noqa: F401 (used below)"),
        new_code_cell('print("reference table: 42 rows")', metadata={"tags": ["keep-output"]}, execution_count=2,
                      outputs=[new_output("stream", name="stdout", text=KEPT_TEXT)]),
        _solution("fx-gram", GRAM_SOLUTION),
        _check("fx-gram-check", "# NBVAL_CHECK_OUTPUT\nchecks.check_gram_matrix(gram_matrix)"),
        new_code_cell(DEMO, metadata={"tags": ["demo-mistake"]}, execution_count=5,
                      outputs=[new_output("stream", name="stdout", text="❌ gram_matrix: not normalised\n")]),
        _solution("fx-tv", TV_SOLUTION),
        _check("fx-tv-check", "checks.check_tv_loss(tv_loss)  # noqa: F821"),
        new_code_cell("image = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(0))\n"
                      "print(tuple(gram_matrix(image).shape), float(tv_loss(image, 1.0)) > 0)",
                      execution_count=9, outputs=[new_output("stream", name="stdout", text="(1, 3, 3) True\n")]),
    ]
    return nb
