/* HES Core — the shared browser helpers: toasts, the area selector, the sidebar, one Socket.IO
   connection for every live island, JSON fetch with the CSRF token, and time formatting in the
   utility's time zone. Pages use them through window.HES. */
(function () {
  "use strict";

  var body = document.body;
  var timezone = body.getAttribute("data-timezone") || "UTC";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var locale = document.documentElement.lang || "en";

  /* ---- translation: the page carries its scripts' strings in the current language (#hes-i18n) ---- */
  var catalogNode = document.getElementById("hes-i18n");
  var catalog = {};
  try { catalog = catalogNode ? JSON.parse(catalogNode.textContent) || {} : {}; } catch (e) { catalog = {}; }

  /* t("{n} alerts", {n: 3}): the message in the page's language with {name} placeholders filled in. */
  function t(message, params) {
    var text = catalog[message] || message;
    return params ? text.replace(/\{(\w+)\}/g, function (all, name) {
      return params[name] == null ? all : String(params[name]);
    }) : text;
  }

  function escapeHtml(value) {
    return String(value == null ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  /* ---- toasts ---- */
  function toastContainer() {
    var box = document.getElementById("hes-toasts");
    if (!box) {
      box = document.createElement("div");
      box.id = "hes-toasts";
      box.className = "hes-toasts";
      body.appendChild(box);
    }
    return box;
  }

  function dismiss(el) {
    el.classList.add("hide");
    setTimeout(function () { el.remove(); }, 320);
  }

  function arm(el) {
    var close = el.querySelector(".hes-toast-close");
    if (close) close.addEventListener("click", function () { dismiss(el); });
    var sticky = el.classList.contains("hes-toast-danger");
    setTimeout(function () { if (el.isConnected) dismiss(el); }, sticky ? 12000 : 6000);
  }

  var MAX_TOASTS = 3;

  /* A message already on screen is counted (×2, ×3…) instead of stacking again; at most three toasts show, the
     oldest leaves first, so toasts never cover a table. */
  function toast(message, kind) {
    var box = toastContainer();
    var same = Array.prototype.find.call(box.querySelectorAll(".hes-toast"), function (other) {
      return other.getAttribute("data-text") === String(message) && other.classList.contains("hes-toast-" + (kind || "info")) &&
        !other.classList.contains("hide");
    });
    if (same) {
      var times = Number(same.getAttribute("data-times") || 1) + 1;
      same.setAttribute("data-times", times);
      same.querySelector(".hes-toast-count").textContent = "×" + times;
      return same;
    }
    var shown = Array.prototype.filter.call(box.querySelectorAll(".hes-toast"), function (el) { return !el.classList.contains("hide"); });
    shown.slice(0, Math.max(0, shown.length - MAX_TOASTS + 1)).forEach(dismiss);
    var el = document.createElement("div");
    el.className = "hes-toast hes-toast-" + (kind || "info");
    el.setAttribute("role", "alert");
    el.setAttribute("data-text", String(message));
    el.innerHTML = "<span>" + escapeHtml(message) + '</span><b class="hes-toast-count"></b><button type="button" class="hes-toast-close" aria-label="' + escapeHtml(t("Close")) + '">&times;</button>';
    box.appendChild(el);
    arm(el);
    return el;
  }

  Array.prototype.forEach.call(document.querySelectorAll(".hes-toast"), arm);

  /* ---- time ---- */
  var dateTime = new Intl.DateTimeFormat(locale, {
    timeZone: timezone, year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
    hourCycle: "h23"
  });
  var hourMinute = new Intl.DateTimeFormat(locale, { timeZone: timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

  function formatTime(iso) {
    return iso ? dateTime.format(new Date(iso)) : "";
  }

  function formatClock(iso) {
    return iso ? hourMinute.format(new Date(iso)) : "";
  }

  function ago(iso) {
    if (!iso) return "";
    var seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (seconds < 60) return t("just now");
    if (seconds < 3600) return t("{n} min ago", { n: Math.floor(seconds / 60) });
    if (seconds < 86400) return t("{n} h ago", { n: Math.floor(seconds / 3600) });
    return t("{n} d ago", { n: Math.floor(seconds / 86400) });
  }

  function number(value) {
    return value == null ? "—" : Number(value).toLocaleString(locale);
  }

  /* ---- JSON over fetch (browser session + CSRF header) ---- */
  function api(url, options) {
    options = options || {};
    var headers = { "Accept": "application/json", "X-CSRFToken": csrfMeta ? csrfMeta.content : "" };
    if (options.body && typeof options.body !== "string") {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(options.body);
    }
    options.headers = Object.assign(headers, options.headers || {});
    options.credentials = "same-origin";
    return fetch(url, options).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!resp.ok) {
          var error = new Error((data && (data.message || data.msg)) || resp.statusText || t("Request failed"));
          error.status = resp.status;
          error.data = data;
          throw error;
        }
        return data;
      });
    });
  }

  function withParams(url, params) {
    var query = Object.keys(params).filter(function (k) {
      return params[k] !== "" && params[k] != null;
    }).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]);
    }).join("&");
    return query ? url + (url.indexOf("?") < 0 ? "?" : "&") + query : url;
  }

  /* ---- one Socket.IO connection per page ---- */
  var socket = null;
  var live = document.getElementById("hes-live");

  function setLive(state, text) {
    if (!live) return;
    live.className = "hes-live " + state;
    live.querySelector("span").textContent = text;
  }

  function connect() {
    if (socket || typeof window.io !== "function" || !body.classList.contains("hes-signed-in")) return socket;
    socket = window.io({ transports: ["websocket", "polling"] });
    socket.on("connect", function () { setLive("on", t("Live")); });
    socket.on("disconnect", function () { setLive("off", t("Offline — retrying")); });
    socket.on("connect_error", function () { setLive("off", t("Live updates unavailable")); });
    return socket;
  }

  function on(event, handler) {
    var s = connect();
    if (s) s.on(event, handler);
  }

  /* ---- the area selector: ?area=<id> on the current page ("All areas" sends ?area=) ---- */
  var areaSelect = document.getElementById("hes-area-select");
  if (areaSelect) {
    areaSelect.addEventListener("change", function () {
      var url = new URL(window.location.href);
      url.searchParams.set("area", areaSelect.value);
      Array.from(url.searchParams.keys()).forEach(function (key) {
        if (/^page_|^psize_/.test(key)) url.searchParams.delete(key);  // FAB list pages restart at page 1
      });
      window.location.assign(url.toString());
    });
  }

  /* ---- sidebar: collapsible categories, off-canvas below tablet width ---- */
  Array.prototype.forEach.call(document.querySelectorAll(".hes-nav-cat"), function (button) {
    button.addEventListener("click", function () {
      var group = button.parentElement;
      group.classList.toggle("open");
      button.setAttribute("aria-expanded", group.classList.contains("open") ? "true" : "false");
    });
  });
  var shell = document.getElementById("hes-shell");
  var toggle = document.getElementById("hes-menu-toggle");
  var backdrop = document.getElementById("hes-backdrop");
  if (toggle && shell) toggle.addEventListener("click", function () { shell.classList.toggle("menu-open"); });
  if (backdrop && shell) backdrop.addEventListener("click", function () { shell.classList.remove("menu-open"); });

  /* ---- the alert bell follows alert events on every page ---- */
  var bell = document.getElementById("hes-bell");
  var bellCount = document.getElementById("hes-bell-count");

  function setAlertCount(count) {
    if (!bell) return;
    bellCount.textContent = count;
    bellCount.hidden = !count;
    bell.classList.toggle("hes-pulse", count > 0);
  }

  if (bell) {
    on("alert_raised", function (alert) {
      setAlertCount(Number(bellCount.textContent || 0) + (alert && alert.count > 1 ? 0 : 1));
      var what = alert.title || alert.alert_type;
      toast(alert.number ? t("Alert: {what} — meter {number}", { what: what, number: alert.number }) : t("Alert: {what}", { what: what }), "danger");
    });
    on("alert_acknowledged", function () { setAlertCount(Math.max(0, Number(bellCount.textContent || 0) - 1)); });
  }

  /* ---- FAB's list and show tables: status dots for "Online", a dash for empty values ---- */
  function statusHtml(online) {
    return '<span class="hes-status ' + (online ? "on" : "off") + '"><span class="hes-dot ' + (online ? "on" : "off") + '"></span>' +
      escapeHtml(online ? t("Online") : t("Offline")) + "</span>";
  }

  function polishCell(cell, isOnline) {
    var text = cell.textContent.trim();
    if (cell.children.length) return;
    if (isOnline && (text === "True" || text === "False")) cell.innerHTML = statusHtml(text === "True");
    else if (text === "None") { cell.textContent = "—"; cell.classList.add("text-muted"); }
  }

  Array.prototype.forEach.call(document.querySelectorAll(".panel table.table"), function (table) {
    var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); });
    var onlineColumn = heads.indexOf(t("Online"));
    Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (tr) {
      var label = tr.querySelector("th");
      Array.prototype.forEach.call(tr.children, function (cell, i) {
        if (cell.tagName !== "TD") return;
        polishCell(cell, i === onlineColumn || (label && label.textContent.trim() === t("Online")));
      });
    });
  });

  /* A code word as people read it: "power_fail" -> "Power fail" (the catalog has the known ones). */
  function word(code) {
    var text = String(code == null ? "" : code).replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  window.HES = {
    t: t,
    word: word,
    locale: locale,
    toast: toast,
    api: api,
    withParams: withParams,
    on: on,
    escape: escapeHtml,
    formatTime: formatTime,
    formatClock: formatClock,
    ago: ago,
    number: number,
    setAlertCount: setAlertCount,
    area: function () { return body.getAttribute("data-area") || ""; },
    timezone: timezone
  };

  connect();
})();
