// Training curves that grow while the job runs, drawn with uPlot. Each figure is one chart
// (data-chart) with its metrics' [step, value] points in data-series: the train and eval loss
// share the loss chart, and "<chart>_std" is drawn as a band around its chart's mean. Each
// status poll asks only for the metric rows after the last one the page has; htmx keeps the
// charts (hx-preserve) and the answer carries the new points in data-new-points, which this
// file adds to each chart and redraws. Hovering a chart shows its values in the legend.
(function () {
  "use strict";
  const { COLOURS, readJson, g4, widthOf } = window.caiCharts;
  const drawn = new WeakMap(); // figure -> {plot, labels}: the chart drawn and its series

  // uPlot wants one x array for every series: the union of the steps, a series null where it
  // has no point (an eval loss every few steps). A step logged again keeps its last value.
  function aligned(names, series) {
    const steps = [...new Set(names.flatMap((name) => series[name].map((p) => p[0])))];
    steps.sort((a, b) => a - b);
    const index = new Map(steps.map((step, i) => [step, i]));
    const columns = names.map((name) => {
      const column = steps.map(() => null);
      for (const [step, value] of series[name]) column[index.get(step)] = value;
      return column;
    });
    return { steps, columns };
  }

  // The lines to draw: one per metric, but a "<chart>_std" as mean + std and mean − std.
  function lines(chart, names, columns) {
    const mean = columns[names.indexOf(chart)];
    const out = [];
    names.forEach((name, i) => {
      if (name === `${chart}_std` && mean) {
        const bound = (sign) => mean.map((m, j) => (m == null || columns[i][j] == null ? null : m + sign * columns[i][j]));
        out.push({ label: `${chart} + std`, column: bound(1), band: true });
        out.push({ label: `${chart} − std`, column: bound(-1), band: true });
      } else {
        out.push({ label: name, column: columns[i], band: false });
      }
    });
    return out;
  }

  function options(figure, drawnLines) {
    let colour = 0;
    const value = (plot, v) => (v == null ? "–" : g4(v));
    // A spread's two lines (series 1 is the first after the steps) with the band between filled.
    const first = drawnLines.findIndex((line) => line.band) + 1;
    const bands = first > 0 ? [{ series: [first, first + 1], fill: `${COLOURS[0]}22` }] : [];
    return {
      width: widthOf(figure),
      height: 180,
      bands,
      scales: { x: { time: false } },
      axes: [{ label: "step", size: 40 }, { size: 56, values: (plot, splits) => splits.map(g4) }],
      series: [
        { label: "step", value: (plot, v) => (v == null ? "–" : String(v)) },
        ...drawnLines.map((line) => ({
          label: line.label,
          stroke: line.band ? COLOURS[0] : COLOURS[colour++ % COLOURS.length],
          width: line.band ? 1 : 1.5,
          dash: line.band ? [4, 3] : undefined,
          spanGaps: true,
          value,
        })),
      ],
    };
  }

  function names(figure, series) {
    const chart = figure.dataset.chart;
    return Object.keys(series).sort((a, b) => (b === chart) - (a === chart)); // its own first
  }

  // The same list the server writes under each chart, kept up to date as points come in.
  function describe(figure, series) {
    const list = figure.querySelector(".chart-text");
    for (const name of names(figure, series)) {
      const points = series[name];
      const values = points.map((p) => p[1]);
      const steps = points.map((p) => p[0]);
      const [first, last] = [Math.min(...steps), Math.max(...steps)];
      let item = [...list.children].find((li) => li.dataset.metric === name);
      if (!item) {
        item = list.appendChild(document.createElement("li"));
        item.dataset.metric = name;
      }
      item.dataset.points = String(points.length);
      item.textContent = `${name}: ${g4(values[values.length - 1])} at step ${last}; steps ${first}–${last}, ${g4(Math.min(...values))} to ${g4(Math.max(...values))}`;
    }
    figure.querySelector("figcaption").textContent = names(figure, series).join(" and ");
  }

  function draw(figure) {
    const series = readJson(figure, "series", {});
    const shown = names(figure, series);
    if (!shown.length) return;
    const { steps, columns } = aligned(shown, series);
    const drawnLines = lines(figure.dataset.chart, shown, columns);
    const data = [steps, ...drawnLines.map((line) => line.column)];
    const labels = drawnLines.map((line) => line.label).join("\n");
    const previous = drawn.get(figure);
    if (previous && previous.labels === labels) {
      previous.plot.setData(data);
    } else {
      if (previous) previous.plot.destroy();
      const plot = new uPlot(options(figure, drawnLines), data, figure.querySelector(".chart-plot"));
      drawn.set(figure, { plot, labels });
    }
    figure.dataset.drawn = String(steps.length); // the steps on the chart, for tests and readers
  }

  function newFigure(chart) {
    const figure = document.createElement("figure");
    figure.className = "chart curve";
    figure.dataset.chart = chart;
    figure.dataset.series = "{}";
    const plot = document.createElement("div");
    plot.className = "chart-plot";
    const list = document.createElement("ul");
    list.className = "chart-text";
    figure.append(document.createElement("figcaption"), plot, list);
    return figure;
  }

  function addPoints(holder) {
    const curves = document.getElementById("job-curves");
    const updates = readJson(holder, "newPoints", {});
    holder.remove(); // each answer is added once
    if (!curves) return;
    const chartOf = readJson(curves, "chartOf", {});
    const touched = new Set();
    for (const [name, points] of Object.entries(updates)) {
      const chart = chartOf[name] || name;
      let figure = [...curves.querySelectorAll("figure.curve")].find((f) => f.dataset.chart === chart);
      if (!figure) {
        curves.querySelectorAll(".hint").forEach((hint) => hint.remove());
        figure = curves.appendChild(newFigure(chart));
      }
      const series = readJson(figure, "series", {});
      series[name] = (series[name] || []).concat(points);
      series[name].sort((a, b) => a[0] - b[0]); // stable: a step logged again keeps its order
      figure.dataset.series = JSON.stringify(series);
      describe(figure, series);
      touched.add(figure);
    }
    touched.forEach(draw);
  }

  function drawAll() {
    document.querySelectorAll("#job-curves figure.curve").forEach((figure) => {
      if (!drawn.has(figure)) draw(figure);
    });
    document.querySelectorAll("[data-new-points]").forEach(addPoints);
  }

  // After the swap, not the settle: the settle comes a tick later, so a page (or a test) that
  // sees the finished status in between would see a curve one poll behind it.
  document.addEventListener("htmx:afterSwap", drawAll);
  document.addEventListener("DOMContentLoaded", drawAll);
})();
