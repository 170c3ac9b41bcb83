"""Rebuild and check the reference data in this folder with the SSD authors' released code.

    python tests/data/make_reference.py /path/to/SSD

``/path/to/SSD`` is a checkout of https://github.com/GongyeLiu/SSD; its ``measure``,
``functions`` and ``guided_diffusion`` packages are imported from there, unchanged (nothing of
that code is stored here). The script

- writes ``operators_ssd_256.safetensors``: the paper's degradations (``measure/measurement.py``)
  applied to scikit-image's ``astronaut`` (NASA, public domain), 512 px box-averaged to 256 px
  (the image itself is rebuilt by :func:`reference_image`; the file keeps its SHA-256);
- checks that the two small networks' stored outputs (``*_io.safetensors``) are what the
  reference architectures (``guided_diffusion/unet.py``, ``guided_diffusion/model.py``) compute
  from the stored weights, and prints the largest difference (0 when this folder is intact).

The released code calls ``.cuda()`` on its kernels; on a machine without a GPU that call becomes a
no-op, so the reference runs on the CPU in float32, as it would on a GPU.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from skimage import data

HERE = Path(__file__).resolve().parent


def reference_image() -> torch.Tensor:
    """The image the operators are applied to: scikit-image's astronaut, box-averaged to 256 px, in [-1, 1].
    It is rebuilt rather than stored (0.8 MB saved); the reference file keeps its SHA-256 to prove it."""
    image = np.asarray(Image.fromarray(data.astronaut()).reduce(2), dtype=np.float32)
    return torch.from_numpy(image / 127.5 - 1).permute(2, 0, 1)[None].contiguous()


def image_digest(x: torch.Tensor) -> str:
    return hashlib.sha256(x.numpy().tobytes()).hexdigest()


def write_operator_reference(out: Path) -> None:
    from measure.measurement import ColorizationOperator, DeblurGaussOperator, SuperResolutionOperator

    x = reference_image()
    operators = {
        "sr_bicubic_x4": SuperResolutionOperator(scale=4),
        "sr_bicubic_x8": SuperResolutionOperator(scale=8),
        "colorization": ColorizationOperator(),
        "deblur_gauss": DeblurGaussOperator(),
    }
    tensors = {}
    with torch.no_grad():
        for name, operator in operators.items():
            y = operator.forward(x)
            tensors[f"{name}_y"] = y.contiguous()
            tensors[f"{name}_pinv"] = operator.transpose(y).contiguous()
    save_file(tensors, str(out), metadata={"image": "skimage.data.astronaut, 512 px box-averaged to 256 px",
                                           "image_sha256": image_digest(x),
                                           "reference": "github.com/GongyeLiu/SSD measure/measurement.py"})
    print(f"wrote {out}")


def check_network_references() -> None:
    from guided_diffusion.model import Model
    from guided_diffusion.unet import UNetModel

    configs = json.loads((HERE / "model_configs.json").read_text())
    openai = dict(configs["openai_unet_small"])
    networks = {"openai_unet_small": UNetModel(**openai), "ddpm_model_small": Model(**configs["ddpm_model_small"])}
    for name, network in networks.items():
        network.load_state_dict(load_file(HERE / f"{name}.safetensors"))
        io = load_file(HERE / f"{name}_io.safetensors")
        with torch.no_grad():
            difference = (network.eval()(io["x"], io["t"]) - io["out"]).abs().max().item()
        print(f"{name}: largest difference from the stored output {difference:.3g}")


def main(reference: str) -> None:
    sys.path.insert(0, str(Path(reference).resolve()))
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    write_operator_reference(HERE / "operators_ssd_256.safetensors")
    check_network_references()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/data/make_reference.py /path/to/SSD")
    main(sys.argv[1])
