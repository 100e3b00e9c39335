// The coordinators' pages: the log refreshes itself, a report's progress bar moves, an announcement
// shows its recipients and cost while it is typed. Served from the app (no CDN); no inline script.
(function () {
  "use strict";

  function get(url) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } }).then(function (res) {
      if (res.redirected && res.url.indexOf("/login") !== -1) {
        window.location.href = res.url; // the session ended: go and log in again
        throw new Error("logged out");
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res;
    });
  }

  function every(seconds, work) {
    var busy = false;
    window.setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      work().catch(function () {}).then(function () { busy = false; });
    }, seconds * 1000);
  }

  // The log: fetch the rows for the same filters and page, and swap them in.
  var live = document.getElementById("log-live");
  if (live) {
    every(Number(live.dataset.refreshSeconds) || 5, function () {
      return get(live.dataset.refreshUrl).then(function (res) { return res.text(); }).then(function (html) {
        live.innerHTML = html; // rendered (and escaped) by the server
      });
    });
  }

  // A report's page: the progress of its broadcast.
  var progress = document.getElementById("progress");
  if (progress) {
    var bar = progress.querySelector("progress");
    var text = progress.querySelector(".progress-text");
    every(3, function () {
      return get(progress.dataset.progressUrl).then(function (res) { return res.json(); }).then(function (c) {
        bar.max = c.total || 1;
        bar.value = c.delivered + c.failed + c.cancelled;
        var parts = [c.delivered + " of " + c.total + " delivered", c.failed + " failed"];
        if (c.cancelled) parts.push(c.cancelled + " cancelled");
        if (c.pending) parts.push(c.pending + " on their way");
        text.textContent = parts.join(", ");
      });
    });
  }

  // Announce: live recipient and segment counts; the time field only when "at a set time".
  var form = document.getElementById("announce-form");
  if (form) {
    var out = document.getElementById("announce-live");
    var timer = null;
    var update = function () {
      var query = new URLSearchParams();
      query.set("text", form.elements.text.value);
      if (form.elements.everywhere && form.elements.everywhere.checked) query.set("everywhere", "1");
      form.querySelectorAll("input[name=streets]:checked").forEach(function (box) { query.append("streets", box.value); });
      get(form.dataset.previewUrl + "?" + query.toString()).then(function (res) { return res.json(); }).then(function (c) {
        out.textContent = "Goes to " + c.recipients + " member" + (c.recipients === 1 ? "" : "s") +
          (c.by_call ? " (" + c.by_call + " by phone call)" : "") + " · " + c.segments + " text message" +
          (c.segments === 1 ? "" : "s") + " each (" + c.characters + " characters with the heading)";
      }).catch(function () {});
    };
    var later = function () {
      var at = form.elements.at;
      var chosen = form.querySelector("input[name=when]:checked");
      if (at) at.disabled = !(chosen && chosen.value === "later");
    };
    var stale = function () {
      // The form changed after "check": ask for a fresh check rather than send what was not shown.
      var confirm = form.querySelector("input[name=confirm]");
      var button = document.getElementById("confirm");
      if (confirm) confirm.value = "";
      if (button) button.textContent = "Check recipients again";
    };
    form.addEventListener("input", function () {
      stale();
      window.clearTimeout(timer);
      timer = window.setTimeout(update, 300);
      later();
    });
    form.addEventListener("change", later);
    later();
    update();
  }

  // Buttons that ask first.
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
})();
