// The jobrunner dashboard's only script: live regions and confirmations. No inline script
// runs on these pages (the Content-Security-Policy forbids it).
//
// An element with `data-live="URL"` is refreshed from URL every `data-every` milliseconds
// (default 1000) while the tab is visible: the server renders the fragment (every value
// escaped), this replaces the element's content with it. A refresh is skipped while the user
// types in a field inside the element. A fragment holding `[data-final]` ends the polling;
// with `data-reload-when-final` on the element the page reloads once (to show a result).
// A form with `data-confirm="question"` asks before it is sent.
"use strict";

(function () {
  function live(element) {
    var every = parseInt(element.getAttribute("data-every") || "1000", 10);
    var busy = false;
    var stopped = false;
    var timer = null;

    function typing() {
      var active = document.activeElement;
      return active && element.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
    }

    function refresh() {
      if (stopped || busy || document.hidden || typing()) {
        return;
      }
      busy = true;
      fetch(element.getAttribute("data-live"), {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      })
        .then(function (response) {
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null) {
            return;
          }
          element.innerHTML = html;
          element.setAttribute("data-refreshed", String(Date.now()));
          if (element.querySelector("[data-final]")) {
            stopped = true;
            window.clearInterval(timer);
            if (element.hasAttribute("data-reload-when-final")) {
              window.location.reload();
            }
          }
        })
        .catch(function () {
          // The server is unreachable for a moment: the next tick tries again.
        })
        .finally(function () {
          busy = false;
        });
    }

    timer = window.setInterval(refresh, every);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        refresh();
      }
    });
  }

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(live);
  });
})();
