"""Every capability on tiny random models of many architectures: equal to transformers, or a clear refusal.

Each architecture of ``tests/zoo.py`` is saved as an ordinary model folder and loaded with
``li.load(folder)``. Every number llminspect gives is checked against a reference computed here
with plain transformers on the same folder, loaded independently (the class its config names,
eager attention) — or the capability must refuse with an ``LLMInspectError``. Which cells may
refuse is written down in ``REFUSES``: a capability that starts refusing, or starts running
where it refused, fails the test. The matrix is printed at the end of the run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import transformers
from plain_torch import PatchedBlock
from zoo import ZOO
from zoo_circuits import check_induction, check_logit_attribution, check_probe, check_steering

import llminspect as li
from llminspect import views
from llminspect.analysis.anatomy import anatomy
from llminspect.analysis.residual import residual_stream
from llminspect.analysis.sampling import Knobs, apply_knobs
from llminspect.labs.attention import from_half_bytes
from llminspect.models.loading import quiet_transformers
from llminspect.models.structure import block_lists

FAST = {"llama", "gpt2", "bert-mlm", "bart"}  # one of each kind in the fast tier; the rest run in the full suite
FLOAT32 = {"atol": 2e-5, "rtol": 2e-4}  # llminspect's pass vs an independent one: float32 rounding only
TEXT, OTHER, TARGET = "happy bird eats the mouse", "a cat sleeps", "birdo gaja"
CAPABILITIES = ("load", "trace", "run", "walk: hooks", "walk: by hand", "importance: integrated_gradients",
                "importance: gradient_x_input", "importance: saliency", "importance: feature_ablation",
                "importance: shapley", "importance: attention", "next tokens", "sampling lab", "logit lens",
                "rotary", "heads off", "patching", "journey", "kv cache", "induction", "logit attribution", "steering",
                "probe", "anatomy", "views")  # fmt: skip
NON_ROTARY = {"gpt2", "opt", "bloom", "bert", "bert-mlm", "roberta", "distilbert", "albert", "deberta-v2", "electra",
              "t5", "bart", "mbart", "marian", "pegasus"}  # fmt: skip
ENCODERS = {"bert", "bert-mlm", "roberta", "distilbert", "albert", "deberta-v2", "electra"}
NO_HEAD = {"bert", "roberta", "distilbert", "albert", "deberta-v2", "electra", "llama-no-head"}
NOT_BY_HAND = {"gpt2", "gpt-neox", "opt", "falcon", "phi", "gptj", "bloom", "distilbert", "albert", "deberta-v2", "t5"}
IMPORTANCE = [c for c in CAPABILITIES if c.startswith("importance")]
SEQ2SEQ = {"t5", "bart", "mbart", "marian", "pegasus"}
# decoders whose stream is not the embeddings plus their attention and MLP outputs as the sites see them: norms after
# the attention and the MLP (Gemma 2 and 3, OLMo-2), the residual added inside the attention module (BLOOM), the
# attention added into the MLP's output tensor in place (Falcon): direct attribution refuses
NOT_A_SUM = {"gemma2", "gemma3", "olmo2", "bloom", "falcon"}
REFUSES = (
    {(name, "walk: by hand") for name in NOT_BY_HAND}
    | {(name, "rotary") for name in NON_ROTARY}
    | {(name, "next tokens") for name in ENCODERS | {"llama-no-head", "t5", "bart", "mbart", "marian", "pegasus"}}
    | {(name, "sampling lab") for name in ENCODERS | {"llama-no-head"}}
    | {(name, "logit lens") for name in NO_HEAD}
    | {("llama-no-head", capability) for capability in IMPORTANCE}
    | {(name, "importance: attention") for name in ENCODERS}
    | {(name, "patching") for name in ENCODERS | {"llama-no-head", "t5", "bart", "mbart", "marian", "pegasus"}}
    | {(name, what) for name in ENCODERS | {"llama-no-head", "t5", "bart", "mbart", "marian", "pegasus"}
       for what in ("journey", "kv cache")}
    | {("albert", "heads off"), ("albert", "run")}  # one shared block runs in every layer: no site is one place
    | {(name, what) for name in ENCODERS | {"llama-no-head", *SEQ2SEQ} for what in ("induction", "steering")}
    | {(name, "logit attribution") for name in ENCODERS | {"llama-no-head", *SEQ2SEQ} | NOT_A_SUM}
    | {(name, "probe") for name in {"albert", *SEQ2SEQ}}
)
MATRIX: dict[str, dict[str, str]] = {}


def reference_model(species, folder):
    """The folder loaded by plain transformers, as a user of transformers would: the class its config names."""
    with quiet_transformers():
        model = getattr(transformers, species.model).from_pretrained(folder, attn_implementation="eager")
    return model.eval()


def inputs_for(m, reference_tokenizer) -> dict:
    """What the model reads for the zoo's text, tokenized by the raw tokenizer (never by llminspect)."""
    ids = reference_tokenizer(TEXT, return_tensors="pt").input_ids
    if m.family != "encoder-decoder":
        return {"input_ids": ids}
    target = reference_tokenizer(text_target=TARGET).input_ids
    return {"input_ids": ids, "decoder_input_ids": torch.tensor([[m.config.decoder_start_token_id] + target])}


def close(ours, theirs, **tolerance) -> None:
    torch.testing.assert_close(ours.float(), theirs.detach().float(), **(tolerance or FLOAT32))


# --- the checks, one per capability -------------------------------------------------------------------


def zoo_trace(m):
    """llminspect's trace of the zoo's text (with the target, for an encoder-decoder)."""
    return m.trace(TEXT, TARGET) if m.family == "encoder-decoder" else m.trace(TEXT)


def check_trace(m, ref, inputs):
    tr = zoo_trace(m)
    with torch.no_grad():
        out = ref(**inputs, output_hidden_states=True, output_attentions=True, use_cache=False)
    assert tr.tokens.ids == inputs.get("decoder_input_ids", inputs["input_ids"])[0].tolist()
    hidden = out.decoder_hidden_states if m.family == "encoder-decoder" else out.hidden_states
    attentions = out.decoder_attentions if m.family == "encoder-decoder" else out.attentions
    close(tr.hidden_states, torch.stack([h[0] for h in hidden]))
    close(tr.attentions, torch.stack([a[0] for a in attentions]))
    if m.family == "encoder-decoder":
        close(tr.cross_attentions, torch.stack([a[0] for a in out.cross_attentions]))
    if getattr(out, "logits", None) is None:
        assert tr.logits is None
    else:
        close(tr.logits, out.logits[0])
    return tr, out


def check_run(m, out):
    """m.run keeps the stream before and after every block of the writing stack, equal to transformers'."""
    stack = m.sites().architecture.writer
    prefix = f"{stack.name}." if stack.name else ""
    names = [f"{prefix}embeddings"] + [f"{prefix}layer.{i}.output" for i in range(stack.layers)]
    final = f"{prefix}final_norm" if f"{prefix}final_norm" in m.sites() else names[-1]
    keep = [*names, final]
    cache = m.run(TEXT, TARGET, keep=keep) if m.family == "encoder-decoder" else m.run(TEXT, keep=keep)
    hidden = out.decoder_hidden_states if m.family == "encoder-decoder" else out.hidden_states
    assert len(hidden) == stack.layers + 1
    for index, name in enumerate(names[:-1]):
        close(cache[name][0], hidden[index][0])
    close(cache[final][0], hidden[-1][0])  # transformers' last hidden state is after the final norm, if any
    if getattr(out, "logits", None) is not None:
        close(cache.logits[0], out.logits[0])
    return cache


def check_walk(m, out, how: str):
    walk = m.walk(TEXT, TARGET, how=how) if m.family == "encoder-decoder" else m.walk(TEXT, how=how)
    hidden = out.decoder_hidden_states if m.family == "encoder-decoder" else out.hidden_states
    close(walk.final_hidden_state, hidden[-1][0])
    if how == "hooks":  # one output per layer the model ran, numbered as run (ALBERT runs one shared block)
        stack = "decoder" if m.family == "encoder-decoder" else None
        assert [s.layer for s in walk.find(kind="block", stack=stack)] == list(range(len(hidden) - 1))
    # a walk ends on what the model hands back: its logits, its pooled vector, or its last hidden state
    final = next(getattr(out, n) for n in ("logits", "pooler_output", "last_hidden_state") if getattr(out, n, None)
                 is not None)  # fmt: skip
    close(walk[-1].output, final[0])
    if getattr(out, "logits", None) is not None:
        close(walk.logits, out.logits[0])
    return walk


def special_free(m, ids: list[int]) -> list[int]:
    special = {int(i) for i in m.tokenizer.all_special_ids}
    return [i for i, token in enumerate(ids) if token not in special]


def importance_reference(m, ref, inputs):
    """(f(embeddings, log), real embeddings, baseline embeddings, source positions), written here.

    f is the probability of the first target token (its log when ``log``), or for an encoder the
    cosine of the two sentences' mean-pooled vectors.
    """
    tokenizer = m.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = inputs["input_ids"]
    positions = special_free(m, ids[0].tolist())
    if m.family == "encoder":
        embed = ref.get_input_embeddings()
        with torch.no_grad():
            other_ids = tokenizer(OTHER, return_tensors="pt").input_ids
            other = ref(input_ids=other_ids, output_hidden_states=True).hidden_states[-1][0].mean(0)

        def function(e, log):
            states = ref.base_model(inputs_embeds=e).last_hidden_state
            return torch.nn.functional.cosine_similarity(states.mean(1), other[None], dim=-1)

        real = embed(ids).detach()
    else:
        if m.family == "decoder":
            embed = ref.get_input_embeddings()
            target = tokenizer(" mouse", add_special_tokens=False).input_ids
            real = embed(torch.cat([ids, torch.tensor([target[:-1]], dtype=torch.long)], 1)).detach()
            position, token, extra = ids.shape[1] - 1, target[0], {}
        else:
            encoder = ref.get_encoder()

            def embed(x):
                return encoder.embed_tokens(x) * getattr(encoder, "embed_scale", 1.0)

            real = embed(ids).detach()
            decoder_ids = inputs["decoder_input_ids"]
            position, token, extra = 0, int(decoder_ids[0, 1]), {"decoder_input_ids": decoder_ids}

        def function(e, log):
            batch = {name: value.expand(e.shape[0], -1) for name, value in extra.items()}
            log_p = ref(inputs_embeds=e, **batch).logits[:, position].float().log_softmax(-1)[:, token]
            return log_p if log else log_p.exp()

    base = real.clone()
    base[0, positions] = embed(torch.tensor([pad]))[0].detach()
    return function, real, base, positions


def check_importance(m, ref, inputs, method: str):
    if m.family == "encoder":
        result = m.importance(TEXT, other=OTHER, method=method, n_steps=16, n_samples=3)
    else:
        target = " mouse" if m.family == "decoder" else TARGET
        result = m.importance(TEXT, target, method=method, n_steps=16, n_samples=3)
    function, real, base, positions = importance_reference(m, ref, inputs)
    row = result.scores[0]
    assert len(row) == len(positions) == len(result.sources)  # special tokens (BOS, [CLS], </s>) stay fixed
    log = method in ("feature_ablation", "shapley")  # perturbations read the log-probability, gradients the probability
    with torch.no_grad():
        at_input, at_base = function(real, log).item(), function(base, log).item()
    assert result.f_input[0] == pytest.approx(at_input, rel=1e-4, abs=1e-6)
    if method == "integrated_gradients":
        assert result.f_baseline[0] == pytest.approx(at_base, rel=1e-4, abs=1e-6)
        gap = result.f_input[0] - result.f_baseline[0]
        assert float(row.sum()) == pytest.approx(gap + result.delta[0], abs=1e-4)  # completeness, as captum defines it
    elif method in ("gradient_x_input", "saliency"):
        e = real.clone().requires_grad_(True)
        function(e, False).sum().backward()
        expected = (e.grad * e).sum(-1)[0] if method == "gradient_x_input" else e.grad.norm(dim=-1)[0]
        close(row, expected[positions], atol=1e-5, rtol=1e-3)
    elif method == "feature_ablation":
        drops = []
        for i in positions:
            ablated = real.clone()
            ablated[0, i] = base[0, i]
            with torch.no_grad():
                drops.append(at_input - function(ablated, log).item())
        np.testing.assert_allclose(row.numpy(), drops, atol=1e-4, rtol=1e-3)
    elif method == "shapley":
        assert float(row.sum()) == pytest.approx(at_input - at_base, abs=1e-4)  # efficiency
    else:  # attention: the last layer's weights from the prediction's row, mean over heads
        with torch.no_grad():
            out = ref(**inputs, output_attentions=True)
        if m.family == "encoder-decoder":
            expected = out.cross_attentions[-1][0, :, 0, positions].mean(0)
        else:
            expected = out.attentions[-1][0, :, inputs["input_ids"].shape[1] - 1, positions].mean(0)
        close(row, expected)
    return result


def check_next_tokens(m, out):
    result = m.next_tokens(TEXT, k=5)
    probs = out.logits[0, -1].double().softmax(-1)
    values, indices = probs.topk(5)
    assert result.ids == indices.tolist()
    np.testing.assert_allclose(result.probabilities, values.numpy(), atol=1e-6, rtol=1e-4)


def check_lab(m, ref, inputs):
    knobs = Knobs(temperature=0.7, top_k=5, top_p=0.9, repetition_penalty=1.3)
    if m.family == "encoder-decoder":
        lab = m.sampling("", source=TEXT)
        prompt = {"input_ids": inputs["input_ids"]}
    else:
        lab, prompt = m.sampling(TEXT), {"input_ids": inputs["input_ids"]}
    start = getattr(m.config, "decoder_start_token_id", None)
    config = transformers.GenerationConfig(
        do_sample=True, max_new_tokens=1, output_scores=True, output_logits=True, return_dict_in_generate=True,
        temperature=0.7, top_k=5, top_p=0.9, repetition_penalty=1.3, pad_token_id=m.tokenizer.pad_token_id,
        decoder_start_token_id=start,
    )
    ref.generation_config = config  # only the knobs: no model-specific forced BOS/EOS or suppressed tokens
    with torch.no_grad():
        step = ref.generate(**prompt, generation_config=config)
    raw, processed = step.logits[0][0], step.scores[0][0].double().softmax(-1)
    close(lab.logits, raw)  # the lab's cached pass is generate's first pass, within float32
    ours = apply_knobs(raw, lab.ids, knobs)[-1].probabilities
    torch.testing.assert_close(ours, processed, atol=1e-9, rtol=1e-9)  # the same logits: the same processors
    return lab


def truncated_logits(ref, inputs, layers: int) -> torch.Tensor:
    """The reference model with only its first ``layers`` blocks in the stack that writes: its logits."""
    path, blocks = block_lists(ref)[-1]
    parent_path, name = path.rsplit(".", 1) if "." in path else ("", path)
    parent = ref.get_submodule(parent_path) if parent_path else ref
    setattr(parent, name, torch.nn.ModuleList(list(blocks)[:layers]))
    try:
        with torch.no_grad():
            return ref(**inputs, use_cache=False).logits[0].float()
    finally:
        setattr(parent, name, blocks)


def check_lens(m, ref, inputs):
    lens = m.logit_lens(TEXT, TARGET) if m.family == "encoder-decoder" else m.logit_lens(TEXT)
    for row in range(len(lens.layers)):  # row l reads the stream after l blocks: a model cut to l blocks
        logits = truncated_logits(ref, inputs, row)
        probs = logits.softmax(-1)
        close(lens.top_probs[row], probs.max(-1).values, atol=1e-5, rtol=1e-3)
        close(lens.answer_prob[row], probs[:, lens.answer_id], atol=1e-5, rtol=1e-3)
        entropy = torch.distributions.Categorical(logits=logits).entropy() / math.log(2)
        close(lens.entropy[row], entropy, atol=1e-4, rtol=1e-3)
    return lens


def check_rotary(m, species):
    rope = m.rotary(TEXT, layer=1, head=1)
    config = m.config.get_text_config()
    parameters = getattr(config, "rope_parameters", None) or {}
    if "rope_theta" not in parameters and getattr(config, "layer_types", None):  # Gemma 3: one set per layer type
        parameters = parameters.get(config.layer_types[1], {})
    theta = parameters.get("rope_theta", 10000.0)
    width = rope.rotary_dims
    expected = 1.0 / theta ** (torch.arange(0, width, 2, dtype=torch.float64) / width)
    close(rope.frequencies, expected.float(), atol=1e-5, rtol=1e-4)
    from llminspect.analysis.rope import rotate

    close(rope.query_after, rotate(rope.query_before, rope.angles, rope.layout), atol=1e-5, rtol=1e-4)
    close(rope.key_after, rotate(rope.key_before, rope.angles, rope.layout), atol=1e-5, rtol=1e-4)
    assert rope.layout == ("interleaved" if species.name == "gptj" else "half")
    return rope


def check_heads_off(m, ref, inputs):
    """A head switched off by llminspect's hook equals the reference with that head's output weights zeroed."""
    stack = m.sites().architecture.writer
    layer, heads = stack.layers - 1, stack.heads
    name = m.sites()[f"{stack.name}.layer.{layer}.attention.heads".lstrip(".")].path
    with m.heads_off([(layer, 1)]):
        tr = zoo_trace(m)
    projection = ref.get_submodule(name)
    conv = isinstance(projection, transformers.pytorch_utils.Conv1D)  # GPT-2 stores the weight [in, out]
    width = (projection.weight.shape[0] if conv else projection.weight.shape[1]) // heads
    with torch.no_grad():
        part = slice(width, 2 * width)
        (projection.weight[part] if conv else projection.weight[:, part]).zero_()
        out = ref(**inputs, output_hidden_states=True, use_cache=False)
    hidden = out.decoder_hidden_states if m.family == "encoder-decoder" else out.hidden_states
    close(tr.hidden_states, torch.stack([h[0] for h in hidden]))
    assert not torch.allclose(tr.hidden_states[-1], zoo_trace(m).hidden_states[-1])  # the head did something


def check_patching(m, ref, reference_tokenizer):
    corrupt = TEXT.replace("bird", "cat")
    result = m.patching(TEXT, corrupt, " the")
    path, blocks = block_lists(ref)[-1]
    clean_ids, corrupt_ids = (reference_tokenizer(t, return_tensors="pt").input_ids for t in (TEXT, corrupt))
    answer = reference_tokenizer(" the", add_special_tokens=False).input_ids[0]
    with torch.no_grad():
        clean = ref(input_ids=clean_ids, output_hidden_states=True, use_cache=False).hidden_states
        for layer, position in [(0, 1), (len(blocks) - 2, clean_ids.shape[1] - 1)]:
            original = blocks[layer]
            blocks[layer] = PatchedBlock(original, position, clean[layer + 1][0, position])
            try:
                p = ref(input_ids=corrupt_ids, use_cache=False).logits[0, -1].double().softmax(-1)[answer]
            finally:
                blocks[layer] = original
            assert float(result.p_patched[layer, position]) == pytest.approx(float(p), rel=1e-3, abs=1e-7)


def check_journey(m, out):
    trip = m.journey(TEXT, layer=1, head=1)
    top = out.logits[0, -1].double().softmax(-1).topk(5)
    vocabulary = next(s for s in trip.stages if s.name == "vocabulary")
    np.testing.assert_allclose(vocabulary.numbers, top.values.numpy(), atol=1e-6, rtol=1e-4)
    attention = next(s for s in trip.stages if s.name == "attention")
    np.testing.assert_allclose(attention.numbers, out.attentions[1][0, 1, -1].numpy(), atol=2e-5, rtol=1e-4)
    assert trip.chosen_id == int(top.indices[0])


def check_kv_cache(m, ref, inputs):
    """The same tokens as transformers' greedy generate; the cache as long as transformers' own would be."""
    from llminspect.analysis.tokens import token_labels

    run = m.kv_cache(TEXT, steps=3)
    ids, start = inputs["input_ids"], inputs["input_ids"].shape[1]
    with torch.no_grad():
        written = ref.generate(ids, do_sample=False, max_new_tokens=3, min_new_tokens=3, return_dict_in_generate=False,
                               pad_token_id=m.tokenizer.pad_token_id or 0)  # fmt: skip
        kept = [ref(input_ids=written[:, : start + i], use_cache=True).cache.layers[0].keys.shape[-2] for i in range(3)]
    assert run.tokens == run.tokens_without == token_labels(m.tokenizer, written[0, start:].tolist())
    assert [shape[-2] for shape in run.key_shapes] == kept


def check_anatomy(folder, ref, species):
    counted = anatomy(folder)
    assert counted.total == sum(p.numel() for p in ref.parameters())  # shared weights once
    assert counted.positions == species.positions


def check_views(m, results):
    walk = results["walk"]
    shown = [views.tokens(m.tokenize(TEXT)), views.steps_table(walk), li.labs.walk(walk),
             views.outline(m.outline(walk)), views.residual_stream(residual_stream(walk))]  # fmt: skip
    trace = results["trace"]
    part = {"part": "decoder self-attention"} if m.family == "encoder-decoder" else {}
    figure = views.attention(trace, layer=trace.num_layers - 1, head=1, **part)
    np.testing.assert_allclose(figure.data[0].z, trace.attentions[-1, 1].numpy(), rtol=1e-6)
    explorer = li.labs.attention(trace, layer=trace.num_layers - 1, head=1, **part)
    box = from_half_bytes(explorer.detail, explorer.detail_shape)  # float16 on the wire
    np.testing.assert_allclose(box.numpy(), trace.attentions[-1, 1].numpy(), atol=2e-4, rtol=1e-3)
    shown.append(views.bertviz(trace, view="head"))
    if "lens" in results:
        figure = views.logit_lens(results["lens"])
        np.testing.assert_allclose(np.array(figure.data[0].z), results["lens"].top_probs.numpy(), rtol=1e-6)
        shown.append(views.answer_rank(results["lens"]))
    if "rotary" in results:
        drawn = views.rotary(results["rotary"])
        np.testing.assert_allclose(np.array(drawn.data[0].z), (results["rotary"].angles % (2 * np.pi)).numpy(),
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    if "importance" in results:
        shown.append(views.importance(results["importance"]))
    if "lab" in results:
        lab_view = li.labs.sampling(m, TEXT) if m.family == "decoder" else li.labs.sampling(m, "", source=TEXT)
        shown.append(lab_view)
    assert all(view is not None for view in shown)


# --- the matrix -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "species", [pytest.param(s, marks=() if s.name in FAST else pytest.mark.slow) for s in ZOO], ids=lambda s: s.name
)
def test_every_capability_equals_transformers_or_refuses_clearly(species, tiny):
    row = MATRIX.setdefault(species.name, {})
    folder = tiny(species.name)
    results = {}

    def cell(capability, run):
        try:
            value = run()
        except li.LLMInspectError as error:
            row[capability] = "refuses"
            assert (species.name, capability) in REFUSES, f"{capability} refused: {error}"
            assert str(error).strip(), "a refusal must say why"
            return None
        row[capability] = "equal"
        assert (species.name, capability) not in REFUSES, f"{capability} ran where it was expected to refuse"
        return value

    m = cell("load", lambda: li.load(str(folder), device="cpu"))
    assert m.family == species.family
    ref = reference_model(species, folder)
    inputs = inputs_for(m, transformers.AutoTokenizer.from_pretrained(folder))
    results["trace"], out = cell("trace", lambda: check_trace(m, ref, inputs))
    cell("run", lambda: check_run(m, out))
    results["walk"] = cell("walk: hooks", lambda: check_walk(m, out, "hooks"))
    cell("walk: by hand", lambda: check_walk(m, out, "by hand"))
    for capability in IMPORTANCE:
        method = capability.split(": ")[1]
        results["importance"] = cell(capability, lambda method=method: check_importance(m, ref, inputs, method))
    cell("next tokens", lambda: check_next_tokens(m, out))
    results["lab"] = cell("sampling lab", lambda: check_lab(m, ref, inputs))
    results["lens"] = cell("logit lens", lambda: check_lens(m, ref, inputs))
    results["rotary"] = cell("rotary", lambda: check_rotary(m, species))
    cell("heads off", lambda: check_heads_off(m, reference_model(species, folder), inputs))
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    cell("patching", lambda: check_patching(m, reference_model(species, folder), tokenizer))
    cell("journey", lambda: check_journey(m, out))
    cell("kv cache", lambda: check_kv_cache(m, reference_model(species, folder), inputs))
    cell("induction", lambda: check_induction(m, ref))
    cell("logit attribution", lambda: check_logit_attribution(m, ref, tokenizer))
    cell("steering", lambda: check_steering(m, reference_model(species, folder), tokenizer))
    cell("probe", lambda: check_probe(m, ref, tokenizer))
    cell("anatomy", lambda: check_anatomy(folder, ref, species))
    cell("views", lambda: check_views(m, {k: v for k, v in results.items() if v is not None}))
    assert list(row) == list(CAPABILITIES)


def print_matrix(write) -> None:
    """The zoo's matrix: one row per architecture, one column per capability (= equal, · refuses clearly)."""
    if not MATRIX:
        return
    short = [c.replace("importance: ", "").replace("integrated_gradients", "IG")[:10] for c in CAPABILITIES]
    write(f"{'':15}" + " ".join(f"{name:>10}" for name in short))
    for name, row in MATRIX.items():
        marks = ["=" if row.get(c) == "equal" else "·" if row.get(c) == "refuses" else "?" for c in CAPABILITIES]
        write(f"{name:15}" + " ".join(f"{mark:>10}" for mark in marks))
