"""BERT-like encoders by hand (BERT, RoBERTa, ELECTRA): post-norm blocks, learned positions (RoBERTa counts
them from the padding index + 1), the pooler or the masked-LM head when the model has one.
"""

from __future__ import annotations

import torch

from llminspect.analysis.by_hand.recorder import Recorder, first
from llminspect.analysis.steps import Step


def bert(model, inputs: dict) -> tuple[list[Step], torch.Tensor | None]:
    base, step = model.base_model, Recorder()
    prefix = "" if base is model else next(f"{n}." for n, m in model.named_children() if m is base)
    embeddings = base.embeddings
    ids = inputs["input_ids"]
    where = f"{prefix}embeddings"
    words = step("word_embeddings", "embedding", f"{where}.word_embeddings", embeddings.word_embeddings(ids), ids)
    if hasattr(embeddings, "create_position_ids_from_input_ids"):  # RoBERTa: counted from the padding index + 1
        positions = embeddings.create_position_ids_from_input_ids(ids, embeddings.padding_idx)
        label = f"position_embeddings (positions {embeddings.padding_idx + 1}, {embeddings.padding_idx + 2}, …)"
    else:
        positions, label = torch.arange(ids.shape[1], device=ids.device)[None], "position_embeddings"
    place = step(label, "positions", f"{where}.position_embeddings", embeddings.position_embeddings(positions),
                 positions)  # fmt: skip
    segment = embeddings.token_type_embeddings(torch.zeros_like(ids))
    step("token_type_embeddings", "embedding", f"{where}.token_type_embeddings", segment, ids)
    summed = step("sum of the three", "residual", "", words + place + segment, words, place, segment)
    x = step("embeddings LayerNorm", "norm", f"{where}.LayerNorm", embeddings.LayerNorm(summed), summed, stream=True)
    if hasattr(base, "embeddings_project"):  # ELECTRA: small embeddings, projected up to the hidden size
        x = step("embeddings_project", "embedding", f"{prefix}embeddings_project", base.embeddings_project(x), x,
                 stream=True)  # fmt: skip
    mask = torch.zeros(1, 1, ids.shape[1], ids.shape[1], dtype=x.dtype, device=x.device)  # one text: no padding
    for index, layer in enumerate(base.encoder.layer):
        step.layer, path = index, f"{prefix}encoder.layer.{index}"
        mixed = first(layer.attention.self(x, attention_mask=mask))
        step("self-attention", "attention", f"{path}.attention.self", mixed, x, mask)
        projected = layer.attention.output.dense(mixed)
        step("attention output projection", "attention", f"{path}.attention.output.dense", projected, mixed)
        summed = step.add(x, projected, "attention", post_norm=True)
        x = step("LayerNorm", "norm", f"{path}.attention.output.LayerNorm",
                 layer.attention.output.LayerNorm(summed), summed, stream=True)  # fmt: skip
        hidden = step("MLP up + GELU", "mlp", f"{path}.intermediate", layer.intermediate(x), x)
        down = step("MLP down", "mlp", f"{path}.output.dense", layer.output.dense(hidden), hidden)
        summed = step.add(x, down, "MLP", post_norm=True)
        x = step("LayerNorm", "norm", f"{path}.output.LayerNorm", layer.output.LayerNorm(summed), summed, stream=True)
    step.layer = None
    if getattr(base, "pooler", None) is not None:
        step("pooler (dense + tanh on the first token)", "head", "pooler", base.pooler(x), x)
    logits = None
    for name, child in model.named_children() if base is not model else ():
        if child is not base:  # a masked-LM head: everything outside the backbone, in order
            logits = step(f"{name} (masked-LM head)", "head", name, child(x if logits is None else logits), x)
    return step.steps, logits
