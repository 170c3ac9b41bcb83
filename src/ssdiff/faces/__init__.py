"""Faces in the prior's framing: find the face in a photo, restore it where the prior knows faces, paste it back.

A face prior such as the built-in ``celeba64`` knows whole, aligned faces at one scale (CelebA's
crops at 64 x 64). Tiles of a larger photo show it parts of a face at the wrong scale, and it
fractures them. So, as face-restoration tools do (detect -> align -> restore -> paste back):

1. OpenCV's frontal-face cascade (its model ships in the wheel) finds the largest face and its eyes
   in a picture of the measurement; a similarity (scale, rotation from the eyes, shift) maps the
   photo onto the prior's frame, where that detector puts the face where it puts it on the
   prior's own training faces (:class:`FaceTemplate`, measured by ``benchmarks/face_template.py``).
2. The measurement is resampled into the frame and restored there with the same kind of operator:
   colorization is per pixel, so the gray face resampled *is* the measurement of the colour face
   resampled (exact); for super-resolution the frame's measurement grid is the frame at the SR
   factor left once the face is at the prior's scale (``x s / k`` for a face ``k`` times larger
   than the prior's), and ``y`` resampled onto it is an interpolation of the real measurement;
   for inpainting a frame pixel, which averages the photo pixels under it, is the mean of the
   known ones among them, and counts as known when they carry a quarter of one photo pixel's
   weight or more (:func:`frame_inpainting`).
3. The restored face is warped back with a feathered mask over the background (bicubic
   upsampling for SR; for colorization and inpainting the whole photo shrunk to the frame and
   restored in the same batch, so the face and the rest share every network call), and the
   result is projected onto the real measurement in the photo's own frame,
   ``x <- x - A^+(A x - y)``: whatever the warps did, the output agrees with what was measured,
   as exactly as the operator's own projection does. Inpainting first carries the known pixels'
   detail, finer than the frame, into the gaps between them (:func:`carry_detail`). (That
   projection never moves an estimate away from a noise-free truth. With a noisy ``y``,
   ``sigma_y > 0``, only the background is projected, so the noise the frame's solver weighed
   is not pasted back onto the face.)

Without a face (a hole over it, or none in the photo), colorization and inpainting restore the
whole photo shrunk to the frame, the background member alone (:class:`WholePhoto`): one coherent
picture at the prior's scale, where tiles would draw small faces at theirs. Super-resolution,
which shrinking would rob of its detail, goes to tiles.

The modules: :mod:`.geometry` (the similarity, warps, the feathered mask), :mod:`.detection`
(step 1's cascades), :mod:`.restoration` (the plan, steps 2 and 3), :mod:`.policy` (whether a
folder run frames a photo's face, restores the whole photo in the frame, or restores it in tiles).
"""

from ..models.catalog import FaceTemplate
from .detection import Face, detect_face
from .geometry import Similarity, feather, warp
from .policy import check_frame, plan_framing
from .restoration import (
    FacePlan,
    WholePhoto,
    alignment,
    carry_detail,
    face_template,
    framable,
    frame_face,
    frame_inpainting,
    frame_noise,
    plan_face,
    restore_face,
)

__all__ = [
    "Face",
    "FacePlan",
    "FaceTemplate",
    "Similarity",
    "WholePhoto",
    "alignment",
    "carry_detail",
    "check_frame",
    "detect_face",
    "face_template",
    "feather",
    "framable",
    "frame_face",
    "frame_inpainting",
    "frame_noise",
    "plan_face",
    "plan_framing",
    "restore_face",
    "warp",
]
