"""Real photos with a face prior: face framing, exact consistency through the warps, bounded tiles, progress."""

import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import ssdiff
from ssdiff.demo import astronaut_face
from ssdiff.faces import (
    Similarity,
    WholePhoto,
    detect_face,
    face_template,
    feather,
    frame_face,
    plan_face,
    plan_framing,
    restore_face,
    warp,
)
from ssdiff.io import pil_to_tensor
from ssdiff.metrics import psnr
from ssdiff.models.catalog import CELEBA64
from ssdiff.pipeline import bicubic_upsample
from ssdiff.progress import Progress
from ssdiff.runner import restore_files
from ssdiff.tasks import TaskSpec

TEMPLATE = CELEBA64.face_template


@pytest.fixture(scope="module")
def celeba64():
    return ssdiff.load_model("celeba64")


@pytest.fixture(scope="module")
def portrait() -> torch.Tensor:
    """A real face photo larger than the prior, framed as users' photos are: 240 x 240 px of skimage's
    astronaut around her face, which is about 94 px wide (2.5 times the prior's faces)."""
    from skimage import data

    return pil_to_tensor(Image.fromarray(data.astronaut()[:240, 110:350]))[None]


def smooth_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    coarse = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(-1, 1)


# ---- geometry ---------------------------------------------------------------------------------------

def test_similarity_inverse_and_rescaling_are_consistent():
    sim = Similarity(0.3, 0.2, (100.0, 120.0), (32.0, 37.5))
    x, y = torch.tensor([5.0, 40.0, 63.0]), torch.tensor([7.0, 20.0, 50.0])
    sx, sy = sim.source_of(x, y)
    bx, by = sim.inverse().source_of(sx, sy)
    assert torch.allclose(bx, x, atol=1e-4) and torch.allclose(by, y, atol=1e-4)
    # the same map between grids with 4x and 2x larger pixels
    rx, ry = sim.rescaled(4, 2).source_of(x / 2, y / 2)
    assert torch.allclose(rx * 4, sx, atol=1e-4) and torch.allclose(ry * 4, sy, atol=1e-4)


def test_identity_warp_returns_the_image_and_warps_round_trip():
    image = smooth_image(48, 40)
    identity = Similarity(1.0, 0.0, (20.0, 24.0), (20.0, 24.0))
    assert torch.allclose(warp(image, identity, (48, 40)), image, atol=1e-5)
    # enlarge 2x with a tilt, then shrink back: the smooth image survives
    big = Similarity(2.0, math.radians(10), (20.0, 24.0), (48.0, 48.0))
    there = warp(image, big, (96, 96), mode="bicubic")
    back = warp(there, big.inverse(), (48, 40))
    inner = (slice(None), slice(None), slice(12, 36), slice(10, 30))
    error = (back - image)[inner].abs()
    assert error.mean() < 0.01 and error.max() < 0.06


def test_feather_is_one_inside_and_fades_to_zero_at_the_border():
    mask = feather(64, 8, torch.zeros(1))
    assert mask.shape == (1, 1, 64, 64)
    assert mask[..., 8:56, 8:56].eq(1).all()
    assert mask[..., 0, :].max() < 0.1 and mask.min() >= 0


# ---- detection and framing --------------------------------------------------------------------------

def test_detector_finds_the_face_and_frames_it_as_the_template(portrait):
    face = detect_face(portrait[0])
    assert face is not None
    x, y, side = face.box
    assert 100 < x + side / 2 < 140 and 90 < y + side / 2 < 140 and 80 < side < 110
    # the framed face is where the template says: detecting again in the frame (enlarged 3x) finds it there
    framed = frame_face(portrait[0], TEMPLATE)
    again = detect_face(F.interpolate(framed[None], scale_factor=3, mode="bicubic", align_corners=False)[0])
    cx, cy = (v / 3 for v in again.center)
    assert abs(cx - TEMPLATE.center[0]) < 2.5 and abs(cy - TEMPLATE.center[1]) < 2.5
    assert abs(again.box[2] / 3 - TEMPLATE.width) < 0.15 * TEMPLATE.width


def test_no_face_in_noise():
    assert detect_face(torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1) is None


def test_the_frame_sr_factor_is_what_is_left_once_the_face_is_at_the_prior_scale(portrait):
    for scale, expected in ((2, 1), (4, 2), (8, 4)):  # the face is 2.5x the template's
        operator = ssdiff.get_operator("sr_bicubic", image_size=(240, 240), scale=scale)
        plan = plan_face(TEMPLATE, operator, operator.A(portrait)[0])
        assert plan.frame_scale == expected, (scale, plan.magnification)


def test_demo_face_is_framed_as_the_training_faces():
    framed = astronaut_face(64)
    again = detect_face(F.interpolate(framed[None], scale_factor=3, mode="bicubic", align_corners=False)[0])
    assert abs(again.center[0] / 3 - TEMPLATE.center[0]) < 2.5 and abs(again.center[1] / 3 - TEMPLATE.center[1]) < 2.5


# ---- restoring through the frame: exactly consistent, no worse than bicubic ---------------------------

@pytest.mark.parametrize("scale", [4, 8])
def test_face_sr_through_the_frame_is_consistent_and_beats_bicubic(celeba64, portrait, scale):
    operator = ssdiff.get_operator("sr_bicubic", image_size=(240, 240), scale=scale)
    y = operator.A(portrait)
    plan = plan_face(TEMPLATE, operator, y[0])
    result = restore_face(celeba64, operator, y, plan, face_template(celeba64), ssdiff.restore,
                          method="ssd-fast", nfe=4, seed=0)
    assert result.image.shape == portrait.shape and result.nfe == 4 and result.extras["face_restored"]
    assert (operator.A(result.image) - y).abs().mean() < 1e-4  # the final projection in the photo's frame
    assert psnr(result.image[0].clamp(-1, 1), portrait[0]) > psnr(bicubic_upsample(y, operator)[0], portrait[0])


def test_a_face_already_at_the_prior_scale_keeps_the_input_detail_without_network_calls(celeba64, portrait):
    operator = ssdiff.get_operator("sr_bicubic", image_size=(240, 240), scale=2)
    y = operator.A(portrait)
    plan = plan_face(TEMPLATE, operator, y[0])
    result = restore_face(celeba64, operator, y, plan, TEMPLATE, ssdiff.restore, method="ssd", nfe=10, seed=0)
    assert result.nfe == 0 and not result.extras["face_restored"]
    assert torch.allclose(result.image, operator.project(bicubic_upsample(y, operator), y))


def test_face_colorization_keeps_the_gray_exactly_and_colours_face_and_background(celeba64, portrait):
    operator = ssdiff.get_operator("colorization")
    y = operator.A(portrait)
    plan = plan_face(TEMPLATE, operator, y[0])
    calls = []
    counted = lambda *a, **k: calls.append(a[2].shape[0]) or ssdiff.restore(*a, **k)
    result = restore_face(celeba64, operator, y, plan, TEMPLATE, counted, method="ssd-fast", nfe=4, seed=0)
    assert calls == [2]  # the face and the whole photo in one batch: the budget is spent once
    assert (operator.A(result.image) - y).abs().max() < 1e-5
    chroma = result.image - result.image.mean(dim=1, keepdim=True)
    assert chroma.abs().mean() > 0.02  # coloured, not gray


# ---- inpainting through the frame ------------------------------------------------------------------

def test_normalised_convolution_fills_a_constant_image_exactly_and_fades_inside_holes():
    from ssdiff.pipeline import fill_missing, smooth

    mask = (torch.rand(1, 1, 40, 50, generator=torch.Generator().manual_seed(0)) > 0.8).float()
    mask[..., 10:30, 10:30] = 0  # a hole wider than the blur's reach
    filled = fill_missing(torch.full((1, 3, 40, 50), 0.3) * mask, mask, sigma=1.2, floor=0.01)
    weight = smooth(mask, 1.2).expand_as(filled)
    assert torch.allclose(filled[weight >= 0.01], torch.tensor(0.3), atol=1e-5)  # the known pixels' mean
    assert (filled[weight < 0.01] - 0.3 * weight[weight < 0.01] / 0.01).abs().max() < 1e-5  # fading out
    assert filled[..., 18:22, 18:22].abs().max() == 0  # nothing known within reach: 0, not a division by ~0


def test_the_frame_pixels_are_the_mean_of_the_known_photo_pixels_under_them(portrait):
    from functools import partial

    from ssdiff.faces import frame_inpainting, frame_noise

    operator = ssdiff.get_operator("inpaint", image_size=(240, 240), mask="random:0.8")
    plan = plan_face(TEMPLATE, operator, operator.A(portrait)[0])
    to_face = partial(warp, similarity=plan.to_frame, size=(64, 64), padding="zeros")
    to_whole = partial(F.interpolate, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    constant = torch.full_like(portrait, -0.4)
    magnifications = [plan.magnification, 240 / 64]
    frame_op, y_frame, noise_map = frame_inpainting(operator, operator.A(constant), [to_face, to_whole], magnifications)
    known = frame_op.mask > 0
    assert frame_op.mask.shape == (2, 1, 64, 64) and frame_op.name == "inpaint_scattered"
    assert 0.7 < known.float().mean() < 1  # one known photo pixel per frame pixel: most of them, not all
    assert torch.allclose(y_frame[known.expand_as(y_frame)], torch.tensor(-0.4), atol=1e-4)
    assert (y_frame[~known.expand_as(y_frame)] == 0).all()
    told = frame_noise({"sigma_y": 0.1}, noise_map, y_frame.new_zeros(portrait.shape))["sigma_y"]
    assert frame_noise({"sigma_y": 0.1}, to_face, portrait)["sigma_y"] < told < 0.1  # fewer pixels averaged: more noise
    seen = float(noise_map(0.1 * torch.randn(portrait.shape, generator=torch.Generator().manual_seed(7))).std())
    assert abs(told - seen) < 0.05 * seen  # the probe is independent of the mask, drawn from seed 0 as well
    box = ssdiff.get_operator("inpaint", image_size=(240, 240), mask="box:0.3")
    frame_box, _, _ = frame_inpainting(box, box.A(constant), [to_face, to_whole], magnifications)
    assert frame_box.name == "inpaint" and frame_box.mask[0, 0, 28:36, 28:36].sum() == 0  # the hole, at the frame's scale


@pytest.mark.parametrize("mask", ["random:0.8", "mouth"])
def test_face_inpainting_through_the_frame_keeps_the_known_pixels_and_beats_tiles(celeba64, portrait, mask):
    from ssdiff.pipeline import interpolate_missing

    if mask == "mouth":  # a hole over her mouth, 45 x 30 px
        mask = torch.ones(240, 240)
        mask[130:160, 90:135] = 0
    operator = ssdiff.get_operator("inpaint", image_size=(240, 240), mask=mask)
    y = operator.A(portrait)
    plan = plan_face(TEMPLATE, operator, y[0])
    assert plan is not None  # found in the sprinkle of known pixels, or around the hole
    batches = []
    spy = lambda *a, **k: batches.append(a[1].mask.shape[0]) or ssdiff.restore(*a, **k)
    result = restore_face(celeba64, operator, y, plan, TEMPLATE, spy, method="ssd-fast", nfe=4, seed=0)
    assert batches == [2] and result.nfe == 4 and result.extras["face_restored"]  # face and photo share the calls
    assert (operator.A(result.image) - y).abs().max() < 1e-6  # the known pixels, exactly
    score = psnr(result.image[0].clamp(-1, 1), portrait[0])
    tiles = ssdiff.restore(celeba64, operator, y, method="ssd-fast", nfe=4, seed=0).image
    assert score > psnr(tiles[0].clamp(-1, 1), portrait[0]) + 1  # tiles fracture the face
    if operator.name == "inpaint":  # a hole: what the prior knows of faces, beyond what interpolation can reach
        interpolated = interpolate_missing(y, operator)
        assert score > psnr(interpolated[0], portrait[0]) + 1


@pytest.mark.parametrize("task", ["inpaint", "colorization"])
def test_without_a_face_colorization_and_inpainting_restore_the_whole_photo_in_the_frame(celeba64, task):
    """A hole over the face (or no face at all) must not go to tiles, which draw small faces in each
    tile: the whole photo, shrunk to the frame, is one image of the frame's batch, and the result
    still agrees with the measurement exactly."""
    image = smooth_image(128, 96)
    operator = ssdiff.get_operator(task, image_size=(128, 96))
    y = operator.A(image)
    plan, warning = plan_framing(celeba64, operator, y[0], "auto", "noface.png")
    assert isinstance(plan, WholePhoto)
    assert warning.startswith("noface.png: no face found; restoring the whole photo") and "enlarged 1.7x" in warning
    frames = []
    spy = lambda prior, op, y_frame, **k: frames.append(tuple(y_frame.shape)) or ssdiff.restore(prior, op, y_frame, **k)
    result = restore_face(celeba64, operator, y, plan, TEMPLATE, spy, method="ssd-fast", nfe=4, seed=0)
    assert frames == [(1, 3 if task == "inpaint" else 1, 64, 64)] and result.nfe == 4  # one frame image, no tiles
    assert result.image.shape == image.shape and not result.extras["face_restored"] and result.extras["whole_photo"]
    assert result.extras["whole_photo_magnification"] == pytest.approx(math.sqrt(128 * 96) / 64)
    assert (operator.A(result.image) - y).abs().max() < 1e-5  # the measurement, exactly
    assert plan_framing(celeba64, operator, y[0], "tiles", "noface.png") == (None, None)  # asked for tiles: tiles
    # a noisy measurement: the frame's solver is told the noise the shrink leaves
    levels = []
    spy = lambda prior, op, y_frame, **k: levels.append(k["sigma_y"]) or ssdiff.restore(prior, op, y_frame, **k)
    noisy = restore_face(celeba64, operator, y + 0.1 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1)),
                         plan, TEMPLATE, spy, method="ssd", nfe=4, seed=0, sigma_y=0.1)
    assert 0 < levels[0] < 0.1 / 1.5 and torch.isfinite(noisy.image).all()
    # a photo about the frame's size is restored in it, not "enlarged"; a long strip would come back
    # stretched, so it goes to tiles
    small = ssdiff.get_operator(task, image_size=(80, 56))
    plan, warning = plan_framing(celeba64, small, small.A(smooth_image(80, 56))[0], "auto", "small.png")
    assert isinstance(plan, WholePhoto) and "in the prior's 64 x 64 frame" in warning and "enlarged" not in warning
    strip = ssdiff.get_operator(task, image_size=(64, 160))
    plan, warning = plan_framing(celeba64, strip, strip.A(smooth_image(64, 160))[0], "auto", "strip.png")
    assert plan is None and "tiles" in warning
    sr = ssdiff.get_operator("sr_bicubic", image_size=(128, 96), scale=2)
    plan, warning = plan_framing(celeba64, sr, sr.A(image)[0], "auto", "noface.png")
    assert plan is None and "tiles" in warning  # shrinking would lose the detail SR is asked for
    with pytest.raises(ValueError, match="colorization and inpainting only"):
        restore_face(celeba64, sr, sr.A(image), WholePhoto(), TEMPLATE, ssdiff.restore, nfe=4)


# ---- the folder runner: framing decided and said before the work ------------------------------------

def test_runner_frames_faces_and_warns_about_scale_or_missing_faces(celeba64, portrait, tmp_path, capsys):
    from ssdiff.io import write_image

    folder = tmp_path / "in"
    folder.mkdir()
    write_image(portrait[0], folder / "face.png")
    write_image(smooth_image(128, 128)[0], folder / "noface.png")
    outcome = restore_files(sorted(folder.iterdir()), tmp_path / "out", celeba64, TaskSpec("sr_bicubic", {"scale": 8}),
                            method="ssd-fast", nfe=4, from_clean=True)
    assert outcome.done == 2
    captured = capsys.readouterr()
    assert "face.png: ssd-fast, 4 network calls" in captured.out and "face restored in the prior's frame (x4 SR there)" in captured.out
    assert "noface.png: no face found" in captured.err
    kept = restore_files([folder / "face.png"], tmp_path / "x2", celeba64, TaskSpec("sr_bicubic", {"scale": 2}),
                         method="ssd", nfe=10, from_clean=True)
    captured = capsys.readouterr()
    assert kept.done == 1 and "face.png: ssd, 0 network calls" in captured.out and "face kept at the input's detail" in captured.out
    assert "the prior has no detail to add" in captured.err and "celeba_hq" in captured.err  # said, with the way out
    tiles = restore_files([folder / "noface.png"], tmp_path / "tiles", celeba64, TaskSpec("sr_bicubic", {"scale": 8}),
                          method="ssd-fast", nfe=4, from_clean=True, frame="tiles")
    assert tiles.done == 1 and "no face found" not in capsys.readouterr().err
    inpainted = restore_files([folder / "face.png"], tmp_path / "inpaint", celeba64,
                              TaskSpec("inpaint", {"mask": "random:0.8"}), method="ssd-fast", nfe=4, from_clean=True)
    captured = capsys.readouterr()
    assert inpainted.done == 1 and "face.png: ssd-fast, 4 network calls" in captured.out
    assert "face restored in the prior's frame" in captured.out and "what the known pixels show" in captured.err
    write_image(smooth_image(128, 128, seed=1)[0], folder / "noface2.png")  # two of one size: each its own plan
    whole = restore_files([folder / "noface.png", folder / "noface2.png"], tmp_path / "whole", celeba64,
                          TaskSpec("inpaint", {}), method="ssd-fast", nfe=4, from_clean=True)
    captured = capsys.readouterr()
    assert whole.done == 2 and "noface.png: no face found; restoring the whole photo" in captured.err
    assert "noface2.png: ssd-fast, 4 network calls" in captured.out
    assert "no face: the whole photo restored in the prior's frame, enlarged 2.0x" in captured.out


# ---- tiles: bounded forwards, progress --------------------------------------------------------------

def test_tiles_go_through_the_network_in_bounded_batches(tiny_ddpm):
    x = smooth_image(80, 100)  # larger than the tiny network's 32 x 32: tiled
    tiles = tiny_ddpm.tiles_per_image(80, 100)
    tiny_ddpm.max_batch = None
    whole = tiny_ddpm(x, 500)
    seen = []
    tiny_ddpm.max_batch, tiny_ddpm.on_forward = 3, seen.append
    try:
        chunked = tiny_ddpm(x, 500)
    finally:
        tiny_ddpm.max_batch, tiny_ddpm.on_forward = 16, None
    # float32 convolutions of batches of 3 and of 24 take different kernels: equal to rounding (a few 1e-5
    # on some CPUs), where a tile in the wrong place would be off by O(1)
    assert tiles > 3 and torch.allclose(chunked, whole, atol=1e-4)
    assert max(seen) <= 3 and sum(seen) == tiles and len(seen) == math.ceil(tiles / 3)


def test_progress_logs_lines_when_not_a_terminal_and_announces_large_work(tiny_ddpm, capsys, monkeypatch):
    monkeypatch.setattr(Progress, "LOG_SECONDS", 0.0)
    monkeypatch.setattr(Progress, "ANNOUNCE_FORWARDS", 5)
    progress = Progress(tiny_ddpm, 1)
    x = smooth_image(80, 100)
    tiles = tiny_ddpm.tiles_per_image(80, 100)
    with progress.batch("big.png", 3, tiles):
        for _ in range(3):
            tiny_ddpm(x, 500)
    captured = capsys.readouterr()
    assert f"big.png: {tiles} images or tiles per network call, up to 3 calls" in captured.out
    assert " min" in captured.out  # an estimate of the time, measured before the work starts
    assert "network forwards" in captured.err and "s left" in captured.err  # stderr is not a terminal here
    assert tiny_ddpm.on_forward is None and progress.seconds_per_input > 0


def test_a_noisy_measurement_is_not_pasted_back_through_the_projection(celeba64, portrait):
    operator = ssdiff.get_operator("colorization")
    clean = operator.A(portrait)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    plan = plan_face(TEMPLATE, operator, clean[0])
    result = restore_face(celeba64, operator, noisy, plan, TEMPLATE, ssdiff.restore, method="ssd", nfe=6, seed=0,
                          sigma_y=0.1)
    gray = operator.A(result.image)
    x, y, side = plan.face.box
    face = (..., slice(y + side // 4, y + 3 * side // 4), slice(x + side // 4, x + 3 * side // 4))
    assert (gray - noisy)[face].abs().mean() > 0.05  # the face is not forced onto the noise
    assert torch.allclose(gray[..., :, :12], noisy[..., :, :12], atol=1e-5)  # the background keeps what was measured


def test_the_frame_solver_is_told_the_noise_level_the_warp_leaves(portrait):
    from functools import partial

    from ssdiff.faces import frame_noise

    operator = ssdiff.get_operator("colorization")
    plan = plan_face(TEMPLATE, operator, operator.A(portrait)[0])
    to_face = partial(warp, similarity=plan.to_frame, size=(64, 64))
    y = operator.A(portrait)
    told = frame_noise({"sigma_y": 0.1, "nfe": 6}, to_face, y)
    other_draw = 0.1 * torch.randn(y.shape, generator=torch.Generator().manual_seed(7))
    seen = float(to_face(other_draw).std())
    assert told["nfe"] == 6 and abs(told["sigma_y"] - seen) < 0.1 * seen
    assert told["sigma_y"] < 0.1 / 2  # a 2.5x shrink averages the noise down
    assert frame_noise({"nfe": 6}, to_face, y) == {"nfe": 6}


def test_restore_face_passes_the_frame_noise_level_and_takes_one_photo(celeba64, portrait):
    operator = ssdiff.get_operator("sr_bicubic", image_size=(240, 240), scale=8)
    y = operator.A(portrait)
    plan = plan_face(TEMPLATE, operator, y[0])
    told = []
    spy = lambda *a, **k: told.append(k["sigma_y"]) or ssdiff.restore(*a, **k)
    restore_face(celeba64, operator, y, plan, TEMPLATE, spy, method="ssd", nfe=6, seed=0, sigma_y=0.05)
    assert len(told) == 1 and 0 < told[0] < 0.05  # the frame's measurement grid is finer: the noise averages down
    with pytest.raises(ValueError, match="one photo at a time"):
        restore_face(celeba64, operator, torch.cat([y, y]), plan, TEMPLATE, ssdiff.restore, nfe=6)


def test_the_face_template_belongs_to_the_built_in_prior_only(celeba64, tiny_ddpm):
    assert face_template(celeba64) == TEMPLATE
    assert face_template(tiny_ddpm) is None  # another network: its framing is unknown, photos go in tiles


def test_a_face_cut_by_the_border_is_still_restored_consistently(celeba64):
    from skimage import data

    photo = pil_to_tensor(Image.fromarray(data.astronaut()[:240, 150:390]))[None]  # the face's left side at the edge
    operator = ssdiff.get_operator("sr_bicubic", image_size=(240, 240), scale=8)
    y = operator.A(photo)
    plan = plan_face(TEMPLATE, operator, y[0])
    assert plan is not None and plan.face.box[0] < 30
    result = restore_face(celeba64, operator, y, plan, TEMPLATE, ssdiff.restore, method="ssd-fast", nfe=4, seed=0)
    assert torch.isfinite(result.image).all() and (operator.A(result.image) - y).abs().mean() < 1e-4
    assert psnr(result.image[0].clamp(-1, 1), photo[0]) > psnr(bicubic_upsample(y, operator)[0], photo[0])


def test_the_input_is_shown_as_a_person_sees_it_and_a_call_free_result_says_why():
    from ssdiff.pipeline import display_measurement, input_title
    from ssdiff.runner import result_title
    from ssdiff.solvers import Restoration

    operator = ssdiff.get_operator("sr_bicubic", image_size=(32, 32), scale=4)
    y = operator.A(smooth_image(32, 32))[0]
    view = display_measurement(operator, y, (32, 32), "bicubic")
    assert torch.allclose(view, F.interpolate(y[None], size=(32, 32), mode="bicubic", align_corners=False)[0].clamp(-1, 1))
    assert input_title(operator) == "input (x4 bicubic)"
    gray = ssdiff.get_operator("colorization")
    assert display_measurement(gray, gray.A(smooth_image(8, 8))[0], (8, 8), "bicubic").shape == (3, 8, 8) and input_title(gray) == "input"
    kept = Restoration(torch.zeros(1, 3, 8, 8), 0, {"face_restored": False})
    assert result_title("ssd", kept) == "no detail added: face already at the prior's scale"
    assert result_title("ssd", Restoration(torch.zeros(1), 29, {})) == "ssd (29 NFE)"
