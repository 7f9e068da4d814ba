// SIGTERM: the server stops accepting, lets short in-flight streams finish, cuts long ones cleanly
// after the grace period (an error event, then [DONE]) and exits 0.
import { assert, main, startServer, sse, postJson, sleep, GREEDY } from './lib.mjs';

main('shutdown', 60, async () => {
  // The long stream must not be able to finish inside the 1 s grace on any machine: 16000 tokens
  // (a fast CI machine decodes this toy model at ~1000 tokens/s; GREEDY ignores end-of-text).
  const srv = await startServer(['--parallel', '2', '--ctx', '16384', '--shutdown-grace', '1']);
  let shortFirst = false;
  const short = sse(`${srv.url}/v1/completions`, { prompt: 'short', max_tokens: 20, ...GREEDY }, {
    onEvent: () => { shortFirst = true; },
  });
  const long = sse(`${srv.url}/v1/completions`, { prompt: 'long', max_tokens: 16000, ...GREEDY });
  while (!shortFirst) await sleep(5);
  const t0 = Date.now();
  srv.proc.kill('SIGTERM');
  await sleep(100);
  // New work is refused while draining (503) or the listener is already gone.
  const late = await postJson(`${srv.url}/v1/completions`, { prompt: 'late', max_tokens: 2 }).catch(() => ({ status: 'refused' }));
  assert.ok(late.status === 503 || late.status === 'refused', `late request got ${late.status}`);
  const [s, l] = await Promise.all([short, long]);
  assert.equal(s.status, 200);
  assert.equal(s.events.at(-1), '[DONE]');
  assert.equal(s.events.at(-2).choices?.[0]?.finish_reason, 'length', 'the short stream finished normally: ' + JSON.stringify(s.events.slice(-3)));
  assert.equal(l.events.at(-1), '[DONE]');
  assert.ok(l.events.at(-2).error, 'the long stream was cut with an error event');
  const code = await srv.exited;
  assert.equal(code, 0, srv.stderr());
  const secs = (Date.now() - t0) / 1000;
  assert.ok(secs < 8, `shutdown took ${secs} s`);
  console.log(`shutdown in ${secs.toFixed(2)} s`);
});
