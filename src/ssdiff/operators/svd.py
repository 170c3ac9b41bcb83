"""Separable operators ``A x = M_h x M_w^T`` in SVD form (the form DDRM, DDNM and SSD use).

A separable degradation is a 1-D matrix per axis applied to every channel. With the 1-D SVDs
``M = U diag(s) V^T`` the 2-D operator is ``A x = U_h (S * (V_h^T x V_w)) U_w^T`` where
``S = s_h s_w^T`` holds the 2-D singular values, and its pseudo-inverse is
``A^+ y = V_h (S^+ * (U_h^T y U_w)) V_w^T``. As in the reference code, 1-D singular values
under a cut-off (3e-2) are set to zero in both (a truncated operator and pseudo-inverse), so
``A A^+ A = A`` holds exactly. The 1-D SVDs are computed once per size in float64 and cached;
applying the operator costs four small matrix products per channel.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..limits import SVD_BYTES_PER_ENTRY, check_matrix
from .base import Decomposable, OperatorError

# The reference's cut-off for "zero" singular values of the 1-D matrices.
REFERENCE_ZERO = 3e-2

MatrixBuilder = Callable[[int], np.ndarray]


@dataclass(frozen=True)
class AxisSVD:
    """SVD of one axis's matrix ``M = U diag(s) V^T`` (``M`` is m x n; ``U`` m x m, ``V`` n x n, ``s`` length m)."""

    matrix: np.ndarray
    U: np.ndarray
    s: np.ndarray
    V: np.ndarray
    zero: float

    @property
    def s_kept(self) -> np.ndarray:
        """Singular values with those under the cut-off set to zero."""
        return np.where(self.s < self.zero, 0.0, self.s)


# The SVDs are kept by size, the most recently used first, up to this many bytes: a folder of
# photos of many sizes reuses the recent ones without holding every size's matrices for ever.
SVD_CACHE_BYTES = 512 * 2**20
_svd_cache: OrderedDict[tuple, AxisSVD] = OrderedDict()


def axis_svd(builder: MatrixBuilder, size: int, zero: float) -> AxisSVD:
    """The cached SVD of ``builder(size)``; builders are module-level functions or hashable partials."""
    key = (builder, size, zero)
    if key in _svd_cache:
        _svd_cache.move_to_end(key)
        return _svd_cache[key]
    matrix = np.asarray(builder(size), dtype=np.float64)
    U, s, Vt = np.linalg.svd(matrix, full_matrices=True)
    _svd_cache[key] = svd = AxisSVD(matrix=matrix, U=U, s=s, V=Vt.T, zero=zero)
    while len(_svd_cache) > 1 and sum(_nbytes(v) for v in _svd_cache.values()) > SVD_CACHE_BYTES:
        _svd_cache.popitem(last=False)
    return svd


def _nbytes(svd: AxisSVD) -> int:
    return svd.matrix.nbytes + svd.U.nbytes + svd.V.nbytes


class SeparableOperator(Decomposable):
    """``A x = U_h (S * (V_h^T x V_w)) U_w^T`` per channel, built for the image's own size.

    ``rows`` and ``cols`` build the (m x H) and (n x W) matrices from H and W; they must be
    hashable (e.g. :class:`ConvRows`) so the SVDs are shared. Subclasses may override
    :meth:`spectrum` to place the singular values differently per channel.
    """

    def __init__(self, rows: MatrixBuilder, cols: MatrixBuilder | None = None, zero: float = REFERENCE_ZERO,
                 scale: int = 1):
        self.scale = scale  # image size / measurement size along each axis
        self.rows = rows
        self.cols = cols or rows
        self.zero = zero
        self._factors: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def axis_svds(self, height: int, width: int) -> tuple[AxisSVD, AxisSVD]:
        self.validate(height, width)
        return axis_svd(self.rows, height, self.zero), axis_svd(self.cols, width, self.zero)

    def spectrum(self, svd_h: AxisSVD, svd_w: AxisSVD) -> np.ndarray:
        """The 2-D singular values, 1 x m x n (or C x m x n when they differ per channel)."""
        return np.outer(svd_h.s_kept, svd_w.s_kept)[None]

    def factors(self, height: int, width: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        """(U_h, V_h, U_w, V_w, S, S^+) for an H x W image, cached per size, dtype and device.

        ``V`` keeps only its first m (resp. n) columns: the others span the null space.
        """
        key = (height, width, dtype, device)
        if key not in self._factors:
            svd_h, svd_w = self.axis_svds(height, width)
            m, n = len(svd_h.s), len(svd_w.s)
            S = self.spectrum(svd_h, svd_w)
            S_pinv = np.divide(1.0, S, out=np.zeros_like(S), where=S > 0)
            arrays = (svd_h.U, svd_h.V[:, :m], svd_w.U, svd_w.V[:, :n], S, S_pinv)
            self._factors[key] = tuple(torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device) for a in arrays)
        return self._factors[key]

    def image_shape(self, y: torch.Tensor) -> tuple[int, int]:
        return y.shape[-2] * self.scale, y.shape[-1] * self.scale

    def validate(self, height: int, width: int) -> None:
        if height % self.scale or width % self.scale:
            raise OperatorError(
                f"{self.name}: image size {height}x{width} is not a multiple of the scale {self.scale}"
            )
        shortest = max(getattr(self.rows, "min_size", 1), getattr(self.cols, "min_size", 1))
        if min(height, width) < shortest:
            raise OperatorError(f"{self.name}: a {height}x{width} image is too small; each side needs at least "
                                f"{shortest} px, the reach of the operator's kernel")
        check_matrix(self.name, max(height, width))

    def workspace_bytes(self, height: int, width: int) -> int:
        # both axes' SVDs, and the singular values and their inverse (and the SVD view's map) per pixel
        return SVD_BYTES_PER_ENTRY * (height * height + width * width) + 3 * 4 * height * width

    def spectral_factors(self, height: int, width: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        """(full V_h, full V_w, singular map C' x H x W) for the SVD view, cached like :meth:`factors`."""
        key = ("spectral", height, width, dtype, device)
        if key not in self._factors:
            svd_h, svd_w = self.axis_svds(height, width)
            S = self.spectrum(svd_h, svd_w)
            full = np.zeros((S.shape[0], height, width))
            full[:, : S.shape[1], : S.shape[2]] = S
            self._factors[key] = tuple(torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)
                                       for a in (svd_h.V, svd_w.V, full))
        return self._factors[key]

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        V_h, V_w, _ = self.spectral_factors(x.shape[-2], x.shape[-1], x.dtype, x.device)
        return V_h.T @ x @ V_w

    def V(self, z: torch.Tensor) -> torch.Tensor:
        V_h, V_w, _ = self.spectral_factors(z.shape[-2], z.shape[-1], z.dtype, z.device)
        return V_h @ z @ V_w.T

    def singular_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.spectral_factors(x.shape[-2], x.shape[-1], x.dtype, x.device)[2]

    def A(self, x: torch.Tensor) -> torch.Tensor:
        U_h, V_h, U_w, V_w, S, _ = self.factors(x.shape[-2], x.shape[-1], x.dtype, x.device)
        return U_h @ (S * (V_h.T @ x @ V_w)) @ U_w.T

    def A_pinv(self, y: torch.Tensor) -> torch.Tensor:
        height, width = self.image_shape(y)
        U_h, V_h, U_w, V_w, _, S_pinv = self.factors(height, width, y.dtype, y.device)
        return V_h @ (S_pinv * (U_h.T @ y @ U_w)) @ V_w.T


@dataclass(frozen=True)
class ConvRows:
    """Builds the 1-D matrix of a strided convolution for a given size, as the reference code does.

    Output ``k`` is centred at input ``i = stride // 2 + k * stride`` and takes taps
    ``kernel[j - i + len // 2]`` for ``j`` in ``[i - len//2, i + len//2 - 1]``; for an odd
    kernel that skips its last tap (the reference's quirk, ``all_taps=False``), while
    ``all_taps=True`` runs to ``i + len//2`` for odd lengths. Out-of-range ``j`` are reflected
    (``boundary="reflect"``, half-sample symmetric) or dropped (``"zero"``). Hashable, so the
    SVD cache is shared by every operator with the same kernel.
    """

    kernel: tuple[float, ...]
    stride: int = 1
    boundary: str = "zero"
    all_taps: bool = False

    @property
    def min_size(self) -> int:
        """The shortest side the matrix can be built for: a reflected tap must land inside the image."""
        return max(len(self.kernel) // 2, self.stride) if self.boundary == "reflect" else self.stride

    def __call__(self, size: int) -> np.ndarray:
        length = len(self.kernel)
        half = length // 2
        last = half if self.all_taps and length % 2 else half - 1
        matrix = np.zeros((size // self.stride, size), dtype=np.float64)
        for k in range(size // self.stride):
            i = self.stride // 2 + k * self.stride
            for j in range(i - half, i + last + 1):
                jj = j
                if self.boundary == "reflect":
                    jj = -j - 1 if j < 0 else (2 * size - 1 - j if j >= size else j)
                elif not 0 <= j < size:
                    continue
                matrix[k, jj] += self.kernel[j - i + half]
        return matrix
