// Speculative decoding in the server (`modu serve --lookup`): each decoding slot feeds prompt-
// lookup drafts in the step's batch. On modu-tiny (which copies repetitive text, so drafts are
// kept), greedy completions from two slots at once equal those of a server without drafts, the
// metrics count kept drafts, and sampled and logprob requests still work. With `--draft` (modu-tiny
// as its own draft model) the text is the same again and nearly every draft is kept; a draft model
// with another vocabulary is refused at start-up.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert, main, postJson, startServer } from './lib.mjs';

const TINY = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'modu-tiny.gguf');
const PROMPTS = ['데비안 패키지를 설치합니다. 데비안 패키지를 설치합니다. 데비안 패키지를 설치합니다. 데비안',
  'The file is saved. The file is saved. The file is saved. The file'];

main('speculative', 120, async () => {
  const plain = await startServer(['--parallel', '2', '--ctx', '256'], { model: TINY });
  const spec = await startServer(['--parallel', '2', '--ctx', '256', '--lookup', '--draft-max', '6'], { model: TINY });
  try {
    const body = (prompt) => ({ model: 'm', prompt, max_tokens: 48, temperature: 0 });
    const want = [];
    for (const p of PROMPTS) want.push((await postJson(`${plain.url}/v1/completions`, body(p))).json.choices[0].text);
    // Both at once: the slots' tokens and drafts share the batch.
    const got = await Promise.all(PROMPTS.map((p) => postJson(`${spec.url}/v1/completions`, body(p))));
    got.forEach((r, i) => {
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.choices[0].text, want[i], `prompt ${i}: the same text with drafts`);
    });
    const metrics = await (await fetch(`${spec.url}/metrics`)).text();
    const kept = Number(metrics.match(/^modu_draft_tokens_accepted (\d+)/m)?.[1]);
    const proposed = Number(metrics.match(/^modu_draft_tokens (\d+)/m)?.[1]);
    assert.ok(kept > 0 && kept <= proposed, `drafts kept: ${kept} of ${proposed}`);
    // Sampling (drafts accepted with their probability) and logprobs (no drafts) still answer.
    const sampled = await postJson(`${spec.url}/v1/completions`, { ...body(PROMPTS[0]), temperature: 0.8, seed: 4 });
    assert.equal(sampled.status, 200);
    assert.ok(sampled.json.usage.completion_tokens > 0);
    const lp = await postJson(`${spec.url}/v1/completions`, { ...body(PROMPTS[1]), logprobs: 2 });
    assert.equal(lp.status, 200);
    assert.equal(lp.json.choices[0].text, want[1]);
    assert.equal(lp.json.choices[0].logprobs.tokens.length, lp.json.usage.completion_tokens);

    // A draft model: the same text, and a model drafting for itself is nearly always right.
    const drafted = await startServer(['--parallel', '2', '--ctx', '256', '--draft', TINY, '--draft-max', '4'], { model: TINY });
    try {
      const got2 = await Promise.all(PROMPTS.map((p) => postJson(`${drafted.url}/v1/completions`, body(p))));
      got2.forEach((r, i) => {
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.equal(r.json.choices[0].text, want[i], `prompt ${i}: the same text with a draft model`);
      });
      const m2 = await (await fetch(`${drafted.url}/metrics`)).text();
      const kept2 = Number(m2.match(/^modu_draft_tokens_accepted (\d+)/m)?.[1]);
      const proposed2 = Number(m2.match(/^modu_draft_tokens (\d+)/m)?.[1]);
      assert.ok(proposed2 > 0 && kept2 >= 0.8 * proposed2, `draft-model drafts kept: ${kept2} of ${proposed2}`);
      console.log(`draft model: ${kept2} of ${proposed2} drafts kept`);
    } finally {
      assert.equal(await drafted.stop(), 0);
    }
    await assert.rejects(startServer(['--draft', process.env.MODU_TEST_MODEL], { model: TINY }), /same tokenizer/);
  } finally {
    assert.equal(await spec.stop(), 0);
    assert.equal(await plain.stop(), 0);
  }
});
