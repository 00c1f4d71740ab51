// The admin console: the integration center as a web page for the people who set
// DingTalk up (ARCHITECTURE.md §10). Plain JS, no build step, no dependency; the
// strict CSP allows only this file, so nothing here uses inline styles, eval or
// innerHTML: every piece of data is a text node, charts are SVG built with the DOM.
// Sign-in exchanges the admin key for a session (HttpOnly cookie); the CSRF token it
// answers lives only in this closure, never in storage. Every string people read
// comes from STRINGS (zh-CN / en-US).
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var main = document.getElementById("main");
  var nav = document.getElementById("nav");
  var select = document.getElementById("integration-select");
  var langButton = document.getElementById("lang-switch");
  var signoutButton = document.getElementById("signout");
  var toastBox = document.getElementById("toast");

  var csrf = null;
  var integrations = [];
  var timers = [];
  var route = { id: null, page: "integrations", arg: null };
  var lastCreated = null;

  var STRINGS = {
    "zh-CN": {
      langName: "中文", other: "English", brand: "钉钉告警集成 · 控制台", loading: "加载中…",
      signinTitle: "登录控制台", signinBody: "请输入管理员密钥（ADMIN_API_KEY）。密钥只用于换取一个短期会话，不会保存在浏览器中。",
      adminKey: "管理员密钥", signin: "登录", signout: "退出登录", signinWrong: "管理员密钥错误。",
      sessionExpired: "会话已过期，请重新登录。", sessionInvalid: "会话无效，请重新登录。", signedOut: "已退出登录。", csrfFailed: "安全校验失败（CSRF），请刷新页面后重试。",
      networkError: "网络错误：{msg}", failed: "失败",
      nav_integrations: "集成", nav_setup: "接入检查", nav_chats: "群聊", nav_members: "成员与绑定",
      nav_escalation: "升级策略与路由", nav_schedules: "值班表", nav_templates: "消息模板", nav_incidents: "事件",
      nav_usage: "用量", nav_dlq: "死信队列", pickIntegration: "选择集成…",
      integrationsTitle: "集成", noIntegrations: "还没有集成。先在下方添加你的钉钉应用。",
      open: "打开", del: "删除", confirmDelete: "确定删除集成“{name}”？此操作不可撤销。",
      createTitle: "添加钉钉应用", create: "添加集成", required: "必填", optional: "可选",
      f_name: "名称", f_corp_id: "CorpId", f_agent_id: "AgentId", f_client_id: "Client ID (AppKey)",
      f_client_secret: "Client Secret", f_aes_key: "aes_key（43 位）", f_token: "token",
      f_card_template_id: "卡片模板 ID", f_timezone: "时区", f_locale: "语言", f_edition: "版本",
      created: "已创建集成“{name}”。", ingestToken: "接入令牌（只显示这一次，请立即保存）",
      webhookSecret: "Webhook 签名密钥（只显示这一次）", goSetup: "继续：接入检查 →",
      copy: "复制", copied: "已复制", copyFailed: "复制失败，请手动选择",
      setupTitle: "接入检查", setupIntro: "按钉钉开发者后台的顺序完成以下步骤；每 3 秒自动刷新。",
      verify: "立即验证", verifying: "验证中…", verifyOk: "全部检查通过。", verifyProblems: "仍有问题：",
      st_ok: "已完成", st_bad: "未完成", st_pending: "等待中",
      step_create_app: "在钉钉开发者后台创建企业内部应用",
      step_create_app_d: "开发者后台 → 应用开发 → 企业内部应用 → 创建应用。",
      step_copy: "复制 CorpId、AgentId、Client ID、Client Secret、aes_key 和 token",
      step_copy_d: "凭证与基础信息页；事件订阅页选择 HTTP 推送并生成 aes_key 与 token。",
      step_add: "在此添加集成", step_add_d: "已添加：{name}（{id}）",
      step_credentials: "凭证可用", step_credentials_d: "用 Client ID / Secret 获取 access token。",
      step_cool_app: "开启机器人、填写网页应用地址并创建酷应用；发布后安装到群",
      step_cool_app_d: "机器人：开启即可（只用于发消息，无需消息接收地址）；网页应用 → 首页地址 / PC 端首页地址；酷应用 → 群快捷入口。",
      outboundIps: "服务器出口 IP（应用开启了 IP 白名单时，把它们加入白名单）", noOutboundIps: "出口 IP 不固定：如果应用开启了 IP 白名单，请用静态出口 IP 参数部署（见 README“Static egress IP”）。",
      ingestUrls: "告警接入地址（令牌放在 Authorization: Bearer，或机器人/PagerDuty 的 access_token / routing_key）", ingest_alerts: "告警事件 / Alertmanager / Grafana", ingest_robot: "钉钉机器人兼容（Zabbix、Jenkins…）", ingest_pagerduty: "PagerDuty Events v2 兼容",
      step_check_url: "事件订阅：请求地址", step_check_url_d: "开发配置 → 事件订阅 → HTTP 推送 → 请求网址。保存时钉钉发送 check_url。",
      step_events: "订阅三个事件", step_events_d: "群会话更换群名称、群内安装酷应用、群内卸载酷应用。",
      step_permissions: "开通权限", step_permissions_d: "qyapi_chat_manage（查询群名称）与 qyapi_robot_sendmsg（机器人发消息）。",
      step_card_callback: "卡片回调", step_card_callback_d: "由我们通过卡片回调接口注册（点击“立即验证”）。",
      step_members: "成员已关联", step_members_d: "添加值班成员并让他们在 H5 应用中关联账号。",
      step_release: "发布应用", step_release_d: "版本管理与发布 → 发布，让群成员能看到应用。",
      url_event_subscription: "事件订阅请求地址", url_h5_home: "网页应用首页", url_pc_home: "PC 端首页",
      url_cool_app: "酷应用群快捷入口", url_card_callback: "卡片回调地址",
      ev_chat_update_title: "群会话更换群名称", ev_im_cool_app_install: "群内安装酷应用", ev_im_cool_app_uninstall: "群内卸载酷应用",
      seenAt: "最近收到 {time}", notSeen: "尚未收到",
      chatsTitle: "群聊", noChats: "还没有群安装酷应用。", chatInstalled: "已安装", chatUninstalled: "未安装（已卸载）",
      chatDisbanded: "群已解散", chatProblem: "问题：{p}", chatUntitled: "（群名未知）",
      installedAt: "安装于 {time}", uninstalledAt: "卸载于 {time}",
      membersTitle: "成员", noMembers: "还没有成员。", addMember: "添加成员", f_email: "邮箱", f_member_name: "姓名",
      f_licensed: "有处理权限", save: "保存", linkCode: "关联码", linkCodeFor: "{member} 的关联码：", linkExpires: "有效期至 {time}",
      bound: "已关联：{who}", unbound: "未关联", bindingsTitle: "钉钉账号绑定", noBindings: "还没有绑定。",
      unbind: "解除绑定", confirmUnbind: "解除 {user} 与 {member} 的绑定？", confirmMemberDelete: "删除成员 {member}？",
      escalationTitle: "升级策略", noPolicies: "还没有升级策略。", newPolicy: "新建策略", edit: "编辑",
      policyEditor: "策略 JSON", helper: "快速添加一层", helperChats: "群", helperMembers: "成员", helperSchedules: "值班表",
      helperAfter: "未认领多少秒后升级", addLayer: "添加一层", savePolicy: "保存策略", saved: "已保存。",
      invalidJson: "JSON 格式错误：{msg}", fieldError: "字段 {field}：{msg}", lineError: "第 {line} 行",
      routesTitle: "路由（按顺序，第一个匹配生效）", saveRoutes: "保存路由", version: "版本 {v}", layers: "{n} 层",
      schedulesTitle: "值班表", noSchedules: "还没有值班表。", week: "本周", prevWeek: "‹ 上一周", nextWeek: "下一周 ›",
      shiftsTitle: "{from} 至 {to} 的班次", noShifts: "这一周没有班次。", override: "替班", rotation: "轮值",
      addOverride: "添加替班", f_start: "开始", f_end: "结束", tzNote: "时间按值班表的时区 {tz}",
      newSchedule: "新建值班表（JSON）", createSchedule: "创建值班表", overrides: "替班",
      templatesTitle: "消息模板", tplTitle: "标题模板", tplBody: "正文模板", tplSample: "示例告警（JSON）", tplSource: "预览对象", tplRecent: "最近的告警", tplGiven: "示例告警", tplNoRecent: "还没有告警：先用示例告警预览。",
      preview: "预览", previewing: "预览中…", bytes: "{n} 字节", warnings: "提示", noWarnings: "没有提示。",
      saveTemplates: "保存模板", noPreview: "没有可预览的告警。", tplHint: "Jinja 语法；可用 alert、incident、labels、integration 及过滤器 localtime、duration。",
      incidentsTitle: "事件", allStatuses: "全部状态", allSeverities: "全部级别", noIncidents: "没有符合条件的事件。",
      timeline: "时间线", back: "← 返回", startedAt: "开始于 {time}", events: "{n} 次告警",
      sev_critical: "严重", sev_warning: "警告", sev_info: "提醒",
      st_triggered: "待处理", st_acknowledged: "处理中", st_resolved: "已解决", st_snoozed: "已暂缓",
      usageTitle: "本月用量 {month}", calls: "调用次数", quota: "月额度", reserve: "保留额度起点（{p}%，留给严重告警）",
      percentUsed: "已用 {p}%", burnRate: "消耗速度：每天 {n} 次", projected: "预计本月共 {n} 次",
      exhaustion: "预计 {date} 用尽", noExhaustion: "按当前速度本月不会用尽", byKind: "按类型",
      throttle: "限流等待 {n} 次", suppressed: "已抑制 {n}", folded: "已折叠 {n}", qps: "每秒上限 {n}",
      chartActual: "实际累计", chartProjected: "预计", chartDaily: "每日调用", day: "日",
      dlqTitle: "死信队列", dlqEmpty: "死信队列是空的。", dlqDepth: "约 {n} 条", redriveSelected: "重新投递所选",
      redriveAll: "全部重新投递", confirmRedriveAll: "将所有死信重新投递到告警队列？", redriven: "已重新投递 {n} 条。",
      missing: "未找到：{ids}", receiveCount: "接收 {n} 次", firstError: "首次错误：{e}", dlqNotConfigured: "未配置死信队列（DEAD_LETTER_QUEUE_URL）。",
      browserTz: "按浏览器时区 {tz} 显示", shiftCount: "{n} 个班次",
      burnLabel: "消耗速度（次/天）", exhaustLabel: "预计用尽日期",
      refresh: "刷新", none: "无", yes: "是", no: "否"
    },
    "en-US": {
      langName: "English", other: "中文", brand: "DingTalk incidents · console", loading: "Loading…",
      signinTitle: "Sign in to the console", signinBody: "Enter the admin key (ADMIN_API_KEY). It is exchanged for a short session and never stored in the browser.",
      adminKey: "Admin key", signin: "Sign in", signout: "Sign out", signinWrong: "Wrong admin key.",
      sessionExpired: "Your session has expired. Please sign in again.", sessionInvalid: "Your session is not valid. Please sign in again.", signedOut: "Signed out.", csrfFailed: "Security check failed (CSRF). Reload the page and try again.",
      networkError: "Network error: {msg}", failed: "Failed",
      nav_integrations: "Integrations", nav_setup: "Setup checklist", nav_chats: "Group chats", nav_members: "Members & bindings",
      nav_escalation: "Escalation & routes", nav_schedules: "Schedules", nav_templates: "Templates", nav_incidents: "Incidents",
      nav_usage: "Usage", nav_dlq: "Dead letters", pickIntegration: "Choose an integration…",
      integrationsTitle: "Integrations", noIntegrations: "No integration yet. Add your DingTalk app below.",
      open: "Open", del: "Delete", confirmDelete: "Delete the integration \"{name}\"? This cannot be undone.",
      createTitle: "Add a DingTalk app", create: "Add integration", required: "required", optional: "optional",
      f_name: "Name", f_corp_id: "CorpId", f_agent_id: "AgentId", f_client_id: "Client ID (AppKey)",
      f_client_secret: "Client Secret", f_aes_key: "aes_key (43 characters)", f_token: "token",
      f_card_template_id: "Card template ID", f_timezone: "Time zone", f_locale: "Language", f_edition: "Edition",
      created: "Integration \"{name}\" created.", ingestToken: "Ingest token (shown only this once: keep it now)",
      webhookSecret: "Webhook signing secret (shown only this once)", goSetup: "Next: setup checklist →",
      copy: "Copy", copied: "Copied", copyFailed: "Copy failed: select it by hand",
      setupTitle: "Setup checklist", setupIntro: "The steps in the DingTalk developer console, in order; refreshed every 3 s.",
      verify: "Verify now", verifying: "Verifying…", verifyOk: "Every check passed.", verifyProblems: "Still to do:",
      st_ok: "done", st_bad: "not yet", st_pending: "pending",
      step_create_app: "Create an enterprise internal app in the DingTalk developer console",
      step_create_app_d: "Developer console → App development → Enterprise internal apps → Create app.",
      step_copy: "Copy CorpId, AgentId, Client ID, Client Secret, aes_key and token",
      step_copy_d: "Credentials page; under Event subscription choose HTTP push and generate aes_key and token.",
      step_add: "Add the integration here", step_add_d: "Added: {name} ({id})",
      step_credentials: "Credentials work", step_credentials_d: "An access token from the Client ID and Secret.",
      step_cool_app: "Turn on the robot, set the web app URLs, create the cool app; install it in a group once released",
      step_cool_app_d: "Robot: turn it on (it only sends; no message receiving URL is needed). Web app → homepage and PC homepage URL; Cool app → group quick access.",
      outboundIps: "Server outbound IPs (add them if your app has an IP allow-list)", noOutboundIps: "The outbound IP is not fixed: if your app has an IP allow-list, deploy with the static egress parameter (README \"Static egress IP\").",
      ingestUrls: "Where alerts come in (the token as Authorization: Bearer, or the robot's access_token / PagerDuty's routing_key)", ingest_alerts: "Alert events / Alertmanager / Grafana", ingest_robot: "DingTalk-robot compatible (Zabbix, Jenkins…)", ingest_pagerduty: "PagerDuty Events v2 compatible",
      step_check_url: "Event subscription: request URL", step_check_url_d: "Development config → Event subscription → HTTP push → request URL. On save DingTalk sends check_url.",
      step_events: "Subscribe to the three events", step_events_d: "Group title changed, cool app installed in a group, cool app uninstalled.",
      step_permissions: "Grant the permissions", step_permissions_d: "qyapi_chat_manage (group title lookup) and qyapi_robot_sendmsg (robot messages).",
      step_card_callback: "Card callback", step_card_callback_d: "Registered by us through the card callback API (press Verify).",
      step_members: "Members associated", step_members_d: "Add the on-call members and have them associate in the H5 app.",
      step_release: "Release the app", step_release_d: "Version management → Release, so group members see the app.",
      url_event_subscription: "Event subscription URL", url_h5_home: "Web app homepage", url_pc_home: "PC homepage",
      url_cool_app: "Cool app group quick access", url_card_callback: "Card callback URL",
      ev_chat_update_title: "Group title changed", ev_im_cool_app_install: "Cool app installed", ev_im_cool_app_uninstall: "Cool app uninstalled",
      seenAt: "last received {time}", notSeen: "not received yet",
      chatsTitle: "Group chats", noChats: "No group has installed the cool app yet.", chatInstalled: "installed", chatUninstalled: "not installed (uninstalled)",
      chatDisbanded: "group disbanded", chatProblem: "problem: {p}", chatUntitled: "(title unknown)",
      installedAt: "installed {time}", uninstalledAt: "uninstalled {time}",
      membersTitle: "Members", noMembers: "No member yet.", addMember: "Add a member", f_email: "Email", f_member_name: "Name",
      f_licensed: "Licensed to act", save: "Save", linkCode: "Link code", linkCodeFor: "Link code for {member}:", linkExpires: "valid until {time}",
      bound: "associated: {who}", unbound: "not associated", bindingsTitle: "DingTalk bindings", noBindings: "No binding yet.",
      unbind: "Unbind", confirmUnbind: "Unbind {user} from {member}?", confirmMemberDelete: "Delete the member {member}?",
      escalationTitle: "Escalation policies", noPolicies: "No escalation policy yet.", newPolicy: "New policy", edit: "Edit",
      policyEditor: "Policy JSON", helper: "Add a layer", helperChats: "Groups", helperMembers: "Members", helperSchedules: "Schedules",
      helperAfter: "Escalate after (seconds)", addLayer: "Add layer", savePolicy: "Save policy", saved: "Saved.",
      invalidJson: "Invalid JSON: {msg}", fieldError: "Field {field}: {msg}", lineError: "line {line}",
      routesTitle: "Routes (in order, the first match wins)", saveRoutes: "Save routes", version: "version {v}", layers: "{n} layers",
      schedulesTitle: "Schedules", noSchedules: "No schedule yet.", week: "This week", prevWeek: "‹ Previous", nextWeek: "Next ›",
      shiftsTitle: "Shifts {from} to {to}", noShifts: "No shift this week.", override: "override", rotation: "rotation",
      addOverride: "Add an override", f_start: "Start", f_end: "End", tzNote: "Times in the schedule's zone {tz}",
      newSchedule: "New schedule (JSON)", createSchedule: "Create schedule", overrides: "Overrides",
      templatesTitle: "Message templates", tplTitle: "Title template", tplBody: "Body template", tplSample: "Sample alert (JSON)", tplSource: "Preview on", tplRecent: "Recent alerts", tplGiven: "The sample alert", tplNoRecent: "No alert yet: previewing the sample alert.",
      preview: "Preview", previewing: "Rendering…", bytes: "{n} bytes", warnings: "Warnings", noWarnings: "No warnings.",
      saveTemplates: "Save templates", noPreview: "No alert to preview.", tplHint: "Jinja syntax: alert, incident, labels, integration; filters localtime and duration.",
      incidentsTitle: "Incidents", allStatuses: "Every status", allSeverities: "Every severity", noIncidents: "No incident matches.",
      timeline: "Timeline", back: "← Back", startedAt: "started {time}", events: "{n} alerts",
      sev_critical: "Critical", sev_warning: "Warning", sev_info: "Info",
      st_triggered: "Triggered", st_acknowledged: "Acknowledged", st_resolved: "Resolved", st_snoozed: "Snoozed",
      usageTitle: "Usage this month {month}", calls: "Calls", quota: "Monthly quota", reserve: "Reserve from ({p}%, kept for critical alerts)",
      percentUsed: "{p}% used", burnRate: "Burn rate: {n} a day", projected: "Projected month total: {n}",
      exhaustion: "Projected exhaustion: {date}", noExhaustion: "Not exhausted this month at this rate", byKind: "By kind",
      throttle: "throttle waits {n}", suppressed: "suppressed {n}", folded: "folded {n}", qps: "{n} calls/s",
      chartActual: "Actual (cumulative)", chartProjected: "Projected", chartDaily: "Calls per day", day: "day",
      dlqTitle: "Dead letters", dlqEmpty: "The dead-letter queue is empty.", dlqDepth: "about {n}", redriveSelected: "Redrive selected",
      redriveAll: "Redrive all", confirmRedriveAll: "Send every dead letter back to the alert queue?", redriven: "{n} redriven.",
      missing: "Not found: {ids}", receiveCount: "received {n} times", firstError: "first error: {e}", dlqNotConfigured: "No dead-letter queue configured (DEAD_LETTER_QUEUE_URL).",
      browserTz: "Shown in your browser's time zone {tz}", shiftCount: "{n} shifts",
      burnLabel: "Burn rate (calls a day)", exhaustLabel: "Projected exhaustion",
      refresh: "Refresh", none: "none", yes: "yes", no: "no"
    }
  };
  var PAGES = ["integrations", "setup", "chats", "members", "escalation", "schedules", "templates", "incidents", "usage", "dlq"];
  var GLOBAL = { integrations: true, dlq: true };

  function pickLang() {
    var saved = null;
    try { saved = localStorage.getItem("console.lang"); } catch (e) { /* private mode */ }
    if (saved && STRINGS[saved]) return saved;
    return /^zh/i.test(navigator.language || "") ? "zh-CN" : "en-US";
  }
  var lang = pickLang();
  function t(key, vars) {
    var s = STRINGS[lang][key];
    if (s === undefined) s = STRINGS["en-US"][key];
    if (s === undefined) return key;
    return s.replace(/\{(\w+)\}/g, function (_, k) { return vars && vars[k] !== undefined && vars[k] !== null ? String(vars[k]) : ""; });
  }

  // ------------------------------------------------------------------ DOM helpers
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) return;
        if (k === "text") el.textContent = v;
        else if (k === "class") el.className = v;
        else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
        else if (k === "value") el.value = v;
        else if (k === "checked") el.checked = !!v;
        else el.setAttribute(k, v === true ? "" : v);
      });
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(el, c); }); return; }
    el.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
  function s(tag, attrs) {
    var el = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { if (k === "text") el.textContent = attrs[k]; else el.setAttribute(k, attrs[k]); });
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function fmtTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d)) return String(iso);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function fmtNum(n) { return typeof n === "number" ? n.toLocaleString(lang) : String(n === undefined || n === null ? "—" : n); }
  function toast(msg, bad) {
    toastBox.textContent = msg;
    toastBox.className = "toast" + (bad ? " bad" : "");
    toastBox.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { toastBox.hidden = true; }, 3500);
  }
  function card() { var c = h.apply(null, ["section", { class: "card" }].concat([].slice.call(arguments))); return c; }
  function copyable(value, id) {
    var input = h("input", { type: "text", readonly: true, value: value, class: "mono", id: id, "aria-label": value });
    var btn = h("button", { type: "button", class: "btn small copy", "data-copy": value, text: t("copy") });
    btn.addEventListener("click", function () {
      function done() { btn.textContent = t("copied"); setTimeout(function () { btn.textContent = t("copy"); }, 1500); }
      function fallback() {
        input.select();
        try { if (document.execCommand("copy")) { done(); return; } } catch (e) { /* below */ }
        toast(t("copyFailed"), true);
      }
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(value).then(done, fallback);
      else fallback();
    });
    return h("div", { class: "copyrow" }, input, btn);
  }
  function errorBox(id) { return h("div", { class: "form-error", id: id, role: "alert", hidden: true }); }
  // Shows an API error: its message, the field it names (highlighted when the form has it).
  function showError(box, err, form) {
    if (form) [].forEach.call(form.querySelectorAll(".invalid"), function (el) { el.classList.remove("invalid"); });
    if (!err) { box.hidden = true; clear(box); return; }
    clear(box);
    var body = err.body && err.body.error ? err.body.error : { message: err.message || String(err) };
    var msg = body.message || body.code || t("failed");
    box.appendChild(h("strong", { text: body.field ? t("fieldError", { field: body.field, msg: "" }) : "" }));
    box.appendChild(document.createTextNode(msg + (body.line ? " (" + t("lineError", { line: body.line }) + ")" : "")));
    if (body.used_in && body.used_in.length) box.appendChild(h("ul", null, body.used_in.map(function (u) { return h("li", { text: u }); })));
    box.setAttribute("data-code", body.code || "");
    box.setAttribute("data-field", body.field || "");
    box.hidden = false;
    if (form && body.field) {
      var root = body.field.split(/[.[]/)[0];
      var input = form.querySelector('[name="' + body.field + '"]') || form.querySelector('[name="' + root + '"]');
      if (input) { input.classList.add("invalid"); input.focus(); }
    }
  }

  // ------------------------------------------------------------------ API
  function ApiError(status, body) { this.status = status; this.body = body; this.message = (body && body.error && body.error.message) || ("HTTP " + status); }
  function api(method, path, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    return fetch(path, { method: method, headers: headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) {
        return r.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: { code: "not_json", message: text.slice(0, 200) } }; }
          if (r.ok) return data;
          var code = data && data.error && data.error.code;
          if (r.status === 401 && path.indexOf("/console/api/session") !== 0) {
            signedOut(code === "session_expired" ? t("sessionExpired") : t("sessionInvalid"));
          } else if (r.status === 403 && code === "csrf_failed") {
            toast(t("csrfFailed"), true);
          }
          throw new ApiError(r.status, data);
        });
      }, function (e) { throw new ApiError(0, { error: { code: "network", message: t("networkError", { msg: e.message }) } }); });
  }
  function I(path) { return "/api/integrations/" + encodeURIComponent(route.id) + (path || ""); }

  // ------------------------------------------------------------------ session
  function stopTimers() { timers.forEach(function (x) { clearInterval(x); clearTimeout(x); }); timers = []; }
  function signedOut(message) {
    csrf = null;
    stopTimers();
    nav.hidden = true;
    select.hidden = true;
    signoutButton.hidden = true;
    document.body.classList.remove("signed-in");
    renderSignIn(message);
  }
  function renderSignIn(message) {
    clear(main);
    var key = h("input", { type: "password", id: "admin-key", name: "admin_key", autocomplete: "current-password", required: true });
    var err = errorBox("signin-error");
    var form = h("form", { id: "signin-form", class: "card narrow" },
      h("h1", { text: t("signinTitle") }),
      message ? h("p", { class: "notice", id: "signin-message", text: message }) : null,
      h("p", { class: "muted", text: t("signinBody") }),
      h("label", { for: "admin-key", text: t("adminKey") }), key, err,
      h("button", { type: "submit", class: "btn primary", id: "signin-submit", text: t("signin") }));
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      showError(err, null);
      api("POST", "/console/api/session", { admin_key: key.value }).then(function (s) {
        key.value = "";
        started(s);
      }, function (e) {
        if (e.status === 401) showError(err, { body: { error: { code: "unauthorized", message: t("signinWrong") } } });
        else showError(err, e);
      });
    });
    main.appendChild(form);
    key.focus();
  }
  function started(session) {
    csrf = session.csrf;
    signoutButton.hidden = false;
    document.body.classList.add("signed-in");
    loadIntegrations().then(function () {
      var r = parseHash();
      if (!r.id && !location.hash.replace("#", "") && integrations.length === 1) go(integrations[0].id, "setup");
      else draw();
    }, function () { /* a 401 already went back to sign-in */ });
  }
  function loadIntegrations() {
    return api("GET", "/api/integrations").then(function (list) {
      integrations = list || [];
      integrations.sort(function (a, b) { return String(a.created_at || "").localeCompare(String(b.created_at || "")); });
      if (route.id && !integrations.some(function (i) { return i.id === route.id; })) route.id = null;
      drawSelect();
    });
  }
  function drawSelect() {
    clear(select);
    select.appendChild(h("option", { value: "", text: t("pickIntegration") }));
    integrations.forEach(function (i) { select.appendChild(h("option", { value: i.id, text: i.name })); });
    select.value = route.id || "";
    select.hidden = false;
  }
  function current() { return integrations.filter(function (i) { return i.id === route.id; })[0] || null; }

  // ------------------------------------------------------------------ navigation
  function parseHash() {
    var parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    if (parts[0] === "dlq" || parts[0] === "integrations") return { id: null, page: parts[0], arg: null };
    if (parts[0] && PAGES.indexOf(parts[1]) >= 0) return { id: parts[0], page: parts[1], arg: parts[2] || null };
    return { id: null, page: "integrations", arg: null };
  }
  function hashOf(id, page, arg) {
    if (GLOBAL[page] && !(page === "integrations" && id)) return "#/" + page;
    if (!id) return "#/integrations";
    return "#/" + encodeURIComponent(id) + "/" + page + (arg ? "/" + encodeURIComponent(arg) : "");
  }
  function go(id, page, arg) {
    var hash = hashOf(id, page, arg);
    if (location.hash !== hash) { location.hash = hash; return; } // hashchange draws
    draw();
  }
  function draw() {
    if (!csrf) return;
    var r = parseHash();
    if (r.id) route.id = r.id;
    else if (r.page !== "integrations" && r.page !== "dlq") route.id = null;
    route.page = r.page; route.arg = r.arg;
    if (!GLOBAL[route.page] && !current()) { route.page = "integrations"; }
    stopTimers();
    drawNav();
    select.value = route.id || "";
    clear(main);
    main.setAttribute("data-page", route.page);
    var page = PAGE_DRAW[route.page] || drawIntegrations;
    page();
  }
  function drawNav() {
    clear(nav);
    nav.hidden = false;
    PAGES.forEach(function (p, i) {
      var enabled = GLOBAL[p] || !!current();
      var a = h("a", { href: enabled ? hashOf(route.id, p) : null, "data-page": p, class: (p === route.page ? "on" : "") + (enabled ? "" : " off"),
        "aria-current": p === route.page ? "page" : null, "aria-disabled": enabled ? null : "true" },
        h("span", { class: "num", text: String(i + 1) }), " " + t("nav_" + p));
      nav.appendChild(a);
    });
    var on = nav.querySelector("a.on");
    if (on && nav.scrollWidth > nav.clientWidth) nav.scrollLeft = Math.max(0, on.offsetLeft - 40);
  }
  function heading(key, vars) {
    var it = current();
    return h("div", { class: "page-head" }, h("h1", { text: t(key, vars) }), it && !GLOBAL[route.page] ? h("span", { class: "muted", text: it.name + " · " + it.id }) : null);
  }
  function loading() { var p = h("p", { class: "muted", text: t("loading") }); main.appendChild(p); return p; }
  function failedBox(e) { var b = errorBox(); showError(b, e); return b; }
  function stale(page, id) { return route.page !== page || route.id !== id; }

  // ------------------------------------------------------------------ 1 integrations
  var FIELDS = [
    ["name", true, "text"], ["corp_id", true, "text"], ["agent_id", true, "text"], ["client_id", true, "text"],
    ["client_secret", true, "password"], ["aes_key", true, "password"], ["token", true, "password"],
    ["card_template_id", false, "text"], ["timezone", false, "text"], ["locale", false, "select", ["zh-CN", "en-US"]],
    ["edition", false, "select", ["standard", "professional", "enterprise"]]
  ];
  // The ingest endpoints of integration `it`, under the base of its DingTalk URLs.
  function ingestUrls(it) {
    var events = (it.urls && it.urls.event_subscription) || "";
    var base = events.slice(0, Math.max(0, events.indexOf("/dingtalk/")));
    var root = base + "/api/integrations/" + encodeURIComponent(it.id);
    return h("div", { id: "ingest-urls" }, h("p", { class: "small muted", text: t("ingestUrls") }),
      [["alerts", root + "/alerts"], ["robot", root + "/robot/send?access_token=<token>"], ["pagerduty", root + "/pagerduty/v2/enqueue"]].map(function (u) {
        return h("div", { class: "url" }, h("label", { class: "small", text: t("ingest_" + u[0]) }), copyable(u[1], "ingest-" + u[0]));
      }));
  }
  function drawIntegrations() {
    main.appendChild(heading("integrationsTitle"));
    if (lastCreated) {
      var lc = lastCreated;
      lastCreated = null;
      main.appendChild(card(h("div", { class: "ok", id: "created" },
        h("p", { text: t("created", { name: lc.name }) }),
        h("label", { text: t("ingestToken") }), copyable(lc.ingest_token, "ingest-token"),
        ingestUrls(lc),
        lc.webhook_secret ? [h("label", { text: t("webhookSecret") }), copyable(lc.webhook_secret, "webhook-secret")] : null,
        h("p", null, h("a", { class: "btn primary", id: "go-setup", href: hashOf(lc.id, "setup"), text: t("goSetup") })))));
    }
    var list = h("div", { id: "integration-list", class: "grid" });
    if (!integrations.length) list.appendChild(h("p", { class: "muted", text: t("noIntegrations") }));
    integrations.forEach(function (i) {
      list.appendChild(card(
        h("div", { class: "title", text: i.name }),
        h("div", { class: "muted mono small", text: i.id }),
        h("div", { class: "small" }, "CorpId " + i.corp_id + " · AgentId " + i.agent_id + " · " + (i.edition || "") + " · " + (i.locale || "") + " · " + (i.timezone || "")),
        h("div", { class: "actions" },
          h("a", { class: "btn primary small", href: hashOf(i.id, "setup"), "data-open": i.id, text: t("open") }),
          h("button", { type: "button", class: "btn small danger", "data-delete": i.id, text: t("del"), onclick: function () {
            if (!confirm(t("confirmDelete", { name: i.name }))) return;
            api("DELETE", "/api/integrations/" + encodeURIComponent(i.id)).then(function () {
              if (route.id === i.id) route.id = null;
              return loadIntegrations();
            }).then(draw, function (e) { toast(e.message, true); });
          } }))));
    });
    main.appendChild(list);

    var err = errorBox("create-error");
    var form = h("form", { id: "create-form", class: "form-grid", novalidate: true });
    FIELDS.forEach(function (f) {
      var id = "f-" + f[0];
      var input;
      if (f[2] === "select") {
        input = h("select", { id: id, name: f[0] }, h("option", { value: "", text: "—" }), f[3].map(function (o) { return h("option", { value: o, text: o }); }));
      } else {
        input = h("input", { id: id, name: f[0], type: f[2], autocomplete: "off", required: f[1], spellcheck: "false",
          placeholder: f[0] === "timezone" ? "Asia/Shanghai" : (f[0] === "aes_key" ? "43 × [A-Za-z0-9]" : null) });
      }
      form.appendChild(h("div", { class: "field" }, h("label", { for: id }, t("f_" + f[0]), h("span", { class: "muted small", text: " · " + t(f[1] ? "required" : "optional") })), input));
    });
    form.appendChild(h("div", { class: "field wide" }, err, h("button", { type: "submit", class: "btn primary", id: "create-submit", text: t("create") })));
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = {};
      FIELDS.forEach(function (f) {
        var v = form.elements[f[0]].value.trim();
        if (v !== "") body[f[0]] = v;
      });
      showError(err, null, form);
      api("POST", "/api/integrations", body).then(function (created) {
        lastCreated = created;
        route.id = created.id;
        return loadIntegrations().then(function () { go(created.id, "integrations"); });
      }, function (e) { showError(err, e, form); });
    });
    main.appendChild(card(h("h2", { text: t("createTitle") }), form));
  }

  // ------------------------------------------------------------------ 2 setup checklist
  var GUIDE = [
    { id: "create_app", fixed: true },
    { id: "copy", fixed: true },
    { id: "add", fixed: true },
    { id: "credentials" },
    { id: "cool_app", urls: ["h5_home", "pc_home", "cool_app"] },
    { id: "check_url", urls: ["event_subscription"] },
    { id: "events", events: ["chat_update_title", "im_cool_app_install", "im_cool_app_uninstall"] },
    { id: "permissions" },
    { id: "release", from: "cool_app" },
    { id: "card_callback", urls: ["card_callback"] },
    { id: "members" }
  ];
  function drawSetup() {
    var it = current();
    var id = route.id;
    main.appendChild(heading("setupTitle"));
    main.appendChild(h("p", { class: "muted", text: t("setupIntro") }));
    var verifyBox = h("div", { id: "verify-result", hidden: true });
    var verifyBtn = h("button", { type: "button", class: "btn primary", id: "verify", text: t("verify") });
    main.appendChild(h("div", { class: "actions" }, verifyBtn));
    main.appendChild(verifyBox);
    var list = h("ol", { id: "checklist", class: "checklist" });
    main.appendChild(list);
    var last = null;
    var seenEvents = {};
    function state(v) { return v === true ? "ok" : v === false ? "bad" : "pending"; }
    function render(data) {
      last = data;
      var steps = {};
      var seenAll = {};
      (data.steps || []).forEach(function (st) { steps[st.id] = st; Object.keys(st.seen || {}).forEach(function (k) { if (st.seen[k]) seenAll[k] = st.seen[k]; }); });
      seenEvents = seenAll;
      var urls = Object.assign({}, it.urls || {}, data.urls || {});
      clear(list);
      var known = {};
      GUIDE.forEach(function (g) {
        known[g.id] = true;
        var st = g.fixed ? { ok: true } : g.from ? { ok: steps[g.from] ? steps[g.from].ok : null } : steps[g.id];
        if (!g.fixed && !st) st = { ok: null };
        list.appendChild(stepItem(g, st, urls, it));
      });
      (data.steps || []).forEach(function (st) { if (!known[st.id]) list.appendChild(stepItem({ id: st.id }, st, urls, it)); });
      list.setAttribute("data-loaded", "true");
    }
    function stepItem(g, st, urls, it) {
      var stt = state(st.ok);
      var icon = stt === "ok" ? "✔" : stt === "bad" ? "✖" : "…";
      var titleKey = "step_" + g.id;
      var li = h("li", { class: "step " + stt, "data-step": g.id, "data-ok": String(st.ok === undefined ? null : st.ok) },
        h("span", { class: "icon", "aria-label": t("st_" + stt), text: icon }),
        h("div", { class: "step-body" },
          h("div", { class: "title", text: STRINGS[lang][titleKey] ? t(titleKey) : g.id }),
          h("div", { class: "muted small", text: g.id === "add" ? t("step_add_d", { name: it.name, id: it.id }) : (STRINGS[lang][titleKey + "_d"] ? t(titleKey + "_d") : "") }),
          g.id === "copy" ? h("div", { class: "small mono" }, "CorpId " + it.corp_id + " · AgentId " + it.agent_id + " · Client ID " + it.client_id) : null,
          g.id === "credentials" ? outboundIps(it) : null,
          st.detail ? h("div", { class: "detail small", text: st.detail }) : null,
          (g.urls || []).filter(function (k) { return urls[k]; }).map(function (k) {
            return h("div", { class: "url" }, h("label", { class: "small", text: t("url_" + k) }), copyable(urls[k], "url-" + k));
          }),
          st.scopes ? h("ul", { class: "events scopes" }, Object.keys(st.scopes).map(function (k) {
            var v = st.scopes[k];
            return h("li", { "data-scope": k, class: v === true ? "seen" : "" }, (v === true ? "✔ " : v === false ? "✖ " : "… "), h("code", { text: k }),
              " " + t(v === true ? "st_ok" : v === false ? "st_bad" : "st_pending"));
          })) : null,
          g.events ? h("ul", { class: "events" }, g.events.map(function (ev) {
            var seen = (st.seen && st.seen[ev]) || seenEvents[ev];
            return h("li", { "data-event": ev, class: seen ? "seen" : "" }, h("code", { text: ev }), " " + t("ev_" + ev) + " — ",
              h("span", { class: "muted", text: seen ? t("seenAt", { time: fmtTime(seen) }) : t("notSeen") }));
          })) : null));
      return li;
    }
    function outboundIps(it) {
      var ips = it.outbound_ips || [];
      if (!ips.length) return h("div", { id: "outbound-ips", class: "small muted", text: t("noOutboundIps") });
      return h("div", { id: "outbound-ips", class: "url" }, h("label", { class: "small", text: t("outboundIps") }), copyable(ips.join(","), "outbound-ip-list"));
    }
    function poll() {
      if (stale("setup", id)) return;
      if (document.hidden) return;
      api("GET", I("/setup")).then(function (data) { if (!stale("setup", id)) render(data); }, function (e) {
        if (!last) { clear(list); list.appendChild(failedBox(e)); }
      });
    }
    render({ steps: [], urls: it.urls });
    list.removeAttribute("data-loaded");
    poll();
    timers.push(setInterval(poll, 3000));
    verifyBtn.addEventListener("click", function () {
      verifyBtn.disabled = true;
      verifyBtn.textContent = t("verifying");
      api("POST", I("/verify")).then(function (r) {
        clear(verifyBox);
        verifyBox.hidden = false;
        verifyBox.className = "card " + (r.ok ? "ok" : "notice");
        verifyBox.setAttribute("data-ok", String(r.ok));
        verifyBox.appendChild(h("p", { text: r.ok ? t("verifyOk") : t("verifyProblems") }));
        verifyBox.appendChild(h("ul", null, (r.checks || []).map(function (c) {
          return h("li", { class: c.ok ? "good" : "bad" }, (c.ok ? "✔ " : "✖ ") + c.check + ": " + c.detail);
        })));
        poll();
      }, function (e) { clear(verifyBox); verifyBox.hidden = false; verifyBox.className = ""; verifyBox.appendChild(failedBox(e)); })
        .then(function () { verifyBtn.disabled = false; verifyBtn.textContent = t("verify"); });
    });
  }

  // ------------------------------------------------------------------ 3 group chats
  function drawChats() {
    var id = route.id;
    main.appendChild(heading("chatsTitle"));
    var box = loading();
    api("GET", I("/chats")).then(function (chats) {
      if (stale("chats", id)) return;
      box.remove();
      var list = h("div", { id: "chat-list", class: "grid" });
      if (!chats.length) list.appendChild(h("p", { class: "muted", text: t("noChats") }));
      chats.forEach(function (c) {
        var problems = [];
        if (c.status !== "installed") problems.push(t("chatUninstalled"));
        if (c.disbanded || c.status === "disbanded" || (c.problem && /group\.disbanded|已解散/.test(c.problem))) problems.push(t("chatDisbanded"));
        if (c.problem) problems.push(t("chatProblem", { p: c.problem }));
        list.appendChild(h("section", { class: "card chat " + (problems.length ? "has-problem" : "healthy"), "data-chat": c.open_conversation_id, "data-status": c.status },
          h("div", { class: "title", text: c.title || t("chatUntitled") }),
          h("div", { class: "mono small muted", text: c.open_conversation_id }),
          h("div", { class: "small" },
            h("span", { class: "badge " + (c.status === "installed" ? "good" : "bad"), text: c.status === "installed" ? t("chatInstalled") : t("chatUninstalled") }),
            c.installed_at ? " " + t("installedAt", { time: fmtTime(c.installed_at) }) : "",
            c.uninstalled_at ? " · " + t("uninstalledAt", { time: fmtTime(c.uninstalled_at) }) : ""),
          problems.length ? h("ul", { class: "problems" }, problems.map(function (p) { return h("li", { text: p }); })) : null));
      });
      main.appendChild(list);
    }, function (e) { box.replaceWith(failedBox(e)); });
  }

  // ------------------------------------------------------------------ 4 members and bindings
  function drawMembers() {
    var id = route.id;
    main.appendChild(heading("membersTitle"));
    var codeBox = h("div", { id: "link-code-box", hidden: true, class: "card ok" });
    main.appendChild(codeBox);
    var box = loading();
    Promise.all([api("GET", I("/members")), api("GET", I("/bindings"))]).then(function (r) {
      if (stale("members", id)) return;
      box.remove();
      var members = r[0] || [], bindings = r[1] || [];
      var byMember = {};
      bindings.forEach(function (b) { (byMember[b.member] = byMember[b.member] || []).push(b); });
      var table = h("div", { id: "member-list", class: "rows" });
      if (!members.length) table.appendChild(h("p", { class: "muted", text: t("noMembers") }));
      members.forEach(function (m) {
        var bs = byMember[m.email] || [];
        table.appendChild(h("div", { class: "row", "data-member": m.email },
          h("div", { class: "grow" },
            h("div", { class: "title", text: m.name + (m.licensed ? "" : " 🚫") }),
            h("div", { class: "small mono", text: m.email }),
            h("div", { class: "small " + (bs.length ? "good-text" : "muted"), text: bs.length ? t("bound", { who: bs.map(function (b) { return (b.dingtalk_name || b.dingtalk_user_id); }).join(", ") }) : t("unbound") })),
          h("div", { class: "actions" },
            h("button", { type: "button", class: "btn small primary", "data-link": m.email, text: t("linkCode"), onclick: function () {
              api("POST", I("/members/" + encodeURIComponent(m.email) + "/link-code")).then(function (c) {
                clear(codeBox);
                codeBox.hidden = false;
                codeBox.appendChild(h("p", { text: t("linkCodeFor", { member: c.member || m.email }) }));
                codeBox.appendChild(h("div", { class: "code", id: "link-code", text: c.code }));
                codeBox.appendChild(h("p", { class: "muted small", text: t("linkExpires", { time: fmtTime(c.expires_at) }) }));
                codeBox.scrollIntoView({ block: "nearest" });
              }, function (e) { toast(e.message, true); });
            } }),
            h("button", { type: "button", class: "btn small danger", "data-delete-member": m.email, text: t("del"), onclick: function () {
              if (!confirm(t("confirmMemberDelete", { member: m.email }))) return;
              api("DELETE", I("/members/" + encodeURIComponent(m.email))).then(draw, function (e) { toast(e.message + (e.body && e.body.error && e.body.error.used_in ? " — " + e.body.error.used_in.join("; ") : ""), true); });
            } }))));
      });
      main.appendChild(card(table));

      var err = errorBox("member-error");
      var form = h("form", { id: "member-form", class: "form-grid", novalidate: true },
        h("div", { class: "field" }, h("label", { for: "m-email", text: t("f_email") }), h("input", { id: "m-email", name: "email", type: "email", required: true, autocomplete: "off" })),
        h("div", { class: "field" }, h("label", { for: "m-name", text: t("f_member_name") }), h("input", { id: "m-name", name: "name", type: "text", required: true, autocomplete: "off" })),
        h("div", { class: "field check" }, h("label", null, h("input", { id: "m-licensed", name: "licensed", type: "checkbox", checked: true }), " " + t("f_licensed"))),
        h("div", { class: "field wide" }, err, h("button", { type: "submit", class: "btn primary", id: "member-add", text: t("addMember") })));
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        showError(err, null, form);
        api("POST", I("/members"), { email: form.elements.email.value.trim(), name: form.elements.name.value.trim(), licensed: form.elements.licensed.checked })
          .then(function () { toast(t("saved")); draw(); }, function (e) { showError(err, e, form); });
      });
      main.appendChild(card(h("h2", { text: t("addMember") }), form));

      var bl = h("div", { id: "binding-list", class: "rows" });
      if (!bindings.length) bl.appendChild(h("p", { class: "muted", text: t("noBindings") }));
      bindings.forEach(function (b) {
        bl.appendChild(h("div", { class: "row", "data-binding": b.dingtalk_user_id },
          h("div", { class: "grow" }, h("div", { class: "title", text: (b.dingtalk_name || b.dingtalk_user_id) + " → " + b.member }),
            h("div", { class: "small muted", text: b.dingtalk_user_id + (b.via ? " · " + b.via : "") + (b.bound_at ? " · " + fmtTime(b.bound_at) : "") })),
          h("button", { type: "button", class: "btn small danger", "data-unbind": b.dingtalk_user_id, text: t("unbind"), onclick: function () {
            if (!confirm(t("confirmUnbind", { user: b.dingtalk_name || b.dingtalk_user_id, member: b.member }))) return;
            api("DELETE", I("/bindings/" + encodeURIComponent(b.dingtalk_user_id))).then(draw, function (e) { toast(e.message, true); });
          } })));
      });
      main.appendChild(card(h("h2", { text: t("bindingsTitle") }), bl));
    }, function (e) { box.replaceWith(failedBox(e)); });
  }

  // ------------------------------------------------------------------ JSON editor
  function jsonEditor(id, value, rows) {
    return h("textarea", { id: id, class: "json", rows: rows || 14, spellcheck: "false", autocomplete: "off", value: JSON.stringify(value, null, 2) });
  }
  function parseJson(textarea, err) {
    try { textarea.classList.remove("invalid"); return { ok: true, value: JSON.parse(textarea.value) }; }
    catch (e) {
      textarea.classList.add("invalid");
      showError(err, { body: { error: { code: "invalid_json", message: t("invalidJson", { msg: e.message }) } } });
      return { ok: false };
    }
  }

  // ------------------------------------------------------------------ 5 escalation policies and routes
  function drawEscalation() {
    var id = route.id;
    main.appendChild(heading("escalationTitle"));
    var box = loading();
    Promise.all([api("GET", I("/escalation-policies")), api("GET", I("/routes")), api("GET", I("/chats")), api("GET", I("/members")),
      api("GET", I("/schedules")).catch(function () { return []; })]).then(function (r) {
      if (stale("escalation", id)) return;
      box.remove();
      var policies = r[0] || [], routes = r[1] || [], chats = (r[2] || []).filter(function (c) { return c.status === "installed"; }), members = r[3] || [], schedules = r[4] || [];
      var editing = null;
      var list = h("div", { id: "policy-list", class: "rows" });
      if (!policies.length) list.appendChild(h("p", { class: "muted", text: t("noPolicies") }));
      policies.forEach(function (p) {
        list.appendChild(h("div", { class: "row", "data-policy": p.id },
          h("div", { class: "grow" }, h("div", { class: "title", text: p.name }),
            h("div", { class: "small muted", text: p.id + " · " + t("version", { v: p.version }) + " · " + t("layers", { n: (p.layers || []).length }) })),
          h("div", { class: "actions" },
            h("button", { type: "button", class: "btn small", text: t("edit"), onclick: function () {
              editing = p.id;
              var body = { name: p.name, layers: p.layers };
              if (p.repeat) body.repeat = p.repeat;
              if (p.ack_timeout_secs) body.ack_timeout_secs = p.ack_timeout_secs;
              editor.value = JSON.stringify(body, null, 2);
              editorTitle.textContent = t("edit") + " · " + p.name;
              editor.focus();
            } }),
            h("button", { type: "button", class: "btn small danger", text: t("del"), onclick: function () {
              api("DELETE", I("/escalation-policies/" + encodeURIComponent(p.id))).then(draw, function (e) { toast(e.message + (e.body && e.body.error && e.body.error.used_in ? " — " + e.body.error.used_in.join("; ") : ""), true); });
            } }))));
      });
      main.appendChild(card(list));

      var template = { name: "", layers: [], repeat: { times: 0, from_layer: 0 } };
      var editor = jsonEditor("policy-json", template, 16);
      var err = errorBox("policy-error");
      var editorTitle = h("h2", { text: t("newPolicy") });
      function multi(id, items) {
        return h("select", { id: id, multiple: true, size: Math.min(4, Math.max(2, items.length)) }, items.map(function (x) { return h("option", { value: x[0], text: x[1] }); }));
      }
      var hChats = multi("ph-chats", chats.map(function (c) { return [c.open_conversation_id, c.title || c.open_conversation_id]; }));
      var hMembers = multi("ph-members", members.map(function (m) { return [m.email, m.name + " <" + m.email + ">"]; }));
      var hSchedules = multi("ph-schedules", schedules.map(function (s2) { return [s2.id, s2.name]; }));
      var hAfter = h("input", { id: "ph-after", type: "number", min: "30", max: "86400", value: "300" });
      function picked(sel) { return [].filter.call(sel.options, function (o) { return o.selected; }).map(function (o) { return o.value; }); }
      var helper = h("div", { class: "helper" },
        h("h3", { text: t("helper") }),
        h("div", { class: "form-grid" },
          h("div", { class: "field" }, h("label", { for: "ph-chats", text: t("helperChats") }), hChats),
          h("div", { class: "field" }, h("label", { for: "ph-members", text: t("helperMembers") }), hMembers),
          schedules.length ? h("div", { class: "field" }, h("label", { for: "ph-schedules", text: t("helperSchedules") }), hSchedules) : null,
          h("div", { class: "field" }, h("label", { for: "ph-after", text: t("helperAfter") }), hAfter)),
        h("button", { type: "button", class: "btn", id: "ph-add-layer", text: t("addLayer"), onclick: function () {
          var parsed = parseJson(editor, err);
          if (!parsed.ok) return;
          var v = parsed.value;
          v.layers = v.layers || [];
          var targets = {};
          if (picked(hChats).length) targets.chats = picked(hChats);
          if (picked(hMembers).length) targets.members = picked(hMembers);
          if (schedules.length && picked(hSchedules).length) targets.schedules = picked(hSchedules);
          v.layers.push({ targets: targets, escalate_after_secs: parseInt(hAfter.value, 10) || 300 });
          editor.value = JSON.stringify(v, null, 2);
          showError(err, null);
        } }));
      var save = h("button", { type: "button", class: "btn primary", id: "policy-save", text: t("savePolicy"), onclick: function () {
        showError(err, null);
        var parsed = parseJson(editor, err);
        if (!parsed.ok) return;
        var req = editing ? api("PUT", I("/escalation-policies/" + encodeURIComponent(editing)), parsed.value) : api("POST", I("/escalation-policies"), parsed.value);
        req.then(function (p) { toast(t("saved")); route.arg = p.id; draw(); }, function (e) { editor.classList.add("invalid"); showError(err, e); });
      } });
      main.appendChild(card(editorTitle, h("div", { class: "split" },
        h("div", null, h("label", { for: "policy-json", text: t("policyEditor") }), editor, err, h("div", { class: "actions" }, save)), helper)));

      var rErr = errorBox("routes-error");
      var rEditor = jsonEditor("routes-json", routes, 10);
      main.appendChild(card(h("h2", { text: t("routesTitle") }), rEditor, rErr, h("div", { class: "actions" },
        h("button", { type: "button", class: "btn primary", id: "routes-save", text: t("saveRoutes"), onclick: function () {
          showError(rErr, null);
          var parsed = parseJson(rEditor, rErr);
          if (!parsed.ok) return;
          api("PUT", I("/routes"), parsed.value).then(function (saved) { rEditor.value = JSON.stringify(saved, null, 2); toast(t("saved")); },
            function (e) { rEditor.classList.add("invalid"); showError(rErr, e); });
        } }))));
    }, function (e) { box.replaceWith(failedBox(e)); });
  }

  // ------------------------------------------------------------------ 6 schedules
  function startOfWeek(d) {
    var x = new Date(d.getFullYear(), d.getMonth(), d.getDate());
    var dow = (x.getDay() + 6) % 7; // Monday first
    x.setDate(x.getDate() - dow);
    return x;
  }
  function drawSchedules() {
    var id = route.id;
    main.appendChild(heading("schedulesTitle"));
    var box = loading();
    Promise.all([api("GET", I("/schedules")), api("GET", I("/members"))]).then(function (r) {
      if (stale("schedules", id)) return;
      box.remove();
      var schedules = r[0] || [], members = r[1] || [];
      var sel = h("select", { id: "schedule-select" }, schedules.map(function (x) { return h("option", { value: x.id, text: x.name }); }));
      var chosen = schedules.filter(function (x) { return x.id === route.arg; })[0] || schedules[0];
      if (!schedules.length) main.appendChild(h("p", { class: "muted", text: t("noSchedules") }));
      var week = startOfWeek(new Date());
      var weekBox = h("div", { id: "week" });
      function loadWeek() {
        if (!chosen) return;
        var from = new Date(week), to = new Date(week);
        to.setDate(to.getDate() + 7);
        clear(weekBox);
        weekBox.appendChild(h("p", { class: "muted", text: t("loading") }));
        api("GET", I("/schedules/" + encodeURIComponent(chosen.id) + "/shifts?from=" + encodeURIComponent(from.toISOString()) + "&to=" + encodeURIComponent(to.toISOString())))
          .then(function (shifts) { clear(weekBox); weekBox.appendChild(weekView(from, shifts || [])); }, function (e) { clear(weekBox); weekBox.appendChild(failedBox(e)); });
      }
      if (chosen) {
        sel.value = chosen.id;
        sel.addEventListener("change", function () { go(id, "schedules", sel.value); });
        main.appendChild(card(h("div", { class: "toolbar" }, sel,
          h("button", { type: "button", class: "btn small", id: "week-prev", text: t("prevWeek"), onclick: function () { week.setDate(week.getDate() - 7); loadWeek(); } }),
          h("button", { type: "button", class: "btn small", text: t("week"), onclick: function () { week = startOfWeek(new Date()); loadWeek(); } }),
          h("button", { type: "button", class: "btn small", id: "week-next", text: t("nextWeek"), onclick: function () { week.setDate(week.getDate() + 7); loadWeek(); } })),
          h("p", { class: "small muted", text: chosen.timezone + " · " + t("version", { v: chosen.version }) }), weekBox));
        loadWeek();

        var err = errorBox("override-error");
        var form = h("form", { id: "override-form", class: "form-grid", novalidate: true },
          h("div", { class: "field" }, h("label", { for: "o-member", text: t("f_email") }),
            h("select", { id: "o-member", name: "member" }, members.map(function (m) { return h("option", { value: m.email, text: m.name + " <" + m.email + ">" }); }))),
          h("div", { class: "field" }, h("label", { for: "o-start", text: t("f_start") }), h("input", { id: "o-start", name: "start", type: "datetime-local", required: true })),
          h("div", { class: "field" }, h("label", { for: "o-end", text: t("f_end") }), h("input", { id: "o-end", name: "end", type: "datetime-local", required: true })),
          h("div", { class: "field wide" }, h("p", { class: "small muted", text: t("tzNote", { tz: chosen.timezone }) }), err,
            h("button", { type: "submit", class: "btn primary", id: "override-add", text: t("addOverride") })));
        form.addEventListener("submit", function (ev) {
          ev.preventDefault();
          showError(err, null, form);
          api("POST", I("/schedules/" + encodeURIComponent(chosen.id) + "/overrides"), { member: form.elements.member.value, start: form.elements.start.value, end: form.elements.end.value })
            .then(function () { toast(t("saved")); draw(); }, function (e) { showError(err, e, form); });
        });
        var ol = h("ul", { id: "override-list", class: "plain" }, (chosen.overrides || []).map(function (o) {
          return h("li", { "data-override": o.id }, o.member + " · " + fmtTime(o.start) + " → " + fmtTime(o.end) + " ",
            h("button", { type: "button", class: "btn small danger", text: t("del"), onclick: function () {
              api("DELETE", I("/schedules/" + encodeURIComponent(chosen.id) + "/overrides/" + encodeURIComponent(o.id))).then(draw, function (e) { toast(e.message, true); });
            } }));
        }));
        main.appendChild(card(h("h2", { text: t("overrides") }), ol, h("h3", { text: t("addOverride") }), form));
      }
      var sErr = errorBox("schedule-error");
      var sample = { name: "", timezone: (current() && current().timezone) || "Asia/Shanghai",
        rotations: [{ members: members.slice(0, 2).map(function (m) { return m.email; }), start: new Date().toISOString().slice(0, 10) + "T09:00", shift: { weeks: 1 } }],
        handoff_notice_mins: 30 };
      var sEditor = jsonEditor("schedule-json", sample, 10);
      main.appendChild(card(h("h2", { text: t("newSchedule") }), sEditor, sErr, h("div", { class: "actions" },
        h("button", { type: "button", class: "btn primary", id: "schedule-create", text: t("createSchedule"), onclick: function () {
          showError(sErr, null);
          var parsed = parseJson(sEditor, sErr);
          if (!parsed.ok) return;
          api("POST", I("/schedules"), parsed.value).then(function (x) { go(id, "schedules", x.id); }, function (e) { sEditor.classList.add("invalid"); showError(sErr, e); });
        } }))));
    }, function (e) { box.replaceWith(failedBox(e)); });
  }
  // A 7-day SVG week: a column per day, shifts as bars by hour, one colour per member.
  function weekView(from, shifts) {
    var W = 700, top = 28, left = 34, hourH = 14, H = top + 24 * hourH + 4, colW = (W - left) / 7;
    var svg = s("svg", { viewBox: "0 0 " + W + " " + H, class: "weekview", role: "img", "aria-label": t("shiftsTitle", { from: fmtTime(from.toISOString()).slice(0, 10), to: "" }) });
    var colors = {}, n = 0;
    function colorOf(m) { if (colors[m] === undefined) colors[m] = n++ % 8; return colors[m]; }
    for (var d = 0; d < 7; d++) {
      var day = new Date(from); day.setDate(day.getDate() + d);
      svg.appendChild(s("rect", { x: left + d * colW, y: top, width: colW, height: 24 * hourH, class: "day-bg" + (d % 2 ? " alt" : "") }));
      svg.appendChild(s("text", { x: left + d * colW + colW / 2, y: 18, "text-anchor": "middle", class: "axis", text: (day.getMonth() + 1) + "/" + day.getDate() + " " + weekday(day) }));
    }
    for (var hr = 0; hr <= 24; hr += 6) {
      svg.appendChild(s("line", { x1: left, x2: W, y1: top + hr * hourH, y2: top + hr * hourH, class: "grid" }));
      svg.appendChild(s("text", { x: left - 4, y: top + hr * hourH + 4, "text-anchor": "end", class: "axis", text: pad(hr) + ":00" }));
    }
    var end = new Date(from); end.setDate(end.getDate() + 7);
    shifts.forEach(function (sh) {
      var a = new Date(sh.start), b = new Date(sh.end);
      if (a < from) a = new Date(from);
      if (b > end) b = new Date(end);
      // One bar per day the shift touches.
      var cur = new Date(a);
      while (cur < b) {
        var dayStart = new Date(cur.getFullYear(), cur.getMonth(), cur.getDate());
        var dayEnd = new Date(dayStart); dayEnd.setDate(dayEnd.getDate() + 1);
        var segEnd = b < dayEnd ? b : dayEnd;
        var col = Math.round((dayStart - from) / 86400000);
        var y0 = (cur - dayStart) / 3600000, y1 = (segEnd - dayStart) / 3600000;
        if (col >= 0 && col < 7 && y1 > y0) {
          var g = s("g", { class: "shift m" + colorOf(sh.member) + " " + sh.source, "data-member": sh.member });
          g.appendChild(s("title", { text: sh.member + " · " + fmtTime(sh.start) + " → " + fmtTime(sh.end) + (sh.source === "override" ? " · " + t("override") : "") }));
          g.appendChild(s("rect", { x: left + col * colW + 2, y: top + y0 * hourH, width: colW - 4, height: Math.max(2, (y1 - y0) * hourH), rx: 3 }));
          if ((y1 - y0) * hourH >= 12) g.appendChild(s("text", { x: left + col * colW + 5, y: top + y0 * hourH + 11, class: "label", text: sh.member.split("@")[0] }));
          svg.appendChild(g);
        }
        cur = segEnd;
      }
    });
    var list = h("ul", { id: "shift-list", class: "plain small" });
    if (!shifts.length) list.appendChild(h("li", { class: "muted", text: t("noShifts") }));
    shifts.forEach(function (sh) {
      list.appendChild(h("li", { "data-source": sh.source }, h("span", { class: "swatch m" + colorOf(sh.member) }), " " + sh.member + " · " + fmtTime(sh.start) + " → " + fmtTime(sh.end) + " · " + t(sh.source === "override" ? "override" : "rotation")));
    });
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* older browsers */ }
    return h("div", { class: "week-wrap" }, svg, h("p", { class: "small muted", text: t("browserTz", { tz: zone }) }),
      shifts.length > 10 ? h("details", null, h("summary", { text: t("shiftCount", { n: shifts.length }) }), list) : list);
  }
  function weekday(d) {
    try { return d.toLocaleDateString(lang, { weekday: "short" }); } catch (e) { return ""; }
  }

  // ------------------------------------------------------------------ 7 templates
  var SAMPLE_ALERT = { version: 1, alert: { key: "checkout-5xx", status: "firing", severity: "critical", title: "Checkout 5xx above 5%",
    description: "Error rate **7.2%** on `POST /pay`", labels: { service: "checkout", env: "prod" }, source: "console-preview" } };
  function drawTemplates() {
    var id = route.id;
    var it = current();
    main.appendChild(heading("templatesTitle"));
    var tpl = it.templates || {};
    var title = h("textarea", { id: "tpl-title", name: "templates.title", rows: 2, spellcheck: "false", value: tpl.title || "", placeholder: "{{ alert.severity | upper }} · {{ alert.title }}" });
    var body = h("textarea", { id: "tpl-body", name: "templates.body", rows: 12, spellcheck: "false", value: tpl.body || "", placeholder: "**{{ labels.service }}**\n\n{{ alert.description }}\n\n{{ incident.started_at | localtime }}" });
    var sample = jsonEditor("tpl-alert", SAMPLE_ALERT, 8);
    sample.setAttribute("name", "alert");
    // Recent alerts of the integration by default; the sample when there are none yet.
    var source = h("select", { id: "tpl-source", name: "source" },
      h("option", { value: "recent", text: t("tplRecent") }), h("option", { value: "given", text: t("tplGiven") }));
    var err = errorBox("tpl-error");
    var out = h("div", { id: "preview", class: "preview", "aria-live": "polite" });
    var form = h("form", { id: "tpl-form", novalidate: true },
      h("label", { for: "tpl-title", text: t("tplTitle") }), title,
      h("label", { for: "tpl-body", text: t("tplBody") }), body,
      h("p", { class: "small muted", text: t("tplHint") }),
      h("label", { for: "tpl-source", text: t("tplSource") }), source,
      h("details", null, h("summary", { text: t("tplSample") }), sample),
      err,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "btn primary", id: "tpl-save", text: t("saveTemplates") })));
    main.appendChild(h("div", { class: "split card" }, form, h("div", null, h("h2", { text: t("preview") }), out)));
    function templates() {
      var x = {};
      if (title.value.trim()) x.title = title.value;
      if (body.value.trim()) x.body = body.value;
      return x;
    }
    var seq = 0;
    function request(recent) {
      var req = { templates: templates() };
      if (recent) return req;
      var parsed = parseJson(sample, err);
      if (!parsed.ok) return null;
      req.alert = parsed.value;
      return req;
    }
    function preview() {
      if (stale("templates", id)) return;
      var recent = source.value === "recent";
      var req = request(recent);
      if (!req) return;
      var mine = ++seq;
      out.setAttribute("data-state", "loading");
      api("POST", I("/templates/preview"), req).then(function (r) {
        if (mine !== seq) return null;
        if (recent && !(r.previews || []).length) {
          var given = request(false);
          if (!given) return null;
          return api("POST", I("/templates/preview"), given).then(function (g) { return { previews: g.previews, fallback: true }; });
        }
        return r;
      }).then(function (r) {
        if (!r || mine !== seq) return;
        showError(err, null, form);
        clear(out);
        out.setAttribute("data-state", "ready");
        out.setAttribute("data-source", r.fallback ? "given" : source.value);
        if (r.fallback) out.appendChild(h("p", { id: "tpl-no-recent", class: "small muted", text: t("tplNoRecent") }));
        var previews = r.previews || [];
        if (!previews.length) out.appendChild(h("p", { class: "muted", text: t("noPreview") }));
        previews.forEach(function (p) {
          out.appendChild(h("div", { class: "preview-item", "data-source": p.source },
            h("div", { class: "preview-title", text: p.title }),
            h("pre", { class: "preview-body", text: p.body }),
            h("div", { class: "small muted", text: t("bytes", { n: p.bytes }) + " · " + p.source }),
            h("div", { class: "warnings" }, h("strong", { text: t("warnings") + ": " }),
              (p.warnings || []).length ? h("ul", { class: "preview-warnings" }, p.warnings.map(function (w) { return h("li", { text: typeof w === "string" ? w : JSON.stringify(w) }); }))
                : h("span", { class: "muted", text: t("noWarnings") }))));
        });
      }, function (e) { if (mine !== seq) return; out.setAttribute("data-state", "error"); showError(err, e, form); });
    }
    var debounce = null;
    function later() { clearTimeout(debounce); debounce = setTimeout(preview, 400); timers.push(debounce); }
    [title, body, sample].forEach(function (el) { el.addEventListener("input", later); });
    source.addEventListener("change", preview);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      showError(err, null, form);
      api("PATCH", I(""), { templates: templates() }).then(function (updated) {
        integrations = integrations.map(function (x) { return x.id === updated.id ? updated : x; });
        toast(t("saved"));
      }, function (e) { showError(err, e, form); });
    });
    preview();
  }

  // ------------------------------------------------------------------ 8 incidents
  function drawIncidents() {
    var id = route.id;
    if (route.arg) return drawIncident(route.arg);
    main.appendChild(heading("incidentsTitle"));
    var status = h("select", { id: "filter-status" }, h("option", { value: "", text: t("allStatuses") }),
      ["triggered", "acknowledged", "snoozed", "resolved"].map(function (x) { return h("option", { value: x, text: t("st_" + x) }); }));
    var severity = h("select", { id: "filter-severity" }, h("option", { value: "", text: t("allSeverities") }),
      ["critical", "warning", "info"].map(function (x) { return h("option", { value: x, text: t("sev_" + x) }); }));
    var listBox = h("div", { id: "incident-list", class: "rows" });
    main.appendChild(h("div", { class: "toolbar", id: "incident-filters" }, status, severity,
      h("button", { type: "button", class: "btn small", text: t("refresh"), onclick: function () { load(); } })));
    main.appendChild(card(listBox));
    var all = [];
    function render() {
      clear(listBox);
      var shown = all.filter(function (x) { return (!status.value || x.status === status.value) && (!severity.value || x.severity === severity.value); });
      listBox.setAttribute("data-query", "status=" + status.value + "&severity=" + severity.value);
      if (!shown.length) listBox.appendChild(h("p", { class: "muted", text: t("noIncidents") }));
      shown.forEach(function (x) {
        listBox.appendChild(h("a", { class: "row link sev-edge-" + x.severity, href: hashOf(id, "incidents", x.id), "data-incident": x.id, "data-severity": x.severity, "data-status": x.status },
          h("div", { class: "grow" },
            h("div", null, h("span", { class: "badge sev-" + x.severity, text: t("sev_" + x.severity) }), h("span", { class: "badge st-" + x.status, text: t("st_" + x.status) })),
            h("div", { class: "title", text: x.title }),
            h("div", { class: "small muted", text: t("startedAt", { time: fmtTime(x.started_at || x.opened_at) }) + " · " + x.key + " · " + t("events", { n: x.event_count || 1 }) }))));
      });
    }
    function load() {
      var q = status.value && status.value !== "snoozed" ? "?status=" + encodeURIComponent(status.value) : "";
      api("GET", I("/incidents" + q)).then(function (list) {
        if (stale("incidents", id)) return;
        all = (list || []).slice().sort(function (a, b) { return String(b.opened_at || b.started_at).localeCompare(String(a.opened_at || a.started_at)); });
        render();
      }, function (e) { clear(listBox); listBox.appendChild(failedBox(e)); });
    }
    status.addEventListener("change", load);
    severity.addEventListener("change", render);
    load();
  }
  function drawIncident(incidentId) {
    var id = route.id;
    main.appendChild(h("a", { class: "btn small", id: "back", href: hashOf(id, "incidents"), text: t("back") }));
    var box = loading();
    api("GET", "/api/incidents/" + encodeURIComponent(incidentId)).then(function (x) {
      if (stale("incidents", id)) return;
      box.remove();
      var esc = x.escalation;
      main.appendChild(card(
        h("div", null, h("span", { class: "badge sev-" + x.severity, text: t("sev_" + x.severity) }), h("span", { class: "badge st-" + x.status, "data-testid": "status", text: t("st_" + x.status) })),
        h("h1", { id: "incident-title", text: x.title }),
        x.description ? h("pre", { class: "desc", text: x.description }) : null,
        h("div", { class: "small muted", text: t("startedAt", { time: fmtTime(x.started_at) }) + " · " + x.key + " · " + x.id }),
        x.labels ? h("div", { class: "labels" }, Object.keys(x.labels).map(function (k) { return h("span", { text: k + "=" + x.labels[k] }); })) : null,
        esc ? h("div", { class: "small", text: (esc.policy_name || esc.policy_id) + " · " + (esc.layer + 1) + "/" + esc.layers + " · " + esc.state + (esc.next_at ? " · " + fmtTime(esc.next_at) : "") }) : null,
        (x.assignees || []).length ? h("div", { class: "small", text: "→ " + x.assignees.join(", ") }) : null));
      var records = (x.records || []).slice();
      main.appendChild(card(h("h2", { text: t("timeline") }), h("ol", { id: "timeline", class: "timeline" }, records.map(function (r) {
        return h("li", { "data-kind": r.kind }, h("time", { datetime: r.at, text: fmtTime(r.at) }), " ", h("strong", { text: r.kind }),
          r.actor ? " · " + r.actor : "", r.target ? " → " + r.target : "", r.detail ? h("div", { class: "small muted", text: r.detail }) : null);
      }))));
    }, function (e) { box.replaceWith(failedBox(e)); });
  }

  // ------------------------------------------------------------------ 9 usage
  function drawUsage() {
    var id = route.id;
    var box = loading();
    api("GET", I("/usage")).then(function (u) {
      if (stale("usage", id)) return;
      box.remove();
      var limits = u.limits || {};
      main.appendChild(heading("usageTitle", { month: u.month }));
      main.appendChild(h("div", { class: "stats", id: "usage-stats" },
        stat(t("calls"), fmtNum(u.calls) + " / " + fmtNum(limits.monthly_quota), t("percentUsed", { p: u.percent })),
        stat(t("burnLabel"), fmtNum(u.burn_rate_per_day), t("projected", { n: fmtNum(u.projected_month_total) })),
        stat(t("exhaustLabel"), u.projected_exhaustion || "—", u.projected_exhaustion ? t("exhaustion", { date: u.projected_exhaustion }) : t("noExhaustion")),
        stat(t("qps", { n: limits.qps }), t("throttle", { n: fmtNum(u.throttle_waits || 0) }), t("suppressed", { n: fmtNum(u.suppressed || 0) }) + " · " + t("folded", { n: fmtNum(u.folded || 0) }))));
      main.appendChild(card(usageChart(u)));
      var kinds = Object.keys(u.by_kind || {});
      main.appendChild(card(h("h2", { text: t("byKind") }), kinds.length ? h("ul", { class: "plain", id: "usage-kinds" }, kinds.map(function (k) { return h("li", null, h("code", { text: k }), " " + fmtNum(u.by_kind[k])); })) : h("p", { class: "muted", text: t("none") })));
    }, function (e) { box.replaceWith(failedBox(e)); });
  }
  function stat(label, value, sub) {
    return h("div", { class: "stat card" }, h("div", { class: "small muted", text: label }), h("div", { class: "big", text: value }), sub ? h("div", { class: "small", text: sub }) : null);
  }
  // The month's calls, cumulative by day, against the quota and the reserve line; the
  // projection to the month's end dashed. Daily counts (`by_day`) when the API has them.
  function usageChart(u) {
    var limits = u.limits || {};
    var m = /^(\d{4})-(\d{2})$/.exec(u.month || "") || [];
    var year = +m[1] || new Date().getFullYear(), month = +m[2] || new Date().getMonth() + 1;
    var days = new Date(year, month, 0).getDate();
    var now = new Date();
    var today = (now.getFullYear() === year && now.getMonth() + 1 === month) ? now.getDate() - 1 + (now.getHours() * 60 + now.getMinutes()) / 1440 : days;
    var quota = limits.monthly_quota || 0, reserve = limits.reserve_from || 0, calls = u.calls || 0;
    var projected = u.projected_month_total || calls;
    var daily = null;
    if (u.by_day && typeof u.by_day === "object") {
      daily = [];
      for (var d = 1; d <= days; d++) {
        var key = u.month + "-" + pad(d);
        daily.push(Array.isArray(u.by_day) ? (u.by_day[d - 1] || 0) : (u.by_day[key] || u.by_day[String(d)] || 0));
      }
    }
    var W = 720, H = 300, L = 64, R = 12, T = 16, B = 34;
    var ymax = Math.max(quota, projected, calls, 1) * 1.08;
    function x(day) { return L + (day / days) * (W - L - R); }
    function y(v) { return T + (1 - v / ymax) * (H - T - B); }
    var svg = s("svg", { viewBox: "0 0 " + W + " " + H, id: "usage-chart", class: "chart", role: "img",
      "aria-label": t("calls") + " " + calls + " / " + t("quota") + " " + quota });
    svg.appendChild(s("title", { text: t("usageTitle", { month: u.month }) }));
    for (var i = 0; i <= 4; i++) {
      var v = ymax * i / 4;
      svg.appendChild(s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      svg.appendChild(s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis", text: compact(v) }));
    }
    for (var dd = 1; dd <= days; dd += (days > 20 ? 5 : 2)) {
      svg.appendChild(s("text", { x: x(dd - 0.5), y: H - B + 16, "text-anchor": "middle", class: "axis", text: String(dd) }));
    }
    svg.appendChild(s("text", { x: W - R, y: H - 4, "text-anchor": "end", class: "axis", text: t("day") }));
    if (daily) {
      var bw = (W - L - R) / days * 0.7;
      daily.forEach(function (c, k) {
        if (!c) return;
        var r = s("rect", { x: x(k + 0.15), y: y(c), width: bw, height: Math.max(1, y(0) - y(c)), class: "bar" });
        r.appendChild(s("title", { text: u.month + "-" + pad(k + 1) + ": " + c }));
        svg.appendChild(r);
      });
    }
    // Actual: cumulative from daily counts, or a straight line from the 1st to now.
    var pts = [[x(0), y(0)]];
    if (daily) {
      var sum = 0;
      for (var k = 0; k < Math.min(days, Math.ceil(today)); k++) { sum += daily[k]; pts.push([x(Math.min(k + 1, today)), y(sum)]); }
    }
    pts.push([x(today), y(calls)]);
    svg.appendChild(s("polyline", { points: pts.map(function (p) { return p.join(","); }).join(" "), class: "actual" }));
    svg.appendChild(s("circle", { cx: x(today), cy: y(calls), r: 4, class: "now" }));
    if (today < days) svg.appendChild(s("line", { x1: x(today), y1: y(calls), x2: x(days), y2: y(projected), class: "projected" }));
    if (quota) {
      svg.appendChild(s("line", { x1: L, x2: W - R, y1: y(quota), y2: y(quota), class: "quota" }));
      svg.appendChild(s("text", { x: W - R - 4, y: y(quota) - 5, "text-anchor": "end", class: "quota-label", text: t("quota") + " " + compact(quota) }));
    }
    if (reserve) {
      svg.appendChild(s("line", { x1: L, x2: W - R, y1: y(reserve), y2: y(reserve), class: "reserve" }));
      svg.appendChild(s("text", { x: W - R - 4, y: y(reserve) + 14, "text-anchor": "end", class: "reserve-label", text: t("reserve", { p: 100 - (limits.reserve_percent || 10) }) }));
    }
    var legend = h("div", { class: "legend small" },
      h("span", null, h("i", { class: "key actual" }), t("chartActual")), h("span", null, h("i", { class: "key projected" }), t("chartProjected")),
      h("span", null, h("i", { class: "key quota" }), t("quota")), h("span", null, h("i", { class: "key reserve" }), t("reserve", { p: 100 - (limits.reserve_percent || 10) })),
      daily ? h("span", null, h("i", { class: "key bar" }), t("chartDaily")) : null);
    return h("div", { class: "chart-wrap" }, svg, legend);
  }
  function compact(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + "M";
    if (v >= 1e3) return (v / 1e3).toFixed(v >= 1e4 ? 0 : 1) + "k";
    return String(Math.round(v));
  }

  // ------------------------------------------------------------------ 10 dead letters
  function drawDlq() {
    main.appendChild(heading("dlqTitle"));
    var box = loading();
    var result = h("div", { id: "dlq-result", hidden: true, class: "card ok" });
    main.appendChild(result);
    function redrive(ids) {
      api("POST", "/api/dlq/redrive", ids ? { message_ids: ids } : {}).then(function (r) {
        draw();
        setTimeout(function () {
          var box2 = document.getElementById("dlq-result");
          if (!box2) return;
          box2.hidden = false;
          box2.setAttribute("data-redriven", String(r.redriven));
          add(box2, h("p", { text: t("redriven", { n: r.redriven }) }));
          if ((r.missing || []).length) add(box2, h("p", { class: "small", text: t("missing", { ids: r.missing.join(", ") }) }));
        }, 0);
      }, function (e) { toast(e.message, true); });
    }
    api("GET", "/api/dlq").then(function (r) {
      if (route.page !== "dlq") return;
      box.remove();
      var msgs = r.messages || [];
      var list = h("div", { id: "dlq-list", class: "rows" });
      if (!msgs.length) list.appendChild(h("p", { class: "muted", text: t("dlqEmpty") }));
      msgs.forEach(function (m) {
        list.appendChild(h("label", { class: "row", "data-message": m.message_id },
          h("input", { type: "checkbox", class: "pick", value: m.message_id }),
          h("div", { class: "grow" },
            h("div", { class: "mono small", text: m.message_id }),
            h("div", { class: "small" }, h("span", { class: "badge", text: m.kind }), " " + t("receiveCount", { n: m.receive_count }) + (m.integration_id ? " · " + m.integration_id : "") + (m.sent_at ? " · " + fmtTime(m.sent_at) : "")),
            m.first_error ? h("div", { class: "small bad-text", text: t("firstError", { e: m.first_error }) + (m.first_error_at ? " (" + fmtTime(m.first_error_at) + ")" : "") }) : null)));
      });
      main.appendChild(h("div", { class: "toolbar" },
        h("span", { class: "muted", text: t("dlqDepth", { n: r.approximate_depth }) }),
        h("button", { type: "button", class: "btn small", text: t("refresh"), onclick: draw }),
        h("button", { type: "button", class: "btn small primary", id: "redrive-selected", disabled: !msgs.length, text: t("redriveSelected"), onclick: function () {
          var ids = [].map.call(list.querySelectorAll("input.pick:checked"), function (c) { return c.value; });
          if (ids.length) redrive(ids);
        } }),
        h("button", { type: "button", class: "btn small danger", id: "redrive-all", disabled: !msgs.length, text: t("redriveAll"), onclick: function () {
          if (confirm(t("confirmRedriveAll"))) redrive(null);
        } })));
      main.appendChild(card(list));
    }, function (e) {
      if (e.body && e.body.error && e.body.error.code === "dlq_not_configured") box.replaceWith(h("p", { class: "notice card", text: t("dlqNotConfigured") }));
      else box.replaceWith(failedBox(e));
    });
  }

  var PAGE_DRAW = { integrations: drawIntegrations, setup: drawSetup, chats: drawChats, members: drawMembers, escalation: drawEscalation,
    schedules: drawSchedules, templates: drawTemplates, incidents: drawIncidents, usage: drawUsage, dlq: drawDlq };

  // ------------------------------------------------------------------ chrome
  function applyLang() {
    document.documentElement.lang = lang;
    document.title = t("brand");
    document.getElementById("brand-name").textContent = t("brand");
    langButton.textContent = t("other");
    langButton.setAttribute("aria-label", t("other"));
    signoutButton.textContent = t("signout");
  }
  langButton.addEventListener("click", function () {
    lang = lang === "zh-CN" ? "en-US" : "zh-CN";
    try { localStorage.setItem("console.lang", lang); } catch (e) { /* private mode */ }
    applyLang();
    if (csrf) { drawSelect(); draw(); } else renderSignIn();
  });
  signoutButton.addEventListener("click", function () {
    api("DELETE", "/console/api/session").catch(function () { /* signed out either way */ }).then(function () { signedOut(t("signedOut")); });
  });
  select.addEventListener("change", function () {
    var page = GLOBAL[route.page] ? "setup" : route.page;
    if (!select.value) go(null, "integrations");
    else go(select.value, page);
  });
  window.addEventListener("hashchange", draw);
  document.addEventListener("visibilitychange", function () { if (!document.hidden && route.page === "setup" && csrf) draw(); });

  applyLang();
  var r0 = parseHash();
  route.id = r0.id; route.page = r0.page; route.arg = r0.arg;
  api("GET", "/console/api/session").then(started, function (e) {
    var code = e.body && e.body.error && e.body.error.code;
    signedOut(code === "session_expired" ? t("sessionExpired") : null);
  });
})();
