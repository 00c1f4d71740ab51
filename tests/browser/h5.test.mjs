// Acceptance of the H5 app in headless Chromium, against the running local stack
// (the sandbox stands in for DingTalk and its JSAPI), in both languages: the demo
// integration is created without a locale, so the page starts in zh-CN.
// First visit from a Snooze link → the Snooze held → link-code association → the
// Snooze replayed in the member's name → every open incident of the integration, with
// the mine / severity filters → Acknowledge (认领) → the incident is acknowledged and
// its record names the member → a note shows in the timeline; a second visit goes
// straight to the list; "who is on call" shows the demo schedule; switching to English
// is remembered for the next visit and on the PC. Saves mobile (390×844) and PC
// (1280×800) screenshots named with their language.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.env.STACK_URL;
const adminKey = process.env.ADMIN_API_KEY;
const ingestToken = process.env.INGEST_TOKEN;
const artifacts = process.env.ARTIFACTS || "tests/artifacts";
mkdirSync(artifacts, { recursive: true });
let passed = 0;
let failed = 0;

function check(name, ok, detail) {
  if (ok) { passed++; console.log(`ok - ${name}`); }
  else { failed++; console.log(`not ok - ${name}${detail ? ": " + detail : ""}`); }
}

async function admin(method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, body: await r.json().catch(() => ({})) };
}

async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const value = await fn();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const integrations = await admin("GET", "/api/integrations");
const id = integrations.body[0].id;
const appUrl = `/dingtalk/${id}/app`;

// The on-call member; Dave's DingTalk profile has no email, so he needs a link code.
await admin("POST", `/api/integrations/${id}/members`, { email: "robert@corp.example", name: "Robert" });
const code = (await admin("POST", `/api/integrations/${id}/members/robert@corp.example/link-code`)).body.code;
check("link code issued", /^[A-Z2-9]{8}$/.test(code || ""), code);

// Install the cool app in a group through the sandbox page, then raise an alert for Robert.
const cid = "cidPaymentsOncall000000001==";
await fetch(base + "/sandbox/actions/install", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: "cid=" + encodeURIComponent(cid), redirect: "manual" });
const alert = { version: 1, alert: { key: "browser-test", status: "firing", severity: "critical", title: "Payments API 5xx above 5%",
  description: "Error rate **7.2%** on `POST /pay`\n- see [the dashboard](https://grafana.example.com/d/pay)\n- <img src=x onerror=alert(1)>", labels: { service: "payments", env: "prod" },
  links: [{ title: "Runbook", url: "https://runbooks.example.com/payments" }], source: "browser-test", occurred_at: new Date().toISOString() },
  targets: { chats: [cid], members: ["robert@corp.example"] } };
const ingest = await fetch(`${base}/api/integrations/${id}/alerts`, { method: "POST", headers: { Authorization: `Bearer ${ingestToken}`, "Content-Type": "application/json" }, body: JSON.stringify(alert) });
check("alert ingested", ingest.status === 202, String(ingest.status));
const incident = await until("the incident", async () => (await admin("GET", `/api/integrations/${id}/incidents?key=browser-test`)).body[0]);
// The team's incident, not Robert's: the home page lists it too.
const teamAlert = { version: 1, alert: { key: "browser-team", status: "firing", severity: "warning", title: "Orders queue backlog above 10k",
  description: "Consumers are slow", labels: { service: "orders" }, source: "browser-test", occurred_at: new Date(Date.now() - 12 * 60000).toISOString() },
  targets: { chats: [cid], members: ["alice@example.com"] } };
const teamIngest = await fetch(`${base}/api/integrations/${id}/alerts`, { method: "POST", headers: { Authorization: `Bearer ${ingestToken}`, "Content-Type": "application/json" }, body: JSON.stringify(teamAlert) });
check("team alert ingested", teamIngest.status === 202, String(teamIngest.status));
const team = await until("the team incident", async () => (await admin("GET", `/api/integrations/${id}/incidents?key=browser-team`)).body[0]);

// What each language says where the checks look.
const T = {
  "zh-CN": { outside: "在钉钉中打开", ack: "认领", acknowledged: "处理中", triggered: "待处理", firing: "告警中", critical: "严重",
    layer: "第 1/2 层，下次升级", onCall: /当前值班：(Carol|Bob)/, resolve: "解决", heading: "未解决的事件", ago: /前/, note: "备注" },
  "en-US": { outside: "inside DingTalk", ack: "Acknowledge", acknowledged: "Acknowledged", triggered: "Triggered", firing: "Firing", critical: "Critical",
    layer: "layer 1 of 2, next escalation at", onCall: /On call now: (Carol|Bob)/, resolve: "Resolve", heading: "Open incidents", ago: /ago/, note: "note" },
};
const lang = (page) => page.evaluate(() => document.documentElement.lang);
async function ensureLanguage(page, want) {
  if ((await lang(page)) !== want) {
    await page.click("#lang-switch");
    await page.waitForFunction((l) => document.documentElement.lang === l, want);
  }
}
const shown = (page, incidentId) => page.$(`[data-incident="${incidentId}"]`).then((e) => e !== null);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const mobile = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await mobile.newPage();
  // Outside DingTalk (no JSAPI identity): a clear message in the integration's language, not a blank page.
  await page.goto(base + appUrl);
  await page.waitForSelector("#outside");
  check("the page starts in the integration's language (zh-CN)", (await lang(page)) === "zh-CN", await lang(page));
  check("outside DingTalk explains how to open the app", (await page.textContent("#outside")).includes(T["zh-CN"].outside));

  // First visit inside DingTalk (the sandbox's "Open the app as Dave"), from an alert's
  // Snooze link: not associated yet, so the Snooze is held and the form says so.
  await page.goto(`${base}/sandbox/as/dave0004?next=${encodeURIComponent(`${appUrl}?incident=${team.id}&action=snooze`)}`);
  await page.waitForSelector("#link-code");
  await page.waitForSelector("#held-note");
  check("an action link opened before association is held", (await page.getAttribute("#held-note", "data-action")) === "snooze",
    await page.textContent("#held-note"));
  await page.screenshot({ path: `${artifacts}/h5-mobile-associate-zh-CN.png`, fullPage: true });
  await page.fill("#link-code", code);
  await page.click("#associate-submit");
  // Replay after association: the held Snooze is applied in Robert's name.
  await page.waitForSelector("#replayed");
  check("after association the held Snooze is applied, and the page says so", (await page.getAttribute("#replayed", "data-applied")) === "true",
    await page.textContent("#replayed"));
  const replayedTeam = (await admin("GET", `/api/incidents/${team.id}`)).body;
  check("the replayed Snooze is recorded", !!replayedTeam.snoozed_until && (replayedTeam.records || []).some((r) => r.kind === "replayed"),
    JSON.stringify(replayedTeam.records));
  await page.click("#back");
  await page.waitForSelector(`[data-incident="${incident.id}"]`);
  await ensureLanguage(page, "zh-CN");
  await page.waitForSelector(`[data-incident="${incident.id}"]`);
  check("after association the list shows the incident", true);
  check("header names the member", (await page.textContent("#who")).includes("robert@corp.example"));
  await listChecks(page, "zh-CN");
  await page.screenshot({ path: `${artifacts}/h5-mobile-list-zh-CN.png`, fullPage: true });
  await filterChecks(page, "zh-CN");

  await page.click(`[data-incident="${incident.id}"]`);
  await page.waitForSelector("#act-ack");
  await page.screenshot({ path: `${artifacts}/h5-mobile-detail-zh-CN.png`, fullPage: true });
  const facts = await page.textContent("#incident");
  check("the detail shows where the escalation stands", facts.includes(T["zh-CN"].layer), facts);
  check("the action button says 认领", (await page.textContent("#act-ack")).includes("认领"));
  check("the incident is 告警中 and 待处理", facts.includes("告警中") && (await page.textContent("#incident [data-testid=status]")) === "待处理", facts);
  check("Escalate and Reassign are offered", (await page.$("#act-escalate")) !== null && (await page.$("#act-reassign")) !== null);
  await page.click("#act-ack");
  await page.waitForFunction(() => document.querySelector("#incident [data-testid=status]")?.getAttribute("data-status") === "acknowledged");
  check("page shows the incident acknowledged (处理中)", (await page.textContent("#incident [data-testid=status]")) === T["zh-CN"].acknowledged);
  await page.screenshot({ path: `${artifacts}/h5-mobile-acknowledged-zh-CN.png`, fullPage: true });

  const detail = (await admin("GET", `/api/incidents/${incident.id}`)).body;
  check("incident acknowledged in the store", detail.status === "acknowledged", detail.status);
  const record = (detail.records || []).find((r) => r.kind === "acknowledged");
  check("its record names the member", record && record.actor.includes("Robert") && record.actor.includes("robert@corp.example"), JSON.stringify(record));

  await noteChecks(page, "zh-CN", "已回滚 deploy 42，错误率恢复正常");

  // Second visit: straight to the list, no association step.
  const again = await mobile.newPage();
  await again.goto(base + appUrl);
  await again.waitForSelector("#incident-list, #empty");
  check("second visit goes straight to the list", (await again.$("#link-code")) === null);
  await oncallChecks(again, "zh-CN");

  // Alert buttons open the incident with the action ready to confirm.
  await again.goto(`${base}${appUrl}?incident=${incident.id}&action=resolve`);
  await again.waitForSelector("#confirm-action");
  check("a message button opens the action ready to confirm", (await again.textContent("#confirm")).includes(T["zh-CN"].resolve));

  // Switch to English in the page: the same screen again, in English.
  await again.click("#lang-switch");
  await again.waitForFunction(() => document.documentElement.lang === "en-US" && /Resolve/.test(document.querySelector("#confirm")?.textContent || ""));
  check("switching language redraws the screen in English", (await again.textContent("#confirm")).includes(T["en-US"].resolve));
  // Remembered on the binding: the next visit starts in English.
  await again.goto(base + appUrl);
  await again.waitForSelector(`[data-incident="${team.id}"]`);
  check("the chosen language is remembered", (await lang(again)) === "en-US", await lang(again));
  await listChecks(again, "en-US");
  await again.screenshot({ path: `${artifacts}/h5-mobile-list-en-US.png`, fullPage: true });
  await filterChecks(again, "en-US");
  await again.click(`[data-incident="${team.id}"]`);
  await again.waitForSelector("#act-ack");
  check("the English action button says Acknowledge", (await again.textContent("#act-ack")).includes("Acknowledge"));
  await noteChecks(again, "en-US", "Consumers restarted; backlog draining");
  await again.screenshot({ path: `${artifacts}/h5-mobile-detail-en-US.png`, fullPage: true });
  await oncallChecks(again, "en-US");

  // PC layout, in the remembered English, then switched back to Chinese.
  const pc = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const desk = await pc.newPage();
  await desk.goto(`${base}/sandbox/as/dave0004?next=${encodeURIComponent(appUrl)}`);
  await desk.waitForSelector("#incident-list, #empty");
  check("the PC starts in the remembered language", (await lang(desk)) === "en-US", await lang(desk));
  await desk.screenshot({ path: `${artifacts}/h5-pc-list-en-US.png` });
  await desk.goto(`${base}${appUrl}?incident=${incident.id}`);
  await desk.waitForSelector("#timeline");
  await desk.screenshot({ path: `${artifacts}/h5-pc-detail-en-US.png` });
  check("PC layout renders the detail with its timeline", (await desk.$$("#timeline li")).length >= 2);
  const description = await desk.$eval("#incident-description", (d) => ({
    strong: d.querySelector("strong")?.textContent, code: d.querySelector("code")?.textContent,
    link: d.querySelector("a")?.getAttribute("href"), items: d.querySelectorAll("li").length,
    img: d.querySelectorAll("img").length, text: d.textContent }));
  check("the description renders its markdown, and HTML in it stays text",
    description.strong === "7.2%" && description.code === "POST /pay" && description.link === "https://grafana.example.com/d/pay"
      && description.items === 2 && description.img === 0 && description.text.includes("<img src=x onerror=alert(1)>"),
    JSON.stringify(description));
  await ensureLanguage(desk, "zh-CN");
  await desk.waitForFunction(() => /时间线/.test(document.body.textContent));
  await desk.screenshot({ path: `${artifacts}/h5-pc-detail-zh-CN.png` });
  await desk.click("#back");
  await desk.waitForSelector("#incident-list");
  await desk.screenshot({ path: `${artifacts}/h5-pc-list-zh-CN.png` });
  check("the PC list is back in Chinese", (await desk.textContent("#list-heading")).includes(T["zh-CN"].heading));

  // Silence from the H5 app: an alert from Alertmanager (make dev's demo integration
  // points at a real Alertmanager) shows its matchers, asks to confirm, then is silenced.
  const amAlert = { version: "4", status: "firing", groupKey: "{}:{alertname=\"DiskFull\"}",
    commonLabels: { alertname: "DiskFull", instance: "db-1", severity: "warning", dingtalk_chat: cid, dingtalk_member: "robert@corp.example" },
    commonAnnotations: { summary: "Disk 91% on db-1" },
    alerts: [{ status: "firing", labels: { alertname: "DiskFull", instance: "db-1", severity: "warning", dingtalk_chat: cid, dingtalk_member: "robert@corp.example" },
      startsAt: new Date().toISOString() }] };
  const amIngest = await fetch(`${base}/api/integrations/${id}/alerts`, { method: "POST", headers: { Authorization: `Bearer ${ingestToken}`, "Content-Type": "application/json" }, body: JSON.stringify(amAlert) });
  check("an Alertmanager alert is ingested", amIngest.status === 202, String(amIngest.status));
  const amIncident = await until("the Alertmanager incident", async () =>
    (await admin("GET", `/api/integrations/${id}/incidents`)).body.find((i) => i.source === "alertmanager" && i.status !== "resolved"));
  await desk.goto(`${base}${appUrl}?incident=${amIncident.id}`);
  await desk.waitForSelector("#act-silence");
  await desk.selectOption("#silence-duration", "4h");
  await desk.click("#act-silence");
  await desk.waitForSelector("#silence-matchers li");
  const matchers = await desk.$$eval("#silence-matchers li", (items) => items.map((li) => li.textContent));
  check("the H5 app shows the matchers before it silences", matchers.includes('alertname="DiskFull"') && matchers.includes('instance="db-1"'), JSON.stringify(matchers));
  check("nothing is silenced before confirming", !(await admin("GET", `/api/incidents/${amIncident.id}`)).body.silence);
  await desk.screenshot({ path: `${artifacts}/h5-pc-silence-confirm-zh-CN.png` });
  await desk.click("#confirm-silence");
  await desk.waitForSelector("#silenced-until");
  const silenced = (await admin("GET", `/api/incidents/${amIncident.id}`)).body;
  check("confirming makes a real silence, recorded on the incident", !!(silenced.silence && silenced.silence.id)
    && (silenced.records || []).some((r) => r.kind === "silenced" && r.target === silenced.silence.id), JSON.stringify(silenced.silence));
  check("the page says until when it is silenced", (await desk.textContent("#silenced-until")).includes("静默至"), await desk.textContent("#silenced-until"));

  // The sandbox page shows the group's card the way DingTalk does: a coloured
  // header, rendered markdown and buttons, in the integration's language.
  await desk.goto(`${base}/sandbox`);
  await desk.waitForSelector(".card-msg");
  const cards = await desk.$$eval(".card-msg", (nodes) => nodes.map((n) => n.textContent));
  check("the sandbox card speaks Chinese", cards.some((c) => /(告警中|处理中)/.test(c) && c.includes("严重") && /(认领|解决)/.test(c)), cards[0]);
  check("the sandbox card renders the markdown", cards.some((c) => { const shown = c.split("variables")[0]; return shown.includes("7.2%") && !shown.includes("**7.2%**"); }), cards[0]);
  const card = await desk.$(".card-msg");
  await card.screenshot({ path: `${artifacts}/sandbox-card-zh-CN.png` });
} catch (err) {
  check("browser flow", false, err.stack || String(err));
} finally {
  await browser.close();
}

// The home page: every open incident of the integration (all by default), the
// team's included, with translated badges and relative start times.
async function listChecks(page, l) {
  const t = T[l];
  check(`[${l}] the list shows all open incidents by default, the team's too`, (await shown(page, incident.id)) && (await shown(page, team.id)));
  check(`[${l}] the all filter is on`, (await page.getAttribute("#filter-all", "aria-pressed")) === "true");
  const text = await page.textContent("#incident-list");
  check(`[${l}] badges are translated`, text.includes(t.critical) && text.includes(t.firing), text);
  check(`[${l}] the heading is translated`, (await page.textContent("#list-heading")).includes(t.heading));
  const started = await page.$eval(`[data-incident="${team.id}"] time`, (n) => ({ text: n.textContent, title: n.title }));
  check(`[${l}] start times are relative, the absolute time on hover`, t.ago.test(started.text) && /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/.test(started.title), JSON.stringify(started));
}

// Mine shows only Robert's incident; a severity filter only the team's warning.
async function filterChecks(page, l) {
  await page.click("#filter-mine");
  await page.waitForFunction(() => document.querySelector("#filter-mine")?.getAttribute("aria-pressed") === "true");
  await page.waitForSelector(`[data-incident="${incident.id}"]`);
  check(`[${l}] the mine filter shows only my incidents`, !(await shown(page, team.id)));
  await page.click("#filter-all");
  await page.waitForSelector(`[data-incident="${team.id}"]`);
  await page.selectOption("#filter-severity", "warning");
  await page.waitForSelector(`[data-query="?view=all&severity=warning"]`);
  check(`[${l}] the severity filter shows only warnings`, (await shown(page, team.id)) && (await page.$$("#incident-list [data-severity=critical]")).length === 0);
  await page.selectOption("#filter-group", cid);
  await page.waitForSelector(`[data-query*="cid="][data-query*="severity=warning"] [data-incident="${team.id}"]`);
  await page.screenshot({ path: `${artifacts}/h5-mobile-list-filtered-${l}.png`, fullPage: true });
  check(`[${l}] the group filter keeps the group's incidents`, await shown(page, team.id));
  await page.selectOption("#filter-severity", "");
  await page.selectOption("#filter-group", "");
  await page.waitForSelector(`[data-query="?view=all"] [data-incident="${incident.id}"]`);
}

// A note written in the page shows in the timeline with its author, and is stored.
async function noteChecks(page, l, text) {
  await page.fill("#note-text", text);
  await page.click("#note-submit");
  await page.waitForFunction((x) => [...document.querySelectorAll("#timeline li[data-kind=note]")].some((li) => li.textContent.includes(x)), text);
  const entry = await page.$eval("#timeline li[data-kind=note]", (li) => li.textContent);
  check(`[${l}] the note shows in the timeline with its author`, entry.includes(text) && entry.includes("robert@corp.example") && entry.includes(T[l].note), entry);
  await page.click("#note-submit");
  await page.waitForSelector("#note-error");
  check(`[${l}] an empty note is refused in the page`, true);
  const stored = await Promise.all([incident.id, team.id].map((i) => admin("GET", `/api/incidents/${i}`)));
  const note = stored.flatMap((d) => d.body.records || []).find((r) => r.kind === "note" && r.detail === text);
  check(`[${l}] the note is stored as a note record with its actor`, note && note.actor.includes("robert@corp.example"), JSON.stringify(note));
}

// Who is on call: the demo schedule with its current person, and my next shifts.
async function oncallChecks(page, l) {
  await page.goto(base + appUrl);
  await page.waitForSelector("#open-oncall");
  await page.click("#open-oncall");
  await page.waitForSelector("#oncall-list");
  const board = await page.textContent("#oncall-list");
  check(`[${l}] who is on call shows the demo schedule and its person`, board.includes("demo-oncall") && T[l].onCall.test(board), board);
  check(`[${l}] my next shifts says Robert has none`, (await page.$("#no-shifts")) !== null);
  await page.screenshot({ path: `${artifacts}/h5-mobile-oncall-${l}.png`, fullPage: true });
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
