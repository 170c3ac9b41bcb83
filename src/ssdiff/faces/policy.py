"""When a photo is restored through the face frame, when whole in the frame and when in tiles
(``--frame``): the choice a folder run makes for each photo before any work, and the warning that
goes with it."""

from __future__ import annotations

import torch

from ..io import InputError
from ..operators import Colorization, Inpainting, LinearOperator
from .restoration import FacePlan, WholePhoto, face_template, framable, plan_face

FRAMES = ("auto", "tiles")

# Without a face, a photo is squeezed whole into the square frame only up to this aspect ratio;
# a longer one would come back stretched, and goes to tiles.
WHOLE_ASPECT = 2.0


def check_frame(frame: str) -> None:
    if frame not in FRAMES:
        raise InputError(f"unknown frame {frame!r}; choose from: {', '.join(FRAMES)}")


def plan_framing(prior, operator: LinearOperator, y: torch.Tensor, frame: str,
                 name: str) -> tuple[FacePlan | WholePhoto | None, str | None]:
    """Decide, before any work, how the photo ``name`` (measurement ``y``, C x h x w) is restored by
    ``prior``: its plan (None: as any image) and the warning to give about it (or None).

    With ``frame="auto"``, a face prior's super-resolution, colorization and inpainting of a larger photo
    restore its face in the prior's own framing (:mod:`ssdiff.faces`). Without a face, colorization
    and inpainting restore the whole photo shrunk to the prior's frame (:class:`WholePhoto`) if it is
    no longer than :data:`WHOLE_ASPECT` times its width; super-resolution, which would lose the
    photo's detail that way, and longer photos go through the prior in tiles of its size, as any
    image does with ``frame="tiles"``.
    """
    template = face_template(prior)
    resolution = getattr(prior, "resolution", None)
    height, width = operator.image_shape(y[None])
    if (frame == "tiles" or template is None or not framable(operator) or resolution is None
            or (height <= resolution[0] and width <= resolution[1])):
        return None, None
    plan = plan_face(template, operator, y)
    side = template.size
    squeezable = max(height, width) <= WHOLE_ASPECT * min(height, width)
    if plan is None and isinstance(operator, (Colorization, Inpainting)) and squeezable:
        magnification = (height * width) ** 0.5 / side
        where = " where the known pixels do not say" if isinstance(operator, Inpainting) else ""
        resized = (f"shrunk to the prior's {side} x {side} frame and enlarged {magnification:.1f}x back{where}: detail "
                   "finer than that is not restored" if magnification > 1.2 else f"in the prior's {side} x {side} frame")
        return WholePhoto(), (f"{name}: no face found; restoring the whole photo {resized} (crop the photo to the face "
                              "if it has one; --frame tiles restores it in tiles instead)")
    if plan is None:
        return None, (f"{name}: no face found; restoring it in {side} x {side} tiles, which show the prior parts "
                      f"of the picture at whatever scale they have: a face much larger than {side} px comes out "
                      "fractured (crop the photo to the face, or --frame tiles to silence this)")
    face_px = plan.face.box[2]
    larger = "a prior trained on larger faces, such as a 256 x 256 face model (celeba_hq.ckpt) with --frame tiles"
    if plan.frame_scale == 1 and getattr(operator, "scale", 1) > 1:
        return plan, (
            f"{name}: its face is already {face_px / operator.scale:.0f} px wide in the input, about the size "
            f"of the prior's faces ({template.width:.0f} px in its {side} x {side} frame) or larger: the prior has no detail "
            "to add, so the result is the bicubic upsampling made consistent with the measurement; real detail "
            f"at this size needs {larger}")
    if plan.magnification > 1.5:
        return plan, (
            f"{name}: its face ({face_px} px wide in the result) is restored in the prior's {side} x {side} frame "
            f"and enlarged {plan.magnification:.1f}x into the result: detail finer than the prior's {side} x {side} "
            f"faces is not restored{' (but for what the known pixels show around it)' if isinstance(operator, Inpainting) else ''}; "
            f"for that, use {larger}")
    return plan, None
