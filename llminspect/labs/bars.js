// A small bar chart for live labs: two bars per token (grey: before, blue: after), redrawn in place.
// Only the numbers travel; the chart is SVG built here, so a knob step costs a few hundred bytes.
const SVG = "http://www.w3.org/2000/svg";

function node(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function render({ model, el }) {
  const width = 720, height = 300, left = 46, bottom = 90, top = 28;
  const svg = node("svg", { width, height, class: "li-bars" });
  el.append(svg);

  function draw() {
    const labels = model.get("labels"), before = model.get("before"), after = model.get("after");
    const high = Math.max(1e-9, ...before, ...after), n = Math.max(1, labels.length);
    const slot = (width - left) / n, bar = Math.max(2, slot / 2 - 2), scale = (height - top - bottom) / high;
    svg.replaceChildren(node("text", { x: left, y: 16, class: "li-bars-title" }, model.get("title")));
    for (let i = 0; i <= 4; i++) {
      const value = (high * i) / 4, y = height - bottom - value * scale;
      svg.append(node("line", { x1: left, x2: width, y1: y, y2: y, stroke: "#e9ecef" }));
      svg.append(node("text", { x: left - 4, y: y + 3, "text-anchor": "end", class: "li-bars-axis" }, `${(value * 100).toFixed(0)}%`));
    }
    labels.forEach((label, i) => {
      const x = left + i * slot + 1;
      for (const [j, values, colour] of [[0, before, "#ced4da"], [1, after, after[i] > 0 ? "#364fc7" : "#f1f3f5"]]) {
        const h = values[i] * scale, rect = node("rect", { x: x + j * (bar + 1), y: height - bottom - h, width: bar, height: h, fill: colour });
        rect.append(node("title", {}, `${label}: ${(values[i] * 100).toFixed(2)}% ${j ? "after the knobs" : "model"}`));
        svg.append(rect);
      }
      const text = node("text", { x: x + bar, y: height - bottom + 10, transform: `rotate(50 ${x + bar} ${height - bottom + 10})`, class: "li-bars-label" }, label);
      svg.append(text);
    });
    el.dataset.drawn = String(Number(el.dataset.drawn || 0) + 1);
  }

  for (const name of ["labels", "before", "after", "title"]) model.on(`change:${name}`, draw);
  draw();
}

export default { render };
