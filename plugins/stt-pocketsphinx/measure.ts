/**
 * Measures the plugin on this machine: accuracy (word error rate, LM vs phrase grammar, on the
 * call-centre phrase set spoken by five offline voices, wideband and through a G.711 telephone
 * channel), CPU per second of audio, flush latency, memory and start-up time per decoder.
 *
 *   npx tsx plugins/stt-pocketsphinx/measure.ts [--channel wideband|telephone|both]
 *       [--config '{"grammar":{"garbageWeight":0.05}}'] [--skip-accuracy] [--skip-cost]
 *
 * Not a test (no pass/fail): the numbers go into README.md; the tests assert floors.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { silentLogger } from '../../src/log.js';
import type { PluginContext } from '../../src/plugins/api.js';
import { PocketSphinxConfigSchema } from './config.js';
import { PocketSphinxProvider } from './provider.js';
import type { PocketSphinxStream } from './stream.js';
import { AGENT_PHRASES, IN_GRAMMAR, OUT_OF_GRAMMAR, say, utterance, VOICES, WerTally, type Channel } from './testkit.js';

const { values } = parseArgs({
  options: {
    channel: { type: 'string', default: 'both' },
    config: { type: 'string', default: '{}' },
    'skip-accuracy': { type: 'boolean', default: false },
    'skip-cost': { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});

const cacheDir = await mkdtemp(join(tmpdir(), 'sb-pocketsphinx-measure-'));
const ac = new AbortController();
const ctx: PluginContext = { log: silentLogger, signal: ac.signal, cacheDir, configDir: process.cwd() };
const overrides = JSON.parse(values.config) as Record<string, unknown>;

async function provider(extra: Record<string, unknown> = {}): Promise<PocketSphinxProvider> {
  return PocketSphinxProvider.create(PocketSphinxConfigSchema.parse({ ...overrides, ...extra }), ctx);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

async function accuracy(channel: Channel): Promise<void> {
  const p = await provider();
  const rows: string[] = [];
  const total = { lmIn: new WerTally(), gIn: new WerTally(), lmOut: new WerTally(), gOut: new WerTally() };
  const flite = { lmIn: new WerTally(), gIn: new WerTally(), lmOut: new WerTally(), gOut: new WerTally() };
  let falseFallbacks = 0;
  let oogFallbacks = 0;
  let inTurns = 0;
  let outTurns = 0;
  for (const voice of VOICES) {
    const lm = (await p.stream({ language: 'en-US', signal: ac.signal })) as PocketSphinxStream;
    const g = (await p.stream({ language: 'en-US', phrases: AGENT_PHRASES, signal: ac.signal })) as PocketSphinxStream;
    const v = { lmIn: new WerTally(), gIn: new WerTally(), lmOut: new WerTally(), gOut: new WerTally() };
    for (const [set, texts] of [
      ['in', IN_GRAMMAR],
      ['out', OUT_OF_GRAMMAR],
    ] as const) {
      for (const text of texts) {
        const clip = await utterance(text, voice, channel);
        const a = await say(lm, clip);
        const b = await say(g, clip);
        const fell = g.lastTurn?.usedFallback ?? false;
        if (set === 'in') {
          inTurns++;
          if (fell) falseFallbacks++;
          for (const t of [v.lmIn, total.lmIn, ...(voice.name.startsWith('flite') ? [flite.lmIn] : [])]) t.add(text, a.text);
          for (const t of [v.gIn, total.gIn, ...(voice.name.startsWith('flite') ? [flite.gIn] : [])]) t.add(text, b.text);
        } else {
          outTurns++;
          if (fell) oogFallbacks++;
          for (const t of [v.lmOut, total.lmOut, ...(voice.name.startsWith('flite') ? [flite.lmOut] : [])]) t.add(text, a.text);
          for (const t of [v.gOut, total.gOut, ...(voice.name.startsWith('flite') ? [flite.gOut] : [])]) t.add(text, b.text);
        }
        if (values.verbose) {
          const share = g.lastTurn?.garbageShare?.toFixed(2) ?? '-';
          console.log(`  ${voice.name} [${set}] "${text}"\n      lm: "${a.text}" (${a.confidence ?? '-'})\n      grammar: "${b.text}" (${b.confidence ?? '-'}, garbage ${share}${fell ? `, re-decoded from "${g.lastTurn?.grammarText ?? ''}"` : ''})`);
        }
      }
    }
    rows.push(`| ${voice.name} | ${v.lmIn} | ${v.gIn} | ${v.lmOut} | ${v.gOut} |`);
    await lm.close();
    await g.close();
  }
  console.log(`\n### Accuracy, ${channel} (WER; in-grammar: ${IN_GRAMMAR.length} utterances/voice, out-of-grammar: ${OUT_OF_GRAMMAR.length})\n`);
  console.log('| voice | LM, in-grammar | grammar, in-grammar | LM, out-of-grammar | grammar+fallback, out-of-grammar |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(`| flite (4 voices) | ${flite.lmIn} | ${flite.gIn} | ${flite.lmOut} | ${flite.gOut} |`);
  console.log(`| all 5 voices | ${total.lmIn} | ${total.gIn} | ${total.lmOut} | ${total.gOut} |`);
  console.log(`\nLM re-decodes: ${oogFallbacks}/${outTurns} out-of-grammar turns, ${falseFallbacks}/${inTurns} in-grammar turns (${pct(falseFallbacks / inTurns)})`);
  await p.close();
}

async function cost(): Promise<void> {
  const p = await provider({ pool: { maxIdle: 0, prewarm: 0 } });
  const voice = VOICES[0];
  if (!voice) return;
  const clips = await Promise.all(IN_GRAMMAR.map((t) => utterance(t, voice, 'telephone')));
  const audioSeconds = clips.reduce((s, c) => s + c.samples.length / 16000, 0);
  console.log('\n### Cost (this machine)\n');
  for (const [label, phrases] of [
    ['LM', undefined],
    ['grammar', AGENT_PHRASES],
  ] as const) {
    const s = (await p.stream({ language: 'en-US', phrases, signal: ac.signal })) as PocketSphinxStream;
    await say(s, clips[0] as (typeof clips)[0]); // warm-up turn
    const flushMs: number[] = [];
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (const clip of clips) {
      const frames = clip.samples.length / 320;
      const t = performance.now();
      await say(s, clip);
      flushMs.push(performance.now() - t - frames * 0); // whole push+flush (push is a copy)
    }
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - wall0;
    const cpuMsPerSec = (cpu.user + cpu.system) / 1000 / audioSeconds;
    // Silence: what an idle caller costs (the engine pushes all audio, speech or not).
    const silence = { samples: new Int16Array(16000 * 10), sampleRate: 16000 as const };
    const cpuS0 = process.cpuUsage();
    await say(s, silence);
    const cpuS = process.cpuUsage(cpuS0);
    console.log(
      `${label}: ${cpuMsPerSec.toFixed(0)} ms CPU per second of speech (${(cpuMsPerSec / 50).toFixed(2)} ms per 20 ms frame), ` +
        `${((cpuS.user + cpuS.system) / 1000 / 10).toFixed(0)} ms per second of silence; ` +
        `decode wall time ${(wall / audioSeconds / 10).toFixed(1)}% of real time; turn (push+flush, as fast as possible) mean ${(flushMs.reduce((a, b) => a + b, 0) / flushMs.length).toFixed(0)} ms`,
    );
    await s.close();
  }

  // Flush latency as the engine sees it: audio pushed in real time, flush at the end.
  for (const [label, phrases] of [
    ['LM', undefined],
    ['grammar', AGENT_PHRASES],
  ] as const) {
    const s = await p.stream({ language: 'en-US', phrases, signal: ac.signal });
    const lat: number[] = [];
    for (const clip of clips.slice(0, 6)) {
      const frames = Math.ceil(clip.samples.length / 320);
      for (let i = 0; i < frames; i++) {
        s.push({ samples: clip.samples.subarray(i * 320, (i + 1) * 320), sampleRate: 16000 });
        await new Promise((r) => setTimeout(r, 20));
      }
      const t = performance.now();
      await s.flush(ac.signal);
      lat.push(performance.now() - t);
    }
    lat.sort((a, b) => a - b);
    console.log(`${label}: flush latency with real-time push: median ${lat[Math.floor(lat.length / 2)]?.toFixed(0)} ms, max ${lat[lat.length - 1]?.toFixed(0)} ms`);
    await s.close();
  }

  // Memory and start-up per decoder (no pooling: every stream builds its own).
  for (const [label, phrases] of [
    ['LM', undefined],
    ['grammar', AGENT_PHRASES],
  ] as const) {
    const n = 4;
    (global as { gc?: () => void }).gc?.();
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    const streams = [];
    for (let i = 0; i < n; i++) streams.push(await p.stream({ language: 'en-US', phrases, signal: ac.signal }));
    const ms = (performance.now() - t0) / n;
    const rss = (process.memoryUsage().rss - rss0) / n / 1e6;
    console.log(`${label} decoder: ${rss.toFixed(1)} MB RSS each, ${ms.toFixed(0)} ms to build (measured over ${n})`);
    await Promise.all(streams.map((s) => s.close()));
  }
  await p.close();
}

try {
  const channels: Channel[] = values.channel === 'both' ? ['wideband', 'telephone'] : [values.channel as Channel];
  if (!values['skip-accuracy']) for (const c of channels) await accuracy(c);
  if (!values['skip-cost']) await cost();
} finally {
  ac.abort();
  await rm(cacheDir, { recursive: true, force: true });
}
