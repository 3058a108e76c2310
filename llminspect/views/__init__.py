"""Views: rendering only. Each takes plain data (Tokens, Trace, WordVectors, ...) and returns an
object that displays itself in JupyterLab and saves as one self-contained HTML file
(``views.save``). Nothing here touches a model.

Example:
    >>> from llminspect import views
    >>> callable(views.tokens) and callable(views.save)
    True
"""

from llminspect.views import anatomy
from llminspect.views.attention import (
    attention,
    audio_cross_attention,
    head_matrix,
    head_overview,
    kv_sharing,
    mask_explorer,
    masks,
)
from llminspect.views.embeddings import layer_similarity, neighbours, projection, rankings, similarity
from llminspect.views.html import save
from llminspect.views.importance import compare_methods, importance
from llminspect.views.importance import lab as importance_lab
from llminspect.views.layers import answer_rank, logit_lens, outline, residual_stream, rotary, steps_table, walk
from llminspect.views.sampling import knobs_lab as sampling
from llminspect.views.sampling import surprisal, tree
from llminspect.views.tokens import compare, healing, live, token_table, tokens

__all__ = [
    "anatomy",
    "answer_rank",
    "logit_lens",
    "outline",
    "residual_stream",
    "rotary",
    "steps_table",
    "walk",
    "attention",
    "audio_cross_attention",
    "compare_methods",
    "head_matrix",
    "importance",
    "importance_lab",
    "head_overview",
    "kv_sharing",
    "mask_explorer",
    "masks",
    "compare",
    "healing",
    "layer_similarity",
    "live",
    "neighbours",
    "projection",
    "rankings",
    "sampling",
    "save",
    "similarity",
    "surprisal",
    "token_table",
    "tokens",
    "tree",
]
