import torch
from PIL import Image

import ssdiff
from ssdiff.cli import main
from ssdiff.models.catalog import CELEBA64_UNET_CONFIG


def test_builtin_prior_loads_offline_with_the_documented_shape():
    prior = ssdiff.load_model("celeba64")
    assert prior.resolution == (64, 64)
    assert list(prior.network.config.block_out_channels) == CELEBA64_UNET_CONFIG["block_out_channels"]
    assert 5_000_000 < prior.num_parameters < 7_000_000
    with torch.no_grad():
        eps = prior(torch.randn(1, 3, 64, 64), 300)
    assert eps.shape == (1, 3, 64, 64) and torch.isfinite(eps).all()


def test_demo_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--out", str(out), "--nfe", "6"]) == 0
    image = Image.open(out)
    assert image.format == "PNG" and image.width > 4 * 64 * 3
    printed = capsys.readouterr().out
    # at 6 calls the demo runs ssd-fast, which spends the whole budget
    assert str(out) in printed and "PSNR" in printed and "ssd-fast, 6 network calls" in printed
