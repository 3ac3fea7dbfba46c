// disco's page: the live parts. Everything shown works without this
// script (the server renders it); this adds the live timeline, filtering
// as you type, and copy buttons.
"use strict";
(function () {
  var timeline = document.getElementById("timeline");
  if (timeline && window.EventSource) {
    var since = timeline.getAttribute("data-latest") || "0";
    var body = timeline.querySelector("tbody");
    var source = new EventSource("/v1/changes/stream?since=" + encodeURIComponent(since));
    source.addEventListener("change", function (message) {
      var change = JSON.parse(message.data);
      var row = document.createElement("tr");
      row.setAttribute("data-seq", String(change.seq));
      var what = change.service
        ? change.instance + "." + change.service
        : (change.detail || "");
      var kind = change.kind + (change.fields && change.fields.length ? " (" + change.fields.join(", ") + ")" : "");
      [change.time.replace("T", " ").replace("Z", ""), change.registry, kind, what].forEach(function (text, i) {
        var cell = document.createElement("td");
        cell.textContent = text;
        if (i === 1) cell.className = "wide";
        row.appendChild(cell);
      });
      body.insertBefore(row, body.firstChild);
      while (body.children.length > 200) body.removeChild(body.lastChild);
    });
  }
  var filter = document.getElementById("filter");
  var services = document.getElementById("services");
  if (filter && services) {
    filter.addEventListener("input", function () {
      var text = filter.value.toLowerCase();
      var rows = services.querySelectorAll("tbody tr");
      for (var i = 0; i < rows.length; i++) {
        var name = rows[i].getAttribute("data-name") || "";
        rows[i].hidden = text !== "" && name.indexOf(text) < 0;
      }
    });
  }
  var buttons = document.querySelectorAll("button[data-copy]");
  for (var j = 0; j < buttons.length; j++) {
    buttons[j].hidden = !navigator.clipboard;
    buttons[j].addEventListener("click", function (event) {
      var target = document.getElementById(event.currentTarget.getAttribute("data-copy"));
      var button = event.currentTarget;
      navigator.clipboard.writeText(target.textContent).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      });
    });
  }
})();
