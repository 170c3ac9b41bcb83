"""ssdiff: zero-shot image restoration with pretrained diffusion models (Shortcut Sampling for Diffusion).

>>> import ssdiff
>>> prior = ssdiff.load_model("celeba64")
>>> x = ssdiff.io.read_image("face.png")[None]  # 1 x 3 x 64 x 64 in [-1, 1]
>>> op = ssdiff.get_operator("sr_bicubic", image_size=(64, 64), scale=4)
>>> res = ssdiff.restore(prior, op, op.A(x), method="ssd", nfe=30, seed=0)
>>> res.image, res.nfe
"""

from .models import DiffusionPrior, load_model
from .operators import get_operator
from .solvers import Restoration, restore

__version__ = "0.1.0"
__all__ = ["DiffusionPrior", "Restoration", "__version__", "get_operator", "load_model", "restore"]
