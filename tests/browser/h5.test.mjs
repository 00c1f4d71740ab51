// Acceptance of the H5 app in headless Chromium, against the running local stack
// (the sandbox stands in for DingTalk and its JSAPI):
// first visit → link-code association → incident list → Acknowledge → the incident
// is acknowledged and its record names the member; a second visit goes straight to
// the list; "who is on call" shows the demo schedule. Saves screenshots of the mobile and PC layouts.
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

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const mobile = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await mobile.newPage();
  // Outside DingTalk (no JSAPI identity): a clear message, not a blank page.
  await page.goto(base + appUrl);
  await page.waitForSelector("#outside");
  check("outside DingTalk explains how to open the app", (await page.textContent("#outside")).includes("inside DingTalk"));

  // First visit inside DingTalk (the sandbox's "Open the app as Bob").
  await page.goto(`${base}/sandbox/as/dave0004?next=${encodeURIComponent(appUrl)}`);
  await page.waitForSelector("#link-code");
  await page.screenshot({ path: `${artifacts}/h5-mobile-associate.png`, fullPage: true });
  await page.fill("#link-code", code);
  await page.click("#associate-submit");
  await page.waitForSelector(`[data-incident="${incident.id}"]`);
  check("after association the list shows the incident", true);
  check("header names the member", (await page.textContent("#who")).includes("robert@corp.example"));
  await page.screenshot({ path: `${artifacts}/h5-mobile-list.png`, fullPage: true });

  await page.click(`[data-incident="${incident.id}"]`);
  await page.waitForSelector("#act-ack");
  await page.screenshot({ path: `${artifacts}/h5-mobile-detail.png`, fullPage: true });
  const facts = await page.textContent("#incident");
  check("the detail shows where the escalation stands", facts.includes("layer 1 of 2, next escalation at"), facts);
  check("Escalate and Reassign are offered", (await page.$("#act-escalate")) !== null && (await page.$("#act-reassign")) !== null);
  await page.click("#act-ack");
  await page.waitForFunction(() => document.querySelector("#incident [data-testid=status]")?.textContent === "acknowledged");
  check("page shows the incident acknowledged", true);
  await page.screenshot({ path: `${artifacts}/h5-mobile-acknowledged.png`, fullPage: true });

  const detail = (await admin("GET", `/api/incidents/${incident.id}`)).body;
  check("incident acknowledged in the store", detail.status === "acknowledged", detail.status);
  const record = (detail.records || []).find((r) => r.kind === "acknowledged");
  check("its record names the member", record && record.actor.includes("Robert") && record.actor.includes("robert@corp.example"), JSON.stringify(record));

  // Second visit: straight to the list, no association step.
  const again = await mobile.newPage();
  await again.goto(base + appUrl);
  await again.waitForSelector("#incident-list, #empty");
  check("second visit goes straight to the list", (await again.$("#link-code")) === null);

  // Who is on call: the demo schedule with its current person, and my next shifts.
  await again.click("#open-oncall");
  await again.waitForSelector("#oncall-list");
  const board = await again.textContent("#oncall-list");
  check("who is on call shows the demo schedule and its person", board.includes("demo-oncall") && /On call now: (Carol|Bob)/.test(board), board);
  check("my next shifts says Robert has none", (await again.$("#no-shifts")) !== null);
  await again.screenshot({ path: `${artifacts}/h5-mobile-oncall.png`, fullPage: true });

  // Alert buttons open the incident with the action ready to confirm.
  await again.goto(`${base}${appUrl}?incident=${incident.id}&action=resolve`);
  await again.waitForSelector("#confirm-action");
  check("a message button opens the action ready to confirm", (await again.textContent("#confirm")).includes("Resolve"));

  // PC layout.
  const pc = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const desk = await pc.newPage();
  await desk.goto(`${base}/sandbox/as/dave0004?next=${encodeURIComponent(appUrl)}`);
  await desk.waitForSelector("#incident-list, #empty");
  await desk.screenshot({ path: `${artifacts}/h5-pc-list.png` });
  await desk.goto(`${base}${appUrl}?incident=${incident.id}`);
  await desk.waitForSelector("#timeline");
  await desk.screenshot({ path: `${artifacts}/h5-pc-detail.png` });
  check("PC layout renders the detail with its timeline", (await desk.$$("#timeline li")).length >= 2);
  const description = await desk.$eval("#incident-description", (d) => ({
    strong: d.querySelector("strong")?.textContent, code: d.querySelector("code")?.textContent,
    link: d.querySelector("a")?.getAttribute("href"), items: d.querySelectorAll("li").length,
    img: d.querySelectorAll("img").length, text: d.textContent }));
  check("the description renders its markdown, and HTML in it stays text",
    description.strong === "7.2%" && description.code === "POST /pay" && description.link === "https://grafana.example.com/d/pay"
      && description.items === 2 && description.img === 0 && description.text.includes("<img src=x onerror=alert(1)>"),
    JSON.stringify(description));
} catch (err) {
  check("browser flow", false, err.stack || String(err));
} finally {
  await browser.close();
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
