// An evaluation run's charts, drawn with uPlot from the JSON in each figure's data attributes
// (app/evaluation_charts.py): the rating scatter, harmlessness against helpfulness with a
// labelled point per model and its 95% intervals both ways, and a bar chart per rate with each
// model's interval. Hovering shows the numbers in the legend; the tables carry them too.
(function () {
  "use strict";
  const { COLOURS, readJson, percent, widthOf, short, whisker, at } = window.caiCharts;
  const colour = (i) => COLOURS[i % COLOURS.length];
  const whole = (v) => v.toFixed(0);

  // [low, high] around every value given, with a margin, so no whisker touches the frame.
  function padded(values) {
    const [low, high] = [Math.min(...values), Math.max(...values)];
    const margin = (high - low || Math.abs(high) || 1) * 0.08;
    return [low - margin, high + margin];
  }

  function scatter(figure) {
    const points = readJson(figure, "points", []);
    if (!points.length) return;
    // uPlot draws over one x array: the helpfulness ratings; each model is its own series,
    // null except at its own rating, drawn as a point with no line.
    const xs = [...new Set(points.map((p) => p.helpful))].sort((a, b) => a - b);
    const data = [xs, ...points.map((p) => xs.map((x) => (x === p.helpful ? p.harmless : null)))];
    const xRange = padded(points.flatMap((p) => [p.helpful_low, p.helpful_high]));
    const yRange = padded(points.flatMap((p) => [p.harmless_low, p.harmless_high]));
    const pixel = uPlot.pxRatio;

    function intervals(plot) {
      const ctx = plot.ctx;
      ctx.save();
      ctx.lineWidth = pixel;
      ctx.font = `${12 * pixel}px sans-serif`;
      ctx.textBaseline = "bottom";
      const middle = plot.bbox.left + plot.bbox.width / 2;
      points.forEach((p, i) => {
        const [x, y] = [at(plot, p.helpful, "x"), at(plot, p.harmless, "y")];
        ctx.strokeStyle = colour(i);
        whisker(ctx, at(plot, p.helpful_low, "x"), y, at(plot, p.helpful_high, "x"), y, 4 * pixel);
        whisker(ctx, x, at(plot, p.harmless_low, "y"), x, at(plot, p.harmless_high, "y"), 4 * pixel);
        ctx.fillStyle = "#222";
        // The label on the side with room: right of a point in the left half, else left of it.
        ctx.textAlign = x < middle ? "left" : "right";
        ctx.fillText(short(p.name, 24), x + (x < middle ? 6 : -6) * pixel, y - 4 * pixel);
      });
      ctx.restore();
    }

    new uPlot(
      {
        width: widthOf(figure, 560),
        height: 360,
        scales: { x: { time: false, range: () => xRange }, y: { range: () => yRange } },
        axes: [{ label: "Helpfulness rating" }, { label: "Harmlessness rating", size: 64 }],
        series: [
          { label: "helpfulness", value: (plot, v) => (v == null ? "–" : whole(v)) },
          ...points.map((p, i) => ({
            label: p.name,
            stroke: colour(i),
            fill: colour(i),
            paths: () => null,
            points: { show: true, size: 8, space: 0, fill: colour(i) },
            value: (plot, v) =>
              v == null
                ? "–"
                : `harmless ${whole(p.harmless)} (${whole(p.harmless_low)} to ${whole(p.harmless_high)}), ` +
                  `helpful ${whole(p.helpful)} (${whole(p.helpful_low)} to ${whole(p.helpful_high)})`,
          })),
        ],
        hooks: { draw: [intervals] },
      },
      data,
      figure.querySelector(".chart-plot"),
    );
    figure.dataset.drawn = String(points.length); // one series, so one point, per model
  }

  function bars(figure) {
    const rows = readJson(figure, "bars", []);
    if (!rows.length) return;
    const xs = rows.map((_, i) => i);
    const pixel = uPlot.pxRatio;

    function intervals(plot) {
      const ctx = plot.ctx;
      ctx.save();
      ctx.lineWidth = pixel;
      ctx.strokeStyle = "#222";
      rows.forEach((row, i) => {
        if (row.value == null) return;
        const x = at(plot, i, "x");
        whisker(ctx, x, at(plot, 100 * row.low, "y"), x, at(plot, 100 * row.high, "y"), 5 * pixel);
      });
      ctx.restore();
    }

    new uPlot(
      {
        width: widthOf(figure, 400),
        height: 200,
        scales: { x: { time: false, range: () => [-0.5, rows.length - 0.5] }, y: { range: () => [0, 100] } },
        axes: [
          { splits: () => xs, values: (plot, splits) => splits.map((i) => (rows[i] ? short(rows[i].name) : "")), grid: { show: false } },
          { size: 48, values: (plot, splits) => splits.map((v) => `${v}%`) },
        ],
        series: [
          { label: "model", value: (plot, v) => (v == null || !rows[v] ? "–" : rows[v].name) },
          {
            label: figure.dataset.title || figure.dataset.kind,
            stroke: COLOURS[0],
            fill: `${COLOURS[0]}99`,
            paths: uPlot.paths.bars({ size: [0.6, 80] }),
            points: { show: false },
            value: (plot, v, series, i) => {
              const row = i == null ? null : rows[i];
              if (!row || row.value == null) return "–";
              return `${percent(row.value)} (${percent(row.low)} to ${percent(row.high)}), ${row.successes} of ${row.trials}`;
            },
          },
        ],
        hooks: { draw: [intervals] },
      },
      [xs, rows.map((row) => (row.value == null ? null : 100 * row.value))],
      figure.querySelector(".chart-plot"),
    );
    figure.dataset.drawn = String(rows.length);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("figure.rating-scatter").forEach(scatter);
    document.querySelectorAll("figure.rate-bars").forEach(bars);
  });
})();
