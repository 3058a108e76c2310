"""Views show the computed numbers, escape every token string, and save as offline HTML."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser

import pytest
import torch

import llminspect as li
from llminspect.analysis import embeddings as emb
from llminspect.errors import LLMInspectError
from llminspect.labs.display import debounced

HOSTILE = "<script>alert('x')</script> <img src=x onerror=alert(1)> &lt;b&gt; \"quoted\" 🦜"


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(attrs)


def parsed(html: str) -> TagCollector:
    collector = TagCollector()
    collector.feed(html)
    return collector


@pytest.mark.parametrize("name", ["encoder", "decoder", "encoder-decoder"])
def test_token_views_never_turn_token_text_into_markup(name, request):
    model = request.getfixturevalue({"encoder-decoder": "whisper"}.get(name, name))
    toks = model.tokenize(HOSTILE)
    for view in (li.views.tokens(toks), li.views.token_table(toks), li.views.compare({"<b>name</b>": toks})):
        html = view.to_html()
        found = parsed(html)
        assert "script" not in found.tags and "img" not in found.tags and "b" not in found.tags
        assert not any(name.startswith("on") for name, _ in found.attributes)
        assert not re.search(r"(src|href)\s*=\s*['\"]?https?://", html)


def test_chips_carry_ids_counts_bytes_and_marks(decoder, encoder):
    toks = decoder.tokenize("I love 🦜")
    html = li.views.tokens(toks).body
    assert f"{len(toks)} tokens, 3 of them part of a character" in html
    for token_id in toks.ids:
        assert f"<small>{token_id}</small>" in html
    assert html.count("li-chip partial") == 3 and "bytes 20 F0 9F" in html and "␣love" in html
    encoded = li.views.tokens(encoder.tokenize("hi")).body
    assert encoded.count("li-chip special") == 2


def test_compare_shows_each_count(encoder, decoder):
    text = "The child's coloring book."
    view = li.views.compare({"encoder": encoder.tokenize(text), "decoder": decoder.tokenize(text)}).body
    assert "9 tokens" in view and "6 tokens" in view


def test_healing_view_shows_the_numbers(decoder):
    healed = decoder.healing("The url is http:", k=3)
    html = li.views.healing(healed).body
    for p in healed.before.probabilities + healed.after.probabilities:
        assert f"{p:.1%}" in html
    assert f"{healed.mass:.1%}" in html


def test_live_widget_updates_on_typing(decoder, encoder):
    widget = li.labs.tokenizers({"decoder": decoder, "encoder": encoder}, "hello")
    box, output = widget.children
    assert "decoder" in output.value and "1 tokens" in output.value  # "hello" is one decoder token
    box.value = "hello world 🦜"  # no running event loop here: the update runs at once
    assert f"{len(decoder.tokenize('hello world 🦜'))} tokens" in output.value
    box.value = ""
    assert "Type some text" in output.value


def test_debounce_runs_only_the_last_call_in_a_burst():
    calls = []

    async def burst():
        update = debounced(0.05, calls.append)
        for text in ["h", "he", "hel", "hello"]:
            update(text)
        await asyncio.sleep(0.15)

    asyncio.run(burst())
    assert calls == ["hello"]


def test_layer_similarity_plots_the_computed_cosines(encoder):
    contexts = ["He sat on the river bank.", "She opened a bank account."]
    bank = emb.word_in_contexts(encoder, "bank", contexts)
    fig = li.views.layer_similarity(bank)
    assert list(fig.data[0].y) == [1.0] * 7  # the static vector's line
    assert list(fig.data[1].y) == pytest.approx(bank.similarity()[:, 0, 1].tolist())


def test_projection_and_rankings_plot_their_data(decoder):
    words = ["cat", "dog", "France", "Japan"]
    _, vectors = emb.word_vectors(decoder, words)
    projected = emb.project(vectors, words, ["animal", "animal", "country", "country"])
    fig = li.views.projection(projected)
    assert [trace.name for trace in fig.data] == ["animal", "country"]
    assert list(fig.data[1].x) == pytest.approx(projected.coordinates[2:, 0].tolist())
    assert f"{sum(projected.explained_variance):.0%}" in fig.layout.title.text
    ranking = emb.Ranking("mean", 0.5, 0.75, [1, 2])
    bars = li.views.rankings([ranking])
    assert list(bars.data[0].y) == [0.5] and list(bars.data[1].y) == [0.75]


def test_neighbours_table_escapes_and_shows_cosines(decoder):
    result = emb.Neighbours("<b>king</b>", ["<x>"], ["<script>", " queen"], [1, 2], [0.9, 0.5])
    html = li.views.neighbours(result).body
    assert "<script>" not in html and "&lt;script&gt;" in html and "0.900" in html and "␣queen" in html


def test_save_writes_offline_html_for_html_views_and_plotly(tmp_path, decoder):
    li.views.save(li.views.tokens(decoder.tokenize("hi")), tmp_path / "tokens.html")
    fig = li.views.similarity(["a", "b"], torch.eye(2))
    li.views.save(fig, tmp_path / "fig.html")
    text = (tmp_path / "fig.html").read_text()
    assert "plotly" in text and not re.search(r"<script[^>]+src=['\"]?https?://", text)
    with pytest.raises(LLMInspectError, match="cannot be saved"):
        li.views.save(li.labs.tokenizers(decoder, "hi"), tmp_path / "live.html")
