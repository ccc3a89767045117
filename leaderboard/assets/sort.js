// SARBench leaderboard: sort any table.sortable by clicking a column header.
// Cells carry their sort key in data-sort; numeric columns sort as numbers; empty keys
// (undefined values) always go last. No dependencies, nothing fetched.
(function () {
  "use strict";

  function isNumeric(rows, col) {
    return rows.every(function (row) {
      var key = row.cells[col].getAttribute("data-sort");
      return key === "" || key === null || !isNaN(parseFloat(key));
    });
  }

  function sortBy(table, col, header) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var numeric = isNumeric(rows, col);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute("data-sort") || "";
      var y = b.cells[col].getAttribute("data-sort") || "";
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var d = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return ascending ? d : -d;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.setAttribute("aria-sort", "none");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      var button = th.querySelector("button") || th;
      button.addEventListener("click", function () { sortBy(table, col, th); });
    });
  });
})();
