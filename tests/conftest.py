"""Shared fixtures: the golden reference data in ../shared/golden and tiny networks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(os.environ.get("SSDIFF_GOLDEN", REPO.parent / "shared" / "golden"))


@pytest.fixture(scope="session")
def golden() -> Path:
    """The golden folder; in CI its absence is a failure, elsewhere the golden tests are skipped."""
    if not GOLDEN.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"golden data not found at {GOLDEN}")
        pytest.skip(f"golden data not found at {GOLDEN} (set SSDIFF_GOLDEN)")
    return GOLDEN


@pytest.fixture(scope="session")
def model_configs(golden: Path) -> dict:
    return json.loads((golden / "model_configs.json").read_text())


@pytest.fixture(scope="session")
def tiny_ddpm(golden: Path, model_configs: dict):
    """The golden 32x32 DDPM/SDEdit network (seeded random weights): a real architecture, fast on CPU."""
    import ssdiff

    return ssdiff.load_model(golden / "ddpm_model_small.safetensors", config=model_configs["ddpm_model_small"])


@pytest.fixture()
def images() -> torch.Tensor:
    """Two smooth 32x32 test images in [-1, 1] (smooth, so that they are image-like)."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(2, 3, 8, 8, generator=generator) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)
