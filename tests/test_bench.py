import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_images

from ssdiff.cli import main


@pytest.fixture()
def faces(tmp_path, images) -> Path:
    return write_images(tmp_path / "faces", images, ["00", "01"])


@pytest.fixture()
def bench_args(faces, tiny_model_args) -> list[str]:
    return ["bench", "--data", str(faces), *tiny_model_args, "--tasks", "sr_bicubic2,colorization", "--methods", "pinv,bicubic,ssd,ddnm,dps", "--nfe", "4,6",
            "--sweep", "eta=0,0.8", "--samples", "2", "--no-fid"]  # FID has a test of its own


def quality_section(table: Path) -> str:
    return table.read_text().split("## Cost")[0]


def assert_same_quality(first: Path, second: Path) -> None:
    """The same rows and, up to float rounding of batched arithmetic, the same PSNR, SSIM and SWD."""
    def load(out):
        return {(r["task"], r["row"]): r for r in json.loads((out / "results.json").read_text())}
    a, b = load(first), load(second)
    assert a.keys() == b.keys()
    for key in a:
        for metric in ("PSNR", "SSIM", "SWD"):
            assert a[key][metric] == pytest.approx(b[key][metric], rel=1e-3, abs=1e-3), (key, metric)


def test_bench_end_to_end_and_resume(bench_args, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main([*bench_args, "--out", str(out)]) == 0
    table = (out / "table.md").read_text()
    assert "| ssd@4 |" in table and "| dps@6 |" in table and "| pinv |" in table and "## Sweep of eta" in table
    rows = json.loads((out / "results.json").read_text())
    ssd = next(r for r in rows if r["row"] == "ssd@6" and r["task"] == "sr_bicubic2")
    assert ssd["images"] == 2 and ssd["NFE"] == 5 and ssd["overhead"] > 0
    if Path("/proc/self/clear_refs").exists():  # per-batch peak memory, shown in the cost table
        assert ssd["peak_mb"] > 0 and f"| {ssd['peak_mb']:.0f} |" in table
    assert next(r for r in rows if r["row"] == "dps@4")["backward_passes"] == 4
    assert not any(r["method"] == "bicubic" and r["task"] == "colorization" for r in rows)  # SR only
    for name in ("plot_sr_bicubic2.png", "sweep_eta_colorization.png", "samples/colorization.png", "results.csv"):
        assert (out / name).is_file()
    # Resume: a second run restores nothing and gives the same quality table.
    records = sorted(out.glob("runs/**/*.json"))
    stamps = [p.stat().st_mtime_ns for p in records]
    assert main([*bench_args, "--out", str(out)]) == 0
    assert [p.stat().st_mtime_ns for p in records] == stamps
    assert quality_section(out / "table.md") in table


def test_bench_sharded_over_two_processes_matches_one(bench_args, tmp_path):
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert main([*bench_args, "--out", str(single)]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "ssdiff", *bench_args, "--out", str(sharded), "--device", "cpu"]
    finished = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert_same_quality(sharded, single)


def test_bench_batches_give_the_same_table(bench_args, tmp_path):
    one, batched = tmp_path / "one", tmp_path / "batched"
    assert main([*bench_args, "--out", str(one)]) == 0
    assert main([*bench_args, "--out", str(batched), "--batch-size", "2"]) == 0
    assert_same_quality(batched, one)


def test_bench_with_noisy_measurements(bench_args, tmp_path):
    clean, noisy = tmp_path / "clean", tmp_path / "noisy"
    args = [a for a in bench_args if a not in ("--sweep", "eta=0,0.8")]
    assert main([*args, "--out", str(clean), "--methods", "pinv"]) == 0
    assert main([*args, "--out", str(noisy), "--methods", "pinv", "--sigma-y", "0.2"]) == 0
    psnr = lambda out: {r["task"]: r["PSNR"] for r in json.loads((out / "results.json").read_text())}
    assert all(psnr(noisy)[task] < psnr(clean)[task] - 1 for task in psnr(clean))


def test_sweeps_can_be_limited_to_some_tasks():
    from ssdiff.bench import BenchConfig

    config = BenchConfig(data="d", out="o", tasks=["sr_bicubic4", "colorization"], methods=["ssd"], nfes=[30],
                         sweeps=["eta=0,1"], sweep_tasks=["sr_bicubic4"])
    swept = [run.key for run in config.runs() if run.sweep]
    assert swept == ["sr_bicubic4/ssd@30[eta=0]", "sr_bicubic4/ssd@30[eta=1]"]


def test_the_classical_baselines_run_on_their_own_tasks_only():
    from ssdiff.bench import BenchConfig

    config = BenchConfig(data="d", out="o", tasks=["sr_bicubic4", "inpaint_random80", "inpaint_box30"],
                         methods=["pinv", "bicubic", "interpolation"], nfes=[30])
    assert [run.key for run in config.runs()] == ["sr_bicubic4/pinv", "sr_bicubic4/bicubic", "inpaint_random80/pinv",
                                                  "inpaint_random80/interpolation", "inpaint_box30/pinv",
                                                  "inpaint_box30/interpolation"]


def test_ablations_can_be_limited_to_some_tasks():
    from ssdiff.bench import BenchConfig

    config = BenchConfig(data="d", out="o", tasks=["sr_bicubic4", "colorization"], methods=["ssd", "sdedit", "ssd-attn"],
                         nfes=[30], ablation_tasks=["sr_bicubic4"])
    assert [run.key for run in config.runs()] == ["sr_bicubic4/ssd@30", "sr_bicubic4/sdedit@30",
                                                  "sr_bicubic4/ssd-attn@30", "colorization/ssd@30"]


def test_methods_and_sweeps_can_have_their_own_budgets():
    from ssdiff.bench import BenchConfig

    config = BenchConfig(data="d", out="o", tasks=["sr_bicubic4"], methods=["pinv", "ssd", "sdedit@30", "ssd@100"],
                         nfes=[30, 100], sweeps=["t0=350,750"], sweep_nfes=[30])
    assert [run.row for run in config.runs()] == ["pinv", "ssd@30", "ssd@100", "sdedit@30", "ssd@30[t0=350]",
                                                  "ssd@30[t0=750]"]


def test_markdown_table_bolds_the_best_per_column_and_leaves_unmeasured_cells_blank():
    from ssdiff.bench import markdown_table

    def row(name, psnr, swd):
        return {"task": "sr", "row": name, "method": name, "nfe_budget": 0, "sweep": "", "value": "", "images": 1,
                "NFE": 0, "PSNR": psnr, "SSIM": 0.5, "SWD": swd, "consistency": 0.0, "seconds_per_image": 0.1,
                "overhead": None, "backward_passes": 0}

    table = markdown_table([row("a", 20.0, 30.0), row("b", 25.0, 40.0), row("c", 22.0, float("nan"))])
    assert "| a | 20.00 | **0.5000** | **30.00** |" in table  # SWD: lower is better
    assert "| b | **25.00** | **0.5000** | 40.00 |" in table
    assert "| c | 22.00 | **0.5000** |  |" in table  # SWD of a single image is not defined


def test_sample_grids_show_the_chosen_columns_in_order():
    from ssdiff.bench import BenchConfig

    config = BenchConfig(data="d", out="o", tasks=["sr_bicubic4", "colorization"], methods=["bicubic", "ssd", "ddnm"],
                         nfes=[30, 100])
    assert [run.row for run in config.sample_runs("sr_bicubic4")] == ["bicubic", "ssd@100", "ddnm@100"]
    config.sample_columns = ["ssd@30", "ddnm@100", "bicubic"]
    assert [run.row for run in config.sample_runs("sr_bicubic4")] == ["ssd@30", "ddnm@100", "bicubic"]
    assert [run.row for run in config.sample_runs("colorization")] == ["ssd@30", "ddnm@100"]  # bicubic is SR only


@pytest.mark.parametrize("option, value, message", [
    ("--sweep", "nonsense=1", "cannot sweep 'nonsense'"),
    ("--sample-columns", "ssd@4,ssd@5", "sample column 'ssd@5' is not a method@NFE"),
    ("--methods", "ssd,sdedit@x", "NAME@NFE"),
    ("--methods", "ssd,ddpm", "unknown method 'ddpm'"),
])
def test_bench_rejects_bad_options_before_any_work(bench_args, tmp_path, capsys, option, value, message):
    out = tmp_path / "x"
    assert main([*bench_args, "--out", str(out), option, value]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="the resident-set peak is reset through Linux /proc")
def test_peak_memory_is_measured_per_batch_not_per_process():
    from ssdiff.bench import peak_memory_mb, reset_peak_memory

    cpu = torch.device("cpu")
    assert reset_peak_memory(cpu)
    big = torch.ones(64, 2**20, dtype=torch.float32)  # 256 MB, touched
    with_big = peak_memory_mb(cpu)
    del big
    assert reset_peak_memory(cpu)
    assert peak_memory_mb(cpu) < with_big - 200


def test_bench_with_a_kernel_per_image_batched_or_not(faces, tiny_model_args, tmp_path):
    # deblur_motion blurs image i with kernel i mod 8: batches of 2 and of 1 must agree
    args = ["bench", "--data", str(faces), *tiny_model_args, "--tasks", "deblur_motion,inpaint_random80",
            "--methods", "pinv,dds@3", "--nfe", "3", "--samples", "2", "--no-fid"]
    one, batched = tmp_path / "one", tmp_path / "batched"
    assert main([*args, "--out", str(one)]) == 0
    assert main([*args, "--out", str(batched), "--batch-size", "2"]) == 0
    assert_same_quality(batched, one)
    rows = json.loads((one / "results.json").read_text())
    pinv = next(r for r in rows if r["task"] == "deblur_motion" and r["row"] == "pinv")
    assert pinv["consistency"] < 1e-3 and (one / "samples" / "deblur_motion.png").is_file()


def test_bench_adds_fid_and_kid_against_a_reference_set(faces, tiny_model_args, tmp_path):
    from ssdiff.fid import MetricsUnavailable, packaged_inception

    try:
        packaged_inception()
    except MetricsUnavailable as error:
        pytest.skip(str(error))
    more = write_images(faces, torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1, ["02", "03"])
    out = tmp_path / "bench"
    args = ["bench", "--data", str(more), *tiny_model_args, "--tasks", "sr_bicubic2", "--methods", "pinv,bicubic",
            "--subset", "0:2", "--fid-reference", "0:4", "--samples", "0", "--out", str(out)]
    assert main(args) == 0
    rows = json.loads((out / "results.json").read_text())
    # 2 restored images against 4 real ones: KID over subsets of 2, with its deviation
    assert all(r["FID"] > 0 and "KID" in r and r["KID_std"] >= 0 for r in rows)
    table = (out / "table.md").read_text()
    assert "FID and KID (x1e3) against 4 real faces (0:4 of the data)" in table and " ± " in table
    floor = float(re.search(r"The 2 true faces themselves score FID ([\d.]+)", table).group(1))
    assert 0 < floor < min(r["FID"] for r in rows)  # real faces are closer to real faces than their A+y
    with np.load(out / "fid_reference.npz") as kept:
        assert kept["features"].shape == (4, 2048)
    cached = out / "runs" / "sr_bicubic2" / "pinv" / "inception.npz"
    stamp = cached.stat().st_mtime_ns
    assert main(args) == 0 and cached.stat().st_mtime_ns == stamp  # the same images: features reused
    write_images(out / "runs" / "sr_bicubic2" / "pinv", torch.zeros(1, 3, 32, 32), ["00"])  # a changed image
    assert main(args) == 0 and cached.stat().st_mtime_ns != stamp
