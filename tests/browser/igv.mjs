// Opens page.html (served by the test from another origin than the API) in headless Chromium and
// prints what igv.js loaded through the API's htsget endpoints, as JSON.
//   node igv.mjs <page URL>
import { launch } from "./chromium.mjs";

const [pageUrl] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`console.${m.type()}: ${m.text()}`));
  page.on("requestfailed", (r) => console.error(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  await page.goto(pageUrl);
  const handle = await page.waitForFunction(() => window.igvResult, null, { timeout: 120_000 });
  console.log(JSON.stringify(await handle.jsonValue()));
} finally {
  await browser.close();
}
