"""Fast style transfer (notebook 07): a network that paints a photo in one forward pass.

Johnson, Alahi, Fei-Fei (2016) train an image transformation network so that *its output* minimises the
perceptual loss of Gatys et al. over many photos; Dumoulin, Shlens, Kudlur (2017) give one network several
styles through conditional instance normalisation, and blending their parameters blends the styles.

    from nst_helpers.fast import stylize_fast, load_network, train, TransformNet
    picture = stylize_fast("chelsea", "starry_night")                      # (1, 3, H, W), 512 px
    picture = stylize_fast("chelsea", ["starry_night", "great_wave"], blend=[0.5, 0.5])
    result = train("my_painting.jpg", steps=1000, checkpoint="my_style.pt")  # resumable
    picture = stylize_fast("chelsea", network="my_style.pt")

Modules: ``network`` (the layers), ``training`` (the loss and the loop: ``train``), ``data`` (the install's photos,
random crops), ``store`` (network files), ``shipped`` (the networks that come with the package).
"""

from .data import HELD_OUT, TRAIN_PHOTOS, CropSampler, load_photos
from .network import ConditionalInstanceNorm, ResidualBlock, TransformNet, UpsampleConv, style_vector
from .shipped import load_network, styles_with_network, stylize_fast
from .store import network_from_file, save_network
from .training import TrainResult, TrainSettings, style_targets, train

__all__ = [
    "TransformNet", "ConditionalInstanceNorm", "ResidualBlock", "UpsampleConv", "style_vector",
    "train", "TrainSettings", "TrainResult", "style_targets",
    "TRAIN_PHOTOS", "HELD_OUT", "CropSampler", "load_photos",
    "load_network", "styles_with_network", "stylize_fast", "save_network", "network_from_file",
]
