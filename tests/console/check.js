// Drives the admin console in Chromium (Debian's, through playwright-core).
// Run by tests/it/console.rs in two phases:
//   node check.js import BASE PASSWORD TENANT CSV_FILE
//   node check.js face   BASE PASSWORD TENANT USER_ID SCREENSHOT
// Each prints one JSON line of what it saw; any failure exits non-zero.
"use strict";

const { chromium } = require("playwright-core");

const [phase, base, password, tenant, arg1, arg2] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

async function login(page) {
  // The session check answers late, as on a loaded server: a password
  // typed meanwhile must survive its answer.
  const late = "**/admin/api/session";
  await page.route(late, async (route) => {
    await new Promise((r) => setTimeout(r, 1000));
    // (Already let through if unrouted meanwhile.)
    await route.continue().catch(() => {});
  });
  await page.goto(`${base}/admin`);
  await page.fill("#password", password);
  await page.click("#login");
  await page.waitForSelector("#nav a");
  await page.unroute(late);
}

async function main() {
  const browser = await chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  let page;
  try {
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // A wrong password is refused.
    await page.goto(`${base}/admin`);
    await page.fill("#password", "not the password at all");
    await page.click("#login");
    await page.waitForSelector("#login-error:not(:empty)");
    const refused = await page.textContent("#login-error");

    await login(page);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "facehub_admin");
    if (!session || !session.httpOnly || session.sameSite !== "Strict") {
      throw new Error(`session cookie is not HttpOnly + SameSite=Strict: ${JSON.stringify(session)}`);
    }
    // Scripts on the page cannot read it.
    const visible = await page.evaluate(() => document.cookie);

    const t = encodeURIComponent(tenant);
    if (phase === "import") {
      // A slow answer for a view already left must not replace the view
      // now shown: the tenant list is held back a second while we move on.
      await page.route("**/admin/api/tenants", async (r) => {
        await new Promise((ok) => setTimeout(ok, 1000));
        await r.continue();
      });
      await page.goto(`${base}/admin#/`);
      await page.goto(`${base}/admin#/t/${t}/people`);
      await page.waitForSelector("#csv");
      await page.waitForTimeout(1500);
      if (!(await page.$("#csv"))) {
        throw new Error("a late answer for the tenant list replaced the people view");
      }
      await page.unroute("**/admin/api/tenants");
      await page.setInputFiles("#csv", arg1);
      await page.click("#import");
      await page.waitForFunction(() => /^imported (\d+) of \1 rows/.test(document.getElementById("import-status").textContent));
      const status = await page.textContent("#import-status");
      await page.waitForSelector("#people tr[data-user-id]");
      const rows = await page.$$eval("#people tr[data-user-id]", (rs) => rs.map((r) => r.dataset.userId));
      console.log(JSON.stringify({ refused, visible, status, rows, errors }));
    } else if (phase === "face") {
      await page.goto(`${base}/admin#/t/${t}/people`);
      await page.waitForSelector(`#people tr[data-user-id="${arg1}"]`);
      await page.click(`#people tr[data-user-id="${arg1}"]`);
      await page.waitForSelector("#person[data-ready]");
      const box = JSON.parse(await page.getAttribute("#face-canvas", "data-box"));
      // The box is drawn: the pixel on its top edge, mid-way, is the stroke colour.
      const edge = await page.$eval("#face-canvas", (c, b) => {
        const [x, y, w] = b;
        return Array.from(c.getContext("2d").getImageData(Math.round(x + w / 2), Math.round(y), 1, 1).data);
      }, box);
      const crop = await page.$eval("#crop-img", (i) => [i.naturalWidth, i.naturalHeight]);
      const templates = await page.$$eval("#templates tr", (rs) => rs.length - 1).catch(() => 0);
      // The people page, for the CI artifact.
      await page.goto(`${base}/admin#/t/${t}/people`);
      await page.waitForSelector("#people tr[data-user-id]");
      await page.screenshot({ path: arg2, fullPage: true });
      console.log(JSON.stringify({ refused, visible, box, edge, crop, templates, errors }));
    } else {
      throw new Error(`unknown phase ${phase}`);
    }
  } catch (e) {
    // What the page showed, to tell a server refusal from a page bug.
    if (page) console.error("page: " + (await page.textContent("#main").catch(() => "?")));
    throw e;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
