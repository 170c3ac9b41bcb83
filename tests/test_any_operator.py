"""Any linear degradation: blur kernels by FFT, matrix-free operators with CG, DDS, deepinv-style physics."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import write_images
from PIL import Image
from test_ssd import GaussianPrior

from ssdiff import get_operator, restore
from ssdiff.cli import main
from ssdiff.operators import MatrixFree, OperatorError, conjugate_gradient, make_kernel, parse_task
from ssdiff.operators.kernel import disk_kernel, hartley, motion_kernel
from ssdiff.solvers.common import Restoration

SPECS = ["gauss:1.5", "motion:9,30", "disk:2.5"]


def _random(*shape, seed=0, dtype=torch.float64):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


@pytest.mark.parametrize("spec", SPECS)
def test_fft_blur_is_the_circular_convolution(spec):
    op = get_operator("deblur_kernel", kernel=spec, zero=0.0)
    x = _random(2, 3, 24, 20)
    k = op.kernel
    kh, kw = k.shape
    padded = F.pad(x, (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2), mode="circular")
    direct = F.conv2d(padded.reshape(-1, 1, *padded.shape[-2:]), k.flip(0, 1)[None, None]).reshape(x.shape)
    assert torch.allclose(op.A(x), direct, atol=1e-12)


@pytest.mark.parametrize("task,options", [
    ("deblur_kernel", {"kernel": "motion:9,30"}), ("sr_kernel", {"kernel": "gauss:1.0", "scale": 4}),
    ("sr_bicubic", {"scale": 4}), ("colorization", {}), ("inpaint", {"mask": "random:0.5"}),
    ("cs_walsh_hadamard", {}),  # a B x C x m measurement
])
def test_adjoints(task, options):
    op = get_operator(task, image_size=(32, 32), **options)
    x = _random(2, 3, 32, 32)
    y = _random(*op.A(x).shape, seed=1)
    assert abs((op.A(x) * y).sum() - (x * op.A_adjoint(y)).sum()) < 1e-9 * (op.A(x) * y).abs().sum()


@pytest.mark.parametrize("spec", SPECS)
def test_kernel_blur_pseudo_inverse_and_svd_view(spec):
    op = get_operator("deblur_kernel", image_size=(24, 20), kernel=spec)
    x = _random(2, 3, 24, 20)
    assert max(op.check(x, atol=1e-10).values()) < 1e-10  # A A+ A = A and A+ A A+ = A+
    assert torch.allclose(hartley(hartley(x)), x, atol=1e-12)  # V orthonormal and its own inverse
    s = op.singular_map(x)
    # A^T A = V diag(s^2) V^T, and A+ y has the coefficients (V^T A^T y) / s^2 where s > 0
    assert torch.allclose(op.A_adjoint(op.A(x)), op.V(s**2 * op.Vt(x)), atol=1e-10)
    coefficients = op.Vt(op.A_pinv(op.A(x)))
    assert torch.allclose(coefficients, torch.where(s > 0, op.Vt(x), 0), atol=1e-10)
    assert s.max() == pytest.approx(1.0) and (s[s > 0] >= 1e-2).all()  # the cut-off


def test_kernel_specs_files_and_arrays(tmp_path):
    for spec in SPECS:
        k = make_kernel(spec)
        assert k.sum().item() == pytest.approx(1.0) and k.shape[0] % 2 == 1
        assert torch.allclose(k, k.flip(0, 1), atol=1e-12)  # all three are point-symmetric
    horizontal = motion_kernel(7, 0)
    assert (horizontal.sum(1) > 0).sum() == 1 and horizontal.sum(0)[horizontal.sum(0) > 0].size >= 7
    vertical = motion_kernel(7, 90)
    assert (vertical.sum(0) > 1e-9).sum() == 1
    disk = disk_kernel(3)
    assert disk[3, 3] == 1 and disk[0, 0] == 0 and 0 < disk[3, 0] <= 1
    array = np.outer([1, 2, 1], [1, 2, 1]).astype(np.uint8) * 20
    path = tmp_path / "kernel.png"
    Image.fromarray(array).save(path)
    assert torch.allclose(make_kernel(path), torch.from_numpy(array / array.sum()), atol=1e-12)
    assert torch.allclose(make_kernel(str(path)), make_kernel(torch.tensor(array, dtype=torch.float32)), atol=1e-7)


@pytest.mark.parametrize("kernel,message", [
    (np.zeros((0, 3)), "non-empty 2-D"), (np.zeros((3, 3)), "sums to 0"), (-np.ones((3, 3)), "positive sum"),
    (np.array([[1.0, np.nan]]), "NaN"), (np.ones(5), "2-D"), ("gauss:-1", "positive"), ("motion:5", "expected"),
    ("blur:3", "expected"), ("missing.png", "no such kernel file"),
])
def test_bad_kernels_say_what_is_wrong(kernel, message):
    with pytest.raises(OperatorError, match=message):
        get_operator("deblur_kernel", kernel=kernel)


def test_bad_kernel_files_and_sizes(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(OperatorError, match="cannot read the kernel image"):
        get_operator("deblur_kernel", kernel=broken)
    with pytest.raises(OperatorError, match="larger than the 8x8 image"):
        get_operator("deblur_kernel", image_size=(8, 8), kernel="gauss:3")
    with pytest.raises(OperatorError, match="needs a blur kernel"):
        get_operator("deblur_kernel")
    with pytest.raises(OperatorError, match="not a multiple of the scale"):
        get_operator("sr_kernel", image_size=(30, 32), kernel="gauss:1", scale=4)


def _matrix_free(op, shape):
    return MatrixFree(op.A, op.A_adjoint, name=f"cg_{op.name}", shape=shape)


@pytest.mark.parametrize("task,options", [("sr_average", {"scale": 4}), ("colorization", {}), ("inpaint", {"mask": "random:0.7"})])
def test_cg_reaches_the_exact_pseudo_inverse_of_well_conditioned_operators(task, options):
    op = get_operator(task, image_size=(32, 32), **options)
    cg = _matrix_free(op, (3, 32, 32))
    x, guess = _random(2, 3, 32, 32, dtype=torch.float32), _random(2, 3, 32, 32, seed=2, dtype=torch.float32)
    y = op.A(x)
    assert (cg.A_pinv(y) - op.A_pinv(y)).abs().max() < 1e-4
    assert (cg.project(guess, y) - op.project(guess, y)).abs().max() < 1e-4
    assert (cg.project(guess, y, rho=0.3) - op.project(guess, y, rho=0.3)).abs().max() < 1e-4


def test_conjugate_gradient_solves_each_image_on_its_own():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(12, 12, generator=g, dtype=torch.float64)
    M = M @ M.T + 12 * torch.eye(12, dtype=torch.float64)  # symmetric positive definite
    apply = lambda v: (v.flatten(1) @ M).view_as(v)
    b = torch.randn(3, 3, 2, 2, generator=g, dtype=torch.float64)
    solved = conjugate_gradient(apply, b, torch.zeros_like(b), iterations=50, tol=1e-12)
    assert torch.allclose(apply(solved), b, atol=1e-9)
    alone = conjugate_gradient(apply, b[1:2], torch.zeros_like(b[1:2]), iterations=50, tol=1e-12)
    assert torch.allclose(solved[1:2], alone, atol=1e-12)


def test_matrix_free_checks_its_adjoint():
    blur = get_operator("deblur_kernel", kernel=np.array([[1.0, 2.0, 4.0]]))
    with pytest.raises(OperatorError, match="AT is not the adjoint of A"):
        MatrixFree(blur.A, blur.A, shape=(3, 16, 16))  # a lopsided kernel's blur is not self-adjoint
    with pytest.raises(OperatorError, match="AT maps"):
        MatrixFree(blur.A, lambda y: y[..., :8], shape=(3, 16, 16))
    lazy = MatrixFree(blur.A, blur.A)  # without a shape: checked at the first image
    with pytest.raises(OperatorError, match="not the adjoint"):
        lazy.A(_random(1, 3, 16, 16))


@pytest.mark.parametrize("task,options", [
    ("deblur_kernel", {"kernel": "gauss:1.5"}), ("sr_kernel", {"kernel": "gauss:1.0", "scale": 2}),
    ("inpaint", {"mask": "random:0.8"}),
])
@pytest.mark.parametrize("method", ["dds", "ssd"])
def test_dds_and_ssd_agree_with_the_measurement(task, options, method):
    op = get_operator(task, image_size=(32, 32), **options)
    truth = (0.2 + 0.3 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))).clamp(-1, 1)
    y = op.A(truth)
    result = restore(GaussianPrior(), op, y, method=method, nfe=20, seed=0)
    # SSD ends on an exact (CG) back-projection; DDS on 5 CG steps, consistent to a few thousandths
    assert (op.A(result.image) - y).abs().mean() < (1e-2 if method == "dds" else 1e-4)
    assert result.nfe == (20 if method == "dds" else 19)
    assert abs(result.image.mean() - 0.2) < 0.03  # where y says nothing, the prior's mean (0.2) fills in


def test_dds_is_seeded_and_handles_noisy_measurements():
    op = get_operator("deblur_kernel", image_size=(16, 16), kernel="disk:2")
    truth = 0.3 * torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    y = op.A(truth)
    first, again = (restore(GaussianPrior(), op, y, method="dds", nfe=10, seed=5).image for _ in range(2))
    assert torch.equal(first, again)
    noisy = y + 0.1 * torch.randn(y.shape, generator=torch.Generator().manual_seed(6))
    smoothed = restore(GaussianPrior(), op, noisy, method="dds", nfe=10, seed=5, sigma_y=0.1)
    strict = restore(GaussianPrior(), op, noisy, method="dds", nfe=10, seed=5, cg_iterations=30)
    # the regularised system does not fit the noise: farther from y, nearer the truth
    assert (op.A(smoothed.image) - noisy).abs().mean() > (op.A(strict.image) - noisy).abs().mean()
    assert (smoothed.image - truth).square().mean() < (strict.image - truth).square().mean()


def test_svd_methods_refuse_matrix_free_operators_clearly():
    op = get_operator("sr_kernel", image_size=(16, 16), kernel="gauss:1", scale=2)
    y = op.A(_random(1, 3, 16, 16, dtype=torch.float32))
    with pytest.raises(ValueError, match="ddrm works in the operator.s SVD view, which sr_kernel_x2 does not have"):
        restore(GaussianPrior(), op, y, method="ddrm", nfe=5)
    with pytest.raises(ValueError, match="ddnm with a noisy measurement works in the operator's SVD view"):
        restore(GaussianPrior(), op, y, method="ddnm", nfe=5, sigma_y=0.05)


class MaskPhysics:
    """A deepinv-style DecomposablePhysics: random-pixel inpainting, U = V = identity, images in [0, 1]."""

    def __init__(self, mask, sigma=None):
        self.mask = mask
        if sigma is not None:
            self.noise_model = type("GaussianNoise", (), {"sigma": torch.tensor(sigma)})()

    def A(self, x):
        return self.U(self.mask * self.V_adjoint(x))

    def A_adjoint(self, y):
        return self.V(self.mask * self.U_adjoint(y))

    def U(self, x):
        return x

    U_adjoint = V = V_adjoint = U


class BlurPhysics:
    """A deepinv-style LinearPhysics without an SVD: a motion blur by A and A_adjoint only."""

    def __init__(self):
        self.blur = get_operator("deblur_kernel", kernel="motion:5,45", zero=0.0)

    def A(self, x):
        return self.blur.A(x)

    def A_adjoint(self, y):
        return self.blur.A_adjoint(y)


@pytest.mark.parametrize("physics", [MaskPhysics((torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.5).float()),
                                     BlurPhysics()])
def test_deepinv_style_physics_objects_in_their_own_range(physics):
    truth01 = (0.6 + 0.15 * torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    y01 = physics.A(truth01)
    result = restore(GaussianPrior(mu=0.2, s=0.3), physics, y01, method="ssd", nfe=10, seed=0)
    assert result.extras["physics"] == type(physics).__name__
    assert result.image.min() >= -0.01 and (physics.A(result.image) - y01).abs().mean() < 1e-3  # in [0, 1] again
    with pytest.raises(ValueError, match="SVD view") if isinstance(physics, BlurPhysics) else _no_error():
        restore(GaussianPrior(), physics, y01, method="ddrm", nfe=5)


class _no_error:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_physics_noise_level_becomes_sigma_y():
    physics = MaskPhysics(torch.ones(1, 1, 8, 8), sigma=0.05)
    y01 = physics.A(torch.full((1, 3, 8, 8), 0.5))
    result = restore(GaussianPrior(), physics, y01, method="ddnm", nfe=5, seed=0)
    assert result.extras["sigma_y"] == pytest.approx(0.1)  # deepinv's [0, 1] units are half ours


def test_random_mask_is_seeded_and_checked():
    a = get_operator("inpaint", image_size=(64, 64), mask="random:0.8", seed=3).mask
    b = get_operator("inpaint", image_size=(64, 64), mask="random:0.8", seed=3).mask
    c = get_operator("inpaint", image_size=(64, 64), mask="random:0.8", seed=4).mask
    assert torch.equal(a, b) and not torch.equal(a, c) and abs(1 - a.mean().item() - 0.8) < 0.03
    with pytest.raises(OperatorError, match=r"random:F .* in \[0, 1\)"):
        get_operator("inpaint", image_size=(8, 8), mask="random:1.2")


def test_box_mask_spec_is_the_named_box_task():
    box = get_operator("inpaint", image_size=(64, 64), mask="box:0.3").mask
    base, params = parse_task("inpaint_box30")
    assert torch.equal(box, get_operator(base, image_size=(64, 64), **params).mask)
    assert box.sum() == 64 * 64 - 19 * 19  # round(0.3 * 64) = 19 px of each side missing
    assert torch.equal(get_operator("inpaint", image_size=(64, 64), mask="box:0.5").mask,
                       get_operator("inpaint", image_size=(64, 64)).mask)  # the default box
    for bad in ("box:0", "box:1.5", "box:half", "box:"):
        with pytest.raises(OperatorError, match=r"box:F .* each side missing, in \(0, 1\]"):
            get_operator("inpaint", image_size=(8, 8), mask=bad)


def test_inpainting_is_named_after_the_kind_of_mask():
    # the ssd-fast presets are looked up by this name: scattered pixels and holes need different settings
    assert get_operator("inpaint", image_size=(64, 64), mask="random:0.8").name == "inpaint_scattered"
    assert get_operator("inpaint", image_size=(64, 64), mask="center").name == "inpaint"
    stripes = torch.ones(64, 64)
    stripes[:, ::2] = 0  # every other column lost: each missing pixel has known neighbours
    assert get_operator("inpaint", mask=stripes).name == "inpaint_scattered"
    assert get_operator("inpaint", mask=torch.ones(8, 8)).name == "inpaint"  # nothing missing
    assert get_operator("inpaint", mask=torch.zeros(8, 8)).name == "inpaint"  # everything missing: one hole
    assert get_operator("inpaint", image_size=(64, 64), mask="random:0.95").name == "inpaint"  # sparse hints in a hole
    box = get_operator("inpaint", image_size=(64, 64)).mask
    # per-image masks are judged together, pixel by pixel: the stripes' 2048 missing pixels outnumber the box's 1024
    assert get_operator("inpaint", mask=torch.cat([box, stripes[None, None]])).name == "inpaint_scattered"
    assert get_operator("inpaint", mask=torch.cat([box, box])).name == "inpaint"


def test_cli_deblurs_a_real_blurry_photo_with_its_kernel(tiny_model_args, images, tmp_path, capsys):
    photos = write_images(tmp_path / "in", images[:1], ["face"])
    args = [*tiny_model_args, "--nfe", "6", "--method", "ssd"]
    assert main(["degrade", str(photos), "--task", "deblur_kernel", "--kernel", "motion:7,30", "--out", str(tmp_path / "blurry")]) == 0
    assert main(["restore", str(tmp_path / "blurry"), "--task", "deblur_kernel", "--kernel", "motion:7,30",
                 "--out", str(tmp_path / "out"), *args]) == 0
    assert Image.open(tmp_path / "out" / "face.png").size == (32, 32)  # the mirrored border is cropped again
    assert main(["restore", str(photos), "--task", "inpaint", "--mask", "random:0.8", "--from-clean",
                 "--out", str(tmp_path / "holes"), *args]) == 0
    measurement = np.asarray(Image.open(tmp_path / "holes" / "face_measurement.png"))
    assert 0.7 < (measurement == 128).all(-1).mean() < 0.9  # 80 % of the pixels lost (0, shown mid-grey)
    capsys.readouterr()


@pytest.mark.parametrize("task,option,message", [
    ("deblur_kernel", "--kernel=gauss:0", "the size must be positive"), ("deblur_kernel", "--kernel=motion:3", "expected"),
    ("deblur_kernel", "--kernel=nothing.png", "no such kernel file"),
    ("inpaint", "--mask=box:1.5", "box:F with F, the fraction of each side missing"),
    ("inpaint", "--mask=random:1", "random:F with F, the fraction of missing pixels"),
])
def test_cli_bad_kernels_and_masks_fail_before_any_work(tiny_model_args, images, tmp_path, capsys, task, option, message):
    photos = write_images(tmp_path / "in", images[:1], ["face"])
    assert main(["restore", str(photos), "--task", task, option, "--out", str(tmp_path / "out"),
                 *tiny_model_args]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_one_kernel_per_image_equals_each_kernel_alone():
    specs = ["motion:9,30", "gauss:1.5", "disk:2"]
    stacked = get_operator("deblur_kernel", image_size=(24, 24), kernel=specs)
    side = max(make_kernel(spec).shape[0] for spec in specs)
    assert stacked.kernel.shape == (3, side, side) and stacked.support == (side, side)  # padded around their centres
    x = _random(3, 3, 24, 24)
    for i, spec in enumerate(specs):
        alone = get_operator("deblur_kernel", kernel=spec)
        assert torch.allclose(stacked.A(x)[i], alone.A(x[i : i + 1])[0], atol=1e-12)
        assert torch.allclose(stacked.A_pinv(x)[i], alone.A_pinv(x[i : i + 1])[0], atol=1e-10)
    assert max(stacked.check(x, atol=1e-10).values()) < 1e-10
    with pytest.raises(OperatorError, match="3 kernels, one per image, but a batch of 2"):
        stacked.A(x[:2])


def test_benchmark_tasks_with_fixed_kernels_and_masks():
    from ssdiff.bench import task_operator
    from ssdiff.operators.kernel import BENCHMARK_MOTION

    assert len(BENCHMARK_MOTION) == 8 and parse_task("inpaint_random80") == ("inpaint", {"mask": "random:0.8"})
    operator = task_operator("deblur_motion", (64, 64), [3, 11, 4])  # image i takes kernel i mod 8
    assert torch.equal(operator.kernels[0], operator.kernels[1]) and not torch.equal(operator.kernels[0], operator.kernels[2])
    length, angle = BENCHMARK_MOTION[3]
    alone = make_kernel(f"motion:{length},{angle}")
    top = (operator.support[0] - alone.shape[0]) // 2
    assert torch.equal(operator.kernels[0, top : top + alone.shape[0], top : top + alone.shape[1]], alone)


def test_huge_specs_exact_zeros_kernel_sets_and_negative_singular_values(images, tmp_path, capsys):
    with pytest.raises(OperatorError, match="larger than 1024 px"):
        make_kernel("gauss:100000")
    box = get_operator("deblur_kernel", image_size=(8, 8), kernel=np.ones((1, 2)), zero=0.0)  # exact zeros in |K^|
    assert torch.isfinite(box.A_pinv(_random(1, 3, 8, 8))).all()
    # a benchmark task with a set of kernels is refused for photos, with the way out
    photos = write_images(tmp_path / "in", images[:1], ["face"])
    assert main(["degrade", str(photos), "--task", "deblur_motion", "--out", str(tmp_path / "out")]) == 2
    assert "benchmark task" in capsys.readouterr().err and not (tmp_path / "out").exists()
    # a decomposable physics with negative singular values: A A+ A = A
    physics = MaskPhysics(torch.tensor([[[[1.0, -2.0], [0.5, -0.25]]]]))
    from ssdiff.operators.physics import physics_operator

    operator = physics_operator(physics, physics.A(torch.ones(1, 3, 2, 2)))
    x = _random(1, 3, 2, 2, dtype=torch.float32)
    assert torch.allclose(operator.A(operator.A_pinv(operator.A(x))), operator.A(x), atol=1e-6)


@pytest.mark.parametrize("task,scale", [("deblur_kernel", 1), ("sr_kernel", 2)])
def test_a_real_photos_blur_is_undone_on_a_larger_canvas_far_better_than_as_a_circular_blur(
        task, scale, tiny_ddpm, images, tmp_path, monkeypatch):
    from ssdiff.runner import restore_files
    from ssdiff.tasks import TaskSpec

    # a camera's blur is linear, not circular: the photo is the part of the scene's blur that saw only the scene
    kernel = make_kernel("gauss:1.5").float()
    side = kernel.shape[-1] // 2
    scene = images[:1]
    blurry = F.conv2d(scene.reshape(3, 1, 32, 32), kernel[None, None]).reshape(1, 3, 32 - 2 * side, 32 - 2 * side)
    photos = write_images(tmp_path / "in", blurry[..., ::scale, ::scale], ["face"])
    truth = scene[0, :, side:-side, side:-side]

    def pseudo_inverse(prior, operator, y, **_):
        return Restoration(operator.A_pinv(y), 0)

    def rmse(camera_blur: bool) -> float:
        if not camera_blur:  # the photo as a circular blur of an image of its own frame
            monkeypatch.setattr(TaskSpec, "photo_operator", lambda self, size: self.operator((size[0] * scale, size[1] * scale)))
        spec = TaskSpec(task, {"kernel": "gauss:1.5", **({"scale": scale} if scale > 1 else {})})
        out = tmp_path / f"out{camera_blur}"
        assert restore_files([photos / "face.png"], out, tiny_ddpm, spec, restore_fn=pseudo_inverse).exit_code == 0
        restored = torch.from_numpy(np.asarray(Image.open(out / "face.png"), dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
        assert restored.shape == truth.shape  # the canvas is cropped back to the photo's frame
        return (restored - truth).pow(2).mean().sqrt().item()

    assert rmse(camera_blur=True) < 0.5 * rmse(camera_blur=False)


def test_camera_blur_is_the_valid_part_of_the_circular_blur_and_its_adjoint_checks():
    from ssdiff.operators import ValidBlur

    x = _random(2, 3, 40, 40)
    camera = ValidBlur("motion:9,30", cg_iterations=100)
    circular = get_operator("deblur_kernel", image_size=(40, 40), kernel="motion:9,30", zero=0.0)
    m = camera.margin
    assert m == make_kernel("motion:9,30").shape[-1]
    assert torch.allclose(camera.A(x), circular.A(x)[..., m:-m, m:-m]) and camera.crop(x).shape[-1] == 40 - 2 * m
    assert camera.image_shape(camera.A(x)) == (40, 40) and camera.check_adjoint(x) < 1e-5
    y = camera.A(x)
    assert (camera.A(camera.A_pinv(y)) - y).abs().max() < 2e-3  # CG reaches the photo within a quarter of a grey level
    sr = ValidBlur("gauss:1.5", scale=4)
    assert sr.margin == 3 and sr.A(x).shape[-2:] == (4, 4) and sr.crop(x).shape[-1] == 40 - 24
    with pytest.raises(OperatorError, match="margin"):
        ValidBlur("gauss:1", margin=0)


# ---- kinds: per-task defaults follow what an operator is, not what it is called ------------------

@pytest.mark.parametrize("task,options,kind", [
    ("sr_bicubic", {"scale": 4}, "super-resolution"), ("sr_average", {"scale": 2}, "super-resolution"),
    ("sr_kernel", {"kernel": "gauss:1", "scale": 2}, "super-resolution"), ("deblur_gauss", {}, "deblurring"),
    ("deblur_uniform_full", {}, "deblurring"), ("deblur_kernel", {"kernel": "motion:5,30"}, "deblurring"),
    ("colorization", {}, "colorization"), ("colorization_mean", {}, "colorization"),
    ("inpaint", {"mask": "box:0.5"}, "inpainting"), ("inpaint", {"mask": "random:0.8"}, "inpainting-scattered"),
    ("cs_walsh_hadamard", {}, "compressed-sensing"), ("denoise", {}, "denoising"),
])
def test_every_operator_declares_its_kind(task, options, kind):
    assert get_operator(task, image_size=(32, 32), **options).kind == kind


def test_a_camera_blur_has_the_kind_of_its_circular_operator():
    from ssdiff.operators import Kind, ValidBlur

    assert ValidBlur("gauss:1").kind is Kind.DEBLURRING and ValidBlur("gauss:1", scale=2).kind is Kind.SUPER_RESOLUTION


def _as_deepinv(name: str, operator):
    """A deepinv-style physics object of class ``name`` (images in [0, 1]) doing what ``operator`` does."""
    def adjoint(self, y):
        return operator.A_adjoint(y)

    members = {"A": lambda self, x: operator.A(x), "A_adjoint": adjoint}
    if hasattr(operator, "mask"):
        members["mask"] = operator.mask
    return type(name, (), members)()


@pytest.mark.parametrize("name,task,options", [
    ("Inpainting", "inpaint", {"mask": "random:0.8"}), ("Inpainting", "inpaint", {"mask": "box:0.5"}),
    ("Blur", "deblur_gauss", {}), ("BlurFFT", "deblur_kernel", {"kernel": "motion:5,30"}),
    ("Downsampling", "sr_bicubic", {"scale": 2}), ("SuperResolution", "sr_average", {"scale": 2}),
    ("Decolorize", "colorization", {}), ("Denoising", "denoise", {}), ("CompressedSensing", "cs_walsh_hadamard", {}),
])
def test_deepinv_classes_get_the_defaults_of_their_kind(name, task, options):
    """The reported fault: deepinv's Inpainting ran DiffPIR with SR's lam/zeta (14.64 dB, not 22.00)."""
    from ssdiff.operators.physics import physics_kind

    ours = get_operator(task, image_size=(16, 16), **options)
    physics = _as_deepinv(name, ours)
    assert physics_kind(physics) == ours.kind
    truth01 = (0.6 + 0.15 * torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    for method, keys in (("ssd", ("t0", "eta")), ("diffpir", ("lam", "zeta")), ("cm4ir", ("start_t", "gamma"))):
        if method == "cm4ir" and name == "CompressedSensing":
            continue  # a B x C x m measurement: CM4IR works on images
        via_deepinv = restore(GaussianPrior(), physics, physics.A(truth01), method=method, nfe=6, seed=0).extras
        direct = restore(GaussianPrior(), ours, ours.A(truth01 * 2 - 1), method=method, nfe=6, seed=0).extras
        assert {k: via_deepinv[k] for k in keys} == {k: direct[k] for k in keys}, method


def test_an_unknown_deepinv_class_runs_with_the_other_defaults_and_says_so_once():
    from ssdiff.operators.physics import _warned

    physics = _as_deepinv("Tomography", get_operator("deblur_gauss"))
    _warned.discard("Tomography")
    y01 = physics.A(torch.full((1, 3, 16, 16), 0.5))
    with pytest.warns(UserWarning, match="deepinv's Tomography is not a degradation ssdiff knows"):
        first = restore(GaussianPrior(), physics, y01, method="ssd", nfe=6, seed=0)
    assert (first.extras["t0"], first.extras["eta"]) == (550, 0.4)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per class, not at every call
        restore(GaussianPrior(), physics, y01, method="ssd", nfe=6, seed=0)
