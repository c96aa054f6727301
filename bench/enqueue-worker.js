// The headline baseline for the ingest ratio: the least any ingest that queues before it answers
// must do (receive the whole body, make one sendBatch, answer 202), served by Miniflare exactly
// like the real worker. The bare worker's ratio includes the queue broker's cost, which no
// queueing design can avoid; the ratio to this one is what Syncwire's own work costs
// (signature check, parsing, building the message).
let consumed = 0;

export default {
  async fetch(request, env) {
    // The bench polls this between rounds, as it polls the real worker's D1, to let the queue drain.
    if (request.method === "GET") return Response.json({ consumed });
    const text = await request.text();
    await env.EVENTS.sendBatch([{ body: { text }, contentType: "json" }]);
    return new Response('{"eventIds":[]}', { status: 202, headers: { "content-type": "application/json" } });
  },
  // Acking keeps the local queue from piling up (it refuses floods of ~10,000 messages); the real
  // worker's consumer runs on the same workerd thread too, so this one's cost is fair to count.
  async queue(batch) {
    batch.ackAll();
    consumed += batch.messages.length;
  },
};
