"""Interactive labs: widgets that run a model (or re-draw its data) as the learner turns a knob.

Each lab takes what the front door gives — a loaded model or a trace/walk — and draws with
``llminspect.views``. In JupyterLab every lab works offline.

Example:
    >>> from llminspect import labs
    >>> sorted(labs.__all__)
    ['attention', 'importance', 'journey', 'masks', 'sampling', 'tokenizers', 'walk']
"""

from llminspect.labs.attention import attention, masks
from llminspect.labs.importance import importance
from llminspect.labs.journey import journey
from llminspect.labs.sampling import sampling
from llminspect.labs.tokens import tokenizers
from llminspect.labs.walk import walk

__all__ = ["attention", "importance", "journey", "masks", "sampling", "tokenizers", "walk"]
