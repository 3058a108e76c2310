"""Sites: named places inside a model, and one run that keeps and edits them.

Every analysis that reads or changes what happens inside a model goes through this module — the
idea of TransformerLens's hook points and ``run_with_cache``, and of nnsight's trace, on the
unmodified transformers model, for every family. It is the only place that registers hooks.

The names (``m.sites()`` lists a model's own; an encoder-decoder puts ``encoder.`` or
``decoder.`` in front of each, so ``decoder.layer.1.cross_attention.heads``):

==========================  ========================================================  =======================
site                        what it holds                                             shape (batch first)
==========================  ========================================================  =======================
``embeddings``              the stream entering the first block (= ``layer.0.input``)  [batch, tokens, hidden]
``layer.L.input``           the stream entering block L                               [batch, tokens, hidden]
``layer.L.attention.heads`` each head's output, before the output projection joins     [batch, tokens, heads,
                            them (weights · v)                                        head_dim]
``layer.L.attention.output``what the self-attention module returns (its projection)   [batch, tokens, hidden]
``layer.L.mlp.output``      what the MLP returns                                      [batch, tokens, hidden]
``layer.L.output``          the stream leaving block L (the residual stream)          [batch, tokens, hidden]
``final_norm``              the final norm's output                                   [batch, tokens, hidden]
``logits``                  the model's token scores (read only)                      [batch, tokens, vocab]
==========================  ========================================================  =======================

``attention.q`` and ``attention.k`` are read only: they are the two operands of the block's
first q·kᵀ product, seen by a torch function mode while the block runs — the same for a model
that applies RoPE in a function of its own (no module to hook) and one that fuses q, k and v.

A site appears only where the model has it: BERT's attention and MLP add and normalise inside
their own modules, so it has no ``attention.output`` / ``mlp.output``; a post-norm model has no
``final_norm``. ``run`` keeps sites (``keep=["layer.*.output"]``, patterns allowed) and edits
them (``edit={"layer.3.attention.heads": f}``: ``f`` gets a copy of the value and returns the
new one, or None to leave it), with every hook removed however the run ends.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> def no_head_4(heads):
    ...     heads[:, :, 4] = 0
    ...     return heads
    >>> cache = run(m, m.inputs("The capital of France is"), keep=["layer.*.output"],
    ...             edit={"layer.23.attention.heads": no_head_4})
    >>> cache["layer.29.output"].shape, len(cache)
    (torch.Size([1, 5, 576]), 30)
"""

from llminspect.analysis.sites.places import Site, Sites, check_head, check_layer, check_stream, sites_of
from llminspect.analysis.sites.running import Cache, hooked, run, watching

__all__ = ["Cache", "Site", "Sites", "check_head", "check_layer", "check_stream", "hooked", "run", "sites_of",
           "watching"]  # fmt: skip
