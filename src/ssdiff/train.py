"""Train an epsilon-prediction DDPM prior (a diffusers UNet2DModel) on a folder of images.

The schedule is the one of the public checkpoints (linear betas, 1000 steps), so every solver
in ssdiff works unchanged with what this trains. Training is resumable to the bit: the state
file holds the weights, their EMA, the optimizer, the step and the random-generator state, and
the data order is a pure function of (seed, step).

Layout of the output folder::

    state.pt        latest resumable state (written atomically every --checkpoint-every steps)
    loss.csv        step, training loss (mean over the logging window), lr, images/s, val loss
    ema/            diffusers folder with the EMA weights of the latest checkpoint
    best/           diffusers folder with the EMA weights of the best validation loss so far
    samples/        a grid of unconditional DDIM samples every --sample-every steps
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import UNet2DModel
from diffusers.utils import SAFETENSORS_WEIGHTS_NAME
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .data import load_folder, to_unit_range
from .io import (
    InputError,
    atomic_path,
    image_grid,
    output_dir,
    write_image,
)
from .models.catalog import CELEBA64_UNET_CONFIG
from .models.prior import DiffusionPrior
from .schedule import DEFAULT_SCHEDULE
from .solvers.unconditional import ddim_sample
from .threads import adapt as adapt_threads

LOG_FIELDS = ["step", "loss", "lr", "images_per_s", "val_loss"]


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in the state so a resume uses the same."""

    data: str
    out: str
    size: int = 64
    steps: int = 10_000
    batch_size: int = 32
    lr: float = 2e-4
    warmup: int = 500
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    checkpoint_every: int = 250
    sample_every: int = 1000
    log_every: int = 10
    seed: int = 0
    subset: str | None = None  # a Python slice over the sorted image files, e.g. ":8000"
    val_subset: str | None = None  # e.g. "8000:8512"; validation images are never trained on
    crop_top: int | None = None  # vertical offset of the square crop (None: centred)
    init: str | None = None  # warm start from a diffusers folder when no state exists
    export: str | None = None  # also write the best EMA weights here as float16
    model_config: dict[str, Any] = field(default_factory=lambda: dict(CELEBA64_UNET_CONFIG))


def load_image_folder(folder: str, size: int, subset: str | None, crop_top: int | None) -> torch.Tensor:
    """All images of ``folder`` (a slice of the sorted list), square-cropped and resized: N x 3 x S x S uint8."""
    return load_folder(folder, size, subset, crop_top, progress=True)[1]


def batch_indices(step: int, num_images: int, batch_size: int, seed: int) -> torch.Tensor:
    """The images of one step: a fresh permutation per epoch, so the order depends on (seed, step) only."""
    per_epoch = max(num_images // batch_size, 1)
    epoch, position = divmod(step, per_epoch)
    order = torch.randperm(num_images, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[position * batch_size : (position + 1) * batch_size]


def diffusion_loss(model: UNet2DModel, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The simple DDPM objective ``|eps - eps_theta(sqrt(a_t) x0 + sqrt(1-a_t) eps, t)|^2`` (Ho et al. 2020, Eq. 14)."""
    alpha_bar = DEFAULT_SCHEDULE.alpha_bar_tensor(x0.device)
    t = torch.randint(0, DEFAULT_SCHEDULE.num_train_timesteps, (x0.shape[0],), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    a = alpha_bar[t].view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    return F.mse_loss(model(x_t, t).sample, noise)


@torch.no_grad()
def validation_loss(model: UNet2DModel, images: torch.Tensor, batch_size: int) -> float:
    """The same objective on held-out images with fixed noise and time steps spread over [0, 999]."""
    generator = torch.Generator().manual_seed(2024)
    alpha_bar = DEFAULT_SCHEDULE.alpha_bar_tensor()
    t_all = torch.linspace(0, DEFAULT_SCHEDULE.num_train_timesteps - 1, len(images)).round().long()
    total = 0.0
    for start in range(0, len(images), batch_size):
        x0 = to_unit_range(images[start : start + batch_size])
        t = t_all[start : start + batch_size]
        noise = torch.randn(x0.shape, generator=generator)
        a = alpha_bar[t].view(-1, 1, 1, 1)
        total += F.mse_loss(model(a.sqrt() * x0 + (1 - a).sqrt() * noise, t).sample, noise, reduction="sum").item()
    return total / images.numel()


def save_diffusers_folder(model: UNet2DModel, folder: str | Path, dtype: torch.dtype = torch.float32) -> None:
    """Write a diffusers folder (config.json + safetensors) so that it replaces ``folder`` in one rename."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    # Config and tensors are written directly: casting a diffusers model with .to() warns on every export.
    model.save_config(temp)
    weights = {name: tensor.detach().to("cpu", dtype).contiguous() for name, tensor in model.state_dict().items()}
    save_file(weights, temp / SAFETENSORS_WEIGHTS_NAME, metadata={"format": "pt"})
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    temp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


class Trainer:
    """One training run; :meth:`run` trains until ``config.steps`` and can be interrupted at any time."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.out = Path(config.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.state_path = self.out / "state.pt"
        self.log_path = self.out / "loss.csv"

        torch.manual_seed(config.seed)
        model_config = dict(config.model_config, sample_size=config.size)
        self.model = UNet2DModel(**model_config)
        self.ema = UNet2DModel(**model_config)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False).eval()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.best_val = math.inf

        if self.state_path.exists():
            self._load_state()
        elif config.init:
            warm = UNet2DModel.from_pretrained(config.init, low_cpu_mem_usage=False).float()
            self.model.load_state_dict(warm.state_dict())
            self.ema.load_state_dict(warm.state_dict())
        self._trim_log()

        self.images = load_image_folder(config.data, config.size, config.subset, config.crop_top)
        self.val_images = (
            load_image_folder(config.data, config.size, config.val_subset, config.crop_top) if config.val_subset else None
        )

    # ---- state -------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best_val": self.best_val,
            "generator": self.generator.get_state(),
            "config": json.dumps(asdict(self.config)),
        }

    def _load_state(self) -> None:
        state = torch.load(self.state_path, map_location="cpu", weights_only=True)
        stored = json.loads(state["config"])
        for key in ("size", "model_config"):
            if stored[key] != asdict(self.config)[key]:
                raise InputError(f"{self.state_path}: this run was trained with a different {key} "
                                 f"({stored[key]!r}); use another --out to start a new run")
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.best_val = float(state["best_val"])
        self.generator.set_state(state["generator"])

    def save_state(self) -> None:
        with atomic_path(self.state_path) as temp:
            torch.save(self._state(), temp)

    def _trim_log(self) -> None:
        """Drop log rows past the resumed step, so a resumed run's log reads as one run."""
        if not self.log_path.exists():
            return
        with open(self.log_path, newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= self.step]
        with atomic_path(self.log_path) as temp, open(temp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, LOG_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    def _log(self, row: dict[str, Any]) -> None:
        new = not self.log_path.exists()
        with open(self.log_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, LOG_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)

    # ---- training ----------------------------------------------------------------------------
    def learning_rate(self, step: int) -> float:
        """Linear warm-up to ``lr``, then constant."""
        return self.config.lr * min(1.0, (step + 1) / max(self.config.warmup, 1))

    def train_step(self) -> float:
        adapt_threads()  # as many CPU threads as the other processes leave cores (see ssdiff.threads)
        config = self.config
        index = batch_indices(self.step, len(self.images), config.batch_size, config.seed)
        x0 = to_unit_range(self.images[index])
        flip = torch.rand(len(index), generator=self.generator) < 0.5
        x0 = torch.where(flip.view(-1, 1, 1, 1), x0.flip(-1), x0)

        self.model.train()
        loss = diffusion_loss(self.model, x0, self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        return loss.item()

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Short-horizon warm-up of the decay so that early EMA weights are not mostly the random init.
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        for ema_param, param in zip(self.ema.parameters(), self.model.parameters()):
            ema_param.lerp_(param, 1.0 - decay)

    def checkpoint(self) -> float | None:
        """Validate the EMA weights, export them, and save the resumable state; returns the val loss."""
        val = None
        save_diffusers_folder(self.ema, self.out / "ema")
        if self.val_images is not None:
            val = validation_loss(self.ema, self.val_images, self.config.batch_size)
            if val < self.best_val:
                self.best_val = val
                save_diffusers_folder(self.ema, self.out / "best")
                if self.config.export:
                    save_diffusers_folder(self.ema, self.config.export, dtype=torch.float16)
        self.save_state()
        return val

    def write_samples(self) -> Path:
        prior = DiffusionPrior(self.ema, self.config.size, name="ema")
        samples = ddim_sample(prior, (16, 3, self.config.size, self.config.size), num_steps=50, seed=0)
        return write_image(image_grid(samples, columns=4), self.out / "samples" / f"step_{self.step:07d}.png")

    def run(self) -> None:
        config = self.config
        window, started = [], time.perf_counter()
        bar = tqdm(total=config.steps, initial=self.step, desc="training", unit="step")
        while self.step < config.steps:
            window.append(self.train_step())
            bar.update(1)
            last = self.step == config.steps
            checkpointing = self.step % config.checkpoint_every == 0 or last
            if self.step % config.log_every == 0 or checkpointing:
                rate = len(window) * config.batch_size / (time.perf_counter() - started)
                row = {"step": self.step, "loss": f"{np.mean(window):.6f}", "lr": f"{self.learning_rate(self.step - 1):.3g}",
                       "images_per_s": f"{rate:.1f}", "val_loss": ""}
                bar.set_postfix(loss=row["loss"], img_s=row["images_per_s"])
                if checkpointing:
                    val = self.checkpoint()
                    row["val_loss"] = "" if val is None else f"{val:.6f}"
                self._log(row)
                window, started = [], time.perf_counter()
            if config.sample_every and (self.step % config.sample_every == 0 or last):
                self.write_samples()
        bar.close()


def train(config: TrainConfig) -> Trainer:
    """Train (or resume) the run described by ``config``; returns the finished trainer. A run that
    fails before writing anything (no images, a bad option) leaves no empty run folder behind."""
    with output_dir(config.out):
        trainer = Trainer(config)
        trainer.run()
    return trainer
