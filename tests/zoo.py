"""A zoo of tiny random models of many architectures, saved as ordinary model folders.

Instructors bring their own models; llminspect must either give the same numbers as transformers
or refuse clearly. Each entry here is built from a transformers config class with a few layers
and a few dozen hidden units, given random weights, and saved like a published checkpoint
(safetensors + config + a real tokenizer), so ``llminspect.load(folder)`` sees what it would see
on the hub. Random weights make the numbers meaningless but exact: every capability is checked
against a plain transformers forward pass on the same folder.

Tokenizers are the embedded models' real ones: SmolLM2's byte-level BPE for decoders and
encoder-decoders (a copy that adds a BOS token, as Llama's and Gemma's do, for some decoders),
all-MiniLM's WordPiece for encoders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from llminspect.models.registry import model_directory

SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
POSITIONS = {"max_position_embeddings": 64}
ROPE_DECODER = {**SMALL, **POSITIONS, "num_key_value_heads": 2}
SEQ2SEQ = {
    "d_model": 32,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "max_position_embeddings": 64,
}
MOE = {"num_experts_per_tok": 2, "moe_intermediate_size": 32}


@dataclass(frozen=True)
class Species:
    """One architecture of the zoo: a config class, its options, the model class and the tokenizer."""

    name: str
    config: str  # transformers config class name
    model: str  # transformers model class name
    options: dict = field(default_factory=dict)
    tokenizer: str = "bpe"  # "bpe", "bpe+bos" (adds a BOS token), "wordpiece", "bpe+eos" (seq2seq)
    family: str = "decoder"

    @property
    def positions(self) -> str:
        """How this architecture encodes positions (what ``anatomy`` must say)."""
        return POSITIONS_OF.get(self.name, "rotary")


# fmt: off
ZOO = [
    Species("gpt2", "GPT2Config", "GPT2LMHeadModel", {"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64}),
    Species("gpt-neox", "GPTNeoXConfig", "GPTNeoXForCausalLM", {**SMALL, **POSITIONS, "rotary_pct": 0.5}),
    Species("opt", "OPTConfig", "OPTForCausalLM",
            {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "ffn_dim": 64,
             "word_embed_proj_dim": 32, **POSITIONS}),
    Species("falcon", "FalconConfig", "FalconForCausalLM",
            {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, **POSITIONS}),
    Species("llama", "LlamaConfig", "LlamaForCausalLM", ROPE_DECODER, "bpe+bos"),
    Species("mistral", "MistralConfig", "MistralForCausalLM", {**ROPE_DECODER, "sliding_window": 3}),
    Species("mixtral", "MixtralConfig", "MixtralForCausalLM", {**ROPE_DECODER, "num_local_experts": 4,
                                                                  "num_experts_per_tok": 2}),
    Species("qwen2", "Qwen2Config", "Qwen2ForCausalLM",
            {**ROPE_DECODER, "use_sliding_window": True, "sliding_window": 3, "max_window_layers": 1}),
    Species("qwen3", "Qwen3Config", "Qwen3ForCausalLM", {**ROPE_DECODER, "head_dim": 8}),
    Species("qwen2-moe", "Qwen2MoeConfig", "Qwen2MoeForCausalLM",
            {**ROPE_DECODER, **MOE, "num_experts": 4, "shared_expert_intermediate_size": 32}),
    Species("qwen3-moe", "Qwen3MoeConfig", "Qwen3MoeForCausalLM", {**ROPE_DECODER, **MOE, "num_experts": 4,
                                                                  "head_dim": 8}),
    Species("gemma", "GemmaConfig", "GemmaForCausalLM", {**ROPE_DECODER, "head_dim": 8}, "bpe+bos"),
    Species("gemma2", "Gemma2Config", "Gemma2ForCausalLM",
            {**ROPE_DECODER, "head_dim": 8, "sliding_window": 3, "final_logit_softcapping": 0.5,
             "attn_logit_softcapping": 5.0}, "bpe+bos"),
    Species("gemma3", "Gemma3TextConfig", "Gemma3ForCausalLM",
            {**ROPE_DECODER, "head_dim": 8, "sliding_window": 3, "layer_types": ["sliding_attention",
             "full_attention"]}, "bpe+bos"),
    Species("phi", "PhiConfig", "PhiForCausalLM", {**SMALL, **POSITIONS, "partial_rotary_factor": 0.5}),
    Species("phi3", "Phi3Config", "Phi3ForCausalLM", {**ROPE_DECODER, "pad_token_id": 0}),
    Species("gptj", "GPTJConfig", "GPTJForCausalLM",
            {"n_embd": 32, "n_layer": 2, "n_head": 4, "rotary_dim": 4, "n_positions": 64}),
    Species("bloom", "BloomConfig", "BloomForCausalLM", {"hidden_size": 32, "n_layer": 2, "n_head": 4}),
    Species("olmo2", "Olmo2Config", "Olmo2ForCausalLM", ROPE_DECODER),
    Species("llama-no-head", "LlamaConfig", "LlamaModel", ROPE_DECODER),
    Species("bert", "BertConfig", "BertModel", {**SMALL, **POSITIONS}, "wordpiece", "encoder"),
    Species("bert-mlm", "BertConfig", "BertForMaskedLM", {**SMALL, **POSITIONS}, "wordpiece", "encoder"),
    Species("roberta", "RobertaConfig", "RobertaModel", {**SMALL, "max_position_embeddings": 66, "pad_token_id": 1},
            "wordpiece", "encoder"),
    Species("distilbert", "DistilBertConfig", "DistilBertModel",
            {"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64, **POSITIONS}, "wordpiece",
            "encoder"),
    Species("albert", "AlbertConfig", "AlbertModel", {**SMALL, **POSITIONS, "embedding_size": 16}, "wordpiece",
            "encoder"),
    Species("deberta-v2", "DebertaV2Config", "DebertaV2Model",
            {**SMALL, **POSITIONS, "relative_attention": True, "position_biased_input": False,
             "pos_att_type": ["p2c", "c2p"]}, "wordpiece", "encoder"),
    Species("electra", "ElectraConfig", "ElectraModel", {**SMALL, **POSITIONS, "embedding_size": 16}, "wordpiece",
            "encoder"),
    Species("t5", "T5Config", "T5ForConditionalGeneration",
            {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4, "decoder_start_token_id": 0},
            "bpe+eos", "encoder-decoder"),
    Species("bart", "BartConfig", "BartForConditionalGeneration", SEQ2SEQ, "bpe+eos", "encoder-decoder"),
    Species("mbart", "MBartConfig", "MBartForConditionalGeneration", SEQ2SEQ, "bpe+eos", "encoder-decoder"),
    Species("marian", "MarianConfig", "MarianMTModel", SEQ2SEQ, "bpe+eos", "encoder-decoder"),
    Species("pegasus", "PegasusConfig", "PegasusForConditionalGeneration", SEQ2SEQ, "bpe+eos", "encoder-decoder"),
]
# fmt: on


LEARNED = ("gpt2", "opt", "bert", "bert-mlm", "roberta", "distilbert", "albert", "electra", "bart", "mbart")
POSITIONS_OF = {
    **dict.fromkeys(LEARNED, "learned"),
    "bloom": "ALiBi (a distance penalty on the scores)",
    "deberta-v2": "relative (DeBERTa)",
    "t5": "relative (T5 buckets)",
    "marian": "sinusoidal",
    "pegasus": "sinusoidal",
}


WORDS = ["<pad>", "</s>", "<unk>", "<s>"] + "the a cat dog sees likes le la chat chien voit aime".split()


def word_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """A 16-word word-level tokenizer that appends </s>: tiny vocabularies for tiny models."""
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>",
                                                unk_token="<unk>", bos_token="<s>")  # fmt: skip


def _tokenizer(kind: str):
    """A tokenizer for the zoo: the decoder's BPE (optionally adding BOS or EOS), the encoder's WordPiece, or words."""
    if kind == "words":
        return word_tokenizer()
    if kind == "wordpiece":
        return transformers.AutoTokenizer.from_pretrained(model_directory("encoder"))
    source = Path(model_directory("decoder")) / "tokenizer.json"
    backend = Tokenizer.from_file(str(source))
    special = {"bos": "<|im_start|>", "eos": "<|endoftext|>"}
    if kind == "bpe+bos":
        bos = special["bos"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, backend.token_to_id(bos))]
        )
    elif kind == "bpe+eos":
        eos = special["eos"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, backend.token_to_id(eos))]
        )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=special["bos"],
        eos_token=special["eos"],
        pad_token=special["eos"],
        unk_token=special["eos"],
    )


def build(species: Species, folder: Path, tokenizer: str | None = None, **config) -> Path:
    """Build ``species`` with random weights (seeded) and save it as a model folder with its tokenizer.

    ``tokenizer`` replaces the species' kind ("bpe", "bpe+bos", "bpe+eos", "wordpiece", "words");
    ``config`` overrides its config options (e.g. ``sliding_window=3``).
    """
    from llminspect.models.loading import quiet_transformers

    with quiet_transformers():
        return _build(species, folder, tokenizer or species.tokenizer, config)


def _build(species: Species, folder: Path, kind: str, overrides: dict) -> Path:
    tokenizer = _tokenizer(kind)
    options = dict(species.options)
    vocabulary = len(tokenizer)
    if species.config == "BloomConfig":
        options["vocab_size"] = vocabulary
    else:
        options.setdefault("vocab_size", vocabulary)
    options.update(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                   bos_token_id=tokenizer.bos_token_id)  # fmt: skip
    if species.family == "encoder-decoder":
        options.setdefault("decoder_start_token_id", tokenizer.eos_token_id)
    options.update(overrides)
    config = getattr(transformers, species.config)(**options)
    config.architectures = [species.model]
    torch.manual_seed(0)
    model = getattr(transformers, species.model)(config).eval()
    with torch.no_grad():  # random init leaves some norms and biases at exact 1 / 0: shake them so they count
        for parameter in model.parameters():
            if parameter.dim() == 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
