"""Views: rendering only. Each takes plain data (Tokens, Trace, ...) and returns an object that
displays itself in JupyterLab and saves as one self-contained HTML file. Nothing here touches a
model.

Example:
    >>> from llminspect import views
    >>> callable(views.token_table)
    True
"""

from .tokens import token_table

__all__ = ["token_table"]
