"""The zoo's checks for lessons 09 and 10: induction scores, direct logit attribution, steering and probe streams,
each against the reference model (plain transformers on the same folder), computed here without llminspect."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plain_torch import AddedBlock

from llminspect.analysis import probes
from llminspect.models.structure import block_lists


def close(ours, theirs, atol=2e-5, rtol=2e-4) -> None:
    torch.testing.assert_close(ours.double(), theirs.detach().double(), atol=atol, rtol=rtol)


def check_induction(m, ref):
    """Scores and losses equal the reference's attention maps and logits on the same repeated tokens."""
    found = m.induction(length=6, seed=0)
    ids = torch.tensor([found.ids])
    with torch.no_grad():
        out = ref(input_ids=ids, output_attentions=True, use_cache=False)
    maps = torch.stack([a[0] for a in out.attentions])
    expected = torch.stack([maps[:, :, t, t - 5] for t in range(6, 12)]).mean(0)
    close(found.induction, expected)
    logp = out.logits[0].double().log_softmax(-1)
    close(found.losses[1:], -logp[torch.arange(11), ids[0, 1:]], atol=1e-4)
    return found


def _pre_norm_stream(ref, ids):
    """The reference's logits and the stream entering its final norm (the module a norm hook sees), last position."""
    path, blocks = block_lists(ref)[-1]
    seen = {}
    hook = blocks[-1].register_forward_hook(lambda mod, args, out: seen.update(x=(out[0] if isinstance(out, tuple)
                                                                                   else out)[0, -1]))  # fmt: skip
    try:
        with torch.no_grad():
            out = ref(input_ids=ids, output_hidden_states=True, use_cache=False)
    finally:
        hook.remove()
    return out, seen["x"].double()


def check_logit_attribution(m, ref, tokenizer):
    """The shares add up to the reference's logit difference, and each block's share is its own addition to the
    stream read through the final norm with the scale frozen (hidden states from the reference)."""
    found = m.logit_attribution("happy bird eats the", " mouse", " the")
    ids = tokenizer("happy bird eats the", return_tensors="pt").input_ids
    answer, other = (tokenizer(w, add_special_tokens=False).input_ids[0] for w in (" mouse", " the"))
    out, last = _pre_norm_stream(ref, ids)
    difference = float(out.logits[0, -1, answer] - out.logits[0, -1, other])
    assert found.difference == pytest.approx(difference, abs=1e-4)
    assert found.total == pytest.approx(difference, abs=1e-4)
    streams = [h[0, -1].double() for h in out.hidden_states[:-1]] + [last]  # the last hidden state is normed
    blocks = torch.stack([b - a for a, b in zip(streams, streams[1:], strict=False)])
    norm = m.sites()["final_norm"].module
    weight = norm.weight.detach().double() + (1 if found.norm == "RMSNorm (1 + weight)" else 0)
    centred = found.norm == "LayerNorm"
    unembed = ref.get_output_embeddings().weight.detach().double()
    direction = (unembed[answer] - unembed[other]) * weight / found.scale
    if centred:
        blocks = blocks - blocks.mean(-1, keepdim=True)
    close(found.attention + found.mlp, blocks @ direction, atol=1e-4, rtol=1e-3)
    close(found.heads.sum(1) + found.attention_bias, found.attention, atol=1e-5)
    return found


def check_steering(m, ref, tokenizer):
    """One layer and coefficient: the steered metric equals the reference with the vector added by plain torch."""
    found = m.steering(["happy bird eats", "a cat sleeps"], " happy", " sad", ([" the"], [" mouse"]), layers=[1],
                       coefficients=[2.0], controls=0)  # fmt: skip
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    path, blocks = block_lists(ref)[-1]

    def ids_of(text):
        ids = tokenizer(text).input_ids
        return ids if ids[0] == start else [start, *ids]

    with torch.no_grad():
        streams = [ref(input_ids=torch.tensor([ids_of(w)]), output_hidden_states=True).hidden_states[1][0]
                   for w in (" happy", " sad")]  # fmt: skip
    vector = 2.0 * (streams[0][1:] - streams[1][1:])
    answer, other = (tokenizer(w, add_special_tokens=False).input_ids[0] for w in (" the", " mouse"))
    for row, prompt in enumerate(found.prompts):
        metrics = []
        for added in (None, vector):
            original = blocks[1]
            if added is not None:
                blocks[1] = AddedBlock(original, 1, added)
            try:
                with torch.no_grad():
                    logp = ref(input_ids=torch.tensor([ids_of(prompt)]), use_cache=False).logits[0, -1].double()
            finally:
                blocks[1] = original
            logp = logp.log_softmax(-1)
            metrics.append(float(logp[answer] - logp[other]))
        assert float(found.baseline[row]) == pytest.approx(metrics[0], abs=1e-4)
        assert float(found.per_prompt[0, 0, row]) == pytest.approx(metrics[1] - metrics[0], abs=2e-4)
    return found


def check_probe(m, ref, tokenizer):
    """The streams a probe reads equal the reference's hidden states at the last position (all but the last,
    which transformers hands back after the final norm where a model has one)."""
    texts = ["happy bird eats the mouse", "a cat sleeps", "happy cat eats"]
    streams = probes.streams_at(m, texts)
    for row, text in enumerate(texts):
        with torch.no_grad():
            hidden = ref(**tokenizer(text, return_tensors="pt"), output_hidden_states=True).hidden_states
        close(streams[row, :-1], torch.stack([h[0, -1] for h in hidden[:-1]]), atol=1e-4, rtol=1e-3)
    assert np.isfinite(streams.numpy()).all()
    return streams
