// Training curves that grow while the job runs, without rereading the whole series each poll.
// The job page draws every curve once (server-side, each figure keeping its points in
// data-series). Each status poll then asks only for the metric rows after the last one the page
// has; htmx keeps the drawn curves (hx-preserve) and the answer carries the new points in a
// data-new-points attribute (data, never inline script: the CSP forbids it), which this file
// adds to each figure and redraws in the same 300 x 100 box as app/training.py.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 300;
  const HEIGHT = 100;

  // Python's "%.4g", near enough for a caption.
  function g4(value) {
    if (value === 0 || !Number.isFinite(value)) return String(value);
    const exponent = Math.floor(Math.log10(Math.abs(value)));
    const trim = (text) => (text.includes(".") ? text.replace(/\.?0+$/, "") : text);
    if (exponent < -4 || exponent >= 4) {
      const [mantissa, power] = value.toExponential(3).split("e");
      const sign = power.startsWith("-") ? "-" : "+";
      return `${trim(mantissa)}e${sign}${String(Math.abs(Number(power))).padStart(2, "0")}`;
    }
    return trim(value.toPrecision(4));
  }

  function polylinePoints(series) {
    const steps = series.map((p) => p[0]);
    const values = series.map((p) => p[1]);
    const first = Math.min(...steps);
    const spanX = Math.max(Math.max(...steps) - first, 1);
    const low = Math.min(...values);
    const spanY = Math.max(...values) - low || 1;
    // A single point is drawn as a short flat line, so it shows at all.
    const points = series.length === 1 ? [series[0], [first + spanX, values[0]]] : series;
    return points
      .map(([s, v]) => `${(((s - first) / spanX) * WIDTH).toFixed(1)},${(HEIGHT - ((v - low) / spanY) * HEIGHT).toFixed(1)}`)
      .join(" ");
  }

  function newFigure(name) {
    const figure = document.createElement("figure");
    figure.className = "curve";
    figure.dataset.metric = name;
    figure.dataset.series = "[]";
    const caption = document.createElement("figcaption");
    caption.append(name, " ", document.createElement("small"));
    const svg = document.createElementNS(SVG, "svg");
    for (const [key, value] of Object.entries({ viewBox: "-4 -4 308 108", width: "308", height: "108", role: "img" })) {
      svg.setAttribute(key, value);
    }
    const line = document.createElementNS(SVG, "polyline");
    for (const [key, value] of Object.entries({ fill: "none", stroke: "currentColor", "stroke-width": "1.5" })) {
      line.setAttribute(key, value);
    }
    svg.append(line);
    figure.append(caption, svg, document.createElement("small"));
    return figure;
  }

  function redraw(figure, series) {
    const steps = series.map((p) => p[0]);
    const values = series.map((p) => p[1]);
    const [first, last] = [Math.min(...steps), Math.max(...steps)];
    const [low, high] = [Math.min(...values), Math.max(...values)];
    const name = figure.dataset.metric;
    figure.dataset.series = JSON.stringify(series);
    figure.dataset.points = String(series.length);
    figure.querySelector("polyline").setAttribute("points", polylinePoints(series));
    figure.querySelector("svg").setAttribute("aria-label", `${name} from step ${first} to ${last}, from ${g4(low)} to ${g4(high)}`);
    figure.querySelector("figcaption small").textContent = `${g4(values[values.length - 1])} at step ${last}`;
    figure.querySelector(":scope > small").textContent = `steps ${first}–${last}; ${g4(low)} to ${g4(high)}`;
  }

  function addPoints(holder) {
    const curves = document.getElementById("job-curves");
    const updates = JSON.parse(holder.dataset.newPoints || "{}");
    holder.remove(); // each answer is added once
    if (!curves) return;
    for (const [name, points] of Object.entries(updates)) {
      let figure = [...curves.querySelectorAll("figure.curve")].find((f) => f.dataset.metric === name);
      if (!figure) {
        curves.querySelectorAll(".hint").forEach((hint) => hint.remove());
        figure = curves.appendChild(newFigure(name));
      }
      const series = JSON.parse(figure.dataset.series || "[]").concat(points);
      series.sort((a, b) => a[0] - b[0]); // stable: a step logged again keeps its order
      redraw(figure, series);
    }
  }

  function addAll() {
    document.querySelectorAll("[data-new-points]").forEach(addPoints);
  }

  // After the swap, not the settle: the settle comes a tick later, so a page (or a test) that
  // sees the finished status in between would see a curve one poll behind it.
  document.addEventListener("htmx:afterSwap", addAll);
  document.addEventListener("DOMContentLoaded", addAll);
})();
