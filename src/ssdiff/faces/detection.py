"""Finding a face: OpenCV's frontal-face and eye cascades (their models ship in the wheel) give the
largest face's box and the tilt of its eye line."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import torch

from ..io import InputError

# Eye pairs tilted more than this are taken as false detections (the frontal cascade itself finds
# faces up to about this tilt).
MAX_EYE_TILT = math.radians(25)


@cache
def _cascade(name: str):
    try:
        import cv2
    except ImportError:
        raise InputError("face framing needs OpenCV's cascades: pip install 'opencv-python-headless<5' "
                         "(or use --frame tiles)") from None
    classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if classifier.empty():
        raise InputError(f"OpenCV {cv2.__version__} has no {name}; pip install 'opencv-python-headless<5'")
    return classifier


@dataclass(frozen=True)
class Face:
    """A detected face: its box (x, y, side) and the tilt of its eye line (0 when the eyes were not found)."""

    box: tuple[int, int, int]
    tilt: float = 0.0

    @property
    def center(self) -> tuple[float, float]:
        x, y, side = self.box
        return x + side / 2, y + side / 2


def detect_face(image: torch.Tensor) -> Face | None:
    """The largest frontal face in ``image`` (C x H x W in [-1, 1], C = 1 or 3), or None."""
    gray = ((image.float().mean(dim=0) + 1) * 127.5).round().clamp(0, 255).byte().cpu().numpy()
    faces = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(gray, 1.1, 5, minSize=(24, 24))
    if len(faces) == 0:
        return None
    x, y, side, _ = (int(v) for v in max(faces, key=lambda box: box[2] * box[3]))
    # eyes: in the upper part of the box, one each side of its centre line
    top = gray[y : y + side * 5 // 8, x : x + side]
    eyes = _cascade("haarcascade_eye.xml").detectMultiScale(top, 1.1, 3, minSize=(max(6, side // 10),) * 2,
                                                            maxSize=(side // 3,) * 2)
    centres = sorted((ex + ew / 2, ey + eh / 2) for ex, ey, ew, eh in eyes)
    tilt = 0.0
    if len(centres) == 2 and centres[0][0] < side / 2 < centres[1][0]:
        angle = math.atan2(centres[1][1] - centres[0][1], centres[1][0] - centres[0][0])
        tilt = angle if abs(angle) <= MAX_EYE_TILT else 0.0
    return Face((x, y, side), tilt)
