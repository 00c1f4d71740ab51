// Acceptance of the admin console (GET /console) in headless Chromium, against the
// running local stack and its sandbox DingTalk: a first-time setup as a new team would
// do it. A wrong admin key is refused; sign in; add an integration for a NEW sandbox
// app (a bad aes_key is refused first, naming the field); the setup checklist shows
// check_url and the cool app not done; the sandbox developer console subscribes the
// app to the integration's event URL (DingTalk's check_url) and installs the cool app
// in a group, then renames it; the checklist turns green by itself (it polls); the
// group shows under its new title; members are added, one gets a link code, a binding
// is shown and unbound; a two-layer escalation policy is built with the form helper (an
// out-of-range wait is refused next to the field first); the usage chart is an SVG with
// the quota and reserve lines; an alert lists as an incident with its timeline; the
// template preview renders that recent alert, then the sample, with warnings; every
// checklist step is green; a dead letter is redriven and delivered; sign out ends the
// session (its copied cookie is refused). Refusals: a POST with the session cookie but
// no CSRF token (403 csrf_failed), a really expired session and a forged cookie (back to
// sign-in, each with its message). The page must run under its strict CSP with no
// violation. Screenshots, PC (1280×800) and mobile (390×844), go to
// tests/artifacts/console-*.png.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { createHash, createHmac, randomBytes } from "node:crypto";

const base = process.env.STACK_URL;
const adminKey = process.env.ADMIN_API_KEY;
const artifacts = process.env.ARTIFACTS || "tests/artifacts";
mkdirSync(artifacts, { recursive: true });
let passed = 0;
let failed = 0;

function check(name, ok, detail) {
  if (ok) { passed++; console.log(`ok - console: ${name}`); }
  else { failed++; console.log(`not ok - console: ${name}${detail ? ": " + detail : ""}`); }
}

// The new app as the DingTalk developer console would have it (the sandbox's corp).
const app = {
  app_key: "dingconsoletestapp01",
  app_secret: "console-test-secret-0001",
  corp_id: "dingsandboxcorp000000000000000001",
  agent_id: "3000000077",
  aes_key: "Cons0leTestAesKey0123456789abcdefghijklmnop".slice(0, 43),
  token: "consoletoken01",
};
const cid = "cidConsoleTestGroup0000001==";

// A console session token as the admin function signs it (README "Session"), expiring
// at `exp` (Unix seconds): with SESSION_SECRET the test makes a really expired one.
function sessionToken(exp) {
  const nonce = randomBytes(18).toString("base64url");
  const keyHash = createHash("sha256").update(adminKey).digest("hex");
  const sig = createHmac("sha256", process.env.SESSION_SECRET).update(`console|${exp}|${nonce}|${keyHash}`).digest("base64url");
  return `v1.${exp}.${nonce}.${sig}`;
}

// The admin API with the admin key (what a script does beside the console).
async function adminApi(method, path, body) {
  const r = await fetch(`${base}${path}`, { method, headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: await r.json().catch(() => ({})) };
}

// SQS on the local moto server (AWS JSON protocol), to put a message in the dead-letter queue.
async function sqs(action, body) {
  const r = await fetch(process.env.AWS_ENDPOINT_URL, { method: "POST", body: JSON.stringify(body), headers: {
    "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": `AmazonSQS.${action}`,
    Authorization: "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0" } });
  return { status: r.status, body: await r.json().catch(() => ({})) };
}

async function sandbox(path, body) {
  const r = await fetch(`${base}/sandbox/dingtalk-console${path}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json().catch(() => ({})) };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// Every console error (a CSP violation is one) is a failure of the page.
const pageErrors = [];
function watch(page, label) {
  page.on("console", (m) => { if (m.type() === "error" && !/401|403|Failed to load resource/.test(m.text())) pageErrors.push(`${label}: ${m.text()}`); });
  page.on("pageerror", (e) => pageErrors.push(`${label}: ${e.message}`));
  return page;
}
const checkState = (page, step) => page.getAttribute(`#checklist [data-step="${step}"]`, "data-ok");
async function signIn(page, hash = "") {
  await page.goto(`${base}/console${hash}`);
  await page.waitForSelector("#signin-form");
  await page.fill("#admin-key", adminKey);
  await page.click("#signin-submit");
  await page.waitForSelector("#nav a[data-page=integrations]");
}
async function open(page, pageName) {
  await page.click(`#nav a[data-page=${pageName}]`);
  await page.waitForFunction((p) => document.querySelector("main")?.getAttribute("data-page") === p, pageName);
}

let id = null;
let current = null;
try {
  const pc = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  const page = watch(await pc.newPage(), "pc");
  current = page;

  // The page is served with the strict CSP.
  const served = await page.goto(`${base}/console`);
  const csp = served.headers()["content-security-policy"] || "";
  check("the page is served with a strict CSP", /default-src 'none'/.test(csp) && /script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), csp);

  // A wrong admin key is refused.
  await page.waitForSelector("#signin-form");
  check("the page starts in the browser's language (en-US)", (await page.evaluate(() => document.documentElement.lang)) === "en-US");
  await page.fill("#admin-key", "not-the-admin-key");
  await page.click("#signin-submit");
  await page.waitForSelector("#signin-error:not([hidden])");
  check("a wrong admin key is refused", (await page.$("#nav:not([hidden])")) === null, await page.textContent("#signin-error"));

  // Sign in; nothing secret is kept in the browser.
  await page.fill("#admin-key", adminKey);
  await page.click("#signin-submit");
  await page.waitForSelector("#nav a[data-page=integrations]");
  const stored = await page.evaluate(() => JSON.stringify(Object.assign({}, localStorage)) + JSON.stringify(Object.assign({}, sessionStorage)) + document.cookie);
  check("signed in; neither the key nor the CSRF token is in storage or a script-readable cookie", !stored.includes(adminKey) && !/dtc_session/.test(stored), stored);

  // Add the integration: a bad aes_key is refused naming the field, then the real one.
  await page.click("#nav a[data-page=integrations]");
  await page.waitForSelector("#create-form");
  const fields = { name: "Console test team", corp_id: app.corp_id, agent_id: app.agent_id, client_id: app.app_key,
    client_secret: app.app_secret, aes_key: "too-short", token: app.token, timezone: "Asia/Shanghai" };
  for (const [k, v] of Object.entries(fields)) await page.fill(`#f-${k}`, v);
  await page.selectOption("#f-locale", "en-US");
  await page.click("#create-submit");
  await page.waitForSelector("#create-error:not([hidden])");
  check("a bad aes_key is refused, the field highlighted", (await page.getAttribute("#create-error", "data-field")) === "aes_key"
    && (await page.$("#f-aes_key.invalid")) !== null, await page.textContent("#create-error"));
  await page.fill("#f-aes_key", app.aes_key);
  await page.click("#create-submit");
  await page.waitForSelector("#ingest-token");
  const ingestToken = await page.inputValue("#ingest-token");
  check("the ingest token is shown once after create", /^dti_/.test(ingestToken), ingestToken);
  const robotUrl = await page.inputValue("#ingest-robot");
  check("the ingest URLs are shown beside it", robotUrl.includes("/robot/send?access_token=")
    && (await page.inputValue("#ingest-alerts")).endsWith("/alerts") && (await page.inputValue("#ingest-pagerduty")).endsWith("/pagerduty/v2/enqueue"), robotUrl);
  await page.screenshot({ path: `${artifacts}/console-created-pc.png` });

  // The setup checklist: not done yet.
  await page.click("#go-setup");
  await page.waitForSelector("#checklist[data-loaded=true]");
  id = decodeURIComponent(new URL(page.url()).hash.split("/")[1]);
  const before = { check_url: await checkState(page, "check_url"), cool_app: await checkState(page, "cool_app") };
  check("the checklist shows check_url and the cool app not done", before.check_url !== "true" && before.cool_app !== "true", JSON.stringify(before));
  const eventUrl = await page.inputValue("#url-event_subscription");
  check("the event subscription URL is shown with a copy button", eventUrl.endsWith(`/dingtalk/${id}/events`)
    && (await page.$(`#checklist [data-copy="${eventUrl}"]`)) !== null, eventUrl);
  check("the cool app and card callback URLs are shown", (await page.inputValue("#url-cool_app")).includes(`/dingtalk/${id}/app`)
    && (await page.inputValue("#url-card_callback")).includes(`/dingtalk/${id}/cards`));
  check("the outbound IP note is on the credentials step", ((await page.textContent("#outbound-ips")) || "").length > 0);
  await page.screenshot({ path: `${artifacts}/console-setup-before-pc.png`, fullPage: true });

  // In the (sandbox) DingTalk developer console: save the event URL (check_url),
  // release, install the cool app in a new group, rename the group.
  const subscribed = await sandbox("/apps", { app_key: app.app_key, app_secret: app.app_secret, corp_id: app.corp_id,
    aes_key: app.aes_key, token: app.token, event_url: eventUrl });
  check("the sandbox developer console verified the event URL (check_url)", subscribed.status === 200 && subscribed.body.subscribed === true, JSON.stringify(subscribed));
  const installed = await sandbox(`/apps/${app.app_key}/install`, { cid, title: "Console test group" });
  check("the cool app is installed in a group", installed.status === 200, JSON.stringify(installed));
  const renamed = await sandbox(`/apps/${app.app_key}/rename`, { cid, title: "支付值班群" });
  check("the group is renamed", renamed.status === 200, JSON.stringify(renamed));

  // The checklist turns green by itself (it polls every 3 s).
  await page.waitForFunction(() => ["check_url", "cool_app"].every((s) =>
    document.querySelector(`#checklist [data-step="${s}"]`)?.getAttribute("data-ok") === "true"), null, { timeout: 20000 });
  check("check_url and the cool app turn green", true);
  await page.click("#verify");
  await page.waitForSelector("#verify-result:not([hidden])");
  await page.waitForFunction(() => ["credentials", "card_callback"].every((s) =>
    document.querySelector(`#checklist [data-step="${s}"]`)?.getAttribute("data-ok") === "true"), null, { timeout: 10000 })
    .then(() => check("after Verify the credentials and card callback are green", true),
      async () => check("after Verify the credentials and card callback are green", false, await page.textContent("#checklist")));
  const events = await page.$$eval("#checklist [data-step=events] li.seen", (n) => n.map((x) => x.getAttribute("data-event")));
  check("the install and rename events show as received", events.includes("im_cool_app_install") && events.includes("chat_update_title"), JSON.stringify(events));
  await page.screenshot({ path: `${artifacts}/console-setup-installed-pc.png`, fullPage: true });

  // Group chats: the group under its new title.
  await open(page, "chats");
  await page.waitForSelector(`[data-chat="${cid}"]`);
  check("the group chat shows installed under its new title", (await page.textContent(`[data-chat="${cid}"]`)).includes("支付值班群")
    && (await page.getAttribute(`[data-chat="${cid}"]`, "data-status")) === "installed");

  // Members: add one, create a link code.
  await open(page, "members");
  await page.waitForSelector("#member-form");
  await page.fill("#m-email", "oncall@corp.example");
  await page.fill("#m-name", "On Call");
  await page.click("#member-add");
  await page.waitForSelector('[data-member="oncall@corp.example"]');
  await page.fill("#m-email", "lead@corp.example");
  await page.fill("#m-name", "Team Lead");
  await page.click("#member-add");
  await page.waitForSelector('[data-member="lead@corp.example"]');
  check("members are added", true);
  await page.click('[data-link="oncall@corp.example"]');
  await page.waitForSelector("#link-code");
  const code = await page.textContent("#link-code");
  check("a link code is shown", /^[A-Z2-9]{8}$/.test(code), code);
  // A binding made by a script shows here, and is unbound from the page.
  const bound = await adminApi("PUT", `/api/integrations/${id}/bindings/bob0002`, { member: "lead@corp.example" });
  check("a script binds a DingTalk user", bound.status === 200, JSON.stringify(bound));
  await open(page, "integrations");
  await open(page, "members");
  await page.waitForSelector('#binding-list [data-unbind="bob0002"]');
  page.once("dialog", (d) => d.accept());
  await page.click('#binding-list [data-unbind="bob0002"]');
  await page.waitForFunction(() => !document.querySelector('#binding-list [data-unbind="bob0002"]') && document.querySelector("#member-list"));
  const afterUnbind = await adminApi("GET", `/api/integrations/${id}/bindings`);
  check("unbind from the page removes the binding", afterUnbind.status === 200 && !JSON.stringify(afterUnbind.body).includes("bob0002"), JSON.stringify(afterUnbind));

  // Escalation: a layer waiting 5 s is refused next to the field; then two layers
  // built with the helper are saved.
  await open(page, "escalation");
  await page.waitForSelector("#policy-json");
  await page.fill("#policy-json", JSON.stringify({ name: "console-two-layers", layers: [{ targets: { chats: [cid] }, escalate_after_secs: 5 }] }));
  await page.click("#policy-save");
  await page.waitForSelector("#policy-error:not([hidden])");
  const field = await page.getAttribute("#policy-error", "data-field");
  check("an out-of-range wait is refused, the field named", /escalate_after_secs/.test(field || ""), `${field}: ${await page.textContent("#policy-error")}`);
  await page.fill("#policy-json", JSON.stringify({ name: "console-two-layers", layers: [] }));
  await page.selectOption("#ph-chats", [cid]);
  await page.selectOption("#ph-members", ["oncall@corp.example"]);
  await page.fill("#ph-after", "300");
  await page.click("#ph-add-layer");
  await page.selectOption("#ph-chats", []);
  await page.selectOption("#ph-members", ["lead@corp.example"]);
  await page.fill("#ph-after", "600");
  await page.click("#ph-add-layer");
  const built = JSON.parse(await page.inputValue("#policy-json"));
  check("the helper builds two layers", built.layers.length === 2 && built.layers[1].targets.members[0] === "lead@corp.example", JSON.stringify(built));
  await page.click("#policy-save");
  await page.waitForFunction(() => /console-two-layers/.test(document.querySelector("#policy-list")?.textContent || ""), null, { timeout: 10000 });
  const policyRow = await page.textContent("#policy-list");
  check("the two-layer policy is saved", policyRow.includes("console-two-layers") && policyRow.includes("2 layers"), policyRow);

  // Schedules: a daily rotation of the two members from JSON, its week of shifts as
  // an SVG, then an override (local times in the schedule's zone, Shanghai).
  await open(page, "schedules");
  await page.waitForSelector("#schedule-json");
  const started = new Date(Date.now() - 2 * 86400e3).toISOString().slice(0, 10) + "T09:00";
  await page.fill("#schedule-json", JSON.stringify({ name: "console-primary", timezone: "Asia/Shanghai",
    rotations: [{ members: ["oncall@corp.example", "lead@corp.example"], start: started, shift: { days: 1 } }] }));
  await page.click("#schedule-create");
  await page.waitForSelector("svg.weekview g.shift");
  check("a schedule is created and its week of shifts drawn", (await page.$$("svg.weekview g.shift")).length >= 2);
  const shanghai = (ms) => new Date(Date.now() + 8 * 3600e3 + ms).toISOString().slice(0, 16);
  await page.selectOption("#o-member", "lead@corp.example");
  await page.fill("#o-start", shanghai(3600e3));
  await page.fill("#o-end", shanghai(3 * 3600e3));
  await page.click("#override-add");
  await page.waitForSelector("#override-list [data-override]");
  check("an override is added", (await page.textContent("#override-list")).includes("lead@corp.example"));
  await page.screenshot({ path: `${artifacts}/console-schedules-pc.png`, fullPage: true });

  // Usage: an SVG chart with the quota and reserve lines.
  await open(page, "usage");
  await page.waitForSelector("#usage-chart");
  check("the usage chart is an SVG with quota and reserve lines", (await page.$("svg#usage-chart line.quota")) !== null
    && (await page.$("svg#usage-chart line.reserve")) !== null && (await page.$("svg#usage-chart polyline.actual")) !== null);
  await page.screenshot({ path: `${artifacts}/console-usage-pc.png`, fullPage: true });

  // An alert sent with the ingest token shown at creation opens an incident; the
  // incidents page lists it, the filters work, a click shows its timeline.
  const alert = { version: 1, alert: { key: "console-test", status: "firing", severity: "critical", title: "Console test alert",
    labels: { service: "payments" }, source: "console-test" }, targets: { chats: [cid] } };
  const ingest = await fetch(`${base}/api/integrations/${id}/alerts`, { method: "POST",
    headers: { Authorization: `Bearer ${ingestToken}`, "Content-Type": "application/json" }, body: JSON.stringify(alert) });
  check("an alert is accepted with the ingest token shown once", ingest.status === 202, String(ingest.status));
  await open(page, "incidents");
  const end = Date.now() + 15000;
  while (!(await page.$("#incident-list [data-incident]")) && Date.now() < end) {
    await page.waitForTimeout(500);
    await page.click("#incident-filters button");
  }
  await page.selectOption("#filter-severity", "warning");
  await page.waitForSelector('#incident-list[data-query="status=&severity=warning"]');
  const warningsOnly = await page.$$("#incident-list [data-incident]");
  await page.selectOption("#filter-severity", "critical");
  await page.waitForSelector('#incident-list[data-query="status=&severity=critical"] [data-incident]');
  check("the incident is listed; the severity filter keeps only its severity", warningsOnly.length === 0);
  await page.click("#incident-list [data-incident]");
  await page.waitForSelector("#timeline li");
  check("a click shows the incident's timeline", (await page.textContent("#incident-title")).includes("Console test alert")
    && (await page.$$("#timeline li")).length >= 1);
  // Templates: the live preview renders the integration's recent alert (the one just
  // sent), then the sample alert; both with warnings.
  await open(page, "templates");
  await page.waitForSelector("#tpl-body");
  await page.fill("#tpl-title", "{{ alert.severity | upper }} · {{ alert.title }}");
  await page.fill("#tpl-body", "Owner @alice, since {{ incident.started_at }}");
  await page.waitForFunction(() => /CRITICAL · Console test alert/.test(document.querySelector('#preview[data-source="recent"] .preview-title')?.textContent || ""), null, { timeout: 10000 });
  const recentSource = await page.getAttribute("#preview .preview-item", "data-source");
  const warnings = await page.$$eval("#preview .preview-warnings li", (n) => n.map((x) => x.textContent));
  check("the template preview renders the recent alert, with warnings", recentSource !== "given" && warnings.some((w) => /@alice/.test(w)), `${recentSource} ${JSON.stringify(warnings)}`);
  await page.screenshot({ path: `${artifacts}/console-templates-pc.png`, fullPage: true });
  await page.selectOption("#tpl-source", "given");
  await page.waitForFunction(() => /CRITICAL · Checkout 5xx above 5%/.test(document.querySelector('#preview[data-source="given"] .preview-title')?.textContent || ""), null, { timeout: 10000 });
  check("the preview switches to the sample alert", true);

  // A second group installs and removes the cool app (the third event), and a
  // DingTalk user is bound: every step of the checklist is green.
  await sandbox(`/apps/${app.app_key}/install`, { cid: "cidConsoleTestGroup0000002==", title: "Other" });
  const uninstalled = await sandbox(`/apps/${app.app_key}/uninstall`, { cid: "cidConsoleTestGroup0000002==" });
  check("the cool app is uninstalled from a second group", uninstalled.status === 200, JSON.stringify(uninstalled));
  const member = await adminApi("PUT", `/api/integrations/${id}/bindings/alice0001`, { member: "oncall@corp.example" });
  check("the on-call member is associated", member.status === 200, JSON.stringify(member));
  // Back on the checklist once an alert went out: the robot permission is known too, and
  // every step is green.
  await open(page, "setup");
  await page.waitForSelector("#checklist[data-loaded=true]");
  await page.waitForFunction(() => document.querySelector('#checklist [data-step="permissions"]')?.getAttribute("data-ok") === "true", null, { timeout: 10000 })
    .then(() => check("after the first alert the permissions step is green", true),
      async () => check("after the first alert the permissions step is green", false, await page.textContent('#checklist [data-step="permissions"]')));
  await page.waitForFunction(() => [...document.querySelectorAll("#checklist [data-step]")].every((li) => li.getAttribute("data-ok") === "true"), null, { timeout: 10000 })
    .then(() => check("every checklist step is green", true),
      async () => check("every checklist step is green", false, await page.$$eval("#checklist [data-step]", (n) => n.map((x) => `${x.getAttribute("data-step")}=${x.getAttribute("data-ok")}`).join(" "))));
  await page.waitForSelector("#toast", { state: "hidden" });
  await page.screenshot({ path: `${artifacts}/console-setup-pc.png`, fullPage: true });
  // A dead letter (an alert job for this integration) is listed, redriven from the
  // page, and then delivered: its incident shows up.
  const dlq = await sqs("GetQueueUrl", { QueueName: "dingtalk-alerts-local-dlq" });
  const job = { version: 1, integration_id: id, alert: { key: "console-dead-letter", status: "firing", severity: "warning",
    title: "Redriven dead letter", source: "console-test" }, targets: { chats: [cid] } };
  const put = await sqs("SendMessage", { QueueUrl: dlq.body.QueueUrl, MessageBody: JSON.stringify(job) });
  check("a message is put in the dead-letter queue", put.status === 200 && put.body.MessageId, JSON.stringify(put));
  await open(page, "dlq");
  await page.waitForSelector(`#dlq-list [data-message="${put.body.MessageId}"]`, { timeout: 10000 });
  await page.check(`#dlq-list [data-message="${put.body.MessageId}"] input.pick`);
  await page.click("#redrive-selected");
  await page.waitForSelector('#dlq-result[data-redriven="1"]', { timeout: 10000 });
  check("the dead letter is redriven from the page", true);
  const deadline = Date.now() + 20000;
  let redriven = [];
  while (!redriven.length && Date.now() < deadline) {
    const list = await adminApi("GET", `/api/integrations/${id}/incidents`);
    redriven = (Array.isArray(list.body) ? list.body : []).filter((i) => i.title === "Redriven dead letter");
    if (!redriven.length) await page.waitForTimeout(500);
  }
  check("the redriven alert is delivered (its incident exists)", redriven.length === 1);

  // CSRF: the cookie alone does not make a change.
  const session = (await pc.cookies(base)).find((c) => c.name === "dtc_session");
  check("the session cookie is HttpOnly and SameSite=Strict", session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(session));
  const cookieHeader = { Cookie: `dtc_session=${session?.value}` };
  const forged = await fetch(`${base}/api/integrations`, { method: "POST", headers: { ...cookieHeader, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "csrf" }) });
  const forgedBody = await forged.json().catch(() => ({}));
  check("a POST with the session cookie but no CSRF token is refused (403 csrf_failed)", forged.status === 403 && forgedBody.error?.code === "csrf_failed",
    `${forged.status} ${JSON.stringify(forgedBody)}`);
  const read = await fetch(`${base}/api/integrations/${id}`, { headers: cookieHeader });
  check("the session cookie alone reads", read.status === 200, String(read.status));

  // Switch language: the same page in Chinese.
  await page.click("#lang-switch");
  await page.waitForFunction(() => document.documentElement.lang === "zh-CN" && /死信/.test(document.querySelector("#nav")?.textContent || ""));
  check("switching language redraws in Chinese", true);
  await page.click("#lang-switch");
  await page.waitForFunction(() => document.documentElement.lang === "en-US");

  // Sign out: back to sign-in, the cookie cleared, and the session ended on the
  // server: a copy of the cookie is refused.
  await page.click("#signout");
  await page.waitForSelector("#signin-form");
  const left = (await pc.cookies(base)).filter((c) => c.name === "dtc_session" && c.value);
  await page.reload();
  await page.waitForSelector("#signin-form");
  check("sign out clears the session cookie; a reload shows sign-in", left.length === 0, JSON.stringify(left));
  const copied = await fetch(`${base}/api/integrations`, { headers: cookieHeader });
  const copiedBody = await copied.json().catch(() => ({}));
  check("a copy of the signed-out cookie is refused (401 signed_out)", copied.status === 401 && copiedBody.error?.code === "signed_out",
    `${copied.status} ${JSON.stringify(copiedBody)}`);

  // A really expired session (signed right, past its expiry): the next call sends the
  // person to sign-in, saying the session expired.
  await signIn(page, `#/${encodeURIComponent(id)}/setup`);
  await page.waitForSelector("#checklist");
  await pc.clearCookies();
  await pc.addCookies([{ name: "dtc_session", value: sessionToken(Math.floor(Date.now() / 1000) - 60), url: base }]);
  await page.click("#nav a[data-page=members]");
  await page.waitForSelector("#signin-form #signin-message");
  const expiredText = await page.textContent("#signin-message");
  check("an expired session sends the person back to sign-in, saying it expired", /expired/.test(expiredText), expiredText);
  // A forged cookie: sign-in, saying the session is not valid.
  await signIn(page, `#/${encodeURIComponent(id)}/setup`);
  await page.waitForSelector("#checklist");
  await pc.clearCookies();
  await pc.addCookies([{ name: "dtc_session", value: "v1.9999999999.forged.AAAA", url: base }]);
  await page.click("#nav a[data-page=members]");
  await page.waitForSelector("#signin-form #signin-message");
  const forgedText = await page.textContent("#signin-message");
  check("a forged session sends the person back to sign-in, saying it is not valid", /not valid/.test(forgedText), forgedText);
  await page.goto(`${base}/console`);
  await page.waitForSelector("#signin-form");
  check("a reload with a forged session cookie shows sign-in", (await page.$("#nav:not([hidden])")) === null);

  // Mobile (390×844), in Chinese: the checklist and the usage page.
  const mobile = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: "zh-CN" });
  const phone = watch(await mobile.newPage(), "mobile");
  current = phone;
  await signIn(phone, `#/${encodeURIComponent(id)}/setup`);
  check("the phone starts in Chinese", (await phone.evaluate(() => document.documentElement.lang)) === "zh-CN");
  await phone.waitForSelector('#checklist[data-loaded=true] [data-step="cool_app"][data-ok="true"]');
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check("the checklist fits a phone's width", overflow <= 1, `${overflow}px too wide`);
  await phone.screenshot({ path: `${artifacts}/console-setup-mobile.png`, fullPage: true });
  await phone.goto(`${base}/console#/${encodeURIComponent(id)}/usage`);
  await phone.waitForSelector("#usage-chart");
  await phone.screenshot({ path: `${artifacts}/console-usage-mobile.png`, fullPage: true });
  check("the usage page renders on a phone", true);
} catch (err) {
  check("console flow", false, err.stack || String(err));
  if (current) await current.screenshot({ path: `${artifacts}/console-failure.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
check("no console error or CSP violation in the page", pageErrors.length === 0, pageErrors.join(" | "));
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
