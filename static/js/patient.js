/* HealthGuard Vision: small helpers every page loads (no library, CSP-safe).
   - Stores the browser's time zone in a cookie so the server shows dates in local
     time (predictions/timezones.py checks the name against its list of zones).
   - Shows the "Print" buttons (hidden without JavaScript) and prints on click. */
(function () {
  "use strict";
  var COOKIE = "hg_tz";
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && /^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) {
      var current = document.cookie.split("; ").filter(function (c) {
        return c.indexOf(COOKIE + "=") === 0;
      })[0];
      if (current !== COOKIE + "=" + zone) {
        var secure = location.protocol === "https:" ? "; Secure" : "";
        document.cookie = COOKIE + "=" + zone + "; Path=/; Max-Age=31536000; SameSite=Lax" + secure;
      }
    }
  } catch (e) {
    /* No Intl time zone: dates stay in UTC, as the page says. */
  }
  // A printed history shows its table even when it is folded on screen.
  window.addEventListener("beforeprint", function () {
    var folded = document.querySelectorAll("details.chart-table");
    for (var i = 0; i < folded.length; i++) {
      folded[i].open = true;
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("[data-print]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].hidden = false;
      buttons[i].addEventListener("click", function () {
        window.print();
      });
    }
  });
})();
