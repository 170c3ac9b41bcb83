import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

import ssdiff
from ssdiff.models import KNOWN_MODELS, CheckpointError, detect_format, load_model, read_state_dict
from ssdiff.models.catalog import manifest_of
from ssdiff.models.loading import network_from_state_dict

NETWORKS = ["openai_unet_small", "ddpm_model_small"]


@pytest.mark.parametrize("name", NETWORKS)
def test_golden_networks_reproduce_reference_outputs(golden, model_configs, name):
    prior = load_model(golden / f"{name}.safetensors", config=model_configs[name])
    io = load_file(golden / f"{name}_io.safetensors")
    with torch.no_grad():
        out = prior.network(io["x"], io["t"]).sample
    assert out.shape == io["out"].shape
    assert (out - io["out"]).abs().max() < 1e-4
    eps = prior(io["x"], io["t"])
    assert eps.shape == io["x"].shape  # learned sigma: only the first 3 channels are epsilon
    assert torch.equal(eps, out[:, :3])


@pytest.mark.parametrize("name", NETWORKS)
def test_architecture_is_inferred_from_shapes(golden, name):
    # Without a config: the DDPM network is fully determined by its shapes; the OpenAI one only
    # lacks its head width, which the small golden net sets to 16 (64 is assumed by default).
    io = load_file(golden / f"{name}_io.safetensors")
    state = read_state_dict(golden / f"{name}.safetensors")
    if name.startswith("openai"):
        from ssdiff.models.convert import infer_openai_config
        config = infer_openai_config(state, num_head_channels=16)
    else:
        config = None
    network, _ = network_from_state_dict(state, config)
    with torch.no_grad():
        assert (network(io["x"], io["t"]).sample - io["out"]).abs().max() < 1e-4


@pytest.mark.parametrize("fmt,known", [("openai", "openai-256-uncond"), ("ddpm", "celeba-hq-256")])
def test_full_size_checkpoints_convert_completely(fmt, known):
    entry = manifest_of(KNOWN_MODELS[known])  # the package's copy, which ssdiff models fetch verifies against
    state = {k: torch.empty(shape, device="meta") for k, shape in entry["keys"].items()}
    assert detect_format(state) == fmt
    network, info = network_from_state_dict(state)  # raises unless every key is consumed and filled
    assert info["known_model"] == known  # recognised from its shapes
    assert sum(p.numel() for p in network.parameters()) == entry["num_params"]
    assert sum(v.numel() for v in state.values()) == entry["num_params"]


def test_missing_and_unexpected_keys_are_named(golden, model_configs):
    state = read_state_dict(golden / "ddpm_model_small.safetensors")
    del state["mid.attn_1.q.weight"]
    with pytest.raises(CheckpointError, match="mid.attn_1.q.weight"):
        network_from_state_dict(state, model_configs["ddpm_model_small"])
    state = read_state_dict(golden / "ddpm_model_small.safetensors")
    state["extra.layer.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="unexpected key.*extra.layer.weight"):
        network_from_state_dict(state, model_configs["ddpm_model_small"])


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickles_that_run_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": Evil()}, handle)
    with pytest.raises(CheckpointError, match="evil.pt"):
        read_state_dict(path)


def test_truncated_and_unknown_checkpoints(tmp_path, golden):
    data = (golden / "ddpm_model_small.safetensors").read_bytes()
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors.*truncated or corrupted"):
        load_model(truncated)
    unknown = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2, 2)}, unknown)
    with pytest.raises(CheckpointError, match="unknown architecture"):
        load_model(unknown)
    with pytest.raises(CheckpointError, match="no such file"):
        load_model(tmp_path / "absent.pt")


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_pt_checkpoint_round_trip(tmp_path, golden, model_configs, zip_format):
    # the public celeba_hq.ckpt predates torch's zip format: both must load with weights_only
    state = read_state_dict(golden / "ddpm_model_small.safetensors")
    torch.save({"state_dict": state, "step": 3}, tmp_path / "ddpm.ckpt", _use_new_zipfile_serialization=zip_format)
    prior = load_model(tmp_path / "ddpm.ckpt", config=model_configs["ddpm_model_small"])
    io = load_file(golden / "ddpm_model_small_io.safetensors")
    assert (prior(io["x"], io["t"]) - io["out"]).abs().max() < 1e-4


def test_diffusers_folder_round_trip(tmp_path, tiny_ddpm):
    tiny_ddpm.network.save_pretrained(tmp_path / "unet")
    prior = load_model(tmp_path / "unet")
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(prior(x, 10), tiny_ddpm(x, 10), atol=1e-6)


def test_public_known_models_explain_where_to_get_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("SSDIFF_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    with pytest.raises(CheckpointError, match="256x256_diffusion_uncond.pt.*does not download") as error:
        load_model("openai-256-uncond")
    assert "run `ssdiff models fetch openai-256-uncond`" in str(error.value) and "\n" not in str(error.value)


def test_odd_sizes_are_padded_for_the_network(tiny_ddpm):
    x = torch.randn(1, 3, 30, 27)
    assert tiny_ddpm(x, 100).shape == x.shape


def test_public_api_names():
    for name in ("load_model", "get_operator", "restore"):
        assert callable(getattr(ssdiff, name))


def test_unknown_resolution_is_reported_where_it_is_needed(golden, model_configs):
    prior = load_model(golden / "openai_unet_small.safetensors")  # no config: resolution not recorded
    assert prior.resolution is None
    assert prior(torch.randn(1, 3, 32, 32), 10).shape == (1, 3, 32, 32)  # still usable at any size
    with pytest.raises(CheckpointError, match="does not record its training resolution"):
        prior.require_resolution()
    configured = load_model(golden / "openai_unet_small.safetensors", config=model_configs["openai_unet_small"])
    assert configured.require_resolution() == (32, 32)


def test_a_folder_named_like_a_known_model_does_not_hide_it(tmp_path, monkeypatch):
    (tmp_path / "celeba64").mkdir()  # e.g. a training run folder
    monkeypatch.chdir(tmp_path)
    assert load_model("celeba64").name == "celeba64"


def test_channels_last_is_the_cpu_default_and_changes_nothing_but_speed(golden, model_configs):
    path, config = golden / "ddpm_model_small.safetensors", model_configs["ddpm_model_small"]
    fast = load_model(path, config=config)
    plain = load_model(path, config=config, channels_last=False)
    assert fast.channels_last and not plain.channels_last
    x = torch.randn(3, 3, 40, 48, generator=torch.Generator().manual_seed(0))  # padded and tiled too
    for t in (10, 500, 999):
        out = fast(x, t)
        assert out.is_contiguous() and (out - plain(x, t)).abs().max() < 1e-5
    assert not fast.use_channels_last(False).channels_last  # and back


def test_compile_falls_back_to_eager_with_one_warning(tiny_ddpm, monkeypatch):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    expected = tiny_ddpm(x, 300)

    def cannot_compile(module):
        def compiled(*args):
            raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found\nmore detail")
        return compiled

    monkeypatch.setattr(torch, "compile", cannot_compile)
    try:
        tiny_ddpm.compile()
        with pytest.warns(UserWarning, match="torch.compile failed .*InvalidCxxCompiler.*without compiling"):
            out = tiny_ddpm(x, 300)
        assert torch.equal(out, expected) and tiny_ddpm.compiled is None
        assert torch.equal(tiny_ddpm(x, 300), expected)  # no second warning: eager from then on
    finally:
        tiny_ddpm.compiled = None


def test_compiled_network_matches_eager(golden, model_configs):
    path, config = golden / "ddpm_model_small.safetensors", model_configs["ddpm_model_small"]
    eager = load_model(path, config=config)
    compiled = load_model(path, config=config, compile=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback would warn: here it must really compile
        out = compiled(x, 500)
    assert compiled.compiled is not None and (out - eager(x, 500)).abs().max() < 1e-4
