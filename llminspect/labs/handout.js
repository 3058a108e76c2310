
// A saved explorer page (`llminspect export`, `views.save`): the same drawing on a model that lives in
// the page and cuts what the widget's Python side would send out of every layer carried in the page.
function decodeHalf(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const bits = new Uint16Array(bytes.buffer), out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = HALF[bits[i]];
  return out;
}

class PageModel {
  constructor(data) {
    this.values = { ...data.traits };
    this.parts = data.parts;
    this.encoded = data.full;
    this.decoded = {};
    this.listeners = {};
    this.changed = new Set();
    this.update(["layer"]);
  }

  get(name) { return this.values[name]; }

  set(name, value) { this.values[name] = value; this.changed.add(name); }

  on(event, callback) { (this.listeners[event] ||= []).push(callback); }

  save_changes() { const names = [...this.changed]; this.changed.clear(); this.update(names); }

  all() {
    const part = this.values.part;
    if (!this.decoded[part]) this.decoded[part] = decodeHalf(this.encoded[part]);
    return this.decoded[part];
  }

  update(names) {
    const v = this.values, fired = new Set(names), any = (...keys) => keys.some((k) => fired.has(k));
    if (fired.has("part")) {
      const p = this.parts[v.part];
      Object.assign(v, { labels: p.labels, key_labels: p.key_labels, layers: p.shape[0], heads: p.shape[1],
        size: [p.shape[2], p.shape[3]], pooled: [p.shape[2], p.shape[3]], block: 1, summary: p.summary,
        window: [0, 0] });
      v.layer = Math.min(v.layer, v.layers - 1); v.head = Math.min(v.head, v.heads - 1);
      v.token = Math.min(v.token, v.size[0] - 1);
      ["labels", "key_labels", "layers", "heads", "size", "pooled", "block", "summary", "layer", "head", "span",
        "window", "token"].forEach((n) => fired.add(n));
    }
    const [queries, keys] = v.size, per = queries * keys, stack = v.heads + 1, all = this.all();
    const start = v.layer * stack * per + (v.head < 0 ? v.heads : v.head) * per;
    if (any("part", "layer")) { v.maps = all.subarray(v.layer * stack * per, (v.layer + 1) * stack * per); fired.add("maps"); }
    if (any("part", "layer", "head", "window", "span")) {
      const [r0, c0] = v.window, rows = Math.min(v.span, queries - r0), cols = Math.min(v.span, keys - c0);
      const box = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) box[r * cols + c] = all[start + (r0 + r) * keys + c0 + c];
      v.detail = box; v.detail_shape = [rows, cols]; fired.add("detail");
    }
    if (any("part", "layer", "head", "token")) { v.row = all.subarray(start + v.token * keys, start + (v.token + 1) * keys); fired.add("row"); }
    for (const name of fired) for (const callback of this.listeners[`change:${name}`] || []) callback();
  }
}

function startHandout(el, data) { render({ model: new PageModel(data), el }); }
