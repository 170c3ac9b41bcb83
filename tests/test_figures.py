"""The captioned panels of the demo picture and of ``ssdiff restore``'s ``_compare.png``."""

import torch
from PIL import ImageFont

from ssdiff.figures import Panel, render


def test_captions_of_small_images_do_not_overlap_the_next_panel():
    white, black = torch.ones(3, 16, 16), -torch.ones(3, 16, 16)
    panels = [Panel("ssd-fast (10 NFE)", white, {"PSNR": 19.79, "SSIM": 0.573}), Panel("truth", black)]
    canvas = render(panels, zoom=1)
    font = ImageFont.load_default(size=13)
    first_column = max(16, font.getlength("PSNR 19.79  SSIM 0.573"))
    assert canvas.width >= first_column + 16 + 3 * 6
    # the second image starts to the right of the first panel's captions
    row = [canvas.getpixel((x, 6 + 8)) for x in range(canvas.width)]
    first_black = next(x for x, pixel in enumerate(row) if pixel == (0, 0, 0))
    assert first_black >= 6 + first_column + 6


def test_small_images_are_enlarged_to_a_readable_height():
    canvas = render([Panel("x", torch.zeros(3, 32, 32))])
    assert canvas.height >= 192
