// Headless Chromium for the end-to-end tests (Debian's chromium, driven by playwright-core),
// kept to loopback.
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      // Root in a container: no user namespaces for Chromium's sandbox.
      "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
      // Loopback only: no host name is resolved (the tests' servers are IP literals), and none
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
}
