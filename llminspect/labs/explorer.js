// The attention explorer's drawing: canvases fed with float16 bytes, no library, no network.
// Python (labs/attention.py) sends one layer of every head at once, pooled to at most 256 x 256, so
// switching heads redraws here without asking the kernel; the full-resolution window and a token's
// row come on demand. In a saved handout the same code runs on a local model holding all the data.

const HALF = (() => {
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1, exponent = (bits >> 10) & 31, mantissa = bits & 1023;
    table[bits] = exponent === 0 ? sign * mantissa * 2 ** -24
      : exponent === 31 ? (mantissa ? NaN : sign * Infinity)
      : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return table;
})();

async function floats(view, deflated) {
  if (view instanceof Float32Array) return view;  // a saved page hands over floats directly
  if (!view || !view.byteLength) return new Float32Array(0);
  let buffer = view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
  if (deflated) {
    const stream = new Blob([buffer]).stream().pipeThrough(new DecompressionStream("deflate"));
    buffer = await new Response(stream).arrayBuffer();
  }
  const bits = new Uint16Array(buffer), out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = HALF[bits[i]];
  return out;
}

const STOPS = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
const COLOURS = Array.from({ length: 256 }, (_, i) => {
  const x = (i / 255) * (STOPS.length - 1), k = Math.min(Math.floor(x), STOPS.length - 2), f = x - k;
  return STOPS[k].map((c, j) => Math.round(c + f * (STOPS[k + 1][j] - c)));
});
const SCALES = {
  power: "√weight: small weights made visible",
  linear: "weight, linear",
  row: "each row divided by its largest weight",
};

function paint(canvas, values, rows, cols, scale, size) {
  canvas.width = cols; canvas.height = rows;
  canvas.style.width = `${size}px`; canvas.style.height = `${Math.round((size * rows) / cols)}px`;
  const context = canvas.getContext("2d"), image = context.createImageData(cols, rows);
  for (let r = 0; r < rows; r++) {
    let top = 1;
    if (scale === "row") { top = 0; for (let c = 0; c < cols; c++) top = Math.max(top, values[r * cols + c]); }
    for (let c = 0; c < cols; c++) {
      let v = values[r * cols + c] / (top || 1);
      if (scale === "power") v = Math.sqrt(Math.max(v, 0));
      const colour = COLOURS[Math.max(0, Math.min(255, Math.round(v * 255)))], p = 4 * (r * cols + c);
      image.data[p] = colour[0]; image.data[p + 1] = colour[1]; image.data[p + 2] = colour[2]; image.data[p + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function select(options, value, onChange) {
  const node = element("select");
  for (const [label, key] of options) {
    const option = element("option", "", label);
    option.value = String(key);
    node.append(option);
  }
  node.value = String(value);
  node.addEventListener("change", () => onChange(node.value));
  return node;
}

function render({ model, el }) {
  const root = element("div", "li-explorer");
  el.append(root);
  const state = { maps: null, detail: null, row: null, drawn: 0 };
  const set = (changes) => { for (const [k, v] of Object.entries(changes)) model.set(k, v); model.save_changes(); };

  const controls = element("div", "li-controls"), note = element("div", "li-note");
  const summary = element("canvas", "li-summary"), overview = element("canvas", "li-overview");
  const frame = element("div", "li-frame"), box = element("div", "li-window");
  const detail = element("canvas", "li-detail"), rowLabels = element("div", "li-rowlabels");
  const colLabels = element("div", "li-collabels"), weights = element("div", "li-weights");
  const legend = element("div", "li-legend"), title = element("div", "li-title");
  frame.append(overview, box);
  const detailBox = element("div", "li-detailbox");
  detailBox.append(rowLabels, detail, colLabels);
  const panes = element("div", "li-panes");
  const left = element("div", "li-pane");
  left.append(element("div", "li-caption", "every head: click one"), summary);
  const middle = element("div", "li-pane");
  middle.append(element("div", "li-caption", "the whole map: drag the box"), frame);
  const right = element("div", "li-pane");
  right.append(element("div", "li-caption", "the box, cell by cell: click a row"), detailBox);
  panes.append(left, middle, right);
  root.append(controls, title, panes, legend, note, weights);

  function drawControls() {
    controls.replaceChildren();
    const parts = model.get("parts");
    if (parts.length > 1) controls.append(select(parts.map((p) => [p, p]), model.get("part"), (v) => set({ part: v })));
    const layers = Array.from({ length: model.get("layers") }, (_, i) => [`layer ${i}`, i]);
    controls.append(select(layers, model.get("layer"), (v) => set({ layer: Number(v) })));
    const heads = Array.from({ length: model.get("heads") }, (_, i) => [`head ${i}`, i]);
    heads.push(["mean of all heads (averaged)", -1]);
    controls.append(select(heads, model.get("head"), (v) => set({ head: Number(v) })));
    const statistics = Object.keys(model.get("summary")).map((s) => [`summary: ${s}`, s]);
    controls.append(select(statistics, model.get("statistic"), (v) => set({ statistic: v })));
    controls.append(select(Object.entries(SCALES).map(([k, v]) => [`colour: ${v}`, k]), model.get("scale"),
      (v) => set({ scale: v })));
    controls.append(select([32, 64, 128].map((n) => [`box: ${n} tokens`, n]), model.get("span"), (v) => set({ span: Number(v) })));
  }

  function drawSummary() {
    const values = model.get("summary")[model.get("statistic")] || [];
    const layers = values.length, heads = layers ? values[0].length : 0;
    const cell = Math.max(6, Math.min(18, Math.floor(220 / Math.max(1, heads)), Math.floor(420 / Math.max(1, layers))));
    summary.width = heads * cell; summary.height = layers * cell;
    const flat = values.flat(), low = Math.min(...flat), high = Math.max(...flat);
    const context = summary.getContext("2d");
    values.forEach((row, l) => row.forEach((v, h) => {
      const colour = COLOURS[Math.round(high > low ? ((v - low) / (high - low)) * 255 : 0)];
      context.fillStyle = `rgb(${colour.join(",")})`;
      context.fillRect(h * cell, l * cell, cell, cell);
    }));
    summary.title = `${model.get("statistic")}: ${low.toFixed(3)} (light) to ${high.toFixed(3)} (dark); rows are layers`;
    const head = model.get("head");
    if (head >= 0) {
      context.strokeStyle = "#e03131"; context.lineWidth = 2;
      context.strokeRect(head * cell + 1, model.get("layer") * cell + 1, cell - 2, cell - 2);
    }
  }

  function drawOverview() {
    if (!state.maps) return;
    const [rows, cols] = model.get("pooled"), heads = model.get("heads"), head = model.get("head");
    const index = head < 0 ? heads : head, per = rows * cols;
    paint(overview, state.maps.subarray(index * per, (index + 1) * per), rows, cols, model.get("scale"), 300);
    const block = model.get("block"), [r0, c0] = model.get("window"), span = model.get("span");
    const [queries, keys] = model.get("size"), unit = 300 / cols;
    Object.assign(box.style, { top: `${(r0 / block) * unit}px`, left: `${(c0 / block) * unit}px`,
      width: `${(Math.min(span, keys - c0) / block) * unit}px`, height: `${(Math.min(span, queries - r0) / block) * unit}px` });
  }

  function drawDetail() {
    if (!state.detail) return;
    const [r0, c0] = model.get("window"), [rows, cols] = model.get("detail_shape");
    paint(detail, state.detail, rows, cols, model.get("scale"), 300);
    const labels = model.get("labels"), keys = model.get("key_labels"), cell = 300 / cols;
    rowLabels.replaceChildren(); colLabels.replaceChildren();
    const every = Math.max(1, Math.ceil(11 / cell));  // labels only where they fit
    for (let r = 0; r < rows; r += every) {
      const label = element("div", "li-label", labels[r0 + r]);
      label.style.top = `${r * cell + Math.max(0, (cell - 11) / 2)}px`;
      rowLabels.append(label);
    }
    for (let c = 0; c < cols; c += every) {
      const label = element("div", "li-label li-col", keys[c0 + c]);
      label.style.left = `${c * cell + Math.max(0, (cell - 11) / 2)}px`;
      colLabels.append(label);
    }
    state.drawn += 1;
    el.dataset.drawn = String(state.drawn);
  }

  function drawTitle() {
    const head = model.get("head"), part = model.get("part");
    const which = head < 0 ? "mean of all heads (averaged)" : `head ${head}`;
    title.textContent = `${part}, layer ${model.get("layer")}, ${which}`;
    legend.textContent = `colour: ${SCALES[model.get("scale")]}. Whole map: each pixel is the largest weight of a ` +
      `${model.get("block")} × ${model.get("block")} block of query × key cells.`;
    const groups = model.get("kv_groups");
    if (head >= 0 && groups.length && part !== "cross-attention" && new Set(groups).size < groups.length) {
      const group = groups[head], sharing = groups.map((g, h) => (g === group ? h : -1)).filter((h) => h >= 0);
      note.textContent = `grouped-query attention: head ${head} reads key/value head ${group}, shared by query heads ${sharing.join(", ")}`;
    } else note.textContent = "";
  }

  function drawRow() {
    weights.replaceChildren();
    if (!state.row) return;
    const token = model.get("token"), labels = model.get("labels"), keys = model.get("key_labels");
    weights.append(element("b", "", `where ${JSON.stringify(labels[token])} (query ${token}) looks:`));
    const order = Array.from(state.row.keys()).sort((a, b) => state.row[b] - state.row[a]).slice(0, 24);
    const top = state.row[order[0]] || 1;
    for (const key of order.sort((a, b) => a - b)) {
      const chip = element("span", "li-chip", keys[key]);
      chip.title = `key ${key}: ${state.row[key].toFixed(4)}`;
      chip.style.background = `rgba(66, 99, 235, ${(state.row[key] / top).toFixed(3)})`;
      weights.append(chip);
    }
    if (keys.length > order.length) weights.append(element("small", "", ` (the ${order.length} largest of ${keys.length} weights)`));
  }

  function pick(canvas, event) {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientY - rect.top) / rect.height, (event.clientX - rect.left) / rect.width];
  }
  summary.addEventListener("click", (event) => {
    const [y, x] = pick(summary, event);
    set({ layer: Math.floor(y * model.get("layers")), head: Math.floor(x * model.get("heads")) });
  });
  let dragging = false;
  const move = (event) => {
    const [y, x] = pick(overview, event), [rows, cols] = model.get("size"), span = model.get("span");
    const r0 = Math.max(0, Math.min(rows - span, Math.round(y * rows - span / 2)));
    const c0 = Math.max(0, Math.min(cols - span, Math.round(x * cols - span / 2)));
    return [r0, c0];
  };
  overview.addEventListener("mousedown", (event) => { dragging = true; model.set("window", move(event)); drawOverview(); });
  overview.addEventListener("mousemove", (event) => { if (dragging) { model.set("window", move(event)); drawOverview(); } });
  window.addEventListener("mouseup", () => { if (dragging) { dragging = false; model.save_changes(); } });
  detail.addEventListener("click", (event) => {
    const [y] = pick(detail, event), [rows] = model.get("detail_shape");
    set({ token: model.get("window")[0] + Math.min(rows - 1, Math.floor(y * rows)) });
  });

  const refreshMaps = async () => { state.maps = await floats(model.get("maps"), true); drawOverview(); };
  const refreshDetail = async () => { state.detail = await floats(model.get("detail"), true); drawDetail(); };
  const refreshRow = async () => { state.row = await floats(model.get("row"), false); drawRow(); };
  const redraw = () => { drawTitle(); drawSummary(); drawOverview(); drawDetail(); };
  model.on("change:maps", refreshMaps);
  model.on("change:detail", refreshDetail);
  model.on("change:row", refreshRow);
  for (const name of ["head", "layer", "scale", "statistic", "span", "window", "part"]) model.on(`change:${name}`, redraw);
  for (const name of ["parts", "layers", "heads", "summary", "part", "layer", "head"]) model.on(`change:${name}`, drawControls);
  drawControls(); drawTitle(); drawSummary();
  refreshMaps(); refreshDetail(); refreshRow();
}

export default { render };
