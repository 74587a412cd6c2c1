// The customer's page refreshes its status block while it is open (the CSP allows no
// inline script and no eval: this file is the page's only script). Every poll asks
// /c/<token>/status.json; a new version replaces the status block, and when the lines
// waiting for approval change, the page reloads unless a choice has been started.
(function () {
  "use strict";
  var status = document.getElementById("status");
  if (!status || !window.fetch) {
    return;
  }
  var url = status.getAttribute("data-status-url");
  var seconds = parseInt(status.getAttribute("data-poll-seconds"), 10) || 15;
  var version = status.getAttribute("data-version");
  var lines = status.getAttribute("data-lines") || "";
  var touched = false;
  document.addEventListener("change", function () {
    touched = true;
  });

  function poll() {
    if (document.hidden) {
      window.setTimeout(poll, seconds * 1000);
      return;
    }
    fetch(url, { credentials: "omit", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json();
      })
      .then(function (data) {
        if (data.gone) {
          window.location.reload();
          return;
        }
        if (data.version !== version) {
          document.getElementById("status-body").innerHTML = data.html;
          version = data.version;
          status.setAttribute("data-version", version);
        }
        if (data.lines !== lines && !touched) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, seconds * 1000);
      })
      .catch(function () {
        window.setTimeout(poll, seconds * 2000);
      });
  }
  window.setTimeout(poll, seconds * 1000);
})();
