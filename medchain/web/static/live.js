// The explorer's live feed: each `block` event from /events (server-sent events) adds
// a row at the top of the latest-blocks table and updates the height; each `fleet`
// event brings the edge gateways and devices section redrawn by the server (its
// markup, escaped there), which replaces the section's content. Without JavaScript
// the page still shows both as of its loading.
"use strict";
(function () {
  const table = document.querySelector("#blocks tbody");
  const height = document.getElementById("height");
  const fleet = document.getElementById("fleet");
  if (!table || !window.EventSource) { return; }
  const limit = 20;

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) { td.className = className; }
    return td;
  }

  function addBlock(block) {
    const row = document.createElement("tr");
    const first = document.createElement("td");
    const link = document.createElement("a");
    link.href = "/blocks/" + encodeURIComponent(block.height);
    link.textContent = String(block.height);
    first.appendChild(link);
    row.append(first, cell(block.time), cell(String(block.tx_count)), cell(block.methods),
      cell(block.proposer, "addr"));
    table.insertBefore(row, table.firstChild);
    while (table.rows.length > limit) { table.deleteRow(table.rows.length - 1); }
    if (height) { height.textContent = String(block.height); }
  }

  const after = height ? "?after=" + encodeURIComponent(height.textContent.trim()) : "";
  const feed = new EventSource("/events" + after);
  feed.addEventListener("open", function () { table.dataset.live = "open"; });
  feed.addEventListener("block", function (event) { addBlock(JSON.parse(event.data)); });
  feed.addEventListener("fleet", function (event) {
    if (fleet) { fleet.innerHTML = JSON.parse(event.data).html; }
  });
})();
