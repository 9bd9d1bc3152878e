/*
 * tierdesk's ticket sidebar: the ticket's latest decision from tierdesk, with a live
 * countdown to the first-response due time. Plain JavaScript, no framework.
 *
 * The decision comes from GET <service_url>/api/tickets/<tenant>/<ticket>/decision,
 * asked through ZAF's client.request() with `secure: true`: Zendesk's proxy fills in
 * {{setting.app_token}}, so the token never reaches this page (or its browser).
 * Everything shown is set with textContent: explanation lines carry e-mail addresses
 * and other text from the ticket, never to be read as HTML.
 */
(function () {
  "use strict";

  var CONTACT_REASONS = {
    not_listed: "not a named contact of the account",
    shared_mailbox: "a shared mailbox, not a person",
    foreign_domain: "not on one of the account's domains",
    partner_format: "a partner address not of the form PartnerEmployee_PartnerCompany@domain",
    not_admin: "not an admin of the licence"
  };

  var state = { dueMs: null };

  function byId(id) {
    return document.getElementById(id);
  }

  function setText(id, text) {
    byId(id).textContent = text;
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  // "29m 59s", "1h 05m 07s", "3d 00h 10m 00s": whole seconds, leading zero units left out.
  function formatDuration(ms) {
    var total = Math.floor(Math.max(ms, 0) / 1000);
    var days = Math.floor(total / 86400);
    var hours = Math.floor((total % 86400) / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var seconds = total % 60;
    if (days > 0) return days + "d " + pad(hours) + "h " + pad(minutes) + "m " + pad(seconds) + "s";
    if (hours > 0) return hours + "h " + pad(minutes) + "m " + pad(seconds) + "s";
    if (minutes > 0) return minutes + "m " + pad(seconds) + "s";
    return seconds + "s";
  }

  function tick() {
    var countdown = byId("countdown");
    if (state.dueMs === null) return;
    var left = state.dueMs - Date.now();
    if (left > 0) {
      countdown.textContent = "due in " + formatDuration(left);
      countdown.setAttribute("data-state", "due");
    } else {
      countdown.textContent = "overdue by " + formatDuration(-left);
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
    if (status === "valid") return "valid named contact";
    if (status === "not_required") return "not required for this tier";
    if (status === "invalid") {
      var why = CONTACT_REASONS[contact.reason] || contact.reason || "no reason given";
      return "invalid: " + why + (contact.reason ? " (" + contact.reason + ")" : "");
    }
    return status || "unknown";
  }

  function render(decision) {
    byId("error").hidden = true;
    byId("status").hidden = true;
    var tier = decision.tier_name || decision.tier || "unknown";
    if (decision.fallback && decision.account_tier) tier += " (fallback from " + decision.account_tier + ")";
    setText("tier", tier);
    var severity = decision.severity ? "L" + decision.severity : "unknown";
    setText("severity", decision.severity_name ? severity + " · " + decision.severity_name : severity);
    var due = byId("due");
    var response = decision.first_response;
    if (decision.first_response_due) {
      due.setAttribute("datetime", decision.first_response_due);
      due.textContent = "due " + new Date(Date.parse(decision.first_response_due)).toLocaleString();
    }
    if (response && response.at) {
      // Answered: the clock has stopped, nothing left to count down.
      state.dueMs = null;
      setText(
        "countdown",
        "first response " + (response.met ? "met" : "missed") + " at " + new Date(Date.parse(response.at)).toLocaleString()
      );
      byId("countdown").setAttribute("data-state", response.met ? "met" : "missed");
    } else if (decision.first_response_due) {
      state.dueMs = Date.parse(decision.first_response_due);
      tick();
    } else {
      state.dueMs = null;
      due.removeAttribute("datetime");
      due.textContent = "";
      setText("countdown", "no first-response target");
      byId("countdown").setAttribute("data-state", "none");
    }
    setText("named-contact", contactText(decision.named_contact));
    setText("coverage", decision.coverage === "covered" ? "covered" : "not covered");
    var list = byId("reasons");
    while (list.firstChild) list.removeChild(list.firstChild);
    (decision.because || []).forEach(function (line) {
      var item = document.createElement("li");
      item.textContent = line;
      list.appendChild(item);
    });
    var meta = "decided " + decision.decided_at;
    if (decision.mappings_version) meta += " · mappings " + decision.mappings_version;
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
      showError(
        "tierdesk refused the app token (" + status + "). Check the app's \"App token\" " +
          "setting: it must be this tenant's TIERDESK_TENANT_<ID>_APP_TOKEN."
      );
    } else if (status === 404 && answer.error === "no_decision") {
      state.dueMs = null;
      byId("decision").hidden = true;
      showStatus("tierdesk has not decided this ticket yet.");
    } else if (status === 404 && answer.error === "unknown_tenant") {
      showError("tierdesk has no such tenant. Check the app's \"Tenant id\" setting.");
    } else if (!status) {
      showError("tierdesk could not be reached. Check the app's \"tierdesk service URL\" setting.");
    } else {
      showError("tierdesk answered " + status + ": " + (answer.message || answer.error || "an error"));
    }
  }

  function load(client) {
    return Promise.all([client.get("ticket.id"), client.metadata()])
      .then(function (results) {
        var ticketId = results[0]["ticket.id"];
        var settings = (results[1] && results[1].settings) || {};
        var base = String(settings.service_url || "").replace(/\/+$/, "");
        if (!base || !settings.tenant) {
          showError("The app is not configured: set the tierdesk service URL and the tenant id.");
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
        showError("tierdesk could not be loaded: " + ((error && error.message) || error));
      });
  }

  function start() {
    if (typeof ZAFClient === "undefined") {
      showError("The Zendesk Apps framework did not load.");
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
