// Opens the API's /ui dashboard in headless Chromium, enters the admin token, opens the first
// job's timeline, saves a screenshot, and prints what the page shows as JSON.
//   node ui.mjs <API base URL> <admin token> <screenshot path>
import { launch } from "./chromium.mjs";

const [api, token, shot] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on("console", (m) => console.error(`console.${m.type()}: ${m.text()}`));
  await page.goto(`${api}/ui`);
  await page.fill("#token", token);
  await page.click("#login button");
  await page.waitForSelector("body[data-loaded=true]", { timeout: 60_000 });
  await page.click("#jobs tbody tr:first-child button");
  await page.waitForSelector("#timeline tbody tr", { timeout: 60_000 });
  const rows = (sel) => page.$$eval(`${sel} tbody tr`, (trs) =>
    trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
  const result = {
    counters: await rows("#counters"),
    fleet: await rows("#fleet"),
    jobs: await rows("#jobs"),
    timeline: await rows("#timeline"),
    error: await page.textContent("#error"),
  };
  // Filters: a file that matches nothing leaves no job shown.
  await page.fill("#match", "no-such-file");
  await page.waitForFunction(() => document.querySelectorAll("#jobs tbody tr").length === 0);
  await page.fill("#match", "");
  await page.waitForSelector("#jobs tbody tr");
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
