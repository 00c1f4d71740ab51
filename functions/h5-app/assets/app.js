// The H5 app: login-free identity through DingTalk's JSAPI, account association,
// open incidents with filters, actions, notes and who is on call, in Chinese or
// English. Every string people read comes from STRINGS (one table per language);
// API values (status, severity) stay English. Every piece of data is rendered as
// text nodes (never innerHTML); descriptions get a safe markdown subset built the
// same way.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("config").textContent);
  var main = document.getElementById("main");
  var token = null;
  var me = null;
  var params = new URLSearchParams(location.search);
  // The current screen, drawn again when the language changes.
  var screen = null;

  var STRINGS = {
    "zh-CN": {
      langName: "中文", switchTo: "切换语言", incidents: "事件",
      signingIn: "正在通过钉钉登录…", signInFailed: "登录失败",
      outsideTitle: "请在钉钉中打开此页面",
      outsideBody: "本应用通过钉钉识别你的身份。请打开钉钉，进入工作台并打开“{name}”，或点击告警消息上的按钮。",
      outsideHint: "在钉钉中打开：工作台 → {name}",
      associateTitle: "关联你的值班账号",
      associateBody: "{name}，你好。请输入管理员给你的一次性关联码（15 分钟内有效）。只需关联一次。",
      linkCode: "关联码", codePlaceholder: "ABCD2345", associateSubmit: "关联我的账号",
      associateFailed: "关联失败", codeWrong: "关联码错误或已过期；关联码 15 分钟内有效。",
      codeUsed: "该关联码已被使用；请向管理员索取新的关联码。",
      tooManyAttempts: "错误次数过多；请等待 15 分钟并索取新的关联码。",
      switchAccount: "切换账号", openOncall: "📟 谁在值班",
      loadFailed: "无法加载事件", scopeAll: "全部", scopeMine: "我的", scopeMineCount: "我的 ({n})",
      filterScope: "范围", filterSeverity: "级别", filterGroup: "群",
      severityAny: "全部级别", groupAny: "全部群", groupCount: "{title} ({n})",
      headingAll: "未解决的事件", headingMine: "我的未解决事件", headingCount: "{heading} · {n}",
      emptyAll: "当前没有未解决的事件。☕", emptyMine: "没有需要你处理的事件。☕",
      emptyFiltered: "没有符合筛选条件的未解决事件。",
      startedAgo: "开始于 {time}", mine: "我的", details: "详情 ›", inGroups: "群：{groups}",
      sev_critical: "严重", sev_warning: "警告", sev_info: "提醒",
      st_triggered: "待处理", st_acknowledged: "处理中", st_resolved: "已解决", st_snoozed: "已暂缓",
      firing: "告警中", alertResolved: "已恢复",
      ack: "✋ 认领", resolve: "✅ 解决", snooze: "💤 暂缓", escalate: "⏫ 升级", reassign: "👉 转派",
      name_ack: "认领", name_resolve: "解决", name_snooze: "暂缓", name_escalate: "升级",
      name_silence: "静默", name_unsilence: "取消静默",
      confirmQuestion: "确定要{action}此事件吗？", confirmButton: "确认{action}",
      snoozeFor: "暂缓时长", snooze30m: "30 分钟", snooze2h: "2 小时", snooze24h: "24 小时",
      reassignTo: "转派给（邮箱）", reassignPlaceholder: "colleague@example.com",
      actionFailed: "操作失败", conflict: "已有人先操作；这是事件的当前状态。",
      associateToAct: "关联账号后才能处理事件。",
      ackedBy: "认领人：{name}", resolvedBy: "{name} 于 {time} 解决", snoozedUntil: "暂缓至 {time}",
      escalation: "升级策略 {policy}：第 {n}/{m} 层", nextEscalation: "，下次升级 {time}",
      everyLayer: "，所有层级均已通知", escalationStopped: "，已停止（已认领）",
      assignees: "处理人：{names}", started: "开始于 {time}", key: "告警键 {key}",
      timeline: "时间线", back: "← 返回", backIncidents: "← 事件列表", notFound: "未找到该事件",
      addNote: "添加备注", notePlaceholder: "记录你的发现或处理进展…", noteSubmit: "添加备注",
      noteEmpty: "请先填写备注内容。", noteTooLong: "备注最多 2000 个字符。", noteFailed: "备注添加失败",
      noteCount: "{n}/2000",
      oncallTitle: "谁在值班", oncallFailed: "无法加载排班",
      onCallNow: "当前值班：{names}，至 {time}", nobodyOnCall: "当前无人值班",
      nextShift: "下一班：{name}，{time} 起", noSchedules: "还没有值班表。",
      myShifts: "我接下来的班次（14 天内）", noShifts: "未来 14 天内你没有班次。",
      shiftOverride: "（替班）", namesJoin: "、",
      silenceTitle: "Alertmanager 静默", silenceFor: "静默时长", silence1h: "1 小时", silence4h: "4 小时", silence24h: "24 小时",
      silence: "🔕 静默…", unsilence: "🔔 取消静默", silenceConfirm: "将在 Alertmanager 创建静默（{duration}），匹配以下标签：",
      silenceConfirmButton: "确认静默", silencedUntil: "已静默至 {time}（{by}）", silenceId: "静默 ID {id}",
      silenceFailed: "静默失败",
      kind_opened: "已创建", kind_updated: "已更新", kind_resolved: "已解决", kind_sent: "已发送",
      kind_card_updated: "卡片已更新", kind_failed: "发送失败", kind_not_associated: "未关联",
      kind_not_installed: "未安装酷应用", kind_unknown_target: "未知目标", kind_quota_exhausted: "额度用尽",
      kind_skipped: "已跳过", kind_acknowledged: "已认领", kind_snoozed: "已暂缓", kind_binding: "账号关联",
      kind_webhook: "Webhook", kind_suppressed: "已抑制", kind_folded: "已折叠", kind_truncated: "已截断",
      kind_clock_skew: "时钟偏差", kind_escalated: "已升级", kind_ding_sent: "已发送 DING",
      kind_ding_recalled: "已撤回 DING", kind_ding_failed: "DING 失败", kind_reassigned: "已转派",
      kind_ack_timeout: "认领超时", kind_snooze_ended: "暂缓结束", kind_template_failed: "模板出错",
      kind_note: "备注", kind_replayed: "关联后执行", kind_silenced: "已静默", kind_unsilenced: "已取消静默",
      reassignName: "转派",
      heldNote: "已为你保留“{action}”操作：请在 {time} 前完成关联，之后将以你的名义自动执行。",
      holdFailed: "无法保留此操作",
      replayedApplied: "你关联前点击的“{action}”{of}已执行。",
      replayedDropped: "你关联前点击的“{action}”{of}未执行：{reason}",
      replayedOf: "（{title}）",
      reason_resolved: "事件在此期间已解决。", reason_already_acknowledged: "事件已被他人认领。",
      reason_already_done: "该操作已生效。", reason_not_licensed: "你的账号没有许可；请联系管理员。",
      reason_not_found: "事件已不存在。", reason_conflict: "有人同时处理了该事件。",
      reason_error: "暂时无法执行，请在事件页面重试。"
    },
    "en-US": {
      langName: "English", switchTo: "Switch language", incidents: "Incidents",
      signingIn: "Signing you in with DingTalk…", signInFailed: "Sign-in failed",
      outsideTitle: "Open this page inside DingTalk",
      outsideBody: "This app knows who you are through DingTalk. Open DingTalk, go to Workbench and open \u201c{name}\u201d, or tap a button on an alert message.",
      outsideHint: "In DingTalk: Workbench → {name}",
      associateTitle: "Associate your on-call account",
      associateBody: "Hi {name}. Enter the one-time code your admin gave you (valid 15 minutes). You only do this once.",
      linkCode: "Link code", codePlaceholder: "ABCD2345", associateSubmit: "Associate my account",
      associateFailed: "Association failed", codeWrong: "Wrong or expired code; codes are valid for 15 minutes.",
      codeUsed: "This code was already used; ask an admin for a new one.",
      tooManyAttempts: "Too many wrong codes; wait 15 minutes and ask for a new code.",
      switchAccount: "Switch account", openOncall: "📟 Who is on call",
      loadFailed: "Could not load incidents", scopeAll: "All", scopeMine: "Mine", scopeMineCount: "Mine ({n})",
      filterScope: "Show", filterSeverity: "Severity", filterGroup: "Group",
      severityAny: "All severities", groupAny: "All groups", groupCount: "{title} ({n})",
      headingAll: "Open incidents", headingMine: "My open incidents", headingCount: "{heading} · {n}",
      emptyAll: "Nothing open. \u2615", emptyMine: "Nothing open for you. \u2615",
      emptyFiltered: "No open incidents match these filters.",
      startedAgo: "Started {time}", mine: "Mine", details: "Details ›", inGroups: "Groups: {groups}",
      sev_critical: "Critical", sev_warning: "Warning", sev_info: "Info",
      st_triggered: "Triggered", st_acknowledged: "Acknowledged", st_resolved: "Resolved", st_snoozed: "Snoozed",
      firing: "Firing", alertResolved: "Resolved at source",
      ack: "✋ Acknowledge", resolve: "✅ Resolve", snooze: "💤 Snooze", escalate: "⏫ Escalate", reassign: "👉 Reassign",
      name_ack: "Acknowledge", name_resolve: "Resolve", name_snooze: "Snooze", name_escalate: "Escalate",
      name_silence: "Silence", name_unsilence: "Unsilence",
      confirmQuestion: "{action} this incident?", confirmButton: "Confirm {action}",
      snoozeFor: "Snooze for", snooze30m: "30 min", snooze2h: "2 h", snooze24h: "24 h",
      reassignTo: "Reassign to (email)", reassignPlaceholder: "colleague@example.com",
      actionFailed: "Action failed", conflict: "Someone acted first; this is the incident now.",
      associateToAct: "Associate your account to act on incidents.",
      ackedBy: "Acknowledged by {name}", resolvedBy: "Resolved by {name} at {time}", snoozedUntil: "Snoozed until {time}",
      escalation: "Escalation {policy}: layer {n} of {m}", nextEscalation: ", next escalation at {time}",
      everyLayer: ", every layer notified", escalationStopped: ", stopped (acknowledged)",
      assignees: "Assignees: {names}", started: "Started {time}", key: "Key {key}",
      timeline: "Timeline", back: "← Back", backIncidents: "← Incidents", notFound: "Incident not found",
      addNote: "Add a note", notePlaceholder: "What did you find or do?", noteSubmit: "Add note",
      noteEmpty: "Write the note first.", noteTooLong: "A note has at most 2000 characters.", noteFailed: "Could not add the note",
      noteCount: "{n}/2000",
      oncallTitle: "Who is on call", oncallFailed: "Could not load schedules",
      onCallNow: "On call now: {names} until {time}", nobodyOnCall: "Nobody is on call now",
      nextShift: "Next: {name} from {time}", noSchedules: "No on-call schedules yet.",
      myShifts: "My next shifts (14 days)", noShifts: "No shifts for you in the next 14 days.",
      shiftOverride: " (override)",
      silenceTitle: "Alertmanager silence", silenceFor: "Silence for", silence1h: "1 h", silence4h: "4 h", silence24h: "24 h",
      silence: "🔕 Silence…", unsilence: "🔔 Unsilence", silenceConfirm: "This creates a silence in Alertmanager ({duration}) matching:",
      silenceConfirmButton: "Confirm silence", silencedUntil: "Silenced until {time} ({by})", silenceId: "silence id {id}",
      silenceFailed: "Silence failed", namesJoin: ", ",
      kind_opened: "opened", kind_updated: "updated", kind_resolved: "resolved", kind_sent: "sent",
      kind_card_updated: "card updated", kind_failed: "delivery failed", kind_not_associated: "not associated",
      kind_not_installed: "cool app not installed", kind_unknown_target: "unknown target", kind_quota_exhausted: "quota used up",
      kind_skipped: "skipped", kind_acknowledged: "acknowledged", kind_snoozed: "snoozed", kind_binding: "association",
      kind_webhook: "webhook", kind_suppressed: "suppressed", kind_folded: "folded", kind_truncated: "truncated",
      kind_clock_skew: "clock skew", kind_escalated: "escalated", kind_ding_sent: "DING sent",
      kind_ding_recalled: "DING recalled", kind_ding_failed: "DING failed", kind_reassigned: "reassigned",
      kind_ack_timeout: "acknowledgement timed out", kind_snooze_ended: "snooze ended", kind_template_failed: "template failed",
      kind_note: "note", kind_replayed: "replayed", kind_silenced: "silenced", kind_unsilenced: "unsilenced",
      reassignName: "Reassign",
      heldNote: "Your {action} is held: associate your account before {time} and it is applied in your name.",
      holdFailed: "Could not hold this action",
      replayedApplied: "Your {action}{of}, clicked before you associated, was applied.",
      replayedDropped: "Your {action}{of}, clicked before you associated, was not applied: {reason}",
      replayedOf: " of \u201c{title}\u201d",
      reason_resolved: "the incident was resolved meanwhile.", reason_already_acknowledged: "someone else acknowledged it already.",
      reason_already_done: "it was already in effect.", reason_not_licensed: "your account has no licence; ask an admin.",
      reason_not_found: "the incident no longer exists.", reason_conflict: "someone acted on the incident at the same moment.",
      reason_error: "it could not be applied just now; try again on the incident's page."
    }
  };
  var lang = STRINGS[cfg.locale] ? cfg.locale : "zh-CN";

  // The string `key` of the page's language with its {placeholders} filled in.
  function t(key, vars) {
    var text = STRINGS[lang][key];
    if (text === undefined) text = key;
    return text.replace(/\{(\w+)\}/g, function (m, k) { return vars && vars[k] !== undefined ? String(vars[k]) : m; });
  }
  // A label of a table (record kinds, severities…) with the raw value when unknown.
  function label(prefix, value) {
    return STRINGS[lang][prefix + value] !== undefined ? t(prefix + value) : value;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "onclick") node.addEventListener("click", attrs[k]);
      else if (k === "onsubmit") node.addEventListener("submit", attrs[k]);
      else if (k === "onchange") node.addEventListener("change", attrs[k]);
      else if (k === "oninput") node.addEventListener("input", attrs[k]);
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
  // What became of an action held before association: shown once, above the next screen.
  var banner = null;
  function show() {
    main.textContent = "";
    if (banner) { main.appendChild(banner); banner = null; }
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
  // A refusal as people read it: our words first, the server's reason after.
  function failure(key, r) {
    var reason = r.body && r.body.error && r.body.error.message;
    return reason ? t(key) + " — " + reason : t(key);
  }

  // Absolute time `2026-11-28 09:00` in the integration's time zone.
  function time(iso) {
    if (!iso) return "";
    try {
      var parts = {};
      new Intl.DateTimeFormat("en-GB", { timeZone: cfg.timezone, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(new Date(iso)).forEach(function (p) { parts[p.type] = p.value; });
      return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
    } catch (e) { return iso; }
  }
  // Relative time in the page's language ("12 分钟前", "12 minutes ago", "in 5 minutes").
  function relative(iso) {
    var ms = Date.parse(iso);
    if (isNaN(ms)) return iso || "";
    var secs = Math.round((ms - Date.now()) / 1000), abs = Math.abs(secs);
    var steps = [[60, "second", 1], [3600, "minute", 60], [86400, "hour", 3600], [2592000, "day", 86400], [31536000, "month", 2592000]];
    var unit = "year", size = 31536000;
    for (var k = 0; k < steps.length; k++) if (abs < steps[k][0]) { unit = steps[k][1]; size = steps[k][2]; break; }
    try { return new Intl.RelativeTimeFormat(lang, { numeric: "auto" }).format(Math.round(secs / size), unit); } catch (e) { return time(iso); }
  }
  // A <time> element showing `key` with the relative time, the absolute one on hover;
  // refreshed every 30 s.
  function when(iso, key, attrs) {
    var node = el("time", Object.assign({ datetime: iso || "", title: time(iso), "data-at": iso || "", "data-key": key || "" }, attrs || {}));
    node.textContent = key ? t(key, { time: relative(iso) }) : relative(iso);
    return node;
  }
  setInterval(function () {
    Array.prototype.forEach.call(document.querySelectorAll("time[data-at]"), function (node) {
      var key = node.getAttribute("data-key"), iso = node.getAttribute("data-at");
      node.textContent = key ? t(key, { time: relative(iso) }) : relative(iso);
    });
  }, 30000);

  // What the status badge says: snoozed while a snooze runs, else the API status.
  function statusOf(i) {
    if (i.status !== "resolved" && i.snoozed_until && Date.parse(i.snoozed_until) > Date.now()) return "snoozed";
    return i.status;
  }
  function badges(i) {
    var alert = i.status !== "resolved" ? el("span", { "class": "badge alert-firing", "data-testid": "alert", text: t("firing") })
      : i.resolved_by === "source" ? el("span", { "class": "badge alert-resolved", "data-testid": "alert", text: t("alertResolved") }) : null;
    return el("div", {}, [
      el("span", { "class": "badge sev-" + i.severity, "data-severity": i.severity, text: label("sev_", i.severity) }),
      el("span", { "class": "badge st-" + statusOf(i), "data-testid": "status", "data-status": i.status, text: label("st_", statusOf(i)) }),
      alert,
      i.mine ? el("span", { "class": "badge mine", text: t("mine") }) : null
    ]);
  }

  // The language switch in the header: shows the other language; an associated
  // person's choice is remembered on their binding.
  function applyLanguage() {
    document.documentElement.lang = lang;
    document.title = cfg.name + " · " + t("incidents");
    var other = lang === "zh-CN" ? "en-US" : "zh-CN";
    var button = document.getElementById("lang-switch");
    button.hidden = false;
    button.textContent = STRINGS[other].langName;
    button.setAttribute("data-lang", other);
    button.setAttribute("aria-label", t("switchTo"));
  }
  function switchLanguage() {
    var other = lang === "zh-CN" ? "en-US" : "zh-CN";
    var done = function () { lang = other; applyLanguage(); if (screen) screen(); };
    if (token && me && me.member) {
      api("/locale", "POST", { locale: other }).then(function (r) { if (r.status === 200) me = r.body; done(); });
    } else done();
  }
  document.getElementById("lang-switch").addEventListener("click", switchLanguage);

  function outside() {
    screen = outside;
    document.getElementById("who").textContent = "";
    show(el("div", { "class": "card notice", id: "outside" }, [
      el("div", { "class": "title", text: t("outsideTitle") }),
      el("p", { text: t("outsideBody", { name: cfg.name }) }),
      el("p", { "class": "muted", text: t("outsideHint", { name: cfg.name }) })
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
        if (r.status !== 200) return show(message("error", failure("signInFailed", r), "login-error"));
        token = r.body.session;
        me = r.body;
        if (STRINGS[me.locale]) { lang = me.locale; applyLanguage(); }
        replayed();
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
    if (!me.member) return holdThenAssociate();
    if (params.get("incident")) return detail(params.get("incident"), params.get("action"));
    if (params.get("view") === "shifts" || params.get("view") === "oncall") return oncall();
    return list();
  }

  function associateError(r) {
    if (r.status === 429) return t("tooManyAttempts");
    var reason = (r.body.error && r.body.error.message) || "";
    if (r.status === 400 && /already used/.test(reason)) return t("codeUsed");
    if (r.status === 400) return t("codeWrong");
    return failure("associateFailed", r);
  }

  // An action's name in the page's language ("认领", "Snooze 2 h").
  function actionName(action, duration) {
    if (action === "reassign") return t("reassignName");
    var name = STRINGS[lang]["name_" + action] !== undefined ? t("name_" + action) : action;
    return (action === "snooze" || action === "silence") && duration ? name + " " + label(action, duration) : name;
  }

  // Opened from an action link before associating: the action is held on the server
  // (once per visit) and applied in the person's name once they associate.
  var holdTried = false;
  function holdThenAssociate() {
    var incident = params.get("incident"), action = params.get("action");
    if (!incident || !action || holdTried) return associate();
    holdTried = true;
    api("/held", "POST", { incident: incident, action: action, duration: params.get("duration") || undefined,
      member: params.get("member") || undefined }).then(function (r) {
      if (r.status === 201) { me.held = r.body; return associate(); }
      associate(null, failure("holdFailed", r));
    });
  }

  // The answer to an association says what became of the held action: a banner above
  // the next screen, which is that incident (its action is not offered again).
  function replayed() {
    var rep = me.replayed;
    if (!rep) return;
    var vars = { action: actionName(rep.action, rep.duration), of: rep.title ? t("replayedOf", { title: rep.title }) : "",
      reason: STRINGS[lang]["reason_" + rep.reason_code] !== undefined ? t("reason_" + rep.reason_code) : (rep.reason || "") };
    banner = el("div", { "class": "card " + (rep.applied ? "ok" : "notice"), id: "replayed", role: "status",
      "data-applied": String(rep.applied), "data-reason": rep.reason_code || "", text: t(rep.applied ? "replayedApplied" : "replayedDropped", vars) });
    if (rep.title) params.set("incident", rep.incident);
    params.delete("action");
  }

  function associate(error, warning) {
    screen = function () { associate(error, warning); };
    var input = el("input", { type: "text", id: "link-code", name: "code", placeholder: t("codePlaceholder"), autocomplete: "one-time-code", maxlength: "12", required: "required" });
    var form = el("form", { id: "associate-form", onsubmit: function (e) {
      e.preventDefault();
      api("/associate", "POST", { code: input.value.trim() }).then(function (r) {
        if (r.status === 200) { me = r.body; params.delete("view"); replayed(); route(); }
        else associate(associateError(r));
      });
    } }, [
      el("label", { "for": "link-code", text: t("linkCode") }), input,
      el("button", { "class": "btn primary", type: "submit", id: "associate-submit", text: t("associateSubmit") })
    ]);
    show(
      el("div", { "class": "card" }, [
        el("div", { "class": "title", text: t("associateTitle") }),
        el("p", { text: t("associateBody", { name: me.user.name }) }),
        me.held ? el("p", { "class": "card notice", id: "held-note", "data-action": me.held.action,
          text: t("heldNote", { action: actionName(me.held.action, me.held.duration), time: time(me.held.until) }) }) : null,
        form
      ]),
      warning ? message("notice", warning, "hold-error") : null,
      error ? message("error", error, "associate-error") : null
    );
  }

  // The list's filters: all (the default, so the team's incidents are never hidden)
  // or mine, a severity, a group chat. Links from a group (view=group&cid=) preset it.
  var filters = {
    scope: params.get("view") === "mine" ? "mine" : "all",
    severity: params.get("severity") || "",
    cid: params.get("cid") || params.get("openConversationId") || ""
  };

  function filterBar(groups, mineCount) {
    var scopeButton = function (scope, text) {
      return el("button", { type: "button", "class": "seg" + (filters.scope === scope ? " on" : ""), id: "filter-" + scope,
        "aria-pressed": String(filters.scope === scope), text: text, onclick: function () { filters.scope = scope; list(); } });
    };
    var severity = el("select", { id: "filter-severity", "aria-label": t("filterSeverity"), onchange: function () { filters.severity = severity.value; list(); } },
      [el("option", { value: "", text: t("severityAny") })].concat(["critical", "warning", "info"].map(function (s) {
        return el("option", { value: s, text: t("sev_" + s) });
      })));
    severity.value = filters.severity;
    var options = groups.map(function (g) { return el("option", { value: g.cid, text: t("groupCount", { title: g.title || g.cid, n: g.open }) }); });
    if (filters.cid && !groups.some(function (g) { return g.cid === filters.cid; })) options.push(el("option", { value: filters.cid, text: filters.cid }));
    var group = el("select", { id: "filter-group", "aria-label": t("filterGroup"), onchange: function () { filters.cid = group.value; list(); } },
      [el("option", { value: "", text: t("groupAny") })].concat(options));
    group.value = filters.cid;
    return el("div", { "class": "filters", id: "filters" }, [
      el("div", { "class": "segs", role: "group", "aria-label": t("filterScope") }, [
        scopeButton("all", t("scopeAll")),
        scopeButton("mine", mineCount === null ? t("scopeMine") : t("scopeMineCount", { n: mineCount }))
      ]),
      severity, group
    ]);
  }

  function listItem(i, titles) {
    var groups = (i.targets && i.targets.chats || []).map(function (c) { return titles[c] || c; });
    return el("button", { "class": "card sev-edge-" + i.severity, "data-incident": i.id, "data-severity": i.severity, "data-mine": String(!!i.mine),
      onclick: function () { params.set("incident", i.id); params.delete("action"); detail(i.id); } }, [
      badges(i), el("div", { "class": "title", text: i.title }),
      el("div", { "class": "muted meta" }, [
        when(i.started_at || i.opened_at, "startedAgo"),
        groups.length ? el("span", { text: " · " + t("inGroups", { groups: groups.join(t("namesJoin")) }) }) : null,
        el("span", { "class": "more", text: t("details") })
      ])
    ]);
  }

  var listed = 0;
  function list() {
    screen = list;
    var query = "?view=" + filters.scope + (filters.severity ? "&severity=" + encodeURIComponent(filters.severity) : "") +
      (filters.cid ? "&cid=" + encodeURIComponent(filters.cid) : "");
    var seq = ++listed;
    Promise.all([api("/incidents" + query), api("/groups")]).then(function (rs) {
      if (seq !== listed || screen !== list) return; // a newer filter (or another screen) won
      var r = rs[0];
      if (r.status !== 200) return show(message("error", failure("loadFailed", r)));
      var groups = rs[1].status === 200 ? rs[1].body : [];
      var titles = {};
      groups.forEach(function (g) { if (g.title) titles[g.cid] = g.title; });
      var mineCount = filters.scope === "all" ? r.body.filter(function (i) { return i.mine; }).length : null;
      var heading = t(filters.scope === "mine" ? "headingMine" : "headingAll");
      var filtered = filters.severity || filters.cid;
      var empty = filtered ? "emptyFiltered" : filters.scope === "mine" ? "emptyMine" : "emptyAll";
      show(
        filterBar(groups, mineCount),
        el("div", { "class": "tabs" }, [el("strong", { id: "list-heading", text: t("headingCount", { heading: heading, n: r.body.length }) })]),
        r.body.length ? el("div", { "class": "list", id: "incident-list", "data-query": query }, r.body.map(function (i) { return listItem(i, titles); }))
          : el("div", { "data-query": query }, [message("ok", t(empty), "empty")]),
        el("div", { "class": "actions" }, [
          el("button", { "class": "btn", id: "open-oncall", text: t("openOncall"), onclick: function () { params.set("view", "oncall"); oncall(); } }),
          el("button", { "class": "btn", id: "unlink", text: t("switchAccount"), onclick: function () {
            api("/unlink", "POST").then(function (res) { if (res.status === 200) { me = res.body; route(); } });
          } })
        ])
      );
    });
  }

  // Who is on call (the group's schedules when opened from a group) and my next shifts.
  function oncall() {
    screen = oncall;
    var cid = params.get("cid") || params.get("openConversationId") || "";
    api("/oncall" + (cid ? "?cid=" + encodeURIComponent(cid) : "")).then(function (r) {
      if (r.status !== 200) return show(message("error", failure("oncallFailed", r)));
      var names = function (people) { return people.map(function (p) { return p.name; }).join(t("namesJoin")); };
      var boards = r.body.schedules.map(function (s) {
        return el("div", { "class": "card", "data-schedule": s.id }, [
          el("div", { "class": "title", text: s.name + (s.chat ? " · " + s.chat : "") }),
          el("div", { "data-testid": "oncall-now", text: s.now.length ? t("onCallNow", { names: names(s.now), time: time(s.until) }) : t("nobodyOnCall") }),
          s.next ? el("div", { "class": "muted", text: t("nextShift", { name: s.next.name, time: time(s.next.start) }) }) : null
        ]);
      });
      var shifts = r.body.my_shifts.map(function (s) {
        return el("li", {}, [el("strong", { text: s.schedule }), document.createTextNode(" " + time(s.start) + " → " + time(s.end) + (s.source === "override" ? t("shiftOverride") : ""))]);
      });
      var back = el("button", { "class": "btn", id: "back", text: t("backIncidents"), onclick: function () { params.delete("view"); list(); } });
      show(
        back,
        el("div", { "class": "tabs" }, [el("strong", { text: t("oncallTitle") })]),
        boards.length ? el("div", { "class": "list", id: "oncall-list" }, boards) : message("ok", t("noSchedules"), "no-schedules"),
        el("div", { "class": "card" }, [el("div", { "class": "title", text: t("myShifts") }),
          shifts.length ? el("ul", { id: "my-shifts" }, shifts) : el("div", { "class": "muted", id: "no-shifts", text: t("noShifts") })])
      );
    });
  }

  function facts(i) {
    var open = i.status !== "resolved", esc = i.escalation;
    return [
      i.acked_by ? t("ackedBy", { name: i.acked_by }) : null,
      i.resolved_by ? t("resolvedBy", { name: i.resolved_by, time: time(i.resolved_at) }) : null,
      i.snoozed_until && open ? t("snoozedUntil", { time: time(i.snoozed_until) }) : null,
      esc ? t("escalation", { policy: esc.policy_name, n: esc.layer + 1, m: esc.layers }) +
        (esc.state === "waiting" && esc.next_step === "escalate" ? t("nextEscalation", { time: time(esc.next_at) }) : "") +
        (esc.state === "done" && open ? t("everyLayer") : "") +
        (esc.state === "stopped" ? t("escalationStopped") : "") : null,
      i.assignees && i.assignees.length && open ? t("assignees", { names: i.assignees.join(t("namesJoin")) }) : null,
      t("started", { time: time(i.started_at || i.opened_at) }), t("key", { key: i.key })
    ].filter(Boolean);
  }

  // The action buttons, the reassign row and the confirmation of a message button's action.
  function actionBar(i, pending, act) {
    var open = i.status !== "resolved";
    if (!open) return [];
    var snooze = el("select", { id: "snooze-duration", "aria-label": t("snoozeFor") }, ["30m", "2h", "24h"].map(function (d) {
      return el("option", { value: d, text: t("snooze" + d) });
    }));
    var reassignTo = el("input", { id: "reassign-member", type: "email", placeholder: t("reassignPlaceholder"), "aria-label": t("reassignTo") });
    var button = function (action, cls, extra) {
      return el("button", { "class": "btn " + cls, id: "act-" + action, "data-action": action, text: t(action),
        onclick: function () { act(action, snooze.value, extra ? extra() : undefined); } });
    };
    var buttons = el("div", { "class": "actions" }, [
      i.status === "triggered" ? button("ack", "primary") : null,
      button("resolve", "danger"), snooze, button("snooze", ""),
      i.escalation ? button("escalate", "") : null
    ]);
    var reassign = el("div", { "class": "actions" }, [reassignTo, button("reassign", "", function () { return reassignTo.value; })]);
    var confirm = pending && STRINGS[lang]["name_" + pending] ? el("div", { "class": "card notice", id: "confirm" }, [
      el("div", { text: t("confirmQuestion", { action: t("name_" + pending) }) }),
      el("div", { "class": "actions" }, [el("button", { "class": "btn primary", id: "confirm-action",
        text: t("confirmButton", { action: t("name_" + pending) }), onclick: function () { act(pending, snooze.value); } })])
    ]) : null;
    return [buttons, reassign, confirm];
  }

  // The Alertmanager silence of an incident from Alertmanager: what it would match,
  // confirmed before it is made, or the running silence with Unsilence.
  function silenceCard(i, act) {
    var box = el("div", { "class": "card", id: "silence" }, [el("div", { "class": "title", text: t("silenceTitle") })]);
    api("/incidents/" + encodeURIComponent(i.id) + "/silence").then(function (r) {
      if (r.status !== 200) return box.appendChild(message("error", failure("silenceFailed", r), "silence-error"));
      var s = r.body;
      if (s.silence) {
        box.appendChild(el("div", { id: "silenced-until", text: t("silencedUntil", { time: time(s.silence.until), by: s.silence.by }) }));
        box.appendChild(el("div", { "class": "muted", text: t("silenceId", { id: s.silence.id }) }));
        box.appendChild(el("div", { "class": "actions" }, [el("button", { "class": "btn", id: "act-unsilence", text: t("unsilence"),
          onclick: function () { act("unsilence"); } })]));
        return;
      }
      if (!s.available) return box.appendChild(el("div", { "class": "muted", id: "silence-unavailable", text: s.reason || "" }));
      var duration = el("select", { id: "silence-duration", "aria-label": t("silenceFor") }, s.durations.map(function (d) {
        return el("option", { value: d, text: t("silence" + d) });
      }));
      var confirm = el("div", { id: "silence-confirm" });
      box.appendChild(el("div", { "class": "actions" }, [duration, el("button", { "class": "btn", id: "act-silence", text: t("silence"), onclick: function () {
        confirm.textContent = "";
        confirm.appendChild(el("div", { "class": "card notice" }, [
          el("div", { text: t("silenceConfirm", { duration: t("silence" + duration.value) }) }),
          el("ul", { id: "silence-matchers" }, s.matchers.map(function (m) { return el("li", {}, [el("code", { text: m })]); })),
          el("div", { "class": "actions" }, [el("button", { "class": "btn primary", id: "confirm-silence", text: t("silenceConfirmButton"),
            onclick: function () { act("silence", duration.value); } })])
        ]));
      } })]));
      box.appendChild(confirm);
    });
    return box;
  }

  function timelineOf(i) {
    return el("ul", { "class": "timeline", id: "timeline" }, (i.records || []).slice().reverse().map(function (rec) {
      var who = rec.kind === "note" ? rec.actor : rec.target;
      return el("li", { "class": rec.kind === "note" ? "note" : "", "data-kind": rec.kind }, [
        el("div", { "class": rec.kind === "note" ? "note-text" : "", text: rec.detail }),
        el("div", { "class": "muted" }, [when(rec.at), document.createTextNode(" · " + label("kind_", rec.kind) + (who ? " · " + who : ""))])
      ]);
    }));
  }

  function noteForm(i) {
    var feedback = el("div", { id: "note-feedback" });
    var count = el("span", { "class": "muted", text: t("noteCount", { n: 0 }) });
    var text = el("textarea", { id: "note-text", rows: "3", maxlength: "2000", placeholder: t("notePlaceholder"), "aria-label": t("addNote"),
      oninput: function () { count.textContent = t("noteCount", { n: text.value.trim().length }); } });
    return el("form", { id: "note-form", "class": "note-form", onsubmit: function (e) {
      e.preventDefault();
      feedback.textContent = "";
      var value = text.value.trim();
      if (!value) return feedback.appendChild(message("error", t("noteEmpty"), "note-error"));
      if (value.length > 2000) return feedback.appendChild(message("error", t("noteTooLong"), "note-error"));
      api("/incidents/" + encodeURIComponent(i.id) + "/notes", "POST", { text: value }).then(function (r) {
        if (r.status === 201) return detail(i.id);
        feedback.appendChild(message("error", failure("noteFailed", r), "note-error"));
      });
    } }, [text, el("div", { "class": "actions" }, [el("button", { "class": "btn", type: "submit", id: "note-submit", text: t("noteSubmit") }), count]), feedback]);
  }

  function detail(id, pending) {
    screen = function () { detail(id, pending); };
    api("/incidents/" + encodeURIComponent(id)).then(function (r) {
      if (r.status !== 200) return show(message("error", failure("notFound", r)));
      var i = r.body;
      var feedback = el("div", { id: "feedback" });
      function act(action, duration, member) {
        api("/incidents/" + encodeURIComponent(i.id) + "/actions", "POST", { action: action, duration: duration, member: member, version: i.version }).then(function (res) {
          if (res.status === 200) { params.delete("action"); pending = null; detail(i.id); return; }
          feedback.textContent = "";
          feedback.appendChild(message(res.status === 409 ? "notice" : "error", res.status === 409 ? t("conflict") : failure("actionFailed", res), "action-error"));
          if (res.status === 409) setTimeout(function () { detail(i.id); }, 1200);
        });
      }
      var bar = me.member ? actionBar(i, pending, act) : [message("notice", t("associateToAct"))];
      var labels = el("div", { "class": "labels" }, Object.keys(i.labels || {}).map(function (k) { return el("span", { text: k + ": " + i.labels[k] }); }));
      var links = el("div", {}, (i.links || []).filter(function (l) { return /^https?:\/\//.test(l.url); }).map(function (l) {
        return el("div", {}, [el("a", { href: l.url, target: "_blank", rel: "noopener noreferrer", text: l.title })]);
      }));
      var back = el("button", { "class": "btn", id: "back", text: t("back"), onclick: function () { params.delete("incident"); params.delete("action"); list(); } });
      show(
        back, bar[2] || null,
        el("div", { "class": "detail" }, [
          el("div", { "class": "card", id: "incident" }, [badges(i), el("div", { "class": "title", id: "incident-title", text: i.title }),
            markdown(i.description || ""), labels, links,
            el("div", { "class": "muted", id: "incident-facts" }, facts(i).map(function (f) { return el("div", { text: f }); })),
            bar[0], bar[1] || null, feedback]),
          me.member && i.source === "alertmanager" ? silenceCard(i, act) : null,
          el("div", { "class": "card" }, [el("div", { "class": "title", text: t("timeline") }), me.member ? noteForm(i) : null, timelineOf(i)])
        ])
      );
    });
  }

  document.getElementById("app-name").textContent = cfg.name;
  applyLanguage();
  document.getElementById("status").textContent = t("signingIn");
  start();
})();
