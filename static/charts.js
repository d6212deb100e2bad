// What every chart on these pages shares; the library that draws them is uPlot
// (static/vendor/README.md). A chart's data rides in a data-* attribute as JSON, since the CSP
// forbids inline script; uPlot builds its own DOM and sets sizes through element.style, which
// the CSP allows (it forbids only style attributes and <style> elements in markup).
(function () {
  "use strict";
  const COLOURS = ["#2457a6", "#c0392b", "#1e8449", "#8e44ad", "#d35400", "#148f77", "#7f8c8d", "#9a7d0a"];

  // The JSON in element.dataset[key], or `fallback` when there is none or it does not parse.
  function readJson(element, key, fallback) {
    const text = element.dataset[key];
    if (!text) return fallback;
    try {
      return JSON.parse(text);
    } catch (error) {
      return fallback;
    }
  }

  // Python's "%.4g", near enough for a caption or a hovered value.
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

  function percent(share) {
    return share == null ? "–" : `${(100 * share).toFixed(0)}%`;
  }

  // The chart's width: `most` pixels, less where the figure's container is narrower.
  function widthOf(figure, most = 420) {
    const room = (figure.parentElement || figure).clientWidth - 24;
    return Math.max(240, Math.min(room > 0 ? room : most, most));
  }

  // A name short enough for an axis tick; the legend has it whole.
  function short(name, most = 16) {
    return name.length > most ? `${name.slice(0, most - 1)}…` : name;
  }

  // A line from (x1, y1) to (x2, y2), canvas pixels, with a cap across each end: an interval.
  function whisker(ctx, x1, y1, x2, y2, cap) {
    const vertical = x1 === x2;
    ctx.beginPath();
    ctx.moveTo(x1, y1);
    ctx.lineTo(x2, y2);
    for (const [x, y] of [[x1, y1], [x2, y2]]) {
      if (vertical) {
        ctx.moveTo(x - cap, y);
        ctx.lineTo(x + cap, y);
      } else {
        ctx.moveTo(x, y - cap);
        ctx.lineTo(x, y + cap);
      }
    }
    ctx.stroke();
  }

  // A value's place on a scale in canvas pixels (uPlot's valToPos, for drawing in hooks).
  function at(plot, value, scale) {
    return plot.valToPos(value, scale, true);
  }

  window.caiCharts = { COLOURS, readJson, g4, percent, widthOf, short, whisker, at };
})();
