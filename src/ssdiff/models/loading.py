"""load_model: open a checkpoint of any supported kind, safely and offline, as a DiffusionPrior.

Sources, in the order they are tried:
1. a known name (``celeba64``, the built-in prior shipped in the package; or a public
   checkpoint's name, looked up as a file in the folders of :func:`checkpoint_dirs`);
2. a diffusers folder (``config.json`` + weights, or a pipeline folder with ``unet/``);
3. a file: ``.safetensors`` (read first, as it cannot hold code) or a PyTorch pickle
   (``.pt``/``.ckpt``/``.pth``) read with ``weights_only=True``, so that loading never
   executes code from a checkpoint. Its architecture (OpenAI ADM, DDPM/SDEdit or diffusers)
   is detected from the key names, its configuration from the shapes (or given as ``config``).
Nothing is ever downloaded here: ``ssdiff models fetch`` (:mod:`ssdiff.models.fetch`) does that,
when asked, into :func:`cache_dir`, where a known name finds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
import torch
from diffusers import UNet2DModel

from ..errors import BudgetError
from ..limits import check_memory
from ..schedule import DEFAULT_SCHEDULE, NoiseSchedule
from .catalog import KNOWN_MODELS, KnownModel, builtin_weights_dir, find_known_model
from .convert import (
    CheckpointError,
    check_keys,
    convert_ddpm,
    convert_openai,
    ddpm_unet_config,
    detect_format,
    infer_ddpm_config,
    infer_openai_config,
    openai_unet_config,
)
from .prior import DiffusionPrior

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
CONTAINER_KEYS = ("state_dict", "model", "ema", "model_state_dict", "net")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None -> CUDA if present, else Apple MPS, else CPU; anything else as given (checked)."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CheckpointError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CheckpointError("--device mps was asked for, but Apple MPS is not available here")
    return device


ENV_HOME = "SSDIFF_HOME"


def user_cache_dir() -> Path:
    """The platform's user cache folder for ssdiff (platformdirs: ``~/.cache/ssdiff`` on Linux or
    ``$XDG_CACHE_HOME/ssdiff``, ``~/Library/Caches/ssdiff`` on macOS, ``%LOCALAPPDATA%\\ssdiff\\Cache`` on Windows)."""
    return Path(platformdirs.user_cache_dir("ssdiff", appauthor=False))


def cache_dir() -> Path:
    """Where ``ssdiff models fetch`` puts the public checkpoints: ``$SSDIFF_HOME``, else :func:`user_cache_dir`."""
    home = os.environ.get(ENV_HOME)
    return Path(home).expanduser() if home else user_cache_dir()


def checkpoint_dirs() -> list[Path]:
    """Where known checkpoints are looked for: ``$SSDIFF_HOME``, the platform's user cache folder, and
    ``~/.cache/ssdiff`` (where earlier versions looked on every platform), each once."""
    dirs = [Path(os.environ[ENV_HOME]).expanduser()] if os.environ.get(ENV_HOME) else []
    for folder in (user_cache_dir(), Path.home() / ".cache" / "ssdiff"):
        if folder not in dirs:
            dirs.append(folder)
    return dirs


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, unwrapped from common containers; never executes pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            # mmap keeps multi-GB checkpoints off the heap; only the zip format supports it.
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        text = str(error)
        if "Unsupported global" in text or "can still be loaded" in text:  # torch's words for pickled code
            raise CheckpointError(f"{path}: refused to load: the file needs code execution to unpickle "
                                  f"(only plain tensors are accepted): {text.splitlines()[0]}") from None
        detail = next((line.strip() for line in text.splitlines() if line.strip().startswith("Unsupported")), "")
        raise CheckpointError(f"{path}: cannot read checkpoint: not a PyTorch checkpoint, or truncated or corrupted"
                              + (f" ({detail})" if detail else "")) from None
    except Exception as error:  # noqa: BLE001 - torch and safetensors raise many types for damaged files
        raise CheckpointError(f"{path}: cannot read checkpoint (truncated or corrupted?): {str(error).splitlines()[0]}") from None
    for key in CONTAINER_KEYS:
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"{path}: holds no state dict of tensors")
    tensors = {k.removeprefix("module."): v for k, v in state.items() if torch.is_tensor(v)}
    if not tensors:
        raise CheckpointError(f"{path}: holds no tensors")
    return tensors


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _unet_config(fmt: str, config: Mapping[str, Any]) -> dict[str, Any]:
    return openai_unet_config(config) if fmt == "openai" else ddpm_unet_config(config)


def _matching_known_model(fmt: str, inferred: Mapping[str, Any]) -> KnownModel | None:
    """The known model that builds the same network as the configuration inferred from the weights."""
    structure = {k: v for k, v in _unet_config(fmt, inferred).items() if k != "sample_size"}
    for known in KNOWN_MODELS.values():
        if known.format == fmt:
            candidate = {k: v for k, v in _unet_config(fmt, known.config).items() if k != "sample_size"}
            if candidate == structure:
                return known
    return None


def network_from_state_dict(state: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None,
                            origin: str = "checkpoint") -> tuple[UNet2DModel, dict[str, Any]]:
    """Build the UNet2DModel for a state dict of any supported format; returns it and a description."""
    try:
        fmt = detect_format(state)
    except CheckpointError as error:
        raise CheckpointError(f"{origin}: {error}") from None
    if fmt == "diffusers":
        if config is None:
            raise CheckpointError(f"{origin}: a bare diffusers state dict needs its config (a diffusers folder has one)")
        unet_config, ref_config, known = dict(config), dict(config), None
        converted = dict(state)
    else:
        inferred = infer_openai_config(state) if fmt == "openai" else infer_ddpm_config(state)
        known = _matching_known_model(fmt, inferred)
        ref_config = dict(config) if config is not None else dict(known.config) if known else inferred
        try:
            unet_config = _unet_config(fmt, ref_config)
            converted = (convert_openai if fmt == "openai" else convert_ddpm)(state, ref_config)
        except (KeyError, CheckpointError) as error:
            raise CheckpointError(f"{origin}: does not match the {fmt} configuration: {error}") from None
    try:
        with torch.device("meta"):
            network = UNet2DModel(**unet_config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{origin}: invalid network configuration: {error}") from None
    try:
        check_keys(network, converted)
    except CheckpointError as error:
        raise CheckpointError(f"{origin}: {error}") from None
    network.load_state_dict(converted, assign=True)
    info = {"format": fmt, "config": ref_config, "known_model": known.name if known else None}
    return network, info


def _schedule_from_folder(folder: Path) -> NoiseSchedule:
    for candidate in (folder / "scheduler_config.json", folder.parent / "scheduler" / "scheduler_config.json"):
        if candidate.is_file():
            cfg = json.loads(candidate.read_text())
            if cfg.get("beta_schedule", "linear") != "linear" or cfg.get("prediction_type", "epsilon") != "epsilon":
                raise CheckpointError(f"{candidate}: only epsilon-prediction models with linear betas are supported")
            return NoiseSchedule(cfg.get("num_train_timesteps", 1000), cfg.get("beta_start", 1e-4), cfg.get("beta_end", 2e-2))
    return DEFAULT_SCHEDULE


def _check_folder_size(folder: Path) -> None:
    """Size the network that config.json describes before diffusers allocates it: built on the meta
    device (no memory), its parameters must be held by the folder's weight files (2 bytes each at
    least, float16) and fit in memory; a config.json that asks for far more is refused."""
    try:
        config = json.loads((folder / "config.json").read_text())
        with torch.device("meta"):
            parameters = sum(p.numel() for p in UNet2DModel.from_config(config).parameters())
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"{folder / 'config.json'}: not a UNet2DModel configuration: "
                              f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    stored = sum(f.stat().st_size for f in folder.glob("diffusion_pytorch_model*") if f.is_file())
    if 2 * parameters > stored + 2**20:
        raise CheckpointError(f"{folder}: config.json describes a network of {parameters:,} parameters, but the weight "
                              f"files hold {stored:,} bytes, too few for them; the folder is incomplete or its config "
                              "does not belong to it")
    try:
        check_memory(str(folder), 4 * parameters, f"a network of {parameters:,} parameters")
    except BudgetError as error:
        raise CheckpointError(str(error)) from None


def _load_diffusers_folder(folder: Path) -> tuple[UNet2DModel, dict[str, Any], NoiseSchedule]:
    if not (folder / "config.json").is_file() and (folder / "unet" / "config.json").is_file():
        folder = folder / "unet"
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: a model folder needs a config.json (a diffusers UNet2DModel folder)")
    _check_folder_size(folder)
    try:
        network = UNet2DModel.from_pretrained(str(folder), local_files_only=True, low_cpu_mem_usage=False)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{folder}: cannot load diffusers model: {str(error).splitlines()[0]}") from None
    info = {"format": "diffusers", "config": dict(network.config), "known_model": None}
    return network, info, _schedule_from_folder(folder)


def load_model(source: str | os.PathLike = "celeba64", device: str | torch.device | None = "cpu",
               config: Mapping[str, Any] | None = None, dtype: torch.dtype = torch.float32,
               channels_last: bool | None = None, compile: bool = False,
               autocast: torch.dtype | None = None) -> DiffusionPrior:
    """Load a pretrained epsilon-prediction network as a :class:`DiffusionPrior`.

    ``source`` is a known name (``"celeba64"``, ``"openai-256-uncond"``, ``"celeba-hq-256"``), a
    diffusers folder, or a checkpoint file (OpenAI guided-diffusion ``.pt``, DDPM/SDEdit
    ``.ckpt``, or ``.safetensors`` holding either). ``config`` uses the reference code's argument
    names (see ``golden/model_configs.json``) when the shapes do not determine the network.
    ``channels_last`` runs the network in channels-last memory layout; by default on the CPU,
    where it made a call of the built-in prior 1.17-1.55x cheaper (batches 1-32) with outputs
    equal to 1e-5, and not elsewhere until measured there. ``compile`` runs it through
    ``torch.compile`` (see :meth:`DiffusionPrior.compile`; falls back with a warning).
    ``autocast`` (``torch.float16`` or ``torch.bfloat16``, GPUs only) runs the network under
    mixed-precision autocast with float32 weights; ``dtype`` casts the weights themselves.
    Never downloads; raises :class:`CheckpointError` with the file and the problem otherwise.
    """
    device = resolve_device(device)
    if dtype == torch.float16 and device.type == "cpu":
        raise CheckpointError("float16 is only supported on GPUs; use float32 on the CPU")
    if autocast is not None and (autocast not in (torch.float16, torch.bfloat16) or device.type == "cpu"):
        raise CheckpointError(f"autocast to {autocast} is not supported on {device.type}: half-precision autocast "
                              "(torch.float16, torch.bfloat16) runs on GPUs; use float32 on the CPU")
    schedule = DEFAULT_SCHEDULE
    text = str(source)
    # A known name wins unless a checkpoint file or a model folder of that name exists here.
    candidate = Path(text)
    is_model_path = candidate.is_file() or (candidate / "config.json").is_file() or (candidate / "unet" / "config.json").is_file()
    known = None if is_model_path else find_known_model(text)
    if known is not None and known.format == "diffusers":
        folder = builtin_weights_dir()
        network, info, schedule = _load_diffusers_folder(folder)
        info["known_model"], path = known.name, folder
    else:
        if known is not None:
            path = _find_known_file(known)
            config = config or known.config
        else:
            path = Path(text)
        if path.is_dir():
            network, info, schedule = _load_diffusers_folder(path)
        elif path.is_file():
            network, info = network_from_state_dict(read_state_dict(path), config, origin=str(path))
        else:
            names = ", ".join(KNOWN_MODELS)
            raise CheckpointError(f"{source}: no such file or folder, and not a known model ({names})")
    network = network.to(device=device).eval().requires_grad_(False)
    if network.dtype != dtype:  # only cast when needed: diffusers warns on every dtype cast
        network = network.to(dtype=dtype)
    cfg = network.config
    out_channels, in_channels = cfg.out_channels, cfg.in_channels
    image_size = info["config"].get("image_size") or cfg.sample_size
    info.update(source=str(path), num_params=sum(p.numel() for p in network.parameters()))
    known = find_known_model(info.get("known_model") or "")  # also a file recognised as a known model's
    prior = DiffusionPrior(network=network, image_size=image_size, schedule=schedule,
                           eps_channels=min(in_channels, out_channels),
                           name=info.get("known_model") or Path(str(path)).name, info=info, autocast=autocast,
                           mean_colour=known.mean_colour if known else None)
    prior.use_channels_last(device.type == "cpu" if channels_last is None else channels_last)
    return prior.compile() if compile else prior


def _find_known_file(known: KnownModel) -> Path:
    for folder in checkpoint_dirs():
        candidate = folder / known.filename
        if candidate.is_file():
            return candidate
    places = ", ".join(str(d) for d in checkpoint_dirs())
    fetch = f"run `ssdiff models fetch {known.name}` (downloads it into {cache_dir()} and verifies it), or " if known.url else ""
    raise CheckpointError(
        f"the known model {known.name!r} needs the file {known.filename}, which is in none of {places}, and which "
        f"load_model does not download: {fetch}get it from {known.source}, then pass its path or put it in {cache_dir()}"
    )
