// Shared by the JavaScript serve tests: start `illada serve` on a free port and the check
// helpers. The server is killed when the test process exits, also when a check fails.
import { spawn } from "node:child_process";

export const fail = (what) => {
  console.error("FAIL: " + what);
  process.exit(1);
};

export const check = (cond, what) => {
  if (!cond) fail(what);
};

// Runs `BIN serve --model MODEL --port 0 --quiet ...extra`; resolves to { server, port }.
export async function startServer(bin, model, extra) {
  const server = spawn(bin, ["serve", "--model", model, "--port", "0", ...extra, "--quiet"],
                       { stdio: ["ignore", "ignore", "pipe"] });
  process.on("exit", () => server.kill("SIGKILL"));
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start: " + log)), 60000);
    server.stderr.on("data", (d) => {
      log += d.toString();
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ server, port: Number(m[1]) });
      }
    });
    server.on("exit", (code) => reject(new Error(`server exited (${code}): ${log}`)));
  }).catch((e) => fail(e.message));
}
