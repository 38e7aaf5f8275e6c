/* HES Core — the stock list, show and form screens: delete and bulk-action buttons (through FAB's AdminActions and
   its confirmation dialog), rows-per-page and order selects, and the search filters (FAB's AdminFilters rebuilt
   with buttons). Loaded as a file so the pages need no inline script. */
(function ($) {
  "use strict";
  if (!$ || typeof window.AdminActions !== "function") return;
  var actions = window.modelActions = new window.AdminActions();

  $(document).on("click", ".hes-delete", function () {
    actions.execute_single_delete($(this).data("url"), $(this).data("confirm"));
  });
  $(document).on("click", ".hes-multi-action", function () {
    actions.execute_multiple($(this).data("action"), $(this).data("confirm") || false);
  });
  $(document).on("click", ".hes-single-action", function () {
    actions.execute_single($(this).data("url"), $(this).data("confirm") || false);
  });
  /* FAB's empty choice of a relation select shows its value "__None": give it words */
  $("select option[value='__None']").each(function () {
    if (!$(this).text().trim()) $(this).text("—");
    $(this).closest("select").trigger("change.select2");
  });
  $(document).on("change", "select.hes-jump", function () {
    if (this.value) window.location.assign(this.value);
  });

  /* ---- search filters ---- */
  var form = document.getElementById("filter_form");
  var specNode = form && form.querySelector(".hes-filter-spec");
  if (!specNode) return;
  var spec = JSON.parse(specNode.textContent);
  var rows = $("tbody", form);
  var foot = form.querySelector(".hes-filters-foot");

  function select2(el) {
    if ($.fn.select2) $(el).select2({ allowClear: true, theme: "bootstrap", width: "100%" });
  }

  function showFoot() { foot.hidden = rows.children().length === 0; }

  function addFilter(name, operation, value) {
    var row = $("<tr/>").appendTo(rows);
    var remove = $('<button type="button" class="btn btn-link hes-remove-filter"/>')
      .attr("aria-label", "×").append('<i class="fa fa-times-circle"></i>').on("click", function () {
        row.remove();
        showFoot();
      });
    row.append($('<td class="hes-filter-name"/>').append(remove).append($("<span/>").text(spec.labels[name])));
    var ops = $('<select class="form-control input-sm filter-op"/>');
    var index = 0;
    $(spec.filters[name]).each(function (i) {
      var option = $("<option/>").attr("value", i).text(this);
      if (operation != null && String(this) === String(operation)) { option.prop("selected", true); index = i; }
      ops.append(option);
    });
    row.append($('<td class="hes-filter-op"/>').append(ops));
    var field = $(spec.fields[name]);
    var input = field.is("input, select, textarea") ? field : $("input, select", field).first();
    input.attr("name", "_flt_" + index + "_" + name).addClass("filter_val form-control input-sm");
    if (input.attr("type") === "checkbox") {
      input.prop("checked", value === true || value === "y" || value === "True" || value === "on");
    } else if (value != null) {
      input.val(value);
    }
    ops.on("change", function () { input.attr("name", "_flt_" + ops.val() + "_" + name); });
    row.append($('<td class="hes-filter-value"/>').append(field));
    if (field.hasClass("my_select2") || input.hasClass("my_select2")) select2(input);
    if ($.fn.datepicker && (input.hasClass("appbuilder_datetime") || input.hasClass("appbuilder_date"))) {
      input.datepicker({ format: "yyyy-mm-dd" });
    }
    showFoot();
    if (value == null) input.trigger("focus");
  }

  $(form).on("click", ".hes-add-filter", function () { addFilter($(this).data("column")); });
  (spec.active || []).forEach(function (active) {
    var values = Array.isArray(active[2]) ? active[2] : [active[2]];
    values.forEach(function (v) { addFilter(active[0], active[1], v); });
  });
})(window.jQuery);
