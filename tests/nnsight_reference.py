"""Reference numbers for the decoder computed with nnsight 0.8.1 only: ``python tests/nnsight_reference.py OUT.json``.

llminspect is used for one thing, loading: ``li.load("decoder", device="cpu")`` gives the same transformers
model object and tokenizer the tests use. Everything after that goes through nnsight's ``TransformersModel``
wrapped around that model: nnsight tokenizes the prompts, runs the forwards, and reads or overwrites module
values with its own hooks (``.input``, ``.output``, ``.save()``, invokes). No llminspect analysis code runs.

nnsight 0.8.1 under transformers 5 (what this script relies on):

- A Llama decoder layer returns a plain tensor, so ``layers[l].output`` is [batch, tokens, hidden]; the old
  ``.output[0]`` of nnsight examples would silently take batch row 0 instead of the hidden states.
- Inside one invoke, values must be read in forward order (layer 1 before layer 23; ``.input`` of a block
  before its ``.output``); a read out of order waits for a value that has already gone past.
- ``LanguageModel`` is deprecated for ``TransformersModel``; an already-loaded model is wrapped directly,
  the task ("text-generation") being inferred from the module. Wrapping sets the tokenizer's pad token and
  left padding (harmless here: every batch holds prompts of equal length).
- Calling a module inside a trace (``model.lm_head(model.model.norm(h))``) runs it ad hoc, away from its
  place in the forward pass: the logit lens.
- Importing nnsight changes torch globals, so it is imported only after llminspect has loaded the model,
  and this runs as its own process.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CAPITAL = "The capital of France is"
CORRUPT = "The capital of Italy is"
ANIMAL = "The animal didn't cross the street because it was too tired. What was too tired? The"
BLOCKS = [0, 14, 29]  # (a) block outputs kept
PATCHES = [(5, 3), (20, 4), (12, 0), (29, 4)]  # (b) (layer, position) where the clean stream is put back
ZEROED = [(23, 4), (1, 5)]  # (c) heads zeroed together
MEANED = [(1, 5)]  # (c) heads set to their mean over the prompt's own positions
LENS_ROWS = [0, 10, 20, 30]  # (d) row 0: the stream entering block 0; row l + 1: after block l


def main(out_path: str) -> None:
    started = time.perf_counter()
    import llminspect as li

    m = li.load("decoder", device="cpu")  # the same folder and objects the tests use; nothing else from llminspect

    # nnsight only after llminspect has loaded the model: importing it changes torch globals
    import nnsight
    import torch
    from nnsight import TransformersModel

    torch.set_grad_enabled(False)  # inference only (a trace is not a `with` to combine with torch.no_grad())
    model = TransformersModel(m.model, tokenizer=m.tokenizer)
    layers = model.model.layers
    head_dim = m.model.config.hidden_size // m.model.config.num_attention_heads
    paris = model.tokenizer(" Paris", add_special_tokens=False).input_ids
    animal = model.tokenizer(" animal", add_special_tokens=False).input_ids
    assert len(paris) == 1 and len(animal) == 1, (paris, animal)
    paris, animal = paris[0], animal[0]

    def p_last(logits, token: int) -> float:
        """p(token) at the last position of batch row 0, softmax in float64."""
        return float(logits[0, -1].double().softmax(-1)[token])

    result: dict = {"nnsight": nnsight.__version__, "head_dim": head_dim}

    # (a) block outputs, and the tokens nnsight fed the model
    with model.trace(CAPITAL):
        ids = model.model.embed_tokens.input.save()
        # a plain tensor under transformers 5; only values marked saved leave the trace, so the list is saved too
        kept = nnsight.save([layers[layer].output for layer in BLOCKS])
        logits = model.lm_head.output.save()
    for layer, value in zip(BLOCKS, kept, strict=True):
        assert value.shape[0] == 1 and value.dim() == 3, (layer, tuple(value.shape))
    result["tokens"] = {CAPITAL: ids[0].tolist()}
    result["blocks"] = {str(layer): value[0].tolist() for layer, value in zip(BLOCKS, kept, strict=True)}
    result["p_clean_direct"] = p_last(logits, paris)

    # (b) activation patching: one trace, the clean prompt's invoke first, then one corrupted invoke per patch.
    # Invokes resume in the order the model reaches what each asked for, so a value handed from the clean invoke
    # to a patching one needs a barrier per layer: the clean read happens above it, the write below it.
    order = sorted({layer for layer, _ in PATCHES})
    with model.trace() as tracer:
        barriers = {layer: tracer.barrier(1 + sum(lay == layer for lay, _ in PATCHES)) for layer in order}
        with tracer.invoke(CAPITAL):
            clean = {}
            for layer in order:  # forward order
                clean[layer] = layers[layer].output
                barriers[layer]()
            clean_logits = model.lm_head.output.save()
        with tracer.invoke(CORRUPT):
            corrupt_ids = model.model.embed_tokens.input.save()
            corrupt_logits = model.lm_head.output.save()
        patched_logits = nnsight.save([])
        for layer, position in PATCHES:
            with tracer.invoke(CORRUPT):
                barriers[layer]()
                layers[layer].output[:, position] = clean[layer][:, position]
                patched_logits.append(model.lm_head.output)
    result["tokens"][CORRUPT] = corrupt_ids[0].tolist()
    result["patching"] = {
        "p_clean": p_last(clean_logits, paris),
        "p_corrupt": p_last(corrupt_logits, paris),
        "p_patched": [
            [layer, position, p_last(value, paris)]
            for (layer, position), value in zip(PATCHES, patched_logits, strict=True)
        ],
    }

    # (c) head ablation: a head's output is its head_dim-wide slice of the input of its layer's o_proj
    def o_proj(layer: int):
        return layers[layer].self_attn.o_proj

    with model.trace(ANIMAL):
        ids = model.model.embed_tokens.input.save()
        means = nnsight.save({layer: o_proj(layer).input[0].mean(0) for layer in sorted({lay for lay, _ in MEANED})})
        before = model.lm_head.output.save()
    result["tokens"][ANIMAL] = ids[0].tolist()
    ablation = {"p_before": p_last(before, animal)}

    def switched_off(heads, how: str) -> float:
        by_layer: dict[int, list[int]] = {}
        for layer, head in heads:
            by_layer.setdefault(layer, []).append(head)
        with model.trace(ANIMAL):
            for layer in sorted(by_layer):  # forward order: layer 1 before layer 23
                heads_in = o_proj(layer).input.clone()
                for head in by_layer[layer]:
                    part = slice(head * head_dim, (head + 1) * head_dim)
                    heads_in[:, :, part] = 0.0 if how == "zero" else means[layer][part]
                o_proj(layer).input = heads_in
            after = model.lm_head.output.save()
        return p_last(after, animal)

    ablation["zero"] = {"heads": ZEROED, "p_after": switched_off(ZEROED, "zero")}
    ablation["mean"] = {"heads": MEANED, "p_after": switched_off(MEANED, "mean")}
    result["ablation"] = ablation

    # (d) logit lens: each stream through the model's final norm and lm_head, called ad hoc inside the trace
    with model.trace(CAPITAL):
        streams = {}
        for row in LENS_ROWS:  # forward order
            streams[row] = layers[0].input if row == 0 else layers[row - 1].output
        lens = nnsight.save({row: model.lm_head(model.model.norm(stream)) for row, stream in streams.items()})
        final = model.lm_head.output.save()
    result["lens"] = {str(row): p_last(value, paris) for row, value in lens.items()}
    result["lens_last_row_vs_output"] = float((lens[LENS_ROWS[-1]] - final).abs().max())

    result["seconds"] = time.perf_counter() - started
    with open(out_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT.json")
    main(sys.argv[1])
