"""Where the policy runs and in what precision: device flags, backbones split across devices, mixed-precision
training, the memory estimate printed before an adaptation run (plm_special/placement.py, footprint.py)."""
import pytest
import torch
from accelerate import init_empty_weights
from transformers import AutoConfig, AutoModel

from common.errors import InputError
from conftest import run_script
from plm_special.backbones import load_backbone
from plm_special.footprint import describe, memory_estimate, parameter_counts
from plm_special.placement import Placement, block_names, make_placement, place_policy, split_device_map
from plm_special.rl_policy import OfflineRLPolicy


def skeleton(tiny_plms, plm_type):
    with init_empty_weights():
        return AutoModel.from_config(AutoConfig.from_pretrained(tiny_plms / plm_type / "tiny"))


@pytest.mark.parametrize("plm_type", ["smollm2", "gpt2", "opt", "t5-lm"])
def test_an_explicit_split_covers_every_weight_in_block_order(tiny_plms, plm_type):
    model = skeleton(tiny_plms, plm_type)
    device_map = split_device_map(model, ["cuda:0", "cuda:1", "cuda:2"])
    for name, _ in [*model.named_parameters(), *model.named_buffers()]:
        owners = [module for module in device_map if name.startswith(module + ".")]
        assert len(owners) == 1, name
    blocks = block_names(model)
    assert len(blocks) == (8 if plm_type == "t5-lm" else 4)
    devices = [device_map[block] for block in blocks]
    assert devices == sorted(devices) and set(devices) == {"cuda:0", "cuda:1", "cuda:2"}  # consecutive shares
    first = next(name for name in device_map if name not in blocks)
    assert device_map[first] == "cuda:0"  # the input embeddings come before every block


def test_llama_embeddings_go_first_and_the_final_norm_last(tiny_plms):
    device_map = split_device_map(skeleton(tiny_plms, "llama"), ["cuda:0", "cuda:1"])
    assert device_map == {"layers.0": "cuda:0", "layers.1": "cuda:0", "layers.2": "cuda:1", "layers.3": "cuda:1",
                          "embed_tokens": "cuda:0", "norm": "cuda:1", "rotary_emb": "cuda:1"}


@pytest.mark.parametrize("plm_type, depth_override", [("smollm2", {"num_hidden_layers": 2}),
                                                        ("t5-lm", {"num_layers": 1, "num_decoder_layers": 1})])
def test_an_explicit_split_maps_the_kept_blocks_only(tiny_plms, plm_type, depth_override):
    """The map that loading a split backbone takes, for an early exit (computed without the devices existing)."""
    config = AutoConfig.from_pretrained(tiny_plms / plm_type / "tiny")
    placement = Placement(torch.device("cpu"), (torch.device("cpu"), torch.device("cuda:0")))
    device_map = placement.device_map(config, depth_override)
    blocks = {name: device for name, device in device_map.items() if name.split(".")[-1].isdigit()}
    if plm_type == "t5-lm":
        assert blocks == {"encoder.block.0": "cpu", "decoder.block.0": "cuda:0"}
    else:
        assert blocks == {"layers.0": "cpu", "layers.1": "cuda:0"}


def test_device_flags_say_what_is_wrong():
    assert make_placement("cpu") == Placement(torch.device("cpu"))
    assert not make_placement("cpu", "cpu", "cpu").split  # one device named three times is no split
    assert make_placement("cpu", device_map="auto").auto
    with pytest.raises(InputError, match="only 'auto'"):
        make_placement("cpu", device_map="balanced")
    with pytest.raises(InputError, match="leave out --device-mid"):
        make_placement("cpu", device_out="cpu", device_map="auto")
    with pytest.raises(InputError, match="name devices as cpu, cuda or cuda:N"):
        make_placement("gpu0")
    if torch.cuda.device_count() < 8:
        with pytest.raises(InputError, match="is not available here"):
            make_placement("cpu", device_out="cuda:7")


def test_mixed_precision_trains_like_float32_up_to_rounding(tiny_plms, device):
    """bfloat16 autocast with float32 trained weights: the same losses, within bfloat16's rounding, for a few
    optimizer steps, and the trained weights stay float32 while the frozen ones are stored in bfloat16."""
    def train(dtype, mixed):
        torch.manual_seed(0)
        backbone = load_backbone(tiny_plms, "smollm2", "tiny", rank=4, dtype=dtype, mixed_precision=mixed)
        model = OfflineRLPolicy(backbone, 16, 5, 47).to(device)
        generator = torch.Generator().manual_seed(1)
        batch = {"states": torch.rand(4, 10, 6, 6, generator=generator),
                 "actions": torch.randint(0, 6, (4, 10), generator=generator),
                 "returns": torch.rand(4, 10, generator=generator), "timesteps": torch.arange(10).expand(4, -1),
                 "valid": torch.ones(4, 10, dtype=torch.bool)}
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        losses = []
        for _ in range(5):
            loss = model.loss(batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        return model, losses

    reference, reference_losses = train(torch.float32, True)
    mixed, mixed_losses = train(torch.bfloat16, True)
    assert reference.backbone.autocast_dtype is None and mixed.backbone.autocast_dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in mixed.parameters() if p.requires_grad)
    assert {p.dtype for p in mixed.backbone.parameters() if not p.requires_grad} == {torch.bfloat16}
    assert mixed_losses == pytest.approx(reference_losses, rel=2e-2)
    assert mixed_losses[-1] < mixed_losses[0]  # it learns
    assert mixed_losses != reference_losses  # bfloat16 did compute


def test_full_fine_tuning_in_mixed_precision_keeps_float32_weights(tiny_plms):
    backbone = load_backbone(tiny_plms, "llama", "tiny", rank=-1, dtype=torch.bfloat16, mixed_precision=True)
    assert backbone.dtype == torch.float32 and backbone.autocast_dtype == torch.bfloat16
    inference = load_backbone(tiny_plms, "llama", "tiny", rank=-1, dtype=torch.bfloat16)
    assert inference.dtype == torch.bfloat16 and inference.autocast_dtype is None


def test_the_memory_estimate_counts_weights_and_training_state(tiny_plms):
    backbone = load_backbone(tiny_plms, "smollm2", "tiny", rank=4, dtype=torch.bfloat16, mixed_precision=True)
    model = OfflineRLPolicy(backbone, 16, 5, 47)
    total, trained = parameter_counts(model)
    frozen = total - trained
    assert trained == sum(p.numel() for p in model.parameters() if p.requires_grad) and 0 < trained < total
    estimate = memory_estimate(model, tokens_per_sequence=384, sequences_per_batch=8)
    assert list(estimate) == ["cpu"]
    assert estimate["cpu"]["weights"] == 2 * frozen + 4 * trained
    assert estimate["cpu"]["training state"] == 12 * trained  # gradient and two AdamW moments, float32
    double = memory_estimate(model, tokens_per_sequence=384, sequences_per_batch=16)["cpu"]["activations"]
    assert double == 2 * estimate["cpu"]["activations"] > 0
    text = describe(model, 384, 8)
    assert f"{total / 1e6:.1f}M parameters" in text and "computing in bfloat16" in text and "  cpu: " in text


def test_adaptation_prints_its_footprint_and_pace_and_trains_in_bfloat16(tiny_plms, synthetic_data, small_pool,
                                                                          tmp_path):
    result = run_script("run_plm.py", "--adapt", "--plm-type", "smollm2", "--plm-size", "tiny", "--plm-dir",
                        str(tiny_plms), "--exp-pool-path", str(small_pool), "--model-dir", str(tmp_path / "run"),
                        "--valid-trace", "synthetic-valid", "--video", "synthetic", "--data-dir", str(synthetic_data),
                        "--num-epochs", "1", "--rank", "4", "--dtype", "bfloat16", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "everything on cpu" in result.stdout and "computing in bfloat16" in result.stdout
    assert "estimated memory per device" in result.stdout
    assert "first batch" in result.stderr + result.stdout and "peak memory: process" in result.stderr + result.stdout
    saved = (tmp_path / "run" / "best_model" / "settings.json").read_text()
    assert '"dtype": "bfloat16"' in saved


@pytest.mark.parametrize("flags, needle", [
    (["--dtype", "int8"], "int8 is for testing on the CPU"),
    (["--device", "cuda:7"], "is not available here"),
    (["--device-map", "sequential"], "only 'auto'"),
])
def test_bad_device_and_precision_flags_are_one_line(tiny_plms, synthetic_data, small_pool, tmp_path, flags, needle):
    if flags[1] == "cuda:7" and torch.cuda.device_count() >= 8:
        pytest.skip("this machine has a cuda:7")
    result = run_script("run_plm.py", "--adapt", "--plm-type", "smollm2", "--plm-size", "tiny", "--plm-dir",
                        str(tiny_plms), "--exp-pool-path", str(small_pool), "--model-dir", str(tmp_path / "run"),
                        "--video", "synthetic", "--valid-trace", "synthetic-valid", "--data-dir", str(synthetic_data),
                        *flags)
    assert result.returncode == 2 and needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: gpu_check.sh runs it")
def test_a_backbone_split_across_devices_decides_as_on_one(tiny_plms):
    """The blocks split between the GPU and the CPU (accelerate runs the CPU's blocks on the GPU, fetching their
    weights): the same logits as the backbone on the GPU alone, cache included."""
    logits = []
    for placement in (make_placement("cuda:0"), make_placement("cuda:0", device_out="cpu")):
        torch.manual_seed(0)
        backbone = load_backbone(tiny_plms, "smollm2", "tiny", rank=4, placement=placement)
        model = OfflineRLPolicy(backbone, 16, 5, 47)
        place_policy(model, placement).eval()
        assert placement.split == (len(set(getattr(backbone.model, "hf_device_map", {"": 0}).values())) > 1)
        torch.manual_seed(1)
        states, returns = torch.rand(2, 6, 6, 6, device="cuda"), torch.rand(2, 6, device="cuda")
        actions, timesteps = torch.randint(0, 6, (2, 6), device="cuda"), torch.arange(6, device="cuda").expand(2, -1)
        with torch.no_grad():
            tokens = model.episode_tokens(states, actions, returns, timesteps)
            first, cache = model.decide([tokens[0, :7], tokens[1, :7]], [0, 0], [None, None])
            second, _ = model.decide([tokens[0, 7:15], tokens[1, 7:15]], [7, 7], cache)
            logits.append(torch.cat([first, second, model(states, actions, returns, timesteps).flatten(0, 1)]))
    assert torch.allclose(logits[0], logits[1], atol=1e-4)
