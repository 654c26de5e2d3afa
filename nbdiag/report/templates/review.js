/* nbdiag reviewer widget: rating + comment per report, saved in localStorage, downloadable as JSON. No network. */
(function () {
  "use strict";
  document.documentElement.setAttribute("data-nbdiag-ready", "1");
  var box = document.getElementById("nbdiag-review");
  if (!box) { return; }
  var key = "nbdiag-review:" + box.getAttribute("data-report");
  var comment = box.querySelector("textarea");
  var radios = box.querySelectorAll("input[name=rating]");
  var saved = null;
  try { saved = JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { saved = null; }
  if (saved) {
    comment.value = saved.comment || "";
    for (var i = 0; i < radios.length; i++) { radios[i].checked = radios[i].value === saved.rating; }
  }
  function current() {
    var rating = null;
    for (var i = 0; i < radios.length; i++) { if (radios[i].checked) { rating = radios[i].value; } }
    return { report: box.getAttribute("data-report"), subject: box.getAttribute("data-subject"),
             rating: rating, comment: comment.value, time: new Date().toISOString() };
  }
  function save() { try { window.localStorage.setItem(key, JSON.stringify(current())); } catch (e) { /* file:// may forbid storage */ } }
  comment.addEventListener("input", save);
  for (var j = 0; j < radios.length; j++) { radios[j].addEventListener("change", save); }
  box.querySelector("button").addEventListener("click", function () {
    var blob = new Blob([JSON.stringify(current(), null, 2)], { type: "application/json" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = box.getAttribute("data-report") + "_review.json";
    document.body.appendChild(a); a.click(); document.body.removeChild(a);
  });
})();
