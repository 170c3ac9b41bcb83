"""Real photos in, nothing lost: odd inputs, bad inputs, interruptions, any size."""

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ssdiff
import ssdiff.runner
from ssdiff.cli import main
from ssdiff.io import read_image
from ssdiff.runner import restore_files
from ssdiff.tasks import TaskSpec


def save_rgb(path: Path, height: int = 32, width: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR).save(path)
    return path


@pytest.fixture()
def model_args(tiny_model_args) -> list[str]:
    return [*tiny_model_args, "--nfe", "4"]


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---- bad inputs: one clear line, exit code 2, no file left behind ---------------------------------

def make_corpus(root: Path) -> dict[str, Path]:
    root.mkdir()
    good = save_rgb(root / "good.png")
    (root / "notimage.png").write_text("this is text, not a picture")
    data = good.read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    buffer = io.BytesIO()
    Image.open(good).save(buffer, format="JPEG", quality=90)
    (root / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (root / "empty").mkdir()
    (root / "a_file").write_text("x")
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(root / "mask20.png")
    save_rgb(root / "tiny.png", 8, 8)
    return {"good": good}


BAD = [
    # (argv after "restore", expected text, names a file?)
    (["notimage.png", "--task", "deblur_gauss"], "not an image file", "notimage.png"),
    (["truncated.png", "--task", "deblur_gauss"], "cannot decode image", "truncated.png"),
    (["truncated.jpg", "--task", "deblur_gauss"], "cannot decode image", "truncated.jpg"),
    (["empty", "--task", "deblur_gauss"], "folder contains no image files", "empty"),
    (["missing.png", "--task", "deblur_gauss"], "no such file or folder", "missing.png"),
    (["good.png", "--task", "inpaint", "--mask", "mask20.png"], "mask is 20x20 but the image is 32x32", "good.png"),
    (["good.png", "--task", "inpaint", "--mask", "notimage.png"], "cannot read mask image", "notimage.png"),
    (["good.png", "--task", "warp"], "unknown task 'warp'", None),
    (["good.png", "--task", "sr_bicubic", "--blur-sigma", "2"], "unknown option(s) sigma", None),
    (["good.png", "--task", "deblur_gauss", "--nfe", "2", "--method", "ssd"], "at least 3", None),
    (["good.png", "--task", "deblur_gauss", "--nfe", "1"], "leaves no generation step", None),  # ssd-fast
    (["good.png", "--task", "deblur_gauss", "--method", "magic"], "unknown method 'magic'", None),
    (["good.png", "--task", "deblur_gauss", "--method", "ddnm", "--t0", "300"], "does not take the option t0", None),
    (["good.png", "--task", "deblur_gauss", "--jpeg", "50"], "needs --from-clean", None),
    (["good.png", "--task", "cs_walsh_hadamard"], "not images; use --from-clean", "good.png"),
    (["tiny.png", "--task", "deblur_gauss"], "far smaller than the model", "tiny.png"),
    (["good.png", "--task", "deblur_gauss", "--batch-size", "0"], "--batch-size must be at least 1", None),
    (["good.png", "--task", "deblur_gauss", "--device", "cuda"], "no CUDA GPU", None),
    (["good.png", "--task", "sr_bicubic", "--frame", "crop"], "unknown frame 'crop'", None),
]


@pytest.mark.parametrize("argv,message,names", BAD, ids=[b[1] for b in BAD])
def test_bad_input_gets_one_clear_line(tmp_path, monkeypatch, capsys, model_args, argv, message, names):
    make_corpus(tmp_path / "corpus")
    monkeypatch.chdir(tmp_path / "corpus")
    if torch.cuda.is_available() and "cuda" in argv:
        pytest.skip("this machine has a GPU")
    out = tmp_path / "out"
    code = main(["restore", *model_args, *argv, "--out", str(out)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ssdiff: error:")]
    assert code == 2
    assert errors and message in errors[0], errors
    if names:
        assert names in errors[0]
    assert not out.exists()  # no partial output, not even an empty folder


def test_unwritable_output_folder(tmp_path, capsys, model_args):
    good = save_rgb(tmp_path / "good.png")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    assert main(["restore", str(good), "--task", "deblur_gauss", "--out", str(tmp_path / "blocker" / "out"), *model_args]) == 2
    assert "cannot write to the output folder" in capsys.readouterr().err


def test_truncated_checkpoint_is_a_clear_error(tmp_path, golden, capsys):
    good = save_rgb(tmp_path / "good.png")
    damaged = tmp_path / "model.safetensors"
    data = (golden / "ddpm_model_small.safetensors").read_bytes()
    damaged.write_bytes(data[: len(data) // 3])
    assert main(["restore", str(good), "--task", "deblur_gauss", "--out", str(tmp_path / "o"), "--model", str(damaged)]) == 2
    assert "model.safetensors: cannot read checkpoint" in capsys.readouterr().err


def test_a_bad_file_in_a_folder_does_not_stop_the_others(tmp_path, capsys, model_args):
    folder = tmp_path / "photos"
    folder.mkdir()
    save_rgb(folder / "a.png")
    (folder / "b.png").write_text("not a picture")
    save_rgb(folder / "c.png", seed=1)
    (folder / "notes.txt").write_text("a non-image file is skipped with a warning")
    out = tmp_path / "out"
    assert main(["restore", str(folder), "--task", "deblur_gauss", "--out", str(out), *model_args]) == 2
    err = capsys.readouterr().err
    assert "skipping 1 non-image file(s): notes.txt" in err and "b.png: not an image file" in err
    assert [p.name for p in files_in(out)] == ["a.png", "c.png"]


def test_inputs_are_never_overwritten(tmp_path, capsys, model_args):
    good = save_rgb(tmp_path / "good.png")
    before = good.read_bytes()
    assert main(["restore", str(good), "--task", "deblur_gauss", "--out", str(tmp_path), *model_args]) == 2
    assert "refusing to overwrite the input" in capsys.readouterr().err
    assert good.read_bytes() == before


def test_outputs_get_the_usual_file_permissions(tmp_path):
    from ssdiff.io import write_image

    umask = os.umask(0o022)
    try:
        path = write_image(torch.zeros(3, 8, 8), tmp_path / "out.png")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob(".*.tmp*"))


def test_nan_restorations_are_reported_not_saved(tmp_path, tiny_ddpm, capsys):
    good = save_rgb(tmp_path / "good.png")

    def broken(*args, **kwargs):
        result = ssdiff.restore(*args, **kwargs)
        result.image[:] = float("nan")
        return result

    outcome = restore_files([good], tmp_path / "out", tiny_ddpm, TaskSpec("deblur_gauss", {}), nfe=4, restore_fn=broken)
    assert outcome.failed == 1 and outcome.exit_code == 2
    assert "NaN or Inf" in capsys.readouterr().err
    assert files_in(tmp_path / "out") == []


# ---- unusual but valid images ------------------------------------------------------------------------

def test_unusual_image_modes_are_read_as_documented(tmp_path):
    transparent = np.zeros((6, 6, 4), np.uint8)  # fully transparent black -> white
    Image.fromarray(transparent, "RGBA").save(tmp_path / "rgba.png")
    assert torch.allclose(read_image(tmp_path / "rgba.png"), torch.ones(3, 6, 6))
    Image.fromarray(np.full((5, 7), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert torch.allclose(read_image(tmp_path / "deep.png"), torch.ones(3, 5, 7))
    Image.fromarray(np.full((5, 7), 0, np.uint8), "L").save(tmp_path / "gray.png")
    assert read_image(tmp_path / "gray.png").shape == (3, 5, 7)
    Image.open(save_rgb(tmp_path / "rgb.png", 6, 6)).convert("P").save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png").shape == (3, 6, 6)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.open(save_rgb(tmp_path / "wide.png", 10, 20)).save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg").shape == (3, 20, 10)


# ---- any size, every operator ------------------------------------------------------------------------

TASKS = [("sr_bicubic", ["--scale", "2"]), ("sr_average", ["--scale", "4"]), ("colorization", []), ("deblur_gauss", []),
         ("inpaint", []), ("cs_walsh_hadamard", []), ("denoise", ["--sigma-y", "0.1"])]


@pytest.mark.parametrize("size", [(27, 41), (45, 31), (70, 96)], ids=["odd", "non-square", "larger-than-model"])
@pytest.mark.parametrize("task,options", TASKS, ids=[t[0] for t in TASKS])
def test_every_operator_on_any_size(tmp_path, model_args, task, options, size):
    image = save_rgb(tmp_path / "photo.png", *size)
    out = tmp_path / "out"
    assert main(["restore", str(image), "--task", task, *options, "--from-clean", "--out", str(out), *model_args]) == 0
    assert Image.open(out / "photo.png").size == (size[1], size[0])  # cropped back to the input's size
    assert Image.open(out / "photo_truth.png").size == (size[1], size[0])


def test_real_low_resolution_photo_of_odd_size(tmp_path, model_args):
    photo = save_rgb(tmp_path / "small.png", 13, 17)
    assert main(["restore", str(photo), "--task", "sr_bicubic", "--scale", "2", "--out", str(tmp_path / "o"), *model_args]) == 0
    assert Image.open(tmp_path / "o" / "small.png").size == (34, 26)


# ---- interrupted runs ----------------------------------------------------------------------------------

def test_interrupted_folder_run_resumes_without_redoing(tmp_path, tiny_ddpm):
    folder = tmp_path / "photos"
    folder.mkdir()
    files = [save_rgb(folder / f"{name}.png", seed=i) for i, name in enumerate("abc")]
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return ssdiff.restore(*args, **kwargs)

    out = tmp_path / "out"
    spec = TaskSpec("deblur_gauss", {})
    with pytest.raises(KeyboardInterrupt):
        restore_files(files, out, tiny_ddpm, spec, nfe=4, batch_size=1, restore_fn=interrupted)
    assert [p.name for p in files_in(out)] == ["a.png"]  # finished work kept, nothing partial
    stamp = (out / "a.png").stat().st_mtime_ns
    outcome = restore_files(files, out, tiny_ddpm, spec, nfe=4)
    assert (outcome.done, outcome.skipped) == (2, 1)
    assert (out / "a.png").stat().st_mtime_ns == stamp
    assert [p.name for p in files_in(out)] == ["a.png", "b.png", "c.png"]


def test_ctrl_c_exits_130(tmp_path, monkeypatch, capsys, model_args):
    good = save_rgb(tmp_path / "good.png")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ssdiff.runner, "restore", interrupt)
    assert main(["restore", str(good), "--task", "deblur_gauss", "--out", str(tmp_path / "o"), *model_args]) == 130
    assert "rerun the same command" in capsys.readouterr().err


# ---- noisy measurements and batches --------------------------------------------------------------------

def test_degrade_simulates_noise_and_jpeg_reproducibly(tmp_path):
    photo = save_rgb(tmp_path / "photo.png", 32, 32)
    outputs = {}
    for name, extra in {"clean": [], "noisy": ["--sigma-y", "0.1"], "noisy2": ["--sigma-y", "0.1"],
                        "jpeg": ["--jpeg", "50"]}.items():
        assert main(["degrade", str(photo), "--task", "sr_bicubic", "--scale", "2", "--out", str(tmp_path / name), *extra]) == 0
        outputs[name] = read_image(tmp_path / name / "photo.png")
    assert torch.equal(outputs["noisy"], outputs["noisy2"])
    noise = (outputs["noisy"] - outputs["clean"]).std().item()
    assert 0.07 < noise < 0.13
    assert 0 < (outputs["jpeg"] - outputs["clean"]).abs().mean() < 0.2


def test_batches_of_same_sized_images(tmp_path, model_args):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        save_rgb(folder / f"{i}.png", seed=i)
    save_rgb(folder / "other.png", 40, 24)
    out = tmp_path / "out"
    assert main(["restore", str(folder), "--task", "colorization", "--from-clean", "--batch-size", "2",
                 "--out", str(out), *model_args]) == 0
    assert {p.name for p in out.glob("*.png") if "_" not in p.name} == {"0.png", "1.png", "2.png", "other.png"}


def test_output_folders_are_removed_again_only_if_this_run_made_them_and_wrote_nothing(tmp_path):
    from ssdiff.io import output_dir

    with output_dir(tmp_path / "new" / "deep"):
        pass
    assert not (tmp_path / "new").exists()  # both levels it created, empty: gone
    (tmp_path / "existing").mkdir()
    with output_dir(tmp_path / "existing"):
        pass
    assert (tmp_path / "existing").is_dir()  # the user's folder stays
    with pytest.raises(RuntimeError), output_dir(tmp_path / "failed"):
        raise RuntimeError("a run that fails")
    assert not (tmp_path / "failed").exists()
    with output_dir(tmp_path / "kept") as folder:
        (folder / "result.png").write_bytes(b"x")
    assert (tmp_path / "kept" / "result.png").is_file()
