import csv

import pytest
import torch
from diffusers.utils import SAFETENSORS_WEIGHTS_NAME
from PIL import Image
from safetensors.torch import load_file

from ssdiff.train import TrainConfig, Trainer, batch_indices, train, validation_loss

TINY = {
    "in_channels": 3, "out_channels": 3, "block_out_channels": [16, 32], "layers_per_block": 1,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "attention_head_dim": 16, "norm_num_groups": 8,
}


@pytest.fixture()
def folder(tmp_path):
    data = tmp_path / "faces"
    data.mkdir()
    generator = torch.Generator().manual_seed(0)
    for index in range(10):
        coarse = torch.rand(3, 4, 4, generator=generator)
        image = torch.nn.functional.interpolate(coarse[None], size=(20, 24), mode="bilinear")[0]
        Image.fromarray((image.permute(1, 2, 0) * 255).byte().numpy()).save(data / f"{index:03d}.png")
    (data / "notes.txt").write_text("not an image")
    return data


def config(folder, out, steps, **overrides):
    values = {"data": str(folder), "out": str(out), "size": 16, "steps": steps, "batch_size": 4, "lr": 2e-3, "warmup": 1,
              "checkpoint_every": 2, "sample_every": 0, "log_every": 1, "subset": ":8", "val_subset": "8:", "model_config": TINY}
    return TrainConfig(**{**values, **overrides})


def test_training_reduces_the_loss(folder, tmp_path):
    trainer = Trainer(config(folder, tmp_path / "run", steps=40, checkpoint_every=40))
    before = validation_loss(trainer.model, trainer.images, 8)
    trainer.run()
    after = validation_loss(trainer.model, trainer.images, 8)
    assert after < 0.7 * before
    with open(tmp_path / "run" / "loss.csv") as log:
        rows = list(csv.DictReader(log))
    assert [int(r["step"]) for r in rows] == list(range(1, 41))
    assert rows[-1]["val_loss"]  # validated at the checkpoint
    assert (tmp_path / "run" / "ema" / "config.json").is_file()


def test_resume_reaches_the_identical_state(folder, tmp_path):
    straight = train(config(folder, tmp_path / "a", steps=4))
    train(config(folder, tmp_path / "b", steps=2))
    resumed = train(config(folder, tmp_path / "b", steps=4))  # picks up b/state.pt at step 2
    assert resumed.step == 4
    for name in ("model", "ema"):
        ours, theirs = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert torch.equal(straight.generator.get_state(), resumed.generator.get_state())
    def logged(run):
        return [(r["step"], r["loss"]) for r in csv.DictReader(open(tmp_path / run / "loss.csv"))]
    assert logged("a") == logged("b")


def test_exported_prior_loads(folder, tmp_path):
    import ssdiff

    train(config(folder, tmp_path / "run", steps=2, export=str(tmp_path / "export")))
    prior = ssdiff.load_model(tmp_path / "export")
    assert prior.dtype == torch.float32  # stored as float16, loaded as float32
    stored = load_file(tmp_path / "export" / SAFETENSORS_WEIGHTS_NAME)
    assert {tensor.dtype for tensor in stored.values()} == {torch.float16}
    ema = ssdiff.load_model(tmp_path / "run" / "ema")  # the same EMA weights in float32
    x = torch.randn(2, 3, 16, 16)
    assert prior(x, 500).shape == x.shape
    assert (prior(x, 500) - ema(x, 500)).abs().max() < 1e-2


def test_data_order_depends_only_on_seed_and_step():
    first = torch.cat([batch_indices(s, 10, 4, seed=0) for s in range(2)])
    assert len(set(first.tolist())) == 8  # one epoch: no repeats
    assert torch.equal(batch_indices(5, 10, 4, seed=0), batch_indices(5, 10, 4, seed=0))
    assert not torch.equal(batch_indices(0, 10, 4, seed=0), batch_indices(0, 10, 4, seed=1))


def test_unconditional_samples_are_distinct_and_seeded(tiny_ddpm):
    from ssdiff.solvers.unconditional import ddim_sample

    samples = ddim_sample(tiny_ddpm, (3, 3, 32, 32), num_steps=5, seed=0)
    assert (samples[0] - samples[1]).abs().max() > 1e-2
    assert torch.equal(samples, ddim_sample(tiny_ddpm, (3, 3, 32, 32), num_steps=5, seed=0))


def test_resuming_with_another_architecture_is_refused(folder, tmp_path):
    from ssdiff.io import InputError

    train(config(folder, tmp_path / "run", steps=1))
    with pytest.raises(InputError, match="different size"):
        Trainer(config(folder, tmp_path / "run", steps=2, size=32))
