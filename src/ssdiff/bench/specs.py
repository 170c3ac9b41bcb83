"""What a benchmark runs: the (task, method, NFE[, sweep value]) runs of a :class:`BenchConfig`, parsed from its text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..operators import parse_task
from ..solvers import ABLATIONS, METHODS

# Methods that need no network: the pseudo-inverse alone, bicubic upsampling for SR, and the
# missing pixels interpolated from the known ones for inpainting.
DIRECT_METHODS = ("pinv", "bicubic", "interpolation")
SWEEPABLE = {"eta": ("ssd", float), "t0": ("ssd", int), "ddim_eta": ("ssd", float),
             "stop_consistency_t": ("ssd+", int), "inject_steps": ("ssd-attn", None)}


@dataclass(frozen=True)
class Run:
    task: str
    method: str
    nfe: int
    sweep: tuple[str, Any] | None = None

    @property
    def key(self) -> str:
        label = f"{self.method}@{self.nfe}" if self.method not in DIRECT_METHODS else self.method
        if self.sweep:
            label += f"[{self.sweep[0]}={_format_value(self.sweep[1])}]"
        return f"{self.task}/{label}"

    @property
    def row(self) -> str:
        return self.key.split("/", 1)[1]

    @property
    def base(self) -> str:
        """The method's name without its options: ``ssd`` for ``ssd[sampler=unipc]``."""
        return split_method(self.method)[0]

    def hparams(self) -> dict[str, Any]:
        options = split_method(self.method)[1]
        if not self.sweep:
            return options
        name, value = self.sweep
        if name == "inject_steps":
            return {**options, "inject_steps": None if value == "all" else [int(value)]}
        return {**options, name: value}


def _cast(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def split_method(text: str) -> tuple[str, dict[str, Any]]:
    """``"ssd[sampler=unipc;spacing=logsnr]"`` -> ``("ssd", {"sampler": "unipc", "spacing": "logsnr"})``."""
    name, bracket, rest = text.partition("[")
    if not bracket:
        return name, {}
    if not rest.endswith("]"):
        raise ValueError(f"method options look like NAME[KEY=VALUE;KEY=VALUE]; got {text!r}")
    options = {}
    for item in filter(None, rest[:-1].split(";")):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise ValueError(f"method options look like NAME[KEY=VALUE;KEY=VALUE]; got {text!r}")
        options[key.replace("-", "_")] = _cast(value)
    return name, options


def _format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_method(text: str, nfes: list[int]) -> tuple[str, list[int]]:
    """``"sdedit@30"`` -> ``("sdedit", [30])``; a bare name runs at every budget in ``nfes``.

    A method may carry options for its solver: ``ssd[sampler=unipc;spacing=logsnr]@10``.
    """

    name, at, budget = text.rpartition("@") if "@" in text else (text, "", "")
    if split_method(name)[0] not in METHODS and name not in DIRECT_METHODS:
        raise ValueError(f"unknown method {name!r}; choose from: {', '.join((*DIRECT_METHODS, *METHODS))}")
    if not at:
        return name, nfes
    if not budget.isdigit() or int(budget) < 1:
        raise ValueError(f"a method with its own budget looks like NAME@NFE, e.g. sdedit@30; got {text!r}")
    return name, [int(budget)]


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """``"eta=0,0.2,0.4"`` -> ``("eta", [0.0, 0.2, 0.4])``."""
    if "=" not in text:
        raise ValueError(f"a sweep looks like NAME=V1,V2,...; got {text!r}")
    name, values = text.split("=", 1)
    if name not in SWEEPABLE:
        raise ValueError(f"cannot sweep {name!r}; choose from {', '.join(SWEEPABLE)}")
    cast = SWEEPABLE[name][1]
    return name, [cast(v) if cast else v for v in values.split(",") if v]


@dataclass
class BenchConfig:
    data: str
    out: str
    model: str = "celeba64"
    model_config: dict | None = None
    tasks: list[str] = field(default_factory=lambda: ["sr_bicubic4", "sr_bicubic8", "colorization", "deblur_gauss"])
    methods: list[str] = field(default_factory=lambda: ["pinv", "ssd", "ssd+", "ddnm", "ddrm", "dps", "pigdm", "red-diff"])
    nfes: list[int] = field(default_factory=lambda: [30, 100])
    sweeps: list[str] = field(default_factory=list)
    sweep_tasks: list[str] | None = None  # the tasks the sweeps run on (default: every task)
    sweep_nfes: list[int] | None = None  # the budgets the sweeps run at (default: every budget)
    ablation_tasks: list[str] | None = None  # the tasks the SSD ablations run on (default: every task)
    limit: int | None = None
    subset: str | None = None
    crop_top: int | None = None
    seed: int = 0
    samples: int = 4
    sample_columns: list[str] | None = None  # rows (method@NFE) shown in the sample grids, in this order
    batch_size: int = 1
    sigma_y: float = 0.0
    device: str = "auto"
    lpips_weights: str | None = None
    inception_weights: str | None = None
    fid: bool = True  # FID/KID columns (when the Inception network is installed)
    fid_reference: str | None = None  # a slice of the data folder for FID/KID's real set (default: the truths)

    def runs(self) -> list[Run]:

        methods = [parse_method(entry, self.nfes) for entry in self.methods]
        sweeps = [parse_sweep(sweep) for sweep in self.sweeps]
        runs = []
        for task in self.tasks:
            for method, nfes in methods:
                if method in ABLATIONS and self.ablation_tasks is not None and task not in self.ablation_tasks:
                    continue
                if method in DIRECT_METHODS:
                    if ((method == "bicubic" and not parse_task(task)[0].startswith("sr_"))
                            or (method == "interpolation" and parse_task(task)[0] != "inpaint")):
                        continue
                    runs.append(Run(task, method, 0))
                    continue
                runs.extend(Run(task, method, nfe) for nfe in nfes)
            swept = self.sweep_tasks is None or task in self.sweep_tasks
            for name, values in sweeps if swept else []:
                method = SWEEPABLE[name][0]
                runs.extend(Run(task, method, nfe, (name, v)) for nfe in self.sweep_nfes or self.nfes for v in values)
        runs = list(dict.fromkeys(runs))  # a method listed both bare and with a budget runs once
        unknown = [c for c in self.sample_columns or [] if c not in {run.row for run in runs if not run.sweep}]
        if unknown:
            raise ValueError(f"sample column {unknown[0]!r} is not a method@NFE of this benchmark")
        return runs

    def sample_runs(self, task: str) -> list[Run]:
        """The runs shown in ``task``'s sample grid: ``sample_columns`` in order (those that exist for
        this task), else each method at its largest budget."""
        runs = [run for run in self.runs() if run.task == task and not run.sweep]
        if self.sample_columns:
            by_row = {run.row: run for run in runs}
            return [by_row[column] for column in self.sample_columns if column in by_row]
        largest: dict[str, Run] = {}
        for run in runs:
            if run.method not in largest or run.nfe > largest[run.method].nfe:
                largest[run.method] = run
        return list(largest.values())
