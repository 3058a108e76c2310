"""bertviz's head and model views, made to render with no network.

bertviz 1.4.1 writes ``<script src=".../require.min.js">`` and a ``require.config`` that points
d3 and jQuery at a CDN, so in an offline room the view stays blank ("require is not defined").
We keep bertviz's own view code and replace only the loading: require.js is inlined (it steps
aside when the page already has an AMD loader), and d3 and jQuery are inlined as *named* AMD
modules through a local ``define`` shim, so a page's own ``define`` is never overwritten.
The libraries come from ``assets/vendor`` (copied from their npm packages; licences there).

Example:
    >>> import torch
    >>> html = bertviz_html("head", (torch.full((1, 1, 2, 2), 0.5),), ["a", "b"])
    >>> "cdnjs" in html, "RequireJS 2.3.6" in html
    (False, True)
"""

from __future__ import annotations

import functools
import re

from llminspect.models.registry import ASSETS

VENDOR = ASSETS / "vendor"
_CDN_REQUIRE = re.compile(r"<script src=\"https?://[^\"]*require[^\"]*\"></script>")
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{\s*paths:\s*\{[^}]*\}\s*\}\);")

_DEFINE_NAMED = """<script>
(function () {
  var amd = window.define;
  if (typeof amd !== "function" || !amd.amd) { return; }
  if (window.requirejs && window.requirejs.defined && window.requirejs.defined("%(name)s")) { return; }
  var define = function (name, deps, factory) {
    if (typeof name !== "string") { factory = deps; deps = name; name = "%(name)s"; }
    return amd(name, deps, factory);
  };
  define.amd = amd.amd;
  (function () {
%(source)s
  }).call(window);
})();
</script>"""


@functools.cache
def loader_html() -> str:
    """The inline scripts that stand in for bertviz's CDN downloads (about 410 KB)."""
    require = (VENDOR / "require-2.3.6.js").read_text(encoding="utf-8")
    modules = [
        _DEFINE_NAMED % {"name": name, "source": (VENDOR / file).read_text(encoding="utf-8")}
        for name, file in (("d3", "d3-5.7.0.min.js"), ("jquery", "jquery-2.2.4.min.js"))
    ]
    return f"<script>\n{require}\n</script>\n" + "\n".join(modules)


def make_offline(bertviz_output: str) -> str:
    """Rewrite bertviz's returned HTML so it loads its libraries inline instead of from a CDN."""
    html, found = _CDN_REQUIRE.subn("", bertviz_output)
    html, configured = _REQUIRE_CONFIG.subn("", html)
    if not (found and configured):
        raise RuntimeError("bertviz's HTML no longer has the CDN loader we replace; check the bertviz version (1.4.1).")
    # bertviz embeds the tokens as JSON inside its <script>: a token such as "</script>" would end
    # the script early. Its view code contains no "</" or "<!--", so escaping them only touches
    # strings, where "<\/" and "<\!--" read the same to JavaScript.
    markup, script_open, rest = html.partition('<script type="text/javascript">')
    code, script_close, tail = rest.rpartition("</script>")
    code = code.replace("</", "<\\/").replace("<!--", "<\\!--")
    return loader_html() + markup + script_open + code + script_close + tail


def bertviz_html(view: str, attention, tokens: list[str], **kwargs) -> str:
    """Offline HTML of bertviz's ``head`` or ``model`` view; arguments as in bertviz."""
    from bertviz import head_view, model_view

    render = {"head": head_view, "model": model_view}[view]
    return make_offline(render(attention, tokens, html_action="return", **kwargs).data)
