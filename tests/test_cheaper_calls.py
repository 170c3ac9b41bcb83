"""Cheaper network calls: encoder propagation (Faster Diffusion) and half-precision autocast."""

import numpy as np
import pytest
import torch
from torch import nn

from ssdiff import get_operator, restore
from ssdiff.cli import main
from ssdiff.models import CheckpointError, DiffusionPrior, EncoderReuseError, load_model
from ssdiff.models.encoder_reuse import decode, encode, key_calls, time_embedding


@pytest.mark.parametrize("name", ["openai_unet_small", "ddpm_model_small"])
def test_encoder_then_decoder_is_the_whole_network(golden, model_configs, name):
    network = load_model(golden / f"{name}.safetensors", config=model_configs[name]).network
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 900])
    with torch.no_grad():
        emb = time_embedding(network, t)
        assert torch.equal(decode(network, *encode(network, x, emb), emb), network(x, t).sample)


def test_decoder_only_calls_reuse_the_last_key_calls_features(tiny_ddpm):
    generator = torch.Generator().manual_seed(0)
    x_a, x_b, x_c = (torch.randn(2, 3, 32, 32, generator=generator) for _ in range(3))
    with torch.no_grad():
        full_b = tiny_ddpm(x_b, 480)
        with tiny_ddpm.reusing_encoder(3) as reuse:
            key = tiny_ddpm(x_a, 500)                    # call 0: whole network
            from_a = tiny_ddpm(x_b, 480)                 # call 1: decoder on call 0's features
            again = tiny_ddpm(x_c, 480)                  # call 2: the same, whatever the input
            fresh = tiny_ddpm(x_b, 480)                  # call 3: a key call again
        assert torch.equal(key, tiny_ddpm(x_a, 500))
        assert torch.equal(from_a, again) and not torch.allclose(from_a, full_b, atol=1e-3)
        assert torch.equal(fresh, full_b)
        assert (reuse.encoder_calls, reuse.decoder_calls) == (2, 2)
        assert tiny_ddpm.reuse is None  # only inside the block


def test_key_calls_keep_the_last_quarter_whole():
    assert key_calls(2, 10) == [0, 2, 4, 6, 8, 9]
    assert key_calls(3, 30) == [0, 3, 6, 9, 12, 15, 18, 21, 23, 24, 25, 26, 27, 28, 29]
    assert key_calls(2, 4) == [0, 2, 3] and key_calls(1, 5) == [0, 1, 2, 3, 4]
    with pytest.raises(EncoderReuseError, match="positive"):
        key_calls(0, 10)


def test_explicit_key_calls_and_bad_intervals(tiny_ddpm):
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), tiny_ddpm.reusing_encoder([2, 3]) as reuse:
        for t in (900, 800, 700, 600, 500):
            tiny_ddpm(x, t)
    assert (reuse.encoder_calls, reuse.decoder_calls) == (3, 2)  # calls 0, 2 and 3
    with pytest.raises(EncoderReuseError, match="positive call interval"), tiny_ddpm.reusing_encoder(0):
        pass
    with pytest.raises(EncoderReuseError, match="UNet2DModel"):
        DiffusionPrior(network=nn.Conv2d(3, 3, 1), image_size=32).reusing_encoder(2).__enter__()


def test_features_are_kept_per_forward_for_batches_and_tiles(tiny_ddpm):
    # 5 images of 48x40 in 32x32 tiles, at most 2 tiles per forward: many forwards per call. A
    # decoder-only call at the key call's own input and time step must give the whole network's output.
    x = torch.randn(5, 3, 48, 40, generator=torch.Generator().manual_seed(2))
    saved = tiny_ddpm.max_batch
    tiny_ddpm.max_batch = 2
    try:
        with torch.no_grad():
            whole = tiny_ddpm(x, 300)
            with tiny_ddpm.reusing_encoder(2) as reuse:
                tiny_ddpm(x, 300)
                reused = tiny_ddpm(x, 300)
    finally:
        tiny_ddpm.max_batch = saved
    assert reuse.decoder_calls == 1 and torch.allclose(reused, whole, atol=1e-6)


def test_restore_with_encoder_reuse_counts_its_calls_and_stays_consistent(device_ddpm, device_images):
    operator = get_operator("sr_bicubic", scale=4)
    y = operator.A(device_images)
    plain = restore(device_ddpm, operator, y, method="ssd", nfe=10, seed=0)
    every = restore(device_ddpm, operator, y, method="ssd", nfe=10, seed=0, reuse_encoder=1)
    assert torch.allclose(every.image, plain.image, atol=1e-5) and every.extras["decoder_only_calls"] == 0
    half = restore(device_ddpm, operator, y, method="ssd", nfe=10, seed=0, reuse_encoder=2)
    assert half.nfe == plain.nfe == 9  # SSD's budget: one call fewer than its steps
    assert (half.extras["encoder_calls"], half.extras["decoder_only_calls"]) == (5, 4)  # calls 0, 2, 4, 6, 8
    third = restore(device_ddpm, operator, y, method="ssd", nfe=10, seed=0, reuse_encoder=np.int64(3))  # any integer
    assert (third.extras["encoder_calls"], third.extras["decoder_only_calls"]) == (4, 5)  # 0, 3, 6 and 8 (the budget's last quarter)
    assert not torch.allclose(half.image, plain.image, atol=1e-3)  # a real approximation
    assert (operator.A(half.image) - y).abs().mean() < 1e-3  # back-projection keeps it consistent


@pytest.mark.parametrize("method", ["dps", "pigdm"])
def test_encoder_reuse_refuses_gradient_methods_and_analytic_priors(tiny_ddpm, images, method):
    operator = get_operator("sr_bicubic", scale=4)
    with pytest.raises(ValueError, match=f"does not work with {method}"):
        restore(tiny_ddpm, operator, operator.A(images), method=method, nfe=4, reuse_encoder=2)
    with pytest.raises(ValueError, match="needs a UNet prior"):
        restore(lambda x, t: torch.zeros_like(x), operator, operator.A(images), method="ssd", nfe=4, reuse_encoder=2)


def test_autocast_runs_the_network_in_half_precision_on_gpus_only(golden, model_configs):
    seen = []

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x, t):
            seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
            return x * self.scale

    prior = DiffusionPrior(network=Recorder(), image_size=None, autocast=torch.bfloat16)
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(prior(x, 5), x) and seen == [(True, torch.bfloat16)]
    prior.autocast = None
    prior(x, 5)
    assert seen[-1][0] is False
    path, config = golden / "ddpm_model_small.safetensors", model_configs["ddpm_model_small"]
    with pytest.raises(CheckpointError, match="autocast .* runs on GPUs"):
        load_model(path, config=config, device="cpu", autocast=torch.bfloat16)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_output_is_close_to_float32(golden, model_configs, device, dtype):
    if device.type != "cuda":
        pytest.skip("half-precision autocast runs on CUDA (pytest --device cuda)")
    path, config = golden / "ddpm_model_small.safetensors", model_configs["ddpm_model_small"]
    full = load_model(path, config=config, device=device)
    half = load_model(path, config=config, device=device, autocast=dtype)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        error = (half(x, 500) - full(x, 500)).abs().max().item()
    assert half(x, 500).dtype == torch.float32 and error < (2e-2 if dtype == torch.float16 else 1e-1)


def test_cli_precision_and_encoder_reuse_options(tiny_model_args, images, tmp_path, capsys):
    from conftest import write_images

    photos = write_images(tmp_path / "in", images[:1], ["face"])
    base = ["restore", str(photos), "--task", "sr_bicubic", "--scale", "4", "--nfe", "6", "--method", "ssd",
            *tiny_model_args, "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "bf16"), "--bf16"]) == 2
    assert "runs on GPUs" in capsys.readouterr().err and not (tmp_path / "bf16").exists()
    with pytest.raises(SystemExit):
        main([*base, "--out", str(tmp_path / "both"), "--fp16", "--bf16"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "reuse"), "--reuse-encoder", "2"]) == 0
    assert (tmp_path / "reuse" / "face.png").is_file()
