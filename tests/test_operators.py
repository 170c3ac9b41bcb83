import pytest
import torch
import torch.nn.functional as F

from ssdiff.operators import OperatorError, get_operator
from ssdiff.operators.blur import gaussian_kernel

# (task, options, image size): every operator, on square and non-square images.
CASES = [
    ("sr_bicubic", {"scale": 2}, (32, 32)),
    ("sr_bicubic", {"scale": 4}, (32, 48)),
    ("sr_bicubic", {"scale": 8}, (64, 32)),
    ("sr_average", {"scale": 4}, (32, 48)),
    ("sr_average", {"scale": 3}, (27, 30)),
    ("colorization", {}, (32, 40)),
    ("colorization_mean", {}, (20, 12)),
    ("deblur_gauss", {}, (32, 32)),
    ("deblur_gauss", {}, (24, 40)),
    ("deblur_gauss_full", {}, (24, 40)),
    ("deblur_uniform", {}, (32, 24)),
    ("inpaint", {}, (32, 40)),
    ("cs_walsh_hadamard", {"ratio": 0.25}, (32, 32)),
    ("cs_walsh_hadamard", {"ratio": 0.5}, (16, 32)),
    ("denoise", {}, (20, 28)),
]

TOLERANCE = {torch.float64: 1e-9, torch.float32: 2e-3}


def _ids(case):
    task, options, size = case
    return f"{task}{''.join(f'-{k}{v}' for k, v in options.items())}-{size[0]}x{size[1]}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_pseudo_inverse_identities(case, dtype):
    task, options, size = case
    op = get_operator(task, image_size=size, **options)
    x = (torch.rand(3, 3, *size, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1).to(dtype)
    y = op.A(x)
    assert y.dtype == dtype and y.shape[0] == 3
    x_back = op.A_pinv(y)
    assert x_back.shape == x.shape
    scale = x.abs().max().item()
    tol = TOLERANCE[dtype] * scale
    assert (op.A(x_back) - y).abs().max() <= tol  # A A+ A = A
    assert (op.A_pinv(op.A(x_back)) - x_back).abs().max() <= tol * 10  # A+ A A+ = A+ (A+ amplifies rounding)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_projection_is_consistent_and_idempotent(case):
    task, options, size = case
    op = get_operator(task, image_size=size, **options)
    generator = torch.Generator().manual_seed(2)
    truth = torch.rand(2, 3, *size, generator=generator, dtype=torch.float64) * 2 - 1
    guess = torch.rand(2, 3, *size, generator=generator, dtype=torch.float64) * 2 - 1
    y = op.A(truth)
    projected = op.project(guess, y)
    assert torch.allclose(op.A(projected), y, atol=1e-9)
    assert torch.allclose(op.project(projected, y), projected, atol=1e-8)


def test_batch_elements_are_independent():
    op = get_operator("deblur_gauss", image_size=(32, 32))
    x = torch.rand(4, 3, 32, 32, dtype=torch.float64)
    assert torch.allclose(op.A(x)[2:3], op.A(x[2:3]))


@pytest.mark.parametrize("key,task,options", [
    ("sr_bicubic_x4", "sr_bicubic", {"scale": 4}),
    ("sr_bicubic_x8", "sr_bicubic", {"scale": 8}),
    ("colorization", "colorization", {}),
    ("deblur_gauss", "deblur_gauss", {}),
])
def test_golden_reference_operators(operator_reference, key, task, options):
    x, data = operator_reference
    op = get_operator(task, image_size=(256, 256), **options)
    y = op.A(x)
    assert y.shape == data[f"{key}_y"].shape
    assert (y - data[f"{key}_y"]).abs().max() < 1e-3
    assert (op.A_pinv(data[f"{key}_y"]) - data[f"{key}_pinv"]).abs().max() < 1e-3


def test_full_gaussian_blur_is_a_true_convolution():
    # Without truncation, the corrected variant is the 9-tap separable blur with zero padding.
    op = get_operator("deblur_gauss_full", image_size=(24, 24), zero=0.0)
    x = torch.rand(1, 3, 24, 24, dtype=torch.float64)
    k = torch.tensor(gaussian_kernel(9, 15.0), dtype=torch.float64)
    kernel = (k[:, None] * k[None, :]).expand(3, 1, 9, 9)
    assert torch.allclose(op.A(x), F.conv2d(x, kernel, padding=4, groups=3), atol=1e-12)


def test_reference_blur_drops_the_last_tap():
    op = get_operator("deblur_gauss", image_size=(16, 16), zero=0.0)
    rows = op.rows(16)
    assert rows[8, 4] > 0 and rows[8, 12] == 0  # taps i-4 .. i+3 only


def test_average_sr_pinv_repeats_pixels():
    op = get_operator("sr_average", image_size=(8, 8), scale=2)
    y = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    assert torch.allclose(op.A_pinv(y), y.repeat_interleave(2, -1).repeat_interleave(2, -2))
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    assert torch.allclose(op.A(x), F.avg_pool2d(x, 2))


def test_colorization_pinv_repeats_gray():
    op = get_operator("colorization_mean")
    y = torch.rand(2, 1, 5, 6)
    assert torch.allclose(op.A_pinv(y), y.expand(2, 3, 5, 6), atol=1e-6)
    x = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    assert torch.allclose(op.A(x), x.mean(1, keepdim=True), atol=1e-12)


def test_colorization_weighs_the_channels_as_the_released_code():
    # H = [[0.3333, 0.3334, 0.3333]] in DDRM's, DDNM's and SSD's svd_operators
    op = get_operator("colorization")
    x = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    assert torch.allclose(op.A(x), 0.3333 * x[:, :1] + 0.3334 * x[:, 1:2] + 0.3333 * x[:, 2:], atol=1e-12)
    mean = get_operator("colorization_mean").A(x)
    assert 0 < (op.A(x) - mean).abs().max() < 1e-4
    # the SVD view: V orthonormal, one singular value |w| along w / |w|
    assert torch.allclose(op.V(op.Vt(x)), x, atol=1e-12)
    coefficients = op.Vt(x)
    s = op.singular_map(x)
    assert torch.allclose(op.A(x), (s * coefficients)[:, :1], atol=1e-12)


def test_inpaint_mask_from_array_and_file(tmp_path):
    from PIL import Image
    mask = torch.ones(8, 8)
    mask[2:5, 3:6] = 0
    Image.fromarray((mask.numpy() * 255).astype("uint8")).save(tmp_path / "mask.png")
    for source in (mask, mask.numpy(), tmp_path / "mask.png"):
        op = get_operator("inpaint", mask=source)
        x = torch.rand(1, 3, 8, 8)
        assert torch.equal(op.A(x), x * mask)


@pytest.mark.parametrize("task,options,size,message", [
    ("sr_bicubic", {"scale": 4}, (30, 32), "not a multiple of the scale 4"),
    ("cs_walsh_hadamard", {}, (24, 24), "power of two"),
    ("inpaint", {"mask": torch.ones(8, 8)}, (16, 16), "mask is 8x8 but the image is 16x16"),
    ("nonsense", {}, (8, 8), "unknown task 'nonsense'"),
    ("sr_bicubic", {"scale": 4, "sigma": 2}, (32, 32), "unknown option(s) sigma"),
    ("sr_bicubic", {"scale": 0}, (32, 32), "positive integer"),
])
def test_bad_options_raise_clear_errors(task, options, size, message):
    with pytest.raises(OperatorError, match=pytest.importorskip("re").escape(message)):
        get_operator(task, image_size=size, **options)


def test_task_names_with_scale():
    assert get_operator("sr_bicubic8").name == "sr_bicubic_x8"
    assert get_operator("sr_average_x2").name == "sr_average_x2"


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_svd_view_reconstructs_the_operator(case):
    """V is orthonormal, and A^+ A = V diag(s > 0) V^T: the SVD view agrees with A and A_pinv."""
    task, options, size = case
    op = get_operator(task, image_size=size, **options)
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 2 - 1
    z = op.Vt(x)
    assert z.shape == x.shape
    assert torch.allclose(op.V(z), x, atol=1e-10)
    assert torch.allclose(z.norm(), x.norm())
    s = op.singular_map(x).expand_as(x)
    assert torch.allclose(op.Vt(op.A_pinv(op.A(x))), torch.where(s > 0, z, torch.zeros_like(z)), atol=1e-8)
    assert torch.allclose(op.A(x).norm(), (s * z).norm())  # U is orthonormal: |A x| = |S V^T x|


def test_self_check_accepts_every_operator_and_catches_a_wrong_pseudo_inverse():
    from ssdiff.operators import LinearOperator, OperatorError

    for task, options, size in CASES:
        op = get_operator(task, image_size=size, **options)
        op.check(torch.rand(1, 3, *size, dtype=torch.float64), atol=1e-8)

    class Halved(LinearOperator):  # A^+ off by a factor 2
        name = "halved"

        def A(self, x):
            return x

        def A_pinv(self, y):
            return 0.5 * y

    with pytest.raises(OperatorError, match="halved: pseudo-inverse self-check failed"):
        Halved().check(torch.ones(1, 3, 4, 4))


def test_interpolating_the_missing_pixels_keeps_the_known_ones_and_beats_zeros_on_a_smooth_image():
    from ssdiff.pipeline import interpolate_missing

    coarse = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x = F.interpolate(coarse, size=(40, 40), mode="bicubic", align_corners=False).clamp(-1, 1)
    op = get_operator("inpaint", image_size=(40, 40), mask="random:0.8")
    y = op.A(x)
    filled = interpolate_missing(y, op)
    assert torch.allclose(op.A(filled), y, atol=1e-6)  # the known pixels, kept
    assert (filled - x).abs().mean() < 0.2 * (op.A_pinv(y) - x).abs().mean()
    with pytest.raises(TypeError, match="inpainting baseline"):
        interpolate_missing(y, get_operator("colorization"))
