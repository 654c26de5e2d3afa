/* nbdiag report helpers: open the section a link points to, sortable tables, reviewer ratings.
   No network: ratings stay in this browser (localStorage) and are saved as a JSON download. */
(function () {
  "use strict";
  var doc = document;
  /* a link to a run x variant (e.g. from group.html) opens its collapsed section */
  function reveal() {
    var id = decodeURIComponent((window.location.hash || "").slice(1));
    var el = id ? doc.getElementById(id) : null;
    while (el) { if (el.tagName === "DETAILS") { el.open = true; } el = el.parentElement; }
  }
  window.addEventListener("hashchange", reveal);
  reveal();
  /* sortable tables: click a header to sort by that column (numbers numerically) */
  function key(cell) {
    var t = (cell ? cell.getAttribute("data-sort") || cell.textContent : "").trim();
    var n = parseFloat(t.replace(/[^0-9eE+\-.]/g, ""));
    return (/^[\s+\-]?[0-9.]/.test(t) && !isNaN(n)) ? [0, n, t] : [1, 0, t.toLowerCase()];
  }
  var tables = doc.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    var heads = table.querySelectorAll("thead th");
    Array.prototype.forEach.call(heads, function (th, col) {
      th.setAttribute("role", "button");
      th.title = "sort by this column";
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var dir = th.getAttribute("data-dir") === "asc" ? -1 : 1;
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("data-dir"); });
        th.setAttribute("data-dir", dir === 1 ? "asc" : "desc");
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x[0] !== y[0]) { return x[0] - y[0]; }
          return (x[0] === 0 ? x[1] - y[1] : (x[2] < y[2] ? -1 : x[2] > y[2] ? 1 : 0)) * dir;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  /* reviewer ratings: include / exclude / unsure + comment per run x variant */
  var box = doc.getElementById("nbdiag-review");
  if (box) {
    var subject = box.getAttribute("data-subject");
    var store = "nbdiag-ratings:sub-" + subject;
    var widgets = doc.querySelectorAll(".rating");
    var reviewer = box.querySelector("input[name=reviewer]");
    var saved = {};
    try { saved = JSON.parse(window.localStorage.getItem(store) || "{}") || {}; } catch (e) { saved = {}; }
    function ident(w) { return w.getAttribute("data-run") + "|" + w.getAttribute("data-variant"); }
    function collect() {
      var out = { nbdiag_ratings: 1, subject: subject, reviewer: reviewer.value, ratings: [] };
      Array.prototype.forEach.call(widgets, function (w) {
        var checked = w.querySelector("input[type=radio]:checked");
        var comment = w.querySelector("input.comment").value;
        if (checked || comment) {
          out.ratings.push({ run: w.getAttribute("data-run"), variant: w.getAttribute("data-variant"),
                             rating: checked ? checked.value : "unsure", comment: comment });
        }
      });
      return out;
    }
    function save() { try { window.localStorage.setItem(store, JSON.stringify(collect())); } catch (e) { /* file:// may forbid storage */ } }
    if (saved.reviewer) { reviewer.value = saved.reviewer; }
    (saved.ratings || []).forEach(function (r) {
      Array.prototype.forEach.call(widgets, function (w) {
        if (ident(w) === r.run + "|" + r.variant) {
          var radio = w.querySelector("input[value=" + r.rating + "]");
          if (radio) { radio.checked = true; }
          w.querySelector("input.comment").value = r.comment || "";
        }
      });
    });
    window.nbdiagRatings = collect;  /* what Download saves (used by the browser tests) */
    box.addEventListener("input", save);
    Array.prototype.forEach.call(widgets, function (w) { w.addEventListener("input", save); w.addEventListener("change", save); });
    doc.getElementById("nbdiag-download").addEventListener("click", function () {
      var blob = new Blob([JSON.stringify(collect(), null, 2)], { type: "application/json" });
      var a = doc.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "sub-" + subject + "_ratings" + (reviewer.value ? "_" + reviewer.value.replace(/[^A-Za-z0-9]/g, "") : "") + ".json";
      doc.body.appendChild(a); a.click(); doc.body.removeChild(a);
    });
  }
  doc.documentElement.setAttribute("data-nbdiag-ready", "1");
})();
