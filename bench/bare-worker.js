// The first baseline for the ingest ratio: a worker that does the least any webhook endpoint must
// do (receive the whole body, answer 202 with a small JSON body), served by Miniflare exactly like
// the real worker. Whatever the real worker costs above this is Syncwire's own work plus the local
// queue's (see enqueue-worker.js, the baseline that pays the queue too), not workerd's entry costs.
export default {
  async fetch(request) {
    await request.arrayBuffer();
    return new Response('{"eventIds":[]}', { status: 202, headers: { "content-type": "application/json" } });
  },
};
