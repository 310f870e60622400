/* Draws the chart page's vital-sign trends with Chart.js from the JSON in #vital-data (no inline script). */
(function () {
  "use strict";
  var source = document.getElementById("vital-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  var palette = ["#0b5c8a", "#c2410c", "#15803d", "#7c3aed"];
  var vitals = JSON.parse(source.textContent);
  vitals.forEach(function (vital) {
    var canvas = document.getElementById("vital-chart-" + vital.key);
    if (!canvas || !vital.labels.length) {
      return;
    }
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: vital.labels,
        datasets: vital.series.map(function (series, index) {
          return {
            label: series.name,
            data: series.data,
            borderColor: palette[index % palette.length],
            backgroundColor: palette[index % palette.length],
            borderWidth: 2,
            pointRadius: vital.labels.length > 40 ? 0 : 3,
            pointHoverRadius: 5,
            tension: 0.2,
            spanGaps: true
          };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { display: vital.series.length > 1, labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (item) {
                return item.dataset.label + ": " + item.formattedValue + " " + vital.unit;
              }
            }
          }
        },
        scales: {
          x: { ticks: { maxTicksLimit: 6, maxRotation: 0, autoSkip: true,
                        callback: function (value) { return String(this.getLabelForValue(value)).slice(0, 10); } },
               grid: { display: false } },
          y: { ticks: { maxTicksLimit: 5 }, grace: "5%" }
        }
      }
    });
  });
})();
