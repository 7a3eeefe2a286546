// Opens page.html (served by the test from another origin than the API) in headless Chromium and
// prints what igv.js loaded through the API's htsget endpoints, as JSON.
//   node load.mjs <page URL>
import { chromium } from "playwright-core";

const [pageUrl] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    // Root in a container: no user namespaces for Chromium's sandbox.
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    // Loopback only: no host name is resolved (the test's servers are IP literals), and none
    // of Chromium's own services (secure DNS probes, updates, metrics) reach out.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE 127.0.0.2",
    "--disable-features=DnsOverHttps,AsyncDns,NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
    "--no-pings", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--metrics-recording-only", "--safebrowsing-disable-auto-update", "--disable-sync",
    "--no-first-run", "--disable-breakpad",
    // What is left (strace -f -e trace=connect): the network service's IPv6 reachability
    // check, a UDP socket connect() to 2001:4860:4860::8888:443 that sends no packet (and in
    // the tests' namespace fails with ENETUNREACH). No flag of this Chromium turns it off.
  ],
});
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
