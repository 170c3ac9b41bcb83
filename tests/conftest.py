"""Shared fixtures: the reference data in tests/data (see its README) and tiny networks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from ssdiff.schedule import DEFAULT_SCHEDULE

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data"


def pytest_addoption(parser) -> None:
    parser.addoption("--device", default="cpu", help="where the tests that take a device (the device_ddpm and "
                     "device_images fixtures) run: cpu (default), cuda, mps")


def pytest_configure(config) -> None:
    """An unusable --device stops the run before any test, with the reason."""
    from ssdiff.models.loading import resolve_device

    try:
        config.test_device = resolve_device(config.getoption("--device"))
    except Exception as error:  # noqa: BLE001 - whatever makes the device unusable is the message
        raise pytest.UsageError(f"--device: {error}") from None


@pytest.fixture(scope="session")
def device(request) -> torch.device:
    return request.config.test_device


@pytest.fixture(autouse=True)
def seeded_global_rng() -> None:
    """Every test starts from the same global RNG state, so none passes or fails by the draw."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def golden() -> Path:
    """The folder of reference outputs and the exact weights they were computed with."""
    return GOLDEN


@pytest.fixture(scope="session")
def operator_reference(golden: Path) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The image the reference operators were applied to (rebuilt, and proved the same by its SHA-256)
    and their stored measurements and pseudo-inverses (tests/data/make_reference.py)."""
    import importlib.util

    from safetensors import safe_open

    spec = importlib.util.spec_from_file_location("make_reference", golden / "make_reference.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    x = maker.reference_image()
    with safe_open(golden / "operators_ssd_256.safetensors", "pt") as handle:
        assert maker.image_digest(x) == handle.metadata()["image_sha256"], "scikit-image's astronaut changed"
        return x, {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - safe_open is not iterable


@pytest.fixture(scope="session")
def model_configs(golden: Path) -> dict:
    return json.loads((golden / "model_configs.json").read_text())


@pytest.fixture(scope="session")
def tiny_ddpm(golden: Path, model_configs: dict):
    """The reference 32x32 DDPM/SDEdit network (seeded random weights): a real architecture, fast on CPU."""
    import ssdiff

    return ssdiff.load_model(golden / "ddpm_model_small.safetensors", config=model_configs["ddpm_model_small"])


@pytest.fixture(scope="session")
def device_ddpm(golden: Path, model_configs: dict, device: torch.device):
    """The reference tiny network on ``--device`` (the solvers' real-network tests run there)."""
    import ssdiff

    return ssdiff.load_model(golden / "ddpm_model_small.safetensors", config=model_configs["ddpm_model_small"],
                             device=device)


@pytest.fixture()
def device_images(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images.to(device)


@pytest.fixture()
def images() -> torch.Tensor:
    """Two smooth 32x32 test images in [-1, 1] (smooth, so that they are image-like)."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(2, 3, 8, 8, generator=generator) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)


def write_images(folder: Path, images: torch.Tensor, names: list[str]) -> Path:
    """Save tensors in [-1, 1] as 8-bit PNGs named ``names`` in ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name, image in zip(names, images):
        array = ((image.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        Image.fromarray(array).save(folder / f"{name}.png")
    return folder


@pytest.fixture()
def tiny_model_args(golden: Path, model_configs: dict, tmp_path: Path) -> list[str]:
    """CLI options that select the reference tiny DDPM network."""
    config = tmp_path / "tiny_config.json"
    config.write_text(json.dumps(model_configs["ddpm_model_small"]))
    return ["--model", str(golden / "ddpm_model_small.safetensors"), "--config", str(config)]


class GaussianPrior:
    """The exact epsilon of data x0 ~ N(mu, s^2) per pixel: E[eps | x_t] in closed form (``mu`` one
    number, or one per channel)."""

    def __init__(self, mu: float | tuple[float, ...] = 0.2, s: float = 0.3):
        self.mu, self.s = mu, s

    def __call__(self, x_t: torch.Tensor, t) -> torch.Tensor:
        t = int(t) if not torch.is_tensor(t) else int(t.flatten()[0])
        a = DEFAULT_SCHEDULE.alpha_bar_at(t)
        mu = torch.as_tensor(self.mu, dtype=x_t.dtype, device=x_t.device).view(-1, 1, 1)
        return math.sqrt(1 - a) * (x_t - math.sqrt(a) * mu) / (a * self.s**2 + 1 - a)
