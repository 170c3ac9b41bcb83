"""Restoring a face in the prior's frame: plan it from the detected face (the alignment and the SR
factor left in the frame), carry the measurement and its noise into the frame, restore there, and
paste the face back onto the photo, consistent with the measurement (steps 2 and 3 of
:mod:`ssdiff.faces`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from ..models.catalog import FaceTemplate, find_known_model
from ..operators import Colorization, Inpainting, Kind, LinearOperator, SeparableOperator, get_operator, parse_task
from ..pipeline import INTERPOLATION_SIGMA, bicubic_upsample, fill_missing
from ..solvers.common import Restoration
from .detection import Face, detect_face
from .geometry import Similarity, feather, warp


def alignment(face: Face, template: FaceTemplate) -> Similarity:
    """The similarity that puts ``face`` where the template's training faces are (eye line level)."""
    return Similarity(template.width / face.box[2], -face.tilt, face.center, template.center)


def frame_face(image: torch.Tensor, template: FaceTemplate) -> torch.Tensor | None:
    """The largest face of ``image`` (3 x H x W in [-1, 1]) framed as the prior's training faces
    (3 x size x size), or None when no face is found."""
    face = detect_face(image)
    if face is None:
        return None
    return warp(image[None], alignment(face, template), (template.size, template.size))[0].clamp(-1, 1)


@dataclass(frozen=True)
class FacePlan:
    """How one photo's face is restored in the prior's frame."""

    face: Face
    to_frame: Similarity  # photo pixels -> frame pixels
    frame_scale: int  # the SR factor inside the frame (1: nothing left to super-resolve; colorization: 1)

    @property
    def magnification(self) -> float:
        """Photo pixels per frame pixel (> 1: the face is larger in the photo than the prior knows faces)."""
        return 1.0 / self.to_frame.scale


@dataclass(frozen=True)
class WholePhoto:
    """No face found in a photo to colorize or inpaint: the whole photo is restored shrunk to the
    prior's frame (what a face plan restores as its background) and enlarged back, rather than in
    tiles of the prior's size, where a face prior draws face parts at the tiles' scale (a hole
    over a face comes out as a grid of small faces)."""


def framable(operator: LinearOperator) -> bool:
    """Operators whose measurement can be carried into the face frame: colorization (exact), SR and
    inpainting with one mask."""
    return (isinstance(operator, Colorization) or (isinstance(operator, Inpainting) and operator.mask.shape[0] == 1)
            or (isinstance(operator, SeparableOperator) and operator.kind is Kind.SUPER_RESOLUTION))


# Between scattered known pixels (80 % missing: about 2 px apart), the detail finer than the frame
# is interpolated at this scale (INTERPOLATION_SIGMA); below this share of known weight (inside
# holes) it fades out. 0.1 and 0.03 scored within 0.1 dB of it on the training photos.
DETAIL_FLOOR = 0.01


def carry_detail(x: torch.Tensor, operator: Inpainting, y: torch.Tensor) -> torch.Tensor:
    """``x`` plus the known pixels' residual ``y - A x`` interpolated into the gaps between them: a
    restoration through the frame lacks the photo's detail finer than the frame, and around every
    missing pixel the known ones say what it was."""
    mask = operator.mask.to(y)
    return x + fill_missing(y - operator.A(x), mask, INTERPOLATION_SIGMA, DETAIL_FLOOR)


# A frame pixel counts as known when the known photo pixels under it carry this share of one photo
# pixel's worth of its weights (at most half of it). Chosen on training photos 000001..000012 (89 x
# 109, faces 1.5x the prior's, 80 % missing, ssd-fast@10): 0.25 gave 24.91 dB, 0.1 24.81, 0.5
# 23.79, 1 (one whole known pixel) 17.76, normalised convolution alone 24.36.
KNOWN_COVER = 0.25


def frame_inpainting(operator: Inpainting, y: torch.Tensor, to_frames: list[Callable[[torch.Tensor], torch.Tensor]],
                     magnifications: list[float]) -> tuple[Inpainting, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """An inpainting measurement (1 x C x h x w) carried into the frame by each of ``to_frames``
    (averaging resamplings, zero outside the photo): a frame pixel is the mean of the known photo
    pixels under it, known when they cover ``KNOWN_COVER / magnification^2`` of it (a quarter of
    one photo pixel; at most half). Returns the frame's operator (one mask per frame), its
    measurement, and the map of photo noise onto the frame's known pixels (for :func:`frame_noise`)."""
    mask = operator.mask.to(y)
    covers = [to_frame(mask) for to_frame in to_frames]
    known = torch.cat([cover >= min(0.5, KNOWN_COVER / m**2) for cover, m in zip(covers, magnifications)]).float()
    covers = torch.cat(covers).clamp_min(1e-6)

    def resample(image: torch.Tensor) -> torch.Tensor:
        return torch.cat([to_frame(image * mask) for to_frame in to_frames]) / covers * known

    return Inpainting(known), resample(y), lambda noise: resample(noise)[known.expand(-1, noise.shape[1], -1, -1) > 0]


# Inpainting's picture for the detector: the known pixels interpolated a little more smoothly
# than the interpolation baseline, since the detector wants shapes, not texture.
DETECTION_SIGMA = 2.0


def plan_face(template: FaceTemplate, operator: LinearOperator, y: torch.Tensor) -> FacePlan | None:
    """Find the face in measurement ``y`` (C x h x w) and plan its restoration, or None without a face."""
    scale = getattr(operator, "scale", 1)
    if isinstance(operator, Inpainting):  # the detector needs a whole picture, not a sprinkle of pixels
        picture = fill_missing(y[None], operator.mask.to(y), DETECTION_SIGMA)
    else:
        picture = y[None] if scale == 1 else bicubic_upsample(y[None], operator)
    face = detect_face(picture[0].clamp(-1, 1))
    if face is None:
        return None
    to_frame = alignment(face, template)
    frame_scale = 1
    if scale > 1:  # the SR factor left in the frame, the nearest (in ratio) that divides the frame
        wanted = scale * to_frame.scale
        divisors = [d for d in range(1, template.size // 4 + 1) if template.size % d == 0]
        frame_scale = min(divisors, key=lambda d: abs(math.log(d / wanted)))
    return FacePlan(face, to_frame, frame_scale)


def frame_operator(operator: LinearOperator, plan: FacePlan, size: int) -> LinearOperator:
    """The operator of the same kind acting in the frame."""
    if isinstance(operator, Colorization):
        return operator
    base, _ = parse_task(operator.name)
    return get_operator(base, image_size=(size, size), scale=plan.frame_scale)


RestoreFn = Callable[..., Restoration]


# Seeds the unit noise frame_noise measures with. Not 0: random masks are drawn from --seed (0 by
# default), and on the CPU torch's normal draws are built from the same uniform stream, so noise
# seeded like the mask would correlate with it (27 % too high a level, measured on a portrait).
NOISE_PROBE_SEED = 0x5EED


def frame_noise(kwargs: dict, to_frame: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor) -> dict:
    """``kwargs`` with ``sigma_y`` as the resampling into the frame leaves it: it averages the
    measurement's noise (a 2.5x shrink divides its std by about five), and the frame's solver must
    be told the level it sees. Measured as the std of ``to_frame`` (the resampling, or for
    inpainting the values of the frames' known pixels) applied to seeded unit noise of ``y``'s
    shape: one level per call, for the whole batch (colorization's whole-photo member, shrunk
    further, gets the face's; inpainting's level is pooled over both frames)."""
    sigma_y = kwargs.get("sigma_y", 0.0)
    if not sigma_y:
        return kwargs
    unit = torch.randn(y.shape, generator=torch.Generator().manual_seed(NOISE_PROBE_SEED), dtype=y.dtype).to(y.device)
    return {**kwargs, "sigma_y": sigma_y * float(to_frame(unit).std())}


def restore_face(prior, operator: LinearOperator, y: torch.Tensor, plan: FacePlan | WholePhoto, template: FaceTemplate,
                 restore_fn: RestoreFn, **kwargs) -> Restoration:
    """Restore one photo's measurement ``y`` (1 x C x h x w) with its face in the prior's frame (see the
    module), or with a :class:`WholePhoto` plan (colorization and inpainting) the whole photo alone."""
    if y.shape[0] != 1:
        raise ValueError(f"restore_face restores one photo at a time (its own face plan), got a batch of {y.shape[0]}")
    size = template.size
    height, width = operator.image_shape(y)
    face_plan = plan if isinstance(plan, FacePlan) else None
    whole_magnification = math.sqrt(height * width) / size  # photo pixels per frame pixel, squeezed whole
    extras: dict = ({"face_box": plan.face.box, "face_tilt_degrees": math.degrees(plan.face.tilt),
                     "frame_scale": plan.frame_scale, "magnification": plan.magnification} if face_plan
                    else {"whole_photo": True, "whole_photo_magnification": whole_magnification})
    inpainting = isinstance(operator, Inpainting)
    if inpainting or isinstance(operator, Colorization):
        # the face and the whole photo squeezed into the frame (colour is smooth, so the squeeze
        # costs little; inpainting's background is mostly known), restored in one batch: one
        # network call per step for both (zeros outside the photo for inpainting: its frame
        # knows nothing there, so the prior fills it in); without a face, the whole photo alone
        to_whole = partial(F.interpolate, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        to_frames, magnifications = [to_whole], [whole_magnification]
        if face_plan:
            to_face = partial(warp, similarity=plan.to_frame, size=(size, size), padding="zeros" if inpainting else "border")
            to_frames, magnifications = [to_face, *to_frames], [plan.magnification, *magnifications]
        if inpainting:
            frame_op, y_frame, noise_map = frame_inpainting(operator, y, to_frames, magnifications)
        else:
            frame_op, y_frame, noise_map = operator, torch.cat([to_frame(y) for to_frame in to_frames]), to_frames[0]
        result = restore_fn(prior, frame_op, y_frame, **frame_noise(kwargs, noise_map, y))
        face, whole = result.image[:-1], result.image[-1:]
        base = F.interpolate(whole, size=(height, width), mode="bicubic", align_corners=False)
    elif face_plan is None:
        raise ValueError(f"a whole-photo plan restores colorization and inpainting only, not {operator.name}")
    else:
        base = bicubic_upsample(y, operator)
        if plan.frame_scale == 1:  # the face is already at the prior's scale: nothing for it to add
            restored = operator.project(base, y)
            return Restoration(restored, 0, {**extras, "face_restored": False})
        measured = size // plan.frame_scale
        to_face = partial(warp, similarity=plan.to_frame.rescaled(operator.scale, plan.frame_scale),
                          size=(measured, measured))
        result = restore_fn(prior, frame_operator(operator, plan, size), to_face(y), **frame_noise(kwargs, to_face, y))
        face = result.image

    def paste(background: torch.Tensor) -> torch.Tensor:
        """The face warped back over ``background`` with a feathered edge (a whole-photo plan has none)."""
        if face_plan is None:
            return background
        to_photo = plan.to_frame.inverse()
        pasted = warp(face.clamp(-1, 1), to_photo, (height, width), mode="bicubic")
        mask = warp(feather(size, size / 8, face), to_photo, (height, width), padding="zeros")
        return background + mask * (pasted - background)

    # the background is what was measured (noise and all) plus what the prior adds (colour);
    # the face is the frame's restoration, projected too unless y is noisy (that would paste the
    # noise its solver weighed back onto it)
    noisy = kwargs.get("sigma_y", 0) > 0
    if inpainting and not noisy:
        # the known pixels' finer detail, carried between them over the face and the background
        # alike: before any projection, which would leave the background no residual to carry
        # (with noise it would carry the noise, so it is left out)
        blended = carry_detail(paste(base), operator, y)
    else:
        blended = paste(operator.project(base, y))
    restored = blended if noisy else operator.project(blended, y)
    return Restoration(restored, result.nfe, {**result.extras, **extras, "face_restored": face_plan is not None})


def face_template(prior) -> FaceTemplate | None:
    """The face framing ``prior`` was trained on (from its known model), or None for priors whose framing is unknown."""
    known = find_known_model(getattr(prior, "info", {}).get("known_model") or "")
    template = known.face_template if known else None
    resolution = getattr(prior, "resolution", None)
    return template if template and resolution == (template.size, template.size) else None
