// Small behaviours htmx does not cover: dismissing toasts, removing env rows, keeping a
// log scrolled to its end while it grows (unless the reader scrolled up), copying a token,
// sending a form when its select changes (the header's team switcher; without scripts its
// <noscript> button does).
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) {
      var toast = dismiss.closest(".toast");
      if (toast) toast.remove();
    }
    var remove = event.target.closest("[data-remove-row]");
    if (remove) {
      var row = remove.closest(".env-row");
      if (row) row.remove();
    }
    var copy = event.target.closest("[data-copy]");
    if (copy && navigator.clipboard) {
      var source = document.getElementById(copy.getAttribute("data-copy"));
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        copy.textContent = "Copied";
      });
    }
  });

  document.addEventListener("change", function (event) {
    var select = event.target.closest && event.target.closest("select[data-autosubmit]");
    if (select && select.form) select.form.requestSubmit();
  });

  // Success toasts leave on their own; errors stay until dismissed.
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll(".toast-success:not([data-timed])").forEach(function (toast) {
      toast.setAttribute("data-timed", "1");
      setTimeout(function () { toast.remove(); }, 8000);
    });
  });

  // A log stays pinned to its end while lines are appended, until the reader scrolls up;
  // scrolling back to the end pins it again. Lines put before the others ("older lines")
  // leave the position alone.
  function nearEnd(log) {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }
  function follow(log) {
    if (log.dataset.pinned !== "false") log.scrollTop = log.scrollHeight;
  }
  document.addEventListener("scroll", function (event) {
    var log = event.target;
    if (log.matches && log.matches(".log[data-follow]")) {
      log.dataset.pinned = nearEnd(log) ? "true" : "false";
    }
  }, true);
  new MutationObserver(function (mutations) {
    mutations.forEach(function (mutation) {
      var target = mutation.target;
      if (target.matches && target.matches(".log[data-follow]") && !mutation.nextSibling) {
        follow(target);
      }
      mutation.addedNodes.forEach(function (node) {
        if (node.querySelectorAll) node.querySelectorAll(".log[data-follow]").forEach(follow);
      });
    });
  }).observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".log[data-follow]").forEach(follow);
  });
})();
