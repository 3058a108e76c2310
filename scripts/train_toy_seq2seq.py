"""Train the toy text-to-text model shipped as ``llminspect/assets/toy_seq2seq`` (a TOY, not a real translator).

A 684k-parameter BART (2+2 layers, 4 heads, d_model 128) learns the invented language of
``llminspect.teaching.toy_task`` on CPU in about a minute. Seeded and deterministic, so running it
again rewrites the same weights. Usage:

    python scripts/train_toy_seq2seq.py [--steps 2000] [--out llminspect/assets/toy_seq2seq]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

from llminspect.teaching import toy_task

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
README = """# toy-seq2seq (a toy model, trained in this repository)

A tiny BART (2 encoder + 2 decoder layers, 4 heads, d_model 128) that translates toy English
sentences into an invented language where adjectives follow their noun:
"happy bird eats mouse" -> "birdo gaja manghas muso". Trained by
`scripts/train_toy_seq2seq.py` ({steps} steps, seed {seed}); the task is `llminspect/toy_task.py`.
It knows only its {vocab} words. Use it to see cross-attention follow a word alignment.
"""


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over both languages; every sequence ends with ``</s>``."""
    words = SPECIALS + sorted(set(toy_task.LEXICON) | set(toy_task.LEXICON.values()))
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", words.index("</s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def build_model(tokenizer: PreTrainedTokenizerFast) -> BartForConditionalGeneration:
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=128,
        encoder_ffn_dim=256,
        decoder_ffn_dim=256,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        max_position_embeddings=32,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
        forced_eos_token_id=None,
        attn_implementation="eager",
    )
    return BartForConditionalGeneration(config)


def batch(tokenizer, rng: random.Random, size: int) -> dict[str, torch.Tensor]:
    sources = []
    while len(sources) < size:
        sentence = toy_task.random_sentence(rng)
        if not toy_task.held_out(sentence):
            sources.append(sentence)
    targets = [toy_task.translate(s) for s in sources]
    encoded = tokenizer(sources, text_target=targets, padding=True, return_tensors="pt")
    encoded["labels"][encoded["labels"] == tokenizer.pad_token_id] = -100
    return encoded


def train(steps: int, seed: int, out: Path) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    rng = random.Random(seed)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    warmup = min(100, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (steps - s) / (steps - warmup))
    )
    model.train()
    for step in range(steps):
        loss = model(**batch(tokenizer, rng, 64)).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    model.eval()
    model.generation_config.max_length = 32
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "README.md").write_text(README.format(steps=steps, seed=seed, vocab=len(tokenizer)))
    print(f"saved to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    toy = Path(__file__).resolve().parent.parent / "llminspect" / "assets" / "toy_seq2seq"
    parser.add_argument("--out", type=Path, default=toy)
    args = parser.parse_args()
    train(args.steps, args.seed, args.out)


if __name__ == "__main__":
    main()
