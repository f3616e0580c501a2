// Patron console: charts from data attributes, the CSRF header for htmx, nothing inline.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // htmx sends the session's CSRF token as a header on every request it makes.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  var charts = [];

  // Every element with data-chart holds an ECharts option as JSON.
  function initCharts(root) {
    var elements = root.querySelectorAll ? root.querySelectorAll("[data-chart]") : [];
    Array.prototype.forEach.call(elements, function (element) {
      if (element.getAttribute("data-chart-ready")) return;
      element.setAttribute("data-chart-ready", "1");
      if (!window.echarts) {
        element.classList.add("chart-unavailable");
        element.textContent = document.body.getAttribute("data-charts-unavailable") || "Charts are unavailable.";
        return;
      }
      var option;
      try {
        option = JSON.parse(element.getAttribute("data-chart"));
      } catch (e) {
        element.textContent = "Chart data could not be read.";
        return;
      }
      var chart = window.echarts.init(element, null, { renderer: "canvas" });
      chart.setOption(option);
      charts.push(chart);
    });
  }

  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });

  // A form sent back with errors: bring its first wrong field into view and focus it.
  function showFirstError() {
    var field = document.querySelector(".field.invalid");
    if (!field) return;
    field.scrollIntoView({ block: "center" });
    var input = field.querySelector("input, select, textarea");
    if (input) input.focus();
  }

  document.addEventListener("DOMContentLoaded", function () { initCharts(document); showFirstError(); });
  document.addEventListener("htmx:afterSettle", function (event) { initCharts(event.target); });
})();
