// Node-only: serves a fetch-style handler (e.g. a sandbox fake) as a real local HTTP server, so
// end-to-end tests and benchmarks can point the Worker's outbound calls at it.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FakeService } from "../../src/sandbox/fake-service";

export interface ServedFetch {
  /** Base URL without a trailing slash, e.g. "http://127.0.0.1:53211". */
  url: string;
  close(): Promise<void>;
}

export async function serveFetch(handler: (req: Request) => Promise<Response>, port = 0): Promise<ServedFetch> {
  const server = createServer((req, res) => {
    void respond(handler, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port: boundPort } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${boundPort}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        // Keep-alive sockets would otherwise hold close() open until they time out.
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** Adapts a fake to a plain handler: the vendor path is the request's pathname + search. */
export function mountFake(service: FakeService<unknown>): (req: Request) => Promise<Response> {
  return (req) => {
    const url = new URL(req.url);
    return service.handle(req, url.pathname + url.search);
  };
}

async function respond(
  handler: (req: Request) => Promise<Response>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  try {
    const response = await handler(await toRequest(req));
    await writeResponse(response, res);
  } catch (err) {
    if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" });
    res.end(`serveFetch handler failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function toRequest(req: IncomingMessage): Promise<Request> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  const body = hasBody ? await readAll(req) : undefined;
  const url = `http://${req.headers.host ?? "127.0.0.1"}${req.url ?? "/"}`;
  return new Request(url, { method, headers, body: body && body.length > 0 ? body : undefined });
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  const body = response.body === null ? null : Buffer.from(await response.arrayBuffer());
  res.writeHead(response.status, response.statusText || undefined, headers);
  res.end(body ?? undefined);
}
