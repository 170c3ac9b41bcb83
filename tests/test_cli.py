from pathlib import Path

import pytest
from conftest import write_images
from PIL import Image

from ssdiff.cli import main
from ssdiff.io import read_image


@pytest.fixture()
def photos(tmp_path, images) -> Path:
    return write_images(tmp_path / "photos", images, ["face0", "face1"])


@pytest.fixture()
def model_args(tiny_model_args) -> list[str]:
    # SSD as the paper runs it (at 6 calls the CLI would otherwise pick ssd-fast, untuned for this network)
    return [*tiny_model_args, "--nfe", "6", "--method", "ssd"]


def test_restore_from_clean_writes_all_outputs(photos, model_args, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["restore", str(photos), "--task", "sr_bicubic", "--scale", "4", "--from-clean", "--out", str(out),
                 *model_args]) == 0
    for stem in ("face0", "face1"):
        for suffix in ("", "_truth", "_measurement", "_compare"):
            assert (out / f"{stem}{suffix}.png").is_file()
        assert Image.open(out / f"{stem}.png").size == (32, 32)
        assert Image.open(out / f"{stem}_measurement.png").size == (8, 8)
    assert "PSNR" in capsys.readouterr().out


def test_degrade_then_restore_a_real_measurement(photos, model_args, tmp_path):
    lowres = tmp_path / "lowres"
    assert main(["degrade", str(photos / "face0.png"), "--task", "sr_bicubic", "--scale", "4", "--out", str(lowres)]) == 0
    assert Image.open(lowres / "face0.png").size == (8, 8)
    out = tmp_path / "restored"
    assert main(["restore", str(lowres), "--task", "sr_bicubic", "--scale", "4", "--out", str(out), *model_args]) == 0
    assert Image.open(out / "face0.png").size == (32, 32)  # a real 8x8 photo restores to 4x its size


def test_colorization_of_a_gray_photo(photos, model_args, tmp_path):
    gray = tmp_path / "gray.png"
    Image.open(photos / "face1.png").convert("L").save(gray)
    out = tmp_path / "color"
    assert main(["restore", str(gray), "--task", "colorization", "--out", str(out), *model_args]) == 0
    restored = read_image(out / "gray.png")
    # consistent: where no channel was clipped on saving, the channel mean reproduces the gray input
    # (up to 8-bit rounding); the tiny test network has random weights, so some pixels do clip
    unclipped = restored.abs().amax(0) < 0.99
    assert unclipped.float().mean() > 0.2
    assert (restored.mean(0) - read_image(gray)[0])[unclipped].abs().max() < 3 / 127.5


def test_existing_outputs_are_skipped_and_seeds_reproduce(photos, model_args, tmp_path):
    out = tmp_path / "out"
    args = ["restore", str(photos / "face0.png"), "--task", "deblur_gauss", "--out", str(out), "--seed", "3", *model_args]
    assert main(args) == 0
    first = (out / "face0.png").read_bytes()
    (out / "face0.png").write_bytes(b"sentinel")
    assert main(args) == 0
    assert (out / "face0.png").read_bytes() == b"sentinel"  # skipped, not overwritten
    assert main([*args, "--overwrite"]) == 0
    assert (out / "face0.png").read_bytes() == first  # same seed, same output


@pytest.mark.parametrize("argv,message", [
    (["restore", "missing.png", "--task", "sr_bicubic", "--out", "o"], "missing.png: no such file or folder"),
    (["degrade", "PHOTOS", "--task", "warp", "--out", "o"], "unknown task 'warp'"),
    (["restore", "PHOTOS", "--task", "sr_bicubic", "--out", "o", "--model", "nothing.pt"], "nothing.pt: no such file"),
])
def test_errors_are_one_clear_line(photos, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    argv = [str(photos) if a == "PHOTOS" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ssdiff: error:") and message in err[-1]
    assert not (tmp_path / "o").exists()


def test_help_names_every_method_and_task(capsys):
    from ssdiff.operators import OPERATORS
    from ssdiff.solvers import METHODS

    with pytest.raises(SystemExit):
        main(["restore", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in METHODS) and all(name in text for name in OPERATORS)


def test_help_explains_every_subcommand(capsys):
    for command in ("restore", "degrade", "demo", "train", "bench", "models"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "--" in capsys.readouterr().out


def test_models_lists_known_models_and_describes_files(golden, capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "celeba64" in listing and "256x256_diffusion_uncond.pt" in listing and "celeba_hq.ckpt" in listing
    assert main(["models", str(golden / "ddpm_model_small.safetensors")]) == 0
    described = capsys.readouterr().out
    from ssdiff.models import read_state_dict
    from ssdiff.models.loading import sha256

    path = golden / "ddpm_model_small.safetensors"
    count = sum(v.numel() for v in read_state_dict(path).values())
    assert "format:       ddpm" in described and f"parameters:   {count:,}" in described
    assert f"sha256:       {sha256(path)}" in described


def test_few_calls_default_to_ssd_fast_and_take_a_preset(photos, tiny_model_args, tmp_path, capsys):
    import json

    out = tmp_path / "fast"
    assert main(["restore", str(photos / "face0.png"), "--task", "deblur_gauss", "--nfe", "4", "--out", str(out),
                 *tiny_model_args]) == 0
    # no presets ship for the test network: one warning line, in the CLI's own words
    assert "ssdiff: warning: ssd-fast: no tuned preset for prior" in capsys.readouterr().err
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"prior": "another_prior", "presets": {"deblur_gauss": {"4": {"config": {}}}}}))
    assert main(["restore", str(photos / "face0.png"), "--task", "deblur_gauss", "--nfe", "4", "--out", str(tmp_path / "x"),
                 "--preset", str(preset), *tiny_model_args]) == 2
    assert "tuned for the prior 'another_prior'" in capsys.readouterr().err


def test_version(capsys):
    import ssdiff

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"ssdiff {ssdiff.__version__}"


def test_compare_panels_are_labelled(photos, model_args, tmp_path):
    import numpy as np

    out = tmp_path / "out"
    assert main(["restore", str(photos / "face0.png"), "--task", "deblur_gauss", "--from-clean", "--out", str(out),
                 *model_args]) == 0
    panel = np.asarray(Image.open(out / "face0_compare.png").convert("L"))
    zoom = 192 // 32  # small images are enlarged to stay readable
    assert panel.shape[0] > 32 * zoom + 30  # a caption band under the pictures
    caption = panel[32 * zoom + 8 :]
    assert (caption < 100).sum() > 100  # dark text: titles and the PSNR/SSIM line


def test_demo_warns_when_the_result_is_far_from_its_measurement(tmp_path, capsys):
    assert main(["demo", "--nfe", "3", "--method", "ssd", "--out", str(tmp_path / "demo.png")]) == 0
    err = capsys.readouterr().err
    assert "ssdiff: warning:" in err and "off its measurement" in err and "larger --nfe" in err
    assert main(["demo", "--nfe", "10", "--out", str(tmp_path / "demo.png")]) == 0
    assert "off its measurement" not in capsys.readouterr().err


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme, re.DOTALL).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - running the README is the point
    assert namespace["res"].nfe == 29 and namespace["res"].image.shape == (1, 3, 64, 64)
    assert Image.open(tmp_path / "restored.png").size == (64, 64)
