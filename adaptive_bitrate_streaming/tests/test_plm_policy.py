"""The LLM policy on tiny random backbones of every type: context, cache, early exit, LoRA."""
import pytest
import torch
from transformers import AutoModel

from abr_sim.datasets import load_trace_set, load_video
from common.errors import InputError
from abr_sim.evaluation import run_episodes
from abr_sim.simulator import episode_schedule
from plm_special.backbones import PLM_TYPES, load_backbone
from plm_special.return_scaling import ReturnScaling
from plm_special.llm_policy import LLMPolicy, similar_lengths
from plm_special.placement import Placement
from plm_special.rl_policy import TOKENS_PER_STEP, OfflineRLPolicy, band_mask

SCALING = ReturnScaling(reward_min=-50.0, reward_max=4.3, gamma=1.0, scale=1000, max_return=0.045)


def tiny_policy(tiny_plms, plm_type, w=5, rank=4, which_layer=-1, seed=0, device="cpu"):
    torch.manual_seed(seed)
    model = OfflineRLPolicy(load_backbone(tiny_plms, plm_type, "tiny", which_layer, rank), 16, w, 47)
    with torch.no_grad():
        model.action_head.weight.mul_(30)  # decisive random policy: many different bitrates
    return model.to(device).eval()


def decisions(policy, synthetic_data, num_traces=3, num_clients=1):
    trace_set, video = load_trace_set(synthetic_data, "synthetic-test"), load_video(synthetic_data, "synthetic")
    logs = run_episodes(policy, trace_set, video, episode_schedule(trace_set, True, num_traces), None, num_clients,
                        progress=False)
    return [row[1] for log in logs for row in log.rows]


@pytest.mark.parametrize("plm_type", list(PLM_TYPES))
def test_cached_decisions_equal_full_recomputation(tiny_plms, synthetic_data, plm_type, device):
    model = tiny_policy(tiny_plms, plm_type, device=device)
    cached = decisions(LLMPolicy(model, SCALING, use_cache=True), synthetic_data, num_clients=3)
    recomputed = decisions(LLMPolicy(model, SCALING, use_cache=False), synthetic_data, num_clients=1)
    assert cached == recomputed
    assert len(set(cached)) >= 3


def test_clients_catching_up_on_many_steps_get_their_own_pass():
    lengths = [8] * 40 + [7, 16, 376, 8, 288]
    groups = similar_lengths(lengths)
    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    for group in groups:
        padded, real = len(group) * max(lengths[i] for i in group), sum(lengths[i] for i in group)
        assert padded <= 1.25 * real + 64
    assert any(set(group) >= set(range(40)) for group in groups)  # the short ones share one pass
    assert all(lengths[i] > 100 for group in groups if 42 in group for i in group)  # 376 pads no short one


@pytest.mark.parametrize("plm_type", ["smollm2", "gpt2", "opt"])
def test_incremental_logits_match_the_full_forward(tiny_plms, plm_type, device):
    """Rotary and absolute-position backbones: clients fed irregularly (several steps at once, at different
    steps in one pass, caches trimmed to w steps) get the logits of one full pass at every decision."""
    model = tiny_policy(tiny_plms, plm_type, w=3, device=device)
    torch.manual_seed(1)
    clients, steps = 3, 12
    states, returns = torch.rand(clients, steps, 6, 6, device=device), torch.rand(clients, steps, device=device)
    actions = torch.randint(0, 6, (clients, steps), device=device)
    timesteps = torch.arange(steps, device=device).expand(clients, -1)
    decided_at = [set(range(steps)), {0, 3, 4, 9, 11}, {2, 5, 6, 7, 11}]
    caches, fed = [None] * clients, [0] * clients
    with torch.no_grad():
        full = model(states, actions, returns, timesteps)
        tokens = model.episode_tokens(states, actions, returns, timesteps)
        for t in range(steps):
            deciding = [c for c in range(clients) if t in decided_at[c]]
            last = t * TOKENS_PER_STEP + 6  # s6_t
            logits, updated = model.decide([tokens[c, fed[c]:last + 1] for c in deciding], [fed[c] for c in deciding],
                                           [caches[c] for c in deciding])
            for c, row, cache in zip(deciding, logits, updated):
                assert torch.allclose(row, full[c, t], atol=1e-4), (c, t)
                assert cache.start + cache.length == last + 1 and cache.length <= model.w * TOKENS_PER_STEP
                caches[c], fed[c] = cache, last + 1


@pytest.mark.parametrize("plm_type", ["llama", "gpt2", "t5-lm"])
def test_no_future_token_leaks_into_a_decision(tiny_plms, plm_type):
    model = tiny_policy(tiny_plms, plm_type)
    torch.manual_seed(2)
    states, returns = torch.rand(1, 10, 6, 6), torch.rand(1, 10)
    actions, timesteps = torch.randint(0, 6, (1, 10)), torch.arange(10)[None]
    changed_states, changed_actions = states.clone(), actions.clone()
    changed_states[:, 6:] += 1.0
    changed_actions[:, 5:] = (actions[:, 5:] + 1) % 6  # includes a_5: s6_5 must not see it
    with torch.no_grad():
        before = model(states, actions, returns, timesteps)
        after = model(changed_states, changed_actions, returns, timesteps)
    assert torch.allclose(before[:, :6], after[:, :6], atol=1e-5)
    assert not torch.allclose(before[:, 6:], after[:, 6:], atol=1e-3)


def test_band_mask_holds_exactly_w_steps():
    positions = torch.arange(5 * TOKENS_PER_STEP)
    mask = band_mask(positions, positions, w=2)
    decision_of_step_3 = 3 * TOKENS_PER_STEP + 6
    visible_steps = set((positions[mask[decision_of_step_3]] // TOKENS_PER_STEP).tolist())
    assert visible_steps == {2, 3}
    assert not mask[decision_of_step_3, decision_of_step_3 + 1]  # not even a_3


def test_padding_does_not_change_the_logits_of_real_steps(tiny_plms):
    model = tiny_policy(tiny_plms, "qwen2")
    torch.manual_seed(3)
    states, returns = torch.rand(1, 8, 6, 6), torch.rand(1, 8)
    actions, timesteps = torch.randint(0, 6, (1, 8)), torch.arange(8)[None]
    padded = [torch.cat([x, torch.zeros_like(x[:, :4])], 1) for x in (states, actions, returns)]
    valid = torch.tensor([[True] * 8 + [False] * 4])
    with torch.no_grad():
        alone = model(states, actions, returns, timesteps)
        with_padding = model(padded[0], padded[1], padded[2], torch.arange(12)[None], valid)
    assert torch.allclose(alone, with_padding[:, :8], atol=1e-5) and torch.isfinite(with_padding).all()


@pytest.mark.parametrize("plm_type", list(PLM_TYPES))
def test_lora_targets_the_attention_of_every_type(tiny_plms, plm_type):
    backbone = load_backbone(tiny_plms, plm_type, "tiny", rank=4)
    trainable = [name for name, p in backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    full = load_backbone(tiny_plms, plm_type, "tiny", rank=-1)
    assert all(p.requires_grad for p in full.parameters())
    frozen = load_backbone(tiny_plms, plm_type, "tiny", rank=4, freeze=True)
    assert not any(p.requires_grad for p in frozen.parameters())


@pytest.mark.parametrize("plm_type", list(PLM_TYPES))
def test_merging_lora_keeps_the_function(tiny_plms, plm_type):
    model = tiny_policy(tiny_plms, plm_type)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:  # trained adapters: B is no longer zero
                parameter.normal_(0, 0.5)
    torch.manual_seed(1)
    states, returns = torch.rand(2, 6, 6, 6), torch.rand(2, 6)
    actions, timesteps = torch.randint(0, 6, (2, 6)), torch.arange(6).expand(2, -1)
    with torch.no_grad():
        adapted = model(states, actions, returns, timesteps)
        with model.backbone.peft_model.disable_adapter():
            without_adapters = model(states, actions, returns, timesteps)
        model.backbone.merge_lora()
        merged = model(states, actions, returns, timesteps)
    assert not any("lora_" in name for name, _ in model.named_parameters())
    assert not torch.allclose(adapted, without_adapters, atol=1e-3)
    assert torch.allclose(merged, adapted, atol=5e-3)  # logits of order 30: rounding only


@pytest.mark.parametrize("plm_type", ["llama", "mistral", "qwen2"])
def test_grouped_attention_equals_transformers_sdpa(tiny_plms, plm_type):
    """Grouped key/value heads attended in place give what transformers' copying SDPA gives, with a mask."""
    backbone = load_backbone(tiny_plms, plm_type, "tiny")
    assert backbone.model.config._attn_implementation == "grouped_sdpa"
    reference = AutoModel.from_pretrained(tiny_plms / plm_type / "tiny", attn_implementation="sdpa")
    torch.manual_seed(0)
    embeds, positions = torch.randn(2, 16, 64), torch.arange(16)
    mask = band_mask(positions, positions, 1).expand(2, 1, -1, -1)
    with torch.no_grad():
        grouped, _ = backbone(embeds, mask, positions.expand(2, -1))
        copied = reference(inputs_embeds=embeds, attention_mask=mask, position_ids=positions.expand(2, -1))
    assert torch.allclose(grouped, copied.last_hidden_state, atol=1e-5)


@pytest.mark.parametrize("plm_type", ["gpt2", "llama", "opt", "t5-lm"])
def test_early_exit_keeps_the_first_blocks(tiny_plms, plm_type):
    assert load_backbone(tiny_plms, plm_type, "tiny", which_layer=1).num_layers == 2
    assert load_backbone(tiny_plms, plm_type, "tiny", which_layer=-1).num_layers == 4
    for beyond in (4, -2):  # -1 is the only negative index, as the message says
        with pytest.raises(InputError, match=r"in a model of 4 blocks; use -1 \(all\) or 0..3") as error:
            load_backbone(tiny_plms, plm_type, "tiny", which_layer=beyond)
        assert error.value.setting == "which_layer"


def test_hidden_size_comes_from_the_config(tiny_plms):
    model = tiny_policy(tiny_plms, "llama")
    assert model.backbone.hidden_size == 64 and model.embed_timestep.embedding_dim == 64


def test_sampling_is_seeded(tiny_plms, synthetic_data):
    model = tiny_policy(tiny_plms, "llama")
    with torch.no_grad():
        model.action_head.weight.div_(30)  # a flat policy: samples differ from the argmax
    runs = [decisions(LLMPolicy(model, SCALING, sample=True, seed=s), synthetic_data, 2) for s in (5, 5, 6)]
    assert runs[0] == runs[1] != runs[2]
    assert runs[0] != decisions(LLMPolicy(model, SCALING), synthetic_data, 2)


def test_missing_model_folders_say_how_to_fill_them(tmp_path):
    with pytest.raises(InputError, match="prepare_plm.py smollm2"):
        load_backbone(tmp_path, "smollm2", "135m")
    with pytest.raises(InputError, match=r"llama/base.*Hugging Face format"):
        load_backbone(tmp_path, "llama", "base")
    with pytest.raises(InputError, match="unknown backbone type 'bert'"):
        load_backbone(tmp_path, "bert", "base")


def test_a_folder_of_another_architecture_is_refused(tiny_plms, tmp_path):
    (tmp_path / "qwen2").mkdir()
    (tmp_path / "qwen2" / "tiny").symlink_to(tiny_plms / "gpt2" / "tiny")
    with pytest.raises(InputError, match="holds a 'gpt2' model, but backbone type qwen2 needs 'qwen2'"):
        load_backbone(tmp_path, "qwen2", "tiny")


def test_inference_precisions_decide_like_float32(tiny_trained_policy, tiny_plms, synthetic_data):
    from plm_special.checkpoint import policy_folder
    from plm_special.inference import load_for_inference

    decided = {}
    for precision in ("float32", "bfloat16", "int8"):
        model, saved, scaling = load_for_inference(policy_folder(tiny_trained_policy), tiny_plms, precision,
                                                   Placement(torch.device("cpu")))
        quantized = [m for m in model.backbone.model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
        assert bool(quantized) == (precision == "int8")
        if precision != "int8":
            assert model.backbone.dtype == (torch.bfloat16 if precision == "bfloat16" else torch.float32)
        decided[precision] = decisions(LLMPolicy(model, scaling), synthetic_data, num_traces=4, num_clients=2)
    for precision in ("bfloat16", "int8"):
        agreement = sum(a == b for a, b in zip(decided[precision], decided["float32"])) / len(decided["float32"])
        assert agreement > 0.6, (precision, agreement)
    with pytest.raises(InputError, match="int8 .* runs on the CPU only"):
        load_for_inference(policy_folder(tiny_trained_policy), tiny_plms, "int8", Placement(torch.device("cuda")))
