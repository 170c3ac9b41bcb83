"""Conjugate gradient against the exact pseudo-inverse: well- and ill-conditioned operators, and SSD with each.

For each SVD operator, a matrix-free twin is built from its A and its adjoint only (for the
ill-conditioned ``sr_bicubic`` and ``deblur_gauss_full``: from the *untruncated* 1-D matrices, the
degradation as it physically is, while the SVD operator drops singular values under 3e-2 per
axis). The measurement is the untruncated operator's. Printed: how far CG's ``A^+ y`` is from the
SVD operator's truncated one, the residuals ``mean |A z - y|`` of both against the real
measurement, their PSNR against the truth, and SSD@30 restorations with either back-projection.

    python benchmarks/operators.py --data ../shared/data/celeba_aligned
"""

from __future__ import annotations

import argparse

import torch

import ssdiff
from ssdiff.bench import BenchConfig, load_truths
from ssdiff.metrics import mean_psnr
from ssdiff.operators import MatrixFree, get_operator

OPERATORS = [("sr_average", {"scale": 4}), ("colorization", {}), ("inpaint", {"mask": "random:0.8"}),
             ("sr_bicubic", {"scale": 4}), ("deblur_gauss_full", {})]


def untruncated_twin(operator, size: tuple[int, int], iterations: int) -> MatrixFree:
    """The operator from its A and adjoint only; separable ones from their full 1-D matrices."""
    if hasattr(operator, "axis_svds"):
        svd_h, svd_w = operator.axis_svds(*size)
        M_h, M_w = (torch.as_tensor(svd.matrix, dtype=torch.float32) for svd in (svd_h, svd_w))
        return MatrixFree(lambda x: M_h @ x @ M_w.T, lambda y: M_h.T @ y @ M_w, name=f"cg_{operator.name}",
                          shape=(3, *size), cg_iterations=iterations)
    return MatrixFree(operator.A, operator.A_adjoint, name=f"cg_{operator.name}", shape=(3, *size), cg_iterations=iterations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/celeba_aligned")
    parser.add_argument("--images", type=int, default=32, help="validation faces 008001.. (default 32)")
    parser.add_argument("--iterations", default="20,100,500", help="CG iteration counts for the pseudo-inverse")
    parser.add_argument("--nfe", type=int, default=30)
    args = parser.parse_args()
    prior = ssdiff.load_model("celeba64")
    size = prior.resolution
    _, truths = load_truths(BenchConfig(data=args.data, out="", subset=f"8000:{8000 + args.images}", crop_top=10), size)
    counts = [int(n) for n in args.iterations.split(",")]
    print(f"{args.images} validation faces at {size[0]}x{size[1]}; measurement of the untruncated operator\n")
    print("| operator | CG steps | mean abs(CG - truncated A+y) | residual CG | residual truncated A+y | PSNR CG | "
          "PSNR truncated A+y |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    restorations = []
    for name, options in OPERATORS:
        operator = get_operator(name, image_size=size, **options)
        for count in counts:
            twin = untruncated_twin(operator, size, count)
            y = twin.A(truths)
            exact, cg = operator.A_pinv(y), twin.A_pinv(y)
            print(f"| {name} | {count} | {(cg - exact).abs().mean():.2e} | {(twin.A(cg) - y).abs().mean():.2e} | "
                  f"{(twin.A(exact) - y).abs().mean():.2e} | {mean_psnr(cg, truths):.2f} | {mean_psnr(exact, truths):.2f} |",
                  flush=True)
        if name in ("sr_bicubic", "deblur_gauss_full"):
            twin = untruncated_twin(operator, size, 100)
            y = twin.A(truths)
            for label, op in (("SVD, truncated back-projection", operator), ("matrix-free, CG back-projection (100)", twin)):
                result = ssdiff.restore(prior, op, y, method="ssd", nfe=args.nfe, seed=list(range(len(truths))))
                restorations.append((name, label, mean_psnr(result.image, truths),
                                     (twin.A(result.image.clamp(-1, 1)) - y).abs().mean().item()))
    print(f"\nSSD@{args.nfe} on the same faces and measurements:\n")
    print("| operator | back-projection | PSNR | mean abs(A x - y), untruncated A |")
    print("| --- | --- | ---: | ---: |")
    for name, label, value, residual in restorations:
        print(f"| {name} | {label} | {value:.2f} | {residual:.2e} |")


if __name__ == "__main__":
    main()
