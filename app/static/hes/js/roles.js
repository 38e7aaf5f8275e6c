/* The role matrix: a partly granted cell shows as indeterminate; ticking a higher level ticks the lower ones of the
   same area, unticking a lower level unticks the higher ones (operate includes view, administer includes both). */
(function () {
  "use strict";
  var order = ["view", "operate", "administer"];
  Array.prototype.forEach.call(document.querySelectorAll("#role-matrix input[data-partial]"), function (box) {
    box.indeterminate = true;
  });
  Array.prototype.forEach.call(document.querySelectorAll("#role-matrix input[type=checkbox]"), function (box) {
    box.addEventListener("change", function () {
      var rank = order.indexOf(box.getAttribute("data-level"));
      var row = box.closest("tr");
      Array.prototype.forEach.call(row.querySelectorAll("input[type=checkbox]"), function (other) {
        var r = order.indexOf(other.getAttribute("data-level"));
        if ((box.checked && r < rank) || (!box.checked && r > rank)) {
          other.checked = box.checked;
          other.indeterminate = false;
        }
      });
      box.indeterminate = false;
    });
  });
})();
