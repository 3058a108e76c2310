"""Views: rendering only. Each takes plain data (Tokens, Trace, WordVectors, ...) and returns an
object that displays itself in JupyterLab and saves as one self-contained HTML file
(``views.save``). Nothing here touches a model.

Example:
    >>> from llminspect import views
    >>> callable(views.tokens) and callable(views.save)
    True
"""

from llminspect.views import anatomy, precision
from llminspect.views.anatomy import routing
from llminspect.views.attention import (
    attention,
    audio_cross_attention,
    bertviz,
    head_matrix,
    head_overview,
    kv_sharing,
    masks,
)
from llminspect.views.circuits import (
    head_attribution,
    induction_ablation,
    induction_heads,
    induction_losses,
    logit_attribution,
)
from llminspect.views.embeddings import layer_similarity, neighbours, projection, rankings, similarity
from llminspect.views.html import save
from llminspect.views.importance import compare_methods, importance
from llminspect.views.interventions import ablation, head_effects, patching
from llminspect.views.journey import journey, kv_cache, translation
from llminspect.views.layers import (
    answer_rank,
    logit_lens,
    opened_block,
    outline,
    residual_stream,
    rotary,
    steps_table,
)
from llminspect.views.representations import probe, steered_text, steering, superposition
from llminspect.views.sampling import branches, surprisal
from llminspect.views.tokens import compare, healing, token_table, tokens

__all__ = [
    "ablation", "anatomy", "answer_rank", "attention", "audio_cross_attention", "bertviz", "branches", "compare",
    "compare_methods", "head_attribution", "head_effects", "head_matrix", "head_overview", "healing", "importance",
    "induction_ablation", "induction_heads", "induction_losses", "journey", "kv_cache", "kv_sharing",
    "layer_similarity", "logit_attribution", "logit_lens", "masks", "neighbours", "opened_block", "outline",
    "patching", "precision", "probe", "projection", "rankings", "residual_stream", "rotary", "routing", "save",
    "similarity", "steered_text", "steering", "steps_table", "superposition", "surprisal", "token_table", "tokens",
    "translation",
]  # fmt: skip
