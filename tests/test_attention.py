"""Attention summaries, masks, key/value sharing, head search and views, against independent math."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import llminspect as li
from llminspect.analysis import attention as att
from llminspect.analysis import masks
from llminspect.errors import FamilyError, InputError
from llminspect.labs.attention import MEAN, AttentionExplorer, from_half_bytes
from llminspect.models.registry import sample_audio
from llminspect.views.bertviz_offline import loader_html


def random_attention(layers=2, heads=3, n=5, seed=0) -> torch.Tensor:
    scores = torch.randn(layers, heads, n, n, generator=torch.Generator().manual_seed(seed))
    return scores.softmax(-1)


def test_head_statistics_match_loops():
    attn = random_attention()
    stats = att.head_statistics(attn)
    for layer in range(2):
        for head in range(3):
            a = attn[layer, head].double().numpy()
            n = a.shape[0]
            entropy = np.mean([-sum(p * math.log2(p) for p in row if p > 0) for row in a])
            distance = np.mean([sum(a[i, j] * abs(i - j) for j in range(n)) for i in range(n)])
            assert stats["entropy"][layer, head] == pytest.approx(entropy, rel=1e-5)
            assert stats["distance"][layer, head] == pytest.approx(distance, rel=1e-5)
            assert stats["first token"][layer, head] == pytest.approx(a[:, 0].mean(), rel=1e-5)
            assert stats["self"][layer, head] == pytest.approx(np.trace(a) / n, rel=1e-5)
            assert stats["previous token"][layer, head] == pytest.approx(np.mean([a[i, i - 1] for i in range(1, n)]))


def test_cross_attention_gets_only_the_summaries_that_make_sense():
    stats = att.head_statistics(torch.rand(1, 2, 3, 7).softmax(-1))
    assert sorted(stats) == ["entropy", "first token"]
    with pytest.raises(InputError, match="layers, heads, queries, keys"):
        att.head_statistics(torch.rand(3, 3))


def test_kv_groups_match_transformers_repeat_kv():
    from transformers.models.llama.modeling_llama import repeat_kv

    kv = torch.arange(3.0).view(1, 3, 1, 1)  # key/value head g holds the value g
    repeated = repeat_kv(kv, 3)  # what Llama attention does for 9 query heads over 3 kv heads
    assert att.kv_groups(9, 3) == repeated.flatten().int().tolist()
    assert att.kv_groups(4, None) == [0, 1, 2, 3] and att.kv_groups(4, 1) == [0, 0, 0, 0]
    with pytest.raises(InputError, match="evenly"):
        att.kv_groups(9, 2)


def test_sliding_window_mask_is_the_one_mistral_applies(tiny):
    model = li.load(tiny("mistral", num_hidden_layers=1, sliding_window=3)).model
    with torch.no_grad():
        weights = model(torch.arange(1, 11)[None], output_attentions=True).attentions[0][0]
    for head in weights:
        assert torch.equal(head > 0, masks.sliding_window_mask(10, 3))
    assert masks.sliding_window_mask(10, 3).sum(-1).max() == 3  # w keys, itself included: not w + 1
    with pytest.raises(InputError):
        masks.sliding_window_mask(5, 0)


def test_causal_and_padding_masks_match_real_models(decoder, encoder):
    tr = decoder.trace("The quick brown fox jumps")
    assert torch.equal(tr.attentions[0, 0] > 0, masks.causal_mask(len(tr.tokens)))
    batch = encoder.tokenizer(["a quick test sentence here", "short"], padding=True, return_tensors="pt")
    with torch.no_grad():
        weights = encoder.model(**batch, output_attentions=True).attentions[0]
    lengths = batch.attention_mask.sum(-1).tolist()
    keys = masks.padding_mask(lengths)
    assert torch.equal(batch.attention_mask.bool(), keys)
    assert torch.all(weights[1][:, :, ~keys[1]] == 0)  # nobody attends to padding


def test_find_heads_is_the_argmax_of_the_weight_from_it_to_animal(decoder):
    tr = decoder.trace("The animal didn't cross the street because it was too tired")
    it, animal = tr.tokens.labels.index("␣it"), tr.tokens.labels.index("␣animal")
    best = att.find_heads(tr.attentions, tr.tokens, "it", "animal", top=3)
    flat = tr.attentions[:, :, it, animal].flatten()
    assert [(h.layer * 9 + h.head) for h in best] == flat.argsort(descending=True)[:3].tolist()
    assert best[0].weight == pytest.approx(float(flat.max()))
    assert (best[0].layer, best[0].head) == (13, 8) and best[0].weight > 0.7  # the lesson's head


def test_whisper_alignment_follows_the_speech(whisper):
    tr = whisper.trace(sample_audio("quick_brown_fox"))
    times = att.audio_alignment(tr, whisper.alignment_heads)
    assert times.tokens[:4] == ["␣The", "␣quick", "␣brown", "␣fox"]
    words = dict(zip(times.tokens, times.seconds, strict=True))
    assert words["␣fox"] == pytest.approx(1.36, abs=0.1) and words["␣Paris"] == pytest.approx(4.5, abs=0.1)
    assert all(later >= earlier for earlier, later in zip(times.seconds, times.seconds[1:], strict=False))
    assert max(times.positions) < tr.audio_positions
    cross = tr.cross_attentions
    mean = torch.stack([cross[layer, head] for layer, head in whisper.alignment_heads]).mean(0)
    assert times.positions[3] == int(mean[5, : tr.audio_positions].argmax())  # row 5 = " fox" after 2 prefix tokens
    with pytest.raises(FamilyError):
        att.audio_alignment(li.load("toy-seq2seq").trace("bird eats mouse"))


def test_bertviz_views_are_offline_and_escaped(encoder):
    tr = encoder.trace("The quick brown fox <script>alert(1)</script>")
    for view in ("head", "model"):
        html = li.views.bertviz(tr, view=view).to_html()
        assert not re.search(r"<script[^>]*src\s*=\s*['\"]?https?://", html)
        assert "cdnjs" not in html
        assert "https://d3js.org v5.7.0" in html and "jQuery v2.2.4" in html and "RequireJS 2.3.6" in html
        script_part = html.split('<script type="text/javascript">')[1]
        assert "require.config" not in script_part  # bertviz's CDN paths are gone
        assert "</script><" not in script_part.rsplit("</script>", 1)[0]  # the token cannot close the script
    assert len(loader_html()) > 400_000


def test_bertviz_refuses_what_it_cannot_draw(decoder, whisper):
    long = decoder.trace("word " * 320)
    with pytest.raises(InputError, match="too many for bertviz.*li.labs.attention"):
        li.views.bertviz(long)
    with pytest.raises(InputError, match="1,500 audio positions"):
        li.views.bertviz(whisper.trace(sample_audio("hello_world")))
    with pytest.raises(InputError, match="'head' and a 'model' view"):
        li.views.bertviz(long, view="pretty")


def test_one_head_as_a_figure(decoder, toy):
    tr = decoder.trace("The animal didn't cross the street because it was too tired")
    np.testing.assert_allclose(li.views.attention(tr, layer=13, head=8).data[0].z, tr.attentions[13, 8].numpy())
    mean = li.views.attention(tr, layer=13, head="mean")
    np.testing.assert_allclose(mean.data[0].z, tr.attentions[13].mean(0).numpy(), rtol=1e-6)
    assert "mean of all heads (averaged)" in mean.layout.title.text
    translation = toy.trace("happy bird eats small mouse")
    cross = li.views.attention(translation, part="cross-attention", layer=1, head=2)
    np.testing.assert_allclose(cross.data[0].z, translation.cross_attentions[1, 2].numpy())
    for wrong, match in (({"layer": 30}, "layers 0 to 29"), ({"head": 9}, "heads 0 to 8"), ({"part": "x"}, "part=")):
        with pytest.raises(InputError, match=match):
            li.views.attention(tr, **wrong)


def test_explorer_sends_what_the_trace_holds(decoder):
    tr = decoder.trace("The animal didn't cross the street because it was too tired")
    explorer = li.labs.attention(tr, layer=13, head=8)
    assert isinstance(explorer, AttentionExplorer) and explorer.block == 1  # short: the whole map at full size
    sent = from_half_bytes(explorer.maps, (10, *explorer.pooled))  # every head of the layer, then their mean
    torch.testing.assert_close(sent[:9], tr.attentions[13], atol=2e-4, rtol=1e-3)  # float16 on the wire
    torch.testing.assert_close(sent[9], tr.attentions[13].mean(0), atol=2e-4, rtol=1e-3)
    assert explorer.kv_groups == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # the page writes the grouped-query note from it
    stats = att.head_statistics(tr.attentions)
    np.testing.assert_allclose(explorer.summary["previous token"], stats["previous token"].numpy(), atol=1e-4)
    explorer.head = 3
    explorer.token = 8  # " it"
    row = from_half_bytes(explorer.row, (len(tr.tokens),), deflated=False)
    torch.testing.assert_close(row, tr.attentions[13, 3, 8], atol=2e-4, rtol=1e-3)
    explorer.head = MEAN
    box = from_half_bytes(explorer.detail, explorer.detail_shape)
    torch.testing.assert_close(box, tr.attentions[13].mean(0), atol=2e-4, rtol=1e-3)
    explorer.layer = 2
    assert not torch.equal(from_half_bytes(explorer.maps, (10, *explorer.pooled)), sent)


def test_a_long_trace_is_sent_pooled_and_by_windows(decoder):
    ids = decoder.tokenizer("The quick brown fox jumps over the lazy dog. " * 60).input_ids[:600]
    tr = decoder.trace(decoder.tokenizer.decode(ids))
    explorer = li.labs.attention(tr, layer=15, head=0)
    queries = len(tr.tokens)
    assert explorer.block == 3 and explorer.pooled == [-(-queries // 3)] * 2
    layer = tr.attentions[15]
    pooled = torch.nn.functional.max_pool2d(layer[None], 3, 3, ceil_mode=True)[0]
    sent = from_half_bytes(explorer.maps, (10, *explorer.pooled))
    torch.testing.assert_close(sent[:9], pooled, atol=2e-4, rtol=1e-3)  # each pixel: the largest weight of its block
    explorer.window, explorer.span = [100, 40], 32
    box = from_half_bytes(explorer.detail, explorer.detail_shape)
    torch.testing.assert_close(box, layer[0, 100:132, 40:72], atol=2e-4, rtol=1e-3)
    assert len(explorer.maps) < 1_000_000 and len(explorer.detail) < 10_000  # deflated float16, not JSON numbers
    explorer.window = [10_000, -5]  # clamped into the map
    assert explorer.window == [queries - 32, 0]


def test_explorer_parts_of_an_encoder_decoder(toy):
    tr = toy.trace("happy bird eats small mouse")
    explorer = li.labs.attention(tr, part="cross-attention", layer=1, head="mean")
    assert explorer.parts == ["encoder self-attention", "decoder self-attention", "cross-attention"]
    box = from_half_bytes(explorer.detail, explorer.detail_shape)
    torch.testing.assert_close(box, tr.cross_attentions[1].mean(0), atol=2e-4, rtol=1e-3)
    explorer.part = "encoder self-attention"
    explorer.head = 2
    torch.testing.assert_close(from_half_bytes(explorer.detail, explorer.detail_shape), tr.encoder_attentions[1, 2],
                               atol=2e-4, rtol=1e-3)  # fmt: skip
    assert explorer.labels[-1] == "</s>"  # the page writes labels as text, never as markup
    with pytest.raises(InputError, match="part="):
        li.labs.attention(tr, part="both")


def test_the_explorer_saves_as_a_page_that_works_offline(toy, tmp_path):
    explorer = li.labs.attention(toy.trace("happy bird <script>x</script>"))
    page = li.views.save(explorer, tmp_path / "explorer.html").read_text()
    assert "startHandout(" in page and not re.search(r"https?://", page)  # nothing to fetch
    assert "<script>x</script>" not in page  # labels travel as JSON with "</" escaped
    assert not re.search(r"<script[^>]*src=", page)


def test_masks_and_kv_pictures_draw_the_computed_masks():
    fig = li.views.masks(n=6, window=2, lengths=(6, 4))
    assert np.array_equal(np.array(fig.data[0].z), masks.causal_mask(6).int().numpy())
    assert np.array_equal(np.array(fig.data[2].z), masks.sliding_window_mask(6, 2).int().numpy())
    assert np.array(fig.data[1].z)[:, 4:].sum() == 0  # padding columns
    assert "i−2 < j ≤ i (2 keys)" in fig.layout.annotations[2].text
    grid = li.views.kv_sharing(9, 3)
    assert np.array(grid.data[0].z).sum() == 9 and "9 query heads read 3 key/value heads" in grid.layout.title.text
    slider_view = li.labs.masks(n=8, window=3)
    slider, out = slider_view.children
    slider.value = 5
    drawn = out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]["annotations"][2]["text"]
    assert "w=5" in drawn


def test_audio_view_plots_the_alignment(whisper):
    tr = whisper.trace(sample_audio("hello_world"))
    times = att.audio_alignment(tr, whisper.alignment_heads)
    fig = li.views.audio_cross_attention(tr, whisper.alignment_heads, times)
    assert list(fig.data[1].x) == pytest.approx(times.seconds)
    assert fig.data[2].x[-1] <= tr.source.duration + 1e-6  # the waveform ends with the clip
