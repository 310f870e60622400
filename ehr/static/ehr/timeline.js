/* Refreshes the developer launcher's timeline every few seconds while the page is visible. */
(function () {
  "use strict";
  var box = document.getElementById("timeline");
  if (!box || !window.fetch) {
    return;
  }
  var url = box.getAttribute("data-refresh-url");
  var last = box.innerHTML;
  function refresh() {
    if (document.hidden) {
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null && html !== last) {
          box.innerHTML = html;
          last = html;
        }
      })
      .catch(function () { /* offline for a moment: try again on the next tick */ });
  }
  window.setInterval(refresh, 2000);
})();
