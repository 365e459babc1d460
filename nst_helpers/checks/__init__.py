"""Exercise checks: run a learner's function against the reference and name the mistake.

    from nst_helpers import checks
    checks.check_gram_matrix(gram_matrix)   # prints "✅ gram_matrix: correct (5 cases checked)"

Each check calls the learner's function on several small random inputs (fixed seed, float32,
batches of 1-3 different items, H != W != C), compares with the reference (``nst_helpers.losses``
or the reference next to the check), and prints one line.  It returns a ``CheckResult`` that is
true when the function is correct.  Relative error: max|x - y| / max(1e-8, max(|x| + |y|)), which
must be below 1e-5.

Files, in reading order: ``engine`` (the result, the one frame ``run_check``, naming a mistake),
``deadline`` (the time limit on the learner's function), ``compare`` (values, gradients and inputs
against the reference), ``loop_spy`` (the network and optimiser spies of notebooks 01 and 05, and the
loop mistakes they share), then one file per notebook, ``nb00_images_and_vgg`` ... ``nb06_controls``, and two
for notebook 07: ``nb07_fast_style_transfer`` (the residual block) and ``nb07_training_step``.

Each mistake a check can name is written once, in a table of id: (title, advice) beside the code that
finds it; each check lists what it can name in ``check.mistakes`` ((id, title) pairs, "…" where the
message holds a value), and ``engine.COMMON_MISTAKES`` are those every check can name.  The teacher's
guide's table of mistakes is printed from these (tools/teaching_tables.py).

Every check ends in ``finish`` (write new checks the same way, through ``run_check``):
  * learning mode (the default): a failed check prints its line and swaps the reference
    implementation in for the learner's name in the notebook, with a one-line notice, so that the
    cells below still run;
  * grading mode (``nbgrader autograde``, which sets NBGRADER_EXECUTION, or NST_GRADING=1): the same,
    then it raises ``ExerciseFailed``, so that the autograded cell fails and scores no points.
``graded=False`` (for cells that demonstrate a mistake on purpose) only prints and returns.
"""

from .engine import TOLERANCE, CheckResult, ExerciseFailed, finish, grading, rel_error
from .loop_spy import LOOP_MISTAKES
from .nb00_images_and_vgg import caffe_preprocess, check_caffe_preprocess, check_receptive_fields, receptive_fields
from .nb01_content_loss import check_content_loss, check_reconstruct, reconstruct
from .nb02_gram_matrix import check_gram_distance, check_gram_matrix, gram_distance
from .nb03_style_loss import check_normalized_style_weights, check_style_loss
from .nb04_total_variation import check_tv_isotropic, check_tv_loss, tv_isotropic
from .nb05_style_transfer import check_range_penalty, check_transfer_loop, transfer_loop
from .nb06_controls import check_guided_gram, check_match_histogram
from .nb07_fast_style_transfer import PlainResidualBlock, check_residual_block
from .nb07_training_step import check_training_step, training_step

__all__ = ["CheckResult", "ExerciseFailed", "finish", "grading", "rel_error", "TOLERANCE", "LOOP_MISTAKES",
           "check_caffe_preprocess", "check_receptive_fields", "check_content_loss", "check_reconstruct",
           "check_gram_matrix", "check_gram_distance", "check_style_loss", "check_normalized_style_weights",
           "check_tv_loss", "check_tv_isotropic", "check_range_penalty", "check_transfer_loop",
           "check_match_histogram", "check_guided_gram", "check_residual_block", "check_training_step",
           "caffe_preprocess", "receptive_fields", "reconstruct", "gram_distance", "tv_isotropic", "transfer_loop",
           "PlainResidualBlock", "training_step"]
