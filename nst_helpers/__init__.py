"""nst_helpers: the tested reference code behind the neural style transfer course.

    from nst_helpers import load_image, show_images, VGGFeatures, stylize
"""

from . import _interrupt

_interrupt.exit_on_ctrl_c()  # first: on the command line, Ctrl-C while torch loads exits with one line

from . import checks, controls, examples, images, losses, rescaling, vgg
from .images import load_image, save_image, show_images, to_pil
from .losses import content_loss, gram_matrix, style_loss, tv_loss
from .objective import evaluate_loss
from .settings import Settings
from .transfer import Result, StopRun, stylize
from .vgg import VGGFeatures, default_device, layer_names

__version__ = "0.1.0"

__all__ = [
    "checks", "controls", "examples", "images", "losses", "rescaling", "vgg",
    "load_image", "save_image", "show_images", "to_pil",
    "content_loss", "gram_matrix", "style_loss", "tv_loss",
    "Result", "Settings", "StopRun", "evaluate_loss", "stylize",
    "VGGFeatures", "default_device", "layer_names",
]
