// The advisor's workspace, live: the Inbox count in the nav and the board's attention counts
// come from /live.json; a quick reply fills the message box. No inline script, no eval (CSP).
(function () {
  "use strict";
  var POLL_MS = 5000;

  function show(selector, value) {
    document.querySelectorAll(selector).forEach(function (el) {
      el.textContent = String(value);
      el.hidden = value === 0 || value === "0";
    });
  }

  function refresh() {
    var board = document.querySelector("[data-board-rooftop]");
    var url = "/live.json";
    if (board) {
      url += "?rooftop=" + encodeURIComponent(board.getAttribute("data-board-rooftop"));
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (live) {
        if (!live) {
          return;
        }
        show("[data-live='inbox']", live.inbox);
        var inboxLink = document.querySelector("a[data-inbox-link]");
        if (inboxLink) {
          inboxLink.setAttribute(
            "aria-label",
            live.inbox ? "Inbox, " + live.inbox + " open" : "Inbox"
          );
        }
        var attention = live.attention;
        if (!attention) {
          return;
        }
        var total = 0;
        Object.keys(attention).forEach(function (flag) {
          total += attention[flag];
          show("[data-live-attention='" + flag + "']", attention[flag]);
          document.querySelectorAll("[data-attention-chip='" + flag + "']").forEach(function (chip) {
            chip.hidden = !attention[flag];
          });
        });
        document.querySelectorAll("[data-attention-none]").forEach(function (none) {
          none.hidden = total > 0;
        });
      })
      .catch(function () {
        // Offline for a moment: the next poll tries again.
      });
  }

  document.addEventListener("click", function (event) {
    var pick = event.target.closest("[data-quick-reply]");
    if (!pick) {
      return;
    }
    var box = document.getElementById(pick.getAttribute("data-target") || "compose-body");
    if (!box) {
      return;
    }
    event.preventDefault();
    box.value = pick.getAttribute("data-quick-reply");
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.focus();
  });

  // A filter swaps the whole page in (htmx): fill its counts at once, not at the next poll.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.elt === document.body) {
      refresh();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (!document.querySelector("[data-live='inbox']")) {
      return; // logged out
    }
    refresh();
    window.setInterval(function () {
      if (!document.hidden) {
        refresh();
      }
    }, POLL_MS);
  });
})();
