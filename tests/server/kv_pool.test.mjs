// The paged KV pool in the server (`--cache-mb`): a budget below one block is refused at start-up;
// with room for one request's blocks, four concurrent requests all complete (the others wait for
// blocks, counted in /metrics), and a request that could never fit is a 503 kv_cache_too_small.
import { assert, main, postJson, startServer, GREEDY } from './lib.mjs';

main('kv_pool', 120, async () => {
  let blockMiB = 0;
  try {
    const s = await startServer(['--parallel', '4', '--ctx', '1024', '--cache-mb', '0.0001']);
    await s.stop();
    assert.fail('a cache smaller than one block was accepted');
  } catch (e) {
    const m = String(e.message).match(/holds no KV block \(one block of 128 positions is ([0-9.]+) MiB/);
    assert.ok(m, `the start-up error names the block size: ${e.message}`);
    blockMiB = Number(m[1]);
  }
  // 3.5 blocks: a request of up to 128 positions may need its block + 1 spare, so one runs at a time.
  const srv = await startServer(['--parallel', '4', '--ctx', '1024', '--cache-mb', String(3.5 * blockMiB)]);
  try {
    const body = (i, n) => ({ model: 'm', prompt: `request ${i}`, max_tokens: n, ...GREEDY });
    const big = await postJson(`${srv.url}/v1/completions`, body(0, 500));
    assert.equal(big.status, 503, big.text);
    assert.equal(big.json.error.code, 'kv_cache_too_small');
    assert.match(big.json.error.message, /max_tokens/);
    const rs = await Promise.all([1, 2, 3, 4].map((i) => postJson(`${srv.url}/v1/completions`, body(i, 60))));
    for (const r of rs) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.usage.completion_tokens, 60);
    }
    const m = await (await fetch(`${srv.url}/metrics`)).text();
    const gauge = (name) => Number(m.match(new RegExp(`^${name} (\\d+)`, 'm'))?.[1]);
    assert.equal(gauge('modu_kv_cache_blocks'), 3);
    assert.ok(gauge('modu_kv_cache_memory_waits') > 0, 'requests waited for blocks');
    assert.ok(gauge('modu_kv_cache_free_blocks') <= 3);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
