/**
 * Where outbound requests go. In sandbox mode, requests to the sandbox origin are handed to
 * the SandboxHost Durable Object (the built-in fakes) without leaving the worker, so the
 * sandbox works on any port and in tests; everything else goes to the network.
 */
import type { Config } from "../config";
import { SANDBOX_ORIGIN } from "../sandbox/credentials";
import type { Transport } from "./http-client";

export function sandboxHost(env: Env): DurableObjectStub {
  return env.SANDBOX_HOST.get(env.SANDBOX_HOST.idFromName("sandbox"));
}

export function createTransport(env: Env, config: Config): Transport {
  if (!config.sandbox) return (request) => fetch(request);
  const host = sandboxHost(env);
  return (request) => (request.url.startsWith(`${SANDBOX_ORIGIN}/`) ? host.fetch(request) : fetch(request));
}
