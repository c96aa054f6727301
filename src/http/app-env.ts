/** Hono's environment for every route module: the Worker's bindings. */
export type AppEnv = { Bindings: Env };
