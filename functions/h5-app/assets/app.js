// The H5 app: login-free identity through DingTalk's JSAPI, account association,
// incidents and actions. Every piece of data is rendered as text nodes (never
// innerHTML); descriptions get a safe markdown subset built the same way.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("config").textContent);
  var main = document.getElementById("main");
  var token = null;
  var me = null;
  var params = new URLSearchParams(location.search);

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "onclick") node.addEventListener("click", attrs[k]);
      else if (k === "onsubmit") node.addEventListener("submit", attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  // Markdown inside a line: **bold**, `code`, [text](http(s) link). Anything else,
  // HTML included, stays text.
  function inline(text) {
    var out = [], last = 0, m;
    var re = /\*\*([^*]+)\*\*|`([^`]+)`|\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g;
    while ((m = re.exec(text))) {
      if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
      if (m[1] !== undefined) out.push(el("strong", { text: m[1] }));
      else if (m[2] !== undefined) out.push(el("code", { text: m[2] }));
      else out.push(el("a", { href: m[4], target: "_blank", rel: "noopener noreferrer", text: m[3] }));
      last = re.lastIndex;
    }
    if (last < text.length) out.push(document.createTextNode(text.slice(last)));
    return out;
  }
  // An alert description: lines, "- " / "* " lists and "#" headings, with inline markdown.
  function markdown(text) {
    var box = el("div", { "class": "desc", id: "incident-description" });
    var list = null;
    text.split(/\r?\n/).forEach(function (line) {
      var item = /^\s*[-*]\s+(.*)$/.exec(line);
      if (item) {
        if (!list) { list = el("ul"); box.appendChild(list); }
        list.appendChild(el("li", {}, inline(item[1])));
        return;
      }
      list = null;
      var heading = /^#{1,6}\s+(.*)$/.exec(line);
      if (heading) box.appendChild(el("div", { "class": "md-h" }, inline(heading[1])));
      else if (line.trim() === "") box.appendChild(el("div", { "class": "md-gap" }));
      else box.appendChild(el("div", {}, inline(line)));
    });
    return box;
  }
  function show() {
    main.textContent = "";
    Array.prototype.forEach.call(arguments, function (n) { if (n) main.appendChild(n); });
  }
  function api(path, method, body) {
    var headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(cfg.base + "/api" + path, { method: method || "GET", headers: headers, body: body ? JSON.stringify(body) : undefined })
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (b) { return { status: r.status, body: b }; }); });
  }
  function message(kind, text, id) {
    return el("div", { "class": "card " + kind, id: id || "", role: "status", text: text });
  }
  function time(t) {
    if (!t) return "";
    try { return new Date(t).toLocaleString("zh-CN", { timeZone: cfg.timezone, hour12: false }); } catch (e) { return t; }
  }
  function badges(i) {
    return el("div", {}, [
      el("span", { "class": "badge sev-" + i.severity, text: i.severity }),
      el("span", { "class": "badge st-" + i.status, "data-testid": "status", text: i.status })
    ]);
  }

  function outside() {
    document.getElementById("who").textContent = "";
    show(el("div", { "class": "card notice", id: "outside" }, [
      el("div", { "class": "title", text: "Open this page inside DingTalk" }),
      el("p", { text: "This app knows who you are through DingTalk. Open DingTalk, go to Workbench and open \u201c" + cfg.name + "\u201d, or tap a button on an alert message." }),
      el("p", { "class": "muted", text: "在钉钉中打开：工作台 → " + cfg.name })
    ]));
  }

  function requestCode() {
    return new Promise(function (resolve, reject) {
      var opts = { corpId: cfg.corpId, clientId: cfg.clientId, onSuccess: function (r) { resolve(r.code || r.authCode); }, onFail: reject };
      if (typeof dd.requestAuthCode === "function") dd.requestAuthCode(opts);
      else if (dd.runtime && dd.runtime.permission) dd.runtime.permission.requestAuthCode(opts);
      else reject(new Error("no requestAuthCode"));
    });
  }

  function start() {
    if (!window.dd || (dd.env && dd.env.platform === "notInDingTalk")) return outside();
    var go = function () {
      requestCode().then(function (code) {
        return api("/login", "POST", { code: code });
      }).then(function (r) {
        if (r.status !== 200) return show(message("error", (r.body.error && r.body.error.message) || "Sign-in failed", "login-error"));
        token = r.body.session;
        me = r.body;
        route();
      }, function () { outside(); });
    };
    if (typeof dd.ready === "function") dd.ready(go); else go();
  }

  function header() {
    var who = document.getElementById("who");
    who.textContent = me.member ? me.member.name + " · " + me.member.email : me.user.name;
  }

  function route() {
    header();
    if (!me.member) return associate();
    if (params.get("incident")) return detail(params.get("incident"), params.get("action"));
    if (params.get("view") === "shifts" || params.get("view") === "oncall") return oncall();
    return list();
  }

  function associate(error) {
    var input = el("input", { type: "text", id: "link-code", name: "code", placeholder: "ABCD2345", autocomplete: "one-time-code", maxlength: "12", required: "required" });
    var form = el("form", { id: "associate-form", onsubmit: function (e) {
      e.preventDefault();
      api("/associate", "POST", { code: input.value.trim() }).then(function (r) {
        if (r.status === 200) { me = r.body; params.delete("view"); route(); }
        else associate((r.body.error && r.body.error.message) || "Association failed");
      });
    } }, [
      el("label", { "for": "link-code", text: "Link code" }), input,
      el("button", { "class": "btn primary", type: "submit", id: "associate-submit", text: "Associate my account" })
    ]);
    show(
      el("div", { "class": "card" }, [
        el("div", { "class": "title", text: "Associate your on-call account" }),
        el("p", { text: "Hi " + me.user.name + ". Enter the one-time code your admin gave you (valid 15 minutes). You only do this once." }),
        form
      ]),
      error ? message("error", error, "associate-error") : null
    );
  }

  function list() {
    var group = params.get("view") === "group";
    var cid = params.get("cid") || params.get("openConversationId") || "";
    var query = group ? "?view=group&cid=" + encodeURIComponent(cid) : "?view=mine";
    var unlink = el("button", { "class": "btn", id: "unlink", text: "Switch account", onclick: function () {
      api("/unlink", "POST").then(function (r) { if (r.status === 200) { me = r.body; route(); } });
    } });
    var onCall = el("button", { "class": "btn", id: "open-oncall", text: "📟 Who is on call", onclick: function () {
      params.set("view", "oncall"); oncall();
    } });
    api("/incidents" + query).then(function (r) {
      if (r.status !== 200) return show(message("error", (r.body.error && r.body.error.message) || "Could not load incidents"));
      var items = r.body.map(function (i) {
        return el("button", { "class": "card", "data-incident": i.id, onclick: function () { params.set("incident", i.id); params.delete("action"); detail(i.id); } }, [
          badges(i), el("div", { "class": "title", text: i.title }), el("div", { "class": "muted", text: "Started " + time(i.started_at || i.opened_at) })
        ]);
      });
      show(
        el("div", { "class": "tabs" }, [el("strong", { text: group ? "Incidents in this group" : "My open incidents" })]),
        items.length ? el("div", { "class": "list", id: "incident-list" }, items) : message("ok", group ? "No incidents in this group." : "Nothing open for you. \u2615", "empty"),
        onCall,
        me.member ? unlink : null
      );
    });
  }

  // Who is on call (the group's schedules when opened from a group) and my next shifts.
  function oncall() {
    var cid = params.get("cid") || params.get("openConversationId") || "";
    api("/oncall" + (cid ? "?cid=" + encodeURIComponent(cid) : "")).then(function (r) {
      if (r.status !== 200) return show(message("error", (r.body.error && r.body.error.message) || "Could not load schedules"));
      var names = function (people) { return people.map(function (p) { return p.name; }).join(", "); };
      var boards = r.body.schedules.map(function (s) {
        return el("div", { "class": "card", "data-schedule": s.id }, [
          el("div", { "class": "title", text: s.name + (s.chat ? " · " + s.chat : "") }),
          el("div", { "data-testid": "oncall-now", text: s.now.length ? "On call now: " + names(s.now) + " until " + time(s.until) : "Nobody is on call now" }),
          s.next ? el("div", { "class": "muted", text: "Next: " + s.next.name + " from " + time(s.next.start) }) : null
        ]);
      });
      var shifts = r.body.my_shifts.map(function (s) {
        return el("li", {}, [el("strong", { text: s.schedule }), document.createTextNode(" " + time(s.start) + " → " + time(s.end) + (s.source === "override" ? " (override)" : ""))]);
      });
      var back = el("button", { "class": "btn", id: "back", text: "← Incidents", onclick: function () { params.delete("view"); list(); } });
      show(
        back,
        el("div", { "class": "tabs" }, [el("strong", { text: "Who is on call" })]),
        boards.length ? el("div", { "class": "list", id: "oncall-list" }, boards) : message("ok", "No on-call schedules yet.", "no-schedules"),
        el("div", { "class": "card" }, [el("div", { "class": "title", text: "My next shifts (14 days)" }),
          shifts.length ? el("ul", { id: "my-shifts" }, shifts) : el("div", { "class": "muted", id: "no-shifts", text: "No shifts for you in the next 14 days." })])
      );
    });
  }

  function detail(id, pending) {
    api("/incidents/" + encodeURIComponent(id)).then(function (r) {
      if (r.status !== 200) return show(message("error", (r.body.error && r.body.error.message) || "Incident not found"));
      var i = r.body;
      var feedback = el("div", { id: "feedback" });
      var snooze = el("select", { id: "snooze-duration", "aria-label": "Snooze for" }, [
        el("option", { value: "30m", text: "30 min" }), el("option", { value: "2h", text: "2 h" }), el("option", { value: "24h", text: "24 h" })
      ]);
      function act(action, member) {
        api("/incidents/" + encodeURIComponent(i.id) + "/actions", "POST", { action: action, duration: snooze.value, member: member, version: i.version }).then(function (res) {
          if (res.status === 200) { params.delete("action"); detail(i.id); return; }
          feedback.textContent = "";
          feedback.appendChild(message(res.status === 409 ? "notice" : "error", (res.body.error && res.body.error.message) || "Action failed", "action-error"));
          if (res.status === 409) setTimeout(function () { detail(i.id); }, 1200);
        });
      }
      var open = i.status !== "resolved";
      var esc = i.escalation;
      var reassignTo = el("input", { id: "reassign-member", type: "email", placeholder: "colleague@example.com", "aria-label": "Reassign to (email)" });
      var buttons = el("div", { "class": "actions" }, [
        i.status === "triggered" ? el("button", { "class": "btn primary", id: "act-ack", text: "✋ Acknowledge", onclick: function () { act("ack"); } }) : null,
        open ? el("button", { "class": "btn danger", id: "act-resolve", text: "✅ Resolve", onclick: function () { act("resolve"); } }) : null,
        open ? snooze : null,
        open ? el("button", { "class": "btn", id: "act-snooze", text: "💤 Snooze", onclick: function () { act("snooze"); } }) : null,
        open && esc ? el("button", { "class": "btn", id: "act-escalate", text: "⏫ Escalate", onclick: function () { act("escalate"); } }) : null
      ]);
      var reassign = open ? el("div", { "class": "actions" }, [reassignTo,
        el("button", { "class": "btn", id: "act-reassign", text: "👉 Reassign", onclick: function () { act("reassign", reassignTo.value); } })]) : null;
      var names = { ack: "Acknowledge", resolve: "Resolve", snooze: "Snooze", escalate: "Escalate" };
      var confirm = pending && names[pending] && open ? el("div", { "class": "card notice", id: "confirm" }, [
        el("div", { text: names[pending] + " this incident?" }),
        el("div", { "class": "actions" }, [el("button", { "class": "btn primary", id: "confirm-action", text: "Confirm " + names[pending], onclick: function () { act(pending); } })])
      ]) : null;
      var labels = el("div", { "class": "labels" }, Object.keys(i.labels || {}).map(function (k) { return el("span", { text: k + ": " + i.labels[k] }); }));
      var links = el("div", {}, (i.links || []).filter(function (l) { return /^https?:\/\//.test(l.url); }).map(function (l) {
        return el("div", {}, [el("a", { href: l.url, target: "_blank", rel: "noopener noreferrer", text: l.title })]);
      }));
      var facts = [
        i.acked_by ? "Acknowledged by " + i.acked_by : null,
        i.resolved_by ? "Resolved by " + i.resolved_by + " at " + time(i.resolved_at) : null,
        i.snoozed_until ? "Snoozed until " + time(i.snoozed_until) : null,
        esc ? "Escalation " + esc.policy_name + ": layer " + (esc.layer + 1) + " of " + esc.layers +
          (esc.state === "waiting" && esc.next_step === "escalate" ? ", next escalation at " + time(esc.next_at) : "") +
          (esc.state === "done" && open ? ", every layer notified" : "") +
          (esc.state === "stopped" ? ", stopped (acknowledged)" : "") : null,
        i.assignees && i.assignees.length && open ? "Assignees: " + i.assignees.join(", ") : null,
        "Started " + time(i.started_at || i.opened_at), "Key " + i.key
      ].filter(Boolean);
      var timeline = el("ul", { "class": "timeline", id: "timeline" }, (i.records || []).slice().reverse().map(function (rec) {
        return el("li", {}, [el("div", { text: rec.detail }), el("div", { "class": "muted", text: time(rec.at) + " · " + rec.kind + (rec.target ? " · " + rec.target : "") })]);
      }));
      var back = el("button", { "class": "btn", id: "back", text: "← Back", onclick: function () { params.delete("incident"); params.delete("action"); list(); } });
      show(
        back, confirm,
        el("div", { "class": "detail" }, [
          el("div", { "class": "card", id: "incident" }, [badges(i), el("div", { "class": "title", id: "incident-title", text: i.title }),
            markdown(i.description || ""), labels, links,
            el("div", { "class": "muted" }, facts.map(function (f) { return el("div", { text: f }); })),
            me.member ? buttons : message("notice", "Associate your account to act on incidents."),
            me.member ? reassign : null, feedback]),
          el("div", { "class": "card" }, [el("div", { "class": "title", text: "Timeline" }), timeline])
        ])
      );
    });
  }

  document.getElementById("app-name").textContent = cfg.name;
  start();
})();
