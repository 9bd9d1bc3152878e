/*
 * tierdesk's ticket sidebar: the ticket's latest decision from tierdesk, with a live
 * countdown to the first-response due time. Plain JavaScript, no framework.
 *
 * The decision comes from GET <service_url>/api/tickets/<tenant>/<ticket>/decision,
 * asked through ZAF's client.request() with `secure: true`: Zendesk's proxy fills in
 * {{setting.app_token}}, so the token never reaches this page (or its browser).
 * Everything shown is set with textContent: explanation lines carry e-mail addresses
 * and other text from the ticket, never to be read as HTML.
 *
 * Words follow the agent's locale (ZAF's currentUser.locale, else the browser's): every
 * string is looked up in window.TIERDESK_I18N (assets/i18n.js, made from
 * translations/<locale>.json), English when the locale has none; dates and durations
 * are formatted for the locale with Intl. The explanation lines come from tierdesk as
 * they are, in the tenant's locale (its `locale` setting on the service).
 */
(function () {
  "use strict";

  var TABLES = window.TIERDESK_I18N || {};
  var state = { dueMs: null, locale: "en", strings: TABLES.en || {} };

  // The best table for a BCP 47 tag: "ja-JP" → ja, "en-GB" → en; English otherwise.
  function pickLocale(tag) {
    var wanted = String(tag || "").toLowerCase().replace("_", "-");
    if (TABLES[wanted]) return wanted;
    var language = wanted.split("-")[0];
    return TABLES[language] ? language : "en";
  }

  function useLocale(tag) {
    state.locale = pickLocale(tag);
    state.strings = TABLES[state.locale] || {};
    // Intl gets the agent's own tag when it is one (en-GB dates for en-GB agents).
    try {
      state.intl = Intl.getCanonicalLocales(tag || state.locale)[0] || state.locale;
    } catch (ignored) {
      state.intl = state.locale;
    }
    document.documentElement.lang = state.locale;
    var labelled = document.querySelectorAll("[data-i18n]");
    for (var i = 0; i < labelled.length; i++) {
      labelled[i].textContent = t(labelled[i].getAttribute("data-i18n"));
    }
    document.title = t("title");
  }

  // The string `key` of the agent's locale (else English), {{name}} filled from values.
  function t(key, values) {
    var text = state.strings[key];
    if (text === undefined) text = (TABLES.en || {})[key];
    if (text === undefined) text = key;
    return String(text).replace(/\{\{(\w+)\}\}/g, function (_, name) {
      return values && values[name] !== undefined ? String(values[name]) : "";
    });
  }

  function formatTime(iso) {
    var options = { dateStyle: "medium", timeStyle: "short" };
    return new Intl.DateTimeFormat(state.intl, options).format(new Date(Date.parse(iso)));
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function setText(id, text) {
    byId(id).textContent = text;
  }

  // One unit as the locale writes it: "5m", "05s" in English, "5 分", "05 秒" in Japanese.
  function unit(value, name, padded) {
    // The table says how units are shown: narrow in English ("5m"), short in Japanese
    // ("5 分"; CLDR's narrow Japanese units are Latin letters).
    var options = { style: "unit", unit: name, unitDisplay: t("unit_display") };
    if (padded) options.minimumIntegerDigits = 2;
    return new Intl.NumberFormat(state.intl, options).format(value);
  }

  // "29m 59s", "1h 05m 07s", "3d 00h 10m 00s" (en); "29 分 59 秒" (ja): whole seconds,
  // leading zero units left out.
  function formatDuration(ms) {
    var total = Math.floor(Math.max(ms, 0) / 1000);
    var parts = [
      [Math.floor(total / 86400), "day"],
      [Math.floor((total % 86400) / 3600), "hour"],
      [Math.floor((total % 3600) / 60), "minute"],
      [total % 60, "second"]
    ];
    var first = 0;
    while (first < 3 && parts[first][0] === 0) first++;
    var out = [];
    for (var i = first; i < parts.length; i++) out.push(unit(parts[i][0], parts[i][1], i > first));
    return out.join(" ");
  }

  function tick() {
    var countdown = byId("countdown");
    if (state.dueMs === null) return;
    var left = state.dueMs - Date.now();
    if (left > 0) {
      countdown.textContent = t("due_in", { duration: formatDuration(left) });
      countdown.setAttribute("data-state", "due");
    } else {
      countdown.textContent = t("overdue_by", { duration: formatDuration(-left) });
      countdown.setAttribute("data-state", "overdue");
    }
  }

  function showStatus(message) {
    setText("status", message);
    byId("status").hidden = false;
  }

  function showError(message) {
    state.dueMs = null;
    byId("decision").hidden = true;
    byId("status").hidden = true;
    setText("error", message);
    byId("error").hidden = false;
  }

  function contactText(contact) {
    var status = contact && contact.status;
    if (status === "valid") return t("contact_valid");
    if (status === "not_required") return t("contact_not_required");
    if (status === "invalid") {
      if (!contact.reason) return t("contact_invalid", { why: t("no_reason") });
      var known = state.strings["reason_" + contact.reason] !== undefined;
      var why = known ? t("reason_" + contact.reason) : contact.reason;
      return t("contact_invalid_code", { why: why, code: contact.reason });
    }
    return status || t("unknown");
  }

  function render(decision) {
    byId("error").hidden = true;
    byId("status").hidden = true;
    var tier = decision.tier_name || decision.tier || t("unknown");
    if (decision.fallback && decision.account_tier) {
      tier = t("fallback_from", { tier: tier, account_tier: decision.account_tier });
    }
    setText("tier", tier);
    var severity = decision.severity ? "L" + decision.severity : t("unknown");
    setText("severity", decision.severity_name ? severity + " · " + decision.severity_name : severity);
    var due = byId("due");
    var response = decision.first_response;
    if (decision.first_response_due) {
      due.setAttribute("datetime", decision.first_response_due);
      due.textContent = t("due_at", { time: formatTime(decision.first_response_due) });
    }
    if (response && response.at) {
      // Answered: the clock has stopped, nothing left to count down.
      state.dueMs = null;
      setText("countdown", t(response.met ? "response_met" : "response_missed", { time: formatTime(response.at) }));
      byId("countdown").setAttribute("data-state", response.met ? "met" : "missed");
    } else if (decision.first_response_due) {
      state.dueMs = Date.parse(decision.first_response_due);
      tick();
    } else {
      state.dueMs = null;
      due.removeAttribute("datetime");
      due.textContent = "";
      setText("countdown", t("no_target"));
      byId("countdown").setAttribute("data-state", "none");
    }
    setText("named-contact", contactText(decision.named_contact));
    setText("coverage", t(decision.coverage === "covered" ? "covered" : "not_covered"));
    var list = byId("reasons");
    while (list.firstChild) list.removeChild(list.firstChild);
    (decision.because || []).forEach(function (line) {
      var item = document.createElement("li");
      item.textContent = line;
      list.appendChild(item);
    });
    var meta = t("decided", { time: decision.decided_at ? formatTime(decision.decided_at) : "" });
    if (decision.mappings_version) meta += t("mappings", { version: decision.mappings_version });
    setText("meta", meta);
    byId("decision").hidden = false;
  }

  function body(response) {
    if (response && response.responseJSON) return response.responseJSON;
    try {
      return JSON.parse((response && response.responseText) || "null") || {};
    } catch (ignored) {
      return {};
    }
  }

  // ZAF rejects a failed request with the response (status, responseText, responseJSON).
  function failed(response) {
    var status = response && response.status;
    var answer = body(response);
    if (status === 401 || status === 403) {
      showError(t("token_refused", { status: status }));
    } else if (status === 404 && answer.error === "no_decision") {
      state.dueMs = null;
      byId("decision").hidden = true;
      showStatus(t("not_decided"));
    } else if (status === 404 && answer.error === "unknown_tenant") {
      showError(t("unknown_tenant"));
    } else if (!status) {
      showError(t("unreachable"));
    } else {
      showError(t("answered", { status: status, message: answer.message || answer.error || t("an_error") }));
    }
  }

  function load(client) {
    // The agent's locale; the browser's when Zendesk does not say.
    var locale = client.get("currentUser.locale").then(
      function (answer) {
        return (answer && answer["currentUser.locale"]) || navigator.language;
      },
      function () {
        return navigator.language;
      }
    );
    return Promise.all([client.get("ticket.id"), client.metadata(), locale])
      .then(function (results) {
        useLocale(results[2]);
        var ticketId = results[0]["ticket.id"];
        var settings = (results[1] && results[1].settings) || {};
        var base = String(settings.service_url || "").replace(/\/+$/, "");
        if (!base || !settings.tenant) {
          showError(t("not_configured"));
          return null;
        }
        var path =
          "/api/tickets/" + encodeURIComponent(settings.tenant) + "/" + encodeURIComponent(ticketId) + "/decision";
        return client
          .request({
            url: base + path,
            type: "GET",
            dataType: "json",
            cors: false,
            secure: true,
            headers: { Authorization: "Bearer {{setting.app_token}}" }
          })
          .then(render, failed);
      })
      .then(function () {
        client.invoke("resize", { width: "100%", height: document.body.scrollHeight + "px" });
      })
      .catch(function (error) {
        showError(t("load_failed", { message: (error && error.message) || error }));
      });
  }

  function start() {
    useLocale(navigator.language);
    if (typeof ZAFClient === "undefined") {
      showError(t("no_framework"));
      return;
    }
    var client = ZAFClient.init();
    client.on("app.registered", function () {
      load(client);
    });
    // tierdesk writes its decision back onto the ticket: show the new one.
    client.on("ticket.updated", function () {
      load(client);
    });
    setInterval(tick, 1000);
  }

  start();
})();
